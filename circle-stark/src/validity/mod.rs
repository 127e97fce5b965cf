//! The batch-validity proof, `poe/batch-validity/v2` (`specs/batch-air.md` §5): one STARK showing that the
//! operations committed by `data_root`, applied in order to the state committed by
//! `pre_state_root`, obey the venue rules and yield the state committed by `post_state_root`.
//!
//! Components: the range table, the instrument table, the data-root leaf and node components
//! (the leaves also yield `Op(i, record)`), deposit/withdrawal rows and trade rows (each
//! consuming its `Op` and accessing state through the memory argument at times `16·i + k`),
//! and the state tree's leaf and node components, which open the memory argument at the
//! touched leaves' values under `pre_state_root` and close it at their values under
//! `post_state_root` (`state_tree`), hashing through the Poseidon2 chip. The verifier closes the range table, the instrument
//! table, the data tree and the state tree's root itself.
//!
//! Settlements are a header row and one row per position holder (`settle`).

pub mod cash;
pub mod circuits;
pub mod gadgets;
pub mod instruments;
pub mod memory;
pub mod mul;
#[cfg(feature = "prover")]
pub(crate) mod prove;
pub mod range;
pub mod registry;
pub mod relations;
#[cfg(feature = "prover")]
pub mod row;
pub mod settle;
pub mod state_tree;
pub mod statement;
#[cfg(all(test, feature = "prover"))]
mod tests;
pub mod trade;
mod verify;

pub use circuits::compiled_circuits;
#[cfg(feature = "prover")]
pub use prove::{prove_segment, prove_segment_under, prove_validity, prove_validity_under};
pub use registry::{ComponentId, N_COMPONENTS};
pub use relations::ValidityRelations;
pub use statement::{BatchTree, ValidityStatement, MAX_BATCHES, MAX_HOLDER_LOG, MAX_OPS};
pub use verify::{trace_validity, verify_validity, verify_validity_bytes};
