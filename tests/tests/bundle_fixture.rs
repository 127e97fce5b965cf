//! The golden bundle `tests/fixtures/bundle_v1/`: a real day (three rollups, nine batches,
//! production day proof) written by poe 0.1.0. Whatever changes in the code, this bundle must
//! keep auditing — an auditor's archive outlives the operator's software version.
//!
//! Regenerate (only for a deliberate format change, with a new version directory):
//! `cargo test -p poe-tests --test bundle_fixture -- --ignored`.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{day, poe_binary, scratch, submit_day};
use poe_archive::{audit, AuditOptions, LocalDir};
use poe_circle_stark::config::SecurityConfig;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/bundle_v1/days")
        .join(day().to_string())
}

#[test]
fn golden_bundle_still_audits() {
    let report = audit(
        &LocalDir::new(fixture()),
        &AuditOptions::default(),
        &mut |_, _| {},
    );
    let failed: Vec<_> = report.checks.iter().filter(|c| !c.passed).collect();
    assert!(report.passed(), "{failed:#?}");
    assert_eq!(report.rollups.len(), 3);
    assert!(report
        .checks
        .iter()
        .any(|c| c.kind == poe_archive::audit::CheckKind::RootProof));
}

#[test]
fn golden_bundle_passes_the_command_line_audit() {
    let out = Command::new(poe_binary())
        .arg("audit")
        .arg(fixture())
        .arg("--proof-only")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("PASS root-proof"), "{stdout}");
}

#[test]
#[ignore = "rewrites the golden bundle"]
fn regenerate_golden_bundle() {
    let dir = scratch("golden");
    let (intake, _) = submit_day(&dir, 64);
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/bundle_v1");
    let _ = std::fs::remove_dir_all(&target);
    poe_aggregator::day::close_day(
        &intake,
        &LocalDir::new(&target),
        day(),
        SecurityConfig::production(),
        &mut |_| {},
    )
    .unwrap();
}
