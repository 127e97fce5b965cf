//! Deposit and withdrawal rows of the batch AIR (`specs/batch-air.md` §4.3): u64 arithmetic on
//! 16-bit limbs with carries, over the memory-checked account leaf.
//!
//! Every value written to memory is range-checked here (four 16-bit limbs, the top one below
//! 2^15), so every value in memory is a u64 below 2^63 and no field wrap-around can stand in for
//! a negative balance: a withdrawal proves `old = new + amount` with `new` a checked u64.

use stwo_constraint_framework::{EvalAtRow, FrameworkComponent, FrameworkEval, RelationEntry};

use crate::data_root::OpRelation;
use crate::field::M31;
pub use crate::validity::gadgets::eval_range_u63;
use crate::validity::memory::{eval_access, AccessCells, StateRel};
use crate::validity::range::RangeRelations;

/// Columns: `is_withdraw, amount[4], carries[3]`, then the access cells of the account leaf.
pub const CASH_COLUMNS: usize = 1 + 4 + 3 + crate::validity::memory::ACCESS_COLUMNS;

/// Constrains `a + b = c` for u64s as 16-bit limbs (least significant first) with boolean
/// `carries` and no carry out of the top limb. Limbs of `a`, `b` and `c` must be range-checked by
/// the caller. Every constraint is multiplied by `enabled`.
pub fn eval_add_u64<E: EvalAtRow>(
    eval: &mut E,
    enabled: &E::F,
    a: &[E::F; 4],
    b: &[E::F; 4],
    c: &[E::F; 4],
    carries: &[E::F; 3],
) {
    let two16 = M31::from_u32_unchecked(1 << 16);
    for (i, ((a, b), c)) in a.iter().zip(b).zip(c).enumerate() {
        let mut lhs = a.clone() + b.clone() - c.clone();
        if i > 0 {
            lhs += carries[i - 1].clone();
        }
        if i < 3 {
            lhs = lhs - carries[i].clone() * two16;
        }
        eval.add_constraint(enabled.clone() * lhs);
    }
    for k in carries {
        eval.add_constraint(k.clone() * k.clone() - k.clone());
    }
}

/// Cash movements: a deposit writes `cash + amount`, a withdrawal writes `cash − amount`, each
/// leaving `locked` unchanged.
#[derive(Debug, Clone)]
pub struct CashEval {
    /// log2 of the row count.
    pub log_rows: u32,
    /// State relation challenges.
    pub state: StateRel,
    /// Range-check challenges.
    pub range: RangeRelations,
    /// In a batch-validity proof: bind each row to its operation record (columns `index,
    /// ts[4]` appended; the access happens at time `16·index + 1`).
    pub ops: Option<OpRelation>,
}

/// Extra columns of a bound cash row: `index, ts[4]`, the clock access, `d[4]`, carries.
pub const CASH_BOUND_COLUMNS: usize = 5 + crate::validity::memory::ACCESS_COLUMNS + 4 + 3;
/// LogUp entries of a bound cash row: two u63 checks, one access, one operation, then the
/// clock: two u63 checks, an identity's carries, an access.
pub const CASH_LOOKUPS: usize = 5 + 5 + 4 + 1 + 5 + 5 + 3 + 4;

impl FrameworkEval for CashEval {
    fn log_size(&self) -> u32 {
        self.log_rows
    }

    fn max_constraint_log_degree_bound(&self) -> u32 {
        self.log_rows + 1
    }

    fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
        let is_withdraw = eval.next_trace_mask();
        let amount: [E::F; 4] = std::array::from_fn(|_| eval.next_trace_mask());
        let carries: [E::F; 3] = std::array::from_fn(|_| eval.next_trace_mask());
        let cells = AccessCells::read(&mut eval);
        let e = cells.enabled.clone();
        eval.add_constraint(e.clone() * e.clone() - e.clone());
        eval.add_constraint(is_withdraw.clone() * is_withdraw.clone() - is_withdraw.clone());

        let old_cash: [E::F; 4] = std::array::from_fn(|i| cells.old[i].clone());
        let new_cash: [E::F; 4] = std::array::from_fn(|i| cells.new[i].clone());
        // Deposit: old + amount = new. Withdrawal: new + amount = old.
        let a: [E::F; 4] = std::array::from_fn(|i| {
            old_cash[i].clone() + is_withdraw.clone() * (new_cash[i].clone() - old_cash[i].clone())
        });
        let c: [E::F; 4] = std::array::from_fn(|i| {
            new_cash[i].clone() + is_withdraw.clone() * (old_cash[i].clone() - new_cash[i].clone())
        });
        eval_add_u64(&mut eval, &e, &a, &amount, &c, &carries);
        for i in 4..8 {
            eval.add_constraint(e.clone() * (cells.new[i].clone() - cells.old[i].clone()));
        }
        eval_range_u63(&mut eval, &self.range, &e, &amount);
        eval_range_u63(&mut eval, &self.range, &e, &new_cash);
        let (key, t) = (cells.key.clone(), cells.times[1].clone());
        eval_access(&mut eval, &self.state, &self.range, cells);
        if let Some(ops) = &self.ops {
            let index = eval.next_trace_mask();
            let ts: [E::F; 4] = std::array::from_fn(|_| eval.next_trace_mask());
            let slot = M31::from_u32_unchecked(crate::validity::gadgets::SLOTS_PER_OP);
            eval.add_constraint(
                e.clone() * (t - index.clone() * slot - E::F::from(M31::from_u32_unchecked(1))),
            );
            let zero = || E::F::from(M31::from_u32_unchecked(0));
            let kind = is_withdraw + E::F::from(M31::from_u32_unchecked(2));
            let ts_copy = ts.clone();
            let mut op = vec![index.clone(), kind, key[0].clone(), key[1].clone()];
            op.extend((0..4).map(|_| zero()));
            op.extend(amount.iter().cloned());
            op.extend((0..12).map(|_| zero()));
            op.extend(ts);
            eval.add_to_relation(RelationEntry::new(ops, -E::EF::from(e.clone()), &op));
            // The clock leaf at time 16·index + 2: `ts = clock + d`, `d` a u63, `clock ← ts`.
            let clock = AccessCells::read(&mut eval);
            let d: [E::F; 4] = std::array::from_fn(|_| eval.next_trace_mask());
            let time = index * slot + E::F::from(M31::from_u32_unchecked(2));
            crate::validity::gadgets::eval_clock_write(&mut eval, &e, &clock, time, &ts_copy);
            eval_range_u63(&mut eval, &self.range, &e, &ts_copy);
            eval_range_u63(&mut eval, &self.range, &e, &d);
            let carries: [E::F; 3] = std::array::from_fn(|_| eval.next_trace_mask());
            let old: [E::F; 4] = std::array::from_fn(|i| clock.old[i].clone());
            crate::validity::gadgets::eval_sum_eq(
                &mut eval,
                &self.range,
                &e,
                &[old, d],
                std::slice::from_ref(&ts_copy),
                carries,
            );
            eval_access(&mut eval, &self.state, &self.range, clock);
        }
        eval.finalize_logup_in_pairs();
        eval
    }
}

/// The cash component.
pub type Cash = FrameworkComponent<CashEval>;

#[cfg(feature = "prover")]
mod witness;
#[cfg(feature = "prover")]
pub use witness::*;

#[cfg(all(test, feature = "prover"))]
mod tests;
