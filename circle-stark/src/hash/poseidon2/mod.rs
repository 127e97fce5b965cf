//! Poseidon2 over Mersenne-31, width 16 (`specs/poseidon2.md`).
//!
//! - x^5 S-box, 8 full rounds (4 + 4) and 14 partial rounds, as in the Poseidon2 paper
//!   (eprint 2023/323) and Plonky3's Mersenne-31 instance.
//! - External layer `circ(2·M4, M4, M4, M4)` with the paper's `M4`; initial external layer
//!   before the first round.
//! - Internal layer `J + diag(D)` with Plonky3's width-16 diagonal
//!   `D = [−2, 2^0, 2^1, …, 2^8, 2^10, 2^12, 2^13, 2^14, 2^15, 2^16]`.
//! - Round constants from the Grain LFSR ([`constants`]).
//!
//! The round function is written once, generically ([`permute_generic`]), and drives the
//! reference permutation, the trace generator and the AIR constraints. [`permute`] is the fast
//! native path and is cross-checked against the generic one.

pub mod constants;
#[cfg(feature = "prover")]
pub mod packed;
pub mod sponge;

use std::ops::{Add, Mul};

pub use constants::{round_constants, RoundConstants};
pub use sponge::{compress, hash_elements, Digest, DigestError, Domain, DIGEST_LEN, RATE};

use crate::field::{M31, MODULUS};

/// State width.
pub const WIDTH: usize = 16;
/// Full rounds at the start and at the end.
pub const N_HALF_FULL_ROUNDS: usize = 4;
/// Full rounds in all.
pub const N_FULL_ROUNDS: usize = 2 * N_HALF_FULL_ROUNDS;
/// Partial rounds.
pub const N_PARTIAL_ROUNDS: usize = 14;
/// S-box applications per permutation; each costs two committed cells in the AIR.
pub const N_SBOXES: usize = N_FULL_ROUNDS * WIDTH + N_PARTIAL_ROUNDS;

/// `D − 0` exponents of the internal diagonal for entries 1..16 (entry 0 is −2).
const INTERNAL_DIAG_SHIFTS: [u32; WIDTH - 1] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 13, 14, 15, 16];

/// The internal diagonal as field elements.
pub fn internal_diagonal() -> [M31; WIDTH] {
    std::array::from_fn(|i| {
        if i == 0 {
            M31::from_u32_unchecked(MODULUS - 2)
        } else {
            M31::from_u32_unchecked(1 << INTERNAL_DIAG_SHIFTS[i - 1])
        }
    })
}

/// What a round does with an S-box input: compute it natively, record it into a trace, or
/// constrain it in an AIR.
pub trait SboxSink<F> {
    /// Returns `x^5`, as a value or as a new trace cell constrained to equal it.
    fn sbox(&mut self, x: F) -> F;
}

/// Plain evaluation.
#[derive(Debug, Default, Clone, Copy)]
pub struct PlainSbox;

impl SboxSink<M31> for PlainSbox {
    #[inline]
    fn sbox(&mut self, x: M31) -> M31 {
        let x2 = x * x;
        x2 * x2 * x
    }
}

/// Records `(x^2, x^5)` per S-box in AIR column order while evaluating.
#[derive(Debug)]
pub struct RecordingSbox<'a> {
    cells: &'a mut [M31],
    at: usize,
}

impl<'a> RecordingSbox<'a> {
    /// `cells` must hold `2 * N_SBOXES` elements.
    pub fn new(cells: &'a mut [M31]) -> Self {
        assert_eq!(
            cells.len(),
            2 * N_SBOXES,
            "one square and one fifth power per S-box"
        );
        Self { cells, at: 0 }
    }
}

impl SboxSink<M31> for RecordingSbox<'_> {
    #[inline]
    fn sbox(&mut self, x: M31) -> M31 {
        let x2 = x * x;
        let x5 = x2 * x2 * x;
        self.cells[self.at] = x2;
        self.cells[self.at + 1] = x5;
        self.at += 2;
        x5
    }
}

/// `M4` of the Poseidon2 paper, `[[5,7,1,3],[4,6,1,1],[1,3,5,7],[1,1,4,6]]`, in 8 additions and
/// 4 doublings.
#[inline(always)]
fn apply_m4<F: Clone + Add<Output = F>>(x: [F; 4]) -> [F; 4] {
    let [x0, x1, x2, x3] = x;
    let t0 = x0 + x1.clone();
    let t1 = x2 + x3.clone();
    let t2 = x1.clone() + x1 + t1.clone();
    let t3 = x3.clone() + x3 + t0.clone();
    let t1_2 = t1.clone() + t1;
    let t0_2 = t0.clone() + t0;
    let t4 = t1_2.clone() + t1_2 + t3.clone();
    let t5 = t0_2.clone() + t0_2 + t2.clone();
    let t6 = t3 + t5.clone();
    let t7 = t2 + t4.clone();
    [t6, t5, t7, t4]
}

/// External linear layer `circ(2·M4, M4, M4, M4)`.
#[inline(always)]
pub fn apply_external_layer<F: Clone + Add<Output = F>>(state: &mut [F; WIDTH]) {
    for chunk in 0..4 {
        let block: [F; 4] = std::array::from_fn(|i| state[4 * chunk + i].clone());
        let out = apply_m4(block);
        for (i, v) in out.into_iter().enumerate() {
            state[4 * chunk + i] = v;
        }
    }
    for j in 0..4 {
        let sum =
            state[j].clone() + state[j + 4].clone() + state[j + 8].clone() + state[j + 12].clone();
        for i in 0..4 {
            state[4 * i + j] = state[4 * i + j].clone() + sum.clone();
        }
    }
}

/// Internal linear layer `J + diag(D)`.
#[inline(always)]
pub fn apply_internal_layer<F>(state: &mut [F; WIDTH], diag: &[M31; WIDTH])
where
    F: Clone + Add<Output = F> + Mul<M31, Output = F>,
{
    let sum = state[1..]
        .iter()
        .cloned()
        .fold(state[0].clone(), |acc, s| acc + s);
    for (s, &d) in state.iter_mut().zip(diag) {
        *s = sum.clone() + s.clone() * d;
    }
}

/// The permutation, generic over the value type and over what an S-box does.
pub fn permute_generic<F, S>(mut state: [F; WIDTH], sink: &mut S) -> [F; WIDTH]
where
    F: Clone + Add<Output = F> + Mul<M31, Output = F> + From<M31>,
    S: SboxSink<F>,
{
    let rc = round_constants();
    let diag = internal_diagonal();
    apply_external_layer(&mut state);
    for round in &rc.external_initial {
        full_round(&mut state, round, sink);
    }
    for &c in &rc.internal {
        let x = state[0].clone() + F::from(M31::from_u32_unchecked(c));
        state[0] = sink.sbox(x);
        apply_internal_layer(&mut state, &diag);
    }
    for round in &rc.external_terminal {
        full_round(&mut state, round, sink);
    }
    state
}

#[inline(always)]
fn full_round<F, S>(state: &mut [F; WIDTH], constants: &[u32; WIDTH], sink: &mut S)
where
    F: Clone + Add<Output = F> + Mul<M31, Output = F> + From<M31>,
    S: SboxSink<F>,
{
    for (s, &c) in state.iter_mut().zip(constants) {
        let x = s.clone() + F::from(M31::from_u32_unchecked(c));
        *s = sink.sbox(x);
    }
    apply_external_layer(state);
}

thread_local! {
    /// Scalar permutations run by this thread: what a verifier pays in hashing, counted
    /// (`recursion::count_permutations`). A thread-local cell costs nothing next to a
    /// permutation and never contends between prover threads.
    static PERMUTATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Scalar permutations ([`permute`]) run by the calling thread so far.
pub fn permutations_on_this_thread() -> u64 {
    PERMUTATIONS.with(std::cell::Cell::get)
}

/// The native permutation, in place.
///
/// State elements are kept *partially reduced* in `[0, 2^31]` between layers (p ≡ 0 has two
/// representatives) and made canonical once at the end. Products are `u32 × u32 → u64`, which
/// the compiler vectorises across the 16 lanes of a full round.
pub fn permute(state: &mut [M31; WIDTH]) {
    PERMUTATIONS.with(|n| n.set(n.get() + 1));
    let rc = round_constants();
    let mut s: [u32; WIDTH] = state.map(|x| x.0);
    external_fast(&mut s);
    for round in &rc.external_initial {
        for (x, &c) in s.iter_mut().zip(round) {
            *x = pow5(*x + c);
        }
        external_fast(&mut s);
    }
    for &c in &rc.internal {
        s[0] = pow5(s[0] + c);
        internal_fast(&mut s);
    }
    for round in &rc.external_terminal {
        for (x, &c) in s.iter_mut().zip(round) {
            *x = pow5(*x + c);
        }
        external_fast(&mut s);
    }
    *state = s.map(|x| M31::from_u32_unchecked(if x >= MODULUS { x - MODULUS } else { x }));
}

/// Two Mersenne folds: `x ≤ 2^63` ↦ a value `≡ x (mod p)` in `[0, 2^31]`.
#[inline(always)]
fn fold(x: u64) -> u32 {
    let p = u64::from(MODULUS);
    let x = (x & p) + (x >> 31);
    ((x & p) + (x >> 31)) as u32
}

#[inline(always)]
fn mul(a: u32, b: u32) -> u32 {
    fold(u64::from(a) * u64::from(b))
}

/// `x^5` for any `x < 2^32`, partially reduced.
#[inline(always)]
fn pow5(x: u32) -> u32 {
    let x = fold(u64::from(x));
    let x2 = mul(x, x);
    let x4 = mul(x2, x2);
    mul(x4, x)
}

/// Inputs ≤ 2^31: `M4` sums stay below 2^35 and the column sums below 2^38.
#[inline(always)]
fn external_fast(s: &mut [u32; WIDTH]) {
    let mut w: [u64; WIDTH] = s.map(u64::from);
    for chunk in w.chunks_exact_mut(4) {
        let out = apply_m4([chunk[0], chunk[1], chunk[2], chunk[3]]);
        chunk.copy_from_slice(&out);
    }
    let sums: [u64; 4] = std::array::from_fn(|j| w[j] + w[j + 4] + w[j + 8] + w[j + 12]);
    for (i, x) in s.iter_mut().enumerate() {
        *x = fold(w[i] + sums[i % 4]);
    }
}

/// Inputs ≤ 2^31: the sum stays below 2^35, shifted terms below 2^47.
#[inline(always)]
fn internal_fast(s: &mut [u32; WIDTH]) {
    let w: [u64; WIDTH] = s.map(u64::from);
    let sum: u64 = w.iter().sum();
    // Entry 0 has diagonal −2: sum − 2·s0, kept non-negative by adding 4p (≡ 0, and > 2·2^31).
    s[0] = fold(sum + 4 * u64::from(MODULUS) - 2 * w[0]);
    for i in 1..WIDTH {
        s[i] = fold(sum + (w[i] << INTERNAL_DIAG_SHIFTS[i - 1]));
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn random_state(rng: &mut impl Rng) -> [M31; WIDTH] {
        std::array::from_fn(|_| M31::from_u32_unchecked(rng.gen_range(0..MODULUS)))
    }

    #[test]
    fn fast_path_matches_generic_round_function() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..200 {
            let input = random_state(&mut rng);
            let mut fast = input;
            permute(&mut fast);
            assert_eq!(fast, permute_generic(input, &mut PlainSbox));
        }
        // Extremes: all p − 1 exercises the largest lazy sums.
        let input = [M31::from_u32_unchecked(MODULUS - 1); WIDTH];
        let mut fast = input;
        permute(&mut fast);
        assert_eq!(fast, permute_generic(input, &mut PlainSbox));
    }

    #[test]
    fn m4_is_the_paper_matrix() {
        let m4 = [[5, 7, 1, 3], [4, 6, 1, 1], [1, 3, 5, 7], [1, 1, 4, 6]];
        for col in 0..4 {
            let mut e = [0u64; 4];
            e[col] = 1;
            let out = apply_m4(e);
            for row in 0..4 {
                assert_eq!(out[row], m4[row][col]);
            }
        }
    }

    #[test]
    fn recording_sbox_records_squares_and_fifth_powers() {
        let input = random_state(&mut ChaCha8Rng::seed_from_u64(2));
        let mut cells = vec![M31::from_u32_unchecked(0); 2 * N_SBOXES];
        let out = permute_generic(input, &mut RecordingSbox::new(&mut cells));
        assert_eq!(out, permute_generic(input, &mut PlainSbox));
        for pair in cells.chunks_exact(2) {
            let (sq, x5) = (pair[0], pair[1]);
            // x5 = x^5 and sq = x^2 imply sq^5 = x5^2.
            let sq5 = sq * sq * sq * sq * sq;
            assert_eq!(sq5, x5 * x5);
        }
    }

    #[test]
    fn permutation_is_not_identity_and_diffuses() {
        let mut a = [M31::from_u32_unchecked(0); WIDTH];
        let mut b = a;
        b[15] = M31::from_u32_unchecked(1);
        permute(&mut a);
        permute(&mut b);
        assert!(
            a.iter().zip(&b).all(|(x, y)| x != y),
            "one input bit must change every output"
        );
    }
}
