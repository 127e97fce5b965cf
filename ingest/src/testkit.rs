//! Ready-made rollups, registries and operations for tests, benchmarks and demos.

use poe_circle_stark::venue::{Instrument, Operation, OptionKind, Venue};
use starknet_crypto::Felt;

use crate::client::RollupClient;
use crate::commitment::{CommittedOp, Scheme};
use crate::registry::Registry;
use crate::short_string::ShortString;

/// 2026-11-18T19:33:20Z, the start of the fixtures' clock.
pub const T0: u64 = 1_795_000_000_000_000;

/// The wall clock, µs since the epoch: for tests against a `poe serve` that reads it.
pub fn wall_clock_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros() as u64
}
/// Expiry of the fixture instruments: one day after [`T0`].
pub const EXPIRY: u64 = T0 + 86_400_000_000;

/// Two instruments: a call (strike 100, collateral cap 60) and a put (strike 80).
pub fn instruments() -> Vec<(String, Instrument)> {
    vec![
        (
            "BTC-19NOV26-100-C".into(),
            Instrument {
                underlying: 1,
                expiry_us: EXPIRY,
                strike: 100,
                kind: OptionKind::Call,
                collateral: 60,
            },
        ),
        (
            "BTC-19NOV26-80-P".into(),
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

/// A rollup client named `name` with a key derived from `key_seed`.
pub fn client(name: &str, key_seed: u64, scheme: Scheme) -> RollupClient {
    let inst = instruments();
    RollupClient {
        name: ShortString::try_from(name).expect("short name"),
        private_key: Felt::from(0x1234_5678_9abc_def0_u64) * Felt::from(key_seed + 1),
        scheme,
        instrument_names: inst.iter().map(|i| i.0.clone()).collect(),
        venue: Venue::new(inst.into_iter().map(|i| i.1).collect()),
        seq: 0,
    }
}

/// The `poe.toml` text registering `clients` (ids 1, 2, …) with the fixture instruments.
pub fn registry_toml(clients: &[&RollupClient]) -> String {
    registry_toml_with(clients, &instruments())
}

/// The `poe.toml` text registering `clients` (ids 1, 2, …), each listing `instruments`.
pub fn registry_toml_with(
    clients: &[&RollupClient],
    instruments: &[(String, Instrument)],
) -> String {
    let mut t = String::new();
    for (i, c) in clients.iter().enumerate() {
        t += &format!(
            "[[rollups]]\nid = {}\nname = \"{}\"\npublic_key = \"{:#066x}\"\ncommitment = \"{}\"\n",
            i + 1,
            c.name,
            c.public_key(),
            c.scheme.name()
        );
        for (name, inst) in instruments {
            t += &format!(
                "[[rollups.instruments]]\nname = \"{name}\"\nunderlying = {}\nexpiry_us = {}\nstrike = {}\nkind = \"{}\"\ncollateral = {}\n",
                inst.underlying,
                inst.expiry_us,
                inst.strike,
                if inst.kind == OptionKind::Call { "call" } else { "put" },
                inst.collateral
            );
        }
    }
    t
}

/// The registry of `clients`.
pub fn registry(clients: &[&RollupClient]) -> Registry {
    Registry::parse(&registry_toml(clients)).expect("fixture registry")
}

/// An operation with a trade id.
pub fn op(id: &str, op: Operation) -> CommittedOp {
    CommittedOp {
        trade_id: ShortString::try_from(id).expect("short id"),
        op,
    }
}

/// Deposits of 100,000 to accounts 1 and 2.
pub fn funding() -> Vec<CommittedOp> {
    funding_at(T0)
}

/// [`funding`] stamped at `ts` and `ts + 1`.
pub fn funding_at(ts: u64) -> Vec<CommittedOp> {
    vec![
        op(
            "D-1",
            Operation::Deposit {
                account: 1,
                amount: 100_000,
                timestamp_us: ts,
            },
        ),
        op(
            "D-2",
            Operation::Deposit {
                account: 2,
                amount: 100_000,
                timestamp_us: ts + 1,
            },
        ),
    ]
}

/// One small trade of the call between accounts 1 and 2 at `ts`.
pub fn trade_at(ts: u64) -> Vec<CommittedOp> {
    vec![op(
        &format!("T-{ts}"),
        Operation::Trade {
            buyer: 1,
            seller: 2,
            instrument: 0,
            qty: 1,
            price: 7,
            buyer_fee: 1,
            seller_fee: 1,
            timestamp_us: ts,
        },
    )]
}

/// A valid batch of `n` operations (n ≥ 64): deposits for 50 accounts, then mostly trades of
/// both instruments with some withdrawals — deterministic from `seed`. Timestamps start at
/// `start_us`, one µs apart. Operation ids carry the seed: batches of one rollup built from
/// distinct seeds use distinct ids, as intake requires.
pub fn realistic_ops(n: usize, seed: u64, start_us: u64) -> Vec<CommittedOp> {
    let mut state = seed;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    let accounts = 50u32;
    let mut out = Vec::with_capacity(n);
    for a in 1..=accounts {
        out.push(op(
            &format!("D{seed}-{a}"),
            Operation::Deposit {
                account: a,
                amount: 1_000_000_000_000,
                timestamp_us: start_us,
            },
        ));
    }
    while out.len() < n {
        let ts = start_us + out.len() as u64;
        let i = out.len();
        if next() % 20 == 0 {
            let account = 1 + (next() % u64::from(accounts)) as u32;
            out.push(op(
                &format!("W{seed}-{i}"),
                Operation::Withdraw {
                    account,
                    amount: next() % 1_000,
                    timestamp_us: ts,
                },
            ));
        } else {
            let buyer = 1 + (next() % u64::from(accounts)) as u32;
            let seller = 1 + (buyer + (next() % u64::from(accounts - 1)) as u32) % accounts;
            out.push(op(
                &format!("T{seed}-{i}"),
                Operation::Trade {
                    buyer,
                    seller,
                    instrument: (next() % 2) as u32,
                    qty: 1 + next() % 20,
                    price: 1 + next() % 50,
                    buyer_fee: next() % 3,
                    seller_fee: next() % 3,
                    timestamp_us: ts,
                },
            ));
        }
    }
    out
}

/// A submission signed by `c` for a header stating `pre`/`post` as they are (nothing is
/// re-executed): archives and benchmarks that need real signatures and batch ids over state
/// roots of their own.
pub fn signed_submission(
    c: &RollupClient,
    seq: u64,
    pre: poe_circle_stark::hash::poseidon2::Digest,
    post: poe_circle_stark::hash::poseidon2::Digest,
    ops: Vec<CommittedOp>,
    proof_system: &str,
    proof_bytes: &[u8],
) -> crate::model::Submission {
    use sha3::Digest as _;
    let header = crate::model::Header {
        rollup: c.name.clone(),
        seq,
        pre_state_root: pre,
        post_state_root: post,
        scheme: c.scheme,
        commitment: crate::commitment::commit(c.scheme, &ops).expect("a non-empty batch"),
        proof_system: ShortString::try_from(proof_system).expect("short system name"),
        vk_id: None,
        proof_digest: sha3::Keccak256::digest(proof_bytes).into(),
        n_ops: ops.len() as u32,
    };
    let signature = c.sign(&header);
    crate::model::Submission {
        header,
        signature,
        ops,
        proof_bytes: proof_bytes.to_vec(),
    }
}

/// A weekly call to list through the API (`specs/api.md` §2.6): the fixture rollups' third
/// instrument, expiring a week after [`EXPIRY`].
pub fn weekly_call() -> crate::registry::NamedInstrument {
    crate::registry::NamedInstrument {
        name: "BTC-26NOV26-120-C".into(),
        instrument: Instrument {
            underlying: 1,
            expiry_us: T0 + 8 * 86_400_000_000,
            strike: 120,
            kind: OptionKind::Call,
            collateral: 50,
        },
    }
}
