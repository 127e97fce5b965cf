//! The golden data-root proof: a v1 proof made once and committed. It must keep decoding and
//! verifying as the code evolves — auditors re-check old proofs years later.
//!
//! Regenerate (only for a deliberate format change, with a new version):
//! `cargo test -p poe-tests --test proof_fixture -- --ignored regenerate_data_root_fixture`

use std::path::PathBuf;

use poe_aggregator::batch::synthetic_records;
use poe_circle_stark::config::{SecurityConfig, VerifierPolicy};
use poe_circle_stark::data_root::prove_data_root;
use poe_circle_stark::data_root::verify_data_root_bytes;
use poe_circle_stark::data_root::DataRootStatement;
use poe_circle_stark::encoding::{CashMovement, Record};
use poe_circle_stark::field::M31;
use poe_circle_stark::hash::merkle::data_root;
use poe_circle_stark::hash::poseidon2::Digest;
use poe_circle_stark::proof::Proof;

const RECORDS: usize = 64;
const SEED: u64 = 1;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn records() -> Vec<M31> {
    synthetic_records(RECORDS, SEED)
        .iter()
        .flat_map(Record::encode)
        .collect()
}

fn statement() -> DataRootStatement {
    let text = std::fs::read_to_string(fixture("data_root_v1.json")).expect("fixture statement");
    let v: serde_json::Value = serde_json::from_str(&text).expect("fixture JSON");
    DataRootStatement {
        n_records: v["n_records"].as_u64().unwrap() as u32,
        record_limbs: v["record_limbs"].as_u64().unwrap() as u32,
        root: Digest::from_hex(v["root"].as_str().unwrap()).unwrap(),
    }
}

#[test]
fn golden_v1_proof_still_verifies_at_production_policy() {
    let bytes = std::fs::read(fixture("data_root_v1.proof")).expect("fixture proof");
    verify_data_root_bytes(&bytes, &statement(), &VerifierPolicy::default()).unwrap();
}

#[test]
fn golden_v1_proof_is_canonical() {
    let bytes = std::fs::read(fixture("data_root_v1.proof")).unwrap();
    assert_eq!(Proof::from_bytes(&bytes).unwrap().to_bytes(), bytes);
}

#[test]
fn golden_statement_root_is_still_the_root_of_its_records() {
    // Catches any change to the record encoding, the sponge, the tree or the constants.
    assert_eq!(data_root(&records(), CashMovement::LIMBS), statement().root);
}

#[test]
#[ignore = "writes tests/fixtures; run only for a deliberate format change"]
fn regenerate_data_root_fixture() {
    let (statement, proof) = prove_data_root(
        &records(),
        CashMovement::LIMBS,
        SecurityConfig::production(),
    )
    .unwrap();
    std::fs::write(fixture("data_root_v1.proof"), proof.to_bytes()).unwrap();
    let json = serde_json::json!({
        "air": "poe/data-root/v1",
        "n_records": statement.n_records,
        "record_limbs": statement.record_limbs,
        "root": statement.root.to_hex(),
        "records": format!("poe_aggregator::batch::synthetic_records({RECORDS}, {SEED}) encoded as CashMovement"),
        "security": "production",
        "regenerate": "cargo test -p poe-tests --test proof_fixture -- --ignored regenerate_data_root_fixture",
    });
    std::fs::write(
        fixture("data_root_v1.json"),
        serde_json::to_string_pretty(&json).unwrap() + "\n",
    )
    .unwrap();
    println!("wrote tests/fixtures/data_root_v1.{{proof,json}}");
}
