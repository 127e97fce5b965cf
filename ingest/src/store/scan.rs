//! The integrity scan: every record against its digest, the indexes against each other.

use super::*;

/// One record as read, before it is trusted.
pub(super) struct Record<'a> {
    pub(super) id: [u8; 32],
    pub(super) rollup: [u8; 32],
    pub(super) seq: u64,
    pub(super) accepted_us: Option<u64>,
    pub(super) body: Option<&'a [u8]>,
    pub(super) record: Option<&'a [u8]>,
}

impl Record<'_> {
    /// What is wrong with it, if anything.
    pub(super) fn damage(&self) -> Option<String> {
        let at = format!(
            "batch {} (rollup {} seq {})",
            hex::encode(self.id),
            rollup_name(&self.rollup),
            self.seq
        );
        let (Some(accepted_us), Some(body), Some(record)) =
            (self.accepted_us, self.body, self.record)
        else {
            return Some(format!(
                "{at}: part of the record is missing (body, acceptance time or digest)"
            ));
        };
        if record.len() != RECORD_LEN || record[..40] != seq_key(&self.rollup, self.seq) {
            return Some(format!(
                "{at}: its digest entry names another rollup or seq"
            ));
        }
        let want = record_digest(&self.id, &self.rollup, self.seq, accepted_us, body);
        (record[40..] != want).then(|| format!("{at}: the stored record does not match its digest"))
    }
}

/// What a full pass over the store found.
pub(super) struct Scan {
    pub(super) damaged: Vec<String>,
    pub(super) n_damaged: usize,
    pub(super) last_accepted_us: u64,
}

impl Scan {
    pub(super) fn describe(&self) -> String {
        let more = self.n_damaged - self.damaged.len();
        let mut s = self.damaged.join("; ");
        if more > 0 {
            s.push_str(&format!("; and {more} more damaged records"));
        }
        s
    }
}

/// Reads every record and checks it against its digest and the indexes against each other.
pub(super) fn scan<D: ReadableDatabase>(db: &D) -> Result<Scan, StoreError> {
    let txn = db.begin_read().map_err(e)?;
    let seqs = txn.open_table(SEQS).map_err(e)?;
    let batches = txn.open_table(BATCHES).map_err(e)?;
    let accepted = txn.open_table(ACCEPTED).map_err(e)?;
    let records = txn.open_table(RECORDS).map_err(e)?;
    let mut out = Scan {
        damaged: Vec::new(),
        n_damaged: 0,
        last_accepted_us: 0,
    };
    let mut n_seqs = 0u64;
    for item in seqs.iter().map_err(e)? {
        let (k, v) = item.map_err(e)?;
        n_seqs += 1;
        let (rollup, seq) = split_seq_key(k.value());
        let Ok(id) = <[u8; 32]>::try_from(v.value()) else {
            out.n_damaged += 1;
            if out.damaged.len() < NAMED_DAMAGE {
                out.damaged.push(format!(
                    "rollup {} seq {}: the index entry is not a batch id",
                    rollup_name(&rollup),
                    seq
                ));
            }
            continue;
        };
        let body = batches.get(&id[..]).map_err(e)?;
        let at = accepted.get(&id[..]).map_err(e)?;
        let record = records.get(&id[..]).map_err(e)?;
        let r = Record {
            id,
            rollup,
            seq,
            accepted_us: at.as_ref().map(|a| a.value()),
            body: body.as_ref().map(|b| b.value()),
            record: record.as_ref().map(|r| r.value()),
        };
        match r.damage() {
            Some(what) => {
                out.n_damaged += 1;
                if out.damaged.len() < NAMED_DAMAGE {
                    out.damaged.push(what);
                }
            }
            None => out.last_accepted_us = out.last_accepted_us.max(r.accepted_us.unwrap_or(0)),
        }
    }
    let lens = [
        batches.len().map_err(e)?,
        accepted.len().map_err(e)?,
        records.len().map_err(e)?,
    ];
    if lens.iter().any(|&n| n != n_seqs) {
        out.n_damaged += 1;
        out.damaged.push(format!(
            "the store holds {} bodies, {} acceptance times and {} digests for {n_seqs} sequence entries",
            lens[0], lens[1], lens[2]
        ));
    }
    Ok(out)
}

/// Names the damaged records of a file redb refused, where a read-only pass can still reach
/// them (the damage may be in the pages that lead to them).
pub(super) fn damage_report(path: &Path) -> Option<String> {
    std::panic::catch_unwind(|| {
        let db = ReadOnlyDatabase::open(path).ok()?;
        let found = scan(&db).ok()?;
        (found.n_damaged > 0).then(|| found.describe())
    })
    .ok()
    .flatten()
}
