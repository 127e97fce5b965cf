//! The golden batch-validity proof: a `poe/batch-validity/v2` proof of one sample batch (eight
//! operations — deposits, withdrawals, trades and a settlement with every holder), made once
//! and committed with its statement file (`POEVST03`). It must keep decoding and verifying
//! as the code evolves: it is the leaf proof an archived bundle carries for every batch.
//!
//! Regenerate (only for a deliberate format change, with a new version):
//! `cargo test -p poe-tests --test validity_fixture -- --ignored regenerate_validity_fixture`

use std::path::PathBuf;

use poe_circle_stark::config::{SecurityConfig, VerifierPolicy};
use poe_circle_stark::error::VerifyError;
use poe_circle_stark::hash::merkle::data_root;
use poe_circle_stark::proof::{AirId, Proof};
use poe_circle_stark::validity::{prove_validity, verify_validity_bytes, ValidityStatement};
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
