//! The golden bundles. `tests/fixtures/bundle_v1/`: a real day (three rollups, nine batches,
//! production day proof, a `poe/day-root/v1` root proof) written by poe 0.1.0.
//! `tests/fixtures/bundle_v2/`: a small real day (one rollup, two batches) with a
//! `poe/day-root/v2` root proof — day tree plus a batch-validity segment — and batch-validity
//! leaf proofs, at the `compact` preset to keep the files small. Whatever changes in the code,
//! these bundles must keep auditing — an auditor's archive outlives the operator's software.
//! `tests/fixtures/bundle_v3/`: the same day with a `poe/day-root/v3` root proof (its segment a
//! batch-validity v3 proof in a shape class). `tests/fixtures/bundle_v4/`: the same day with a
//! `poe/day-root/v4` root proof (one recursive proof at the standard presets) and its
//! `root.samples`, leaf proofs included. `tests/fixtures/bundle_v5/`: the same day as today's
//! code writes it: a `poe/day-root/v5` root proof (its segment a batch-validity v4 proof, every
//! state root proven) and no leaf proofs.
//!
//! bundle_v1 to bundle_v4 are frozen. Regenerate v5 (only for a deliberate format change,
//! with a new version directory):
//! `cargo test -p poe-tests --test bundle_fixture -- --ignored regenerate_golden_bundle_v5`.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{day, poe_binary, scratch};
use poe_archive::audit::CheckKind;
use poe_archive::{audit, AuditOptions, LocalDir};
use poe_circle_stark::config::SecurityConfig;
use poe_circle_stark::day::root::RootProof;
use poe_ingest::commitment::Scheme;
use poe_ingest::intake::{Intake, Outcome};
use poe_ingest::registry::Registry;
use poe_ingest::testkit::{client, realistic_ops, registry_toml, T0};

fn fixture() -> PathBuf {
    fixture_v("bundle_v1")
}

fn fixture_v(version: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(version)
        .join("days")
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

/// The full audit of a golden bundle: it passes, the proof checks ran and passed; returns
/// the root-proof check's detail.
fn audits_in_full(version: &str) -> String {
    let report = audit(
        &LocalDir::new(fixture_v(version)),
        &AuditOptions::default(),
        &mut |_, _| {},
    );
    let failed: Vec<_> = report.checks.iter().filter(|c| !c.passed).collect();
    assert!(report.passed(), "{failed:#?}");
    for kind in [
        CheckKind::RootProof,
        CheckKind::StateRoots,
        CheckKind::ProofFiles,
        CheckKind::Signatures,
    ] {
        assert!(
            report.checks.iter().any(|c| c.kind == kind && c.passed),
            "{kind} did not run"
        );
    }
    report
        .checks
        .iter()
        .find(|c| c.kind == CheckKind::RootProof)
        .map(|c| c.detail.clone())
        .expect("the root proof is checked")
}

#[test]
fn golden_v2_bundle_still_audits_in_full() {
    let root = audits_in_full("bundle_v2");
    assert!(root.contains("poe/day-root/v2"), "{root}");
}

#[test]
fn golden_v2_root_proof_is_canonical_and_has_its_segment() {
    let bytes = std::fs::read(fixture_v("bundle_v2").join("root.proof")).unwrap();
    let root = RootProof::from_bytes(&bytes).unwrap();
    assert_eq!(root.to_bytes(), bytes);
    assert_eq!(root.segments.len(), 1);
    assert_eq!(
        (root.segments[0].first_seq, root.segments[0].last_seq),
        (1, 2)
    );
}

/// One rollup, two batches of four operations, accepted during [`day`].
fn small_day(data: &std::path::Path) -> Intake {
    let mut c = client("aurora", 1, Scheme::Keccak256);
    let registry = Registry::parse(&registry_toml(&[&c])).unwrap();
    let mut intake = Intake::create(registry, &data.join("intake.redb")).unwrap();
    for batch in 0..2u64 {
        let ops = realistic_ops(4, 21 + batch, T0 + batch * 10_000_000);
        let body = c.next_batch(&ops, "groth16", format!("aurora-{batch}").as_bytes());
        assert!(matches!(
            intake.submit(&body, T0 + (batch + 1) * 60_000_000).unwrap(),
            Outcome::Accepted(_)
        ));
    }
    intake
}

#[test]
fn golden_v3_bundle_still_audits_in_full() {
    let root = audits_in_full("bundle_v3");
    assert!(root.contains("poe/day-root/v3"), "{root}");
}

#[test]
fn golden_v3_root_proof_is_canonical_and_its_segment_is_in_a_class() {
    use poe_circle_stark::day::root::RootFormat;
    use poe_circle_stark::proof::AirId;
    use poe_circle_stark::validity::{ComponentId, Shape, ShapeClass};
    let bytes = std::fs::read(fixture_v("bundle_v3").join("root.proof")).unwrap();
    let root = RootProof::from_bytes(&bytes).unwrap();
    assert_eq!(root.to_bytes(), bytes);
    assert_eq!(root.format, RootFormat::V3);
    assert_eq!(root.segments.len(), 1);
    let seg = &root.segments[0];
    assert_eq!((seg.first_seq, seg.last_seq), (1, 2));
    assert_eq!(seg.proof.air, AirId::BatchValidityV3);
    let mut logs = [0u32; ComponentId::ALL.len()];
    for (l, x) in logs.iter_mut().zip(&seg.proof.public_inputs) {
        *l = x.0;
    }
    // Eight operations: the smallest operation budget.
    let class = ShapeClass::of(&Shape(logs)).expect("a catalogued class");
    assert_eq!(class.log_ops, 8);
}

/// The root-proof check of golden bundle `version` as if published on `date`.
fn redated_root_check(version: &str, date: &str) -> poe_archive::audit::Check {
    let dir = scratch(&format!("{version}-redated")).join(day().to_string());
    std::fs::create_dir_all(&dir).unwrap();
    copy_dir(&fixture_v(version), &dir);
    let path = dir.join("manifest.json");
    let manifest = std::fs::read_to_string(&path).unwrap();
    let dated = manifest.replace(
        &format!("\"day\": \"{}\"", day()),
        &format!("\"day\": \"{date}\""),
    );
    assert_ne!(dated, manifest);
    std::fs::write(&path, dated).unwrap();
    let report = audit(
        &LocalDir::new(&dir),
        &AuditOptions::default(),
        &mut |_, _| {},
    );
    report
        .checks
        .into_iter()
        .find(|c| c.kind == CheckKind::RootProof)
        .unwrap()
}

#[test]
fn golden_v3_bundle_dated_after_v4_is_a_refused_downgrade() {
    // The v3 bundle as if published for a day from which v4 is required: the auditor refuses
    // the older format by name before verifying anything (the re-dated manifest fails too).
    let root = redated_root_check("bundle_v3", "2026-12-15");
    assert!(
        !root.passed
            && root
                .detail
                .contains("root.proof is a poe/day-root/v3 root proof")
            && root
                .detail
                .contains("days from 2026-12-14 on need poe/day-root/v4")
            && root.detail.contains("refused downgrade"),
        "{root:?}"
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn golden_v4_bundle_still_audits_in_full() {
    let root = audits_in_full("bundle_v4");
    assert!(
        root.contains("poe/day-root/v4: one proof over 1 segments")
            && root.contains("keys derived from root.samples"),
        "{root}"
    );
}

#[test]
fn golden_v4_root_proof_is_canonical() {
    use poe_circle_stark::day::recursive::{RecursionPresets, RecursiveRoot, RootSamples};
    let dir = fixture_v("bundle_v4");
    let bytes = std::fs::read(dir.join("root.proof")).unwrap();
    let root = RecursiveRoot::from_bytes(&bytes).unwrap();
    assert_eq!(root.to_bytes(), bytes);
    assert_eq!(root.presets(), RecursionPresets::standard());
    assert_eq!(root.segments.len(), 1);
    assert_eq!(root.segments[0].class.log_ops, 8);
    let samples = std::fs::read(dir.join("root.samples")).unwrap();
    assert_eq!(
        RootSamples::from_bytes(&samples).unwrap().to_bytes(),
        samples
    );
}

#[test]
fn golden_v4_bundle_dated_after_v5_is_a_refused_downgrade() {
    // The v4 bundle as if published for a day from which v5 is required.
    let root = redated_root_check("bundle_v4", "2026-12-22");
    assert!(
        !root.passed
            && root
                .detail
                .contains("root.proof is a poe/day-root/v4 root proof")
            && root
                .detail
                .contains("days from 2026-12-21 on need poe/day-root/v5")
            && root.detail.contains("refused downgrade"),
        "{root:?}"
    );
}

#[test]
fn golden_v5_bundle_still_audits_in_full_without_leaf_proofs() {
    let root = audits_in_full("bundle_v5");
    assert!(
        root.contains("poe/day-root/v5: one proof over 1 segments")
            && root.contains("keys derived from root.samples")
            && root.contains("state roots proven: every one"),
        "{root}"
    );
    assert!(!fixture_v("bundle_v5").join("leaf-proofs").exists());
}

#[test]
fn golden_v5_root_proof_is_canonical_and_its_segment_states_every_root() {
    use poe_circle_stark::day::recursive::{
        RecursionPresets, RecursiveFormat, RecursiveRoot, RootSamples,
    };
    use poe_circle_stark::proof::AirId;
    let dir = fixture_v("bundle_v5");
    let bytes = std::fs::read(dir.join("root.proof")).unwrap();
    let root = RecursiveRoot::from_bytes(&bytes).unwrap();
    assert_eq!(root.to_bytes(), bytes);
    assert_eq!(root.format, RecursiveFormat::V5);
    assert_eq!(root.presets(), RecursionPresets::standard());
    assert_eq!(root.segments.len(), 1);
    let samples = std::fs::read(dir.join("root.samples")).unwrap();
    let samples = RootSamples::from_bytes(&samples).unwrap();
    assert_eq!(samples.segments[0].1.air, AirId::BatchValidityV4);
}

#[test]
#[ignore = "rewrites the golden v5 bundle"]
fn regenerate_golden_bundle_v5() {
    let dir = scratch("golden-v5");
    let intake = small_day(&dir);
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/bundle_v5");
    let _ = std::fs::remove_dir_all(&target);
    poe_aggregator::day::close_day(
        &intake,
        &LocalDir::new(&target),
        day(),
        SecurityConfig::compact(),
        &mut |_| {},
    )
    .unwrap();
}
