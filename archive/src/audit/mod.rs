//! Auditing a day's bundle offline, trusting nothing the operator wrote (`specs/archive.md` §6).
//!
//! The auditor derives the day statement itself — from `statements.parquet` and the hash of
//! `manifest.json` — and checks the root proof against that, never against `statement.json`.
//! Every check runs even after another fails, so one report names every problem.

use std::collections::BTreeMap;

use poe_circle_stark::config::VerifierPolicy;
use poe_circle_stark::data_root::{verify_data_root, verify_data_root_bytes};
use poe_circle_stark::day::recursive::{
    verify_recursive, RecursiveFormat, RecursiveRoot, RootKeys, RootSamples, ROOT_V4_AIR_NAME,
    ROOT_V5_AIR_NAME, V4_REQUIRED_FROM_DAY, V5_REQUIRED_FROM_DAY,
};
use poe_circle_stark::day::root::{
    verify_root_with, RootProof, ROOT_AIR_NAME, V2_REQUIRED_FROM_DAY,
};
use poe_circle_stark::day::statement::{BatchStatement, DayStatement};
use poe_circle_stark::day::verify_day;
use poe_circle_stark::hash::merkle::data_root;
use poe_circle_stark::hash::poseidon2::Digest;
use poe_circle_stark::proof::{AirId, Proof};
use poe_circle_stark::venue::{instruments_root, Instrument, Operation, OptionKind, OP_LIMBS};
use serde::Serialize;
use sha3::{Digest as _, Sha3_256};

use crate::bundle::rollup_proof_digest;
use crate::day::Day;
use crate::layout;
use crate::manifest::{sha3_hex, Manifest, StatementJson, VerifierParams};
use crate::parquet_io;
use crate::records::{
    data_roots_value, statement_rows, statements_schema_of, trade_rows, trades_schema,
    NamedInstrument, RowKey, StatementRow, TradeRow, STATEMENTS_SCHEMA_VERSION,
    STATEMENTS_V2_REQUIRED_FROM_DAY, TRADES_METADATA_KEYS, TRADES_SCHEMA_VERSION,
};
use crate::storage::Storage;
use poe_ingest::commitment::{CommittedOp, Scheme};
use poe_ingest::intake::verify_signed;
use poe_ingest::model::{Header, Submission};
use poe_ingest::short_string::ShortString;
pub use proofs::cached_keys;
use proofs::{check_rollup_proofs, check_root_proof, check_state_roots};
use starknet_crypto::Felt;
use trades::{check_trades, RollupTable, SignatureCheck};

/// What to check. The default is a full audit under the default verifier policy, without a
/// key cache.
#[derive(Debug, Clone, Default)]
pub struct AuditOptions {
    /// Where derived v4 root keys are kept between audits (`specs/archive.md` §6): keys are
    /// derived from a day's `root.samples` once per presets, tree shape and class, and read
    /// back afterwards, which is what makes `--proof-only` cost the same every day. The
    /// directory is the auditor's own: whoever can write it can choose the keys.
    pub key_cache: Option<std::path::PathBuf>,
    /// Stop after the root proof: skip re-hashing the trade records.
    pub proof_only: bool,
    /// Also verify the leaf and rollup proofs that poe can verify.
    pub leaves: bool,
    /// Minimum security of accepted proofs.
    pub policy: VerifierPolicy,
}

/// One line of the report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Check {
    /// Check name (`manifest`, `statements`, `root-proof`, `trades rollup=…`, …): `kind` as
    /// text, what the human and JSON reports print.
    pub name: String,
    /// Which check.
    #[serde(skip)]
    pub kind: CheckKind,
    /// Pass or fail.
    pub passed: bool,
    /// What was found; for a failure, the file, batch and row.
    pub detail: String,
}

/// The audit's checks (`specs/archive.md` §6), one line each in the report.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CheckKind {
    /// Format, schema versions, every listed file's size and hash, no unlisted file.
    Manifest,
    /// Each rollup's instrument table against its root.
    Instruments,
    /// `statements.parquet` read and checked against the manifest.
    Statements,
    /// Canonical order and chained state roots.
    Continuity,
    /// The root proof against the derived statement.
    RootProof,
    /// `statement.json` against the derived statement.
    StatementJson,
    /// One rollup's trade partition.
    Trades(String),
    /// Batch ids, signatures and native commitments recomputed.
    Signatures,
    /// Rollup and leaf proof files.
    ProofFiles,
    /// Every state root proven.
    StateRoots,
}

impl std::fmt::Display for CheckKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Manifest => f.write_str("manifest"),
            Self::Instruments => f.write_str("instruments"),
            Self::Statements => f.write_str("statements"),
            Self::Continuity => f.write_str("continuity"),
            Self::RootProof => f.write_str("root-proof"),
            Self::StatementJson => f.write_str("statement.json"),
            Self::Trades(rollup) => write!(f, "trades rollup={rollup}"),
            Self::Signatures => f.write_str("signatures"),
            Self::ProofFiles => f.write_str("proof-files"),
            Self::StateRoots => f.write_str("state-roots"),
        }
    }
}

/// Per-rollup figures recomputed from the AIR integers of the rows.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RollupFigures {
    /// Rollup name.
    pub rollup: String,
    /// Batches.
    pub batches: u64,
    /// Operations.
    pub ops: u64,
    /// Trades.
    pub trades: u64,
    /// Σ qty × price over trades, quote units, exact decimal.
    pub notional: String,
}

/// What the audit established, as fields: the statement it derived from the bundle (and
/// checked the root proof against), the verifier's parameters, and what verifying took.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditFacts {
    /// The day statement derived from the bundle, in `statement.json`'s form: day root, counts,
    /// each rollup's span (seqs, first pre- and last post-state root), the root proof's size
    /// and its segments or tree. Absent if the bundle's statements could not be read.
    pub statement: Option<StatementJson>,
    /// The root proof's parameters (AIR, proof format, blowup, queries, PoW, security bits).
    pub verifier: Option<VerifierParams>,
    /// Milliseconds verifying the root proof (keys at hand).
    pub root_verify_ms: Option<f64>,
    /// Seconds getting a v4/v5 root's keys.
    pub keys_s: Option<f64>,
    /// Where they came from: `cache` or `samples` (derived from `root.samples`).
    pub keys_from: Option<&'static str>,
}

/// The audit's result.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    /// The day audited.
    pub day: String,
    /// Every check, in order.
    pub checks: Vec<Check>,
    /// Figures per rollup (empty with `proof_only`).
    pub rollups: Vec<RollupFigures>,
    /// What the audit established.
    pub facts: AuditFacts,
}

impl AuditReport {
    /// True if every check passed.
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.passed)
    }
}

/// Progress: rows re-hashed so far of the day's total.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

struct Auditor<'a> {
    storage: &'a dyn Storage,
    checks: Vec<Check>,
    facts: AuditFacts,
    /// The manifest's files and sizes: the only files read besides the three it binds.
    listed: BTreeMap<String, u64>,
}

/// Largest `manifest.json` or `statement.json` an audit reads (a day of 2^22 batches lists
/// far less).
const MAX_JSON_BYTES: u64 = 64 << 20;
/// Largest `root.proof` an audit reads: the day-tree proof plus segments (~1 MB each); also
/// the bound on `root.samples` (a segment proof per class and one W proof).
const MAX_ROOT_PROOF_BYTES: u64 = 1 << 30;

impl Auditor<'_> {
    fn pass(&mut self, kind: CheckKind, detail: impl Into<String>) {
        self.push(kind, true, detail.into());
    }

    fn fail(&mut self, kind: CheckKind, detail: impl Into<String>) {
        self.push(kind, false, detail.into());
    }

    fn push(&mut self, kind: CheckKind, passed: bool, detail: String) {
        self.checks.push(Check {
            name: kind.to_string(),
            kind,
            passed,
            detail,
        });
    }

    fn report(self, day: String, rollups: Vec<RollupFigures>) -> AuditReport {
        AuditReport {
            day,
            checks: self.checks,
            rollups,
            facts: self.facts,
        }
    }

    /// Reads a file the bundle may hold: one the manifest lists, at its listed size at most,
    /// or one of the files the manifest cannot list, bounded; always a regular file, so a
    /// published FIFO, link or device cannot hang the audit or exhaust its memory.
    fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        let max = match (self.listed.get(path), path) {
            (Some(&bytes), _) => bytes,
            (None, layout::MANIFEST_JSON | layout::STATEMENT_JSON) => MAX_JSON_BYTES,
            (None, layout::ROOT_PROOF | layout::ROOT_SAMPLES) => MAX_ROOT_PROOF_BYTES,
            (None, _) => return Err(format!("{path}: not listed in the manifest")),
        };
        self.storage
            .read_at_most(path, max)
            .map_err(|e| format!("{path}: {e}"))
    }
}

fn format_decimal(unscaled: i128, scale: u32) -> String {
    let p = 10i128.pow(scale);
    let sign = if unscaled < 0 { "-" } else { "" };
    let a = unscaled.unsigned_abs();
    let p = p as u128;
    format!("{sign}{}.{:0width$}", a / p, a % p, width = scale as usize)
}

fn parse_digest(row: usize, name: &str, hex: &str) -> Result<Digest, String> {
    Digest::from_hex(hex).map_err(|e| format!("statements.parquet row {row}: {name}: {e}"))
}

fn instrument_of(e: &crate::manifest::InstrumentEntry) -> Result<NamedInstrument, String> {
    let kind = match e.kind.as_str() {
        "call" => OptionKind::Call,
        "put" => OptionKind::Put,
        k => return Err(format!("instrument {}: kind {k:?}", e.name)),
    };
    Ok(NamedInstrument {
        name: e.name.clone(),
        instrument: Instrument {
            underlying: e.underlying,
            expiry_us: e.expiry_us,
            strike: e.strike,
            kind,
            collateral: e.collateral,
        },
    })
}

/// Audits the bundle whose day directory is the root of `storage`.
pub fn audit(storage: &dyn Storage, options: &AuditOptions, progress: Progress<'_>) -> AuditReport {
    let mut a = Auditor {
        storage,
        checks: Vec::new(),
        facts: AuditFacts::default(),
        listed: BTreeMap::new(),
    };
    let mut report_day = String::from("?");

    // 1. The manifest and every file it lists.
    let manifest_bytes = match a.read(layout::MANIFEST_JSON) {
        Ok(b) => b,
        Err(e) => {
            a.fail(CheckKind::Manifest, e);
            return a.report(report_day, Vec::new());
        }
    };
    let manifest_hash: [u8; 32] = Sha3_256::digest(&manifest_bytes).into();
    let manifest = match Manifest::from_bytes(&manifest_bytes) {
        Ok(m) => m,
        Err(e) => {
            a.fail(CheckKind::Manifest, e.to_string());
            return a.report(report_day, Vec::new());
        }
    };
    report_day = manifest.day.clone();
    a.facts.verifier = Some(manifest.verifier.clone());
    a.listed = manifest
        .files
        .iter()
        .map(|f| (f.path.clone(), f.bytes))
        .collect();
    check_manifest(&mut a, &manifest, options.proof_only);
    let day = match manifest.day.parse::<Day>() {
        Ok(d) => d,
        Err(e) => {
            a.fail(CheckKind::Manifest, e.to_string());
            return a.report(report_day, Vec::new());
        }
    };

    // 2. Statements: canonical order, continuity, instrument tables.
    let mut rollup_tables: BTreeMap<u32, (String, Vec<NamedInstrument>, Digest)> = BTreeMap::new();
    for r in &manifest.rollups {
        match r
            .instruments
            .iter()
            .map(instrument_of)
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(table) => {
                let terms: Vec<_> = table.iter().map(|n| n.instrument.clone()).collect();
                let root = instruments_root(&terms);
                if root.to_hex() != r.instruments_root {
                    a.fail(
                        CheckKind::Instruments,
                        format!(
                            "manifest rollup {}: instruments_root does not match its table",
                            r.name
                        ),
                    );
                }
                rollup_tables.insert(r.id, (r.name.clone(), table, root));
            }
            Err(e) => a.fail(
                CheckKind::Instruments,
                format!("manifest rollup {}: {e}", r.name),
            ),
        }
    }
    let statements = read_statements(&mut a, day, &rollup_tables, manifest.schemas.statements);

    // 3. The root proof, against the statement derived here.
    let derived = statements.as_ref().and_then(|(_, s)| {
        match DayStatement::derive(day.0, s, manifest_hash) {
            Ok(d) => {
                let spans = d
                    .rollups
                    .iter()
                    .map(|r| format!("{}: seq {}..={}", r.rollup_id, r.first_seq, r.last_seq))
                    .collect::<Vec<_>>()
                    .join(", ");
                a.pass(
                    CheckKind::Continuity,
                    format!(
                        "{} batches, state roots chained per rollup ({spans})",
                        d.n_batches
                    ),
                );
                Some(d)
            }
            Err(e) => {
                a.fail(CheckKind::Continuity, format!("statements.parquet: {e}"));
                None
            }
        }
    });
    // A v3 root's segments take their instrument tables from here (v2's carry them).
    let tables: BTreeMap<u32, Vec<Instrument>> = rollup_tables
        .iter()
        .map(|(&id, (_, table, _))| (id, table.iter().map(|n| n.instrument.clone()).collect()))
        .collect();
    let proven = check_root_proof(
        &mut a,
        day,
        &manifest,
        (derived.as_ref(), &tables),
        statements.as_ref().map(|(_, s)| s.as_slice()),
        options,
    );

    if options.proof_only {
        return a.report(report_day, Vec::new());
    }

    // 4. Trade records: every batch's data root from its rows; with v2 statements each
    // batch's id and its rollup's signature from the same rows.
    let mut figures = Vec::new();
    if let Some((rows, stmts)) = &statements {
        let total: u64 = stmts.iter().map(|s| u64::from(s.n_ops)).sum();
        let mut done = 0u64;
        let mut signatures = (manifest.schemas.statements >= 2).then(SignatureCheck::default);
        for (id, (name, table, _)) in &rollup_tables {
            let batches: Vec<(&StatementRow, &BatchStatement)> = rows
                .iter()
                .zip(stmts)
                .filter(|(_, s)| s.rollup_id == *id)
                .collect();
            let key = manifest
                .rollups
                .iter()
                .find(|r| r.id == *id)
                .and_then(|r| r.public_key.clone());
            let mut signer = signatures.as_mut().map(|s| s.rollup(name, key.as_deref()));
            if let Some(f) = check_trades(
                &mut a,
                day,
                RollupTable {
                    id: *id,
                    name,
                    table,
                },
                &batches,
                signer.as_mut(),
                &mut |n| {
                    done += n;
                    progress(done, total);
                },
            ) {
                figures.push(f);
            }
        }
        match signatures {
            Some(s) => s.report(&mut a, rows.len()),
            None => a.pass(
                CheckKind::Signatures,
                format!(
                    "statements v{} (days before 2026-12-02) record no signatures: batch ids and the rollups' signatures not checked",
                    manifest.schemas.statements
                ),
            ),
        }
        check_rollup_proofs(&mut a, rows, stmts, options);
        check_state_roots(&mut a, rows, stmts, &proven, options);
    }
    a.report(report_day, figures)
}

fn check_manifest(a: &mut Auditor<'_>, m: &Manifest, proof_only: bool) {
    let mut problems = Vec::new();
    if m.schemas.trades != TRADES_SCHEMA_VERSION
        || statements_schema_of(m.schemas.statements).is_none()
    {
        problems.push(format!(
            "schema versions trades {} statements {}, this auditor reads trades {TRADES_SCHEMA_VERSION} and statements 1..={STATEMENTS_SCHEMA_VERSION}",
            m.schemas.trades, m.schemas.statements
        ));
    } else if m.schemas.statements < 2
        && m.day
            .parse::<Day>()
            .is_ok_and(|d| d.0 >= STATEMENTS_V2_REQUIRED_FROM_DAY)
    {
        problems.push(format!(
            "statements table version {} for {}: from 2026-12-02 it is version 2 (a downgrade would hide the rollups' signatures)",
            m.schemas.statements, m.day
        ));
    }
    if !m.files.windows(2).all(|w| w[0].path < w[1].path) {
        problems.push("files are not sorted by path (or repeat)".into());
    }
    let listed: std::collections::BTreeSet<&str> =
        m.files.iter().map(|f| f.path.as_str()).collect();
    let mut checked = 0usize;
    for f in &m.files {
        // With --proof-only only the files the root proof's statement is derived from are
        // re-hashed; the trade files are what makes a full audit linear in the rows.
        if proof_only && f.path != layout::STATEMENTS_PARQUET {
            continue;
        }
        match a.read(&f.path) {
            Ok(bytes) => {
                checked += 1;
                if bytes.len() as u64 != f.bytes {
                    problems.push(format!(
                        "{}: {} bytes, manifest says {}",
                        f.path,
                        bytes.len(),
                        f.bytes
                    ));
                } else if sha3_hex(&bytes) != f.sha3_256 {
                    problems.push(format!(
                        "{}: sha3-256 {} differs from the manifest's {}",
                        f.path,
                        sha3_hex(&bytes),
                        f.sha3_256
                    ));
                }
            }
            Err(e) => problems.push(format!("listed but unreadable: {e}")),
        }
    }
    if !proof_only {
        match a.storage.list("") {
            Ok(present) => {
                for (path, _) in present {
                    let bound = layout::BOUND_FILES.contains(&path.as_str());
                    if !bound && !listed.contains(path.as_str()) {
                        problems.push(format!("{path}: present but not in the manifest"));
                    }
                }
            }
            Err(e) => problems.push(format!("listing the bundle: {e}")),
        }
    }
    if problems.is_empty() {
        a.pass(
            CheckKind::Manifest,
            format!("{checked} files match their sizes and SHA3-256"),
        );
    } else {
        a.fail(CheckKind::Manifest, problems.join("; "));
    }
}

type Statements = (Vec<StatementRow>, Vec<BatchStatement>);

fn read_statements(
    a: &mut Auditor<'_>,
    day: Day,
    tables: &BTreeMap<u32, (String, Vec<NamedInstrument>, Digest)>,
    version: u32,
) -> Option<Statements> {
    let Some(schema) = statements_schema_of(version) else {
        a.fail(
            CheckKind::Statements,
            format!("statements table version {version} is not one this auditor reads"),
        );
        return None;
    };
    let bytes = match a.read(layout::STATEMENTS_PARQUET) {
        Ok(b) => b,
        Err(e) => {
            a.fail(CheckKind::Statements, e);
            return None;
        }
    };
    let rows = match parquet_io::read(bytes, &schema).and_then(|r| statement_rows(&r.rows)) {
        Ok(r) => r,
        Err(e) => {
            a.fail(CheckKind::Statements, format!("statements.parquet: {e}"));
            return None;
        }
    };
    let mut out = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let at = format!(
            "statements.parquet row {i} (rollup {} seq {})",
            r.rollup, r.seq
        );
        let problem = if r.leaf_index as usize != i {
            Some(format!("leaf_index {}", r.leaf_index))
        } else if r.day != day.0 as i32 {
            Some(format!("day {} is not the bundle's", r.day))
        } else if !(day.start_us()..day.next().start_us())
            .contains(&u64::try_from(r.accepted_at).unwrap_or(u64::MAX))
        {
            Some(format!(
                "accepted_at {} µs is outside the bundle's day [{}, {})",
                r.accepted_at,
                day.start_us(),
                day.next().start_us()
            ))
        } else {
            match tables.get(&r.rollup_id) {
                None => Some(format!("rollup id {} is not in the manifest", r.rollup_id)),
                Some((name, _, _)) if *name != r.rollup => Some(format!(
                    "rollup {:?} is id {} in the manifest as {name:?}",
                    r.rollup, r.rollup_id
                )),
                Some((_, _, root)) if root.to_hex() != r.instruments_root => {
                    Some("instruments_root differs from the manifest's table".into())
                }
                _ => None,
            }
        };
        if let Some(p) = problem {
            a.fail(CheckKind::Statements, format!("{at}: {p}"));
            return None;
        }
        let parsed = (|| {
            Ok::<_, String>(BatchStatement {
                rollup_id: r.rollup_id,
                seq: r.seq,
                pre_state_root: parse_digest(i, "pre_state_root", &r.pre_state_root)?,
                post_state_root: parse_digest(i, "post_state_root", &r.post_state_root)?,
                data_root: parse_digest(i, "data_root", &r.data_root)?,
                instruments_root: parse_digest(i, "instruments_root", &r.instruments_root)?,
                n_ops: r.n_ops,
            })
        })();
        match parsed {
            Ok(s) => out.push(s),
            Err(e) => {
                a.fail(CheckKind::Statements, e);
                return None;
            }
        }
    }
    a.pass(
        CheckKind::Statements,
        format!("{} batch statements read", rows.len()),
    );
    Some((rows, out))
}

mod proofs;
#[cfg(test)]
mod tests;
mod trades;
