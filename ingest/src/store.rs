//! The durable intake store: every accepted batch, fsync'd before it is acknowledged.
//!
//! Built on redb (an embedded, pure-Rust, copy-on-write B-tree store with checksummed pages and
//! atomic commits). Why not an append-only log of our own: redb already gives atomic multi-table
//! commits, crash recovery without a repair pass and ordered range scans (batches per rollup in
//! sequence order), with a test suite we would otherwise have to write.

use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, TableDefinition};

/// `batch id → request body`, written straight from the request buffer (no copy).
const BATCHES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("batches");
/// `batch id → accepted_us`.
const ACCEPTED: TableDefinition<&[u8], u64> = TableDefinition::new("accepted");
/// `rollup name (32 bytes) ‖ seq (8 bytes BE) → batch id`.
const SEQS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("seqs");

/// A storage failure. The service refuses the batch (and reports 500) rather than acknowledge
/// what it could not persist.
#[derive(Debug, thiserror::Error)]
#[error("intake store: {0}")]
pub struct StoreError(String);

fn e<E: std::fmt::Display>(err: E) -> StoreError {
    StoreError(err.to_string())
}

/// One stored batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBatch {
    /// SHA3-256 of the canonical submission bytes.
    pub batch_id: [u8; 32],
    /// Acceptance time, µs since the epoch.
    pub accepted_us: u64,
    /// The request body as received.
    pub body: Vec<u8>,
}

/// The store.
#[derive(Debug)]
pub struct Store {
    db: Database,
}

fn seq_key(rollup: &[u8; 32], seq: u64) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..32].copy_from_slice(rollup);
    k[32..].copy_from_slice(&seq.to_be_bytes());
    k
}

impl Store {
    /// Opens or creates the store at `path`.
    ///
    /// # Errors
    /// [`StoreError`] if the file cannot be opened or is not a store.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(e)?;
        let txn = db.begin_write().map_err(e)?;
        txn.open_table(BATCHES).map_err(e)?;
        txn.open_table(ACCEPTED).map_err(e)?;
        txn.open_table(SEQS).map_err(e)?;
        txn.commit().map_err(e)?;
        Ok(Self { db })
    }

    /// Stores a batch under `(rollup, seq)` and returns once it is on disk: one atomic,
    /// fsync'd commit of all three tables, the body written straight from the request buffer.
    ///
    /// # Errors
    /// [`StoreError`] on any I/O failure; nothing is then stored.
    pub fn put(
        &self,
        rollup: &[u8; 32],
        seq: u64,
        batch_id: &[u8; 32],
        accepted_us: u64,
        body: &[u8],
    ) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().map_err(e)?;
        txn.set_durability(Durability::Immediate).map_err(e)?;
        {
            txn.open_table(BATCHES)
                .map_err(e)?
                .insert(&batch_id[..], body)
                .map_err(e)?;
            txn.open_table(ACCEPTED)
                .map_err(e)?
                .insert(&batch_id[..], accepted_us)
                .map_err(e)?;
            txn.open_table(SEQS)
                .map_err(e)?
                .insert(&seq_key(rollup, seq)[..], &batch_id[..])
                .map_err(e)?;
        }
        txn.commit().map_err(e)
    }

    /// The batch id stored at `(rollup, seq)`.
    ///
    /// # Errors
    /// [`StoreError`] on I/O failure.
    pub fn id_at(&self, rollup: &[u8; 32], seq: u64) -> Result<Option<[u8; 32]>, StoreError> {
        let txn = self.db.begin_read().map_err(e)?;
        let table = txn.open_table(SEQS).map_err(e)?;
        let got = table.get(&seq_key(rollup, seq)[..]).map_err(e)?;
        Ok(got.map(|v| v.value().try_into().expect("32-byte ids")))
    }

    /// A batch by id.
    ///
    /// # Errors
    /// [`StoreError`] on I/O failure or a record without its acceptance time.
    pub fn get(&self, batch_id: &[u8; 32]) -> Result<Option<StoredBatch>, StoreError> {
        let txn = self.db.begin_read().map_err(e)?;
        let Some(body) = txn
            .open_table(BATCHES)
            .map_err(e)?
            .get(&batch_id[..])
            .map_err(e)?
        else {
            return Ok(None);
        };
        let accepted = txn
            .open_table(ACCEPTED)
            .map_err(e)?
            .get(&batch_id[..])
            .map_err(e)?
            .ok_or_else(|| {
                StoreError(format!(
                    "batch {} has no acceptance time",
                    hex::encode(batch_id)
                ))
            })?;
        Ok(Some(StoredBatch {
            batch_id: *batch_id,
            accepted_us: accepted.value(),
            body: body.value().to_vec(),
        }))
    }

    /// Up to `limit` batch ids of a rollup from `from_seq` on, as `(seq, id)` in order.
    ///
    /// # Errors
    /// [`StoreError`] on I/O failure.
    pub fn ids_from(
        &self,
        rollup: &[u8; 32],
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, [u8; 32])>, StoreError> {
        let txn = self.db.begin_read().map_err(e)?;
        let table = txn.open_table(SEQS).map_err(e)?;
        let range = table
            .range(&seq_key(rollup, from_seq)[..]..=&seq_key(rollup, u64::MAX)[..])
            .map_err(e)?;
        range
            .take(limit)
            .map(|item| {
                let (k, v) = item.map_err(e)?;
                let seq = u64::from_be_bytes(k.value()[32..].try_into().expect("8 bytes"));
                Ok((seq, v.value().try_into().expect("32-byte ids")))
            })
            .collect()
    }

    /// The batches of a rollup accepted in `[from_us, to_us)`, in sequence order. Reads only
    /// acceptance times for the rest, so a day costs its own batches plus one index scan.
    ///
    /// # Errors
    /// [`StoreError`] on I/O failure or a dangling index entry.
    pub fn accepted_between(
        &self,
        rollup: &[u8; 32],
        from_us: u64,
        to_us: u64,
    ) -> Result<Vec<(u64, StoredBatch)>, StoreError> {
        let hits = self
            .ids_accepted_between(rollup, from_us, to_us)?
            .into_iter()
            .map(|(seq, id, _)| (seq, id))
            .collect();
        self.load(hits)
    }

    /// `(seq, batch id, acceptance time)` of a rollup's batches accepted in `[from_us, to_us)`,
    /// in sequence order, without reading their bodies.
    ///
    /// # Errors
    /// [`StoreError`] on I/O failure or a dangling index entry.
    pub fn ids_accepted_between(
        &self,
        rollup: &[u8; 32],
        from_us: u64,
        to_us: u64,
    ) -> Result<Vec<(u64, [u8; 32], u64)>, StoreError> {
        let txn = self.db.begin_read().map_err(e)?;
        let seqs = txn.open_table(SEQS).map_err(e)?;
        let accepted = txn.open_table(ACCEPTED).map_err(e)?;
        let range = seqs
            .range(&seq_key(rollup, 0)[..]..=&seq_key(rollup, u64::MAX)[..])
            .map_err(e)?;
        let mut hits = Vec::new();
        for item in range {
            let (k, v) = item.map_err(e)?;
            let seq = u64::from_be_bytes(k.value()[32..].try_into().expect("8 bytes"));
            let id: [u8; 32] = v.value().try_into().expect("32-byte ids");
            let at = accepted
                .get(&id[..])
                .map_err(e)?
                .ok_or_else(|| {
                    StoreError(format!("batch {} has no acceptance time", hex::encode(id)))
                })?
                .value();
            if (from_us..to_us).contains(&at) {
                hits.push((seq, id, at));
            }
        }
        Ok(hits)
    }

    /// All batches of a rollup in sequence order, as `(seq, batch)`.
    ///
    /// # Errors
    /// [`StoreError`] on I/O failure or a dangling index entry.
    pub fn batches_of(&self, rollup: &[u8; 32]) -> Result<Vec<(u64, StoredBatch)>, StoreError> {
        let ids: Vec<(u64, [u8; 32])> = {
            let txn = self.db.begin_read().map_err(e)?;
            let table = txn.open_table(SEQS).map_err(e)?;
            let range = table
                .range(&seq_key(rollup, 0)[..]..=&seq_key(rollup, u64::MAX)[..])
                .map_err(e)?;
            range
                .map(|item| {
                    let (k, v) = item.map_err(e)?;
                    let seq = u64::from_be_bytes(k.value()[32..].try_into().expect("8 bytes"));
                    Ok((seq, v.value().try_into().expect("32-byte ids")))
                })
                .collect::<Result<_, StoreError>>()?
        };
        self.load(ids)
    }

    /// The batches an index scan named, as `(seq, batch)`.
    fn load(&self, ids: Vec<(u64, [u8; 32])>) -> Result<Vec<(u64, StoredBatch)>, StoreError> {
        ids.into_iter()
            .map(|(seq, id)| {
                let batch = self.get(&id)?.ok_or_else(|| {
                    StoreError(format!("index names missing batch {}", hex::encode(id)))
                })?;
                Ok((seq, batch))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_then_reopen_finds_everything_in_order() {
        let dir = std::env::temp_dir().join(format!("poe-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("intake.redb");
        let rollup = [7u8; 32];
        {
            let store = Store::open(&path).unwrap();
            for seq in [2u64, 1, 3] {
                store
                    .put(&rollup, seq, &[seq as u8; 32], seq * 10, &[seq as u8; 5])
                    .unwrap();
            }
            store.put(&[8u8; 32], 1, &[99; 32], 0, &[]).unwrap();
        }
        let store = Store::open(&path).unwrap();
        let got = store.batches_of(&rollup).unwrap();
        assert_eq!(
            got.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(
            (got[1].1.body.clone(), got[1].1.accepted_us),
            (vec![2u8; 5], 20)
        );
        assert_eq!(store.id_at(&rollup, 3).unwrap(), Some([3u8; 32]));
        assert_eq!(store.id_at(&rollup, 4).unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
