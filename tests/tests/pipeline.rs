//! The day pipeline inside the service, in-process with a clock the test moves: batches
//! submitted over HTTP go `accepted` → `proven` → `included`, the day closes on its own once
//! midnight has passed, a late arrival stamped before midnight by a skewed clock lands in the
//! next day, and the published bundle audits and is byte-identical to `close_day`'s.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{day, scratch};
use poe_aggregator::fetch::get;
use poe_aggregator::load::post;
use poe_aggregator::pipeline::{Pipeline, PipelineConfig};
use poe_archive::audit::{audit, AuditOptions};
use poe_archive::{LocalDir, Storage};
use poe_circle_stark::config::{SecurityConfig, VerifierPolicy};
use poe_circle_stark::day::root::SEGMENT_CAPACITY_OPS;
use poe_ingest::client::RollupClient;
use poe_ingest::commitment::Scheme;
use poe_ingest::intake::Intake;
use poe_ingest::registry::Registry;
use poe_ingest::testkit::{client, realistic_ops, registry_toml, T0};
use serde_json::Value;

fn json(base: &str, path: &str) -> Value {
    serde_json::from_slice(&get(base, path).unwrap()).unwrap()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn status(base: &str, id: &str) -> String {
    json(base, &format!("/v1/batches/{id}"))["status"]
        .as_str()
        .unwrap()
        .to_string()
}

struct Service {
    runtime: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pipeline: Option<Pipeline>,
    addr: SocketAddr,
}

impl Service {
    fn start(dir: &std::path::Path, registry: Registry, clock: Arc<AtomicU64>) -> Self {
        Self::start_with(dir, registry, clock, SEGMENT_CAPACITY_OPS)
    }

    /// With runs cut at `capacity` operations.
    fn start_with(
        dir: &std::path::Path,
        registry: Registry,
        clock: Arc<AtomicU64>,
        capacity: usize,
    ) -> Self {
        let path = dir.join("intake.redb");
        let intake = if path.exists() {
            Intake::open(registry, &path)
        } else {
            Intake::create(registry, &path)
        }
        .unwrap();
        let archive: Arc<dyn Storage> = Arc::new(LocalDir::new(dir.join("archive")));
        let leaves: Arc<dyn Storage> = Arc::new(LocalDir::new(dir.join("leaves")));
        let state = poe_api::AppState::new(intake, poe_api::ApiConfig::default())
            .with_clock(Arc::new(move || clock.load(Ordering::SeqCst)))
            .with_archive(archive.clone())
            .with_leaf_store(leaves.clone())
            .with_close_schedule(0);
        let pipeline = Pipeline::start(
            state.clone(),
            archive,
            leaves,
            PipelineConfig {
                workers: 1,
                security: SecurityConfig::testing(),
                close_grace_us: 0,
                tick: Duration::from_millis(20),
                max_close_backoff: Duration::from_secs(1),
                segment_capacity_ops: capacity,
                // As `poe serve` by default and `close-day`: the bundles are compared byte
                // for byte with close-day's.
                bundle_leaf_proofs: false,
            },
        )
        .unwrap();
        let state = state.with_accept_hook(pipeline.hook());
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        runtime.spawn(poe_api::run(listener, state, async {
            let _ = rx.await;
        }));
        Self {
            runtime,
            stop: Some(tx),
            pipeline: Some(pipeline),
            addr,
        }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn submit(&self, c: &mut RollupClient, n_ops: usize, seed: u64, ts: u64) -> String {
        let ops = realistic_ops(n_ops, seed, ts);
        let body = c.next_batch(&ops, "groth16", format!("{seed}").as_bytes());
        assert_eq!(post(self.addr, &body).unwrap(), 202);
        let page = json(
            &self.base(),
            &format!("/v1/rollups/{}/batches?from_seq={}", c.name, c.seq),
        );
        page["batches"][0]["batch_id"].as_str().unwrap().to_string()
    }

    fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.pipeline.take().unwrap().stop(true);
        self.runtime.shutdown_timeout(Duration::from_secs(10));
    }
}

/// Two rounds of one 64-operation batch per client, the clock a second apart each.
fn two_rounds(service: &Service, clients: &mut [RollupClient], clock: &AtomicU64) -> Vec<String> {
    let mut ids = Vec::new();
    for round in 0..2u64 {
        for (i, c) in clients.iter_mut().enumerate() {
            clock.fetch_add(1_000_000, Ordering::SeqCst);
            let n = round * 2 + i as u64;
            ids.push(service.submit(c, 64, n, T0 + n * 10_000_000));
        }
    }
    ids
}

/// The published day's full audit (leaf proofs included) passes.
fn audits_in_full(dir: &std::path::Path) {
    let report = audit(
        &LocalDir::new(dir.join("archive").join(format!("days/{}", day()))),
        &AuditOptions {
            proof_only: false,
            leaves: true,
            policy: VerifierPolicy::insecure_for_tests(),
            key_cache: None,
        },
        &mut |_, _| {},
    );
    assert!(report.passed(), "{:#?}", report.checks);
}

#[test]
fn batches_are_proven_then_the_ended_day_closes_itself() {
    let dir = scratch("pipeline");
    let mut clients = [
        client("aurora", 1, Scheme::Keccak256),
        client("cygnus", 3, Scheme::PoseidonFelt252),
    ];
    let toml = registry_toml(&clients.iter().collect::<Vec<_>>());
    let clock = Arc::new(AtomicU64::new(T0 + 3_600_000_000));
    let service = Service::start(&dir, Registry::parse(&toml).unwrap(), clock.clone());
    let base = service.base();

    let ids = two_rounds(&service, &mut clients, &clock);
    wait_for("leaf proofs", || {
        ids.iter().all(|id| status(&base, id) == "proven")
    });
    // A proven receipt says when it was accepted and proven, and when its day should be
    // published: midnight, the grace (0 here), and 10 minutes before any close was measured.
    let receipt = json(&base, &format!("/v1/batches/{}", ids[0]));
    assert!(receipt["timeline"]["proven_us"].is_string(), "{receipt}");
    assert!(receipt["timeline"]["included_us"].is_null(), "{receipt}");
    assert_eq!(
        receipt["expected_included_by_us"],
        (day().next().start_us() + 600_000_000).to_string()
    );
    assert!(
        json(&base, "/v1/days")["days"]
            .as_array()
            .unwrap()
            .is_empty(),
        "a day that has not ended is not closed"
    );

    // A client waiting on aurora's receipts by SSE, up to date (both batches proven).
    let mut events = common::sse_connect(
        &service.addr.to_string(),
        "/v1/rollups/aurora/events",
        Some("2.proven"),
    );

    // Midnight passes, but the archive cannot be written (a file where its directory should
    // be): the close fails, and the day's receipts say why they are not moving.
    let archive_dir = dir.join("archive");
    let aside = dir.join("archive.aside");
    if archive_dir.exists() {
        std::fs::rename(&archive_dir, &aside).unwrap();
    }
    std::fs::write(&archive_dir, b"not a directory").unwrap();
    assert!(json(&base, &format!("/v1/batches/{}", ids[0]))["trouble"].is_null());
    clock.store(day().next().start_us(), Ordering::SeqCst);
    wait_for("the failed close on the receipts", || {
        let r = json(&base, &format!("/v1/batches/{}", ids[0]));
        r["trouble"]["stage"] == "day_close" && r["trouble"]["failures"].as_u64() >= Some(2)
    });
    let receipt = json(&base, &format!("/v1/batches/{}", ids[0]));
    let trouble = &receipt["trouble"];
    assert_eq!(
        receipt["status"], "proven",
        "not a state: the batch stays proven"
    );
    assert!(trouble["reason"].as_str().unwrap().len() > 5, "{trouble}");
    assert_eq!(trouble["since_us"], day().next().start_us().to_string());
    assert!(trouble["next_attempt_us"].is_string(), "{trouble}");
    // The operator puts the archive back: the next retry closes the day by itself.
    std::fs::remove_file(&archive_dir).unwrap();
    if aside.exists() {
        std::fs::rename(&aside, &archive_dir).unwrap();
    }
    wait_for("the day close", || {
        get(&base, &format!("/v1/days/{}", day())).is_ok()
    });
    for id in &ids {
        assert_eq!(status(&base, id), "included");
        assert!(json(&base, &format!("/v1/batches/{id}"))["trouble"].is_null());
    }
    // The catch-up repeats batch 1 (not yet included, so its status may move), then the close
    // pushes both inclusions.
    let pushed = common::sse_ids(&mut events, 3, Duration::from_secs(30));
    assert_eq!(
        pushed,
        ["1.proven", "1.included", "2.included"],
        "the close pushed to the waiting client"
    );
    let receipt = json(&base, &format!("/v1/batches/{}", ids[0]));
    assert!(receipt["timeline"]["included_us"].is_string(), "{receipt}");
    assert!(receipt["expected_included_by_us"].is_null(), "{receipt}");
    let statement = json(&base, &format!("/v1/days/{}", day()));
    assert_eq!(statement["statement"]["n_batches"], 4);
    let bundle = dir.join("archive").join(format!("days/{}", day()));
    assert!(
        !bundle.join("leaf-proofs").exists(),
        "the v5 root proves every state root: no leaf proof is published"
    );
    // The closer clears the leaf store and counts the close just after publishing: wait for
    // it rather than race it.
    wait_for(
        "leaf proofs of a published day cleared from the leaf store",
        || {
            std::fs::read_dir(dir.join("leaves"))
                .unwrap()
                .next()
                .is_none()
        },
    );
    wait_for("the close counted", || {
        String::from_utf8(get(&base, "/metrics").unwrap())
            .unwrap()
            .contains("poe_days_closed_total 1")
    });
    let metrics = String::from_utf8(get(&base, "/metrics").unwrap()).unwrap();
    assert!(metrics.contains("poe_leaf_proofs_total 4"), "{metrics}");

    // A rollup clock (or ours) running behind stamps a batch before midnight: the day is
    // closed, so the batch goes to the next one.
    clock.store(day().next().start_us() - 60_000_000, Ordering::SeqCst);
    let late = service.submit(&mut clients[0], 16, 77, T0 + 600_000_000);
    let receipt = json(&base, &format!("/v1/batches/{late}"));
    assert_eq!(receipt["day"], day().next().to_string());
    assert_eq!(
        receipt["accepted_us"],
        day().next().start_us().to_string(),
        "stamped at the start of the next open day"
    );
    service.shutdown();

    audits_in_full(&dir);

    // The same day closed by `close_day` from the same store: the same bytes.
    let intake = Intake::open(Registry::parse(&toml).unwrap(), &dir.join("intake.redb")).unwrap();
    let reference = LocalDir::new(dir.join("reference"));
    poe_aggregator::day::close_day(
        &intake,
        &reference,
        day(),
        SecurityConfig::testing(),
        &mut |_| {},
    )
    .unwrap();
    let ours = LocalDir::new(dir.join("archive"));
    let prefix = format!("days/{}", day());
    let listed = ours.list(&prefix).unwrap();
    assert_eq!(listed, reference.list(&prefix).unwrap());
    for (path, _) in listed {
        let p = format!("{prefix}/{path}");
        assert!(
            ours.read(&p).unwrap() == reference.read(&p).unwrap(),
            "{p} differs"
        );
    }
}

#[test]
fn runs_are_proven_during_the_day_and_the_close_uses_them() {
    // Runs cut at 100 operations: each rollup's two 64-operation batches are two runs, and
    // the first is final — proven — as soon as the second is.
    let dir = scratch("pipeline-runs");
    let mut clients = [
        client("aurora", 1, Scheme::Keccak256),
        client("cygnus", 3, Scheme::PoseidonFelt252),
    ];
    let toml = registry_toml(&clients.iter().collect::<Vec<_>>());
    let clock = Arc::new(AtomicU64::new(T0 + 3_600_000_000));
    let service = Service::start_with(&dir, Registry::parse(&toml).unwrap(), clock.clone(), 100);
    let base = service.base();
    let ids = two_rounds(&service, &mut clients, &clock);
    wait_for("leaf proofs and the final runs", || {
        ids.iter().all(|id| status(&base, id) == "proven")
            && String::from_utf8(get(&base, "/metrics").unwrap())
                .unwrap()
                .contains("poe_runs_proven_total 2")
    });
    let runs: Vec<String> = std::fs::read_dir(dir.join("leaves"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("run-"))
        .collect();
    assert_eq!(runs.len(), 2, "{runs:?}");

    clock.store(day().next().start_us(), Ordering::SeqCst);
    wait_for("the day close", || {
        get(&base, &format!("/v1/days/{}", day())).is_ok()
    });
    // Counted and cleaned up just after publishing: wait for it rather than race it.
    wait_for("the close counted", || {
        String::from_utf8(get(&base, "/metrics").unwrap())
            .unwrap()
            .contains("poe_days_closed_total 1")
    });
    let metrics = String::from_utf8(get(&base, "/metrics").unwrap()).unwrap();
    assert!(metrics.contains("poe_runs_reused_total 2"), "{metrics}");
    let listed = json(&base, "/v1/days");
    assert_eq!(listed["days"][0]["segments"], 4);
    wait_for(
        "runs and leaf proofs of a published day cleared from the leaf store",
        || {
            std::fs::read_dir(dir.join("leaves"))
                .unwrap()
                .next()
                .is_none()
        },
    );
    service.shutdown();

    audits_in_full(&dir);

    // The same day closed with every run proven at the close: the same root proof.
    let intake = Intake::open(Registry::parse(&toml).unwrap(), &dir.join("intake.redb")).unwrap();
    let input = poe_aggregator::day::day_input(&intake, day(), SecurityConfig::testing()).unwrap();
    let mut venues = poe_aggregator::day::day_venues(&intake, &input).unwrap();
    let empty = LocalDir::new(dir.join("no-runs"));
    let reference = LocalDir::new(dir.join("reference"));
    let closed = poe_aggregator::day::close_input(
        input,
        &mut venues,
        &reference,
        SecurityConfig::testing(),
        &mut |_| {},
        Instant::now(),
        Some(poe_aggregator::day::RunStore {
            storage: &empty,
            capacity_ops: 100,
        }),
    )
    .unwrap();
    assert_eq!(closed.runs_reused, 0);
    let path = format!("days/{}/root.proof", day());
    assert!(
        LocalDir::new(dir.join("archive")).read(&path).unwrap() == reference.read(&path).unwrap(),
        "the root proofs differ"
    );
}
