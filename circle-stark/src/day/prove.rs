//! Proving the day (feature `prover`): the day-tree proof, and the daily root proof that
//! carries it with the day's segment proofs. Its verifier is `super::root`.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use super::root::{plan_segments, RootFormat, RootProof, Segment, SEGMENT_CAPACITY_OPS};
use super::statement::{BatchStatement, DayStatement};
use crate::config::SecurityConfig;
use crate::data_root::prove::prove_records;
use crate::encoding::Record;
use crate::error::ProveError;
use crate::field::M31;
use crate::proof::ChannelId;
use crate::proof::{AirId, Proof};
use crate::validity::{plan_classes, prove_in_class, prove_segment, ShapeClass};
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
    let classes = format == RootFormat::V3;
    let segments = prove_segments(statements, ops, venues, config, ChannelId::Blake2s, classes)?
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

/// The day's segments ([`plan_segments`]; with `classes`, each run cut again by shape class
/// and proven under `poe/batch-validity/v3` in its class), each rollup's state walked forward
/// from `venues`.
pub(crate) fn prove_segments(
    statements: &[BatchStatement],
    ops: &[&[Operation]],
    venues: &HashMap<u32, Venue>,
    config: SecurityConfig,
    channel: ChannelId,
    classes: bool,
) -> Result<Vec<ProvenSegment>, ProveError> {
    let mut walked: HashMap<u32, Venue> = HashMap::new();
    let mut segments = Vec::new();
    for (start, end) in plan_segments(statements, SEGMENT_CAPACITY_OPS) {
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
        let in_segment = |error| segment_error(first, last, error);
        let batches = &ops[start..end];
        // v2: the run is one segment; v3: the run cut by class, each piece in its class.
        let pieces: Vec<(std::ops::Range<usize>, Option<ShapeClass>)> = if classes {
            plan_classes(venue, batches, ShapeClass::largest())
                .map_err(in_segment)?
                .into_iter()
                .map(|p| (p.batches, Some(p.class)))
                .collect()
        } else {
            vec![(0..batches.len(), None)]
        };
        for (range, class) in pieces {
            let (first, last) = (
                &statements[start + range.start],
                &statements[start + range.end - 1],
            );
            let in_piece = |error| segment_error(first, last, error);
            let piece = &batches[range];
            let (statement, proof) = match class {
                None => prove_segment(venue, piece, config),
                Some(c) => prove_in_class(venue, piece, config, channel, c),
            }
            .map_err(in_piece)?;
            debug_assert_eq!(statement.post_state_root, last.post_state_root);
            for b in piece {
                venue
                    .apply_batch(b)
                    .map_err(|v| in_piece(ProveError::Rule(v)))?;
            }
            segments.push(ProvenSegment {
                segment: Segment {
                    rollup_id: first.rollup_id,
                    first_seq: first.seq,
                    last_seq: last.seq,
                    proof,
                },
                class,
                statement,
            });
        }
    }
    Ok(segments)
}

/// `error` as the failure of the segment over batches `first ..= last`.
fn segment_error(first: &BatchStatement, last: &BatchStatement, error: ProveError) -> ProveError {
    ProveError::Segment {
        rollup_id: first.rollup_id,
        first_seq: first.seq,
        last_seq: last.seq,
        error: Box::new(error),
    }
}
