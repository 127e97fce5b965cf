//! Trade-row tests: honest rows prove, and each broken venue rule has no satisfying trace.

use std::collections::BTreeMap;

use stwo::core::fields::qm31::SecureField;
use stwo_constraint_framework::{Relation, TraceLocationAllocator};

use super::*;
use crate::harness::{
    boundary_components, evaluations, logup_columns, prove_and_verify, range_table_column,
    range_table_component, Air,
};
use crate::validity::range::LOG_RANGE;
use crate::venue::state::AccountState;
use crate::venue::{Instrument, Operation, OptionKind, Venue};

const LOG: u32 = 4;
const BLOG: u32 = 5;
const EXPIRY: u64 = 2_000_000_000_000_000;

fn instruments() -> Vec<Instrument> {
    vec![
        Instrument {
            underlying: 1,
            expiry_us: EXPIRY,
            strike: 6_000_000,
            kind: OptionKind::Call,
            collateral: 3_000_000,
        },
        Instrument {
            underlying: 2,
            expiry_us: EXPIRY,
            strike: 300_000,
            kind: OptionKind::Put,
            collateral: 300_000,
        },
    ]
}

/// `(buyer, seller, instrument, qty, price, fee_b, fee_s)`.
type T = (u32, u32, u32, u64, u64, u64, u64);

/// Opens shorts, buys them back, flips a short to a long, trades both instruments.
fn trades() -> Vec<T> {
    vec![
        (1, 2, 0, 10, 150_000, 50, 40),
        (3, 2, 0, 5, 151_000, 20, 20),
        (2, 1, 0, 12, 149_000, 30, 30), // seller 2 buys back and flips long
        (4, 3, 1, 40, 9_000, 5, 5),
        (3, 4, 1, 15, 9_100, 0, 0),
        (1, 4, 0, 3, 152_500, 10, 10),
        (4, 1, 0, 1, 150_000, 1, 1),
        (2, 3, 1, 25, 8_800, 7, 3),
    ]
}

fn funded() -> Vec<(u32, u64)> {
    vec![
        (1, 200_000_000),
        (2, 120_000_000),
        (3, 150_000_000),
        (4, 90_000_000),
    ]
}

/// `(rows, init, final)` with `forge(i, row)` applied to row `i` before it is chained.
type Trace = (
    Vec<TradeRow>,
    Vec<(u32, [M31; 8])>,
    Vec<(u32, [M31; 8], u32)>,
);

fn build(trades: &[T], funding: &[(u32, u64)], forge: impl Fn(usize, &mut TradeRow)) -> Trace {
    let insts = instruments();
    let mut accounts: BTreeMap<u32, AccountState> = funding
        .iter()
        .map(|&(a, cash)| (a, AccountState { cash, locked: 0 }))
        .collect();
    let mut positions: BTreeMap<(u32, u32), i64> = BTreeMap::new();
    let mut open_interest: BTreeMap<u32, u64> = BTreeMap::new();
    let mut last = crate::validity::row::LastAccess::default();
    let mut init: BTreeMap<u32, [M31; 8]> = BTreeMap::new();
    let mut fin: BTreeMap<u32, ([M31; 8], u32)> = BTreeMap::new();
    let mut rows = Vec::new();
    // The funding deposits of `honest_rows_equal_the_engines` ran at time 1.
    let mut clock = 1u64;
    for (i, &(b, s, inst, qty, price, fb, fs)) in trades.iter().enumerate() {
        let acct = |a: u32| accounts.get(&a).copied().unwrap_or_default();
        let pos = |a: u32| positions.get(&(inst, a)).copied().unwrap_or(0);
        let oi_before = open_interest.get(&inst).copied().unwrap_or(0);
        let mut row = TradeRow::unchecked(
            i as u32,
            inst,
            (b, s),
            (qty, price, fb, fs),
            insts[inst as usize].collateral,
            [acct(b), acct(s), acct(0)],
            [pos(b), pos(s)],
            oi_before,
        );
        row.expiry = insts[inst as usize].expiry_us;
        row.timestamp = 10 + i as u64;
        row.clock = clock;
        forge(i, &mut row);
        clock = row.timestamp;
        for (k, a) in row.accesses().iter().enumerate() {
            row.t_prev[k] = last.swap(a.key, a.t);
            init.entry(a.key).or_insert(a.old);
            fin.insert(a.key, (a.new, a.t));
        }
        accounts.insert(row.buyer, row.accounts[0].1);
        accounts.insert(row.seller, row.accounts[1].1);
        accounts.insert(0, row.accounts[2].1);
        positions.insert((row.instrument, row.buyer), row.positions[0].1);
        positions.insert((row.instrument, row.seller), row.positions[1].1);
        open_interest.insert(row.instrument, row.open_interest.1);
        rows.push(row);
    }
    (
        rows,
        init.into_iter().collect(),
        fin.into_iter().map(|(k, (v, t))| (k, v, t)).collect(),
    )
}

fn m(v: u32) -> M31 {
    M31::from_u32_unchecked(v)
}

#[derive(Clone)]
struct Rels {
    state: StateRel,
    range: RangeRelations,
}

fn run((rows, init, fin): &Trace) -> Result<(), String> {
    let n = 1usize << LOG;
    assert!(rows.len() <= n);
    let witnesses: Vec<RowWitness> = rows.iter().map(|r| r.witness(false)).collect();
    let mut cols = vec![vec![m(0); n]; TRADE_COLUMNS];
    let mut uses = vec![0u32; 1 << LOG_RANGE];
    for (r, w) in witnesses.iter().enumerate() {
        for (col, v) in w.cells.iter().enumerate() {
            cols[col][r] = *v;
        }
        for l in &w.lookups {
            if let Lookup::Range(v) = l {
                if v.0 < 1 << LOG_RANGE {
                    uses[v.0 as usize] += 1;
                }
            }
        }
    }
    let boundary = |entries: Vec<(u32, [M31; 8], u32)>| {
        let mut cols = vec![vec![m(0); 1 << BLOG]; 3 + LEAF_LIMBS + 1];
        for (r, (k, v, t)) in entries.into_iter().enumerate() {
            let vals: Vec<M31> = [m(1), m(k & 0xffff), m(k >> 16)]
                .into_iter()
                .chain(v)
                .chain([m(t)])
                .collect();
            for (c, x) in vals.into_iter().enumerate() {
                cols[c][r] = x;
            }
        }
        cols
    };
    let first = boundary(init.iter().map(|&(k, v)| (k, v, 0)).collect());
    let last = boundary(fin.clone());
    let table = [
        (0..1u32 << LOG_RANGE).map(m).collect::<Vec<_>>(),
        uses.into_iter().map(m).collect(),
    ];
    let width = witnesses[0].lookups.len();
    prove_and_verify(Air {
        main: vec![
            evaluations(LOG_RANGE, &table),
            evaluations(LOG, &cols),
            evaluations(BLOG, &first),
            evaluations(BLOG, &last),
        ],
        max_log_rows: LOG_RANGE,
        draw: |ch| Rels {
            state: StateRel::draw(ch),
            range: RangeRelations::draw(ch),
        },
        interaction: |rel: &Rels| {
            let one = SecureField::from(m(1));
            let zero = SecureField::from(m(0));
            let table_col = range_table_column(&table, &rel.range);
            let trade_col = logup_columns(LOG, |r| match witnesses.get(r) {
                Some(w) => w
                    .lookups
                    .iter()
                    .map(|l| match l {
                        Lookup::Range(v) => (-one, rel.range.range.combine(&[*v])),
                        Lookup::Read(v) => (-one, rel.state.combine(v)),
                        Lookup::Write(v) => (one, rel.state.combine(v)),
                        _ => unreachable!("unbound rows"),
                    })
                    .collect(),
                None => vec![(zero, one); width],
            });
            let boundary_col = |cols: &Vec<Vec<M31>>, sign: SecureField| {
                logup_columns(BLOG, |r| {
                    let v: Vec<M31> = (1..cols.len()).map(|k| cols[k][r]).collect();
                    vec![(sign * SecureField::from(cols[0][r]), rel.state.combine(&v))]
                })
            };
            vec![
                table_col,
                trade_col,
                boundary_col(&first, one),
                boundary_col(&last, -one),
            ]
        },
        components: |rel: &Rels, sums: &[SecureField], alloc: &mut TraceLocationAllocator| {
            vec![
                range_table_component(alloc, &rel.range, sums[0]),
                Box::new(Trade::new(
                    alloc,
                    TradeEval {
                        log_rows: LOG,
                        state: rel.state.clone(),
                        range: rel.range.clone(),
                        ops: None,
                    },
                    sums[1],
                )),
            ]
            .into_iter()
            .chain(boundary_components(
                alloc,
                &rel.state,
                BLOG,
                [sums[2], sums[3]],
            ))
            .collect()
        },
        expected_total: |rel: &Rels| rel.range.expected_component_sum(),
    })
}

fn honest() -> Trace {
    build(&trades(), &funded(), |_, _| {})
}

const UNSAT: &str = "Constraints not satisfied.";

#[test]
fn honest_rows_equal_the_engines() {
    let mut venue = Venue::new(instruments());
    let deposits: Vec<Operation> = funded()
        .into_iter()
        .map(|(account, amount)| Operation::Deposit {
            account,
            amount,
            timestamp_us: 1,
        })
        .collect();
    venue.apply_batch(&deposits).unwrap();
    let mut last = crate::validity::row::LastAccess::default();
    let (rows, _, _) = honest();
    for (i, &(buyer, seller, instrument, qty, price, fb, fs)) in trades().iter().enumerate() {
        let op = Operation::Trade {
            buyer,
            seller,
            instrument,
            qty,
            price,
            buyer_fee: fb,
            seller_fee: fs,
            timestamp_us: 10 + i as u64,
        };
        let engine = trade_row(&mut venue, &op, i as u32, &mut last).unwrap();
        assert_eq!(engine, rows[i], "trade {i}");
    }
}

#[test]
fn trades_verify() {
    run(&honest()).unwrap();
}

#[test]
fn overdraft_is_rejected() {
    // Account 4 holds 1,000 and buys 10 lots at 150,000: the wrapped balance is not a
    // u63 and the cash identity has no small carries.
    let trace = build(
        &[(4, 2, 0, 10, 150_000, 0, 0)],
        &[(2, 9_000_000), (4, 1_000)],
        |_, _| {},
    );
    assert!(trace.0[0].accounts[0].1.cash > 1 << 63);
    // Mod 2^64 the cash identity holds; over the integers it needs a carry out of the top
    // limb, which does not exist.
    assert_eq!(run(&trace).unwrap_err(), UNSAT);
}

#[test]
fn uncollateralised_short_is_rejected() {
    // The seller opens a short without locking collateral: its cash keeps the collateral.
    let trace = build(&trades(), &funded(), |i, r| {
        if i == 0 {
            r.accounts[1].1.cash += r.added.1;
            r.accounts[1].1.locked -= r.added.1;
            r.added = (0, 0);
        }
    });
    assert_eq!(run(&trace).unwrap_err(), UNSAT);
}

#[test]
fn collateral_released_beyond_the_closed_short_is_rejected() {
    // Buying back 12 lots of a 15-lot short releases 12 lots of collateral; claim 13 (the
    // product is right, the lot count is not).
    let trace = build(&trades(), &funded(), |i, r| {
        if i == 2 {
            assert_eq!(r.released.0, 12);
            r.released = (13, 13 * r.collateral);
            r.accounts[0].1.cash += r.collateral;
            r.accounts[0].1.locked -= r.collateral;
        }
    });
    assert_eq!(run(&trace).unwrap_err(), UNSAT);
}

#[test]
fn value_created_from_nothing_is_rejected() {
    let trace = build(&trades(), &funded(), |i, r| {
        if i == 3 {
            r.accounts[1].1.cash += 1;
        }
    });
    assert_eq!(run(&trace).unwrap_err(), UNSAT);
}

#[test]
fn wrong_fee_credit_is_rejected() {
    let trace = build(&trades(), &funded(), |i, r| {
        if i == 4 {
            r.accounts[2].1.cash += 7;
        }
    });
    assert_eq!(run(&trace).unwrap_err(), UNSAT);
}

#[test]
fn wrong_notional_is_rejected() {
    // Both sides agree on a notional that is not qty · price: value is conserved, the
    // product is not.
    let trace = build(&trades(), &funded(), |i, r| {
        if i == 1 {
            r.notional -= 1;
            r.accounts[0].1.cash += 1;
            r.accounts[1].1.cash -= 1;
        }
    });
    assert_eq!(run(&trace).unwrap_err(), UNSAT);
}

#[test]
fn position_moved_by_more_than_qty_is_rejected() {
    let trace = build(&trades(), &funded(), |i, r| {
        if i == 5 {
            r.positions[0].1 += 1;
        }
    });
    assert_eq!(run(&trace).unwrap_err(), UNSAT);
}

#[test]
fn self_trade_is_rejected() {
    let mut t = trades();
    t[3] = (3, 3, 1, 4, 9_000, 0, 0);
    assert_eq!(run(&build(&t, &funded(), |_, _| {})).unwrap_err(), UNSAT);
}

#[test]
fn fee_account_trading_is_rejected() {
    let mut t = trades();
    t[6] = (0, 1, 0, 1, 150_000, 0, 0);
    let mut f = funded();
    f.push((0, 1_000_000));
    assert_eq!(run(&build(&t, &f, |_, _| {})).unwrap_err(), UNSAT);
}

#[test]
fn trade_at_expiry_is_rejected() {
    let trace = build(&trades(), &funded(), |i, r| {
        if i == 6 {
            r.timestamp = r.expiry;
        }
    });
    assert_eq!(run(&trace).unwrap_err(), UNSAT);
}

#[test]
fn timestamp_before_the_clock_is_rejected() {
    // Trade 5 stamped before trade 4: time would run backwards.
    let trace = build(&trades(), &funded(), |i, r| {
        if i == 5 {
            r.timestamp = r.clock - 1;
        }
    });
    assert_eq!(run(&trace).unwrap_err(), UNSAT);
}

#[test]
fn open_interest_not_following_the_longs_is_rejected() {
    let trace = build(&trades(), &funded(), |i, r| {
        if i == 2 {
            r.open_interest.1 += 1;
        }
    });
    assert_eq!(run(&trace).unwrap_err(), UNSAT);
}

#[test]
fn zero_quantity_is_rejected() {
    let mut t = trades();
    t[7].3 = 0;
    assert_eq!(run(&build(&t, &funded(), |_, _| {})).unwrap_err(), UNSAT);
}
