//! `poe bench-day`: the daily root proof, v3 or v2 (day-tree proof + batch-validity segments), for
//! days of 10^4 … 10^6 operations, each size in its own process so that peak RSS is per size,
//! and the auditor's comparison: verifying the root proof versus every leaf proof.

use poe_circle_stark::day::recursive::RecursiveFormat;
use std::time::Instant;

use poe_circle_stark::config::{SecurityConfig, VerifierPolicy};
use std::collections::HashMap;

use poe_circle_stark::day::root::{
    plan_segments, verify_root_with, RootFormat, RootProof, SEGMENT_CAPACITY_OPS,
};
use poe_circle_stark::day::statement::{BatchStatement, DayStatement};
use poe_circle_stark::day::{prove_day, prove_root_as};
use poe_circle_stark::validity::prove_validity;
use poe_circle_stark::validity::verify_validity_bytes;
use poe_circle_stark::venue::{sample, Operation, Venue};

use crate::rss::{json_field, median};

const T0: u64 = 1_800_000_000_000_000;
const DAY: u32 = (T0 / 86_400_000_000) as u32;

/// A generated day: `rollups` venues (256 funded accounts, BTC/ETH calls and puts, the last
/// operation of each rollup's day settling an expiring call), cut into `batch_ops` batches.
struct GeneratedDay {
    statements: Vec<BatchStatement>,
    ops: Vec<Vec<Operation>>,
    venues: Vec<(u32, Venue)>,
}

fn generate(n_ops: usize, batch_ops: usize, rollups: u32) -> GeneratedDay {
    let mut day = GeneratedDay {
        statements: Vec::new(),
        ops: Vec::new(),
        venues: Vec::new(),
    };
    for r in 0..rollups {
        let n = n_ops / rollups as usize + usize::from((r as usize) < n_ops % rollups as usize);
        let (venue, all) = sample::batch_settling(n.max(2), 256, u64::from(r) + 1, T0, 100);
        day.venues.push((r + 1, venue.clone()));
        let mut v = venue;
        for (seq, chunk) in all.chunks(batch_ops).enumerate() {
            let pre = v.state_root();
            v.apply_batch(chunk).expect("generated batches apply");
            day.statements.push(BatchStatement::of_batch(
                r + 1,
                seq as u64 + 1,
                pre,
                v.state_root(),
                chunk.iter().copied(),
                v.instruments(),
            ));
            day.ops.push(chunk.to_vec());
        }
    }
    day
}

/// The recursive root (`format`: v4 or v5) of one size, in this process: one JSON line with
/// each stage's seconds.
///
/// # Errors
/// A prover or verifier failure, as text.
pub fn run_one_v4(
    n_ops: usize,
    batch_ops: usize,
    rollups: u32,
    format: RecursiveFormat,
) -> Result<String, String> {
    use poe_circle_stark::day::prove_recursive_with;
    use poe_circle_stark::day::recursive::{verify_recursive, RecursionPresets, RecursiveRoot};
    let day = generate(n_ops, batch_ops, rollups);
    let policy = VerifierPolicy::default();
    let venues: HashMap<u32, Venue> = day.venues.iter().cloned().collect();
    let refs: Vec<&[Operation]> = day.ops.iter().map(Vec::as_slice).collect();
    let t = Instant::now();
    let proof = prove_recursive_with(
        format,
        DAY,
        &day.statements,
        &refs,
        [0; 32],
        &venues,
        RecursionPresets::standard(),
        &policy,
        &mut |m| eprintln!("    {m}"),
        &mut poe_circle_stark::day::Runs::none(),
    )
    .map_err(|e| e.to_string())?;
    let prove_s = t.elapsed().as_secs_f64();
    let bytes = proof.root.to_bytes();
    let derived = DayStatement::derive(DAY, &day.statements, [0; 32]).map_err(|e| e.to_string())?;
    let listed = |id: u32| venues.get(&id).map(|v| v.instruments().to_vec());
    let verify = |threads: usize| {
        crate::rss::median_ms_on(threads, 5, || {
            let root = RecursiveRoot::from_bytes(&bytes).map_err(|e| e.to_string())?;
            verify_recursive(
                &root,
                &derived,
                &day.statements,
                &listed,
                &proof.keys,
                &policy,
            )
            .map(|_| ())
            .map_err(|e| format!("the root proof just made does not verify: {e}"))
        })
    };
    let verify_ms = verify(1)?;
    let verify_par_ms = verify(0)?;
    // The final proof alone against the digest the auditor rebuilds: what stays constant.
    let expected = {
        use poe_circle_stark::recursion::node::gadgets::digest_values;
        use poe_circle_stark::recursion::node::tree::{day_digest, NodeStatement};
        let leaves: Vec<NodeStatement> = proof.leaves.iter().map(|l| l.statement()).collect();
        digest_values(&day_digest(&leaves, proof.keys.m, &derived.digest()).ok_or("no segments")?)
    };
    let final_ms = crate::rss::median_ms_on(1, 5, || {
        poe_circle_stark::recursion::node::verify_node(
            &proof.root.last,
            &proof.keys.last,
            &expected,
            &policy,
        )
        .map_err(|e| e.to_string())
    })?;
    // What an auditor pays once per presets, tree shape and class: the keys from the samples.
    let samples = proof.samples();
    let samples_bytes = samples.to_bytes().len();
    let t = Instant::now();
    let keys = poe_circle_stark::day::keys_from_samples(
        &proof.root,
        &samples,
        &day.statements,
        &listed,
        &policy,
    )
    .map_err(|e| e.to_string())?;
    let keys_s = t.elapsed().as_secs_f64();
    if keys != proof.keys {
        return Err("the keys derived from the samples are not the prover's".into());
    }
    let tm = proof.timings;
    Ok(format!(
        "{{\"ops\":{n_ops},\"keys_s\":{keys_s:.3},\"samples_bytes\":{samples_bytes},\"batches\":{},\"segments\":{},\"classes\":{},\"log_rows\":{},\"log_perm_rows\":{},\"segments_s\":{:.3},\"w_keys_s\":{:.3},\"w_s\":{:.3},\"m\":{},\"m_s\":{:.3},\"final_s\":{:.3},\"prove_s\":{prove_s:.3},\"verify_ms\":{verify_ms:.2},\"verify_par_ms\":{verify_par_ms:.2},\"final_ms\":{final_ms:.2},\"final_rows\":{},\"final_perm_rows\":{},\"proof_bytes\":{},\"peak_rss_bytes\":{}}}",
        day.statements.len(),
        proof.root.segments.len(),
        proof.keys.w.len(),
        proof.root.shape.0,
        proof.root.shape.1,
        tm.segments,
        tm.w_keys,
        tm.w,
        tm.n_m,
        tm.m,
        tm.last,
        proof.keys.last.log_rows,
        proof.keys.last.log_perm_rows,
        bytes.len(),
        crate::rss::peak_rss_bytes().unwrap_or(0)
    ))
}

/// The close of one size after a day whose final runs were proven during it, as the
/// pipeline does (`specs/day-proof.md` §5): every run but each rollup's last proven first
/// ("during the day"), then the close timed — the last runs, the W nodes, the tree, the final
/// node — with the runs found. One JSON line.
///
/// # Errors
/// A prover or verifier failure, as text.
pub fn run_one_close(
    n_ops: usize,
    batch_ops: usize,
    rollups: u32,
    format: RecursiveFormat,
) -> Result<String, String> {
    use poe_circle_stark::day::recursive::{verify_recursive, RecursionPresets};
    use poe_circle_stark::day::root::{plan_segments, SEGMENT_CAPACITY_OPS};
    use poe_circle_stark::day::runs::{prove_run, ProvenRun};
    use poe_circle_stark::day::{prove_recursive_with, Runs};
    let day = generate(n_ops, batch_ops, rollups);
    let policy = VerifierPolicy::default();
    let presets = RecursionPresets::standard();
    let venues: HashMap<u32, Venue> = day.venues.iter().cloned().collect();
    let refs: Vec<&[Operation]> = day.ops.iter().map(Vec::as_slice).collect();
    let plan = plan_segments(&day.statements, SEGMENT_CAPACITY_OPS);
    let mut walked = venues.clone();
    let mut stored: HashMap<(u32, u64, u64), ProvenRun> = HashMap::new();
    let t = Instant::now();
    for (i, &(a, b)) in plan.iter().enumerate() {
        let rollup = day.statements[a].rollup_id;
        let venue = walked.get_mut(&rollup).ok_or("a rollup without a venue")?;
        let last_of_rollup = plan
            .get(i + 1)
            .is_none_or(|&(c, _)| day.statements[c].rollup_id != rollup);
        if last_of_rollup {
            continue;
        }
        let run = prove_run(
            venue,
            &day.statements[a..b],
            &refs[a..b],
            presets.segment,
            poe_circle_stark::proof::ChannelId::Poseidon2,
            format.segment_air(),
        )
        .map_err(|e| e.to_string())?;
        eprintln!(
            "    run of rollup {rollup} seq {}..={} proven during the day at {:.1} s",
            run.first_seq,
            run.last_seq,
            t.elapsed().as_secs_f64()
        );
        stored.insert((run.rollup_id, run.first_seq, run.last_seq), run);
    }
    let day_s = t.elapsed().as_secs_f64();
    let n_early = stored.len();
    let get = |id: u32, a: u64, b: u64| stored.get(&(id, a, b)).cloned();
    let mut runs = Runs {
        capacity_ops: SEGMENT_CAPACITY_OPS,
        get: Some(&get),
        put: None,
        reused: 0,
    };
    let t = Instant::now();
    let proof = prove_recursive_with(
        format,
        DAY,
        &day.statements,
        &refs,
        [0; 32],
        &venues,
        presets,
        &policy,
        &mut |m| eprintln!("    {m}"),
        &mut runs,
    )
    .map_err(|e| e.to_string())?;
    let close_s = t.elapsed().as_secs_f64();
    let derived = DayStatement::derive(DAY, &day.statements, [0; 32]).map_err(|e| e.to_string())?;
    let listed = |id: u32| venues.get(&id).map(|v| v.instruments().to_vec());
    verify_recursive(
        &proof.root,
        &derived,
        &day.statements,
        &listed,
        &proof.keys,
        &policy,
    )
    .map_err(|e| format!("the root proof just made does not verify: {e}"))?;
    let tm = proof.timings;
    Ok(format!(
        "{{\"ops\":{n_ops},\"segments\":{},\"runs\":{},\"early\":{n_early},\"reused\":{},\"day_s\":{day_s:.3},\"close_s\":{close_s:.3},\"segments_s\":{:.3},\"w_s\":{:.3},\"m_s\":{:.3},\"final_s\":{:.3},\"proof_bytes\":{},\"peak_rss_bytes\":{}}}",
        proof.root.segments.len(),
        plan.len(),
        runs.reused,
        tm.segments,
        tm.w_keys + tm.w,
        tm.m,
        tm.last,
        proof.root.to_bytes().len(),
        crate::rss::peak_rss_bytes().unwrap_or(0)
    ))
}

/// `poe bench-day --format v5-close` (or `v4-close`): one child process per size; prints the
/// table.
///
/// # Errors
/// A failed child.
pub fn bench_command_close(
    sizes: &[usize],
    batch_ops: usize,
    rollups: u32,
    format: RecursiveFormat,
) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    println!(
        "poe bench-day: the {} close after a day whose final runs were proven during it (every run but each rollup's last), standard presets, {rollups} rollups, {batch_ops}-op batches",
        format.air_name()
    );
    println!("| ops | runs (proven during the day) | segments | during the day s | close s | of which: last runs s, W s, M s, final s | root proof KB | peak RSS GiB |");
    println!("|---:|---:|---:|---:|---:|---|---:|---:|");
    for &n in sizes {
        eprintln!("  {n} operations…");
        let line = child_line(
            &exe,
            (n, batch_ops, rollups),
            &["--format".into(), format!("{}-close", tag(format))],
        )?;
        let f = |k: &str| json_field(&line, k);
        println!(
            "| {n} | {:.0} ({:.0}, {:.0} reused) | {:.0} | {:.1} | {:.1} | {:.1}, {:.1}, {:.1}, {:.1} | {:.0} | {:.2} |",
            f("runs"),
            f("early"),
            f("reused"),
            f("segments"),
            f("day_s"),
            f("close_s"),
            f("segments_s"),
            f("w_s"),
            f("m_s"),
            f("final_s"),
            f("proof_bytes") / 1024.0,
            f("peak_rss_bytes") / (1u64 << 30) as f64,
        );
    }
    Ok(())
}

/// `v4` or `v5`: the CLI's spelling of a recursive format.
pub fn tag(format: RecursiveFormat) -> &'static str {
    match format {
        RecursiveFormat::V4 => "v4",
        RecursiveFormat::V5 => "v5",
    }
}

/// `poe bench-day --format v5` (or `v4`): one child process per size; prints the table.
///
/// # Errors
/// A failed child.
pub fn bench_command_v4(
    sizes: &[usize],
    batch_ops: usize,
    rollups: u32,
    format: RecursiveFormat,
) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    println!(
        "poe bench-day: root proof {} (segments: {} in shape classes, Poseidon2 channel, compact; a W node per segment, M nodes pairing them, compact; the final node, final preset: 104 bits), {rollups} rollups, {batch_ops}-op batches; verify median of 5",
        format.air_name(),
        format.segment_air().air_id().name()
    );
    println!("| ops | batches | segments (classes) | tree shape | segments s | W keys s | W s | M nodes: s | final s (shape) | prove s | verify ms, 1 core (final proof alone) | verify ms, all cores | root proof KB | peak RSS GiB | root.samples KB | keys derived s |");
    println!("|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &n in sizes {
        eprintln!("  {n} operations…");
        let line = child_line(
            &exe,
            (n, batch_ops, rollups),
            &["--format".into(), tag(format).into()],
        )?;
        let f = |k: &str| json_field(&line, k);
        println!(
            "| {n} | {:.0} | {:.0} ({:.0}) | 2^{:.0}, 2^{:.0} | {:.1} | {:.1} | {:.1} | {:.0}: {:.1} | {:.1} (2^{:.0}, 2^{:.0}) | {:.1} | {:.1} ({:.1}) | {:.1} | {:.0} | {:.2} | {:.0} | {:.1} |",
            f("batches"),
            f("segments"),
            f("classes"),
            f("log_rows"),
            f("log_perm_rows"),
            f("segments_s"),
            f("w_keys_s"),
            f("w_s"),
            f("m"),
            f("m_s"),
            f("final_s"),
            f("final_rows"),
            f("final_perm_rows"),
            f("prove_s"),
            f("verify_ms"),
            f("final_ms"),
            f("verify_par_ms"),
            f("proof_bytes") / 1024.0,
            f("peak_rss_bytes") / (1u64 << 30) as f64,
            f("samples_bytes") / 1024.0,
            f("keys_s"),
        );
    }
    Ok(())
}

/// One size, in this process; prints one JSON line.
///
/// # Errors
/// A prover or verifier failure, as text.
pub fn run_one(
    n_ops: usize,
    batch_ops: usize,
    rollups: u32,
    (leaves, format): (bool, RootFormat),
    config: SecurityConfig,
) -> Result<String, String> {
    let day = generate(n_ops, batch_ops, rollups);
    let leaf_config = config;
    let config = crate::day::root_security(config);
    let policy = VerifierPolicy {
        min_security_bits: 0,
    };
    let t = Instant::now();
    let (statement, _) =
        prove_day(DAY, &day.statements, [0; 32], config).map_err(|e| e.to_string())?;
    let day_s = t.elapsed().as_secs_f64();
    let runs = plan_segments(&day.statements, SEGMENT_CAPACITY_OPS).len();
    eprintln!(
        "    {} root: day tree and {runs} runs of a rollup's batches…",
        format.name()
    );
    let venues: HashMap<u32, Venue> = day.venues.iter().cloned().collect();
    let refs: Vec<&[Operation]> = day.ops.iter().map(Vec::as_slice).collect();
    let t = Instant::now();
    let root = prove_root_as(
        format,
        DAY,
        &day.statements,
        &refs,
        [0; 32],
        &venues,
        config,
    )
    .map_err(|e| e.to_string())?;
    let prove_s = t.elapsed().as_secs_f64();
    let n_segments = root.segments.len();
    let bytes = root.to_bytes();
    let max_segment = root
        .segments
        .iter()
        .map(|s| s.proof.to_bytes().len())
        .max()
        .unwrap_or(0);
    drop(root);
    let derived = DayStatement::derive(DAY, &day.statements, [0; 32]).map_err(|e| e.to_string())?;
    debug_assert_eq!(derived, statement);
    // The manifest's instrument tables, which a v3 root's verifier takes.
    let listed = |id: u32| venues.get(&id).map(|v| v.instruments().to_vec());
    let verify = |threads: usize| -> Result<f64, String> {
        let times = (0..3)
            .map(|_| {
                let t = Instant::now();
                let root = RootProof::from_bytes(&bytes).map_err(|e| e.to_string())?;
                verify_root_with(root, &derived, &day.statements, &listed, &policy, threads)
                    .map(|_| t.elapsed().as_secs_f64() * 1e3)
                    .map_err(|e| format!("the root proof just made does not verify: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(median(times))
    };
    let verify_ms = verify(1)?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let verify_par_ms = verify(cores)?;
    let mut leaf = String::new();
    if leaves {
        // Every batch's own validity leaf, as the pipeline makes them, verified one by one.
        let t = Instant::now();
        let mut venues = day.venues.clone();
        let mut proofs = Vec::new();
        for (s, ops) in day.statements.iter().zip(&day.ops) {
            let v = &mut venues
                .iter_mut()
                .find(|(r, _)| *r == s.rollup_id)
                .expect("a venue per rollup")
                .1;
            let (st, p) = prove_validity(v, ops, leaf_config).map_err(|e| e.to_string())?;
            v.apply_batch(ops).map_err(|e| e.to_string())?;
            proofs.push((st, p.to_bytes()));
        }
        let leaves_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for (st, p) in &proofs {
            verify_validity_bytes(p, st, &policy).map_err(|e| e.to_string())?;
        }
        let verify_all_ms = t.elapsed().as_secs_f64() * 1e3;
        let leaf_bytes: usize = proofs.iter().map(|(_, p)| p.len()).sum();
        leaf = format!(
            ",\"leaves_prove_s\":{leaves_s:.3},\"leaves_verify_ms\":{verify_all_ms:.2},\"leaves_bytes\":{leaf_bytes}"
        );
    }
    Ok(format!(
        "{{\"ops\":{n_ops},\"batches\":{},\"segments\":{},\"day_proof_s\":{day_s:.3},\"prove_s\":{prove_s:.3},\"verify_ms\":{verify_ms:.2},\"verify_par_ms\":{verify_par_ms:.2},\"cores\":{cores},\"proof_bytes\":{},\"max_segment_bytes\":{max_segment},\"peak_rss_bytes\":{}{leaf}}}",
        day.statements.len(),
        n_segments,
        bytes.len(),
        crate::rss::peak_rss_bytes().unwrap_or(0)
    ))
}

/// `poe bench-day --child` for one day of `n` operations in `batch_ops`-operation batches over
/// `rollups` rollups, with `args`, in its own process (so that peak RSS is per size): its one
/// JSON line.
fn child_line(
    exe: &std::path::Path,
    (n, batch_ops, rollups): (usize, usize, u32),
    args: &[String],
) -> Result<String, String> {
    let out = std::process::Command::new(exe)
        .args(["bench-day", "--child", "--ops", &n.to_string()])
        .args(["--batch-ops", &batch_ops.to_string()])
        .args(["--rollups", &rollups.to_string()])
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("{n} operations: child failed"));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One child process per size; prints the table.
///
/// # Errors
/// A failed child.
pub fn bench_command(
    sizes: &[usize],
    batch_ops: usize,
    rollups: u32,
    (leaves, format): (bool, RootFormat),
    preset: &str,
    config: SecurityConfig,
) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let segments = match format {
        RootFormat::V2 => "batch-validity v2 segments",
        RootFormat::V3 => "batch-validity v3 segments in shape classes",
    };
    println!(
        "poe bench-day: root proof {} (day tree + {segments} of ≤ {SEGMENT_CAPACITY_OPS} ops, {:?}), {rollups} rollups, {batch_ops}-op batches, leaves preset {preset} ({} bits); verify median of 3",
        format.name(),
        crate::day::root_security(config),
        config.security_bits()
    );
    println!("| ops | batches | segments | prove s (day tree s) | ops/s | verify ms, 1 core | verify ms, all cores | root proof KB | peak RSS GiB | all leaves: prove s | verify ms, 1 core | ratio |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &n in sizes {
        eprintln!("  {n} operations…");
        let mut args = vec![
            "--preset".to_string(),
            preset.into(),
            "--format".into(),
            match format {
                RootFormat::V2 => "v2".into(),
                RootFormat::V3 => "v3".into(),
            },
        ];
        if leaves {
            args.push("--leaves".into());
        }
        let line = child_line(&exe, (n, batch_ops, rollups), &args)?;
        let f = |k: &str| json_field(&line, k);
        let leaf_cols = if leaves {
            format!(
                "{:.1} | {:.1} | {:.1}×",
                f("leaves_prove_s"),
                f("leaves_verify_ms"),
                f("leaves_verify_ms") / f("verify_ms")
            )
        } else {
            "– | – | –".into()
        };
        println!(
            "| {n} | {:.0} | {:.0} | {:.1} ({:.2}) | {:.0} | {:.1} | {:.1} ({:.0}) | {:.0} | {:.2} | {leaf_cols} |",
            f("batches"),
            f("segments"),
            f("prove_s"),
            f("day_proof_s"),
            f("ops") / f("prove_s"),
            f("verify_ms"),
            f("verify_par_ms"),
            f("cores"),
            f("proof_bytes") / 1024.0,
            f("peak_rss_bytes") / (1u64 << 30) as f64,
        );
    }
    Ok(())
}
