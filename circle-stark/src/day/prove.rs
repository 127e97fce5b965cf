//! Proving the day (feature `prover`): the day-tree proof, and the daily root proof that
//! carries it with the day's segment proofs. Its verifier is `super::root`.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use super::root::{plan_segments, RootFormat, RootProof, Segment, SEGMENT_CAPACITY_OPS};
use super::runs::{prove_pieces, reuse_pieces, segment_error, to_run, ProvenRun};
use super::statement::{BatchStatement, DayStatement};
use crate::config::SecurityConfig;
use crate::data_root::prove::prove_records;
use crate::encoding::Record;
use crate::error::ProveError;
use crate::field::M31;
use crate::proof::ChannelId;
use crate::proof::{AirId, Proof};
use crate::validity::{prove_segment, ShapeClass, ValidityAir};
use crate::venue::{Operation, Venue};

/// Proves a day: the batch statements (canonical order, chained per rollup) are the leaves of
/// the day tree, with the day's summary and `manifest_hash` bound as public input
/// (`specs/day-proof.md`).
///
/// # Errors
/// [`ProveError::Day`] for statements that are not a day; otherwise as [`crate::data_root::prove_data_root`].
pub fn prove_day(
    day: u32,
    statements: &[BatchStatement],
    manifest_hash: [u8; 32],
    config: SecurityConfig,
) -> Result<(DayStatement, Proof), ProveError> {
    let statement = DayStatement::derive(day, statements, manifest_hash)?;
    let records: Vec<M31> = statements.iter().flat_map(Record::encode).collect();
    let bound = statement.bound_inputs();
    let (inner, proof) = prove_records(
        AirId::DayRoot,
        &records,
        BatchStatement::LIMBS,
        |_| bound,
        config,
    )?;
    debug_assert_eq!(inner, statement.data_root_statement());
    Ok((statement, proof))
}

/// The daily root proof (`specs/day-proof.md` §3–4): the day-tree proof over `statements`
/// (canonical order; `ops[i]` are batch `i`'s operations) and the manifest hash, and one
/// batch-validity segment proof per run of a rollup's batches ([`plan_segments`]), each
/// rollup's state walked forward from `venues` (its state before its first batch of the day).
///
/// # Errors
/// [`ProveError::NoVenue`] for a rollup without a starting state, [`ProveError::Segment`]
/// for a segment that does not prove (a batch that does not apply), otherwise as
/// [`prove_day`].
pub fn prove_root(
    day: u32,
    statements: &[BatchStatement],
    ops: &[&[Operation]],
    manifest_hash: [u8; 32],
    venues: &HashMap<u32, Venue>,
    config: SecurityConfig,
) -> Result<RootProof, ProveError> {
    prove_root_as(
        RootFormat::V2,
        day,
        statements,
        ops,
        manifest_hash,
        venues,
        config,
    )
}

/// [`prove_root`] in either format. v3: each run of a rollup's batches that [`plan_segments`]
/// gives is cut again by shape class ([`plan_classes`]: exact rows, the cheapest class that
/// holds each segment) and every segment proven under `poe/batch-validity/v3` in its class.
///
/// # Errors
/// As [`prove_root`]; v3 also [`ProveError::NoShapeClass`] (in a [`ProveError::Segment`])
/// for a batch that no class holds.
pub fn prove_root_as(
    format: RootFormat,
    day: u32,
    statements: &[BatchStatement],
    ops: &[&[Operation]],
    manifest_hash: [u8; 32],
    venues: &HashMap<u32, Venue>,
    config: SecurityConfig,
) -> Result<RootProof, ProveError> {
    assert_eq!(
        statements.len(),
        ops.len(),
        "one list of operations per batch"
    );
    let (_, day) = prove_day(day, statements, manifest_hash, config)?;
    let classes = (format == RootFormat::V3).then_some(ValidityAir::V3);
    let segments = prove_segments(
        statements,
        ops,
        venues,
        config,
        ChannelId::Blake2s,
        classes,
        &mut Runs::none(),
    )?
    .into_iter()
    .map(|p| p.segment)
    .collect();
    Ok(RootProof {
        format,
        day,
        segments,
    })
}

/// A segment proven, with its class (v3) and the statement it proves.
pub(crate) struct ProvenSegment {
    pub segment: Segment,
    pub class: Option<ShapeClass>,
    pub statement: crate::validity::ValidityStatement,
}

/// Where a day's prover finds runs proven before the close and leaves the ones it proves
/// ([`super::runs`]), and the capacity it cuts runs at.
pub struct Runs<'a> {
    /// Most operations in one run ([`SEGMENT_CAPACITY_OPS`]; smaller in tests, to make runs).
    pub capacity_ops: usize,
    /// A run proven before, by rollup, first and last seq.
    pub get: Option<&'a dyn Fn(u32, u64, u64) -> Option<ProvenRun>>,
    /// Hears of each run proven here.
    pub put: Option<&'a mut dyn FnMut(&ProvenRun)>,
    /// Runs found by `get` and used.
    pub reused: usize,
}

impl std::fmt::Debug for Runs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runs")
            .field("capacity_ops", &self.capacity_ops)
            .field("reused", &self.reused)
            .finish_non_exhaustive()
    }
}

impl Runs<'_> {
    /// No runs proven before; runs at the full capacity.
    pub fn none() -> Runs<'static> {
        Runs {
            capacity_ops: SEGMENT_CAPACITY_OPS,
            get: None,
            put: None,
            reused: 0,
        }
    }
}

/// The day's segments ([`plan_segments`]; with `classes` (AIR v3 or v4), each run cut again by
/// shape class and proven under that AIR in its class — or taken from `runs` where it was
/// proven before and still verifies), each rollup's state walked forward from `venues`.
pub(crate) fn prove_segments(
    statements: &[BatchStatement],
    ops: &[&[Operation]],
    venues: &HashMap<u32, Venue>,
    config: SecurityConfig,
    channel: ChannelId,
    classes: Option<ValidityAir>,
    runs: &mut Runs<'_>,
) -> Result<Vec<ProvenSegment>, ProveError> {
    let mut walked: HashMap<u32, Venue> = HashMap::new();
    let mut segments = Vec::new();
    for (start, end) in plan_segments(statements, runs.capacity_ops) {
        let (first, last) = (&statements[start], &statements[end - 1]);
        let venue = match walked.entry(first.rollup_id) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(venues.get(&first.rollup_id).cloned().ok_or(
                ProveError::NoVenue {
                    rollup_id: first.rollup_id,
                    seq: first.seq,
                },
            )?),
        };
        let batches = &ops[start..end];
        let run_statements = &statements[start..end];
        if let Some(air) = classes {
            let cached = runs
                .get
                .and_then(|get| get(first.rollup_id, first.seq, last.seq))
                .and_then(|run| reuse_pieces(&run, venue, run_statements, batches, config, air));
            let pieces = match cached {
                Some(p) => {
                    runs.reused += 1;
                    p
                }
                None => {
                    let p = prove_pieces(venue, run_statements, batches, config, channel, air)?;
                    if let Some(put) = runs.put.as_mut() {
                        put(&to_run(run_statements, &p));
                    }
                    p
                }
            };
            for p in pieces {
                let (first, last) = (&run_statements[p.first], &run_statements[p.last]);
                segments.push(ProvenSegment {
                    segment: Segment {
                        rollup_id: first.rollup_id,
                        first_seq: first.seq,
                        last_seq: last.seq,
                        proof: p.proof,
                    },
                    class: Some(p.class),
                    statement: p.statement,
                });
            }
            continue;
        }
        // v2: the run is one segment.
        let (statement, proof) = prove_segment(venue, batches, config)
            .map_err(|error| segment_error(first, last, error))?;
        debug_assert_eq!(statement.post_state_root, last.post_state_root);
        for b in batches {
            venue
                .apply_batch(b)
                .map_err(|v| segment_error(first, last, ProveError::Rule(v)))?;
        }
        segments.push(ProvenSegment {
            segment: Segment {
                rollup_id: first.rollup_id,
                first_seq: first.seq,
                last_seq: last.seq,
                proof,
            },
            class: None,
            statement,
        });
    }
    Ok(segments)
}
