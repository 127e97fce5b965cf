//! The golden batch-validity proof: a `poe/batch-validity/v2` proof of one sample batch (eight
//! operations — deposits, withdrawals, trades and a settlement with every holder), made once
//! and committed with its statement file (`POEVST03`). It must keep decoding and verifying
//! as the code evolves: it is the leaf proof an archived bundle carries for every batch.
//!
//! Beside it, the same batch proven under the Poseidon2-M31 channel
//! (`batch_validity_v2_poseidon2.proof`: proof format version 2, channel 3), so that the
//! channel recursion verifies is frozen too; both prove the one committed statement. The same
//! proof under the retired channel 2 (`batch_validity_v2_poseidon2_channel2.proof`, the first
//! transcript layout) is kept to show it is refused by name.
//!
//! Regenerate (only for a deliberate format change, with a new version):
//! `cargo test -p poe-tests --test validity_fixture -- --ignored regenerate_validity_fixture`
//! (and `regenerate_poseidon2_validity_fixture`)

use std::path::PathBuf;

use poe_circle_stark::config::{SecurityConfig, VerifierPolicy};
use poe_circle_stark::error::VerifyError;
use poe_circle_stark::hash::merkle::data_root;
use poe_circle_stark::proof::{AirId, ChannelId, Proof, ProofFormatError, FORMAT_V2};
use poe_circle_stark::validity::{
    prove_validity, prove_validity_under, verify_validity_bytes, ValidityStatement,
};
use poe_circle_stark::venue::{sample, Operation, Venue, OP_LIMBS};

const N_OPS: usize = 8;
const ACCOUNTS: u32 = 6;
const SEED: u64 = 14;
const START_US: u64 = 1_795_000_000_000_000;
const STEP_US: u64 = 1_000_000;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// The batch the fixture proves; deterministic.
fn batch() -> (Venue, Vec<Operation>) {
    sample::batch_settling(N_OPS, ACCOUNTS, SEED, START_US, STEP_US)
}

fn golden() -> (Vec<u8>, ValidityStatement) {
    let proof = std::fs::read(fixture("batch_validity_v2.proof")).expect("fixture proof");
    let statement = std::fs::read(fixture("batch_validity_v2.statement")).expect("statement");
    (
        proof,
        ValidityStatement::from_bytes(&statement).expect("fixture statement decodes"),
    )
}

#[test]
fn golden_validity_proof_still_verifies_at_production_policy() {
    let (proof, statement) = golden();
    verify_validity_bytes(&proof, &statement, &VerifierPolicy::default()).unwrap();
    assert_eq!(Proof::from_bytes(&proof).unwrap().air, AirId::BatchValidity);
}

#[test]
fn golden_validity_proof_is_canonical() {
    let (proof, statement) = golden();
    assert_eq!(Proof::from_bytes(&proof).unwrap().to_bytes(), proof);
    let bytes = std::fs::read(fixture("batch_validity_v2.statement")).unwrap();
    assert_eq!(statement.to_bytes(), bytes);
}

#[test]
fn golden_statement_is_still_the_engines() {
    // Catches any change to the operation encoding, the sponge, the trees or the engine: the
    // committed statement must still be what the rules make of the committed batch.
    let (_, statement) = golden();
    let (mut venue, ops) = batch();
    assert_eq!(statement.pre_state_root, venue.state_root());
    let effect = venue.apply_batch(&ops).unwrap();
    assert_eq!(statement.post_state_root, effect.post_state_root);
    let records: Vec<_> = ops.iter().flat_map(Operation::encode).collect();
    assert_eq!(statement.batches.len(), 1);
    assert_eq!(statement.batches[0].n_ops, N_OPS as u32);
    assert_eq!(
        statement.batches[0].data_root,
        data_root(&records, OP_LIMBS)
    );
    assert_eq!(statement.instruments.as_slice(), venue.instruments());
}

#[test]
fn golden_validity_proof_with_another_post_root_is_rejected() {
    let (proof, mut statement) = golden();
    statement.post_state_root.0[0] += poe_circle_stark::field::M31::from_u32_unchecked(1);
    assert_eq!(
        verify_validity_bytes(&proof, &statement, &VerifierPolicy::default()),
        Err(VerifyError::BatchStatementMismatch {
            field: "post_state_root"
        })
    );
}

const POSEIDON2_PROOF: &str = "batch_validity_v2_poseidon2.proof";

#[test]
fn golden_poseidon2_proof_verifies_the_same_statement_at_production_policy() {
    let (_, statement) = golden();
    let bytes = std::fs::read(fixture(POSEIDON2_PROOF)).expect("fixture proof");
    verify_validity_bytes(&bytes, &statement, &VerifierPolicy::default()).unwrap();
    let proof = Proof::from_bytes(&bytes).unwrap();
    assert_eq!(proof.channel(), ChannelId::Poseidon2);
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), FORMAT_V2);
    assert_eq!(
        u16::from_le_bytes([bytes[12], bytes[13]]),
        3,
        "channel 3 on the wire"
    );
    assert_eq!(proof.to_bytes(), bytes);
}

#[test]
fn proof_under_the_retired_channel_2_is_refused_by_name() {
    let (_, statement) = golden();
    let bytes = std::fs::read(fixture("batch_validity_v2_poseidon2_channel2.proof")).unwrap();
    assert_eq!(
        u16::from_le_bytes([bytes[12], bytes[13]]),
        2,
        "channel 2 on the wire"
    );
    let err = verify_validity_bytes(&bytes, &statement, &VerifierPolicy::default()).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Format(ProofFormatError::RetiredChannel { got: 2, .. })
        ),
        "{err}"
    );
}

#[test]
fn golden_poseidon2_proof_with_another_nonce_is_rejected() {
    let (_, statement) = golden();
    let mut proof = Proof::from_bytes(&std::fs::read(fixture(POSEIDON2_PROOF)).unwrap()).unwrap();
    proof.stark.as_poseidon2_mut().unwrap().0.proof_of_work += 1;
    assert_eq!(
        verify_validity_bytes(&proof.to_bytes(), &statement, &VerifierPolicy::default()),
        Err(VerifyError::ProofOfWork)
    );
}

#[test]
#[ignore = "writes tests/fixtures; run only for a deliberate format change"]
fn regenerate_poseidon2_validity_fixture() {
    let (venue, ops) = batch();
    let (statement, proof) = prove_validity_under(
        &venue,
        &ops,
        SecurityConfig::compact(),
        ChannelId::Poseidon2,
    )
    .unwrap();
    assert_eq!(statement, golden().1, "the Blake2s fixture's statement");
    std::fs::write(fixture(POSEIDON2_PROOF), proof.to_bytes()).unwrap();
    println!(
        "wrote tests/fixtures/{POSEIDON2_PROOF} ({} bytes)",
        proof.to_bytes().len()
    );
}

#[test]
#[ignore = "writes tests/fixtures; run only for a deliberate format change"]
fn regenerate_validity_fixture() {
    let (venue, ops) = batch();
    let (statement, proof) = prove_validity(&venue, &ops, SecurityConfig::compact()).unwrap();
    std::fs::write(fixture("batch_validity_v2.proof"), proof.to_bytes()).unwrap();
    std::fs::write(fixture("batch_validity_v2.statement"), statement.to_bytes()).unwrap();
    println!(
        "wrote tests/fixtures/batch_validity_v2.{{proof,statement}} ({} bytes of proof)",
        proof.to_bytes().len()
    );
}
