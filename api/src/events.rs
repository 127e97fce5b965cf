//! Push: `GET /v1/rollups/{rollup}/events`, Server-Sent Events of a rollup's receipts as their
//! status moves (`accepted` → `proven` → `included`), resumable with `Last-Event-ID`.
//!
//! SSE needs no connection out of the operator's network and no receiver registered: a client
//! that drops and comes back resumes from the last id it saw — the catch-up is rebuilt from
//! the receipts, so nothing is lost and nothing needs a delivery queue. An event id is
//! `SEQ.STATUS`: delivery is idempotent, the same id always means the same fact. Rollups that
//! cannot hold a stream open get the same events by webhooks ([`crate::webhooks`]).

use std::convert::Infallible;

use serde_json::Value;
use tokio::sync::broadcast;
use warp::http::StatusCode;
use warp::Reply;

use crate::batches::{rank, read_intake, receipt_json};
use crate::problem::Problem;
use crate::AppState;

/// A receipt's status moved.
#[derive(Debug, Clone)]
pub struct StatusEvent {
    /// Rollup wire name.
    pub rollup: String,
    /// The batch's seq.
    pub seq: u64,
}

/// Events queued per subscriber before a slow one is dropped (it reconnects and catches up).
pub(crate) const CAPACITY: usize = 4096;

pub(crate) fn channel() -> broadcast::Sender<StatusEvent> {
    broadcast::channel(CAPACITY).0
}

/// `SEQ.STATUS` → (seq, rank).
fn parse_id(id: &str) -> Option<(u64, u8)> {
    let (seq, status) = id.split_once('.')?;
    Some((seq.parse().ok()?, rank(status)))
}

fn event(receipt: &Value) -> Option<(u64, u8, warp::sse::Event)> {
    let seq = receipt["seq"].as_u64()?;
    let status = receipt["status"].as_str()?;
    let e = warp::sse::Event::default()
        .id(format!("{seq}.{status}"))
        .event("status")
        .data(receipt.to_string());
    Some((seq, rank(status), e))
}

/// The stream of `rollup`'s events: the receipts' current states a client resuming after
/// `Last-Event-ID` may not have seen (the catch-up), then each change as it happens.
pub(crate) async fn events(
    state: AppState,
    rollup: String,
    last_event_id: Option<String>,
) -> Result<warp::reply::Response, Infallible> {
    if state.registry().get(&rollup).is_none() {
        return Ok(Problem::new(
            StatusCode::NOT_FOUND,
            "unknown_rollup",
            format!("rollup {rollup:?} is not registered"),
        )
        .reply());
    }
    let last = last_event_id.as_deref().and_then(parse_id);
    // Subscribed before the catch-up is read: a change in between is sent twice at worst
    // (ids are facts: a client drops the repeat), never lost.
    let rx = state.events.subscribe();
    let name = rollup.clone();
    let receipts = match read_intake(&state, move |i| {
        i.receipts_from(&name, 1, usize::MAX)
            .map(Option::unwrap_or_default)
    })
    .await
    {
        Ok(r) => r,
        Err(resp) => return Ok(resp),
    };
    let receipts: Vec<Value> = receipts.iter().map(|r| receipt_json(&state, r)).collect();
    // The catch-up: every batch whose status may have moved since the client's last event —
    // those from the day before its last event's batch on (statuses settle when a day is
    // published, minutes after it ends), and any not yet included; each at its current status.
    // A first connection gets every batch.
    let from_day = last.and_then(|(seq, _)| {
        let day = receipts.iter().find(|r| r["seq"].as_u64() == Some(seq))?["day"]
            .as_str()?
            .parse::<poe_archive::Day>()
            .ok()?;
        Some(poe_archive::Day(day.0.saturating_sub(1)).to_string())
    });
    let mut sent: std::collections::HashMap<u64, u8> = Default::default();
    let mut catch_up = Vec::new();
    for r in &receipts {
        let settled = r["status"] == "included"
            && from_day
                .as_deref()
                .is_some_and(|d| r["day"].as_str().is_some_and(|day| day < d));
        if let Some((seq, rank, e)) = event(r) {
            if !settled && Some((seq, rank)) != last {
                sent.insert(seq, rank);
                catch_up.push(Ok::<_, Infallible>(e));
            }
        }
    }
    let live = futures_util::stream::unfold(
        (rx, state, rollup, sent),
        |(mut rx, state, rollup, mut sent)| async move {
            loop {
                let ev = match rx.recv().await {
                    Ok(ev) => ev,
                    // Too slow: end the stream; the client resumes from its last id.
                    Err(_) => return None,
                };
                if ev.rollup != rollup {
                    continue;
                }
                let name = rollup.clone();
                let seq = ev.seq;
                let Ok(Some(r)) = read_intake(&state, move |i| {
                    i.receipts_from(&name, seq, 1)
                        .map(|r| r.and_then(|mut v| v.pop()))
                })
                .await
                else {
                    continue;
                };
                let Some((seq, rank, e)) = event(&receipt_json(&state, &r)) else {
                    continue;
                };
                if sent.get(&seq).is_some_and(|&s| s >= rank) {
                    continue;
                }
                sent.insert(seq, rank);
                return Some((Ok::<_, Infallible>(e), (rx, state, rollup, sent)));
            }
        },
    );
    let stream = futures_util::stream::StreamExt::chain(futures_util::stream::iter(catch_up), live);
    Ok(warp::sse::reply(warp::sse::keep_alive().stream(stream)).into_response())
}
