//! Batch-validity proofs under the Poseidon2-M31 channel: they verify, carry their channel in
//! the format (version 2), encode canonically, and every tamper a Merkle channel must catch is
//! rejected with its own error.

use poe_circle_stark::config::{SecurityConfig, VerifierPolicy};
use poe_circle_stark::error::VerifyError;
use poe_circle_stark::field::M31;
use poe_circle_stark::hash::channel::Poseidon2MerkleHasher;
use poe_circle_stark::proof::{ChannelId, Proof, ProofFormatError, Stark, FORMAT_V2};
use poe_circle_stark::validity::{
    prove_validity, prove_validity_under, verify_validity, verify_validity_bytes, ValidityStatement,
};
use poe_circle_stark::venue::sample;
use stwo::core::proof::StarkProof;

const T0: u64 = 1_800_000_000_000_000;

fn policy() -> VerifierPolicy {
    VerifierPolicy::insecure_for_tests()
}

fn honest() -> (ValidityStatement, Proof) {
    let (venue, ops) = sample::batch(64, 8, 5, T0, 0);
    prove_validity_under(
        &venue,
        &ops,
        SecurityConfig::testing(),
        ChannelId::Poseidon2,
    )
    .unwrap()
}

fn one() -> M31 {
    M31::from_u32_unchecked(1)
}

#[test]
fn poseidon2_proof_verifies_and_names_its_channel() {
    let (statement, proof) = honest();
    assert_eq!(proof.channel(), ChannelId::Poseidon2);
    let bytes = proof.to_bytes();
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), FORMAT_V2);
    assert_eq!(
        u16::from_le_bytes([bytes[12], bytes[13]]),
        ChannelId::Poseidon2 as u16
    );
    // Canonical: decoding and re-encoding gives the same bytes.
    let decoded = Proof::from_bytes(&bytes).unwrap();
    assert_eq!(decoded.to_bytes(), bytes);
    assert_eq!(verify_validity_bytes(&bytes, &statement, &policy()), Ok(()));
}

#[test]
fn both_channels_prove_the_same_statement() {
    let (venue, ops) = sample::batch(64, 8, 5, T0, 0);
    let (blake, blake_proof) = prove_validity(&venue, &ops, SecurityConfig::testing()).unwrap();
    let (poseidon, poseidon_proof) = honest();
    assert_eq!(blake, poseidon);
    assert_eq!(blake_proof.channel(), ChannelId::Blake2s);
    assert_eq!(verify_validity(blake_proof, &blake, &policy()), Ok(()));
    assert_eq!(
        verify_validity(poseidon_proof, &poseidon, &policy()),
        Ok(())
    );
}

#[test]
fn proofs_are_byte_identical_across_runs() {
    assert_eq!(honest().1.to_bytes(), honest().1.to_bytes());
}

#[test]
fn wrong_pow_nonce_is_rejected() {
    let (statement, mut proof) = honest();
    proof.stark.as_poseidon2_mut().unwrap().0.proof_of_work += 1;
    assert_eq!(
        verify_validity(proof, &statement, &policy()),
        Err(VerifyError::ProofOfWork)
    );
}

/// Verifies `base` with `edit` applied to a copy of its stwo proof.
fn verify_edited(
    base: &(ValidityStatement, Proof),
    edit: impl FnOnce(&mut StarkProof<Poseidon2MerkleHasher>),
) -> Result<(), VerifyError> {
    let (statement, mut proof) = base.clone();
    edit(proof.stark.as_poseidon2_mut().unwrap());
    verify_validity(proof, &statement, &policy())
}

#[test]
fn wrong_merkle_sibling_is_rejected() {
    let base = honest();
    for tree in 0..4 {
        let Stark::Poseidon2(stark) = &base.1.stark else {
            unreachable!("a Poseidon2 proof")
        };
        if stark.0.decommitments[tree].hash_witness.is_empty() {
            continue; // the empty preprocessed tree has no witness
        }
        let verdict = verify_edited(&base, |p| {
            p.0.decommitments[tree].hash_witness[0].0[2] += one()
        });
        assert!(
            matches!(verdict, Err(VerifyError::Merkle(_))),
            "tree {tree}"
        );
    }
}

#[test]
fn wrong_leaf_value_is_rejected() {
    let base = honest();
    for tree in 1..4 {
        let verdict = verify_edited(&base, |p| p.0.queried_values[tree][0][0] += one());
        assert!(
            matches!(verdict, Err(VerifyError::Merkle(_))),
            "tree {tree}"
        );
    }
}

#[test]
fn wrong_commitment_root_is_rejected() {
    let (statement, mut proof) = honest();
    proof.stark.as_poseidon2_mut().unwrap().0.commitments[1].0[0] += one();
    assert!(verify_validity(proof, &statement, &policy()).is_err());
}

#[test]
fn wrong_fri_layer_root_is_rejected() {
    let (statement, mut proof) = honest();
    let stark = proof.stark.as_poseidon2_mut().unwrap();
    stark.0.fri_proof.inner_layers[0].commitment.0[7] += one();
    assert!(verify_validity(proof, &statement, &policy()).is_err());
}

#[test]
fn non_canonical_digest_element_is_rejected() {
    let (_, proof) = honest();
    let mut bytes = proof.to_bytes();
    // The first commitment follows the header, the public inputs and the claimed sums.
    let header = 8 + 2 + 2 + 2 + 12;
    let n_pi = u32::from_le_bytes(bytes[header..header + 4].try_into().unwrap()) as usize;
    let sums_at = header + 4 + 4 * n_pi;
    let n_sums = u32::from_le_bytes(bytes[sums_at..sums_at + 4].try_into().unwrap()) as usize;
    let first_root = sums_at + 4 + 16 * n_sums + 4;
    bytes[first_root..first_root + 4].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    assert_eq!(
        Proof::from_bytes(&bytes).unwrap_err(),
        ProofFormatError::NonCanonicalField {
            offset: first_root,
            value: 0x7fff_ffff
        }
    );
}

#[test]
fn poseidon2_proof_relabelled_as_blake2s_is_rejected() {
    // Version 1 has no channel field: the two bytes that named the channel are read as the
    // start of the configuration, so the relabelled proof fails to decode or to verify.
    let (statement, proof) = honest();
    let bytes = proof.to_bytes();
    let mut relabelled = bytes[..8].to_vec();
    relabelled.extend_from_slice(&1u16.to_le_bytes());
    relabelled.extend_from_slice(&bytes[10..12]);
    relabelled.extend_from_slice(&bytes[14..]);
    assert!(verify_validity_bytes(&relabelled, &statement, &policy()).is_err());
}

#[test]
fn verifier_costs_are_counted_and_reproducible() {
    use poe_circle_stark::recursion::{count_permutations, shape_costs};
    let (statement, proof) = honest();
    let bytes = proof.to_bytes();
    let verify = || verify_validity_bytes(&bytes, &statement, &policy());
    let (verdict, perms) = count_permutations(verify);
    assert_eq!(verdict, Ok(()));
    assert_eq!(count_permutations(verify).1, perms);
    let costs = shape_costs(&proof);
    assert_eq!(costs.deep_terms, costs.queries * costs.samples);
    // At least one opened row of every tree is hashed, eight values per permutation.
    assert!(perms > costs.opened_per_query / 8, "{perms} permutations");
    // The same statement under Blake2s runs almost no Poseidon2 at all: the count is the
    // channel's.
    let (venue, ops) = sample::batch(64, 8, 5, T0, 0);
    let (_, blake) = prove_validity(&venue, &ops, SecurityConfig::testing()).unwrap();
    let blake_bytes = blake.to_bytes();
    let (_, blake_perms) =
        count_permutations(|| verify_validity_bytes(&blake_bytes, &statement, &policy()));
    assert!(blake_perms * 10 < perms, "{blake_perms} against {perms}");
}
