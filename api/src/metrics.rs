//! Prometheus text metrics (`GET /metrics`), kept as atomics: no lock on the request path.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the submission latency histogram, seconds.
const BUCKETS: [f64; 9] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];
/// Status codes counted individually; anything else lands in `other`.
const CODES: [u16; 17] = [
    200, 202, 400, 401, 403, 404, 408, 409, 411, 413, 415, 422, 429, 500, 503, 405, 0,
];

/// Counters of the service.
#[derive(Debug)]
pub struct Metrics {
    submissions: [AtomicU64; CODES.len()],
    batches_accepted: AtomicU64,
    operations_accepted: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    /// The day pipeline's figures (all zero when `poe serve` runs without it).
    pub pipeline: PipelineMetrics,
}

/// Counters and gauges of the day pipeline, written by the aggregator's workers.
#[derive(Debug, Default)]
pub struct PipelineMetrics {
    /// Leaf proofs made by poe.
    pub leaves_proven: AtomicU64,
    /// Leaf proofs taken from a verified `poe-circle-stark/v1` rollup proof.
    pub leaves_reused: AtomicU64,
    /// Operations covered by the leaf proofs made by poe.
    pub leaf_ops_proven: AtomicU64,
    /// Microseconds spent making leaf proofs.
    pub leaf_prove_us: AtomicU64,
    /// Accepted batches of open days without a leaf proof yet.
    pub leaf_backlog: AtomicU64,
    /// Days closed (bundle and root proof published).
    pub days_closed: AtomicU64,
    /// Microseconds the last day close took.
    pub last_close_us: AtomicU64,
    /// Operations of the last closed day.
    pub last_day_ops: AtomicU64,
    /// Day closes or leaf proofs that failed (each retried on the next tick).
    pub failures: AtomicU64,
    /// Runs of a rollup's batches whose segment proofs were made before their day closed.
    pub runs_proven: AtomicU64,
    /// Runs proven before the close that the close then used.
    pub runs_reused: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            submissions: std::array::from_fn(|_| AtomicU64::new(0)),
            batches_accepted: AtomicU64::new(0),
            operations_accepted: AtomicU64::new(0),
            latency_buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            latency_count: AtomicU64::new(0),
            latency_sum_us: AtomicU64::new(0),
            pipeline: PipelineMetrics::default(),
        }
    }
}

impl Metrics {
    /// Records one submission's outcome and latency.
    pub fn submission(&self, status: u16, seconds: f64) {
        let i = CODES
            .iter()
            .position(|&c| c == status)
            .unwrap_or(CODES.len() - 1);
        self.submissions[i].fetch_add(1, Ordering::Relaxed);
        for (b, bound) in self.latency_buckets.iter().zip(BUCKETS) {
            if seconds <= bound {
                b.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// Records a newly accepted batch.
    pub fn accepted(&self, n_ops: u32) {
        self.batches_accepted.fetch_add(1, Ordering::Relaxed);
        self.operations_accepted
            .fetch_add(u64::from(n_ops), Ordering::Relaxed);
    }

    /// The text exposition format; `in_flight` and `capacity` describe the intake queue now.
    pub fn render(&self, in_flight: usize, capacity: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP poe_submissions_total Batch submissions by HTTP status."
        );
        let _ = writeln!(out, "# TYPE poe_submissions_total counter");
        for (code, n) in CODES.iter().zip(&self.submissions) {
            let label = if *code == 0 {
                "other".to_string()
            } else {
                code.to_string()
            };
            let _ = writeln!(
                out,
                "poe_submissions_total{{code=\"{label}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP poe_batches_accepted_total Batches accepted and stored."
        );
        let _ = writeln!(out, "# TYPE poe_batches_accepted_total counter");
        let _ = writeln!(
            out,
            "poe_batches_accepted_total {}",
            self.batches_accepted.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP poe_operations_accepted_total Operations in accepted batches."
        );
        let _ = writeln!(out, "# TYPE poe_operations_accepted_total counter");
        let _ = writeln!(
            out,
            "poe_operations_accepted_total {}",
            self.operations_accepted.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP poe_intake_in_flight Submissions being processed."
        );
        let _ = writeln!(out, "# TYPE poe_intake_in_flight gauge");
        let _ = writeln!(out, "poe_intake_in_flight {in_flight}");
        let _ = writeln!(
            out,
            "# HELP poe_intake_capacity Submissions processed at once before 429."
        );
        let _ = writeln!(out, "# TYPE poe_intake_capacity gauge");
        let _ = writeln!(out, "poe_intake_capacity {capacity}");
        let _ = writeln!(out, "# HELP poe_submission_seconds Submission latency.");
        let _ = writeln!(out, "# TYPE poe_submission_seconds histogram");
        for (b, bound) in self.latency_buckets.iter().zip(BUCKETS) {
            let _ = writeln!(
                out,
                "poe_submission_seconds_bucket{{le=\"{bound}\"}} {}",
                b.load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(out, "poe_submission_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "poe_submission_seconds_sum {}",
            self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "poe_submission_seconds_count {count}");
        let p = &self.pipeline;
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {value}");
        };
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        metric(
            "poe_leaf_proofs_total",
            "counter",
            "Leaf proofs made by poe.",
            get(&p.leaves_proven).to_string(),
        );
        metric(
            "poe_leaf_proofs_reused_total",
            "counter",
            "Leaf proofs taken from the rollup's verified poe-circle-stark/v1 proof.",
            get(&p.leaves_reused).to_string(),
        );
        metric(
            "poe_leaf_operations_proven_total",
            "counter",
            "Operations covered by leaf proofs made by poe.",
            get(&p.leaf_ops_proven).to_string(),
        );
        metric(
            "poe_leaf_prove_seconds_total",
            "counter",
            "Time spent making leaf proofs.",
            (get(&p.leaf_prove_us) as f64 / 1e6).to_string(),
        );
        metric(
            "poe_leaf_backlog",
            "gauge",
            "Accepted batches of open days still without a leaf proof.",
            get(&p.leaf_backlog).to_string(),
        );
        metric(
            "poe_runs_proven_total",
            "counter",
            "Runs of a rollup's batches whose segment proofs were made before their day closed.",
            get(&p.runs_proven).to_string(),
        );
        metric(
            "poe_runs_reused_total",
            "counter",
            "Runs proven before the close that a day close used.",
            get(&p.runs_reused).to_string(),
        );
        metric(
            "poe_days_closed_total",
            "counter",
            "Days closed into a published bundle with a root proof.",
            get(&p.days_closed).to_string(),
        );
        metric(
            "poe_last_day_close_seconds",
            "gauge",
            "How long the last day close took (bundle and root proof).",
            (get(&p.last_close_us) as f64 / 1e6).to_string(),
        );
        metric(
            "poe_last_day_operations",
            "gauge",
            "Operations of the last closed day.",
            get(&p.last_day_ops).to_string(),
        );
        metric(
            "poe_pipeline_failures_total",
            "counter",
            "Leaf proofs or day closes that failed and will be retried.",
            get(&p.failures).to_string(),
        );
        out
    }
}
