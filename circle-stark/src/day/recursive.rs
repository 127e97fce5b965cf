//! The recursive daily root, `poe/day-root/v4` (`specs/day-proof.md` §6): one proof for the
//! day. Every segment of the day (a `poe/batch-validity/v3` proof in a shape class, under the
//! Poseidon2-M31 channel) is verified whole inside a W node; the W nodes are paired by M nodes
//! into one tree ([`crate::recursion::node::tree`]); the final node verifies the tree's root at
//! a high blowup and few queries and binds the day statement's digest. The file holds the tree
//! shape, the segment table and the final proof; the segment proofs and the tree's inner
//! proofs stay with the prover.
//!
//! An auditor derives the day and batch statements from the archive, checks the segment table
//! covers every batch in canonical order, rebuilds every segment's statement (batches and state
//! roots from the batch statements, instruments from the manifest, sizes from the class), the
//! tree over them, and the digest the final node must state — and verifies that one proof.
//! What it must trust are the circuits' verifying keys ([`RootKeys`]): a W key per class, the M
//! key and the final key for the tree shape.

use std::collections::BTreeMap;

use crate::config::{SecurityConfig, VerifierPolicy};
use crate::day::root::{
    all_covered, check_day_root, covered_by, read_count, read_proof, segment_statement,
    shaped_statement, RootCoverage,
};
use crate::day::statement::{BatchStatement, DayStatement};
use crate::error::VerifyError;
use crate::hash::poseidon2::Digest;
use crate::proof::{Proof, ProofFormatError, Reader};
use crate::recursion::node::gadgets::digest_values;
use crate::recursion::node::tree::{day_digest, NodeStatement};
use crate::recursion::node::wrap::statement_digest;
use crate::recursion::node::{verify_node, NodeKey};
use crate::validity::{ShapeClass, ValidityAir, ValidityStatement};
use crate::venue::{instruments_root, Instrument};

/// File magic of a v4 root proof.
pub const ROOT_V4_MAGIC: [u8; 8] = *b"POEROOT4";

/// Name of the v4 root proof in manifests, `statement.json` and logs.
pub const ROOT_V4_AIR_NAME: &str = "poe/day-root/v4";

/// First day (2026-12-14) whose root proof must be v4. Earlier days may carry a v1, v2 or v3
/// root (day tree, with segment proofs from v2: sound, but megabytes and a cost that grows with
/// the day); from this day on such a file is a refused downgrade. The date leaves a week after
/// v4 reached the pipeline (2026-12-07) for operators to upgrade.
pub const V4_REQUIRED_FROM_DAY: u32 = 20_801;

/// File magic of a v5 root proof.
pub const ROOT_V5_MAGIC: [u8; 8] = *b"POEROOT5";

/// Name of the v5 root proof.
pub const ROOT_V5_AIR_NAME: &str = "poe/day-root/v5";

/// First day (2026-12-21) whose root proof must be v5: a v4 root (segments that state their
/// run's first and last state root only, the roots between batches resting on leaf proofs)
/// is then a refused downgrade. A week after v5 reached the pipeline (2026-12-07), as for v4.
pub const V5_REQUIRED_FROM_DAY: u32 = 20_808;

/// The recursive root's versions: the file layout is one, the segments' AIR differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecursiveFormat {
    /// `poe/day-root/v4`: segments under `poe/batch-validity/v3`, stating their run's first
    /// pre- and last post-state root.
    V4,
    /// `poe/day-root/v5`: segments under `poe/batch-validity/v4`, one state-tree pair per
    /// batch: every state root of the day is proven by the root proof, no leaf proof needed.
    V5,
}

impl RecursiveFormat {
    /// What the pipeline proves now.
    pub const CURRENT: Self = Self::V5;

    /// The file magic.
    pub const fn magic(self) -> [u8; 8] {
        match self {
            Self::V4 => ROOT_V4_MAGIC,
            Self::V5 => ROOT_V5_MAGIC,
        }
    }

    /// The root's name in manifests, `statement.json` and logs.
    pub const fn air_name(self) -> &'static str {
        match self {
            Self::V4 => ROOT_V4_AIR_NAME,
            Self::V5 => ROOT_V5_AIR_NAME,
        }
    }

    /// The segments' batch-validity AIR.
    pub const fn segment_air(self) -> ValidityAir {
        match self {
            Self::V4 => ValidityAir::V3,
            Self::V5 => ValidityAir::V4,
        }
    }

    /// The format whose magic `bytes` start with.
    pub fn of(bytes: &[u8]) -> Option<Self> {
        [Self::V4, Self::V5]
            .into_iter()
            .find(|f| bytes.starts_with(&f.magic()))
    }

    /// `4` or `5`: the byte a key file records.
    const fn version(self) -> u8 {
        match self {
            Self::V4 => 4,
            Self::V5 => 5,
        }
    }
}

/// One segment of a v4 root: the batches it covers and the shape class it was proven in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentRef {
    /// Registry id of the rollup.
    pub rollup_id: u32,
    /// First batch covered.
    pub first_seq: u64,
    /// Last batch covered.
    pub last_seq: u64,
    /// The class its batch-validity proof (v3 in a v4 root, v4 in a v5 root) was padded to.
    pub class: ShapeClass,
}

/// A v4 or v5 root proof.
#[derive(Debug, Clone)]
pub struct RecursiveRoot {
    /// v4 or v5: the segments' AIR.
    pub format: RecursiveFormat,
    /// Every node of the tree: `(log2 gate rows, log2 permutations)`.
    pub shape: (u32, u32),
    /// The segments' security (what each W circuit verifies).
    pub segment_config: SecurityConfig,
    /// The W and M nodes' security (what the M and final circuits verify).
    pub node_config: SecurityConfig,
    /// The segments (the tree's leaves, in order): canonical order, by rollup then seq.
    pub segments: Vec<SegmentRef>,
    /// The final node's proof.
    pub last: Proof,
}

/// Header bytes of one segment entry: rollup id, two seqs, the class's two budgets.
const SEGMENT_BYTES: usize = 4 + 8 + 8 + 2;

impl RecursiveRoot {
    /// The presets its proofs were made under (the final node's from its proof).
    pub fn presets(&self) -> RecursionPresets {
        RecursionPresets {
            segment: self.segment_config,
            node: self.node_config,
            last: self.last.config,
        }
    }

    /// `POEROOT4` (v5: `POEROOT5`), `log_rows u32, log_perm_rows u32`, the segment and node configurations
    /// (`log_blowup, n_queries, pow_bits`, `u32` each), a `u32` segment count, per segment
    /// `rollup_id u32, first_seq u64, last_seq u64, log_ops u8, log_state u8`, then the final
    /// proof (`u32` length, bytes); little-endian, nothing after.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.format.magic().to_vec();
        out.extend(self.shape.0.to_le_bytes());
        out.extend(self.shape.1.to_le_bytes());
        for c in [self.segment_config, self.node_config] {
            write_config(&mut out, c);
        }
        out.extend((self.segments.len() as u32).to_le_bytes());
        for s in &self.segments {
            out.extend(s.rollup_id.to_le_bytes());
            out.extend(s.first_seq.to_le_bytes());
            out.extend(s.last_seq.to_le_bytes());
            out.push(s.class.log_ops as u8);
            out.push(s.class.log_state as u8);
        }
        write_proof(&mut out, &self.last);
        out
    }

    /// Inverse of [`Self::to_bytes`].
    ///
    /// # Errors
    /// [`ProofFormatError`] naming the first problem: another magic, a class outside the
    /// catalogue, a non-canonical final proof, trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProofFormatError> {
        let format = RecursiveFormat::of(bytes).unwrap_or(RecursiveFormat::V5);
        let mut r = open_container(bytes, format.magic())?;
        let shape = (r.u32()?, r.u32()?);
        let segment_config = read_config(&mut r)?;
        let node_config = read_config(&mut r)?;
        let n = read_count(&mut r, SEGMENT_BYTES)?;
        let mut segments = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let (rollup_id, first_seq, last_seq) = (r.u32()?, r.u64()?, r.u64()?);
            let class = read_class(&mut r)?;
            segments.push(SegmentRef {
                rollup_id,
                first_seq,
                last_seq,
                class,
            });
        }
        let last = read_proof(&mut r)?;
        close_container(&r)?;
        Ok(Self {
            format,
            shape,
            segment_config,
            node_config,
            segments,
            last,
        })
    }
}

/// A reader over what follows `magic` at the start of `bytes` (another start: `BadMagic`).
pub(crate) fn open_container(bytes: &[u8], magic: [u8; 8]) -> Result<Reader<'_>, ProofFormatError> {
    if !bytes.starts_with(&magic) {
        return Err(ProofFormatError::BadMagic {
            expected: magic,
            got: bytes.iter().take(8).copied().collect(),
        });
    }
    Ok(Reader {
        bytes: &bytes[8..],
        pos: 0,
    })
}

/// A proof as a container holds it: `u32` length, then its bytes.
pub(crate) fn write_proof(out: &mut Vec<u8>, proof: &Proof) {
    let b = proof.to_bytes();
    out.extend((b.len() as u32).to_le_bytes());
    out.extend(b);
}

/// Nothing may follow a container's last field.
pub(crate) fn close_container(r: &Reader<'_>) -> Result<(), ProofFormatError> {
    if r.pos == r.bytes.len() {
        Ok(())
    } else {
        Err(ProofFormatError::TrailingBytes {
            count: r.bytes.len() - r.pos,
        })
    }
}

fn write_config(out: &mut Vec<u8>, c: SecurityConfig) {
    for v in [c.log_blowup(), c.n_queries(), c.pow_bits()] {
        out.extend(v.to_le_bytes());
    }
}

fn read_config(r: &mut Reader<'_>) -> Result<SecurityConfig, ProofFormatError> {
    Ok(SecurityConfig::new(r.u32()?, r.u32()?, r.u32()?)?)
}

/// The presets of a v4 root's proofs: the segments (the W nodes' children), the tree's W and
/// M nodes, and the final node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecursionPresets {
    /// The segments' batch-validity proofs.
    pub segment: crate::config::SecurityConfig,
    /// The W and M nodes.
    pub node: crate::config::SecurityConfig,
    /// The final node: what the auditor downloads.
    pub last: crate::config::SecurityConfig,
}

impl RecursionPresets {
    /// The presets of the root over segments proven under `root`: `compact` (what the
    /// pipeline uses at production security) gives [`Self::standard`]; any other preset is
    /// used for every proof of the tree (tests' `testing`).
    pub fn for_root(root: crate::config::SecurityConfig) -> Self {
        if root == crate::config::SecurityConfig::compact() {
            Self::standard()
        } else {
            Self {
                segment: root,
                node: root,
                last: root,
            }
        }
    }

    /// `segments LB/Q/POW, nodes …, final …`: for reports.
    pub fn name(&self) -> String {
        let c = |c: crate::config::SecurityConfig| {
            format!("{}/{}/{}", c.log_blowup(), c.n_queries(), c.pow_bits())
        };
        format!(
            "segments {}, nodes {}, final {}",
            c(self.segment),
            c(self.node),
            c(self.last)
        )
    }

    /// Segments and nodes `compact` (blowup 4, 42 queries: the node circuits' cost grows with
    /// the child's queries), the final node `final_node` (blowup 16, 21 queries); 104 bits
    /// each.
    pub const fn standard() -> Self {
        Self {
            segment: crate::config::SecurityConfig::compact(),
            node: crate::config::SecurityConfig::compact(),
            last: crate::config::SecurityConfig::final_node(),
        }
    }
}

/// The verifying keys a v4 root is checked under, for one tree shape and one set of presets:
/// the digest of each class's W key, the M key's digest and the final node's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootKeys {
    /// The root format these keys are for (its segments' AIR: W circuits differ).
    pub format: RecursiveFormat,
    /// The tree shape these keys are for.
    pub shape: (u32, u32),
    /// The presets these keys are for.
    pub presets: RecursionPresets,
    /// Per shape class `(log_ops, log_state)`: its W circuit's key digest.
    pub w: BTreeMap<(u32, u32), Digest>,
    /// The M circuit's key digest.
    pub m: Digest,
    /// The final circuit's key.
    pub last: NodeKey,
}

/// File magic of [`RootKeys::to_bytes`].
pub const ROOT_KEYS_MAGIC: [u8; 8] = *b"POEKEYS2";

impl RootKeys {
    /// `POEKEYS2`, the root format (`u8`: 4 or 5), the tree shape (`u32` × 2), the three presets (`u32` × 3 each), a `u32`
    /// count of W keys, per key `log_ops u8, log_state u8` and its 32-byte digest (classes
    /// ascending), the M digest, then the final key: `log_rows u32, log_perm_rows u32,
    /// channel u16, log_blowup u32`, its preprocessed root (`u32` × 8), a `u32` count of public
    /// wires and per wire `id u32, reads u32`. Little-endian, nothing after. What an auditor
    /// caches once it has derived the keys ([`crate::day::keys_from_samples`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = ROOT_KEYS_MAGIC.to_vec();
        out.push(self.format.version());
        out.extend(self.shape.0.to_le_bytes());
        out.extend(self.shape.1.to_le_bytes());
        for c in [self.presets.segment, self.presets.node, self.presets.last] {
            write_config(&mut out, c);
        }
        out.extend((self.w.len() as u32).to_le_bytes());
        for (&(o, st), d) in &self.w {
            out.push(o as u8);
            out.push(st as u8);
            out.extend(d.to_bytes());
        }
        out.extend(self.m.to_bytes());
        let k = &self.last;
        out.extend(k.log_rows.to_le_bytes());
        out.extend(k.log_perm_rows.to_le_bytes());
        out.extend((k.channel as u16).to_le_bytes());
        out.extend(k.log_blowup.to_le_bytes());
        for w in k.preprocessed_root {
            out.extend(w.to_le_bytes());
        }
        out.extend((k.publics.len() as u32).to_le_bytes());
        for &(id, reads) in &k.publics {
            out.extend(id.to_le_bytes());
            out.extend(reads.to_le_bytes());
        }
        out
    }

    /// Inverse of [`Self::to_bytes`].
    ///
    /// # Errors
    /// [`ProofFormatError`] naming the first problem: another magic, a class outside the
    /// catalogue or out of order, a non-canonical digest, an unknown channel, trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProofFormatError> {
        let mut r = open_container(bytes, ROOT_KEYS_MAGIC)?;
        let offset = r.pos;
        let format = match r.u8()? {
            4 => RecursiveFormat::V4,
            5 => RecursiveFormat::V5,
            _ => {
                return Err(ProofFormatError::NonCanonical {
                    what: "root format (4 or 5)",
                    offset,
                })
            }
        };
        let shape = (r.u32()?, r.u32()?);
        let presets = RecursionPresets {
            segment: read_config(&mut r)?,
            node: read_config(&mut r)?,
            last: read_config(&mut r)?,
        };
        let n = read_count(&mut r, 34)?;
        let mut w = BTreeMap::new();
        for _ in 0..n {
            let offset = r.pos;
            let class = read_class(&mut r)?;
            let d = read_digest(&mut r)?;
            let id = (class.log_ops, class.log_state);
            if w.last_key_value().is_some_and(|(k, _)| *k >= id) {
                return Err(ProofFormatError::NonCanonical {
                    what: "W key order (classes ascending, once each)",
                    offset,
                });
            }
            w.insert(id, d);
        }
        let m = read_digest(&mut r)?;
        let (log_rows, log_perm_rows) = (r.u32()?, r.u32()?);
        let raw = u16::from_le_bytes([r.u8()?, r.u8()?]);
        let channel = crate::proof::ChannelId::from_u16(raw)
            .ok_or(ProofFormatError::UnknownChannel { got: raw })?;
        let log_blowup = r.u32()?;
        let mut preprocessed_root = [0u32; 8];
        for w in &mut preprocessed_root {
            *w = r.u32()?;
        }
        let n = read_count(&mut r, 8)?;
        let mut publics = Vec::with_capacity(n as usize);
        for _ in 0..n {
            publics.push((r.u32()?, r.u32()?));
        }
        close_container(&r)?;
        Ok(Self {
            format,
            shape,
            presets,
            w,
            m,
            last: NodeKey {
                log_rows,
                log_perm_rows,
                channel,
                log_blowup,
                preprocessed_root,
                publics,
            },
        })
    }
}

pub(crate) fn read_class(r: &mut Reader<'_>) -> Result<ShapeClass, ProofFormatError> {
    let offset = r.pos;
    let (log_ops, log_state) = (r.u8()?, r.u8()?);
    ShapeClass::all()
        .into_iter()
        .find(|c| (c.log_ops, c.log_state) == (u32::from(log_ops), u32::from(log_state)))
        .ok_or(ProofFormatError::UnknownClass {
            offset,
            log_ops,
            log_state,
        })
}

fn read_digest(r: &mut Reader<'_>) -> Result<Digest, ProofFormatError> {
    let offset = r.pos;
    Digest::from_bytes(r.take(32)?).map_err(|_| ProofFormatError::NonCanonical {
        what: "digest (an element >= p)",
        offset,
    })
}

/// File magic of [`RootSamples::to_bytes`].
pub const ROOT_SAMPLES_MAGIC: [u8; 8] = *b"POESMPL1";

/// What an auditor derives a v4 root's keys from (`specs/day-proof.md` §6.4): the proof of the
/// first segment of each class the day uses (a W circuit depends on its child's class and
/// presets alone, so any proof of the class gives it) and the W node proof over the day's
/// first segment (the M and final circuits depend on the W proofs' shape alone). Published
/// beside the root proof as `root.samples`; nothing in it is trusted: each proof is verified
/// against the statement the auditor rebuilt, and a sample that gave another circuit would
/// give keys under which the root does not verify.
#[derive(Debug, Clone)]
pub struct RootSamples {
    /// `(segment index, its proof)`, the first segment of each class, by index; the first is
    /// segment 0.
    pub segments: Vec<(u32, Proof)>,
    /// The W node proof over segment 0.
    pub w: Proof,
}

impl RootSamples {
    /// `POESMPL1`, a `u32` count, per sample `index u32` and its proof (`u32` length, bytes),
    /// then the W proof (`u32` length, bytes); little-endian, nothing after.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = ROOT_SAMPLES_MAGIC.to_vec();
        out.extend((self.segments.len() as u32).to_le_bytes());
        for (i, p) in &self.segments {
            out.extend(i.to_le_bytes());
            write_proof(&mut out, p);
        }
        write_proof(&mut out, &self.w);
        out
    }

    /// Inverse of [`Self::to_bytes`].
    ///
    /// # Errors
    /// [`ProofFormatError`]: another magic, no sample, indices not ascending from 0, a
    /// non-canonical proof, trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProofFormatError> {
        let mut r = open_container(bytes, ROOT_SAMPLES_MAGIC)?;
        let n = read_count(&mut r, 8)?;
        let mut segments: Vec<(u32, Proof)> = Vec::with_capacity(n as usize);
        for k in 0..n {
            let offset = r.pos;
            let index = r.u32()?;
            let ordered = match segments.last() {
                None => index == 0,
                Some((prev, _)) => index > *prev,
            };
            if !ordered || (k == 0 && index != 0) {
                return Err(ProofFormatError::NonCanonical {
                    what: "sample index (ascending, from segment 0)",
                    offset,
                });
            }
            segments.push((index, read_proof(&mut r)?));
        }
        if segments.is_empty() {
            return Err(ProofFormatError::NonCanonical {
                what: "sample count (at least segment 0's)",
                offset: 0,
            });
        }
        let w = read_proof(&mut r)?;
        close_container(&r)?;
        Ok(Self { segments, w })
    }

    /// The segment indices a root's samples must be: the first segment of each class, by
    /// index.
    pub fn expected_indices(root: &RecursiveRoot) -> Vec<u32> {
        let mut seen = std::collections::BTreeSet::new();
        root.segments
            .iter()
            .enumerate()
            .filter(|(_, s)| seen.insert((s.class.log_ops, s.class.log_state)))
            .map(|(i, _)| i as u32)
            .collect()
    }
}

/// Every segment's statement rebuilt from the auditor's own batch statements (batches and state
/// roots), the manifest's instrument tables (`listed`) and the class's sizes, with what the
/// segments cover; the segment table checked to cover every batch once, in canonical order.
///
/// # Errors
/// As [`verify_recursive`], for the coverage and the tables.
pub fn rebuild_segments(
    root: &RecursiveRoot,
    batches: &[BatchStatement],
    listed: &(dyn Fn(u32) -> Option<Vec<Instrument>> + Sync),
) -> Result<(Vec<ValidityStatement>, RootCoverage), VerifyError> {
    let mut at = 0usize;
    let mut coverage = RootCoverage {
        segments: 0,
        batches: 0,
        ops: 0,
        interior: Vec::new(),
    };
    let mut out = Vec::with_capacity(root.segments.len());
    for seg in &root.segments {
        let len = covered_by(batches, at, seg.rollup_id, seg.first_seq, seg.last_seq)?;
        let covered = &batches[at..at + len];
        let wrap = |e: VerifyError| VerifyError::Segment {
            rollup_id: seg.rollup_id,
            first_seq: seg.first_seq,
            last_seq: seg.last_seq,
            error: Box::new(e),
        };
        let claimed = shaped_statement(seg.class.shape(), listed(seg.rollup_id)).map_err(wrap)?;
        let table_root = instruments_root(&claimed.instruments);
        if covered.iter().any(|b| b.instruments_root != table_root) {
            return Err(wrap(VerifyError::BatchStatementMismatch {
                field: "instruments",
            }));
        }
        let expected = segment_statement(covered, &claimed, root.format.segment_air());
        coverage.segments += 1;
        coverage.batches += len;
        if !root.format.segment_air().windowed() {
            coverage.interior.extend(at..at + len - 1);
        }
        coverage.ops += expected.n_ops();
        out.push(expected);
        at += len;
    }
    all_covered(batches, at)?;
    Ok((out, coverage))
}

/// Verifies a v4 root against the day statement the auditor derived, the batch statements it
/// derived it from (canonical order), each rollup's listed instruments (the manifest's) and
/// the verifying keys.
///
/// # Errors
/// [`VerifyError::DayStatementMismatch`] for batches that do not give the statement;
/// [`VerifyError::SegmentCoverage`] for a batch not covered, covered twice or out of order;
/// [`VerifyError::Segment`] wrapping `BatchStatementMismatch { instruments }` for a rollup
/// without its table; [`VerifyError::SecurityTooLow`] for segment or node presets under the
/// policy; [`VerifyError::UnknownKey`] for a tree shape, presets or class the keys do not
/// hold; then the final proof's errors ([`verify_node`]) — `PublicInputMismatch` when the
/// proof states another day, tree or segment than the one rebuilt.
pub fn verify_recursive(
    root: &RecursiveRoot,
    statement: &DayStatement,
    batches: &[BatchStatement],
    listed: &(dyn Fn(u32) -> Option<Vec<Instrument>> + Sync),
    keys: &RootKeys,
    policy: &VerifierPolicy,
) -> Result<RootCoverage, VerifyError> {
    check_day_root(statement, batches)?;
    check_presets(root, policy)?;
    if root.format != keys.format {
        return Err(VerifyError::UnknownKey {
            circuit: format!(
                "{} (the keys are {}'s)",
                root.format.air_name(),
                keys.format.air_name()
            ),
        });
    }
    if root.shape != keys.shape {
        return Err(VerifyError::UnknownKey {
            circuit: format!("tree shape (2^{}, 2^{})", root.shape.0, root.shape.1),
        });
    }
    if root.presets() != keys.presets {
        return Err(VerifyError::UnknownKey {
            circuit: format!("presets {}", root.presets().name()),
        });
    }
    let (statements, coverage) = rebuild_segments(root, batches, listed)?;
    let mut leaves: Vec<NodeStatement> = Vec::with_capacity(root.segments.len());
    for (seg, expected) in root.segments.iter().zip(&statements) {
        let key = keys
            .w
            .get(&(seg.class.log_ops, seg.class.log_state))
            .ok_or_else(|| VerifyError::UnknownKey {
                circuit: format!("W over class {}", seg.class.name()),
            })?;
        leaves.push((*key, digest_values(&statement_digest(expected))));
    }
    let expected = day_digest(&leaves, keys.m, &statement.digest()).ok_or_else(|| {
        VerifyError::SegmentCoverage {
            rollup_id: 0,
            expected: "at least one segment".into(),
            got: "none".into(),
        }
    })?;
    verify_node(&root.last, &keys.last, &digest_values(&expected), policy)?;
    // v4: a segment's statement opens its first pre- and last post-state root only, so the
    // roots between its batches (`interior`) still need their leaf proofs, as in v2 and v3.
    // v5: its statement states every root between its batches; `interior` is empty.
    Ok(coverage)
}

/// The segments' and nodes' presets meet the policy (the final proof's is checked with it):
/// each proof of the tree is as sound as its preset, and the root as sound as the weakest.
///
/// # Errors
/// [`VerifyError::SecurityTooLow`].
pub fn check_presets(root: &RecursiveRoot, policy: &VerifierPolicy) -> Result<(), VerifyError> {
    for c in [root.segment_config, root.node_config] {
        if c.security_bits() < policy.min_security_bits {
            return Err(VerifyError::SecurityTooLow {
                expected: policy.min_security_bits,
                got: c.security_bits(),
            });
        }
    }
    Ok(())
}

#[cfg(all(test, feature = "prover"))]
mod tests {
    use std::collections::HashMap;

    use num_traits::One;
    use stwo::core::fields::qm31::SecureField;

    use super::*;
    use crate::config::SecurityConfig;
    use crate::day::{derive_keys, keys_from_samples, RecursiveProof};
    use crate::field::M31;
    use crate::recursion::node::tree::TreeProver;
    use crate::venue::{Operation, Venue};

    const DAY: u32 = 20_833;

    struct Fixture {
        statements: Vec<BatchStatement>,
        ops: Vec<Vec<Operation>>,
        venues: HashMap<u32, Venue>,
    }

    /// Two rollups of two batches each: two segments (one per rollup), so a tree of one M.
    fn fixture() -> Fixture {
        let f = crate::day::fixture::day(&[(1, 7, &[20, 13]), (2, 9, &[24, 9])], 40, 8, 3);
        Fixture {
            statements: f.statements,
            ops: f.ops,
            venues: f.venues.into_iter().collect(),
        }
    }

    fn presets() -> RecursionPresets {
        let node = SecurityConfig::new(1, 3, 0).unwrap();
        RecursionPresets {
            segment: SecurityConfig::testing(),
            node,
            last: node,
        }
    }

    fn policy() -> VerifierPolicy {
        VerifierPolicy::insecure_for_tests()
    }

    fn prove(f: &Fixture) -> (DayStatement, RecursiveProof) {
        let proof = prove_with(f, &mut crate::day::Runs::none());
        let statement = DayStatement::derive(DAY, &f.statements, [7; 32]).unwrap();
        (statement, proof)
    }

    fn prove_with(f: &Fixture, runs: &mut crate::day::Runs<'_>) -> RecursiveProof {
        prove_as(f, RecursiveFormat::V5, runs)
    }

    fn prove_as(
        f: &Fixture,
        format: RecursiveFormat,
        runs: &mut crate::day::Runs<'_>,
    ) -> RecursiveProof {
        let refs: Vec<&[Operation]> = f.ops.iter().map(Vec::as_slice).collect();
        crate::day::prove_recursive_with(
            format,
            DAY,
            &f.statements,
            &refs,
            [7; 32],
            &f.venues,
            presets(),
            &policy(),
            &mut |_| {},
            runs,
        )
        .unwrap()
    }

    fn listed(f: &Fixture) -> impl Fn(u32) -> Option<Vec<Instrument>> + Sync + '_ {
        |id| f.venues.get(&id).map(|v| v.instruments().to_vec())
    }

    fn verify(
        root: &RecursiveRoot,
        statement: &DayStatement,
        batches: &[BatchStatement],
        f: &Fixture,
        keys: &RootKeys,
    ) -> Result<RootCoverage, VerifyError> {
        verify_recursive(root, statement, batches, &listed(f), keys, &policy())
    }

    #[test]
    fn runs_proven_before_the_close_give_the_same_root() {
        use crate::day::runs::ProvenRun;
        use crate::day::Runs;
        let f = fixture();
        let prove = |runs: &mut Runs<'_>| prove_with(&f, runs);
        // A capacity of 30 operations cuts each rollup's two batches (20 + 13, 24 + 9) apart.
        let mut stored: Vec<ProvenRun> = Vec::new();
        let mut put = |r: &ProvenRun| stored.push(r.clone());
        let first = prove(&mut Runs {
            capacity_ops: 30,
            get: None,
            put: Some(&mut put),
            reused: 0,
        });
        assert_eq!(stored.len(), 4);
        assert_eq!(first.root.segments.len(), 4);
        let statement = DayStatement::derive(DAY, &f.statements, [7; 32]).unwrap();
        verify(&first.root, &statement, &f.statements, &f, &first.keys).expect("verifies");

        // Read back through their bytes, one of them holding another run's proof: the three
        // good ones are used, the bad one proven again, and the root is the same bytes.
        let mut by_run: HashMap<(u32, u64, u64), ProvenRun> = stored
            .iter()
            .map(|r| {
                let back = ProvenRun::from_bytes(&r.to_bytes()).unwrap();
                assert_eq!(back.to_bytes(), r.to_bytes());
                ((r.rollup_id, r.first_seq, r.last_seq), back)
            })
            .collect();
        let other = stored[1].pieces[0].proof.clone();
        by_run
            .get_mut(&(stored[0].rollup_id, stored[0].first_seq, stored[0].last_seq))
            .unwrap()
            .pieces[0]
            .proof = other;
        let get = |id: u32, a: u64, b: u64| by_run.get(&(id, a, b)).cloned();
        let mut runs = Runs {
            capacity_ops: 30,
            get: Some(&get),
            put: None,
            reused: 0,
        };
        let second = prove(&mut runs);
        assert_eq!(runs.reused, 3);
        assert_eq!(second.timings.reused_runs, 3);
        assert_eq!(second.root.to_bytes(), first.root.to_bytes());
        let mut trailing = stored[0].to_bytes();
        trailing.push(0);
        assert!(matches!(
            ProvenRun::from_bytes(&trailing),
            Err(ProofFormatError::TrailingBytes { count: 1 })
        ));
    }

    /// v4 (segments under `poe/batch-validity/v3`): the same tree, but the roots between a
    /// segment's batches are not stated by it — the audit's leaf proofs carry them; v5's keys
    /// are not v4's.
    #[test]
    fn v4_root_verifies_and_leaves_the_roots_between_batches_to_leaf_proofs() {
        let f = fixture();
        let statement = DayStatement::derive(DAY, &f.statements, [7; 32]).unwrap();
        let p = prove_as(&f, RecursiveFormat::V4, &mut crate::day::Runs::none());
        assert_eq!(p.root.format, RecursiveFormat::V4);
        assert_eq!(&p.root.to_bytes()[..8], b"POEROOT4");
        let coverage = verify(&p.root, &statement, &f.statements, &f, &p.keys).expect("verifies");
        assert_eq!(
            coverage.interior,
            vec![0, 2],
            "roots between a segment's batches"
        );
        assert!(p
            .segments
            .iter()
            .all(|(_, s, proof)| s.interior_roots.is_none()
                && proof.air == crate::proof::AirId::BatchValidityV3));
        // The root read as v5 (its magic rewritten): the keys are v4's.
        let mut relabelled = p.root.clone();
        relabelled.format = RecursiveFormat::V5;
        let r = verify(&relabelled, &statement, &f.statements, &f, &p.keys);
        assert!(matches!(r, Err(VerifyError::UnknownKey { .. })), "{r:?}");
        // v5 keys over the same circuits' shapes are other keys: the W circuits verify
        // another AIR.
        let (_, v5) = prove(&f);
        assert_ne!(v5.keys.w, p.keys.w);
        let mut v5_keys_as_v4 = v5.keys.clone();
        v5_keys_as_v4.format = RecursiveFormat::V4;
        let r = verify(&p.root, &statement, &f.statements, &f, &v5_keys_as_v4);
        assert!(r.is_err(), "{r:?}");
    }

    /// v5: a day whose batch statements publish a false root between two batches of one
    /// segment (the next batch's pre-state root changed with it, so the chain still links and
    /// the day statement is derived honestly from them) is refused by the root proof itself —
    /// no leaf proof is needed to catch it.
    #[test]
    fn v5_root_refuses_a_false_root_between_two_batches_of_a_segment() {
        let f = fixture();
        let (_, p) = prove(&f);
        let mut forged = f.statements.clone();
        let false_root = Digest([M31::from(9u32); 8]);
        forged[0].post_state_root = false_root;
        forged[1].pre_state_root = false_root;
        let day = DayStatement::derive(DAY, &forged, [7; 32]).unwrap();
        let r = verify(&p.root, &day, &forged, &f, &p.keys);
        assert!(
            matches!(r, Err(VerifyError::PublicInputMismatch { .. })),
            "{r:?}"
        );
    }

    /// One proof for the day, every tamper of the day, the tree or the keys refused with its
    /// own error. One test: the day is proven once.
    #[test]
    fn v5_root_is_one_proof_of_the_day_and_refuses_every_other_day() {
        let f = fixture();
        let (statement, p) = prove(&f);
        let (root, keys) = (&p.root, &p.keys);
        assert_eq!(root.format, RecursiveFormat::V5);
        assert_eq!(root.segments.len(), 2, "one segment per rollup");
        assert_eq!(p.timings.n_m, 1);
        let coverage = verify(root, &statement, &f.statements, &f, keys).expect("verifies");
        assert_eq!(
            (coverage.segments, coverage.batches, coverage.ops),
            (2, 4, 66)
        );
        assert!(
            coverage.interior.is_empty(),
            "every root between batches is stated by its segment"
        );
        assert!(p
            .segments
            .iter()
            .all(|(_, s, proof)| s.interior_roots.is_some()
                && proof.air == crate::proof::AirId::BatchValidityV4));

        // An auditor's keys, derived from one segment proof per class and one W proof (each
        // verified), are the prover's.
        let mut samples = p.segments.clone();
        samples.dedup_by_key(|(c, _, _)| *c);
        let derived = derive_keys(&samples, &p.leaves[0].proof, presets(), &policy()).unwrap();
        assert_eq!(&derived, keys);
        // A sample that does not verify derives nothing.
        let mut bad = samples.clone();
        bad[0].1.post_state_root.0[0] += M31::from(1u32);
        assert!(derive_keys(&bad, &p.leaves[0].proof, presets(), &policy()).is_err());

        // The published samples give the same keys, through their bytes; the keys' bytes (an
        // auditor's cache) round-trip.
        let listed_f = listed(&f);
        let published = RootSamples::from_bytes(&p.samples().to_bytes()).unwrap();
        assert_eq!(published.to_bytes(), p.samples().to_bytes());
        let from_samples =
            keys_from_samples(root, &published, &f.statements, &listed_f, &policy()).unwrap();
        assert_eq!(&from_samples, keys);
        assert_eq!(&RootKeys::from_bytes(&keys.to_bytes()).unwrap(), keys);
        let key_samples = |what: &str, s: &RootSamples| {
            let r = keys_from_samples(root, s, &f.statements, &listed_f, &policy());
            assert!(
                matches!(r, Err(VerifyError::KeySamples(_))),
                "{what}: {r:?}"
            );
        };
        // Segment 1's proof as segment 0's sample: it does not verify against segment 0.
        let mut swapped = published.clone();
        swapped.segments[0].1 = p.segments[1].2.clone();
        key_samples("another segment's proof", &swapped);
        // The W over segment 1 as the W sample: it does not state segment 0.
        let mut other_w = published.clone();
        other_w.w = p.leaves[1].proof.clone();
        key_samples("the W of another segment", &other_w);
        // A sample for a segment that is not the first of its class (or no such segment).
        let mut shifted = published.clone();
        shifted.segments.push((7, p.segments[0].2.clone()));
        key_samples("a sample too many", &shifted);
        // One encoding: indices ascending from 0, nothing after.
        let mut bytes = published.to_bytes();
        bytes.push(0);
        assert!(matches!(
            RootSamples::from_bytes(&bytes),
            Err(ProofFormatError::TrailingBytes { count: 1 })
        ));
        let mut bytes = published.to_bytes();
        bytes[12] = 1;
        assert!(matches!(
            RootSamples::from_bytes(&bytes),
            Err(ProofFormatError::NonCanonical { .. })
        ));
        // Presets below the policy are refused by name before any proof is looked at.
        let r = verify_recursive(
            root,
            &statement,
            &f.statements,
            &listed_f,
            keys,
            &VerifierPolicy::default(),
        );
        assert!(
            matches!(r, Err(VerifyError::SecurityTooLow { expected: 100, .. })),
            "{r:?}"
        );

        // The file: round trip, one encoding.
        let bytes = root.to_bytes();
        let back = RecursiveRoot::from_bytes(&bytes).unwrap();
        assert_eq!(back.to_bytes(), bytes);
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            RecursiveRoot::from_bytes(&trailing),
            Err(ProofFormatError::TrailingBytes { count: 1 })
        ));
        let mut unknown = bytes.clone();
        // The first segment's class: after magic, shape (8), configs (24), count (4), ids and
        // seqs (20).
        unknown[8 + 8 + 24 + 4 + 20] = 31;
        assert!(matches!(
            RecursiveRoot::from_bytes(&unknown),
            Err(ProofFormatError::UnknownClass { log_ops: 31, .. })
        ));
        let mut v3 = bytes.clone();
        v3[..8].copy_from_slice(b"POEROOT3");
        assert!(matches!(
            RecursiveRoot::from_bytes(&v3),
            Err(ProofFormatError::BadMagic { .. })
        ));

        let mismatch = |what: &str, r: Result<RootCoverage, VerifyError>| {
            assert!(
                matches!(r, Err(VerifyError::PublicInputMismatch { .. })),
                "{what}: {r:?}"
            );
        };
        // A root of another day: the same batches, another day number or manifest.
        let other_day = DayStatement::derive(DAY + 1, &f.statements, [7; 32]).unwrap();
        mismatch(
            "another day",
            verify(root, &other_day, &f.statements, &f, keys),
        );
        let other_manifest = DayStatement::derive(DAY, &f.statements, [8; 32]).unwrap();
        mismatch(
            "another manifest",
            verify(root, &other_manifest, &f.statements, &f, keys),
        );

        // A day with one batch removed (rollup 2's last): the table no longer covers it…
        let fewer: Vec<BatchStatement> = f.statements[..3].to_vec();
        let fewer_day = DayStatement::derive(DAY, &fewer, [7; 32]).unwrap();
        let r = verify(root, &fewer_day, &fewer, &f, keys);
        assert!(
            matches!(r, Err(VerifyError::SegmentCoverage { rollup_id: 2, .. })),
            "{r:?}"
        );
        // …and with the table edited to match, the tree states another segment.
        let mut edited = root.clone();
        edited.segments[1].last_seq -= 1;
        mismatch(
            "a batch removed",
            verify(&edited, &fewer_day, &fewer, &f, keys),
        );

        // A segment claimed in another class: another statement and W key.
        let mut reclassed = root.clone();
        let other = ShapeClass::all()
            .into_iter()
            .find(|c| {
                *c != root.segments[0].class && keys.w.contains_key(&(c.log_ops, c.log_state))
            })
            .or_else(|| {
                ShapeClass::all()
                    .into_iter()
                    .find(|c| *c != root.segments[0].class)
            })
            .unwrap();
        reclassed.segments[0].class = other;
        let r = verify(&reclassed, &statement, &f.statements, &f, keys);
        assert!(
            matches!(
                r,
                Err(VerifyError::PublicInputMismatch { .. } | VerifyError::UnknownKey { .. })
            ),
            "{r:?}"
        );

        // A tree that skips a segment, its final node binding the right day: refused.
        let mut tree = TreeProver::new(keys.shape, presets().node, presets().last, policy());
        let (_, skipping) = tree
            .prove(vec![p.leaves[0].clone()], &statement.digest(), |_, _| {})
            .unwrap();
        let forged = RecursiveRoot {
            last: skipping.proof.clone(),
            ..root.clone()
        };
        mismatch(
            "a tree skipping a segment",
            verify(&forged, &statement, &f.statements, &f, keys),
        );
        // The same tree in the other order.
        let (_, swapped) = tree
            .prove(
                vec![p.leaves[1].clone(), p.leaves[0].clone()],
                &statement.digest(),
                |_, _| {},
            )
            .unwrap();
        let forged = RecursiveRoot {
            last: swapped.proof,
            ..root.clone()
        };
        mismatch(
            "segments swapped in the tree",
            verify(&forged, &statement, &f.statements, &f, keys),
        );

        // Keys: another shape or no key for a class are unknown; another M key is another tree;
        // another final key is another circuit.
        let mut k = keys.clone();
        k.shape.0 += 1;
        let r = verify(root, &statement, &f.statements, &f, &k);
        assert!(matches!(r, Err(VerifyError::UnknownKey { .. })), "{r:?}");
        let mut k = keys.clone();
        k.presets.node = SecurityConfig::testing();
        let r = verify(root, &statement, &f.statements, &f, &k);
        assert!(matches!(r, Err(VerifyError::UnknownKey { .. })), "{r:?}");
        let mut k = keys.clone();
        k.w.clear();
        let r = verify(root, &statement, &f.statements, &f, &k);
        assert!(matches!(r, Err(VerifyError::UnknownKey { .. })), "{r:?}");
        let mut k = keys.clone();
        k.m.0[0] += M31::from(1u32);
        mismatch(
            "another M key",
            verify(root, &statement, &f.statements, &f, &k),
        );
        let mut k = keys.clone();
        k.last.preprocessed_root[0] ^= 1;
        let r = verify(root, &statement, &f.statements, &f, &k);
        assert!(
            matches!(r, Err(VerifyError::PreprocessedRoot { .. })),
            "{r:?}"
        );

        // The final proof tampered: its public value, or a sampled value.
        let mut tampered = root.clone();
        tampered.last.public_inputs[3] += M31::from(1u32);
        mismatch(
            "public input",
            verify(&tampered, &statement, &f.statements, &f, keys),
        );
        let mut tampered = root.clone();
        tampered
            .last
            .stark
            .as_poseidon2_mut()
            .unwrap()
            .0
            .sampled_values[1][0][0] += SecureField::one();
        let r = verify(&tampered, &statement, &f.statements, &f, keys);
        assert!(matches!(r, Err(VerifyError::OodsMismatch)), "{r:?}");
    }
}
