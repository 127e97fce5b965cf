//! `POST /v1/rollups/{rollup}/instruments` (a signed listing) and `GET` of the table
//! (`specs/api.md` §2.6).

use std::convert::Infallible;

use bytes::Bytes;
use poe_circle_stark::venue::OptionKind;
use poe_ingest::intake::{IntakeError, ListingOutcome};
use serde_json::json;
use warp::http::StatusCode;
use warp::Reply;

use crate::problem::Problem;
use crate::AppState;

/// Lists instruments: the signed body checked and stored by intake, then the shared registry
/// replaced so that batches can name them (they trade from the next UTC day).
pub(crate) async fn list(
    state: AppState,
    rollup: String,
    content_type: Option<String>,
    body: Bytes,
) -> Result<warp::reply::Response, Infallible> {
    let permit = match crate::batches::admission(&state, content_type.as_deref()) {
        Ok(p) => p,
        Err(p) => return Ok(p.reply()),
    };
    let (intake, clock) = (state.intake.clone(), state.clock.clone());
    let result = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let named = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["rollup"].as_str().map(str::to_owned));
        if named.as_deref().is_some_and(|n| n != rollup) {
            return Err(IntakeError::Refused(poe_ingest::model::Refusal::new(
                poe_ingest::model::RefusalCode::InvalidListing,
                "rollup",
                format!("the body lists for {named:?}, the path names {rollup:?}"),
            )));
        }
        let mut intake = intake.lock().unwrap_or_else(|p| p.into_inner());
        let outcome = intake.list(&body, clock())?;
        Ok((outcome, std::sync::Arc::new(intake.registry().clone())))
    })
    .await;
    let resp = match result {
        Ok(Ok((outcome, registry))) => {
            *state.registry.write().unwrap_or_else(|p| p.into_inner()) = registry;
            let (status, r) = match outcome {
                ListingOutcome::Listed(r) => (StatusCode::ACCEPTED, r),
                ListingOutcome::Duplicate(r) => (StatusCode::OK, r),
            };
            tracing::info!(target: "poe::listing", rollup = %r.rollup, first_index = r.first_index, count = r.count, effective_from_us = r.effective_from_us, status = status.as_u16(), "instruments listed");
            warp::reply::with_status(
                warp::reply::json(&json!({
                    "rollup": r.rollup,
                    "first_index": r.first_index,
                    "count": r.count,
                    "effective_from_us": r.effective_from_us.to_string(),
                    "instruments_url": format!("/v1/rollups/{}/instruments", r.rollup),
                })),
                status,
            )
            .into_response()
        }
        Ok(Err(e)) => Problem::from_blocking(Ok(e)).reply(),
        Err(e) => Problem::from_blocking(Err(e)).reply(),
    };
    Ok(resp)
}

/// `GET /v1/rollups/{rollup}/instruments`: the whole table, each instrument with its index and
/// the time it trades from (`"0"` for those in `poe.toml`).
pub(crate) async fn table(
    state: AppState,
    rollup: String,
) -> Result<warp::reply::Response, Infallible> {
    let registry = state.registry();
    let Some(r) = registry.get(&rollup) else {
        return Ok(Problem::new(
            StatusCode::NOT_FOUND,
            "unknown_rollup",
            format!("rollup {rollup:?} is not registered"),
        )
        .reply());
    };
    let instruments: Vec<_> = r
        .instruments
        .iter()
        .zip(&r.instrument_names)
        .zip(&r.effective_from_us)
        .enumerate()
        .map(|(index, ((i, name), from))| {
            json!({
                "index": index,
                "name": name,
                "underlying": i.underlying,
                "expiry_us": i.expiry_us.to_string(),
                "strike": i.strike.to_string(),
                "kind": if i.kind == OptionKind::Put { "put" } else { "call" },
                "collateral": i.collateral.to_string(),
                "effective_from_us": from.to_string(),
            })
        })
        .collect();
    Ok(warp::reply::json(&json!({"rollup": rollup, "instruments": instruments})).into_response())
}
