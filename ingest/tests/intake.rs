//! Intake end to end (without HTTP): every refusal names its check, refused batches leave no
//! trace, duplicates are idempotent, and a reopened store restores every rollup's head.

use poe_circle_stark::venue::{Operation, Venue};
use poe_ingest::client::RollupClient;
use poe_ingest::commitment::{CommittedOp, Scheme};
use poe_ingest::intake::{Intake, IntakeError, Outcome, RollupProofStatus};
use poe_ingest::model::{parse_submission, Refusal};
use poe_ingest::registry::Registry;
use poe_ingest::short_string::ShortString;
use serde_json::Value;
use starknet_crypto::Felt;

use poe_ingest::testkit::{funding, instruments, op, registry as registry_of, T0};

const NOW: u64 = T0 + 5_000_000;

fn client() -> RollupClient {
    poe_ingest::testkit::client("aurora", 1, Scheme::PoseidonFelt252)
}

fn registry(c: &RollupClient) -> Registry {
    registry_of(&[c])
}

fn trades(ts: u64) -> Vec<CommittedOp> {
    vec![op(
        &format!("T-{ts}"),
        Operation::Trade {
            buyer: 1,
            seller: 2,
            instrument: 0,
            qty: 10,
            price: 7,
            buyer_fee: 1,
            seller_fee: 1,
            timestamp_us: ts,
        },
    )]
}

struct Fixture {
    dir: std::path::PathBuf,
    client: RollupClient,
    intake: Intake,
}

fn fixture(tag: &str) -> Fixture {
    let dir = std::env::temp_dir().join(format!("poe-intake-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let client = client();
    let intake = Intake::create(registry(&client), &dir.join("intake.redb")).unwrap();
    Fixture {
        dir,
        client,
        intake,
    }
}

fn refusal(r: Result<Outcome, IntakeError>) -> Refusal {
    match r {
        Err(IntakeError::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Re-signs an edited body with the client's key (so that the edit reaches later checks).
fn resign(f: &Fixture, body: &Value) -> Vec<u8> {
    let bytes = serde_json::to_vec(body).unwrap();
    let (sub, _) = parse_submission(&bytes, f.intake.registry()).unwrap();
    serde_json::to_vec(&f.client.body(&sub.header, &sub.ops, &sub.proof_bytes)).unwrap()
}

#[test]
fn accepted_batch_gets_a_receipt_and_resubmission_is_idempotent() {
    let mut f = fixture("ok");
    let body = f.client.next_batch(&funding(), "groth16", b"opaque proof");
    let Outcome::Accepted(receipt) = f.intake.submit(&body, NOW).unwrap() else {
        panic!("not accepted")
    };
    assert_eq!(
        (receipt.seq, receipt.n_ops, receipt.day.as_str()),
        (1, 2, "2026-11-18")
    );
    assert_eq!(receipt.rollup_proof, RollupProofStatus::Unverified);
    assert_eq!(
        f.intake.submit(&body, NOW + 99).unwrap(),
        Outcome::Duplicate(receipt.clone())
    );
    assert_eq!(
        f.intake.receipt_of(&receipt.batch_id).unwrap(),
        Some(receipt)
    );
    std::fs::remove_dir_all(&f.dir).unwrap();
}

#[test]
fn same_seq_with_other_content_is_a_conflict() {
    let mut f = fixture("conflict");
    let mut other = f.client.clone();
    let body = f.client.next_batch(&funding(), "groth16", b"p");
    f.intake.submit(&body, NOW).unwrap();
    let mut ops = funding();
    ops[0].op = Operation::Deposit {
        account: 1,
        amount: 5,
        timestamp_us: T0,
    };
    let r = refusal(
        f.intake
            .submit(&other.next_batch(&ops, "groth16", b"p"), NOW),
    );
    assert_eq!(r.code.as_str(), "seq_conflict");
    std::fs::remove_dir_all(&f.dir).unwrap();
}

#[test]
fn gaps_and_forks_are_refused_with_the_expected_values() {
    let mut f = fixture("gap");
    let mut ahead = f.client.clone();
    ahead.seq = 1;
    let r = refusal(
        f.intake
            .submit(&ahead.next_batch(&funding(), "groth16", b"p"), NOW),
    );
    assert_eq!(
        (r.code.as_str(), r.message.as_str()),
        ("seq_gap", "expected seq 1, got 2")
    );

    let mut forked = f.client.clone();
    forked
        .venue
        .apply_batch(&[Operation::Deposit {
            account: 9,
            amount: 1,
            timestamp_us: T0,
        }])
        .unwrap();
    let r = refusal(
        f.intake
            .submit(&forked.next_batch(&funding(), "groth16", b"p"), NOW),
    );
    assert_eq!(r.code.as_str(), "state_fork");
    assert!(r.message.contains("post state of seq 0"), "{}", r.message);
    std::fs::remove_dir_all(&f.dir).unwrap();
}

#[test]
fn wrong_signature_is_refused() {
    let mut f = fixture("sig");
    let mut impostor = f.client.clone();
    impostor.private_key = Felt::from_hex("0x99").unwrap();
    let r = refusal(
        f.intake
            .submit(&impostor.next_batch(&funding(), "groth16", b"p"), NOW),
    );
    assert_eq!(r.code.as_str(), "bad_signature");

    // A signed header edited afterwards: the signature no longer covers it. (Editing an
    // operation instead is caught by the native commitment, which the signature covers.)
    let mut body: Value =
        serde_json::from_slice(&f.client.clone().next_batch(&funding(), "groth16", b"p")).unwrap();
    body["header"]["post_state_root"] = body["header"]["pre_state_root"].clone();
    let r = refusal(f.intake.submit(&serde_json::to_vec(&body).unwrap(), NOW));
    assert_eq!(r.code.as_str(), "bad_signature");
    std::fs::remove_dir_all(&f.dir).unwrap();
}

#[test]
fn tampered_trade_fails_the_native_commitment() {
    let mut f = fixture("commit");
    let mut body: Value =
        serde_json::from_slice(&f.client.clone().next_batch(&funding(), "groth16", b"p")).unwrap();
    body["operations"][1]["amount"] = "100001".into();
    let r = refusal(f.intake.submit(&resign(&f, &body), NOW));
    assert_eq!(r.code.as_str(), "commitment_mismatch");
    assert!(r.message.starts_with("recomputed 0x"));
    std::fs::remove_dir_all(&f.dir).unwrap();
}

#[test]
fn rule_violation_names_the_operation_and_leaves_no_trace() {
    let mut f = fixture("rule");
    f.intake
        .submit(&f.client.next_batch(&funding(), "groth16", b"p"), NOW)
        .unwrap();
    let head = f.intake.head("aurora");
    // The rollup's replica is bypassed: build the overdraft by hand and sign it.
    let mut ops = trades(T0 + 2);
    ops.push(op(
        "W-1",
        Operation::Withdraw {
            account: 1,
            amount: 1_000_000,
            timestamp_us: T0 + 3,
        },
    ));
    let mut c = f.client.clone();
    let header = {
        let mut v = Venue::new(instruments().into_iter().map(|i| i.1).collect());
        v.apply_batch(&funding().iter().map(|o| o.op).collect::<Vec<_>>())
            .unwrap();
        let pre = v.state_root();
        c.seq += 1;
        poe_ingest::model::Header {
            rollup: c.name.clone(),
            seq: c.seq,
            pre_state_root: pre,
            post_state_root: pre,
            scheme: c.scheme,
            commitment: poe_ingest::commitment::commit(c.scheme, &ops).unwrap(),
            proof_system: ShortString::try_from("groth16").unwrap(),
            vk_id: None,
            proof_digest: sha3::Keccak256::digest(b"p").into(),
            n_ops: 2,
        }
    };
    use sha3::Digest as _;
    let body = serde_json::to_vec(&c.body(&header, &ops, b"p")).unwrap();
    let r = refusal(f.intake.submit(&body, NOW));
    assert_eq!(
        (r.code.as_str(), r.op_index, r.path.as_str()),
        ("rule_violation", Some(1), "operations[1]")
    );
    assert!(
        r.message.contains("account 1 needs 1000000"),
        "{}",
        r.message
    );
    assert_eq!(
        f.intake.head("aurora"),
        head,
        "a refused batch must not move the head"
    );
    std::fs::remove_dir_all(&f.dir).unwrap();
}

#[test]
fn wrong_post_state_root_is_refused() {
    let mut f = fixture("post");
    let mut body: Value =
        serde_json::from_slice(&f.client.clone().next_batch(&funding(), "groth16", b"p")).unwrap();
    body["header"]["post_state_root"] = body["header"]["pre_state_root"].clone();
    let r = refusal(f.intake.submit(&resign(&f, &body), NOW));
    assert_eq!(r.code.as_str(), "post_state_root_mismatch");
    // The refusal does not tell the root re-execution gives (an oracle to sign against).
    let mut venue = Venue::new(instruments().into_iter().map(|(_, i)| i).collect());
    let truth = venue
        .apply_batch(&funding().iter().map(|o| o.op).collect::<Vec<_>>())
        .unwrap()
        .post_state_root;
    assert!(!r.message.contains(&truth.to_hex()), "{}", r.message);
    std::fs::remove_dir_all(&f.dir).unwrap();
}

#[test]
fn malformed_inputs_name_their_field() {
    let mut f = fixture("malformed");
    let good: Value =
        serde_json::from_slice(&f.client.clone().next_batch(&funding(), "groth16", b"p")).unwrap();
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "unknown_rollup",
            Box::new(|b| b["header"]["rollup"] = "borealis".into()),
        ),
        (
            "malformed_amount",
            Box::new(|b| b["operations"][0]["amount"] = "007".into()),
        ),
        (
            "malformed_amount",
            Box::new(|b| b["operations"][0]["amount"] = "9223372036854775808".into()),
        ),
        (
            "n_ops_mismatch",
            Box::new(|b| b["header"]["n_ops"] = 3.into()),
        ),
        (
            "malformed_root",
            Box::new(|b| b["header"]["pre_state_root"] = "00".into()),
        ),
        ("malformed_json", Box::new(|b| b["extra"] = 1.into())),
        (
            "malformed_signature",
            Box::new(|b| b["signature"]["r"] = "12".into()),
        ),
    ];
    for (code, edit) in cases {
        let mut b = good.clone();
        edit(&mut b);
        let r = refusal(f.intake.submit(&serde_json::to_vec(&b).unwrap(), NOW));
        assert_eq!(r.code.as_str(), code, "{r}");
    }
    assert_eq!(refusal(f.intake.submit(b"{", NOW)).code, "malformed_json");
    assert_eq!(f.intake.head("aurora").unwrap().0, 0);
    std::fs::remove_dir_all(&f.dir).unwrap();
}

#[test]
fn reopened_intake_restores_heads_and_continues() {
    let f = fixture("reopen");
    let mut client = f.client.clone();
    let mut intake = f.intake;
    intake
        .submit(&client.next_batch(&funding(), "groth16", b"p"), NOW)
        .unwrap();
    intake
        .submit(&client.next_batch(&trades(T0 + 2), "groth16", b"p"), NOW)
        .unwrap();
    let head = intake.head("aurora");
    drop(intake);
    let mut intake = Intake::open(registry(&client), &f.dir.join("intake.redb")).unwrap();
    assert_eq!(intake.head("aurora"), head);
    assert!(matches!(
        intake.submit(&client.next_batch(&trades(T0 + 3), "groth16", b"p"), NOW),
        Ok(Outcome::Accepted(_))
    ));
    std::fs::remove_dir_all(&f.dir).unwrap();
}

#[test]
fn poe_circle_stark_rollup_proof_is_verified_at_the_door() {
    use poe_circle_stark::config::SecurityConfig;
    use poe_circle_stark::data_root::prove_data_root;
    use poe_circle_stark::venue::ops::OP_LIMBS;
    let mut f = fixture("poeproof");
    let ops = funding();
    let records: Vec<_> = ops.iter().flat_map(|o| o.op.encode()).collect();
    let (_, proof) = prove_data_root(&records, OP_LIMBS, SecurityConfig::production()).unwrap();
    let mut bad = f.client.clone();
    let body = f
        .client
        .next_batch(&ops, "poe-circle-stark/v1", &proof.to_bytes());
    let Outcome::Accepted(r) = f.intake.submit(&body, NOW).unwrap() else {
        panic!("not accepted")
    };
    assert_eq!(r.rollup_proof, RollupProofStatus::Verified);

    // A proof of other records (one deposit changed) is refused.
    let mut other = records.clone();
    other[7] = poe_circle_stark::field::M31::from_u32_unchecked(9);
    let (_, wrong) = prove_data_root(&other, OP_LIMBS, SecurityConfig::production()).unwrap();
    let mut f2 = fixture("poeproof2");
    let r = refusal(f2.intake.submit(
        &bad.next_batch(&ops, "poe-circle-stark/v1", &wrong.to_bytes()),
        NOW,
    ));
    assert_eq!(r.code.as_str(), "rollup_proof_invalid");
    assert!(r.message.contains("public inputs differ"), "{}", r.message);
    std::fs::remove_dir_all(&f.dir).unwrap();
    std::fs::remove_dir_all(&f2.dir).unwrap();
}

#[test]
fn high_s_twin_of_a_signature_is_the_same_batch() {
    // Anyone who sees a batch in flight can re-encode its signature as (r, n − s), which
    // verifies too. Were it a new batch id, it would take the seq and the genuine retry would
    // get `seq_conflict`; it is the same batch, so both get the same receipt.
    let mut f = fixture("malleable");
    let body = f.client.next_batch(&funding(), "groth16", b"p");
    let mut twin: Value = serde_json::from_slice(&body).unwrap();
    let s = Felt::from_hex(twin["signature"]["s"].as_str().unwrap()).unwrap();
    twin["signature"]["s"] = Value::String(format!("{:#x}", poe_ingest::auth::EC_ORDER - s));
    let twin = serde_json::to_vec(&twin).unwrap();
    let Outcome::Accepted(receipt) = f.intake.submit(&twin, NOW).unwrap() else {
        panic!("the twin verifies and is accepted first")
    };
    assert_eq!(
        f.intake.submit(&body, NOW + 1).unwrap(),
        Outcome::Duplicate(receipt)
    );
    std::fs::remove_dir_all(&f.dir).unwrap();
}

#[test]
fn upper_case_root_is_malformed() {
    // specs/api.md and the OpenAPI pattern `^[0-9a-f]{64}$`: one spelling per root.
    let mut f = fixture("upper");
    let mut body: Value =
        serde_json::from_slice(&f.client.clone().next_batch(&funding(), "groth16", b"p")).unwrap();
    let upper = body["header"]["post_state_root"]
        .as_str()
        .unwrap()
        .to_ascii_uppercase();
    body["header"]["post_state_root"] = Value::String(upper);
    let r = refusal(f.intake.submit(&serde_json::to_vec(&body).unwrap(), NOW));
    assert_eq!(r.code.as_str(), "malformed_root");
    std::fs::remove_dir_all(&f.dir).unwrap();
}

#[test]
fn operation_stamped_far_ahead_is_refused() {
    // A deposit stamped 2^63 − 1 µs would move the venue clock there and freeze the rollup:
    // every later operation must be stamped at or after the clock.
    let mut f = fixture("future");
    let mut ops = funding();
    ops[1].op = Operation::Deposit {
        account: 2,
        amount: 5,
        timestamp_us: (1 << 63) - 1,
    };
    let r = refusal(
        f.intake
            .submit(&f.client.clone().next_batch(&ops, "groth16", b"p"), NOW),
    );
    assert_eq!(
        (r.code.as_str(), r.path.as_str(), r.op_index),
        ("timestamp_in_future", "operations[1].timestamp_us", Some(1))
    );
    // Within the allowed skew it is accepted (the rollup's clock a little ahead of poe's).
    let mut ops = funding();
    ops[1].op = Operation::Deposit {
        account: 2,
        amount: 5,
        timestamp_us: NOW + poe_ingest::intake::MAX_CLOCK_SKEW_US,
    };
    assert!(matches!(
        f.intake
            .submit(&f.client.clone().next_batch(&ops, "groth16", b"p"), NOW),
        Ok(Outcome::Accepted(_))
    ));
    std::fs::remove_dir_all(&f.dir).unwrap();
}

#[test]
fn trade_id_used_twice_in_a_batch_is_refused() {
    let mut f = fixture("dup-in-batch");
    let mut ops = funding();
    ops[1].trade_id = ops[0].trade_id.clone();
    let r = refusal(
        f.intake
            .submit(&f.client.clone().next_batch(&ops, "groth16", b"p"), NOW),
    );
    assert_eq!(
        (r.code.as_str(), r.path.as_str(), r.op_index),
        ("duplicate_trade_id", "operations[1].id", Some(1))
    );
    assert!(r.message.contains("operations[0]"), "{}", r.message);
    std::fs::remove_dir_all(&f.dir).unwrap();
}

#[test]
fn trade_id_reused_by_a_later_batch_is_refused_even_after_reopen() {
    let f = fixture("dup-across");
    let mut client = f.client.clone();
    let mut intake = f.intake;
    let first = client.next_batch(&funding(), "groth16", b"p");
    assert!(matches!(
        intake.submit(&first, NOW),
        Ok(Outcome::Accepted(_))
    ));
    drop(intake);
    let mut intake = Intake::open(registry(&client), &f.dir.join("intake.redb")).unwrap();
    // "D-2" again, in a batch that is otherwise valid.
    let mut ops = trades(T0 + 2);
    ops.push(op(
        "D-2",
        Operation::Deposit {
            account: 2,
            amount: 1,
            timestamp_us: T0 + 3,
        },
    ));
    let replay = client.clone();
    let r = refusal(intake.submit(&client.next_batch(&ops, "groth16", b"p"), NOW));
    assert_eq!(
        (r.code.as_str(), r.path.as_str(), r.op_index),
        ("duplicate_trade_id", "operations[1].id", Some(1))
    );
    assert!(r.message.contains("seq 1"), "{}", r.message);
    assert_eq!(intake.head("aurora").unwrap().0, 1, "nothing stored");
    // The retry of the first batch is still idempotent, and a fresh id goes through.
    assert!(matches!(
        intake.submit(&first, NOW),
        Ok(Outcome::Duplicate(_))
    ));
    let mut client = replay;
    ops[1].trade_id = "D-3".try_into().unwrap();
    assert!(matches!(
        intake.submit(&client.next_batch(&ops, "groth16", b"p"), NOW),
        Ok(Outcome::Accepted(_))
    ));
    std::fs::remove_dir_all(&f.dir).unwrap();
}

#[test]
fn operation_stamped_more_than_a_day_before_acceptance_is_refused() {
    let mut f = fixture("too-old");
    let age = poe_ingest::intake::MAX_OPERATION_AGE_US;
    let body = f.client.clone().next_batch(&funding(), "groth16", b"p");
    // Accepted a day and a second after the first deposit's stamp.
    let r = refusal(f.intake.submit(&body, T0 + age + 1_000_000));
    assert_eq!(
        (r.code.as_str(), r.path.as_str(), r.op_index),
        ("timestamp_too_old", "operations[0].timestamp_us", Some(0))
    );
    // Exactly a day old is still in time.
    assert!(matches!(
        f.intake.submit(&body, T0 + age),
        Ok(Outcome::Accepted(_))
    ));
    std::fs::remove_dir_all(&f.dir).unwrap();
}

#[test]
fn trade_on_an_instrument_expired_before_acceptance_is_refused() {
    // Stamped before expiry, submitted once the outcome is known: history written after the
    // fact. Deposits are still accepted then; trades are not.
    let f = fixture("expired");
    let mut client = f.client.clone();
    let mut intake = f.intake;
    let expiry = poe_ingest::testkit::EXPIRY;
    let late = expiry + poe_ingest::intake::MAX_CLOCK_SKEW_US + 1;
    let mut ops = poe_ingest::testkit::funding_at(expiry - 2_000_000);
    let funded = client.clone();
    ops.extend(trades(expiry - 1_000_000));
    let r = refusal(intake.submit(&client.next_batch(&ops, "groth16", b"p"), late));
    assert_eq!(
        (r.code.as_str(), r.path.as_str(), r.op_index),
        ("instrument_expired", "operations[2].instrument", Some(2))
    );
    let mut client = funded;
    let in_time = expiry + poe_ingest::intake::MAX_CLOCK_SKEW_US;
    assert!(matches!(
        intake.submit(&client.next_batch(&ops, "groth16", b"p"), in_time),
        Ok(Outcome::Accepted(_))
    ));
    std::fs::remove_dir_all(&f.dir).unwrap();
}
