//! Where a bundle's files live (`specs/archive.md` §2): the one place their paths are spelt.
//! Paths are relative to the archive root (`days/…`) or to a day directory (the file names).

use crate::day::Day;
use crate::storage::Storage;

/// The directory holding every published day.
pub const DAYS: &str = "days";
/// The day statement and root-proof facts; its presence is what publishes a day.
pub const STATEMENT_JSON: &str = "statement.json";
/// The manifest: every data file's size and SHA3-256.
pub const MANIFEST_JSON: &str = "manifest.json";
/// The daily root proof.
pub const ROOT_PROOF: &str = "root.proof";
/// A v4 root's key samples: the proofs its verifying keys are derived from
/// (`specs/day-proof.md` §6.4).
pub const ROOT_SAMPLES: &str = "root.samples";
/// One row per batch.
pub const STATEMENTS_PARQUET: &str = "statements.parquet";
/// The files the manifest cannot list (it is hashed into the proof they carry or describe;
/// `root.samples` only in v4 bundles).
pub const BOUND_FILES: [&str; 4] = [MANIFEST_JSON, ROOT_PROOF, ROOT_SAMPLES, STATEMENT_JSON];

/// The operator's reports of day closes (timings), beside `days/`: figures of the machine
/// that closed the day, for explorers and dashboards. Outside every bundle, so never audited.
pub const CLOSES: &str = "closes";

/// `closes/YYYY-MM-DD.json`: the report of a day's close.
pub fn close_report(day: impl std::fmt::Display) -> String {
    format!("{CLOSES}/{day}.json")
}

/// `days/YYYY-MM-DD`: a day's directory under the archive root.
pub fn day_dir(day: impl std::fmt::Display) -> String {
    format!("{DAYS}/{day}")
}

/// `days/YYYY-MM-DD/<name>`: a file of a day's bundle.
pub fn day_file(day: impl std::fmt::Display, name: &str) -> String {
    format!("{DAYS}/{day}/{name}")
}

/// `days/.staging-YYYY-MM-DD`: where a day's bundle is written before its publishing rename
/// (never listed or served).
pub fn staging_dir(day: Day) -> String {
    format!("{DAYS}/.staging-{day}")
}

/// Whether the day's bundle is published (its `statement.json` is in place).
pub fn is_published(archive: &dyn Storage, day: impl std::fmt::Display) -> bool {
    archive.exists(&day_file(day, STATEMENT_JSON))
}

/// `trades/rollup=<name>`: a rollup's partition of the trade records, in a day directory.
pub fn trades_dir(rollup: &str) -> String {
    format!("trades/rollup={rollup}")
}
