//! The HTTP API through warp's test client, and once over a real socket (`spawn_app`).

use std::io::{Read, Write};

use poe_api::{routes, run, ApiConfig, AppState};
use poe_ingest::commitment::Scheme;
use poe_ingest::intake::Intake;
use poe_ingest::testkit::{client, funding, registry, trade_at, T0};
use serde_json::Value;
use warp::http::StatusCode;

struct App {
    state: AppState,
    dir: std::path::PathBuf,
    client: poe_ingest::client::RollupClient,
}

/// `run` on a loopback port, stopped by [`Server::stop`].
struct Server {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(a: &App) -> (std::net::SocketAddr, Self) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run(listener, a.state.clone(), async {
            let _ = stopped.await;
        }));
        (addr, Self { stop, task })
    }

    /// Stops it and waits for the drain.
    async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(10), self.task)
            .await
            .expect("drains in time")
            .unwrap();
    }
}

fn app(tag: &str, config: ApiConfig) -> App {
    let dir = std::env::temp_dir().join(format!("poe-api-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let client = client("aurora", 3, Scheme::Keccak256);
    let intake = Intake::create(registry(&[&client]), &dir.join("intake.redb")).unwrap();
    App {
        // The test operations are stamped around T0; intake checks stamps against this clock.
        state: AppState::new(intake, config).with_clock(std::sync::Arc::new(|| T0 + 5_000_000)),
        dir,
        client,
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn post(state: &AppState, content_type: &str, body: &[u8]) -> (StatusCode, String, Value) {
    let resp = warp::test::request()
        .method("POST")
        .path("/v1/batches")
        .header("content-type", content_type)
        .header("content-length", body.len())
        .body(body)
        .reply(&routes(state.clone()))
        .await;
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        resp.status(),
        ct,
        serde_json::from_slice(resp.body()).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn accepted_then_duplicate_then_status() {
    let mut a = app("ok", ApiConfig::default());
    let body = a.client.next_batch(&funding(), "groth16", b"p");
    let (status, _, receipt) = post(&a.state, "application/json", &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{receipt}");
    assert_eq!(receipt["seq"], 1);
    assert_eq!(receipt["rollup_proof"]["verified"], false);
    assert_eq!(
        receipt["rollup_proof"]["keccak256"].as_str().map(str::len),
        Some(66)
    );
    let (status, _, again) = post(&a.state, "application/json; charset=utf-8", &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["batch_id"], receipt["batch_id"]);
    let url = receipt["status_url"].as_str().unwrap().to_owned();
    let resp = warp::test::request()
        .path(&url)
        .reply(&routes(a.state.clone()))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = warp::test::request()
        .path("/v1/rollups/aurora/head")
        .reply(&routes(a.state.clone()))
        .await;
    let head: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(
        (head["seq"].as_u64(), head["post_state_root"].clone()),
        (Some(1), receipt["post_state_root"].clone())
    );
}

#[tokio::test]
async fn refusals_are_problem_json_with_their_status() {
    let mut a = app("problems", ApiConfig::default());
    let good = a.client.next_batch(&funding(), "groth16", b"p");
    let (s, ct, p) = post(&a.state, "text/plain", &good).await;
    assert_eq!(
        (s, ct.as_str(), p["code"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "application/problem+json",
            Some("unsupported_media_type")
        )
    );

    let mut v: Value = serde_json::from_slice(&good).unwrap();
    v["header"]["rollup"] = "borealis".into();
    let (s, _, p) = post(
        &a.state,
        "application/json",
        &serde_json::to_vec(&v).unwrap(),
    )
    .await;
    assert_eq!(
        (s, p["code"].as_str(), p["path"].as_str()),
        (
            StatusCode::NOT_FOUND,
            Some("unknown_rollup"),
            Some("header.rollup")
        )
    );

    let (s, _, p) = post(&a.state, "application/json", b"{not json").await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_json"))
    );

    let mut v: Value = serde_json::from_slice(&good).unwrap();
    v["signature"]["s"] = v["signature"]["r"].clone();
    let (s, _, p) = post(
        &a.state,
        "application/json",
        &serde_json::to_vec(&v).unwrap(),
    )
    .await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("bad_signature"))
    );

    assert_eq!(
        post(&a.state, "application/json", &good).await.0,
        StatusCode::ACCEPTED
    );
    let mut skip = a.client.clone();
    skip.seq += 1;
    let (s, _, p) = post(
        &a.state,
        "application/json",
        &skip.next_batch(&trade_at(T0 + 5), "groth16", b"p"),
    )
    .await;
    assert_eq!(
        (s, p["code"].as_str(), p["detail"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("seq_gap"),
            Some("expected seq 2, got 3")
        )
    );
    // Refusals are counted under the rollup the body names if it is registered (the seq gap,
    // the bad signature, …), under no rollup otherwise (an unknown name, a body that does not
    // parse): a client cannot make series of its own.
    let metrics = warp::test::request()
        .path("/metrics")
        .reply(&routes(a.state.clone()))
        .await;
    let metrics = String::from_utf8(metrics.body().to_vec()).unwrap();
    for series in [
        "poe_submissions_total{code=\"409\",rollup=\"aurora\"} 1",
        "poe_submissions_total{code=\"404\",rollup=\"\"} 1",
    ] {
        assert!(metrics.contains(series), "{series}:\n{metrics}");
    }
    assert!(!metrics.contains("borealis"), "{metrics}");
}

#[tokio::test]
async fn oversized_body_is_413_and_full_queue_is_429_and_draining_is_503() {
    let mut a = app(
        "limits",
        ApiConfig {
            max_body_bytes: 64,
            max_inflight: 4,
            ..ApiConfig::default()
        },
    );
    let body = a.client.next_batch(&funding(), "groth16", b"p");
    let (s, _, p) = post(&a.state, "application/json", &body).await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );

    let b = app(
        "queue",
        ApiConfig {
            max_body_bytes: 1 << 20,
            max_inflight: 0,
            ..ApiConfig::default()
        },
    );
    let (s, _, p) = post(&b.state, "application/json", &body).await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("queue_full"))
    );

    let c = app("drain", ApiConfig::default());
    c.state.begin_drain();
    let (s, _, p) = post(&c.state, "application/json", &body).await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("shutting_down"))
    );
}

/// A real server on 127.0.0.1:0, a raw HTTP/1.1 client, and a graceful shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_app_serves_over_tcp_and_shuts_down() {
    let mut a = app("tcp", ApiConfig::default());
    let (addr, server) = Server::start(&a).await;
    let body = a.client.next_batch(&funding(), "groth16", b"p");
    let response = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(s, "POST /v1/batches HTTP/1.1\r\nHost: poe\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).unwrap();
        s.write_all(&body).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 202"), "{response}");
    let lower = response.to_ascii_lowercase();
    assert!(lower.contains("location: /v1/batches/"));
    // Every response carries a request id: a new UUID, or the client's own, echoed.
    let id = lower
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .expect("a request id");
    assert_eq!(id.trim().len(), 36, "a UUID: {id}");
    let echoed = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(s, "GET /healthz HTTP/1.1\r\nHost: poe\r\nX-Request-Id: trace-42\r\nConnection: close\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    })
    .await
    .unwrap();
    assert!(
        echoed
            .to_ascii_lowercase()
            .contains("x-request-id: trace-42"),
        "{echoed}"
    );
    server.stop().await;
}

#[tokio::test]
async fn batch_of_100k_operations_is_accepted() {
    let mut a = app("large", ApiConfig::default());
    let ops = poe_ingest::testkit::realistic_ops(100_000, 1, T0);
    let body = a.client.next_batch(&ops, "groth16", b"p");
    assert!(body.len() > 15_000_000, "about 17 MB of JSON");
    let (status, _, receipt) = post(&a.state, "application/json", &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{receipt}");
    assert_eq!(receipt["n_ops"], 100_000);
}

#[tokio::test]
async fn listing_readiness_and_metrics() {
    let mut a = app("ops", ApiConfig::default());
    for ops in [funding(), trade_at(T0 + 5), trade_at(T0 + 6)] {
        let body = a.client.next_batch(&ops, "groth16", b"p");
        assert_eq!(
            post(&a.state, "application/json", &body).await.0,
            StatusCode::ACCEPTED
        );
    }
    let filter = routes(a.state.clone());
    let get = |path: &str| warp::test::request().path(path).reply(&filter);
    let resp = get("/v1/rollups/aurora/batches?from_seq=2&limit=5").await;
    let list: Value = serde_json::from_slice(resp.body()).unwrap();
    let seqs: Vec<u64> = list["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        (seqs, list["next_from_seq"].as_u64()),
        (vec![2, 3], Some(4))
    );
    assert_eq!(
        get("/v1/rollups/aurora/batches?from_seq=x").await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get("/v1/rollups/borealis/batches").await.status(),
        StatusCode::NOT_FOUND
    );

    assert_eq!(get("/readyz").await.status(), StatusCode::OK);
    let index: Value = serde_json::from_slice(get("/").await.body()).unwrap();
    assert_eq!(index["openapi"], "/openapi.yaml");
    let spec = get("/openapi.yaml").await;
    assert_eq!(spec.status(), StatusCode::OK);
    assert_eq!(spec.headers()["content-type"], "application/yaml");
    let spec = String::from_utf8(spec.body().to_vec()).unwrap();
    assert!(spec.starts_with("openapi: 3"), "{}", &spec[..40]);
    for path in [
        "/v1/batches:",
        "/v1/days/{day}/files/{path}:",
        "/openapi.yaml:",
    ] {
        assert!(spec.contains(path), "the served spec lacks {path}");
    }
    let metrics = String::from_utf8(get("/metrics").await.body().to_vec()).unwrap();
    assert!(
        metrics.contains("poe_submissions_total{code=\"202\",rollup=\"aurora\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("poe_batches_accepted_total{rollup=\"aurora\"} 3"));
    assert!(metrics.contains("poe_operations_accepted_total{rollup=\"aurora\"} 4"));
    // The process's own series, from the client crate's collector.
    for series in ["process_resident_memory_bytes ", "process_open_fds "] {
        assert!(metrics.contains(series), "{series} missing:\n{metrics}");
    }
    assert!(metrics.contains("poe_submission_seconds_count 3"));
    let rollups: Value = serde_json::from_slice(get("/v1/rollups").await.body()).unwrap();
    assert_eq!(rollups["rollups"][0]["name"], "aurora");
    assert_eq!(rollups["rollups"][0]["native_scheme"], "keccak256");
    assert_eq!(rollups["rollups"][0]["head_seq"], 3);
    let head: Value = serde_json::from_slice(get("/v1/rollups/aurora/head").await.body()).unwrap();
    assert_eq!(
        rollups["rollups"][0]["post_state_root"],
        head["post_state_root"]
    );
    a.state.begin_drain();
    assert_eq!(
        get("/readyz").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn browsers_get_the_explorer_and_its_files_under_a_strict_policy() {
    let a = app("explorer", ApiConfig::default());
    let filter = routes(a.state.clone());
    let browse = warp::test::request()
        .path("/")
        .header(
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        )
        .reply(&filter)
        .await;
    assert_eq!(browse.status(), StatusCode::OK);
    assert_eq!(browse.headers()["content-type"], "text/html; charset=utf-8");
    let csp = browse.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let page = String::from_utf8(browse.body().to_vec()).unwrap();
    assert!(page.contains("<title>poe explorer</title>"));
    // Every file the page names is served, with its type.
    for (name, ty) in [
        ("explorer.js", "text/javascript; charset=utf-8"),
        ("explorer.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        assert!(page.contains(&format!("/explorer/{name}")), "{name}");
        let r = warp::test::request()
            .path(&format!("/explorer/{name}"))
            .reply(&filter)
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{name}");
        assert_eq!(r.headers()["content-type"], ty);
    }
    let page2 = warp::test::request().path("/explorer").reply(&filter).await;
    assert_eq!(page2.body(), browse.body());
    let missing = warp::test::request()
        .path("/explorer/../poe.toml")
        .reply(&filter)
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let unknown = warp::test::request()
        .path("/explorer/app.js")
        .reply(&filter)
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    // A client that asks for JSON (or anything) still gets the index.
    let index = warp::test::request()
        .path("/")
        .header("accept", "application/json")
        .reply(&filter)
        .await;
    let index: Value = serde_json::from_slice(index.body()).unwrap();
    assert_eq!(index["explorer"], "/explorer");
}

#[tokio::test]
async fn edge_refusals_are_counted_and_say_when_to_retry() {
    let mut a = app(
        "edge",
        ApiConfig {
            max_body_bytes: 64,
            max_inflight: 0,
            ..ApiConfig::default()
        },
    );
    let filter = routes(a.state.clone());
    let body = a.client.next_batch(&funding(), "groth16", b"p");
    let too_large = post(&a.state, "application/json", &body).await;
    assert_eq!(too_large.0, StatusCode::PAYLOAD_TOO_LARGE);
    let no_length = warp::test::request()
        .method("POST")
        .path("/v1/batches")
        .header("content-type", "application/json")
        .reply(&filter)
        .await;
    assert_eq!(no_length.status(), StatusCode::LENGTH_REQUIRED);
    let full = warp::test::request()
        .method("POST")
        .path("/v1/batches")
        .header("content-type", "application/json")
        .header("content-length", 2)
        .body("{}")
        .reply(&filter)
        .await;
    assert_eq!(full.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(full.headers().get("retry-after").unwrap(), "1");
    let metrics = warp::test::request().path("/metrics").reply(&filter).await;
    let metrics = String::from_utf8(metrics.body().to_vec()).unwrap();
    for code in [411, 413, 429] {
        assert!(
            metrics.contains(&format!(
                "poe_submissions_total{{code=\"{code}\",rollup=\"\"}} 1"
            )),
            "{code}: {metrics}"
        );
    }
    // The listing's limit is 1–1000 (specs/api.md): outside it is a 400, not a silent clamp.
    for limit in ["0", "1001"] {
        let resp = warp::test::request()
            .path(&format!("/v1/rollups/aurora/batches?limit={limit}"))
            .reply(&filter)
            .await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "limit={limit}");
        let p: Value = serde_json::from_slice(resp.body()).unwrap();
        assert_eq!(p["code"], "malformed_query");
        assert!(p["detail"].as_str().unwrap().contains("1..=1000"), "{p}");
    }
}

/// A client that never finishes its headers loses the connection after the header-read
/// timeout instead of holding it (and a file descriptor) for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_headers_are_cut_off() {
    let a = app(
        "slowloris",
        ApiConfig {
            header_read_timeout: std::time::Duration::from_millis(300),
            ..ApiConfig::default()
        },
    );
    let (addr, server) = Server::start(&a).await;
    let (closed, waited) = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: poe\r\n")
            .unwrap();
        let start = std::time::Instant::now();
        let mut out = Vec::new();
        // Ok once the server closes (after a 408 or nothing); Err(WouldBlock/TimedOut) had it
        // kept waiting for the rest of the headers.
        let closed = s.read_to_end(&mut out).is_ok();
        (closed, start.elapsed())
    })
    .await
    .unwrap();
    assert!(closed, "the connection was still open after {waited:?}");
    assert!(waited < std::time::Duration::from_secs(5), "{waited:?}");
    // A complete request on a fresh connection is still served.
    let ok = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: poe\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    })
    .await
    .unwrap();
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_body_is_cut_off_with_408() {
    let a = app(
        "trickle",
        ApiConfig {
            body_read_timeout: std::time::Duration::from_millis(300),
            min_body_rate: u64::MAX,
            ..ApiConfig::default()
        },
    );
    let (addr, server) = Server::start(&a).await;
    let (reply, waited) = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        s.write_all(
            b"POST /v1/batches HTTP/1.1\r\nHost: poe\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"header\":",
        )
        .unwrap();
        let start = std::time::Instant::now();
        let mut out = Vec::new();
        // Ok once the server answers and closes; Err(WouldBlock) had it kept waiting.
        let closed = s.read_to_end(&mut out).is_ok();
        assert!(closed, "the connection was still open after {:?}", start.elapsed());
        (String::from_utf8_lossy(&out).into_owned(), start.elapsed())
    })
    .await
    .unwrap();
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("request_timeout"), "{reply}");
    assert!(waited < std::time::Duration::from_secs(5), "{waited:?}");
    let filter = routes(a.state.clone());
    let metrics = warp::test::request().path("/metrics").reply(&filter).await;
    let metrics = String::from_utf8(metrics.body().to_vec()).unwrap();
    assert!(
        metrics.contains("poe_submissions_total{code=\"408\",rollup=\"\"} 1"),
        "{metrics}"
    );
    server.stop().await;
}

#[test]
fn every_refusal_code_is_in_the_spec_table_under_its_status() {
    // specs/api.md §3 lists each code in the row of the status `refusal_status` gives it.
    let spec =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../specs/api.md")).unwrap();
    for code in poe_ingest::model::RefusalCode::ALL {
        let status = poe_api::refusal_status(code).as_u16();
        let row = spec
            .lines()
            .find(|l| l.starts_with(&format!("| {status} |")))
            .unwrap_or_else(|| panic!("no row for {status} in specs/api.md §3"));
        assert!(
            row.contains(&format!("`{}`", code.as_str())),
            "{code} ({status}) is not in the spec's {status} row: {row}"
        );
    }
}

#[tokio::test]
async fn a_known_route_asked_with_another_method_is_405_with_allow() {
    let a = app("allow", ApiConfig::default());
    let filter = routes(a.state.clone());
    for (method, path, allow) in [
        ("DELETE", "/v1/batches", "POST"),
        ("GET", "/v1/batches", "POST"),
        ("POST", "/v1/days", "GET"),
        (
            "PUT",
            "/v1/days/2026-11-18/files/trades/x.parquet",
            "GET, HEAD",
        ),
        ("TRACE", "/", "GET"),
        ("POST", "/explorer/explorer.js", "GET"),
    ] {
        let r = warp::test::request()
            .method(method)
            .path(path)
            .reply(&filter)
            .await;
        assert_eq!(
            r.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(r.headers()["allow"], allow, "{method} {path}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    let r = warp::test::request()
        .method("DELETE")
        .path("/v1/nothing")
        .reply(&filter)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

async fn dry(state: &AppState, body: &[u8]) -> (StatusCode, Value) {
    send(state, "POST", "/v1/batches/dry-run", body).await
}

/// The dry run: the post-state root re-execution gives, whether the batch would be accepted as
/// it stands, every other refusal as a submission would get it — and nothing stored.
#[tokio::test]
async fn dry_run_gives_the_post_state_root_and_stores_nothing() {
    use poe_circle_stark::venue::Operation;
    use poe_ingest::testkit::{op, signed_submission};
    let mut a = app("dry-run", ApiConfig::default());
    let head = || a.state.with_intake(|i| i.head("aurora").unwrap());
    let (seq0, root0) = head();
    assert_eq!(seq0, 0);

    // A batch as the rollup would send it.
    let mut probe = a.client.clone();
    let good = probe.next_batch(&funding(), "groth16", b"p");
    let stated: Value = serde_json::from_slice(&good).unwrap();
    let (s, d) = dry(&a.state, &good).await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(d["would_be_accepted"], true);
    assert_eq!(d["seq"], 1);
    assert_eq!(d["pre_state_root"], root0.to_hex());
    assert_eq!(d["post_state_root"], stated["header"]["post_state_root"]);

    // The rollup asks before it knows its root: a header stating the pre-state root again.
    let asking = signed_submission(&a.client, 1, root0, root0, funding(), "groth16", b"p");
    let body = serde_json::to_vec(&a.client.body(&asking.header, &funding(), b"p")).unwrap();
    let (s, d) = dry(&a.state, &body).await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(d["would_be_accepted"], false);
    assert_eq!(d["post_state_root"], stated["header"]["post_state_root"]);
    assert_eq!(d["header_post_state_root"], root0.to_hex());
    // Submitted, the same body is refused, without the root.
    let (s, _, p) = post(&a.state, "application/json", &body).await;
    assert_eq!(
        (s, p["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("post_state_root_mismatch")
        )
    );

    // Nothing stored by the dry runs.
    assert_eq!(head(), (0, root0));
    let (s, _, _) = post(&a.state, "application/json", &good).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, d) = dry(&a.state, &good).await;
    assert_eq!(
        (s, d["code"].as_str()),
        (StatusCode::CONFLICT, Some("seq_conflict"))
    );

    // A rule broken: more withdrawn than account 1 holds.
    let (_, root1) = head();
    let overdraw = vec![op(
        "W-1",
        Operation::Withdraw {
            account: 1,
            amount: 1_000_000,
            timestamp_us: T0 + 10,
        },
    )];
    let sub = signed_submission(
        &a.client,
        2,
        root1,
        root1,
        overdraw.clone(),
        "groth16",
        b"p",
    );
    let body = serde_json::to_vec(&a.client.body(&sub.header, &overdraw, b"p")).unwrap();
    let (s, d) = dry(&a.state, &body).await;
    assert_eq!(
        (s, d["code"].as_str(), d["path"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("rule_violation"),
            Some("operations[0]")
        ),
        "{d}"
    );

    // Only the rollup asks about its state: another key's signature is refused.
    let mut forged: Value = serde_json::from_slice(&body).unwrap();
    forged["signature"]["s"] = forged["signature"]["r"].clone();
    let (s, d) = dry(&a.state, &serde_json::to_vec(&forged).unwrap()).await;
    assert_eq!(
        (s, d["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("bad_signature"))
    );
    assert_eq!(head().0, 1);
    a.client = probe;
}

/// Reads from an open SSE response until `want` event ids arrived (or 10 s): the ids seen.
fn sse_ids(s: &mut std::net::TcpStream, want: usize) -> Vec<String> {
    s.set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    loop {
        let ids: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("id:").map(|v| v.trim().to_owned()))
            .collect();
        if ids.len() >= want || std::time::Instant::now() > deadline {
            return ids;
        }
        match s.read(&mut buf) {
            Ok(0) => return ids,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(_) => {}
        }
    }
}

/// Push by Server-Sent Events: the catch-up, live changes, and a client that drops, misses a
/// batch, and resumes from its last id without loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_status_changes_and_resume_from_the_last_id() {
    let mut a = app("events", ApiConfig::default());
    let (addr, server) = Server::start(&a).await;
    let mut bodies = Vec::new();
    for i in 0..3u64 {
        bodies.push(a.client.next_batch(&funding_at_id(i), "groth16", b"p"));
    }
    let (s, _, _) = post(&a.state, "application/json", &bodies[0]).await;
    assert_eq!(s, StatusCode::ACCEPTED);

    let connect = move |last: Option<&'static str>| {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let extra = last.map_or(String::new(), |l| format!("Last-Event-ID: {l}\r\n"));
        write!(s, "GET /v1/rollups/aurora/events HTTP/1.1\r\nHost: poe\r\nAccept: text/event-stream\r\n{extra}\r\n").unwrap();
        s
    };
    let mut s1 = tokio::task::spawn_blocking(move || connect(None))
        .await
        .unwrap();
    let (mut s1, first) = tokio::task::spawn_blocking(move || {
        let ids = sse_ids(&mut s1, 1);
        (s1, ids)
    })
    .await
    .unwrap();
    assert_eq!(first, ["1.accepted"], "the catch-up");
    let (s, _, _) = post(&a.state, "application/json", &bodies[1]).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let live = tokio::task::spawn_blocking(move || sse_ids(&mut s1, 1))
        .await
        .unwrap();
    assert_eq!(live, ["2.accepted"], "a live change");

    // The client is gone (s1 dropped) while batch 3 is accepted; it comes back with its last id.
    let (s, _, _) = post(&a.state, "application/json", &bodies[2]).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let resumed = tokio::task::spawn_blocking(move || {
        let mut s2 = connect(Some("2.accepted"));
        sse_ids(&mut s2, 2)
    })
    .await
    .unwrap();
    // Nothing lost; a batch whose status may still move is sent again at its current status
    // (the same id: the client already has that fact), the last id itself is not.
    assert_eq!(resumed, ["1.accepted", "3.accepted"]);

    let r = warp::test::request()
        .path("/v1/rollups/borealis/events")
        .reply(&routes(a.state.clone()))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    server.stop().await;
}

fn funding_at_id(i: u64) -> Vec<poe_ingest::commitment::CommittedOp> {
    use poe_circle_stark::venue::Operation;
    vec![poe_ingest::testkit::op(
        &format!("D-{i}"),
        Operation::Deposit {
            account: 1,
            amount: 1_000,
            timestamp_us: T0 + i,
        },
    )]
}

async fn send(state: &AppState, method: &str, path: &str, body: &[u8]) -> (StatusCode, Value) {
    let resp = warp::test::request()
        .method(method)
        .path(path)
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(body)
        .reply(&routes(state.clone()))
        .await;
    (
        resp.status(),
        serde_json::from_slice(resp.body()).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn instruments_listed_over_http_are_named_by_the_next_days_batches() {
    use poe_circle_stark::venue::Operation;
    use std::sync::atomic::{AtomicU64, Ordering};
    let dir = std::env::temp_dir().join(format!("poe-api-listing-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut c = client("aurora", 3, Scheme::Keccak256);
    let intake = Intake::create(registry(&[&c]), &dir.join("intake.redb")).unwrap();
    let now = std::sync::Arc::new(AtomicU64::new(T0 + 5_000_000));
    let clock = now.clone();
    let state = AppState::new(intake, ApiConfig::default())
        .with_clock(std::sync::Arc::new(move || clock.load(Ordering::SeqCst)));
    let (status, _, _) = post(
        &state,
        "application/json",
        &c.next_batch(&funding(), "none", b""),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let body = c.list_instruments(&[poe_ingest::testkit::weekly_call()]);
    let path = "/v1/rollups/aurora/instruments";
    let (status, answer) = send(&state, "POST", path, &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let tomorrow = poe_circle_stark::calendar::Day::of_us(T0).next().start_us();
    assert_eq!(answer["first_index"], 2);
    assert_eq!(answer["effective_from_us"], tomorrow.to_string());
    let (status, again) = send(&state, "POST", path, &body).await;
    assert_eq!((status, &again), (StatusCode::OK, &answer), "a retry");
    // For another rollup than the path's: refused before intake.
    let (status, problem) = send(&state, "POST", "/v1/rollups/borealis/instruments", &body).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_listing"))
    );
    // A tampered listing: the signature no longer covers it.
    let tampered = String::from_utf8(body.clone())
        .unwrap()
        .replace("\"120\"", "\"121\"");
    let (status, problem) = send(&state, "POST", path, tampered.as_bytes()).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("bad_signature"))
    );

    let (status, table) = send(&state, "GET", path, b"").await;
    assert_eq!(status, StatusCode::OK);
    let t = table["instruments"].as_array().unwrap();
    assert_eq!(t.len(), 3);
    assert_eq!(t[2]["name"], "BTC-26NOV26-120-C");
    assert_eq!(t[2]["effective_from_us"], tomorrow.to_string());
    assert_eq!(t[0]["effective_from_us"], "0");

    // The next day a batch names it: the edge resolves the name (the shared registry was
    // replaced), and intake lets it trade.
    now.store(tomorrow + 10_000_000, Ordering::SeqCst);
    let trade = vec![poe_ingest::testkit::op(
        "W-1",
        Operation::Trade {
            buyer: 1,
            seller: 2,
            instrument: 2,
            qty: 1,
            price: 9,
            buyer_fee: 1,
            seller_fee: 1,
            timestamp_us: tomorrow + 1_000_000,
        },
    )];
    let (status, _, receipt) = post(
        &state,
        "application/json",
        &c.next_batch(&trade, "none", b""),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{receipt}");
    let _ = std::fs::remove_dir_all(&dir);
}
