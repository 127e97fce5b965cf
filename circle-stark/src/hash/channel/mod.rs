//! The Poseidon2-M31 Merkle channel for stwo (`specs/poseidon2.md` §8): commitments, the
//! Fiat–Shamir transcript and the proof of work all made of one permutation, so that a STARK
//! over M31 can re-run a poe verifier gate for gate. (Blake2s, stwo's default, costs ~100× more
//! inside an M31 AIR.)
//!
//! - lifted leaf: a streamed rate-8 sponge over the row, in stwo's column order, capacity
//!   `[CommitmentRow, 0, …]`;
//! - node: [`compress`];
//! - transcript: `digest ← H(Transcript, digest ‖ data)`, the kind in the capacity; draws are one permutation of
//!   `digest ‖ [TranscriptDraw, n_draws, 0, …]`;
//! - proof of work: the low `n` bits of `compress(H(ProofOfWork, digest ‖ [n]), nonce)[0]`.
//!
//! This half builds without the prover; the SIMD commitment and grinding are in `simd`.

use stwo::core::channel::{Channel, MerkleChannel};
use stwo::core::fields::m31::BaseField;
use stwo::core::fields::qm31::SecureField;
use stwo::core::vcs::hash::Hash;
use stwo::core::vcs_lifted::merkle_hasher::MerkleHasherLifted;

use super::poseidon2::sponge::hash_tagged;
use super::poseidon2::{compress, hash_elements, permute, Digest, Domain, DIGEST_LEN, RATE, WIDTH};
use crate::field::{qm31_from_array, qm31_to_array, M31};

#[cfg(feature = "prover")]
mod simd;
#[cfg(all(test, feature = "prover"))]
mod tests;

impl Hash for Digest {}

/// What a transcript update absorbs; the tag in its sponge's capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum MixKind {
    /// 32-bit words, each as two 16-bit limbs (low first).
    Words = 1,
    /// QM31 elements, four coordinates each.
    Felts = 2,
    /// A Merkle root (eight elements).
    Root = 3,
}

/// The sponge state a lifted leaf starts from.
fn leaf_init() -> [M31; WIDTH] {
    let mut state = [M31(0); WIDTH];
    state[RATE] = M31::from_u32_unchecked(Domain::CommitmentRow as u32);
    state
}

/// stwo's lifted-leaf hasher over Poseidon2-M31: values are added into the rate one at a time
/// and the state permuted after every eighth, so that how stwo chunks a row never matters. The
/// row length is not absorbed: the verifier fixes it from the AIR's column sizes.
#[derive(Debug, Clone)]
pub struct Poseidon2MerkleHasher {
    state: [M31; WIDTH],
    /// Elements added to the rate since the last permutation (0..RATE).
    pos: usize,
}

impl Default for Poseidon2MerkleHasher {
    fn default() -> Self {
        Self {
            state: leaf_init(),
            pos: 0,
        }
    }
}

impl MerkleHasherLifted for Poseidon2MerkleHasher {
    type Hash = Digest;

    fn hash_children((left, right): (Digest, Digest)) -> Digest {
        compress(&left, &right)
    }

    fn update_leaf(&mut self, column_values: &[BaseField]) {
        for &v in column_values {
            self.state[self.pos] += v;
            self.pos += 1;
            if self.pos == RATE {
                permute(&mut self.state);
                self.pos = 0;
            }
        }
    }

    fn finalize(mut self) -> Digest {
        // An empty row stays the zero digest, as stwo's empty commitment expects; a partial
        // block is zero-padded, which is the permutation of the state as it stands.
        if self.pos > 0 {
            permute(&mut self.state);
        }
        Digest(std::array::from_fn(|i| self.state[i]))
    }
}

/// The Fiat–Shamir channel over Poseidon2-M31.
#[derive(Debug, Clone, Default)]
pub struct Poseidon2Channel {
    digest: Digest,
    n_draws: u32,
}

impl Poseidon2Channel {
    /// The transcript state.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    fn update(&mut self, kind: MixKind, data: impl IntoIterator<Item = M31>) {
        let message: Vec<M31> = self.digest.0.into_iter().chain(data).collect();
        self.digest = hash_tagged(Domain::Transcript, kind as u32, &message);
        self.n_draws = 0;
    }

    /// Absorbs a Merkle root (`MerkleChannel::mix_root`).
    pub fn mix_root(&mut self, root: Digest) {
        self.update(MixKind::Root, root.0);
    }

    /// Eight fresh field elements: one permutation of the digest with the draw counter in the
    /// capacity. Permutation outputs are field elements already, so nothing is reduced or biased.
    pub fn draw_base_felts(&mut self) -> [M31; DIGEST_LEN] {
        let mut state = [M31(0); WIDTH];
        state[..DIGEST_LEN].copy_from_slice(&self.digest.0);
        state[RATE] = M31::from_u32_unchecked(Domain::TranscriptDraw as u32);
        state[RATE + 1] = M31::from_u32_unchecked(self.n_draws);
        permute(&mut state);
        self.n_draws += 1;
        std::array::from_fn(|i| state[i])
    }

    /// The digest a nonce is ground against: `H(ProofOfWork, digest ‖ [n_bits])`.
    pub fn pow_prefix(&self, n_bits: u32) -> Digest {
        let message: Vec<M31> = self
            .digest
            .0
            .into_iter()
            .chain([M31::from_u32_unchecked(n_bits)])
            .collect();
        hash_elements(Domain::ProofOfWork, &message)
    }
}

/// A nonce as a digest-shaped block: four 16-bit limbs, low first, then zeros.
pub fn nonce_block(nonce: u64) -> Digest {
    Digest(std::array::from_fn(|i| {
        if i < 4 {
            M31::from_u32_unchecked(((nonce >> (16 * i)) & 0xffff) as u32)
        } else {
            M31(0)
        }
    }))
}

/// Whether `nonce` meets `n_bits` of work against `prefix` (`Poseidon2Channel::pow_prefix`).
pub fn pow_ok(prefix: &Digest, nonce: u64, n_bits: u32) -> bool {
    // Work beyond 30 bits would not fit one element's low bits; `SecurityConfig` caps it there.
    n_bits <= 30
        && compress(prefix, &nonce_block(nonce)).0[0]
            .0
            .trailing_zeros()
            >= n_bits
}

fn words_as_limbs(data: &[u32]) -> impl Iterator<Item = M31> + '_ {
    data.iter().flat_map(|&w| {
        [
            M31::from_u32_unchecked(w & 0xffff),
            M31::from_u32_unchecked(w >> 16),
        ]
    })
}

impl Channel for Poseidon2Channel {
    const BYTES_PER_HASH: usize = 32;

    fn verify_pow_nonce(&self, n_bits: u32, nonce: u64) -> bool {
        pow_ok(&self.pow_prefix(n_bits), nonce, n_bits)
    }

    fn mix_u32s(&mut self, data: &[u32]) {
        self.update(MixKind::Words, words_as_limbs(data).collect::<Vec<_>>());
    }

    fn mix_felts(&mut self, felts: &[SecureField]) {
        self.update(
            MixKind::Felts,
            felts
                .iter()
                .flat_map(|&x| qm31_to_array(x))
                .collect::<Vec<_>>(),
        );
    }

    fn mix_u64(&mut self, value: u64) {
        self.mix_u32s(&[value as u32, (value >> 32) as u32]);
    }

    fn draw_secure_felt(&mut self) -> SecureField {
        let f = self.draw_base_felts();
        qm31_from_array([f[0], f[1], f[2], f[3]])
    }

    fn draw_secure_felts(&mut self, n_felts: usize) -> Vec<SecureField> {
        let mut out = Vec::with_capacity(n_felts);
        while out.len() < n_felts {
            let f = self.draw_base_felts();
            out.push(qm31_from_array([f[0], f[1], f[2], f[3]]));
            if out.len() < n_felts {
                out.push(qm31_from_array([f[4], f[5], f[6], f[7]]));
            }
        }
        out
    }

    /// Eight words below 2^31 - 1; stwo masks them to the query domain's low bits, which are
    /// uniform up to a bias of 2^-31.
    fn draw_u32s(&mut self) -> Vec<u32> {
        self.draw_base_felts().iter().map(|x| x.0).collect()
    }
}

/// The Merkle channel: Poseidon2-M31 commitments mixed into a Poseidon2-M31 transcript.
#[derive(Debug, Default)]
pub struct Poseidon2MerkleChannel;

impl MerkleChannel for Poseidon2MerkleChannel {
    type C = Poseidon2Channel;
    type H = Poseidon2MerkleHasher;

    fn mix_root(channel: &mut Poseidon2Channel, root: Digest) {
        channel.mix_root(root);
    }
}
