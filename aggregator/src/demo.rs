//! `poe demo`: a day of options trading on three rollups, end to end, in one process.
//!
//! poe's real service runs in-process on loopback over a temporary directory; three rollups
//! (Keccak, BN254-Poseidon and Starknet-Poseidon commitments) submit a generated day — BTC and
//! ETH calls and puts across strikes and three expiries, premiums from Black–Scholes on a
//! simulated spot path, deposits, withdrawals, and the settlement of the expiry that falls
//! inside the day — over HTTP as rollups would. Then poe proves the leaves, closes the day into
//! its bundle and day proof, and audits the bundle.
//!
//! The day replayed is *yesterday* (UTC), on a simulated clock that the server's intake reads,
//! so that the day has ended and can be closed, exactly as `poe close-day` requires.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use poe_archive::{audit, AuditOptions, Day, LocalDir};
use poe_circle_stark::config::{SecurityConfig, VerifierPolicy};
use poe_circle_stark::venue::{Instrument, Operation, OptionKind, Venue};
use poe_ingest::client::RollupClient;
use poe_ingest::commitment::{CommittedOp, Scheme};
use poe_ingest::registry::Registry;
use poe_ingest::short_string::ShortString;
use poe_ingest::testkit::{op, registry_toml_with};
use starknet_crypto::Felt;

use crate::day::{close_input, day_input, day_venues};

/// µs per hour.
const HOUR: u64 = 3_600_000_000;
/// Accounts per rollup (1..=ACCOUNTS; 0 is the fee account).
const ACCOUNTS: u32 = 200;

/// What to run.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Operations in the day, across the three rollups.
    pub ops: usize,
    /// Operations per batch.
    pub batch_ops: usize,
    /// Security of the leaf and day proofs.
    pub config: SecurityConfig,
    /// Working directory (intake store and archive); a fresh temporary one if `None`.
    pub dir: Option<PathBuf>,
    /// RNG seed of the generated day.
    pub seed: u64,
}

/// What happened, for the summary table.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// The replayed day.
    pub day: Day,
    /// Where the bundle is.
    pub bundle: PathBuf,
    /// Operations accepted.
    pub ops: u64,
    /// Trades among them.
    pub trades: u64,
    /// Batches accepted.
    pub batches: usize,
    /// Seconds submitting over HTTP (intake: parse, signature, commitment, re-execution, fsync).
    pub intake_s: f64,
    /// Seconds closing the day (bundle + day proof).
    pub close_s: f64,
    /// Of which the day proof.
    pub root_prove_s: f64,
    /// Root proof bytes.
    pub root_proof_bytes: u64,
    /// Root proof verification, ms (from the audit).
    pub root_verify_ms: f64,
    /// Bytes of the bundle.
    pub bundle_bytes: u64,
    /// Seconds of the full audit (every row, every rollup proof).
    pub audit_s: f64,
    /// Whether every audit check passed.
    pub audit_passed: bool,
    /// The audit's lines.
    pub audit_lines: Vec<String>,
}

/// A small deterministic PRNG (SplitMix64): the demo day is the same for the same seed (and
/// `trace_diff`'s mutations are reproducible from theirs).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u = self.unit().max(1e-12);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// Standard normal CDF (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7).
fn norm_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-z * z).exp();
    if x >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

/// Black–Scholes premium per contract (zero rates), floored at intrinsic value.
pub fn black_scholes(call: bool, spot: f64, strike: f64, years: f64, vol: f64) -> f64 {
    let intrinsic = if call {
        (spot - strike).max(0.0)
    } else {
        (strike - spot).max(0.0)
    };
    if years <= 0.0 {
        return intrinsic;
    }
    let sd = vol * years.sqrt();
    let d1 = ((spot / strike).ln() + 0.5 * sd * sd) / sd;
    let d2 = d1 - sd;
    let p = if call {
        spot * norm_cdf(d1) - strike * norm_cdf(d2)
    } else {
        strike * norm_cdf(-d2) - spot * norm_cdf(-d1)
    };
    p.max(intrinsic)
}

struct Listing {
    name: String,
    instrument: Instrument,
    /// Index of the underlying's spot path.
    underlying: usize,
    strike_usd: f64,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

/// BTC and ETH, three expiries (08:00 UTC of the day itself, a week and a month later), three
/// strikes around spot, calls and puts: 36 instruments. Per lot (10^-4 contract), micro-units.
fn listings(day: Day) -> Vec<Listing> {
    let mut out = Vec::new();
    for (u, (sym, strikes)) in [
        ("BTC", [55_000.0, 60_000.0, 65_000.0]),
        ("ETH", [2_800.0, 3_000.0, 3_200.0]),
    ]
    .iter()
    .enumerate()
    {
        for days_out in [0u32, 7, 30] {
            let expiry_day = Day(day.0 + days_out);
            let expiry_us = expiry_day.start_us() + 8 * HOUR;
            let (y, m, d) = expiry_day.ymd();
            for &k in strikes {
                for call in [true, false] {
                    let strike = (k * 100.0) as u64;
                    out.push(Listing {
                        name: format!(
                            "{sym}-{d}{}{:02}-{k}-{}",
                            MONTHS[m as usize - 1],
                            y % 100,
                            if call { "C" } else { "P" }
                        ),
                        instrument: Instrument {
                            underlying: u as u32 + 1,
                            expiry_us,
                            strike,
                            kind: if call {
                                OptionKind::Call
                            } else {
                                OptionKind::Put
                            },
                            // A call's payoff is capped at its strike; a put's collateral is its
                            // strike.
                            collateral: strike,
                        },
                        underlying: u,
                        strike_usd: k,
                    });
                }
            }
        }
    }
    out
}

/// Spot per minute of the day for BTC and ETH: geometric Brownian motion.
fn spot_paths(rng: &mut Rng) -> [Vec<f64>; 2] {
    let minute_years: f64 = 1.0 / (365.0 * 24.0 * 60.0);
    [(60_000.0, 0.6), (3_000.0, 0.75)].map(|(s0, vol): (f64, f64)| {
        let mut s = s0;
        (0..=24 * 60)
            .map(|_| {
                let now = s;
                s *= (vol * minute_years.sqrt() * rng.normal() - 0.5 * vol * vol * minute_years)
                    .exp();
                now
            })
            .collect()
    })
}

/// Cash settlement of every instrument in `expiring` at the spot of `expiry`, a µs after it.
fn settlements(
    expiring: &[usize],
    listings: &[Listing],
    spots: &[Vec<f64>; 2],
    expiry: u64,
    tag: &str,
) -> Vec<CommittedOp> {
    let minute = ((expiry % (24 * HOUR)) / 60_000_000) as usize;
    expiring
        .iter()
        .map(|&e| {
            let spot = spots[listings[e].underlying][minute];
            op(
                &format!("{tag}-S{e}"),
                Operation::Settle {
                    instrument: e as u32,
                    price: (spot * 100.0).round() as u64,
                    timestamp_us: expiry + 1,
                },
            )
        })
        .collect()
}

/// One rollup's operations of the day, in time order.
fn rollup_day(
    rng: &mut Rng,
    day: Day,
    listings: &[Listing],
    spots: &[Vec<f64>; 2],
    n: usize,
    tag: &str,
) -> Vec<CommittedOp> {
    let start = day.start_us();
    let mut out = Vec::with_capacity(n);
    for a in 1..=ACCOUNTS.min(n as u32 / 20).max(2) {
        out.push(op(
            &format!("{tag}-D{a}"),
            Operation::Deposit {
                account: a,
                // 100M USD: every account can post collateral for its whole day of trading.
                amount: 100_000_000_000_000,
                timestamp_us: start + u64::from(a),
            },
        ));
    }
    let accounts = out.len() as u64;
    let expiry = start + 8 * HOUR;
    let expiring: Vec<usize> = (0..listings.len())
        .filter(|&i| listings[i].instrument.expiry_us == expiry)
        .collect();
    let remaining = n.saturating_sub(out.len() + expiring.len());
    let span = 23 * HOUR;
    let mut settled = false;
    for i in 0..remaining {
        let ts = start + HOUR / 2 + span * i as u64 / remaining.max(1) as u64;
        if !settled && ts > expiry {
            // The morning expiry settles at the 08:00 spot.
            out.extend(settlements(&expiring, listings, spots, expiry, tag));
            settled = true;
        }
        if rng.below(100) < 3 {
            out.push(op(
                &format!("{tag}-W{i}"),
                Operation::Withdraw {
                    account: 1 + rng.below(accounts) as u32,
                    amount: 1_000_000 * (1 + rng.below(1_000)),
                    timestamp_us: ts,
                },
            ));
            continue;
        }
        let live: Vec<usize> = (0..listings.len())
            .filter(|&j| listings[j].instrument.expiry_us > ts)
            .collect();
        let j = live[rng.below(live.len() as u64) as usize];
        let l = &listings[j];
        let minute = ((ts - start) / 60_000_000) as usize;
        let spot = spots[l.underlying][minute.min(24 * 60)];
        let years = (l.instrument.expiry_us - ts) as f64 / (365.0 * 24.0 * HOUR as f64);
        let vol = if l.underlying == 0 { 0.6 } else { 0.75 };
        let premium = black_scholes(
            l.instrument.kind == OptionKind::Call,
            spot,
            l.strike_usd,
            years,
            vol,
        );
        let price = ((premium * 100.0).round() as u64).max(1);
        let qty = 1_000 * (1 + rng.below(20));
        let fee = (qty * price * 3 / 10_000).max(1);
        let buyer = 1 + rng.below(accounts) as u32;
        let seller = 1 + (u64::from(buyer) + rng.below(accounts - 1)) as u32 % accounts as u32;
        out.push(op(
            &format!("{tag}-T{i}"),
            Operation::Trade {
                buyer,
                seller,
                instrument: j as u32,
                qty,
                price,
                buyer_fee: fee,
                seller_fee: fee,
                timestamp_us: ts,
            },
        ));
    }
    if !settled {
        out.extend(settlements(&expiring, listings, spots, expiry, tag));
    }
    out
}

/// Progress callbacks of a demo run.
pub trait DemoProgress {
    /// A phase begins: `total` units (operations).
    fn phase(&mut self, name: &str, total: u64);
    /// Units done in the current phase.
    fn advance(&mut self, done: u64);
    /// The current phase ended.
    fn finish(&mut self);
}

/// Runs the demo.
///
/// # Errors
/// Any failure, as text (a refused batch is a bug in the generator or in poe).
pub fn run(cfg: &DemoConfig, progress: &mut dyn DemoProgress) -> Result<DemoReport, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_micros() as u64;
    let day = Day(Day::of_us(now).0 - 1);
    let dir = match &cfg.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("poe-demo-{}", std::process::id())),
    };
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;

    let mut rng = Rng(cfg.seed);
    let listings = listings(day);
    let spots = spot_paths(&mut rng);
    let instruments: Vec<Instrument> = listings.iter().map(|l| l.instrument.clone()).collect();
    let schemes = [
        ("aurora-options", Scheme::Keccak256),
        ("borealis-bn254", Scheme::PoseidonBn254),
        ("cygnus-starknet", Scheme::PoseidonFelt252),
    ];
    let mut clients: Vec<RollupClient> = schemes
        .iter()
        .enumerate()
        .map(|(i, (name, scheme))| RollupClient {
            name: ShortString::try_from(*name).expect("short"),
            private_key: Felt::from(0x5eed_0000_u64 + i as u64) * Felt::from(0x1_0000_0001_u64),
            scheme: *scheme,
            instrument_names: listings.iter().map(|l| l.name.clone()).collect(),
            venue: Venue::new(instruments.clone()),
            seq: 0,
        })
        .collect();
    let table: Vec<(String, Instrument)> = listings
        .iter()
        .map(|l| (l.name.clone(), l.instrument.clone()))
        .collect();
    let toml = registry_toml_with(&clients.iter().collect::<Vec<_>>(), &table);
    let registry = Registry::parse(&toml).map_err(|e| e.to_string())?;
    // The registry beside the store, so that `poe serve` can open the demo's day afterwards.
    std::fs::write(dir.join("poe.toml"), &toml).map_err(|e| format!("poe.toml: {e}"))?;
    let intake = poe_ingest::intake::Intake::create(registry, &dir.join("intake.redb"))
        .map_err(|e| e.to_string())?;
    let archive = Arc::new(LocalDir::new(dir.join("archive")));
    let clock = Arc::new(AtomicU64::new(day.start_us()));
    let api = poe_api::ApiConfig::default();
    let state = poe_api::AppState::new(intake, api)
        .with_archive(archive.clone())
        .with_clock({
            let clock = clock.clone();
            Arc::new(move || clock.load(Ordering::SeqCst))
        });

    // The service, on loopback, in its own runtime.
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .map_err(|e| e.to_string())?;
    let addr: SocketAddr = listener.local_addr().map_err(|e| e.to_string())?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(poe_api::run(listener, state.clone(), async {
        let _ = stopped.await;
    }));

    // The day's operations, cut into batches, submitted in time order across rollups. A batch
    // also ends at each expiry, as a venue seals its batch there: intake takes trades on an
    // instrument only up to an hour after it expires (specs/api.md §4).
    let per_rollup = cfg.ops / clients.len();
    let mut expiries: Vec<u64> = listings.iter().map(|l| l.instrument.expiry_us).collect();
    expiries.sort_unstable();
    expiries.dedup();
    let mut batches: Vec<(u64, usize, Vec<CommittedOp>)> = Vec::new();
    for (i, c) in clients.iter().enumerate() {
        let ops = rollup_day(
            &mut rng,
            day,
            &listings,
            &spots,
            per_rollup,
            c.name.as_str(),
        );
        let mut chunk: Vec<CommittedOp> = Vec::new();
        for o in ops {
            let ts = o.op.timestamp_us();
            let crosses = chunk.last().is_some_and(|prev| {
                let p = prev.op.timestamp_us();
                expiries.iter().any(|&e| p < e && e <= ts)
            });
            if chunk.len() == cfg.batch_ops.max(1) || crosses {
                let last = chunk.last().expect("non-empty").op.timestamp_us();
                batches.push((last, i, std::mem::take(&mut chunk)));
            }
            chunk.push(o);
        }
        if let Some(last) = chunk.last().map(|o| o.op.timestamp_us()) {
            batches.push((last, i, chunk));
        }
    }
    batches.sort_by_key(|(last, i, _)| (*last, *i));
    let total_ops: u64 = batches.iter().map(|b| b.2.len() as u64).sum();
    let trades = batches
        .iter()
        .flat_map(|b| b.2.iter())
        .filter(|o| matches!(o.op, Operation::Trade { .. }))
        .count() as u64;
    progress.phase("intake (HTTP)", total_ops);
    let t = Instant::now();
    let mut done = 0u64;
    for (last, i, ops) in &batches {
        let proof = format!(
            "groth16 proof of {} batch {}",
            clients[*i].name,
            clients[*i].seq + 1
        );
        let body = clients[*i].next_batch(ops, "groth16", proof.as_bytes());
        // Accepted a second after its last operation, on the replayed day.
        let at = (last + 1_000_000).min(day.next().start_us() - 1);
        clock.fetch_max(at, Ordering::SeqCst);
        let (status, reply) = crate::load::post_with_reply(addr, &body)?;
        if status != 202 {
            return Err(format!(
                "{} batch {} refused with HTTP {status}: {reply}",
                clients[*i].name, clients[*i].seq
            ));
        }
        done += ops.len() as u64;
        progress.advance(done);
    }
    progress.finish();
    let intake_s = t.elapsed().as_secs_f64();

    // Read the day under the intake lock, then prove without it.
    let (input, mut venues) = state.with_intake(|i| {
        let input = day_input(i, day, cfg.config)?;
        let venues = day_venues(i, &input)?;
        Ok::<_, String>((input, venues))
    })?;
    // No leaf proofs: the v5 root proves every state root of the day itself.
    progress.phase("day proof", 1);
    let closed = close_input(
        input,
        &mut venues,
        archive.as_ref(),
        cfg.config,
        &mut |_| {},
        Instant::now(),
        None,
    )?;
    progress.finish();

    let bundle = dir.join("archive").join(&closed.summary.prefix);
    let policy = if cfg.config.security_bits() >= VerifierPolicy::default().min_security_bits {
        VerifierPolicy::default()
    } else {
        VerifierPolicy::insecure_for_tests()
    };
    progress.phase("audit", total_ops);
    let t = Instant::now();
    let report = audit(
        &LocalDir::new(&bundle),
        &AuditOptions {
            proof_only: false,
            leaves: true,
            policy,
            key_cache: None,
        },
        &mut |d, _| progress.advance(d),
    );
    progress.finish();
    let audit_s = t.elapsed().as_secs_f64();
    let _ = stop.send(());
    let _ = runtime.block_on(server);

    let root_verify_ms = report
        .checks
        .iter()
        .find(|c| c.name == "root-proof")
        .and_then(|c| {
            let ms = c.detail.split(" verified in ").nth(1)?;
            ms.split(' ').next()?.parse().ok()
        })
        .unwrap_or(f64::NAN);
    Ok(DemoReport {
        day,
        bundle,
        ops: total_ops,
        trades,
        batches: batches.len(),
        intake_s,
        close_s: closed.total_s,
        root_prove_s: closed.prove_s,
        root_proof_bytes: closed.summary.statement.root_proof_bytes,
        root_verify_ms,
        bundle_bytes: closed.summary.files.iter().map(|f| f.bytes).sum::<u64>()
            + closed.summary.statement.root_proof_bytes,
        audit_s,
        audit_passed: report.passed(),
        audit_lines: report
            .checks
            .iter()
            .map(|c| {
                format!(
                    "{} {:<28} {}",
                    if c.passed { "PASS" } else { "FAIL" },
                    c.name,
                    c.detail
                )
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn black_scholes_satisfies_put_call_parity_and_bounds() {
        let (s, k, t, v) = (60_000.0, 65_000.0, 30.0 / 365.0, 0.6);
        let c = black_scholes(true, s, k, t, v);
        let p = black_scholes(false, s, k, t, v);
        assert!((c - p - (s - k)).abs() < 1.0, "parity: {c} - {p}");
        assert!(c > 0.0 && c < s);
        assert_eq!(black_scholes(false, s, k, 0.0, v), 5_000.0);
        assert!((norm_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((norm_cdf(1.96) - 0.975).abs() < 1e-3);
    }
}
