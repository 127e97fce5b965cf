//! Sixteen Poseidon2-M31 permutations at once, one per SIMD lane (`specs/poseidon2.md` §6).
//!
//! A Poseidon2-M31 Merkle channel hashes every committed row and node with the permutation
//! (`../shared/recursion.md`: ≈ 466M permutations for a 2^18-operation segment), so the
//! prover needs it at SIMD width. The state is transposed: element `i` of all sixteen
//! permutations is one [`PackedM31`], so every layer is lane-parallel and no shuffles are
//! needed. Arithmetic is stwo's own `PackedM31` (AVX-512, AVX2, NEON or portable SIMD, as the
//! build targets), values in `[0, p]`; the internal layer's powers of two are rotations.
//!
//! Prover-only: verifiers hash a few thousand times and use the scalar [`super::permute`],
//! against which this is checked lane by lane.

use std::simd::Simd;
use std::sync::OnceLock;

pub use stwo::prover::backend::simd::m31::PackedM31;
use stwo::prover::backend::simd::m31::N_LANES;

use super::{round_constants, INTERNAL_DIAG_SHIFTS, N_HALF_FULL_ROUNDS, N_PARTIAL_ROUNDS, WIDTH};
use crate::field::{M31, MODULUS};

/// Permutations per call: stwo's SIMD width.
pub const LANES: usize = N_LANES;

/// The round constants, broadcast once.
struct PackedConstants {
    external_initial: [[PackedM31; WIDTH]; N_HALF_FULL_ROUNDS],
    internal: [PackedM31; N_PARTIAL_ROUNDS],
    external_terminal: [[PackedM31; WIDTH]; N_HALF_FULL_ROUNDS],
}

fn packed_constants() -> &'static PackedConstants {
    static CONSTANTS: OnceLock<PackedConstants> = OnceLock::new();
    CONSTANTS.get_or_init(|| {
        let rc = round_constants();
        let b = |c: u32| PackedM31::broadcast(M31::from_u32_unchecked(c));
        PackedConstants {
            external_initial: rc.external_initial.map(|r| r.map(b)),
            internal: rc.internal.map(b),
            external_terminal: rc.external_terminal.map(|r| r.map(b)),
        }
    })
}

#[inline(always)]
fn pow5(x: PackedM31) -> PackedM31 {
    let x2 = x * x;
    let x4 = x2 * x2;
    x4 * x
}

/// `x · 2^k` for `x ∈ [0, p]` as a 31-bit rotation (2^31 ≡ 1), unreduced: in `[0, p]`.
#[inline(always)]
fn rotate(x: PackedM31, k: u32) -> Simd<u32, LANES> {
    let v = x.into_simd();
    ((v << Simd::splat(k)) & Simd::splat(MODULUS)) | (v >> Simd::splat(31 - k))
}

/// `x · 2^k`, reduced (the safe constructor re-reduces; the crate has no `unsafe`).
#[cfg(test)]
#[inline(always)]
fn mul_pow2(x: PackedM31, k: u32) -> PackedM31 {
    PackedM31::reduce_simd(rotate(x, k))
}

/// `M4` of the paper in 8 additions and 4 doublings (as [`super::apply_external_layer`]).
#[inline(always)]
fn m4(x: [PackedM31; 4]) -> [PackedM31; 4] {
    let [x0, x1, x2, x3] = x;
    let t0 = x0 + x1;
    let t1 = x2 + x3;
    let t2 = x1.double() + t1;
    let t3 = x3.double() + t0;
    let t4 = t1.double().double() + t3;
    let t5 = t0.double().double() + t2;
    let t6 = t3 + t5;
    let t7 = t2 + t4;
    [t6, t5, t7, t4]
}

#[inline(always)]
fn external(s: &mut [PackedM31; WIDTH]) {
    for chunk in s.chunks_exact_mut(4) {
        let out = m4([chunk[0], chunk[1], chunk[2], chunk[3]]);
        chunk.copy_from_slice(&out);
    }
    let sums: [PackedM31; 4] = std::array::from_fn(|j| s[j] + s[j + 4] + s[j + 8] + s[j + 12]);
    for (i, x) in s.iter_mut().enumerate() {
        *x += sums[i % 4];
    }
}

#[inline(always)]
fn internal(s: &mut [PackedM31; WIDTH]) {
    // A tree of additions: the sum is on every partial round's critical path.
    let pairs: [PackedM31; 8] = std::array::from_fn(|i| s[2 * i] + s[2 * i + 1]);
    let quads: [PackedM31; 4] = std::array::from_fn(|i| pairs[2 * i] + pairs[2 * i + 1]);
    let sum = (quads[0] + quads[1]) + (quads[2] + quads[3]);
    // Entry 0 has diagonal −2.
    s[0] = sum - s[0].double();
    let sum_raw = sum.into_simd();
    for i in 1..WIDTH {
        // sum + x·2^k with both terms in [0, p]: at most 2p < 2^32, one reduction.
        s[i] = PackedM31::reduce_simd(sum_raw + rotate(s[i], INTERNAL_DIAG_SHIFTS[i - 1]));
    }
}

/// Sixteen permutations in place: `state[i]` holds element `i` of each lane's state.
pub fn permute_packed(state: &mut [PackedM31; WIDTH]) {
    let rc = packed_constants();
    external(state);
    for round in &rc.external_initial {
        for (x, &c) in state.iter_mut().zip(round) {
            *x = pow5(*x + c);
        }
        external(state);
    }
    for &c in &rc.internal {
        state[0] = pow5(state[0] + c);
        internal(state);
    }
    for round in &rc.external_terminal {
        for (x, &c) in state.iter_mut().zip(round) {
            *x = pow5(*x + c);
        }
        external(state);
    }
}

/// `K` independent sets of sixteen permutations, interleaved round by round so that one set's
/// dependency chains (the partial rounds' single S-box, the internal layer's sum) overlap the
/// others' work.
pub fn permute_packed_interleaved<const K: usize>(states: &mut [[PackedM31; WIDTH]; K]) {
    let rc = packed_constants();
    for s in states.iter_mut() {
        external(s);
    }
    for round in &rc.external_initial {
        for s in states.iter_mut() {
            for (x, &c) in s.iter_mut().zip(round) {
                *x = pow5(*x + c);
            }
            external(s);
        }
    }
    for &c in &rc.internal {
        for s in states.iter_mut() {
            s[0] = pow5(s[0] + c);
        }
        for s in states.iter_mut() {
            internal(s);
        }
    }
    for round in &rc.external_terminal {
        for s in states.iter_mut() {
            for (x, &c) in s.iter_mut().zip(round) {
                *x = pow5(*x + c);
            }
            external(s);
        }
    }
}

/// Sets of sixteen permutations, four at a time interleaved, the rest one by one.
pub fn permute_packed_all(states: &mut [[PackedM31; WIDTH]]) {
    let mut quads = states.chunks_exact_mut(4);
    for quad in &mut quads {
        let quad: &mut [[PackedM31; WIDTH]; 4] = quad.try_into().expect("four");
        permute_packed_interleaved(quad);
    }
    for s in quads.into_remainder() {
        permute_packed(s);
    }
}

/// Permutes every state of `states` in place: sixteen at a time through [`permute_packed`],
/// a remainder through the scalar permutation.
pub fn permute_many(states: &mut [[M31; WIDTH]]) {
    let mut chunks = states.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        let mut packed: [PackedM31; WIDTH] =
            std::array::from_fn(|i| PackedM31::from_array(std::array::from_fn(|l| chunk[l][i])));
        permute_packed(&mut packed);
        let lanes = packed.map(PackedM31::to_array);
        for (l, state) in chunk.iter_mut().enumerate() {
            *state = std::array::from_fn(|i| lanes[i][l]);
        }
    }
    for state in chunks.into_remainder() {
        super::permute(state);
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn scalar(mut s: [M31; WIDTH]) -> [M31; WIDTH] {
        super::super::permute(&mut s);
        s
    }

    #[test]
    fn every_lane_equals_the_scalar_permutation() {
        let mut rng = ChaCha8Rng::seed_from_u64(16);
        for _ in 0..64 {
            let states: Vec<[M31; WIDTH]> = (0..LANES)
                .map(|_| {
                    std::array::from_fn(|_| M31::from_u32_unchecked(rng.gen_range(0..MODULUS)))
                })
                .collect();
            let mut packed = states.clone();
            permute_many(&mut packed);
            for (l, (got, input)) in packed.iter().zip(&states).enumerate() {
                assert_eq!(*got, scalar(*input), "lane {l}");
            }
        }
    }

    #[test]
    fn extreme_states_match_in_every_lane() {
        // 0, p − 1 and mixtures exercise the reductions at both ends of [0, p].
        let fill = |f: &dyn Fn(usize, usize) -> u32| -> Vec<[M31; WIDTH]> {
            (0..LANES)
                .map(|l| std::array::from_fn(|i| M31::from_u32_unchecked(f(l, i))))
                .collect()
        };
        for states in [
            fill(&|_, _| 0),
            fill(&|_, _| MODULUS - 1),
            fill(&|l, i| if (l + i) % 2 == 0 { MODULUS - 1 } else { 0 }),
            fill(&|l, i| ((l * WIDTH + i) as u32).wrapping_mul(0x9e37_79b9) % MODULUS),
        ] {
            let mut packed = states.clone();
            permute_many(&mut packed);
            for (got, input) in packed.iter().zip(&states) {
                assert_eq!(*got, scalar(*input));
            }
        }
    }

    #[test]
    fn interleaved_sets_equal_the_scalar_permutation() {
        // Seven sets: one interleaved group of four, then three one by one.
        let mut rng = ChaCha8Rng::seed_from_u64(19);
        let states: Vec<[M31; WIDTH]> = (0..7 * LANES)
            .map(|_| std::array::from_fn(|_| M31::from_u32_unchecked(rng.gen_range(0..MODULUS))))
            .collect();
        let mut sets: Vec<[PackedM31; WIDTH]> = states
            .chunks_exact(LANES)
            .map(|c| {
                std::array::from_fn(|i| PackedM31::from_array(std::array::from_fn(|l| c[l][i])))
            })
            .collect();
        permute_packed_all(&mut sets);
        for (g, set) in sets.iter().enumerate() {
            let lanes = set.map(PackedM31::to_array);
            for l in 0..LANES {
                let got: [M31; WIDTH] = std::array::from_fn(|i| lanes[i][l]);
                assert_eq!(got, scalar(states[g * LANES + l]), "set {g} lane {l}");
            }
        }
    }

    #[test]
    fn remainder_goes_through_the_scalar_path() {
        let mut rng = ChaCha8Rng::seed_from_u64(17);
        let states: Vec<[M31; WIDTH]> = (0..LANES + 5)
            .map(|_| std::array::from_fn(|_| M31::from_u32_unchecked(rng.gen_range(0..MODULUS))))
            .collect();
        let mut packed = states.clone();
        permute_many(&mut packed);
        for (got, input) in packed.iter().zip(&states) {
            assert_eq!(*got, scalar(*input));
        }
    }

    #[test]
    fn rotation_is_multiplication_by_a_power_of_two() {
        let mut rng = ChaCha8Rng::seed_from_u64(18);
        let xs: [M31; LANES] = std::array::from_fn(|i| match i {
            0 => M31::from_u32_unchecked(0),
            1 => M31::from_u32_unchecked(MODULUS - 1),
            _ => M31::from_u32_unchecked(rng.gen_range(0..MODULUS)),
        });
        for k in 0..=16 {
            let got = mul_pow2(PackedM31::from_array(xs), k).to_array();
            for (g, x) in got.iter().zip(&xs) {
                assert_eq!(*g, *x * M31::from_u32_unchecked(1 << k), "k = {k}");
            }
        }
    }
}
