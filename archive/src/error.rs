//! Archive errors.

/// Why a bundle could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Storage failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// Parquet encoding or decoding failed (a truncated or corrupt file reads as this).
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// The Parquet reader panicked on a corrupt file (a bug of parquet-rs that the auditor
    /// must survive: an operator could publish such a file under a matching hash).
    #[error("parquet: the reader failed on corrupt data: {0}")]
    ReaderPanic(String),
    /// A column chunk compressed with a codec poe does not write (`specs/archive.md` §2).
    #[error("column {column:?} (row group {row_group}) is compressed with {codec}; poe archives are ZSTD or UNCOMPRESSED")]
    Codec {
        /// Column path.
        column: String,
        /// Row group index.
        row_group: usize,
        /// The codec found.
        codec: String,
    },
    /// Arrow array construction failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// A file's schema is not the one this version writes.
    #[error("schema mismatch: {0}")]
    Schema(String),
    /// A value that the schema allows but poe never writes (null where required, bad hex).
    #[error("{0}")]
    Value(String),
    /// The manifest is not valid JSON of the expected shape.
    #[error("manifest: {0}")]
    Manifest(String),
    /// The input does not form a day.
    #[error("not a day: {0}")]
    Day(#[from] poe_circle_stark::day::statement::DayError),
    /// The day is already archived with different content.
    #[error("day {day} is already archived and differs from this run in {path}")]
    Diverged {
        /// The day.
        day: String,
        /// First file that differs.
        path: String,
    },
    /// The caller's root prover failed.
    #[error("root proof: {0}")]
    Prove(String),
}

impl ArchiveError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
