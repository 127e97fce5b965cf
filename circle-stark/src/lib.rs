#![doc = include_str!("../README.md")]
#![cfg_attr(feature = "prover", feature(portable_simd))]

pub mod calendar;
pub mod config;
pub mod data_root;
pub mod day;
pub mod encoding;
pub mod error;
pub mod field;
#[cfg(all(test, feature = "prover"))]
pub(crate) mod harness;
pub mod hash;
pub mod proof;
pub mod recursion;
pub(crate) mod stark;
pub mod validity;
pub mod venue;
