//! The `poe` binary as a user runs it.

use std::process::Command;

fn poe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_poe"))
}

fn stdout_field(out: &str, key: &str) -> String {
    out.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l[key.len()..].split_whitespace().next())
        .unwrap_or_else(|| panic!("no {key:?} in output:\n{out}"))
        .to_string()
}

#[test]
fn prove_records_writes_a_proof_that_verify_proof_accepts_and_a_wrong_root_fails() {
    let dir = std::env::temp_dir().join(format!("poe-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let proof = dir.join("batch.proof");
    let out = poe()
        .args([
            "prove-records",
            "--ops",
            "100",
            "--preset",
            "testing",
            "--out",
        ])
        .arg(&proof)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout_field(&text, "records"), "100");
    assert_eq!(stdout_field(&text, "security"), "16");
    let root = stdout_field(&text, "data root");
    assert_eq!(root.len(), 64);

    let verify = |root: &str, min_bits: &str| {
        poe()
            .arg("verify-proof")
            .arg(&proof)
            .args([
                "--root",
                root,
                "--records",
                "100",
                "--min-security-bits",
                min_bits,
            ])
            .output()
            .unwrap()
    };
    let ok = verify(&root, "0");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("proof OK"));

    let mut wrong = root.clone().into_bytes();
    wrong[0] = if wrong[0] == b'0' { b'1' } else { b'0' };
    let bad = verify(std::str::from_utf8(&wrong).unwrap(), "0");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("public inputs differ"));

    let weak = verify(&root, "100");
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr)
        .contains("16 bits of conjectured security, minimum is 100"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unknown_preset_is_a_clear_error() {
    let out = poe()
        .args(["prove-records", "--ops", "4", "--preset", "fast"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown preset \"fast\""));
}

#[test]
fn malformed_root_is_a_clear_error() {
    let out = poe()
        .args([
            "verify-proof",
            "/nonexistent",
            "--root",
            "zz",
            "--records",
            "1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("reading /nonexistent"));
}

#[test]
fn prove_batch_round_trips_through_verify_batch_and_a_foreign_statement_fails() {
    let dir = std::env::temp_dir().join(format!("poe-cli-batch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prove = |seed: &str, name: &str| {
        let out = poe()
            .args([
                "prove-batch",
                "--ops",
                "200",
                "--accounts",
                "16",
                "--preset",
                "testing",
            ])
            .args(["--seed", seed, "--out"])
            .arg(dir.join(format!("{name}.proof")))
            .arg("--statement")
            .arg(dir.join(format!("{name}.statement")))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let text = prove("1", "a");
    assert!(text.contains("200 ("), "{text}");
    prove("2", "b");
    let verify = |proof: &str, statement: &str| {
        poe()
            .arg("verify-batch")
            .arg(dir.join(proof))
            .arg("--statement")
            .arg(dir.join(statement))
            .args(["--min-security-bits", "0"])
            .output()
            .unwrap()
    };
    let ok = verify("a.proof", "a.statement");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("proof OK: 200 operations"));
    let bad = verify("a.proof", "b.statement");
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("batch-validity statement differs in data_root"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
