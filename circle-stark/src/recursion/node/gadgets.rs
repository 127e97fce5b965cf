//! Gadgets a verifier circuit is made of, over the node ops (`specs/recursion.md` §7.5):
//! Poseidon2-M31 compression (a digest is two wires: eight M31), booleans and selection, bit
//! decomposition, and Merkle authentication paths.

use stwo::core::fields::qm31::SecureField;

use super::program::{Builder, Form, Wire};
use crate::field::M31;

/// A Poseidon2-M31 digest as wires: elements `0..4` and `4..8`, four per wire.
pub type DigestWires = [Wire; 2];

/// A native digest as the two wire values [`DigestWires`] lays out.
pub fn digest_values(d: &crate::hash::poseidon2::Digest) -> [SecureField; 2] {
    std::array::from_fn(|k| SecureField::from_m31_array(std::array::from_fn(|j| d.0[4 * k + j])))
}

impl Builder {
    /// `compress(left, right) = (P(left ‖ right) + (left ‖ right))[0..8]`
    /// (`poseidon2.md`'s Merkle node compression): one permutation, two additions.
    pub fn compress(&mut self, left: DigestWires, right: DigestWires) -> DigestWires {
        let out = self.permute([left[0], left[1], right[0], right[1]]);
        [self.add(out[0], left[0]), self.add(out[1], left[1])]
    }

    /// A base-field wire as its 16-bit limbs `(low, high)` (31 bits, one decomposition):
    /// how the channel absorbs a 32-bit word.
    pub fn limbs16(&mut self, v: Wire) -> [Wire; 2] {
        let bits = self.bits(v, 31);
        [
            self.weighted_sum(&bits[..16]),
            self.weighted_sum(&bits[16..]),
        ]
    }

    /// `Σ 2^i · bits[i]` (one row per bit; at most 31 bits).
    fn weighted_sum(&mut self, bits: &[Wire]) -> Wire {
        let mut acc = Wire::ZERO;
        for (i, &bit) in bits.iter().enumerate() {
            acc = self.compute(
                bit,
                Wire::ZERO,
                acc,
                Form {
                    la: M31::from(1u32 << i),
                    ld: M31::from(1u32),
                    ..Form::default()
                },
            );
        }
        acc
    }

    /// Constrains two digests equal.
    pub fn assert_digest_eq(&mut self, a: DigestWires, b: DigestWires) {
        self.assert_eq(a[0], b[0]);
        self.assert_eq(a[1], b[1]);
    }

    /// `n` boolean wires, least significant first, constrained to sum (with weights `2^i`) to
    /// `value`, a base-field wire: the prover computes them ([`Builder::bit_hint`]). For
    /// `n = 31` the all-ones decomposition (`2^31 − 1 = p ≡ 0`) is also refused, so that each
    /// M31 value has one decomposition.
    ///
    /// # Panics
    /// If `n > 31`.
    pub fn bits(&mut self, value: Wire, n: usize) -> Vec<Wire> {
        assert!(n <= 31, "an M31 value has 31 bits");
        let bits: Vec<Wire> = (0..n).map(|i| self.bit_hint(value, i as u8)).collect();
        for &b in &bits {
            self.assert_bit(b);
        }
        let sum = self.weighted_sum(&bits);
        self.assert_eq(sum, value);
        if n == 31 {
            let mut all = bits[0];
            for &b in &bits[1..] {
                all = self.mul(all, b);
            }
            self.assert_eq(all, Wire::ZERO);
        }
        bits
    }

    /// The root of a Merkle tree of [`Builder::compress`] nodes from `leaf` up its
    /// authentication path: per level the sibling and the bit saying the current node is the
    /// right child. The bits must be constrained boolean by the caller (query positions come
    /// from [`Builder::bits`], which does).
    pub fn merkle_root(&mut self, leaf: DigestWires, path: &[(DigestWires, Wire)]) -> DigestWires {
        let mut node = leaf;
        for &(sibling, is_right) in path {
            let left: DigestWires =
                std::array::from_fn(|k| self.select(is_right, sibling[k], node[k]));
            // The other child is what the pair holds besides `left`.
            let right: DigestWires = std::array::from_fn(|k| {
                self.linear(&[(sibling[k], 1), (node[k], 1), (left[k], -1)])
            });
            node = self.compress(left, right);
        }
        node
    }
}
