//! Errors as HTTP: the refusal-code table, RFC 9457 problems, and warp's rejections.

use std::convert::Infallible;
use std::sync::Arc;

use crate::body::{BodyBroken, BodyTimeout};
use crate::metrics;
use poe_ingest::model::{Refusal, RefusalCode};
use serde_json::json;
use warp::http::{header, StatusCode};
use warp::{Rejection, Reply};

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
        C::SeqConflict | C::SeqGap | C::StateFork | C::ListingConflict => StatusCode::CONFLICT,
        C::UnknownInstrument
        | C::CommitmentMismatch
        | C::CommitmentSchemeMismatch
        | C::RuleViolation
        | C::PostStateRootMismatch
        | C::TimestampInFuture
        | C::TimestampTooOld
        | C::InstrumentExpired
        | C::DuplicateTradeId
        | C::RollupProofInvalid
        | C::InvalidListing => StatusCode::UNPROCESSABLE_ENTITY,
        // A stored batch that no longer replays: the service's fault, never the client's.
        C::ReplayFailed => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An RFC 9457 problem: the one place where errors become HTTP statuses.
#[derive(Debug)]
pub(crate) struct Problem {
    status: StatusCode,
    pub(crate) code: &'static str,
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

    /// A blocking intake call's failure: a refusal with its status, a store failure (500
    /// `store_failed`, nothing acknowledged), or the task itself (500 `internal`).
    pub(crate) fn from_blocking(
        e: Result<poe_ingest::intake::IntakeError, tokio::task::JoinError>,
    ) -> Self {
        use poe_ingest::intake::IntakeError;
        match e {
            Ok(IntakeError::Refused(r)) => Self::from_refusal(r),
            Ok(IntakeError::Store(e)) => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store_failed",
                e.to_string(),
            ),
            Err(e) => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
        }
    }

    pub(crate) fn from_refusal(r: Refusal) -> Self {
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

/// A known route asked with a method it does not take: 405 with `Allow` (RFC 9110 §15.5.6).
#[derive(Debug)]
pub(crate) struct WrongMethod(pub(crate) &'static str);

impl warp::reject::Reject for WrongMethod {}

/// The methods a path takes (`specs/api/openapi.yaml`), or `None` for no route.
pub(crate) fn allowed_methods(path: &str) -> Option<&'static str> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    Some(match parts.as_slice() {
        ["v1", "batches"] | ["v1", "batches", "dry-run"] => "POST",
        ["v1", "days", _, "files", ..] => "GET, HEAD",
        ["v1", "rollups", _, "instruments"] => "GET, POST",
        [""]
        | ["explorer"]
        | ["explorer", _]
        | ["openapi.yaml"]
        | ["healthz"]
        | ["readyz"]
        | ["metrics"]
        | ["v1", "batches", _]
        | ["v1", "batches", _, "inclusion"]
        | ["v1", "rollups"]
        | ["v1", "rollups", _, "head" | "batches" | "events"]
        | ["v1", "days"]
        | ["v1", "days", _]
        | ["v1", "days", _, "proof" | "manifest"] => "GET",
        _ => return None,
    })
}

pub(crate) async fn rejection(
    metrics: Arc<metrics::Metrics>,
    r: Rejection,
) -> Result<warp::reply::Response, Infallible> {
    if let Some(WrongMethod(allow)) = r.find::<WrongMethod>() {
        let mut resp = Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("this route takes {allow}"),
        )
        .reply();
        resp.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static(allow));
        return Ok(resp);
    }
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
        metrics.submission(p.status.as_u16(), 0.0, None);
    }
    Ok(p.reply())
}
