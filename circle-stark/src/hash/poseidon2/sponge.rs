//! Sponge hashing and 2-to-1 compression over the Poseidon2-M31 permutation
//! (`specs/poseidon2.md` §3–§4).

use std::fmt;

use super::{permute, WIDTH};
use crate::field::{m31_from_canonical, M31};

/// Elements absorbed per permutation.
pub const RATE: usize = 8;
/// Elements in a digest (≈ 248 bits; 124-bit collision resistance).
pub const DIGEST_LEN: usize = 8;

/// Domain tags, placed in the first capacity element so that hashes made for different
/// purposes can never be confused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Domain {
    /// A leaf of a data tree: one encoded record (`specs/encoding.md`).
    RecordLeaf = 1,
    /// A free-form message of field elements.
    Message = 2,
    /// An instrument of a venue's list (`specs/batch-air.md`).
    Instrument = 3,
    /// A leaf of a venue's state tree.
    StateLeaf = 4,
    /// A row of a STARK commitment (the Poseidon2-M31 channel's lifted leaf,
    /// `specs/poseidon2.md` §8). Streamed, so the capacity holds no length.
    CommitmentRow = 5,
    /// A transcript update of the Poseidon2-M31 channel.
    Transcript = 6,
    /// A draw from the Poseidon2-M31 channel.
    TranscriptDraw = 7,
    /// The proof-of-work prefix of the Poseidon2-M31 channel.
    ProofOfWork = 8,
    /// The closure list of a batch-validity statement (`specs/recursion.md` §5).
    Closure = 9,
    /// A node's statement digest of a batch-validity statement: its public inputs
    /// (`specs/recursion.md` §7.8).
    Statement = 10,
    /// A node verifying key: preprocessed root, sizes and public wiring (§7.9).
    NodeKey = 11,
    /// An M node's output: the key and output of each child (§7.9).
    NodeOutput = 12,
    /// The final node's output: the key and output of the day tree's root node (§8).
    RootNode = 13,
    /// A day statement's digest, which the final node binds (`specs/day-proof.md` §6).
    DayStatement = 14,
}

/// A Poseidon2-M31 digest: eight canonical field elements.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Digest(pub [M31; DIGEST_LEN]);

/// A digest could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// Wrong byte or hex length.
    #[error("digest must be {expected} bytes, got {got}")]
    Length {
        /// 32 bytes (64 hex characters).
        expected: usize,
        /// What was given.
        got: usize,
    },
    /// A limb was ≥ p.
    #[error("digest element {index} is not canonical: {value:#010x} >= p")]
    NonCanonical {
        /// Which of the eight elements.
        index: usize,
        /// The raw value.
        value: u32,
    },
    /// Not lowercase hexadecimal (the one spelling poe writes).
    #[error("digest is not lowercase hexadecimal")]
    NotHex,
}

impl Digest {
    /// The all-zero digest, used for empty subtrees (`specs/poseidon2.md` §5).
    pub const ZERO: Digest = Digest([M31(0); DIGEST_LEN]);

    /// Canonical bytes: each element as 4 little-endian bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (chunk, x) in out.chunks_exact_mut(4).zip(&self.0) {
            chunk.copy_from_slice(&x.0.to_le_bytes());
        }
        out
    }

    /// Inverse of [`Digest::to_bytes`].
    ///
    /// # Errors
    /// [`DigestError::Length`] unless exactly 32 bytes; [`DigestError::NonCanonical`] for an
    /// element ≥ p.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DigestError> {
        if bytes.len() != 32 {
            return Err(DigestError::Length {
                expected: 32,
                got: bytes.len(),
            });
        }
        let mut out = [M31(0); DIGEST_LEN];
        for (index, chunk) in bytes.chunks_exact(4).enumerate() {
            let value = u32::from_le_bytes(chunk.try_into().expect("4 bytes"));
            out[index] =
                m31_from_canonical(value).ok_or(DigestError::NonCanonical { index, value })?;
        }
        Ok(Digest(out))
    }

    /// Lower-case hex of the canonical bytes.
    pub fn to_hex(&self) -> String {
        self.to_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses [`Digest::to_hex`] output.
    ///
    /// # Errors
    /// As [`Digest::from_bytes`], plus [`DigestError::NotHex`].
    pub fn from_hex(hex: &str) -> Result<Self, DigestError> {
        if hex.len() != 64 {
            return Err(DigestError::Length {
                expected: 32,
                got: hex.len() / 2,
            });
        }
        // One spelling per digest: `u8::from_str_radix` alone would also take upper case and
        // a leading `+`, so that one root had many hex forms on the wire and in archives.
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(DigestError::NotHex);
        }
        let bytes = (0..32)
            .map(|i| {
                u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| DigestError::NotHex)
            })
            .collect::<Result<Vec<u8>, _>>()?;
        Self::from_bytes(&bytes)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

// stwo's `Hash` trait asks for serde; the one spelling is the canonical hex, so that a
// deserialised digest is canonical too.
impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let hex = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Digest::from_hex(&hex).map_err(serde::de::Error::custom)
    }
}

/// The sponge's initial state for a message of `len` elements in `domain`.
pub(crate) fn sponge_init(domain: Domain, len: usize) -> [M31; WIDTH] {
    let mut state = [M31(0); WIDTH];
    state[RATE] = M31::from_u32_unchecked(domain as u32);
    state[RATE + 1] = M31::from_u32_unchecked(u32::try_from(len).expect("message shorter than p"));
    state
}

/// Number of permutations that absorbing `len` elements takes (at least one).
pub const fn n_absorptions(len: usize) -> usize {
    if len == 0 {
        1
    } else {
        len.div_ceil(RATE)
    }
}

/// Hashes a message of field elements.
///
/// The capacity starts as `[domain, len, 0, …]`; blocks of [`RATE`] elements are added to the
/// rate part, the last one zero-padded, with one permutation per block. Putting the length in
/// the capacity makes zero-padding unambiguous. The digest is the rate part of the final state.
///
/// # Panics
/// If `message.len() >= p` (never reached by anything poe encodes).
pub fn hash_elements(domain: Domain, message: &[M31]) -> Digest {
    let state = sponge_state(domain, message);
    Digest(std::array::from_fn(|i| state[i]))
}

/// The whole final state of [`hash_elements`] (its digest is the first [`DIGEST_LEN`]
/// elements): what a chain of sponge rows in an AIR ends at.
pub fn sponge_state(domain: Domain, message: &[M31]) -> [M31; WIDTH] {
    tagged_state(domain, 0, message)
}

/// [`hash_elements`] with a tag in the third capacity element (`[domain, len, tag, 0, …]`;
/// tag 0 is [`hash_elements`] itself): the channel's transcript puts its update kind there, so
/// that the message starts with the digest and every QM31, root and nonce it absorbs starts at a
/// multiple of four elements — one wire each in a node circuit (`recursion.md` §7.6).
pub fn hash_tagged(domain: Domain, tag: u32, message: &[M31]) -> Digest {
    let state = tagged_state(domain, tag, message);
    Digest(std::array::from_fn(|i| state[i]))
}

fn tagged_state(domain: Domain, tag: u32, message: &[M31]) -> [M31; WIDTH] {
    let mut state = sponge_init(domain, message.len());
    state[RATE + 2] = M31::from_u32_unchecked(tag);
    for block in 0..n_absorptions(message.len()) {
        let chunk = message.get(block * RATE..).unwrap_or(&[]);
        for (s, &m) in state.iter_mut().zip(chunk.iter().take(RATE)) {
            *s += m;
        }
        permute(&mut state);
    }
    state
}

/// 2-to-1 compression for Merkle nodes: `(P(l ‖ r) + (l ‖ r))[0..8]` (feed-forward, so that
/// the function is one-way even though the permutation is invertible).
pub fn compress(left: &Digest, right: &Digest) -> Digest {
    let mut state = [M31(0); WIDTH];
    state[..DIGEST_LEN].copy_from_slice(&left.0);
    state[DIGEST_LEN..].copy_from_slice(&right.0);
    permute(&mut state);
    Digest(std::array::from_fn(|i| state[i] + left.0[i]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(v: u32) -> M31 {
        M31::from_u32_unchecked(v)
    }

    #[test]
    fn digest_hex_has_one_spelling() {
        let d = hash_elements(Domain::Message, &[m(7)]);
        let hex = d.to_hex();
        assert_eq!(Digest::from_hex(&hex), Ok(d));
        let upper = hex.to_ascii_uppercase();
        assert_ne!(upper, hex, "the digest has letters");
        assert_eq!(Digest::from_hex(&upper), Err(DigestError::NotHex));
        // `from_str_radix` takes "+7" for 7: the byte "07" spelled "+7" is refused.
        let zero_seven = format!("07{}", &hex[2..]);
        let plus_seven = format!("+7{}", &hex[2..]);
        if let Ok(d) = Digest::from_hex(&zero_seven) {
            assert_eq!(d.to_hex(), zero_seven);
            assert_eq!(Digest::from_hex(&plus_seven), Err(DigestError::NotHex));
        }
    }

    #[test]
    fn zero_padding_is_unambiguous() {
        let a = hash_elements(Domain::Message, &[m(1), m(2)]);
        let b = hash_elements(Domain::Message, &[m(1), m(2), m(0)]);
        assert_ne!(a, b);
        assert_ne!(
            hash_elements(Domain::Message, &[]),
            hash_elements(Domain::Message, &[m(0)])
        );
    }

    #[test]
    fn domains_separate() {
        let msg = [m(7); 9];
        assert_ne!(
            hash_elements(Domain::Message, &msg),
            hash_elements(Domain::RecordLeaf, &msg)
        );
    }

    #[test]
    fn block_boundaries() {
        for len in [7, 8, 9, 16, 17] {
            let msg: Vec<M31> = (0..len).map(|i| m(i as u32 + 1)).collect();
            let mut longer = msg.clone();
            longer.push(m(1));
            assert_ne!(
                hash_elements(Domain::Message, &msg),
                hash_elements(Domain::Message, &longer)
            );
        }
    }

    #[test]
    fn compress_is_order_sensitive() {
        let a = hash_elements(Domain::Message, &[m(1)]);
        let b = hash_elements(Domain::Message, &[m(2)]);
        assert_ne!(compress(&a, &b), compress(&b, &a));
    }

    #[test]
    fn digest_bytes_round_trip_and_reject_non_canonical() {
        let d = hash_elements(Domain::Message, &[m(3)]);
        assert_eq!(Digest::from_bytes(&d.to_bytes()), Ok(d));
        assert_eq!(Digest::from_hex(&d.to_hex()), Ok(d));
        let mut bytes = d.to_bytes();
        bytes[4..8].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        assert_eq!(
            Digest::from_bytes(&bytes),
            Err(DigestError::NonCanonical {
                index: 1,
                value: 0x7fff_ffff
            })
        );
        assert_eq!(
            Digest::from_bytes(&bytes[..31]),
            Err(DigestError::Length {
                expected: 32,
                got: 31
            })
        );
    }
}
