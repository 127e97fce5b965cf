//! Day proofs: the day tree over batch statements with the day summary bound, and the tampers
//! an operator could try on them.

use std::sync::OnceLock;

use poe_circle_stark::config::{SecurityConfig, VerifierPolicy};
use poe_circle_stark::data_root::prove_data_root;
use poe_circle_stark::day::prove_day;
use poe_circle_stark::day::statement::{day_root, BatchStatement, DayStatement};
use poe_circle_stark::day::{verify_day, verify_day_bytes};
use poe_circle_stark::error::VerifyError;
use poe_circle_stark::field::M31;
use poe_circle_stark::hash::poseidon2::Digest;
use poe_circle_stark::proof::{AirId, Proof};

const DAY: u32 = 20_418; // 2025-11-26

fn config() -> SecurityConfig {
    SecurityConfig::new(1, 12, 10).unwrap()
}

fn policy() -> VerifierPolicy {
    VerifierPolicy::insecure_for_tests()
}

fn d(x: u32) -> Digest {
    Digest(std::array::from_fn(|i| {
        M31::from_u32_unchecked(x.wrapping_mul(0x9e37_79b9).wrapping_add(i as u32) >> 1)
    }))
}

/// Two rollups, chained batches.
fn statements() -> Vec<BatchStatement> {
    let mut out = Vec::new();
    for (rollup_id, n) in [(1u32, 6u64), (3, 5)] {
        for seq in 0..n {
            let at = rollup_id * 100 + seq as u32;
            out.push(BatchStatement {
                rollup_id,
                seq: 10 + seq,
                pre_state_root: d(at),
                post_state_root: d(at + 1),
                data_root: d(5000 + at),
                instruments_root: d(rollup_id),
                n_ops: 1000 + at,
            });
        }
    }
    out
}

fn honest() -> &'static (DayStatement, Vec<u8>) {
    static PROOF: OnceLock<(DayStatement, Vec<u8>)> = OnceLock::new();
    PROOF.get_or_init(|| {
        let (statement, proof) = prove_day(DAY, &statements(), [7; 32], config()).unwrap();
        (statement, proof.to_bytes())
    })
}

#[test]
fn honest_day_proof_verifies_against_the_statement_an_auditor_derives() {
    let (statement, bytes) = honest();
    let derived = DayStatement::derive(DAY, &statements(), [7; 32]).unwrap();
    assert_eq!(&derived, statement);
    assert_eq!(statement.day_root, day_root(&statements()));
    assert_eq!(statement.rollups.len(), 2);
    verify_day_bytes(bytes, &derived, &policy()).unwrap();
}

fn expect_mismatch(edit: impl FnOnce(&mut DayStatement), field: &str) {
    let (statement, bytes) = honest();
    let mut other = statement.clone();
    edit(&mut other);
    assert_eq!(
        verify_day_bytes(bytes, &other, &policy()),
        Err(VerifyError::DayStatementMismatch {
            field: match field {
                "day" => "day",
                "day_root" => "day_root",
                "manifest_hash" => "manifest_hash",
                "n_ops" => "n_ops",
                _ => "rollups",
            }
        })
    );
}

#[test]
fn proof_of_another_day_is_rejected() {
    expect_mismatch(|s| s.day += 1, "day");
}

#[test]
fn edited_manifest_hash_is_rejected() {
    expect_mismatch(|s| s.manifest_hash[31] ^= 1, "manifest_hash");
}

#[test]
fn statement_with_an_edited_batch_is_rejected() {
    let mut edited = statements();
    edited[4].n_ops += 1;
    edited[4].data_root = d(1);
    let mut other = DayStatement::derive(DAY, &edited, [7; 32]).unwrap();
    other.n_ops -= 1; // keep the count equal: only the root can tell
    expect_mismatch(|s| *s = other, "day_root");
}

#[test]
fn edited_rollup_span_is_rejected() {
    expect_mismatch(|s| s.rollups[1].last_post_state_root = d(1), "rollups");
}

#[test]
fn rewritten_public_inputs_fail_the_stark() {
    // An operator who edits the manifest hash inside the proof to match a new manifest: the
    // public inputs now agree with the statement, but the transcript no longer does: the
    // LogUp challenges drawn from it change, so the claimed sums stop closing.
    let (statement, bytes) = honest();
    let mut proof = Proof::from_bytes(bytes).unwrap();
    let mut other = statement.clone();
    other.manifest_hash[0] ^= 0x80;
    proof.public_inputs = other.to_public_inputs();
    let err = verify_day(proof, &other, &policy()).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::LogUpSumMismatch
                | VerifyError::OodsMismatch
                | VerifyError::Fri(_)
                | VerifyError::Merkle(_)
        ),
        "{err:?}"
    );
}

#[test]
fn data_root_proof_cannot_pose_as_a_day_proof() {
    let flat: Vec<M31> = statements()
        .iter()
        .flat_map(poe_circle_stark::encoding::Record::encode)
        .collect();
    let (_, proof) = prove_data_root(
        &flat,
        <BatchStatement as poe_circle_stark::encoding::Record>::LIMBS,
        config(),
    )
    .unwrap();
    assert_eq!(
        verify_day(proof, &honest().0, &policy()),
        Err(VerifyError::WrongAir {
            expected: AirId::DayRoot,
            got: AirId::DataRoot
        })
    );
}
