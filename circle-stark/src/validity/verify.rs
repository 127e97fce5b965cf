//! Verifying batch-validity proofs. Builds without the `prover` feature.

use stwo::core::fields::qm31::SecureField;
use stwo::core::pcs::CommitmentSchemeVerifier;
use stwo::core::proof::StarkProof;
use stwo::core::vcs_lifted::blake2_merkle::Blake2sMerkleChannel;

use super::registry::ComponentId;
use super::relations::ValidityRelations;
use super::statement::ValidityStatement;
use super::ValidityAir;
use crate::config::{SecurityConfig, VerifierPolicy};
use crate::error::VerifyError;
use crate::hash::channel::Poseidon2MerkleChannel;
use crate::proof::{AirId, PoeChannel, Proof, Stark};
use crate::recursion::trace::{AnyTrace, Tracer};
use crate::stark::{StarkCheck, Stwo};

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
    let (air, public_inputs, sums) = precheck(&proof, statement, policy)?;
    let claim = Claim {
        air,
        config: &proof.config,
        statement,
        public_inputs: &public_inputs,
        sums,
    };
    match proof.stark {
        Stark::Blake2s(stark) => verify_stark::<Blake2sMerkleChannel, _>(stark, claim, Stwo),
        Stark::Poseidon2(stark) => verify_stark::<Poseidon2MerkleChannel, _>(stark, claim, Stwo),
    }
}

/// Verifies like [`verify_validity`] with recursion's tracing verifier in place of stwo's,
/// and returns everything the STARK check computed.
///
/// # Errors
/// As [`verify_validity`].
pub fn trace_validity(
    proof: Proof,
    statement: &ValidityStatement,
    policy: &VerifierPolicy,
) -> Result<AnyTrace, VerifyError> {
    let (air, public_inputs, sums) = precheck(&proof, statement, policy)?;
    let claim = Claim {
        air,
        config: &proof.config,
        statement,
        public_inputs: &public_inputs,
        sums,
    };
    match proof.stark {
        Stark::Blake2s(stark) => {
            verify_stark::<Blake2sMerkleChannel, _>(stark, claim, Tracer::default())
                .map(AnyTrace::Blake2s)
        }
        Stark::Poseidon2(stark) => {
            verify_stark::<Poseidon2MerkleChannel, _>(stark, claim, Tracer::default())
                .map(AnyTrace::Poseidon2)
        }
    }
}

/// What the STARK must show: the statement under an AIR and a config, with its claimed sums.
struct Claim<'a> {
    air: ValidityAir,
    config: &'a SecurityConfig,
    statement: &'a ValidityStatement,
    public_inputs: &'a [crate::field::M31],
    sums: Vec<SecureField>,
}

/// The checks before the STARK: AIR, policy, statement, sums and tree count.
#[allow(clippy::type_complexity)]
fn precheck(
    proof: &Proof,
    statement: &ValidityStatement,
    policy: &VerifierPolicy,
) -> Result<(ValidityAir, Vec<crate::field::M31>, Vec<SecureField>), VerifyError> {
    // Either batch-validity AIR proves the same statement; the id picks the constraints.
    let air = ValidityAir::of(proof.air).ok_or(VerifyError::WrongAir {
        expected: AirId::BatchValidity,
        got: proof.air,
    })?;
    crate::stark::check_air_and_policy(proof, air.air_id(), policy)?;
    statement.check().map_err(VerifyError::InvalidStatement)?;
    if air == ValidityAir::V2 && statement.shape.is_some() {
        return Err(VerifyError::InvalidStatement(
            "a shape is stated under AIR v3 and v4 only".into(),
        ));
    }
    if air.windowed() != statement.interior_roots.is_some() {
        return Err(VerifyError::InvalidStatement(format!(
            "interior state roots are stated under AIR v4 only (proof: {})",
            air.tag()
        )));
    }
    let public_inputs = statement.public_inputs(air);
    if proof.public_inputs != public_inputs {
        let field = match air {
            ValidityAir::V2 => ValidityStatement::from_public_inputs(&proof.public_inputs)
                .map_or("encoding", |got| first_difference(statement, &got)),
            // Sizes in the clear, the rest behind the closure digest.
            ValidityAir::V3 | ValidityAir::V4 => {
                let n = ComponentId::of(air).len();
                if proof.public_inputs.len() != public_inputs.len() {
                    "encoding"
                } else if proof.public_inputs[..n] != public_inputs[..n] {
                    "component sizes"
                } else {
                    "closure digest"
                }
            }
        };
        return Err(VerifyError::BatchStatementMismatch { field });
    }
    let n_components = ComponentId::of(air).len();
    if proof.claimed_sums.len() != n_components {
        return Err(VerifyError::Structure(format!(
            "expected {n_components} LogUp sums, got {}",
            proof.claimed_sums.len()
        )));
    }
    let sums = proof.claimed_sums.clone();
    let n_trees = proof.stark.n_trees();
    if n_trees != 4 {
        return Err(VerifyError::Structure(format!(
            "expected 4 commitment trees, got {n_trees}"
        )));
    }
    Ok((air, public_inputs, sums))
}

fn verify_stark<MC: PoeChannel, K: StarkCheck>(
    stark: StarkProof<MC::H>,
    claim: Claim<'_>,
    mut check: K,
) -> Result<K::Out<MC>, VerifyError> {
    let Claim {
        air,
        config,
        statement,
        public_inputs,
        sums,
    } = claim;
    let channel = &mut MC::C::default();
    crate::stark::mix_preamble(channel, MC::ID, air.air_id(), config, public_inputs);
    check.note::<MC>("preamble", channel);
    let mut scheme = CommitmentSchemeVerifier::<MC>::new(config.pcs_config());
    let shape = Components::new(air, statement, &ValidityRelations::dummy(), &sums);
    let sizes = crate::stark::tree_sizes(&shape.as_components());
    let commitments = stark.0.commitments.clone();
    if air.closed_by_input() {
        // Without the pin a prover could commit any "range table".
        let expected =
            super::range::pinned_table_root(MC::ID, config.log_blowup()).ok_or_else(|| {
                VerifyError::Structure(format!(
                    "no pinned range table for log_blowup {}",
                    config.log_blowup()
                ))
            })?;
        crate::stark::check_preprocessed_root(expected, MC::hash_words(&commitments[0]))?;
    }
    scheme.commit(commitments[0], &sizes[0], channel);
    check.note::<MC>("preprocessed root", channel);
    scheme.commit(commitments[1], &sizes[1], channel);
    check.note::<MC>("main root", channel);
    let rels = ValidityRelations::draw(channel);
    check.note::<MC>("relation elements", channel);
    crate::stark::mix_claimed_sums(channel, &sums);
    check.note::<MC>("LogUp sums", channel);
    scheme.commit(commitments[2], &sizes[2], channel);
    check.note::<MC>("interaction root", channel);
    let expected = match air {
        ValidityAir::V2 => statement.expected_logup_sum(air, &rels),
        // The public input, already equal to the statement's, holds `|L|` and the chain's end:
        // no second pass over the closure list.
        ValidityAir::V3 | ValidityAir::V4 => {
            let n = ComponentId::of(air).len();
            super::closure::chain_ends_sum(
                &rels.closure_chain,
                public_inputs[n].0 as usize,
                std::array::from_fn(|i| public_inputs[n + 1 + i]),
            )
        }
    };
    if sums.iter().copied().sum::<SecureField>() != expected {
        return Err(VerifyError::LogUpSumMismatch);
    }
    let components = Components::new(air, statement, &rels, &sums);
    check.check::<MC>(&components.as_components(), channel, &mut scheme, stark)
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
