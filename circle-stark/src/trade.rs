//! Trade rows of the batch AIR (`specs/batch-air.md` §4.5): one row per trade, with the five
//! state leaves it touches read and written through the memory argument, and every venue rule
//! of the trade's cash, collateral and positions as constraints.
//!
//! Positions are `sign ‖ |qty|` leaves; with `long = |qty|·(1 − sign)` and `short =
//! |qty|·sign` (one of them zero), a position moving by `+qty` is the u64 identity
//! `long' + short = long + short' + qty`, checked limb by limb with small signed carries
//! ([`eval_sum_eq`]). The collateral released by the buyer is `(short − short') · collateral`
//! and the collateral added by the seller `(short' − short) · collateral`, both exact products
//! ([`crate::mul`]); the cash and locked balances then follow as sum identities, and every
//! value written is range-checked as a u64 below 2^63, so a negative balance has no witness.
//!
//! The row also consumes its operation record (`Op`) and its instrument's terms
//! (`Instrument`, from the table bound to `instruments_root`), writes the venue clock
//! ([`eval_clock_write`]) with `clock ≤ ts < expiry`, and moves the instrument's open interest
//! (`specs/batch-air.md` §4.5).

use stwo_constraint_framework::{EvalAtRow, FrameworkComponent, FrameworkEval, RelationEntry};

use crate::field::M31;
use crate::gadgets::eval_range_u63;
pub use crate::gadgets::{
    eval_clock_write, eval_sum_eq, SumIdentity, CLOCK_KEY_HI, OI_KEY_HI, SLOTS_PER_OP, SUM_CARRIES,
    SUM_CARRY_OFFSET,
};
use crate::memory::{eval_access, AccessCells, StateRel, ACCESS_COLUMNS};
use crate::mul::{eval_mul_u63, MulCells, MulWitness, MUL_COLUMNS};
use crate::range::RangeRelations;
pub use crate::row::{Access, Lookup, RowWitness};
use crate::venue::state::{account_leaf, position_leaf, AccountState, StateKey, LEAF_LIMBS};

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
    pub ops: Option<(crate::air::OpRelation, crate::instruments::InstrumentRel)>,
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

fn limbs(v: u64) -> [M31; 4] {
    crate::encoding::u64_limbs(v)
}

fn inverse_or_zero(v: M31) -> M31 {
    if v.0 == 0 {
        c(0)
    } else {
        v.inverse()
    }
}

/// Everything a trade row holds, as plain values: what the engine computed for an honest
/// trade, or what a test forges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeRow {
    /// Operation index in the batch (access times derive from it).
    pub index: u32,
    /// Instrument.
    pub instrument: u32,
    /// Buyer account.
    pub buyer: u32,
    /// Seller account.
    pub seller: u32,
    /// Lots.
    pub qty: u64,
    /// Price per lot.
    pub price: u64,
    /// Buyer's fee.
    pub fee_b: u64,
    /// Seller's fee.
    pub fee_s: u64,
    /// The instrument's collateral per lot.
    pub collateral: u64,
    /// Buyer, seller and fee account before and after.
    pub accounts: [(AccountState, AccountState); 3],
    /// Buyer's and seller's positions before and after.
    pub positions: [(i64, i64); 2],
    /// `qty · price`.
    pub notional: u64,
    /// Lots of short the buyer closed, and their collateral.
    pub released: (u64, u64),
    /// Lots of short the seller opened, and their collateral.
    pub added: (u64, u64),
    /// Previous access time of each of the seven leaves (buyer, seller, fee, positions,
    /// clock, open interest).
    pub t_prev: [u32; 7],
    /// The instrument's open interest before and after.
    pub open_interest: (u64, u64),
    /// The clock before the trade.
    pub clock: u64,
    /// The operation's timestamp (bound to its record; at least the clock, below expiry).
    pub timestamp: u64,
    /// The instrument's expiry.
    pub expiry: u64,
}

impl TradeRow {
    /// The row's seven accesses.
    pub fn accesses(&self) -> [Access; 7] {
        let t = |k: u32| self.index * SLOTS_PER_OP + k;
        let acct = |k: usize, id: u32| Access {
            key: StateKey::Account(id).index(),
            old: account_leaf(&self.accounts[k].0),
            new: account_leaf(&self.accounts[k].1),
            t_prev: self.t_prev[k],
            t: t(k as u32 + 1),
        };
        let pos = |k: usize, id: u32| Access {
            key: StateKey::Position {
                instrument: self.instrument,
                account: id,
            }
            .index(),
            old: position_leaf(self.positions[k].0),
            new: position_leaf(self.positions[k].1),
            t_prev: self.t_prev[3 + k],
            t: t(4 + k as u32),
        };
        let clock = Access {
            key: StateKey::Clock.index(),
            old: crate::venue::state::clock_leaf(self.clock),
            new: crate::venue::state::clock_leaf(self.timestamp),
            t_prev: self.t_prev[5],
            t: t(6),
        };
        let oi = Access {
            key: StateKey::OpenInterest(self.instrument).index(),
            old: crate::venue::state::open_interest_leaf(self.open_interest.0),
            new: crate::venue::state::open_interest_leaf(self.open_interest.1),
            t_prev: self.t_prev[6],
            t: t(7),
        };
        [
            acct(0, self.buyer),
            acct(1, self.seller),
            acct(2, 0),
            pos(0, self.buyer),
            pos(1, self.seller),
            clock,
            oi,
        ]
    }

    /// Cells and lookups in the order [`TradeEval`] reads and adds them; `bound` as
    /// `TradeEval::ops` is set.
    pub fn witness(&self, bound: bool) -> RowWitness {
        let mut w = RowWitness::default();
        w.push([c(1), c(self.index), c(self.instrument)]);
        w.range(c(self.instrument) * c(1 << 4));
        let inputs = [
            self.qty,
            self.price,
            self.fee_b,
            self.fee_s,
            self.collateral,
        ];
        for v in inputs {
            w.push(limbs(v));
        }
        for v in inputs {
            w.u63(limbs(v));
        }
        let qty_sum = limbs(self.qty).into_iter().fold(c(0), |a, b| a + b);
        w.push([inverse_or_zero(qty_sum)]);
        let accesses = self.accesses();
        for a in &accesses[..5] {
            w.access_cells(a);
        }
        let (b, s) = (c(self.buyer), c(self.seller));
        let mag = |q: i64| limbs(q.unsigned_abs()).into_iter().fold(c(0), |a, b| a + b);
        w.push([
            inverse_or_zero(b),
            inverse_or_zero(s),
            inverse_or_zero(b - s),
            inverse_or_zero(mag(self.positions[0].1)),
            inverse_or_zero(mag(self.positions[1].1)),
        ]);
        for a in [&accesses[0], &accesses[1]] {
            w.range(c(a.key & 0xffff));
            w.range(c(a.key >> 16) * c(1 << 14));
        }
        for a in &accesses[..5] {
            w.access_lookups(a);
        }
        let mul = |a: u64, b: u64, prod: u64| {
            MulWitness::new(a, b)
                .filter(|m| m.c == limbs(prod).map(|x| x.0))
                .unwrap_or_else(|| MulWitness::claiming(a, b, prod))
        };
        w.push(limbs(self.notional));
        w.mul(&mul(self.qty, self.price, self.notional));
        w.push(limbs(self.released.0));
        w.push(limbs(self.released.1));
        w.mul(&mul(self.released.0, self.collateral, self.released.1));
        w.push(limbs(self.added.0));
        w.push(limbs(self.added.1));
        w.mul(&mul(self.added.0, self.collateral, self.added.1));

        let ls = |q: i64| {
            let m = q.unsigned_abs();
            if q < 0 {
                (limbs(0), limbs(m))
            } else {
                (limbs(m), limbs(0))
            }
        };
        let (long_b, short_b) = ls(self.positions[0].0);
        let (long_b2, short_b2) = ls(self.positions[0].1);
        let (long_s, short_s) = ls(self.positions[1].0);
        let (long_s2, short_s2) = ls(self.positions[1].1);
        let [(ob, nb), (os, ns), (of, nf)] = self.accounts;
        let l = limbs;
        w.sum_eq(&[long_b2, short_b], &[long_b, short_b2, l(self.qty)]);
        w.sum_eq(&[long_s2, short_s, l(self.qty)], &[long_s, short_s2]);
        w.sum_eq(&[short_b2, l(self.released.0)], &[short_b]);
        w.sum_eq(&[short_s, l(self.added.0)], &[short_s2]);
        w.sum_eq(
            &[l(nb.cash), l(self.notional), l(self.fee_b)],
            &[l(ob.cash), l(self.released.1)],
        );
        w.sum_eq(&[l(nb.locked), l(self.released.1)], &[l(ob.locked)]);
        w.sum_eq(
            &[l(os.cash), l(self.notional)],
            &[l(ns.cash), l(self.fee_s), l(self.added.1)],
        );
        w.sum_eq(&[l(os.locked), l(self.added.1)], &[l(ns.locked)]);
        w.sum_eq(&[l(of.cash), l(self.fee_b), l(self.fee_s)], &[l(nf.cash)]);
        for v in [
            nb.cash,
            nb.locked,
            ns.cash,
            ns.locked,
            nf.cash,
            self.positions[0].1.unsigned_abs(),
            self.positions[1].1.unsigned_abs(),
        ] {
            w.u63(l(v));
        }
        let ts = l(self.timestamp);
        let gap = self.expiry.wrapping_sub(self.timestamp).wrapping_sub(1);
        w.push(ts);
        w.push(l(self.expiry));
        w.push(l(gap));
        for v in [self.timestamp, self.expiry, gap] {
            w.u63(l(v));
        }
        w.sum_eq(&[ts, l(1), l(gap)], &[l(self.expiry)]);
        let clock = &accesses[5];
        let d = self.timestamp.wrapping_sub(self.clock);
        w.access_cells(clock);
        w.push(l(d));
        w.u63(l(d));
        w.sum_eq(&[l(self.clock), l(d)], &[ts]);
        w.access_lookups(clock);
        let oi = &accesses[6];
        w.access_cells(oi);
        let (oi0, oi1) = self.open_interest;
        w.sum_eq(&[l(oi1), long_b, long_s], &[l(oi0), long_b2, long_s2]);
        w.u63(l(oi1));
        w.access_lookups(oi);
        debug_assert_eq!(w.cells.len(), TRADE_COLUMNS);
        if bound {
            let mut op = vec![
                c(self.index),
                c(crate::venue::ops::kind::TRADE),
                c(self.buyer & 0xffff),
                c(self.buyer >> 16),
                c(self.seller & 0xffff),
                c(self.seller >> 16),
                c(self.instrument),
                c(0),
            ];
            for v in [self.qty, self.price, self.fee_b, self.fee_s] {
                op.extend(l(v));
            }
            op.extend(ts);
            w.lookups.push(Lookup::Op(op));
            let mut terms = vec![c(self.instrument)];
            terms.extend(l(self.expiry));
            terms.extend(l(self.collateral));
            w.lookups.push(Lookup::Instrument(terms));
            debug_assert_eq!(w.lookups.len(), TRADE_LOOKUPS);
        }
        w
    }
}

impl TradeRow {
    /// The row the trade rules give for these inputs and balances, computed with wrapping
    /// arithmetic and **no** rule checks: the test-only path to invalid witnesses (an
    /// overdraft wraps around, a self-trade or zero quantity goes through). For a valid trade it
    /// equals the engine's row ([`trade_row`]). `t_prev` is left zero.
    #[allow(clippy::too_many_arguments)]
    pub fn unchecked(
        index: u32,
        instrument: u32,
        (buyer, seller): (u32, u32),
        (qty, price, fee_b, fee_s): (u64, u64, u64, u64),
        collateral: u64,
        accounts: [AccountState; 3],
        positions: [i64; 2],
        open_interest: u64,
    ) -> Self {
        let q = qty as i64;
        let new_pos = [positions[0].wrapping_add(q), positions[1].wrapping_sub(q)];
        let long = |p: i64| if p > 0 { p.unsigned_abs() } else { 0 };
        let oi_after = open_interest
            .wrapping_add(long(new_pos[0]))
            .wrapping_add(long(new_pos[1]))
            .wrapping_sub(long(positions[0]))
            .wrapping_sub(long(positions[1]));
        let short = |p: i64| if p < 0 { p.unsigned_abs() } else { 0 };
        let released = short(positions[0]).wrapping_sub(short(new_pos[0]));
        let added = short(new_pos[1]).wrapping_sub(short(positions[1]));
        let notional = qty.wrapping_mul(price);
        let (rv, av) = (
            released.wrapping_mul(collateral),
            added.wrapping_mul(collateral),
        );
        let [ob, os, of] = accounts;
        let nb = AccountState {
            cash: ob
                .cash
                .wrapping_add(rv)
                .wrapping_sub(notional)
                .wrapping_sub(fee_b),
            locked: ob.locked.wrapping_sub(rv),
        };
        let ns = AccountState {
            cash: os
                .cash
                .wrapping_add(notional)
                .wrapping_sub(fee_s)
                .wrapping_sub(av),
            locked: os.locked.wrapping_add(av),
        };
        let nf = AccountState {
            cash: of.cash.wrapping_add(fee_b).wrapping_add(fee_s),
            locked: of.locked,
        };
        Self {
            index,
            instrument,
            buyer,
            seller,
            qty,
            price,
            fee_b,
            fee_s,
            collateral,
            accounts: [(ob, nb), (os, ns), (of, nf)],
            positions: [(positions[0], new_pos[0]), (positions[1], new_pos[1])],
            notional,
            released: (released, rv),
            added: (added, av),
            t_prev: [0; 7],
            open_interest: (open_interest, oi_after),
            clock: 0,
            timestamp: 0,
            expiry: u64::MAX >> 1,
        }
    }
}

/// The honest row of `op` (a trade) applied to `venue` as operation `index`, with the
/// previous access times of its leaves taken from `last_access` (and updated). Applies the
/// trade to `venue`.
///
/// # Errors
/// The engine's violation if the trade breaks a rule (no honest row exists then).
pub fn trade_row(
    venue: &mut crate::venue::Venue,
    op: &crate::venue::Operation,
    index: u32,
    last_access: &mut std::collections::BTreeMap<u32, u32>,
) -> Result<TradeRow, crate::venue::engine::Violation> {
    let crate::venue::Operation::Trade {
        buyer,
        seller,
        instrument,
        qty,
        price,
        buyer_fee,
        seller_fee,
        ..
    } = *op
    else {
        panic!("trade_row takes trades");
    };
    let collateral = venue.instruments()[instrument as usize].collateral;
    let clock = venue.clock();
    let oi_before = venue.open_interest(instrument);
    let expiry = venue.instruments()[instrument as usize].expiry_us;
    let before_acc = [
        venue.account(buyer),
        venue.account(seller),
        venue.account(0),
    ];
    let before_pos = [
        venue.position(instrument, buyer),
        venue.position(instrument, seller),
    ];
    venue.apply_batch(std::slice::from_ref(op))?;
    let after_acc = [
        venue.account(buyer),
        venue.account(seller),
        venue.account(0),
    ];
    let after_pos = [
        venue.position(instrument, buyer),
        venue.position(instrument, seller),
    ];
    let short = |p: i64| (-p).max(0).unsigned_abs();
    let released = short(before_pos[0]) - short(after_pos[0]);
    let added = short(after_pos[1]) - short(before_pos[1]);
    let mut row = TradeRow {
        index,
        instrument,
        buyer,
        seller,
        qty,
        price,
        fee_b: buyer_fee,
        fee_s: seller_fee,
        collateral,
        accounts: std::array::from_fn(|k| (before_acc[k], after_acc[k])),
        positions: std::array::from_fn(|k| (before_pos[k], after_pos[k])),
        notional: qty * price,
        released: (released, released * collateral),
        added: (added, added * collateral),
        t_prev: [0; 7],
        open_interest: (oi_before, venue.open_interest(instrument)),
        clock,
        timestamp: op.timestamp_us(),
        expiry,
    };
    for (k, a) in row.accesses().iter().enumerate() {
        row.t_prev[k] = last_access.insert(a.key, a.t).unwrap_or(0);
    }
    Ok(row)
}

#[cfg(all(test, feature = "prover"))]
mod tests {
    use std::collections::BTreeMap;

    use stwo::core::fields::qm31::SecureField;
    use stwo_constraint_framework::{Relation, TraceLocationAllocator};

    use super::*;
    use crate::harness::{
        boundary_components, evaluations, logup_columns, prove_and_verify, range_table_column,
        range_table_component, Air,
    };
    use crate::range::LOG_RANGE;
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
        let mut last: BTreeMap<u32, u32> = BTreeMap::new();
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
                row.t_prev[k] = last.insert(a.key, a.t).unwrap_or(0);
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
        let mut last = BTreeMap::new();
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
}
