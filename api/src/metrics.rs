//! Prometheus metrics (`GET /metrics`) through the `prometheus` crate: per-rollup series for
//! intake, the day pipeline's figures, and the process's own (CPU, memory, file descriptors).

use prometheus::core::Collector;
use prometheus::{
    Counter, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

/// Upper bounds of the submission latency histogram, seconds.
const BUCKETS: [f64; 9] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// Counters of the service.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    submissions: IntCounterVec,
    batches_accepted: IntCounterVec,
    operations_accepted: IntCounterVec,
    latency: Histogram,
    in_flight: IntGauge,
    capacity: IntGauge,
    webhook_attempts: IntCounterVec,
    webhook_backlog: IntGaugeVec,
    webhook_failing: IntGaugeVec,
    /// The day pipeline's figures (all zero when `poe serve` runs without it).
    pub pipeline: PipelineMetrics,
}

/// Counters and gauges of the day pipeline, written by the aggregator's workers.
#[derive(Debug)]
pub struct PipelineMetrics {
    /// Leaf proofs made by poe.
    pub leaves_proven: IntCounter,
    /// Leaf proofs taken from a verified `poe-circle-stark/v1` rollup proof.
    pub leaves_reused: IntCounter,
    /// Operations covered by the leaf proofs made by poe.
    pub leaf_ops_proven: IntCounter,
    /// Seconds spent making leaf proofs.
    pub leaf_prove_seconds: Counter,
    /// Accepted batches of open days without a leaf proof yet.
    pub leaf_backlog: IntGauge,
    /// Days closed (bundle and root proof published).
    pub days_closed: IntCounter,
    /// Seconds the last day close took.
    pub last_close_seconds: Gauge,
    /// Operations of the last closed day.
    pub last_day_ops: IntGauge,
    /// Day closes or leaf proofs that failed (each retried).
    pub failures: IntCounter,
    /// Runs of a rollup's batches whose segment proofs were made before their day closed.
    pub runs_proven: IntCounter,
    /// Runs proven before the close that the close then used.
    pub runs_reused: IntCounter,
}

fn register<C: Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    registry
        .register(Box::new(c.clone()))
        .expect("metric names are distinct and valid");
    c
}

impl PipelineMetrics {
    fn new(r: &Registry) -> Self {
        let counter = |name: &str, help: &str| {
            register(r, IntCounter::new(name, help).expect("valid metric"))
        };
        let gauge =
            |name: &str, help: &str| register(r, IntGauge::new(name, help).expect("valid metric"));
        Self {
            leaves_proven: counter("poe_leaf_proofs_total", "Leaf proofs made by poe."),
            leaves_reused: counter(
                "poe_leaf_proofs_reused_total",
                "Leaf proofs taken from the rollup's verified poe-circle-stark/v1 proof.",
            ),
            leaf_ops_proven: counter(
                "poe_leaf_operations_proven_total",
                "Operations covered by leaf proofs made by poe.",
            ),
            leaf_prove_seconds: register(
                r,
                Counter::new(
                    "poe_leaf_prove_seconds_total",
                    "Time spent making leaf proofs.",
                )
                .expect("valid metric"),
            ),
            leaf_backlog: gauge(
                "poe_leaf_backlog",
                "Accepted batches of open days still without a leaf proof.",
            ),
            days_closed: counter(
                "poe_days_closed_total",
                "Days closed into a published bundle with a root proof.",
            ),
            last_close_seconds: register(
                r,
                Gauge::new(
                    "poe_last_day_close_seconds",
                    "How long the last day close took (bundle and root proof).",
                )
                .expect("valid metric"),
            ),
            last_day_ops: gauge(
                "poe_last_day_operations",
                "Operations of the last closed day.",
            ),
            failures: counter(
                "poe_pipeline_failures_total",
                "Leaf proofs or day closes that failed and will be retried.",
            ),
            runs_proven: counter(
                "poe_runs_proven_total",
                "Runs of a rollup's batches whose segment proofs were made before their day closed.",
            ),
            runs_reused: counter(
                "poe_runs_reused_total",
                "Runs proven before the close that a day close used.",
            ),
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let r = Registry::new();
        let per_rollup = |name: &str, help: &str, labels: &[&str]| {
            register(
                &r,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let submissions = per_rollup(
            "poe_submissions_total",
            "Batch submissions by HTTP status and rollup (empty for a body naming no registered rollup).",
            &["code", "rollup"],
        );
        let batches_accepted = per_rollup(
            "poe_batches_accepted_total",
            "Batches accepted and stored.",
            &["rollup"],
        );
        let operations_accepted = per_rollup(
            "poe_operations_accepted_total",
            "Operations in accepted batches.",
            &["rollup"],
        );
        let latency = register(
            &r,
            Histogram::with_opts(
                HistogramOpts::new("poe_submission_seconds", "Submission latency.")
                    .buckets(BUCKETS.to_vec()),
            )
            .expect("valid metric"),
        );
        let in_flight = register(
            &r,
            IntGauge::new("poe_intake_in_flight", "Submissions being processed.")
                .expect("valid metric"),
        );
        let capacity = register(
            &r,
            IntGauge::new(
                "poe_intake_capacity",
                "Submissions processed at once before 429.",
            )
            .expect("valid metric"),
        );
        let webhook_attempts = per_rollup(
            "poe_webhook_attempts_total",
            "Webhook deliveries attempted, by rollup and outcome (delivered: a 2xx; failed: retried).",
            &["rollup", "outcome"],
        );
        let webhook_backlog = register(
            &r,
            IntGaugeVec::new(
                Opts::new(
                    "poe_webhook_backlog",
                    "Webhook events waiting for the rollup's receiver, as of the deliverer's last scan of the receipts.",
                ),
                &["rollup"],
            )
            .expect("valid metric"),
        );
        let webhook_failing = register(
            &r,
            IntGaugeVec::new(
                Opts::new(
                    "poe_webhook_consecutive_failures",
                    "Failed webhook attempts since the rollup's receiver last answered 2xx (alert on it).",
                ),
                &["rollup"],
            )
            .expect("valid metric"),
        );
        // process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, …
        #[cfg(target_os = "linux")]
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("the process collector registers once");
        let pipeline = PipelineMetrics::new(&r);
        Self {
            registry: r,
            submissions,
            batches_accepted,
            operations_accepted,
            latency,
            in_flight,
            capacity,
            webhook_attempts,
            webhook_backlog,
            webhook_failing,
            pipeline,
        }
    }
}

impl Metrics {
    /// Records one submission's outcome and latency. `rollup`: a registered rollup's name, or
    /// `None` (a client's unregistered name must not make series of its own).
    pub fn submission(&self, status: u16, seconds: f64, rollup: Option<&str>) {
        self.submissions
            .with_label_values(&[&status.to_string(), rollup.unwrap_or("")])
            .inc();
        self.latency.observe(seconds);
    }

    /// Starts the per-rollup series of `names` at zero, so that a rollup that has sent nothing
    /// yet is a 0 on a dashboard, not a gap.
    pub fn rollups<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        for name in names {
            self.batches_accepted.with_label_values(&[name]);
            self.operations_accepted.with_label_values(&[name]);
        }
    }

    /// Records a newly accepted batch.
    pub fn accepted(&self, rollup: &str, n_ops: u32) {
        self.batches_accepted.with_label_values(&[rollup]).inc();
        self.operations_accepted
            .with_label_values(&[rollup])
            .inc_by(u64::from(n_ops));
    }

    /// Records one webhook delivery attempt (`outcome`: `delivered` or `failed`).
    pub fn webhook_attempt(&self, rollup: &str, outcome: &str) {
        self.webhook_attempts
            .with_label_values(&[rollup, outcome])
            .inc();
        let failing = self.webhook_failing.with_label_values(&[rollup]);
        if outcome == "delivered" {
            failing.set(0);
        } else {
            failing.inc();
        }
    }

    /// Events waiting for `rollup`'s receiver, as counted by its last scan.
    pub fn webhook_backlog(&self, rollup: &str, pending: usize) {
        self.webhook_backlog
            .with_label_values(&[rollup])
            .set(pending as i64);
    }

    /// The text exposition format; `in_flight` and `capacity` describe the intake queue now.
    pub fn render(&self, in_flight: usize, capacity: usize) -> String {
        self.in_flight.set(in_flight as i64);
        self.capacity.set(capacity as i64);
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# encoding failed: {e}\n"))
    }
}
