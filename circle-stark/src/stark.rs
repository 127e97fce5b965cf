//! The STARK plumbing every poe proof shares: the transcript preamble, the AIR and policy
//! checks, and stwo's verifier behind a panic guard. Builds without the `prover` feature.

use std::panic::{catch_unwind, AssertUnwindSafe};

use stwo::core::air::Component;
use stwo::core::channel::Channel;
use stwo::core::fields::qm31::SecureField;
use stwo::core::pcs::CommitmentSchemeVerifier;
use stwo::core::proof::StarkProof;
use stwo::core::verifier::{verify, VerificationError};

use crate::config::{SecurityConfig, VerifierPolicy};
use crate::error::VerifyError;
use crate::field::M31;
use crate::proof::{AirId, ChannelId, PoeChannel, Proof, FORMAT_V1};

/// Domain separator mixed first into every poe transcript.
const TRANSCRIPT_TAG: [u32; 2] = [u32::from_le_bytes(*b"poe/"), u32::from_le_bytes(*b"stk1")];

/// Binds format version (and, from version 2, the channel), AIR identity, parameters and public
/// inputs before any commitment (`specs/proof-format.md` §4). Version-1 proofs mix exactly what
/// they always did, so archived proofs keep verifying.
pub(crate) fn mix_preamble(
    channel: &mut impl Channel,
    id: ChannelId,
    air: AirId,
    config: &SecurityConfig,
    public_inputs: &[M31],
) {
    mix_preamble_head(channel, id, air, config, public_inputs.len());
    channel.mix_u32s(&public_inputs.iter().map(|x| x.0).collect::<Vec<_>>());
}

/// The preamble up to the public inputs' values: constants for a fixed AIR, channel, config and
/// input count (a verifier circuit starts from the digest it leaves).
pub(crate) fn mix_preamble_head(
    channel: &mut impl Channel,
    id: ChannelId,
    air: AirId,
    config: &SecurityConfig,
    n_public_inputs: usize,
) {
    channel.mix_u32s(&TRANSCRIPT_TAG);
    let version = id.format_version();
    if version == FORMAT_V1 {
        channel.mix_u32s(&[u32::from(version), air as u32]);
    } else {
        channel.mix_u32s(&[u32::from(version), air as u32, id as u32]);
    }
    air.pcs_config(config).mix_into(channel);
    channel.mix_u32s(&[n_public_inputs as u32]);
}

/// Each tree's column sizes for `components` (challenges do not change them: callers pass
/// components built with dummy relations).
pub(crate) fn tree_sizes(components: &[&dyn Component]) -> stwo::core::pcs::TreeVec<Vec<u32>> {
    stwo::core::pcs::TreeVec::concat_cols(components.iter().map(|c| c.trace_log_degree_bounds()))
}

/// The proof's preprocessed root against the one the verifier pins (a pinned table, a node's
/// key), both as [`PoeChannel::hash_words`] spells them.
pub(crate) fn check_preprocessed_root(
    expected: [u32; 8],
    got: [u32; 8],
) -> Result<(), VerifyError> {
    if got == expected {
        return Ok(());
    }
    let hex = |w: [u32; 8]| w.map(|x| format!("{x:08x}")).join("");
    Err(VerifyError::PreprocessedRoot {
        expected: hex(expected),
        got: hex(got),
    })
}

/// Binds the LogUp sums before the interaction trace is committed.
pub(crate) fn mix_claimed_sums(channel: &mut impl Channel, sums: &[SecureField]) {
    channel.mix_felts(sums);
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

/// The check a poe verifier runs once its transcript is at the entry of stwo's `verify`:
/// stwo's own ([`Stwo`]) or recursion's tracing verifier, which also returns what it computed.
pub(crate) trait StarkCheck {
    type Out<MC: PoeChannel>;
    /// Called by the verifier after each step of its transcript before stwo's `verify`
    /// (preamble, tree commitments, relation draws, LogUp sums).
    fn note<MC: PoeChannel>(&mut self, _label: &'static str, _channel: &MC::C) {}
    fn check<MC: PoeChannel>(
        self,
        components: &[&dyn Component],
        channel: &mut MC::C,
        scheme: &mut CommitmentSchemeVerifier<MC>,
        stark: StarkProof<MC::H>,
    ) -> Result<Self::Out<MC>, VerifyError>;
}

/// stwo's verifier.
pub(crate) struct Stwo;

impl StarkCheck for Stwo {
    type Out<MC: PoeChannel> = ();
    fn check<MC: PoeChannel>(
        self,
        components: &[&dyn Component],
        channel: &mut MC::C,
        scheme: &mut CommitmentSchemeVerifier<MC>,
        stark: StarkProof<MC::H>,
    ) -> Result<(), VerifyError> {
        run_stark::<MC>(components, channel, scheme, stark)
    }
}

/// stwo's STARK check over `components`, with the transcript at the point after the
/// interaction commitment.
pub(crate) fn run_stark<MC: PoeChannel>(
    components: &[&dyn Component],
    channel: &mut MC::C,
    scheme: &mut CommitmentSchemeVerifier<MC>,
    stark: StarkProof<MC::H>,
) -> Result<(), VerifyError> {
    // stwo indexes into the proof without checking every length; a malformed proof must be an
    // error, never a crash of the auditor's process.
    let result = catch_unwind(AssertUnwindSafe(|| {
        verify(components, channel, scheme, stark)
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

pub(crate) fn map_stwo_error(e: VerificationError) -> VerifyError {
    match e {
        VerificationError::InvalidStructure(s) => VerifyError::Structure(s),
        VerificationError::Merkle(m) => VerifyError::Merkle(m.to_string()),
        VerificationError::OodsNotMatching => VerifyError::OodsMismatch,
        VerificationError::Fri(f) => VerifyError::Fri(f.to_string()),
        VerificationError::ProofOfWork => VerifyError::ProofOfWork,
    }
}
