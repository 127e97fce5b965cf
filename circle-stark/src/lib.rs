#![doc = include_str!("../README.md")]

pub mod air;
pub mod cash;
pub mod chip;
pub mod config;
pub mod day;
pub mod encoding;
pub mod error;
pub mod field;
pub mod gadgets;
#[cfg(all(test, feature = "prover"))]
pub(crate) mod harness;
pub mod instruments;
pub mod memory;
pub mod merkle;
pub mod mul;
pub mod poseidon2;
pub mod proof;
#[cfg(feature = "prover")]
pub mod prover;
pub mod range;
pub mod root;
pub mod row;
pub mod settle;
pub mod state_tree;
pub mod statement;
pub mod trade;
pub mod validity;
#[cfg(all(test, feature = "prover"))]
mod validity_tests;
pub mod venue;
pub mod verifier;
