//! `manifest.json` and `statement.json` (`specs/archive.md` §3).

use poe_circle_stark::config::SecurityConfig;
use poe_circle_stark::day::statement::{BatchStatement, DayStatement};
use serde::{Deserialize, Serialize};
use sha3::{Digest as _, Sha3_256};

use crate::error::ArchiveError;

/// The bundle format this build writes and reads.
pub const BUNDLE_FORMAT: &str = "poe-bundle/v1";

/// Lists every data file of a bundle with its size and hash. Its SHA3-256 is bound into the
/// root proof's public input, so editing any listed file means editing the manifest, which
/// means the root proof no longer verifies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`BUNDLE_FORMAT`].
    pub format: String,
    /// `YYYY-MM-DD`.
    pub day: String,
    /// poe version that wrote the bundle.
    pub poe_version: String,
    /// Table layout versions.
    pub schemas: Schemas,
    /// How to verify `root.proof`.
    pub verifier: VerifierParams,
    /// Rollups that submitted that day, by id, with their instrument tables.
    pub rollups: Vec<RollupEntry>,
    /// Every data file, sorted by path.
    pub files: Vec<FileEntry>,
}

/// Table layout versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schemas {
    /// `trades/**.parquet`.
    pub trades: u32,
    /// `statements.parquet`.
    pub statements: u32,
}

/// The root proof's verification parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifierParams {
    /// AIR name, `poe/day-root/v1`.
    pub air: String,
    /// Proof format version.
    pub proof_format: u16,
    /// log2 blowup.
    pub log_blowup: u32,
    /// FRI queries.
    pub n_queries: u32,
    /// Grinding bits.
    pub pow_bits: u32,
    /// Conjectured security bits.
    pub security_bits: u32,
}

impl VerifierParams {
    /// Parameters of a recursive root (v4 or v5) whose final node is proven under `last`.
    pub fn recursive(
        format: poe_circle_stark::day::recursive::RecursiveFormat,
        last: &SecurityConfig,
    ) -> Self {
        Self {
            air: format.air_name().into(),
            proof_format: poe_circle_stark::proof::ChannelId::Poseidon2.format_version(),
            log_blowup: last.log_blowup(),
            n_queries: last.n_queries(),
            pow_bits: last.pow_bits(),
            security_bits: last.security_bits(),
        }
    }

    /// Parameters of a day proof made under `config`.
    pub fn day_root(config: &SecurityConfig) -> Self {
        Self {
            air: poe_circle_stark::proof::AirId::DayRoot.name().into(),
            proof_format: poe_circle_stark::proof::ChannelId::Blake2s.format_version(),
            log_blowup: config.log_blowup(),
            n_queries: config.n_queries(),
            pow_bits: config.pow_bits(),
            security_bits: config.security_bits(),
        }
    }
}

/// A rollup and its instruments as of that day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollupEntry {
    /// Registry id.
    pub id: u32,
    /// Name (also the `trades/rollup=<name>` partition).
    pub name: String,
    /// Native commitment scheme.
    pub native_scheme: String,
    /// The rollup's Stark ECDSA public key, 64 lowercase hex digits (bundles from 2026-12-02;
    /// absent before). Compare it with the key the rollup publishes: the audit checks every
    /// batch's signature against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// Poseidon2-M31 root of the instrument table, hex.
    pub instruments_root: String,
    /// Instruments by index.
    pub instruments: Vec<InstrumentEntry>,
}

/// One instrument's terms, per lot, in the venue's integer units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentEntry {
    /// Venue name.
    pub name: String,
    /// Underlying code.
    pub underlying: u32,
    /// Expiry, µs since the epoch.
    pub expiry_us: u64,
    /// Strike per lot, 10^-6 quote units.
    pub strike: u64,
    /// `call` or `put`.
    pub kind: String,
    /// Collateral per short lot.
    pub collateral: u64,
}

/// One file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Path relative to the day directory.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA3-256, lowercase hex.
    pub sha3_256: String,
}

/// SHA3-256 as lowercase hex.
pub fn sha3_hex(bytes: &[u8]) -> String {
    hex::encode(Sha3_256::digest(bytes))
}

impl Manifest {
    /// The canonical bytes: pretty JSON in field order, trailing newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("plain data serialises");
        out.push(b'\n');
        out
    }

    /// Parses manifest bytes.
    ///
    /// # Errors
    /// [`ArchiveError::Manifest`] for bad JSON, unknown fields or an unknown format.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ArchiveError> {
        let m: Self =
            serde_json::from_slice(bytes).map_err(|e| ArchiveError::Manifest(e.to_string()))?;
        if m.format != BUNDLE_FORMAT {
            return Err(ArchiveError::Manifest(format!(
                "format {:?}, expected {BUNDLE_FORMAT:?}",
                m.format
            )));
        }
        Ok(m)
    }
}

/// `statement.json`: the day statement in readable form, for people and the API. The auditor
/// derives its own and compares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementJson {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// AIR of `root.proof`.
    pub air: String,
    /// Day root, hex.
    pub day_root: String,
    /// Batches.
    pub n_batches: u32,
    /// Operations.
    pub n_ops: u64,
    /// SHA3-256 of `manifest.json`.
    pub manifest_sha3_256: String,
    /// Per-rollup spans.
    pub rollups: Vec<SpanJson>,
    /// SHA3-256 of `root.proof`.
    pub root_proof_sha3_256: String,
    /// Size of `root.proof`.
    pub root_proof_bytes: u64,
    /// The segment proofs of a v2 or v3 root proof (absent in v1 and v4 bundles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity: Option<ValidityJson>,
    /// The tree of a v4 root proof (absent before v4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<TreeJson>,
    /// SHA3-256 of `root.samples`, the proofs a v4 root's keys are derived from (v4 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_samples_sha3_256: Option<String>,
    /// Size of `root.samples` (v4 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_samples_bytes: Option<u64>,
}

/// The tree of a v4 root proof (`specs/day-proof.md` §6): its leaves are the segments, each
/// verified by a W node; M nodes pair them up; the final node is `root.proof`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeJson {
    /// log2 of every node's gate rows.
    pub log_rows: u32,
    /// log2 of every node's permutation rows.
    pub log_perm_rows: u32,
    /// `segments LB/Q/POW, nodes …, final …`.
    pub presets: String,
    /// The weakest of the three presets' conjectured bits: the root's.
    pub security_bits: u32,
    /// W nodes (one per segment).
    pub w_nodes: u32,
    /// M nodes (one fewer than the leaves).
    pub m_nodes: u32,
    /// The segments, in order.
    pub segments: Vec<TreeSegmentJson>,
}

/// One segment of a v4 root proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeSegmentJson {
    /// Registry id.
    pub rollup_id: u32,
    /// First batch covered.
    pub first_seq: u64,
    /// Last batch covered.
    pub last_seq: u64,
    /// Operations covered.
    pub n_ops: u64,
    /// The shape class its proof was padded to (`o18s15`).
    pub class: String,
}

/// What a v2 root proof's segments cover (`specs/day-proof.md` §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidityJson {
    /// Most operations one segment proof covers; a rollup's day beyond it is split into
    /// chained segments.
    pub segment_capacity_ops: u64,
    /// The segments, in order.
    pub segments: Vec<SegmentJson>,
}

/// One segment proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentJson {
    /// Registry id.
    pub rollup_id: u32,
    /// First batch covered.
    pub first_seq: u64,
    /// Last batch covered.
    pub last_seq: u64,
    /// Operations covered.
    pub n_ops: u64,
    /// Bytes of the segment's proof.
    pub proof_bytes: u64,
}

/// A rollup's span of the day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpanJson {
    /// Registry id.
    pub rollup_id: u32,
    /// First seq.
    pub first_seq: u64,
    /// Last seq.
    pub last_seq: u64,
    /// State root before the first batch.
    pub first_pre_state_root: String,
    /// State root after the last batch.
    pub last_post_state_root: String,
}

impl StatementJson {
    /// The readable form of `s` with the root proof's hash and size (and, for v4, its
    /// samples'); `batches` (the day's statements, canonical order) give each segment's
    /// operations.
    pub fn new(
        day: &str,
        s: &DayStatement,
        batches: Option<&[BatchStatement]>,
        root_proof: &[u8],
        samples: Option<&[u8]>,
    ) -> Self {
        use poe_circle_stark::day::recursive::RecursiveRoot;
        use poe_circle_stark::day::root::{RootProof, SEGMENT_CAPACITY_OPS};
        let root = RootProof::from_bytes(root_proof).ok();
        let recursive = RecursiveRoot::from_bytes(root_proof).ok();
        let covered = |rollup_id: u32, first_seq: u64, last_seq: u64| -> u64 {
            batches.map_or(0, |b| {
                b.iter()
                    .filter(|b| b.rollup_id == rollup_id && (first_seq..=last_seq).contains(&b.seq))
                    .map(|b| u64::from(b.n_ops))
                    .sum()
            })
        };
        let tree = recursive.as_ref().map(|r| {
            let p = r.presets();
            TreeJson {
                log_rows: r.shape.0,
                log_perm_rows: r.shape.1,
                presets: p.name(),
                security_bits: [p.segment, p.node, p.last]
                    .iter()
                    .map(|c| c.security_bits())
                    .min()
                    .unwrap_or(0),
                w_nodes: r.segments.len() as u32,
                m_nodes: r.segments.len().saturating_sub(1) as u32,
                segments: r
                    .segments
                    .iter()
                    .map(|g| TreeSegmentJson {
                        rollup_id: g.rollup_id,
                        first_seq: g.first_seq,
                        last_seq: g.last_seq,
                        n_ops: covered(g.rollup_id, g.first_seq, g.last_seq),
                        class: g.class.name(),
                    })
                    .collect(),
            }
        });
        let validity = root.as_ref().map(|r| ValidityJson {
            segment_capacity_ops: SEGMENT_CAPACITY_OPS as u64,
            segments: r
                .segments
                .iter()
                .map(|g| SegmentJson {
                    rollup_id: g.rollup_id,
                    first_seq: g.first_seq,
                    last_seq: g.last_seq,
                    n_ops: covered(g.rollup_id, g.first_seq, g.last_seq),
                    proof_bytes: g.proof.to_bytes().len() as u64,
                })
                .collect(),
        });
        Self {
            day: day.to_string(),
            air: if let Some(r) = &root {
                r.format.name().into()
            } else if let Some(r) = &recursive {
                r.format.air_name().into()
            } else {
                poe_circle_stark::proof::AirId::DayRoot.name().into()
            },
            validity,
            tree,
            root_samples_sha3_256: samples.map(sha3_hex),
            root_samples_bytes: samples.map(|b| b.len() as u64),
            day_root: s.day_root.to_hex(),
            n_batches: s.n_batches,
            n_ops: s.n_ops,
            manifest_sha3_256: hex::encode(s.manifest_hash),
            rollups: s
                .rollups
                .iter()
                .map(|r| SpanJson {
                    rollup_id: r.rollup_id,
                    first_seq: r.first_seq,
                    last_seq: r.last_seq,
                    first_pre_state_root: r.first_pre_state_root.to_hex(),
                    last_post_state_root: r.last_post_state_root.to_hex(),
                })
                .collect(),
            root_proof_sha3_256: sha3_hex(root_proof),
            root_proof_bytes: root_proof.len() as u64,
        }
    }

    /// Canonical bytes (pretty JSON, trailing newline).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("plain data serialises");
        out.push(b'\n');
        out
    }
}
