//! The archive over HTTP: `poe serve` publishes closed days, `poe audit --from` downloads and
//! audits one, and files are served with byte ranges.

mod common;

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command};

use common::{poe_binary, scratch};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve_golden() -> (Server, String) {
    serve_bundle("bundle_v1")
}

fn serve_bundle(name: &str) -> (Server, String) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let data = scratch(&format!("archive-api-{name}"));
    let (child, addr) = common::spawn_serve([
        OsStr::new("--config"),
        root.join("../aggregator/poe.example.toml").as_os_str(),
        OsStr::new("--data"),
        data.as_os_str(),
        OsStr::new("--archive"),
        root.join("fixtures").join(name).as_os_str(),
        OsStr::new("--init"),
    ]);
    (Server(child), addr)
}

/// Status line and headers, and the body.
fn raw_get(addr: &str, path: &str, extra: &str) -> (String, Vec<u8>) {
    raw_request(addr, "GET", path, extra)
}

fn raw_request(addr: &str, method: &str, path: &str, extra: &str) -> (String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (
        String::from_utf8_lossy(&raw[..split]).to_lowercase(),
        raw[split + 4..].to_vec(),
    )
}

#[test]
fn audit_from_a_server_and_byte_ranges() {
    let (_server, addr) = serve_golden();
    let base = format!("http://{addr}");

    let out = Command::new(poe_binary())
        .args(["audit", "--from", &base, "--day", "2026-11-18"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("PASS root-proof"), "{stdout}");
    assert!(stdout.contains("PASS trades rollup=cygnus"), "{stdout}");
    // A span of days: every day the server published in it (here the one).
    let out = Command::new(poe_binary())
        .args([
            "audit",
            "--from",
            &base,
            "--day",
            "2026-11-01..2026-11-30",
            "--proof-only",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("VERDICT PASS 2026-11-18"), "{stdout}");
    let out = Command::new(poe_binary())
        .args(["audit", "--from", &base, "--day", "2026-12-01..2026-12-31"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("published no day"),
        "{stderr}"
    );

    let (head, body) = raw_get(&addr, "/v1/days", "");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let days: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(days["days"][0]["day"], "2026-11-18");
    assert_eq!(days["days"][0]["n_batches"], 9);

    let whole = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/bundle_v1/days/2026-11-18/statements.parquet"),
    )
    .unwrap();
    let (head, body) = raw_get(
        &addr,
        "/v1/days/2026-11-18/files/statements.parquet",
        "Range: bytes=-8\r\n",
    );
    assert!(head.starts_with("http/1.1 206"), "{head}");
    assert!(
        head.contains(&format!(
            "content-range: bytes {}-{}/{}",
            whole.len() - 8,
            whole.len() - 1,
            whole.len()
        )),
        "{head}"
    );
    assert_eq!(body, &whole[whole.len() - 8..]);
    assert_eq!(&body[4..], b"PAR1", "a Parquet file ends with its magic");

    let (head, _) = raw_get(
        &addr,
        "/v1/days/2026-11-18/files/statements.parquet",
        &format!("Range: bytes={}-\r\n", whole.len()),
    );
    assert!(head.starts_with("http/1.1 416"), "{head}");

    // What DuckDB's httpfs and generated clients do: HEAD for the size, percent-encoded
    // paths, ranges; published files are immutable.
    let cygnus = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/bundle_v1/days/2026-11-18/trades/rollup=cygnus/part-0000.parquet"),
    )
    .unwrap();
    let encoded = "/v1/days/2026-11-18/files/trades%2Frollup%3Dcygnus%2Fpart-0000.parquet";
    let (head, body) = raw_request(&addr, "HEAD", encoded, "");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains(&format!("content-length: {}", cygnus.len())),
        "{head}"
    );
    assert!(head.contains("accept-ranges: bytes"), "{head}");
    assert!(
        head.contains("cache-control: public, max-age=31536000, immutable"),
        "{head}"
    );
    assert!(body.is_empty(), "HEAD has no body");
    let (head, body) = raw_get(&addr, encoded, "Range: bytes=4-11\r\n");
    assert!(head.starts_with("http/1.1 206"), "{head}");
    assert!(head.contains("content-length: 8"), "{head}");
    assert_eq!(body, &cygnus[4..12]);
    let (head, body) = raw_get(&addr, encoded, "");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(body, cygnus);
    let (head, _) = raw_request(&addr, "HEAD", "/v1/days/2026-11-18/files/nope.parquet", "");
    assert!(head.starts_with("http/1.1 404"), "{head}");

    for (path, status) in [
        ("/v1/days/2026-11-19", "404"),
        ("/v1/days/2026-11-18/files/%2E%2E%2Fpoe.toml", "400"),
        ("/v1/days/2026-11-18/files/trades%2F%FF", "400"),
        ("/v1/days/2026-13-01", "400"),
        ("/v1/days/2026-11-18/files/..%2F..%2Fpoe.toml", "400"),
        ("/v1/days/2026-11-18/files/.staging/x", "400"),
        ("/v1/days/2026-11-18/files/nope.parquet", "404"),
    ] {
        let (head, _) = raw_get(&addr, path, "");
        assert!(
            head.starts_with(&format!("http/1.1 {status}")),
            "{path}: {head}"
        );
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(str::trim)
}

/// Files carry their SHA3-256 as a strong ETag; a client's copy is revalidated (304), a range
/// is served only against the ETag it was asked against (If-Range), and a file larger than the
/// server's read chunk streams whole and intact.
#[test]
fn files_have_content_etags_conditional_requests_and_stream_whole() {
    let (_server, addr) = serve_bundle("bundle_v5");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/bundle_v5/days/2026-11-18");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let statement: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("statement.json")).unwrap()).unwrap();
    let trades = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str().unwrap().starts_with("trades/"))
        .unwrap();
    let url = format!(
        "/v1/days/2026-11-18/files/{}",
        trades["path"].as_str().unwrap()
    );
    let (head, body) = raw_get(&addr, &url, "");
    let etag = header(&head, "etag").expect("an etag").to_owned();
    assert_eq!(
        etag,
        format!("\"{}\"", trades["sha3_256"].as_str().unwrap())
    );
    assert_eq!(body.len() as u64, trades["bytes"].as_u64().unwrap());

    // Revalidation: the same ETag is a 304 without a body; another is the file.
    let (head, body) = raw_get(&addr, &url, &format!("If-None-Match: {etag}\r\n"));
    assert!(head.starts_with("http/1.1 304"), "{head}");
    assert!(body.is_empty());
    assert_eq!(header(&head, "etag"), Some(etag.as_str()));
    let (head, _) = raw_get(&addr, &url, "If-None-Match: \"00\"\r\n");
    assert!(head.starts_with("http/1.1 200"), "{head}");

    // If-Range: the range against the current ETag; the whole file against a stale one.
    let (head, part) = raw_get(
        &addr,
        &url,
        &format!("Range: bytes=4-11\r\nIf-Range: {etag}\r\n"),
    );
    assert!(head.starts_with("http/1.1 206"), "{head}");
    assert_eq!(part.len(), 8);
    let (head, whole) = raw_get(&addr, &url, "Range: bytes=4-11\r\nIf-Range: \"0000\"\r\n");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(whole.len() as u64, trades["bytes"].as_u64().unwrap());
    assert_eq!(&whole[4..12], &part[..]);

    // The files the manifest cannot list take their digests from statement.json (and
    // statement.json its own).
    let samples = std::fs::read(dir.join("root.samples")).unwrap();
    assert!(samples.len() > 1 << 20, "larger than one read chunk");
    let (head, body) = raw_get(&addr, "/v1/days/2026-11-18/files/root.samples", "");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(body, samples, "streamed whole and intact");
    assert_eq!(
        header(&head, "etag"),
        Some(
            format!(
                "\"{}\"",
                statement["root_samples_sha3_256"].as_str().unwrap()
            )
            .as_str()
        )
    );
    let (head, tail) = raw_get(
        &addr,
        "/v1/days/2026-11-18/files/root.samples",
        "Range: bytes=1048000-1049999\r\n",
    );
    assert!(head.starts_with("http/1.1 206"), "{head}");
    assert_eq!(
        tail,
        &samples[1_048_000..1_050_000],
        "a range across a chunk edge"
    );
    let (head, _) = raw_request(
        &addr,
        "HEAD",
        "/v1/days/2026-11-18/files/statement.json",
        "",
    );
    use sha3::Digest as _;
    let own = hex::encode(sha3::Sha3_256::digest(
        std::fs::read(dir.join("statement.json")).unwrap(),
    ));
    assert_eq!(header(&head, "etag"), Some(format!("\"{own}\"").as_str()));
}

/// A TLS front for a plain server: each connection's one request is relayed to `backend` with
/// `Connection: close`, and its response sent back under TLS.
fn tls_relay(backend: String, cert_pem: &str, key_pem: &str) -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = vec![CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    // ring, as ureq's client uses: rustls marks it deprecated for lacking post-quantum key
    // exchange (aws-lc-rs has it, at the price of a C toolchain and cmake in every build).
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let config = std::sync::Arc::new(
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let (config, backend) = (config.clone(), backend.clone());
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if tls.read(&mut byte).unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head);
                let request_line = head.lines().next().unwrap_or_default().to_owned();
                let mut up = TcpStream::connect(&backend).unwrap();
                write!(
                    up,
                    "{request_line}\r\nHost: {backend}\r\nConnection: close\r\n\r\n"
                )
                .unwrap();
                let mut response = Vec::new();
                up.read_to_end(&mut response).unwrap();
                let _ = tls.write_all(&response);
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    format!("localhost:{port}")
}

/// `poe audit --from https://…`: the download goes through TLS, trusting the server's
/// certificate only when told to (--ca-cert); a plain-HTTP base also works, a bad one is named.
#[test]
fn audit_from_an_https_server_with_its_ca_certificate() {
    let (_server, addr) = serve_bundle("bundle_v5");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let front = tls_relay(addr, &cert.cert.pem(), &cert.signing_key.serialize_pem());
    let dir = scratch("audit-https");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let base = format!("https://{front}");
    let audit = |extra: &[&OsStr]| {
        Command::new(poe_binary())
            .args([
                "audit",
                "--from",
                &base,
                "--day",
                "2026-11-18",
                "--no-key-cache",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = audit(&[OsStr::new("--ca-cert"), ca.as_os_str()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&format!("from {base}")), "{stdout}");
    assert!(stdout.contains("PASS root-proof"), "{stdout}");

    // Without the CA the certificate is unknown: refused, and said so.
    let out = audit(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");

    let out = Command::new(poe_binary())
        .args(["audit", "--from", "ftp://x", "--day", "2026-11-18"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("expected http://host:port or https://host"),
        "{stderr}"
    );
}
