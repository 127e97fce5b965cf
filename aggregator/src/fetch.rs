//! Downloading a day's bundle through the archive API (`GET /v1/days/{day}/…`) for
//! `poe audit --from`: HTTP or HTTPS (ureq over rustls, Mozilla's roots or the auditor's own
//! CA), with timeouts and retries that back off. Nothing fetched is trusted: the audit checks
//! every byte afterwards.

use std::path::Path;
use std::time::Duration;

/// Attempts per request: a transient failure (connection, 429, 5xx) is retried after 0.5 s,
/// 1 s, 2 s.
const ATTEMPTS: u32 = 4;
/// Largest body accepted: trades files of a day of millions of operations, with room.
const MAX_BODY: u64 = 16 << 30;

/// An HTTP(S) client for one archive server.
#[derive(Debug)]
pub struct Fetcher {
    base: String,
    agent: ureq::Agent,
    backoff: Duration,
}

impl Fetcher {
    /// A client of `base` (`http://host:port` or `https://host[:port]`); `ca_cert`, a PEM file
    /// of the certificates to trust instead of Mozilla's roots (a private CA, a self-signed
    /// server).
    ///
    /// # Errors
    /// A base URL of another scheme, an unreadable or empty PEM file.
    pub fn new(base: &str, ca_cert: Option<&Path>) -> Result<Self, String> {
        let base = base.trim_end_matches('/').to_owned();
        let rest = base
            .strip_prefix("http://")
            .or_else(|| base.strip_prefix("https://"))
            .ok_or_else(|| format!("{base:?}: expected http://host:port or https://host[:port]"))?;
        if rest.is_empty() || rest.contains('/') {
            return Err(format!("{base:?}: expected a server, no path"));
        }
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(path) = ca_cert {
            let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let certs: Vec<_> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(format!("{}: no PEM certificate in it", path.display()));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        }
        let agent = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            // A stalled server, not a large file: no read may wait longer than this.
            .timeout_recv_body(Some(Duration::from_secs(300)))
            .timeout_recv_response(Some(Duration::from_secs(300)))
            .user_agent(concat!("poe/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Ok(Self {
            base,
            agent,
            backoff: Duration::from_millis(500),
        })
    }

    /// GETs `path`: the body of a 200. Connection failures, 429 and 5xx are retried with
    /// backoff; any other status is an error at once, with the server's problem detail.
    ///
    /// # Errors
    /// The last failure, naming the path.
    pub fn get(&self, path: &str) -> Result<Vec<u8>, String> {
        let url = format!("{}{path}", self.base);
        let mut wait = self.backoff;
        let mut attempt = 1;
        loop {
            let transient = match self.agent.get(&url).call() {
                Ok(resp) => match read(resp, "GET", path) {
                    Ok((200, b)) => return Ok(b),
                    Ok((s, body)) => {
                        let e = format!("GET {path}: HTTP {s}: {}", String::from_utf8_lossy(&body));
                        if s != 429 && s < 500 {
                            return Err(e);
                        }
                        e
                    }
                    Err(e) => e,
                },
                Err(e) => format!("GET {path}: {e}"),
            };
            if attempt == ATTEMPTS {
                return Err(format!("{transient} (after {ATTEMPTS} attempts)"));
            }
            std::thread::sleep(wait);
            wait *= 2;
            attempt += 1;
        }
    }

    /// POSTs a JSON `body` to `path`: `(status, response body)` for any status the server
    /// answered. Only for idempotent routes (a batch submission is): connection failures, 429
    /// and 503 are retried with backoff.
    ///
    /// # Errors
    /// The last connection failure, naming the path.
    pub fn post(&self, path: &str, body: &[u8]) -> Result<(u16, Vec<u8>), String> {
        let url = format!("{}{path}", self.base);
        let mut wait = self.backoff;
        for attempt in 1..=ATTEMPTS {
            let outcome = self
                .agent
                .post(&url)
                .header("content-type", "application/json")
                .send(body)
                .map_err(|e| format!("POST {path}: {e}"))
                .and_then(|resp| read(resp, "POST", path));
            match outcome {
                Ok((429 | 503, _)) | Err(_) if attempt < ATTEMPTS => {
                    std::thread::sleep(wait);
                    wait *= 2;
                }
                other => return other,
            }
        }
        unreachable!("the last attempt returns")
    }
}

/// A response's status and body (up to [`MAX_BODY`]).
fn read(
    mut resp: ureq::http::Response<ureq::Body>,
    method: &str,
    path: &str,
) -> Result<(u16, Vec<u8>), String> {
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_vec()
        .map_err(|e| format!("{method} {path}: {e}"))?;
    Ok((status, body))
}

/// GETs `path` from `base` with a fresh client trusting Mozilla's roots ([`Fetcher::get`]).
///
/// # Errors
/// As [`Fetcher::new`] and [`Fetcher::get`].
pub fn get(base: &str, path: &str) -> Result<Vec<u8>, String> {
    Fetcher::new(base, None)?.get(path)
}

/// Downloads the bundle of `day` into `dir`: manifest, root proof, statement, the listed
/// files (only `statements.parquet` when `proof_only`), and a v4 root's `root.samples` where
/// `samples(root proof bytes)` says the audit needs them. Returns the bytes downloaded.
///
/// # Errors
/// Any failed request or write, naming the file.
pub fn download_day(
    client: &Fetcher,
    day: &str,
    dir: &Path,
    proof_only: bool,
    samples: &dyn Fn(&[u8]) -> bool,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<u64, String> {
    use poe_api::urls;
    use poe_archive::layout;
    let manifest_bytes = client.get(&urls::day_manifest(day))?;
    let manifest =
        poe_archive::manifest::Manifest::from_bytes(&manifest_bytes).map_err(|e| e.to_string())?;
    let storage = poe_archive::LocalDir::new(dir);
    let put = |path: &str, bytes: &[u8]| {
        poe_archive::Storage::write(&storage, path, bytes).map_err(|e| format!("{path}: {e}"))
    };
    put(layout::MANIFEST_JSON, &manifest_bytes)?;
    let mut total = manifest_bytes.len() as u64;
    for (path, url) in [
        (layout::ROOT_PROOF, urls::day_proof(day)),
        (
            layout::STATEMENT_JSON,
            urls::day_file(day, layout::STATEMENT_JSON),
        ),
    ] {
        let b = client.get(&url)?;
        total += b.len() as u64;
        put(path, &b)?;
        if path == layout::ROOT_PROOF
            && poe_circle_stark::day::recursive::RecursiveFormat::of(&b).is_some()
            && samples(&b)
        {
            let s = client.get(&urls::day_file(day, layout::ROOT_SAMPLES))?;
            total += s.len() as u64;
            put(layout::ROOT_SAMPLES, &s)?;
        }
    }
    let files: Vec<_> = manifest
        .files
        .iter()
        .filter(|f| !proof_only || f.path == layout::STATEMENTS_PARQUET)
        .collect();
    for (i, f) in files.iter().enumerate() {
        let b = client.get(&urls::day_file(day, &f.path))?;
        total += b.len() as u64;
        put(&f.path, &b)?;
        progress(i + 1, files.len());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::Fetcher;
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    /// A server answering its requests with `statuses` in turn; counts the requests.
    fn server(statuses: Vec<u16>) -> (String, Arc<AtomicUsize>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        std::thread::spawn(move || {
            for mut s in listener.incoming().flatten() {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let i = counter.fetch_add(1, Ordering::SeqCst);
                let status = statuses[i.min(statuses.len() - 1)];
                let body = format!("body {i}");
                let _ = write!(
                    s,
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (format!("http://{addr}"), seen)
    }

    fn fast(base: &str) -> Fetcher {
        let mut f = Fetcher::new(base, None).unwrap();
        f.backoff = Duration::from_millis(1);
        f
    }

    #[test]
    fn transient_failures_are_retried_and_client_errors_are_not() {
        let (base, seen) = server(vec![503, 429, 200]);
        assert_eq!(fast(&base).get("/x").unwrap(), b"body 2");
        assert_eq!(seen.load(Ordering::SeqCst), 3);

        let (base, seen) = server(vec![404]);
        let err = fast(&base).get("/x").unwrap_err();
        assert!(err.contains("HTTP 404") && err.contains("body 0"), "{err}");
        assert_eq!(seen.load(Ordering::SeqCst), 1, "a 404 is not retried");

        let (base, seen) = server(vec![500]);
        let err = fast(&base).get("/x").unwrap_err();
        assert!(err.contains("after 4 attempts"), "{err}");
        assert_eq!(seen.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn base_urls_are_checked() {
        for bad in ["ftp://x", "http://", "https://host/path", "host:80"] {
            assert!(Fetcher::new(bad, None).is_err(), "{bad}");
        }
        for good in ["http://127.0.0.1:8080", "https://archive.example/"] {
            assert!(Fetcher::new(good, None).is_ok(), "{good}");
        }
    }
}
