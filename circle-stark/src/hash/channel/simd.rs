//! The prover half of the Poseidon2-M31 channel on stwo's `SimdBackend`: lifted-leaf
//! commitments and Merkle layers sixteen rows at a time, and grinding sixteen nonces at a time.
//! Each is checked against the scalar hasher that the verifier runs (`tests.rs`).

use rayon::prelude::*;
use stwo::core::fields::m31::BaseField;
use stwo::core::proof_of_work::GrindOps;
use stwo::prover::backend::simd::column::BaseColumn;
use stwo::prover::backend::simd::m31::{PackedM31, LOG_N_LANES, N_LANES};
use stwo::prover::backend::simd::SimdBackend;
use stwo::prover::backend::{BackendForChannel, Column, ColumnOps};
use stwo::prover::vcs_lifted::ops::MerkleOpsLifted;

use super::{
    leaf_init, nonce_block, pow_ok, Poseidon2Channel, Poseidon2MerkleChannel, Poseidon2MerkleHasher,
};
use crate::field::M31;
use crate::hash::poseidon2::packed::permute_packed_all;

/// Sets of sixteen permutations run interleaved (`permute_packed_interleaved`).
const INTERLEAVE: usize = 4;
use crate::hash::poseidon2::{compress, permute, Digest, DIGEST_LEN, RATE, WIDTH};

impl ColumnOps<Digest> for SimdBackend {
    type Column = Vec<Digest>;

    fn bit_reverse_column(_column: &mut Self::Column) {
        // stwo never bit-reverses a hash column (its own hash columns leave this unimplemented).
        unimplemented!("hash columns are not bit-reversed")
    }
}

impl BackendForChannel<Poseidon2MerkleChannel> for SimdBackend {}

/// Row `idx` of a column lifted from `2^from` to `2^to` rows reads row
/// `(idx >> (to - from + 1) << 1) + (idx & 1)` (stwo's lifting, bit-reversed order).
fn lifted_index(idx: usize, from: u32, to: u32) -> usize {
    ((idx >> (to - from + 1)) << 1) + (idx & 1)
}

/// Sponge states of every row, scalar below sixteen rows and packed (sixteen rows per
/// element, transposed) from there.
enum States {
    Scalar(Vec<[M31; WIDTH]>),
    Packed(Vec<[PackedM31; WIDTH]>),
}

impl States {
    fn to_scalar(&self) -> Vec<[M31; WIDTH]> {
        match self {
            States::Scalar(s) => s.clone(),
            States::Packed(p) => p
                .iter()
                .flat_map(|block| {
                    let lanes = block.map(PackedM31::to_array);
                    (0..N_LANES).map(move |l| std::array::from_fn(|i| lanes[i][l]))
                })
                .collect(),
        }
    }

    /// The states of `2^to` rows, lifted from `2^from`.
    fn lift(self, from: u32, to: u32) -> States {
        if from == to {
            return self;
        }
        let scalar = self.to_scalar();
        let lifted: Vec<[M31; WIDTH]> = (0..1usize << to)
            .into_par_iter()
            .map(|idx| scalar[lifted_index(idx, from, to)])
            .collect();
        if to < LOG_N_LANES {
            return States::Scalar(lifted);
        }
        States::Packed(
            lifted
                .par_chunks_exact(N_LANES)
                .map(|rows| {
                    std::array::from_fn(|i| {
                        PackedM31::from_array(std::array::from_fn(|l| rows[l][i]))
                    })
                })
                .collect(),
        )
    }
}

/// Adds the columns of one size into the states, from rate position `pos`; returns the new
/// position. Every row absorbs the same count, so the position is shared.
fn absorb(states: &mut States, columns: &[&BaseColumn], pos: usize) -> usize {
    match states {
        States::Scalar(rows) => {
            for (r, state) in rows.iter_mut().enumerate() {
                let mut p = pos;
                for col in columns {
                    state[p] += col.at(r);
                    p += 1;
                    if p == RATE {
                        permute(state);
                        p = 0;
                    }
                }
            }
        }
        States::Packed(blocks) => {
            // Four blocks per task, permuted interleaved (their dependency chains overlap).
            blocks
                .par_chunks_mut(INTERLEAVE)
                .enumerate()
                .for_each(|(c, chunk)| {
                    let first = c * INTERLEAVE;
                    let mut p = pos;
                    for col in columns {
                        for (j, state) in chunk.iter_mut().enumerate() {
                            state[p] += col.data[first + j];
                        }
                        p += 1;
                        if p == RATE {
                            permute_packed_all(chunk);
                            p = 0;
                        }
                    }
                });
        }
    }
    (pos + columns.len()) % RATE
}

fn finalize(states: States, pos: usize) -> Vec<Digest> {
    let digest = |s: &[M31; WIDTH]| Digest(std::array::from_fn(|i| s[i]));
    match states {
        States::Scalar(mut rows) => rows
            .iter_mut()
            .map(|s| {
                if pos > 0 {
                    permute(s);
                }
                digest(s)
            })
            .collect(),
        States::Packed(mut blocks) => {
            if pos > 0 {
                blocks
                    .par_chunks_mut(INTERLEAVE)
                    .for_each(permute_packed_all);
            }
            States::Packed(blocks)
                .to_scalar()
                .iter()
                .map(digest)
                .collect()
        }
    }
}

impl MerkleOpsLifted<Poseidon2MerkleHasher> for SimdBackend {
    fn build_leaves(columns: &[&BaseColumn], lifting_log_size: u32) -> Vec<Digest> {
        if columns.is_empty() {
            return vec![Digest::default()];
        }
        // stwo hands the columns sorted by size, smallest first.
        let mut log_size = columns[0].len().ilog2();
        assert!(log_size >= 1, "a column must have at least two rows");
        let mut states = if log_size >= LOG_N_LANES {
            States::Packed(vec![
                leaf_init().map(PackedM31::broadcast);
                1 << (log_size - LOG_N_LANES)
            ])
        } else {
            States::Scalar(vec![leaf_init(); 1 << log_size])
        };
        let mut pos = 0;
        for group in columns.chunk_by(|a, b| a.len() == b.len()) {
            let group_log = group[0].len().ilog2();
            states = states.lift(log_size, group_log);
            log_size = group_log;
            pos = absorb(&mut states, group, pos);
        }
        let leaves = finalize(states, pos);
        if lifting_log_size > log_size {
            return (0..1usize << lifting_log_size)
                .into_par_iter()
                .map(|idx| leaves[lifted_index(idx, log_size, lifting_log_size)])
                .collect();
        }
        leaves
    }

    #[allow(clippy::ptr_arg)] // the trait's signature
    fn build_next_layer(prev_layer: &Vec<Digest>) -> Vec<Digest> {
        let n = prev_layer.len() / 2;
        let mut out = vec![Digest::default(); n];
        let packed_len = n - n % N_LANES;
        out[..packed_len]
            .par_chunks_mut(INTERLEAVE * N_LANES)
            .enumerate()
            .for_each(|(c, dst)| {
                let groups = dst.len() / N_LANES;
                let first = c * INTERLEAVE;
                let mut states = [[PackedM31::broadcast(M31(0)); WIDTH]; INTERLEAVE];
                for (g, state) in states.iter_mut().enumerate().take(groups) {
                    let pairs =
                        &prev_layer[2 * (first + g) * N_LANES..2 * (first + g + 1) * N_LANES];
                    *state = std::array::from_fn(|i| {
                        PackedM31::from_array(std::array::from_fn(|l| {
                            pairs[2 * l + i / DIGEST_LEN].0[i % DIGEST_LEN]
                        }))
                    });
                }
                let lefts: [[PackedM31; DIGEST_LEN]; INTERLEAVE] =
                    std::array::from_fn(|g| std::array::from_fn(|i| states[g][i]));
                permute_packed_all(&mut states[..groups]);
                for (g, dst) in dst.chunks_exact_mut(N_LANES).enumerate() {
                    let lanes: [[M31; N_LANES]; DIGEST_LEN] =
                        std::array::from_fn(|i| (states[g][i] + lefts[g][i]).to_array());
                    for (l, d) in dst.iter_mut().enumerate() {
                        *d = Digest(std::array::from_fn(|i| lanes[i][l]));
                    }
                }
            });
        for (i, d) in out.iter_mut().enumerate().skip(packed_len) {
            *d = compress(&prev_layer[2 * i], &prev_layer[2 * i + 1]);
        }
        out
    }
}

/// Nonces tried per parallel task.
const GRIND_CHUNK: u64 = 1 << 12;
/// Tasks per round: the rounds go up from nonce 0 one after another, so that every thread
/// searches near the smallest nonce (one search over all 2^32 nonces would hand the second
/// thread the upper half, where the first match found is never the smallest).
const GRIND_ROUND: u64 = 64;

impl GrindOps<Poseidon2Channel> for SimdBackend {
    /// The smallest nonce that meets `pow_bits`, so that proofs are reproducible.
    fn grind(channel: &Poseidon2Channel, pow_bits: u32) -> u64 {
        assert!(pow_bits <= 30, "pow_bits > 30 is not supported");
        let prefix = channel.pow_prefix(pow_bits);
        let left: [PackedM31; DIGEST_LEN] = prefix.0.map(PackedM31::broadcast);
        let n_chunks = u64::from(u32::MAX) / GRIND_CHUNK;
        let found = (0..n_chunks.div_ceil(GRIND_ROUND))
            .find_map(|round| {
                let first = round * GRIND_ROUND;
                (first..(first + GRIND_ROUND).min(n_chunks))
                    .into_par_iter()
                    .find_map_first(|chunk| {
                        let start = chunk * GRIND_CHUNK;
                        (start..start + GRIND_CHUNK)
                            .step_by(INTERLEAVE * N_LANES)
                            .find_map(|base| grind_lanes(&left, base, pow_bits))
                    })
            })
            .expect("a nonce below 2^32 meets at most 30 bits of work");
        debug_assert!(pow_ok(&prefix, found, pow_bits));
        found
    }
}

/// The first of the nonces `base..base + 64` (four interleaved sets of sixteen) that meets the
/// work, if any.
fn grind_lanes(left: &[PackedM31; DIGEST_LEN], base: u64, pow_bits: u32) -> Option<u64> {
    let mut states: [[PackedM31; WIDTH]; INTERLEAVE] = std::array::from_fn(|g| {
        let blocks: [Digest; N_LANES] =
            std::array::from_fn(|l| nonce_block(base + (g * N_LANES + l) as u64));
        std::array::from_fn(|i| {
            if i < DIGEST_LEN {
                left[i]
            } else {
                PackedM31::from_array(std::array::from_fn(|l| blocks[l].0[i - DIGEST_LEN]))
            }
        })
    });
    permute_packed_all(&mut states);
    let mask = (1u32 << pow_bits) - 1;
    states.iter().enumerate().find_map(|(g, state)| {
        (state[0] + left[0])
            .to_array()
            .iter()
            .position(|x: &BaseField| x.0 & mask == 0)
            .map(|l| base + (g * N_LANES + l) as u64)
    })
}
