//! The explorer (`GET /explorer`): a page over the JSON routes, compiled into the binary so a
//! deployment serves the page that matches its API.

use warp::http::{header, HeaderValue, StatusCode};

use crate::problem::Problem;

/// One file of the page.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Asset {
    body: &'static str,
    content_type: &'static str,
}

pub(crate) const INDEX: Asset = Asset {
    body: include_str!("../explorer/index.html"),
    content_type: "text/html; charset=utf-8",
};

const ASSETS: [(&str, Asset); 3] = [
    (
        "favicon.svg",
        Asset {
            body: include_str!("../explorer/favicon.svg"),
            content_type: "image/svg+xml",
        },
    ),
    (
        "explorer.js",
        Asset {
            body: include_str!("../explorer/explorer.js"),
            content_type: "text/javascript; charset=utf-8",
        },
    ),
    (
        "explorer.css",
        Asset {
            body: include_str!("../explorer/explorer.css"),
            content_type: "text/css; charset=utf-8",
        },
    ),
];

/// Whether an `Accept` header prefers HTML (a browser's navigation) to JSON.
pub(crate) fn wants_html(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.trim().starts_with("text/html"))
}

pub(crate) fn asset(a: Asset) -> warp::reply::Response {
    let mut resp = warp::reply::Response::new(a.body.into());
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    // The page runs only its own script and talks only to this origin.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'",
        ),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

pub(crate) fn named(name: &str) -> warp::reply::Response {
    match ASSETS.iter().find(|(n, _)| *n == name) {
        Some((_, a)) => asset(*a),
        None => Problem::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("the explorer has no file {name}"),
        )
        .reply(),
    }
}

#[cfg(test)]
mod tests {
    use super::wants_html;

    #[test]
    fn browsers_get_html_and_clients_json() {
        assert!(wants_html(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        ));
        assert!(!wants_html("application/json"));
        assert!(!wants_html("*/*"));
    }
}
