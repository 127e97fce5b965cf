//! Auditing a day's bundle offline, trusting nothing the operator wrote (`specs/archive.md` §6).
//!
//! The auditor derives the day statement itself — from `statements.parquet` and the hash of
//! `manifest.json` — and checks the root proof against that, never against `statement.json`.
//! Every check runs even after another fails, so one report names every problem.

use std::collections::BTreeMap;

use poe_circle_stark::config::VerifierPolicy;
use poe_circle_stark::merkle::data_root;
use poe_circle_stark::poseidon2::Digest;
use poe_circle_stark::proof::{AirId, Proof};
use poe_circle_stark::root::{verify_root, RootProof, ROOT_AIR_NAME, V2_REQUIRED_FROM_DAY};
use poe_circle_stark::statement::{BatchStatement, DayStatement};
use poe_circle_stark::venue::{instruments_root, Instrument, Operation, OptionKind, OP_LIMBS};
use poe_circle_stark::verifier::{verify_data_root, verify_data_root_bytes, verify_day};
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
use starknet_crypto::Felt;

/// What to check. The default is a full audit under the default verifier policy.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditOptions {
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

/// The audit's result.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    /// The day audited.
    pub day: String,
    /// Every check, in order.
    pub checks: Vec<Check>,
    /// Figures per rollup (empty with `proof_only`).
    pub rollups: Vec<RollupFigures>,
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
    /// The manifest's files and sizes: the only files read besides the three it binds.
    listed: BTreeMap<String, u64>,
}

/// Largest `manifest.json` or `statement.json` an audit reads (a day of 2^22 batches lists
/// far less).
const MAX_JSON_BYTES: u64 = 64 << 20;
/// Largest `root.proof` an audit reads: the day-tree proof plus segments (~1 MB each).
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
        }
    }

    /// Reads a file the bundle may hold: one the manifest lists, at its listed size at most,
    /// or one of the files the manifest cannot list, bounded; always a regular file, so a
    /// published FIFO, link or device cannot hang the audit or exhaust its memory.
    fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        let max = match (self.listed.get(path), path) {
            (Some(&bytes), _) => bytes,
            (None, layout::MANIFEST_JSON | layout::STATEMENT_JSON) => MAX_JSON_BYTES,
            (None, layout::ROOT_PROOF) => MAX_ROOT_PROOF_BYTES,
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
    let proven = check_root_proof(
        &mut a,
        day,
        &manifest,
        derived.as_ref(),
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

/// What a root proof that verified proves of the day's state roots.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RootsProven {
    /// The root proof did not verify (reported by `root-proof`).
    Nothing,
    /// A v1 root proof (the day tree alone): no state root; each rests on its batch's leaf.
    V1,
    /// A v2 root proof: every segment's first pre- and last post-state root; the indices are
    /// the batches whose post-state root lies inside a segment.
    Segments {
        segments: usize,
        interior: Vec<usize>,
    },
}

fn check_root_proof(
    a: &mut Auditor<'_>,
    day: Day,
    manifest: &Manifest,
    derived: Option<&DayStatement>,
    batches: Option<&[BatchStatement]>,
    options: &AuditOptions,
) -> RootsProven {
    let bytes = match a.read(layout::ROOT_PROOF) {
        Ok(b) => b,
        Err(e) => {
            a.fail(CheckKind::RootProof, e);
            return RootsProven::Nothing;
        }
    };
    let Some(statement) = derived else {
        a.fail(
            CheckKind::RootProof,
            "no day statement to verify against (see above)",
        );
        return RootsProven::Nothing;
    };
    // v2 (`POEROOT2`): the day-tree proof and the segments re-proving every batch; v1 bundles
    // (written before segments) hold the day-tree proof alone.
    let v2 = RootProof::is_v2(&bytes);
    if !v2 && day.0 >= V2_REQUIRED_FROM_DAY {
        a.fail(
            CheckKind::RootProof,
            format!(
                "root.proof is a v1 root proof (the day tree alone, without batch validity); days from {} on need {ROOT_AIR_NAME}",
                Day(V2_REQUIRED_FROM_DAY)
            ),
        );
        return RootsProven::Nothing;
    }
    let (day_proof, root) = if v2 {
        match RootProof::from_bytes(&bytes) {
            Ok(r) => (r.day.clone(), Some(r)),
            Err(e) => {
                a.fail(CheckKind::RootProof, format!("root.proof: {e}"));
                return RootsProven::Nothing;
            }
        }
    } else {
        match Proof::from_bytes(&bytes) {
            Ok(p) => (p, None),
            Err(e) => {
                a.fail(CheckKind::RootProof, format!("root.proof: {e}"));
                return RootsProven::Nothing;
            }
        }
    };
    if day_proof.air == AirId::DayRoot
        && VerifierParams::day_root(&day_proof.config) != manifest.verifier
    {
        a.fail(
            CheckKind::RootProof,
            "root.proof parameters differ from the manifest's verifier section",
        );
    }
    let start = std::time::Instant::now();
    let mut proven = RootsProven::Nothing;
    let verified = match (root, batches) {
        (Some(root), Some(batches)) => {
            verify_root(root, statement, batches, &options.policy).map(|c| {
                let text = format!(
                    "; batch validity of all {} batches ({} ops) re-proven in {} segment proofs; \
                     state roots proven: each segment's first pre- and last post-state root \
                     ({} between batches inside a segment rest on leaf proofs: state-roots)",
                    c.batches,
                    c.ops,
                    c.segments,
                    c.interior.len()
                );
                proven = RootsProven::Segments {
                    segments: c.segments,
                    interior: c.interior,
                };
                text
            })
        }
        (Some(_), None) => Err(poe_circle_stark::error::VerifyError::InvalidStatement(
            "no batch statements to check the segments against (see above)".into(),
        )),
        (None, _) => verify_day(day_proof, statement, &options.policy).map(|()| {
            proven = RootsProven::V1;
            "; v1 root proof: batch validity is not in it, nor any state root (leaf proofs only)"
                .into()
        }),
    };
    match verified {
        Ok(coverage) => a.pass(
            CheckKind::RootProof,
            format!(
                "day root {} over {} batches and {} ops verified in {:.1} ms ({} bytes){coverage}",
                statement.day_root.to_hex(),
                statement.n_batches,
                statement.n_ops,
                start.elapsed().as_secs_f64() * 1e3,
                bytes.len()
            ),
        ),
        Err(e) => a.fail(CheckKind::RootProof, format!("root.proof: {e}")),
    }
    match a.read(layout::STATEMENT_JSON).and_then(|b| {
        serde_json::from_slice::<StatementJson>(&b).map_err(|e| format!("statement.json: {e}"))
    }) {
        Ok(published) => {
            let expected = StatementJson::new(&manifest.day, statement, &bytes);
            if published == expected {
                a.pass(
                    CheckKind::StatementJson,
                    "matches the statement derived from the bundle",
                );
            } else {
                a.fail(
                    CheckKind::StatementJson,
                    "differs from the statement derived from the bundle",
                );
            }
        }
        Err(e) => a.fail(CheckKind::StatementJson, e),
    }
    proven
}

/// The `signatures` check: each batch rebuilt from its statement row and trade rows as intake
/// saw it, its id recomputed, its rollup's signature and native commitment verified
/// (`specs/archive.md` §6). Fed one batch at a time by [`check_trades`].
#[derive(Default)]
struct SignatureCheck {
    checked: usize,
    rollups: usize,
    problems: Vec<String>,
}

/// [`SignatureCheck`] for one rollup's batches.
struct RollupSigner<'c> {
    tally: &'c mut SignatureCheck,
    name: String,
    key: Result<Felt, String>,
}

impl SignatureCheck {
    fn rollup(&mut self, name: &str, key: Option<&str>) -> RollupSigner<'_> {
        self.rollups += 1;
        let key = match key {
            None => Err("the manifest gives no public key".to_string()),
            Some(k) => parse_hex32(k)
                .map(|b| Felt::from_bytes_be(&b))
                .map_err(|e| format!("manifest public_key: {e}")),
        };
        RollupSigner {
            tally: self,
            name: name.to_string(),
            key,
        }
    }

    fn report(self, a: &mut Auditor<'_>, n_batches: usize) {
        if !self.problems.is_empty() {
            let more = self.problems.len().saturating_sub(5);
            let mut detail = self.problems[..self.problems.len().min(5)].join("; ");
            if more > 0 {
                detail.push_str(&format!("; and {more} more"));
            }
            a.fail(CheckKind::Signatures, detail);
        } else {
            a.pass(
                CheckKind::Signatures,
                format!(
                    "{} of {n_batches} batches: ids recomputed from their rows, native commitments recomputed, signed by their rollup's key in the manifest ({} rollups; compare those keys with the ones the rollups publish)",
                    self.checked, self.rollups
                ),
            );
        }
    }
}

impl RollupSigner<'_> {
    fn check(&mut self, row: &StatementRow, s: &BatchStatement, ops: Vec<CommittedOp>) {
        let at = format!("rollup {} batch seq {}", self.name, s.seq);
        match self.verify(row, s, ops) {
            Ok(()) => self.tally.checked += 1,
            Err(e) => self.tally.problems.push(format!("{at}: {e}")),
        }
    }

    fn verify(
        &self,
        row: &StatementRow,
        s: &BatchStatement,
        ops: Vec<CommittedOp>,
    ) -> Result<(), String> {
        let key = self.key.as_ref().map_err(Clone::clone)?;
        let (r, sig_s) = row
            .signature
            .as_ref()
            .ok_or("the statement row has no signature")?;
        let short =
            |field: &str, v: &str| ShortString::try_from(v).map_err(|e| format!("{field}: {e}"));
        let header = Header {
            rollup: short("rollup", &row.rollup)?,
            seq: s.seq,
            pre_state_root: s.pre_state_root,
            post_state_root: s.post_state_root,
            scheme: Scheme::from_name(&row.native_scheme)
                .ok_or_else(|| format!("native_scheme {:?} is unknown", row.native_scheme))?,
            commitment: parse_hex32(&row.native_commitment)
                .map_err(|e| format!("native_commitment: {e}"))?,
            proof_system: short("rollup_proof_system", &row.rollup_proof_system)?,
            vk_id: row
                .rollup_vk_id
                .as_deref()
                .map(|v| short("rollup_vk_id", v))
                .transpose()?,
            proof_digest: parse_hex32(&row.rollup_proof_digest)
                .map_err(|e| format!("rollup_proof_digest: {e}"))?,
            n_ops: s.n_ops,
        };
        let felt = |field: &str, v: &str| {
            parse_hex32(v)
                .map(|b| Felt::from_bytes_be(&b))
                .map_err(|e| format!("{field}: {e}"))
        };
        let sub = Submission {
            header,
            signature: (felt("signature_r", r)?, felt("signature_s", sig_s)?),
            ops,
            proof_bytes: Vec::new(),
        };
        verify_signed(&sub, key).map_err(|e| format!("{}: {}", e.code, e.message))?;
        let id = hex::encode(sub.batch_id());
        if id != row.batch_id {
            return Err(format!(
                "batch_id {} in statements.parquet, the archived batch hashes to {id}",
                row.batch_id
            ));
        }
        Ok(())
    }
}

/// 32 bytes from exactly 64 lowercase hex digits (one spelling per value).
fn parse_hex32(v: &str) -> Result<[u8; 32], String> {
    if v.len() != 64
        || !v
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!("{v:?} is not 64 lowercase hex digits"));
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(v, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// One rollup of the manifest, as the trades check needs it.
struct RollupTable<'t> {
    id: u32,
    name: &'t str,
    table: &'t [NamedInstrument],
}

fn check_trades(
    a: &mut Auditor<'_>,
    day: Day,
    rollup: RollupTable<'_>,
    batches: &[(&StatementRow, &BatchStatement)],
    mut signer: Option<&mut RollupSigner<'_>>,
    progress: &mut dyn FnMut(u64),
) -> Option<RollupFigures> {
    let RollupTable {
        id: rollup_id,
        name,
        table,
    } = rollup;
    let check = CheckKind::Trades(name.to_string());
    let mut committed: Vec<CommittedOp> = Vec::new();
    let dir = layout::trades_dir(name);
    // Only the manifest's files of the partition, in path order: anything else in the
    // directory is reported by the manifest check and never opened.
    let prefix = format!("{dir}/");
    let files: Vec<String> = a
        .listed
        .keys()
        .filter_map(|p| p.strip_prefix(&prefix).map(str::to_string))
        .collect();
    let expected_ops: u64 = batches.iter().map(|(_, s)| u64::from(s.n_ops)).sum();
    let mut figures = RollupFigures {
        rollup: name.to_string(),
        batches: batches.len() as u64,
        ops: 0,
        trades: 0,
        notional: String::new(),
    };
    let mut notional = 0i128;
    let mut batch_i = 0usize;
    let mut records = Vec::new();
    let mut next_index = 0u32;
    let mut ok_batches = 0usize;
    for file in &files {
        let path = format!("{dir}/{file}");
        let bytes = match a.read(&path) {
            Ok(b) => b,
            Err(e) => {
                a.fail(check.clone(), e);
                return None;
            }
        };
        let read = match parquet_io::read(bytes, &trades_schema()) {
            Ok(r) => r,
            Err(e) => {
                a.fail(check.clone(), format!("{path}: {e}"));
                return None;
            }
        };
        let meta: BTreeMap<_, _> = read.metadata.iter().cloned().collect();
        // Exactly the writer's keys (and Arrow's schema): nothing an operator could add
        // that a reader of the file would take for poe's.
        let extra: Vec<&String> = meta
            .keys()
            .filter(|k| *k != "ARROW:schema" && !TRADES_METADATA_KEYS.contains(&k.as_str()))
            .collect();
        if !extra.is_empty() || read.metadata.len() != meta.len() {
            a.fail(
                check.clone(),
                format!("{path}: metadata keys {extra:?} (or a repeated key) are not poe's"),
            );
            return None;
        }
        let want = [
            ("poe.day", day.to_string()),
            ("poe.rollup", name.to_string()),
            ("poe.rollup_id", rollup_id.to_string()),
            ("poe.schema_version", TRADES_SCHEMA_VERSION.to_string()),
        ];
        for (k, v) in want {
            if meta.get(k) != Some(&v) {
                a.fail(
                    check.clone(),
                    format!("{path}: metadata {k} is {:?}, expected {v:?}", meta.get(k)),
                );
                return None;
            }
        }
        let mut starting: Vec<(u64, Digest)> = Vec::new();
        let rows = match trade_rows(&read.rows) {
            Ok(r) => r,
            Err(e) => {
                a.fail(check.clone(), format!("{path}: {e}"));
                return None;
            }
        };
        for (row_i, row) in rows.iter().enumerate() {
            let Some((srow, s)) = batches.get(batch_i) else {
                a.fail(check.clone(), format!("{path} row {row_i}: a row beyond the day's {expected_ops} operations (batch_seq {} op_index {})", row.batch_seq, row.op_index));
                return None;
            };
            let at = format!("{path} row {row_i} (batch seq {} op {})", s.seq, next_index);
            if next_index == 0 {
                starting.push((s.seq, s.data_root));
            }
            if row.batch_seq != s.seq || row.op_index != next_index {
                a.fail(
                    check.clone(),
                    format!(
                        "{at}: found batch_seq {} op_index {}: rows missing, added or out of order",
                        row.batch_seq, row.op_index
                    ),
                );
                return None;
            }
            let op = match Operation::from_fields(row.air) {
                Ok(op) => op,
                Err(e) => {
                    a.fail(
                        check.clone(),
                        format!("{at}: AIR fields do not decode: {e}"),
                    );
                    return None;
                }
            };
            let key = RowKey {
                day: day.0,
                rollup: name,
                rollup_id,
                batch_seq: s.seq,
                op_index: next_index,
                venue_trade_id: &row.venue_trade_id,
            };
            match TradeRow::new(&key, &op, table) {
                Some(expected) => {
                    if let Some(col) = expected.first_difference(row) {
                        a.fail(
                            check.clone(),
                            format!("{at}: column {col} does not match the operation's AIR record"),
                        );
                        return None;
                    }
                }
                None => {
                    a.fail(
                        check.clone(),
                        format!("{at}: instrument index outside the rollup's table"),
                    );
                    return None;
                }
            }
            if let Operation::Trade { qty, price, .. } = op {
                figures.trades += 1;
                notional += i128::from(qty) * i128::from(price);
            }
            records.extend(op.encode());
            if signer.is_some() {
                match ShortString::try_from(row.venue_trade_id.as_str()) {
                    Ok(trade_id) => committed.push(CommittedOp { trade_id, op }),
                    Err(e) => {
                        a.fail(check.clone(), format!("{at}: venue_trade_id: {e}"));
                        return None;
                    }
                }
            }
            next_index += 1;
            figures.ops += 1;
            if next_index == s.n_ops {
                if let Some(signer) = signer.as_mut() {
                    signer.check(srow, s, std::mem::take(&mut committed));
                }
                let root = data_root(&records, OP_LIMBS);
                if root != s.data_root {
                    a.fail(check.clone(),
                        format!(
                            "{path}: batch seq {} ({}): data root from its {} rows is {}, statement says {}",
                            s.seq, srow.batch_id, s.n_ops, root.to_hex(), s.data_root.to_hex()
                        ),
                    );
                    return None;
                }
                records.clear();
                next_index = 0;
                batch_i += 1;
                ok_batches += 1;
            }
        }
        let roots = data_roots_value(&starting);
        if meta.get("poe.data_roots") != Some(&roots) {
            a.fail(check.clone(),
                format!(
                    "{path}: metadata poe.data_roots is {:?}, the batches starting in the file give {roots:?}",
                    meta.get("poe.data_roots")
                ),
            );
            return None;
        }
        progress(rows.len() as u64);
    }
    if batch_i != batches.len() || next_index != 0 {
        let (_, s) = batches[batch_i.min(batches.len() - 1)];
        a.fail(
            check.clone(),
            format!(
                "{dir}: rows end inside or before batch seq {} ({} of {} operations present)",
                s.seq, figures.ops, expected_ops
            ),
        );
        return None;
    }
    figures.notional = format_decimal(notional, 6);
    a.pass(
        check.clone(),
        format!(
            "{} rows in {} files; {ok_batches} data roots recomputed and equal",
            figures.ops,
            files.len()
        ),
    );
    Some(figures)
}

/// What a leaf proof proves of its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeafKind {
    /// A batch-validity proof: the batch's rules, data root and both state roots.
    Validity,
    /// A data-root proof (or the rollup's own `poe-circle-stark/v1` proof): the records only.
    DataRoot,
}

/// Checks that one leaf proof states exactly its batch and, with `stark`, verifies it.
fn verify_leaf(
    bytes: &[u8],
    s: &BatchStatement,
    data: &poe_circle_stark::air::DataRootStatement,
    options: &AuditOptions,
    stark: bool,
) -> Result<LeafKind, String> {
    use poe_circle_stark::proof::{AirId, Proof};
    use poe_circle_stark::validity::{verify_validity, ValidityStatement};
    let proof = Proof::from_bytes(bytes).map_err(|e| e.to_string())?;
    match proof.air {
        AirId::BatchValidity => {
            let st = ValidityStatement::from_public_inputs(&proof.public_inputs)
                .ok_or("its statement does not decode")?;
            let this = poe_circle_stark::validity::BatchTree {
                n_ops: s.n_ops,
                data_root: s.data_root,
            };
            if st.batches != [this] {
                return Err(format!(
                    "a validity proof of other batches ({} batches, {} operations, first data root {})",
                    st.batches.len(),
                    st.n_ops(),
                    st.batches.first().map(|b| b.data_root.to_hex()).unwrap_or_default()
                ));
            }
            // The batch statements chain per rollup (checked with the day statement), so
            // equal roots chain the validity proofs too.
            for (what, proven, stated) in [
                ("pre", st.pre_state_root, s.pre_state_root),
                ("post", st.post_state_root, s.post_state_root),
            ] {
                if proven != stated {
                    return Err(format!(
                        "its {what}-state root is {proven}, the batch's is {stated}"
                    ));
                }
            }
            let listed = poe_circle_stark::venue::instruments_root(&st.instruments);
            if listed != s.instruments_root {
                return Err(format!(
                    "its instrument list has root {listed}, the batch's instruments root is {}",
                    s.instruments_root
                ));
            }
            if stark {
                verify_validity(proof, &st, &options.policy).map_err(|e| e.to_string())?;
            }
            Ok(LeafKind::Validity)
        }
        AirId::DataRoot if !stark => {
            if proof.public_inputs != data.to_public_inputs() {
                return Err(format!(
                    "a data-root proof of other records (batch data root {}, {} operations)",
                    data.root, data.n_records
                ));
            }
            Ok(LeafKind::DataRoot)
        }
        _ => verify_data_root(proof, data, &options.policy)
            .map(|()| LeafKind::DataRoot)
            .map_err(|e| e.to_string()),
    }
}

fn data_statement(s: &BatchStatement) -> poe_circle_stark::air::DataRootStatement {
    poe_circle_stark::air::DataRootStatement {
        n_records: s.n_ops,
        record_limbs: OP_LIMBS as u32,
        root: s.data_root,
    }
}

/// Rollup proofs and leaf proofs: present, named by their digest, and every leaf proof stating
/// exactly its batch; with `--leaves`, every STARK among them verified.
fn check_rollup_proofs(
    a: &mut Auditor<'_>,
    rows: &[StatementRow],
    stmts: &[BatchStatement],
    options: &AuditOptions,
) {
    let leaves = options.leaves;
    let mut problems = Vec::new();
    let mut verified = 0usize;
    let mut leaf_kinds = [0usize; 2];
    for (r, s) in rows.iter().zip(stmts) {
        let path = format!("rollup-proofs/{}", r.rollup_proof_digest);
        match a.read(&path) {
            Ok(bytes) => {
                if rollup_proof_digest(&bytes) != r.rollup_proof_digest {
                    problems.push(format!(
                        "{path}: keccak-256 differs from its name (batch seq {})",
                        r.seq
                    ));
                } else if leaves && r.rollup_proof_system == "poe-circle-stark/v1" {
                    match verify_data_root_bytes(&bytes, &data_statement(s), &options.policy) {
                        Ok(()) => verified += 1,
                        Err(e) => problems.push(format!("{path} (batch seq {}): {e}", r.seq)),
                    }
                }
            }
            Err(e) => problems.push(e),
        }
        if let Some(d) = &r.leaf_proof_digest {
            let path = format!("leaf-proofs/{d}");
            match a.read(&path) {
                Ok(bytes) if sha3_hex(&bytes) == *d => {
                    // A leaf proof is a batch-validity proof, or — where the prover did not
                    // hold the venue state — a data-root proof of the batch's operation
                    // records (specs/day-proof.md §4). Its statement is always checked
                    // (cheap); its STARK with --leaves, or by `state-roots` where needed.
                    match verify_leaf(&bytes, s, &data_statement(s), options, leaves) {
                        Ok(kind) => leaf_kinds[usize::from(kind == LeafKind::DataRoot)] += 1,
                        Err(e) => problems.push(format!("{path} (batch seq {}): {e}", r.seq)),
                    }
                }
                Ok(_) => problems.push(format!("{path}: sha3-256 differs from its name")),
                Err(e) => problems.push(e),
            }
        }
    }
    if problems.is_empty() {
        let n_leaves = leaf_kinds[0] + leaf_kinds[1];
        let extra = if leaves {
            format!(
                "; {n_leaves} leaf proofs ({} batch-validity, {} data-root) and {verified} poe-circle-stark/v1 rollup proofs verified",
                leaf_kinds[0], leaf_kinds[1]
            )
        } else {
            format!(
                "; {n_leaves} leaf proofs ({} batch-validity, {} data-root) state their batch",
                leaf_kinds[0], leaf_kinds[1]
            )
        };
        a.pass(
            CheckKind::ProofFiles,
            format!("{} rollup proof digests match{extra}", rows.len()),
        );
    } else {
        a.fail(CheckKind::ProofFiles, problems.join("; "));
    }
}

/// Every state root of the day proven by something (`specs/archive.md` §6): the root proof
/// proves each segment's first pre- and last post-state root; a root between two batches
/// of one segment needs the earlier batch's batch-validity leaf proof, verified here whatever
/// the options (with its pre-state root proven, by induction along the segment, it proves
/// the post-state root the batch statement publishes and `/v1/batches/{id}/inclusion` serves).
fn check_state_roots(
    a: &mut Auditor<'_>,
    rows: &[StatementRow],
    stmts: &[BatchStatement],
    proven: &RootsProven,
    options: &AuditOptions,
) {
    let (segments, needed): (usize, Vec<usize>) = match proven {
        RootsProven::Nothing => {
            a.fail(
                CheckKind::StateRoots,
                "not checked: the root proof did not verify (see root-proof)",
            );
            return;
        }
        RootsProven::V1 => (0, (0..stmts.len()).collect()),
        RootsProven::Segments { segments, interior } => (*segments, interior.clone()),
    };
    let mut problems = Vec::new();
    let mut by_leaf = 0usize;
    let mut unproven = 0usize;
    for &i in &needed {
        let (r, s) = (&rows[i], &stmts[i]);
        let at = format!(
            "batch seq {} of {} (post-state root {})",
            s.seq, r.rollup, s.post_state_root
        );
        let leaf = r.leaf_proof_digest.as_ref().map(|d| {
            let path = format!("leaf-proofs/{d}");
            a.read(&path).and_then(|bytes| {
                if sha3_hex(&bytes) == *d {
                    verify_leaf(&bytes, s, &data_statement(s), options, true)
                        .map_err(|e| format!("{path}: {e}"))
                } else {
                    Err(format!("{path}: sha3-256 differs from its name"))
                }
            })
        });
        match (leaf, proven) {
            (Some(Ok(LeafKind::Validity)), _) => by_leaf += 1,
            // v1 days (before V2_REQUIRED_FROM_DAY) were published with data-root leaves: their
            // roots were never proven, which the line says instead of failing the archive.
            (None | Some(Ok(LeafKind::DataRoot)), RootsProven::V1) => unproven += 1,
            (None, _) => problems.push(format!(
                "{at}: lies inside a segment and has no leaf proof; nothing proves it"
            )),
            (Some(Ok(LeafKind::DataRoot)), _) => problems.push(format!(
                "{at}: lies inside a segment and its leaf proof is a data-root proof, which does not prove state roots"
            )),
            (Some(Err(e)), _) => problems.push(format!("{at}: {e}")),
        }
    }
    if !problems.is_empty() {
        a.fail(CheckKind::StateRoots, problems.join("; "));
        return;
    }
    let n_roots = stmts.len() + rollup_starts(stmts);
    match proven {
        RootsProven::V1 => a.pass(
            CheckKind::StateRoots,
            format!(
                "v1 root proof: of {} post-state roots, {by_leaf} proven by batch-validity leaf proofs, {unproven} stated but not proven (days before {})",
                stmts.len(),
                Day(V2_REQUIRED_FROM_DAY)
            ),
        ),
        _ => a.pass(
            CheckKind::StateRoots,
            format!(
                "all {n_roots} state roots proven: {} by the {segments} segment proofs (each segment's first pre- and last post-state root), {by_leaf} between batches by batch-validity leaf proofs",
                n_roots - by_leaf
            ),
        ),
    }
}

/// Distinct state roots of a day: every batch's post-state root plus one pre-state root per
/// rollup (the batch statements chain the rest).
fn rollup_starts(stmts: &[BatchStatement]) -> usize {
    stmts
        .iter()
        .enumerate()
        .filter(|(i, s)| *i == 0 || stmts[i - 1].rollup_id != s.rollup_id)
        .count()
}

#[cfg(test)]
mod tests {
    use poe_circle_stark::config::{SecurityConfig, VerifierPolicy};
    use poe_circle_stark::prover::prove_validity;
    use poe_circle_stark::venue::{sample, Operation};

    use super::*;

    fn statement(
        seq: u64,
        ops: &[Operation],
        venue: &poe_circle_stark::venue::Venue,
    ) -> BatchStatement {
        let records: Vec<_> = ops.iter().flat_map(Operation::encode).collect();
        let mut after = venue.clone();
        let effect = after.apply_batch(ops).unwrap();
        BatchStatement {
            rollup_id: 1,
            seq,
            pre_state_root: effect.pre_state_root,
            post_state_root: effect.post_state_root,
            data_root: poe_circle_stark::merkle::data_root(&records, OP_LIMBS),
            instruments_root: poe_circle_stark::venue::instruments_root(venue.instruments()),
            n_ops: ops.len() as u32,
        }
    }

    #[test]
    fn validity_leaf_from_another_pre_state_is_rejected() {
        let (venue, ops) = sample::batch(64, 6, 5, 1_800_000_000_000_000, 10);
        let (first, second) = ops.split_at(32);
        let options = AuditOptions {
            proof_only: false,
            leaves: true,
            policy: VerifierPolicy::insecure_for_tests(),
        };
        let prove = |v: &poe_circle_stark::venue::Venue, ops: &[Operation]| {
            prove_validity(v, ops, SecurityConfig::testing())
                .unwrap()
                .1
                .to_bytes()
        };
        let mut after_first = venue.clone();
        after_first.apply_batch(first).unwrap();
        let leaf1 = prove(&venue, first);
        let honest2 = prove(&after_first, second);
        // The second batch proven from a state in which an account it touches had one more
        // unit of cash: a valid proof on its own, but not of this rollup's history.
        let touched = match second[0] {
            Operation::Trade { buyer, .. } => buyer,
            Operation::Deposit { account, .. } | Operation::Withdraw { account, .. } => account,
            Operation::Settle { .. } => unreachable!(),
        };
        let mut richer = after_first.clone();
        richer
            .apply_batch(&[Operation::Deposit {
                account: touched,
                amount: 1,
                timestamp_us: second[0].timestamp_us(),
            }])
            .unwrap();
        let forged2 = prove(&richer, second);

        let (s1, s2) = (
            statement(1, first, &venue),
            statement(2, second, &after_first),
        );
        assert_eq!(
            verify_leaf(&leaf1, &s1, &data_statement(&s1), &options, true),
            Ok(LeafKind::Validity)
        );
        assert_eq!(
            verify_leaf(&honest2, &s2, &data_statement(&s2), &options, true),
            Ok(LeafKind::Validity)
        );
        let err = verify_leaf(&forged2, &s2, &data_statement(&s2), &options, true).unwrap_err();
        assert!(err.contains("pre-state root is"), "{err}");
        // The first batch's proof offered for the second.
        let err = verify_leaf(&leaf1, &s2, &data_statement(&s2), &options, false).unwrap_err();
        assert!(err.contains("other batches"), "{err}");
    }
}
