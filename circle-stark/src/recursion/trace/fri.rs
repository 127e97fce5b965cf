//! FRI as stwo 2.3.0's `FriVerifier` runs it with fold step 1: the commitment phase (roots,
//! folding coefficients, layer count, last layer) and the decommitment (each layer's sibling
//! pairs against its root, the folds, the last layer).

use std::ops::{Add, Mul, Sub};

use num_traits::Zero;
use stwo::core::circle::Coset;
use stwo::core::fields::m31::BaseField;
use stwo::core::fields::qm31::{SecureField, SECURE_EXTENSION_DEGREE};
use stwo::core::fri::{FriConfig, FriProof, FriVerificationError};
use stwo::core::poly::circle::CanonicCoset;
use stwo::core::poly::line::LineDomain;
use stwo::core::utils::bit_reverse_index;
use stwo::core::vcs_lifted::merkle_hasher::MerkleHasherLifted;
use stwo::core::vcs_lifted::verifier::MerkleVerificationError;
use stwo::core::verifier::VerificationError;

use super::{merkle, DeepQuery, Fold, FriLayerTrace, MerkleTrace, Recorder, TreeTrace};
use crate::proof::PoeChannel;

/// What the commitment phase drew and derived.
pub(super) struct FriCommitment {
    first_alpha: SecureField,
    /// Per inner layer, its domain and folding coefficient.
    inner: Vec<(LineDomain, SecureField)>,
    last_domain: LineDomain,
}

/// Mixes the layer roots and draws their coefficients; checks the layer count against the
/// degree bound and the last layer's degree, then mixes its coefficients.
pub(super) fn commit<MC: PoeChannel>(
    rec: &mut Recorder<'_, MC>,
    config: FriConfig,
    proof: &FriProof<MC::H>,
    first_log_size: u32,
) -> Result<FriCommitment, VerificationError> {
    rec.mix_root("FRI first layer root", proof.first_layer.commitment);
    let first_alpha = rec.draw_felt("FRI first layer alpha");
    let mut line_bound = (first_log_size - config.log_blowup_factor)
        .checked_sub(1)
        .ok_or(FriVerificationError::InvalidNumFriLayers)?;
    let mut domain = LineDomain::new(Coset::half_odds(line_bound + config.log_blowup_factor));
    let n_inner = proof.inner_layers.len();
    let mut inner = Vec::with_capacity(n_inner);
    for (layer_index, layer) in proof.inner_layers.iter().enumerate() {
        rec.mix_root("FRI inner layer root", layer.commitment);
        // The last inner layer folds exactly onto the last layer's degree bound.
        if layer_index == n_inner - 1 {
            let rest = line_bound
                .checked_sub(config.log_last_layer_degree_bound)
                .ok_or(FriVerificationError::InvalidNumFriLayers)?;
            if rest != 1 {
                return Err(FriVerificationError::InvalidNumFriLayers.into());
            }
        }
        let alpha = rec.draw_felt("FRI inner layer alpha");
        inner.push((domain, alpha));
        line_bound = line_bound
            .checked_sub(1)
            .ok_or(FriVerificationError::InvalidNumFriLayers)?;
        domain = domain.double();
    }
    if line_bound != config.log_last_layer_degree_bound {
        return Err(FriVerificationError::InvalidNumFriLayers.into());
    }
    if proof.last_layer_poly.len() > 1 << config.log_last_layer_degree_bound {
        return Err(FriVerificationError::LastLayerDegreeInvalid.into());
    }
    rec.mix_felts("FRI last layer", &proof.last_layer_poly);
    Ok(FriCommitment {
        first_alpha,
        inner,
        last_domain: domain,
    })
}

/// Checks every layer at the queries, starting from the DEEP values, and the last layer.
#[allow(clippy::type_complexity)]
pub(super) fn decommit<H: MerkleHasherLifted>(
    proof: &FriProof<H>,
    commitment: &FriCommitment,
    queries: &[usize],
    deep: &[DeepQuery],
    first_log_size: u32,
) -> Result<(Vec<FriLayerTrace<H::Hash>>, Vec<(BaseField, SecureField)>), VerificationError> {
    let mut layers = Vec::with_capacity(1 + commitment.inner.len());

    // The first layer: a circle domain, folded by the points' y.
    let first_domain = CanonicCoset::new(first_log_size).circle_domain();
    let evals: Vec<SecureField> = deep.iter().map(|q| q.value).collect();
    let layer = &proof.first_layer;
    let (pairs, merkle) = decommit_layer::<H>(
        queries,
        &evals,
        &layer.fri_witness,
        layer.commitment,
        first_log_size,
        &layer.decommitment.hash_witness,
    )
    .map_err(|e| match e {
        LayerError::Evaluations | LayerError::Structure => {
            FriVerificationError::FirstLayerEvaluationsInvalid
        }
        LayerError::Commitment(error) => {
            FriVerificationError::FirstLayerCommitmentInvalid { error }
        }
    })?;
    let alpha = commitment.first_alpha;
    let folds: Vec<Fold> = pairs
        .iter()
        .map(|&(start, pair)| {
            let p = first_domain.at(bit_reverse_index(start, first_log_size));
            fold(start >> 1, pair, p.y.inverse(), alpha)
        })
        .collect();
    let mut layer_queries = fold_positions(queries);
    let mut layer_evals: Vec<SecureField> = folds.iter().map(|f| f.folded).collect();
    layers.push(FriLayerTrace {
        commitment: layer.commitment,
        alpha,
        log_size: first_log_size,
        merkle,
        folds,
    });

    // The inner layers: line domains, folded by the points' x.
    for (inner_layer, (layer, &(domain, alpha))) in
        proof.inner_layers.iter().zip(&commitment.inner).enumerate()
    {
        let log_size = domain.log_size();
        let (pairs, merkle) = decommit_layer::<H>(
            &layer_queries,
            &layer_evals,
            &layer.fri_witness,
            layer.commitment,
            log_size,
            &layer.decommitment.hash_witness,
        )
        .map_err(|e| match e {
            LayerError::Evaluations | LayerError::Structure => {
                FriVerificationError::InnerLayerEvaluationsInvalid { inner_layer }
            }
            LayerError::Commitment(error) => {
                FriVerificationError::InnerLayerCommitmentInvalid { inner_layer, error }
            }
        })?;
        let folds: Vec<Fold> = pairs
            .iter()
            .map(|&(start, pair)| {
                let x = domain.at(bit_reverse_index(start, log_size));
                fold(start >> 1, pair, x.inverse(), alpha)
            })
            .collect();
        layer_queries = fold_positions(&layer_queries);
        layer_evals = folds.iter().map(|f| f.folded).collect();
        layers.push(FriLayerTrace {
            commitment: layer.commitment,
            alpha,
            log_size,
            merkle,
            folds,
        });
    }

    let domain = commitment.last_domain;
    let mut last = Vec::with_capacity(layer_queries.len());
    for (&q, &eval) in layer_queries.iter().zip(&layer_evals) {
        let x = domain.at(bit_reverse_index(q, domain.log_size()));
        if eval != proof.last_layer_poly.eval_at_point(x.into()) {
            return Err(FriVerificationError::LastLayerEvaluationsInvalid.into());
        }
        last.push((x, eval));
    }
    Ok((layers, last))
}

enum LayerError {
    Evaluations,
    Commitment(MerkleVerificationError),
    Structure,
}

impl From<VerificationError> for LayerError {
    fn from(e: VerificationError) -> Self {
        match e {
            VerificationError::Merkle(m) => LayerError::Commitment(m),
            _ => LayerError::Structure,
        }
    }
}

/// Rebuilds each queried sibling pair from the known evaluations and the layer's witness,
/// then checks the pairs against the layer's commitment (leaves of four coordinates).
/// Returns each pair with its first position.
#[allow(clippy::type_complexity)]
fn decommit_layer<H: MerkleHasherLifted>(
    queries: &[usize],
    evals: &[SecureField],
    fri_witness: &[SecureField],
    commitment: H::Hash,
    log_size: u32,
    hash_witness: &[H::Hash],
) -> Result<(Vec<(usize, [SecureField; 2])>, MerkleTrace<H::Hash>), LayerError> {
    let mut evals = evals.iter().copied();
    let mut witness = fri_witness.iter().copied();
    let mut pairs = Vec::new();
    for group in queries.chunk_by(|a, b| a >> 1 == b >> 1) {
        let start = group[0] >> 1 << 1;
        let mut pair = [SecureField::zero(); 2];
        let mut group = group.iter().peekable();
        for (k, slot) in pair.iter_mut().enumerate() {
            *slot = if group.next_if_eq(&&(start + k)).is_some() {
                evals.next().ok_or(LayerError::Structure)?
            } else {
                witness.next().ok_or(LayerError::Evaluations)?
            };
        }
        pairs.push((start, pair));
    }
    if witness.next().is_some() {
        return Err(LayerError::Evaluations);
    }
    let positions: Vec<usize> = pairs.iter().flat_map(|&(s, _)| [s, s + 1]).collect();
    let mut columns: Vec<Vec<BaseField>> = (0..SECURE_EXTENSION_DEGREE)
        .map(|_| Vec::with_capacity(positions.len()))
        .collect();
    for &(_, pair) in &pairs {
        for v in pair {
            for (col, coord) in columns.iter_mut().zip(v.to_m31_array()) {
                col.push(coord);
            }
        }
    }
    let tree = TreeTrace {
        root: commitment,
        column_log_sizes: vec![log_size; SECURE_EXTENSION_DEGREE],
        height: log_size,
    };
    let merkle = merkle::verify::<H>(&tree, &positions, &columns, hash_witness)?;
    Ok((pairs, merkle))
}

/// The next layer's positions: halved, repeats removed.
fn fold_positions(positions: &[usize]) -> Vec<usize> {
    let mut next: Vec<usize> = positions.iter().map(|q| q >> 1).collect();
    next.dedup();
    next
}

/// `f0 + α·f1` with `f0 = a + b`, `f1 = (a − b)·t⁻¹` (stwo's inverse butterfly).
fn fold(
    position: usize,
    pair: [SecureField; 2],
    twiddle_inverse: BaseField,
    alpha: SecureField,
) -> Fold {
    let [a, b] = pair;
    let f0 = a.add(b);
    let f1 = a.sub(b).mul(twiddle_inverse);
    Fold {
        position,
        pair,
        twiddle_inverse,
        alpha,
        folded: f0 + alpha * f1,
    }
}
