//! Proving and verifying data-root statements, and every tamper we can think of.

use std::sync::OnceLock;

use poe_circle_stark::config::{SecurityConfig, VerifierPolicy};
use poe_circle_stark::data_root::prove_data_root;
use poe_circle_stark::data_root::DataRootStatement;
use poe_circle_stark::data_root::{verify_data_root, verify_data_root_bytes};
use poe_circle_stark::encoding::{CashMovement, Direction, Record};
use poe_circle_stark::error::VerifyError;
use poe_circle_stark::field::M31;
use poe_circle_stark::hash::merkle::data_root;
use poe_circle_stark::proof::{Proof, ProofFormatError};

const N: usize = 37;

/// Enough grinding that a flipped nonce fails deterministically for this fixed proof.
fn config() -> SecurityConfig {
    SecurityConfig::new(1, 12, 10).unwrap()
}

fn policy() -> VerifierPolicy {
    VerifierPolicy::insecure_for_tests()
}

fn records(n: usize) -> Vec<M31> {
    (0..n)
        .flat_map(|i| {
            CashMovement {
                direction: if i % 3 == 0 {
                    Direction::Withdrawal
                } else {
                    Direction::Deposit
                },
                account: 1000 + (i as u32 % 7),
                amount: 1_000_000 * (i as u64 + 1),
                timestamp_us: 1_795_000_000_000_000 + i as u64 * 1_000,
            }
            .encode()
        })
        .collect()
}

/// One honest proof shared by the tamper tests (proving is the slow part).
fn honest() -> &'static (DataRootStatement, Vec<u8>) {
    static PROOF: OnceLock<(DataRootStatement, Vec<u8>)> = OnceLock::new();
    PROOF.get_or_init(|| {
        let (statement, proof) =
            prove_data_root(&records(N), CashMovement::LIMBS, config()).unwrap();
        (statement, proof.to_bytes())
    })
}

fn verify_bytes(bytes: &[u8], statement: &DataRootStatement) -> Result<(), VerifyError> {
    verify_data_root_bytes(bytes, statement, &policy())
}

#[test]
fn honest_proof_verifies_and_names_the_native_root() {
    let (statement, bytes) = honest();
    assert_eq!(statement.root, data_root(&records(N), CashMovement::LIMBS));
    assert_eq!(statement.n_records, N as u32);
    verify_bytes(bytes, statement).unwrap();
}

#[test]
fn encoding_is_canonical_round_trip() {
    let (_, bytes) = honest();
    assert_eq!(&Proof::from_bytes(bytes).unwrap().to_bytes(), bytes);
}

#[test]
fn single_record_and_power_of_two_batches_verify() {
    for n in [1, 16, 64] {
        let (statement, proof) =
            prove_data_root(&records(n), CashMovement::LIMBS, config()).unwrap();
        verify_data_root(proof, &statement, &policy()).unwrap_or_else(|e| panic!("n = {n}: {e}"));
    }
}

#[test]
fn other_record_lengths_verify() {
    for limbs in [1, 8, 9, 20] {
        let recs: Vec<M31> = (0..50 * limbs)
            .map(|i| M31::from_u32_unchecked(i as u32 % 65_536))
            .collect();
        let (statement, proof) = prove_data_root(&recs, limbs, config()).unwrap();
        assert_eq!(statement.root, data_root(&recs, limbs));
        verify_data_root(proof, &statement, &policy())
            .unwrap_or_else(|e| panic!("limbs = {limbs}: {e}"));
    }
}

#[test]
fn altered_data_root_is_rejected() {
    let (statement, bytes) = honest();
    let mut forged = *statement;
    forged.root.0[3] += M31::from_u32_unchecked(1);
    assert!(matches!(
        verify_bytes(bytes, &forged),
        Err(VerifyError::PublicInputMismatch { field: "root" })
    ));

    // The same with the proof's public inputs edited to match: the LogUp sums no longer close.
    let mut proof = Proof::from_bytes(bytes).unwrap();
    proof.public_inputs = forged.to_public_inputs();
    assert_eq!(
        verify_data_root(proof, &forged, &policy()),
        Err(VerifyError::LogUpSumMismatch)
    );
}

#[test]
fn record_altered_after_proving_is_rejected() {
    let (statement, bytes) = honest();
    let mut recs = records(N);
    recs[5 * CashMovement::LIMBS + 4] += M31::from_u32_unchecked(1); // amount of record 5
    let altered = DataRootStatement {
        root: data_root(&recs, CashMovement::LIMBS),
        ..*statement
    };
    assert_ne!(altered.root, statement.root);
    let mut proof = Proof::from_bytes(bytes).unwrap();
    proof.public_inputs = altered.to_public_inputs();
    assert_eq!(
        verify_data_root(proof, &altered, &policy()),
        Err(VerifyError::LogUpSumMismatch)
    );
}

#[test]
fn dropped_record_is_rejected() {
    let (statement, bytes) = honest();
    let recs = records(N - 1);
    let shorter = DataRootStatement {
        n_records: (N - 1) as u32,
        root: data_root(&recs, CashMovement::LIMBS),
        ..*statement
    };
    let mut proof = Proof::from_bytes(bytes).unwrap();
    proof.public_inputs = shorter.to_public_inputs();
    assert_eq!(
        verify_data_root(proof, &shorter, &policy()),
        Err(VerifyError::LogUpSumMismatch)
    );
}

#[test]
fn claimed_sums_shifted_between_components_are_rejected() {
    let (statement, bytes) = honest();
    let mut proof = Proof::from_bytes(bytes).unwrap();
    let delta = proof.claimed_sums[0] - proof.claimed_sums[1];
    proof.claimed_sums[0] -= delta;
    proof.claimed_sums[1] += delta;
    // The total still closes, but the sums are bound into the transcript and the constraints.
    assert_eq!(
        verify_data_root(proof, statement, &policy()),
        Err(VerifyError::OodsMismatch)
    );
}

#[test]
fn flipped_byte_in_trace_commitment_is_rejected() {
    let (statement, bytes) = honest();
    let mut proof = Proof::from_bytes(bytes).unwrap();
    proof.stark.as_blake2s_mut().unwrap().0.commitments[1].0[0] ^= 1;
    // The commitment seeds the LogUp challenges, so the claimed sums stop closing first.
    assert_eq!(
        verify_data_root(proof, statement, &policy()),
        Err(VerifyError::LogUpSumMismatch)
    );
}

#[test]
fn flipped_byte_in_queried_values_is_rejected() {
    let (statement, bytes) = honest();
    let mut proof = Proof::from_bytes(bytes).unwrap();
    proof.stark.as_blake2s_mut().unwrap().0.queried_values[1][0][0] += M31::from_u32_unchecked(1);
    assert!(matches!(
        verify_data_root(proof, statement, &policy()),
        Err(VerifyError::Merkle(_))
    ));
}

#[test]
fn flipped_byte_in_fri_witness_is_rejected() {
    let (statement, bytes) = honest();
    let mut proof = Proof::from_bytes(bytes).unwrap();
    let layer = &mut proof
        .stark
        .as_blake2s_mut()
        .unwrap()
        .0
        .fri_proof
        .inner_layers[0];
    layer.fri_witness[0] += poe_circle_stark::field::SecureField::from_u32_unchecked(1, 0, 0, 0);
    assert!(matches!(
        verify_data_root(proof, statement, &policy()),
        Err(VerifyError::Fri(_))
    ));
}

#[test]
fn flipped_proof_of_work_nonce_is_rejected() {
    let (statement, bytes) = honest();
    let mut proof = Proof::from_bytes(bytes).unwrap();
    proof.stark.as_blake2s_mut().unwrap().0.proof_of_work ^= 1;
    assert_eq!(
        verify_data_root(proof, statement, &policy()),
        Err(VerifyError::ProofOfWork)
    );
}

#[test]
fn every_single_bit_flip_in_a_sample_of_positions_is_rejected() {
    let (statement, bytes) = honest();
    // Every 97th byte, so that all sections of the format are hit.
    for pos in (0..bytes.len()).step_by(97) {
        let mut tampered = bytes.clone();
        tampered[pos] ^= 0x04;
        assert!(
            verify_bytes(&tampered, statement).is_err(),
            "flip at byte {pos} of {} accepted",
            bytes.len()
        );
    }
}

#[test]
fn truncated_proof_is_rejected() {
    let (statement, bytes) = honest();
    let cut = &bytes[..bytes.len() - 5];
    assert!(matches!(
        verify_bytes(cut, statement),
        Err(VerifyError::Format(
            ProofFormatError::Truncated { .. } | ProofFormatError::LengthOverflow { .. }
        ))
    ));
    assert!(matches!(
        verify_bytes(&bytes[..3], statement),
        Err(VerifyError::Format(ProofFormatError::Truncated {
            offset: 0,
            needed: 5
        }))
    ));
}

#[test]
fn trailing_bytes_are_rejected() {
    let (statement, bytes) = honest();
    let mut long = bytes.clone();
    long.extend_from_slice(&[0, 0]);
    assert_eq!(
        verify_bytes(&long, statement),
        Err(VerifyError::Format(ProofFormatError::TrailingBytes {
            count: 2
        }))
    );
}

/// Offset of the first public input: magic 8, version 2, AIR 2, config 12, count 4.
const FIRST_PUBLIC_INPUT: usize = 28;

#[test]
fn non_canonical_element_in_proof_is_rejected() {
    let (statement, bytes) = honest();
    let mut tampered = bytes.clone();
    // n_records + p encodes the same field element: exactly what a canonical format must refuse.
    let raw = statement.n_records + (1u32 << 31) - 1;
    tampered[FIRST_PUBLIC_INPUT..FIRST_PUBLIC_INPUT + 4].copy_from_slice(&raw.to_le_bytes());
    assert_eq!(
        verify_bytes(&tampered, statement),
        Err(VerifyError::Format(ProofFormatError::NonCanonicalField {
            offset: FIRST_PUBLIC_INPUT,
            value: raw
        }))
    );
}

#[test]
fn proof_with_unknown_air_id_is_rejected() {
    let (statement, bytes) = honest();
    let mut tampered = bytes.clone();
    tampered[10..12].copy_from_slice(&u16::MAX.to_le_bytes());
    assert_eq!(
        verify_bytes(&tampered, statement),
        Err(VerifyError::Format(ProofFormatError::UnknownAir {
            got: u16::MAX
        }))
    );
}

#[test]
fn proof_with_unknown_version_is_rejected() {
    let (statement, bytes) = honest();
    let mut tampered = bytes.clone();
    tampered[8..10].copy_from_slice(&3u16.to_le_bytes());
    assert_eq!(
        verify_bytes(&tampered, statement),
        Err(VerifyError::Format(ProofFormatError::UnsupportedVersion {
            expected: [1, 2],
            got: 3
        }))
    );
}

#[test]
fn blake2s_proof_rewritten_as_version_2_is_rejected() {
    // The same proof with a version-2 header naming its own channel: a second encoding.
    let (statement, bytes) = honest();
    let mut tampered = bytes[..12].to_vec();
    tampered[8..10].copy_from_slice(&2u16.to_le_bytes());
    tampered.extend_from_slice(&1u16.to_le_bytes());
    tampered.extend_from_slice(&bytes[12..]);
    assert_eq!(
        verify_bytes(&tampered, statement),
        Err(VerifyError::Format(ProofFormatError::NonCanonicalVersion {
            channel: "blake2s",
            expected: 1,
            got: 2
        }))
    );
}

#[test]
fn proof_with_unknown_channel_is_rejected() {
    let (statement, bytes) = honest();
    let mut tampered = bytes[..12].to_vec();
    tampered[8..10].copy_from_slice(&2u16.to_le_bytes());
    tampered.extend_from_slice(&9u16.to_le_bytes());
    tampered.extend_from_slice(&bytes[12..]);
    assert_eq!(
        verify_bytes(&tampered, statement),
        Err(VerifyError::Format(ProofFormatError::UnknownChannel {
            got: 9
        }))
    );
}

#[test]
fn wrong_magic_is_rejected() {
    let (statement, bytes) = honest();
    let mut tampered = bytes.clone();
    tampered[0] = b'X';
    assert!(matches!(
        verify_bytes(&tampered, statement),
        Err(VerifyError::Format(ProofFormatError::BadMagic { .. }))
    ));
}

#[test]
fn security_below_minimum_is_rejected() {
    let (statement, bytes) = honest();
    assert_eq!(
        verify_data_root_bytes(bytes, statement, &VerifierPolicy::default()),
        Err(VerifyError::SecurityTooLow {
            expected: 100,
            got: 22
        })
    );
}

#[test]
fn config_edited_in_the_proof_is_rejected() {
    let (statement, bytes) = honest();
    let mut tampered = bytes.clone();
    // n_queries 12 → 13: still in range, but bound into the transcript and the FRI shape.
    tampered[16..20].copy_from_slice(&13u32.to_le_bytes());
    assert!(verify_bytes(&tampered, statement).is_err());
}
