//! poe's native commitments and Stark ECDSA against vectors made by independent
//! implementations (pycryptodome, circomlibjs, starknet.js); see `tests/kat/README.md`.

use poe_circle_stark::venue::Operation;
use poe_ingest::auth::{parse_felt, verify, AuthError};
use poe_ingest::commitment::{commit, CommittedOp, Scheme};
use poe_ingest::short_string::ShortString;
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/kat")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn op_from_fields(f: &[u64]) -> Operation {
    let op = match f[0] {
        2 => Operation::Deposit {
            account: f[1] as u32,
            amount: f[4],
            timestamp_us: f[8],
        },
        3 => Operation::Withdraw {
            account: f[1] as u32,
            amount: f[4],
            timestamp_us: f[8],
        },
        4 => Operation::Trade {
            buyer: f[1] as u32,
            seller: f[2] as u32,
            instrument: f[3] as u32,
            qty: f[4],
            price: f[5],
            buyer_fee: f[6],
            seller_fee: f[7],
            timestamp_us: f[8],
        },
        5 => Operation::Settle {
            instrument: f[3] as u32,
            price: f[5],
            timestamp_us: f[8],
        },
        k => panic!("unknown kind {k}"),
    };
    assert_eq!(op.fields(), f, "vector fields must round-trip");
    op
}

fn batches() -> Vec<Vec<CommittedOp>> {
    load("ops.json")["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            b.as_array()
                .unwrap()
                .iter()
                .map(|o| {
                    let fields: Vec<u64> = o["fields"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_str().unwrap().parse().unwrap())
                        .collect();
                    CommittedOp {
                        trade_id: ShortString::try_from(o["trade_id"].as_str().unwrap()).unwrap(),
                        op: op_from_fields(&fields),
                    }
                })
                .collect()
        })
        .collect()
}

fn check(scheme: Scheme, vectors: &Value) {
    let expected = vectors[scheme.name()].as_array().unwrap();
    let batches = batches();
    assert_eq!(expected.len(), batches.len());
    for (i, (batch, want)) in batches.iter().zip(expected).enumerate() {
        let got = format!("0x{}", hex::encode(commit(scheme, batch).unwrap()));
        assert_eq!(got, want.as_str().unwrap(), "{scheme}, batch {i}");
    }
}

#[test]
fn keccak256_matches_pycryptodome() {
    check(Scheme::Keccak256, &load("keccak_vectors.json"));
}

#[test]
fn poseidon_bn254_matches_circomlibjs() {
    check(Scheme::PoseidonBn254, &load("field_vectors.json"));
}

#[test]
fn poseidon_felt252_matches_starknet_js() {
    check(Scheme::PoseidonFelt252, &load("field_vectors.json"));
}

#[test]
fn pedersen_felt252_matches_starknet_js() {
    check(Scheme::PedersenFelt252, &load("field_vectors.json"));
}

#[test]
fn stark_ecdsa_signature_from_starknet_js_verifies_and_tampering_fails() {
    let v = &load("field_vectors.json")["signing"];
    let felt = |k: &'static str| parse_felt(k, v[k].as_str().unwrap()).unwrap();
    let (key, msg, r, s) = (
        felt("public_key"),
        felt("message_hash"),
        felt("r"),
        felt("s"),
    );
    verify(&key, &msg, &r, &s).unwrap();
    let other = parse_felt("m", "0x1234").unwrap();
    assert_eq!(verify(&key, &other, &r, &s), Err(AuthError::Invalid));
    assert_eq!(verify(&key, &msg, &s, &r), Err(AuthError::Invalid));
}
