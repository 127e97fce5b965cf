//! Validation at the edge: the stateless checks of a submission, safe to run outside any lock
//! — parse, the rollup's signature, its native commitment, distinct trade ids
//! (`specs/api.md` §2). What needs the venue's state (continuity, re-execution) is intake's.

use std::collections::HashMap;

use crate::auth;
use crate::commitment::commit;
use crate::model::{parse_submission, Refusal, RefusalCode, Submission};
use crate::registry::{Registry, Rollup};

/// A submission that passed the stateless checks: parsed, signed by its rollup, and matching
/// its native commitment.
#[derive(Debug, Clone)]
pub struct Checked {
    pub(crate) sub: Submission,
    pub(crate) rollup: Rollup,
}

/// The stateless half of intake, safe to run outside any lock: parse, signature, native
/// commitment (the costly part for the field-based schemes).
///
/// # Errors
/// The first failing check as a [`Refusal`].
pub fn check(registry: &Registry, body: &[u8]) -> Result<Checked, Refusal> {
    let (sub, rollup) = parse_submission(body, registry)?;
    authenticate(&sub, rollup)?;
    check_commitment(&sub, rollup)?;
    check_trade_ids_distinct(&sub)?;
    Ok(Checked {
        sub,
        rollup: rollup.clone(),
    })
}

/// What an auditor re-checks of an archived batch, as intake did at the door: the signature
/// over the header under `public_key`, and the header's native commitment recomputed from the
/// operations (their ids included). The batch id is then [`Submission::batch_id`].
///
/// # Errors
/// The refusal intake would have given: `bad_signature`, `n_ops_mismatch` or
/// `commitment_mismatch`.
pub fn verify_signed(sub: &Submission, public_key: &starknet_crypto::Felt) -> Result<(), Refusal> {
    if sub.ops.len() != sub.header.n_ops as usize {
        return Err(Refusal::new(
            RefusalCode::NOpsMismatch,
            "header.n_ops",
            format!(
                "header says {}, {} operations",
                sub.header.n_ops,
                sub.ops.len()
            ),
        ));
    }
    authenticate_with(sub, public_key)?;
    recompute_commitment(sub)
}

fn authenticate(sub: &Submission, rollup: &Rollup) -> Result<(), Refusal> {
    authenticate_with(sub, &rollup.public_key)
}

fn authenticate_with(sub: &Submission, public_key: &starknet_crypto::Felt) -> Result<(), Refusal> {
    let (r, s) = &sub.signature;
    auth::verify(public_key, &sub.header.message_hash(), r, s)
        .map_err(|e| Refusal::new(RefusalCode::BadSignature, "signature", e.to_string()))
}

/// The header's native commitment, recomputed from the operations under the header's scheme.
fn recompute_commitment(sub: &Submission) -> Result<(), Refusal> {
    let expected = commit(sub.header.scheme, &sub.ops).ok_or_else(|| {
        Refusal::new(
            RefusalCode::EmptyBatch,
            "operations",
            "a batch has at least one operation",
        )
    })?;
    if expected != sub.header.commitment {
        return Err(Refusal::new(
            RefusalCode::CommitmentMismatch,
            "header.native_commitment.value",
            format!(
                "recomputed 0x{}, header says 0x{}",
                hex::encode(expected),
                hex::encode(sub.header.commitment)
            ),
        ));
    }
    Ok(())
}

/// An operation id names one operation of the rollup, ever: within the batch here, across
/// batches in [`Intake::admit`].
fn check_trade_ids_distinct(sub: &Submission) -> Result<(), Refusal> {
    let mut seen = HashMap::with_capacity(sub.ops.len());
    for (j, o) in sub.ops.iter().enumerate() {
        if let Some(i) = seen.insert(o.trade_id.to_be_bytes32(), j) {
            return Err(Refusal {
                code: RefusalCode::DuplicateTradeId,
                path: format!("operations[{j}].id"),
                message: format!(
                    "id {:?} is also the id of operations[{i}]",
                    o.trade_id.as_str()
                ),
                op_index: Some(j),
            });
        }
    }
    Ok(())
}

fn check_commitment(sub: &Submission, rollup: &Rollup) -> Result<(), Refusal> {
    if sub.header.scheme != rollup.scheme {
        return Err(Refusal::new(
            RefusalCode::CommitmentSchemeMismatch,
            "header.native_commitment.scheme",
            format!(
                "rollup {} is registered with {}, got {}",
                rollup.name, rollup.scheme, sub.header.scheme
            ),
        ));
    }
    recompute_commitment(sub)
}
