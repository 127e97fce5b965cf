//! A venue's state as bytes, so that intake can start from a stored state instead of
//! re-executing every batch since the first (`specs/api.md` §7.1).
//!
//! One canonical encoding: a version tag, then the clock, the accounts, the positions and the
//! open interest, each list in strictly ascending key order with no zero entry (the engine
//! drops zeros), integers little-endian, nothing after. The state tree is not stored: it is
//! rebuilt from the leaves, and the root that gives is what a caller checks the snapshot by.

use std::collections::{BTreeMap, BTreeSet};

use super::Venue;
use crate::venue::ops::Instrument;
use crate::venue::state::{AccountState, StateKey};
use crate::venue::{MAX_ACCOUNTS, MAX_AMOUNT};

/// The version tag every snapshot starts with.
pub const SNAPSHOT_TAG: &[u8] = b"poe/venue-snapshot/v1";

/// Bytes that are not a canonical snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Another version, or not a snapshot.
    #[error("not a {expected:?} snapshot")]
    Tag {
        /// [`SNAPSHOT_TAG`], as text.
        expected: &'static str,
    },
    /// The bytes end inside a field.
    #[error("truncated at byte {at}: {what} needs {need} more bytes")]
    Truncated {
        /// Offset.
        at: usize,
        /// The field.
        what: &'static str,
        /// Bytes missing.
        need: usize,
    },
    /// Bytes after the last list.
    #[error("{got} trailing bytes")]
    Trailing {
        /// How many.
        got: usize,
    },
    /// An entry out of order, repeated, zero or out of range.
    #[error("{list}[{index}]: {why}")]
    Entry {
        /// `accounts`, `positions` or `open_interest`.
        list: &'static str,
        /// Position in the list.
        index: usize,
        /// What is wrong.
        why: String,
    },
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], SnapshotError> {
        let end = self.at + N;
        let Some(b) = self.bytes.get(self.at..end) else {
            return Err(SnapshotError::Truncated {
                at: self.at,
                what,
                need: end - self.bytes.len(),
            });
        };
        self.at = end;
        Ok(b.try_into().expect("N bytes"))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, SnapshotError> {
        self.take::<4>(what).map(u32::from_le_bytes)
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, SnapshotError> {
        self.take::<8>(what).map(u64::from_le_bytes)
    }
}

fn entry(list: &'static str, index: usize, why: impl Into<String>) -> SnapshotError {
    SnapshotError::Entry {
        list,
        index,
        why: why.into(),
    }
}

impl Venue {
    /// The state as a snapshot (the instruments are not in it: they come from the registry).
    pub fn to_snapshot(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            SNAPSHOT_TAG.len()
                + 20
                + 20 * self.accounts.len()
                + 16 * self.positions.len()
                + 12 * self.open_interest.len(),
        );
        out.extend_from_slice(SNAPSHOT_TAG);
        out.extend_from_slice(&self.clock.to_le_bytes());
        out.extend_from_slice(&(self.accounts.len() as u32).to_le_bytes());
        for (id, a) in &self.accounts {
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&a.cash.to_le_bytes());
            out.extend_from_slice(&a.locked.to_le_bytes());
        }
        out.extend_from_slice(&(self.positions.len() as u32).to_le_bytes());
        for ((instrument, account), qty) in &self.positions {
            out.extend_from_slice(&instrument.to_le_bytes());
            out.extend_from_slice(&account.to_le_bytes());
            out.extend_from_slice(&qty.to_le_bytes());
        }
        out.extend_from_slice(&(self.open_interest.len() as u32).to_le_bytes());
        for (instrument, oi) in &self.open_interest {
            out.extend_from_slice(&instrument.to_le_bytes());
            out.extend_from_slice(&oi.to_le_bytes());
        }
        out
    }

    /// A venue over `instruments` in the state `bytes` hold, its state tree rebuilt (O(state),
    /// not O(history)). The caller checks [`Venue::state_root`] against the root it expects:
    /// a snapshot is a cache of the batches, never trusted over them.
    ///
    /// # Errors
    /// [`SnapshotError`]: not canonical (wrong tag, truncated, trailing bytes, an entry out of
    /// order, zero or out of range).
    pub fn from_snapshot(
        instruments: Vec<Instrument>,
        bytes: &[u8],
    ) -> Result<Self, SnapshotError> {
        if !bytes.starts_with(SNAPSHOT_TAG) {
            return Err(SnapshotError::Tag {
                expected: "poe/venue-snapshot/v1",
            });
        }
        let mut r = Reader {
            bytes,
            at: SNAPSHOT_TAG.len(),
        };
        let n_instruments = instruments.len() as u32;
        let clock = r.u64("clock")?;
        let amount = |list, index, field: &str, v: u64| {
            if v > MAX_AMOUNT {
                Err(entry(
                    list,
                    index,
                    format!("{field} {v} is above {MAX_AMOUNT}"),
                ))
            } else {
                Ok(v)
            }
        };

        let mut accounts = BTreeMap::new();
        let n = r.u32("accounts")?;
        for i in 0..n as usize {
            let id = r.u32("account id")?;
            let cash = amount("accounts", i, "cash", r.u64("cash")?)?;
            let locked = amount("accounts", i, "locked", r.u64("locked")?)?;
            if id >= MAX_ACCOUNTS {
                return Err(entry(
                    "accounts",
                    i,
                    format!("account {id} ≥ {MAX_ACCOUNTS}"),
                ));
            }
            if accounts
                .last_key_value()
                .is_some_and(|(&last, _)| last >= id)
            {
                return Err(entry("accounts", i, "not in ascending order"));
            }
            let a = AccountState { cash, locked };
            if a == AccountState::default() {
                return Err(entry("accounts", i, "an empty account is not stored"));
            }
            accounts.insert(id, a);
        }

        let mut positions = BTreeMap::new();
        let n = r.u32("positions")?;
        for i in 0..n as usize {
            let instrument = r.u32("position instrument")?;
            let account = r.u32("position account")?;
            let qty = r.u64("position qty")? as i64;
            if instrument >= n_instruments || account >= MAX_ACCOUNTS {
                return Err(entry(
                    "positions",
                    i,
                    format!("instrument {instrument} or account {account} out of range"),
                ));
            }
            if qty == 0 || qty.unsigned_abs() > MAX_AMOUNT {
                return Err(entry("positions", i, format!("quantity {qty}")));
            }
            if positions
                .last_key_value()
                .is_some_and(|(&last, _)| last >= (instrument, account))
            {
                return Err(entry("positions", i, "not in ascending order"));
            }
            positions.insert((instrument, account), qty);
        }

        let mut open_interest = BTreeMap::new();
        let n = r.u32("open interest")?;
        for i in 0..n as usize {
            let instrument = r.u32("open interest instrument")?;
            let oi = amount("open_interest", i, "open interest", r.u64("open interest")?)?;
            if instrument >= n_instruments {
                return Err(entry(
                    "open_interest",
                    i,
                    format!("instrument {instrument}"),
                ));
            }
            if oi == 0 {
                return Err(entry("open_interest", i, "zero is not stored"));
            }
            if open_interest
                .last_key_value()
                .is_some_and(|(&last, _)| last >= instrument)
            {
                return Err(entry("open_interest", i, "not in ascending order"));
            }
            open_interest.insert(instrument, oi);
        }
        if r.at != bytes.len() {
            return Err(SnapshotError::Trailing {
                got: bytes.len() - r.at,
            });
        }

        let mut dirty = BTreeSet::new();
        dirty.insert(StateKey::Clock);
        dirty.extend(accounts.keys().map(|&a| StateKey::Account(a)));
        dirty.extend(
            positions
                .keys()
                .map(|&(instrument, account)| StateKey::Position {
                    instrument,
                    account,
                }),
        );
        dirty.extend(open_interest.keys().map(|&i| StateKey::OpenInterest(i)));
        Ok(Self {
            instruments,
            accounts,
            positions,
            open_interest,
            clock,
            tree: Default::default(),
            dirty,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::venue::sample;

    fn busy_venue() -> Venue {
        let (mut v, ops) = sample::batch(300, 20, 7, 1_000_000, 10);
        v.apply_batch(&ops).unwrap();
        assert!(!v.positions.is_empty() && !v.open_interest.is_empty());
        v
    }

    #[test]
    fn a_snapshot_rebuilds_the_same_state_root() {
        let mut v = busy_venue();
        let bytes = v.to_snapshot();
        let mut back = Venue::from_snapshot(v.instruments().to_vec(), &bytes).unwrap();
        assert_eq!(back.state_root(), v.state_root());
        assert_eq!(back.to_snapshot(), bytes, "one encoding");
        let mut empty = Venue::new(v.instruments().to_vec());
        let mut back =
            Venue::from_snapshot(v.instruments().to_vec(), &empty.to_snapshot()).unwrap();
        assert_eq!(back.state_root(), empty.state_root());
    }

    #[test]
    fn non_canonical_snapshots_are_refused() {
        let v = busy_venue();
        let bytes = v.to_snapshot();
        let inst = v.instruments().to_vec();
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(
            Venue::from_snapshot(inst.clone(), &trailing).unwrap_err(),
            SnapshotError::Trailing { got: 1 }
        );
        assert!(matches!(
            Venue::from_snapshot(inst.clone(), &bytes[..bytes.len() - 3]).unwrap_err(),
            SnapshotError::Truncated { need: 3, .. }
        ));
        let mut version = bytes.clone();
        version[SNAPSHOT_TAG.len() - 1] = b'2';
        assert!(matches!(
            Venue::from_snapshot(inst.clone(), &version).unwrap_err(),
            SnapshotError::Tag { .. }
        ));
        // Two accounts swapped: out of order.
        let at = SNAPSHOT_TAG.len() + 12;
        let mut swapped = bytes.clone();
        swapped[at..at + 20].copy_from_slice(&bytes[at + 20..at + 40]);
        swapped[at + 20..at + 40].copy_from_slice(&bytes[at..at + 20]);
        assert!(matches!(
            Venue::from_snapshot(inst.clone(), &swapped).unwrap_err(),
            SnapshotError::Entry {
                list: "accounts",
                index: 1,
                ..
            }
        ));
        // With fewer instruments, a position in a missing one is out of range.
        assert!(matches!(
            Venue::from_snapshot(inst[..1].to_vec(), &bytes).unwrap_err(),
            SnapshotError::Entry {
                list: "positions",
                ..
            }
        ));
    }
}
