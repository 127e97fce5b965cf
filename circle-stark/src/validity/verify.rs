//! Verifying batch-validity proofs. Builds without the `prover` feature.

use stwo::core::channel::Blake2sChannel;
use stwo::core::fields::qm31::SecureField;
use stwo::core::pcs::{CommitmentSchemeVerifier, TreeVec};
use stwo::core::vcs_lifted::blake2_merkle::Blake2sMerkleChannel;

use super::registry::N_COMPONENTS;
use super::relations::ValidityRelations;
use super::statement::ValidityStatement;
use crate::config::VerifierPolicy;
use crate::error::VerifyError;
use crate::proof::{AirId, Proof};

use super::registry::Components;

/// Decodes and verifies a batch-validity proof.
///
/// # Errors
/// As [`verify_validity`].
pub fn verify_validity_bytes(
    bytes: &[u8],
    statement: &ValidityStatement,
    policy: &VerifierPolicy,
) -> Result<(), VerifyError> {
    verify_validity(Proof::from_bytes(bytes)?, statement, policy)
}

/// Verifies that `proof` shows `statement`.
///
/// # Errors
/// [`VerifyError::InvalidStatement`] for a statement out of range,
/// [`VerifyError::BatchStatementMismatch`] naming the first differing field, otherwise the
/// first failing check of the STARK.
pub fn verify_validity(
    proof: Proof,
    statement: &ValidityStatement,
    policy: &VerifierPolicy,
) -> Result<(), VerifyError> {
    crate::stark::check_air_and_policy(&proof, AirId::BatchValidity, policy)?;
    statement.check().map_err(VerifyError::InvalidStatement)?;
    let public_inputs = statement.to_public_inputs();
    if proof.public_inputs != public_inputs {
        let field = ValidityStatement::from_public_inputs(&proof.public_inputs)
            .map_or("encoding", |got| first_difference(statement, &got));
        return Err(VerifyError::BatchStatementMismatch { field });
    }
    let sums: [SecureField; N_COMPONENTS] =
        proof.claimed_sums.as_slice().try_into().map_err(|_| {
            VerifyError::Structure(format!(
                "expected {N_COMPONENTS} LogUp sums, got {}",
                proof.claimed_sums.len()
            ))
        })?;
    let n_trees = proof.stark.0.commitments.len();
    if n_trees != 4 {
        return Err(VerifyError::Structure(format!(
            "expected 4 commitment trees, got {n_trees}"
        )));
    }
    let channel = &mut Blake2sChannel::default();
    crate::stark::mix_preamble(channel, AirId::BatchValidity, &proof.config, &public_inputs);
    let mut scheme =
        CommitmentSchemeVerifier::<Blake2sMerkleChannel>::new(proof.config.pcs_config());
    let shape = Components::new(statement, &ValidityRelations::dummy(), &sums);
    let sizes = TreeVec::concat_cols(
        shape
            .as_components()
            .iter()
            .map(|c| c.trace_log_degree_bounds()),
    );
    let commitments = proof.stark.0.commitments.clone();
    scheme.commit(commitments[0], &sizes[0], channel);
    scheme.commit(commitments[1], &sizes[1], channel);
    let rels = ValidityRelations::draw(channel);
    crate::stark::mix_claimed_sums(channel, &sums);
    scheme.commit(commitments[2], &sizes[2], channel);
    if sums.iter().copied().sum::<SecureField>() != statement.expected_logup_sum(&rels) {
        return Err(VerifyError::LogUpSumMismatch);
    }
    let components = Components::new(statement, &rels, &sums);
    crate::stark::run_stark(&components.as_components(), channel, &mut scheme, proof)
}

fn first_difference(a: &ValidityStatement, b: &ValidityStatement) -> &'static str {
    if a.batches.len() != b.batches.len() {
        "n_batches"
    } else if a
        .batches
        .iter()
        .zip(&b.batches)
        .any(|(x, y)| x.n_ops != y.n_ops)
    {
        "n_ops"
    } else if a.batches != b.batches {
        "data_root"
    } else if a.pre_state_root != b.pre_state_root {
        "pre_state_root"
    } else if a.post_state_root != b.post_state_root {
        "post_state_root"
    } else if a.instruments != b.instruments {
        "instruments"
    } else {
        "component sizes"
    }
}
