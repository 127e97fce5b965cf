//! The tracing verifier: poe's own implementation of stwo 2.3.0's STARK verification
//! (`stwo::core::verifier::verify` with its commitment scheme, lifted Merkle trees and FRI),
//! step for step and in the same order, that records every value it computes. The record is
//! the witness a recursive verifier proves it recomputed (`specs/recursion.md` §6).
//!
//! It starts where stwo's `verify` starts — after the caller has mixed its preamble and
//! committed the preprocessed, main and interaction trees — and accepts exactly the proofs
//! stwo accepts: the differential tests run both on honest proofs and on thousands of
//! single-byte mutations and compare verdicts. Where stwo would panic on a malformed proof
//! (an `assert!`, an `unwrap`, a `zip_eq`), this verifier returns
//! [`VerificationError::InvalidStructure`] instead.
//!
//! FRI with any fold step (packed leaves where stwo packs them); the lifting size left to the
//! prover, as poe configures it (a fixed lifting size is refused as a structure error).

use num_traits::One;
use stwo::core::air::{Component, Components};
use stwo::core::channel::Channel;
use stwo::core::circle::CirclePoint;
use stwo::core::fields::cm31::CM31;
use stwo::core::fields::m31::BaseField;
use stwo::core::fields::qm31::{SecureField, SECURE_EXTENSION_DEGREE};
use stwo::core::fields::FieldExpOps;
use stwo::core::pcs::{CommitmentSchemeVerifier, TreeVec};
use stwo::core::proof::StarkProof;
use stwo::core::vcs_lifted::merkle_hasher::MerkleHasherLifted;
use stwo::core::verifier::{VerificationError, COMPOSITION_LOG_SPLIT, PREPROCESSED_TRACE_IDX};

use stwo::core::vcs::blake2_hash::Blake2sHash;

use crate::error::VerifyError;
use crate::hash::poseidon2::Digest;
use crate::proof::PoeChannel;
use crate::stark::{map_stwo_error, StarkCheck};

mod deep;
mod fri;
mod merkle;

/// One transcript operation after `verify`'s entry, with the transcript state after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptStep {
    /// What the verifier used it for.
    pub label: &'static str,
    pub op: TranscriptOp,
    /// The channel's digest after the operation, as eight 32-bit words
    /// ([`PoeChannel::transcript_state`]).
    pub state: [u32; 8],
}

/// A transcript operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TranscriptOp {
    /// A Merkle root (the root itself is in [`TreeTrace`] or [`FriLayerTrace`]).
    MixRoot,
    /// `n` secure field elements.
    MixFelts(usize),
    MixU64(u64),
    DrawFelt(SecureField),
    DrawU32s(Vec<u32>),
}

/// A committed tree as the verifier knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeTrace<Hash> {
    pub root: Hash,
    /// Log sizes of the committed (blown-up) columns, in commitment order.
    pub column_log_sizes: Vec<u32>,
    /// Tree height: the lifting size of its largest column.
    pub height: u32,
}

/// One opened leaf: its position in the tree, the row it hashes (columns sorted by log size,
/// stable) and the hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleLeaf<Hash> {
    pub position: usize,
    pub row: Vec<BaseField>,
    pub hash: Hash,
}

/// One node compression on an authentication path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleNode<Hash> {
    /// 1 for the layer just above the leaves, `height` for the root.
    pub layer: u32,
    /// Index of the parent within its layer.
    pub index: usize,
    pub left: Hash,
    pub right: Hash,
    pub parent: Hash,
    /// Whether one child came from the proof's witness (not from a lower opened node).
    pub from_witness: bool,
}

/// A verified decommitment of one tree: leaves, then node compressions bottom-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTrace<Hash> {
    pub leaves: Vec<MerkleLeaf<Hash>>,
    pub nodes: Vec<MerkleNode<Hash>>,
}

/// One DEEP-quotient batch: the columns sampled at one point, with the line coefficients
/// `(α^k·a, α^k·b, α^k·c)` of each term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeepBatch {
    pub point: CirclePoint<SecureField>,
    /// `(flat column index, sampled value, coefficients)`.
    pub terms: Vec<(usize, SecureField, [SecureField; 3])>,
}

/// The DEEP quotient at one query: the lifting-domain point and the accumulated value the
/// first FRI layer must agree with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeepQuery {
    pub position: usize,
    pub domain_point: CirclePoint<BaseField>,
    /// Per batch, the inverse of the line-through-the-point-and-conjugate at `domain_point`.
    pub denominator_inverses: Vec<CM31>,
    pub value: SecureField,
}

/// One queried subset of a FRI layer folded to one value of the next: `2^fold_step`
/// consecutive positions, folded as stwo folds them (circle → line by the points' `y` then
/// along the line with `α²` on the first layer, by the points' `x` with `α, α², …` on line
/// layers). With fold step 1 the subset is a sibling pair and the fold is
/// `(a + b) + α·(a − b)·t⁻¹`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fold {
    /// Position of the folded value in the next layer.
    pub position: usize,
    /// The values at positions `position·2^fold_step ..` of this layer.
    pub values: Vec<SecureField>,
    pub folded: SecureField,
}

/// One FRI layer: its commitment, the decommitment and the folds out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FriLayerTrace<Hash> {
    pub commitment: Hash,
    pub alpha: SecureField,
    pub log_size: u32,
    /// How many times this layer folds into the next.
    pub fold_step: u32,
    pub merkle: MerkleTrace<Hash>,
    pub folds: Vec<Fold>,
}

/// Everything the verification of one proof computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierTrace<Hash> {
    /// The caller's transcript before `verify` (`poe` verifiers: preamble, preprocessed and
    /// main roots, relation draws, LogUp sums, interaction root), each step's label with the
    /// state after it. Empty from [`trace_verify`] alone.
    pub prelude: Vec<(&'static str, [u32; 8])>,
    /// The transcript state at `verify`'s entry.
    pub entry_state: [u32; 8],
    pub transcript: Vec<TranscriptStep>,
    /// Preprocessed, main, interaction and composition trees.
    pub trees: Vec<TreeTrace<Hash>>,
    pub composition_coeff: SecureField,
    /// The random parameter `t` the out-of-domain point is derived from.
    pub oods_t: SecureField,
    pub oods_point: CirclePoint<SecureField>,
    /// The mask's points, per tree and column.
    pub sample_points: Vec<Vec<Vec<CirclePoint<SecureField>>>>,
    /// The proof's sampled values, per tree and column.
    pub sampled_values: Vec<Vec<Vec<SecureField>>>,
    /// The composition polynomial at the OODS point, from its sampled coordinates.
    pub composition_oods_eval: SecureField,
    /// The same value recomputed from the trace samples by the AIR's constraints.
    pub composition_from_constraints: SecureField,
    pub lifting_log_size: u32,
    pub deep_coeff: SecureField,
    pub pow_nonce: u64,
    /// Query positions as drawn, before sorting and deduplication.
    pub raw_queries: Vec<usize>,
    /// Sorted, deduplicated positions in the lifting domain.
    pub queries: Vec<usize>,
    /// The positions opened in the preprocessed tree.
    pub preprocessed_queries: Vec<usize>,
    /// Decommitment of each tree, in tree order.
    pub tree_openings: Vec<MerkleTrace<Hash>>,
    pub deep_batches: Vec<DeepBatch>,
    pub deep_queries: Vec<DeepQuery>,
    /// The first (circle) layer, then the inner (line) layers.
    pub fri_layers: Vec<FriLayerTrace<Hash>>,
    /// The last layer polynomial's coefficients (bit-reversed, as in the proof).
    pub last_layer_poly: Vec<SecureField>,
    /// Per final query: the line-domain x and the value the folds reached.
    pub last_layer_checks: Vec<(BaseField, SecureField)>,
}

impl<Hash> VerifierTrace<Hash> {
    /// Node compressions in all Merkle trees, trace and FRI.
    pub fn n_node_hashes(&self) -> usize {
        self.tree_openings
            .iter()
            .chain(self.fri_layers.iter().map(|l| &l.merkle))
            .map(|m| m.nodes.len())
            .sum()
    }

    /// FRI folds over all layers.
    pub fn n_folds(&self) -> usize {
        self.fri_layers.iter().map(|l| l.folds.len()).sum()
    }
}

fn structure(msg: impl Into<String>) -> VerificationError {
    VerificationError::InvalidStructure(msg.into())
}

/// Forwards transcript operations to the channel and records each with the state after it.
struct Recorder<'a, MC: PoeChannel> {
    channel: &'a mut MC::C,
    steps: Vec<TranscriptStep>,
}

impl<MC: PoeChannel> Recorder<'_, MC> {
    fn push(&mut self, label: &'static str, op: TranscriptOp) {
        let state = MC::transcript_state(self.channel);
        self.steps.push(TranscriptStep { label, op, state });
    }

    fn mix_root(&mut self, label: &'static str, root: <MC::H as MerkleHasherLifted>::Hash) {
        MC::mix_root(self.channel, root);
        self.push(label, TranscriptOp::MixRoot);
    }

    fn mix_felts(&mut self, label: &'static str, felts: &[SecureField]) {
        self.channel.mix_felts(felts);
        self.push(label, TranscriptOp::MixFelts(felts.len()));
    }

    fn mix_u64(&mut self, label: &'static str, value: u64) {
        self.channel.mix_u64(value);
        self.push(label, TranscriptOp::MixU64(value));
    }

    fn draw_felt(&mut self, label: &'static str) -> SecureField {
        let x = self.channel.draw_secure_felt();
        self.push(label, TranscriptOp::DrawFelt(x));
        x
    }

    fn draw_u32s(&mut self, label: &'static str) -> Vec<u32> {
        let words = self.channel.draw_u32s();
        self.push(label, TranscriptOp::DrawU32s(words.clone()));
        words
    }
}

/// Verifies `proof` as `stwo::core::verifier::verify(components, channel, scheme, proof)`
/// does, and returns everything it computed.
///
/// # Errors
/// The [`VerificationError`] stwo returns for the same input; where stwo would panic,
/// [`VerificationError::InvalidStructure`].
pub fn trace_verify<MC: PoeChannel>(
    components: &[&dyn Component],
    channel: &mut MC::C,
    scheme: &CommitmentSchemeVerifier<MC>,
    proof: StarkProof<MC::H>,
) -> Result<VerifierTrace<<MC::H as MerkleHasherLifted>::Hash>, VerificationError> {
    let config = scheme.config;
    let fri_config = config.fri_config;
    let log_blowup = fri_config.log_blowup_factor;
    if config.lifting_log_size.is_some() {
        return Err(structure(
            "the tracing verifier implements FRI without a fixed lifting size",
        ));
    }
    if scheme.trees.is_empty() {
        return Err(structure("no preprocessed tree committed"));
    }
    let entry_state = MC::transcript_state(channel);
    let mut rec = Recorder::<MC> {
        channel,
        steps: Vec::new(),
    };
    let mut trees: Vec<TreeTrace<_>> = scheme
        .trees
        .iter()
        .map(|t| TreeTrace {
            root: t.root,
            column_log_sizes: t.column_log_sizes.clone(),
            height: t.height,
        })
        .collect();

    let components = Components {
        components: components.to_vec(),
        n_preprocessed_columns: trees[PREPROCESSED_TRACE_IDX].column_log_sizes.len(),
    };
    let split_bound = components
        .composition_log_degree_bound()
        .checked_sub(COMPOSITION_LOG_SPLIT)
        .ok_or_else(|| structure("composition degree bound below the split"))?;
    let lifting_log_size = split_bound + log_blowup;
    let max_log_degree_bound = split_bound;

    let composition_coeff = rec.draw_felt("composition coefficient");

    let composition_root = *proof
        .0
        .commitments
        .last()
        .ok_or_else(|| structure("no commitments"))?;
    rec.mix_root("composition root", composition_root);
    let composition_sizes = vec![max_log_degree_bound + log_blowup; 2 * SECURE_EXTENSION_DEGREE];
    trees.push(TreeTrace {
        root: composition_root,
        height: max_log_degree_bound + log_blowup,
        column_log_sizes: composition_sizes,
    });

    let oods_t = rec.draw_felt("OODS point parameter");
    let oods_point = point_from_parameter(oods_t);

    let mut sample_points = components.mask_points(oods_point, max_log_degree_bound, false);
    sample_points.push(vec![vec![oods_point]; 2 * SECURE_EXTENSION_DEGREE]);

    let sampled_values = &proof.0.sampled_values;
    let composition_oods_eval =
        composition_from_coordinates(sampled_values, oods_point, max_log_degree_bound)
            .ok_or_else(|| structure("Unexpected sampled_values structure"))?;

    // stwo's component evaluation indexes the samples by the mask without checking; the shapes
    // are checked here so that a malformed proof is an error.
    check_sample_shape(&sample_points, sampled_values)?;
    let composition_from_constraints = components.eval_composition_polynomial_at_point(
        oods_point,
        sampled_values,
        composition_coeff,
        max_log_degree_bound,
    );
    if composition_oods_eval != composition_from_constraints {
        return Err(VerificationError::OodsNotMatching);
    }

    // The commitment scheme's `verify_values`.
    let commitment_proof = proof.0;
    rec.mix_felts(
        "sampled values",
        &commitment_proof
            .sampled_values
            .iter()
            .flatten()
            .flatten()
            .copied()
            .collect::<Vec<_>>(),
    );
    let deep_coeff = rec.draw_felt("DEEP coefficient");
    // The composition tree is the tallest: FRI's first layer is the lifting domain.
    let first_layer_log_size = lifting_log_size;

    let fri_proof = commitment_proof.fri_proof;
    let fri_commitment = fri::commit(&mut rec, fri_config, &fri_proof, first_layer_log_size)?;

    if !rec
        .channel
        .verify_pow_nonce(config.pow_bits, commitment_proof.proof_of_work)
    {
        return Err(VerificationError::ProofOfWork);
    }
    rec.mix_u64("proof of work", commitment_proof.proof_of_work);

    let raw_queries = draw_queries(&mut rec, first_layer_log_size, fri_config.n_queries);
    let queries: Vec<usize> = raw_queries
        .iter()
        .copied()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let preprocessed_queries = preprocessed_positions(
        &queries,
        lifting_log_size,
        trees[PREPROCESSED_TRACE_IDX].height,
    );

    // Trace decommitments. stwo zips trees, decommitments and values with `zip_eq`.
    let n_trees = trees.len();
    if commitment_proof.decommitments.len() != n_trees
        || commitment_proof.queried_values.len() != n_trees
    {
        return Err(structure(format!(
            "expected {n_trees} decommitments and opened-value trees, got {} and {}",
            commitment_proof.decommitments.len(),
            commitment_proof.queried_values.len()
        )));
    }
    let mut tree_openings = Vec::with_capacity(n_trees);
    for (i, tree) in trees.iter().enumerate() {
        let positions = if i == PREPROCESSED_TRACE_IDX {
            &preprocessed_queries
        } else {
            &queries
        };
        tree_openings.push(merkle::verify::<MC::H>(
            tree,
            positions,
            &commitment_proof.queried_values[i],
            &commitment_proof.decommitments[i].hash_witness,
        )?);
    }

    // DEEP quotients at the queries.
    let column_log_sizes: Vec<Vec<u32>> =
        trees.iter().map(|t| t.column_log_sizes.clone()).collect();
    let (deep_batches, deep_queries) = deep::quotients(
        &column_log_sizes,
        &sample_points,
        &commitment_proof.sampled_values,
        deep_coeff,
        &queries,
        &commitment_proof.queried_values,
        lifting_log_size,
    )?;

    let (fri_layers, last_layer_checks) = fri::decommit::<MC::H>(
        &fri_proof,
        &fri_commitment,
        &queries,
        &deep_queries,
        first_layer_log_size,
    )?;

    Ok(VerifierTrace {
        prelude: Vec::new(),
        entry_state,
        transcript: rec.steps,
        trees,
        composition_coeff,
        oods_t,
        oods_point,
        sample_points: sample_points.0,
        sampled_values: commitment_proof.sampled_values.0,
        composition_oods_eval,
        composition_from_constraints,
        lifting_log_size,
        deep_coeff,
        pow_nonce: commitment_proof.proof_of_work,
        raw_queries,
        queries,
        preprocessed_queries,
        tree_openings,
        deep_batches,
        deep_queries,
        fri_layers,
        last_layer_poly: fri_proof.last_layer_poly.to_vec(),
        last_layer_checks,
    })
}

/// The point `((1 − t²)/(1 + t²), 2t/(1 + t²))` of the circle over QM31.
fn point_from_parameter(t: SecureField) -> CirclePoint<SecureField> {
    let t2 = t * t;
    let inv = (t2 + SecureField::one()).inverse();
    CirclePoint {
        x: (SecureField::one() - t2) * inv,
        y: (t + t) * inv,
    }
}

/// `left + x(2^(b−1)·z)·right` with `left`, `right` rebuilt from their four coordinates.
fn composition_from_coordinates(
    sampled_values: &TreeVec<Vec<Vec<SecureField>>>,
    oods_point: CirclePoint<SecureField>,
    max_log_degree_bound: u32,
) -> Option<SecureField> {
    let last = sampled_values.last()?;
    if last.len() != 2 * SECURE_EXTENSION_DEGREE || last.iter().any(|c| c.len() != 1) {
        return None;
    }
    let coords: Vec<SecureField> = last.iter().map(|c| c[0]).collect();
    let left = SecureField::from_partial_evals(coords[..4].try_into().ok()?);
    let right = SecureField::from_partial_evals(coords[4..].try_into().ok()?);
    Some(left + oods_point.repeated_double(max_log_degree_bound - 1).x * right)
}

fn check_sample_shape(
    points: &TreeVec<Vec<Vec<CirclePoint<SecureField>>>>,
    values: &TreeVec<Vec<Vec<SecureField>>>,
) -> Result<(), VerificationError> {
    if points.len() != values.len() {
        return Err(structure(format!(
            "expected samples of {} trees, got {}",
            points.len(),
            values.len()
        )));
    }
    for (tree, (p, v)) in points.iter().zip(values.iter()).enumerate() {
        if p.len() != v.len() {
            return Err(structure(format!(
                "tree {tree}: expected samples of {} columns, got {}",
                p.len(),
                v.len()
            )));
        }
        if let Some(col) = p.iter().zip(v).position(|(p, v)| p.len() != v.len()) {
            return Err(structure(format!(
                "tree {tree} column {col}: expected {} samples, got {}",
                p[col].len(),
                v[col].len()
            )));
        }
    }
    Ok(())
}

/// stwo's `draw_queries`: words from the channel, masked to the domain, until `n` are drawn.
fn draw_queries<MC: PoeChannel>(rec: &mut Recorder<'_, MC>, log_size: u32, n: usize) -> Vec<usize> {
    let mask = (1u32 << log_size) - 1;
    let mut raw = Vec::with_capacity(n);
    while raw.len() < n {
        for word in rec.draw_u32s("query positions") {
            raw.push((word & mask) as usize);
            if raw.len() == n {
                break;
            }
        }
    }
    raw
}

/// Positions of the queries in a preprocessed tree of another height: the pair structure
/// (lowest bit) is kept, the rest shifted (stwo's `prepare_preprocessed_query_positions`).
fn preprocessed_positions(queries: &[usize], lifting: u32, pp_height: u32) -> Vec<usize> {
    if pp_height == 0 {
        return Vec::new();
    }
    if lifting < pp_height {
        return queries
            .iter()
            .map(|pos| (pos >> 1 << (pp_height - lifting + 1)) + (pos & 1))
            .collect();
    }
    queries
        .iter()
        .map(|pos| (pos >> (lifting - pp_height + 1) << 1) + (pos & 1))
        .collect()
}

/// A trace under whichever channel the proof was made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyTrace {
    Blake2s(VerifierTrace<Blake2sHash>),
    Poseidon2(VerifierTrace<Digest>),
}

/// The tracing verifier as a poe verifier's STARK check; it also records the verifier's
/// transcript before the STARK check.
#[derive(Default)]
pub(crate) struct Tracer {
    prelude: Vec<(&'static str, [u32; 8])>,
}

impl StarkCheck for Tracer {
    type Out<MC: PoeChannel> = VerifierTrace<<MC::H as MerkleHasherLifted>::Hash>;
    fn note<MC: PoeChannel>(&mut self, label: &'static str, channel: &MC::C) {
        self.prelude.push((label, MC::transcript_state(channel)));
    }
    fn check<MC: PoeChannel>(
        self,
        components: &[&dyn Component],
        channel: &mut MC::C,
        scheme: &mut CommitmentSchemeVerifier<MC>,
        stark: StarkProof<MC::H>,
    ) -> Result<Self::Out<MC>, VerifyError> {
        let mut trace =
            trace_verify::<MC>(components, channel, scheme, stark).map_err(map_stwo_error)?;
        trace.prelude = self.prelude;
        Ok(trace)
    }
}
