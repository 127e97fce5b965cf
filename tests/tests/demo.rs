//! `poe demo` end to end at test size: three rollups over HTTP, a settled expiry, the day
//! closed (a v5 root: no leaf proofs needed) and audited — and the bundle it leaves fails the
//! audit once tampered.

mod common;

use poe_aggregator::demo::{run, DemoConfig, DemoProgress};
use poe_archive::{audit, AuditOptions, LocalDir};
use poe_circle_stark::config::{SecurityConfig, VerifierPolicy};

struct Quiet(Vec<String>);

impl DemoProgress for Quiet {
    fn phase(&mut self, name: &str, _: u64) {
        self.0.push(name.to_string());
    }
    fn advance(&mut self, _: u64) {}
    fn finish(&mut self) {}
}

#[test]
fn demo_day_is_accepted_proven_closed_and_audited() {
    let dir = common::scratch("demo");
    let mut phases = Quiet(Vec::new());
    let report = run(
        &DemoConfig {
            ops: 1_500,
            batch_ops: 250,
            config: SecurityConfig::testing(),
            dir: Some(dir.clone()),
            seed: 7,
        },
        &mut phases,
    )
    .unwrap();
    assert!(report.audit_passed, "{:#?}", report.audit_lines);
    assert_eq!(phases.0, ["intake (HTTP)", "day proof", "audit"]);
    assert_eq!(report.ops, 1_500);
    assert!(report.trades > 1_000, "mostly trades: {}", report.trades);
    assert!(report.batches >= 6);
    // Every state root proven by the root proof, and no leaf proof in the bundle.
    assert!(
        report
            .audit_lines
            .iter()
            .any(|l| l.contains("state roots proven by the root proof")
                && l.contains("no leaf proof needed")),
        "{:#?}",
        report.audit_lines
    );
    assert!(!report.bundle.join("leaf-proofs").exists());

    // The settlement of the morning expiry is in the records.
    let part = std::fs::read_dir(report.bundle.join("trades/rollup=aurora-options"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let read = poe_archive::parquet_io::read(
        std::fs::read(&part).unwrap(),
        &poe_archive::records::trades_schema(),
    )
    .unwrap();
    let rows = poe_archive::records::trade_rows(&read.rows).unwrap();
    assert!(rows.iter().any(|r| r.op_kind == "settle"));
    assert!(rows.iter().any(|r| r.op_kind == "withdraw"));

    // Two rollup proofs swapped: each file's keccak-256 no longer matches its name.
    let proof_dir = report.bundle.join("rollup-proofs");
    let mut leaves: Vec<_> = std::fs::read_dir(&proof_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    leaves.sort();
    let a = std::fs::read(&leaves[0]).unwrap();
    let b = std::fs::read(&leaves[1]).unwrap();
    std::fs::write(&leaves[0], &b).unwrap();
    std::fs::write(&leaves[1], &a).unwrap();
    let r = audit(
        &LocalDir::new(&report.bundle),
        &AuditOptions {
            proof_only: false,
            leaves: true,
            policy: VerifierPolicy::insecure_for_tests(),
            key_cache: None,
        },
        &mut |_, _| {},
    );
    assert!(!r.passed());
    assert!(r.checks.iter().any(|c| !c.passed
        && c.kind == poe_archive::audit::CheckKind::ProofFiles
        && c.detail.contains("rollup-proofs/")
        && c.detail.contains("differs from its name")));
}
