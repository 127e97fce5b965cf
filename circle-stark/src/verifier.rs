//! Verifying data-root and day proofs. Builds without the `prover` feature.

use std::panic::{catch_unwind, AssertUnwindSafe};

use stwo::core::air::Component;
use stwo::core::channel::{Blake2sChannel, Channel};
use stwo::core::fields::qm31::SecureField;
use stwo::core::pcs::{CommitmentSchemeVerifier, TreeVec};
use stwo::core::vcs_lifted::blake2_merkle::Blake2sMerkleChannel;
use stwo::core::verifier::{verify, VerificationError};
use stwo_constraint_framework::TraceLocationAllocator;

use crate::air::{
    DataRootStatement, LeafComponent, LeafEval, MerkleNodeRelation, NodeComponent, NodeEval,
    MAX_RECORD_LIMBS,
};
use crate::config::{SecurityConfig, VerifierPolicy};
use crate::error::VerifyError;
use crate::field::M31;
use crate::proof::{AirId, Proof, FORMAT_VERSION};
use crate::statement::DayStatement;

pub use crate::air::MAX_RECORDS;

/// Domain separator mixed first into every poe transcript.
const TRANSCRIPT_TAG: [u32; 2] = [u32::from_le_bytes(*b"poe/"), u32::from_le_bytes(*b"stk1")];

/// Binds format version, AIR identity, parameters and public inputs before any commitment
/// (`specs/proof-format.md` §4).
pub(crate) fn mix_preamble(
    channel: &mut Blake2sChannel,
    air: AirId,
    config: &SecurityConfig,
    public_inputs: &[M31],
) {
    channel.mix_u32s(&TRANSCRIPT_TAG);
    channel.mix_u32s(&[u32::from(FORMAT_VERSION), air as u32]);
    config.pcs_config().mix_into(channel);
    channel.mix_u32s(&[public_inputs.len() as u32]);
    channel.mix_u32s(&public_inputs.iter().map(|x| x.0).collect::<Vec<_>>());
}

/// Binds the LogUp sums before the interaction trace is committed.
pub(crate) fn mix_claimed_sums(channel: &mut Blake2sChannel, sums: &[SecureField]) {
    channel.mix_felts(sums);
}

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
        return Err(VerifyError::PublicInputMismatch {
            expected: Box::new(*statement),
            got: DataRootStatement::from_public_inputs(&proof.public_inputs).map(Box::new),
        });
    }
    verify_records(proof, AirId::DataRoot, statement, &public_inputs)
}

/// Decodes and verifies a day proof against the day statement the auditor derived.
///
/// # Errors
/// [`VerifyError::Format`] for bytes that are not a canonical proof, otherwise as
/// [`verify_day`].
pub fn verify_day_bytes(
    bytes: &[u8],
    statement: &DayStatement,
    policy: &VerifierPolicy,
) -> Result<(), VerifyError> {
    verify_day(Proof::from_bytes(bytes)?, statement, policy)
}

/// Verifies that `proof` shows the day `statement`: its day root is the Merkle root of the
/// day's batch statements, and the day summary and manifest hash are the ones bound into it.
///
/// # Errors
/// [`VerifyError::DayStatementMismatch`] naming the first field that differs, otherwise the
/// first failing check as for [`verify_data_root`].
pub fn verify_day(
    proof: Proof,
    statement: &DayStatement,
    policy: &VerifierPolicy,
) -> Result<(), VerifyError> {
    check_air_and_policy(&proof, AirId::DayRoot, policy)?;
    let inner = statement.data_root_statement();
    check_statement(&inner).map_err(VerifyError::InvalidStatement)?;
    let public_inputs = statement.to_public_inputs();
    if proof.public_inputs != public_inputs {
        let field = DayStatement::from_public_inputs(&proof.public_inputs)
            .map_or(Some("encoding"), |got| statement.first_difference(&got))
            .unwrap_or("encoding");
        return Err(VerifyError::DayStatementMismatch { field });
    }
    verify_records(proof, AirId::DayRoot, &inner, &public_inputs)
}

pub(crate) fn check_air_and_policy(
    proof: &Proof,
    air: AirId,
    policy: &VerifierPolicy,
) -> Result<(), VerifyError> {
    if proof.air != air {
        return Err(VerifyError::WrongAir {
            expected: air,
            got: proof.air,
        });
    }
    let bits = proof.config.security_bits();
    if bits < policy.min_security_bits {
        return Err(VerifyError::SecurityTooLow {
            expected: policy.min_security_bits,
            got: bits,
        });
    }
    Ok(())
}

/// The data-root STARK check, with the full public inputs (already compared against the
/// statement) mixed into the transcript.
fn verify_records(
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
    let n_trees = proof.stark.0.commitments.len();
    if n_trees != 4 {
        return Err(VerifyError::Structure(format!(
            "expected 4 commitment trees, got {n_trees}"
        )));
    }

    let channel = &mut Blake2sChannel::default();
    mix_preamble(channel, air, &proof.config, public_inputs);
    let mut scheme =
        CommitmentSchemeVerifier::<Blake2sMerkleChannel>::new(proof.config.pcs_config());

    // Column sizes do not depend on the challenges: take them from a component with dummy ones.
    let (shape_leaf, shape_node) = build_components(statement, MerkleNodeRelation::dummy(), sums);
    let sizes = TreeVec::concat_cols(
        [
            shape_leaf.trace_log_degree_bounds(),
            shape_node.trace_log_degree_bounds(),
        ]
        .into_iter(),
    );
    let commitments = proof.stark.0.commitments.clone();
    scheme.commit(commitments[0], &sizes[0], channel);
    scheme.commit(commitments[1], &sizes[1], channel);
    let relation = MerkleNodeRelation::draw(channel);
    mix_claimed_sums(channel, &sums);
    scheme.commit(commitments[2], &sizes[2], channel);

    if sums[0] + sums[1] != statement.expected_logup_sum(&relation) {
        return Err(VerifyError::LogUpSumMismatch);
    }

    let (leaf, node) = build_components(statement, relation, sums);
    run_stark(&[&leaf, &node], channel, &mut scheme, proof)
}

/// stwo's STARK check over `components`, with the transcript at the point after the
/// interaction commitment.
pub(crate) fn run_stark(
    components: &[&dyn Component],
    channel: &mut Blake2sChannel,
    scheme: &mut CommitmentSchemeVerifier<Blake2sMerkleChannel>,
    proof: Proof,
) -> Result<(), VerifyError> {
    // stwo indexes into the proof without checking every length; a malformed proof must be an
    // error, never a crash of the auditor's process.
    let result = catch_unwind(AssertUnwindSafe(|| {
        verify(components, channel, scheme, proof.stark)
    }));
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(map_stwo_error(e)),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "verifier panicked".into());
            Err(VerifyError::Structure(msg))
        }
    }
}

fn map_stwo_error(e: VerificationError) -> VerifyError {
    match e {
        VerificationError::InvalidStructure(s) => VerifyError::Structure(s),
        VerificationError::Merkle(m) => VerifyError::Merkle(m.to_string()),
        VerificationError::OodsNotMatching => VerifyError::OodsMismatch,
        VerificationError::Fri(f) => VerifyError::Fri(f.to_string()),
        VerificationError::ProofOfWork => VerifyError::ProofOfWork,
    }
}
