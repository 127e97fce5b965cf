//! Settlement rows of the batch AIR (`specs/batch-air.md` §4.7).
//!
//! A settlement of instrument `i` at price `S` is one **header** row and one **holder** row per
//! position in `i`:
//! - the header consumes the operation record and the instrument's terms (strike, kind,
//!   collateral, expiry) from the instrument table; checks `ts ≥ expiry` and `ts ≥ clock`
//!   (clock ← ts, time `16·index + 1`); computes the payoff per lot `min(max(0, ±(S − K)), C)`
//!   with two u64 identities each (a boolean picks which side of the max and of the min is
//!   zero); reads the open interest `oi` and writes 0 (time `16·index + 2`); starts the chain
//!   `SettleChain(index, 0, i, payoff, C, oi, oi)` and ends it by consuming
//!   `SettleChain(index, h, i, payoff, C, 0, 0)`;
//! - holder row `j` consumes `SettleChain(index, j, …, rl, rs)`, settles one position (read at
//!   time `16·index + 3`, written as zero) and its account (time `16·index + 4`): a long of `L`
//!   lots gets `L·payoff`, a short of `S` lots has `S·C` unlocked and gets `S·(C − payoff)`;
//!   it yields `SettleChain(index, j + 1, …, rl − long, rs − short)` with both u63.
//!
//! The chain's indices make the holder rows one path from 0 to `h`, so the long lots they settle
//! sum to `oi` and so do the short lots. Open interest is the sum of all longs (trade rows keep
//! it so) and positions sum to zero, so every long and every short of the instrument is settled;
//! the memory argument gives each position at most one row (two accesses of one key at the same
//! time are impossible).

use stwo_constraint_framework::{
    relation, EvalAtRow, FrameworkComponent, FrameworkEval, RelationEntry,
};

use crate::field::M31;
use crate::validity::gadgets::eval_range_u63;
use crate::validity::gadgets::{
    eval_clock_write, eval_sum_eq, SumIdentity, OI_KEY_HI, SLOTS_PER_OP, SUM_CARRIES,
};
use crate::validity::memory::{eval_access, AccessCells, StateRel, ACCESS_COLUMNS};
use crate::validity::mul::{eval_mul_u63, MulCells, MUL_COLUMNS};
use crate::validity::range::RangeRelations;

relation!(SettleChainRel, 19);
relation!(SettleTermsRel, 14);

/// Header columns: `enabled, index, instrument, h, is_put, itm, capped`, twelve u64s, the
/// clock and open-interest accesses, five identities' carries.
pub const HEADER_COLUMNS: usize = 7 + 12 * 4 + 2 * ACCESS_COLUMNS + 5 * SUM_CARRIES;
/// Header entries: instrument, nine u63s, five identities, two accesses, the operation, the
/// terms, the chain's start and end.
pub const HEADER_LOOKUPS: usize = 1 + 9 * 5 + 5 * SUM_CARRIES + 2 * 4 + 4;
/// Holder columns: `enabled, index, j, instrument`, six u64s, two accesses, two products,
/// four identities' carries.
pub const HOLDER_COLUMNS: usize =
    4 + 6 * 4 + 2 * ACCESS_COLUMNS + 2 * (4 + MUL_COLUMNS) + 4 * SUM_CARRIES;
/// Holder entries: the account key, two accesses, two products, four identities, four u63s,
/// the chain's two links.
pub const HOLDER_LOOKUPS: usize = 2 + 2 * 4 + 2 * 28 + 4 * SUM_CARRIES + 4 * 5 + 2;

fn c(v: u32) -> M31 {
    M31::from_u32_unchecked(v)
}

/// A `SettleChain` tuple: `(index, j, instrument, payoff, collateral, rl, rs)`.
fn chain_link<F: Clone>(
    index: &F,
    j: F,
    instrument: &F,
    [payoff, coll, rl, rs]: [&[F; 4]; 4],
) -> Vec<F> {
    let mut v = vec![index.clone(), j, instrument.clone()];
    for x in [payoff, coll, rl, rs] {
        v.extend(x.iter().cloned());
    }
    v
}

fn read4<E: EvalAtRow>(eval: &mut E) -> [E::F; 4] {
    std::array::from_fn(|_| eval.next_trace_mask())
}

fn u64_of<F: Clone>(cells: &[F]) -> [F; 4] {
    std::array::from_fn(|i| cells[i].clone())
}

/// The header component.
#[derive(Debug, Clone)]
pub struct SettleEval {
    /// log2 of the row count.
    pub log_rows: u32,
    /// State accesses.
    pub state: StateRel,
    /// Range checks.
    pub range: RangeRelations,
    /// Operation records.
    pub ops: crate::data_root::OpRelation,
    /// Instrument terms for settlements.
    pub terms: SettleTermsRel,
    /// Header ↔ holder rows.
    pub chain: SettleChainRel,
}

impl FrameworkEval for SettleEval {
    fn log_size(&self) -> u32 {
        self.log_rows
    }

    fn max_constraint_log_degree_bound(&self) -> u32 {
        self.log_rows + 1
    }

    fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
        let range = &self.range;
        let one = E::F::from(c(1));
        let zero = || E::F::from(c(0));
        let [e, index, instrument, h, is_put, itm, capped] =
            std::array::from_fn(|_| eval.next_trace_mask());
        for b in [&e, &is_put, &itm, &capped] {
            eval.add_constraint(b.clone() * b.clone() - b.clone());
        }
        let neg = -E::EF::from(e.clone());
        eval.add_to_relation(RelationEntry::new(
            &range.range,
            neg.clone(),
            &[instrument.clone() * c(1 << 4)],
        ));
        let [s, k, coll, expiry, ts, intr, gap, payoff, over, under, d1, d2] =
            std::array::from_fn(|_| read4(&mut eval));
        for v in [&s, &ts, &intr, &gap, &payoff, &over, &under, &d1, &d2] {
            eval_range_u63(&mut eval, range, &e, v);
        }
        for i in 0..4 {
            // In the money: no gap; out of it: no intrinsic value.
            eval.add_constraint((one.clone() - itm.clone()) * intr[i].clone());
            eval.add_constraint(itm.clone() * gap[i].clone());
            // Capped: payoff = C; not capped: payoff = intrinsic.
            eval.add_constraint(capped.clone() * under[i].clone());
            eval.add_constraint((one.clone() - capped.clone()) * over[i].clone());
        }
        // A call's intrinsic value is S − K, a put's K − S: A + gap = B + intr.
        let a: [E::F; 4] =
            std::array::from_fn(|i| s[i].clone() + is_put.clone() * (k[i].clone() - s[i].clone()));
        let b: [E::F; 4] =
            std::array::from_fn(|i| k[i].clone() + is_put.clone() * (s[i].clone() - k[i].clone()));
        let clock = AccessCells::read(&mut eval);
        let oi = AccessCells::read(&mut eval);
        let identities: [SumIdentity<E::F>; 5] = [
            (vec![a, gap], vec![b, intr.clone()]),
            (vec![payoff.clone(), over], vec![intr]),
            (vec![payoff.clone(), under], vec![coll.clone()]),
            (vec![expiry.clone(), d1], vec![ts.clone()]),
            (vec![u64_of(&clock.old[..4]), d2], vec![ts.clone()]),
        ];
        for (lhs, rhs) in identities {
            let carries: [E::F; SUM_CARRIES] = std::array::from_fn(|_| eval.next_trace_mask());
            eval_sum_eq(&mut eval, range, &e, &lhs, &rhs, carries);
        }
        let slot = |k: u32| index.clone() * c(SLOTS_PER_OP) + E::F::from(c(k));
        eval_clock_write(&mut eval, &e, &clock, slot(1), &ts);
        eval.add_constraint(oi.enabled.clone() - e.clone());
        eval.add_constraint(e.clone() * (oi.times[1].clone() - slot(2)));
        eval.add_constraint(oi.key[0].clone() - instrument.clone());
        eval.add_constraint(oi.key[1].clone() - e.clone() * c(OI_KEY_HI));
        for v in &oi.new {
            eval.add_constraint(v.clone());
        }
        let oi_value = u64_of(&oi.old[..4]);
        eval_access(&mut eval, &self.state, range, clock);
        eval_access(&mut eval, &self.state, range, oi);

        let mut op = vec![
            index.clone(),
            E::F::from(c(crate::venue::ops::kind::SETTLE)),
        ];
        op.extend((0..4).map(|_| zero()));
        op.extend([instrument.clone(), zero()]);
        op.extend((0..4).map(|_| zero()));
        op.extend(s.iter().cloned());
        op.extend((0..8).map(|_| zero()));
        op.extend(ts.iter().cloned());
        eval.add_to_relation(RelationEntry::new(&self.ops, neg.clone(), &op));
        let mut terms = vec![instrument.clone()];
        for v in [&expiry, &coll, &k] {
            terms.extend(v.iter().cloned());
        }
        terms.push(is_put);
        eval.add_to_relation(RelationEntry::new(&self.terms, neg.clone(), &terms));
        let link = |j: E::F, rl: &[E::F; 4], rs: &[E::F; 4]| {
            chain_link(&index, j, &instrument, [&payoff, &coll, rl, rs])
        };
        let zeros: [E::F; 4] = std::array::from_fn(|_| zero());
        let start = link(zero(), &oi_value, &oi_value);
        let end = link(h, &zeros, &zeros);
        eval.add_to_relation(RelationEntry::new(
            &self.chain,
            E::EF::from(e.clone()),
            &start,
        ));
        eval.add_to_relation(RelationEntry::new(&self.chain, neg, &end));
        eval.finalize_logup_in_pairs();
        eval
    }
}

/// The holder component.
#[derive(Debug, Clone)]
pub struct HolderEval {
    /// log2 of the row count.
    pub log_rows: u32,
    /// State accesses.
    pub state: StateRel,
    /// Range checks.
    pub range: RangeRelations,
    /// Header ↔ holder rows.
    pub chain: SettleChainRel,
}

impl FrameworkEval for HolderEval {
    fn log_size(&self) -> u32 {
        self.log_rows
    }

    fn max_constraint_log_degree_bound(&self) -> u32 {
        self.log_rows + 1
    }

    fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
        let range = &self.range;
        let one = E::F::from(c(1));
        let [e, index, j, instrument] = std::array::from_fn(|_| eval.next_trace_mask());
        eval.add_constraint(e.clone() * e.clone() - e.clone());
        let neg = -E::EF::from(e.clone());
        let [payoff, coll, rl, rs, rl2, rs2] = std::array::from_fn(|_| read4(&mut eval));
        let pos = AccessCells::read(&mut eval);
        let acc = AccessCells::read(&mut eval);
        let slot = |k: u32| index.clone() * c(SLOTS_PER_OP) + E::F::from(c(k));
        for (cells, k) in [(&pos, 3), (&acc, 4)] {
            eval.add_constraint(cells.enabled.clone() - e.clone());
            eval.add_constraint(e.clone() * (cells.times[1].clone() - slot(k)));
        }
        // The account (below 2^18) and its position in this instrument.
        eval.add_to_relation(RelationEntry::new(
            &range.range,
            neg.clone(),
            &[acc.key[0].clone()],
        ));
        eval.add_to_relation(RelationEntry::new(
            &range.range,
            neg.clone(),
            &[acc.key[1].clone() * c(1 << 14)],
        ));
        eval.add_constraint(pos.key[0].clone() - acc.key[0].clone());
        eval.add_constraint(
            e.clone()
                * (pos.key[1].clone()
                    - acc.key[1].clone()
                    - instrument.clone() * c(4)
                    - E::F::from(c(1 << 14))),
        );
        // The position `sign ‖ lots` is read and written as zero.
        let sign = pos.old[0].clone();
        eval.add_constraint(sign.clone() * sign.clone() - sign.clone());
        for v in &pos.new {
            eval.add_constraint(v.clone());
        }
        let lots = u64_of(&pos.old[1..5]);
        let long: [E::F; 4] =
            std::array::from_fn(|i| lots[i].clone() * (one.clone() - sign.clone()));
        let short: [E::F; 4] = std::array::from_fn(|i| lots[i].clone() * sign.clone());
        let (cash, locked) = (u64_of(&acc.old[..4]), u64_of(&acc.old[4..]));
        let (cash2, locked2) = (u64_of(&acc.new[..4]), u64_of(&acc.new[4..]));
        eval_access(&mut eval, &self.state, range, pos);
        eval_access(&mut eval, &self.state, range, acc);

        // paid = lots · payoff; freed = lots · collateral.
        let paid = read4(&mut eval);
        let cells = MulCells::read(&mut eval);
        eval_mul_u63(&mut eval, range, &e, &lots, &payoff, &paid, cells);
        let freed = read4(&mut eval);
        let cells = MulCells::read(&mut eval);
        eval_mul_u63(&mut eval, range, &e, &lots, &coll, &freed, cells);
        let by = |s: E::F, v: &[E::F; 4]| -> [E::F; 4] {
            std::array::from_fn(|i| s.clone() * v[i].clone())
        };
        let not_sign = one.clone() - sign.clone();
        let identities: [SumIdentity<E::F>; 4] = [
            (vec![rl2.clone(), long], vec![rl.clone()]),
            (vec![rs2.clone(), short], vec![rs.clone()]),
            // A long gets `paid`; a short gets `freed − paid` (collateral ≥ payoff).
            (
                vec![cash2.clone(), by(sign.clone(), &paid)],
                vec![cash, by(not_sign, &paid), by(sign.clone(), &freed)],
            ),
            (vec![locked2.clone(), by(sign, &freed)], vec![locked]),
        ];
        for (lhs, rhs) in identities {
            let carries: [E::F; SUM_CARRIES] = std::array::from_fn(|_| eval.next_trace_mask());
            eval_sum_eq(&mut eval, range, &e, &lhs, &rhs, carries);
        }
        for v in [&rl2, &rs2, &cash2, &locked2] {
            eval_range_u63(&mut eval, range, &e, v);
        }
        let link = |j: E::F, rl: &[E::F; 4], rs: &[E::F; 4]| {
            chain_link(&index, j, &instrument, [&payoff, &coll, rl, rs])
        };
        let (this, next) = (link(j.clone(), &rl, &rs), link(j + one, &rl2, &rs2));
        eval.add_to_relation(RelationEntry::new(&self.chain, neg, &this));
        eval.add_to_relation(RelationEntry::new(&self.chain, E::EF::from(e), &next));
        eval.finalize_logup_in_pairs();
        eval
    }
}

/// The header component.
pub type Settle = FrameworkComponent<SettleEval>;
/// The holder component.
pub type Holder = FrameworkComponent<HolderEval>;

#[cfg(feature = "prover")]
mod witness;
#[cfg(feature = "prover")]
pub use witness::*;
