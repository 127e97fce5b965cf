//! The node AIR (`specs/recursion.md` §7): an arithmetic circuit over QM31 with Poseidon2-M31
//! permutations, proven by two fixed components — the **gate** component (one row per QM31
//! op) and the **permutation** component (one row per permutation) — whose wiring is
//! preprocessed. A node's verifying key is the preprocessed root with the components' sizes,
//! channel and blowup ([`NodeKey`]); its statement is the values of the circuit's public
//! wires. A child STARK's verification written as such a circuit is [`child`]; node kind W
//! over a batch-validity v3 proof is [`wrap`], node kind M over two node proofs [`merge`].

pub mod child;
pub mod gadgets;
pub mod gates;
pub mod lower;
pub mod merge;
pub mod perm;
pub mod program;
#[cfg(feature = "prover")]
mod prove;
#[cfg(all(test, feature = "prover"))]
mod tests;
pub mod transcript;
pub mod tree;
pub mod wrap;

use stwo::core::channel::MerkleChannel;
use stwo::core::fields::qm31::SecureField;
use stwo::core::pcs::CommitmentSchemeVerifier;
use stwo::core::vcs_lifted::blake2_merkle::Blake2sMerkleChannel;
use stwo_constraint_framework::{FrameworkComponent, TraceLocationAllocator};

pub use gates::{GateEval, WireRel};
pub use lower::{fold_program, horner, lower, lower_with, mask_witnesses};
pub use program::{Builder, Op, Program, Wire};
#[cfg(feature = "prover")]
pub use prove::{node_key, prove_node, prove_node_under, NodeProver};

use crate::config::VerifierPolicy;
use crate::error::VerifyError;
use crate::field::M31;
use crate::hash::channel::Poseidon2MerkleChannel;
use crate::proof::{AirId, ChannelId, PoeChannel, Proof, Stark};
use crate::recursion::trace::Tracer;
use crate::recursion::AnyTrace;
use crate::stark::{
    check_air_and_policy, check_preprocessed_root, mix_claimed_sums, mix_preamble, tree_sizes,
    StarkCheck, Stwo,
};

/// What a verifier needs of a circuit: the gate component's size, the commitment to its
/// wiring (channel and blowup fixed with it), and each public wire with its read count.
/// Computed by the prover side ([`node_key`]); the verifier takes it as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeKey {
    /// log2 of the gate component's rows.
    pub log_rows: u32,
    /// log2 of the permutation component's rows.
    pub log_perm_rows: u32,
    /// The channel the root was computed under.
    pub channel: ChannelId,
    /// The blowup the root was computed at.
    pub log_blowup: u32,
    /// The preprocessed tree's root, as [`PoeChannel::hash_words`] spells it.
    pub preprocessed_root: [u32; 8],
    /// Per public wire, in order: its id and its read count.
    pub publics: Vec<(u32, u32)>,
}

impl NodeKey {
    /// The proof's public inputs for public wire values `values`: the count, then per wire its
    /// id, its read count and its four coordinates. (The root is bound by the commitment.)
    pub fn public_inputs(&self, values: &[SecureField]) -> Vec<M31> {
        let mut out = vec![M31::from(self.publics.len() as u32)];
        for (&(id, uses), v) in self.publics.iter().zip(values) {
            out.push(M31::from(id));
            out.push(M31::from(uses));
            out.extend(v.to_m31_array());
        }
        out
    }
}

/// Verifies a node proof against its key and the values of its public wires.
///
/// # Errors
/// `WrongAir`, `SecurityTooLow`; `WrongKey` for a proof under another channel or blowup
/// than the key's; `PublicInputMismatch` for other public values or wiring;
/// `PreprocessedRoot` for a proof of another circuit; `LogUpSumMismatch` when the wires do
/// not balance with the public values; stwo's rejections.
pub fn verify_node(
    proof: &Proof,
    key: &NodeKey,
    public: &[SecureField],
    policy: &VerifierPolicy,
) -> Result<(), VerifyError> {
    match &proof.stark {
        Stark::Blake2s(s) => {
            let publics = check_statement(proof, key, public, policy)?;
            verify_stark::<Blake2sMerkleChannel, _>(s.clone(), proof, key, &publics, Stwo)
        }
        Stark::Poseidon2(s) => {
            let publics = check_statement(proof, key, public, policy)?;
            verify_stark::<Poseidon2MerkleChannel, _>(s.clone(), proof, key, &publics, Stwo)
        }
    }
}

/// Verifies like [`verify_node`] with recursion's tracing verifier, and returns its record
/// (what a node verifying this node proof takes as witness).
///
/// # Errors
/// As [`verify_node`].
pub fn trace_node(
    proof: &Proof,
    key: &NodeKey,
    public: &[SecureField],
    policy: &VerifierPolicy,
) -> Result<AnyTrace, VerifyError> {
    let publics = check_statement(proof, key, public, policy)?;
    match &proof.stark {
        Stark::Blake2s(s) => verify_stark::<Blake2sMerkleChannel, _>(
            s.clone(),
            proof,
            key,
            &publics,
            Tracer::default(),
        )
        .map(AnyTrace::Blake2s),
        Stark::Poseidon2(s) => verify_stark::<Poseidon2MerkleChannel, _>(
            s.clone(),
            proof,
            key,
            &publics,
            Tracer::default(),
        )
        .map(AnyTrace::Poseidon2),
    }
}

/// The checks before the STARK; the public wires with their ids and read counts.
fn check_statement(
    proof: &Proof,
    key: &NodeKey,
    public: &[SecureField],
    policy: &VerifierPolicy,
) -> Result<Vec<(u32, u32, SecureField)>, VerifyError> {
    check_air_and_policy(proof, AirId::Node, policy)?;
    if proof.channel() != key.channel {
        return Err(VerifyError::WrongKey {
            field: "channel",
            expected: key.channel.name().into(),
            got: proof.channel().name().into(),
        });
    }
    if proof.config.log_blowup() != key.log_blowup {
        return Err(VerifyError::WrongKey {
            field: "log_blowup",
            expected: key.log_blowup.to_string(),
            got: proof.config.log_blowup().to_string(),
        });
    }
    if public.len() != key.publics.len() {
        return Err(VerifyError::InvalidStatement(format!(
            "the key has {} public wires, {} values given",
            key.publics.len(),
            public.len()
        )));
    }
    if proof.public_inputs != key.public_inputs(public) {
        return Err(VerifyError::PublicInputMismatch {
            field: "public wires",
        });
    }
    if proof.claimed_sums.len() != 2 {
        return Err(VerifyError::Structure(format!(
            "expected 2 LogUp sums, got {}",
            proof.claimed_sums.len()
        )));
    }
    if proof.stark.n_trees() != 4 {
        return Err(VerifyError::Structure(format!(
            "expected 4 commitment trees, got {}",
            proof.stark.n_trees()
        )));
    }
    Ok(key
        .publics
        .iter()
        .zip(public)
        .map(|(&(id, uses), &v)| (id, uses, v))
        .collect())
}

/// The node's components: the gate component and the permutation component, their
/// preprocessed columns placed in commitment order (gate's, then permutation's).
pub(crate) struct Components {
    pub gate: FrameworkComponent<GateEval>,
    pub perm: FrameworkComponent<perm::PermEval>,
}

impl Components {
    pub(crate) fn new(key: &NodeKey, wires: &WireRel, sums: &[SecureField]) -> Self {
        let mut ids = gates::preprocessed_ids();
        ids.extend(perm::preprocessed_ids());
        let mut alloc = TraceLocationAllocator::new_with_preprocessed_columns(&ids);
        let gate = FrameworkComponent::new(
            &mut alloc,
            GateEval {
                log_rows: key.log_rows,
                wires: wires.clone(),
            },
            sums[0],
        );
        let perm = FrameworkComponent::new(
            &mut alloc,
            perm::PermEval {
                log_rows: key.log_perm_rows,
                wires: wires.clone(),
            },
            sums[1],
        );
        Self { gate, perm }
    }

    pub(crate) fn as_components(&self) -> [&dyn stwo::core::air::Component; 2] {
        [&self.gate, &self.perm]
    }

    #[cfg(feature = "prover")]
    pub(crate) fn as_components_prover(
        &self,
    ) -> [&dyn stwo::prover::ComponentProver<stwo::prover::backend::simd::SimdBackend>; 2] {
        [&self.gate, &self.perm]
    }
}

fn verify_stark<MC: PoeChannel, K: StarkCheck>(
    stark: stwo::core::proof::StarkProof<MC::H>,
    proof: &Proof,
    key: &NodeKey,
    publics: &[(u32, u32, SecureField)],
    mut check: K,
) -> Result<K::Out<MC>, VerifyError> {
    let channel = &mut <MC as MerkleChannel>::C::default();
    mix_preamble(
        channel,
        MC::ID,
        AirId::Node,
        &proof.config,
        &proof.public_inputs,
    );
    check.note::<MC>("preamble", channel);
    let mut scheme = CommitmentSchemeVerifier::<MC>::new(AirId::Node.pcs_config(&proof.config));
    check_preprocessed_root(
        key.preprocessed_root,
        MC::hash_words(&stark.0.commitments[0]),
    )?;
    let sums = &proof.claimed_sums;
    // Relation challenges do not affect the sizes: placeholders draw the shape.
    let shape = Components::new(key, &WireRel::dummy(), sums);
    let sizes = tree_sizes(&shape.as_components());
    let commitments = stark.0.commitments.clone();
    scheme.commit(commitments[0], &sizes[0], channel);
    scheme.commit(commitments[1], &sizes[1], channel);
    // Drawn after the main trace; the sum is bound before the interaction trace.
    let wires = WireRel::draw(channel);
    mix_claimed_sums(channel, sums);
    scheme.commit(commitments[2], &sizes[2], channel);
    if sums.iter().copied().sum::<SecureField>() + gates::public_sum(&wires, publics)
        != SecureField::from(M31::from(0u32))
    {
        return Err(VerifyError::LogUpSumMismatch);
    }
    let components = Components::new(key, &wires, sums);
    check.check::<MC>(&components.as_components(), channel, &mut scheme, stark)
}
