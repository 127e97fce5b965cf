//! Intake: authenticate, check commitments and continuity, re-execute, persist, acknowledge
//! (`specs/api.md` §2–§4).

use std::collections::HashMap;
use std::path::Path;

use poe_circle_stark::config::VerifierPolicy;
use poe_circle_stark::data_root::verify_data_root_bytes;
use poe_circle_stark::data_root::DataRootStatement;
use poe_circle_stark::hash::merkle::data_root;
use poe_circle_stark::hash::poseidon2::Digest;
use poe_circle_stark::venue::ops::OP_LIMBS;
use poe_circle_stark::venue::{Operation, Venue};

use crate::listing::Listing;
use crate::model::{parse_submission, Refusal, RefusalCode, Submission, POE_PROOF_SYSTEM};
use crate::registry::{Registry, Rollup};
use crate::store::{Store, StoreError};

pub use crate::edge::{check, verify_signed, Checked};

/// What happened to the rollup's own proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollupProofStatus {
    /// A `poe-circle-stark/v1` proof that verified.
    Verified,
    /// Another system: kept, labelled, re-proven by poe.
    Unverified,
}

/// The receipt of an accepted batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// SHA3-256 of the canonical submission.
    pub batch_id: [u8; 32],
    /// Rollup wire name.
    pub rollup: String,
    /// Sequence number.
    pub seq: u64,
    /// UTC day the batch belongs to (`YYYY-MM-DD`), from its acceptance time.
    pub day: String,
    /// Acceptance time, µs since the epoch.
    pub accepted_us: u64,
    /// Operations.
    pub n_ops: u32,
    /// State roots.
    pub pre_state_root: Digest,
    /// See `pre_state_root`.
    pub post_state_root: Digest,
    /// Poseidon2-M31 root of the operation records (what poe's proofs commit to).
    pub data_root: Digest,
    /// The rollup's proof system label.
    pub rollup_proof_system: String,
    /// Whether poe verified the rollup's proof.
    pub rollup_proof: RollupProofStatus,
    /// Keccak-256 of the rollup's proof bytes (stored with the batch).
    pub rollup_proof_digest: [u8; 32],
}

/// 409 `seq_conflict`: `seq` already holds another batch (or, for a dry run, any batch).
fn seq_taken(seq: u64, existing: &[u8; 32]) -> IntakeError {
    Refusal::new(
        RefusalCode::SeqConflict,
        "header.seq",
        format!(
            "seq {seq} was already accepted with batch id {}",
            hex::encode(existing)
        ),
    )
    .into()
}

/// A batch re-executed from its rollup's head, not yet stored.
struct Executed {
    venue: Venue,
    post_state_root: Digest,
    trade_ids: Vec<[u8; 32]>,
    receipt: Receipt,
}

/// What a dry run found: the batch would be accepted as it stands if
/// `header_post_state_root == post_state_root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DryRun {
    /// Rollup wire name.
    pub rollup: String,
    /// The batch's seq (the head's next).
    pub seq: u64,
    /// Operations.
    pub n_ops: u32,
    /// The head's state root, which the batch starts from.
    pub pre_state_root: Digest,
    /// The state root re-execution gives.
    pub post_state_root: Digest,
    /// The root the header states.
    pub header_post_state_root: Digest,
    /// Poseidon2-M31 root of the operation records.
    pub data_root: Digest,
    /// The batch id of the body as sent (a different header gives a different id).
    pub batch_id: [u8; 32],
}

/// Accepted now, or accepted earlier with the same content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Newly accepted and persisted (HTTP 202).
    Accepted(Receipt),
    /// The same batch was accepted before (HTTP 200).
    Duplicate(Receipt),
}

/// How far an operation's timestamp may lead the batch's acceptance time (`specs/api.md` §4):
/// room for a rollup's clock running ahead of poe's, not for stamps that freeze its venue clock.
pub const MAX_CLOCK_SKEW_US: u64 = 3_600_000_000;

/// How far an operation's timestamp may trail the batch's acceptance time (`specs/api.md` §4):
/// a rollup submits what happened within the last day, not history written after the fact.
pub const MAX_OPERATION_AGE_US: u64 = 86_400_000_000;

/// Why a submission failed: refused (client's fault) or not stored (ours).
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// Refused with a code; nothing was stored.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// Could not persist; nothing was acknowledged.
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone)]
struct Head {
    venue: Venue,
    seq: u64,
    root: Digest,
    /// Operations accepted since the seq of the rollup's latest snapshot.
    ops_since_snapshot: u64,
}

/// How [`Intake::open_with`] rebuilds the rollups' state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOptions {
    /// Start from each rollup's latest snapshot that checks out (else replay every batch).
    pub snapshots: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self { snapshots: true }
    }
}

/// Operations a rollup accepts between two automatic snapshots of its state: start-up
/// replays at most about this many per rollup (`specs/api.md` §7.1).
pub const SNAPSHOT_EVERY_OPS: u64 = 100_000;

/// Snapshots kept per rollup: the latest few, so that a proof of a batch shortly before the
/// latest still starts from a snapshot.
pub const SNAPSHOTS_KEPT: usize = 4;

/// How start-up rebuilt one rollup's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    /// Rollup wire name.
    pub rollup: String,
    /// The snapshot's seq it started from (0: from the empty state).
    pub from_seq: u64,
    /// Batches re-executed after it.
    pub replayed: u64,
    /// Why a snapshot that was there was not used (then `from_seq` is 0).
    pub snapshot_refused: Option<String>,
}

/// The intake: registry, store, and each rollup's re-executed state.
#[derive(Debug)]
pub struct Intake {
    registry: Registry,
    store: Store,
    heads: HashMap<String, Head>,
    /// Acceptance times are clamped up to this: the start of the first day not yet closed, so
    /// a closed day never gains a batch (`specs/day-proof.md` §5). Stored with the batches.
    open_from_us: u64,
    /// The latest acceptance time given: times never go backwards, across restarts too, so
    /// a clock that steps back cannot stamp a batch into a day already closing.
    last_accepted_us: u64,
    rebuilt: Vec<Rebuilt>,
}

/// A stored batch, parsed, with where and when it was accepted.
#[derive(Debug, Clone)]
pub struct AcceptedBatch {
    /// Registry id of its rollup.
    pub rollup_id: u32,
    /// Its seq.
    pub seq: u64,
    /// SHA3-256 batch id.
    pub batch_id: [u8; 32],
    /// Acceptance time, µs.
    pub accepted_us: u64,
    /// The submission as parsed at the door.
    pub submission: Submission,
}

/// `YYYY-MM-DD` of a UTC instant.
pub fn utc_day(us: u64) -> String {
    poe_circle_stark::calendar::Day::of_us(us).to_string()
}

/// A stored body parsed for replay, and held to what the store says it is: its batch id,
/// rollup and seq. The store's digests catch damage since the write; this catches a record
/// that was wrong when written (or stored before digests, format 1).
fn replay_parse(
    store: &Store,
    registry: &Registry,
    rollup: &Rollup,
    seq: u64,
    stored: &crate::store::StoredBatch,
) -> Result<Submission, IntakeError> {
    let (sub, parsed_rollup) = parse_submission(&stored.body, registry).map_err(|r| {
        Refusal::new(
            RefusalCode::ReplayFailed,
            format!("{} seq {seq}", rollup.name),
            format!("the stored body no longer parses against the registry: {r}"),
        )
    })?;
    let id = sub.batch_id();
    if id != stored.batch_id || parsed_rollup.id != rollup.id || sub.header.seq != seq {
        return Err(StoreError::Corrupted {
            path: store.path().to_path_buf(),
            what: format!(
                "batch {} ({} seq {seq}): the stored body is batch {} ({} seq {})",
                hex::encode(stored.batch_id),
                rollup.name,
                hex::encode(id),
                parsed_rollup.name,
                sub.header.seq
            ),
        }
        .into());
    }
    Ok(sub)
}

/// Sees every batch a replay re-executes, as `(seq, submission)`.
type EachBatch<'a> = &'a mut dyn FnMut(u64, &Submission);

/// The one replay: rollup `rollup`'s state after re-executing its stored batches before
/// `before_seq`, each held to its record ([`replay_parse`]), starting from the latest snapshot
/// that checks out ([`from_snapshot`]) unless `each` is given: then from the empty state, and
/// `each(seq, submission)` sees every batch. A stored batch that no longer applies is a
/// `ReplayFailed` refusal.
fn replay(
    store: &Store,
    registry: &Registry,
    rollup: &Rollup,
    before_seq: u64,
    mut each: Option<EachBatch<'_>>,
) -> Result<(Head, Rebuilt), IntakeError> {
    let mut rebuilt = Rebuilt {
        rollup: rollup.name.as_str().to_owned(),
        from_seq: 0,
        replayed: 0,
        snapshot_refused: None,
    };
    // A caller that must see every batch (`each`) replays them all.
    let start = if each.is_none() {
        match from_snapshot(store, registry, rollup, before_seq) {
            Ok(found) => found,
            Err(why) => {
                rebuilt.snapshot_refused = Some(why);
                None
            }
        }
    } else {
        None
    };
    let mut head = match start {
        Some(head) => head,
        None => {
            let mut venue = Venue::new(rollup.instruments_at(0).to_vec());
            let root = venue.state_root();
            Head {
                venue,
                seq: 0,
                root,
                ops_since_snapshot: 0,
            }
        }
    };
    rebuilt.from_seq = head.seq;
    for (seq, stored) in store.batches_from(&rollup.name.to_be_bytes32(), head.seq + 1)? {
        if seq >= before_seq {
            break;
        }
        let sub = replay_parse(store, registry, rollup, seq, &stored)?;
        if let Some(each) = each.as_mut() {
            each(seq, &sub);
        }
        // The table of the batch's day: listings take effect at day starts.
        head.venue
            .extend_instruments(rollup.instruments_at(stored.accepted_us));
        let effect = head
            .venue
            .apply_batch(&sub.ops.iter().map(|o| o.op).collect::<Vec<_>>())
            .map_err(|v| {
                Refusal::new(
                    RefusalCode::ReplayFailed,
                    format!("{} seq {seq}", rollup.name),
                    v.to_string(),
                )
            })?;
        head.seq = seq;
        head.root = effect.post_state_root;
        head.ops_since_snapshot += sub.ops.len() as u64;
        rebuilt.replayed += 1;
    }
    Ok((head, rebuilt))
}

/// Every stored listing appended to its rollup's table, in table order, each checked again
/// (parse, the rollup's signature, its position): the registry as it stood when intake
/// stopped. A stored listing that no longer applies (the registry changed under it) is a
/// `replay_failed` refusal naming it.
fn load_listings(store: &Store, registry: &mut Registry) -> Result<(), IntakeError> {
    let names: Vec<String> = registry
        .rollups()
        .iter()
        .map(|r| r.name.as_str().to_owned())
        .collect();
    for name in names {
        let key = registry.get(&name).expect("listed").name.to_be_bytes32();
        for (first, accepted_us, body) in store.listings_of(&key)? {
            let failed = |why: String| -> IntakeError {
                Refusal::new(
                    RefusalCode::ReplayFailed,
                    format!("{name} listing at {first}"),
                    why,
                )
                .into()
            };
            let listing = Listing::parse(&body).map_err(|r| failed(r.to_string()))?;
            listing
                .authenticate(registry)
                .map_err(|r| failed(r.to_string()))?;
            let rollup = registry.get_mut(&name).expect("listed");
            if listing.rollup != name || first as usize != rollup.instruments.len() {
                return Err(failed(format!(
                    "stored at position {first} of {}, the table has {}",
                    listing.rollup,
                    rollup.instruments.len()
                )));
            }
            rollup
                .append(&listing.instruments, listing_effective_from(accepted_us))
                .map_err(|e| failed(e.to_string()))?;
        }
    }
    Ok(())
}

/// A listing accepted at `accepted_us` takes effect at the start of the next UTC day.
pub fn listing_effective_from(accepted_us: u64) -> u64 {
    poe_circle_stark::calendar::Day::of_us(accepted_us)
        .next()
        .start_us()
}

/// What became of an instrument listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListingOutcome {
    /// Appended and stored now (HTTP 202).
    Listed(ListingReceipt),
    /// The same instruments were listed at that position before (HTTP 200).
    Duplicate(ListingReceipt),
}

/// Where a listing's instruments are in the table, and from when they trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingReceipt {
    /// Rollup wire name.
    pub rollup: String,
    /// Table position of the first instrument listed.
    pub first_index: u32,
    /// How many.
    pub count: u32,
    /// When they can first be traded: the start of the UTC day after acceptance (µs).
    pub effective_from_us: u64,
}

/// The rollup's state from its latest snapshot before `before_seq`, if there is one and it
/// checks out: canonical, over the registry's instruments, and giving the post-state root of
/// the stored batch it follows. `Err` says why one was there but not used; the caller replays
/// from the empty state then, as the batches are the truth and the snapshot only a cache.
fn from_snapshot(
    store: &Store,
    registry: &Registry,
    rollup: &Rollup,
    before_seq: u64,
) -> Result<Option<Head>, String> {
    let key = rollup.name.to_be_bytes32();
    let Some((seq, bytes)) = store
        .snapshot_before(&key, before_seq)
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let stored = store
        .id_at(&key, seq)
        .and_then(|id| match id {
            Some(id) => store.get(&id),
            None => Ok(None),
        })
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("snapshot at seq {seq}: no batch {seq} is stored"))?;
    let mut venue =
        Venue::from_snapshot(rollup.instruments_at(stored.accepted_us).to_vec(), &bytes)
            .map_err(|e| format!("snapshot at seq {seq}: {e}"))?;
    let root = venue.state_root();
    let sub = replay_parse(store, registry, rollup, seq, &stored).map_err(|e| e.to_string())?;
    if sub.header.post_state_root != root {
        return Err(format!(
            "snapshot at seq {seq}: its state root {root} is not batch {seq}'s post-state root {}",
            sub.header.post_state_root
        ));
    }
    Ok(Some(Head {
        venue,
        seq,
        root,
        ops_since_snapshot: 0,
    }))
}

fn records_of(sub: &Submission) -> Vec<poe_circle_stark::field::M31> {
    sub.ops.iter().flat_map(|o| o.op.encode()).collect()
}

impl Intake {
    /// Opens the store at `path` (which must exist: [`Store::open`]) and rebuilds every
    /// rollup's state by re-executing its stored batches, each checked against its batch id.
    ///
    /// # Errors
    /// [`IntakeError::Store`] on I/O failure, a missing, empty or damaged store; a stored batch
    /// that no longer parses or applies (registry changed incompatibly) is a `replay_failed`
    /// refusal with its seq.
    pub fn open(registry: Registry, path: &Path) -> Result<Self, IntakeError> {
        Self::open_with(registry, path, OpenOptions::default())
    }

    /// [`Intake::open`], choosing whether snapshots may be used (`poe bench-restart` measures
    /// both ways).
    ///
    /// # Errors
    /// As [`Intake::open`].
    pub fn open_with(
        registry: Registry,
        path: &Path,
        options: OpenOptions,
    ) -> Result<Self, IntakeError> {
        Self::over(registry, Store::open(path)?, options)
    }

    /// Creates a new, empty store at `path`, where there is none ([`Store::create`]): the
    /// explicit act of starting intake from nothing.
    ///
    /// # Errors
    /// [`IntakeError::Store`]: a file already at `path`, or I/O failure.
    pub fn create(registry: Registry, path: &Path) -> Result<Self, IntakeError> {
        Self::over(registry, Store::create(path)?, OpenOptions::default())
    }

    fn over(
        mut registry: Registry,
        store: Store,
        options: OpenOptions,
    ) -> Result<Self, IntakeError> {
        load_listings(&store, &mut registry)?;
        let mut heads = HashMap::new();
        let mut rebuilt = Vec::new();
        let mut unindexed = (!store.trade_ids_indexed()?).then(Vec::new);
        let see_all = unindexed.is_some() || !options.snapshots;
        for rollup in registry.rollups() {
            let key = rollup.name.to_be_bytes32();
            let mut index = |seq: u64, sub: &Submission| {
                if let Some(ids) = unindexed.as_mut() {
                    ids.extend(
                        sub.ops
                            .iter()
                            .map(|o| (key, o.trade_id.to_be_bytes32(), seq)),
                    );
                }
            };
            // Every batch is seen where the trade-id index is to be filled in, or where the
            // operator asked for no snapshot.
            let each: Option<EachBatch<'_>> = if see_all { Some(&mut index) } else { None };
            let (head, how) = replay(&store, &registry, rollup, u64::MAX, each)?;
            heads.insert(rollup.name.as_str().to_owned(), head);
            rebuilt.push(how);
        }
        if let Some(ids) = unindexed {
            store.index_trade_ids(&ids)?;
        }
        let open_from_us = store.closed_before_us()?;
        let last_accepted_us = store.last_accepted_us();
        Ok(Self {
            registry,
            store,
            heads,
            open_from_us,
            last_accepted_us,
            rebuilt,
        })
    }

    /// Lists instruments for a rollup (`POST /v1/rollups/{rollup}/instruments`, `specs/api.md`
    /// §2.6): the listing parsed, its signature checked against the rollup's key, its position
    /// checked against the table (the next free one; the same instruments again at a position
    /// already held is a duplicate), the terms checked, then stored fsync'd and appended. They
    /// trade from the start of the next UTC day.
    ///
    /// # Errors
    /// `malformed_json`, `malformed_amount`, `malformed_signature`, `unknown_rollup`,
    /// `bad_signature`, `listing_conflict` (another position than the next free one, or other
    /// instruments at a position held), `invalid_listing` (terms; a name already listed; an
    /// expiry before the listing could trade; the table full); [`IntakeError::Store`].
    pub fn list(&mut self, body: &[u8], now_us: u64) -> Result<ListingOutcome, IntakeError> {
        let listing = Listing::parse(body)?;
        let rollup = listing.authenticate(&self.registry)?.clone();
        let (first, n) = (listing.first_index as usize, listing.instruments.len());
        let held = rollup.instruments.len();
        let receipt = |effective_from_us| ListingReceipt {
            rollup: listing.rollup.clone(),
            first_index: listing.first_index,
            count: n as u32,
            effective_from_us,
        };
        if first < held {
            let same = first + n <= held
                && listing.instruments.iter().enumerate().all(|(j, t)| {
                    rollup.instruments[first + j] == t.instrument
                        && rollup.instrument_names[first + j] == t.name
                });
            if same {
                return Ok(ListingOutcome::Duplicate(receipt(
                    rollup.effective_from_us[first],
                )));
            }
            return Err(Refusal::new(
                RefusalCode::ListingConflict,
                "first_index",
                format!(
                    "positions {first}.. of {} already hold other instruments; the next free position is {held}",
                    rollup.name
                ),
            )
            .into());
        }
        if first > held {
            return Err(Refusal::new(
                RefusalCode::ListingConflict,
                "first_index",
                format!(
                    "the table of {} has {held} instruments: a listing starts at {held}, not {first}",
                    rollup.name
                ),
            )
            .into());
        }
        let now_us = now_us.max(self.open_from_us);
        let effective = listing_effective_from(now_us);
        let mut checked = rollup.clone();
        checked
            .append(&listing.instruments, effective)
            .map_err(|e| Refusal::new(RefusalCode::InvalidListing, e.path, e.message))?;
        self.store.put_listing(
            &rollup.name.to_be_bytes32(),
            listing.first_index,
            now_us,
            body,
        )?;
        *self
            .registry
            .get_mut(rollup.name.as_str())
            .expect("authenticated against it") = checked;
        Ok(ListingOutcome::Listed(receipt(effective)))
    }

    /// Rollup `rollup_id`'s instrument table in effect at `us` (a day's table: the one its
    /// proofs bind).
    pub fn instruments_at(
        &self,
        rollup_id: u32,
        us: u64,
    ) -> Vec<poe_circle_stark::venue::Instrument> {
        self.registry
            .rollups()
            .iter()
            .find(|r| r.id == rollup_id)
            .map(|r| r.instruments_at(us).to_vec())
            .unwrap_or_default()
    }

    /// How start-up rebuilt each rollup's state (from which snapshot, how many batches
    /// replayed, why a snapshot was refused): `poe serve` logs it.
    pub fn rebuilt(&self) -> &[Rebuilt] {
        &self.rebuilt
    }

    /// Stores a snapshot of every rollup's state at its head, where it moved since the last
    /// one (at a day close, and when `poe serve` stops, so that the next start replays
    /// nothing).
    ///
    /// # Errors
    /// [`IntakeError::Store`]; a snapshot is a cache, so a caller may log this and go on.
    pub fn snapshot_all(&mut self) -> Result<(), IntakeError> {
        for rollup in self.registry.rollups() {
            let Some(head) = self.heads.get_mut(rollup.name.as_str()) else {
                continue;
            };
            if head.seq > 0 && head.ops_since_snapshot > 0 {
                self.store.put_snapshot(
                    &rollup.name.to_be_bytes32(),
                    head.seq,
                    &head.venue.to_snapshot(),
                    SNAPSHOTS_KEPT,
                )?;
                head.ops_since_snapshot = 0;
            }
        }
        Ok(())
    }

    /// Marks every day up to and including `day` closed, on disk before it returns: from now
    /// on, and after any restart whatever the clock then says, a batch is accepted no earlier
    /// than the start of the next day (a late arrival belongs to the next open day). Never
    /// moves backwards.
    ///
    /// # Errors
    /// [`IntakeError::Store`] if the mark could not be persisted; it is then unchanged.
    pub fn close_through(
        &mut self,
        day: poe_circle_stark::calendar::Day,
    ) -> Result<(), IntakeError> {
        let mark = self.open_from_us.max(day.next().start_us());
        self.store.close_before(mark)?;
        self.open_from_us = mark;
        // A snapshot per day at least, whatever the volume. A cache: failing to write one
        // costs a slower start, not the close.
        let _ = self.snapshot_all();
        Ok(())
    }

    /// The earliest acceptance time a new batch can get.
    pub fn open_from_us(&self) -> u64 {
        self.open_from_us
    }

    /// `(accepted_us, batch id)` of every batch accepted at or after `from_us`, in acceptance
    /// order (ties by rollup id, then seq). Reads the indexes only.
    ///
    /// # Errors
    /// [`IntakeError::Store`] on I/O failure.
    pub fn ids_accepted_from(&self, from_us: u64) -> Result<Vec<(u64, [u8; 32])>, IntakeError> {
        let mut rollups: Vec<&Rollup> = self.registry.rollups().iter().collect();
        rollups.sort_by_key(|r| r.id);
        let mut out = Vec::new();
        for rollup in rollups {
            for (_, id, at) in
                self.store
                    .ids_accepted_between(&rollup.name.to_be_bytes32(), from_us, u64::MAX)?
            {
                out.push((at, id));
            }
        }
        // Stable: equal times keep rollup-then-seq order.
        out.sort_by_key(|&(at, _)| at);
        Ok(out)
    }

    /// Whether batch `seq` is rollup `rollup_id`'s first batch accepted at or after `from_us`
    /// (its first of a day, with `from_us` the day's start). Reads the indexes only.
    ///
    /// # Errors
    /// [`IntakeError::Store`] on I/O failure; an unknown rollup is `Ok(false)`.
    pub fn is_first_from(
        &self,
        rollup_id: u32,
        seq: u64,
        from_us: u64,
    ) -> Result<bool, IntakeError> {
        let Some(rollup) = self.registry.rollups().iter().find(|r| r.id == rollup_id) else {
            return Ok(false);
        };
        let ids =
            self.store
                .ids_accepted_between(&rollup.name.to_be_bytes32(), from_us, u64::MAX)?;
        Ok(ids.first().is_some_and(|&(first, _, _)| first == seq))
    }

    /// The venue state of rollup `rollup_id` before its batch `seq`, replayed from the store
    /// (the witness of a validity proof starts there). O(batches before `seq`).
    ///
    /// # Errors
    /// [`IntakeError::Store`] on I/O failure; an unknown rollup or a stored batch that no
    /// longer replays is a refusal.
    pub fn venue_before(&self, rollup_id: u32, seq: u64) -> Result<Venue, IntakeError> {
        let rollup = self
            .registry
            .rollups()
            .iter()
            .find(|r| r.id == rollup_id)
            .ok_or_else(|| {
                Refusal::new(
                    RefusalCode::UnknownRollup,
                    "rollup_id",
                    format!("no rollup {rollup_id}"),
                )
            })?;
        let mut venue = replay(&self.store, &self.registry, rollup, seq, None)?
            .0
            .venue;
        // The table of batch `seq`'s day, which may have grown since the batch before it.
        let key = rollup.name.to_be_bytes32();
        if let Some(id) = self.store.id_at(&key, seq)? {
            if let Some(stored) = self.store.get(&id)? {
                venue.extend_instruments(rollup.instruments_at(stored.accepted_us));
            }
        }
        Ok(venue)
    }

    /// One stored batch, parsed; `None` if there is no such batch.
    ///
    /// # Errors
    /// [`IntakeError::Store`] on I/O failure; a stored body that no longer parses is a refusal.
    pub fn batch(&self, batch_id: &[u8; 32]) -> Result<Option<AcceptedBatch>, IntakeError> {
        let Some(stored) = self.store.get(batch_id)? else {
            return Ok(None);
        };
        let (submission, rollup) = parse_submission(&stored.body, &self.registry)?;
        Ok(Some(AcceptedBatch {
            rollup_id: rollup.id,
            seq: submission.header.seq,
            batch_id: stored.batch_id,
            accepted_us: stored.accepted_us,
            submission,
        }))
    }

    /// Every batch accepted in `[from_us, to_us)`, parsed, by rollup id then seq.
    ///
    /// # Errors
    /// [`IntakeError::Store`] on I/O failure; a stored body that no longer parses is a refusal.
    pub fn accepted_between(
        &self,
        from_us: u64,
        to_us: u64,
    ) -> Result<Vec<AcceptedBatch>, IntakeError> {
        let mut rollups: Vec<&Rollup> = self.registry.rollups().iter().collect();
        rollups.sort_by_key(|r| r.id);
        let mut out = Vec::new();
        for rollup in rollups {
            for (seq, stored) in
                self.store
                    .accepted_between(&rollup.name.to_be_bytes32(), from_us, to_us)?
            {
                let (submission, _) = parse_submission(&stored.body, &self.registry)?;
                out.push(AcceptedBatch {
                    rollup_id: rollup.id,
                    seq,
                    batch_id: stored.batch_id,
                    accepted_us: stored.accepted_us,
                    submission,
                });
            }
        }
        Ok(out)
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Last accepted `(seq, post_state_root)` of a rollup (`(0, empty root)` before any).
    pub fn head(&self, rollup: &str) -> Option<(u64, Digest)> {
        self.heads.get(rollup).map(|h| (h.seq, h.root))
    }

    /// Submits a request body accepted at `now_us`: [`check`] then [`Intake::admit`].
    ///
    /// # Errors
    /// [`IntakeError::Refused`] with the check that failed; [`IntakeError::Store`] if the batch
    /// could not be persisted. Either way nothing changes.
    pub fn submit(&mut self, body: &[u8], now_us: u64) -> Result<Outcome, IntakeError> {
        let checked = check(&self.registry, body)?;
        self.admit(checked, body, now_us)
    }

    /// The stateful half of intake: idempotency, continuity, the rollup's proof, re-execution,
    /// then the fsync'd write. `body` must be the bytes `checked` came from.
    ///
    /// # Errors
    /// As [`Intake::submit`].
    pub fn admit(
        &mut self,
        checked: Checked,
        body: &[u8],
        now_us: u64,
    ) -> Result<Outcome, IntakeError> {
        let now_us = now_us.max(self.open_from_us).max(self.last_accepted_us);
        let Checked { sub, rollup } = checked;
        let batch_id = sub.batch_id();
        let name_key = rollup.name.to_be_bytes32();

        if let Some(existing) = self.store.id_at(&name_key, sub.header.seq)? {
            if existing == batch_id {
                let stored = self.store.get(&existing)?.expect("indexed batch exists");
                return Ok(Outcome::Duplicate(self.receipt(
                    &sub,
                    &rollup,
                    stored.accepted_us,
                )?));
            }
            return Err(seq_taken(sub.header.seq, &existing));
        }
        let Executed {
            venue,
            post_state_root,
            trade_ids,
            receipt,
        } = self.execute(&sub, &rollup, now_us)?;
        let head_seq = self.heads[rollup.name.as_str()].seq;
        if post_state_root != sub.header.post_state_root {
            return Err(Refusal::new(
                RefusalCode::PostStateRootMismatch,
                "header.post_state_root",
                // Not the root re-execution gives: a refusal that named it would be an oracle
                // that rollups sign whatever poe computes against (the dry run, signed by the
                // rollup, is the designed way to ask).
                format!(
                    "re-executing the operations from the state at seq {head_seq} does not give the header's {}",
                    sub.header.post_state_root
                ),
            )
            .into());
        }
        self.store.put(
            &name_key,
            sub.header.seq,
            &batch_id,
            now_us,
            body,
            &trade_ids,
        )?;
        self.last_accepted_us = now_us;
        let head = self
            .heads
            .get_mut(rollup.name.as_str())
            .expect("a registered rollup has a head");
        *head = Head {
            venue,
            seq: sub.header.seq,
            root: post_state_root,
            ops_since_snapshot: head.ops_since_snapshot + sub.ops.len() as u64,
        };
        if head.ops_since_snapshot >= SNAPSHOT_EVERY_OPS {
            // After the batch is on disk: a failure here costs a slower start, not the batch.
            if self
                .store
                .put_snapshot(
                    &name_key,
                    head.seq,
                    &head.venue.to_snapshot(),
                    SNAPSHOTS_KEPT,
                )
                .is_ok()
            {
                head.ops_since_snapshot = 0;
            }
        }
        Ok(Outcome::Accepted(receipt))
    }

    /// A dry run of a checked submission (`POST /v1/batches/dry-run`, `specs/api.md` §2.5):
    /// every stateful check of [`Intake::admit`] against the rollup's current head and the
    /// re-execution, but nothing stored, and the header's post-state root not required to
    /// match — the result says what it is. The signature was checked (the rollup asks about
    /// its own state: a rule violation tells of its accounts).
    ///
    /// # Errors
    /// The refusal [`Intake::admit`] would give, but for the post-state root.
    pub fn dry_run(&self, checked: &Checked, now_us: u64) -> Result<DryRun, IntakeError> {
        let now_us = now_us.max(self.open_from_us).max(self.last_accepted_us);
        let Checked { sub, rollup } = checked;
        if let Some(existing) = self
            .store
            .id_at(&rollup.name.to_be_bytes32(), sub.header.seq)?
        {
            return Err(seq_taken(sub.header.seq, &existing));
        }
        let Executed {
            post_state_root,
            receipt,
            ..
        } = self.execute(sub, rollup, now_us)?;
        Ok(DryRun {
            rollup: rollup.name.as_str().to_owned(),
            seq: sub.header.seq,
            n_ops: sub.ops.len() as u32,
            pre_state_root: sub.header.pre_state_root,
            post_state_root,
            header_post_state_root: sub.header.post_state_root,
            data_root: receipt.data_root,
            batch_id: sub.batch_id(),
        })
    }

    /// Continuity, timestamps, trade ids, the rollup's proof and re-execution from the rollup's
    /// head, in `specs/api.md` §2.4's order: the venue after the batch, its post-state root, the
    /// batch's trade ids and its receipt.
    fn execute(
        &self,
        sub: &Submission,
        rollup: &Rollup,
        now_us: u64,
    ) -> Result<Executed, IntakeError> {
        let name_key = rollup.name.to_be_bytes32();
        let head = self
            .heads
            .get(rollup.name.as_str())
            .expect("every registered rollup has a head");
        if sub.header.seq != head.seq + 1 {
            return Err(Refusal::new(
                RefusalCode::SeqGap,
                "header.seq",
                format!("expected seq {}, got {}", head.seq + 1, sub.header.seq),
            )
            .into());
        }
        if sub.header.pre_state_root != head.root {
            return Err(Refusal::new(
                RefusalCode::StateFork,
                "header.pre_state_root",
                format!(
                    "expected {} (post state of seq {}), got {}",
                    head.root, head.seq, sub.header.pre_state_root
                ),
            )
            .into());
        }
        // The venue's clock only moves forward: one operation stamped far ahead (2^63 − 1 µs)
        // would freeze the rollup for ever, so stamps may lead acceptance by the skew at most.
        if let Some((i, ts)) = sub
            .ops
            .iter()
            .map(|o| o.op.timestamp_us())
            .enumerate()
            .find(|&(_, ts)| ts > now_us.saturating_add(MAX_CLOCK_SKEW_US))
        {
            return Err(Refusal {
                code: RefusalCode::TimestampInFuture,
                path: format!("operations[{i}].timestamp_us"),
                message: format!(
                    "{ts} µs is more than {} s after acceptance at {now_us} µs",
                    MAX_CLOCK_SKEW_US / 1_000_000
                ),
                op_index: Some(i),
            }
            .into());
        }
        // History written after the fact: a trade stamped before its instrument's expiry but
        // submitted once the outcome is known, or any operation older than a day.
        for (i, o) in sub.ops.iter().enumerate() {
            let ts = o.op.timestamp_us();
            if ts.saturating_add(MAX_OPERATION_AGE_US) < now_us {
                return Err(Refusal {
                    code: RefusalCode::TimestampTooOld,
                    path: format!("operations[{i}].timestamp_us"),
                    message: format!(
                        "{ts} µs is more than {} h before acceptance at {now_us} µs",
                        MAX_OPERATION_AGE_US / 3_600_000_000
                    ),
                    op_index: Some(i),
                }
                .into());
            }
            if let Operation::Trade { instrument, .. } = o.op {
                let expiry = rollup
                    .instruments
                    .get(instrument as usize)
                    .map(|inst| inst.expiry_us);
                if let Some(expiry) =
                    expiry.filter(|&x| x.saturating_add(MAX_CLOCK_SKEW_US) < now_us)
                {
                    return Err(Refusal {
                        code: RefusalCode::InstrumentExpired,
                        path: format!("operations[{i}].instrument"),
                        message: format!(
                            "the instrument expired at {expiry} µs, more than {} s before acceptance at {now_us} µs: trades on it are no longer accepted",
                            MAX_CLOCK_SKEW_US / 1_000_000
                        ),
                        op_index: Some(i),
                    }
                    .into());
                }
            }
        }
        let trade_ids: Vec<[u8; 32]> = sub.ops.iter().map(|o| o.trade_id.to_be_bytes32()).collect();
        if let Some((i, seq)) = self.store.first_used_trade_id(&name_key, &trade_ids)? {
            return Err(Refusal {
                code: RefusalCode::DuplicateTradeId,
                path: format!("operations[{i}].id"),
                message: format!(
                    "id {:?} was already used by the batch at seq {seq}",
                    sub.ops[i].trade_id.as_str()
                ),
                op_index: Some(i),
            }
            .into());
        } // The rollup's own proof, if poe can verify it, before the costlier re-execution.
        let receipt = self.receipt(sub, rollup, now_us)?;

        let mut venue = head.venue.clone();
        // Instruments listed for today are tradable; those listed today wait for tomorrow
        // (the venue refuses them as unknown).
        if let Some(entry) = self.registry.get(rollup.name.as_str()) {
            venue.extend_instruments(entry.instruments_at(now_us));
        }
        let effect = venue
            .apply_batch(&sub.ops.iter().map(|o| o.op).collect::<Vec<_>>())
            .map_err(|v| Refusal {
                code: RefusalCode::RuleViolation,
                path: format!("operations[{}]", v.op_index),
                message: v.rule.to_string(),
                op_index: Some(v.op_index),
            })?;
        Ok(Executed {
            venue,
            post_state_root: effect.post_state_root,
            trade_ids,
            receipt,
        })
    }

    fn receipt(
        &self,
        sub: &Submission,
        rollup: &Rollup,
        accepted_us: u64,
    ) -> Result<Receipt, Refusal> {
        let records = records_of(sub);
        let data_root = data_root(&records, OP_LIMBS);
        let rollup_proof = if sub.header.proof_system.as_str() == POE_PROOF_SYSTEM {
            let statement = DataRootStatement {
                n_records: sub.ops.len() as u32,
                record_limbs: OP_LIMBS as u32,
                root: data_root,
            };
            verify_data_root_bytes(&sub.proof_bytes, &statement, &VerifierPolicy::default())
                .map_err(|e| {
                    Refusal::new(
                        RefusalCode::RollupProofInvalid,
                        "header.rollup_proof.bytes",
                        e.to_string(),
                    )
                })?;
            RollupProofStatus::Verified
        } else {
            RollupProofStatus::Unverified
        };
        Ok(Receipt {
            batch_id: sub.batch_id(),
            rollup: rollup.name.as_str().to_owned(),
            seq: sub.header.seq,
            day: utc_day(accepted_us),
            accepted_us,
            n_ops: sub.header.n_ops,
            pre_state_root: sub.header.pre_state_root,
            post_state_root: sub.header.post_state_root,
            data_root,
            rollup_proof_system: sub.header.proof_system.as_str().to_owned(),
            rollup_proof,
            rollup_proof_digest: sub.header.proof_digest,
        })
    }

    /// Receipts of a rollup's batches from `from_seq` on, at most `limit`; `None` for an
    /// unknown rollup.
    ///
    /// # Errors
    /// [`IntakeError`] if the store fails or a stored body no longer parses.
    pub fn receipts_from(
        &self,
        rollup: &str,
        from_seq: u64,
        limit: usize,
    ) -> Result<Option<Vec<Receipt>>, IntakeError> {
        let Some(r) = self.registry.get(rollup) else {
            return Ok(None);
        };
        let ids = self
            .store
            .ids_from(&r.name.to_be_bytes32(), from_seq, limit)?;
        let mut out = Vec::with_capacity(ids.len());
        for (_, id) in ids {
            out.extend(self.receipt_of(&id)?);
        }
        Ok(Some(out))
    }

    /// The receipt of a stored batch.
    ///
    /// # Errors
    /// [`IntakeError`] if the store fails or the stored body no longer parses.
    pub fn receipt_of(&self, batch_id: &[u8; 32]) -> Result<Option<Receipt>, IntakeError> {
        let Some(stored) = self.store.get(batch_id)? else {
            return Ok(None);
        };
        let (sub, rollup) = parse_submission(&stored.body, &self.registry)?;
        Ok(Some(self.receipt(&sub, rollup, stored.accepted_us)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_days() {
        assert_eq!(utc_day(0), "1970-01-01");
        assert_eq!(utc_day(1_795_000_000_000_000), "2026-11-18");
        assert_eq!(utc_day(951_782_400_000_000), "2000-02-29");
        assert_eq!(utc_day(951_868_799_999_999), "2000-02-29");
        assert_eq!(utc_day(951_868_800_000_000), "2000-03-01");
    }
}
