//! The day: batch statements (the day tree's leaves), the day statement, and the daily root
//! proof — its prover and its verifier side by side (`specs/day-proof.md`).

#[cfg(all(test, feature = "prover"))]
mod fixture;
#[cfg(feature = "prover")]
mod prove;
#[cfg(feature = "prover")]
mod prove_recursive;
pub mod recursive;
pub mod root;
#[cfg(feature = "prover")]
pub mod runs;
pub mod statement;
mod verify;

#[cfg(feature = "prover")]
pub use prove::{prove_day, prove_root, prove_root_as, Runs};
#[cfg(feature = "prover")]
pub use prove_recursive::{
    derive_keys, keys_from_samples, prove_recursive, prove_recursive_with, RecursionTimings,
    RecursiveProof,
};
pub use statement::{BatchStatement, DayStatement};
pub use verify::{verify_day, verify_day_bytes};
