//! The witness side (feature `prover`).

use super::*;
use crate::field::M31;

/// The witness of one product, as the trace holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MulWitness {
    /// Bytes of `a`.
    pub a_bytes: [u32; 8],
    /// Bytes of `b`.
    pub b_bytes: [u32; 8],
    /// Carries (canonical field values).
    pub carries: [u32; MUL_CARRIES],
    /// The product's 16-bit limbs.
    pub c: [u32; 4],
}

pub(crate) fn bytes(v: u64) -> [u32; 8] {
    std::array::from_fn(|i| ((v >> (8 * i)) & 0xff) as u32)
}

impl MulWitness {
    /// The honest witness of `a · b`; `None` if the product reaches 2^63 (the venue's
    /// `Overflow`: no witness exists).
    pub fn new(a: u64, b: u64) -> Option<Self> {
        let c = u128::from(a) * u128::from(b);
        if c >= 1 << 63 {
            return None;
        }
        let w = Self::claiming(a, b, c as u64);
        debug_assert!(w.carries.iter().all(|&k| k < 1 << CARRY_BITS));
        Some(w)
    }

    /// The witness of the claim `a · b = c` with every carry solved from its column equation
    /// over the field, true or not: what a cheating prover would commit (tests use it; the
    /// carries of a false claim come out out of range or the last column fails).
    pub fn claiming(a: u64, b: u64, c: u64) -> Self {
        Self::from_parts(bytes(a), bytes(b), c)
    }

    /// The witness of given byte decompositions and claimed product, carries solved over the
    /// field.
    pub fn from_parts(a_bytes: [u32; 8], b_bytes: [u32; 8], c: u64) -> Self {
        let c_limbs: [u32; 4] = std::array::from_fn(|i| ((c >> (16 * i)) & 0xffff) as u32);
        let inv16 = M31::from_u32_unchecked(1 << 16).inverse();
        let mut carries = [0u32; MUL_CARRIES];
        let mut carry = M31::from_u32_unchecked(0);
        for (m, slot) in carries.iter_mut().enumerate() {
            let mut t = 0u64;
            for (k, w) in [(2 * m, 1u64), (2 * m + 1, 256)] {
                for i in k.saturating_sub(7)..=k.min(7) {
                    t += u64::from(a_bytes[i]) * u64::from(b_bytes[k - i]) * w;
                }
            }
            let t = crate::field::m31_reduce(t);
            let c_m = if m < 4 { c_limbs[m] } else { 0 };
            carry = (t + carry - M31::from_u32_unchecked(c_m)) * inv16;
            *slot = carry.0;
        }
        Self {
            a_bytes,
            b_bytes,
            carries,
            c: c_limbs,
        }
    }

    /// The cells in column order (bytes of `a`, bytes of `b`, carries).
    pub fn cells(&self) -> impl Iterator<Item = u32> + '_ {
        self.a_bytes
            .iter()
            .chain(&self.b_bytes)
            .chain(&self.carries)
            .copied()
    }

    /// The values consumed from `Range16`, in the order [`eval_mul_u63`] consumes them (a value
    /// of 2^16 or more means the claim has no valid trace).
    pub fn range_lookups(&self) -> Vec<u64> {
        let mut out: Vec<u64> = self
            .a_bytes
            .iter()
            .chain(&self.b_bytes)
            .map(|&x| u64::from(x) * 256)
            .collect();
        out.extend(self.c.iter().map(|&l| u64::from(l)));
        out.push(u64::from(self.c[3]) * 2);
        out.extend(
            self.carries
                .iter()
                .map(|&k| u64::from(k) << (16 - CARRY_BITS)),
        );
        out
    }
}
