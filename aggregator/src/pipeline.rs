//! The day pipeline inside `poe serve` (`specs/day-proof.md` §5): a bounded pool of leaf
//! provers fed by intake, and a closer that turns each ended UTC day into its published bundle
//! and root proof.
//!
//! Everything it knows survives a crash as files: accepted batches are in the intake store,
//! leaf proofs wait in the leaf store (each one written by an atomic rename) until their day
//! is published, and a day is published by one rename (`poe_archive::bundle`). On start the
//! pipeline rebuilds its queue from those; proofs are deterministic, so a restarted pipeline
//! ends with the bytes an uninterrupted one would have written.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use poe_api::{leaf_file, AppState};
use poe_archive::{Day, Storage};
use poe_circle_stark::config::SecurityConfig;
use poe_ingest::intake::Receipt;

use crate::day::{
    batch_input, close_input, day_input, leaf_proof, run_file, run_file_day, LeafKind, RunStore,
};
use poe_archive::bundle::BatchInput;
use poe_circle_stark::day::recursive::RecursionPresets;
use poe_circle_stark::day::root::SEGMENT_CAPACITY_OPS;
use poe_circle_stark::day::statement::BatchStatement;
use poe_circle_stark::proof::ChannelId;
use poe_circle_stark::validity::MAX_BATCHES;
use poe_circle_stark::venue::{Operation, Venue};
use std::collections::HashMap;

/// How the pipeline runs.
#[derive(Debug, Clone, Copy)]
pub struct PipelineConfig {
    /// Leaf prover threads (each proof is itself parallel, so 1 suits a 2-core machine).
    pub workers: usize,
    /// Security of leaf proofs; root proofs use `day::root_security` of it.
    pub security: SecurityConfig,
    /// How long after midnight a day is closed (µs): room for a skewed rollup clock. Batches
    /// arriving after the close go to the next day regardless.
    pub close_grace_us: u64,
    /// How often the closer looks at the clock.
    pub tick: Duration,
    /// Longest wait between retries of a failing day close: a close re-runs a root proof of
    /// tens of seconds, so retries back off from `2·tick`, doubling up to this.
    pub max_close_backoff: Duration,
    /// Most operations in one run of a rollup's batches (a segment before shape classes cut
    /// it again): a run is proven as soon as the rollup's next batch does not fit, before its
    /// day closes. [`SEGMENT_CAPACITY_OPS`] but in tests.
    pub segment_capacity_ops: usize,
    /// Whether published bundles carry the batches' leaf proofs (a v5 root proves every
    /// state root without them; the leaves are still proven for the receipts' `proven`).
    pub bundle_leaf_proofs: bool,
}

impl PipelineConfig {
    /// One worker, production security, close 5 s after midnight, look every second, retry a
    /// failed close after 2 s, 4 s, … up to 5 minutes.
    pub fn production() -> Self {
        Self {
            workers: 1,
            security: SecurityConfig::production(),
            close_grace_us: 5_000_000,
            tick: Duration::from_secs(1),
            max_close_backoff: Duration::from_secs(300),
            segment_capacity_ops: SEGMENT_CAPACITY_OPS,
            bundle_leaf_proofs: false,
        }
    }
}

#[derive(Default)]
struct Queue {
    /// Batches waiting for a worker, in acceptance order.
    jobs: VecDeque<[u8; 32]>,
    /// Batches queued or being proven (never queued twice).
    queued: HashSet<[u8; 32]>,
    /// Batches of open days: `(accepted_us, batch id)`.
    pending: BTreeSet<(u64, [u8; 32])>,
}

struct Shared {
    state: AppState,
    archive: Arc<dyn Storage>,
    leaves: Arc<dyn Storage>,
    config: PipelineConfig,
    queue: Mutex<Queue>,
    wake: Condvar,
    stop: AtomicBool,
    /// Per rollup id: the next seq to prove and the venue state before it, so that proving a
    /// day's batches in order replays nothing.
    venues: Mutex<HashMap<u32, (u64, Venue)>>,
    /// Per rollup id: the run its proven batches are growing, to be proven once it is final.
    runs: Mutex<HashMap<u32, OpenRun>>,
}

/// A run of one rollup's batches of one day, as leaf proving walks them in order.
struct OpenRun {
    day: Day,
    /// The rollup's state before the run's first batch.
    venue: Venue,
    statements: Vec<BatchStatement>,
    ops: Vec<Vec<Operation>>,
    n_ops: usize,
    /// Whether the run is known to start where `plan_segments` starts one: at the rollup's
    /// first batch of the day or after a run it closed. A run picked up half-way (after a
    /// restart, or a batch proven out of order) is left to the close.
    aligned: bool,
}

impl OpenRun {
    fn next_seq(&self) -> u64 {
        self.statements.last().map_or(0, |s| s.seq + 1)
    }

    /// Whether `b` extends the run as `plan_segments` would (same instruments, within the
    /// capacity and the batch limit).
    fn holds(&self, b: &BatchStatement, capacity: usize) -> bool {
        self.statements[0].instruments_root == b.instruments_root
            && self.n_ops + b.n_ops as usize <= capacity
            && self.statements.len() < MAX_BATCHES
    }
}

/// A running pipeline; [`Pipeline::stop`] ends it.
pub struct Pipeline {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// Days published in `archive`, oldest first.
///
/// # Errors
/// Archive listing failures.
pub fn published_days(archive: &dyn Storage) -> std::io::Result<Vec<Day>> {
    Ok(archive
        .children(poe_archive::layout::DAYS)?
        .iter()
        .filter_map(|n| n.parse::<Day>().ok())
        .filter(|d| poe_archive::layout::is_published(archive, d))
        .collect())
}

impl Pipeline {
    /// Starts the pipeline over `state`'s intake: closes intake through the last published
    /// day, drops leaf proofs of published days, queues every batch of an open day that has
    /// no leaf proof yet, and starts the workers and the closer. Feed it new batches through
    /// [`Pipeline::hook`].
    ///
    /// # Errors
    /// Store or archive failures, as text; a pool of zero workers.
    pub fn start(
        state: AppState,
        archive: Arc<dyn Storage>,
        leaves: Arc<dyn Storage>,
        config: PipelineConfig,
    ) -> Result<Self, String> {
        if config.workers == 0 {
            return Err("the pipeline needs at least one leaf prover".into());
        }
        let published = published_days(&*archive).map_err(|e| format!("archive: {e}"))?;
        if let Some(last) = published.last() {
            state
                .with_intake_mut(|i| i.close_through(*last))
                .map_err(|e| e.to_string())?;
        }
        // From the last published day, not from intake's close mark: a day whose close began
        // (the mark is durable) but was not published before a crash is still to be closed.
        let unpublished_from = published.last().map_or(0, |d| d.next().start_us());
        let pending = state
            .with_intake(|i| i.ids_accepted_from(unpublished_from))
            .map_err(|e| e.to_string())?;
        let pending_ids: HashSet<[u8; 32]> = pending.iter().map(|(_, id)| *id).collect();
        // Leaf proofs left behind by a crash between publishing a day and clearing its leaves.
        for (name, _) in leaves.list("").map_err(|e| format!("leaf store: {e}"))? {
            // Runs of days not yet published stay for their close.
            if run_file_day(&name).is_some_and(|d| d.start_us() >= unpublished_from) {
                continue;
            }
            let id = name
                .strip_suffix(".leaf")
                .and_then(|h| hex::decode(h).ok())
                .and_then(|b| <[u8; 32]>::try_from(b).ok());
            if id.is_none_or(|id| !pending_ids.contains(&id)) {
                leaves
                    .remove(&name)
                    .map_err(|e| format!("leaf store: {e}"))?;
            }
        }
        let mut queue = Queue::default();
        for &(at, id) in &pending {
            queue.pending.insert((at, id));
            if !leaves.exists(&leaf_file(&id)) {
                queue.jobs.push_back(id);
                queue.queued.insert(id);
            }
        }
        state
            .metrics()
            .pipeline
            .leaf_backlog
            .set(queue.jobs.len() as i64);
        let shared = Arc::new(Shared {
            state,
            archive,
            leaves,
            config,
            queue: Mutex::new(queue),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            venues: Mutex::new(HashMap::new()),
            runs: Mutex::new(HashMap::new()),
        });
        tracing::info!(
            target: "poe::pipeline",
            workers = config.workers,
            open_batches = pending.len(),
            leaf_backlog = shared.lock().jobs.len(),
            last_closed_day = published.last().map(ToString::to_string),
            "pipeline started"
        );
        let mut threads = Vec::new();
        for n in 0..config.workers {
            let s = shared.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("poe-leaf-{n}"))
                    .spawn(move || worker(&s))
                    .map_err(|e| e.to_string())?,
            );
        }
        let s = shared.clone();
        threads.push(
            std::thread::Builder::new()
                .name("poe-day-closer".into())
                .spawn(move || closer(&s))
                .map_err(|e| e.to_string())?,
        );
        Ok(Self { shared, threads })
    }

    /// The intake hook that queues each newly accepted batch
    /// ([`AppState::with_accept_hook`]).
    pub fn hook(&self) -> poe_api::AcceptHook {
        let shared = self.shared.clone();
        Arc::new(move |r: &Receipt| {
            let mut q = shared.lock();
            q.pending.insert((r.accepted_us, r.batch_id));
            if q.queued.insert(r.batch_id) {
                q.jobs.push_back(r.batch_id);
                shared.state.metrics().pipeline.leaf_backlog.inc();
            }
            drop(q);
            shared.wake.notify_all();
        })
    }

    /// Stops taking work. With `join`, waits for the proof or close in progress to finish;
    /// without, leaves it to die with the process (a restart redoes it: nothing is published
    /// half-way).
    pub fn stop(self, join: bool) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.notify_all();
        if join {
            for t in self.threads {
                let _ = t.join();
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn prove_leaf(&self, id: &[u8; 32]) -> Result<(), String> {
        let name = leaf_file(id);
        if self.leaves.exists(&name) {
            return Ok(());
        }
        let (batch, rollup) = self
            .state
            .with_intake(|i| {
                let b = i.batch(id)?;
                Ok::<_, poe_ingest::intake::IntakeError>(b.map(|b| {
                    let rollup = i
                        .registry()
                        .rollups()
                        .iter()
                        .find(|r| r.id == b.rollup_id)
                        .expect("stored batches belong to registered rollups")
                        .clone();
                    (b, rollup)
                }))
            })
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("batch {} is not in the store", hex::encode(id)))?;
        let input = batch_input(&rollup, batch);
        let venue = self.venue_before(rollup.id, &input)?;
        let t = Instant::now();
        let (proof, kind) = leaf_proof(&input, Some(&venue), self.config.security)?;
        let reused = kind == LeafKind::Reused;
        let seconds = t.elapsed().as_secs_f64();
        self.leaves
            .write(&name, &proof)
            .map_err(|e| format!("leaf store: {e}"))?;
        let m = &self.state.metrics().pipeline;
        if reused {
            m.leaves_reused.inc();
        } else {
            m.leaves_proven.inc();
            m.leaf_ops_proven.inc_by(input.ops.len() as u64);
            m.leaf_prove_seconds.inc_by(seconds);
        }
        tracing::info!(
            target: "poe::pipeline",
            batch_id = hex::encode(id),
            rollup = rollup.name.as_str(),
            seq = input.statement.seq,
            n_ops = input.ops.len(),
            reused,
            bytes = proof.len(),
            ms = (seconds * 1e6).round() / 1e3,
            "leaf proven"
        );
        self.state.notify(rollup.name.as_str(), input.statement.seq);
        self.extend_run(&input, venue)
    }

    /// Adds a proven batch to its rollup's open run; if the batch does not fit, the run is
    /// final (nothing later in the day changes it) and is proven now, its segments stored for
    /// the close.
    fn extend_run(&self, b: &BatchInput, before: Venue) -> Result<(), String> {
        let day = Day::of_us(b.accepted_us);
        let ops: Vec<Operation> = b.ops.iter().map(|o| o.op).collect();
        let capacity = self.config.segment_capacity_ops;
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = |aligned: bool| OpenRun {
            day,
            venue: before.clone(),
            statements: vec![b.statement],
            ops: vec![ops.clone()],
            n_ops: ops.len(),
            aligned,
        };
        let rollup_id = b.statement.rollup_id;
        let final_run = match runs.remove(&rollup_id) {
            Some(mut r) if r.day == day && r.next_seq() == b.statement.seq => {
                if r.holds(&b.statement, capacity) {
                    r.statements.push(b.statement);
                    r.ops.push(ops);
                    r.n_ops += b.ops.len();
                    runs.insert(rollup_id, r);
                    None
                } else {
                    runs.insert(rollup_id, fresh(true));
                    Some(r).filter(|r| r.aligned)
                }
            }
            // Another day: this batch starts the rollup's first run of it.
            Some(r) if r.day < day && r.next_seq() == b.statement.seq => {
                runs.insert(rollup_id, fresh(true));
                None
            }
            // Nothing known (a start, a gap): aligned only if the batch is the rollup's first
            // of its day, which the store's index says.
            _ => {
                let first_of_day = self
                    .state
                    .with_intake(|i| i.is_first_from(rollup_id, b.statement.seq, day.start_us()))
                    .unwrap_or(false);
                runs.insert(rollup_id, fresh(first_of_day));
                None
            }
        };
        drop(runs);
        match final_run {
            Some(run) => self.prove_run(run),
            None => Ok(()),
        }
    }

    /// Proves a final run's segments and stores them for the day's close.
    fn prove_run(&self, run: OpenRun) -> Result<(), String> {
        let (first, last) = (run.statements[0], run.statements[run.statements.len() - 1]);
        let name = run_file(run.day, first.rollup_id, first.seq, last.seq);
        if self.leaves.exists(&name) {
            return Ok(());
        }
        let t = Instant::now();
        let presets = RecursionPresets::for_root(crate::day::root_security(self.config.security));
        let refs: Vec<&[Operation]> = run.ops.iter().map(Vec::as_slice).collect();
        let mut venue = run.venue;
        let proven = poe_circle_stark::day::runs::prove_run(
            &mut venue,
            &run.statements,
            &refs,
            presets.segment,
            ChannelId::Poseidon2,
            poe_circle_stark::day::recursive::RecursiveFormat::CURRENT.segment_air(),
        )
        .map_err(|e| {
            format!(
                "run of rollup {} seq {}..={}: {e}",
                first.rollup_id, first.seq, last.seq
            )
        })?;
        self.leaves
            .write(&name, &proven.to_bytes())
            .map_err(|e| format!("leaf store: {e}"))?;
        self.state.metrics().pipeline.runs_proven.inc();
        tracing::info!(
            target: "poe::pipeline",
            day = %run.day,
            rollup_id = first.rollup_id,
            first_seq = first.seq,
            last_seq = last.seq,
            n_ops = run.n_ops,
            segments = proven.pieces.len(),
            s = t.elapsed().as_secs_f64(),
            "run proven"
        );
        Ok(())
    }

    /// The venue state before `b`, from the cache when batches come in order (then advanced
    /// past `b` at once, so that the next worker finds it), else replayed from the store.
    fn venue_before(&self, rollup_id: u32, b: &BatchInput) -> Result<Venue, String> {
        let seq = b.statement.seq;
        let mut cache = self.venues.lock().unwrap_or_else(|p| p.into_inner());
        let before = match cache.get(&rollup_id) {
            Some((next, v)) if *next == seq => v.clone(),
            _ => self
                .state
                .with_intake(|i| i.venue_before(rollup_id, seq))
                .map_err(|e| e.to_string())?,
        };
        // The table of b's day: instruments listed for it since the cached batch.
        let mut before = before;
        before.extend_instruments(
            &self
                .state
                .with_intake(|i| i.instruments_at(rollup_id, b.accepted_us)),
        );
        let mut after = before.clone();
        let ops: Vec<Operation> = b.ops.iter().map(|o| o.op).collect();
        after
            .apply_batch(&ops)
            .map_err(|e| format!("seq {seq} no longer applies: {e}"))?;
        cache.insert(rollup_id, (seq + 1, after));
        Ok(before)
    }

    /// Closes the oldest open day if it has ended and all its leaf proofs are in. `Ok(true)`
    /// if a day was published.
    fn try_close(&self) -> Result<bool, String> {
        let Some(&(first_at, _)) = self.lock().pending.first() else {
            return Ok(false);
        };
        let day = Day::of_us(first_at);
        let now = (self.state.clock())();
        if now
            < day
                .next()
                .start_us()
                .saturating_add(self.config.close_grace_us)
        {
            return Ok(false);
        }
        // From here on intake stamps new batches into the next day at the earliest, so the
        // store's view of `day` is final.
        let ids: Vec<[u8; 32]> = self
            .state
            .with_intake_mut(|i| {
                i.close_through(day)?;
                i.ids_accepted_from(day.start_us())
            })
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|&(at, _)| at < day.next().start_us())
            .map(|(_, id)| id)
            .collect();
        let missing: Vec<[u8; 32]> = ids
            .iter()
            .filter(|id| !self.leaves.exists(&leaf_file(id)))
            .copied()
            .collect();
        if !missing.is_empty() {
            // Normally already queued; a failed proof is queued again here.
            let mut q = self.lock();
            for id in missing {
                if q.queued.insert(id) {
                    q.jobs.push_back(id);
                }
            }
            drop(q);
            self.wake.notify_all();
            return Ok(false);
        }
        let start = Instant::now();
        let (mut input, mut venues) = self.state.with_intake(|i| {
            let input = day_input(i, day, self.config.security)?;
            let venues = crate::day::day_venues(i, &input)?;
            Ok::<_, String>((input, venues))
        })?;
        input.leaf_proofs = self.config.bundle_leaf_proofs;
        if input.leaf_proofs {
            for b in &mut input.batches {
                b.leaf_proof = Some(
                    self.leaves
                        .read(&leaf_file(&b.batch_id))
                        .map_err(|e| format!("leaf store: {e}"))?,
                );
            }
        }
        let n_ops: u64 = input.batches.iter().map(|b| b.ops.len() as u64).sum();
        let closed = close_input(
            input,
            &mut venues,
            &*self.archive,
            self.config.security,
            &mut |stage| {
                // The root's steps, one log line each: a day of 10^6 operations takes minutes.
                if let poe_archive::Stage::RootStep(step) = stage {
                    tracing::info!(target: "poe::pipeline", day = %day, step, "root step");
                }
            },
            start,
            Some(RunStore {
                storage: &*self.leaves,
                capacity_ops: self.config.segment_capacity_ops,
            }),
        )?;
        {
            let mut q = self.lock();
            let end = day.next().start_us();
            q.pending = q.pending.split_off(&(end, [0u8; 32]));
        }
        for id in &ids {
            self.leaves
                .remove(&leaf_file(id))
                .map_err(|e| format!("leaf store: {e}"))?;
        }
        for (name, _) in self
            .leaves
            .list("")
            .map_err(|e| format!("leaf store: {e}"))?
        {
            if run_file_day(&name).is_some_and(|d| d <= day) {
                self.leaves
                    .remove(&name)
                    .map_err(|e| format!("leaf store: {e}"))?;
            }
        }
        let m = &self.state.metrics().pipeline;
        // Every batch of the day is `included` now.
        for id in &ids {
            if let Ok(Some(r)) = self.state.with_intake(|i| i.receipt_of(id)) {
                self.state.notify(&r.rollup, r.seq);
            }
        }
        m.runs_reused.inc_by(closed.runs_reused as u64);
        m.days_closed.inc();
        m.last_close_seconds.set(closed.total_s);
        m.last_day_ops.set(n_ops as i64);
        tracing::info!(
            target: "poe::pipeline",
            day = %day,
            n_batches = ids.len(),
            n_ops,
            written = closed.summary.written,
            root_air = closed.summary.statement.air,
            root_proof_bytes = closed.summary.statement.root_proof_bytes,
            segments = closed.summary.statement.tree.as_ref().map(|t| t.w_nodes),
            runs_reused = closed.runs_reused,
            prove_s = closed.prove_s,
            total_s = closed.total_s,
            "day closed"
        );
        Ok(true)
    }
}

fn worker(shared: &Shared) {
    loop {
        let id = {
            let mut q = shared.lock();
            loop {
                if shared.stopped() {
                    return;
                }
                if let Some(id) = q.jobs.pop_front() {
                    break id;
                }
                q = shared.wake.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        };
        let result = shared.prove_leaf(&id);
        shared.lock().queued.remove(&id);
        let m = &shared.state.metrics().pipeline;
        if m.leaf_backlog.get() > 0 {
            m.leaf_backlog.dec();
        }
        match result {
            Ok(()) => shared.state.clear_leaf_failure(&id),
            Err(e) => {
                m.failures.inc();
                shared.state.report_leaf_failure(&id, &e);
                tracing::error!(target: "poe::pipeline", batch_id = hex::encode(id), error = e, "leaf failed");
            }
        }
        shared.wake.notify_all();
    }
}

/// The wait before retry `failures` (≥ 1) of a failing close: `2^failures · tick`, at most
/// `max`.
pub fn close_backoff(tick: Duration, failures: u32, max: Duration) -> Duration {
    tick.saturating_mul(1u32 << failures.min(20)).min(max)
}

fn closer(shared: &Shared) {
    let mut failures = 0u32;
    while !shared.stopped() {
        let retry_at = match shared.try_close() {
            Ok(true) => {
                failures = 0;
                shared.state.clear_close_failure();
                continue;
            }
            Ok(false) => {
                failures = 0;
                shared.state.clear_close_failure();
                None
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let wait = close_backoff(
                    shared.config.tick,
                    failures,
                    shared.config.max_close_backoff,
                );
                shared.state.metrics().pipeline.failures.inc();
                // The receipts of the day's batches say why they are not included yet.
                let day = shared
                    .lock()
                    .pending
                    .first()
                    .map(|&(at, _)| Day::of_us(at).to_string());
                if let Some(day) = day {
                    let next = (shared.state.clock())()
                        .saturating_add(u64::try_from(wait.as_micros()).unwrap_or(u64::MAX));
                    shared.state.report_close_failure(&day, &e, Some(next));
                }
                tracing::error!(
                    target: "poe::pipeline",
                    error = e,
                    failures,
                    retry_in_s = wait.as_secs_f64(),
                    "close failed"
                );
                Some(Instant::now() + wait)
            }
        };
        let mut q = shared.lock();
        match retry_at {
            // Healthy: look again after a tick, or as soon as a leaf proof lands.
            None => {
                if shared.stopped() {
                    return;
                }
                let _ = shared.wake.wait_timeout(q, shared.config.tick);
            }
            // Failing: leaf proofs landing do not cut the backoff short; stopping does.
            Some(deadline) => loop {
                if shared.stopped() {
                    return;
                }
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                q = shared
                    .wake
                    .wait_timeout(q, deadline - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_retries_back_off_doubling_to_the_cap() {
        let tick = Duration::from_secs(1);
        let max = Duration::from_secs(300);
        let waits: Vec<u64> = (1..=10)
            .map(|n| close_backoff(tick, n, max).as_secs())
            .collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        // Thousands of failures neither overflow nor pass the cap.
        assert_eq!(close_backoff(tick, u32::MAX, max), max);
        assert_eq!(
            close_backoff(Duration::from_millis(20), 1, max),
            Duration::from_millis(40)
        );
    }
}
