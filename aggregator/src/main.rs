//! `poe`: the command-line tool.
#![recursion_limit = "256"]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use poe_aggregator::{batch, rss};
use poe_circle_stark::air::DataRootStatement;
use poe_circle_stark::config::{SecurityConfig, VerifierPolicy};
use poe_circle_stark::field::M31;
use poe_circle_stark::poseidon2::{permute, Digest, WIDTH};
use poe_circle_stark::verifier::verify_data_root_bytes;

#[derive(Parser)]
#[command(
    name = "poe",
    version,
    about = "post-quantum proof-of-everything aggregator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The main job on the embedded default: poe in-process on a temporary directory, three
    /// rollups trading a day of BTC/ETH options over HTTP, leaf proofs, the day closed into its
    /// bundle and day proof, and the bundle audited. Prints a summary table.
    Demo {
        /// Operations in the day, across the three rollups.
        #[arg(long, default_value_t = 30_000)]
        ops: usize,
        /// Operations per batch.
        #[arg(long, default_value_t = 1_000)]
        batch_ops: usize,
        /// Security preset of the leaf proofs: production or testing (the root proof at
        /// production security uses the compact preset).
        #[arg(long, default_value = "production")]
        preset: String,
        /// Keep the working directory here (default: a temporary one).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Seed of the generated day.
        #[arg(long, default_value_t = 2026)]
        seed: u64,
    },
    /// Prove that a generated realistic batch (trades, deposits, withdrawals) obeys the venue
    /// rules and moves its state root (batch-validity proof, poe/batch-validity/v2), verify it,
    /// print the figures.
    ProveBatch {
        /// Operations in the batch.
        #[arg(long, default_value_t = 4096)]
        ops: usize,
        /// Funded accounts trading.
        #[arg(long, default_value_t = 256)]
        accounts: u32,
        /// Security preset: production or testing.
        #[arg(long, default_value = "production")]
        preset: String,
        /// Seed of the generated batch.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Write the canonical proof here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write the statement (public inputs) here, for verify-batch.
        #[arg(long)]
        statement: Option<PathBuf>,
        /// One JSON line instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Verify a batch-validity proof against a statement file (from prove-batch --statement).
    VerifyBatch {
        /// The proof file.
        proof: PathBuf,
        /// The statement file.
        #[arg(long)]
        statement: PathBuf,
        /// Refuse proofs below this many bits of conjectured security.
        #[arg(long, default_value_t = 100)]
        min_security_bits: u32,
    },
    /// Benchmark batch-validity proofs from 2^min-log to 2^max-log operations, one process per
    /// size, next to the same machine's Poseidon2 permutation throughput.
    BenchBatch {
        /// Smallest size, log2 of operations.
        #[arg(long, default_value_t = 10)]
        min_log: u32,
        /// Largest size, log2 of operations.
        #[arg(long, default_value_t = 16)]
        max_log: u32,
        /// Security preset.
        #[arg(long, default_value = "production")]
        preset: String,
    },
    /// Prove and verify a data-root proof over synthetic records; print size, time and
    /// security.
    ProveRecords {
        /// Number of records in the batch.
        #[arg(long, default_value_t = 4096)]
        ops: usize,
        /// Security preset: production or testing.
        #[arg(long, default_value = "production")]
        preset: String,
        /// Seed of the synthetic records.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Write the canonical proof here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// One JSON line instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Verify a data-root proof file against a statement.
    VerifyProof {
        /// The proof file.
        proof: PathBuf,
        /// Expected data root (64 hex characters).
        #[arg(long)]
        root: String,
        /// Expected number of records.
        #[arg(long)]
        records: u32,
        /// Limbs per record.
        #[arg(long, default_value_t = 12)]
        limbs: u32,
        /// Refuse proofs below this many bits of conjectured security.
        #[arg(long, default_value_t = 100)]
        min_security_bits: u32,
    },
    /// Run the intake service: rollups submit batches over HTTP.
    Serve {
        /// The rollup registry.
        #[arg(long, default_value = "poe.toml")]
        config: PathBuf,
        /// Where the intake store lives (DATA/intake.redb; made only with --init).
        #[arg(long, default_value = "poe-data")]
        data: PathBuf,
        /// Begin a new, empty intake store in DATA. Refused if DATA/intake.redb exists in any
        /// state: a store is never re-initialised by accident (specs/api.md §7).
        #[arg(long)]
        init: bool,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Archive root: the day pipeline publishes each closed day under ARCHIVE/days, and
        /// /v1/days serves them.
        #[arg(long, default_value = "poe-archive")]
        archive: PathBuf,
        /// Largest request body, bytes.
        #[arg(long, default_value_t = 256 << 20)]
        max_body_bytes: u64,
        /// Submissions processed at once.
        #[arg(long, default_value_t = 4)]
        max_inflight: usize,
        /// Seconds a client has to send a request's headers (then the connection is closed).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
        header_timeout_s: u64,
        /// Seconds a submission's body may take on top of 1 s per MiB (then 408).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
        body_timeout_s: u64,
        /// Leaf prover threads of the day pipeline (each proof is itself parallel).
        #[arg(long, default_value_t = 1)]
        leaf_workers: usize,
        /// Seconds after UTC midnight at which the day is closed.
        #[arg(long, default_value_t = 5)]
        close_grace_s: u64,
        /// Security preset of leaf proofs: production or testing (root proofs at production
        /// security use the compact preset: the same 104 bits, smaller proofs).
        #[arg(long, default_value = "production")]
        preset: String,
        /// Intake and archive serving only: no leaf proving, no automatic day close
        /// (close days with `poe close-day` while stopped).
        #[arg(long)]
        no_pipeline: bool,
    },
    /// Close a finished UTC day: write its bundle (Parquet trade records, batch statements,
    /// manifest) under ARCHIVE/days/DAY and prove the day root. Idempotent. Run it with
    /// `poe serve` stopped: it opens the intake store.
    CloseDay {
        /// The day, YYYY-MM-DD (UTC); it must have ended.
        day: String,
        /// The rollup registry.
        #[arg(long, default_value = "poe.toml")]
        config: PathBuf,
        /// The intake store directory of `poe serve`.
        #[arg(long, default_value = "poe-data")]
        data: PathBuf,
        /// Archive root; the bundle goes to ARCHIVE/days/DAY.
        #[arg(long, default_value = "poe-archive")]
        archive: PathBuf,
        /// Security preset of the leaf proofs: production or testing (the root proof at
        /// production security uses the compact preset).
        #[arg(long, default_value = "production")]
        preset: String,
    },
    /// Audit a day's bundle offline: manifest hashes, the day proof against the statement
    /// derived from the bundle, continuity, and every batch's data root from its Parquet rows.
    /// Exit status 0 only if every check passes.
    Audit {
        /// The day directory (…/days/YYYY-MM-DD); not with --from.
        #[arg(required_unless_present = "from", conflicts_with = "from")]
        dir: Option<PathBuf>,
        /// Download the bundle from a poe server (http://host:port) first; needs --day.
        #[arg(long, requires = "day")]
        from: Option<String>,
        /// The day to download with --from, YYYY-MM-DD.
        #[arg(long)]
        day: Option<String>,
        /// Keep the downloaded bundle here (default: a temporary directory, removed after).
        #[arg(long, requires = "from")]
        keep: Option<PathBuf>,
        /// Verify the root proof only (milliseconds); skip re-hashing the records.
        #[arg(long)]
        proof_only: bool,
        /// Also verify the batch proofs poe can verify (poe-circle-stark/v1).
        #[arg(long)]
        leaves: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Refuse proofs below this many bits of conjectured security.
        #[arg(long, default_value_t = 100)]
        min_security_bits: u32,
    },
    /// Measure intake: parse, authenticate, recompute the native commitment, re-execute and
    /// store one batch of N operations, for each commitment scheme.
    BenchIntake {
        /// Operations in the batch.
        #[arg(long, default_value_t = 100_000)]
        ops: usize,
    },
    /// Load the intake service on loopback: concurrent rollups submitting batches of 1k and 10k
    /// trades over HTTP, fsync on; prints accepted operations/s and latency quantiles.
    BenchLoad {
        /// Concurrent rollups (one client each).
        #[arg(long, default_value_t = 4)]
        rollups: usize,
        /// Timed batches per rollup and size.
        #[arg(long, default_value_t = 20)]
        batches: usize,
    },
    /// Write and audit day bundles of realistic operations (10k-operation batches, four
    /// rollups): write time with the day proof, bytes, full audit and --proof-only audit.
    BenchArchive {
        /// Day sizes in operations, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
        ops: Vec<usize>,
        /// Operations per batch.
        #[arg(long, default_value_t = 10_000)]
        batch_ops: usize,
        /// Also prove every batch's leaf and compare verifying them all with the root proof.
        #[arg(long)]
        leaves: bool,
    },
    /// Benchmark the daily root proof v2 (day tree + batch-validity segments) for days of the
    /// given sizes, one process per size; `--leaves` adds proving and verifying every batch's
    /// leaf proof for comparison.
    BenchDay {
        /// Day sizes in operations, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
        ops: Vec<usize>,
        /// Operations per batch.
        #[arg(long, default_value_t = 10_000)]
        batch_ops: usize,
        /// Rollups sharing the day.
        #[arg(long, default_value_t = 3)]
        rollups: u32,
        /// Also prove and verify every batch's leaf proof.
        #[arg(long)]
        leaves: bool,
        /// Security preset.
        #[arg(long, default_value = "production")]
        preset: String,
        /// Internal: run one size in this process and print JSON.
        #[arg(long, hide = true)]
        child: bool,
    },
    /// Benchmark data-root proofs from 2^min-log to 2^max-log records, one process per size.
    Bench {
        /// Smallest size, log2 of records.
        #[arg(long, default_value_t = 10)]
        min_log: u32,
        /// Largest size, log2 of records.
        #[arg(long, default_value_t = 16)]
        max_log: u32,
        /// Runs per size; the table shows medians.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Security preset.
        #[arg(long, default_value = "production")]
        preset: String,
    },
}

fn preset(name: &str) -> Result<SecurityConfig, String> {
    SecurityConfig::preset(name)
        .ok_or_else(|| format!("unknown preset {name:?}: use production, compact or testing"))
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::ProveRecords {
            ops,
            preset: p,
            seed,
            out,
            json,
        } => prove_records(ops, &p, seed, out, json),
        Command::ProveBatch {
            ops,
            accounts,
            preset: p,
            seed,
            out,
            statement,
            json,
        } => poe_aggregator::validity::prove_command(
            ops,
            accounts,
            preset(&p)?,
            seed,
            out.as_deref(),
            statement.as_deref(),
            json,
        ),
        Command::VerifyBatch {
            proof,
            statement,
            min_security_bits,
        } => poe_aggregator::validity::verify_command(&proof, &statement, min_security_bits),
        Command::BenchBatch {
            min_log,
            max_log,
            preset: p,
        } => poe_aggregator::validity::bench_command(min_log, max_log, &p, preset(&p)?),
        Command::VerifyProof {
            proof,
            root,
            records,
            limbs,
            min_security_bits,
        } => {
            let bytes =
                std::fs::read(&proof).map_err(|e| format!("reading {}: {e}", proof.display()))?;
            let root = Digest::from_hex(&root).map_err(|e| format!("--root: {e}"))?;
            let statement = DataRootStatement {
                n_records: records,
                record_limbs: limbs,
                root,
            };
            let t = Instant::now();
            verify_data_root_bytes(&bytes, &statement, &VerifierPolicy { min_security_bits })
                .map_err(|e| format!("proof rejected: {e}"))?;
            println!(
                "proof OK: {records} records, root {root}, verified in {:.1} ms",
                t.elapsed().as_secs_f64() * 1e3
            );
            Ok(())
        }
        Command::Demo {
            ops,
            batch_ops,
            preset: p,
            dir,
            seed,
        } => demo(ops, batch_ops, &p, dir, seed),
        Command::CloseDay {
            day,
            config,
            data,
            archive,
            preset: p,
        } => close_day(&day, &config, &data, &archive, &p),
        Command::Audit {
            dir,
            from,
            day,
            keep,
            proof_only,
            leaves,
            json,
            min_security_bits,
        } => {
            let options = poe_archive::AuditOptions {
                proof_only,
                leaves,
                policy: VerifierPolicy { min_security_bits },
            };
            match (dir, from, day) {
                (Some(dir), None, _) => audit(&dir, options, json),
                (None, Some(from), Some(day)) => audit_from(&from, &day, keep, options, json),
                _ => Err("give a bundle directory, or --from URL --day YYYY-MM-DD".into()),
            }
        }
        Command::Bench {
            min_log,
            max_log,
            runs,
            preset: p,
        } => bench(min_log, max_log, runs, &p),
        Command::BenchIntake { ops } => bench_intake(ops),
        Command::BenchDay {
            ops,
            batch_ops,
            rollups,
            leaves,
            preset: p,
            child,
        } => {
            if batch_ops == 0 || rollups == 0 || ops.iter().any(|&n| n < 2 * rollups as usize) {
                return Err("--batch-ops and --rollups must be positive, each day at least 2 ops per rollup".into());
            }
            let config = preset(&p)?;
            if child {
                let line =
                    poe_aggregator::bench_day::run_one(ops[0], batch_ops, rollups, leaves, config)?;
                println!("{line}");
                Ok(())
            } else {
                poe_aggregator::bench_day::bench_command(
                    &ops, batch_ops, rollups, leaves, &p, config,
                )
            }
        }
        Command::BenchArchive {
            ops,
            batch_ops,
            leaves,
        } => {
            println!("poe bench-archive: {batch_ops}-op batches, 4 rollups, production day proof; audit medians of 3 (full) and 5 (--proof-only)");
            println!("| ops | batches | write s (of which day proof) | MB on disk | root proof KB | full audit s | audit ops/s | --proof-only ms |");
            println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
            let dir =
                std::env::temp_dir().join(format!("poe-bench-archive-{}", std::process::id()));
            let mut leaf_rows = Vec::new();
            for n in ops {
                let r = poe_aggregator::bench_archive::run(n, batch_ops, leaves, &dir)?;
                if let Some(l) = r.leaves {
                    leaf_rows.push((r.ops, r.batches, l, r.proof_only_ms));
                }
                println!(
                    "| {} | {} | {:.2} ({:.2}) | {:.1} | {:.0} | {:.2} | {:.0} | {:.1} |",
                    r.ops,
                    r.batches,
                    r.write_s,
                    r.prove_s,
                    r.bytes as f64 / 1e6,
                    r.proof_bytes as f64 / 1024.0,
                    r.audit_s,
                    r.ops as f64 / r.audit_s,
                    r.proof_only_ms
                );
            }
            if !leaf_rows.is_empty() {
                println!();
                println!("Root proof versus every leaf proof (production security; verify medians of 3):");
                println!("| ops | leaf proofs | prove all s | ops/s | all leaf proofs MB | verify all ms | --proof-only audit ms | ratio |");
                println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
                for (ops, batches, l, root_ms) in leaf_rows {
                    println!(
                        "| {ops} | {batches} | {:.1} | {:.0} | {:.1} | {:.1} | {root_ms:.1} | {:.0}× |",
                        l.prove_s,
                        ops as f64 / l.prove_s,
                        l.bytes as f64 / 1e6,
                        l.verify_ms,
                        l.verify_ms / root_ms
                    );
                }
            }
            let _ = std::fs::remove_dir_all(&dir);
            Ok(())
        }
        Command::BenchLoad { rollups, batches } => {
            println!("poe bench-load: {rollups} rollups on loopback, {batches} timed batches each, keccak256, fsync per batch");
            println!("| trades/batch | batches | ops/s accepted | p50 ms | p99 ms |");
            println!("|---:|---:|---:|---:|---:|");
            for size in [1_000, 10_000] {
                let r = poe_aggregator::load::run(rollups, batches, size)?;
                println!(
                    "| {size} | {} | {:.0} | {:.1} | {:.1} |",
                    r.batches,
                    r.ops_per_second(),
                    r.quantile(0.5).as_secs_f64() * 1e3,
                    r.quantile(0.99).as_secs_f64() * 1e3
                );
            }
            Ok(())
        }
        Command::Serve {
            config,
            data,
            archive,
            listen,
            max_body_bytes,
            max_inflight,
            header_timeout_s,
            body_timeout_s,
            leaf_workers,
            close_grace_s,
            preset: p,
            no_pipeline,
            init,
        } => serve(
            &config,
            &data,
            init,
            &archive,
            &listen,
            poe_api::ApiConfig {
                max_body_bytes,
                max_inflight,
                header_read_timeout: std::time::Duration::from_secs(header_timeout_s),
                body_read_timeout: std::time::Duration::from_secs(body_timeout_s),
                ..poe_api::ApiConfig::default()
            },
            (!no_pipeline).then_some(poe_aggregator::pipeline::PipelineConfig {
                workers: leaf_workers,
                security: preset(&p)?,
                close_grace_us: close_grace_s.saturating_mul(1_000_000),
                ..poe_aggregator::pipeline::PipelineConfig::production()
            }),
        ),
    }
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros() as u64
}

fn bar(len: u64, unit: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{spinner}} {{msg:<14}} [{{bar:30}}] {{pos}}/{{len}} {unit} ({{eta}})"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

struct Bars {
    bar: Option<indicatif::ProgressBar>,
}

impl poe_aggregator::demo::DemoProgress for Bars {
    fn phase(&mut self, name: &str, total: u64) {
        let b = bar(total, "ops");
        b.set_message(name.to_string());
        self.bar = Some(b);
    }

    fn advance(&mut self, done: u64) {
        if let Some(b) = &self.bar {
            b.set_position(done);
        }
    }

    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

fn demo(
    ops: usize,
    batch_ops: usize,
    p: &str,
    dir: Option<PathBuf>,
    seed: u64,
) -> Result<(), String> {
    let config = preset(p)?;
    println!(
        "poe demo: {ops} operations on 3 rollups (keccak256, poseidon-bn254, poseidon-felt252), {batch_ops}-op batches, {p} security ({} bits)",
        config.security_bits()
    );
    let t = Instant::now();
    let r = poe_aggregator::demo::run(
        &poe_aggregator::demo::DemoConfig {
            ops,
            batch_ops,
            config,
            dir,
            seed,
        },
        &mut Bars { bar: None },
    )?;
    println!("audit of {} ({}):", r.day, r.bundle.display());
    for l in &r.audit_lines {
        println!("  {l}");
    }
    let rate = |n: u64, s: f64| n as f64 / s.max(1e-9);
    println!();
    println!(
        "| {:<34} | {:>26} |",
        "replayed day (UTC)",
        r.day.to_string()
    );
    println!("|{:-<36}|{:->28}|", "", "");
    let rows = [
        ("operations (trades)", format!("{} ({})", r.ops, r.trades)),
        ("batches", r.batches.to_string()),
        (
            "intake over HTTP",
            format!("{:.1} s, {:.0} ops/s", r.intake_s, rate(r.ops, r.intake_s)),
        ),
        (
            "leaf proofs",
            format!("{:.1} s, {:.0} ops/s", r.leaves_s, rate(r.ops, r.leaves_s)),
        ),
        (
            "day close (bundle + root proof)",
            format!("{:.1} s (root proof {:.1} s)", r.close_s, r.root_prove_s),
        ),
        (
            "root proof",
            format!("{:.0} KB", r.root_proof_bytes as f64 / 1024.0),
        ),
        ("root proof verify", format!("{:.1} ms", r.root_verify_ms)),
        ("bundle", format!("{:.2} MB", r.bundle_bytes as f64 / 1e6)),
        (
            "audit (all rows, leaf proofs)",
            format!("{:.1} s", r.audit_s),
        ),
        (
            "audit",
            if r.audit_passed {
                "PASS".into()
            } else {
                "FAIL".into()
            },
        ),
        ("total", format!("{:.1} s", t.elapsed().as_secs_f64())),
    ];
    for (k, v) in rows {
        println!("| {k:<34} | {v:>26} |");
    }
    println!();
    println!("check it yourself: poe audit {}", r.bundle.display());
    if r.audit_passed {
        Ok(())
    } else {
        Err("the demo's audit failed".into())
    }
}

fn close_day(
    day: &str,
    config: &std::path::Path,
    data: &std::path::Path,
    archive: &std::path::Path,
    p: &str,
) -> Result<(), String> {
    let day: poe_archive::Day = day.parse().map_err(|e| format!("{e}"))?;
    if now_us() < day.next().start_us() {
        return Err(format!(
            "{day} has not ended (UTC): a day is closed only after midnight, so that no batch of it can arrive later"
        ));
    }
    let config_sec = preset(p)?;
    let registry = poe_ingest::registry::Registry::load(config)
        .map_err(|e| format!("{}: {e}", config.display()))?;
    let intake = poe_ingest::intake::Intake::open(registry, &data.join("intake.redb"))
        .map_err(|e| e.to_string())?;
    let storage = poe_archive::LocalDir::new(archive);
    let start = Instant::now();
    let mut input = poe_aggregator::day::day_input(&intake, day, config_sec)?;
    let mut venues = poe_aggregator::day::day_venues(&intake, &input)?;
    if !poe_archive::layout::is_published(&storage, day) {
        let pb = bar(0, "ops");
        pb.set_message("leaf proofs");
        let stats = poe_aggregator::day::prove_leaves(
            &mut input,
            &mut venues.clone(),
            config_sec,
            &mut |done, total| {
                pb.set_length(total);
                pb.set_position(done);
            },
        )?;
        pb.finish_and_clear();
        println!(
            "leaf proofs: {} made ({} batch-validity, {} data-root; {} ops) and {} reused in {:.2} s",
            stats.proven,
            stats.validity,
            stats.proven - stats.validity,
            stats.ops_proven,
            stats.reused,
            stats.seconds
        );
    }
    let pb = bar(0, "ops");
    pb.set_message("writing trades");
    let closed = poe_aggregator::day::close_input(
        input,
        &mut venues,
        &storage,
        config_sec,
        &mut |stage| match stage {
            poe_archive::Stage::Trades { done, total } => {
                pb.set_length(total);
                pb.set_position(done);
            }
            poe_archive::Stage::ProvingRoot => pb.set_message("proving root"),
            poe_archive::Stage::Done => pb.finish_and_clear(),
        },
        start,
    )?;
    pb.finish_and_clear();
    let s = &closed.summary.statement;
    let dir = archive.join(&closed.summary.prefix);
    if !closed.summary.written {
        println!(
            "{day} was already closed: {} (left as it was)",
            dir.display()
        );
    } else {
        let bytes: u64 = closed.summary.files.iter().map(|f| f.bytes).sum();
        println!(
            "closed {day}: {} batches, {} ops, {} rollups -> {}",
            s.n_batches,
            s.n_ops,
            s.rollups.len(),
            dir.display()
        );
        println!(
            "  day root {}  root proof {} bytes in {:.2} s  data files {} bytes  total {:.2} s",
            s.day_root, s.root_proof_bytes, closed.prove_s, bytes, closed.total_s
        );
    }
    Ok(())
}

fn audit_from(
    from: &str,
    day: &str,
    keep: Option<PathBuf>,
    options: poe_archive::AuditOptions,
    json: bool,
) -> Result<(), String> {
    let day: poe_archive::Day = day.parse().map_err(|e| format!("--day: {e}"))?;
    let temp = keep.is_none();
    let dir = keep.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("poe-audit-{day}-{}", std::process::id()))
    });
    let _ = std::fs::remove_dir_all(&dir);
    let pb = if json {
        indicatif::ProgressBar::hidden()
    } else {
        bar(0, "files")
    };
    pb.set_message("downloading");
    let t = Instant::now();
    let fetched = poe_aggregator::fetch::download_day(
        from,
        &day.to_string(),
        &dir,
        options.proof_only,
        &mut |done, total| {
            pb.set_length(total as u64);
            pb.set_position(done as u64);
        },
    );
    pb.finish_and_clear();
    let result = fetched.and_then(|bytes| {
        if !json {
            println!(
                "downloaded {bytes} bytes of {day} from {from} in {:.2} s",
                t.elapsed().as_secs_f64()
            );
        }
        audit(&dir, options, json)
    });
    if temp {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn audit(
    dir: &std::path::Path,
    options: poe_archive::AuditOptions,
    json: bool,
) -> Result<(), String> {
    if !dir.join("manifest.json").exists() {
        return Err(format!(
            "{}: no manifest.json (expected a day directory, …/days/YYYY-MM-DD)",
            dir.display()
        ));
    }
    let storage = poe_archive::LocalDir::new(dir);
    let pb = if json {
        indicatif::ProgressBar::hidden()
    } else {
        bar(0, "rows")
    };
    pb.set_message("re-hashing");
    let start = Instant::now();
    let report = poe_archive::audit(&storage, &options, &mut |done, total| {
        pb.set_length(total);
        pb.set_position(done);
    });
    pb.finish_and_clear();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "day": report.day,
                "passed": report.passed(),
                "checks": report.checks,
                "rollups": report.rollups,
                "seconds": start.elapsed().as_secs_f64(),
            }))
            .expect("serialisable")
        );
    } else {
        println!("audit of {} ({})", report.day, dir.display());
        for c in &report.checks {
            println!(
                "  {} {:<24} {}",
                if c.passed { "PASS" } else { "FAIL" },
                c.name,
                c.detail
            );
        }
        for r in &report.rollups {
            println!(
                "  rollup {:<20} {} batches, {} ops, {} trades, notional {}",
                r.rollup, r.batches, r.ops, r.trades, r.notional
            );
        }
        println!("  {:.2} s", start.elapsed().as_secs_f64());
    }
    if report.passed() {
        Ok(())
    } else {
        let failed = report.checks.iter().filter(|c| !c.passed).count();
        Err(format!("audit failed: {failed} checks did not pass"))
    }
}

fn serve(
    config: &std::path::Path,
    data: &std::path::Path,
    init: bool,
    archive: &std::path::Path,
    listen: &str,
    api: poe_api::ApiConfig,
    pipeline: Option<poe_aggregator::pipeline::PipelineConfig>,
) -> Result<(), String> {
    let registry = poe_ingest::registry::Registry::load(config)
        .map_err(|e| format!("{}: {e}", config.display()))?;
    let n_rollups = registry.rollups().len();
    let store = data.join("intake.redb");
    let intake = if init {
        std::fs::create_dir_all(data).map_err(|e| format!("creating {}: {e}", data.display()))?;
        let intake = poe_ingest::intake::Intake::create(registry, &store);
        if intake.is_ok() {
            eprintln!(
                "poe: created a new, empty intake store at {}",
                store.display()
            );
        }
        intake
    } else {
        poe_ingest::intake::Intake::open(registry, &store)
    }
    .map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("binding {listen}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        // Tests and supervisors read this line to learn the port (listen on :0 for a free one).
        println!(
            "poe serving on http://{addr} ({n_rollups} rollups, store {})",
            data.display()
        );
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            eprintln!("shutting down: draining requests in flight");
        };
        let archive: std::sync::Arc<dyn poe_archive::Storage> =
            std::sync::Arc::new(poe_archive::LocalDir::new(archive));
        let leaves: std::sync::Arc<dyn poe_archive::Storage> =
            std::sync::Arc::new(poe_archive::LocalDir::new(data.join("leaves")));
        let mut state = poe_api::AppState::new(intake, api)
            .with_archive(archive.clone())
            .with_leaf_store(leaves.clone());
        let pipeline = match pipeline {
            Some(config) => {
                let p = poe_aggregator::pipeline::Pipeline::start(
                    state.clone(),
                    archive,
                    leaves,
                    config,
                )?;
                state = state.with_accept_hook(p.hook());
                Some(p)
            }
            None => None,
        };
        poe_api::run(listener, state, shutdown).await;
        // A leaf proof or day close in progress is abandoned, not awaited: nothing is
        // published half-way, and the next start redoes it.
        if let Some(p) = pipeline {
            p.stop(false);
        }
        Ok(())
    })
}

fn bench_intake(n: usize) -> Result<(), String> {
    use poe_ingest::commitment::Scheme;
    use poe_ingest::intake::{Intake, Outcome};
    use poe_ingest::testkit::{client, realistic_ops, registry, T0};
    if n < 64 {
        return Err("--ops must be at least 64".into());
    }
    println!("poe bench-intake: one batch of {n} operations (50 accounts, ~95% trades)");
    println!("| scheme | body MB | build+sign s | submit s | ops/s |");
    println!("|---|---:|---:|---:|---:|");
    for scheme in Scheme::ALL {
        let dir = std::env::temp_dir().join(format!(
            "poe-bench-intake-{}-{}",
            scheme.name(),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut c = client("bench", 5, scheme);
        let mut intake =
            Intake::create(registry(&[&c]), &dir.join("intake.redb")).map_err(|e| e.to_string())?;
        let ops = realistic_ops(n, 9, T0);
        let t = Instant::now();
        let body = c.next_batch(&ops, "groth16", b"opaque");
        let build = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let outcome = intake.submit(&body, T0 + 1).map_err(|e| e.to_string())?;
        let submit = t.elapsed().as_secs_f64();
        if !matches!(outcome, Outcome::Accepted(_)) {
            return Err("batch was not accepted".into());
        }
        println!(
            "| {} | {:.1} | {build:.2} | {submit:.2} | {:.0} |",
            scheme.name(),
            body.len() as f64 / 1e6,
            n as f64 / submit
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

fn prove_records(
    ops: usize,
    p: &str,
    seed: u64,
    out: Option<PathBuf>,
    json: bool,
) -> Result<(), String> {
    let config = preset(p)?;
    if !json {
        eprintln!(
            "proving {ops} synthetic cash movements ({p}, {} bits)…",
            config.security_bits()
        );
    }
    let report = batch::run(ops, seed, config).map_err(|e| e.to_string())?;
    if let Some(path) = &out {
        std::fs::write(path, &report.proof)
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    let rss = rss::peak_rss_bytes().unwrap_or(0);
    if json {
        println!(
            "{{\"records\":{},\"permutations\":{},\"prove_s\":{:.4},\"verify_ms\":{:.3},\"proof_bytes\":{},\"peak_rss_bytes\":{},\"security_bits\":{}}}",
            report.statement.n_records,
            report.permutations,
            report.prove.as_secs_f64(),
            report.verify.as_secs_f64() * 1e3,
            report.proof_bytes,
            rss,
            config.security_bits()
        );
        return Ok(());
    }
    let (leaf_log, node_log) = report.log_rows;
    let rows = [
        ("records", report.statement.n_records.to_string()),
        ("data root", report.statement.root.to_hex()),
        ("Poseidon2 permutations", report.permutations.to_string()),
        (
            "trace",
            format!(
                "2^{leaf_log} leaf rows + 2^{node_log} node rows, {} columns",
                report.columns
            ),
        ),
        (
            "security",
            format!(
                "{} bits ({} queries, blowup 2^{}, {} PoW bits)",
                config.security_bits(),
                config.n_queries(),
                config.log_blowup(),
                config.pow_bits()
            ),
        ),
        (
            "prove",
            format!(
                "{:.2} s ({:.0} records/s)",
                report.prove.as_secs_f64(),
                report.records_per_second()
            ),
        ),
        (
            "verify",
            format!("{:.1} ms", report.verify.as_secs_f64() * 1e3),
        ),
        (
            "proof size",
            format!(
                "{} bytes ({:.1} KiB)",
                report.proof_bytes,
                report.proof_bytes as f64 / 1024.0
            ),
        ),
        (
            "peak RSS",
            format!("{:.2} GiB", rss as f64 / (1u64 << 30) as f64),
        ),
    ];
    for (k, v) in rows {
        println!("{k:<24} {v}");
    }
    if let Some(path) = out {
        println!("{:<24} {}", "proof written to", path.display());
    }
    Ok(())
}

fn bench(min_log: u32, max_log: u32, runs: usize, p: &str) -> Result<(), String> {
    let config = preset(p)?;
    if min_log > max_log || max_log > 22 || runs == 0 {
        return Err("need min-log <= max-log <= 22 and runs >= 1".into());
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    println!(
        "poe bench: data-root proofs, preset {p} ({} bits), {runs} run(s) per size, medians",
        config.security_bits()
    );
    println!(
        "| records | permutations | prove s | records/s | verify ms | proof bytes | peak RSS GiB |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for log in min_log..=max_log {
        let mut samples: Vec<[f64; 5]> = Vec::new();
        let mut perms = 0.0;
        for run in 0..runs {
            eprintln!("  2^{log} records, run {}/{runs}…", run + 1);
            let out = std::process::Command::new(&exe)
                .args([
                    "prove-records",
                    "--json",
                    "--preset",
                    p,
                    "--ops",
                    &(1u64 << log).to_string(),
                ])
                .output()
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(format!("2^{log}: {}", String::from_utf8_lossy(&out.stderr)));
            }
            let line = String::from_utf8_lossy(&out.stdout);
            let field = |k: &str| -> f64 {
                line.split(&format!("\"{k}\":"))
                    .nth(1)
                    .and_then(|r| r.split([',', '}']).next())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(f64::NAN)
            };
            perms = field("permutations");
            samples.push([
                field("prove_s"),
                field("verify_ms"),
                field("proof_bytes"),
                field("peak_rss_bytes"),
                field("records"),
            ]);
        }
        let col = |i: usize| rss::median(samples.iter().map(|s| s[i]).collect());
        let records = col(4);
        println!(
            "| 2^{log} | {perms:.0} | {:.2} | {:.0} | {:.1} | {:.0} | {:.2} |",
            col(0),
            records / col(0),
            col(1),
            col(2),
            col(3) / (1u64 << 30) as f64
        );
    }
    // Native permutation throughput, one core.
    let n = 2_000_000u32;
    let mut state = [M31::from_u32_unchecked(1); WIDTH];
    let t = Instant::now();
    for _ in 0..n {
        permute(&mut state);
    }
    let secs = t.elapsed().as_secs_f64();
    println!();
    println!(
        "native Poseidon2-M31 permutation, one core: {:.2} M/s (checksum {})",
        f64::from(n) / secs / 1e6,
        state[0].0
    );
    Ok(())
}
