//! Rollup authentication with Stark-curve ECDSA (`specs/commitments.md` §3).

use sha3::{Digest as _, Keccak256};
use starknet_crypto::Felt;

/// Why a signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not a 0x-prefixed hex field element below the Stark prime.
    #[error("{field} is not a canonical felt252 hex string")]
    Malformed {
        /// Which input.
        field: &'static str,
    },
    /// `r` or `s` out of range, or the message hash too large.
    #[error("signature is out of range")]
    OutOfRange,
    /// Well-formed but not made by the key.
    #[error("signature does not verify under the rollup's key")]
    Invalid,
}

/// Starknet's `starknet_keccak`: Keccak-256 truncated to its low 250 bits, so that the result
/// is a valid message hash for Stark ECDSA.
pub fn starknet_keccak(bytes: &[u8]) -> Felt {
    let mut digest: [u8; 32] = Keccak256::digest(bytes).into();
    digest[0] &= 0x03;
    Felt::from_bytes_be(&digest)
}

/// Parses a `0x`-prefixed hex felt, rejecting values ≥ the Stark prime (no silent reduction).
///
/// # Errors
/// [`AuthError::Malformed`] naming `field`.
pub fn parse_felt(field: &'static str, text: &str) -> Result<Felt, AuthError> {
    let hex = text
        .strip_prefix("0x")
        .ok_or(AuthError::Malformed { field })?;
    if hex.is_empty() || hex.len() > 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AuthError::Malformed { field });
    }
    let bytes = hex::decode(format!("{hex:0>64}")).map_err(|_| AuthError::Malformed { field })?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| AuthError::Malformed { field })?;
    let felt = Felt::from_bytes_be(&bytes);
    // `from_bytes_be` reduces modulo p; a value that changed was not canonical.
    if felt.to_bytes_be() != bytes {
        return Err(AuthError::Malformed { field });
    }
    Ok(felt)
}

/// The order `n` of the Stark curve's group.
pub const EC_ORDER: Felt =
    Felt::from_hex_unchecked("0x0800000000000010ffffffffffffffffb781126dcae7b2321e66a241adc64d2f");

/// The low-s form of a signature's `s`: `min(s, n − s)`. ECDSA accepts both `(r, s)` and
/// `(r, n − s)`; naming a batch by the low form makes the two encodings one batch, so that a
/// third party who re-encodes a batch in flight cannot take its seq from the genuine retry.
pub fn low_s(s: &Felt) -> Felt {
    let neg = EC_ORDER - *s;
    if neg.to_bytes_be() < s.to_bytes_be() {
        neg
    } else {
        *s
    }
}

/// Verifies `(r, s)` on `message` under `public_key` (the x-coordinate, as Starknet accounts use).
///
/// # Errors
/// [`AuthError::OutOfRange`] or [`AuthError::Invalid`].
pub fn verify(public_key: &Felt, message: &Felt, r: &Felt, s: &Felt) -> Result<(), AuthError> {
    match starknet_crypto::verify(public_key, message, r, s) {
        Ok(true) => Ok(()),
        Ok(false) => Err(AuthError::Invalid),
        Err(_) => Err(AuthError::OutOfRange),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_canonical_and_malformed_felts_are_refused() {
        assert!(parse_felt("r", "0x1").is_ok());
        assert_eq!(
            parse_felt("r", "1"),
            Err(AuthError::Malformed { field: "r" })
        );
        assert_eq!(
            parse_felt("r", "0x"),
            Err(AuthError::Malformed { field: "r" })
        );
        assert_eq!(
            parse_felt("r", "0xzz"),
            Err(AuthError::Malformed { field: "r" })
        );
        // p itself = 2^251 + 17·2^192 + 1.
        let p = "0x0800000000000011000000000000000000000000000000000000000000000001";
        assert_eq!(parse_felt("r", p), Err(AuthError::Malformed { field: "r" }));
    }

    #[test]
    fn high_s_twin_verifies_and_has_the_same_low_s() {
        // The malleability the batch id must not see: (r, n − s) is a second valid signature.
        let key = Felt::from(0x1234_5678u64);
        let public = starknet_crypto::get_public_key(&key);
        let msg = starknet_keccak(b"batch");
        let sig = starknet_crypto::sign(&key, &msg, &Felt::from(99u64)).unwrap();
        let twin = EC_ORDER - sig.s;
        assert_eq!(verify(&public, &msg, &sig.r, &sig.s), Ok(()));
        assert_eq!(verify(&public, &msg, &sig.r, &twin), Ok(()));
        assert_ne!(sig.s, twin);
        assert_eq!(low_s(&sig.s), low_s(&twin));
        assert!(low_s(&twin).to_bytes_be() <= (EC_ORDER - low_s(&twin)).to_bytes_be());
    }

    #[test]
    fn starknet_keccak_fits_250_bits() {
        let h = starknet_keccak(b"poe");
        assert!(h.to_bytes_be()[0] <= 0x03);
    }
}
