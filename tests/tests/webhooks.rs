//! Webhooks as a rollup's receiver sees them: a receiver that answers 500, then goes away,
//! then comes back gets every status change of its rollup, signed (Standard Webhooks), in seq
//! order, each acknowledged once; a restart of poe resends nothing acknowledged and goes on.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use poe_circle_stark::venue::Operation;
use poe_ingest::client::RollupClient;
use poe_ingest::commitment::Scheme;
use poe_ingest::testkit::{client, op, registry_toml, wall_clock_us};
use serde_json::Value;

/// One request the receiver got, and what it answered.
#[derive(Debug, Clone)]
struct Delivery {
    id: String,
    timestamp: u64,
    signature: String,
    body: Vec<u8>,
    answered: u16,
}

/// A webhook receiver on a fixed port that fails its first `fail_first` requests with 500.
struct Receiver {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start(port: u16, fail_first: usize, log: Arc<Mutex<Vec<Delivery>>>) -> (Self, u16) {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let fails = Arc::new(AtomicUsize::new(fail_first));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => handle(s, &fails, &log),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            // The listener is dropped here: the port refuses connections until a restart.
        });
        (
            Self {
                stop,
                thread: Some(thread),
            },
            port,
        )
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap();
    }
}

fn handle(s: TcpStream, fails: &AtomicUsize, log: &Mutex<Vec<Delivery>>) {
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("POST /hook "), "{line}");
    let (mut len, mut id, mut ts, mut sig) = (0, String::new(), 0, String::new());
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap();
        let v = v.trim().to_owned();
        match k.to_ascii_lowercase().as_str() {
            "content-length" => len = v.parse().unwrap(),
            "webhook-id" => id = v,
            "webhook-timestamp" => ts = v.parse().unwrap(),
            "webhook-signature" => sig = v,
            _ => {}
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    let answered = if fails
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        500
    } else {
        204
    };
    log.lock().unwrap().push(Delivery {
        id,
        timestamp: ts,
        signature: sig,
        body,
        answered,
    });
    let mut s = s;
    write!(
        s,
        "HTTP/1.1 {answered} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
}

fn post(addr: &str, body: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "POST /v1/batches HTTP/1.1\r\nHost: poe\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).unwrap();
    s.write_all(body).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 202"), "{resp}");
    let json: Value = serde_json::from_str(resp.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    json["batch_id"].as_str().unwrap().to_owned()
}

fn get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: poe\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp
}

/// The ids the receiver acknowledged (answered 2xx), in order.
fn acked(log: &Mutex<Vec<Delivery>>) -> Vec<String> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|d| d.answered == 204)
        .map(|d| d.id.clone())
        .collect()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn serve(dir: &Path, init: bool) -> (Child, String) {
    let mut args = vec![
        "--config".into(),
        dir.join("poe.toml").into_os_string(),
        "--data".into(),
        dir.join("data").into_os_string(),
        "--archive".into(),
        dir.join("archive").into_os_string(),
        "--no-pipeline".into(),
        "--webhooks".into(),
        dir.join("webhooks.toml").into_os_string(),
    ];
    if init {
        args.push("--init".into());
    }
    common::spawn_serve(args)
}

fn terminate(mut child: Child) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

fn next(c: &mut RollupClient, k: u64) -> Vec<u8> {
    let t = wall_clock_us() + k;
    // Deposits: the test kit's instruments expired before today's wall clock.
    let ops = [op(
        &format!("D-{t}"),
        Operation::Deposit {
            account: 1,
            amount: 5,
            timestamp_us: t,
        },
    )];
    c.next_batch(&ops, "none", b"")
}

#[test]
fn a_failing_receiver_recovers_and_gets_every_event_once_across_restarts() {
    let dir = common::scratch("webhooks");
    let mut c = client("hooked", 9, Scheme::Keccak256);
    std::fs::write(dir.join("poe.toml"), registry_toml(&[&c])).unwrap();
    // 32 key bytes, as `openssl rand -base64 32` makes them.
    let secret = "whsec_cG9lLXdlYmhvb2stdGVzdC1rZXktMzItYnl0ZXMhIQ==";
    let key = poe_api::webhooks::parse_secret(secret).unwrap();
    std::fs::write(dir.join("hook.whsec"), secret).unwrap();

    let log = Arc::new(Mutex::new(Vec::new()));
    let (receiver, port) = Receiver::start(0, 2, log.clone());
    std::fs::write(
        dir.join("webhooks.toml"),
        format!(
            "poll_ms = 200\nretry_initial_ms = 50\nretry_max_ms = 400\n\n[[webhooks]]\nrollup = \"hooked\"\nurl = \"http://127.0.0.1:{port}/hook\"\nsecret_file = \"hook.whsec\"\n"
        ),
    )
    .unwrap();
    let (poe, addr) = serve(&dir, true);

    // Batch 1: the receiver answers 500 twice; the third attempt is acknowledged.
    let b1 = post(&addr, &next(&mut c, 0));
    wait_until("1.accepted", || acked(&log) == ["hooked.1.accepted"]);
    {
        let log = log.lock().unwrap();
        let answers: Vec<u16> = log.iter().map(|d| d.answered).collect();
        assert_eq!(answers, [500, 500, 204], "retried until a 2xx");
        assert!(
            log.iter().all(|d| d.id == "hooked.1.accepted"),
            "a retry is the same event (same id): the receiver dedupes on it"
        );
    }

    // The receiver goes away; two batches wait, in order, retried with backoff.
    receiver.stop();
    let b2 = post(&addr, &next(&mut c, 1));
    let _b3 = post(&addr, &next(&mut c, 2));
    let metric = |m: &str, name: &str| -> u64 {
        m.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().last())
            .map_or(0, |v| v.parse().unwrap())
    };
    wait_until("failed attempts on a closed port", || {
        let m = get(&addr, "/metrics");
        metric(&m, "poe_webhook_consecutive_failures{rollup=\"hooked\"}") >= 5
            && metric(&m, "poe_webhook_backlog{rollup=\"hooked\"}") >= 1
    });
    assert!(
        metric(
            &get(&addr, "/metrics"),
            "poe_webhook_attempts_total{outcome=\"failed\",rollup=\"hooked\"}"
        ) >= 7,
        "2 failures for batch 1, then at least 5"
    );

    // It comes back on the same port: the backlog is delivered in seq order.
    let (receiver, _) = Receiver::start(port, 0, log.clone());
    wait_until("2 and 3 accepted", || acked(&log).len() == 3);
    wait_until("the metrics to clear", || {
        let m = get(&addr, "/metrics");
        metric(&m, "poe_webhook_consecutive_failures{rollup=\"hooked\"}") == 0
            && metric(&m, "poe_webhook_backlog{rollup=\"hooked\"}") == 0
    });
    assert_eq!(
        acked(&log),
        [
            "hooked.1.accepted",
            "hooked.2.accepted",
            "hooked.3.accepted"
        ]
    );

    // A status change that nobody announced (a leaf proof stored by another process) is
    // found by the poll: batch 1 is proven.
    std::fs::create_dir_all(dir.join("data/leaves")).unwrap();
    std::fs::write(dir.join("data/leaves").join(format!("{b1}.leaf")), b"x").unwrap();
    wait_until("1.proven", || acked(&log).len() == 4);
    assert_eq!(acked(&log)[3], "hooked.1.proven");

    // poe restarts: nothing acknowledged is sent again, and new events go on.
    terminate(poe);
    let before = log.lock().unwrap().len();
    let (poe, addr) = serve(&dir, false);
    std::thread::sleep(Duration::from_millis(1_000)); // five polls
    assert_eq!(
        log.lock().unwrap().len(),
        before,
        "an acknowledged event was sent again after a restart"
    );
    std::fs::write(dir.join("data/leaves").join(format!("{b2}.leaf")), b"x").unwrap();
    let _b4 = post(&addr, &next(&mut c, 3));
    wait_until("4.accepted and 2.proven", || acked(&log).len() == 6);
    assert_eq!(
        acked(&log)[4..],
        ["hooked.2.proven", "hooked.4.accepted"],
        "in seq order"
    );

    // Every request was signed over its id, timestamp and body with the rollup's secret, and
    // its body is the receipt at the status its id names.
    let now_s = wall_clock_us() / 1_000_000;
    for d in log.lock().unwrap().iter() {
        assert_eq!(
            d.signature,
            poe_api::webhooks::sign(&key, &d.id, d.timestamp, &d.body),
            "{}",
            d.id
        );
        assert!(now_s.abs_diff(d.timestamp) < 120, "a fresh timestamp");
        let event: Value = serde_json::from_slice(&d.body).unwrap();
        assert_eq!(event["type"], "batch.status");
        assert_eq!(event["id"], d.id);
        let (seq, status) = d.id["hooked.".len()..].split_once('.').unwrap();
        assert_eq!(event["data"]["seq"].to_string(), seq);
        assert_eq!(event["data"]["status"], status);
    }
    // The cursor on disk says what was acknowledged.
    let cursor: Value =
        serde_json::from_slice(&std::fs::read(dir.join("data/webhooks/hooked.json")).unwrap())
            .unwrap();
    assert_eq!(cursor["floor"], 0, "nothing is included yet");
    assert_eq!(cursor["acked"]["1"], 2);
    assert_eq!(cursor["acked"]["4"], 1);

    terminate(poe);
    receiver.stop();
}

#[test]
fn a_webhook_for_an_unregistered_rollup_stops_start_up_with_its_position() {
    let dir = common::scratch("webhooks-bad");
    let c = client("hooked", 9, Scheme::Keccak256);
    std::fs::write(dir.join("poe.toml"), registry_toml(&[&c])).unwrap();
    std::fs::write(
        dir.join("hook.whsec"),
        "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    )
    .unwrap();
    std::fs::write(
        dir.join("webhooks.toml"),
        "[[webhooks]]\nrollup = \"nobody\"\nurl = \"http://127.0.0.1:9/\"\nsecret_file = \"hook.whsec\"\n",
    )
    .unwrap();
    let out = Command::new(common::poe_binary())
        .arg("serve")
        .arg("--config")
        .arg(dir.join("poe.toml"))
        .arg("--data")
        .arg(dir.join("data"))
        .arg("--init")
        .arg("--webhooks")
        .arg(dir.join("webhooks.toml"))
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("webhooks[0].rollup")
            && stderr.contains("\"nobody\" is not in the registry"),
        "{stderr}"
    );
    assert!(!dir.join("data").exists(), "nothing was made");
}
