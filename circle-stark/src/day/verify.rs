//! Verifying day-tree proofs. Builds without the `prover` feature.

use super::statement::DayStatement;
use crate::config::VerifierPolicy;
use crate::data_root::verify::{check_statement, verify_records};
use crate::error::VerifyError;
use crate::proof::{AirId, Proof};
use crate::stark::check_air_and_policy;

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
