//! The daily root proof, v2 (`specs/day-proof.md` §3–4): the day-tree proof
//! (`poe/day-root/v1`: the day's batch statements are the leaves of `day_root`, the day summary
//! and manifest hash bound) and, per rollup, **segment proofs** (`poe/batch-validity/v2`) that
//! re-prove every batch of the day: each covers a run of the rollup's consecutive batches, one
//! data tree per batch, its state opened at the first batch's `pre_state_root` and closed at
//! the last batch's `post_state_root`; consecutive segments share their boundary roots, so the
//! segments chain the rollup's day from `first_pre_state_root` to `last_post_state_root`.
//!
//! stwo 2.3 has no recursion, so the segments are separate STARKs (verified in parallel across
//! the auditor's cores): verification grows with the number of segments (one per rollup per
//! [`SEGMENT_CAPACITY_OPS`] operations). The day statement does not change when a recursive
//! proof replaces the list.

use crate::config::VerifierPolicy;
use crate::day::statement::{BatchStatement, DayStatement};
use crate::error::VerifyError;
use crate::proof::{Proof, ProofFormatError, Reader};
use crate::validity::{verify_validity, BatchTree, ValidityStatement, MAX_BATCHES, MAX_OPS};
use crate::venue::{instruments_root, Instrument};

/// File magic of a v2 root proof. A file starting with the plain proof magic is a v1 root
/// proof (the day-tree proof alone).
pub const ROOT_MAGIC: [u8; 8] = *b"POEROOT2";

/// Name of the v2 root proof in manifests, `statement.json` and logs.
pub const ROOT_AIR_NAME: &str = "poe/day-root/v2";

/// File magic of a v3 root proof: v2's layout, every segment a `poe/batch-validity/v3` proof
/// in a shape class (the children a recursive verifier takes).
pub const ROOT_V3_MAGIC: [u8; 8] = *b"POEROOT3";

/// Name of the v3 root proof.
pub const ROOT_V3_AIR_NAME: &str = "poe/day-root/v3";

/// Which segmented root proof a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RootFormat {
    /// `poe/day-root/v2`: segments are `poe/batch-validity/v2` proofs, each carrying its
    /// statement's instruments in its public input.
    #[default]
    V2,
    /// `poe/day-root/v3`: segments are `poe/batch-validity/v3` proofs padded to a shape class
    /// (constant-size public input); the verifier takes each rollup's instruments from the
    /// archive's manifest.
    V3,
}

impl RootFormat {
    /// The file magic.
    pub const fn magic(self) -> [u8; 8] {
        match self {
            Self::V2 => ROOT_MAGIC,
            Self::V3 => ROOT_V3_MAGIC,
        }
    }

    /// The name in manifests and logs.
    pub const fn name(self) -> &'static str {
        match self {
            Self::V2 => ROOT_AIR_NAME,
            Self::V3 => ROOT_V3_AIR_NAME,
        }
    }

    /// The AIR every segment must be proven under.
    pub const fn segment_air(self) -> crate::proof::AirId {
        match self {
            Self::V2 => crate::proof::AirId::BatchValidity,
            Self::V3 => crate::proof::AirId::BatchValidityV3,
        }
    }

    /// The format whose magic `bytes` start with.
    pub fn of(bytes: &[u8]) -> Option<Self> {
        [Self::V2, Self::V3]
            .into_iter()
            .find(|f| bytes.starts_with(&f.magic()))
    }
}

/// First day (days since 1970-01-01: 2026-11-28) whose root proof must be v2. Earlier days may
/// have a v1 root proof (the day-tree proof alone, written before segments existed); from this
/// day on a v1 file would be a downgrade that hides batch validity, and auditors refuse it.
pub const V2_REQUIRED_FROM_DAY: u32 = 20_785;

/// Most operations one segment proof covers: the batch-validity AIR's limit (22-bit access
/// times), which is also what fits this project's 24 GiB reference machine (9.45 GiB at
/// production security, BENCHMARKS.md).
pub const SEGMENT_CAPACITY_OPS: usize = MAX_OPS;

/// One segment: a validity proof of the rollup's batches `first_seq ..= last_seq`.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Registry id of the rollup.
    pub rollup_id: u32,
    /// First batch covered.
    pub first_seq: u64,
    /// Last batch covered.
    pub last_seq: u64,
    /// The `poe/batch-validity/v2` proof.
    pub proof: Proof,
}

/// The daily root proof.
#[derive(Debug, Clone)]
pub struct RootProof {
    /// v2 or v3 (what the segments are).
    pub format: RootFormat,
    /// The day-tree proof (`poe/day-root/v1`).
    pub day: Proof,
    /// Segments in canonical order: by rollup, then seq.
    pub segments: Vec<Segment>,
}

/// What a verified root proof covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootCoverage {
    /// Segment proofs verified.
    pub segments: usize,
    /// Batches whose validity they prove (all of the day's).
    pub batches: usize,
    /// Operations they cover.
    pub ops: u64,
    /// Indices (into the batch statements) of the batches whose `post_state_root` lies
    /// *inside* a segment: the segment proves the state change across its whole run, not the
    /// roots between its batches, so each of these roots needs another proof (the batch's
    /// batch-validity leaf proof, `specs/day-proof.md` §3). Every other state root of the day
    /// is a segment's first pre-state or last post-state root.
    pub interior: Vec<usize>,
}

/// Cuts a day's batch statements (canonical order) into segments: `(start, end)` index
/// ranges, a new segment at each rollup, at a change of `instruments_root` (one instrument
/// table per proof), and before exceeding `capacity_ops` operations or [`MAX_BATCHES`]
/// batches. A batch larger than the capacity gets a segment of its own (and fails to prove
/// past [`MAX_OPS`]).
pub fn plan_segments(batches: &[BatchStatement], capacity_ops: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0usize;
    let mut ops = 0usize;
    for (i, b) in batches.iter().enumerate() {
        if i > start {
            let first = &batches[start];
            if b.rollup_id != first.rollup_id
                || b.instruments_root != first.instruments_root
                || ops + b.n_ops as usize > capacity_ops
                || i - start >= MAX_BATCHES
            {
                out.push((start, i));
                start = i;
                ops = 0;
            }
        }
        ops += b.n_ops as usize;
    }
    if !batches.is_empty() {
        out.push((start, batches.len()));
    }
    out
}

/// A length-prefixed (`u32`) canonical proof.
pub(crate) fn read_proof(r: &mut Reader<'_>) -> Result<Proof, ProofFormatError> {
    let len = r.u32()?;
    let remaining = r.bytes.len() - r.pos;
    if len as usize > remaining {
        return Err(ProofFormatError::LengthOverflow {
            offset: r.pos - 4,
            count: len,
            remaining,
        });
    }
    Proof::from_bytes(r.take(len as usize)?)
}

/// A `u32` count of items of at least `item_bytes` bytes each, refused where they cannot fit in
/// what is left of the input.
pub(crate) fn read_count(r: &mut Reader<'_>, item_bytes: usize) -> Result<u32, ProofFormatError> {
    let n = r.u32()?;
    let remaining = r.bytes.len() - r.pos;
    if n as usize > remaining / item_bytes {
        return Err(ProofFormatError::LengthOverflow {
            offset: r.pos - 4,
            count: n,
            remaining,
        });
    }
    Ok(n)
}

impl RootProof {
    /// `POEROOT2` (`POEROOT3` for v3), the day proof (`u32` length, bytes), a `u32` segment count, then per
    /// segment `rollup_id u32, first_seq u64, last_seq u64`, the proof (`u32` length, bytes);
    /// little-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.format.magic().to_vec();
        let day = self.day.to_bytes();
        out.extend((day.len() as u32).to_le_bytes());
        out.extend(day);
        out.extend((self.segments.len() as u32).to_le_bytes());
        for s in &self.segments {
            out.extend(s.rollup_id.to_le_bytes());
            out.extend(s.first_seq.to_le_bytes());
            out.extend(s.last_seq.to_le_bytes());
            let p = s.proof.to_bytes();
            out.extend((p.len() as u32).to_le_bytes());
            out.extend(p);
        }
        out
    }

    /// Inverse of [`RootProof::to_bytes`]; every inner proof must be canonical and nothing
    /// may follow the last segment.
    ///
    /// # Errors
    /// [`ProofFormatError`] naming the first problem.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProofFormatError> {
        let Some(format) = RootFormat::of(bytes) else {
            return Err(ProofFormatError::BadMagic {
                expected: ROOT_MAGIC,
                got: bytes.iter().take(8).copied().collect(),
            });
        };
        let rest = &bytes[8..];
        let mut r = Reader {
            bytes: rest,
            pos: 0,
        };
        let day = read_proof(&mut r)?;
        // Each segment takes at least 24 bytes of header.
        let n = read_count(&mut r, 24)?;
        let mut segments = Vec::with_capacity(n as usize);
        for _ in 0..n {
            segments.push(Segment {
                rollup_id: r.u32()?,
                first_seq: r.u64()?,
                last_seq: r.u64()?,
                proof: read_proof(&mut r)?,
            });
        }
        if r.pos != rest.len() {
            return Err(ProofFormatError::TrailingBytes {
                count: rest.len() - r.pos,
            });
        }
        Ok(Self {
            format,
            day,
            segments,
        })
    }

    /// Whether `bytes` claim to be a segmented root proof, v2 or v3 (rather than a v1 bare
    /// day proof).
    pub fn is_v2(bytes: &[u8]) -> bool {
        RootFormat::of(bytes).is_some()
    }
}

/// The validity statement a segment over `batches` must prove under `air`; log sizes and
/// instruments come from the proof (`claimed`), the rest from the batch statements — under
/// AIR v4 every batch's post-state root but the last's too.
pub(crate) fn segment_statement(
    batches: &[BatchStatement],
    claimed: &ValidityStatement,
    air: crate::validity::ValidityAir,
) -> ValidityStatement {
    let interior_roots = air.windowed().then(|| {
        batches[..batches.len() - 1]
            .iter()
            .map(|b| b.post_state_root)
            .collect()
    });
    ValidityStatement {
        interior_roots,
        batches: batches
            .iter()
            .map(|b| BatchTree {
                n_ops: b.n_ops,
                data_root: b.data_root,
            })
            .collect(),
        pre_state_root: batches[0].pre_state_root,
        post_state_root: batches[batches.len() - 1].post_state_root,
        ..claimed.clone()
    }
}

/// The statement parts of a v3 segment that its batch statements do not give: its shape,
/// which its public input states in the clear and which must be a class, and its rollup's
/// instruments from the manifest.
fn class_statement(
    public_inputs: &[crate::field::M31],
    listed: Option<Vec<Instrument>>,
) -> Result<ValidityStatement, VerifyError> {
    use crate::validity::{ComponentId, Shape, ShapeClass, V3_PUBLIC_INPUTS};
    if public_inputs.len() != V3_PUBLIC_INPUTS {
        return Err(VerifyError::BatchStatementMismatch { field: "encoding" });
    }
    let mut logs = [0u32; ComponentId::ALL.len()];
    for (l, x) in logs.iter_mut().zip(public_inputs) {
        *l = x.0;
    }
    let shape = Shape(logs);
    if ShapeClass::of(&shape).is_none() {
        return Err(VerifyError::InvalidStatement(format!(
            "segment sizes {logs:?} are not a shape class"
        )));
    }
    shaped_statement(shape, listed)
}

/// A v3 statement's parts that are not its batches: the shape, and the rollup's instruments
/// from the manifest (`listed`; none → `BatchStatementMismatch { instruments }`).
pub(crate) fn shaped_statement(
    shape: crate::validity::Shape,
    listed: Option<Vec<Instrument>>,
) -> Result<ValidityStatement, VerifyError> {
    let instruments = listed.ok_or(VerifyError::BatchStatementMismatch {
        field: "instruments",
    })?;
    let mut statement = ValidityStatement {
        // The batches and roots come from the batch statements (`segment_statement`), the
        // sizes from the shape.
        batches: Vec::new(),
        pre_state_root: crate::hash::poseidon2::Digest::ZERO,
        post_state_root: crate::hash::poseidon2::Digest::ZERO,
        log_cash_rows: 0,
        log_trade_rows: 0,
        log_state_leaf_rows: 0,
        log_state_node_rows: 0,
        log_chip_rows: 0,
        log_settle_rows: 0,
        log_holder_rows: 0,
        instruments,
        shape: None,
        interior_roots: None,
    };
    statement.set_shape(shape);
    Ok(statement)
}

/// Verifies a root proof against the day statement the auditor derived and the batch
/// statements it was derived from (canonical order): the day-tree proof, then that the
/// segments cover every batch of every rollup exactly once, in order, each proving its
/// batches' validity from the first batch's pre-state root to the last batch's post-state root.
/// Coverage is checked first; the segments' STARKs then run in parallel, and the first
/// failing one in segment order is reported.
///
/// # Errors
/// The day proof's error as [`crate::day::verify_day`];
/// [`VerifyError::SegmentCoverage`] for a batch not covered, covered twice or out of order;
/// [`VerifyError::Segment`] wrapping the first failing segment's error.
pub fn verify_root(
    root: RootProof,
    statement: &DayStatement,
    batches: &[BatchStatement],
    policy: &VerifierPolicy,
) -> Result<RootCoverage, VerifyError> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    verify_root_on(root, statement, batches, policy, threads)
}

/// [`verify_root`] with the segments verified on at most `threads` threads (1: one after the
/// other, what a single core costs).
///
/// # Errors
/// As [`verify_root`].
pub fn verify_root_on(
    root: RootProof,
    statement: &DayStatement,
    batches: &[BatchStatement],
    policy: &VerifierPolicy,
    threads: usize,
) -> Result<RootCoverage, VerifyError> {
    verify_root_with(root, statement, batches, &|_| None, policy, threads)
}

/// [`verify_root_on`] for either format: a v3 root's segments take each rollup's listed
/// instruments from `listed` (the archive manifest's table; a v2 segment carries them in its
/// public input).
///
/// # Errors
/// As [`verify_root`]; for a v3 segment, [`VerifyError::BatchStatementMismatch`] with field
/// `instruments` where `listed` has no table for the rollup or one of another root, and
/// [`VerifyError::InvalidStatement`] for a shape that is not a class.
pub fn verify_root_with(
    root: RootProof,
    statement: &DayStatement,
    batches: &[BatchStatement],
    listed: &(dyn Fn(u32) -> Option<Vec<Instrument>> + Sync),
    policy: &VerifierPolicy,
    threads: usize,
) -> Result<RootCoverage, VerifyError> {
    let format = root.format;
    check_day_root(statement, batches)?;
    crate::day::verify_day(root.day, statement, policy)?;
    // Coverage and statements first (cheap, in order), then the segments' STARKs.
    let mut at = 0usize;
    let mut coverage = RootCoverage {
        segments: 0,
        batches: 0,
        ops: 0,
        interior: Vec::new(),
    };
    let mut jobs = Vec::with_capacity(root.segments.len());
    for seg in root.segments {
        let len = covered_by(batches, at, seg.rollup_id, seg.first_seq, seg.last_seq)?;
        let covered = &batches[at..at + len];
        let wrap = |e: VerifyError| VerifyError::Segment {
            rollup_id: seg.rollup_id,
            first_seq: seg.first_seq,
            last_seq: seg.last_seq,
            error: Box::new(e),
        };
        let claimed = match format {
            RootFormat::V2 => ValidityStatement::from_public_inputs(&seg.proof.public_inputs)
                .ok_or(VerifyError::BatchStatementMismatch { field: "encoding" }),
            RootFormat::V3 => class_statement(&seg.proof.public_inputs, listed(seg.rollup_id)),
        }
        .map_err(wrap)?;
        // One instrument table per proof: every covered batch must have listed exactly these.
        let root_of_table = instruments_root(&claimed.instruments);
        if covered.iter().any(|b| b.instruments_root != root_of_table) {
            return Err(wrap(VerifyError::BatchStatementMismatch {
                field: "instruments",
            }));
        }
        let expected = segment_statement(
            covered,
            &claimed,
            crate::validity::ValidityAir::of(format.segment_air()).unwrap_or_default(),
        );
        coverage.segments += 1;
        coverage.batches += len;
        coverage.interior.extend(at..at + len - 1);
        coverage.ops += expected.n_ops();
        jobs.push((seg, expected));
        at += len;
    }
    all_covered(batches, at)?;
    let results = verify_segments(jobs, format, policy, threads);
    match results.into_iter().find_map(Result::err) {
        Some(e) => Err(e),
        None => Ok(coverage),
    }
}

/// The statement must be the one `batches` give (the caller derived it from them).
///
/// # Errors
/// [`VerifyError::DayStatementMismatch`] with field `day_root`.
pub(crate) fn check_day_root(
    statement: &DayStatement,
    batches: &[BatchStatement],
) -> Result<(), VerifyError> {
    if batches.len() != statement.n_batches as usize
        || crate::day::statement::day_root(batches) != statement.day_root
    {
        return Err(VerifyError::DayStatementMismatch { field: "day_root" });
    }
    Ok(())
}

/// How many batches from `at` a segment of `rollup_id` over `first_seq ..= last_seq` covers:
/// it must start at the next uncovered batch and end at a batch of its rollup.
///
/// # Errors
/// [`VerifyError::SegmentCoverage`] naming what was expected.
pub(crate) fn covered_by(
    batches: &[BatchStatement],
    at: usize,
    rollup_id: u32,
    first_seq: u64,
    last_seq: u64,
) -> Result<usize, VerifyError> {
    let Some(first) = batches.get(at) else {
        return Err(VerifyError::SegmentCoverage {
            rollup_id,
            expected: "no further segment".into(),
            got: format!("segment seq {first_seq}..={last_seq}"),
        });
    };
    if (rollup_id, first_seq) != (first.rollup_id, first.seq) {
        return Err(VerifyError::SegmentCoverage {
            rollup_id: first.rollup_id,
            expected: format!(
                "a segment of rollup {} from seq {}",
                first.rollup_id, first.seq
            ),
            got: format!("rollup {rollup_id} from seq {first_seq}"),
        });
    }
    let len = batches[at..]
        .iter()
        .take_while(|b| b.rollup_id == rollup_id && b.seq <= last_seq)
        .count();
    let covered = &batches[at..at + len];
    if covered.last().is_none_or(|b| b.seq != last_seq) {
        return Err(VerifyError::SegmentCoverage {
            rollup_id,
            expected: format!(
                "last seq in {first_seq}..={}",
                covered.last().map_or(first_seq, |b| b.seq)
            ),
            got: format!("last seq {last_seq}"),
        });
    }
    Ok(len)
}

/// Coverage ended at `at`: no batch may be left.
///
/// # Errors
/// [`VerifyError::SegmentCoverage`] for the first batch no segment covers.
pub(crate) fn all_covered(batches: &[BatchStatement], at: usize) -> Result<(), VerifyError> {
    match batches.get(at) {
        Some(b) => Err(VerifyError::SegmentCoverage {
            rollup_id: b.rollup_id,
            expected: format!("a segment from seq {}", b.seq),
            got: "none".into(),
        }),
        None => Ok(()),
    }
}

/// The segments' STARKs on up to `threads` threads (they are independent; stwo's verifier is
/// single-threaded), results in segment order.
fn verify_segments(
    jobs: Vec<(Segment, ValidityStatement)>,
    format: RootFormat,
    policy: &VerifierPolicy,
    threads: usize,
) -> Vec<Result<(), VerifyError>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let threads = threads.min(jobs.len()).max(1);
    let jobs: Vec<Mutex<Option<(Segment, ValidityStatement)>>> =
        jobs.into_iter().map(|j| Mutex::new(Some(j))).collect();
    let results: Vec<Mutex<Result<(), VerifyError>>> =
        jobs.iter().map(|_| Mutex::new(Ok(()))).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                let (seg, expected) = job
                    .lock()
                    .expect("no verifier thread panics holding a job")
                    .take()
                    .expect("each job is taken once");
                let (rollup_id, first_seq, last_seq) = (seg.rollup_id, seg.first_seq, seg.last_seq);
                // One segment AIR per format: one canonical form per day.
                let r = if seg.proof.air == format.segment_air() {
                    verify_validity(seg.proof, &expected, policy)
                } else {
                    Err(VerifyError::WrongAir {
                        expected: format.segment_air(),
                        got: seg.proof.air,
                    })
                };
                let r = r.map_err(|e| VerifyError::Segment {
                    rollup_id,
                    first_seq,
                    last_seq,
                    error: Box::new(e),
                });
                *results[i]
                    .lock()
                    .expect("no verifier thread panics holding a result") = r;
            });
        }
    });
    results
        .into_iter()
        .map(|r| r.into_inner().expect("threads joined"))
        .collect()
}

/// Decodes and verifies a root proof file ([`verify_root`]).
///
/// # Errors
/// [`VerifyError::Format`] for bytes that are not a canonical v2 root proof, otherwise as
/// [`verify_root`].
pub fn verify_root_bytes(
    bytes: &[u8],
    statement: &DayStatement,
    batches: &[BatchStatement],
    policy: &VerifierPolicy,
) -> Result<RootCoverage, VerifyError> {
    verify_root(RootProof::from_bytes(bytes)?, statement, batches, policy)
}

#[cfg(all(test, feature = "prover"))]
mod tests {
    use super::*;
    use crate::config::SecurityConfig;
    use crate::day::prove_day;
    use crate::field::M31;
    use crate::validity::prove_segment;
    use crate::venue::{Operation, Venue};

    const DAY: u32 = 20_833;
    /// Small enough that rollup 1's three batches (40 + 17 + 39 operations) need two
    /// chained segments.
    const CAPACITY: usize = 60;

    use crate::day::fixture::Fixture;

    fn fixture() -> Fixture {
        crate::day::fixture::day(&[(1, 7, &[40, 17, 39]), (2, 9, &[50, 46])], 96, 12, 5)
    }

    /// The root proof the way the aggregator makes it: day proof, then segments walking
    /// each rollup's state forward.
    fn prove(f: &Fixture, statements: &[BatchStatement]) -> (DayStatement, RootProof) {
        let config = SecurityConfig::testing();
        let (day_statement, day) = prove_day(DAY, statements, [7; 32], config).unwrap();
        let mut venues = f.venues.clone();
        let mut segments = Vec::new();
        for (start, end) in plan_segments(statements, CAPACITY) {
            let id = statements[start].rollup_id;
            let venue = &mut venues.iter_mut().find(|(r, _)| *r == id).unwrap().1;
            let refs: Vec<&[Operation]> = f.ops[start..end].iter().map(Vec::as_slice).collect();
            let (_, proof) = prove_segment(venue, &refs, config).unwrap();
            for b in &refs {
                venue.apply_batch(b).unwrap();
            }
            segments.push(Segment {
                rollup_id: id,
                first_seq: statements[start].seq,
                last_seq: statements[end - 1].seq,
                proof,
            });
        }
        (
            day_statement,
            RootProof {
                format: RootFormat::V2,
                day,
                segments,
            },
        )
    }

    fn policy() -> VerifierPolicy {
        VerifierPolicy::insecure_for_tests()
    }

    /// The fixture's day as `poe/day-root/v3` (what `prove_root_as` makes), and each rollup's
    /// instruments as the manifest lists them.
    fn prove_v3(
        f: &Fixture,
    ) -> (
        DayStatement,
        RootProof,
        impl Fn(u32) -> Option<Vec<Instrument>> + Sync,
    ) {
        let config = SecurityConfig::testing();
        let venues: std::collections::HashMap<u32, Venue> = f.venues.iter().cloned().collect();
        let refs: Vec<&[Operation]> = f.ops.iter().map(Vec::as_slice).collect();
        let root = crate::day::prove_root_as(
            RootFormat::V3,
            DAY,
            &f.statements,
            &refs,
            [7; 32],
            &venues,
            config,
        )
        .unwrap();
        let (statement, _) = prove_day(DAY, &f.statements, [7; 32], config).unwrap();
        let listed = move |id: u32| venues.get(&id).map(|v| v.instruments().to_vec());
        (statement, root, listed)
    }

    fn verify_v3(
        root: RootProof,
        statement: &DayStatement,
        f: &Fixture,
        listed: &(dyn Fn(u32) -> Option<Vec<Instrument>> + Sync),
    ) -> Result<RootCoverage, VerifyError> {
        verify_root_with(root, statement, &f.statements, listed, &policy(), 2)
    }

    #[test]
    fn v3_root_has_class_segments_round_trips_and_covers_every_batch() {
        let f = fixture();
        let (statement, root, listed) = prove_v3(&f);
        // One segment per rollup: each run of batches fits the smallest operation budget.
        assert_eq!(root.segments.len(), 2);
        for seg in &root.segments {
            assert_eq!(seg.proof.air, crate::proof::AirId::BatchValidityV3);
            assert_eq!(
                seg.proof.public_inputs.len(),
                crate::validity::V3_PUBLIC_INPUTS
            );
        }
        let bytes = root.to_bytes();
        assert!(bytes.starts_with(b"POEROOT3"));
        let decoded = RootProof::from_bytes(&bytes).unwrap();
        assert_eq!(decoded.format, RootFormat::V3);
        let coverage = verify_v3(decoded, &statement, &f, &listed).unwrap();
        assert_eq!(
            (coverage.segments, coverage.batches, coverage.ops),
            (2, 5, 192)
        );
        assert_eq!(coverage.interior, vec![0, 1, 3]);
    }

    #[test]
    fn v3_root_without_the_manifests_instruments_is_rejected() {
        let f = fixture();
        let (statement, root, _) = prove_v3(&f);
        let e = verify_v3(root, &statement, &f, &|_| None).unwrap_err();
        assert!(
            matches!(&e, VerifyError::Segment { rollup_id: 1, error, .. }
                if matches!(**error, VerifyError::BatchStatementMismatch { field: "instruments" })),
            "{e}"
        );
    }

    #[test]
    fn v3_root_against_another_instrument_table_is_rejected() {
        let f = fixture();
        let (statement, root, listed) = prove_v3(&f);
        let other = move |id: u32| {
            let mut table = listed(id)?;
            table[0].strike += 1;
            Some(table)
        };
        let e = verify_v3(root, &statement, &f, &other).unwrap_err();
        assert!(
            matches!(&e, VerifyError::Segment { rollup_id: 1, error, .. }
                if matches!(**error, VerifyError::BatchStatementMismatch { field: "instruments" })),
            "{e}"
        );
    }

    #[test]
    fn v2_segment_in_a_v3_root_is_rejected() {
        let f = fixture();
        let (statement, mut root, listed) = prove_v3(&f);
        // Rollup 2's batches as one v2 segment, in place of its v3 one.
        let refs: Vec<&[Operation]> = f.ops[3..5].iter().map(Vec::as_slice).collect();
        let (_, v2) = prove_segment(&f.venues[1].1, &refs, SecurityConfig::testing()).unwrap();
        root.segments[1].proof = v2;
        let e = verify_v3(root, &statement, &f, &listed).unwrap_err();
        assert!(
            matches!(&e, VerifyError::Segment { rollup_id: 2, error, .. }
                if matches!(**error, VerifyError::BatchStatementMismatch { field: "encoding" })),
            "{e}"
        );
    }

    #[test]
    fn v3_segment_outside_the_class_catalogue_is_rejected() {
        // A v3 proof at its own sizes is a valid proof of its statement, but not a child a
        // class's recursive verifier takes: the v3 root refuses it.
        let f = fixture();
        let (statement, mut root, listed) = prove_v3(&f);
        let venue = f.venues[1].1.clone();
        let refs: Vec<&[Operation]> = f.ops[3..5].iter().map(Vec::as_slice).collect();
        let (_, unshaped) = crate::validity::prove_batches(
            &venue,
            &refs,
            SecurityConfig::testing(),
            crate::proof::ChannelId::Blake2s,
            crate::validity::ValidityAir::V3,
        )
        .unwrap();
        root.segments[1].proof = unshaped;
        let e = verify_v3(root, &statement, &f, &listed).unwrap_err();
        assert!(
            matches!(&e, VerifyError::Segment { rollup_id: 2, error, .. }
                if matches!(&**error, VerifyError::InvalidStatement(why) if why.contains("not a shape class"))),
            "{e}"
        );
    }

    #[test]
    fn v3_root_relabelled_v2_is_rejected() {
        let f = fixture();
        let (statement, mut root, _) = prove_v3(&f);
        root.format = RootFormat::V2;
        // A v2 root decodes its segments' statements from their public input: v3's is not one.
        let e = verify_root(root, &statement, &f.statements, &policy()).unwrap_err();
        assert!(
            matches!(&e, VerifyError::Segment { rollup_id: 1, error, .. }
                if matches!(**error, VerifyError::BatchStatementMismatch { field: "encoding" })),
            "{e}"
        );
    }

    #[test]
    fn segments_split_at_rollups_and_capacity() {
        let f = fixture();
        assert_eq!(
            plan_segments(&f.statements, CAPACITY),
            vec![(0, 2), (2, 3), (3, 4), (4, 5)]
        );
        assert_eq!(plan_segments(&f.statements, 1000), vec![(0, 3), (3, 5)]);
        let mut relisted = f.statements.clone();
        relisted[1].instruments_root = crate::hash::poseidon2::Digest::ZERO;
        assert_eq!(
            plan_segments(&relisted, 1000),
            vec![(0, 1), (1, 2), (2, 3), (3, 5)]
        );
    }

    #[test]
    fn root_proof_round_trips_and_covers_every_batch() {
        let f = fixture();
        let (statement, root) = prove(&f, &f.statements);
        let bytes = root.to_bytes();
        assert!(RootProof::is_v2(&bytes));
        let coverage = verify_root_bytes(&bytes, &statement, &f.statements, &policy()).unwrap();
        assert_eq!(
            coverage,
            RootCoverage {
                segments: 4,
                batches: 5,
                ops: 192,
                // Segment (0, 2) holds batches 0 and 1: the root between them is not opened.
                interior: vec![0],
            }
        );
        let one_core = verify_root_on(
            RootProof::from_bytes(&bytes).unwrap(),
            &statement,
            &f.statements,
            &policy(),
            1,
        )
        .unwrap();
        assert_eq!(one_core, coverage);
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            RootProof::from_bytes(&trailing),
            Err(ProofFormatError::TrailingBytes { count: 1 })
        ));
        // The last segment's length now runs past the end.
        assert!(matches!(
            RootProof::from_bytes(&bytes[..bytes.len() - 1]),
            Err(ProofFormatError::LengthOverflow { .. })
        ));
        assert!(matches!(
            RootProof::from_bytes(&bytes[..ROOT_MAGIC.len() + 2]),
            Err(ProofFormatError::Truncated { .. })
        ));
        assert!(matches!(
            RootProof::from_bytes(&root.day.to_bytes()),
            Err(ProofFormatError::BadMagic { .. })
        ));
    }

    #[test]
    fn root_with_a_segment_left_out_is_rejected() {
        let f = fixture();
        let (statement, mut root) = prove(&f, &f.statements);
        root.segments.remove(1);
        let e = verify_root(root, &statement, &f.statements, &policy()).unwrap_err();
        assert_eq!(
            e,
            VerifyError::SegmentCoverage {
                rollup_id: 1,
                expected: "a segment of rollup 1 from seq 7".into(),
                got: "rollup 2 from seq 5".into()
            }
        );
    }

    #[test]
    fn root_with_the_last_segment_left_out_is_rejected() {
        let f = fixture();
        let (statement, mut root) = prove(&f, &f.statements);
        root.segments.pop();
        let e = verify_root(root, &statement, &f.statements, &policy()).unwrap_err();
        assert!(
            matches!(e, VerifyError::SegmentCoverage { rollup_id: 2, .. }),
            "{e}"
        );
    }

    #[test]
    fn root_with_a_segment_claiming_more_batches_is_rejected() {
        let f = fixture();
        let (statement, mut root) = prove(&f, &f.statements);
        // The first segment proves seq 5..=6; it claims 5..=7, which would skip seq 7's own.
        root.segments[0].last_seq = 7;
        root.segments.remove(1);
        let e = verify_root(root, &statement, &f.statements, &policy()).unwrap_err();
        assert!(
            matches!(&e, VerifyError::Segment { rollup_id: 1, first_seq: 5, last_seq: 7, error }
                if matches!(**error, VerifyError::BatchStatementMismatch { field: "n_batches" })),
            "{e}"
        );
    }

    /// The honest segments under a valid day-tree proof of statements in which batch `k`'s
    /// post-state root and batch `k + 1`'s pre-state root are one invented root.
    fn invented_root_after(
        f: &Fixture,
        k: usize,
    ) -> (DayStatement, RootProof, Vec<BatchStatement>) {
        let (_, root) = prove(f, &f.statements);
        let mut lying = f.statements.clone();
        let fake = crate::hash::poseidon2::hash_elements(
            crate::hash::poseidon2::Domain::Message,
            &[M31::from_u32_unchecked(1)],
        );
        lying[k].post_state_root = fake;
        lying[k + 1].pre_state_root = fake;
        let (statement, day) = prove_day(DAY, &lying, [7; 32], SecurityConfig::testing()).unwrap();
        let forged = RootProof {
            format: root.format,
            day,
            segments: root.segments,
        };
        (statement, forged, lying)
    }

    #[test]
    fn statements_with_invented_state_roots_are_rejected() {
        // The operator publishes a chain of state roots the operations do not produce (batch
        // 6's post root and batch 7's pre root replaced consistently) with a valid day proof
        // over those statements: the segment proving the real execution no longer matches.
        let f = fixture();
        let (statement, forged, lying) = invented_root_after(&f, 1);
        let e = verify_root(forged, &statement, &lying, &policy()).unwrap_err();
        assert!(
            matches!(&e, VerifyError::Segment { rollup_id: 1, first_seq: 5, error, .. }
                if matches!(**error, VerifyError::BatchStatementMismatch { field: "post_state_root" })),
            "{e}"
        );
    }

    #[test]
    fn invented_root_inside_a_segment_is_left_to_the_leaf_proofs() {
        // The same lie between batches 5 and 6 of rollup 1, which one segment proves together:
        // the segment states only the run's first pre and last post root, so the root proof
        // verifies — and names batch 0 as the one whose post-state root it does not prove, so
        // that the audit demands that batch's validity leaf (archive's `state-roots` check).
        let f = fixture();
        let (statement, forged, lying) = invented_root_after(&f, 0);
        let coverage = verify_root(forged, &statement, &lying, &policy()).unwrap();
        assert_eq!(coverage.interior, vec![0]);
    }

    #[test]
    fn two_bad_segments_report_the_first_whatever_the_threads() {
        let mut f = fixture();
        let (statement, _) = prove(&f, &f.statements);
        for b in [0, 3] {
            let i = f.ops[b]
                .iter()
                .position(|o| matches!(o, Operation::Trade { .. }))
                .unwrap();
            if let Operation::Trade { price, .. } = &mut f.ops[b][i] {
                *price += 1;
            }
        }
        let (_, root) = prove(&f, &f.statements);
        for threads in [1, 4] {
            let e = verify_root_on(root.clone(), &statement, &f.statements, &policy(), threads)
                .unwrap_err();
            assert!(
                matches!(
                    &e,
                    VerifyError::Segment {
                        rollup_id: 1,
                        first_seq: 5,
                        ..
                    }
                ),
                "{threads} threads: {e}"
            );
        }
    }

    #[test]
    fn segment_of_other_operations_is_rejected() {
        // A segment proven over rollup 2's operations with one trade's price changed: its data
        // roots are not the published batches'.
        let mut f = fixture();
        let (statement, _) = prove(&f, &f.statements);
        let i = f.ops[3]
            .iter()
            .position(|o| matches!(o, Operation::Trade { .. }))
            .unwrap();
        if let Operation::Trade { price, .. } = &mut f.ops[3][i] {
            *price += 1;
        }
        let (_, root) = prove(&f, &f.statements);
        let e = verify_root(root, &statement, &f.statements, &policy()).unwrap_err();
        assert!(
            matches!(&e, VerifyError::Segment { rollup_id: 2, error, .. }
                if matches!(**error, VerifyError::BatchStatementMismatch { field: "data_root" })),
            "{e}"
        );
    }

    #[test]
    fn root_with_a_segment_relabelled_batch_validity_v3_is_rejected() {
        let f = fixture();
        let (statement, mut root) = prove(&f, &f.statements);
        root.segments[1].proof.air = crate::proof::AirId::BatchValidityV3;
        let e = verify_root(root, &statement, &f.statements, &policy()).unwrap_err();
        assert!(
            matches!(&e, VerifyError::Segment { error, .. }
                if matches!(**error, VerifyError::WrongAir { got: crate::proof::AirId::BatchValidityV3, .. })),
            "{e}"
        );
    }

    #[test]
    fn root_checked_against_other_batch_statements_is_rejected() {
        let f = fixture();
        let (statement, root) = prove(&f, &f.statements);
        let e = verify_root(root, &statement, &f.statements[..4], &policy()).unwrap_err();
        assert_eq!(e, VerifyError::DayStatementMismatch { field: "day_root" });
    }
}
