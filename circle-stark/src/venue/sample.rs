//! Realistic batches for tests and benchmarks: funded accounts trading calls and puts, with
//! some deposits and withdrawals, every operation valid under the engine. Deterministic.

use super::{Instrument, Operation, OptionKind, Venue};

/// Four listed options (BTC and ETH, a call and a put each), prices per lot.
pub fn instruments(expiry_us: u64) -> Vec<Instrument> {
    vec![
        Instrument {
            underlying: 1,
            expiry_us,
            strike: 6_000_000,
            kind: OptionKind::Call,
            collateral: 3_000_000,
        },
        Instrument {
            underlying: 1,
            expiry_us,
            strike: 6_000_000,
            kind: OptionKind::Put,
            collateral: 6_000_000,
        },
        Instrument {
            underlying: 2,
            expiry_us,
            strike: 300_000,
            kind: OptionKind::Call,
            collateral: 150_000,
        },
        Instrument {
            underlying: 2,
            expiry_us,
            strike: 300_000,
            kind: OptionKind::Put,
            collateral: 300_000,
        },
    ]
}

/// A venue after funding `accounts` accounts, and a batch of `n` operations on it: about 85%
/// trades, 10% deposits, 5% withdrawals, timestamps from `start_us` advancing by `step_us`.
/// Returns the venue *before* the batch.
pub fn batch(
    n: usize,
    accounts: u32,
    seed: u64,
    start_us: u64,
    step_us: u64,
) -> (Venue, Vec<Operation>) {
    generate(
        n,
        accounts,
        seed,
        start_us,
        step_us,
        instruments(start_us + 365 * 86_400_000_000),
    )
}

/// Like [`batch`], but instrument 0 (the BTC call) expires at the batch's last timestamp and
/// the last of the `n` operations settles it (in the money, below the cap), so the batch holds
/// one settlement with every holder of instrument 0. `step_us` must be positive.
pub fn batch_settling(
    n: usize,
    accounts: u32,
    seed: u64,
    start_us: u64,
    step_us: u64,
) -> (Venue, Vec<Operation>) {
    batch_settling_at(n, accounts, seed, start_us, step_us, 0, 7_500_000)
}

/// Like [`batch_settling`], for any listed `instrument` and settlement `price`.
pub fn batch_settling_at(
    n: usize,
    accounts: u32,
    seed: u64,
    start_us: u64,
    step_us: u64,
    instrument: u32,
    price: u64,
) -> (Venue, Vec<Operation>) {
    assert!(
        n >= 2 && step_us > 0,
        "a settling batch needs two operations and time"
    );
    let expiry = start_us + (n as u64 - 1) * step_us;
    let mut listed = instruments(start_us + 365 * 86_400_000_000);
    listed[instrument as usize].expiry_us = expiry;
    let (venue, mut ops) = generate(n - 1, accounts, seed, start_us, step_us, listed);
    ops.push(Operation::Settle {
        instrument,
        price,
        timestamp_us: expiry,
    });
    (venue, ops)
}

fn generate(
    n: usize,
    accounts: u32,
    seed: u64,
    start_us: u64,
    step_us: u64,
    listed: Vec<Instrument>,
) -> (Venue, Vec<Operation>) {
    let mut state = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut next = move |m: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % m
    };
    let mut venue = Venue::new(listed);
    let funding: Vec<Operation> = (1..=accounts)
        .map(|account| Operation::Deposit {
            account,
            amount: 10_000_000_000_000,
            timestamp_us: start_us,
        })
        .collect();
    venue
        .apply_batch(&funding)
        .expect("funding deposits are valid");
    let before = venue.clone();
    let mut ops = Vec::with_capacity(n);
    while ops.len() < n {
        let ts = start_us + ops.len() as u64 * step_us;
        let account = 1 + next(u64::from(accounts)) as u32;
        let op = match next(20) {
            0 | 1 => Operation::Deposit {
                account,
                amount: 1 + next(5_000_000_000),
                timestamp_us: ts,
            },
            2 => Operation::Withdraw {
                account,
                amount: 1 + next(venue.account(account).cash.min(1_000_000_000)),
                timestamp_us: ts,
            },
            _ => Operation::Trade {
                buyer: account,
                seller: 1 + (account + next(u64::from(accounts - 1)) as u32) % accounts,
                instrument: next(4) as u32,
                qty: 1 + next(200),
                price: 1_000 + next(400_000),
                buyer_fee: next(500),
                seller_fee: next(500),
                timestamp_us: ts,
            },
        };
        // A draw the rules refuse (an account out of cash) is drawn again.
        if venue.apply_batch(std::slice::from_ref(&op)).is_ok() {
            ops.push(op);
        }
    }
    (before, ops)
}
