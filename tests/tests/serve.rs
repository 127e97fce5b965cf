//! `poe serve` as an operator runs it: SIGTERM drains and exits cleanly, what was accepted is
//! there after a restart, and a store that is gone or emptied is never silently started over.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use poe_ingest::commitment::Scheme;
use poe_ingest::testkit::{client, funding_at, registry_toml, wall_clock_us};

#[test]
fn sigterm_drains_and_exits_cleanly() {
    let dir = std::env::temp_dir().join(format!("poe-serve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let c = client("term", 4, Scheme::Keccak256);
    let config = dir.join("poe.toml");
    std::fs::write(&config, registry_toml(&[&c])).unwrap();
    let bin = common::poe_binary();
    let mut child = Command::new(&bin)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--data")
        .arg(dir.join("data"))
        .arg("--init")
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("poe serving on http://127.0.0.1:"),
        "{line}"
    );
    // Let it accept a batch first, so there is something to keep.
    let addr: std::net::SocketAddr = line
        .split("http://")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mut c = c;
    let body = c.next_batch(&funding_at(wall_clock_us()), "groth16", b"p");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    use std::io::{Read, Write};
    write!(s, "POST /v1/batches HTTP/1.1\r\nHost: poe\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).unwrap();
    s.write_all(&body).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 202"), "{resp}");

    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "poe serve did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status}");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("shutting down"), "{stderr}");
    assert!(
        stderr.contains("created a new, empty intake store"),
        "{stderr}"
    );
    // The structured log (tracing, JSON lines by default): every line an object with a level;
    // one line per submission with its rollup, inside the request's span (its request id, the
    // one the response carried), and one line per response.
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.iter().all(|l| l["level"].is_string()), "{stderr}");
    let submit = lines
        .iter()
        .find(|l| l["target"] == "poe::submit")
        .expect("a submission line");
    assert_eq!(submit["level"], "INFO");
    assert_eq!(submit["fields"]["status"], 202);
    assert_eq!(submit["fields"]["rollup"], "term");
    let request_id = submit["span"]["request_id"].as_str().unwrap();
    assert!(
        resp.to_ascii_lowercase()
            .contains(&format!("x-request-id: {request_id}")),
        "{resp}"
    );
    assert!(lines.iter().any(|l| l["span"]["request_id"] == request_id
        && l["fields"]["message"] == "finished processing request"));
    // The shutdown left a snapshot at the head: the next start replays no batch.
    let intake = poe_ingest::intake::Intake::open(
        poe_ingest::registry::Registry::load(&config).unwrap(),
        &dir.join("data/intake.redb"),
    )
    .unwrap();
    let how = &intake.rebuilt()[0];
    assert_eq!((how.from_seq, how.replayed), (1, 0), "{how:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn poe(args: &[&std::ffi::OsStr]) -> (bool, String) {
    let bin = common::poe_binary();
    let out = Command::new(bin)
        .args(args)
        .args(["--listen", "127.0.0.1:0", "--no-pipeline"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn serve_refuses_a_store_truncated_to_zero_bytes_and_init_will_not_overwrite_it() {
    let dir = std::env::temp_dir().join(format!("poe-serve-zero-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let config = dir.join("poe.toml");
    std::fs::write(
        &config,
        registry_toml(&[&client("zero", 4, Scheme::Keccak256)]),
    )
    .unwrap();
    let store = data.join("intake.redb");
    std::fs::write(&store, b"").unwrap();
    for init in [false, true] {
        let mut args = vec![
            "serve".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
            "--data".as_ref(),
            data.as_os_str(),
        ];
        if init {
            args.push("--init".as_ref());
        }
        let (ok, stderr) = poe(&args);
        assert!(!ok, "poe serve (init: {init}) started over a 0-byte store");
        assert!(
            stderr.contains(&store.display().to_string()),
            "names the file: {stderr}"
        );
        assert_eq!(
            std::fs::metadata(&store).unwrap().len(),
            0,
            "left as it was"
        );
    }
    // No store at all: refused too, until --init says so.
    std::fs::remove_file(&store).unwrap();
    let (ok, stderr) = poe(&[
        "serve".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--data".as_ref(),
        data.as_os_str(),
    ]);
    assert!(!ok && stderr.contains("--init"), "{stderr}");
    assert!(!store.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Settings come from the environment as well as from flags; a flag wins.
#[test]
fn settings_come_from_the_environment_and_flags_win() {
    let bin = common::poe_binary();
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let out = Command::new(&bin)
            .arg("serve")
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let from_env = run(&[("POE_CONFIG", "/nonexistent/from-env.toml")], &[]);
    assert!(
        from_env.contains("/nonexistent/from-env.toml"),
        "{from_env}"
    );
    let flag_wins = run(
        &[("POE_CONFIG", "/nonexistent/from-env.toml")],
        &["--config", "/nonexistent/from-flag.toml"],
    );
    assert!(
        flag_wins.contains("/nonexistent/from-flag.toml") && !flag_wins.contains("from-env"),
        "{flag_wins}"
    );
    let bad = run(&[("POE_LOG_FORMAT", "xml")], &[]);
    assert!(
        bad.contains("invalid value 'xml' for '--log-format"),
        "{bad}"
    );
}
