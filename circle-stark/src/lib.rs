#![doc = include_str!("../README.md")]

pub mod field;
pub mod poseidon2;
pub mod encoding;
pub mod merkle;
pub mod air;
pub mod config;
pub mod proof;
pub mod error;
pub mod verifier;
#[cfg(feature = "prover")]
pub mod prover;
