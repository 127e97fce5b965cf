//! What verifying one poe proof costs a recursive verifier, counted on a real proof: the
//! Poseidon2-M31 permutations its verification runs (Merkle leaves and paths, transcript, proof
//! of work) and, from the proof's shape, the DEEP-quotient terms and FRI folds per query. The
//! constraint side is [`super::validity_circuits`]'s gate counts.

use crate::proof::{Proof, Stark};

/// Counts for one proof.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifierCosts {
    /// Queries (the circuit pays for `n_queries` whether or not positions repeat).
    pub queries: u64,
    /// M31 values opened per query, all trees.
    pub opened_per_query: u64,
    /// Out-of-domain samples (a column sampled at `k` points counts `k`).
    pub samples: u64,
    /// DEEP-quotient terms: per query, one `(value − sample)·coefficient` per sample.
    pub deep_terms: u64,
    /// FRI folds: per query, the circle-to-line fold and one per inner layer.
    pub fri_folds: u64,
}

/// The shape-derived counts of `proof`.
pub fn shape_costs(proof: &Proof) -> VerifierCosts {
    fn count<H: stwo::core::vcs_lifted::merkle_hasher::MerkleHasherLifted>(
        p: &stwo::core::proof::StarkProof<H>,
        n_queries: u64,
    ) -> VerifierCosts {
        let samples: u64 =
            p.0.sampled_values
                .iter()
                .flatten()
                .map(|col| col.len() as u64)
                .sum();
        let opened_per_query: u64 = p.0.queried_values.iter().map(|t| t.len() as u64).sum();
        VerifierCosts {
            queries: n_queries,
            opened_per_query,
            samples,
            deep_terms: n_queries * samples,
            fri_folds: n_queries * (1 + p.0.fri_proof.inner_layers.len() as u64),
        }
    }
    let n_queries = u64::from(proof.config.n_queries());
    match &proof.stark {
        Stark::Blake2s(p) => count(p, n_queries),
        Stark::Poseidon2(p) => count(p, n_queries),
    }
}

/// Runs `f` on one thread (stwo's verifier maps some columns in parallel) and returns its
/// result with the Poseidon2-M31 permutations it ran.
#[cfg(feature = "prover")]
pub fn count_permutations<R: Send>(f: impl FnOnce() -> R + Send) -> (R, u64) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    pool.install(|| {
        let before = crate::hash::poseidon2::permutations_on_this_thread();
        let r = f();
        (
            r,
            crate::hash::poseidon2::permutations_on_this_thread() - before,
        )
    })
}
