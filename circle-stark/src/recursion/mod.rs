//! Recursion's building blocks (`specs/recursion.md`): what a STARK that verifies poe STARKs
//! needs from the proofs it verifies: the constraint compiler, which turns a component's
//! constraints into the QM31 circuit such a verifier evaluates at the out-of-domain point; the
//! tracing verifier, which verifies a proof as stwo does and records every value on the way
//! (the recursive verifier's witness); the verifier's costs counted on real proofs; and the
//! node AIR under construction (`node`: QM31 circuits with Poseidon2 permutations, proven by a
//! gate and a permutation component whose wiring is the verifying key).

pub mod compiler;
pub mod costs;
pub mod node;
#[cfg(test)]
mod tests;
pub mod trace;

pub use compiler::{
    compile, compile_parametric, Circuit, Gate, GateCounts, MaskRef, ParamRef, Wire,
};
#[cfg(feature = "prover")]
pub use costs::count_permutations;
pub use costs::{shape_costs, VerifierCosts};
pub use trace::{trace_verify, AnyTrace, VerifierTrace};
