//! State-root known-answer vectors (`specs/vectors/state-roots.json`, `specs/api.md` §1.1): the
//! venue engine's root of the empty state and after each kind of operation, as a client in any
//! language must compute them to fill `pre_state_root` and `post_state_root`. This test
//! recomputes every vector from the engine and compares with the committed file, so the file
//! cannot drift from the code; `POE_REGENERATE_VECTORS=1` rewrites it.

use poe_circle_stark::venue::{Instrument, Operation, OptionKind, Venue};
use serde_json::{json, Value};

const EXPIRY: u64 = 1_798_358_400_000_000; // 2026-12-27T08:00:00Z
const T: u64 = 1_798_000_000_000_000;

fn instruments() -> Vec<(&'static str, Instrument)> {
    vec![
        (
            "BTC-27DEC26-100-C",
            Instrument {
                underlying: 1,
                expiry_us: EXPIRY,
                strike: 100,
                kind: OptionKind::Call,
                collateral: 60,
            },
        ),
        (
            "BTC-27DEC26-80-P",
            Instrument {
                underlying: 1,
                expiry_us: EXPIRY,
                strike: 80,
                kind: OptionKind::Put,
                collateral: 80,
            },
        ),
    ]
}

/// The operations, in order, each with its wire form (`specs/api/openapi.yaml` Operation).
fn steps() -> Vec<(&'static str, Operation, Value)> {
    vec![
        (
            "deposit",
            Operation::Deposit {
                account: 1,
                amount: 1_000_000,
                timestamp_us: T,
            },
            json!({"type": "deposit", "id": "D-1", "account": 1, "amount": "1000000", "timestamp_us": T.to_string()}),
        ),
        (
            "deposit (a second account)",
            Operation::Deposit {
                account: 2,
                amount: 1_000_000,
                timestamp_us: T + 1,
            },
            json!({"type": "deposit", "id": "D-2", "account": 2, "amount": "1000000", "timestamp_us": (T + 1).to_string()}),
        ),
        (
            "trade (account 1 buys 3 calls from account 2 at 40, fees 1 and 2)",
            Operation::Trade {
                buyer: 1,
                seller: 2,
                instrument: 0,
                qty: 3,
                price: 40,
                buyer_fee: 1,
                seller_fee: 2,
                timestamp_us: T + 2,
            },
            json!({"type": "trade", "id": "T-1", "buyer": 1, "seller": 2, "instrument": "BTC-27DEC26-100-C", "qty": "3", "price": "40", "buyer_fee": "1", "seller_fee": "2", "timestamp_us": (T + 2).to_string()}),
        ),
        (
            "trade (account 2 buys 2 puts from account 1 at 15, no fees)",
            Operation::Trade {
                buyer: 2,
                seller: 1,
                instrument: 1,
                qty: 2,
                price: 15,
                buyer_fee: 0,
                seller_fee: 0,
                timestamp_us: T + 3,
            },
            json!({"type": "trade", "id": "T-2", "buyer": 2, "seller": 1, "instrument": "BTC-27DEC26-80-P", "qty": "2", "price": "15", "buyer_fee": "0", "seller_fee": "0", "timestamp_us": (T + 3).to_string()}),
        ),
        (
            "withdraw",
            Operation::Withdraw {
                account: 1,
                amount: 500,
                timestamp_us: T + 4,
            },
            json!({"type": "withdraw", "id": "W-1", "account": 1, "amount": "500", "timestamp_us": (T + 4).to_string()}),
        ),
        (
            "settle (the call, expired, at 130: in the money by 30, capped at 60)",
            Operation::Settle {
                instrument: 0,
                price: 130,
                timestamp_us: EXPIRY + 1,
            },
            json!({"type": "settle", "id": "S-1", "instrument": "BTC-27DEC26-100-C", "price": "130", "timestamp_us": (EXPIRY + 1).to_string()}),
        ),
    ]
}

fn vectors() -> Value {
    let table = instruments();
    let mut venue = Venue::new(table.iter().map(|(_, i)| i.clone()).collect());
    let empty = venue.state_root();
    let mut out = Vec::new();
    for (what, op, wire) in steps() {
        let effect = venue.apply_batch(&[op]).expect("a valid operation");
        out.push(json!({
            "what": what,
            "operation": wire,
            "pre_state_root": effect.pre_state_root.to_hex(),
            "post_state_root": effect.post_state_root.to_hex(),
        }));
    }
    // The same operations as one batch end on the same root.
    let mut whole = Venue::new(table.iter().map(|(_, i)| i.clone()).collect());
    let batch = whole
        .apply_batch(&steps().into_iter().map(|s| s.1).collect::<Vec<_>>())
        .expect("a valid batch");
    assert_eq!(
        batch.post_state_root.to_hex(),
        out.last().unwrap()["post_state_root"]
    );
    json!({
        "format": "poe-state-root-vectors/1",
        "about": "Known answers of poe's venue engine (specs/api.md §1.1): the state root of an empty venue with these instruments, then after each operation applied alone, in order (each step starts from the previous one's root). Applied as one batch, the operations end on the last root. Generated by tests/tests/state_root_vectors.rs from the engine; that test fails if this file and the engine disagree.",
        "instruments": table.iter().map(|(name, i)| json!({
            "name": name,
            "underlying": i.underlying,
            "expiry_us": i.expiry_us.to_string(),
            "strike": i.strike,
            "kind": if i.kind == OptionKind::Call { "call" } else { "put" },
            "collateral": i.collateral,
        })).collect::<Vec<_>>(),
        "empty_state_root": empty.to_hex(),
        "steps": out,
        "batch_post_state_root": batch.post_state_root.to_hex(),
    })
}

#[test]
fn the_committed_state_root_vectors_are_the_engines() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../specs/vectors/state-roots.json"
    );
    let computed = vectors();
    if std::env::var_os("POE_REGENERATE_VECTORS").is_some() {
        std::fs::write(
            path,
            serde_json::to_string_pretty(&computed).unwrap() + "\n",
        )
        .unwrap();
    }
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(path)
            .expect("specs/vectors/state-roots.json (POE_REGENERATE_VECTORS=1 writes it)"),
    )
    .unwrap();
    assert_eq!(
        committed, computed,
        "specs/vectors/state-roots.json disagrees with the engine"
    );
    // Every step changes the root, and each starts where the last ended.
    let steps = computed["steps"].as_array().unwrap();
    let mut at = computed["empty_state_root"].clone();
    for s in steps {
        assert_eq!(s["pre_state_root"], at, "{}", s["what"]);
        assert_ne!(s["post_state_root"], at, "{}", s["what"]);
        at = s["post_state_root"].clone();
    }
}
