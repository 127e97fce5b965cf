//! `poe demo`: the main job on the embedded default, with progress bars.

use std::path::PathBuf;
use std::time::Instant;

use crate::{bar, preset};

pub(crate) struct Bars {
    bar: Option<indicatif::ProgressBar>,
}

impl poe_aggregator::demo::DemoProgress for Bars {
    fn phase(&mut self, name: &str, total: u64) {
        let b = bar(total, "ops");
        b.set_message(name.to_string());
        self.bar = Some(b);
    }

    fn advance(&mut self, done: u64) {
        if let Some(b) = &self.bar {
            b.set_position(done);
        }
    }

    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

pub(crate) fn demo(
    ops: usize,
    batch_ops: usize,
    p: &str,
    dir: Option<PathBuf>,
    seed: u64,
) -> Result<(), String> {
    let config = preset(p)?;
    println!(
        "poe demo: {ops} operations on 3 rollups (keccak256, poseidon-bn254, poseidon-felt252), {batch_ops}-op batches, {p} security ({} bits)",
        config.security_bits()
    );
    let t = Instant::now();
    let r = poe_aggregator::demo::run(
        &poe_aggregator::demo::DemoConfig {
            ops,
            batch_ops,
            config,
            dir,
            seed,
        },
        &mut Bars { bar: None },
    )?;
    println!("audit of {} ({}):", r.day, r.bundle.display());
    for l in &r.audit_lines {
        println!("  {l}");
    }
    let rate = |n: u64, s: f64| n as f64 / s.max(1e-9);
    println!();
    println!(
        "| {:<34} | {:>26} |",
        "replayed day (UTC)",
        r.day.to_string()
    );
    println!("|{:-<36}|{:->28}|", "", "");
    let rows = [
        ("operations (trades)", format!("{} ({})", r.ops, r.trades)),
        ("batches", r.batches.to_string()),
        (
            "intake over HTTP",
            format!("{:.1} s, {:.0} ops/s", r.intake_s, rate(r.ops, r.intake_s)),
        ),
        (
            "day close (bundle + root proof)",
            format!("{:.1} s (root proof {:.1} s)", r.close_s, r.root_prove_s),
        ),
        (
            "root proof",
            format!("{:.0} KB", r.root_proof_bytes as f64 / 1024.0),
        ),
        ("root proof verify", format!("{:.1} ms", r.root_verify_ms)),
        ("bundle", format!("{:.2} MB", r.bundle_bytes as f64 / 1e6)),
        (
            "audit (all rows, rollup proofs)",
            format!("{:.1} s", r.audit_s),
        ),
        (
            "audit",
            if r.audit_passed {
                "PASS".into()
            } else {
                "FAIL".into()
            },
        ),
        ("total", format!("{:.1} s", t.elapsed().as_secs_f64())),
    ];
    for (k, v) in rows {
        println!("| {k:<34} | {v:>26} |");
    }
    println!();
    println!("check it yourself: poe audit {}", r.bundle.display());
    // bundle = DIR/archive/days/DAY
    if let Some(dir) = r.bundle.ancestors().nth(3) {
        let d = dir.display();
        println!(
            "explore it:        poe serve --config {d}/poe.toml --data {d} --archive {d}/archive --no-pipeline   (then open http://127.0.0.1:8080/)"
        );
    }
    if r.audit_passed {
        Ok(())
    } else {
        Err("the demo's audit failed".into())
    }
}
