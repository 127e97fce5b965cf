use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::venue::ops::OptionKind;

const T0: u64 = 1_795_000_000_000_000;
const EXPIRY: u64 = T0 + 1_000_000;

fn instruments() -> Vec<Instrument> {
    vec![
        // 0: call, strike 100, payoff capped at 60 per lot.
        Instrument {
            underlying: 1,
            expiry_us: EXPIRY,
            strike: 100,
            kind: OptionKind::Call,
            collateral: 60,
        },
        // 1: put, strike 80 (collateral = strike).
        Instrument {
            underlying: 1,
            expiry_us: EXPIRY,
            strike: 80,
            kind: OptionKind::Put,
            collateral: 80,
        },
    ]
}

fn funded() -> Venue {
    let mut v = Venue::new(instruments());
    let ops: Vec<Operation> = (1..=4)
        .map(|a| Operation::Deposit {
            account: a,
            amount: 1_000_000,
            timestamp_us: T0,
        })
        .collect();
    v.apply_batch(&ops).unwrap();
    v
}

fn trade(buyer: u32, seller: u32, instrument: u32, qty: u64, price: u64, ts: u64) -> Operation {
    Operation::Trade {
        buyer,
        seller,
        instrument,
        qty,
        price,
        buyer_fee: 3,
        seller_fee: 2,
        timestamp_us: ts,
    }
}

fn rule_of(v: &mut Venue, ops: &[Operation]) -> Rule {
    let before = v.clone().state_root();
    let err = v.apply_batch(ops).unwrap_err();
    assert_eq!(
        v.state_root(),
        before,
        "a refused batch must leave no trace"
    );
    err.rule
}

#[test]
fn trade_moves_cash_fees_positions_and_collateral() {
    let mut v = funded();
    v.apply_batch(&[trade(1, 2, 0, 10, 7, T0 + 1)]).unwrap();
    assert_eq!(
        v.account(1),
        AccountState {
            cash: 1_000_000 - 70 - 3,
            locked: 0
        }
    );
    // Seller: +70 − 2, and 10 lots × 60 locked.
    assert_eq!(
        v.account(2),
        AccountState {
            cash: 1_000_000 + 70 - 2 - 600,
            locked: 600
        }
    );
    assert_eq!(v.account(FEE_ACCOUNT).cash, 5);
    assert_eq!((v.position(0, 1), v.position(0, 2)), (10, -10));
    assert_eq!(v.open_interest(0), 10);
    // The short buys back 4 lots: 240 unlocked.
    v.apply_batch(&[trade(2, 3, 0, 4, 7, T0 + 2)]).unwrap();
    assert_eq!(v.account(2).locked, 360);
    assert_eq!((v.position(0, 2), v.position(0, 3)), (-6, -4));
    // Account 3 went short, so the longs (account 1's 10 lots) are unchanged.
    assert_eq!(v.open_interest(0), 10);
}

#[test]
fn settlement_pays_capped_intrinsic_and_closes_everything() {
    let mut v = funded();
    v.apply_batch(&[trade(1, 2, 0, 10, 7, T0 + 1), trade(3, 4, 1, 5, 9, T0 + 2)])
        .unwrap();
    let total = v.total_value();
    // Call settles at 200: intrinsic 100, capped at 60.
    v.apply_batch(&[
        Operation::Settle {
            instrument: 0,
            price: 200,
            timestamp_us: EXPIRY,
        },
        Operation::Settle {
            instrument: 1,
            price: 50,
            timestamp_us: EXPIRY,
        },
    ])
    .unwrap();
    assert_eq!(v.account(1).cash, 1_000_000 - 73 + 600);
    assert_eq!(
        v.account(2),
        AccountState {
            cash: 1_000_000 + 68 - 600,
            locked: 0
        }
    );
    // Put at 50: intrinsic 30 per lot; the short keeps 5 × (80 − 30).
    assert_eq!(v.account(3).cash, 1_000_000 - 45 - 3 + 150);
    assert_eq!(
        v.account(4),
        AccountState {
            cash: 1_000_000 + 45 - 2 - 400 + 250,
            locked: 0
        }
    );
    assert_eq!(
        (v.position(0, 1), v.position(1, 4), v.open_interest(0)),
        (0, 0, 0)
    );
    assert_eq!(
        v.total_value(),
        total,
        "settlement moves value, never creates it"
    );
}

#[test]
fn each_rule_is_enforced() {
    let mut v = funded();
    let t = T0 + 1;
    assert_eq!(
        rule_of(
            &mut v,
            &[Operation::Withdraw {
                account: 1,
                amount: 1_000_001,
                timestamp_us: t
            }]
        ),
        Rule::InsufficientCash {
            account: 1,
            needed: 1_000_001,
            available: 1_000_000
        }
    );
    assert_eq!(
        rule_of(&mut v, &[trade(1, 1, 0, 1, 1, t)]),
        Rule::SelfTrade { account: 1 }
    );
    assert_eq!(
        rule_of(&mut v, &[trade(1, 2, 0, 0, 1, t)]),
        Rule::ZeroQuantity
    );
    assert_eq!(
        rule_of(&mut v, &[trade(0, 2, 0, 1, 1, t)]),
        Rule::FeeAccountTrades
    );
    assert_eq!(
        rule_of(&mut v, &[trade(1, 2, 9, 1, 1, t)]),
        Rule::UnknownInstrument { got: 9, listed: 2 }
    );
    assert_eq!(
        rule_of(&mut v, &[trade(1, 2, 0, 1, 1, EXPIRY)]),
        Rule::TradeAfterExpiry {
            expiry: EXPIRY,
            timestamp: EXPIRY
        }
    );
    assert_eq!(
        rule_of(
            &mut v,
            &[Operation::Settle {
                instrument: 0,
                price: 1,
                timestamp_us: EXPIRY - 1
            }]
        ),
        Rule::SettleBeforeExpiry {
            expiry: EXPIRY,
            timestamp: EXPIRY - 1
        }
    );
    // Uncollateralised short: 20,000 lots × 60 = 1.2M of collateral the seller lacks.
    assert!(matches!(
        rule_of(&mut v, &[trade(1, 2, 0, 20_000, 1, t)]),
        Rule::InsufficientCash { account: 2, .. }
    ));
    assert_eq!(
        rule_of(&mut v, &[trade(1, 2, 0, 1 << 40, 1 << 40, t)]),
        Rule::Overflow {
            what: "qty * price"
        }
    );
    assert_eq!(
        rule_of(
            &mut v,
            &[Operation::Deposit {
                account: 1 << 18,
                amount: 1,
                timestamp_us: t
            }]
        ),
        Rule::AccountOutOfRange {
            got: 1 << 18,
            max: (1 << 18) - 1
        }
    );
    assert_eq!(
        rule_of(
            &mut v,
            &[Operation::Deposit {
                account: 1,
                amount: 1,
                timestamp_us: T0 - 1
            }]
        ),
        Rule::TimestampDecreasing {
            previous: T0,
            got: T0 - 1
        }
    );
}

#[test]
fn violation_names_the_operation_index() {
    let mut v = funded();
    let ops = [
        Operation::Deposit {
            account: 1,
            amount: 5,
            timestamp_us: T0 + 1,
        },
        trade(1, 2, 0, 1, 1, T0 + 2),
        Operation::Withdraw {
            account: 3,
            amount: 2_000_000,
            timestamp_us: T0 + 3,
        },
    ];
    assert_eq!(v.apply_batch(&ops).unwrap_err().op_index, 2);
}

#[test]
fn random_batches_conserve_value_and_keep_invariants() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut v = funded();
    let mut ts = T0 + 1;
    for _ in 0..50 {
        let mut ops = Vec::new();
        for _ in 0..40 {
            ts += rng.gen_range(0..3);
            ops.push(match rng.gen_range(0..10) {
                0 => Operation::Deposit {
                    account: rng.gen_range(1..6),
                    amount: rng.gen_range(0..5_000),
                    timestamp_us: ts,
                },
                1 => Operation::Withdraw {
                    account: rng.gen_range(1..6),
                    amount: rng.gen_range(0..5_000),
                    timestamp_us: ts,
                },
                _ => {
                    let buyer = rng.gen_range(1..6);
                    let seller = 1 + (buyer + rng.gen_range(0..4)) % 5;
                    trade(
                        buyer,
                        seller,
                        rng.gen_range(0..2),
                        rng.gen_range(1..50),
                        rng.gen_range(1..40),
                        ts,
                    )
                }
            });
        }
        let before = v.total_value();
        let mut probe = v.clone();
        // Apply op by op so that refused operations are simply skipped.
        let mut net = 0i128;
        for op in &ops {
            if let Ok(e) = probe.apply_batch(std::slice::from_ref(op)) {
                net += e.net_deposits;
            }
        }
        assert_eq!(
            probe.total_value() as i128,
            before as i128 + net,
            "value created or destroyed"
        );
        let coll = [60u64, 80];
        assert!(
            probe.positions.values().all(|&q| q != 0),
            "zero positions are not stored"
        );
        for inst in 0..coll.len() {
            let longs: i64 = probe
                .positions
                .iter()
                .filter(|(k, _)| k.0 == inst as u32)
                .map(|(_, &q)| q.max(0))
                .sum();
            let net_pos: i64 = probe
                .positions
                .iter()
                .filter(|(k, _)| k.0 == inst as u32)
                .map(|(_, &q)| q)
                .sum();
            assert_eq!(net_pos, 0, "positions must net to zero");
            assert_eq!(probe.open_interest(inst as u32), longs as u64);
        }
        for (&acct, a) in &probe.accounts {
            let required: u64 = probe
                .positions
                .iter()
                .filter(|(k, _)| k.1 == acct)
                .map(|(k, &q)| (-q).max(0) as u64 * coll[k.0 as usize])
                .sum();
            assert_eq!(
                a.locked, required,
                "account {acct}: locked must equal its shorts' collateral"
            );
        }
        v = probe;
    }
}
