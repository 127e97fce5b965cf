//! Writing a day's bundle (`specs/archive.md` §2): data files, then the manifest, then the root
//! proof over the manifest's hash, all staged and published at once.

use poe_circle_stark::config::SecurityConfig;
use poe_circle_stark::day::statement::{BatchStatement, DayStatement};
use poe_circle_stark::hash::merkle::data_root;
use poe_circle_stark::venue::{instruments_root, Operation, OptionKind, OP_LIMBS};
use sha3::{Digest as _, Keccak256};

use crate::day::Day;
use crate::error::ArchiveError;
use crate::layout;
use crate::manifest::{
    sha3_hex, FileEntry, InstrumentEntry, Manifest, RollupEntry, Schemas, StatementJson,
    VerifierParams, BUNDLE_FORMAT,
};
use crate::parquet_io;
use crate::records::{
    data_roots_value, statements_batch, trades_batch, NamedInstrument, RowKey, StatementRow,
    TradeRow, STATEMENTS_SCHEMA_VERSION, TRADES_METADATA_KEYS, TRADES_SCHEMA_VERSION,
};
use crate::storage::Storage;

/// Rows per trades file.
pub const PART_ROWS: usize = 1 << 20;

/// A rollup as of the day.
#[derive(Debug, Clone)]
pub struct RollupInfo {
    /// Registry id.
    pub id: u32,
    /// Name; `[A-Za-z0-9._-]` only, as it names a directory.
    pub name: String,
    /// Native commitment scheme name.
    pub native_scheme: String,
    /// The rollup's Stark ECDSA public key (x coordinate, big-endian), as registered.
    pub public_key: [u8; 32],
    /// Instruments by index.
    pub instruments: Vec<NamedInstrument>,
}

/// One operation with the venue's id for it.
#[derive(Debug, Clone)]
pub struct ArchivedOp {
    /// Venue id (trade id or transfer id).
    pub venue_trade_id: String,
    /// The operation.
    pub op: Operation,
}

/// One accepted batch.
#[derive(Debug, Clone)]
pub struct BatchInput {
    /// What its proof states.
    pub statement: BatchStatement,
    /// SHA3-256 batch id.
    pub batch_id: [u8; 32],
    /// Acceptance time, µs.
    pub accepted_us: u64,
    /// The rollup's native commitment.
    pub native_commitment: [u8; 32],
    /// The rollup's proof system label.
    pub rollup_proof_system: String,
    /// The signed header's verification-key id, if the rollup gave one.
    pub rollup_vk_id: Option<String>,
    /// The rollup's signature `(r, s)` over the header, as received (big-endian).
    pub signature: ([u8; 32], [u8; 32]),
    /// The rollup's proof bytes as sent.
    pub rollup_proof: Vec<u8>,
    /// poe's leaf proof, once proven.
    pub leaf_proof: Option<Vec<u8>>,
    /// Operations in batch order.
    pub ops: Vec<ArchivedOp>,
}

/// Everything a day's bundle is made of.
#[derive(Debug, Clone)]
pub struct DayInput {
    /// The day.
    pub day: Day,
    /// Rollups with batches that day, by id.
    pub rollups: Vec<RollupInfo>,
    /// Batches in day-tree order: by rollup id, then seq.
    pub batches: Vec<BatchInput>,
    /// Parameters the root proof is made with (recorded in the manifest).
    pub root_config: SecurityConfig,
    /// Whether the root proof is v4, one recursive proof (its presets
    /// `RecursionPresets::for_root(root_config)`): the manifest's verifier section then names
    /// its final node.
    pub recursive: bool,
    /// Whether the bundle carries the batches' leaf proofs. A v5 root proves every state
    /// root of the day itself, so the audit needs none (`specs/archive.md` §6); an operator
    /// may keep them for auditors who want each batch's own proof. Written where the batch
    /// has one either way: this is the closer's instruction, not a format flag.
    pub leaf_proofs: bool,
}

impl DayInput {
    /// The manifest's verifier section: the parameters of the proof the auditor verifies.
    pub fn verifier(&self) -> VerifierParams {
        if self.recursive {
            let presets =
                poe_circle_stark::day::recursive::RecursionPresets::for_root(self.root_config);
            VerifierParams::recursive(
                poe_circle_stark::day::recursive::RecursiveFormat::CURRENT,
                &presets.last,
            )
        } else {
            VerifierParams::day_root(&self.root_config)
        }
    }
}

/// What a root prover gives the bundle: `root.proof`, and for a v4 root `root.samples`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootFiles {
    /// `root.proof`.
    pub root: Vec<u8>,
    /// `root.samples` (v4 roots only).
    pub samples: Option<Vec<u8>>,
}

impl RootFiles {
    /// A root proof without samples (v1–v3).
    pub fn root(root: Vec<u8>) -> Self {
        Self {
            root,
            samples: None,
        }
    }
}

/// What was written.
#[derive(Debug, Clone)]
pub struct BundleSummary {
    /// `days/YYYY-MM-DD`.
    pub prefix: String,
    /// The day statement.
    pub statement: StatementJson,
    /// Files and sizes.
    pub files: Vec<FileEntry>,
    /// False if the day was already archived and left as it was.
    pub written: bool,
}

/// Where a day's bundle lives under the archive root ([`crate::layout::day_dir`]).
pub fn day_prefix(day: Day) -> String {
    crate::layout::day_dir(day)
}

fn staging_prefix(day: Day) -> String {
    crate::layout::staging_dir(day)
}

/// Keccak-256 of a rollup proof, hex: the digest the signed header carries.
pub fn rollup_proof_digest(bytes: &[u8]) -> String {
    hex::encode(Keccak256::digest(bytes))
}

fn path_safe(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !name.starts_with('.')
}

fn instrument_entries(instruments: &[NamedInstrument]) -> Vec<InstrumentEntry> {
    instruments
        .iter()
        .map(|n| InstrumentEntry {
            name: n.name.clone(),
            underlying: n.instrument.underlying,
            expiry_us: n.instrument.expiry_us,
            strike: n.instrument.strike,
            kind: match n.instrument.kind {
                OptionKind::Call => "call",
                OptionKind::Put => "put",
            }
            .into(),
            collateral: n.instrument.collateral,
        })
        .collect()
}

/// Checks the input is a consistent day before anything is written: canonical order and
/// chaining, known rollups, and every statement's `n_ops`, data root and instruments root
/// matching what it carries.
fn check_input(input: &DayInput) -> Result<(), ArchiveError> {
    let statements: Vec<BatchStatement> = input.batches.iter().map(|b| b.statement).collect();
    DayStatement::derive(input.day.0, &statements, [0; 32])?;
    if !input.rollups.windows(2).all(|w| w[0].id < w[1].id) {
        return Err(ArchiveError::Value("rollups must be sorted by id".into()));
    }
    for r in &input.rollups {
        if !path_safe(&r.name) {
            return Err(ArchiveError::Value(format!(
                "rollup name {:?} cannot name a directory",
                r.name
            )));
        }
    }
    for b in &input.batches {
        let s = &b.statement;
        let at = format!("rollup {} seq {}", s.rollup_id, s.seq);
        let r = input
            .rollups
            .iter()
            .find(|r| r.id == s.rollup_id)
            .ok_or_else(|| ArchiveError::Value(format!("{at}: rollup not listed")))?;
        let terms: Vec<_> = r.instruments.iter().map(|n| n.instrument.clone()).collect();
        if instruments_root(&terms) != s.instruments_root {
            return Err(ArchiveError::Value(format!(
                "{at}: instruments root differs from the rollup's table"
            )));
        }
        if s.n_ops as usize != b.ops.len() {
            return Err(ArchiveError::Value(format!(
                "{at}: statement says {} ops, batch has {}",
                s.n_ops,
                b.ops.len()
            )));
        }
        let records: Vec<_> = b.ops.iter().flat_map(|o| o.op.encode()).collect();
        if data_root(&records, OP_LIMBS) != s.data_root {
            return Err(ArchiveError::Value(format!(
                "{at}: data root differs from its operations"
            )));
        }
    }
    Ok(())
}

/// Progress of [`write_day`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// Trade rows written so far, of the day's total.
    Trades {
        /// Rows written.
        done: u64,
        /// Rows in the day.
        total: u64,
    },
    /// The manifest is written; the root proof is being made.
    ProvingRoot,
    /// A step of the root proof done (a recursive root's segments, W nodes, each M node, the
    /// final node), as its prover words it.
    RootStep(String),
    /// Published.
    Done,
}

/// Writes the bundle of `input.day` under `days/YYYY-MM-DD/`, calling `prove_root` with the
/// day's statements and the manifest hash to make `root.proof`.
///
/// Idempotent: a day already published is left as it is (`written: false`). A crash leaves at
/// most a staging directory, which the next run discards; the published name appears only
/// once every file is durable. The same input always gives the same bytes.
///
/// # Errors
/// [`ArchiveError`] for an inconsistent input, storage failures or a failed root proof.
pub fn write_day(
    storage: &dyn Storage,
    input: &DayInput,
    prove_root: impl FnOnce(&[BatchStatement], [u8; 32]) -> Result<RootFiles, String>,
    progress: &mut dyn FnMut(Stage),
) -> Result<BundleSummary, ArchiveError> {
    let prefix = day_prefix(input.day);
    if storage.exists(&format!("{prefix}/statement.json")) {
        let read = |p: &str| {
            storage
                .read(&format!("{prefix}/{p}"))
                .map_err(|e| ArchiveError::io(format!("{prefix}/{p}"), e))
        };
        let statement: StatementJson = serde_json::from_slice(&read(layout::STATEMENT_JSON)?)
            .map_err(|e| ArchiveError::Manifest(format!("statement.json: {e}")))?;
        let manifest = Manifest::from_bytes(&read(layout::MANIFEST_JSON)?)?;
        return Ok(BundleSummary {
            prefix,
            statement,
            files: manifest.files,
            written: false,
        });
    }
    check_input(input)?;
    let staging = staging_prefix(input.day);
    storage
        .remove(&staging)
        .map_err(|e| ArchiveError::io(&staging, e))?;
    let mut files = Vec::new();
    let mut put = |path: String, bytes: &[u8]| -> Result<(), ArchiveError> {
        storage
            .write(&format!("{staging}/{path}"), bytes)
            .map_err(|e| ArchiveError::io(&path, e))?;
        files.push(FileEntry {
            path,
            bytes: bytes.len() as u64,
            sha3_256: sha3_hex(bytes),
        });
        Ok(())
    };
    let day_str = input.day.to_string();
    let total: u64 = input.batches.iter().map(|b| b.ops.len() as u64).sum();
    let mut done = 0u64;

    for rollup in &input.rollups {
        let batches: Vec<&BatchInput> = input
            .batches
            .iter()
            .filter(|b| b.statement.rollup_id == rollup.id)
            .collect();
        let mut rows: Vec<TradeRow> = Vec::new();
        let mut roots: Vec<(u64, poe_circle_stark::hash::poseidon2::Digest)> = Vec::new();
        let mut part = 0usize;
        let mut flush = |rows: &mut Vec<TradeRow>,
                         roots: &mut Vec<(u64, poe_circle_stark::hash::poseidon2::Digest)>,
                         part: &mut usize|
         -> Result<(), ArchiveError> {
            if rows.is_empty() {
                return Ok(());
            }
            let batch = trades_batch(rows)?;
            let values = [
                TRADES_SCHEMA_VERSION.to_string(),
                day_str.clone(),
                rollup.name.clone(),
                rollup.id.to_string(),
                data_roots_value(roots),
            ];
            let meta = TRADES_METADATA_KEYS
                .iter()
                .map(|k| (*k).to_string())
                .zip(values)
                .collect();
            let bytes = parquet_io::write(&batch, meta)?;
            put(
                format!(
                    "{}/part-{:04}.parquet",
                    layout::trades_dir(&rollup.name),
                    *part
                ),
                &bytes,
            )?;
            *part += 1;
            rows.clear();
            roots.clear();
            Ok(())
        };
        for b in batches {
            let s = &b.statement;
            roots.push((s.seq, s.data_root));
            for (i, op) in b.ops.iter().enumerate() {
                let key = RowKey {
                    day: input.day.0,
                    rollup: &rollup.name,
                    rollup_id: rollup.id,
                    batch_seq: s.seq,
                    op_index: i as u32,
                    venue_trade_id: &op.venue_trade_id,
                };
                rows.push(
                    TradeRow::new(&key, &op.op, &rollup.instruments).ok_or_else(|| {
                        ArchiveError::Value(format!(
                            "rollup {} seq {} op {i}: unknown instrument",
                            rollup.id, s.seq
                        ))
                    })?,
                );
                if rows.len() == PART_ROWS {
                    done += rows.len() as u64;
                    flush(&mut rows, &mut roots, &mut part)?;
                    progress(Stage::Trades { done, total });
                }
            }
        }
        done += rows.len() as u64;
        flush(&mut rows, &mut roots, &mut part)?;
        progress(Stage::Trades { done, total });
    }

    let mut seen = std::collections::BTreeSet::new();
    let mut statement_rows = Vec::with_capacity(input.batches.len());
    for (leaf_index, b) in input.batches.iter().enumerate() {
        let s = &b.statement;
        let rollup = input
            .rollups
            .iter()
            .find(|r| r.id == s.rollup_id)
            .expect("checked");
        let proof_digest = rollup_proof_digest(&b.rollup_proof);
        if seen.insert(format!("r{proof_digest}")) {
            put(format!("rollup-proofs/{proof_digest}"), &b.rollup_proof)?;
        }
        let leaf_digest = b.leaf_proof.as_ref().map(|p| sha3_hex(p));
        if let (Some(d), Some(p)) = (&leaf_digest, &b.leaf_proof) {
            if seen.insert(format!("l{d}")) {
                put(format!("leaf-proofs/{d}"), p)?;
            }
        }
        statement_rows.push(StatementRow {
            day: input.day.0 as i32,
            leaf_index: leaf_index as u32,
            rollup: rollup.name.clone(),
            rollup_id: s.rollup_id,
            seq: s.seq,
            batch_id: hex::encode(b.batch_id),
            accepted_at: b.accepted_us as i64,
            pre_state_root: s.pre_state_root.to_hex(),
            post_state_root: s.post_state_root.to_hex(),
            data_root: s.data_root.to_hex(),
            instruments_root: s.instruments_root.to_hex(),
            n_ops: s.n_ops,
            native_scheme: rollup.native_scheme.clone(),
            native_commitment: hex::encode(b.native_commitment),
            rollup_proof_system: b.rollup_proof_system.clone(),
            rollup_proof_digest: proof_digest,
            leaf_proof_digest: leaf_digest,
            rollup_vk_id: b.rollup_vk_id.clone(),
            signature: Some((hex::encode(b.signature.0), hex::encode(b.signature.1))),
        });
    }
    let statements_file = parquet_io::write(
        &statements_batch(&statement_rows)?,
        vec![
            (
                "poe.schema_version".into(),
                STATEMENTS_SCHEMA_VERSION.to_string(),
            ),
            ("poe.day".into(), day_str.clone()),
        ],
    )?;
    put(layout::STATEMENTS_PARQUET.into(), &statements_file)?;

    files.sort_by(|a, b| a.path.cmp(&b.path));
    let manifest = Manifest {
        format: BUNDLE_FORMAT.into(),
        day: day_str.clone(),
        poe_version: env!("CARGO_PKG_VERSION").into(),
        schemas: Schemas {
            trades: TRADES_SCHEMA_VERSION,
            statements: STATEMENTS_SCHEMA_VERSION,
        },
        verifier: input.verifier(),
        rollups: input
            .rollups
            .iter()
            .map(|r| {
                let terms: Vec<_> = r.instruments.iter().map(|n| n.instrument.clone()).collect();
                RollupEntry {
                    id: r.id,
                    name: r.name.clone(),
                    native_scheme: r.native_scheme.clone(),
                    public_key: Some(hex::encode(r.public_key)),
                    instruments_root: instruments_root(&terms).to_hex(),
                    instruments: instrument_entries(&r.instruments),
                }
            })
            .collect(),
        files: files.clone(),
    };
    let manifest_bytes = manifest.to_bytes();
    let manifest_hash: [u8; 32] = sha3::Sha3_256::digest(&manifest_bytes).into();
    let write_staged = |path: &str, bytes: &[u8]| {
        storage
            .write(&format!("{staging}/{path}"), bytes)
            .map_err(|e| ArchiveError::io(path, e))
    };
    write_staged(layout::MANIFEST_JSON, &manifest_bytes)?;

    progress(Stage::ProvingRoot);
    let statements: Vec<BatchStatement> = input.batches.iter().map(|b| b.statement).collect();
    let root = prove_root(&statements, manifest_hash).map_err(ArchiveError::Prove)?;
    write_staged(layout::ROOT_PROOF, &root.root)?;
    if let Some(samples) = &root.samples {
        write_staged(layout::ROOT_SAMPLES, samples)?;
    }
    let day_statement = DayStatement::derive(input.day.0, &statements, manifest_hash)?;
    let statement = StatementJson::new(
        &day_str,
        &day_statement,
        Some(&statements),
        &root.root,
        root.samples.as_deref(),
    );
    // statement.json last: its presence is what marks a bundle complete.
    write_staged(layout::STATEMENT_JSON, &statement.to_bytes())?;
    storage
        .publish(&staging, &prefix)
        .map_err(|e| ArchiveError::io(&prefix, e))?;
    progress(Stage::Done);
    Ok(BundleSummary {
        prefix,
        statement,
        files,
        written: true,
    })
}
