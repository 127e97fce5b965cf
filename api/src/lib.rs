#![doc = include_str!("../README.md")]

mod batches;
mod body;
pub mod days;
pub mod events;
mod explorer;
mod instruments;
pub mod metrics;
mod problem;
pub mod webhooks;

use batches::{dry_run, get_batch, get_head, list_batches, list_rollups, now_us, submit};
use body::timed_body;
pub use problem::refusal_status;
use problem::{rejection, Problem};

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use poe_archive::layout;
use poe_ingest::intake::{Intake, Receipt};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use warp::filters::BoxedFilter;
use warp::http::{header, StatusCode};
use warp::{Filter, Reply};

/// Limits of the service.
#[derive(Debug, Clone, Copy)]
pub struct ApiConfig {
    /// Largest request body accepted (413 above it).
    pub max_body_bytes: u64,
    /// Submissions processed at once; more get 429.
    pub max_inflight: usize,
    /// Time a client has to send a request's headers; the connection is closed after it, so
    /// unfinished headers cannot hold file descriptors for ever.
    pub header_read_timeout: std::time::Duration,
    /// Time a client has to send a submission's body, on top of [`ApiConfig::min_body_rate`]:
    /// a body that trickles in is cut off with 408, so it cannot hold a connection for ever.
    pub body_read_timeout: std::time::Duration,
    /// Slowest body accepted, bytes per second: the deadline for a body of `n` bytes is
    /// `body_read_timeout + n / min_body_rate`.
    pub min_body_rate: u64,
}

impl ApiConfig {
    /// How long a body of `len` bytes may take to arrive.
    pub fn body_deadline(&self, len: u64) -> std::time::Duration {
        self.body_read_timeout
            + std::time::Duration::from_secs_f64(len as f64 / self.min_body_rate.max(1) as f64)
    }
}

impl Default for ApiConfig {
    /// 256 MiB bodies (≈ 1M operations), 4 submissions at once, 10 s for the headers, a body
    /// at 1 MiB/s at least (plus 10 s).
    fn default() -> Self {
        Self {
            max_body_bytes: 256 << 20,
            max_inflight: 4,
            header_read_timeout: std::time::Duration::from_secs(10),
            body_read_timeout: std::time::Duration::from_secs(10),
            min_body_rate: 1 << 20,
        }
    }
}

/// Shared state of the routes.
#[derive(Clone)]
pub struct AppState {
    /// The registry as intake now has it (listings append instruments): replaced whole after
    /// each listing, read as a snapshot by each request.
    registry: Arc<std::sync::RwLock<Arc<poe_ingest::registry::Registry>>>,
    intake: Arc<Mutex<Intake>>,
    inflight: Arc<Semaphore>,
    draining: Arc<AtomicBool>,
    config: ApiConfig,
    metrics: Arc<metrics::Metrics>,
    archive: Option<Arc<dyn poe_archive::Storage>>,
    leaves: Option<Arc<dyn poe_archive::Storage>>,
    on_accept: Option<AcceptHook>,
    clock: Clock,
    etags: days::Etags,
    close_grace_us: Option<u64>,
    events: tokio::sync::broadcast::Sender<events::StatusEvent>,
    troubles: Arc<Mutex<Troubles>>,
}

/// Why a batch's status is not moving: the pipeline's work for it is failing and being
/// retried (`specs/api.md` §5). Not a state: the batch stays `accepted` or `proven`, and moves
/// on once the retry succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trouble {
    /// `leaf_proof` or `day_close`.
    pub stage: &'static str,
    /// The last failure, as logged.
    pub reason: String,
    /// Failures in a row.
    pub failures: u32,
    /// When the first of them happened (µs).
    pub since_us: u64,
    /// When the next attempt is due (µs), where known.
    pub next_attempt_us: Option<u64>,
}

#[derive(Debug, Default)]
struct Troubles {
    /// The day whose close is failing, and how.
    close: Option<(String, Trouble)>,
    /// Leaf proofs failing, by batch id.
    leaves: HashMap<[u8; 32], Trouble>,
}

/// Called with every newly accepted batch's receipt, after it is on disk (the day pipeline
/// queues it for leaf proving). Runs on a blocking thread; must not block for long.
pub type AcceptHook = Arc<dyn Fn(&Receipt) + Send + Sync>;

/// The name under which a batch's leaf proof waits in the leaf store until its day closes.
pub fn leaf_file(batch_id: &[u8; 32]) -> String {
    format!("{}.leaf", hex::encode(batch_id))
}

/// Where acceptance times come from: µs since the epoch.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

impl AppState {
    /// Wraps an intake.
    pub fn new(intake: Intake, config: ApiConfig) -> Self {
        let metrics = metrics::Metrics::default();
        metrics.rollups(intake.registry().rollups().iter().map(|r| r.name.as_str()));
        Self {
            registry: Arc::new(std::sync::RwLock::new(Arc::new(intake.registry().clone()))),
            intake: Arc::new(Mutex::new(intake)),
            inflight: Arc::new(Semaphore::new(config.max_inflight)),
            draining: Arc::new(AtomicBool::new(false)),
            config,
            metrics: Arc::new(metrics),
            archive: None,
            leaves: None,
            on_accept: None,
            clock: Arc::new(now_us),
            etags: days::Etags::default(),
            close_grace_us: None,
            events: events::channel(),
            troubles: Arc::default(),
        }
    }

    /// Records that closing `day` failed (again): the receipts of its batches say so until
    /// [`AppState::clear_close_failure`].
    pub fn report_close_failure(&self, day: &str, reason: &str, next_attempt_us: Option<u64>) {
        let now = (self.clock)();
        let mut t = self.troubles.lock().unwrap_or_else(|p| p.into_inner());
        let (failures, since_us) = match &t.close {
            Some((d, old)) if d == day => (old.failures + 1, old.since_us),
            _ => (1, now),
        };
        t.close = Some((
            day.to_owned(),
            Trouble {
                stage: "day_close",
                reason: reason.to_owned(),
                failures,
                since_us,
                next_attempt_us,
            },
        ));
    }

    /// The day close is no longer failing.
    pub fn clear_close_failure(&self) {
        self.troubles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .close = None;
    }

    /// Records that proving batch `batch_id`'s leaf failed; the day's close proves it again.
    pub fn report_leaf_failure(&self, batch_id: &[u8; 32], reason: &str) {
        let now = (self.clock)();
        let mut t = self.troubles.lock().unwrap_or_else(|p| p.into_inner());
        let e = t.leaves.entry(*batch_id).or_insert(Trouble {
            stage: "leaf_proof",
            reason: String::new(),
            failures: 0,
            since_us: now,
            next_attempt_us: None,
        });
        e.failures += 1;
        e.reason = reason.to_owned();
    }

    /// Batch `batch_id`'s leaf proof no longer fails.
    pub fn clear_leaf_failure(&self, batch_id: &[u8; 32]) {
        self.troubles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .leaves
            .remove(batch_id);
    }

    /// What holds the batch back, if anything: a failing close of its day, or (while it is
    /// `accepted`) a failing leaf proof.
    pub fn trouble(&self, r: &Receipt, status: &str) -> Option<Trouble> {
        if status == "included" {
            return None;
        }
        let t = self.troubles.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((day, trouble)) = &t.close {
            if *day == r.day {
                return Some(trouble.clone());
            }
        }
        (status == "accepted")
            .then(|| t.leaves.get(&r.batch_id).cloned())
            .flatten()
    }

    /// The registry now (with the instruments listed so far).
    pub fn registry(&self) -> Arc<poe_ingest::registry::Registry> {
        self.registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Runs `f` on the intake under its lock (blocking: call from a blocking context).
    pub fn with_intake<T>(&self, f: impl FnOnce(&Intake) -> T) -> T {
        f(&self.intake.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Takes acceptance times from `clock` instead of the system clock (`poe demo` replays a
    /// past trading day; tests pin days).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Runs `f` on the intake under its lock, mutably (the day pipeline closes days with it).
    pub fn with_intake_mut<T>(&self, f: impl FnOnce(&mut Intake) -> T) -> T {
        f(&mut self.intake.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The service's counters (the day pipeline writes its own into `pipeline`).
    pub fn metrics(&self) -> Arc<metrics::Metrics> {
        self.metrics.clone()
    }

    /// The clock acceptance times come from.
    pub fn clock(&self) -> Clock {
        self.clock.clone()
    }

    /// Reports batch statuses `proven` from the leaf proofs waiting in `storage`
    /// (named by [`leaf_file`]).
    #[must_use]
    pub fn with_leaf_store(mut self, storage: Arc<dyn poe_archive::Storage>) -> Self {
        self.leaves = Some(storage);
        self
    }

    /// Calls `hook` with each newly accepted batch.
    #[must_use]
    pub fn with_accept_hook(mut self, hook: AcceptHook) -> Self {
        self.on_accept = Some(hook);
        self
    }

    /// `included` once the batch's day is published, `proven` once its leaf proof is stored,
    /// else `accepted` (`specs/api.md` §5).
    pub fn batch_status(&self, r: &Receipt) -> &'static str {
        if self
            .archive
            .as_ref()
            .is_some_and(|a| poe_archive::layout::is_published(&**a, &r.day))
        {
            "included"
        } else if self
            .leaves
            .as_ref()
            .is_some_and(|l| l.exists(&leaf_file(&r.batch_id)))
        {
            "proven"
        } else {
            "accepted"
        }
    }

    /// When each state of the batch was reached, where known (µs since the epoch, as decimal
    /// strings): accepted; proven (its leaf proof stored; unknown once the day is published and
    /// the leaf store cleared); included (its day's bundle published).
    pub fn timeline(&self, r: &Receipt) -> serde_json::Value {
        let at = |storage: &Option<Arc<dyn poe_archive::Storage>>, path: String| {
            storage
                .as_ref()
                .and_then(|s| s.modified_us(&path).ok())
                .map(|t| t.to_string())
        };
        json!({
            "accepted_us": r.accepted_us.to_string(),
            "proven_us": at(&self.leaves, leaf_file(&r.batch_id)),
            "included_us": at(&self.archive, layout::day_file(&r.day, layout::STATEMENT_JSON)),
        })
    }

    /// When the batch's day should be published: its end, the pipeline's grace, and the last
    /// close's duration (10 minutes before any). `None` without a pipeline closing days.
    pub fn expected_inclusion_us(&self, r: &Receipt) -> Option<u64> {
        let grace = self.close_grace_us?;
        let day: poe_archive::Day = r.day.parse().ok()?;
        let last = self.metrics.pipeline.last_close_seconds.get();
        let close_us = if last > 0.0 {
            (last * 1e6) as u64
        } else {
            600_000_000
        };
        Some(day.next().start_us() + grace + close_us)
    }

    /// Tells the `/v1/rollups/{rollup}/events` streams that batch `seq` of `rollup` changed
    /// status (the day pipeline calls it when a leaf is proven and when a day is published).
    pub fn notify(&self, rollup: &str, seq: u64) {
        // No subscriber is not an error.
        let _ = self.events.send(events::StatusEvent {
            rollup: rollup.to_owned(),
            seq,
        });
    }

    /// Receipts state when a batch's day should be published: the pipeline closes days
    /// `grace_us` after UTC midnight.
    #[must_use]
    pub fn with_close_schedule(mut self, grace_us: u64) -> Self {
        self.close_grace_us = Some(grace_us);
        self
    }

    /// Serves the daily bundles under `storage` on the `/v1/days` routes.
    #[must_use]
    pub fn with_archive(mut self, storage: Arc<dyn poe_archive::Storage>) -> Self {
        self.archive = Some(storage);
        self
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .field("archive", &self.archive.is_some())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Starts refusing new submissions with 503 (what `run` does when shutdown begins).
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }
}

/// The archive routes as a client spells them (`specs/api.md` §6): the server's links and
/// `poe audit --from` use these, not strings of their own.
pub mod urls {
    use std::fmt::Display;

    /// `GET /v1/days/{day}/manifest`.
    pub fn day_manifest(day: impl Display) -> String {
        format!("/v1/days/{day}/manifest")
    }

    /// `GET /v1/days/{day}/proof`.
    pub fn day_proof(day: impl Display) -> String {
        format!("/v1/days/{day}/proof")
    }

    /// `GET /v1/days/{day}/files/{path}`.
    pub fn day_file(day: impl Display, path: &str) -> String {
        format!("/v1/days/{day}/files/{path}")
    }
}

/// The OpenAPI document of these routes, served at `/openapi.yaml`: the spec in `specs/` is
/// compiled in, so the service and its description cannot come apart in a deployment.
pub const OPENAPI: &str = include_str!("../../specs/api/openapi.yaml");

/// The routes (`specs/api/openapi.yaml`).
pub fn routes(
    state: AppState,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    let with_state = {
        let s = state.clone();
        warp::any().map(move || s.clone())
    };
    // A submission's body (and a dry run's): its content type, within the size limit, read
    // under the body deadline.
    let submission = warp::post()
        .and(with_state.clone())
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::body::content_length_limit(
            state.config.max_body_bytes,
        ))
        .and(timed_body(state.config));
    let post = warp::path!("v1" / "batches")
        .and(submission.clone())
        .and_then(submit);
    let dry = warp::path!("v1" / "batches" / "dry-run")
        .and(submission.clone())
        .and_then(dry_run);
    let list_instruments = warp::path!("v1" / "rollups" / String / "instruments")
        .and(submission)
        .and_then(|r, s, ct, body| instruments::list(s, r, ct, body));
    let instrument_table = warp::path!("v1" / "rollups" / String / "instruments")
        .and(warp::get())
        .and(with_state.clone())
        .and_then(|r, s| instruments::table(s, r));
    let batch = warp::path!("v1" / "batches" / String)
        // `dry-run` is a route of its own (POST): a GET of it is a 405, not a malformed id.
        .and_then(|id: String| async move {
            if id == "dry-run" {
                Err(warp::reject::not_found())
            } else {
                Ok(id)
            }
        })
        .and(warp::get())
        .and(with_state.clone())
        .and_then(|id, s| get_batch(s, id));
    let inclusion = warp::path!("v1" / "batches" / String / "inclusion")
        .and(warp::get())
        .and(with_state.clone())
        .and_then(|id, s| days::inclusion(s, id));
    let head = warp::path!("v1" / "rollups" / String / "head")
        .and(warp::get())
        .and(with_state.clone())
        .and_then(|r, s| get_head(s, r));
    let days = warp::path!("v1" / "days")
        .and(warp::get())
        .and(with_state.clone())
        .and_then(days::list);
    let day = warp::path!("v1" / "days" / String)
        .and(warp::get())
        .and(with_state.clone())
        .and_then(|d, s| days::statement(s, d));
    let proof = warp::path!("v1" / "days" / String / "proof")
        .and(warp::get())
        .and(with_state.clone())
        .and_then(|d, s| days::fixed_file(s, d, layout::ROOT_PROOF, "application/octet-stream"));
    let manifest = warp::path!("v1" / "days" / String / "manifest")
        .and(warp::get())
        .and(with_state.clone())
        .and_then(|d, s| days::fixed_file(s, d, layout::MANIFEST_JSON, "application/json"));
    let file = warp::path!("v1" / "days" / String / "files" / ..)
        .and(warp::path::tail())
        .and(
            warp::get()
                .map(|| false)
                .or(warp::head().map(|| true))
                .unify(),
        )
        .and(with_state.clone())
        .and(
            warp::header::optional::<String>("range")
                .and(warp::header::optional::<String>("if-range"))
                .and(warp::header::optional::<String>("if-none-match"))
                .map(|range, if_range, if_none_match| days::Conditions {
                    range,
                    if_range,
                    if_none_match,
                }),
        )
        .and_then(|d, tail: warp::path::Tail, head_only, s, conditions| {
            days::file(s, d, tail.as_str().to_string(), conditions, head_only)
        });
    let events = warp::path!("v1" / "rollups" / String / "events")
        .and(warp::get())
        .and(with_state.clone())
        .and(warp::header::optional::<String>("last-event-id"))
        .and_then(|r, s, last| events::events(s, r, last));
    let list = warp::path!("v1" / "rollups" / String / "batches")
        .and(warp::get())
        .and(with_state.clone())
        .and(warp::query::<HashMap<String, String>>())
        .and_then(|r, s, q| list_batches(s, r, q));
    let ready = {
        let s = state.clone();
        warp::path!("readyz").and(warp::get()).map(move || {
            if s.draining.load(Ordering::SeqCst) {
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "draining").reply()
            } else {
                warp::reply::json(&json!({"status": "ready"})).into_response()
            }
        })
    };
    let metrics = {
        let s = state.clone();
        warp::path!("metrics").and(warp::get()).map(move || {
            let capacity = s.config.max_inflight;
            let in_flight = capacity.saturating_sub(s.inflight.available_permits());
            let mut resp = s.metrics.render(in_flight, capacity).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            resp
        })
    };
    // The service describes itself: an index at `/` and the OpenAPI document it implements.
    // A browser asking for `/` gets the explorer; clients get the index.
    let index = warp::path::end()
        .and(warp::get())
        .and(warp::header::optional::<String>("accept"))
        .map(|accept: Option<String>| {
            if accept.is_some_and(|a| explorer::wants_html(&a)) {
                return explorer::asset(explorer::INDEX);
            }
            warp::reply::json(&json!({
                "service": "poe",
                "version": env!("CARGO_PKG_VERSION"),
                "openapi": "/openapi.yaml",
                "days": "/v1/days",
                "submit": "POST /v1/batches",
                "health": "/healthz",
                "ready": "/readyz",
                "metrics": "/metrics",
                "explorer": "/explorer",
                "rollups": "/v1/rollups",
            }))
            .into_response()
        });
    let openapi = warp::path!("openapi.yaml").and(warp::get()).map(|| {
        let mut resp = warp::reply::Response::new(OPENAPI.into());
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/yaml"),
        );
        resp
    });
    let rollups = warp::path!("v1" / "rollups")
        .and(warp::get())
        .and(with_state)
        .and_then(list_rollups);
    let explorer = warp::path!("explorer")
        .and(warp::get())
        .map(|| explorer::asset(explorer::INDEX));
    let explorer_assets = warp::path!("explorer" / String)
        .and(warp::get())
        .map(|name: String| explorer::named(&name));
    let health = warp::path!("healthz")
        .and(warp::get())
        .map(|| warp::reply::json(&json!({"status": "ok"})).into_response());
    // Last: a known path asked with another method is a 405 naming the methods it takes.
    let wrong_method = warp::path::full().and(warp::method()).and_then(
        |path: warp::path::FullPath, method: warp::http::Method| async move {
            Err::<warp::reply::Response, _>(match problem::allowed_methods(path.as_str()) {
                Some(allow) if !allow.split(", ").any(|a| a == method.as_str()) => {
                    warp::reject::custom(problem::WrongMethod(allow))
                }
                _ => warp::reject::not_found(),
            })
        },
    );
    // Each route boxed, and the union boxed at every step: warp's nested `Or` types otherwise
    // grow with every route, and compiling them dominated the workspace's build (minutes).
    let routes: Vec<BoxedFilter<(warp::reply::Response,)>> = vec![
        post.boxed(),
        dry.boxed(),
        batch.boxed(),
        list.boxed(),
        head.boxed(),
        health.boxed(),
        index.boxed(),
        openapi.boxed(),
        ready.boxed(),
        metrics.boxed(),
        days.boxed(),
        inclusion.boxed(),
        rollups.boxed(),
        events.boxed(),
        explorer.boxed(),
        explorer_assets.boxed(),
        day.boxed(),
        proof.boxed(),
        manifest.boxed(),
        file.boxed(),
        list_instruments.boxed(),
        instrument_table.boxed(),
        wrong_method.boxed(),
    ];
    routes
        .into_iter()
        .reduce(|a, b| a.or(b).unify().boxed())
        .expect("routes")
        .recover(move |r| rejection(state.metrics.clone(), r))
        .unify()
}

/// Serves until `shutdown` resolves, then refuses new submissions with 503 and drains the
/// requests in flight.
///
/// The connection loop is warp's own, written out here because warp 0.4 sets no hyper timer:
/// without one hyper has no header-read timeout, and a client that never finishes its headers
/// holds its connection (and a file descriptor) for ever.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;
    use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
    use tower_http::trace::{DefaultOnResponse, TraceLayer};
    use tower_http::LatencyUnit;

    let draining = state.draining.clone();
    let header_timeout = state.config.header_read_timeout;
    let filter = routes(state);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait for some to close.
                    if !matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionRefused
                            | std::io::ErrorKind::ConnectionAborted
                            | std::io::ErrorKind::ConnectionReset
                    ) {
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // A request id and a span per request: `x-request-id` as the client sent it, else a
        // new UUID, echoed in the response; every log line of the request carries it in its
        // `request` span, and one line per response gives status and latency.
        let service = tower::ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(|req: &warp::http::Request<_>| {
                        let id = req
                            .headers()
                            .get("x-request-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default();
                        tracing::info_span!("request", request_id = id, method = %req.method(), path = req.uri().path())
                    })
                    .on_request(())
                    .on_response(
                        DefaultOnResponse::new()
                            .level(tracing::Level::INFO)
                            .latency_unit(LatencyUnit::Micros),
                    ),
            )
            .layer(PropagateRequestIdLayer::x_request_id())
            .service(warp::service(filter.clone()));
        let svc = TowerToHyperService::new(service);
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
            // A connection that ends badly (reset, timed out) concerns that client alone.
            let _ = watcher.watch(conn).await;
        });
    }
    draining.store(true, Ordering::SeqCst);
    drop(listener);
    graceful.shutdown().await;
}
