//! Verifying data-root proofs. Builds without the `prover` feature.

use stwo::core::fields::qm31::SecureField;
use stwo::core::pcs::CommitmentSchemeVerifier;
use stwo::core::proof::StarkProof;
use stwo::core::vcs_lifted::blake2_merkle::Blake2sMerkleChannel;
use stwo_constraint_framework::TraceLocationAllocator;

use super::{
    DataRootStatement, LeafComponent, LeafEval, MerkleNodeRelation, NodeComponent, NodeEval,
    MAX_RECORDS, MAX_RECORD_LIMBS,
};
use crate::config::SecurityConfig;
use crate::config::VerifierPolicy;
use crate::error::VerifyError;
use crate::field::M31;
use crate::hash::channel::Poseidon2MerkleChannel;
use crate::proof::{AirId, PoeChannel, Proof, Stark};
use crate::stark::{check_air_and_policy, mix_claimed_sums, mix_preamble, run_stark};

/// The two components for a statement, placed in the order the prover commits them.
pub(crate) fn build_components(
    statement: &DataRootStatement,
    relation: MerkleNodeRelation,
    sums: [SecureField; 2],
) -> (LeafComponent, NodeComponent) {
    let (leaf_log, node_log) = statement.log_rows();
    let mut allocator = TraceLocationAllocator::default();
    let leaf = LeafComponent::new(
        &mut allocator,
        LeafEval {
            log_rows: leaf_log,
            record_limbs: statement.record_limbs as usize,
            relation: relation.clone(),
            ops: None,
        },
        sums[0],
    );
    let node = NodeComponent::new(
        &mut allocator,
        NodeEval {
            log_rows: node_log,
            relation,
            forest: false,
        },
        sums[1],
    );
    (leaf, node)
}

/// Checks a statement's own ranges; shared by prover and verifier.
pub(crate) fn check_statement(statement: &DataRootStatement) -> Result<(), String> {
    let n = statement.n_records as usize;
    if n == 0 || n > MAX_RECORDS {
        return Err(format!("n_records must be in 1..={MAX_RECORDS}, got {n}"));
    }
    let l = statement.record_limbs as usize;
    if l == 0 || l > MAX_RECORD_LIMBS {
        return Err(format!(
            "record_limbs must be in 1..={MAX_RECORD_LIMBS}, got {l}"
        ));
    }
    Ok(())
}

/// Decodes and verifies a data-root proof against the statement the caller trusts.
///
/// # Errors
/// [`VerifyError::Format`] for bytes that are not a canonical proof, otherwise as
/// [`verify_data_root`].
pub fn verify_data_root_bytes(
    bytes: &[u8],
    statement: &DataRootStatement,
    policy: &VerifierPolicy,
) -> Result<(), VerifyError> {
    verify_data_root(Proof::from_bytes(bytes)?, statement, policy)
}

/// Verifies that `proof` shows `statement`.
///
/// The verifier trusts nothing in the proof but its own checks: the AIR id, the security
/// level against `policy`, the public inputs against `statement`, then the STARK under a
/// transcript it rebuilds itself.
///
/// # Errors
/// The first failing check, as a specific [`VerifyError`].
pub fn verify_data_root(
    proof: Proof,
    statement: &DataRootStatement,
    policy: &VerifierPolicy,
) -> Result<(), VerifyError> {
    check_air_and_policy(&proof, AirId::DataRoot, policy)?;
    check_statement(statement).map_err(VerifyError::InvalidStatement)?;
    let public_inputs = statement.to_public_inputs();
    if proof.public_inputs != public_inputs {
        let field = match DataRootStatement::from_public_inputs(&proof.public_inputs) {
            None => "encoding",
            Some(got) if got.n_records != statement.n_records => "n_records",
            Some(got) if got.record_limbs != statement.record_limbs => "record_limbs",
            Some(_) => "root",
        };
        return Err(VerifyError::PublicInputMismatch { field });
    }
    verify_records(proof, AirId::DataRoot, statement, &public_inputs)
}

/// The data-root STARK check, with the full public inputs (already compared against the
/// statement) mixed into the transcript.
pub(crate) fn verify_records(
    proof: Proof,
    air: AirId,
    statement: &DataRootStatement,
    public_inputs: &[M31],
) -> Result<(), VerifyError> {
    let sums: [SecureField; 2] = proof.claimed_sums.as_slice().try_into().map_err(|_| {
        VerifyError::Structure(format!(
            "expected 2 LogUp sums, got {}",
            proof.claimed_sums.len()
        ))
    })?;
    let n_trees = proof.stark.n_trees();
    if n_trees != 4 {
        return Err(VerifyError::Structure(format!(
            "expected 4 commitment trees, got {n_trees}"
        )));
    }
    match proof.stark {
        Stark::Blake2s(stark) => verify_stark::<Blake2sMerkleChannel>(
            stark,
            &proof.config,
            air,
            statement,
            public_inputs,
            sums,
        ),
        Stark::Poseidon2(stark) => verify_stark::<Poseidon2MerkleChannel>(
            stark,
            &proof.config,
            air,
            statement,
            public_inputs,
            sums,
        ),
    }
}

fn verify_stark<MC: PoeChannel>(
    stark: StarkProof<MC::H>,
    config: &SecurityConfig,
    air: AirId,
    statement: &DataRootStatement,
    public_inputs: &[M31],
    sums: [SecureField; 2],
) -> Result<(), VerifyError> {
    let channel = &mut MC::C::default();
    mix_preamble(channel, MC::ID, air, config, public_inputs);
    let mut scheme = CommitmentSchemeVerifier::<MC>::new(config.pcs_config());

    // Column sizes do not depend on the challenges: take them from a component with dummy ones.
    let (shape_leaf, shape_node) = build_components(statement, MerkleNodeRelation::dummy(), sums);
    let sizes = crate::stark::tree_sizes(&[&shape_leaf, &shape_node]);
    let commitments = stark.0.commitments.clone();
    scheme.commit(commitments[0], &sizes[0], channel);
    scheme.commit(commitments[1], &sizes[1], channel);
    let relation = MerkleNodeRelation::draw(channel);
    mix_claimed_sums(channel, &sums);
    scheme.commit(commitments[2], &sizes[2], channel);

    if sums[0] + sums[1] != statement.expected_logup_sum(&relation) {
        return Err(VerifyError::LogUpSumMismatch);
    }

    let (leaf, node) = build_components(statement, relation, sums);
    run_stark::<MC>(&[&leaf, &node], channel, &mut scheme, stark)
}
