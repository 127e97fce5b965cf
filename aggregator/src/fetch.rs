//! Downloading a day's bundle through the archive API (`GET /v1/days/{day}/…`) for
//! `poe audit --from`. A small blocking HTTP/1.1 client: the auditor's side needs nothing more,
//! and nothing fetched is trusted — the audit checks every byte afterwards.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

/// `http://host:port` → `host:port`.
fn authority(base: &str) -> Result<&str, String> {
    base.trim_end_matches('/')
        .strip_prefix("http://")
        .filter(|a| !a.is_empty() && !a.contains('/'))
        .ok_or_else(|| format!("{base:?}: expected http://host:port"))
}

/// GETs `path` from `base`; the body of a 200, or an error with the status and body.
///
/// # Errors
/// Connection failures, non-200 statuses, malformed responses.
pub fn get(base: &str, path: &str) -> Result<Vec<u8>, String> {
    let host = authority(base)?;
    let mut s = TcpStream::connect(host).map_err(|e| format!("connecting to {host}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(300)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept-Encoding: identity\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| format!("GET {path}: {e}"))?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("GET {path}: response without a header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut body = raw[split + 4..].to_vec();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("GET {path}: bad status line"))?;
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body).ok_or_else(|| format!("GET {path}: bad chunked body"))?;
    } else if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        if body.len() != len {
            return Err(format!(
                "GET {path}: {} of {len} body bytes received",
                body.len()
            ));
        }
    }
    if status != 200 {
        return Err(format!(
            "GET {path}: HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    Ok(body)
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

/// Downloads the bundle of `day` into `dir`: manifest, root proof, statement, the listed
/// files (only `statements.parquet` when `proof_only`), and a v4 root's `root.samples` where
/// `samples(root proof bytes)` says the audit needs them. Returns the bytes downloaded.
///
/// # Errors
/// Any failed request or write, naming the file.
pub fn download_day(
    base: &str,
    day: &str,
    dir: &Path,
    proof_only: bool,
    samples: &dyn Fn(&[u8]) -> bool,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<u64, String> {
    use poe_api::urls;
    use poe_archive::layout;
    let manifest_bytes = get(base, &urls::day_manifest(day))?;
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
        let b = get(base, &url)?;
        total += b.len() as u64;
        put(path, &b)?;
        if path == layout::ROOT_PROOF
            && poe_circle_stark::day::recursive::RecursiveFormat::of(&b).is_some()
            && samples(&b)
        {
            let s = get(base, &urls::day_file(day, layout::ROOT_SAMPLES))?;
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
        let b = get(base, &urls::day_file(day, &f.path))?;
        total += b.len() as u64;
        put(&f.path, &b)?;
        progress(i + 1, files.len());
    }
    Ok(total)
}
