//! Request bodies read against a deadline sized to their length.

use crate::ApiConfig;
use warp::hyper::body::Bytes;
use warp::{Filter, Rejection};

/// A body that did not arrive in time ([`ApiConfig::body_deadline`]).
#[derive(Debug)]
pub(crate) struct BodyTimeout {
    pub(crate) len: u64,
    pub(crate) deadline: std::time::Duration,
}

impl warp::reject::Reject for BodyTimeout {}

/// A body that broke off (the client went away or sent less than its length).
#[derive(Debug)]
pub(crate) struct BodyBroken;

impl warp::reject::Reject for BodyBroken {}

/// The body, read within its deadline (after `content_length_limit`, so the length is known).
pub(crate) fn timed_body(
    config: ApiConfig,
) -> impl Filter<Extract = (Bytes,), Error = Rejection> + Clone {
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

pub(crate) async fn collect_body<S, B>(stream: S, len: u64) -> Option<Bytes>
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
