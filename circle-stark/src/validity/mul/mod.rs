//! Exact products of u64s in the batch AIR (`specs/batch-air.md` §4.4): `a · b = c` with
//! `c < 2^63`, for notionals (`qty · price`), collateral (`lots · collateral`) and payoffs.
//!
//! Two 16-bit limbs multiply to 32 bits, above p = 2^31 − 1, so the factors are split into
//! bytes: each 16-bit limb is `lo + 256·hi` with both bytes range-checked (`byte · 2^8 <
//! 2^16`). The schoolbook product is summed in radix 2^16 columns: column `m` gathers the byte
//! products of positions `2m` and `2m + 1` (weights 1 and 256), at most 2^27, plus the incoming
//! carry; the constraint is `T_m + carry_{m−1} = c_m + 2^16 · carry_m` with `c_m = 0` above
//! the fourth limb and no carry out of the last column. Carries are range-checked below 2^14
//! (`carry · 4 < 2^16`) and `c` as a u64 below 2^63, so every term is far below p and each
//! column equation holds over the integers, not just mod p: the product is exact, and one
//! that reaches 2^63 has no satisfying trace.

use stwo_constraint_framework::{EvalAtRow, RelationEntry};

use crate::field::M31;
use crate::validity::gadgets::eval_range_u63;
use crate::validity::range::RangeRelations;

/// Carry columns: one per radix-2^16 column but the last.
pub const MUL_CARRIES: usize = 7;

/// Columns of one product besides its three u64s: bytes of `a`, bytes of `b`, carries.
pub const MUL_COLUMNS: usize = 8 + 8 + MUL_CARRIES;

/// Bits of a carry (checked as `carry · 2^(16 − CARRY_BITS) < 2^16`).
pub const CARRY_BITS: u32 = 14;

/// The cells of one product, in column order.
#[derive(Debug, Clone)]
pub struct MulCells<F> {
    /// Bytes of `a`, least significant first.
    pub a_bytes: [F; 8],
    /// Bytes of `b`.
    pub b_bytes: [F; 8],
    /// Carries between radix-2^16 columns.
    pub carries: [F; MUL_CARRIES],
}

impl<F: Clone> MulCells<F> {
    /// Reads the cells from the next columns.
    pub fn read<E: EvalAtRow<F = F>>(eval: &mut E) -> Self {
        Self {
            a_bytes: std::array::from_fn(|_| eval.next_trace_mask()),
            b_bytes: std::array::from_fn(|_| eval.next_trace_mask()),
            carries: std::array::from_fn(|_| eval.next_trace_mask()),
        }
    }
}

/// Constrains `a · b = c` over the integers with `c < 2^63`, where `a`, `b`, `c` are u64s as
/// four 16-bit limbs. Range-checks the bytes (which bounds `a` and `b` limbs too), the carries
/// and `c`. Lookups are weighted by `enabled`; the algebraic constraints hold on all-zero
/// padding rows by themselves.
pub fn eval_mul_u63<E: EvalAtRow>(
    eval: &mut E,
    range: &RangeRelations,
    enabled: &E::F,
    a: &[E::F; 4],
    b: &[E::F; 4],
    c: &[E::F; 4],
    cells: MulCells<E::F>,
) {
    let b256 = M31::from_u32_unchecked(256);
    let b16 = M31::from_u32_unchecked(1 << 16);
    let MulCells {
        a_bytes,
        b_bytes,
        carries,
    } = cells;
    for j in 0..4 {
        eval.add_constraint(
            a[j].clone() - a_bytes[2 * j].clone() - a_bytes[2 * j + 1].clone() * b256,
        );
        eval.add_constraint(
            b[j].clone() - b_bytes[2 * j].clone() - b_bytes[2 * j + 1].clone() * b256,
        );
    }
    for m in 0..8usize {
        let mut lhs: Option<E::F> = None;
        for (k, weight) in [(2 * m, None), (2 * m + 1, Some(b256))] {
            for i in k.saturating_sub(7)..=k.min(7) {
                let mut term = a_bytes[i].clone() * b_bytes[k - i].clone();
                if let Some(w) = weight {
                    term = term * w;
                }
                lhs = Some(match lhs {
                    Some(l) => l + term,
                    None => term,
                });
            }
        }
        let mut lhs = lhs.expect("every column has a product");
        if m > 0 {
            lhs += carries[m - 1].clone();
        }
        if m < 4 {
            lhs = lhs - c[m].clone();
        }
        if m < MUL_CARRIES {
            lhs = lhs - carries[m].clone() * b16;
        }
        eval.add_constraint(lhs);
    }
    let neg = -E::EF::from(enabled.clone());
    for byte in a_bytes.iter().chain(&b_bytes) {
        let shifted = byte.clone() * b256;
        eval.add_to_relation(RelationEntry::new(&range.range, neg.clone(), &[shifted]));
    }
    eval_range_u63(eval, range, enabled, c);
    let shift = M31::from_u32_unchecked(1 << (16 - CARRY_BITS));
    for carry in carries {
        eval.add_to_relation(RelationEntry::new(
            &range.range,
            neg.clone(),
            &[carry * shift],
        ));
    }
}

#[cfg(feature = "prover")]
mod witness;
#[cfg(feature = "prover")]
pub use witness::*;

#[cfg(all(test, feature = "prover"))]
mod tests;
