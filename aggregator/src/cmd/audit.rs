//! `poe audit`: a day directory, or a day downloaded from a running service.

use std::path::PathBuf;
use std::time::Instant;

use crate::bar;

/// Version of `poe audit --json`'s document; bumped when a field changes meaning or goes.
const AUDIT_JSON_SCHEMA: &str = "poe-audit/1";

pub(crate) fn audit_from(
    from: &str,
    ca_cert: Option<&std::path::Path>,
    day: &str,
    keep: Option<PathBuf>,
    options: poe_archive::AuditOptions,
    json: bool,
) -> Result<(), String> {
    let day: poe_archive::Day = day.parse().map_err(|e| format!("--day: {e}"))?;
    let client = poe_aggregator::fetch::Fetcher::new(from, ca_cert)?;
    let temp = keep.is_none();
    let dir = keep.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("poe-audit-{day}-{}", std::process::id()))
    });
    let _ = std::fs::remove_dir_all(&dir);
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
        &client,
        &day.to_string(),
        &dir,
        options.proof_only,
        &samples,
        &mut |done, total| {
            pb.set_length(total as u64);
            pb.set_position(done as u64);
        },
    );
    pb.finish_and_clear();
    let result = fetched.and_then(|bytes| {
        if !json {
            println!(
                "downloaded {bytes} bytes of {day} from {from} in {:.2} s",
                t.elapsed().as_secs_f64()
            );
        }
        audit(&dir, options, json)
    });
    if temp {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

pub(crate) fn audit(
    dir: &std::path::Path,
    options: poe_archive::AuditOptions,
    json: bool,
) -> Result<(), String> {
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
    let report = poe_archive::audit(&storage, &options, &mut |done, total| {
        pb.set_length(total);
        pb.set_position(done);
    });
    pb.finish_and_clear();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "schema": AUDIT_JSON_SCHEMA,
                "day": report.day,
                "verdict": if report.passed() { "PASS" } else { "FAIL" },
                "passed": report.passed(),
                "checks": report.checks,
                "rollups": report.rollups,
                "seconds": start.elapsed().as_secs_f64(),
            }))
            .expect("serialisable")
        );
    } else {
        println!("audit of {} ({})", report.day, dir.display());
        for c in &report.checks {
            println!(
                "  {} {:<24} {}",
                if c.passed { "PASS" } else { "FAIL" },
                c.name,
                c.detail
            );
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
        let secs = start.elapsed().as_secs_f64();
        if failed.is_empty() {
            println!(
                "VERDICT PASS {}: {n} of {n} checks passed in {secs:.2} s",
                report.day
            );
        } else {
            println!(
                "VERDICT FAIL {}: {} of {n} checks failed ({}) in {secs:.2} s",
                report.day,
                failed.len(),
                failed.join(", ")
            );
        }
    }
    if report.passed() {
        Ok(())
    } else {
        let failed = report.checks.iter().filter(|c| !c.passed).count();
        Err(format!("audit failed: {failed} checks did not pass"))
    }
}
