//! `poe prove-batch`, `poe verify-batch`, `poe bench-batch`: batch-validity proofs
//! (`specs/batch-air.md` §5) on generated realistic batches.

use crate::rss::json_field;
use std::path::Path;
use std::time::Instant;

use poe_circle_stark::config::{SecurityConfig, VerifierPolicy};
use poe_circle_stark::proof::ChannelId;
use poe_circle_stark::validity::{
    plan_classes_as, prove_batches, prove_in_class_as, ShapeClass, ValidityAir,
};
use poe_circle_stark::validity::{verify_validity_bytes, ValidityStatement};
use poe_circle_stark::venue::{sample, Operation};

/// Start of the generated batches' timestamps (2027-01-15).
const T0: u64 = 1_800_000_000_000_000;

fn count(ops: &[Operation], pick: fn(&Operation) -> bool) -> usize {
    ops.iter().filter(|o| pick(o)).count()
}

/// Which shape class a v3 proof is padded to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassChoice {
    /// The cheapest class that holds the batch (what the segment planner picks).
    Auto,
    /// This class (an error if it does not hold the batch).
    Fixed(ShapeClass),
}

/// What a batch-validity proof is made under: channel, AIR and, under v3, a shape class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flavor {
    /// The Merkle channel.
    pub channel: ChannelId,
    /// The AIR.
    pub air: ValidityAir,
    /// v3 only: pad to a class (`None`: each component at its own power of two).
    pub class: Option<ClassChoice>,
}

impl Flavor {
    /// `--air` value: `v2`, `v3`, or `v3-class` (v3 in the cheapest class).
    pub fn air_tag(self) -> String {
        match self.class {
            None => self.air.tag().to_string(),
            Some(_) => format!("{}-class", self.air.tag()),
        }
    }

    /// `channel air` as tables print it.
    pub fn name(self) -> String {
        format!("{} {}", self.channel.name(), self.air_tag())
    }
}

/// Parses an `--air` value: `v2`, `v3`, `v4`, `v3-class` or `v4-class`.
///
/// # Errors
/// An unknown value, as text.
pub fn parse_air(name: &str, channel: ChannelId) -> Result<Flavor, String> {
    let name = name.trim();
    let (air, class) = match name.strip_suffix("-class") {
        Some(air) => (air, Some(ClassChoice::Auto)),
        None => (name, None),
    };
    let air = ValidityAir::parse(air).ok_or_else(|| {
        format!("unknown batch-validity AIR {name:?}: use v2, v3, v4, v3-class or v4-class")
    })?;
    if class.is_some() && !air.closed_by_input() {
        return Err(format!("{name:?}: shape classes are AIR v3's and v4's"));
    }
    Ok(Flavor {
        channel,
        air,
        class,
    })
}

/// Where `poe prove-batch` writes: the proof and statement files, and a JSON line or a table.
#[derive(Debug, Clone, Copy)]
pub struct Outputs<'a> {
    /// The canonical proof.
    pub proof: Option<&'a Path>,
    /// The statement, for `verify-batch`.
    pub statement: Option<&'a Path>,
    /// One JSON line instead of the table.
    pub json: bool,
}

/// Generates, proves, verifies; prints a table or one JSON line.
///
/// # Errors
/// Proving or verification failures, I/O errors, as text.
pub fn prove_command(
    n: usize,
    accounts: u32,
    config: SecurityConfig,
    flavor: Flavor,
    seed: u64,
    batches: usize,
    outputs: Outputs<'_>,
) -> Result<(), String> {
    let Flavor { channel, air, .. } = flavor;
    let Outputs {
        proof: out,
        statement: statement_out,
        json,
    } = outputs;
    if accounts < 2 {
        return Err("--accounts must be at least 2".into());
    }
    if !json {
        eprintln!(
            "generating {n} operations over {accounts} accounts and proving them ({} bits, {} channel, {})…",
            config.security_bits(),
            channel.name(),
            air.air_id().name()
        );
    }
    if n < 2 {
        return Err("--ops must be at least 2 (the batch ends with a settlement)".into());
    }
    if batches == 0 || batches > n {
        return Err(format!(
            "--batches must be in 1..={n} (one operation each at least)"
        ));
    }
    let (venue, ops) = sample::batch_settling(n, accounts, seed, T0, 1_000);
    // Consecutive batches of equal size (the first ones one larger where it does not divide).
    let parts: Vec<&[Operation]> = {
        let (q, r) = (n / batches, n % batches);
        let mut at = 0;
        (0..batches)
            .map(|i| {
                let len = q + usize::from(i < r);
                at += len;
                &ops[at - len..at]
            })
            .collect()
    };
    let class = match flavor.class {
        None => None,
        Some(ClassChoice::Fixed(c)) => Some(c),
        Some(ClassChoice::Auto) => {
            let plan = plan_classes_as(&venue, &parts, ShapeClass::largest(), air)
                .map_err(|e| e.to_string())?;
            if plan.len() != 1 {
                return Err(format!(
                    "no one shape class holds the {batches} batches ({} segments planned)",
                    plan.len()
                ));
            }
            Some(plan[0].class)
        }
    };
    let t = Instant::now();
    let (statement, proof) = match class {
        None => prove_batches(&venue, &parts, config, channel, air),
        Some(c) => prove_in_class_as(&venue, &parts, config, channel, c, air),
    }
    .map_err(|e| e.to_string())?;
    let prove_s = t.elapsed().as_secs_f64();
    let bytes = proof.to_bytes();
    let policy = VerifierPolicy {
        min_security_bits: 0,
    };
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        verify_validity_bytes(&bytes, &statement, &policy)
            .map_err(|e| format!("the proof just made does not verify: {e}"))?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let verify_ms = times[2];
    // What a recursive verifier would pay for this proof (issue 15): its permutations counted
    // on one thread, the DEEP terms and FRI folds from its shape.
    let (verdict, verify_perms) = poe_circle_stark::recursion::count_permutations(|| {
        verify_validity_bytes(&bytes, &statement, &policy)
    });
    verdict.map_err(|e| format!("the proof just made does not verify: {e}"))?;
    let costs = poe_circle_stark::recursion::shape_costs(&proof);
    if let Some(p) = out {
        std::fs::write(p, &bytes).map_err(|e| format!("writing {}: {e}", p.display()))?;
    }
    if let Some(p) = statement_out {
        std::fs::write(p, statement.to_bytes())
            .map_err(|e| format!("writing {}: {e}", p.display()))?;
    }
    let rss = crate::rss::peak_rss_bytes().unwrap_or(0);
    let trades = count(&ops, |o| matches!(o, Operation::Trade { .. }));
    let public_bytes = proof.public_inputs.len() * 4;
    if json {
        println!(
            "{{\"channel\":\"{}\",\"air\":\"{}\",\"class\":{},\"trace_cells\":{},\"ops\":{n},\"batches\":{batches},\"trades\":{trades},\"log_state_leaf_rows\":{},\"log_state_node_rows\":{},\"prove_s\":{prove_s:.4},\"verify_ms\":{verify_ms:.3},\"proof_bytes\":{},\"public_input_bytes\":{public_bytes},\"peak_rss_bytes\":{rss},\"security_bits\":{},\"verify_permutations\":{verify_perms},\"queries\":{},\"opened_per_query\":{},\"samples\":{},\"deep_terms\":{},\"fri_folds\":{}}}",
            channel.name(),
            air.air_id().name(),
            class.map_or_else(|| "null".into(), |c| format!("\"{c}\"")),
            trace_cells(&statement),
            statement.log_state_leaf_rows,
            statement.log_state_node_rows,
            bytes.len(),
            config.security_bits(),
            costs.queries,
            costs.opened_per_query,
            costs.samples,
            costs.deep_terms,
            costs.fri_folds
        );
        return Ok(());
    }
    let rows = [
        (
            "operations",
            format!(
                "{n} ({trades} trades, {} deposits, {} withdrawals, 1 settlement)",
                count(&ops, |o| matches!(o, Operation::Deposit { .. })),
                count(&ops, |o| matches!(o, Operation::Withdraw { .. }))
            ),
        ),
        ("data root", statement.batches[0].data_root.to_hex()),
        ("pre state", statement.pre_state_root.to_hex()),
        ("post state", statement.post_state_root.to_hex()),
        (
            "rows",
            format!(
                "2^{} cash, 2^{} trade, 2^{} state-leaf, 2^{} state-node",
                statement.log_cash_rows,
                statement.log_trade_rows,
                statement.log_state_leaf_rows,
                statement.log_state_node_rows
            ),
        ),
        ("security", format!("{} bits", config.security_bits())),
        ("channel", channel.name().to_string()),
        ("AIR", air.air_id().name().to_string()),
        (
            "shape",
            format!(
                "{}, {} trace cells",
                class.map_or_else(|| "each component at its own size".into(), |c| format!("class {c}")),
                trace_cells(&statement)
            ),
        ),
        (
            "prove",
            format!("{prove_s:.2} s ({:.0} ops/s)", n as f64 / prove_s),
        ),
        ("verify", format!("{verify_ms:.1} ms (median of 5)")),
        (
            "recursion",
            format!(
                "{verify_perms} Poseidon2 permutations to verify, {} queries × {} opened values, {} DEEP terms, {} FRI folds",
                costs.queries, costs.opened_per_query, costs.deep_terms, costs.fri_folds
            ),
        ),
        (
            "proof",
            format!(
                "{} bytes (+ {public_bytes} bytes of public input)",
                bytes.len()
            ),
        ),
        (
            "peak RSS",
            format!("{:.2} GiB", rss as f64 / (1u64 << 30) as f64),
        ),
    ];
    for (k, v) in rows {
        println!("{k:<12} {v}");
    }
    Ok(())
}

/// Main and interaction cells of AIR v3's components at the statement's sizes (the padding a
/// class costs; for a v2 statement, what v3 would commit at its sizes).
fn trace_cells(s: &ValidityStatement) -> u64 {
    use poe_circle_stark::validity::{ComponentId, Shape};
    let mut logs = [0u32; ComponentId::ALL.len()];
    for id in ComponentId::ALL {
        logs[id.index()] = id.log_rows(s);
    }
    Shape(logs).cells()
}

/// Verifies a proof file against a statement file.
///
/// # Errors
/// Unreadable files, a malformed statement, or the verifier's error.
pub fn verify_command(
    proof: &Path,
    statement: &Path,
    min_security_bits: u32,
) -> Result<(), String> {
    let bytes = std::fs::read(proof).map_err(|e| format!("reading {}: {e}", proof.display()))?;
    let st =
        std::fs::read(statement).map_err(|e| format!("reading {}: {e}", statement.display()))?;
    let st =
        ValidityStatement::from_bytes(&st).map_err(|e| format!("{}: {e}", statement.display()))?;
    let t = Instant::now();
    verify_validity_bytes(&bytes, &st, &VerifierPolicy { min_security_bits })
        .map_err(|e| format!("proof rejected: {e}"))?;
    println!(
        "proof OK: {} operations with data root {} obey the venue rules and take state {} to {} ({:.1} ms)",
        st.n_ops(),
        st.batches[0].data_root.to_hex(),
        st.pre_state_root.to_hex(),
        st.post_state_root.to_hex(),
        t.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}

/// One process per size, channel and AIR (so peak RSS is per proof), after a Poseidon2
/// reference run; with several, each row also gives its prove time and peak RSS as a multiple
/// of the first's at the same size (the flavors of one size run back to back).
///
/// # Errors
/// A failed child process.
pub fn bench_command(
    min_log: u32,
    max_log: u32,
    p: &str,
    config: SecurityConfig,
    flavors: &[Flavor],
    batches: usize,
) -> Result<(), String> {
    if min_log > max_log || max_log > 18 {
        return Err("need min-log <= max-log <= 18".into());
    }
    let first = flavors
        .first()
        .ok_or("need at least one channel and AIR")?
        .name();
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let child = |args: &[String]| -> Result<String, String> {
        let out = std::process::Command::new(&exe)
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    eprintln!("  reference: data-root proof of 2^16 records (Poseidon2 permutations/s)…");
    let reference = child(&[
        "prove-records".into(),
        "--json".into(),
        "--preset".into(),
        p.into(),
        "--ops".into(),
        (1u32 << 16).to_string(),
    ])?;
    let perms_per_s = json_field(&reference, "permutations") / json_field(&reference, "prove_s");
    println!(
        "poe bench-batch: batch-validity proofs of {batches} batch(es) each, preset {p} ({} bits); Poseidon2 reference {perms_per_s:.0} permutations/s",
        config.security_bits()
    );
    println!("| ops | channel, AIR | trades | state rows (leaf/node) | prove s | ops/s | perm-equiv/op | prove × {first} | verify ms | verifier perms | DEEP terms | proof KB | public input KB | peak RSS GiB | RSS × {first} |");
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for log in min_log..=max_log {
        let mut base: Option<(f64, f64)> = None;
        for &f in flavors {
            let flavor = f.name();
            eprintln!("  2^{log} operations, {flavor}…");
            let line = child(&[
                "prove-batch".into(),
                "--json".into(),
                "--preset".into(),
                p.into(),
                "--channel".into(),
                f.channel.name().into(),
                "--air".into(),
                f.air_tag(),
                "--ops".into(),
                (1u64 << log).to_string(),
                "--batches".into(),
                batches.to_string(),
            ])?;
            let f = |k: &str| json_field(&line, k);
            let ops_per_s = f("ops") / f("prove_s");
            let (base_s, base_rss) = *base.get_or_insert((f("prove_s"), f("peak_rss_bytes")));
            println!(
                "| 2^{log} | {flavor} | {:.0} | 2^{:.0} / 2^{:.0} | {:.2} | {ops_per_s:.0} | {:.1} | {:.2} | {:.1} | {:.0} | {:.0} | {:.0} | {:.1} | {:.2} | {:.2} |",
                f("trades"),
                f("log_state_leaf_rows"),
                f("log_state_node_rows"),
                f("prove_s"),
                perms_per_s / ops_per_s,
                f("prove_s") / base_s,
                f("verify_ms"),
                f("verify_permutations"),
                f("deep_terms"),
                f("proof_bytes") / 1024.0,
                f("public_input_bytes") / 1024.0,
                f("peak_rss_bytes") / (1u64 << 30) as f64,
                f("peak_rss_bytes") / base_rss,
            );
        }
    }
    Ok(())
}
