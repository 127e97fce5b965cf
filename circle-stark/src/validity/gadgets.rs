//! Constraint gadgets shared by the batch AIR's operation rows (`specs/batch-air.md` §4): u63
//! range checks, u64 sum identities with signed carries, the venue clock's write, and the
//! layout constants of the state accesses. The components (`cash`, `trade`, `settle`, `mul`)
//! use these; nothing here depends on a component.

use stwo_constraint_framework::{EvalAtRow, RelationEntry};

use crate::field::M31;
use crate::validity::memory::AccessCells;
use crate::validity::range::RangeRelations;

fn c(v: u32) -> M31 {
    M31::from_u32_unchecked(v)
}

/// Carries of one sum identity (none out of the top limb).
pub const SUM_CARRIES: usize = 3;
/// Sum-identity carries lie in `[−SUM_CARRY_OFFSET, SUM_CARRY_OFFSET)`.
pub const SUM_CARRY_OFFSET: u32 = 8;
/// Access time slots per operation: operation `i`'s `k`-th access is at time `16·i + k + 1`.
pub const SLOTS_PER_OP: u32 = 16;
/// High limb of the clock leaf's key `3·2^30` (its low limb is 0).
pub const CLOCK_KEY_HI: u32 = 0xc000;
/// High limb of an open-interest leaf's key `2^31 + instrument` (instrument < 2^12).
pub const OI_KEY_HI: u32 = 0x8000;

/// Consumes `Range16` for the four limbs of a u64 below 2^63: each limb below 2^16, and the
/// top limb doubled below 2^16 too (with the limb itself below 2^16 the doubling cannot wrap).
pub fn eval_range_u63<E: EvalAtRow>(
    eval: &mut E,
    range: &RangeRelations,
    enabled: &E::F,
    limbs: &[E::F; 4],
) {
    let m = -E::EF::from(enabled.clone());
    for limb in limbs {
        eval.add_to_relation(RelationEntry::new(
            &range.range,
            m.clone(),
            std::slice::from_ref(limb),
        ));
    }
    let doubled = limbs[3].clone() * M31::from_u32_unchecked(2);
    eval.add_to_relation(RelationEntry::new(&range.range, m, &[doubled]));
}

/// Constrains `Σ lhs = Σ rhs` over the integers for u64s as 16-bit limbs (range-checked by the
/// caller), with signed carries in `[−8, 8)` checked as `Range16((carry + 8) · 2^12)` and no
/// carry out of the top limb. With at most 16 terms every limb equation stays below 2^21 in
/// absolute value, so it holds over the integers, and so does the sum.
pub fn eval_sum_eq<E: EvalAtRow>(
    eval: &mut E,
    range: &RangeRelations,
    enabled: &E::F,
    lhs: &[[E::F; 4]],
    rhs: &[[E::F; 4]],
    carries: [E::F; SUM_CARRIES],
) {
    let two16 = c(1 << 16);
    for i in 0..4 {
        let mut acc = lhs[0][i].clone();
        for t in &lhs[1..] {
            acc += t[i].clone();
        }
        for t in rhs {
            acc = acc - t[i].clone();
        }
        if i > 0 {
            acc += carries[i - 1].clone();
        }
        if i < SUM_CARRIES {
            acc = acc - carries[i].clone() * two16;
        }
        eval.add_constraint(acc);
    }
    let neg = -E::EF::from(enabled.clone());
    let shift = c(1 << 12);
    for k in carries {
        let v = (k + E::F::from(c(SUM_CARRY_OFFSET))) * shift;
        eval.add_to_relation(RelationEntry::new(&range.range, neg.clone(), &[v]));
    }
}

/// The clock leaf's access in an operation row: enabled with the row, at `time`, key
/// `3·2^30`, and written `ts ‖ 0`. (That `ts ≥` the clock read is the caller's identity.)
pub fn eval_clock_write<E: EvalAtRow>(
    eval: &mut E,
    enabled: &E::F,
    clock: &AccessCells<E::F>,
    time: E::F,
    ts: &[E::F; 4],
) {
    eval.add_constraint(clock.enabled.clone() - enabled.clone());
    eval.add_constraint(enabled.clone() * (clock.times[1].clone() - time));
    eval.add_constraint(clock.key[0].clone());
    eval.add_constraint(clock.key[1].clone() - enabled.clone() * c(CLOCK_KEY_HI));
    for (i, t) in ts.iter().enumerate() {
        eval.add_constraint(clock.new[i].clone() - t.clone());
        eval.add_constraint(clock.new[4 + i].clone());
    }
}

/// `(lhs, rhs)` terms of a sum identity.
pub type SumIdentity<F> = (Vec<[F; 4]>, Vec<[F; 4]>);
