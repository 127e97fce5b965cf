//! The command bodies of the `poe` binary, one file per command family; `main.rs` parses the
//! command line and dispatches here.

pub(crate) mod audit;
pub(crate) mod bench;
pub(crate) mod close_day;
pub(crate) mod demo;
pub(crate) mod keygen;
pub(crate) mod records;
pub(crate) mod sample;
pub(crate) mod serve;
pub(crate) mod submit;
