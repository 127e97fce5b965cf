//! A day end to end: three rollups submit through intake, the day is closed into a bundle with
//! its day proof, `poe audit` passes it, and a tampered bundle fails naming the cause.

mod common;

use std::process::Command;

use common::{day, poe_binary, scratch, submit_day};
use poe_archive::{LocalDir, Stage};
use poe_circle_stark::config::SecurityConfig;
use poe_circle_stark::day::statement::BatchStatement;
use poe_circle_stark::encoding::Record;
use poe_circle_stark::hash::merkle::InclusionProof;
use poe_circle_stark::hash::poseidon2::{hash_elements, Digest, Domain};
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
    // The root proof re-proves every batch: one segment per rollup (360 operations each, far
    // below the capacity), each a batch-validity v4 proof in its shape class (every root
    // between its batches stated), verified by a W node; two M nodes pair the three; the final
    // node is root.proof. No leaf proof is made or published.
    assert_eq!(s.air, "poe/day-root/v5");
    assert!(s.validity.is_none());
    let tree = s.tree.as_ref().expect("a v5 root proof reports its tree");
    assert_eq!((tree.w_nodes, tree.m_nodes), (3, 2));
    assert_eq!(tree.segments.len(), 3);
    assert_eq!(tree.segments.iter().map(|g| g.n_ops).sum::<u64>(), 9 * 120);
    assert_eq!(tree.security_bits, 104);
    assert!(
        s.root_proof_bytes < 150_000,
        "root.proof {} bytes",
        s.root_proof_bytes
    );

    let bundle = dir.join("archive/days").join(day().to_string());
    assert!(!bundle.join("leaf-proofs").exists());
    // The close's own figures, beside the bundle (the explorer plots them), not in it.
    let close_report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join(format!("archive/closes/{}.json", day()))).unwrap(),
    )
    .unwrap();
    assert_eq!(close_report["n_ops"], 9 * 120);
    assert_eq!(close_report["root_proof_bytes"], s.root_proof_bytes);
    assert_eq!(close_report["prove_s"], closed.prove_s);
    assert_eq!(close_report["total_s"], closed.total_s);
    assert!(closed.prove_s > 0.0 && closed.total_s >= closed.prove_s);
    let keys = dir.join("key-cache");
    let audit = |extra: &[&str]| {
        let out = Command::new(poe_binary())
            .arg("audit")
            .arg(&bundle)
            .arg("--key-cache")
            .arg(&keys)
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = audit(&["--json"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["passed"], true);
    assert_eq!(report["schema"], "poe-audit/1");
    assert_eq!(report["verdict"], "PASS");
    let root_check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "root-proof")
        .unwrap()
        .to_string();
    assert!(
        root_check.contains("poe/day-root/v5: one proof over 3 segments")
            && root_check.contains("tree of 3 W and 2 M nodes")
            && root_check.contains("keys derived from root.samples")
            && root_check.contains(", cached"),
        "{root_check}"
    );

    // The auditor's constant-cost path: keys from its cache, root.samples not even present.
    let samples = std::fs::read(bundle.join("root.samples")).unwrap();
    std::fs::remove_file(bundle.join("root.samples")).unwrap();
    let (code, stdout, stderr) = audit(&["--proof-only"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("PASS root-proof") && l.contains("keys from the key cache")),
        "{stdout}"
    );
    // Without the cache and without the samples, nothing gives the keys: a FAIL naming them.
    let out = Command::new(poe_binary())
        .arg("audit")
        .arg(&bundle)
        .arg("--no-key-cache")
        .arg("--proof-only")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("FAIL root-proof") && l.contains("root.samples")),
        "{stdout}"
    );
    std::fs::write(bundle.join("root.samples"), samples).unwrap();

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
    let report_again: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join(format!("archive/closes/{}.json", day()))).unwrap(),
    )
    .unwrap();
    assert_eq!(
        report_again, close_report,
        "a repeated close keeps the first close's figures"
    );

    // One byte flipped in a trades file.
    let part = bundle.join("trades/rollup=borealis/part-0000.parquet");
    let mut bytes = std::fs::read(&part).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&part, bytes).unwrap();
    let (code, stdout, _) = audit(&[]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.contains("FAIL manifest")
            && l.contains("trades/rollup=borealis/part-0000.parquet")),
        "{stdout}"
    );
    assert!(stdout.contains("PASS root-proof"), "{stdout}");
    // The last line is the verdict, naming what failed.
    let verdict = stdout.lines().last().unwrap_or_default();
    assert!(
        verdict.starts_with(&format!("VERDICT FAIL {}: 1 of ", day()))
            && verdict.contains("checks failed (manifest)"),
        "{stdout}"
    );

    // Inclusion proofs over HTTP: a batch of the day leads to the day root; the late batch's day
    // is not published yet.
    let ids: Vec<String> = accepted.iter().map(|b| hex::encode(b.batch_id)).collect();
    let late = intake
        .accepted_between(day().next().start_us(), day().next().next().start_us())
        .unwrap();
    let late_id = hex::encode(late[0].batch_id);
    let state = poe_api::AppState::new(intake, poe_api::ApiConfig::default())
        .with_archive(std::sync::Arc::new(LocalDir::new(dir.join("archive"))));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    runtime.spawn(poe_api::run(listener, state, std::future::pending()));
    let base = format!("http://{addr}");
    let days: Value =
        serde_json::from_slice(&poe_aggregator::fetch::get(&base, "/v1/days").unwrap()).unwrap();
    let listed = &days["days"][0];
    assert_eq!(listed["root_air"], "poe/day-root/v5");
    assert_eq!(listed["segments"], 3);
    assert_eq!(listed["tree"]["m_nodes"], 2);
    assert_eq!(listed["tree"]["security_bits"], 104);
    assert_eq!(
        listed["root_proof_bytes"],
        closed.summary.statement.root_proof_bytes
    );
    // An auditor downloading the day: the first proof-only audit fetches root.samples and
    // derives the keys; the next, its cache filled, fetches only the root proof and the
    // statements.
    let fresh = dir.join("auditor-keys");
    let from = |extra: &[&str]| {
        let out = Command::new(poe_binary())
            .args([
                "audit",
                "--from",
                &base,
                "--day",
                &day().to_string(),
                "--proof-only",
            ])
            .arg("--key-cache")
            .arg(&fresh)
            .args(extra)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        let line = stdout
            .lines()
            .find(|l| l.starts_with("downloaded "))
            .unwrap_or_default()
            .to_string();
        let bytes: u64 = line
            .split(' ')
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{stdout}"));
        (bytes, stdout)
    };
    let (first, stdout) = from(&[]);
    assert!(
        stdout.contains("keys derived from root.samples"),
        "{stdout}"
    );
    let (second, stdout) = from(&[]);
    assert!(stdout.contains("keys from the key cache"), "{stdout}");
    let samples = closed.summary.statement.root_samples_bytes.unwrap();
    assert_eq!(
        first - second,
        samples,
        "the second download skips root.samples"
    );
    let day_root = closed.summary.statement.day_root.clone();
    for id in [&ids[0], &ids[4], &ids[8]] {
        let body =
            poe_aggregator::fetch::get(&base, &format!("/v1/batches/{id}/inclusion")).unwrap();
        let inc: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(inc["day_root"], day_root.as_str());
        let st = &inc["statement"];
        let digest = |k: &str| Digest::from_hex(st[k].as_str().unwrap()).unwrap();
        let statement = BatchStatement {
            rollup_id: st["rollup_id"].as_u64().unwrap() as u32,
            seq: st["seq"].as_u64().unwrap(),
            pre_state_root: digest("pre_state_root"),
            post_state_root: digest("post_state_root"),
            data_root: digest("data_root"),
            instruments_root: digest("instruments_root"),
            n_ops: st["n_ops"].as_u64().unwrap() as u32,
        };
        let leaf = hash_elements(Domain::RecordLeaf, &statement.encode());
        let proof = InclusionProof {
            index: inc["leaf_index"].as_u64().unwrap(),
            siblings: inc["siblings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| Digest::from_hex(d.as_str().unwrap()).unwrap())
                .collect(),
        };
        assert_eq!(proof.root_from(&leaf).to_hex(), day_root);
        let mut forged = statement;
        forged.n_ops += 1;
        let forged_leaf = hash_elements(Domain::RecordLeaf, &forged.encode());
        assert_ne!(proof.root_from(&forged_leaf).to_hex(), day_root);
    }
    let err =
        poe_aggregator::fetch::get(&base, &format!("/v1/batches/{late_id}/inclusion")).unwrap_err();
    assert!(
        err.contains("HTTP 404") && err.contains("not_yet_included"),
        "{err}"
    );

    // The operator drops the last rollup's segment from the root's table: the auditor's
    // coverage check names the batches left uncovered (with the keys from its cache).
    let root_file = bundle.join("root.proof");
    let mut root = poe_circle_stark::day::recursive::RecursiveRoot::from_bytes(
        &std::fs::read(&root_file).unwrap(),
    )
    .unwrap();
    root.segments.pop();
    std::fs::write(&root_file, root.to_bytes()).unwrap();
    let (code, stdout, _) = audit(&["--proof-only"]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.contains("FAIL root-proof")
            && l.contains("segments of rollup 3: expected a segment from seq")),
        "{stdout}"
    );
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
