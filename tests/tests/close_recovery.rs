//! Recovery of a day close: `poe close-day` killed at arbitrary points (leaf proving, Parquet
//! writing, root proving, publishing) and run again ends with a bundle byte-identical to an
//! uninterrupted run, and never leaves a half-written day visible. The same for `poe serve`'s
//! day pipeline, which closes ended days by itself.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{day, poe_binary, scratch, spawn_serve, submit_day};

fn close(config: &Path, data: &Path, archive: &Path) -> std::process::Child {
    Command::new(poe_binary())
        .arg("close-day")
        .arg(day().to_string())
        .arg("--config")
        .arg(config)
        .arg("--data")
        .arg(data)
        .arg("--archive")
        .arg(archive)
        .args(["--preset", "testing"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn files(root: &Path) -> Vec<(String, Vec<u8>)> {
    let storage = poe_archive::LocalDir::new(root);
    poe_archive::Storage::list(&storage, "")
        .unwrap()
        .into_iter()
        .map(|(p, _)| {
            let bytes = std::fs::read(root.join(&p)).unwrap();
            (p, bytes)
        })
        .collect()
}

#[test]
fn killed_day_close_resumes_to_an_identical_bundle() {
    let dir = scratch("close-recovery");
    let (intake, toml) = submit_day(&dir, 200);
    drop(intake); // close-day opens the store itself
    let config = dir.join("poe.toml");
    std::fs::write(&config, toml).unwrap();

    let reference = dir.join("reference");
    assert!(close(&config, &dir, &reference).wait().unwrap().success());

    let archive = dir.join("archive");
    let mut kills = 0;
    for delay_ms in [20u64, 60, 120, 200, 300, 450, 600, 800] {
        let mut child = close(&config, &dir, &archive);
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
        // Whatever the moment, a day directory that exists is complete.
        let published = archive.join("days").join(day().to_string());
        if published.exists() {
            assert!(published.join("statement.json").exists());
            assert!(published.join("root.proof").exists());
        }
    }
    assert!(
        kills >= 2,
        "the close finished before most kills; only {kills} landed"
    );
    assert!(close(&config, &dir, &archive).wait().unwrap().success());

    let ours = files(&archive.join("days"));
    let theirs = files(&reference.join("days"));
    assert!(
        !ours.iter().any(|(p, _)| p.starts_with(".staging")),
        "staging left behind"
    );
    assert_eq!(
        ours.iter().map(|(p, _)| p).collect::<Vec<_>>(),
        theirs.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    for ((p, a), (_, b)) in ours.iter().zip(&theirs) {
        assert!(a == b, "{p} differs from the uninterrupted run");
    }
}

fn serve(config: &Path, data: &Path, archive: &Path) -> (std::process::Child, String) {
    spawn_serve([
        "--config".as_ref(),
        config.as_os_str(),
        "--data".as_ref(),
        data.as_os_str(),
        "--archive".as_ref(),
        archive.as_os_str(),
        "--preset".as_ref(),
        "testing".as_ref(),
        "--close-grace-s".as_ref(),
        "0".as_ref(),
    ])
}

#[test]
fn killed_service_pipeline_resumes_to_identical_bundles() {
    let dir = scratch("pipeline-recovery");
    let (intake, toml) = submit_day(&dir, 200);
    drop(intake);
    let config = dir.join("poe.toml");
    std::fs::write(&config, toml).unwrap();
    // Both days have ended (2026-11-18 and the late batch's 11-19): the service proves their
    // leaves and closes them as soon as it starts.
    let days = [day(), day().next()];
    let reference = dir.join("reference");
    for d in days {
        let ok = Command::new(poe_binary())
            .arg("close-day")
            .arg(d.to_string())
            .arg("--config")
            .arg(&config)
            .arg("--data")
            .arg(&dir)
            .arg("--archive")
            .arg(&reference)
            .args(["--preset", "testing"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    let archive = dir.join("archive");
    let published =
        |d: &poe_archive::Day| archive.join(format!("days/{d}/statement.json")).exists();
    let mut kills = 0;
    for delay_ms in [10u64, 40, 90, 160, 250, 400, 600] {
        let (mut child, _) = serve(&config, &dir, &archive);
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        if !days.iter().all(published) {
            kills += 1;
        }
    }
    assert!(
        kills >= 2,
        "the pipeline finished before most kills; only {kills} landed"
    );

    let (mut child, addr) = serve(&config, &dir, &archive);
    let start = std::time::Instant::now();
    while !days.iter().all(published) {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "days not closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let listed: serde_json::Value = serde_json::from_slice(
        &poe_aggregator::fetch::get(&format!("http://{addr}"), "/v1/days").unwrap(),
    )
    .unwrap();
    assert_eq!(listed["days"].as_array().unwrap().len(), 2);
    child.kill().unwrap();
    child.wait().unwrap();

    assert!(
        std::fs::read_dir(dir.join("leaves"))
            .unwrap()
            .next()
            .is_none(),
        "leaf proofs of published days are cleared"
    );
    let ours = files(&archive.join("days"));
    let theirs = files(&reference.join("days"));
    assert_eq!(
        ours.iter().map(|(p, _)| p).collect::<Vec<_>>(),
        theirs.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    for ((p, a), (_, b)) in ours.iter().zip(&theirs) {
        assert!(a == b, "{p} differs from `poe close-day`'s");
    }
}
