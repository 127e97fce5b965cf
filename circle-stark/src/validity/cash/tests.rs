use stwo::core::fields::qm31::SecureField;
use stwo::prover::backend::simd::column::BaseColumn;
use stwo::prover::backend::simd::m31::{PackedBaseField, LOG_N_LANES};
use stwo::prover::backend::simd::qm31::PackedSecureField;
use stwo_constraint_framework::{LogupTraceGenerator, Relation, TraceLocationAllocator};

use super::*;
use crate::encoding::u64_limbs;
use crate::harness::{boundary_components, evaluations, prove_and_verify, Air, Evaluations};
use crate::validity::memory::TIME_BITS;
use crate::validity::range::LOG_RANGE;
use crate::venue::state::LEAF_LIMBS;

const LOG: u32 = 5;
const BLOG: u32 = 4;

fn m(v: u32) -> M31 {
    M31::from_u32_unchecked(v)
}

/// One cash row as the trace holds it; tests edit these before the columns are built.
#[derive(Clone, Debug)]
struct Row {
    account: u32,
    withdraw: bool,
    amount: u64,
    old: (u64, u64),
    new: (u64, u64),
    t_prev: u32,
    t: u32,
}

/// Three accounts: deposits, then withdrawals, then more deposits; `locked` fixed per account.
/// `(account, (cash, locked))` at time 0.
type Init = Vec<(u32, (u64, u64))>;

fn honest() -> (Init, Vec<Row>) {
    let init = vec![(1u32, (0u64, 7u64)), (2, (5, 0)), (3, (1 << 40, 1))];
    let mut cur: Vec<((u64, u64), u32)> = init.iter().map(|&(_, v)| (v, 0)).collect();
    let mut rows = Vec::new();
    for t in 1..=24u32 {
        let i = (t % 3) as usize;
        let ((cash, locked), t_prev) = cur[i];
        let withdraw = t > 8 && t <= 16;
        let amount = if withdraw {
            cash / 3
        } else {
            65_535 * u64::from(t) + (1 << 20)
        };
        let new = if withdraw {
            cash - amount
        } else {
            cash + amount
        };
        rows.push(Row {
            account: init[i].0,
            withdraw,
            amount,
            old: (cash, locked),
            new: (new, locked),
            t_prev,
            t,
        });
        cur[i] = ((new, locked), t);
    }
    (init, rows)
}

fn limbs64(v: u64) -> [u32; 4] {
    u64_limbs(v).map(|x| x.0)
}

/// Carries of `a + b` limb by limb (the last one dropped: it must be zero).
fn carries(a: u64, b: u64) -> [u32; 3] {
    let (a, b) = (limbs64(a), limbs64(b));
    let mut out = [0u32; 3];
    let mut carry = 0;
    for i in 0..3 {
        let s = a[i] + b[i] + carry;
        carry = s >> 16;
        out[i] = carry;
    }
    out
}

type Cols = Vec<Vec<M31>>;

/// `(cash rows, init, final, range table)` columns.
fn columns(init: &[(u32, (u64, u64))], rows: &[Row]) -> (Cols, Cols, Cols, [Vec<M31>; 2]) {
    let mut cash = vec![vec![m(0); 1 << LOG]; CASH_COLUMNS];
    let mut uses = vec![0u32; 1 << LOG_RANGE];
    let mut use_limb = |l: u32| {
        if l < 1 << LOG_RANGE {
            uses[l as usize] += 1;
        }
    };
    let leaf = |(c, l): (u64, u64)| -> [u32; LEAF_LIMBS] {
        let mut v = [0; LEAF_LIMBS];
        v[..4].copy_from_slice(&limbs64(c));
        v[4..].copy_from_slice(&limbs64(l));
        v
    };
    for (r, row) in rows.iter().enumerate() {
        // The addend that the gadget adds `amount` to: `old` for a deposit, `new` for a withdrawal.
        let a = if row.withdraw { row.new.0 } else { row.old.0 };
        let d = m(row.t) - m(row.t_prev) - m(1);
        let mut vals = vec![u32::from(row.withdraw)];
        vals.extend(limbs64(row.amount));
        vals.extend(carries(a, row.amount));
        vals.extend([1, row.account & 0xffff, row.account >> 16]);
        vals.extend(leaf(row.old));
        vals.extend(leaf(row.new));
        vals.extend([row.t_prev, row.t, d.0 & 0xffff, d.0 >> 16]);
        for (col, v) in vals.into_iter().enumerate() {
            cash[col][r] = m(v);
        }
        for v in [row.amount, row.new.0] {
            let l = limbs64(v);
            l.iter().for_each(|&x| use_limb(x));
            use_limb(l[3] * 2);
        }
        use_limb(d.0 & 0xffff);
        use_limb((d.0 >> 16) << (32 - TIME_BITS));
    }
    // Padding rows: t = 1 keeps the (disabled) time constraint trivially satisfiable.
    for cell in cash[8 + 3 + 2 * LEAF_LIMBS + 1].iter_mut().skip(rows.len()) {
        *cell = m(1);
    }
    let boundary = |entries: Vec<(u32, (u64, u64), u32)>| {
        let mut cols = vec![vec![m(0); 1 << BLOG]; 3 + LEAF_LIMBS + 1];
        for (r, (k, v, t)) in entries.into_iter().enumerate() {
            let mut vals = vec![1, k & 0xffff, k >> 16];
            vals.extend(leaf(v));
            vals.push(t);
            for (c, x) in vals.into_iter().enumerate() {
                cols[c][r] = m(x);
            }
        }
        cols
    };
    let mut last: Vec<(u32, (u64, u64), u32)> = init.iter().map(|&(k, v)| (k, v, 0)).collect();
    for row in rows {
        if let Some(e) = last.iter_mut().find(|e| e.0 == row.account) {
            *e = (row.account, row.new, row.t);
        }
    }
    let table = [
        (0..1u32 << LOG_RANGE).map(m).collect(),
        uses.into_iter().map(m).collect(),
    ];
    (
        cash,
        boundary(init.iter().map(|&(k, v)| (k, v, 0)).collect()),
        boundary(last),
        table,
    )
}

fn packed(col: &[M31], vr: usize) -> PackedBaseField {
    col.iter().copied().collect::<BaseColumn>().data[vr]
}

#[derive(Clone)]
struct Rels {
    state: StateRel,
    range: RangeRelations,
}

/// LogUp columns from per-row entries `(numerator, denominator)`, paired in order.
fn pair_columns(
    log_rows: u32,
    n_entries: usize,
    entry: impl Fn(usize, usize) -> (PackedSecureField, PackedSecureField),
) -> (Evaluations, SecureField) {
    let mut gen = LogupTraceGenerator::new(log_rows);
    for first in (0..n_entries).step_by(2) {
        let mut col = gen.new_col();
        for vr in 0..1 << (log_rows - LOG_N_LANES) {
            let (n0, d0) = entry(vr, first);
            if first + 1 < n_entries {
                let (n1, d1) = entry(vr, first + 1);
                col.write_frac(vr, n0 * d1 + n1 * d0, d0 * d1);
            } else {
                col.write_frac(vr, n0, d0);
            }
        }
        col.finalize_col();
    }
    gen.finalize_last()
}

fn run(init: &[(u32, (u64, u64))], rows: &[Row]) -> Result<(), String> {
    let (cash, first, last, table) = columns(init, rows);
    let (c, fi, la, tb) = (&cash, &first, &last, &table);
    prove_and_verify(Air {
        main: vec![
            evaluations(LOG_RANGE, &table),
            evaluations(LOG, &cash),
            evaluations(BLOG, &first),
            evaluations(BLOG, &last),
        ],
        max_log_rows: LOG_RANGE,
        draw: |ch| Rels {
            state: StateRel::draw(ch),
            range: RangeRelations::draw(ch),
        },
        interaction: move |rel: &Rels| -> Vec<(Evaluations, SecureField)> {
            let table_col = pair_columns(LOG_RANGE, 2, |vr, i| {
                let v = packed(&tb[0], vr);
                if i == 0 {
                    (packed(&tb[1], vr).into(), rel.range.range.combine(&[v]))
                } else {
                    (
                        -PackedSecureField::from(PackedBaseField::broadcast(m(1))),
                        rel.range.table.combine(&[v]),
                    )
                }
            });
            let col = |i: usize, vr: usize| packed(&c[i], vr);
            let e = |vr| PackedSecureField::from(col(8, vr));
            let base = 8 + 3;
            let cash_cols = pair_columns(LOG, 14, |vr, i| {
                let range1 = |x: PackedBaseField| -> (PackedSecureField, PackedSecureField) {
                    (-e(vr), rel.range.range.combine(&[x]))
                };
                let two = PackedBaseField::broadcast(m(2));
                match i {
                    0..=3 => range1(col(1 + i, vr)),
                    4 => range1(col(4, vr) * two),
                    5..=8 => range1(col(base + LEAF_LIMBS + (i - 5), vr)),
                    9 => range1(col(base + LEAF_LIMBS + 3, vr) * two),
                    10 | 11 => {
                        let (value_at, time_at) = if i == 10 {
                            (base, base + 2 * LEAF_LIMBS)
                        } else {
                            (base + LEAF_LIMBS, base + 2 * LEAF_LIMBS + 1)
                        };
                        let mut v = vec![col(9, vr), col(10, vr)];
                        v.extend((0..LEAF_LIMBS).map(|j| col(value_at + j, vr)));
                        v.push(col(time_at, vr));
                        (if i == 10 { -e(vr) } else { e(vr) }, rel.state.combine(&v))
                    }
                    12 => range1(col(base + 2 * LEAF_LIMBS + 2, vr)),
                    _ => range1(
                        col(base + 2 * LEAF_LIMBS + 3, vr)
                            * PackedBaseField::broadcast(m(1 << (32 - TIME_BITS))),
                    ),
                }
            });
            let boundary = |cols: &Vec<Vec<M31>>, init: bool| {
                pair_columns(BLOG, 1, |vr, _| {
                    let v: Vec<PackedBaseField> =
                        (1..cols.len()).map(|k| packed(&cols[k], vr)).collect();
                    let n = PackedSecureField::from(packed(&cols[0], vr));
                    (if init { n } else { -n }, rel.state.combine(&v))
                })
            };
            vec![
                table_col,
                cash_cols,
                boundary(fi, true),
                boundary(la, false),
            ]
        },
        components: |rel: &Rels, sums: &[SecureField], alloc: &mut TraceLocationAllocator| {
            vec![
                crate::harness::range_table_component(alloc, &rel.range, sums[0]),
                Box::new(Cash::new(
                    alloc,
                    CashEval {
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

#[test]
fn deposits_and_withdrawals_verify() {
    let (init, rows) = honest();
    run(&init, &rows).unwrap();
}

#[test]
fn overdraft_is_rejected() {
    let (init, mut rows) = honest();
    // Row 9 is a withdrawal; take more than the balance and let the u64 wrap.
    let r = &mut rows[9];
    assert!(r.withdraw);
    r.amount = r.old.0 + 1;
    r.new.0 = r.old.0.wrapping_sub(r.amount);
    // The top limb would need a carry out of 64 bits: no satisfying trace exists.
    assert_eq!(run(&init, &rows).unwrap_err(), "Constraints not satisfied.");
}

#[test]
fn deposit_crediting_more_than_its_amount_is_rejected() {
    let (init, mut rows) = honest();
    // Value from nothing: the write is amount + 1 above the balance. Later rows of the
    // account follow the forged balance so that memory stays consistent.
    let acct = rows[2].account;
    let forged = rows[2].new.0 + 1;
    rows[2].new.0 = forged;
    let mut prev = forged;
    for r in rows.iter_mut().skip(3).filter(|r| r.account == acct) {
        r.old.0 = prev;
        r.new.0 = if r.withdraw {
            prev - r.amount
        } else {
            prev + r.amount
        };
        prev = r.new.0;
    }
    assert_eq!(run(&init, &rows).unwrap_err(), "Constraints not satisfied.");
}

#[test]
fn cash_row_changing_locked_is_rejected() {
    let (init, mut rows) = honest();
    let acct = rows[4].account;
    rows[4].new.1 += 5;
    let locked = rows[4].new.1;
    for r in rows.iter_mut().skip(5).filter(|r| r.account == acct) {
        r.old.1 = locked;
        r.new.1 = locked;
    }
    assert_eq!(run(&init, &rows).unwrap_err(), "Constraints not satisfied.");
}

#[test]
fn balance_above_2_63_is_rejected() {
    let (init, mut rows) = honest();
    // A deposit that takes the balance to 2^63: representable in four limbs, but above the
    // venue's bound, so the top-limb check refuses it.
    let acct = rows[0].account;
    rows[0].amount = (1 << 63) - rows[0].old.0;
    rows[0].new.0 = 1 << 63;
    let mut prev = rows[0].new.0;
    for r in rows.iter_mut().skip(1).filter(|r| r.account == acct) {
        r.old.0 = prev;
        r.new.0 = if r.withdraw {
            prev - r.amount
        } else {
            prev.wrapping_add(r.amount)
        };
        prev = r.new.0;
    }
    // Every limb fits 16 bits; the doubled top limb (2^16) is not in the table.
    assert_eq!(run(&init, &rows).unwrap_err(), "logup total");
}
