//! A day end to end: three rollups submit through intake, the day is closed into a bundle with
//! its day proof, `poe audit` passes it, and a tampered bundle fails naming the cause.

mod common;

use std::process::Command;

use common::{day, poe_binary, scratch, submit_day};
use poe_archive::{LocalDir, Stage};
use poe_circle_stark::config::SecurityConfig;
use poe_circle_stark::venue::Operation;
use serde_json::Value;

#[test]
fn closed_day_audits_and_a_tampered_bundle_does_not() {
    let dir = scratch("day-close");
    let (intake, _) = submit_day(&dir, 120);
    let archive = LocalDir::new(dir.join("archive"));
    let mut stages = Vec::new();
    let closed = poe_aggregator::day::close_day(
        &intake,
        &archive,
        day(),
        SecurityConfig::production(),
        &mut |s| stages.push(s),
    )
    .unwrap();
    assert!(closed.summary.written);
    assert_eq!(stages.last(), Some(&Stage::Done));
    let s = &closed.summary.statement;
    assert_eq!(s.n_batches, 9, "the late batch belongs to the next day");
    assert_eq!(s.n_ops, 9 * 120);
    assert_eq!(s.rollups.len(), 3);

    let bundle = dir.join("archive/days").join(day().to_string());
    let out = Command::new(poe_binary())
        .arg("audit")
        .arg(&bundle)
        .arg("--json")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["passed"], true);

    // The audit's notional is recomputed from the rows; compare with the operations submitted.
    let accepted = intake
        .accepted_between(day().start_us(), day().next().start_us())
        .unwrap();
    for (i, name) in ["aurora", "borealis", "cygnus"].iter().enumerate() {
        let micro: u128 = accepted
            .iter()
            .filter(|b| b.rollup_id == i as u32 + 1)
            .flat_map(|b| b.submission.ops.iter())
            .map(|o| match o.op {
                Operation::Trade { qty, price, .. } => u128::from(qty) * u128::from(price),
                _ => 0,
            })
            .sum();
        let fig = &report["rollups"][i];
        assert_eq!(fig["rollup"], *name);
        assert_eq!(
            fig["notional"],
            format!("{}.{:06}", micro / 1_000_000, micro % 1_000_000)
        );
    }

    // Closing again leaves the bundle as it is.
    let again = poe_aggregator::day::close_day(
        &intake,
        &archive,
        day(),
        SecurityConfig::production(),
        &mut |_| {},
    )
    .unwrap();
    assert!(!again.summary.written);
    assert_eq!(again.summary.statement, closed.summary.statement);

    // One byte flipped in a trades file.
    let part = bundle.join("trades/rollup=borealis/part-0000.parquet");
    let mut bytes = std::fs::read(&part).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&part, bytes).unwrap();
    let out = Command::new(poe_binary())
        .arg("audit")
        .arg(&bundle)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.contains("FAIL manifest")
            && l.contains("trades/rollup=borealis/part-0000.parquet")),
        "{stdout}"
    );
    assert!(stdout.contains("PASS root-proof"), "{stdout}");
}

#[test]
fn open_day_cannot_be_closed_from_the_command_line() {
    let today = poe_archive::Day::of_us(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64,
    );
    let out = Command::new(poe_binary())
        .args(["close-day", &today.to_string(), "--config", "/nonexistent"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has not ended"));
}
