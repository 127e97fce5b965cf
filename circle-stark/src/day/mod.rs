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
pub mod statement;
mod verify;

#[cfg(feature = "prover")]
pub use prove::{prove_day, prove_root, prove_root_as};
#[cfg(feature = "prover")]
pub use prove_recursive::{
    derive_keys, keys_from_samples, prove_recursive, RecursionTimings, RecursiveProof,
};
pub use statement::{BatchStatement, DayStatement};
pub use verify::{verify_day, verify_day_bytes};
