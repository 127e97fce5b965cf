//! `poe submit` against a real server: a batch from JSON, the next from CSV (the history
//! replayed), a dry run only, a history that does not match the server's head refused
//! before anything is sent, and an instrument listed with `poe list-instruments`.

mod common;

use std::ffi::OsStr;
use std::process::Command;

use common::{poe_binary, scratch, spawn_serve};

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_rollup_submits_from_json_then_csv_with_its_history() {
    let dir = scratch("submit");
    // Test material: a registry whose one rollup's key is public.
    assert!(Command::new(poe_binary())
        .args(["sample-batches", "--batches", "1", "--dir"])
        .arg(&dir)
        .status()
        .unwrap()
        .success());
    let key = dir.join("key");
    std::fs::write(&key, "0x5a4d504c455f4b45\n").unwrap();
    let (child, addr) = spawn_serve([
        OsStr::new("--config"),
        dir.join("poe.toml").as_os_str(),
        OsStr::new("--data"),
        dir.join("data").as_os_str(),
        OsStr::new("--init"),
        OsStr::new("--no-pipeline"),
    ]);
    let _server = Server(child);
    let now = poe_ingest::testkit::wall_clock_us();
    std::fs::write(
        dir.join("ops.json"),
        serde_json::json!([
            {"type": "deposit", "id": "D-1", "account": 1, "amount": "1000000", "timestamp_us": now.to_string()},
            {"type": "deposit", "id": "D-2", "account": 2, "amount": "1000000", "timestamp_us": (now + 1).to_string()},
        ])
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("ops.csv"),
        format!(
            "type,id,account,amount,buyer,seller,instrument,qty,price,buyer_fee,seller_fee,timestamp_us\n\
             trade,T-1,,,1,2,BTC-SAMPLE-100-C,3,40,1,1,{}\n\
             withdraw,W-1,1,500,,,,,,,,{}\n",
            now + 2,
            now + 3
        ),
    )
    .unwrap();
    let history = dir.join("history.jsonl");
    let submit = |ops: &str, extra: &[&str]| {
        let out = Command::new(poe_binary())
            .args([
                "submit",
                "--server",
                &format!("http://{addr}"),
                "--rollup",
                "sample-options",
            ])
            .arg("--config")
            .arg(dir.join("poe.toml"))
            .arg("--key")
            .arg(&key)
            .arg("--ops")
            .arg(dir.join(ops))
            .arg("--history")
            .arg(&history)
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };

    let (ok, out) = submit("ops.json", &["--dry-run"]);
    assert!(ok && out.contains("would be accepted"), "{out}");
    assert!(!history.exists(), "a dry run records nothing");

    let (ok, out) = submit("ops.json", &[]);
    assert!(
        ok && out.contains("HTTP 202") && out.contains("seq 1"),
        "{out}"
    );
    let (ok, out) = submit("ops.csv", &[]);
    assert!(
        ok && out.contains("HTTP 202") && out.contains("seq 2"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(&history).unwrap().lines().count(),
        2
    );

    // The head the server has, from the file that was replayed: the client and poe agree.
    let head: serde_json::Value = serde_json::from_slice(
        &poe_aggregator::fetch::get(&format!("http://{addr}"), "/v1/rollups/sample-options/head")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(head["seq"], 2);

    // A history that lost a batch replays to seq 1: refused before anything is sent.
    let lines: Vec<String> = std::fs::read_to_string(&history)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    std::fs::write(&history, format!("{}\n", lines[0])).unwrap();
    let (ok, out) = submit("ops.csv", &[]);
    assert!(!ok && out.contains("the server's head is seq 2"), "{out}");

    // A CSV with a column the wire form does not have is named.
    std::fs::write(dir.join("bad.csv"), "type,id,acount\ndeposit,D-9,1\n").unwrap();
    std::fs::write(&history, lines.join("\n") + "\n").unwrap();
    let (ok, out) = submit("bad.csv", &[]);
    assert!(!ok && out.contains("unknown column \"acount\""), "{out}");

    // A strike listed through the API (`poe list-instruments`), for tomorrow.
    let expiry = now + 30 * 86_400_000_000;
    std::fs::write(
        dir.join("listing.json"),
        serde_json::json!([{"name": "BTC-SAMPLE-120-C", "underlying": 1,
            "expiry_us": expiry.to_string(), "strike": "120", "kind": "call", "collateral": "60"}])
        .to_string(),
    )
    .unwrap();
    let list = || {
        let out = Command::new(poe_binary())
            .args(["list-instruments", "--server", &format!("http://{addr}")])
            .args(["--rollup", "sample-options", "--key"])
            .arg(&key)
            .arg("--file")
            .arg(dir.join("listing.json"))
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = list();
    assert!(
        ok && out.contains("HTTP 202") && out.contains("at positions 2.."),
        "{out}"
    );
    let (ok, out) = list();
    assert!(
        ok && out.contains("already listed") && out.contains("at positions 2.."),
        "{out}"
    );
    // `poe submit` knows the name from the server, and the server refuses it until tomorrow.
    std::fs::write(
        dir.join("early.csv"),
        format!(
            "type,id,account,amount,buyer,seller,instrument,qty,price,buyer_fee,seller_fee,timestamp_us\n\
             trade,T-2,,,1,2,BTC-SAMPLE-120-C,1,40,1,1,{}\n",
            now + 4
        ),
    )
    .unwrap();
    let (ok, out) = submit("early.csv", &[]);
    assert!(
        !ok && out.contains("dry run: HTTP 422") && out.contains("rule_violation"),
        "{out}"
    );
}
