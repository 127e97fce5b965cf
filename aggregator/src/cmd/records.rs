//! `poe prove-records`: a data-root proof of random records, for `verify-proof`.

use poe_aggregator::{batch, rss};
use std::path::PathBuf;

use crate::preset;

pub(crate) fn prove_records(
    ops: usize,
    p: &str,
    seed: u64,
    out: Option<PathBuf>,
    json: bool,
) -> Result<(), String> {
    let config = preset(p)?;
    if !json {
        eprintln!(
            "proving {ops} synthetic cash movements ({p}, {} bits)…",
            config.security_bits()
        );
    }
    let report = batch::run(ops, seed, config).map_err(|e| e.to_string())?;
    if let Some(path) = &out {
        std::fs::write(path, &report.proof)
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    let rss = rss::peak_rss_bytes().unwrap_or(0);
    if json {
        println!(
            "{{\"records\":{},\"permutations\":{},\"prove_s\":{:.4},\"verify_ms\":{:.3},\"proof_bytes\":{},\"peak_rss_bytes\":{},\"security_bits\":{}}}",
            report.statement.n_records,
            report.permutations,
            report.prove.as_secs_f64(),
            report.verify.as_secs_f64() * 1e3,
            report.proof_bytes,
            rss,
            config.security_bits()
        );
        return Ok(());
    }
    let (leaf_log, node_log) = report.log_rows;
    let rows = [
        ("records", report.statement.n_records.to_string()),
        ("data root", report.statement.root.to_hex()),
        ("Poseidon2 permutations", report.permutations.to_string()),
        (
            "trace",
            format!(
                "2^{leaf_log} leaf rows + 2^{node_log} node rows, {} columns",
                report.columns
            ),
        ),
        (
            "security",
            format!(
                "{} bits ({} queries, blowup 2^{}, {} PoW bits)",
                config.security_bits(),
                config.n_queries(),
                config.log_blowup(),
                config.pow_bits()
            ),
        ),
        (
            "prove",
            format!(
                "{:.2} s ({:.0} records/s)",
                report.prove.as_secs_f64(),
                report.records_per_second()
            ),
        ),
        (
            "verify",
            format!("{:.1} ms", report.verify.as_secs_f64() * 1e3),
        ),
        (
            "proof size",
            format!(
                "{} bytes ({:.1} KiB)",
                report.proof_bytes,
                report.proof_bytes as f64 / 1024.0
            ),
        ),
        (
            "peak RSS",
            format!("{:.2} GiB", rss as f64 / (1u64 << 30) as f64),
        ),
    ];
    for (k, v) in rows {
        println!("{k:<24} {v}");
    }
    if let Some(path) = out {
        println!("{:<24} {}", "proof written to", path.display());
    }
    Ok(())
}
