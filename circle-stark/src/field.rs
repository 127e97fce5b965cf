//! Mersenne-31 field helpers with canonical encodings (`specs/encoding.md` §1).
//!
//! stwo's [`M31`] deserialises any `u32`, including values ≥ p; everything that enters poe
//! from bytes goes through [`m31_from_canonical`] instead.

use stwo::core::fields::cm31::CM31;
pub use stwo::core::fields::m31::{BaseField, M31, P};
pub use stwo::core::fields::qm31::{SecureField, QM31};

/// The modulus p = 2^31 − 1.
pub const MODULUS: u32 = P;

/// Builds an element from a `u32` that must already be reduced (`< p`).
///
/// Returns `None` for `p ..= u32::MAX`, which have a second, non-canonical representation.
#[inline]
pub fn m31_from_canonical(value: u32) -> Option<M31> {
    (value < MODULUS).then(|| M31::from_u32_unchecked(value))
}

/// Reduces a `u64` modulo p.
#[inline]
pub fn m31_reduce(value: u64) -> M31 {
    M31::reduce(value)
}

/// The four base-field coordinates of a secure-field element, in stwo's order.
#[inline]
pub fn qm31_to_array(value: QM31) -> [M31; 4] {
    let QM31(CM31(a, b), CM31(c, d)) = value;
    [a, b, c, d]
}

/// Inverse of [`qm31_to_array`].
#[inline]
pub fn qm31_from_array(coords: [M31; 4]) -> QM31 {
    QM31::from_m31_array(coords)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_rejects_p_and_above() {
        assert_eq!(m31_from_canonical(0), Some(M31::from_u32_unchecked(0)));
        assert_eq!(
            m31_from_canonical(MODULUS - 1).map(|m| m.0),
            Some(MODULUS - 1)
        );
        assert_eq!(m31_from_canonical(MODULUS), None);
        assert_eq!(m31_from_canonical(u32::MAX), None);
    }

    #[test]
    fn qm31_array_round_trip() {
        let x = QM31::from_u32_unchecked(1, 2, 3, 4);
        assert_eq!(qm31_from_array(qm31_to_array(x)), x);
    }
}
