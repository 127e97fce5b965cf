//! `poe bench-load`: the intake service on loopback under concurrent rollups, durability on.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use poe_circle_stark::venue::Operation;
use poe_ingest::commitment::{CommittedOp, Scheme};
use poe_ingest::intake::Intake;
use poe_ingest::testkit::{client, op, realistic_ops, registry, T0};

/// One load run's figures.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Trades per batch.
    pub batch_trades: usize,
    /// Batches submitted (all accepted).
    pub batches: usize,
    /// Wall time of the submission phase.
    pub elapsed: Duration,
    /// Per-request latencies, sorted.
    pub latencies: Vec<Duration>,
}

impl LoadReport {
    /// Accepted operations per second.
    pub fn ops_per_second(&self) -> f64 {
        (self.batches * self.batch_trades) as f64 / self.elapsed.as_secs_f64()
    }

    /// The `q`-quantile latency.
    pub fn quantile(&self, q: f64) -> Duration {
        let i = ((self.latencies.len() as f64 - 1.0) * q).round() as usize;
        self.latencies[i]
    }
}

/// Posts a body; returns the status code.
///
/// # Errors
/// A string on connection failure or a malformed response.
pub fn post(addr: SocketAddr, body: &[u8]) -> Result<u16, String> {
    post_with_reply(addr, body).map(|(status, _)| status)
}

/// [`post`], with the response body (a receipt or a problem) as text.
///
/// # Errors
/// Connection failures and unreadable responses, as text.
pub fn post_with_reply(addr: SocketAddr, body: &[u8]) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    write!(
        s,
        "POST /v1/batches HTTP/1.1\r\nHost: poe\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    s.write_all(body).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).map_err(|e| e.to_string())?;
    let status = std::str::from_utf8(out.get(9..12).ok_or("short response")?)
        .map_err(|e| e.to_string())?
        .parse()
        .map_err(|_| "bad status".to_string())?;
    let text = String::from_utf8_lossy(&out);
    let reply = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Ok((status, reply))
}

/// Runs `rollups` clients concurrently, each submitting `batches` batches of `batch_trades`
/// operations (after one funding batch, not timed), against a fresh service on loopback.
///
/// # Errors
/// A string if the service cannot start or a batch is not accepted.
pub fn run(rollups: usize, batches: usize, batch_trades: usize) -> Result<LoadReport, String> {
    let dir = std::env::temp_dir().join(format!(
        "poe-bench-load-{}-{batch_trades}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let clients: Vec<_> = (0..rollups)
        .map(|i| client(&format!("load-{i}"), 100 + i as u64, Scheme::Keccak256))
        .collect();
    let intake = Intake::create(
        registry(&clients.iter().collect::<Vec<_>>()),
        &dir.join("intake.redb"),
    )
    .map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = poe_api::AppState::new(
        intake,
        poe_api::ApiConfig {
            max_body_bytes: 256 << 20,
            max_inflight: 2 * rollups,
            ..poe_api::ApiConfig::default()
        },
    )
    // The operations are stamped from T0 on: accept them on a clock that agrees (intake
    // refuses operations more than a day older than their acceptance).
    .with_clock(std::sync::Arc::new(|| T0 + 60_000_000));
    let server = runtime.spawn(poe_api::run(listener, state, async {
        let _ = stopped.await;
    }));

    // Pre-build every body so that only the service is timed.
    let mut work: Vec<Vec<Vec<u8>>> = Vec::new();
    for mut c in clients {
        let mut bodies = vec![c.next_batch(&realistic_ops(64, 1, T0), "groth16", b"opaque")];
        for b in 0..batches {
            let start = T0 + 1_000 + (b * batch_trades) as u64;
            let ops: Vec<CommittedOp> = (0..batch_trades)
                .map(|i| {
                    let (buyer, seller) = (1 + (i % 50) as u32, 1 + ((i + 7) % 50) as u32);
                    let seller = if seller == buyer {
                        1 + (seller % 50)
                    } else {
                        seller
                    };
                    op(
                        &format!("T-{b}-{i}"),
                        Operation::Trade {
                            buyer,
                            seller,
                            instrument: (i % 2) as u32,
                            qty: 1,
                            price: 3,
                            buyer_fee: 1,
                            seller_fee: 1,
                            timestamp_us: start + i as u64,
                        },
                    )
                })
                .collect();
            bodies.push(c.next_batch(&ops, "groth16", b"opaque"));
        }
        work.push(bodies);
    }
    for w in &work {
        if post(addr, &w[0])? != 202 {
            return Err("funding batch refused".into());
        }
    }
    let started = Instant::now();
    let handles: Vec<_> = work
        .into_iter()
        .map(|bodies| {
            std::thread::spawn(move || -> Result<Vec<Duration>, String> {
                let mut lat = Vec::new();
                for body in &bodies[1..] {
                    let t = Instant::now();
                    let code = post(addr, body)?;
                    if code != 202 {
                        return Err(format!("batch answered {code}"));
                    }
                    lat.push(t.elapsed());
                }
                Ok(lat)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for h in handles {
        latencies.extend(h.join().map_err(|_| "client thread panicked")??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let _ = stop.send(());
    let _ = runtime.block_on(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(LoadReport {
        batch_trades,
        batches: batches * rollups,
        elapsed,
        latencies,
    })
}
