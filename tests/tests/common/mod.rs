//! Shared by the end-to-end tests: the `poe` binary, scratch directories, and a small real day.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use poe_archive::Day;
use poe_ingest::commitment::Scheme;
use poe_ingest::intake::{Intake, Outcome};
use poe_ingest::registry::Registry;
use poe_ingest::testkit::{client, realistic_ops, registry_toml, T0};

/// The `poe` binary of this workspace build: `target/<profile>/poe`, built if missing.
pub fn poe_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("poe");
    // Built once per test process, always: cargo leaves a fresh binary alone, and a stale one
    // (the library changed since) would test yesterday's code.
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "poe-aggregator", "--bin", "poe"])
            .status()
            .unwrap();
        assert!(status.success());
    });
    bin
}

/// Starts `poe serve` on a free loopback port with `args` (config, data, …); returns the child
/// and its `host:port`, read from the line it prints once listening.
pub fn spawn_serve<I, S>(args: I) -> (Child, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut child = Command::new(poe_binary())
        .arg("serve")
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    (child, addr)
}

/// A fresh directory under the system temp dir.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("poe-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The day of [`T0`]: 2026-11-18.
pub fn day() -> Day {
    Day::of_us(T0)
}

/// Three rollups with the three native schemes the demo uses, each submitting three batches
/// through intake during [`day`], plus one late batch of the first accepted the next day.
/// Returns the intake and the registry text. Deterministic: same bytes every run.
pub fn submit_day(data: &Path, ops_per_batch: usize) -> (Intake, String) {
    let (intake, toml, _) = submit_day_with_clients(data, ops_per_batch);
    (intake, toml)
}

/// [`submit_day`], with the rollups' clients as they stand after it (to submit more).
pub fn submit_day_with_clients(
    data: &Path,
    ops_per_batch: usize,
) -> (Intake, String, [poe_ingest::client::RollupClient; 3]) {
    let mut clients = [
        client("aurora", 1, Scheme::Keccak256),
        client("borealis", 2, Scheme::PoseidonBn254),
        client("cygnus", 3, Scheme::PoseidonFelt252),
    ];
    let toml = registry_toml(&clients.iter().collect::<Vec<_>>());
    let registry = Registry::parse(&toml).unwrap();
    let mut intake = Intake::create(registry, &data.join("intake.redb")).unwrap();
    let mut now = T0 + 1_000_000;
    for batch in 0..3u64 {
        for (i, c) in clients.iter_mut().enumerate() {
            let start = T0 + (batch * 3 + i as u64) * 10_000_000;
            let ops = realistic_ops(ops_per_batch, 7 * batch + i as u64, start);
            let body = c.next_batch(&ops, "groth16", format!("{}-{batch}", c.name).as_bytes());
            now += 1_000_000;
            assert!(matches!(
                intake.submit(&body, now).unwrap(),
                Outcome::Accepted(_)
            ));
        }
    }
    // Accepted after midnight: belongs to the next day.
    let late = realistic_ops(ops_per_batch, 99, T0 + 3_600_000_000);
    let body = clients[0].next_batch(&late, "groth16", b"late");
    let next_day = day().next().start_us() + 5_000_000;
    assert!(matches!(
        intake.submit(&body, next_day).unwrap(),
        Outcome::Accepted(_)
    ));
    (intake, toml, clients)
}

/// Opens `GET path` as a Server-Sent Events stream on `addr`, optionally resuming after
/// `last_event_id`.
pub fn sse_connect(addr: &str, path: &str, last_event_id: Option<&str>) -> std::net::TcpStream {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let extra = last_event_id.map_or(String::new(), |l| format!("Last-Event-ID: {l}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: poe\r\nAccept: text/event-stream\r\n{extra}\r\n"
    )
    .unwrap();
    s
}

/// Reads an open SSE stream until `want` event ids arrived or `timeout` passed: the ids seen.
pub fn sse_ids(
    s: &mut std::net::TcpStream,
    want: usize,
    timeout: std::time::Duration,
) -> Vec<String> {
    use std::io::Read;
    s.set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    let deadline = std::time::Instant::now() + timeout;
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
