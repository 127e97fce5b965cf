#![doc = include_str!("../README.md")]

pub mod audit;
pub mod bundle;
pub mod day;
pub mod error;
pub mod inclusion;
pub mod layout;
pub mod manifest;
pub mod parquet_io;
pub mod records;
pub mod storage;

pub use audit::{audit, AuditFacts, AuditOptions, AuditReport, Check};
pub use bundle::{write_day, ArchivedOp, BatchInput, BundleSummary, DayInput, RollupInfo, Stage};
pub use day::Day;
pub use error::ArchiveError;
pub use storage::{LocalDir, Storage};
