//! The Poseidon2-M31 channel (`specs/poseidon2.md` §8) replayed in a node circuit
//! (`specs/recursion.md` §7.6): the sponges work on M31 elements, the circuit on QM31 wires, so
//! elements are taken out of wires and put back with [`Builder::pointwise_mul`] and the basis
//! `1, i, u, i·u`; the transcript's messages are lane-aligned, so digests, QM31 values and
//! nonces go in whole.

use num_traits::One;
use stwo::core::fields::qm31::SecureField;

use super::gadgets::DigestWires;
use super::program::{Builder, Wire};
use crate::field::M31;
use crate::hash::channel::MixKind;
use crate::hash::poseidon2::sponge::n_absorptions;
use crate::hash::poseidon2::Domain;

/// The basis element `e_j` (coordinate `j` set to 1).
fn basis(j: usize) -> SecureField {
    SecureField::from_m31_array(std::array::from_fn(|k| M31::from(u32::from(k == j))))
}

impl Builder {
    /// Coordinate `j` of `x`, as a base-field wire: `(x ⊙ e_j) · e_j⁻¹`.
    pub fn coordinate(&mut self, x: Wire, j: usize) -> Wire {
        let mask = self.constant(basis(j));
        let masked = self.pointwise_mul(x, mask);
        if j == 0 {
            return masked;
        }
        let inverse = self.constant(SecureField::one() / basis(j));
        self.mul(masked, inverse)
    }

    /// The four coordinates of `x` as base-field wires.
    pub fn coordinates(&mut self, x: Wire) -> [Wire; 4] {
        std::array::from_fn(|j| self.coordinate(x, j))
    }

    /// `Σ c_j · e_j` for base-field wires `c`: the wire whose coordinates they are.
    pub fn from_coordinates(&mut self, c: [Wire; 4]) -> Wire {
        self.coordinates_plus(c, None)
    }

    /// `Σ c_j · e_j + add` (one row per coordinate).
    fn coordinates_plus(&mut self, c: [Wire; 4], add: Option<Wire>) -> Wire {
        let mut acc = match add {
            Some(w) => self.add(w, c[0]),
            None => c[0],
        };
        for (j, &cj) in c.iter().enumerate().skip(1) {
            let e = self.constant(basis(j));
            acc = self.mul_add(cj, e, acc);
        }
        acc
    }

    /// Constrains `x` to the base field (coordinates 1..4 zero).
    pub fn assert_base(&mut self, x: Wire) {
        let mask = self.constant(SecureField::from_m31_array([0, 1, 1, 1].map(M31::from)));
        let high = self.pointwise_mul(x, mask);
        self.assert_eq(high, Wire::ZERO);
    }

    /// Base-field wires packed four to a lane (the last lane zero-padded).
    pub fn pack_lanes(&mut self, elements: &[Wire]) -> Vec<Wire> {
        elements
            .chunks(4)
            .map(|c| {
                self.from_coordinates(std::array::from_fn(|j| {
                    c.get(j).copied().unwrap_or(Wire::ZERO)
                }))
            })
            .collect()
    }

    /// `hash_elements(domain, message)` over base-field wires: the sponge of
    /// `poseidon2.md` §3, capacity `[domain, len, 0, …]`, rate 8, zero-padded.
    pub fn hash_elements(&mut self, domain: Domain, message: &[Wire]) -> DigestWires {
        let lanes = self.pack_lanes(message);
        self.hash_lanes(domain, 0, &lanes, message.len())
    }

    /// `hash_tagged(domain, tag, message)` over a message given as lanes (four elements per
    /// wire, in coordinate order) of `len` elements: what the transcript absorbs, since every
    /// part of its messages starts at a multiple of four. Coordinates of the last lane beyond
    /// `len` must be zero (the caller's lanes are exact).
    pub fn hash_lanes(
        &mut self,
        domain: Domain,
        tag: u32,
        lanes: &[Wire],
        len: usize,
    ) -> DigestWires {
        debug_assert_eq!(lanes.len(), len.div_ceil(4), "lanes of {len} elements");
        let capacity = SecureField::from_m31_array([
            M31::from(domain as u32),
            M31::from(len as u32),
            M31::from(tag),
            M31::from(0u32),
        ]);
        self.sponge_lanes(capacity, lanes, n_absorptions(len))
    }

    /// The Poseidon2-M31 channel's lifted leaf over a row of base-field wires
    /// (`poseidon2.md` §8): capacity `[CommitmentRow, 0, …]` (no length: the verifier fixes
    /// the row's length), one permutation per started block of eight, the zero digest for an
    /// empty row.
    pub fn leaf_hash(&mut self, row: &[Wire]) -> DigestWires {
        let lanes = self.pack_lanes(row);
        self.leaf_hash_lanes(&lanes)
    }

    /// [`Builder::leaf_hash`] of a row given as lanes (four values per wire, the last lane
    /// zero-padded): an opened row is witnessed this way, one wire per four values.
    pub fn leaf_hash_lanes(&mut self, lanes: &[Wire]) -> DigestWires {
        let capacity = SecureField::from(M31::from(Domain::CommitmentRow as u32));
        self.sponge_lanes(capacity, lanes, lanes.len().div_ceil(2))
    }

    /// A rate-8 sponge: `blocks` blocks of two lanes (missing lanes are zero) added to the
    /// rate, one permutation each, from the state `[0, 0, capacity, 0]`; the digest is the
    /// rate.
    fn sponge_lanes(
        &mut self,
        capacity: SecureField,
        lanes: &[Wire],
        blocks: usize,
    ) -> DigestWires {
        let capacity = self.constant(capacity);
        let mut state = [Wire::ZERO, Wire::ZERO, capacity, Wire::ZERO];
        for block in 0..blocks {
            for (half, slot) in state.iter_mut().take(2).enumerate() {
                if let Some(&lane) = lanes.get(2 * block + half) {
                    *slot = if *slot == Wire::ZERO {
                        lane
                    } else {
                        self.add(*slot, lane)
                    };
                }
            }
            state = self.permute(state);
        }
        [state[0], state[1]]
    }
}

/// The verifier's transcript in the circuit: the digest as wires and the draw counter (known
/// when the circuit is built: the verifier's sequence of mixes and draws is fixed by the AIR).
#[derive(Debug, Clone, Copy)]
pub struct TranscriptWires {
    /// The current digest.
    pub digest: DigestWires,
    /// Draws since the last mix.
    pub n_draws: u32,
}

impl TranscriptWires {
    /// The transcript at a digest known when the circuit is built (a constant: the preamble of
    /// a fixed AIR, channel and config), no draws since its last mix.
    pub fn at(b: &mut Builder, digest: &crate::hash::poseidon2::Digest) -> Self {
        Self {
            digest: super::gadgets::digest_values(digest).map(|v| b.constant(v)),
            n_draws: 0,
        }
    }

    /// `mix_u32s` of base-field wires (each below 2^31, as poe's public inputs): their 16-bit
    /// limbs, range-checked, four to a lane.
    pub fn mix_word_values(&mut self, b: &mut Builder, words: &[Wire]) {
        let limbs: Vec<Wire> = words.iter().flat_map(|&v| b.limbs16(v)).collect();
        let lanes = b.pack_lanes(&limbs);
        self.mix_word_limbs(b, &lanes, words.len());
    }

    /// The empty transcript (zero digest), as `Poseidon2Channel::default()`.
    pub fn new() -> Self {
        Self {
            digest: [Wire::ZERO, Wire::ZERO],
            n_draws: 0,
        }
    }

    /// `D ← hash_tagged(Transcript, kind, D ‖ data)` with `data` as lanes of `len` elements.
    fn update(&mut self, b: &mut Builder, kind: MixKind, data: &[Wire], len: usize) {
        let mut lanes = self.digest.to_vec();
        lanes.extend_from_slice(data);
        self.digest = b.hash_lanes(Domain::Transcript, kind as u32, &lanes, 8 + len);
        self.n_draws = 0;
    }

    /// `mix_root`: a Merkle root (a digest's wires).
    pub fn mix_root(&mut self, b: &mut Builder, root: DigestWires) {
        self.update(b, MixKind::Root, &root, 8);
    }

    /// `mix_felts`: QM31 values, four coordinates each — one lane per value.
    pub fn mix_felts(&mut self, b: &mut Builder, felts: &[Wire]) {
        self.update(b, MixKind::Felts, felts, 4 * felts.len());
    }

    /// `mix_u32s` of words given as their 16-bit limbs (low first), four per lane, `2·n`
    /// limbs for `n` words (the caller range-checks them).
    pub fn mix_word_limbs(&mut self, b: &mut Builder, lanes: &[Wire], n_words: usize) {
        self.update(b, MixKind::Words, lanes, 2 * n_words);
    }

    /// `mix_u64`: a lane holding the value's four 16-bit limbs, low first (the caller
    /// range-checks them).
    pub fn mix_u64_limbs(&mut self, b: &mut Builder, limbs: Wire) {
        self.update(b, MixKind::Words, &[limbs], 4);
    }

    /// `draw_base_felts`: one permutation of `digest ‖ [TranscriptDraw, n_draws, 0, …]`; the
    /// eight elements are the coordinates of the two returned wires.
    pub fn draw(&mut self, b: &mut Builder) -> [Wire; 2] {
        let capacity = b.constant(SecureField::from_m31_array([
            M31::from(Domain::TranscriptDraw as u32),
            M31::from(self.n_draws),
            M31::from(0u32),
            M31::from(0u32),
        ]));
        let out = b.permute([self.digest[0], self.digest[1], capacity, Wire::ZERO]);
        self.n_draws += 1;
        [out[0], out[1]]
    }

    /// stwo's `draw_queries`: per query the low `log_domain_size` bits (least significant
    /// first) of the next drawn element, eight per draw; each element decomposed in full
    /// (31 bits, one decomposition) before its low bits are taken.
    pub fn draw_queries(
        &mut self,
        b: &mut Builder,
        log_domain_size: u32,
        n_queries: usize,
    ) -> Vec<Vec<Wire>> {
        let mut out = Vec::with_capacity(n_queries);
        while out.len() < n_queries {
            let draw = self.draw(b);
            for w in draw {
                for element in b.coordinates(w) {
                    if out.len() < n_queries {
                        let bits = b.bits(element, 31);
                        out.push(bits[..log_domain_size as usize].to_vec());
                    }
                }
            }
        }
        out
    }

    /// `draw_secure_felt`: the first four elements of a draw, which are one wire.
    pub fn draw_secure_felt(&mut self, b: &mut Builder) -> Wire {
        self.draw(b)[0]
    }
}

impl Default for TranscriptWires {
    fn default() -> Self {
        Self::new()
    }
}
