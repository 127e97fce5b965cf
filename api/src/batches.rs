//! The batch routes: submit, list, receipt, head.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::problem::Problem;
use crate::AppState;
use poe_ingest::intake::{Intake, IntakeError, Outcome, Receipt, RollupProofStatus};
use serde_json::{json, Value};
use warp::http::{header, StatusCode};
use warp::hyper::body::Bytes;
use warp::Reply;

/// The order of statuses: 1 accepted, 2 proven, 3 included (0: none of them).
pub(crate) fn rank(status: &str) -> u8 {
    match status {
        "accepted" => 1,
        "proven" => 2,
        "included" => 3,
        _ => 0,
    }
}

pub(crate) fn receipt_json(state: &AppState, r: &Receipt) -> Value {
    let id = hex::encode(r.batch_id);
    let status = state.batch_status(r);
    json!({
        "batch_id": id,
        "status": status,
        "timeline": state.timeline(r),
        "expected_included_by_us": (status != "included")
            .then(|| state.expected_inclusion_us(r))
            .flatten()
            .map(|t| t.to_string()),
        "trouble": state.trouble(r, status).map(|t| json!({
            "stage": t.stage,
            "reason": t.reason,
            "failures": t.failures,
            "since_us": t.since_us.to_string(),
            "next_attempt_us": t.next_attempt_us.map(|n| n.to_string()),
        })),
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

pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The rollup a submission names, if the registry has it: refusals are logged and counted
/// under their rollup, but a name no one registered makes no series of its own.
fn registered_rollup(state: &AppState, body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Peek {
        header: PeekHeader,
    }
    #[derive(serde::Deserialize)]
    struct PeekHeader {
        rollup: String,
    }
    let name = serde_json::from_slice::<Peek>(body).ok()?.header.rollup;
    state.registry().get(&name).map(|_| name)
}

pub(crate) async fn submit(
    state: AppState,
    content_type: Option<String>,
    body: Bytes,
) -> Result<warp::reply::Response, Infallible> {
    let started = std::time::Instant::now();
    let len = body.len();
    let metrics = state.metrics.clone();
    let (resp, detail) = submit_inner(state.clone(), content_type, body.clone()).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = resp.status();
    let rollup = match detail.get("rollup").and_then(Value::as_str) {
        Some(r) => Some(r.to_owned()),
        None => registered_rollup(&state, &body),
    };
    metrics.submission(status.as_u16(), seconds, rollup.as_deref());
    let ms = (seconds * 1e6).round() / 1e3;
    let (seq, batch_id, code, why) = (
        detail.get("seq").and_then(Value::as_u64),
        detail.get("batch_id").and_then(Value::as_str),
        detail.get("code").and_then(Value::as_str),
        detail.get("detail").and_then(Value::as_str),
    );
    if status.is_server_error() {
        tracing::error!(target: "poe::submit", status = status.as_u16(), ms, bytes = len,
            rollup, seq, batch_id, code, detail = why, "submission failed");
    } else {
        tracing::info!(target: "poe::submit", status = status.as_u16(), ms, bytes = len,
            rollup, seq, batch_id, code, "submission");
    }
    Ok(resp)
}

/// What every submission (and dry run) passes before its body is looked at: the service is
/// not draining, the body is JSON, and a slot is free.
pub(crate) fn admission(
    state: &AppState,
    content_type: Option<&str>,
) -> Result<tokio::sync::OwnedSemaphorePermit, Problem> {
    if state.draining.load(Ordering::SeqCst) {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the service is shutting down; retry",
        ));
    }
    let json_type = content_type
        .and_then(|c| c.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "expected application/json, got {}",
                content_type.unwrap_or("no content type")
            ),
        ));
    }
    state.inflight.clone().try_acquire_owned().map_err(|_| {
        Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "queue_full",
            "too many submissions in flight; retry later",
        )
    })
}

/// `POST /v1/batches/dry-run` (`specs/api.md` §2.5): the batch checked and re-executed against
/// its rollup's head as a submission would be, nothing stored; the post-state root it gives.
pub(crate) async fn dry_run(
    state: AppState,
    content_type: Option<String>,
    body: Bytes,
) -> Result<warp::reply::Response, Infallible> {
    let permit = match admission(&state, content_type.as_deref()) {
        Ok(p) => p,
        Err(p) => return Ok(p.reply()),
    };
    let (intake, registry, clock) = (state.intake.clone(), state.registry(), state.clock.clone());
    let result = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let checked = poe_ingest::intake::check(&registry, &body)?;
        let intake = intake.lock().unwrap_or_else(|p| p.into_inner());
        intake.dry_run(&checked, clock())
    })
    .await;
    let resp = match result {
        Ok(Ok(d)) => {
            let accepted = d.post_state_root == d.header_post_state_root;
            warp::reply::json(&json!({
                "rollup": d.rollup,
                "seq": d.seq,
                "n_ops": d.n_ops,
                "pre_state_root": d.pre_state_root.to_hex(),
                "post_state_root": d.post_state_root.to_hex(),
                "header_post_state_root": d.header_post_state_root.to_hex(),
                "would_be_accepted": accepted,
                "batch_id": hex::encode(d.batch_id),
                "data_root": d.data_root.to_hex(),
            }))
            .into_response()
        }
        Ok(Err(e)) => Problem::from_blocking(Ok(e)).reply(),
        Err(e) => Problem::from_blocking(Err(e)).reply(),
    };
    tracing::info!(target: "poe::dry_run", status = resp.status().as_u16(), "dry run");
    Ok(resp)
}

pub(crate) async fn submit_inner(
    state: AppState,
    content_type: Option<String>,
    body: Bytes,
) -> (warp::reply::Response, Value) {
    let problem = |p: Problem| {
        let detail = json!({"code": p.code});
        (p.reply(), detail)
    };
    let permit = match admission(&state, content_type.as_deref()) {
        Ok(p) => p,
        Err(p) => return problem(p),
    };
    let intake = state.intake.clone();
    let registry = state.registry();
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
            state.metrics.accepted(&r.rollup, r.n_ops);
            state.notify(&r.rollup, r.seq);
            let body = receipt_json(&state, &r);
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
            let body = receipt_json(&state, &r);
            (
                warp::reply::with_status(warp::reply::json(&body), StatusCode::OK).into_response(),
                body,
            )
        }
        Ok(Err(e)) => problem(Problem::from_blocking(Ok(e))),
        Err(e) => problem(Problem::from_blocking(Err(e))),
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

pub(crate) async fn list_batches(
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
                let batches: Vec<Value> =
                    receipts.iter().map(|r| receipt_json(&state, r)).collect();
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

pub(crate) async fn get_batch(
    state: AppState,
    id: String,
) -> Result<warp::reply::Response, Infallible> {
    let bytes = match parse_batch_id(&id) {
        Ok(b) => b,
        Err(p) => return Ok(p.reply()),
    };
    Ok(
        match read_intake(&state, move |i| i.receipt_of(&bytes)).await {
            Ok(Some(r)) => warp::reply::json(&receipt_json(&state, &r)).into_response(),
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

/// `GET /v1/rollups`: the registered rollups with their heads.
pub(crate) async fn list_rollups(state: AppState) -> Result<warp::reply::Response, Infallible> {
    let registry = state.registry();
    let heads = read_intake(&state, move |i| {
        Ok(registry
            .rollups()
            .iter()
            .map(|r| {
                let head = i.head(r.name.as_str());
                json!({
                    "id": r.id,
                    "name": r.name.as_str(),
                    "native_scheme": r.scheme.name(),
                    "instruments": r.instruments.len(),
                    "head_seq": head.map(|(seq, _)| seq),
                    "post_state_root": head.map(|(_, root)| root.to_hex()),
                })
            })
            .collect::<Vec<_>>())
    })
    .await;
    Ok(match heads {
        Ok(rollups) => warp::reply::json(&json!({ "rollups": rollups })).into_response(),
        Err(resp) => resp,
    })
}

pub(crate) async fn get_head(
    state: AppState,
    rollup: String,
) -> Result<warp::reply::Response, Infallible> {
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
