//! `poe audit` over several days: each day audited, and each rollup's chain of seqs and state
//! roots checked across them; a day left out of a chain, or audited twice, fails by name.

mod common;

use std::process::Command;

use common::{day, poe_binary, scratch, submit_day_with_clients};
use poe_archive::LocalDir;
use poe_circle_stark::config::SecurityConfig;
use poe_ingest::intake::Outcome;
use poe_ingest::testkit::realistic_ops;
use serde_json::Value;

fn audit(dirs: &[std::path::PathBuf]) -> (bool, Value) {
    let out = Command::new(poe_binary())
        .arg("audit")
        .args(dirs)
        .args(["--json", "--min-security-bits", "0", "--no-key-cache"])
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), doc)
}

#[test]
fn days_chain_across_and_a_day_left_out_breaks_the_chain() {
    let dir = scratch("audit-days");
    let (mut intake, _, [mut aurora, ..]) = submit_day_with_clients(&dir, 40);
    // submit_day leaves aurora's seq 4 on the next day; seq 5 lands the day after.
    let third = day().next().next();
    let ops = realistic_ops(40, 123, third.start_us() + 1_000_000);
    let body = aurora.next_batch(&ops, "groth16", b"third");
    assert!(matches!(
        intake.submit(&body, third.start_us() + 5_000_000).unwrap(),
        Outcome::Accepted(_)
    ));
    let archive = LocalDir::new(dir.join("archive"));
    let days = [day(), day().next(), third];
    for d in days {
        poe_aggregator::day::close_day(
            &intake,
            &archive,
            d,
            SecurityConfig::testing(),
            &mut |_| {},
        )
        .unwrap();
    }
    let path = |d: poe_archive::Day| dir.join("archive/days").join(d.to_string());

    let (ok, doc) = audit(&days.map(path));
    assert!(ok, "{doc:#}");
    assert_eq!(doc["schema"], "poe-audit-days/1");
    assert_eq!(doc["verdict"], "PASS");
    assert_eq!(doc["days_audited"], 3);
    let chains = doc["continuity"]["rollups"].as_array().unwrap();
    let aurora_chain = chains.iter().find(|c| c["rollup_id"] == 1).unwrap();
    assert_eq!(
        (
            &aurora_chain["first_seq"],
            &aurora_chain["last_seq"],
            &aurora_chain["days"]
        ),
        (&Value::from(1), &Value::from(5), &Value::from(3))
    );
    assert_eq!(aurora_chain["chained"], true);
    // Each day's document carries its facts as fields.
    let first = &doc["days"][0];
    assert_eq!(first["schema"], "poe-audit/1");
    assert_eq!(first["n_batches"], 9);
    assert_eq!(first["root_air"], "poe/day-root/v5");
    assert!(first["day_root"].as_str().unwrap().len() == 64);
    assert!(first["security_bits"].as_u64().is_some());
    assert!(first["timings"]["root_verify_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(first["rollup_spans"].as_array().unwrap().len(), 3);

    // The middle day left out: aurora's seq 4 is missing between the two.
    let (ok, doc) = audit(&[path(days[0]), path(days[2])]);
    assert!(!ok);
    assert_eq!(doc["verdict"], "FAIL");
    assert_eq!(doc["continuity"]["passed"], false);
    let problems = doc["continuity"]["problems"].to_string();
    assert!(
        problems.contains("rollup 1")
            && problems.contains("starts at seq 5")
            && problems.contains("ended at seq 3"),
        "{problems}"
    );
    assert!(problems.contains("starts from state root"), "{problems}");
    let aurora_chain = doc["continuity"]["rollups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["rollup_id"] == 1)
        .unwrap()
        .clone();
    assert_eq!(aurora_chain["chained"], false);
    // Every day passed on its own: the chain is what failed.
    assert!(doc["days"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["passed"] == true));

    let (ok, doc) = audit(&[path(days[0]), path(days[0])]);
    assert!(!ok);
    assert!(doc["continuity"]["problems"]
        .to_string()
        .contains("audited twice"));
}
