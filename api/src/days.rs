//! The archive endpoints: closed days, their statements, root proofs, manifests and files
//! (`specs/api.md` §6). Everything here is read-only and served from the archive storage.

// Early returns carry the finished error response; it is built once per failed request, so
// boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use poe_archive::{layout, Day, Storage};
use serde_json::{json, Value};
use warp::http::{header, HeaderValue, StatusCode};
use warp::Reply;

use crate::batches::{parse_batch_id, read_intake};
use crate::problem::Problem;
use crate::AppState;

fn day_of(text: &str) -> Result<Day, warp::reply::Response> {
    text.parse::<Day>()
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "malformed_day", e.to_string()).reply())
}

fn archive(state: &AppState) -> Result<Arc<dyn Storage>, warp::reply::Response> {
    state.archive.clone().ok_or_else(|| {
        Problem::new(
            StatusCode::NOT_FOUND,
            "no_archive",
            "this server has no archive configured",
        )
        .reply()
    })
}

async fn read(
    storage: Arc<dyn Storage>,
    path: String,
) -> Result<Option<Vec<u8>>, warp::reply::Response> {
    blocking_io(move || storage.read(&path)).await
}

/// Runs a storage call off the runtime: `Ok(None)` for a missing file (or a directory),
/// a 400 for a path storage refuses, a 500 for other failures.
async fn blocking_io<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<Option<T>, warp::reply::Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(b)) => Ok(Some(b)),
        Ok(Err(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::IsADirectory
            ) =>
        {
            Ok(None)
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::InvalidInput => {
            Err(Problem::new(StatusCode::BAD_REQUEST, "malformed_path", e.to_string()).reply())
        }
        Ok(Err(e)) => Err(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "archive_failed",
            e.to_string(),
        )
        .reply()),
        Err(e) => {
            Err(Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()).reply())
        }
    }
}

fn not_closed(day: Day) -> warp::reply::Response {
    Problem::new(
        StatusCode::NOT_FOUND,
        "day_not_closed",
        format!("{day} has no published bundle"),
    )
    .reply()
}

fn bytes_reply(bytes: Vec<u8>, content_type: &'static str) -> warp::reply::Response {
    let mut resp = warp::reply::Response::new(bytes.into());
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// `GET /v1/days`: every published day with its statement summary.
pub async fn list(state: AppState) -> Result<warp::reply::Response, Infallible> {
    let storage = match archive(&state) {
        Ok(s) => s,
        Err(r) => return Ok(r),
    };
    let listed = {
        let storage = storage.clone();
        tokio::task::spawn_blocking(move || storage.children(layout::DAYS)).await
    };
    let names = match listed {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => {
            return Ok(Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "archive_failed",
                e.to_string(),
            )
            .reply())
        }
        Err(e) => {
            return Ok(
                Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()).reply(),
            )
        }
    };
    let mut days = Vec::new();
    // Staging directories (".staging-…") do not parse as days: a half-written day is never
    // listed.
    for day in names.iter().filter_map(|n| n.parse::<Day>().ok()) {
        match read(
            storage.clone(),
            layout::day_file(day, layout::STATEMENT_JSON),
        )
        .await
        {
            Ok(Some(b)) => {
                let s: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
                let mut entry = json!({
                    "day": day.to_string(),
                    "status": "closed",
                    "n_batches": s["n_batches"],
                    "n_ops": s["n_ops"],
                    "day_root": s["day_root"],
                    "root_air": s["air"],
                });
                // v2 and v3 root proofs: how the day was cut into segment proofs, and the limit.
                if let Some(v) = s.get("validity").filter(|v| v.is_object()) {
                    entry["segments"] = json!(v["segments"].as_array().map_or(0, Vec::len));
                    entry["segment_capacity_ops"] = v["segment_capacity_ops"].clone();
                }
                // v4: the segments are the tree's leaves; its shape and presets.
                if let Some(t) = s.get("tree").filter(|t| t.is_object()) {
                    entry["segments"] = json!(t["segments"].as_array().map_or(0, Vec::len));
                    entry["tree"] = json!({
                        "log_rows": t["log_rows"],
                        "log_perm_rows": t["log_perm_rows"],
                        "w_nodes": t["w_nodes"],
                        "m_nodes": t["m_nodes"],
                        "presets": t["presets"],
                        "security_bits": t["security_bits"],
                    });
                }
                entry["root_proof_bytes"] = s["root_proof_bytes"].clone();
                // The operator's timings, where the close wrote them (not part of the bundle).
                if let Ok(Some(r)) = read(storage.clone(), layout::close_report(day)).await {
                    if let Ok(r) = serde_json::from_slice::<Value>(&r) {
                        entry["close"] = json!({"prove_s": r["prove_s"], "total_s": r["total_s"]});
                    }
                }
                days.push(entry);
            }
            Ok(None) => {}
            Err(r) => return Ok(r),
        }
    }
    Ok(warp::reply::json(&json!({ "days": days })).into_response())
}

/// `GET /v1/days/{day}`: the day statement and status.
pub async fn statement(state: AppState, day: String) -> Result<warp::reply::Response, Infallible> {
    let (storage, day) = match archive(&state).and_then(|s| Ok((s, day_of(&day)?))) {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    Ok(
        match read(storage, layout::day_file(day, layout::STATEMENT_JSON)).await {
            Ok(Some(b)) => {
                let s: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
                warp::reply::json(&json!({
                    "day": day.to_string(),
                    "status": "closed",
                    "statement": s,
                    "proof_url": crate::urls::day_proof(day),
                    "manifest_url": crate::urls::day_manifest(day),
                }))
                .into_response()
            }
            Ok(None) => not_closed(day),
            Err(r) => r,
        },
    )
}

/// `GET /v1/days/{day}/proof` and `/manifest`.
pub async fn fixed_file(
    state: AppState,
    day: String,
    name: &'static str,
    content_type: &'static str,
) -> Result<warp::reply::Response, Infallible> {
    let (storage, day) = match archive(&state).and_then(|s| Ok((s, day_of(&day)?))) {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    Ok(match read(storage, layout::day_file(day, name)).await {
        Ok(Some(b)) => bytes_reply(b, content_type),
        Ok(None) => not_closed(day),
        Err(r) => r,
    })
}

/// A range that no byte of the file satisfies (or that does not parse): HTTP 416.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsatisfiable;

/// A single byte range `bytes=a-b`, `bytes=a-` or `bytes=-n` of a `len`-byte file:
/// `Ok(None)` to serve it whole (no header, or a form this server does not split, such as
/// several ranges), [`Unsatisfiable`] otherwise.
///
/// # Errors
/// [`Unsatisfiable`] for a range outside the file or malformed.
pub fn parse_range(value: Option<&str>, len: u64) -> Result<Option<(u64, u64)>, Unsatisfiable> {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(Unsatisfiable)?;
    let num = |s: &str| s.trim().parse::<u64>().map_err(|_| Unsatisfiable);
    let (start, end) = match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, false) => {
            let n = num(b)?;
            if n == 0 {
                return Err(Unsatisfiable);
            }
            (
                len.saturating_sub(n),
                len.checked_sub(1).ok_or(Unsatisfiable)?,
            )
        }
        (false, true) => (num(a)?, len.checked_sub(1).ok_or(Unsatisfiable)?),
        (false, false) => (num(a)?, num(b)?.min(len.saturating_sub(1))),
        (true, true) => return Err(Unsatisfiable),
    };
    if start >= len || start > end {
        return Err(Unsatisfiable);
    }
    Ok(Some((start, end)))
}

/// The request headers a file's answer depends on.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    /// `Range`.
    pub range: Option<String>,
    /// `If-Range`: the range is served only if this is the file's ETag.
    pub if_range: Option<String>,
    /// `If-None-Match`: 304 if one of these is the file's ETag.
    pub if_none_match: Option<String>,
}

/// Published days' file digests, by day: a file's ETag is its SHA3-256 as the day's manifest
/// (or, for the files the manifest cannot list, `statement.json`) records it — a strong
/// validator that any server of the same archive gives alike. Published days never change, so
/// an entry never goes stale; the table is bounded by dropping it whole.
#[derive(Clone, Default)]
pub struct Etags(Arc<std::sync::Mutex<HashMap<Day, Arc<Digests>>>>);

/// A day's file paths and their SHA3-256 (hex).
type Digests = HashMap<String, String>;

impl std::fmt::Debug for Etags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Etags")
    }
}

/// Days whose digests are kept at once.
const ETAG_DAYS: usize = 64;

impl Etags {
    fn of_day(&self, storage: &dyn Storage, day: Day) -> Arc<Digests> {
        if let Some(t) = self.0.lock().unwrap_or_else(|p| p.into_inner()).get(&day) {
            return t.clone();
        }
        let table = Arc::new(day_digests(storage, day));
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= ETAG_DAYS {
            cache.clear();
        }
        cache.insert(day, table.clone());
        table
    }
}

/// Path in the day directory → SHA3-256 hex, for every file whose digest the bundle records.
fn day_digests(storage: &dyn Storage, day: Day) -> Digests {
    use sha3::Digest as _;
    let mut out = HashMap::new();
    let json = |name: &str| {
        storage.read(&layout::day_file(day, name)).ok().map(|b| {
            (
                serde_json::from_slice::<Value>(&b).unwrap_or(Value::Null),
                b,
            )
        })
    };
    if let Some((m, _)) = json(layout::MANIFEST_JSON) {
        for f in m["files"].as_array().into_iter().flatten() {
            if let (Some(p), Some(h)) = (f["path"].as_str(), f["sha3_256"].as_str()) {
                out.insert(p.to_owned(), h.to_owned());
            }
        }
    }
    if let Some((s, bytes)) = json(layout::STATEMENT_JSON) {
        for (name, key) in [
            (layout::MANIFEST_JSON, "manifest_sha3_256"),
            (layout::ROOT_PROOF, "root_proof_sha3_256"),
            (layout::ROOT_SAMPLES, "root_samples_sha3_256"),
        ] {
            if let Some(h) = s[key].as_str() {
                out.insert(name.to_owned(), h.to_owned());
            }
        }
        out.insert(
            layout::STATEMENT_JSON.to_owned(),
            hex::encode(sha3::Sha3_256::digest(&bytes)),
        );
    }
    out
}

/// Whether an `If-None-Match` list names `etag` (weak comparison, RFC 9110 §13.1.2).
fn none_match(header: &str, etag: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    header.trim() == "*" || header.split(',').any(|t| strip(t) == etag)
}

/// Bytes a streamed file is read in: memory per download stays this, whatever the file's size.
const CHUNK: u64 = 1 << 20;

/// The bytes `start..=end` of `path`, read chunk by chunk as the client takes them.
fn file_stream(
    storage: Arc<dyn Storage>,
    path: String,
    start: u64,
    end: u64,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + Sync + 'static {
    futures_util::stream::try_unfold(start, move |at| {
        let (storage, path) = (storage.clone(), path.clone());
        async move {
            if at > end {
                return Ok(None);
            }
            let last = end.min(at + CHUNK - 1);
            let chunk = tokio::task::spawn_blocking(move || storage.read_range(&path, at, last))
                .await
                .map_err(std::io::Error::other)??;
            Ok(Some((bytes::Bytes::from(chunk), last + 1)))
        }
    })
}

/// `GET` and `HEAD /v1/days/{day}/files/{path}` with single-range support. `path` may be
/// percent-encoded (generated clients and DuckDB's httpfs encode `=` and `/`). The body is
/// streamed from storage a chunk at a time (a ranged read reads only its bytes); published
/// files never change, so they are cacheable for ever, and their ETag is their SHA3-256.
pub async fn file(
    state: AppState,
    day: String,
    tail: String,
    conditions: Conditions,
    head_only: bool,
) -> Result<warp::reply::Response, Infallible> {
    let (storage, day) = match archive(&state).and_then(|s| Ok((s, day_of(&day)?))) {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let malformed = || {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed_path",
            "a file path is relative, UTF-8, without empty or hidden components",
        )
        .reply()
    };
    let Ok(tail) = percent_encoding::percent_decode_str(&tail).decode_utf8() else {
        return Ok(malformed());
    };
    let tail = tail.into_owned();
    if tail.is_empty() || tail.split('/').any(|c| c.is_empty() || c.starts_with('.')) {
        return Ok(malformed());
    }
    if !layout::is_published(&*storage, day) {
        return Ok(not_closed(day));
    }
    let path = layout::day_file(day, &tail);
    let unknown_file = || {
        Problem::new(
            StatusCode::NOT_FOUND,
            "unknown_file",
            format!("{day} has no file {tail}"),
        )
        .reply()
    };
    let len = {
        let (storage, path) = (storage.clone(), path.clone());
        match blocking_io(move || storage.size(&path)).await {
            Ok(Some(n)) => n,
            Ok(None) => return Ok(unknown_file()),
            Err(r) => return Ok(r),
        }
    };
    let etag = {
        let (storage, etags) = (storage.clone(), state.etags.clone());
        tokio::task::spawn_blocking(move || etags.of_day(&*storage, day))
            .await
            .ok()
            .and_then(|t| t.get(&tail).map(|h| format!("\"{h}\"")))
    };
    let validators = |h: &mut warp::http::HeaderMap| {
        if let Some(e) = etag.as_deref().and_then(|e| HeaderValue::from_str(e).ok()) {
            h.insert(header::ETAG, e);
        }
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
    };
    if let (Some(e), Some(inm)) = (&etag, &conditions.if_none_match) {
        if none_match(inm, e) {
            let mut resp = warp::reply::Response::new(Default::default());
            *resp.status_mut() = StatusCode::NOT_MODIFIED;
            validators(resp.headers_mut());
            return Ok(resp);
        }
    }
    // If-Range (strong comparison): a range of a file that has changed since the client's
    // copy would splice two versions, so then the whole file is sent.
    let range = match (&conditions.range, &conditions.if_range) {
        (Some(r), Some(cond)) if etag.as_deref() == Some(cond.trim()) => Some(r.as_str()),
        (Some(_), Some(_)) | (None, _) => None,
        (Some(r), None) => Some(r.as_str()),
    };
    let (span, status) = match parse_range(range, len) {
        Ok(None) => (len.checked_sub(1).map(|end| (0, end)), StatusCode::OK),
        Ok(Some(span)) => (Some(span), StatusCode::PARTIAL_CONTENT),
        Err(Unsatisfiable) => {
            let mut r = Problem::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the file has {len} bytes"),
            )
            .reply();
            r.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii"),
            );
            return Ok(r);
        }
    };
    let n_bytes = span.map_or(0, |(start, end)| end - start + 1);
    let mut resp = match span {
        Some((start, end)) if !head_only => {
            warp::reply::stream(file_stream(storage, path, start, end)).into_response()
        }
        _ => warp::reply::Response::new(Default::default()),
    };
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if status == StatusCode::PARTIAL_CONTENT {
        let (start, end) = span.expect("a satisfied range");
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")).expect("ascii"),
        );
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(n_bytes));
    validators(h);
    Ok(resp)
}

/// `GET /v1/batches/{id}/inclusion`: the batch's Merkle path from its statement to the day
/// root, once its day is published.
pub async fn inclusion(state: AppState, id: String) -> Result<warp::reply::Response, Infallible> {
    let storage = match archive(&state) {
        Ok(s) => s,
        Err(r) => return Ok(r),
    };
    let bytes = match parse_batch_id(&id) {
        Ok(b) => b,
        Err(p) => return Ok(p.reply()),
    };
    let receipt = match read_intake(&state, move |i| i.receipt_of(&bytes)).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return Ok(Problem::new(
                StatusCode::NOT_FOUND,
                "unknown_batch",
                format!("no batch {id}"),
            )
            .reply())
        }
        Err(r) => return Ok(r),
    };
    let day: Day = match receipt.day.parse() {
        Ok(d) => d,
        Err(e) => {
            return Ok(
                Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()).reply(),
            )
        }
    };
    let key = id.to_ascii_lowercase();
    let found = tokio::task::spawn_blocking(move || {
        poe_archive::inclusion::inclusion(storage.as_ref(), day, &key)
    })
    .await;
    Ok(match found {
        Ok(Ok(Some(inc))) => {
            let s = &inc.statement;
            warp::reply::json(&json!({
                "batch_id": id,
                "day": day.to_string(),
                "status": "included",
                "statement": {
                    "rollup_id": s.rollup_id,
                    "seq": s.seq,
                    "pre_state_root": s.pre_state_root.to_hex(),
                    "post_state_root": s.post_state_root.to_hex(),
                    "data_root": s.data_root.to_hex(),
                    "instruments_root": s.instruments_root.to_hex(),
                    "n_ops": s.n_ops,
                },
                "leaf": inc.leaf.to_hex(),
                "leaf_index": inc.proof.index,
                "siblings": inc.proof.siblings.iter().map(|d| d.to_hex()).collect::<Vec<_>>(),
                "day_root": inc.day_root.to_hex(),
                "root_proof_url": crate::urls::day_proof(day),
            }))
            .into_response()
        }
        Ok(Ok(None)) => Problem::new(
            StatusCode::NOT_FOUND,
            "not_yet_included",
            format!("batch accepted on {day}, which has no published bundle yet"),
        )
        .reply(),
        Ok(Err(e)) => Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "archive_failed",
            e.to_string(),
        )
        .reply(),
        Err(e) => {
            Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()).reply()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::{parse_range, Unsatisfiable};

    #[test]
    fn ranges_parse_as_rfc_9110_says() {
        assert_eq!(parse_range(None, 10), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-3"), 10), Ok(Some((0, 3))));
        assert_eq!(parse_range(Some("bytes=4-"), 10), Ok(Some((4, 9))));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Ok(Some((7, 9))));
        assert_eq!(parse_range(Some("bytes=5-100"), 10), Ok(Some((5, 9))));
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), Ok(None));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Err(Unsatisfiable));
        assert_eq!(parse_range(Some("bytes=5-2"), 10), Err(Unsatisfiable));
        assert_eq!(parse_range(Some("bytes=x-2"), 10), Err(Unsatisfiable));
        assert_eq!(parse_range(Some("bytes=-0"), 10), Err(Unsatisfiable));
    }
}
