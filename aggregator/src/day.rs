//! Closing a UTC day: the day's accepted batches become batch statements, the bundle is written
//! and the day proof is made over the manifest's hash (`specs/day-proof.md`).

use std::time::Instant;

use poe_archive::bundle::{
    write_day, ArchivedOp, BatchInput, DayInput, RollupInfo, RootFiles, Stage,
};
use poe_archive::records::NamedInstrument;
use poe_archive::{BundleSummary, Day, Storage};
use poe_circle_stark::config::{SecurityConfig, VerifierPolicy};
use poe_circle_stark::day::recursive::RecursionPresets;
use poe_circle_stark::day::root::SEGMENT_CAPACITY_OPS;
use poe_circle_stark::day::runs::ProvenRun;
use poe_circle_stark::day::statement::BatchStatement;
use poe_circle_stark::day::Runs;
use poe_circle_stark::error::ProveError;
use poe_circle_stark::venue::OP_LIMBS;
use poe_circle_stark::venue::{Operation, Venue};
use poe_ingest::intake::{AcceptedBatch, Intake};
use poe_ingest::registry::Rollup;
use std::collections::HashMap;

/// The archive input for `day` from what intake accepted in it. Rollups without a batch that
/// day are left out.
///
/// # Errors
/// Store failures, as text.
pub fn day_input(intake: &Intake, day: Day, config: SecurityConfig) -> Result<DayInput, String> {
    let accepted = intake
        .accepted_between(day.start_us(), day.next().start_us())
        .map_err(|e| e.to_string())?;
    let mut rollups: Vec<RollupInfo> = Vec::new();
    let mut batches = Vec::with_capacity(accepted.len());
    for b in accepted {
        let rollup = intake
            .registry()
            .rollups()
            .iter()
            .find(|r| r.id == b.rollup_id)
            .expect("intake lists registered rollups");
        if rollups.last().is_none_or(|r| r.id != rollup.id) {
            rollups.push(RollupInfo {
                id: rollup.id,
                name: rollup.name.as_str().to_string(),
                native_scheme: rollup.scheme.name().to_string(),
                public_key: rollup.public_key.to_bytes_be(),
                // The day's table: listings accepted today take effect tomorrow.
                instruments: rollup
                    .instruments_at(day.start_us())
                    .iter()
                    .zip(rollup.names_at(day.start_us()))
                    .map(|(i, n)| NamedInstrument {
                        name: n.clone(),
                        instrument: i.clone(),
                    })
                    .collect(),
            });
        }
        batches.push(batch_input(rollup, b));
    }
    Ok(DayInput {
        day,
        rollups,
        batches,
        root_config: root_security(config),
        recursive: true,
        leaf_proofs: false,
    })
}

/// The security of a day's root proof (day tree and segments) when leaf proofs use `leaf`:
/// at production security the `compact` preset — the same 104 bits with blowup 4 and half
/// the queries, so the proof an auditor downloads and verifies is ~45% smaller and ~40%
/// faster to check, for ~20% more proving (BENCHMARKS.md); other presets as they are.
pub fn root_security(leaf: SecurityConfig) -> SecurityConfig {
    if leaf == SecurityConfig::production() {
        SecurityConfig::compact()
    } else {
        leaf
    }
}

/// The archive's view of one accepted batch (no leaf proof yet).
pub fn batch_input(rollup: &Rollup, b: AcceptedBatch) -> BatchInput {
    let sub = b.submission;
    BatchInput {
        statement: BatchStatement::of_batch(
            rollup.id,
            b.seq,
            sub.header.pre_state_root,
            sub.header.post_state_root,
            sub.ops.iter().map(|o| o.op),
            rollup.instruments_at(b.accepted_us),
        ),
        batch_id: b.batch_id,
        accepted_us: b.accepted_us,
        native_commitment: sub.header.commitment,
        rollup_proof_system: sub.header.proof_system.as_str().to_string(),
        rollup_vk_id: sub.header.vk_id.as_ref().map(|v| v.as_str().to_string()),
        signature: (sub.signature.0.to_bytes_be(), sub.signature.1.to_bytes_be()),
        rollup_proof: sub.proof_bytes,
        leaf_proof: None,
        ops: sub
            .ops
            .into_iter()
            .map(|o| ArchivedOp {
                venue_trade_id: o.trade_id.as_str().to_string(),
                op: o.op,
            })
            .collect(),
    }
}

/// Where the pipeline keeps the runs of a day proven before its close
/// (`poe_circle_stark::day::runs`), and the capacity runs are cut at.
#[derive(Clone, Copy)]
pub struct RunStore<'a> {
    /// The leaf store.
    pub storage: &'a dyn Storage,
    /// Most operations in one run.
    pub capacity_ops: usize,
}

impl std::fmt::Debug for RunStore<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunStore")
            .field("capacity_ops", &self.capacity_ops)
            .finish_non_exhaustive()
    }
}

/// `run-YYYY-MM-DD-<rollup>-<first seq>-<last seq>.run`: a run's segment proofs in the leaf
/// store until its day is published.
pub fn run_file(day: Day, rollup_id: u32, first_seq: u64, last_seq: u64) -> String {
    format!("run-{day}-{rollup_id}-{first_seq}-{last_seq}.run")
}

/// The day of a [`run_file`] name, if it is one.
pub fn run_file_day(name: &str) -> Option<Day> {
    name.strip_prefix("run-")?
        .strip_suffix(".run")?
        .get(..10)?
        .parse()
        .ok()
}

/// Timings of a day close.
#[derive(Debug, Clone)]
pub struct Closed {
    /// What was written.
    pub summary: BundleSummary,
    /// Runs whose segment proofs were made before the close and used by it.
    pub runs_reused: usize,
    /// Seconds spent on the root proof (0 if the day was already archived).
    pub prove_s: f64,
    /// Seconds in all.
    pub total_s: f64,
}

/// Closes `day`: writes its bundle to `archive` with a day proof under `config`.
/// Idempotent: an archived day is returned as it is.
///
/// # Errors
/// An empty day, store or archive failures, as text.
pub fn close_day(
    intake: &Intake,
    archive: &dyn Storage,
    day: Day,
    config: SecurityConfig,
    progress: &mut dyn FnMut(Stage),
) -> Result<Closed, String> {
    let start = Instant::now();
    let input = day_input(intake, day, config)?;
    let mut venues = day_venues(intake, &input)?;
    close_input(input, &mut venues, archive, config, progress, start, None)
}

/// Closes a day from an input already read (so that the intake lock is not held while
/// proving): leaf proofs, bundle, root proof. `venues` holds every rollup's state before its
/// first batch of the day ([`day_venues`]); `runs`, where the pipeline keeps runs proven
/// before the close (each used if it still verifies; each run proven here is left there too,
/// so that a close killed half-way resumes from them).
///
/// # Errors
/// As [`close_day`].
pub fn close_input(
    mut input: DayInput,
    venues: &mut Venues,
    archive: &dyn Storage,
    config: SecurityConfig,
    progress: &mut dyn FnMut(Stage),
    start: Instant,
    runs: Option<RunStore<'_>>,
) -> Result<Closed, String> {
    let day = input.day;
    if poe_archive::layout::is_published(archive, day) {
        input.batches.clear();
    } else if input.leaf_proofs {
        // Leaf proving walks the states forward; the segments start again from the day's start.
        let mut walked = venues.clone();
        prove_leaves(&mut input, &mut walked, config, &mut |_, _| {})?;
    } else {
        // The v5 root proves every state root: the bundle needs no leaf proof.
        for b in &mut input.batches {
            b.leaf_proof = None;
        }
    }
    if input.batches.is_empty() && !poe_archive::layout::is_published(archive, day) {
        return Err(format!("no batches were accepted on {day}"));
    }
    let mut prove_s = 0.0;
    // write_day reports its stages and, while proving the root, the prover its steps: never
    // at once, so one progress callback serves both.
    let progress = std::cell::RefCell::new(progress);
    let mut runs_reused = 0usize;
    let summary = write_day(
        archive,
        &input,
        |statements, manifest_hash| {
            let t = Instant::now();
            let get = |rollup_id: u32, first: u64, last: u64| {
                let store = runs?;
                let bytes = store
                    .storage
                    .read(&run_file(day, rollup_id, first, last))
                    .ok()?;
                ProvenRun::from_bytes(&bytes).ok()
            };
            // A run that cannot be stored is only a run to prove again after a crash.
            let mut put = |run: &ProvenRun| {
                if let Some(store) = runs {
                    let name = run_file(day, run.rollup_id, run.first_seq, run.last_seq);
                    let _ = store.storage.write(&name, &run.to_bytes());
                }
            };
            let mut with = Runs {
                capacity_ops: runs.map_or(SEGMENT_CAPACITY_OPS, |r| r.capacity_ops),
                get: Some(&get),
                put: Some(&mut put),
                reused: 0,
            };
            let r = prove_root(
                &input,
                statements,
                manifest_hash,
                venues,
                input.root_config,
                &mut |step| (progress.borrow_mut())(Stage::RootStep(step.to_string())),
                &mut with,
            )
            .map_err(|e| e.to_string());
            runs_reused = with.reused;
            prove_s = t.elapsed().as_secs_f64();
            r
        },
        &mut |stage| (progress.borrow_mut())(stage),
    )
    .map_err(|e| e.to_string())?;
    let closed = Closed {
        summary,
        runs_reused,
        prove_s,
        total_s: start.elapsed().as_secs_f64(),
    };
    if !input.batches.is_empty() {
        // The operator's figures, beside the bundle: a day that is published stays published
        // even if its report cannot be written (the explorer then plots no time for it).
        let _ = archive.write(
            &poe_archive::layout::close_report(day),
            close_report(&closed).to_string().as_bytes(),
        );
    }
    Ok(closed)
}

/// `closes/<day>.json` (`specs/archive.md` §2): what the close of a day took, as the machine
/// that closed it measured.
pub fn close_report(closed: &Closed) -> serde_json::Value {
    let s = &closed.summary.statement;
    serde_json::json!({
        "day": s.day,
        "n_batches": s.n_batches,
        "n_ops": s.n_ops,
        "root_air": s.air,
        "root_proof_bytes": s.root_proof_bytes,
        "prove_s": closed.prove_s,
        "total_s": closed.total_s,
        "runs_reused": closed.runs_reused,
    })
}

/// The daily root proof of `input`, v4 (`specs/day-proof.md` §6): one recursive proof under
/// [`RecursionPresets::for_root`]`(config)`, with the samples its auditor derives the keys
/// from. `statements` in canonical order (`input.batches` in the same order), each rollup's
/// state walked forward from `venues` (its state before the day's first batch). Audits verify
/// v1–v3 days as before. `progress` hears of each step (segments, W nodes, each M, the final
/// node); `runs` gives the runs proven before the close and takes the ones proven here.
///
/// # Errors
/// A rollup without a starting state, a batch that does not apply, a prover failure.
pub fn prove_root(
    input: &DayInput,
    statements: &[BatchStatement],
    manifest_hash: [u8; 32],
    venues: &Venues,
    config: SecurityConfig,
    progress: &mut dyn FnMut(&str),
    runs: &mut Runs<'_>,
) -> Result<RootFiles, ProveError> {
    let ops: Vec<Vec<Operation>> = input
        .batches
        .iter()
        .map(|b| b.ops.iter().map(|o| o.op).collect())
        .collect();
    let refs: Vec<&[Operation]> = ops.iter().map(Vec::as_slice).collect();
    let presets = RecursionPresets::for_root(config);
    // The prover checks its own proofs at the security it proves at.
    let policy = VerifierPolicy {
        min_security_bits: [presets.segment, presets.node, presets.last]
            .iter()
            .map(SecurityConfig::security_bits)
            .min()
            .unwrap_or(0),
    };
    let proof = poe_circle_stark::day::prove_recursive_with(
        poe_circle_stark::day::recursive::RecursiveFormat::CURRENT,
        input.day.0,
        statements,
        &refs,
        manifest_hash,
        venues,
        presets,
        &policy,
        progress,
        runs,
    )?;
    Ok(RootFiles {
        root: proof.root.to_bytes(),
        samples: Some(proof.samples().to_bytes()),
    })
}

/// What leaf proving did.
#[derive(Debug, Clone, Copy, Default)]
pub struct LeafStats {
    /// Batches proven here (batch-validity or data-root proofs).
    pub proven: usize,
    /// Of which batch-validity proofs.
    pub validity: usize,
    /// Batches whose verified `poe-circle-stark/v1` rollup proof was used as it is.
    pub reused: usize,
    /// Operations covered by the proofs made here.
    pub ops_proven: u64,
    /// Seconds spent proving.
    pub seconds: f64,
}

/// Gives every batch of `input` that has none its leaf proof ([`leaf_proof`]), walking each
/// rollup's venue state in `venues` forward batch by batch, past batches proven before too
/// (rollups without an entry get reused or data-root leaves).
/// `progress(ops_done, ops_total)` after each batch.
///
/// # Errors
/// A prover failure, or a batch that no longer applies to its rollup's state, as text.
pub fn prove_leaves(
    input: &mut DayInput,
    venues: &mut Venues,
    config: SecurityConfig,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<LeafStats, String> {
    let total: u64 = input.batches.iter().map(|b| b.ops.len() as u64).sum();
    let mut stats = LeafStats::default();
    let mut done = 0u64;
    let start = Instant::now();
    for b in &mut input.batches {
        let venue = venues.get_mut(&b.statement.rollup_id);
        if b.leaf_proof.is_none() {
            let (proof, kind) = leaf_proof(b, venue.as_deref(), config)?;
            b.leaf_proof = Some(proof);
            match kind {
                LeafKind::Reused => stats.reused += 1,
                LeafKind::Validity | LeafKind::DataRoot => {
                    stats.proven += 1;
                    stats.validity += usize::from(kind == LeafKind::Validity);
                    stats.ops_proven += b.ops.len() as u64;
                }
            }
        }
        if let Some(v) = venues.get_mut(&b.statement.rollup_id) {
            let ops: Vec<Operation> = b.ops.iter().map(|o| o.op).collect();
            v.apply_batch(&ops)
                .map_err(|e| format!("seq {} no longer applies: {e}", b.statement.seq))?;
        }
        done += b.ops.len() as u64;
        progress(done, total);
    }
    stats.seconds = start.elapsed().as_secs_f64();
    Ok(stats)
}

/// Which kind of leaf proof a batch got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafKind {
    /// The rollup's own verified `poe-circle-stark/v1` proof, used as it is.
    Reused,
    /// A batch-validity proof (`poe/batch-validity/v2`, one batch).
    Validity,
    /// A data-root proof of the records: when the venue state before the batch is not at hand.
    DataRoot,
}

/// One batch's leaf proof (`specs/day-proof.md` §4): with the venue state before the batch, a
/// batch-validity proof — the only kind that proves the batch's state roots, which the audit
/// demands for every root between two batches of one segment; without it, the rollup's own
/// verified `poe-circle-stark/v1` proof as it is (intake verified it against the batch's data
/// root), else a data-root proof of the records.
///
/// # Errors
/// A prover failure, as text.
pub fn leaf_proof(
    b: &BatchInput,
    venue: Option<&Venue>,
    config: SecurityConfig,
) -> Result<(Vec<u8>, LeafKind), String> {
    let ops: Vec<Operation> = b.ops.iter().map(|o| o.op).collect();
    if let Some(venue) = venue {
        let (statement, proof) = poe_circle_stark::validity::prove_validity(venue, &ops, config)
            .map_err(|e| format!("leaf proof of seq {}: {e}", b.statement.seq))?;
        debug_assert_eq!(statement.batches[0].data_root, b.statement.data_root);
        debug_assert_eq!(statement.post_state_root, b.statement.post_state_root);
        return Ok((proof.to_bytes(), LeafKind::Validity));
    }
    if b.rollup_proof_system == poe_ingest::model::POE_PROOF_SYSTEM {
        return Ok((b.rollup_proof.clone(), LeafKind::Reused));
    }
    let records: Vec<_> = ops.iter().flat_map(Operation::encode).collect();
    let (statement, proof) =
        poe_circle_stark::data_root::prove_data_root(&records, OP_LIMBS, config)
            .map_err(|e| format!("leaf proof of seq {}: {e}", b.statement.seq))?;
    debug_assert_eq!(statement.root, b.statement.data_root);
    Ok((proof.to_bytes(), LeafKind::DataRoot))
}

/// Each rollup's venue state, by registry id, as the leaf provers walk a day.
pub type Venues = HashMap<u32, Venue>;

/// The venue state of every rollup of `input` before its first batch of the day, replayed
/// from the intake store.
///
/// # Errors
/// Store or replay failures, as text.
pub fn day_venues(intake: &Intake, input: &DayInput) -> Result<Venues, String> {
    let mut out = Venues::new();
    for b in &input.batches {
        let id = b.statement.rollup_id;
        if let std::collections::hash_map::Entry::Vacant(e) = out.entry(id) {
            e.insert(
                intake
                    .venue_before(id, b.statement.seq)
                    .map_err(|e| e.to_string())?,
            );
        }
    }
    Ok(out)
}
