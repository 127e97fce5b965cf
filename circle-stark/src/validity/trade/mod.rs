//! Trade rows of the batch AIR (`specs/batch-air.md` §4.5): one row per trade, with the five
//! state leaves it touches read and written through the memory argument, and every venue rule
//! of the trade's cash, collateral and positions as constraints.
//!
//! Positions are `sign ‖ |qty|` leaves; with `long = |qty|·(1 − sign)` and `short =
//! |qty|·sign` (one of them zero), a position moving by `+qty` is the u64 identity
//! `long' + short = long + short' + qty`, checked limb by limb with small signed carries
//! ([`eval_sum_eq`]). The collateral released by the buyer is `(short − short') · collateral`
//! and the collateral added by the seller `(short' − short) · collateral`, both exact products
//! ([`crate::validity::mul`]); the cash and locked balances then follow as sum identities, and every
//! value written is range-checked as a u64 below 2^63, so a negative balance has no witness.
//!
//! The row also consumes its operation record (`Op`) and its instrument's terms
//! (`Instrument`, from the table bound to `instruments_root`), writes the venue clock
//! ([`eval_clock_write`]) with `clock ≤ ts < expiry`, and moves the instrument's open interest
//! (`specs/batch-air.md` §4.5).

use stwo_constraint_framework::{EvalAtRow, FrameworkComponent, FrameworkEval, RelationEntry};

use crate::field::M31;
use crate::validity::gadgets::eval_range_u63;
pub use crate::validity::gadgets::{
    eval_clock_write, eval_sum_eq, SumIdentity, CLOCK_KEY_HI, OI_KEY_HI, SLOTS_PER_OP, SUM_CARRIES,
    SUM_CARRY_OFFSET,
};
use crate::validity::memory::{eval_access, AccessCells, StateRel, ACCESS_COLUMNS};
use crate::validity::mul::{eval_mul_u63, MulCells, MUL_COLUMNS};
use crate::validity::range::RangeRelations;
#[cfg(feature = "prover")]
pub use crate::validity::row::{Access, Lookup, RowWitness};
use crate::venue::state::LEAF_LIMBS;

/// Sum identities in a trade row.
pub const TRADE_SUMS: usize = 9;
/// LogUp entries of a bound trade row: instrument, five inputs, two account keys, five
/// accesses, three products, nine identities, seven written values, the expiry check (three
/// u63s and an identity), the clock (an access, a u63 and an identity), open interest (an
/// access, an identity, a u63), the operation and the instrument's terms.
pub const TRADE_LOOKUPS: usize =
    1 + 25 + 4 + 5 * 4 + 3 * 28 + TRADE_SUMS * SUM_CARRIES + 35 + 15 + SUM_CARRIES + 12 + 12 + 2;
/// Columns of a trade row.
pub const TRADE_COLUMNS: usize = 3
    + 20
    + 1
    + 5 * ACCESS_COLUMNS
    + 3
    + 2
    + 4
    + MUL_COLUMNS
    + 2 * (8 + MUL_COLUMNS)
    + TRADE_SUMS * SUM_CARRIES
    + 12
    + SUM_CARRIES
    + ACCESS_COLUMNS
    + 4
    + SUM_CARRIES
    + ACCESS_COLUMNS
    + SUM_CARRIES;

fn c(v: u32) -> M31 {
    M31::from_u32_unchecked(v)
}

/// The trade component.
#[derive(Debug, Clone)]
pub struct TradeEval {
    /// log2 of the row count.
    pub log_rows: u32,
    /// State relation challenges.
    pub state: StateRel,
    /// Range-check challenges.
    pub range: RangeRelations,
    /// In a batch-validity proof: bind each row to its operation record and its collateral
    /// and expiry to the instrument table.
    pub ops: Option<(
        crate::data_root::OpRelation,
        crate::validity::instruments::InstrumentRel,
    )>,
}

fn u64_of<F: Clone>(cells: &[F]) -> [F; 4] {
    std::array::from_fn(|i| cells[i].clone())
}

impl FrameworkEval for TradeEval {
    fn log_size(&self) -> u32 {
        self.log_rows
    }

    fn max_constraint_log_degree_bound(&self) -> u32 {
        self.log_rows + 1
    }

    #[allow(clippy::too_many_lines)]
    fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
        let one = E::F::from(c(1));
        let two16 = c(1 << 16);
        let range = &self.range;
        let neg = |e: &E::F| -E::EF::from(e.clone());

        // Header: enabled, operation index, instrument (< 2^12).
        let enabled = eval.next_trace_mask();
        let index = eval.next_trace_mask();
        let instrument = eval.next_trace_mask();
        let e = enabled.clone();
        eval.add_constraint(e.clone() * e.clone() - e.clone());
        eval.add_to_relation(RelationEntry::new(
            &range.range,
            neg(&e),
            &[instrument.clone() * c(1 << 4)],
        ));

        // Inputs, each a u64 below 2^63; qty non-zero.
        let qty: [E::F; 4] = std::array::from_fn(|_| eval.next_trace_mask());
        let price: [E::F; 4] = std::array::from_fn(|_| eval.next_trace_mask());
        let fee_b: [E::F; 4] = std::array::from_fn(|_| eval.next_trace_mask());
        let fee_s: [E::F; 4] = std::array::from_fn(|_| eval.next_trace_mask());
        let coll: [E::F; 4] = std::array::from_fn(|_| eval.next_trace_mask());
        for v in [&qty, &price, &fee_b, &fee_s, &coll] {
            eval_range_u63(&mut eval, range, &e, v);
        }
        let inv_qty = eval.next_trace_mask();
        let qty_sum = qty[0].clone() + qty[1].clone() + qty[2].clone() + qty[3].clone();
        eval.add_constraint(e.clone() * (qty_sum * inv_qty - one.clone()));

        // The five accesses, at times 16·index + 1 … 5.
        let slot_time = |k: u32| index.clone() * c(SLOTS_PER_OP) + E::F::from(c(k));
        let acc_b = AccessCells::read(&mut eval);
        let acc_s = AccessCells::read(&mut eval);
        let acc_f = AccessCells::read(&mut eval);
        let pos_b = AccessCells::read(&mut eval);
        let pos_s = AccessCells::read(&mut eval);
        let inv_b = eval.next_trace_mask();
        let inv_s = eval.next_trace_mask();
        let inv_bs = eval.next_trace_mask();
        let inv_pb = eval.next_trace_mask();
        let inv_ps = eval.next_trace_mask();
        for (k, cells) in [&acc_b, &acc_s, &acc_f, &pos_b, &pos_s]
            .into_iter()
            .enumerate()
        {
            eval.add_constraint(cells.enabled.clone() - e.clone());
            eval.add_constraint(e.clone() * (cells.times[1].clone() - slot_time(k as u32 + 1)));
        }
        // Buyer and seller: accounts below 2^18, not the fee account, not the same.
        let key = |cells: &AccessCells<E::F>| cells.key[0].clone() + cells.key[1].clone() * two16;
        for cells in [&acc_b, &acc_s] {
            eval.add_to_relation(RelationEntry::new(
                &range.range,
                neg(&e),
                &[cells.key[0].clone()],
            ));
            eval.add_to_relation(RelationEntry::new(
                &range.range,
                neg(&e),
                &[cells.key[1].clone() * c(1 << 14)],
            ));
        }
        eval.add_constraint(e.clone() * (key(&acc_b) * inv_b - one.clone()));
        eval.add_constraint(e.clone() * (key(&acc_s) * inv_s - one.clone()));
        eval.add_constraint(e.clone() * ((key(&acc_b) - key(&acc_s)) * inv_bs - one.clone()));
        // The fee account is account 0, and a trade leaves its locked balance alone.
        eval.add_constraint(acc_f.key[0].clone());
        eval.add_constraint(acc_f.key[1].clone());
        for i in 4..8 {
            eval.add_constraint(acc_f.new[i].clone() - acc_f.old[i].clone());
        }
        // Position keys: 2^30 + instrument·2^18 + account, as limbs.
        for (pos, acc) in [(&pos_b, &acc_b), (&pos_s, &acc_s)] {
            eval.add_constraint(pos.key[0].clone() - acc.key[0].clone());
            eval.add_constraint(
                e.clone()
                    * (pos.key[1].clone()
                        - acc.key[1].clone()
                        - instrument.clone() * c(4)
                        - E::F::from(c(1 << 14))),
            );
        }
        // Position values: sign ‖ |qty| u64 ‖ 0 0 0, sign boolean, no "short zero".
        for (pos, inv) in [(&pos_b, &inv_pb), (&pos_s, &inv_ps)] {
            let s = pos.new[0].clone();
            eval.add_constraint(s.clone() * s.clone() - s.clone());
            for i in 5..8 {
                eval.add_constraint(pos.new[i].clone());
            }
            let mag =
                pos.new[1].clone() + pos.new[2].clone() + pos.new[3].clone() + pos.new[4].clone();
            eval.add_constraint(s * (mag * inv.clone() - one.clone()));
        }
        let long_short = |v: &[E::F; LEAF_LIMBS]| -> ([E::F; 4], [E::F; 4]) {
            let s = v[0].clone();
            (
                std::array::from_fn(|i| v[1 + i].clone() - s.clone() * v[1 + i].clone()),
                std::array::from_fn(|i| s.clone() * v[1 + i].clone()),
            )
        };
        let (long_b, short_b) = long_short(&pos_b.old);
        let (long_b2, short_b2) = long_short(&pos_b.new);
        let (long_s, short_s) = long_short(&pos_s.old);
        let (long_s2, short_s2) = long_short(&pos_s.new);
        let longs = [
            long_b.clone(),
            long_b2.clone(),
            long_s.clone(),
            long_s2.clone(),
        ];
        let cash = |v: &[E::F; LEAF_LIMBS]| u64_of(&v[..4]);
        let locked = |v: &[E::F; LEAF_LIMBS]| u64_of(&v[4..]);
        let written: Vec<[E::F; 4]> = vec![
            cash(&acc_b.new),
            locked(&acc_b.new),
            cash(&acc_s.new),
            locked(&acc_s.new),
            cash(&acc_f.new),
            u64_of(&pos_b.new[1..5]),
            u64_of(&pos_s.new[1..5]),
        ];
        let mut op: Vec<E::F> = vec![
            index.clone(),
            E::F::from(c(crate::venue::ops::kind::TRADE)),
            acc_b.key[0].clone(),
            acc_b.key[1].clone(),
            acc_s.key[0].clone(),
            acc_s.key[1].clone(),
            instrument.clone(),
            E::F::from(c(0)),
        ];
        for v in [&qty, &price, &fee_b, &fee_s] {
            op.extend(v.iter().cloned());
        }
        let (instrument_col, coll_copy) = (instrument.clone(), coll.clone());
        let (old_b, new_b) = (acc_b.old.clone(), acc_b.new.clone());
        let (old_s, new_s) = (acc_s.old.clone(), acc_s.new.clone());
        let (old_f, new_f) = (acc_f.old.clone(), acc_f.new.clone());
        for cells in [acc_b, acc_s, acc_f, pos_b, pos_s] {
            eval_access(&mut eval, &self.state, range, cells);
        }

        // notional = qty · price; released = (short_b − short_b')·coll; added = (short_s' −
        // short_s)·coll.
        let notional: [E::F; 4] = std::array::from_fn(|_| eval.next_trace_mask());
        let cells = MulCells::read(&mut eval);
        eval_mul_u63(&mut eval, range, &e, &qty, &price, &notional, cells);
        let released: [E::F; 4] = std::array::from_fn(|_| eval.next_trace_mask());
        let released_value: [E::F; 4] = std::array::from_fn(|_| eval.next_trace_mask());
        let cells = MulCells::read(&mut eval);
        eval_mul_u63(
            &mut eval,
            range,
            &e,
            &released,
            &coll,
            &released_value,
            cells,
        );
        let added: [E::F; 4] = std::array::from_fn(|_| eval.next_trace_mask());
        let added_value: [E::F; 4] = std::array::from_fn(|_| eval.next_trace_mask());
        let cells = MulCells::read(&mut eval);
        eval_mul_u63(&mut eval, range, &e, &added, &coll, &added_value, cells);

        let sums: [SumIdentity<E::F>; TRADE_SUMS] = [
            // Positions: buyer +qty, seller −qty.
            (
                vec![long_b2, short_b.clone()],
                vec![long_b, short_b2.clone(), qty.clone()],
            ),
            (
                vec![long_s2, short_s.clone(), qty],
                vec![long_s, short_s2.clone()],
            ),
            // Collateral lots released and added.
            (vec![short_b2, released], vec![short_b]),
            (vec![short_s, added], vec![short_s2]),
            // Buyer pays notional and fee, gets released collateral back into cash.
            (
                vec![cash(&new_b), notional.clone(), fee_b.clone()],
                vec![cash(&old_b), released_value.clone()],
            ),
            (vec![locked(&new_b), released_value], vec![locked(&old_b)]),
            // Seller receives notional, pays fee, locks collateral.
            (
                vec![cash(&old_s), notional],
                vec![cash(&new_s), fee_s.clone(), added_value.clone()],
            ),
            (vec![locked(&old_s), added_value], vec![locked(&new_s)]),
            // The fee account collects both fees.
            (vec![cash(&old_f), fee_b, fee_s], vec![cash(&new_f)]),
        ];
        for (lhs, rhs) in sums {
            let carries: [E::F; SUM_CARRIES] = std::array::from_fn(|_| eval.next_trace_mask());
            eval_sum_eq(&mut eval, range, &e, &lhs, &rhs, carries);
        }
        for v in &written {
            eval_range_u63(&mut eval, range, &e, v);
        }
        // Trades happen before expiry: ts + 1 + gap = expiry with gap a u63.
        let ts: [E::F; 4] = std::array::from_fn(|_| eval.next_trace_mask());
        let expiry: [E::F; 4] = std::array::from_fn(|_| eval.next_trace_mask());
        let gap: [E::F; 4] = std::array::from_fn(|_| eval.next_trace_mask());
        for v in [&ts, &expiry, &gap] {
            eval_range_u63(&mut eval, range, &e, v);
        }
        // `enabled` rather than 1, so that all-zero padding rows satisfy the identity.
        let unit = [
            e.clone(),
            E::F::from(c(0)),
            E::F::from(c(0)),
            E::F::from(c(0)),
        ];
        let carries: [E::F; SUM_CARRIES] = std::array::from_fn(|_| eval.next_trace_mask());
        eval_sum_eq(
            &mut eval,
            range,
            &e,
            &[ts.clone(), unit, gap],
            std::slice::from_ref(&expiry),
            carries,
        );
        // The clock leaf: `ts = clock + d` with `d` a u63 (time never runs backwards), then
        // `clock ← ts`, at time 16·index + 6.
        let clock = AccessCells::read(&mut eval);
        let d: [E::F; 4] = std::array::from_fn(|_| eval.next_trace_mask());
        eval_clock_write(&mut eval, &e, &clock, slot_time(6), &ts);
        eval_range_u63(&mut eval, range, &e, &d);
        let carries: [E::F; SUM_CARRIES] = std::array::from_fn(|_| eval.next_trace_mask());
        eval_sum_eq(
            &mut eval,
            range,
            &e,
            &[u64_of(&clock.old[..4]), d],
            std::slice::from_ref(&ts),
            carries,
        );
        eval_access(&mut eval, &self.state, range, clock);
        // Open interest (Σ long lots) of the instrument moves by the change in longs:
        // oi' + long_b + long_s = oi + long_b' + long_s'; seventh access, time 16·index + 7.
        let oi = AccessCells::read(&mut eval);
        eval.add_constraint(oi.enabled.clone() - e.clone());
        eval.add_constraint(e.clone() * (oi.times[1].clone() - slot_time(7)));
        eval.add_constraint(oi.key[0].clone() - instrument_col.clone());
        eval.add_constraint(oi.key[1].clone() - e.clone() * c(OI_KEY_HI));
        for i in 4..8 {
            eval.add_constraint(oi.new[i].clone());
        }
        let [long_b, long_b2, long_s, long_s2] = longs;
        let carries: [E::F; SUM_CARRIES] = std::array::from_fn(|_| eval.next_trace_mask());
        eval_sum_eq(
            &mut eval,
            range,
            &e,
            &[u64_of(&oi.new[..4]), long_b, long_s],
            &[u64_of(&oi.old[..4]), long_b2, long_s2],
            carries,
        );
        eval_range_u63(&mut eval, range, &e, &u64_of(&oi.new[..4]));
        eval_access(&mut eval, &self.state, range, oi);
        if let Some((ops, instruments)) = &self.ops {
            op.extend(ts);
            eval.add_to_relation(RelationEntry::new(ops, neg(&e), &op));
            let mut terms = vec![instrument_col];
            terms.extend(expiry);
            terms.extend(coll_copy);
            eval.add_to_relation(RelationEntry::new(instruments, neg(&e), &terms));
        }
        eval.finalize_logup_in_pairs();
        eval
    }
}

/// The trade component.
pub type Trade = FrameworkComponent<TradeEval>;

#[cfg(feature = "prover")]
mod witness;
#[cfg(feature = "prover")]
pub use witness::{trade_row, TradeRow};

#[cfg(all(test, feature = "prover"))]
mod tests;
