//! Runs proven ahead of the day's close (feature `prover`; `specs/day-proof.md` §6.5). A run is
//! what [`plan_segments`](super::root::plan_segments) cuts: consecutive batches of one rollup
//! up to the segment capacity. Once the next batch of the rollup does not fit, the run is final
//! — nothing later in the day changes it — so its segment proofs (the run cut again by shape
//! class) can be made and stored while the day is still open, and the close proves only what
//! is left. The stored form is the prover's own (never published): a run read back is checked
//! against the statements the close derives, and proven again if it does not verify.

use super::recursive::{close_container, open_container, write_proof};
use super::root::{segment_statement, shaped_statement};
use super::statement::BatchStatement;
use crate::config::{SecurityConfig, VerifierPolicy};
use crate::error::ProveError;
use crate::proof::{ChannelId, Proof, ProofFormatError};
use crate::validity::{
    plan_classes_as, prove_in_class_as, verify_validity, ShapeClass, ValidityAir, ValidityStatement,
};
use crate::venue::{Operation, Venue};

/// File magic of [`ProvenRun::to_bytes`].
pub const RUN_MAGIC: [u8; 8] = *b"POERUN01";

/// One segment of a run: batches `first_seq ..= last_seq` proven in `class`.
#[derive(Debug, Clone)]
pub struct ProvenPiece {
    /// First batch.
    pub first_seq: u64,
    /// Last batch.
    pub last_seq: u64,
    /// Its shape class.
    pub class: ShapeClass,
    /// Its batch-validity proof (v3 for a v4 root, v4 for a v5 root).
    pub proof: Proof,
}

/// A run's segment proofs.
#[derive(Debug, Clone)]
pub struct ProvenRun {
    /// The rollup.
    pub rollup_id: u32,
    /// First batch of the run.
    pub first_seq: u64,
    /// Last batch of the run.
    pub last_seq: u64,
    /// Its segments, in order.
    pub pieces: Vec<ProvenPiece>,
}

impl ProvenRun {
    /// `POERUN01`, `rollup_id u32, first_seq u64, last_seq u64`, a `u32` piece count, per
    /// piece `first_seq u64, last_seq u64, log_ops u8, log_state u8` and its proof (`u32`
    /// length, bytes); little-endian, nothing after.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = RUN_MAGIC.to_vec();
        out.extend(self.rollup_id.to_le_bytes());
        out.extend(self.first_seq.to_le_bytes());
        out.extend(self.last_seq.to_le_bytes());
        out.extend((self.pieces.len() as u32).to_le_bytes());
        for p in &self.pieces {
            out.extend(p.first_seq.to_le_bytes());
            out.extend(p.last_seq.to_le_bytes());
            out.push(p.class.log_ops as u8);
            out.push(p.class.log_state as u8);
            write_proof(&mut out, &p.proof);
        }
        out
    }

    /// Inverse of [`Self::to_bytes`].
    ///
    /// # Errors
    /// [`ProofFormatError`] for another magic, a class outside the catalogue, a non-canonical
    /// proof, trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProofFormatError> {
        let mut r = open_container(bytes, RUN_MAGIC)?;
        let (rollup_id, first_seq, last_seq) = (r.u32()?, r.u64()?, r.u64()?);
        let n = super::root::read_count(&mut r, 22)?;
        let mut pieces = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let (first_seq, last_seq) = (r.u64()?, r.u64()?);
            let class = super::recursive::read_class(&mut r)?;
            pieces.push(ProvenPiece {
                first_seq,
                last_seq,
                class,
                proof: super::root::read_proof(&mut r)?,
            });
        }
        close_container(&r)?;
        Ok(Self {
            rollup_id,
            first_seq,
            last_seq,
            pieces,
        })
    }
}

/// A segment proven, with its class and the statement it proves.
pub(crate) struct Piece {
    pub first: usize,
    pub last: usize,
    pub class: ShapeClass,
    pub statement: ValidityStatement,
    pub proof: Proof,
}

/// Proves one run: `statements` and `ops` its batches, `venue` the rollup's state before the
/// first, walked past the last. Each piece in its class, under `channel` and `air`.
///
/// # Errors
/// As [`plan_classes_as`] and [`prove_in_class_as`], wrapped in [`ProveError::Segment`].
pub fn prove_run(
    venue: &mut Venue,
    statements: &[BatchStatement],
    ops: &[&[Operation]],
    config: SecurityConfig,
    channel: ChannelId,
    air: ValidityAir,
) -> Result<ProvenRun, ProveError> {
    let pieces = prove_pieces(venue, statements, ops, config, channel, air)?;
    Ok(to_run(statements, &pieces))
}

pub(crate) fn to_run(statements: &[BatchStatement], pieces: &[Piece]) -> ProvenRun {
    ProvenRun {
        rollup_id: statements[0].rollup_id,
        first_seq: statements[0].seq,
        last_seq: statements[statements.len() - 1].seq,
        pieces: pieces
            .iter()
            .map(|p| ProvenPiece {
                first_seq: statements[p.first].seq,
                last_seq: statements[p.last].seq,
                class: p.class,
                proof: p.proof.clone(),
            })
            .collect(),
    }
}

pub(crate) fn prove_pieces(
    venue: &mut Venue,
    statements: &[BatchStatement],
    ops: &[&[Operation]],
    config: SecurityConfig,
    channel: ChannelId,
    air: ValidityAir,
) -> Result<Vec<Piece>, ProveError> {
    let (first, last) = (&statements[0], &statements[statements.len() - 1]);
    let plan = plan_classes_as(venue, ops, ShapeClass::largest(), air)
        .map_err(|e| segment_error(first, last, e))?;
    let mut out = Vec::with_capacity(plan.len());
    for p in plan {
        let (first, last) = (&statements[p.batches.start], &statements[p.batches.end - 1]);
        let in_piece = |error| segment_error(first, last, error);
        let piece = &ops[p.batches.clone()];
        let (statement, proof) =
            prove_in_class_as(venue, piece, config, channel, p.class, air).map_err(in_piece)?;
        debug_assert_eq!(statement.post_state_root, last.post_state_root);
        for b in piece {
            venue
                .apply_batch(b)
                .map_err(|v| in_piece(ProveError::Rule(v)))?;
        }
        out.push(Piece {
            first: p.batches.start,
            last: p.batches.end - 1,
            class: p.class,
            statement,
            proof,
        });
    }
    Ok(out)
}

/// `run`'s pieces if they are this run's and each verifies, under `config`, against the
/// statement rebuilt from `statements` (the run's batches) and `venue`'s instruments; `venue`
/// is then walked past the run. `None` (and `venue` untouched) otherwise.
pub(crate) fn reuse_pieces(
    run: &ProvenRun,
    venue: &mut Venue,
    statements: &[BatchStatement],
    ops: &[&[Operation]],
    config: SecurityConfig,
    air: ValidityAir,
) -> Option<Vec<Piece>> {
    let (first, last) = (&statements[0], &statements[statements.len() - 1]);
    if (run.rollup_id, run.first_seq, run.last_seq) != (first.rollup_id, first.seq, last.seq) {
        return None;
    }
    let mut out = Vec::with_capacity(run.pieces.len());
    let mut at = 0usize;
    for p in &run.pieces {
        let len = statements[at..]
            .iter()
            .take_while(|s| s.seq <= p.last_seq)
            .count();
        if statements.get(at).is_none_or(|s| s.seq != p.first_seq)
            || len == 0
            || statements[at + len - 1].seq != p.last_seq
            || p.proof.config != config
        {
            return None;
        }
        let claimed = shaped_statement(p.class.shape(), Some(venue.instruments().to_vec())).ok()?;
        let statement = segment_statement(&statements[at..at + len], &claimed, air);
        verify_validity(
            p.proof.clone(),
            &statement,
            &VerifierPolicy::insecure_for_tests(),
        )
        .ok()?;
        out.push(Piece {
            first: at,
            last: at + len - 1,
            class: p.class,
            statement,
            proof: p.proof.clone(),
        });
        at += len;
    }
    if at != statements.len() {
        return None;
    }
    let mut walked = venue.clone();
    for b in ops {
        walked.apply_batch(b).ok()?;
    }
    *venue = walked;
    Some(out)
}

/// `error` as the failure of the segment over batches `first ..= last`.
pub(crate) fn segment_error(
    first: &BatchStatement,
    last: &BatchStatement,
    error: ProveError,
) -> ProveError {
    ProveError::Segment {
        rollup_id: first.rollup_id,
        first_seq: first.seq,
        last_seq: last.seq,
        error: Box::new(error),
    }
}
