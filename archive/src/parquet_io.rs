//! Writing and reading one Parquet file, with the options every poe file shares.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::error::ArchiveError;

/// Rows per row group: small enough for useful min/max pruning, large enough for ZSTD.
pub const ROW_GROUP_ROWS: usize = 64 * 1024;

/// Serialises `batch` with ZSTD, page-level statistics (so a column and offset index is
/// written) and `metadata` as key-value pairs. Deterministic: the same rows give the same bytes.
///
/// # Errors
/// [`ArchiveError::Parquet`] from the writer.
pub fn write(
    batch: &RecordBatch,
    metadata: Vec<(String, String)>,
) -> Result<Vec<u8>, ArchiveError> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_key_value_metadata(Some(
            metadata
                .into_iter()
                .map(|(k, v)| KeyValue::new(k, v))
                .collect(),
        ))
        .build();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, batch.schema(), Some(props))?;
    writer.write(batch)?;
    writer.close()?;
    Ok(out)
}

/// A file read back: its rows (one batch) and key-value metadata.
#[derive(Debug)]
pub struct ReadBack {
    /// All rows.
    pub rows: RecordBatch,
    /// Key-value metadata, in file order.
    pub metadata: Vec<(String, String)>,
}

/// Reads a whole file and checks its schema is exactly `expected` (names, types, nullability)
/// and that every column chunk uses a codec poe writes.
///
/// # Errors
/// [`ArchiveError::Parquet`] for bytes that are not Parquet (truncated, corrupt),
/// [`ArchiveError::ReaderPanic`] where parquet-rs panics on corrupt bytes instead,
/// [`ArchiveError::Codec`] for another codec,
/// [`ArchiveError::Schema`] naming the first column that differs.
pub fn read(bytes: Vec<u8>, expected: &Arc<Schema>) -> Result<ReadBack, ArchiveError> {
    // parquet-rs panics on some corrupt footers and pages (index out of range, overflow): a
    // published file must give the auditor an error, never a crash.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_inner(bytes, expected)))
        .unwrap_or_else(|panic| {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_else(|| "no message".into());
            Err(ArchiveError::ReaderPanic(text))
        })
}

/// Whether poe reads `codec`: the codecs it writes (ZSTD at any level, which the file does not
/// record, or none); anything else is refused before decoding.
fn codec_allowed(codec: Compression) -> bool {
    matches!(codec, Compression::UNCOMPRESSED | Compression::ZSTD(_))
}

fn read_inner(bytes: Vec<u8>, expected: &Arc<Schema>) -> Result<ReadBack, ArchiveError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes))?;
    for (row_group, rg) in builder.metadata().row_groups().iter().enumerate() {
        for c in rg.columns() {
            let codec = c.compression();
            if !codec_allowed(codec) {
                return Err(ArchiveError::Codec {
                    column: c.column_path().string(),
                    row_group,
                    codec: format!("{codec:?}"),
                });
            }
        }
    }
    let metadata = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .map(|e| (e.key.clone(), e.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let got = builder.schema().clone();
    check_schema(&got, expected)?;
    let reader = builder.with_batch_size(1 << 20).build()?;
    let batches = reader.collect::<Result<Vec<_>, _>>()?;
    let rows = arrow_select::concat::concat_batches(expected, &batches)?;
    Ok(ReadBack { rows, metadata })
}

fn check_schema(got: &Schema, expected: &Schema) -> Result<(), ArchiveError> {
    if got.fields().len() != expected.fields().len() {
        return Err(ArchiveError::Schema(format!(
            "expected {} columns, got {}",
            expected.fields().len(),
            got.fields().len()
        )));
    }
    for (g, e) in got.fields().iter().zip(expected.fields()) {
        if g.name() != e.name()
            || g.data_type() != e.data_type()
            || g.is_nullable() != e.is_nullable()
        {
            return Err(ArchiveError::Schema(format!(
                "column {:?}: expected {} {:?}{}, got {} {:?}{}",
                e.name(),
                e.name(),
                e.data_type(),
                if e.is_nullable() { " null" } else { "" },
                g.name(),
                g.data_type(),
                if g.is_nullable() { " null" } else { "" },
            )));
        }
    }
    Ok(())
}
