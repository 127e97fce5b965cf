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
//!
//! The same statement has two AIRs ([`ValidityAir`]): v2, and v3 whose range table is a
//! preprocessed column (`specs/batch-air.md` §6).

pub mod cash;
pub mod circuits;
pub mod closure;
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
pub mod shape;
#[cfg(all(test, feature = "prover"))]
mod shape_tests;
pub mod state_tree;
pub mod statement;
#[cfg(all(test, feature = "prover"))]
mod tests;
pub mod trade;
mod verify;
#[cfg(all(test, feature = "prover"))]
mod window_tests;

pub use circuits::compiled_circuits;
#[cfg(feature = "prover")]
pub use prove::{
    component_rows, plan_classes, plan_classes_as, prove_batches, prove_in_class,
    prove_in_class_as, prove_segment, prove_segment_under, prove_validity, prove_validity_under,
    BatchRows, PlannedSegment, RunRows,
};
pub use registry::{ComponentId, N_COMPONENTS};
pub use relations::ValidityRelations;
pub use shape::{Shape, ShapeClass};
pub use statement::{
    BatchTree, ValidityStatement, MAX_BATCHES, MAX_HOLDER_LOG, MAX_OPS, V3_PUBLIC_INPUTS,
};
pub use verify::{trace_validity, verify_validity, verify_validity_bytes};

/// Which batch-validity AIR a proof is made under; both prove a [`ValidityStatement`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ValidityAir {
    /// `poe/batch-validity/v2` (AIR id 5): the range table's values are a main-trace column,
    /// which a second relation ties to `0 .. 2^16` through a closure the verifier sums.
    #[default]
    V2,
    /// `poe/batch-validity/v3` (AIR id 6): the range table's values are a preprocessed column
    /// whose commitment the verifier pins ([`range::pinned_table_root`]).
    V3,
    /// `poe/batch-validity/v4` (AIR id 8): v3 with one state-tree pair per batch, each opening
    /// its batch's accesses in the batch's own time window, so that the statement's
    /// `interior_roots` (the root after every batch but the last) are proven too
    /// (`specs/batch-air.md` §7).
    V4,
}

impl ValidityAir {
    /// The AIR id a proof carries.
    pub const fn air_id(self) -> crate::proof::AirId {
        match self {
            Self::V2 => crate::proof::AirId::BatchValidity,
            Self::V3 => crate::proof::AirId::BatchValidityV3,
            Self::V4 => crate::proof::AirId::BatchValidityV4,
        }
    }

    /// The batch-validity AIR with id `id`, if it is one.
    pub const fn of(id: crate::proof::AirId) -> Option<Self> {
        match id {
            crate::proof::AirId::BatchValidity => Some(Self::V2),
            crate::proof::AirId::BatchValidityV3 => Some(Self::V3),
            crate::proof::AirId::BatchValidityV4 => Some(Self::V4),
            _ => None,
        }
    }

    /// `v2`, `v3` or `v4` (the CLI's spelling).
    pub const fn tag(self) -> &'static str {
        match self {
            Self::V2 => "v2",
            Self::V3 => "v3",
            Self::V4 => "v4",
        }
    }

    /// v3 and v4: a preprocessed range table, the closure yielded by the input component, a
    /// constant-size public input, shape classes.
    pub const fn closed_by_input(self) -> bool {
        matches!(self, Self::V3 | Self::V4)
    }

    /// v4: one state-tree pair per batch, each in its batch's time window.
    pub const fn windowed(self) -> bool {
        matches!(self, Self::V4)
    }

    /// Parses [`Self::tag`].
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "v2" => Some(Self::V2),
            "v3" => Some(Self::V3),
            "v4" => Some(Self::V4),
            _ => None,
        }
    }
}
