//! `poe`: the command-line tool.
#![recursion_limit = "256"]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};

mod cmd;
use cmd::audit::{audit, audit_from};
use cmd::bench::{bench, bench_intake};
use cmd::close_day::close_day;
use cmd::demo::demo;
use cmd::records::prove_records;
use cmd::serve::serve;
use poe_circle_stark::config::{SecurityConfig, VerifierPolicy};
use poe_circle_stark::data_root::verify_data_root_bytes;
use poe_circle_stark::data_root::DataRootStatement;
use poe_circle_stark::hash::poseidon2::Digest;
use poe_circle_stark::proof::ChannelId;
use poe_circle_stark::validity::ValidityAir;

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
        /// Merkle channel: blake2s, or poseidon2 (the channel recursion verifies).
        #[arg(long, default_value = "blake2s")]
        channel: String,
        /// Batch-validity AIR: v2, v3 (the range table preprocessed and pinned, a constant-size
        /// public input), v4 (v3 with one state-tree pair per batch: every interior state root
        /// proven), or v3-class / v4-class (padded to the cheapest shape class).
        #[arg(long, default_value = "v2")]
        air: String,
        /// v3, v4: pad to this shape class (`o<k>s<j>`: 2^k operations, 2^j chip rows) instead of
        /// the cheapest.
        #[arg(long)]
        class: Option<String>,
        /// Seed of the generated batch.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Cut the operations into this many consecutive batches of (nearly) equal size,
        /// proven together as one segment (AIR v4 proves the state root after each).
        #[arg(long, default_value_t = 1)]
        batches: usize,
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
        /// Merkle channels, comma-separated; each row is compared with the first.
        #[arg(long, default_value = "blake2s")]
        channels: String,
        /// Batch-validity AIRs, comma-separated (v2, v3, v3-class: v3 padded to the cheapest
        /// shape class); every channel runs under each.
        #[arg(long, default_value = "v2")]
        airs: String,
        /// Batches per proof (`prove-batch --batches`).
        #[arg(long, default_value_t = 1)]
        batches: usize,
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
    /// A rollup's key pair: the private key to a new file (mode 0600, never overwritten), the
    /// public key and its poe.toml entry to stdout.
    Keygen {
        /// The private key's file.
        #[arg(long)]
        out: PathBuf,
        /// The rollup's wire name, for the printed registry entry.
        #[arg(long, default_value = "my-rollup")]
        name: String,
        /// Its native commitment scheme: keccak256, poseidon-bn254, poseidon-felt252 or
        /// pedersen-felt252.
        #[arg(long, default_value = "keccak256")]
        commitment: String,
    },
    /// A rollup's next batch from a file of operations (JSON array or CSV): built with the
    /// state roots of poe's engine, signed with the rollup's key, dry-run, then submitted. The
    /// rollup's history (what it submitted) is replayed from --history and must match the
    /// server's head; the batch is appended to it once the server has it.
    Submit {
        /// The poe server, http://host:port or https://host.
        #[arg(long, env = "POE_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
        /// The registry naming the rollup (its instruments and public key).
        #[arg(long, env = "POE_CONFIG", default_value = "poe.toml")]
        config: PathBuf,
        /// The rollup's name.
        #[arg(long)]
        rollup: String,
        /// The rollup's private key file (`poe keygen --out`).
        #[arg(long)]
        key: PathBuf,
        /// The operations: FILE.json (wire form) or FILE.csv (columns type, id, account,
        /// amount, buyer, seller, instrument, qty, price, buyer_fee, seller_fee, timestamp_us).
        #[arg(long)]
        ops: PathBuf,
        /// The rollup's history, one JSON line of operations per batch submitted (default
        /// ROLLUP.history.jsonl).
        #[arg(long)]
        history: Option<PathBuf>,
        /// The rollup's own proof system label.
        #[arg(long, default_value = "none")]
        proof_system: String,
        /// Stop after the dry run.
        #[arg(long)]
        dry_run: bool,
    },
    /// List instruments for a rollup on a running server: FILE is a JSON array of instruments
    /// (name, underlying, expiry_us, strike, kind, collateral; amounts as decimal strings),
    /// appended to the rollup's table, signed with its key. They trade from the next UTC day.
    ListInstruments {
        /// The poe server, http://host:port or https://host.
        #[arg(long, env = "POE_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
        /// The rollup's name.
        #[arg(long)]
        rollup: String,
        /// The rollup's private key file (`poe keygen --out`).
        #[arg(long)]
        key: PathBuf,
        /// The instruments (JSON).
        #[arg(long)]
        file: PathBuf,
    },
    /// TEST MATERIAL: write DIR/poe.toml (one rollup whose private key is public) and
    /// DIR/batches.jsonl (a chain of validly signed batches of it, stamped now) to post to a
    /// local `poe serve --config DIR/poe.toml`.
    SampleBatches {
        /// Where to write them.
        #[arg(long)]
        dir: PathBuf,
        /// Batches in the chain.
        #[arg(long, default_value_t = 20)]
        batches: usize,
        /// Operations per batch (at least 64).
        #[arg(long, default_value_t = 64)]
        ops: usize,
    },
    /// Run the intake service: rollups submit batches over HTTP.
    Serve {
        /// The rollup registry.
        #[arg(long, env = "POE_CONFIG", default_value = "poe.toml")]
        config: PathBuf,
        /// Where the intake store lives (DATA/intake.redb; made only with --init).
        #[arg(long, env = "POE_DATA", default_value = "poe-data")]
        data: PathBuf,
        /// Begin a new, empty intake store in DATA. Refused if DATA/intake.redb exists in any
        /// state: a store is never re-initialised by accident (specs/api.md §7).
        #[arg(long)]
        init: bool,
        /// Address to listen on.
        #[arg(long, env = "POE_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        /// Archive root: the day pipeline publishes each closed day under ARCHIVE/days, and
        /// /v1/days serves them.
        #[arg(long, env = "POE_ARCHIVE", default_value = "poe-archive")]
        archive: PathBuf,
        /// Largest request body, bytes.
        #[arg(long, env = "POE_MAX_BODY_BYTES", default_value_t = 256 << 20)]
        max_body_bytes: u64,
        /// Submissions processed at once.
        #[arg(long, env = "POE_MAX_INFLIGHT", default_value_t = 4)]
        max_inflight: usize,
        /// Seconds a client has to send a request's headers (then the connection is closed).
        #[arg(long, env = "POE_HEADER_TIMEOUT_S", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
        header_timeout_s: u64,
        /// Seconds a submission's body may take on top of 1 s per MiB (then 408).
        #[arg(long, env = "POE_BODY_TIMEOUT_S", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
        body_timeout_s: u64,
        /// Leaf prover threads of the day pipeline (each proof is itself parallel).
        #[arg(long, env = "POE_LEAF_WORKERS", default_value_t = 1)]
        leaf_workers: usize,
        /// Seconds after UTC midnight at which the day is closed.
        #[arg(long, env = "POE_CLOSE_GRACE_S", default_value_t = 5)]
        close_grace_s: u64,
        /// Security preset of leaf proofs: production or testing (root proofs at production
        /// security use the compact preset: the same 104 bits, smaller proofs).
        #[arg(long, env = "POE_PRESET", default_value = "production")]
        preset: String,
        /// Intake and archive serving only: no leaf proving, no automatic day close
        /// (close days with `poe close-day` while stopped).
        #[arg(long, env = "POE_NO_PIPELINE")]
        no_pipeline: bool,
        /// Publish each batch's leaf proof in the day's bundle (the v5 root proves every
        /// state root, so the audit needs none; the leaves are proven for the receipts either
        /// way).
        #[arg(long, env = "POE_BUNDLE_LEAF_PROOFS")]
        bundle_leaf_proofs: bool,
        /// Log lines on stderr: json (one object a line, for collectors) or text. Levels and
        /// targets from RUST_LOG (default: info).
        #[arg(long, env = "POE_LOG_FORMAT", default_value = "json", value_parser = ["json", "text"])]
        log_format: String,
        /// Push each rollup's receipt changes to its receiver: a TOML file of `[[webhooks]]`
        /// (rollup, url, secret_file), signed as Standard Webhooks (specs/api.md §5.2).
        /// Acknowledged deliveries are kept in DATA/webhooks.
        #[arg(long, env = "POE_WEBHOOKS")]
        webhooks: Option<PathBuf>,
    },
    /// Close a finished UTC day: write its bundle (Parquet trade records, batch statements,
    /// manifest) under ARCHIVE/days/DAY and prove the day root. Idempotent. Run it with
    /// `poe serve` stopped: it opens the intake store.
    CloseDay {
        /// The day, YYYY-MM-DD (UTC); it must have ended.
        day: String,
        /// The rollup registry.
        #[arg(long, env = "POE_CONFIG", default_value = "poe.toml")]
        config: PathBuf,
        /// The intake store directory of `poe serve`.
        #[arg(long, env = "POE_DATA", default_value = "poe-data")]
        data: PathBuf,
        /// Archive root; the bundle goes to ARCHIVE/days/DAY.
        #[arg(long, env = "POE_ARCHIVE", default_value = "poe-archive")]
        archive: PathBuf,
        /// Security preset of the leaf proofs: production or testing (the root proof at
        /// production security uses the compact preset).
        #[arg(long, default_value = "production")]
        preset: String,
        /// Prove each batch's leaf proof and publish it in the bundle (the v5 root proves
        /// every state root, so the audit needs none).
        #[arg(long)]
        leaf_proofs: bool,
    },
    /// Audit a day's bundle offline: manifest hashes, the day proof against the statement
    /// derived from the bundle, continuity, and every batch's data root from its Parquet rows.
    /// Exit status 0 only if every check passes.
    Audit {
        /// Day directories (…/days/YYYY-MM-DD); not with --from. Several are also checked for
        /// continuity: each rollup's seqs and state roots chained across them.
        #[arg(required_unless_present = "from", conflicts_with = "from")]
        dir: Vec<PathBuf>,
        /// Download the bundle from a poe server (http://host:port or https://host) first;
        /// needs --day.
        #[arg(long, requires = "day")]
        from: Option<String>,
        /// With --from over HTTPS: trust the certificates in this PEM file instead of
        /// Mozilla's roots (a private CA or a self-signed server).
        #[arg(long, requires = "from")]
        ca_cert: Option<PathBuf>,
        /// The day to download with --from, YYYY-MM-DD; repeat it for several days, or give
        /// FIRST..LAST for every day the server has published in that span (then continuity
        /// is checked too).
        #[arg(long)]
        day: Vec<String>,
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
        /// Where v4 root keys derived from a day's root.samples are kept for later days
        /// (default $POE_KEY_CACHE, else $XDG_CACHE_HOME/poe/keys, else ~/.cache/poe/keys).
        #[arg(long, conflicts_with = "no_key_cache")]
        key_cache: Option<PathBuf>,
        /// Derive v4 root keys from root.samples every time; keep none.
        #[arg(long)]
        no_key_cache: bool,
    },
    /// Measure intake: parse, authenticate, recompute the native commitment, re-execute and
    /// store one batch of N operations, for each commitment scheme.
    BenchIntake {
        /// Operations in the batch.
        #[arg(long, default_value_t = 100_000)]
        ops: usize,
    },
    /// Measure intake's start-up over stores of 10^5 and 10^6 operations: opening the store,
    /// rebuilding the state by full replay, and from the latest snapshot.
    BenchRestart {
        /// Stored operations, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
        ops: Vec<usize>,
        /// Operations per batch.
        #[arg(long, default_value_t = 1_000)]
        batch_ops: usize,
        /// Timed start-ups per size and way.
        #[arg(long, default_value_t = 3)]
        runs: usize,
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
        /// Root proof format: v3 (segments in shape classes), v2, v5 (recursive: one proof
        /// over batch-validity v4 segments, what the pipeline makes; its presets are fixed,
        /// `--preset` and `--leaves` do not apply), v4 (the same over v3 segments), or
        /// v5-close / v4-close (the close after a day whose final runs were proven during it,
        /// as the pipeline does).
        #[arg(long, default_value = "v3")]
        format: String,
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
    /// Compile every batch-validity component's constraints to a QM31 circuit (the recursion
    /// constraint compiler) and print the gate counts per component.
    CircuitStats {
        /// A statement from `prove-batch --statement`; without it, one of a small generated batch.
        #[arg(long)]
        statement: Option<PathBuf>,
        /// Batch-validity AIR: v2 or v3.
        #[arg(long, default_value = "v2")]
        air: String,
    },
    /// Rows per batch-validity component (before padding) on generated batches over a grid of
    /// sizes and account counts: the data for sizing recursion's shape classes.
    ShapeStats {
        /// Largest size, log2 of operations (from 2^10, every other power).
        #[arg(long, default_value_t = 16)]
        max_log: u32,
        /// Operations per batch (a segment's batches).
        #[arg(long, default_value_t = 256)]
        batch_ops: usize,
        /// List the shape classes (sizes per component, trace cells) instead.
        #[arg(long)]
        classes: bool,
    },
    /// The tracing verifier (recursion's witness source) against stwo's on a leaf proof per
    /// channel: verify times, trace sizes, and the verdicts on random single-byte mutations.
    BenchTrace {
        /// Mutations per channel.
        #[arg(long, default_value_t = 10_000)]
        mutations: usize,
        /// First seed; worker `w` uses `seed + w`.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Worker threads (default: the machine's cores).
        #[arg(long)]
        workers: Option<usize>,
    },
    /// The node AIR (recursion, issue 16) on the out-of-domain constraint check of
    /// batch-validity v3 (every component's compiled constraints, folded), once and
    /// replicated, and on chains of Poseidon2 permutations: rows, prove and verify times,
    /// proof size, under each channel.
    BenchNode {
        /// Replications of the check, comma-separated (each a program of its own).
        #[arg(long, default_value = "1,4,16")]
        copies: String,
        /// Chains of Poseidon2 permutations, comma-separated lengths (the permutation
        /// component's cost per permutation).
        #[arg(long, default_value = "4096,32768")]
        perms: String,
        /// Preset: compact, production (default), testing.
        #[arg(long, default_value = "production")]
        preset: String,
    },
    /// Node kinds W and M (recursion, issue 16): a batch-validity v3 proof under the Poseidon2
    /// channel verified whole inside a node (W), and two W proofs inside another (M) — rows,
    /// witness build, prove and verify times, proof size and peak memory, per child and node
    /// preset.
    BenchWrap {
        /// Operations in the child's batch.
        #[arg(long, default_value_t = 64)]
        ops: usize,
        /// The child proofs' presets, comma-separated.
        #[arg(long, default_value = "compact,production")]
        child_presets: String,
        /// The node proofs' presets, comma-separated.
        #[arg(long, default_value = "production,compact")]
        node_presets: String,
    },
    /// The day's tree (recursion, issue 17): W nodes over a batch-validity v3 proof, paired by
    /// M nodes level by level (an odd node carried up), and the final node over the root —
    /// per node its rows, prove time and size, and the final proof's size and verify time on
    /// one core.
    BenchTree {
        /// Operations in the W nodes' child batch.
        #[arg(long, default_value_t = 64)]
        ops: usize,
        /// Leaves of the tree (W nodes; one W proof stands for each: an M node's cost does not
        /// depend on its children's values).
        #[arg(long, default_value_t = 3)]
        leaves: usize,
        /// The child proof's preset.
        #[arg(long, default_value = "compact")]
        child_preset: String,
        /// The W and M nodes' preset.
        #[arg(long, default_value = "compact")]
        node_preset: String,
        /// The final node's preset.
        #[arg(long, default_value = "final")]
        final_preset: String,
    },
    /// Poseidon2-M31 permutations per second on one core: the scalar permutation and the
    /// 16-lane SIMD one (the Poseidon2 Merkle channel's hasher), medians of `runs`.
    BenchPoseidon2 {
        /// Permutations per run.
        #[arg(long, default_value_t = 1 << 20)]
        perms: usize,
        /// Runs; the table shows medians.
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
}

pub(crate) fn channel(name: &str) -> Result<ChannelId, String> {
    ChannelId::from_name(name.trim())
        .ok_or_else(|| format!("unknown channel {name:?}: use blake2s or poseidon2"))
}

pub(crate) fn validity_air(name: &str) -> Result<ValidityAir, String> {
    ValidityAir::parse(name.trim())
        .ok_or_else(|| format!("unknown batch-validity AIR {name:?}: use v2 or v3"))
}

/// `--channel`, `--air` and `--class` of prove-batch as one flavor.
fn flavor(
    ch: &str,
    air: &str,
    class: Option<&str>,
) -> Result<poe_aggregator::validity::Flavor, String> {
    use poe_aggregator::validity::ClassChoice;
    use poe_circle_stark::validity::ShapeClass;
    let mut f = poe_aggregator::validity::parse_air(air, channel(ch)?)?;
    if let Some(name) = class {
        if !f.air.closed_by_input() {
            return Err("--class needs --air v3 or v4".into());
        }
        let c = ShapeClass::parse(name).ok_or_else(|| {
            format!("unknown shape class {name:?}: o<k>s<j> with k in 8..=18, j - k in -4, -2, 0, 2, 4 (`poe shape-stats --classes` lists them)")
        })?;
        f.class = Some(ClassChoice::Fixed(c));
    }
    Ok(f)
}

pub(crate) fn preset(name: &str) -> Result<SecurityConfig, String> {
    if let Some(custom) = name.strip_prefix("custom:") {
        // `custom:LOG_BLOWUP/QUERIES/POW_BITS`, for benchmarks comparing configurations.
        let parts: Vec<u32> = custom
            .split('/')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("preset {name:?}: {e}"))?;
        let [log_blowup, queries, pow] = parts[..] else {
            return Err(format!(
                "preset {name:?}: expected custom:LOG_BLOWUP/QUERIES/POW_BITS"
            ));
        };
        return SecurityConfig::new(log_blowup, queries, pow).map_err(|e| e.to_string());
    }
    SecurityConfig::preset(name).ok_or_else(|| {
        format!(
            "unknown preset {name:?}: use production, compact, final, testing or custom:LOG_BLOWUP/QUERIES/POW_BITS"
        )
    })
}

/// `$POE_KEY_CACHE`, else `$XDG_CACHE_HOME/poe/keys`, else `~/.cache/poe/keys`.
fn default_key_cache() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("POE_KEY_CACHE")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("poe").join("keys")))
        .or_else(|| var("HOME").map(|h| h.join(".cache").join("poe").join("keys")))
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
            channel: ch,
            air,
            class,
            seed,
            batches,
            out,
            statement,
            json,
        } => poe_aggregator::validity::prove_command(
            ops,
            accounts,
            preset(&p)?,
            flavor(&ch, &air, class.as_deref())?,
            seed,
            batches,
            poe_aggregator::validity::Outputs {
                proof: out.as_deref(),
                statement: statement.as_deref(),
                json,
            },
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
            channels,
            airs,
            batches,
        } => {
            let channels = channels
                .split(',')
                .map(channel)
                .collect::<Result<Vec<_>, _>>()?;
            let flavors = channels
                .iter()
                .flat_map(|&c| {
                    airs.split(',')
                        .map(move |a| poe_aggregator::validity::parse_air(a, c))
                })
                .collect::<Result<Vec<_>, _>>()?;
            poe_aggregator::validity::bench_command(
                min_log,
                max_log,
                &p,
                preset(&p)?,
                &flavors,
                batches,
            )
        }
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
            leaf_proofs,
        } => close_day(&day, &config, &data, &archive, &p, leaf_proofs),
        Command::Audit {
            dir,
            from,
            ca_cert,
            day,
            keep,
            proof_only,
            leaves,
            json,
            min_security_bits,
            key_cache,
            no_key_cache,
        } => {
            let options = poe_archive::AuditOptions {
                proof_only,
                leaves,
                policy: VerifierPolicy { min_security_bits },
                key_cache: if no_key_cache {
                    None
                } else {
                    key_cache.or_else(default_key_cache)
                },
            };
            match (dir.is_empty(), from) {
                (false, None) => audit(&dir, options, json),
                (true, Some(from)) if !day.is_empty() => {
                    audit_from(&from, ca_cert.as_deref(), &day, keep, options, json)
                }
                _ => Err("give day directories, or --from URL --day YYYY-MM-DD".into()),
            }
        }
        Command::Bench {
            min_log,
            max_log,
            runs,
            preset: p,
        } => bench(min_log, max_log, runs, &p),
        Command::BenchIntake { ops } => bench_intake(ops),
        Command::BenchRestart {
            ops,
            batch_ops,
            runs,
        } => cmd::bench::bench_restart(&ops, batch_ops, runs),
        Command::BenchPoseidon2 { perms, runs } => cmd::bench::bench_poseidon2(perms, runs),
        Command::BenchNode {
            copies,
            perms,
            preset,
        } => cmd::bench::bench_node(&copies, &perms, &preset),
        Command::BenchWrap {
            ops,
            child_presets,
            node_presets,
        } => cmd::bench::bench_wrap(ops, &child_presets, &node_presets),
        Command::BenchTree {
            ops,
            leaves,
            child_preset,
            node_preset,
            final_preset,
        } => cmd::bench::bench_tree(ops, leaves, &child_preset, &node_preset, &final_preset),
        Command::ShapeStats {
            max_log,
            batch_ops,
            classes,
        } => {
            if classes {
                cmd::bench::shape_classes();
                Ok(())
            } else {
                cmd::bench::shape_stats(max_log, batch_ops)
            }
        }
        Command::CircuitStats { statement, air } => {
            cmd::bench::circuit_stats(statement.as_deref(), validity_air(&air)?)
        }
        Command::BenchTrace {
            mutations,
            seed,
            workers,
        } => cmd::bench::bench_trace(
            mutations,
            seed,
            workers.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
            }),
        ),
        Command::BenchDay {
            ops,
            batch_ops,
            rollups,
            leaves,
            preset: p,
            format,
            child,
        } => {
            use poe_circle_stark::day::root::RootFormat;
            if batch_ops == 0 || rollups == 0 || ops.iter().any(|&n| n < 2 * rollups as usize) {
                return Err("--batch-ops and --rollups must be positive, each day at least 2 ops per rollup".into());
            }
            let format = match format.as_str() {
                "v2" => RootFormat::V2,
                "v3" => RootFormat::V3,
                "v4" | "v5" | "v4-close" | "v5-close" => {
                    use poe_circle_stark::day::recursive::RecursiveFormat;
                    if leaves {
                        return Err(format!("--leaves does not apply to --format {format}"));
                    }
                    let recursive = if format.starts_with("v4") {
                        RecursiveFormat::V4
                    } else {
                        RecursiveFormat::V5
                    };
                    let close = format.ends_with("-close");
                    use poe_aggregator::bench_day as b;
                    if child {
                        let line = if close {
                            b::run_one_close(ops[0], batch_ops, rollups, recursive)?
                        } else {
                            b::run_one_v4(ops[0], batch_ops, rollups, recursive)?
                        };
                        println!("{line}");
                        return Ok(());
                    }
                    return if close {
                        b::bench_command_close(&ops, batch_ops, rollups, recursive)
                    } else {
                        b::bench_command_v4(&ops, batch_ops, rollups, recursive)
                    };
                }
                other => {
                    return Err(format!(
                        "unknown root format {other:?}: use v2, v3, v4, v5, v4-close or v5-close"
                    ))
                }
            };
            let config = preset(&p)?;
            if child {
                let line = poe_aggregator::bench_day::run_one(
                    ops[0],
                    batch_ops,
                    rollups,
                    (leaves, format),
                    config,
                )?;
                println!("{line}");
                Ok(())
            } else {
                poe_aggregator::bench_day::bench_command(
                    &ops,
                    batch_ops,
                    rollups,
                    (leaves, format),
                    &p,
                    config,
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
        Command::Keygen {
            out,
            name,
            commitment,
        } => cmd::keygen::keygen(&out, &name, &commitment),
        Command::ListInstruments {
            server,
            rollup,
            key,
            file,
        } => cmd::submit::list_instruments(&cmd::submit::ListArgs {
            server: &server,
            rollup: &rollup,
            key: &key,
            file: &file,
        }),
        Command::Submit {
            server,
            config,
            rollup,
            key,
            ops,
            history,
            proof_system,
            dry_run,
        } => {
            let history =
                history.unwrap_or_else(|| PathBuf::from(format!("{rollup}.history.jsonl")));
            cmd::submit::submit(&cmd::submit::SubmitArgs {
                server: &server,
                config: &config,
                rollup: &rollup,
                key: &key,
                ops: &ops,
                history: &history,
                proof_system: &proof_system,
                dry_run,
            })
        }
        Command::SampleBatches { dir, batches, ops } => {
            cmd::sample::sample_batches(&dir, batches, ops)
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
            bundle_leaf_proofs,
            init,
            log_format,
            webhooks,
        } => {
            init_logging(&log_format);
            serve(
                cmd::serve::Places {
                    config: &config,
                    data: &data,
                    init,
                    archive: &archive,
                    listen: &listen,
                    webhooks: webhooks.as_deref(),
                },
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
                    bundle_leaf_proofs,
                    ..poe_aggregator::pipeline::PipelineConfig::production()
                }),
            )
        }
    }
}

/// Log lines on stderr through `tracing`: levels and targets from `RUST_LOG` (default `info`;
/// the prover's own spans and events only from `warn`).
fn init_logging(format: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,stwo=warn,stwo_constraint_framework=warn"));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        fmt.json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        fmt.init();
    }
}

pub(crate) fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros() as u64
}

pub(crate) fn bar(len: u64, unit: &str) -> indicatif::ProgressBar {
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
