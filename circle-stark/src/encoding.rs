//! Canonical encoding of records as M31 limbs (`specs/encoding.md`).
//!
//! Every integer is split into 16-bit limbs, little-endian, so no limb can reach p and each is
//! range-checkable against one 2^16 table. A record starts with its kind tag and has a fixed
//! length per kind, so records of different kinds never share an encoding.

use crate::field::M31;

/// Bits per integer limb.
pub const LIMB_BITS: u32 = 16;
const LIMB_MASK: u32 = (1 << LIMB_BITS) - 1;

/// A record could not be decoded from limbs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodingError {
    /// Limb count differs from the kind's fixed length.
    #[error("record of kind {kind} must have {expected} limbs, got {got}")]
    Length {
        /// Record kind tag.
        kind: u32,
        /// Fixed length of that kind.
        expected: usize,
        /// Limbs given.
        got: usize,
    },
    /// A limb outside its range.
    #[error("limb {index} is {value}, above its maximum {max}")]
    LimbRange {
        /// Position in the record.
        index: usize,
        /// The value found.
        value: u32,
        /// Largest allowed value.
        max: u32,
    },
    /// An integer field too large for its limbs.
    #[error("field {field} is {value}, above its maximum {max}")]
    FieldRange {
        /// Field position.
        field: usize,
        /// The value.
        value: u64,
        /// Largest allowed.
        max: u64,
    },
    /// The first limb names another record kind.
    #[error("record kind {got} where {expected} was expected")]
    Kind {
        /// Kind expected by the decoder.
        expected: u32,
        /// Kind tag found.
        got: u32,
    },
}

/// Splits a `u64` into four 16-bit limbs, least significant first.
pub fn u64_limbs(value: u64) -> [M31; 4] {
    std::array::from_fn(|i| M31::from_u32_unchecked(((value >> (16 * i)) as u32) & LIMB_MASK))
}

/// Splits a `u32` into two 16-bit limbs, least significant first.
pub fn u32_limbs(value: u32) -> [M31; 2] {
    [
        M31::from_u32_unchecked(value & LIMB_MASK),
        M31::from_u32_unchecked(value >> 16),
    ]
}

pub(crate) fn check_limb(limbs: &[M31], index: usize, max: u32) -> Result<u32, EncodingError> {
    let value = limbs[index].0;
    if value > max {
        return Err(EncodingError::LimbRange { index, value, max });
    }
    Ok(value)
}

/// Reads four 16-bit limbs starting at `at`.
///
/// # Errors
/// [`EncodingError::LimbRange`] if a limb is ≥ 2^16.
pub fn read_u64(limbs: &[M31], at: usize) -> Result<u64, EncodingError> {
    (0..4).try_fold(0u64, |acc, i| {
        Ok(acc | (u64::from(check_limb(limbs, at + i, LIMB_MASK)?) << (16 * i)))
    })
}

/// Reads two 16-bit limbs starting at `at`.
///
/// # Errors
/// [`EncodingError::LimbRange`] if a limb is ≥ 2^16.
pub fn read_u32(limbs: &[M31], at: usize) -> Result<u32, EncodingError> {
    Ok(check_limb(limbs, at, LIMB_MASK)? | (check_limb(limbs, at + 1, LIMB_MASK)? << 16))
}

/// A record type with a fixed-length canonical encoding.
pub trait Record: Sized {
    /// The kind tag in limb 0.
    const KIND: u32;
    /// Fixed number of limbs, tag included.
    const LIMBS: usize;
    /// The canonical limbs.
    fn encode(&self) -> Vec<M31>;
    /// Parses canonical limbs.
    ///
    /// # Errors
    /// Any [`EncodingError`] for limbs that no record encodes to.
    fn decode(limbs: &[M31]) -> Result<Self, EncodingError>;
}

/// Checks the tag and the length shared by every record kind.
pub(crate) fn check_header<R: Record>(limbs: &[M31]) -> Result<(), EncodingError> {
    if limbs.len() != R::LIMBS {
        return Err(EncodingError::Length {
            kind: R::KIND,
            expected: R::LIMBS,
            got: limbs.len(),
        });
    }
    if limbs[0].0 != R::KIND {
        return Err(EncodingError::Kind {
            expected: R::KIND,
            got: limbs[0].0,
        });
    }
    Ok(())
}

/// Direction of a cash movement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Cash enters the venue.
    Deposit = 0,
    /// Cash leaves the venue.
    Withdrawal = 1,
}

/// poe's first record type: cash entering or leaving an account (`specs/encoding.md` §3).
/// Amounts are in 10^-6 quote units; timestamps in µs since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CashMovement {
    /// Deposit or withdrawal.
    pub direction: Direction,
    /// Venue account id.
    pub account: u32,
    /// Amount, micro-units of the quote currency.
    pub amount: u64,
    /// Microseconds since 1970-01-01T00:00:00Z.
    pub timestamp_us: u64,
}

impl Record for CashMovement {
    const KIND: u32 = 1;
    const LIMBS: usize = 12;

    fn encode(&self) -> Vec<M31> {
        let mut out = Vec::with_capacity(Self::LIMBS);
        out.push(M31::from_u32_unchecked(Self::KIND));
        out.push(M31::from_u32_unchecked(self.direction as u32));
        out.extend(u32_limbs(self.account));
        out.extend(u64_limbs(self.amount));
        out.extend(u64_limbs(self.timestamp_us));
        out
    }

    fn decode(limbs: &[M31]) -> Result<Self, EncodingError> {
        check_header::<Self>(limbs)?;
        let direction = match check_limb(limbs, 1, 1)? {
            0 => Direction::Deposit,
            _ => Direction::Withdrawal,
        };
        Ok(Self {
            direction,
            account: read_u32(limbs, 2)?,
            amount: read_u64(limbs, 4)?,
            timestamp_us: read_u64(limbs, 8)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CashMovement {
        CashMovement {
            direction: Direction::Withdrawal,
            account: 0xdead_beef,
            amount: u64::MAX,
            timestamp_us: 1_795_000_000_000_000,
        }
    }

    #[test]
    fn round_trip_including_extremes() {
        let r = sample();
        let limbs = r.encode();
        assert_eq!(limbs.len(), CashMovement::LIMBS);
        assert!(limbs.iter().all(|l| l.0 <= 0xffff));
        assert_eq!(CashMovement::decode(&limbs), Ok(r));
    }

    #[test]
    fn limb_above_16_bits_is_rejected() {
        let mut limbs = sample().encode();
        limbs[5] = M31::from_u32_unchecked(1 << 16);
        assert_eq!(
            CashMovement::decode(&limbs),
            Err(EncodingError::LimbRange {
                index: 5,
                value: 1 << 16,
                max: 0xffff
            })
        );
    }

    #[test]
    fn wrong_kind_length_and_flag_are_rejected() {
        let mut limbs = sample().encode();
        limbs[0] = M31::from_u32_unchecked(2);
        assert_eq!(
            CashMovement::decode(&limbs),
            Err(EncodingError::Kind {
                expected: 1,
                got: 2
            })
        );
        let limbs = sample().encode();
        assert!(matches!(
            CashMovement::decode(&limbs[..11]),
            Err(EncodingError::Length { got: 11, .. })
        ));
        let mut limbs = sample().encode();
        limbs[1] = M31::from_u32_unchecked(2);
        assert_eq!(
            CashMovement::decode(&limbs),
            Err(EncodingError::LimbRange {
                index: 1,
                value: 2,
                max: 1
            })
        );
    }
}
