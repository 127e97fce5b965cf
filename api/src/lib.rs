#![doc = include_str!("../README.md")]

pub mod days;
pub mod metrics;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use poe_archive::layout;
use poe_ingest::intake::{Intake, IntakeError, Outcome, Receipt, RollupProofStatus};
use poe_ingest::model::{Refusal, RefusalCode};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use warp::http::{header, StatusCode};
use warp::hyper::body::Bytes;
use warp::{Filter, Rejection, Reply};

/// Limits of the service.
#[derive(Debug, Clone, Copy)]
pub struct ApiConfig {
    /// Largest request body accepted (413 above it).
    pub max_body_bytes: u64,
    /// Submissions processed at once; more get 429.
    pub max_inflight: usize,
    /// One JSON log line per submission on stderr.
    pub log_submissions: bool,
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
            log_submissions: true,
            header_read_timeout: std::time::Duration::from_secs(10),
            body_read_timeout: std::time::Duration::from_secs(10),
            min_body_rate: 1 << 20,
        }
    }
}

/// Shared state of the routes.
#[derive(Clone)]
pub struct AppState {
    registry: Arc<poe_ingest::registry::Registry>,
    intake: Arc<Mutex<Intake>>,
    inflight: Arc<Semaphore>,
    draining: Arc<AtomicBool>,
    config: ApiConfig,
    metrics: Arc<metrics::Metrics>,
    archive: Option<Arc<dyn poe_archive::Storage>>,
    leaves: Option<Arc<dyn poe_archive::Storage>>,
    on_accept: Option<AcceptHook>,
    clock: Clock,
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
        Self {
            registry: Arc::new(intake.registry().clone()),
            intake: Arc::new(Mutex::new(intake)),
            inflight: Arc::new(Semaphore::new(config.max_inflight)),
            draining: Arc::new(AtomicBool::new(false)),
            config,
            metrics: Arc::default(),
            archive: None,
            leaves: None,
            on_accept: None,
            clock: Arc::new(now_us),
        }
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

/// An RFC 9457 problem: the one place where errors become HTTP statuses.
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

/// The HTTP status of each refusal code (`specs/api.md` §3): the one place it is decided, and
/// exhaustive, so a new code cannot fall through to a default.
pub fn refusal_status(code: RefusalCode) -> StatusCode {
    use RefusalCode as C;
    match code {
        C::MalformedJson
        | C::MalformedAmount
        | C::MalformedRoot
        | C::MalformedIdentifier
        | C::MalformedHex
        | C::MalformedCommitment
        | C::NOpsMismatch
        | C::EmptyBatch => StatusCode::BAD_REQUEST,
        C::MalformedSignature => StatusCode::UNAUTHORIZED,
        C::BadSignature => StatusCode::FORBIDDEN,
        C::UnknownRollup => StatusCode::NOT_FOUND,
        C::SeqConflict | C::SeqGap | C::StateFork => StatusCode::CONFLICT,
        C::UnknownInstrument
        | C::CommitmentMismatch
        | C::CommitmentSchemeMismatch
        | C::RuleViolation
        | C::PostStateRootMismatch
        | C::TimestampInFuture
        | C::TimestampTooOld
        | C::InstrumentExpired
        | C::DuplicateTradeId
        | C::RollupProofInvalid => StatusCode::UNPROCESSABLE_ENTITY,
        // A stored batch that no longer replays: the service's fault, never the client's.
        C::ReplayFailed => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[derive(Debug)]
pub(crate) struct Problem {
    status: StatusCode,
    code: &'static str,
    detail: String,
    path: Option<String>,
    op_index: Option<usize>,
}

impl Problem {
    pub(crate) fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            path: None,
            op_index: None,
        }
    }

    fn from_refusal(r: Refusal) -> Self {
        Self {
            status: refusal_status(r.code),
            code: r.code.as_str(),
            detail: r.message,
            path: Some(r.path),
            op_index: r.op_index,
        }
    }

    pub(crate) fn reply(&self) -> warp::reply::Response {
        let mut body = json!({
            "type": format!("urn:poe:problem:{}", self.code),
            "title": self.status.canonical_reason().unwrap_or("error"),
            "status": self.status.as_u16(),
            "code": self.code,
            "detail": self.detail,
        });
        if let Some(p) = &self.path {
            body["path"] = p.clone().into();
        }
        if let Some(i) = self.op_index {
            body["op_index"] = i.into();
        }
        let mut resp =
            warp::reply::with_status(warp::reply::json(&body), self.status).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body may still trickle in: do not wait for it on this connection.
            resp.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
        }
        if matches!(
            self.status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        ) {
            // A submission takes ~milliseconds to tens of ms: a second is a polite wait.
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        resp
    }
}

fn receipt_json(r: &Receipt, status: &str) -> Value {
    let id = hex::encode(r.batch_id);
    json!({
        "batch_id": id,
        "status": status,
        "rollup": r.rollup,
        "seq": r.seq,
        "day": r.day,
        "accepted_us": r.accepted_us.to_string(),
        "n_ops": r.n_ops,
        "pre_state_root": r.pre_state_root.to_hex(),
        "post_state_root": r.post_state_root.to_hex(),
        "data_root": r.data_root.to_hex(),
        "rollup_proof": {
            "system": r.rollup_proof_system,
            "verified": r.rollup_proof == RollupProofStatus::Verified,
            "keccak256": format!("0x{}", hex::encode(r.rollup_proof_digest)),
        },
        "status_url": format!("/v1/batches/{id}"),
    })
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// One JSON line per submission on stderr: the service's structured log.
fn log_submission(status: StatusCode, seconds: f64, body_len: usize, detail: &Value) {
    let line = json!({
        "ts_us": now_us(),
        "event": "submit",
        "status": status.as_u16(),
        "ms": (seconds * 1e6).round() / 1e3,
        "bytes": body_len,
        "rollup": detail.get("rollup"),
        "seq": detail.get("seq"),
        "batch_id": detail.get("batch_id"),
        "code": detail.get("code"),
    });
    eprintln!("{line}");
}

async fn submit(
    state: AppState,
    content_type: Option<String>,
    body: Bytes,
) -> Result<warp::reply::Response, Infallible> {
    let started = std::time::Instant::now();
    let len = body.len();
    let metrics = state.metrics.clone();
    let log = state.config.log_submissions;
    let (resp, detail) = submit_inner(state, content_type, body).await;
    let seconds = started.elapsed().as_secs_f64();
    metrics.submission(resp.status().as_u16(), seconds);
    if log {
        log_submission(resp.status(), seconds, len, &detail);
    }
    Ok(resp)
}

async fn submit_inner(
    state: AppState,
    content_type: Option<String>,
    body: Bytes,
) -> (warp::reply::Response, Value) {
    let problem = |p: Problem| {
        let detail = json!({"code": p.code});
        (p.reply(), detail)
    };
    if state.draining.load(Ordering::SeqCst) {
        return problem(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the service is shutting down; retry",
        ));
    }
    let json_type = content_type
        .as_deref()
        .and_then(|c| c.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return problem(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "expected application/json, got {}",
                content_type.as_deref().unwrap_or("no content type")
            ),
        ));
    }
    let Ok(permit) = state.inflight.clone().try_acquire_owned() else {
        return problem(Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "queue_full",
            "too many submissions in flight; retry later",
        ));
    };
    let intake = state.intake.clone();
    let registry = state.registry.clone();
    let clock = state.clock.clone();
    let hook = state.on_accept.clone();
    // Blocking work: the stateless checks (parse, signature, native commitment) run outside the
    // lock, so that a slow commitment does not hold up other rollups; re-execution and the
    // fsync run under it.
    let result = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let checked = poe_ingest::intake::check(&registry, &body)?;
        let mut intake = intake.lock().unwrap_or_else(|p| p.into_inner());
        let outcome = intake.admit(checked, &body, clock());
        drop(intake);
        if let (Ok(Outcome::Accepted(r)), Some(hook)) = (&outcome, &hook) {
            hook(r);
        }
        outcome
    })
    .await;
    match result {
        Ok(Ok(Outcome::Accepted(r))) => {
            state.metrics.accepted(r.n_ops);
            let body = receipt_json(&r, state.batch_status(&r));
            let mut resp = warp::reply::with_status(warp::reply::json(&body), StatusCode::ACCEPTED)
                .into_response();
            if let Ok(v) =
                header::HeaderValue::from_str(&format!("/v1/batches/{}", hex::encode(r.batch_id)))
            {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            (resp, body)
        }
        Ok(Ok(Outcome::Duplicate(r))) => {
            let body = receipt_json(&r, state.batch_status(&r));
            (
                warp::reply::with_status(warp::reply::json(&body), StatusCode::OK).into_response(),
                body,
            )
        }
        Ok(Err(IntakeError::Refused(r))) => problem(Problem::from_refusal(r)),
        Ok(Err(IntakeError::Store(e))) => problem(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store_failed",
            e.to_string(),
        )),
        Err(e) => problem(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            e.to_string(),
        )),
    }
}

/// Runs a read of the intake off the async threads; its failures become 500 problems.
pub(crate) async fn read_intake<T: Send + 'static>(
    state: &AppState,
    read: impl FnOnce(&Intake) -> Result<T, IntakeError> + Send + 'static,
) -> Result<T, warp::reply::Response> {
    let intake = state.intake.clone();
    match tokio::task::spawn_blocking(move || {
        read(&intake.lock().unwrap_or_else(|p| p.into_inner()))
    })
    .await
    {
        Ok(Ok(v)) => Ok(v),
        // A stored body that no longer parses is the store's fault, not the caller's.
        Ok(Err(e)) => Err(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store_failed",
            e.to_string(),
        )
        .reply()),
        Err(e) => {
            Err(Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()).reply())
        }
    }
}

async fn list_batches(
    state: AppState,
    rollup: String,
    query: HashMap<String, String>,
) -> Result<warp::reply::Response, Infallible> {
    let parse = |k: &str, default: u64| {
        query
            .get(k)
            .map_or(Ok(default), |v| v.parse::<u64>().map_err(|_| k.to_owned()))
    };
    let (from_seq, limit) = match (parse("from_seq", 1), parse("limit", 100)) {
        (Ok(_), Ok(l)) if !(1..=1000).contains(&l) => {
            return Ok(Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed_query",
                format!("limit must be in 1..=1000, got {l}"),
            )
            .reply())
        }
        (Ok(f), Ok(l)) => (f, l as usize),
        (Err(k), _) | (_, Err(k)) => {
            return Ok(Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed_query",
                format!("{k} must be an unsigned integer"),
            )
            .reply())
        }
    };
    let name = rollup.clone();
    Ok(
        match read_intake(&state, move |i| i.receipts_from(&name, from_seq, limit)).await {
            Ok(Some(receipts)) => {
                let batches: Vec<Value> = receipts
                    .iter()
                    .map(|r| receipt_json(r, state.batch_status(r)))
                    .collect();
                let next = receipts.last().map(|r| r.seq + 1);
                warp::reply::json(
                    &json!({"rollup": rollup, "batches": batches, "next_from_seq": next}),
                )
                .into_response()
            }
            Ok(None) => Problem::new(
                StatusCode::NOT_FOUND,
                "unknown_rollup",
                format!("rollup {rollup:?} is not registered"),
            )
            .reply(),
            Err(resp) => resp,
        },
    )
}

/// A batch id from its path segment: 64 hex characters, else a 400 problem.
pub(crate) fn parse_batch_id(id: &str) -> Result<[u8; 32], Problem> {
    hex::decode(id)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed_batch_id",
                "a batch id is 64 hex characters",
            )
        })
}

async fn get_batch(state: AppState, id: String) -> Result<warp::reply::Response, Infallible> {
    let bytes = match parse_batch_id(&id) {
        Ok(b) => b,
        Err(p) => return Ok(p.reply()),
    };
    Ok(
        match read_intake(&state, move |i| i.receipt_of(&bytes)).await {
            Ok(Some(r)) => {
                warp::reply::json(&receipt_json(&r, state.batch_status(&r))).into_response()
            }
            Ok(None) => Problem::new(
                StatusCode::NOT_FOUND,
                "unknown_batch",
                format!("no batch {id}"),
            )
            .reply(),
            Err(resp) => resp,
        },
    )
}

async fn get_head(state: AppState, rollup: String) -> Result<warp::reply::Response, Infallible> {
    let head = state
        .intake
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .head(&rollup);
    Ok(match head {
        Some((seq, root)) => warp::reply::json(
            &json!({"rollup": rollup, "seq": seq, "post_state_root": root.to_hex()}),
        )
        .into_response(),
        None => Problem::new(
            StatusCode::NOT_FOUND,
            "unknown_rollup",
            format!("rollup {rollup:?} is not registered"),
        )
        .reply(),
    })
}

/// A body that did not arrive in time ([`ApiConfig::body_deadline`]).
#[derive(Debug)]
struct BodyTimeout {
    len: u64,
    deadline: std::time::Duration,
}

impl warp::reject::Reject for BodyTimeout {}

/// A body that broke off (the client went away or sent less than its length).
#[derive(Debug)]
struct BodyBroken;

impl warp::reject::Reject for BodyBroken {}

/// The body, read within its deadline (after `content_length_limit`, so the length is known).
fn timed_body(config: ApiConfig) -> impl Filter<Extract = (Bytes,), Error = Rejection> + Clone {
    warp::header::<u64>("content-length")
        .and(warp::body::stream())
        .and_then(move |len: u64, stream| async move {
            let deadline = config.body_deadline(len);
            match tokio::time::timeout(deadline, collect_body(stream, len)).await {
                Ok(Some(body)) => Ok(body),
                Ok(None) => Err(warp::reject::custom(BodyBroken)),
                Err(_) => Err(warp::reject::custom(BodyTimeout { len, deadline })),
            }
        })
}

async fn collect_body<S, B>(stream: S, len: u64) -> Option<Bytes>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: bytes::Buf,
{
    use futures_util::StreamExt;
    let mut stream = std::pin::pin!(stream);
    // The length was checked against the limit already.
    let mut out = bytes::BytesMut::with_capacity(usize::try_from(len).ok()?);
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.ok()?;
        while chunk.has_remaining() {
            let piece = chunk.chunk();
            out.extend_from_slice(piece);
            let n = piece.len();
            chunk.advance(n);
        }
    }
    Some(out.freeze())
}

async fn rejection(
    metrics: Arc<metrics::Metrics>,
    r: Rejection,
) -> Result<warp::reply::Response, Infallible> {
    let p = if r.is_not_found() {
        Problem::new(StatusCode::NOT_FOUND, "not_found", "no such route")
    } else if r.find::<warp::reject::PayloadTooLarge>().is_some() {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body exceeds the configured limit",
        )
    } else if let Some(t) = r.find::<BodyTimeout>() {
        Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the {}-byte body did not arrive within {:.1} s",
                t.len,
                t.deadline.as_secs_f64()
            ),
        )
    } else if r.find::<BodyBroken>().is_some() {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the body broke off before its Content-Length",
        )
    } else if r.find::<warp::reject::LengthRequired>().is_some() {
        Problem::new(
            StatusCode::LENGTH_REQUIRED,
            "length_required",
            "send a Content-Length",
        )
    } else if r.find::<warp::reject::MethodNotAllowed>().is_some() {
        Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed on this route",
        )
    } else if r.find::<warp::reject::InvalidQuery>().is_some() {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed_query",
            "the query string does not parse",
        )
    } else if let Some(h) = r.find::<warp::reject::InvalidHeader>() {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("header {} is not valid", h.name()),
        )
    } else {
        // Warp's own rejection text names its internals; the client gets the kind only.
        Problem::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the request could not be read",
        )
    };
    // Refusals before the submission handler runs (411, 413) still count as submissions.
    if matches!(
        p.status,
        StatusCode::LENGTH_REQUIRED | StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT
    ) {
        metrics.submission(p.status.as_u16(), 0.0);
    }
    Ok(p.reply())
}

/// The routes (`specs/api/openapi.yaml`).
pub fn routes(
    state: AppState,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    let with_state = {
        let s = state.clone();
        warp::any().map(move || s.clone())
    };
    let post = warp::path!("v1" / "batches")
        .and(warp::post())
        .and(with_state.clone())
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::body::content_length_limit(
            state.config.max_body_bytes,
        ))
        .and(timed_body(state.config))
        .and_then(submit);
    let batch = warp::path!("v1" / "batches" / String)
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
        .and(warp::get())
        .and(with_state.clone())
        .and(warp::header::optional::<String>("range"))
        .and_then(|d, tail: warp::path::Tail, s, range| {
            days::file(s, d, tail.as_str().to_string(), range)
        });
    let list = warp::path!("v1" / "rollups" / String / "batches")
        .and(warp::get())
        .and(with_state)
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
    let health = warp::path!("healthz")
        .and(warp::get())
        .map(|| warp::reply::json(&json!({"status": "ok"})).into_response());
    post.or(batch)
        .unify()
        .or(list)
        .unify()
        .or(head)
        .unify()
        .or(health)
        .unify()
        .or(ready)
        .unify()
        .or(metrics)
        .unify()
        .or(days)
        .unify()
        .or(inclusion)
        .unify()
        .or(day)
        .unify()
        .or(proof)
        .unify()
        .or(manifest)
        .unify()
        .or(file)
        .unify()
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
        let svc = TowerToHyperService::new(warp::service(filter.clone()));
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
