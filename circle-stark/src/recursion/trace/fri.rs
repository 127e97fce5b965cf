//! FRI as stwo 2.3.0's `FriVerifier` runs it, for any fold step: the commitment phase (roots,
//! folding coefficients, layer count and each layer's fold, last layer) and the decommitment
//! (each layer's queried subsets of `2^fold` values against its root — four values a leaf
//! where stwo packs them — the folds, the last layer).

use stwo::core::circle::Coset;
use stwo::core::fields::m31::BaseField;
use stwo::core::fields::qm31::{SecureField, SECURE_EXTENSION_DEGREE};
use stwo::core::fri::{
    fold_circle_into_line, fold_coset, FriConfig, FriProof, FriVerificationError,
};
use stwo::core::poly::circle::{CanonicCoset, CircleDomain};
use stwo::core::poly::line::LineDomain;
use stwo::core::utils::bit_reverse_index;
use stwo::core::vcs_lifted::merkle_hasher::MerkleHasherLifted;
use stwo::core::vcs_lifted::verifier::{MerkleVerificationError, LOG_PACKED_LEAF_SIZE};
use stwo::core::verifier::VerificationError;

use super::{merkle, DeepQuery, Fold, FriLayerTrace, MerkleTrace, Recorder, TreeTrace};
use crate::proof::PoeChannel;

/// What the commitment phase drew and derived.
pub(super) struct FriCommitment {
    first_alpha: SecureField,
    first_fold: u32,
    /// Per inner layer, its domain, folding coefficient and fold step.
    inner: Vec<(LineDomain, SecureField, u32)>,
    last_domain: LineDomain,
}

/// Mixes the layer roots and draws their coefficients; derives each inner layer's fold (the
/// configured step, the last one whatever reaches the last layer's degree bound, at most the
/// step), checks the layer count and the last layer's degree, then mixes its coefficients.
pub(super) fn commit<MC: PoeChannel>(
    rec: &mut Recorder<'_, MC>,
    config: FriConfig,
    proof: &FriProof<MC::H>,
    first_log_size: u32,
) -> Result<FriCommitment, VerificationError> {
    let step = config.fold_step;
    rec.mix_root("FRI first layer root", proof.first_layer.commitment);
    let first_alpha = rec.draw_felt("FRI first layer alpha");
    let mut line_bound = (first_log_size - config.log_blowup_factor)
        .checked_sub(step)
        .ok_or(FriVerificationError::InvalidNumFriLayers)?;
    let mut domain = LineDomain::new(Coset::half_odds(line_bound + config.log_blowup_factor));
    let n_inner = proof.inner_layers.len();
    let mut inner = Vec::with_capacity(n_inner);
    for (layer_index, layer) in proof.inner_layers.iter().enumerate() {
        rec.mix_root("FRI inner layer root", layer.commitment);
        let fold = if layer_index + 1 < n_inner {
            step
        } else {
            let rest = line_bound
                .checked_sub(config.log_last_layer_degree_bound)
                .ok_or(FriVerificationError::InvalidNumFriLayers)?;
            if !(1..=step).contains(&rest) {
                return Err(FriVerificationError::InvalidNumFriLayers.into());
            }
            rest
        };
        let alpha = rec.draw_felt("FRI inner layer alpha");
        inner.push((domain, alpha, fold));
        line_bound = line_bound
            .checked_sub(fold)
            .ok_or(FriVerificationError::InvalidNumFriLayers)?;
        domain = domain.repeated_double(fold);
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
        first_fold: step,
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

    // The first layer: a circle domain; each subset folds circle → line by its points' y, then
    // along the line with α².
    let first_domain = CanonicCoset::new(first_log_size).circle_domain();
    let evals: Vec<SecureField> = deep.iter().map(|q| q.value).collect();
    let layer = &proof.first_layer;
    let fold_step = commitment.first_fold;
    let (subsets, merkle) = decommit_layer::<H>(
        queries,
        &evals,
        &layer.fri_witness,
        layer.commitment,
        first_log_size,
        fold_step,
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
    let folds: Vec<Fold> = subsets
        .into_iter()
        .map(|(start, values)| {
            let initial = first_domain.index_at(bit_reverse_index(start, first_log_size));
            let line = fold_circle_into_line(
                &values,
                CircleDomain::new(Coset::new(initial, fold_step - 1)),
                alpha,
            );
            let folded = if fold_step == 1 {
                line[0]
            } else {
                fold_coset(
                    line,
                    LineDomain::new(Coset::new(initial, fold_step - 1)),
                    alpha * alpha,
                )
            };
            Fold {
                position: start >> fold_step,
                values,
                folded,
            }
        })
        .collect();
    let mut layer_queries = fold_positions(queries, fold_step);
    let mut layer_evals: Vec<SecureField> = folds.iter().map(|f| f.folded).collect();
    layers.push(FriLayerTrace {
        commitment: layer.commitment,
        alpha,
        log_size: first_log_size,
        fold_step,
        merkle,
        folds,
    });

    // The inner layers: line domains, each subset folded by its points' x, α squared per fold.
    for (inner_layer, (layer, &(domain, alpha, fold_step))) in
        proof.inner_layers.iter().zip(&commitment.inner).enumerate()
    {
        let log_size = domain.log_size();
        let (subsets, merkle) = decommit_layer::<H>(
            &layer_queries,
            &layer_evals,
            &layer.fri_witness,
            layer.commitment,
            log_size,
            fold_step,
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
        let folds: Vec<Fold> = subsets
            .into_iter()
            .map(|(start, values)| {
                let initial = domain.coset().index_at(bit_reverse_index(start, log_size));
                let folded = fold_coset(
                    values.clone(),
                    LineDomain::new(Coset::new(initial, fold_step)),
                    alpha,
                );
                Fold {
                    position: start >> fold_step,
                    values,
                    folded,
                }
            })
            .collect();
        layer_queries = fold_positions(&layer_queries, fold_step);
        layer_evals = folds.iter().map(|f| f.folded).collect();
        layers.push(FriLayerTrace {
            commitment: layer.commitment,
            alpha,
            log_size,
            fold_step,
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

/// Rebuilds each queried subset of `2^fold_step` positions from the known evaluations and the
/// layer's witness, then checks the subsets against the layer's commitment: a leaf holds one
/// value's four coordinates, or four consecutive values' (stwo packs the leaves of a layer that
/// folds more than once). Returns each subset with its first position.
#[allow(clippy::type_complexity)]
fn decommit_layer<H: MerkleHasherLifted>(
    queries: &[usize],
    evals: &[SecureField],
    fri_witness: &[SecureField],
    commitment: H::Hash,
    log_size: u32,
    fold_step: u32,
    hash_witness: &[H::Hash],
) -> Result<(Vec<(usize, Vec<SecureField>)>, MerkleTrace<H::Hash>), LayerError> {
    let mut evals = evals.iter().copied();
    let mut witness = fri_witness.iter().copied();
    let mut subsets = Vec::new();
    for group in queries.chunk_by(|a, b| a >> fold_step == b >> fold_step) {
        let start = group[0] >> fold_step << fold_step;
        let mut group = group.iter().peekable();
        let values = (start..start + (1 << fold_step))
            .map(|position| {
                if group.next_if_eq(&&position).is_some() {
                    evals.next().ok_or(LayerError::Structure)
                } else {
                    witness.next().ok_or(LayerError::Evaluations)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        subsets.push((start, values));
    }
    if witness.next().is_some() {
        return Err(LayerError::Evaluations);
    }
    let leaf_log = if fold_step > 1 && log_size >= LOG_PACKED_LEAF_SIZE {
        LOG_PACKED_LEAF_SIZE
    } else {
        0
    };
    let mut positions: Vec<usize> = subsets
        .iter()
        .flat_map(|(s, v)| (*s..*s + v.len()).map(|p| p >> leaf_log))
        .collect();
    positions.dedup();
    let mut columns: Vec<Vec<BaseField>> = (0..SECURE_EXTENSION_DEGREE << leaf_log)
        .map(|_| Vec::with_capacity(positions.len()))
        .collect();
    let flat: Vec<SecureField> = subsets
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .collect();
    for (k, v) in flat.iter().enumerate() {
        let offset = k % (1 << leaf_log);
        for (c, coord) in v.to_m31_array().into_iter().enumerate() {
            columns[c + offset * SECURE_EXTENSION_DEGREE].push(coord);
        }
    }
    let tree = TreeTrace {
        root: commitment,
        column_log_sizes: vec![log_size - leaf_log; SECURE_EXTENSION_DEGREE << leaf_log],
        height: log_size - leaf_log,
    };
    let merkle = merkle::verify::<H>(&tree, &positions, &columns, hash_witness)?;
    Ok((subsets, merkle))
}

/// The next layer's positions: shifted by the fold, repeats removed.
fn fold_positions(positions: &[usize], fold_step: u32) -> Vec<usize> {
    let mut next: Vec<usize> = positions.iter().map(|q| q >> fold_step).collect();
    next.dedup();
    next
}

#[cfg(all(test, feature = "prover"))]
mod tests {
    use stwo::core::channel::Blake2sChannel;
    use stwo::core::circle::CirclePoint;
    use stwo::core::fri::{CirclePolyDegreeBound, FriVerifier};
    use stwo::core::poly::circle::CircleDomain;
    use stwo::core::vcs_lifted::blake2_merkle::{Blake2sMerkleChannel, Blake2sMerkleHasher};
    use stwo::prover::backend::cpu::CpuCirclePoly;
    use stwo::prover::backend::CpuBackend;
    use stwo::prover::fri::FriProver;
    use stwo::prover::poly::circle::{PolyOps, SecureEvaluation};
    use stwo::prover::poly::BitReversedOrder;

    use super::*;
    use crate::recursion::trace::Recorder;

    const LOG_BLOWUP: u32 = 1;

    /// A circle polynomial of `2^log_degree` pseudo-random coefficients, evaluated with blowup.
    fn column(log_degree: u32, seed: u32) -> SecureEvaluation<CpuBackend, BitReversedOrder> {
        let mut s = seed;
        let coeffs = (0..1u32 << log_degree)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                BaseField::from(s % ((1 << 31) - 1))
            })
            .collect();
        let domain = CircleDomain::new(Coset::half_odds(log_degree + LOG_BLOWUP - 1));
        let values = CpuCirclePoly::new(coeffs).evaluate(domain);
        SecureEvaluation::new(domain, values.into_iter().map(SecureField::from).collect())
    }

    /// A FRI proof at `fold_step`, its query positions and the first layer's values there.
    fn fri_proof(
        log_degree: u32,
        fold_step: u32,
        log_last: u32,
    ) -> (
        FriConfig,
        FriProof<Blake2sMerkleHasher>,
        Vec<usize>,
        Vec<SecureField>,
    ) {
        let col = column(log_degree, 7 + fold_step);
        let twiddles = CpuBackend::precompute_twiddles(col.domain.half_coset);
        let config = FriConfig::new(log_last, LOG_BLOWUP, 9, fold_step);
        let mut channel = Blake2sChannel::default();
        let prover = FriProver::<CpuBackend, Blake2sMerkleChannel>::commit(
            &mut channel,
            config,
            &col,
            &twiddles,
        );
        let result = prover.decommit(&mut channel);
        let values = result.query_positions.iter().map(|&p| col.at(p)).collect();
        (
            config,
            result.fri_proof.proof,
            result.query_positions,
            values,
        )
    }

    fn stwo_verdict(
        config: FriConfig,
        proof: FriProof<Blake2sMerkleHasher>,
        log_degree: u32,
        values: Vec<SecureField>,
    ) -> Result<(), FriVerificationError> {
        let mut channel = Blake2sChannel::default();
        let mut verifier = FriVerifier::<Blake2sMerkleChannel>::commit(
            &mut channel,
            config,
            proof,
            CirclePolyDegreeBound::new(log_degree),
        )?;
        verifier.sample_query_positions(&mut channel);
        verifier.decommit(values)
    }

    #[allow(clippy::type_complexity)]
    fn traced(
        config: FriConfig,
        proof: &FriProof<Blake2sMerkleHasher>,
        log_degree: u32,
        values: &[SecureField],
    ) -> Result<
        Vec<FriLayerTrace<<Blake2sMerkleHasher as MerkleHasherLifted>::Hash>>,
        VerificationError,
    > {
        let mut channel = Blake2sChannel::default();
        let mut rec = Recorder::<Blake2sMerkleChannel> {
            channel: &mut channel,
            steps: Vec::new(),
        };
        let first_log_size = log_degree + LOG_BLOWUP;
        let commitment = commit(&mut rec, config, proof, first_log_size)?;
        // The queries follow the commitments (a changed last layer moves them), as stwo's
        // `sample_query_positions` draws them.
        let drawn = stwo::core::queries::Queries::new(
            &stwo::core::queries::draw_queries(rec.channel, first_log_size, config.n_queries),
            first_log_size,
        );
        let queries = &drawn.positions[..];
        let deep: Vec<DeepQuery> = queries
            .iter()
            .zip(values)
            .map(|(&position, &value)| DeepQuery {
                position,
                domain_point: CirclePoint::zero(),
                denominator_inverses: Vec::new(),
                value,
            })
            .collect();
        decommit(proof, &commitment, queries, &deep, first_log_size).map(|(layers, _)| layers)
    }

    /// stwo's FRI at fold steps 1–3 (packed leaves from 2 on, a last inner layer that folds
    /// less than the step): the tracing verifier accepts what stwo accepts, records folds of
    /// `2^step` values, and rejects each tamper with stwo's error.
    #[test]
    fn fri_at_every_fold_step_agrees_with_stwo() {
        for (fold_step, log_last) in [(1, 0), (1, 4), (2, 0), (2, 4), (2, 3), (3, 0), (3, 4)] {
            let log_degree = 11;
            let (config, proof, _, values) = fri_proof(log_degree, fold_step, log_last);
            let what = format!("fold step {fold_step}, last layer 2^{log_last}");
            stwo_verdict(config, proof.clone(), log_degree, values.clone())
                .unwrap_or_else(|e| panic!("{what}: stwo: {e}"));
            let layers = traced(config, &proof, log_degree, &values)
                .unwrap_or_else(|e| panic!("{what}: traced: {e}"));
            assert_eq!(layers.len(), 1 + proof.inner_layers.len(), "{what}");
            assert_eq!(layers[0].fold_step, fold_step, "{what}");
            let folded: u32 = layers.iter().map(|l| l.fold_step).sum();
            assert_eq!(
                folded + log_last,
                log_degree,
                "{what}: folds reach the last layer"
            );
            for l in &layers {
                assert!(l.folds.iter().all(|f| f.values.len() == 1 << l.fold_step));
            }

            type Tamper = fn(&mut FriProof<Blake2sMerkleHasher>, &mut Vec<SecureField>);
            let tampers: [(&str, Tamper); 5] = [
                ("first layer witness value", |p, _| {
                    p.first_layer.fri_witness[0] += SecureField::from(BaseField::from(1))
                }),
                ("inner layer witness value", |p, _| {
                    p.inner_layers[0].fri_witness[0] += SecureField::from(BaseField::from(1))
                }),
                ("last-layer coefficient", |p, _| {
                    p.last_layer_poly[0] += SecureField::from(BaseField::from(1))
                }),
                ("queried value", |_, v| {
                    v[0] += SecureField::from(BaseField::from(1))
                }),
                ("inner layer root", |p, _| {
                    p.inner_layers[0].commitment.0[0] ^= 1
                }),
            ];
            for (name, tamper) in tampers {
                let (mut p, mut v) = (proof.clone(), values.clone());
                tamper(&mut p, &mut v);
                let stwo = stwo_verdict(config, p.clone(), log_degree, v.clone())
                    .expect_err(&format!("{what}: {name}: stwo accepts"));
                let ours = traced(config, &p, log_degree, &v)
                    .map(|_| ())
                    .expect_err(&format!("{what}: {name}: traced accepts"));
                assert_eq!(
                    ours.to_string(),
                    VerificationError::from(stwo).to_string(),
                    "{what}: {name}"
                );
            }
        }
    }
}
