//! `poe audit`: day directories, or days downloaded from a running service; several days are
//! also checked for continuity (each rollup's chain of seqs and state roots across them).

use std::path::{Path, PathBuf};
use std::time::Instant;

use poe_archive::{AuditOptions, AuditReport, Day};
use serde_json::{json, Value};

use crate::bar;

/// Version of `poe audit --json`'s document for one day; bumped when a field changes meaning
/// or goes (fields may be added).
const AUDIT_JSON_SCHEMA: &str = "poe-audit/1";
/// Version of the document for several days (their `poe-audit/1` documents and continuity).
const AUDIT_DAYS_JSON_SCHEMA: &str = "poe-audit-days/1";

/// One day's audit.
struct Audited {
    dir: PathBuf,
    report: AuditReport,
    seconds: f64,
}

/// `poe audit DIR…`.
pub(crate) fn audit(dirs: &[PathBuf], options: AuditOptions, json: bool) -> Result<(), String> {
    let mut audited = Vec::new();
    for dir in dirs {
        audited.push(audit_dir(dir, &options, json)?);
    }
    conclude(&audited, json)
}

/// `poe audit --from URL --day D…`: each day downloaded, then audited as `poe audit` would.
pub(crate) fn audit_from(
    from: &str,
    ca_cert: Option<&Path>,
    days: &[String],
    keep: Option<PathBuf>,
    options: AuditOptions,
    json: bool,
) -> Result<(), String> {
    let client = poe_aggregator::fetch::Fetcher::new(from, ca_cert)?;
    let days = expand_days(&client, days)?;
    let temp = keep.is_none();
    let root = keep
        .unwrap_or_else(|| std::env::temp_dir().join(format!("poe-audit-{}", std::process::id())));
    let result = (|| {
        let mut audited = Vec::new();
        for day in &days {
            // One day kept as --keep DIR itself (as before); several under DIR/DAY.
            let dir = if days.len() == 1 && !temp {
                root.clone()
            } else {
                root.join(day.to_string())
            };
            download(&client, from, *day, &dir, &options, json)?;
            audited.push(audit_dir(&dir, &options, json)?);
        }
        conclude(&audited, json)
    })();
    if temp {
        let _ = std::fs::remove_dir_all(&root);
    }
    result
}

/// `--day` values: days, or `FIRST..LAST` for every day the server has published in that span.
fn expand_days(
    client: &poe_aggregator::fetch::Fetcher,
    days: &[String],
) -> Result<Vec<Day>, String> {
    let mut out = Vec::new();
    for d in days {
        if let Some((first, last)) = d.split_once("..") {
            let first: Day = first.parse().map_err(|e| format!("--day {d}: {e}"))?;
            let last: Day = last.parse().map_err(|e| format!("--day {d}: {e}"))?;
            let listed: Value = serde_json::from_slice(&client.get("/v1/days")?)
                .map_err(|e| format!("/v1/days: {e}"))?;
            let before = out.len();
            out.extend(
                listed["days"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e["day"].as_str()?.parse::<Day>().ok())
                    .filter(|x| (first..=last).contains(x)),
            );
            if out.len() == before {
                return Err(format!("--day {d}: the server has published no day in it"));
            }
        } else {
            out.push(d.parse().map_err(|e| format!("--day {d}: {e}"))?);
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn download(
    client: &poe_aggregator::fetch::Fetcher,
    from: &str,
    day: Day,
    dir: &Path,
    options: &AuditOptions,
    json: bool,
) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    let pb = if json {
        indicatif::ProgressBar::hidden()
    } else {
        bar(0, "files")
    };
    pb.set_message("downloading");
    let t = Instant::now();
    // A proof-only audit whose key cache holds the root's keys does not need its samples.
    let samples = |root: &[u8]| {
        !options.proof_only
            || options.key_cache.as_deref().is_none_or(|cache| {
                poe_circle_stark::day::recursive::RecursiveRoot::from_bytes(root)
                    .ok()
                    .and_then(|r| poe_archive::audit::cached_keys(cache, &r))
                    .is_none()
            })
    };
    let fetched = poe_aggregator::fetch::download_day(
        client,
        &day.to_string(),
        dir,
        options.proof_only,
        &samples,
        &mut |done, total| {
            pb.set_length(total as u64);
            pb.set_position(done as u64);
        },
    );
    pb.finish_and_clear();
    let bytes = fetched?;
    if !json {
        println!(
            "downloaded {bytes} bytes of {day} from {from} in {:.2} s",
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn audit_dir(dir: &Path, options: &AuditOptions, json: bool) -> Result<Audited, String> {
    if !dir.join("manifest.json").exists() {
        return Err(format!(
            "{}: no manifest.json (expected a day directory, …/days/YYYY-MM-DD)",
            dir.display()
        ));
    }
    let storage = poe_archive::LocalDir::new(dir);
    let pb = if json {
        indicatif::ProgressBar::hidden()
    } else {
        bar(0, "rows")
    };
    pb.set_message("re-hashing");
    let start = Instant::now();
    let report = poe_archive::audit(&storage, options, &mut |done, total| {
        pb.set_length(total);
        pb.set_position(done);
    });
    pb.finish_and_clear();
    let audited = Audited {
        dir: dir.to_path_buf(),
        report,
        seconds: start.elapsed().as_secs_f64(),
    };
    if !json {
        print_day(&audited);
    }
    Ok(audited)
}

fn verdict(passed: bool) -> &'static str {
    if passed {
        "PASS"
    } else {
        "FAIL"
    }
}

fn print_day(a: &Audited) {
    let report = &a.report;
    println!("audit of {} ({})", report.day, a.dir.display());
    for c in &report.checks {
        println!("  {} {:<24} {}", verdict(c.passed), c.name, c.detail);
    }
    for r in &report.rollups {
        println!(
            "  rollup {:<20} {} batches, {} ops, {} trades, notional {}",
            r.rollup, r.batches, r.ops, r.trades, r.notional
        );
    }
    let failed: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name.as_str())
        .collect();
    let n = report.checks.len();
    if failed.is_empty() {
        println!(
            "VERDICT PASS {}: {n} of {n} checks passed in {:.2} s",
            report.day, a.seconds
        );
    } else {
        println!(
            "VERDICT FAIL {}: {} of {n} checks failed ({}) in {:.2} s",
            report.day,
            failed.len(),
            failed.join(", "),
            a.seconds
        );
    }
}

/// One day's `poe-audit/1` document: the verdict, the facts as fields, every check.
fn day_json(a: &Audited) -> Value {
    let r = &a.report;
    let f = &r.facts;
    let s = f.statement.as_ref();
    json!({
        "schema": AUDIT_JSON_SCHEMA,
        "day": r.day,
        "verdict": verdict(r.passed()),
        "passed": r.passed(),
        "day_root": s.map(|s| &s.day_root),
        "root_air": s.map(|s| &s.air),
        "n_batches": s.map(|s| s.n_batches),
        "n_ops": s.map(|s| s.n_ops),
        "root_proof_bytes": s.map(|s| s.root_proof_bytes),
        "security_bits": f.verifier.as_ref().map(|v| v.security_bits),
        "verifier": f.verifier,
        "segments": s.and_then(|s| {
            s.tree.as_ref().map(|t| json!(t.segments))
                .or_else(|| s.validity.as_ref().map(|v| json!(v.segments)))
        }),
        "tree": s.and_then(|s| s.tree.as_ref()).map(|t| json!({
            "log_rows": t.log_rows, "log_perm_rows": t.log_perm_rows, "w_nodes": t.w_nodes,
            "m_nodes": t.m_nodes, "presets": t.presets, "security_bits": t.security_bits,
        })),
        "rollup_spans": s.map(|s| &s.rollups),
        "timings": {
            "root_verify_ms": f.root_verify_ms,
            "keys_s": f.keys_s,
            "keys_from": f.keys_from,
            "total_s": a.seconds,
        },
        "statement": s,
        "checks": r.checks,
        "rollups": r.rollups,
        "seconds": a.seconds,
    })
}

/// A rollup's chain across the audited days.
#[derive(Debug, serde::Serialize)]
struct Chain {
    rollup_id: u32,
    first_day: String,
    last_day: String,
    first_seq: u64,
    last_seq: u64,
    days: usize,
    /// Every day of it started where the one before ended.
    chained: bool,
}

/// Continuity across days (`specs/archive.md` §6): every day passed, no day twice, and each
/// rollup's first batch on a day follows its last batch on the rollup's previous audited day —
/// the next seq, from the state root it ended on. Only statements the audit derived from the
/// bundles and checked against their root proofs are compared.
fn continuity(days: &[Audited]) -> (bool, Vec<String>, Vec<Chain>) {
    let mut problems = Vec::new();
    let mut chains: std::collections::BTreeMap<u32, (Chain, String)> = Default::default();
    let mut order: Vec<&Audited> = days.iter().collect();
    order.sort_by(|a, b| a.report.day.cmp(&b.report.day));
    for w in order.windows(2) {
        if w[0].report.day == w[1].report.day {
            problems.push(format!("{} audited twice", w[0].report.day));
        }
    }
    for a in &order {
        let Some(s) = a
            .report
            .facts
            .statement
            .as_ref()
            .filter(|_| a.report.passed())
        else {
            problems.push(format!("{}: not chained (its audit failed)", a.report.day));
            continue;
        };
        for span in &s.rollups {
            match chains.get_mut(&span.rollup_id) {
                Some((chain, post)) => {
                    chain.chained &=
                        span.first_seq == chain.last_seq + 1 && span.first_pre_state_root == *post;
                    if span.first_seq != chain.last_seq + 1 {
                        problems.push(format!(
                            "rollup {}: {} starts at seq {}, {} ended at seq {} (batches missing between them, or a day not audited)",
                            span.rollup_id, s.day, span.first_seq, chain.last_day, chain.last_seq
                        ));
                    }
                    if span.first_pre_state_root != *post {
                        problems.push(format!(
                            "rollup {}: {} starts from state root {}, {} ended on {}",
                            span.rollup_id, s.day, span.first_pre_state_root, chain.last_day, post
                        ));
                    }
                    chain.last_day.clone_from(&s.day);
                    chain.last_seq = span.last_seq;
                    chain.days += 1;
                    post.clone_from(&span.last_post_state_root);
                }
                None => {
                    chains.insert(
                        span.rollup_id,
                        (
                            Chain {
                                rollup_id: span.rollup_id,
                                first_day: s.day.clone(),
                                last_day: s.day.clone(),
                                first_seq: span.first_seq,
                                last_seq: span.last_seq,
                                days: 1,
                                chained: true,
                            },
                            span.last_post_state_root.clone(),
                        ),
                    );
                }
            }
        }
    }
    (
        problems.is_empty(),
        problems,
        chains.into_values().map(|(c, _)| c).collect(),
    )
}

fn conclude(days: &[Audited], json: bool) -> Result<(), String> {
    let all_passed = days.iter().all(|a| a.report.passed());
    if days.len() == 1 {
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(&day_json(&days[0])).expect("serialisable")
            );
        }
        return if all_passed {
            Ok(())
        } else {
            let failed = days[0].report.checks.iter().filter(|c| !c.passed).count();
            Err(format!("audit failed: {failed} checks did not pass"))
        };
    }
    let (chained, problems, chains) = continuity(days);
    let passed = all_passed && chained;
    let mut sorted: Vec<&Audited> = days.iter().collect();
    sorted.sort_by(|a, b| a.report.day.cmp(&b.report.day));
    let span = format!(
        "{}..{}",
        sorted[0].report.day,
        sorted[sorted.len() - 1].report.day
    );
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "schema": AUDIT_DAYS_JSON_SCHEMA,
                "verdict": verdict(passed),
                "passed": passed,
                "days_audited": days.len(),
                "first_day": sorted[0].report.day,
                "last_day": sorted[sorted.len() - 1].report.day,
                "continuity": {"passed": chained, "problems": problems, "rollups": chains},
                "days": sorted.iter().map(|a| day_json(a)).collect::<Vec<_>>(),
            }))
            .expect("serialisable")
        );
    } else {
        println!("continuity across {} days ({span})", days.len());
        for c in &chains {
            println!(
                "  {} rollup {:<5} seq {}..={} over {} days ({}..{}){}",
                verdict(c.chained),
                c.rollup_id,
                c.first_seq,
                c.last_seq,
                c.days,
                c.first_day,
                c.last_day,
                if c.chained {
                    ", seqs and state roots chained"
                } else {
                    ": broken (below)"
                }
            );
        }
        for p in &problems {
            println!("  FAIL {p}");
        }
        let failed_days: Vec<&str> = sorted
            .iter()
            .filter(|a| !a.report.passed())
            .map(|a| a.report.day.as_str())
            .collect();
        if passed {
            println!(
                "VERDICT PASS {span}: {} days passed, {} rollups chained across them",
                days.len(),
                chains.len()
            );
        } else {
            println!(
                "VERDICT FAIL {span}: {} of {} days failed{}; {} continuity problems",
                failed_days.len(),
                days.len(),
                if failed_days.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", failed_days.join(", "))
                },
                problems.len()
            );
        }
    }
    if passed {
        Ok(())
    } else {
        Err("audit failed".into())
    }
}
