//! The durable intake store: every accepted batch, fsync'd before it is acknowledged.
//!
//! Built on redb (an embedded, pure-Rust, copy-on-write B-tree store with atomic commits).
//! Why not an append-only log of our own: redb already gives atomic multi-table commits,
//! crash recovery without a repair pass and ordered range scans (batches per rollup in
//! sequence order), with a test suite we would otherwise have to write.
//!
//! What redb does not give, and this module adds (`specs/api.md` §7):
//! - a store is never re-initialised behind the operator's back: [`Store::open`] refuses a
//!   missing or empty file, and only [`Store::create`] makes one, where there is none;
//! - every record carries a SHA3-256 digest over its id, rollup, seq, acceptance time and body,
//!   checked on every load, so a damaged byte is reported as the batch it damaged;
//! - the day-close mark is stored, so a restart on a clock that stepped back cannot reopen a
//!   closed day.

use std::path::{Path, PathBuf};

use redb::{
    Builder, Database, DatabaseError, Durability, ReadOnlyDatabase, ReadableDatabase,
    ReadableTable, ReadableTableMetadata, StorageError, TableDefinition, TableError,
};
use sha3::{Digest as _, Sha3_256};

mod scan;
use scan::{damage_report, scan, Record};

/// `batch id → request body`, written straight from the request buffer (no copy).
const BATCHES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("batches");
/// `batch id → accepted_us`.
const ACCEPTED: TableDefinition<&[u8], u64> = TableDefinition::new("accepted");
/// `rollup name (32 bytes) ‖ seq (8 bytes BE) → batch id`.
const SEQS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("seqs");
/// `batch id → rollup name (32) ‖ seq (8 BE) ‖ record digest (32)`: [`record_digest`].
const RECORDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("records");
/// `rollup name (32) ‖ trade id (32, a short string) → seq`: every operation id a rollup has
/// used, so that no id is accepted twice (`specs/api.md` §4).
const TRADE_IDS: TableDefinition<&[u8], u64> = TableDefinition::new("trade_ids");
/// `rollup name (32) ‖ seq (8 BE) → venue snapshot`: the rollup's state after batch `seq`
/// (`Venue::to_snapshot`), so that start-up replays only the batches after it. A cache of the
/// batches: checked against batch `seq`'s post-state root before use, ignored if it fails.
/// Added after format 2 without a format change: an older poe never opens this table.
const SNAPSHOTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("snapshots");
/// `rollup name (32) ‖ first index (8 BE) → accepted_us (8 BE) ‖ request body`: every
/// instrument listing accepted (`specs/api.md` §2.6), replayed onto the registry at start-up.
/// Added after format 2 like [`SNAPSHOTS`].
const LISTINGS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("listings");
/// Store-wide facts, by name ([`META_FORMAT`], [`META_CLOSED_BEFORE`], [`META_TRADE_IDS`]).
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

const META_FORMAT: &str = "format";
/// No batch is ever accepted before this instant (µs): the start of the first open day.
const META_CLOSED_BEFORE: &str = "closed_before_us";
/// 1 once [`TRADE_IDS`] holds the ids of every stored batch (a format-1 store is upgraded
/// without them; intake's replay fills them in, [`Store::index_trade_ids`]).
const META_TRADE_IDS: &str = "trade_ids_indexed";

/// The store format this build writes. Format 1 (before 2026-12-02) had no digests and no
/// meta table; it is upgraded in place on open.
pub const FORMAT: u64 = 2;

const RECORD_TAG: &[u8] = b"poe/intake-record/v2";
const RECORD_LEN: usize = 32 + 8 + 32;
/// How many damaged records an error names (the count says how many there are).
const NAMED_DAMAGE: usize = 5;

/// A storage failure. Intake refuses the batch (and reports 500) rather than acknowledge what
/// it could not persist; at start-up the service does not start.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No store file where one was expected.
    #[error(
        "no intake store at {}: to begin a new, empty one on purpose, start with `poe serve --init`",
        .path.display()
    )]
    Missing {
        /// The store file.
        path: PathBuf,
    },
    /// The store file is there but holds nothing: never a store to start afresh in.
    #[error(
        "intake store {} is empty (0 bytes): a store that held batches was truncated, or the file was \
         made outside poe. Refusing to start over it: restore the file from a backup; to begin a new, \
         empty store on purpose, move it aside and start with `poe serve --init`",
        .path.display()
    )]
    Empty {
        /// The store file.
        path: PathBuf,
    },
    /// [`Store::create`] found a file already there.
    #[error(
        "intake store {} already exists: --init creates a store only where there is none \
         (start without --init to open it)",
        .path.display()
    )]
    Exists {
        /// The store file.
        path: PathBuf,
    },
    /// A store of a format this build does not read.
    #[error("intake store {}: format {got}, this poe reads format {expected}", .path.display())]
    Format {
        /// The store file.
        path: PathBuf,
        /// [`FORMAT`].
        expected: u64,
        /// What the file says.
        got: u64,
    },
    /// The file's bytes no longer match what was written.
    #[error(
        "store corrupted: {what} (in {}). poe will not serve from a damaged store: stop it, restore \
         the file from a backup copied while poe was stopped, and start again; rollups then resubmit \
         from the restored head (seq and state root on /v1/rollups/{{rollup}}/head)",
        .path.display()
    )]
    Corrupted {
        /// The store file.
        path: PathBuf,
        /// The damaged batches, or what failed.
        what: String,
    },
    /// An I/O or database failure.
    #[error("intake store: {0}")]
    Io(String),
}

fn e<E: std::fmt::Display>(err: E) -> StoreError {
    StoreError::Io(err.to_string())
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
    path: PathBuf,
    /// The latest acceptance time on record when the store was opened.
    last_accepted_us: u64,
}

fn seq_key(rollup: &[u8; 32], seq: u64) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..32].copy_from_slice(rollup);
    k[32..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn trade_key(rollup: &[u8; 32], id: &[u8; 32]) -> [u8; 64] {
    let mut k = [0u8; 64];
    k[..32].copy_from_slice(rollup);
    k[32..].copy_from_slice(id);
    k
}

fn split_seq_key(k: &[u8]) -> ([u8; 32], u64) {
    (
        k[..32].try_into().expect("32-byte rollup"),
        u64::from_be_bytes(k[32..40].try_into().expect("8-byte seq")),
    )
}

/// SHA3-256 over everything a record says: a changed byte anywhere in it changes the digest.
pub fn record_digest(
    batch_id: &[u8; 32],
    rollup: &[u8; 32],
    seq: u64,
    accepted_us: u64,
    body: &[u8],
) -> [u8; 32] {
    let mut h = Sha3_256::new();
    h.update(RECORD_TAG);
    h.update(batch_id);
    h.update(rollup);
    h.update(seq.to_be_bytes());
    h.update(accepted_us.to_be_bytes());
    h.update((body.len() as u64).to_be_bytes());
    h.update(body);
    h.finalize().into()
}

fn record_value(rollup: &[u8; 32], seq: u64, digest: &[u8; 32]) -> [u8; RECORD_LEN] {
    let mut v = [0u8; RECORD_LEN];
    v[..40].copy_from_slice(&seq_key(rollup, seq));
    v[40..].copy_from_slice(digest);
    v
}

/// A rollup's wire name from its 32-byte key (a short string, left-padded with zeros).
fn rollup_name(key: &[u8; 32]) -> String {
    let start = key.iter().position(|&b| b != 0).unwrap_or(32);
    String::from_utf8_lossy(&key[start..]).into_owned()
}

impl Store {
    /// Opens the store at `path`, which must exist: checks every page (redb's integrity
    /// check) and every record (its digest), upgrades a format-1 store in place.
    ///
    /// # Errors
    /// [`StoreError::Missing`] or [`StoreError::Empty`] rather than start afresh;
    /// [`StoreError::Corrupted`] naming the damaged batches; [`StoreError::Format`];
    /// [`StoreError::Io`].
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        match std::fs::metadata(&path) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::Missing { path })
            }
            Err(err) => return Err(StoreError::Io(format!("{}: {err}", path.display()))),
            Ok(m) if !m.is_file() => {
                return Err(StoreError::Io(format!(
                    "{}: not a regular file",
                    path.display()
                )))
            }
            Ok(m) if m.len() == 0 => return Err(StoreError::Empty { path }),
            Ok(_) => {}
        }
        let db = match Builder::new().set_check_integrity_on_open(true).open(&path) {
            Ok(db) => db,
            Err(DatabaseError::Storage(StorageError::Corrupted(what))) => {
                let what = damage_report(&path)
                    .unwrap_or_else(|| format!("its pages fail redb's checksums ({what})"));
                return Err(StoreError::Corrupted { path, what });
            }
            Err(err) => return Err(StoreError::Io(format!("{}: {err}", path.display()))),
        };
        let mut store = Self {
            db,
            path,
            last_accepted_us: 0,
        };
        match store.meta(META_FORMAT)? {
            None => store.upgrade_from_format_1()?,
            Some(FORMAT) => {}
            Some(got) => {
                return Err(StoreError::Format {
                    path: store.path,
                    expected: FORMAT,
                    got,
                })
            }
        }
        let found = scan(&store.db)?;
        if found.n_damaged > 0 {
            return Err(StoreError::Corrupted {
                path: store.path,
                what: found.describe(),
            });
        }
        store.last_accepted_us = found.last_accepted_us;
        Ok(store)
    }

    /// Creates a new, empty store at `path`, where there is no file: made aside and linked
    /// into place, so that no half-made store is ever found there.
    ///
    /// # Errors
    /// [`StoreError::Exists`] if `path` exists (whatever it holds); [`StoreError::Io`].
    pub fn create(path: &Path) -> Result<Self, StoreError> {
        if std::fs::symlink_metadata(path).is_ok() {
            return Err(StoreError::Exists {
                path: path.to_path_buf(),
            });
        }
        let name = path
            .file_name()
            .ok_or_else(|| StoreError::Io(format!("{}: not a file path", path.display())))?;
        let tmp = path.with_file_name(format!(
            "{}.init-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let _ = std::fs::remove_file(&tmp);
        {
            let db = Builder::new().create(&tmp).map_err(e)?;
            let mut txn = db.begin_write().map_err(e)?;
            txn.set_durability(Durability::Immediate).map_err(e)?;
            txn.set_two_phase_commit(true);
            txn.open_table(BATCHES).map_err(e)?;
            txn.open_table(ACCEPTED).map_err(e)?;
            txn.open_table(SEQS).map_err(e)?;
            txn.open_table(RECORDS).map_err(e)?;
            txn.open_table(TRADE_IDS).map_err(e)?;
            {
                let mut meta = txn.open_table(META).map_err(e)?;
                meta.insert(META_FORMAT, FORMAT).map_err(e)?;
                meta.insert(META_CLOSED_BEFORE, 0).map_err(e)?;
                meta.insert(META_TRADE_IDS, 1).map_err(e)?;
            }
            txn.commit().map_err(e)?;
            db.close().map_err(e)?;
        }
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StoreError::Exists {
                    path: path.to_path_buf(),
                })
            }
            other => other.map_err(|err| StoreError::Io(format!("{}: {err}", path.display())))?,
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|err| StoreError::Io(format!("{}: {err}", dir.display())))?;
        }
        Self::open(path)
    }

    /// Format 1 had neither digests nor meta: digest what is there (the intake's replay then
    /// checks every body against its batch id) and mark the store format 2, in one commit.
    fn upgrade_from_format_1(&self) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().map_err(e)?;
        txn.set_durability(Durability::Immediate).map_err(e)?;
        txn.set_two_phase_commit(true);
        {
            let seqs = txn.open_table(SEQS).map_err(e)?;
            let batches = txn.open_table(BATCHES).map_err(e)?;
            let accepted = txn.open_table(ACCEPTED).map_err(e)?;
            let mut records = txn.open_table(RECORDS).map_err(e)?;
            for item in seqs.iter().map_err(e)? {
                let (k, v) = item.map_err(e)?;
                let (rollup, seq) = split_seq_key(k.value());
                let id: [u8; 32] = v.value().try_into().map_err(|_| StoreError::Corrupted {
                    path: self.path.clone(),
                    what: format!(
                        "rollup {} seq {seq}: the index entry is not a batch id",
                        rollup_name(&rollup)
                    ),
                })?;
                let (Some(body), Some(at)) = (
                    batches.get(&id[..]).map_err(e)?,
                    accepted.get(&id[..]).map_err(e)?,
                ) else {
                    return Err(StoreError::Corrupted {
                        path: self.path.clone(),
                        what: format!(
                            "batch {} (rollup {} seq {seq}): part of the record is missing",
                            hex::encode(id),
                            rollup_name(&rollup)
                        ),
                    });
                };
                let digest = record_digest(&id, &rollup, seq, at.value(), body.value());
                records
                    .insert(&id[..], &record_value(&rollup, seq, &digest)[..])
                    .map_err(e)?;
            }
            txn.open_table(TRADE_IDS).map_err(e)?;
            let mut meta = txn.open_table(META).map_err(e)?;
            meta.insert(META_FORMAT, FORMAT).map_err(e)?;
            meta.insert(META_CLOSED_BEFORE, 0).map_err(e)?;
            meta.insert(META_TRADE_IDS, 0).map_err(e)?;
        }
        txn.commit().map_err(e)
    }

    /// Whether the trade-id index covers every stored batch.
    ///
    /// # Errors
    /// [`StoreError::Io`].
    pub fn trade_ids_indexed(&self) -> Result<bool, StoreError> {
        Ok(self.meta(META_TRADE_IDS)? == Some(1))
    }

    /// Fills the trade-id index from `(rollup, trade id, seq)` of every stored operation (a
    /// format-1 store's upgrade) and marks it complete, in one commit.
    ///
    /// # Errors
    /// [`StoreError::Io`].
    pub fn index_trade_ids(&self, ids: &[([u8; 32], [u8; 32], u64)]) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().map_err(e)?;
        txn.set_durability(Durability::Immediate).map_err(e)?;
        txn.set_two_phase_commit(true);
        {
            let mut table = txn.open_table(TRADE_IDS).map_err(e)?;
            for (rollup, id, seq) in ids {
                table.insert(&trade_key(rollup, id)[..], *seq).map_err(e)?;
            }
            txn.open_table(META)
                .map_err(e)?
                .insert(META_TRADE_IDS, 1)
                .map_err(e)?;
        }
        txn.commit().map_err(e)
    }

    /// The first of `ids` that rollup `rollup` has used before, as `(index in ids, seq of
    /// the batch that used it)`.
    ///
    /// # Errors
    /// [`StoreError::Io`].
    pub fn first_used_trade_id(
        &self,
        rollup: &[u8; 32],
        ids: &[[u8; 32]],
    ) -> Result<Option<(usize, u64)>, StoreError> {
        let txn = self.db.begin_read().map_err(e)?;
        let table = txn.open_table(TRADE_IDS).map_err(e)?;
        for (i, id) in ids.iter().enumerate() {
            if let Some(seq) = table.get(&trade_key(rollup, id)[..]).map_err(e)? {
                return Ok(Some((i, seq.value())));
            }
        }
        Ok(None)
    }

    fn meta(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let txn = self.db.begin_read().map_err(e)?;
        let table = match txn.open_table(META) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(err) => return Err(e(err)),
        };
        let got = table.get(key).map_err(e)?;
        Ok(got.map(|v| v.value()))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The latest acceptance time stored when the store was opened (0 if none).
    pub fn last_accepted_us(&self) -> u64 {
        self.last_accepted_us
    }

    /// No batch may be accepted before this (µs): the start of the first day not yet closed.
    ///
    /// # Errors
    /// [`StoreError::Io`].
    pub fn closed_before_us(&self) -> Result<u64, StoreError> {
        Ok(self.meta(META_CLOSED_BEFORE)?.unwrap_or(0))
    }

    /// Moves the close mark forward to `us` (never back), on disk before it returns: a day
    /// whose close has begun stays closed across a crash, whatever the clock says after it.
    ///
    /// # Errors
    /// [`StoreError::Io`]; the mark is then unchanged.
    pub fn close_before(&self, us: u64) -> Result<(), StoreError> {
        if us <= self.closed_before_us()? {
            return Ok(());
        }
        let mut txn = self.db.begin_write().map_err(e)?;
        txn.set_durability(Durability::Immediate).map_err(e)?;
        txn.set_two_phase_commit(true);
        txn.open_table(META)
            .map_err(e)?
            .insert(META_CLOSED_BEFORE, us)
            .map_err(e)?;
        txn.commit().map_err(e)
    }

    /// Stores a batch under `(rollup, seq)` with its operations' trade ids, and returns once it
    /// is on disk: one atomic, fsync'd commit of every table, the body written straight from
    /// the request buffer.
    /// Two-phase, so that a damaged latest commit is reported at the next open instead of
    /// rolled back to the one before (which would drop an acknowledged batch).
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
        trade_ids: &[[u8; 32]],
    ) -> Result<(), StoreError> {
        let digest = record_digest(batch_id, rollup, seq, accepted_us, body);
        let mut txn = self.db.begin_write().map_err(e)?;
        txn.set_durability(Durability::Immediate).map_err(e)?;
        txn.set_two_phase_commit(true);
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
            txn.open_table(RECORDS)
                .map_err(e)?
                .insert(&batch_id[..], &record_value(rollup, seq, &digest)[..])
                .map_err(e)?;
            let mut ids = txn.open_table(TRADE_IDS).map_err(e)?;
            for id in trade_ids {
                ids.insert(&trade_key(rollup, id)[..], seq).map_err(e)?;
            }
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
        got.map(|v| {
            v.value().try_into().map_err(|_| StoreError::Corrupted {
                path: self.path.clone(),
                what: format!(
                    "rollup {} seq {seq}: the index entry is not a batch id",
                    rollup_name(rollup)
                ),
            })
        })
        .transpose()
    }

    /// A batch by id, checked against its digest.
    ///
    /// # Errors
    /// [`StoreError::Corrupted`] if the record does not match its digest; I/O failure.
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
            .map(|a| a.value());
        let records = txn.open_table(RECORDS).map_err(e)?;
        let record = records.get(&batch_id[..]).map_err(e)?;
        let (rollup, seq) = match &record {
            Some(r) if r.value().len() == RECORD_LEN => split_seq_key(r.value()),
            _ => ([0u8; 32], 0),
        };
        let r = Record {
            id: *batch_id,
            rollup,
            seq,
            accepted_us: accepted,
            body: Some(body.value()),
            record: record.as_ref().map(|r| r.value()),
        };
        if let Some(what) = r.damage() {
            return Err(StoreError::Corrupted {
                path: self.path.clone(),
                what,
            });
        }
        Ok(Some(StoredBatch {
            batch_id: *batch_id,
            accepted_us: accepted.expect("checked by damage()"),
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
                .ok_or_else(|| StoreError::Corrupted {
                    path: self.path.clone(),
                    what: format!("batch {} has no acceptance time", hex::encode(id)),
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
        self.batches_from(rollup, 0)
    }

    /// A rollup's batches from `from_seq` on, in sequence order, as `(seq, batch)`.
    ///
    /// # Errors
    /// [`StoreError`] on I/O failure or a dangling index entry.
    pub fn batches_from(
        &self,
        rollup: &[u8; 32],
        from_seq: u64,
    ) -> Result<Vec<(u64, StoredBatch)>, StoreError> {
        let ids: Vec<(u64, [u8; 32])> = {
            let txn = self.db.begin_read().map_err(e)?;
            let table = txn.open_table(SEQS).map_err(e)?;
            let range = table
                .range(&seq_key(rollup, from_seq)[..]..=&seq_key(rollup, u64::MAX)[..])
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

    /// Stores `snapshot`, the rollup's state after its batch `seq`, and keeps only its `keep`
    /// latest snapshots; on disk before it returns.
    ///
    /// # Errors
    /// [`StoreError::Io`]; nothing is then changed.
    pub fn put_snapshot(
        &self,
        rollup: &[u8; 32],
        seq: u64,
        snapshot: &[u8],
        keep: usize,
    ) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().map_err(e)?;
        txn.set_durability(Durability::Immediate).map_err(e)?;
        {
            let mut table = txn.open_table(SNAPSHOTS).map_err(e)?;
            table
                .insert(&seq_key(rollup, seq)[..], snapshot)
                .map_err(e)?;
            let seqs: Vec<[u8; 40]> = table
                .range(&seq_key(rollup, 0)[..]..=&seq_key(rollup, u64::MAX)[..])
                .map_err(e)?
                .map(|item| {
                    let (k, _) = item.map_err(e)?;
                    Ok(k.value().try_into().expect("40-byte keys"))
                })
                .collect::<Result<_, StoreError>>()?;
            for old in &seqs[..seqs.len().saturating_sub(keep)] {
                table.remove(&old[..]).map_err(e)?;
            }
        }
        txn.commit().map_err(e)
    }

    /// The rollup's latest snapshot taken after a batch before `before_seq`, as `(seq, bytes)`.
    ///
    /// # Errors
    /// [`StoreError::Io`].
    pub fn snapshot_before(
        &self,
        rollup: &[u8; 32],
        before_seq: u64,
    ) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        if before_seq == 0 {
            return Ok(None);
        }
        let txn = self.db.begin_read().map_err(e)?;
        let table = match txn.open_table(SNAPSHOTS) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(err) => return Err(e(err)),
        };
        let mut range = table
            .range(&seq_key(rollup, 0)[..]..=&seq_key(rollup, before_seq - 1)[..])
            .map_err(e)?;
        let Some(item) = range.next_back() else {
            return Ok(None);
        };
        let (k, v) = item.map_err(e)?;
        let seq = u64::from_be_bytes(k.value()[32..].try_into().expect("8 bytes"));
        Ok(Some((seq, v.value().to_vec())))
    }

    /// Stores an accepted instrument listing; on disk before it returns (one fsync'd,
    /// two-phase commit, as a batch).
    ///
    /// # Errors
    /// [`StoreError::Io`]; nothing is then stored.
    pub fn put_listing(
        &self,
        rollup: &[u8; 32],
        first_index: u32,
        accepted_us: u64,
        body: &[u8],
    ) -> Result<(), StoreError> {
        let mut value = accepted_us.to_be_bytes().to_vec();
        value.extend_from_slice(body);
        let mut txn = self.db.begin_write().map_err(e)?;
        txn.set_durability(Durability::Immediate).map_err(e)?;
        txn.set_two_phase_commit(true);
        txn.open_table(LISTINGS)
            .map_err(e)?
            .insert(&seq_key(rollup, u64::from(first_index))[..], &value[..])
            .map_err(e)?;
        txn.commit().map_err(e)
    }

    /// A rollup's accepted listings in table order, as `(first index, accepted_us, body)`.
    ///
    /// # Errors
    /// [`StoreError::Io`]; [`StoreError::Corrupted`] for a record too short to hold a time.
    pub fn listings_of(&self, rollup: &[u8; 32]) -> Result<Vec<(u32, u64, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read().map_err(e)?;
        let table = match txn.open_table(LISTINGS) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(err) => return Err(e(err)),
        };
        let range = table
            .range(&seq_key(rollup, 0)[..]..=&seq_key(rollup, u64::MAX)[..])
            .map_err(e)?;
        range
            .map(|item| {
                let (k, v) = item.map_err(e)?;
                let first = u64::from_be_bytes(k.value()[32..].try_into().expect("8 bytes"));
                let v = v.value();
                if v.len() < 8 {
                    return Err(StoreError::Corrupted {
                        path: self.path.clone(),
                        what: format!("listing at {first} of rollup {}", rollup_name(rollup)),
                    });
                }
                let at = u64::from_be_bytes(v[..8].try_into().expect("8 bytes"));
                Ok((first as u32, at, v[8..].to_vec()))
            })
            .collect()
    }

    /// The batches an index scan named, as `(seq, batch)`.
    fn load(&self, ids: Vec<(u64, [u8; 32])>) -> Result<Vec<(u64, StoredBatch)>, StoreError> {
        ids.into_iter()
            .map(|(seq, id)| {
                let batch = self.get(&id)?.ok_or_else(|| StoreError::Corrupted {
                    path: self.path.clone(),
                    what: format!(
                        "the index names batch {}, which is not stored",
                        hex::encode(id)
                    ),
                })?;
                Ok((seq, batch))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
