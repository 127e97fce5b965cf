//! Venue identifiers as Starknet-style short strings (`specs/commitments.md` §1).

use std::fmt;

/// At most 31 printable ASCII bytes, so that it fits one felt252 or one BN254 scalar.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShortString(String);

/// Why a string is not a short string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShortStringError {
    /// Empty or over 31 bytes.
    #[error("must be 1 to 31 bytes, got {got}")]
    Length {
        /// Bytes given.
        got: usize,
    },
    /// A byte outside printable ASCII (0x20..=0x7e).
    #[error("byte {index} ({byte:#04x}) is not printable ASCII")]
    Byte {
        /// Position.
        index: usize,
        /// The byte.
        byte: u8,
    },
}

impl ShortString {
    /// Maximum length in bytes.
    pub const MAX_LEN: usize = 31;

    /// The string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 32-byte big-endian integer of the bytes (a Starknet short string), i.e. the bytes
    /// right-aligned after leading zeros.
    pub fn to_be_bytes32(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out[32 - self.0.len()..].copy_from_slice(self.0.as_bytes());
        out
    }

    /// The bytes left-aligned and zero-padded on the right, as Solidity's `bytes32` of a string.
    pub fn to_bytes32_left(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out[..self.0.len()].copy_from_slice(self.0.as_bytes());
        out
    }
}

impl TryFrom<&str> for ShortString {
    type Error = ShortStringError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(ShortStringError::Length { got: s.len() });
        }
        if let Some((index, &byte)) = s
            .as_bytes()
            .iter()
            .enumerate()
            .find(|(_, b)| !(0x20..=0x7e).contains(*b))
        {
            return Err(ShortStringError::Byte { index, byte });
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for ShortString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_encode() {
        let s = ShortString::try_from("T-1").unwrap();
        let be = s.to_be_bytes32();
        assert_eq!(&be[29..], b"T-1");
        assert!(be[..29].iter().all(|&b| b == 0));
        assert_eq!(&s.to_bytes32_left()[..3], b"T-1");
        assert_eq!(
            ShortString::try_from(""),
            Err(ShortStringError::Length { got: 0 })
        );
        assert_eq!(
            ShortString::try_from("x".repeat(32).as_str()),
            Err(ShortStringError::Length { got: 32 })
        );
        assert_eq!(
            ShortString::try_from("a\u{7f}"),
            Err(ShortStringError::Byte {
                index: 1,
                byte: 0x7f
            })
        );
    }
}
