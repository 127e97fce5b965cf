//! Crash safety of intake: a client submits continuously while `poe serve` is killed with
//! SIGKILL and restarted, several times. Afterwards every batch that got a 202 is present,
//! intact and in order, the store reopens cleanly, and the service's re-executed state equals
//! the rollup's own replica.

mod common;

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use poe_circle_stark::venue::Operation;
use poe_ingest::client::RollupClient;
use poe_ingest::commitment::Scheme;
use poe_ingest::testkit::{client, funding_at, op, registry_toml, wall_clock_us};
use serde_json::Value;

const KILLS: usize = 6;

fn start(config: &Path, data: &Path, init: bool) -> (Child, SocketAddr) {
    let mut args = vec![
        OsStr::new("--config"),
        config.as_os_str(),
        OsStr::new("--data"),
        data.as_os_str(),
    ];
    if init {
        args.push(OsStr::new("--init"));
    }
    let (child, addr) = common::spawn_serve(args);
    (child, addr.parse().unwrap())
}

/// One HTTP/1.1 exchange; `None` if the connection broke (the server died).
fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Option<(u16, Value)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: poe\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .ok()?;
    s.write_all(body).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let text = String::from_utf8(out).ok()?;
    let status: u16 = text.get(9..12)?.parse().ok()?;
    let json = text
        .split("\r\n\r\n")
        .nth(1)
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    Some((status, json))
}

/// Operations are stamped from the wall clock at the test's start: `poe serve` accepts them
/// on its own clock, and refuses stamps more than a day old.
fn deposit(start_us: u64, seq: u64) -> Vec<poe_ingest::commitment::CommittedOp> {
    vec![op(
        &format!("deposit-{seq}"),
        Operation::Deposit {
            account: 1 + (seq % 3) as u32,
            amount: seq,
            timestamp_us: start_us + 10 + seq,
        },
    )]
}

/// Brings the client's replica back in line with the server's head after a crash: the last
/// batch may or may not have been stored before the kill.
fn resync(c: &mut RollupClient, before_last: &RollupClient, addr: SocketAddr) {
    let (_, head) = http(addr, "GET", "/v1/rollups/crash/head", b"").expect("server is up");
    let seq = head["seq"].as_u64().unwrap();
    if seq + 1 == c.seq {
        *c = before_last.clone();
    } else {
        assert_eq!(seq, c.seq, "server head must be the last or the one before");
    }
}

#[test]
fn acknowledged_batches_survive_sigkill() {
    let dir = std::env::temp_dir().join(format!("poe-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut c = client("crash", 11, Scheme::PedersenFelt252);
    let config = dir.join("poe.toml");
    std::fs::write(&config, registry_toml(&[&c])).unwrap();
    let data = dir.join("data");

    let start_us = wall_clock_us();
    let mut acked: Vec<(u64, String)> = Vec::new();
    let mut interrupted = 0;
    // The replica as it was before the batch in flight at the last kill.
    let mut pending: Option<RollupClient> = None;
    for round in 0..=KILLS {
        let (mut child, addr) = start(&config, &data, round == 0);
        if let Some(before) = pending.take() {
            resync(&mut c, &before, addr);
        }
        if round == KILLS {
            verify(addr, &acked, &c);
            child.kill().unwrap();
            child.wait().unwrap();
            break;
        }
        // Submit for a varying while, then kill with a request in flight.
        let deadline = Instant::now() + Duration::from_millis(150 + 97 * round as u64);
        loop {
            let before = c.clone();
            let ops = if c.seq == 0 {
                funding_at(start_us)
            } else {
                deposit(start_us, c.seq + 1)
            };
            let body = c.next_batch(&ops, "groth16", b"opaque");
            if Instant::now() < deadline {
                let (code, r) = http(addr, "POST", "/v1/batches", &body).expect("server alive");
                assert_eq!(code, 202, "{r}");
                acked.push((
                    r["seq"].as_u64().unwrap(),
                    r["batch_id"].as_str().unwrap().to_owned(),
                ));
                continue;
            }
            let sender = std::thread::spawn(move || http(addr, "POST", "/v1/batches", &body));
            std::thread::sleep(Duration::from_micros(200 + 300 * round as u64));
            child.kill().unwrap();
            child.wait().unwrap();
            match sender.join().unwrap() {
                Some((202, r)) => acked.push((
                    r["seq"].as_u64().unwrap(),
                    r["batch_id"].as_str().unwrap().to_owned(),
                )),
                Some((code, r)) => panic!("unexpected {code}: {r}"),
                None => interrupted += 1,
            }
            pending = Some(before);
            break;
        }
    }
    println!(
        "crash test: {KILLS} SIGKILLs, {} batches acknowledged, {interrupted} requests cut off, final head seq {}",
        acked.len(),
        c.seq
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn verify(addr: SocketAddr, acked: &[(u64, String)], c: &RollupClient) {
    // Strictly increasing, not consecutive: a batch stored just before a kill is in the store
    // (and in the head) without ever having been acknowledged.
    assert!(
        acked.windows(2).all(|w| w[1].0 > w[0].0),
        "acknowledged seqs must increase"
    );
    for (seq, id) in acked {
        let (code, r) = http(addr, "GET", &format!("/v1/batches/{id}"), b"").unwrap();
        assert_eq!(code, 200, "acknowledged batch {seq} ({id}) is missing");
        assert_eq!(r["seq"].as_u64(), Some(*seq));
    }
    let (_, head) = http(addr, "GET", "/v1/rollups/crash/head", b"").unwrap();
    assert!(head["seq"].as_u64().unwrap() >= acked.last().unwrap().0);
    assert_eq!(head["seq"].as_u64(), Some(c.seq));
    let mut replica = c.venue.clone();
    assert_eq!(
        head["post_state_root"].as_str().unwrap(),
        replica.state_root().to_hex(),
        "server state differs from the rollup's"
    );
}
