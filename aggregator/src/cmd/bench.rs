//! `poe bench-intake` and `poe bench` (data-root proofs).

use poe_aggregator::rss;
use poe_circle_stark::field::M31;
use poe_circle_stark::hash::poseidon2::{permute, WIDTH};
use std::time::Instant;

use crate::preset;

pub(crate) fn bench_intake(n: usize) -> Result<(), String> {
    use poe_ingest::commitment::Scheme;
    use poe_ingest::intake::{Intake, Outcome};
    use poe_ingest::testkit::{client, realistic_ops, registry, T0};
    if n < 64 {
        return Err("--ops must be at least 64".into());
    }
    println!("poe bench-intake: one batch of {n} operations (50 accounts, ~95% trades)");
    println!("| scheme | body MB | build+sign s | submit s | ops/s |");
    println!("|---|---:|---:|---:|---:|");
    for scheme in Scheme::ALL {
        let dir = std::env::temp_dir().join(format!(
            "poe-bench-intake-{}-{}",
            scheme.name(),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut c = client("bench", 5, scheme);
        let mut intake =
            Intake::create(registry(&[&c]), &dir.join("intake.redb")).map_err(|e| e.to_string())?;
        let ops = realistic_ops(n, 9, T0);
        let t = Instant::now();
        let body = c.next_batch(&ops, "groth16", b"opaque");
        let build = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let outcome = intake.submit(&body, T0 + 1).map_err(|e| e.to_string())?;
        let submit = t.elapsed().as_secs_f64();
        if !matches!(outcome, Outcome::Accepted(_)) {
            return Err("batch was not accepted".into());
        }
        println!(
            "| {} | {:.1} | {build:.2} | {submit:.2} | {:.0} |",
            scheme.name(),
            body.len() as f64 / 1e6,
            n as f64 / submit
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

pub(crate) fn bench(min_log: u32, max_log: u32, runs: usize, p: &str) -> Result<(), String> {
    let config = preset(p)?;
    if min_log > max_log || max_log > 22 || runs == 0 {
        return Err("need min-log <= max-log <= 22 and runs >= 1".into());
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    println!(
        "poe bench: data-root proofs, preset {p} ({} bits), {runs} run(s) per size, medians",
        config.security_bits()
    );
    println!(
        "| records | permutations | prove s | records/s | verify ms | proof bytes | peak RSS GiB |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for log in min_log..=max_log {
        let mut samples: Vec<[f64; 5]> = Vec::new();
        let mut perms = 0.0;
        for run in 0..runs {
            eprintln!("  2^{log} records, run {}/{runs}…", run + 1);
            let out = std::process::Command::new(&exe)
                .args([
                    "prove-records",
                    "--json",
                    "--preset",
                    p,
                    "--ops",
                    &(1u64 << log).to_string(),
                ])
                .output()
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(format!("2^{log}: {}", String::from_utf8_lossy(&out.stderr)));
            }
            let line = String::from_utf8_lossy(&out.stdout);
            let field = |k: &str| -> f64 {
                line.split(&format!("\"{k}\":"))
                    .nth(1)
                    .and_then(|r| r.split([',', '}']).next())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(f64::NAN)
            };
            perms = field("permutations");
            samples.push([
                field("prove_s"),
                field("verify_ms"),
                field("proof_bytes"),
                field("peak_rss_bytes"),
                field("records"),
            ]);
        }
        let col = |i: usize| rss::median(samples.iter().map(|s| s[i]).collect());
        let records = col(4);
        println!(
            "| 2^{log} | {perms:.0} | {:.2} | {:.0} | {:.1} | {:.0} | {:.2} |",
            col(0),
            records / col(0),
            col(1),
            col(2),
            col(3) / (1u64 << 30) as f64
        );
    }
    // Native permutation throughput, one core.
    let n = 2_000_000u32;
    let mut state = [M31::from_u32_unchecked(1); WIDTH];
    let t = Instant::now();
    for _ in 0..n {
        permute(&mut state);
    }
    let secs = t.elapsed().as_secs_f64();
    println!();
    println!(
        "native Poseidon2-M31 permutation, one core: {:.2} M/s (checksum {})",
        f64::from(n) / secs / 1e6,
        state[0].0
    );
    Ok(())
}

/// Seconds to permute `packed` in sets of `K` interleaved (a remainder of fewer is skipped).
fn time_interleaved<const K: usize>(
    packed: &[[poe_circle_stark::hash::poseidon2::packed::PackedM31; WIDTH]],
) -> f64 {
    use poe_circle_stark::hash::poseidon2::packed::{permute_packed_interleaved, PackedM31};
    let mut s = packed.to_vec();
    let t = Instant::now();
    for sets in s.chunks_exact_mut(K) {
        let sets: &mut [[PackedM31; WIDTH]; K] = sets.try_into().expect("K sets");
        permute_packed_interleaved(sets);
    }
    std::hint::black_box(&s);
    t.elapsed().as_secs_f64()
}

/// `poe bench-poseidon2`: single-threaded permutations/s, scalar against 16-lane SIMD.
pub(crate) fn bench_poseidon2(perms: usize, runs: usize) -> Result<(), String> {
    use poe_circle_stark::hash::poseidon2::packed::{
        permute_many, permute_packed, PackedM31, LANES,
    };
    if perms < LANES || runs == 0 {
        return Err(format!("need --perms >= {LANES} and --runs >= 1"));
    }
    let simd = if cfg!(target_feature = "avx512f") {
        "AVX-512"
    } else if cfg!(target_feature = "avx2") {
        "AVX2"
    } else if cfg!(target_feature = "neon") {
        "NEON"
    } else {
        "portable (no target-cpu flags)"
    };
    println!(
        "poe bench-poseidon2: {perms} permutations per run, {runs} runs, one thread, stwo SIMD path: {simd}"
    );
    let states: Vec<[M31; WIDTH]> = (0..perms)
        .map(|i| {
            std::array::from_fn(|j| M31::from_u32_unchecked(((i * WIDTH + j) as u32) % 0x7fff_ffff))
        })
        .collect();
    let median = |mut f: Box<dyn FnMut() -> f64>| {
        let mut t: Vec<f64> = (0..runs).map(|_| f()).collect();
        t.sort_by(f64::total_cmp);
        t[runs / 2]
    };
    let scalar = median(Box::new(|| {
        let mut s = states.clone();
        let t = Instant::now();
        for x in s.iter_mut() {
            permute(x);
        }
        std::hint::black_box(&s);
        t.elapsed().as_secs_f64()
    }));
    let many = median(Box::new(|| {
        let mut s = states.clone();
        let t = Instant::now();
        permute_many(&mut s);
        std::hint::black_box(&s);
        t.elapsed().as_secs_f64()
    }));
    // Already transposed (as a Merkle hasher keeps its lanes): the permutation alone.
    let packed: Vec<[PackedM31; WIDTH]> = states
        .chunks_exact(LANES)
        .map(|c| std::array::from_fn(|i| PackedM31::from_array(std::array::from_fn(|l| c[l][i]))))
        .collect();
    let raw = median(Box::new(|| {
        let mut s = packed.clone();
        let t = Instant::now();
        for x in s.iter_mut() {
            permute_packed(x);
        }
        std::hint::black_box(&s);
        t.elapsed().as_secs_f64()
    }));
    let raw2 = median(Box::new(|| time_interleaved::<2>(&packed)));
    let raw4 = median(Box::new(|| time_interleaved::<4>(&packed)));
    let n_raw = (perms / LANES * LANES) as f64;
    let rate = |n: f64, s: f64| n / s / 1e6;
    println!("| path | M perms/s | × scalar |");
    println!("|---|---:|---:|");
    let base = rate(perms as f64, scalar);
    for (name, r) in [
        ("scalar `permute`", base),
        (
            "SIMD `permute_many` (with transposition)",
            rate(perms as f64, many),
        ),
        ("SIMD `permute_packed` (transposed state)", rate(n_raw, raw)),
        (
            "SIMD, two sets interleaved (transposed)",
            rate((perms / (2 * LANES) * 2 * LANES) as f64, raw2),
        ),
        (
            "SIMD, four sets interleaved (transposed)",
            rate((perms / (4 * LANES) * 4 * LANES) as f64, raw4),
        ),
    ] {
        println!("| {name} | {r:.2} | {:.2} |", r / base);
    }
    Ok(())
}

/// `poe shape-stats --classes`: the shape-class catalogue.
pub(crate) fn shape_classes() {
    use poe_circle_stark::validity::{ComponentId, ShapeClass};
    println!("poe shape-stats --classes: batch-validity v3 shape classes (log2 rows per component; trace cells = main + interaction)");
    let names: Vec<&str> = ComponentId::ALL.iter().map(|id| id.name()).collect();
    println!("| class | {} | trace cells |", names.join(" | "));
    println!("|---|{}---:|", "---:|".repeat(names.len()));
    for c in ShapeClass::all() {
        let logs: Vec<String> = c.shape().0.iter().map(u32::to_string).collect();
        println!("| {c} | {} | {} |", logs.join(" | "), c.cells());
    }
}

/// `poe shape-stats`: the rows each batch-validity component needs (before padding) on
/// generated settling batches over a grid of sizes and account counts — the data for sizing
/// shape classes (`specs/recursion.md` §5) — and the class the planner picks for them, with
/// the trace cells it pads to against the cells at each component's own power of two.
pub(crate) fn shape_stats(max_log: u32, batch_ops: usize) -> Result<(), String> {
    use poe_circle_stark::data_root::log_rows_for;
    use poe_circle_stark::validity::{component_rows, ComponentId, Shape, ShapeClass, ValidityAir};
    use poe_circle_stark::venue::sample;
    if !(10..=18).contains(&max_log) || batch_ops == 0 {
        return Err("need 10 <= --max-log <= 18 and --batch-ops > 0".into());
    }
    let ids = ComponentId::of(ValidityAir::V3);
    println!("poe shape-stats: rows per batch-validity v3 component before padding (settling batches cut into batches of {batch_ops} operations; per operation in brackets)");
    let names: Vec<&str> = ids.iter().map(|id| id.name()).collect();
    println!(
        "| ops | accounts | batches | {} | class | cells: own sizes → class (×) |",
        names.join(" | ")
    );
    println!("|---:|---:|---:|{}---|---:|", "---:|".repeat(ids.len()));
    for log in (10..=max_log).step_by(2) {
        for accounts in [16u32, 256, 4096] {
            let n = 1usize << log;
            let (venue, ops) = sample::batch_settling(n, accounts, 1, 1_800_000_000_000_000, 1_000);
            let batches: Vec<&[_]> = ops.chunks(batch_ops).collect();
            let t = std::time::Instant::now();
            let rows =
                component_rows(&venue, &batches, ValidityAir::V3).map_err(|e| e.to_string())?;
            eprintln!(
                "  2^{log} operations, {accounts} accounts: {:.1} s",
                t.elapsed().as_secs_f64()
            );
            let cells: Vec<String> = rows
                .iter()
                .map(|(id, r)| match id {
                    ComponentId::Range | ComponentId::Instruments => r.to_string(),
                    _ => format!("{r} ({:.2})", *r as f64 / n as f64),
                })
                .collect();
            let mut need = [0usize; ComponentId::ALL.len()];
            let mut own = [0u32; ComponentId::ALL.len()];
            for &(id, r) in &rows {
                need[id.index()] = r;
                own[id.index()] = log_rows_for(r);
            }
            let (class, padded) = match ShapeClass::cheapest_holding(&need) {
                Some(c) => (c.to_string(), c.cells()),
                None => ("none".into(), 0),
            };
            let own = Shape(own).cells();
            println!(
                "| 2^{log} | {accounts} | {} | {} | {class} | {own} → {padded} ({:.2}) |",
                batches.len(),
                cells.join(" | "),
                padded as f64 / own as f64
            );
        }
    }
    Ok(())
}

/// `poe circuit-stats`: every batch-validity component compiled to a QM31 circuit, its gates
/// counted, and the time to evaluate it once at a point.
pub(crate) fn circuit_stats(
    statement: Option<&std::path::Path>,
    air: poe_circle_stark::validity::ValidityAir,
) -> Result<(), String> {
    use poe_circle_stark::config::SecurityConfig;
    use poe_circle_stark::field::qm31_from_array;
    use poe_circle_stark::validity::compiled_circuits;
    use poe_circle_stark::validity::{prove_validity, ValidityStatement};
    use poe_circle_stark::venue::sample;
    let statement = match statement {
        Some(p) => {
            let bytes = std::fs::read(p).map_err(|e| format!("reading {}: {e}", p.display()))?;
            ValidityStatement::from_bytes(&bytes).map_err(|e| format!("{}: {e}", p.display()))?
        }
        None => {
            let (venue, ops) = sample::batch_settling(64, 8, 1, 1_800_000_000_000_000, 1_000);
            prove_validity(&venue, &ops, SecurityConfig::testing())
                .map_err(|e| e.to_string())?
                .0
        }
    };
    println!("poe circuit-stats: batch-validity {} constraints as QM31 circuits (a DAG, constants folded, identical gates merged)", air.tag());
    println!("| component | preprocessed / main / interaction columns | mask values | constraints | mul | add/sub/neg | consts | gates | eval µs |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut total = [0usize; 7];
    for (id, circuit) in compiled_circuits(air, &statement) {
        let c = circuit.counts();
        let cols: Vec<usize> = circuit.mask.iter().map(Vec::len).collect();
        let mask: Vec<Vec<Vec<_>>> = circuit
            .mask
            .iter()
            .enumerate()
            .map(|(t, tree)| {
                tree.iter()
                    .enumerate()
                    .map(|(i, offs)| {
                        offs.iter()
                            .map(|_| {
                                qm31_from_array(std::array::from_fn(|k| {
                                    M31::from_u32_unchecked((t * 1_000_003 + i * 17 + k + 1) as u32)
                                }))
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let runs = 20;
        let t = Instant::now();
        for _ in 0..runs {
            std::hint::black_box(circuit.evaluate(&mask));
        }
        let us = t.elapsed().as_secs_f64() * 1e6 / f64::from(runs);
        println!(
            "| {} | {} / {} / {} | {} | {} | {} | {} | {} | {} | {us:.0} |",
            id.name(),
            cols[0],
            cols[1],
            cols[2],
            c.inputs,
            c.constraints,
            c.muls,
            c.linear,
            c.consts,
            circuit.gates.len()
        );
        for (acc, x) in total.iter_mut().zip([
            cols[1],
            cols[2],
            c.inputs,
            c.constraints,
            c.muls,
            c.linear,
            circuit.gates.len(),
        ]) {
            *acc += x;
        }
    }
    println!(
        "| **all** | {} main, {} interaction | {} | {} | {} | {} | | {} | |",
        total[0], total[1], total[2], total[3], total[4], total[5], total[6]
    );
    Ok(())
}

/// `poe bench-trace`: the tracing verifier against stwo's on a leaf proof per channel — the
/// time of each, what the trace holds, and the verdicts on `mutations` random single-byte
/// mutations of each proof (an error exit on any disagreement).
pub(crate) fn bench_trace(mutations: usize, seed: u64, workers: usize) -> Result<(), String> {
    use poe_aggregator::rss::median;
    use poe_aggregator::trace_diff;
    use poe_circle_stark::config::{SecurityConfig, VerifierPolicy};
    use poe_circle_stark::proof::ChannelId;
    use poe_circle_stark::recursion::{AnyTrace, VerifierTrace};
    use poe_circle_stark::validity::{prove_validity_under, trace_validity, verify_validity};
    use poe_circle_stark::venue::sample;

    fn shape<H>(t: &VerifierTrace<H>) -> [usize; 5] {
        [
            t.transcript.len(),
            t.tree_openings.iter().map(|m| m.leaves.len()).sum(),
            t.n_node_hashes(),
            t.deep_queries.len(),
            t.n_folds(),
        ]
    }

    // The golden fixture's batch (tests/fixtures/batch_validity_v2*): eight operations with
    // deposits, withdrawals, trades and a settlement.
    let (venue, ops) = sample::batch_settling(8, 6, 14, 1_795_000_000_000_000, 1_000_000);
    let policy = VerifierPolicy::default();
    let mut proofs = Vec::new();
    for channel in [ChannelId::Blake2s, ChannelId::Poseidon2] {
        let (statement, proof) =
            prove_validity_under(&venue, &ops, SecurityConfig::production(), channel)
                .map_err(|e| e.to_string())?;
        proofs.push((channel, statement, proof));
    }
    println!(
        "poe bench-trace: batch-validity leaf proof of 8 operations, production preset; {mutations} single-byte mutations per channel, {workers} workers"
    );
    println!("| channel | proof KB | stwo verify ms | tracing verify ms | ratio | transcript steps | leaves | node hashes | DEEP queries | FRI folds |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (channel, statement, proof) in &proofs {
        let runs = 11;
        let time = |f: &dyn Fn()| {
            median(
                (0..runs)
                    .map(|_| {
                        let t = Instant::now();
                        f();
                        t.elapsed().as_secs_f64() * 1e3
                    })
                    .collect(),
            )
        };
        let stwo = time(&|| verify_validity(proof.clone(), statement, &policy).unwrap());
        let traced = time(&|| {
            trace_validity(proof.clone(), statement, &policy).unwrap();
        });
        let trace = trace_validity(proof.clone(), statement, &policy).map_err(|e| e.to_string())?;
        let [steps, leaves, nodes, deep, folds] = match &trace {
            AnyTrace::Blake2s(t) => shape(t),
            AnyTrace::Poseidon2(t) => shape(t),
        };
        println!(
            "| {} | {:.0} | {stwo:.1} | {traced:.1} | {:.2} | {steps} | {leaves} | {nodes} | {deep} | {folds} |",
            channel.name(),
            proof.to_bytes().len() as f64 / 1024.0,
            traced / stwo
        );
    }
    println!();
    println!("| channel | mutations | decoder rejected | verified | accepted | same error | stwo panicked | disagreements | s |");
    println!("|---|---:|---:|---:|---:|---|---:|---:|---:|");
    let mut failed = Vec::new();
    for (channel, statement, proof) in &proofs {
        let t = Instant::now();
        let tally = trace_diff::mutations(&proof.to_bytes(), statement, seed, mutations, workers);
        let kinds: Vec<String> = tally
            .same_error
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.0} |",
            channel.name(),
            tally.mutations,
            tally.decode_rejected,
            tally.verified,
            tally.accepted,
            kinds.join(", "),
            tally.stwo_panicked,
            tally.disagreements.len(),
            t.elapsed().as_secs_f64()
        );
        failed.extend(tally.disagreements);
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} disagreements between the verifiers:\n{}",
            failed.len(),
            failed.join("\n")
        ))
    }
}

/// `poe bench-node`: the node AIR's gate component proving the out-of-domain constraint
/// check of batch-validity v3 (all components' compiled constraints folded by Horner), once
/// and `copies` times over, under each channel. Mask values and the coefficient are random:
/// the cost does not depend on them.
pub(crate) fn bench_node(copies: &str, perms: &str, preset: &str) -> Result<(), String> {
    use poe_aggregator::rss::peak_rss_bytes;
    use poe_circle_stark::config::VerifierPolicy;
    use poe_circle_stark::field::{qm31_from_array, M31, MODULUS};
    use poe_circle_stark::proof::ChannelId;
    use poe_circle_stark::recursion::node::program::permute_wires;
    use poe_circle_stark::recursion::node::{fold_program, prove_node_under, verify_node, Builder};
    use poe_circle_stark::validity::{compiled_circuits, prove_validity, ValidityAir};
    use poe_circle_stark::venue::sample;

    let config = crate::preset(preset)?;
    let list = |flag: &str, v: &str| -> Result<Vec<usize>, String> {
        v.split(',')
            .filter(|c| !c.trim().is_empty())
            .map(|c| c.trim().parse().map_err(|e| format!("--{flag} {c}: {e}")))
            .collect()
    };
    let copies = list("copies", copies)?;
    let chains = list("perms", perms)?;
    let (venue, ops) = sample::batch_settling(64, 8, 1, 1_800_000_000_000_000, 1_000);
    let statement = prove_validity(
        &venue,
        &ops,
        poe_circle_stark::config::SecurityConfig::testing(),
    )
    .map_err(|e| e.to_string())?
    .0;
    let circuits: Vec<_> = compiled_circuits(ValidityAir::V3, &statement)
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    // xorshift64: values only need to be arbitrary, not unpredictable.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = || {
        qm31_from_array(std::array::from_fn(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            M31::from_u32_unchecked((state % u64::from(MODULUS)) as u32)
        }))
    };
    println!(
        "poe bench-node: node AIR proofs (gate and permutation components) of batch-validity v3's constraints at a point ({} components, folded) and of permutation chains; {} bits ({preset})",
        circuits.len(),
        config.security_bits()
    );
    println!("| program | ops | gate rows | permutation rows | channel | prove s | verify ms | proof KB |");
    println!("|---|---:|---:|---:|---|---:|---:|---:|");
    let mut programs = Vec::new();
    for &k in &copies {
        let all: Vec<_> = (0..k).flat_map(|_| circuits.iter().cloned()).collect();
        let masks: Vec<_> = all.iter().map(|c| c.mask_values(&mut random)).collect();
        programs.push((
            format!("constraints ×{k}"),
            fold_program(&all, &masks, random())?,
        ));
    }
    for &n in &chains {
        let mut b = Builder::new();
        let mut state = [(); 4].map(|_| b.witness());
        let start: Vec<_> = (0..4).map(|_| random()).collect();
        let mut native: [_; 4] = start.clone().try_into().expect("four");
        for _ in 0..n {
            state = b.permute(state);
            native = permute_wires(native);
        }
        let out = b.public();
        b.assert_eq(state[0], out);
        programs.push((
            format!("{n} permutations"),
            (b.finish(), vec![native[0]], start),
        ));
    }
    for (name, (program, public, witness)) in &programs {
        for channel in [ChannelId::Blake2s, ChannelId::Poseidon2] {
            let t = Instant::now();
            let (proof, key) = prove_node_under(channel, program, public, witness, config)
                .map_err(|e| e.to_string())?;
            let prove_s = t.elapsed().as_secs_f64();
            let runs: Vec<f64> = (0..5)
                .map(|_| {
                    let t = Instant::now();
                    verify_node(&proof, &key, public, &VerifierPolicy::default())
                        .map(|()| t.elapsed().as_secs_f64() * 1e3)
                })
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?;
            println!(
                "| {name} | {} | 2^{} | 2^{} | {} | {prove_s:.2} | {:.1} | {:.0} |",
                program.ops().len(),
                program.log_rows(),
                program.log_perm_rows(),
                channel.name(),
                poe_aggregator::rss::median(runs),
                proof.to_bytes().len() as f64 / 1024.0
            );
        }
    }
    if let Some(rss) = peak_rss_bytes() {
        println!(
            "peak RSS {:.2} GiB (the largest program)",
            rss as f64 / (1u64 << 30) as f64
        );
    }
    Ok(())
}

/// `poe bench-wrap`: node kind W over a batch-validity v3 proof (Poseidon2 channel) of `ops`
/// sample operations, for each child preset and node preset: the W circuit's size, the time to
/// write it with its witness from the tracing verifier's record, to prove and to verify the
/// node, and the node proof's size.
pub(crate) fn bench_wrap(
    ops: usize,
    child_presets: &str,
    node_presets: &str,
) -> Result<(), String> {
    use poe_aggregator::rss::peak_rss_bytes;
    use poe_circle_stark::config::VerifierPolicy;
    use poe_circle_stark::proof::ChannelId;
    use poe_circle_stark::recursion::node::child::Writer;
    use poe_circle_stark::recursion::node::wrap::{statement_digest, validity_w};
    use poe_circle_stark::recursion::AnyTrace;
    use poe_circle_stark::validity::{prove_batches, trace_validity, ValidityAir};
    use poe_circle_stark::venue::sample;

    let presets =
        |v: &str| -> Result<Vec<(String, poe_circle_stark::config::SecurityConfig)>, String> {
            v.split(',')
                .filter(|c| !c.trim().is_empty())
                .map(|c| Ok((c.trim().to_string(), crate::preset(c.trim())?)))
                .collect()
        };
    let (children, nodes) = (presets(child_presets)?, presets(node_presets)?);
    let (venue, batch) = sample::batch_settling(ops, 8, 1, 1_800_000_000_000_000, 1_000);
    println!(
        "poe bench-wrap: node kind W verifying a batch-validity v3 proof of {ops} operations (Poseidon2 channel) whole, and node kind M verifying two such W proofs; node proofs under the Poseidon2 channel"
    );
    println!("| child preset | child KB | node preset | gate rows | permutations | write s | key s | prove s | verify ms | node KB |");
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut tallies = Vec::new();
    let mut breakdowns = Vec::new();
    for (child_name, child_config) in &children {
        let (statement, proof) = prove_batches(
            &venue,
            &[&batch],
            *child_config,
            ChannelId::Poseidon2,
            ValidityAir::V3,
        )
        .map_err(|e| e.to_string())?;
        let child_kb = proof.to_bytes().len() as f64 / 1024.0;
        let sums = proof.claimed_sums.clone();
        let AnyTrace::Poseidon2(trace) =
            trace_validity(proof, &statement, &VerifierPolicy::default())
                .map_err(|e| e.to_string())?
        else {
            return Err("the child is not a Poseidon2 proof".into());
        };
        let t = Instant::now();
        let mut w = Writer::new();
        let wires = validity_w(&mut w, &statement, child_config, &sums, &trace)?;
        let tally = w.tally.clone();
        let (program, witness) = w.finish();
        let public = poe_circle_stark::recursion::node::gadgets::digest_values(&statement_digest(
            &statement,
        ))
        .to_vec();
        program
            .evaluate(&public, &witness)
            .map_err(|e| format!("the honest child fails W: {e}"))?;
        let write_s = t.elapsed().as_secs_f64();
        debug_assert_eq!(wires.public.len(), public.len());
        tallies.push((format!("W over a {child_name} child"), tally));
        for (node_name, node_config) in &nodes {
            let (w_prover, key_s) = timed_key(program.clone(), *node_config);
            let (node, prove_s, verify_ms) = timed_node(&w_prover, &public, &witness)?;
            let key = w_prover.key().clone();
            breakdowns.push((
                format!("W: {child_name} child, {node_name} node"),
                node.stark.size_breakdown(),
            ));
            println!(
                "| {child_name} | {child_kb:.0} | {node_name} | {} (2^{}) | {} (2^{}) | {write_s:.2} | {key_s:.2} | {prove_s:.2} | {:.1} | {:.0} |",
                program.n_rows(),
                program.log_rows(),
                program.perms().len(),
                program.log_perm_rows(),
                verify_ms,
                node.to_bytes().len() as f64 / 1024.0
            );
            drop(w_prover);
            // M over this W twice (the cost does not depend on the children's values).
            let t = Instant::now();
            let (m_program, m_witness, m_public, m_tally) =
                merge_twice(&node, &key, &public, node_config)?;
            let m_write_s = t.elapsed().as_secs_f64();
            let (m_prover, m_key_s) = timed_key(m_program, *node_config);
            let m_program = m_prover.program();
            let (m_node, m_prove_s, m_verify_ms) = timed_node(&m_prover, &m_public, &m_witness)?;
            println!(
                "| M over two W of that row | | {node_name} | {} (2^{}) | {} (2^{}) | {m_write_s:.2} | {m_key_s:.2} | {m_prove_s:.2} | {:.1} | {:.0} |",
                m_program.n_rows(),
                m_program.log_rows(),
                m_program.perms().len(),
                m_program.log_perm_rows(),
                m_verify_ms,
                m_node.to_bytes().len() as f64 / 1024.0
            );
            breakdowns.push((
                format!("M: {child_name} children's W, {node_name} node"),
                m_node.stark.size_breakdown(),
            ));
            // M over this M twice: the next level of the tree. Its circuit is M's when the
            // shapes agree; then the M prover (its committed wiring) proves it.
            let (mm_program, mm_witness, mm_public, _) =
                merge_twice(&m_node, m_prover.key(), &m_public, node_config)?;
            let same = &mm_program == m_program;
            let fresh = (!same).then(|| timed_key(mm_program.clone(), *node_config));
            let mm_prover = fresh.as_ref().map_or(&m_prover, |(p, _)| p);
            let mm_key_s = fresh.as_ref().map(|(_, k)| *k);
            let (mm_node, mm_prove_s, mm_verify_ms) =
                timed_node(mm_prover, &mm_public, &mm_witness)?;
            println!(
                "| M over two M of that row ({}) | | {node_name} | {} (2^{}) | {} (2^{}) | | {} | {mm_prove_s:.2} | {mm_verify_ms:.1} | {:.0} |",
                if same { "the same circuit, its prover kept" } else { "another circuit" },
                mm_program.n_rows(),
                mm_program.log_rows(),
                mm_program.perms().len(),
                mm_program.log_perm_rows(),
                mm_key_s.map_or_else(|| "—".to_string(), |k| format!("{k:.2}")),
                mm_node.to_bytes().len() as f64 / 1024.0
            );
            tallies.push((
                format!("M over {child_name}-child W, {node_name} nodes"),
                m_tally,
            ));
        }
    }
    {
        use poe_circle_stark::recursion::node::{gates, perm};
        println!(
            "\nCommitted columns of every node proof: gate component {} preprocessed + {} main + 8 interaction (two LogUp pairs) at 2^(gate rows); permutation component {} + {} + 16 (four pairs) at 2^(permutations); composition 8 (two QM31 halves)",
            gates::PREPROCESSED.len(),
            gates::MAIN_COLUMNS,
            perm::PREPROCESSED.len(),
            perm::MAIN_COLUMNS,
        );
    }
    for (child, tally) in &tallies {
        println!("\nRows and permutations by part ({child}):\n");
        println!("| part | gate rows | permutations |");
        println!("|---|---:|---:|");
        for (part, rows, perms) in tally {
            println!("| {part} | {rows} | {perms} |");
        }
    }
    println!("\nWhere the node proofs' bytes go (KB):\n");
    println!("| proof | OODS samples | queried values | FRI values | FRI paths | trace paths |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, parts) in &breakdowns {
        let kb: Vec<String> = parts
            .iter()
            .map(|(_, b)| format!("{:.0}", *b as f64 / 1024.0))
            .collect();
        println!("| {name} | {} |", kb.join(" | "));
    }
    if let Some(rss) = peak_rss_bytes() {
        println!(
            "peak RSS {:.2} GiB (the whole run)",
            rss as f64 / (1u64 << 30) as f64
        );
    }
    Ok(())
}

/// A node circuit's prover under the Poseidon2 channel (its wiring committed) and the seconds
/// that took: paid once per circuit, not per proof.
fn timed_key(
    program: poe_circle_stark::recursion::node::Program,
    config: poe_circle_stark::config::SecurityConfig,
) -> (
    poe_circle_stark::recursion::node::NodeProver<
        poe_circle_stark::hash::channel::Poseidon2MerkleChannel,
    >,
    f64,
) {
    let t = Instant::now();
    let prover = poe_circle_stark::recursion::node::NodeProver::new(program, config);
    (prover, t.elapsed().as_secs_f64())
}

/// A node proof by `prover`: the proof, seconds to prove and the median of five
/// verifications in milliseconds.
fn timed_node(
    prover: &poe_circle_stark::recursion::node::NodeProver<
        poe_circle_stark::hash::channel::Poseidon2MerkleChannel,
    >,
    public: &[poe_circle_stark::field::SecureField],
    witness: &[poe_circle_stark::field::SecureField],
) -> Result<(poe_circle_stark::proof::Proof, f64, f64), String> {
    use poe_circle_stark::config::VerifierPolicy;
    use poe_circle_stark::recursion::node::verify_node;
    let t = Instant::now();
    let node = prover.prove(public, witness).map_err(|e| e.to_string())?;
    let prove_s = t.elapsed().as_secs_f64();
    let runs: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            verify_node(&node, prover.key(), public, &VerifierPolicy::default())
                .map(|()| t.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    Ok((node, prove_s, rss::median(runs)))
}

/// The M circuit over node proof `node` taken twice: program, witness, public value (checked
/// natively) and its rows by part.
#[allow(clippy::type_complexity)]
fn merge_twice(
    node: &poe_circle_stark::proof::Proof,
    key: &poe_circle_stark::recursion::node::NodeKey,
    public: &[poe_circle_stark::field::SecureField],
    config: &poe_circle_stark::config::SecurityConfig,
) -> Result<
    (
        poe_circle_stark::recursion::node::Program,
        Vec<poe_circle_stark::field::SecureField>,
        Vec<poe_circle_stark::field::SecureField>,
        Vec<(&'static str, usize, usize)>,
    ),
    String,
> {
    use poe_circle_stark::config::VerifierPolicy;
    use poe_circle_stark::recursion::node::child::Writer;
    use poe_circle_stark::recursion::node::gadgets::digest_values;
    use poe_circle_stark::recursion::node::merge::{merge, merge_digest, NodeChild};
    use poe_circle_stark::recursion::node::trace_node;
    use poe_circle_stark::recursion::AnyTrace;
    let AnyTrace::Poseidon2(trace) =
        trace_node(node, key, public, &VerifierPolicy::default()).map_err(|e| e.to_string())?
    else {
        return Err("the child node is not a Poseidon2 proof".into());
    };
    let output: [_; 2] = [public[0], public[1]];
    let child = NodeChild {
        key,
        output: &output,
        claimed_sums: &node.claimed_sums,
        trace: &trace,
    };
    let mut w = Writer::new();
    merge(&mut w, [child, child], config)?;
    let tally = w.tally.clone();
    let (program, witness) = w.finish();
    let m_public = digest_values(&merge_digest([(key, &output), (key, &output)])).to_vec();
    program
        .evaluate(&m_public, &witness)
        .map_err(|e| format!("the honest children fail M: {e}"))?;
    Ok((program, witness, m_public, tally))
}

/// `poe bench-tree`: a day's tree of node proofs over `leaves` W nodes and its final node.
pub(crate) fn bench_tree(
    ops: usize,
    leaves: usize,
    child_preset: &str,
    node_preset: &str,
    final_preset: &str,
) -> Result<(), String> {
    use poe_aggregator::rss::peak_rss_bytes;
    use poe_circle_stark::config::VerifierPolicy;
    use poe_circle_stark::proof::ChannelId;
    use poe_circle_stark::recursion::node::child::Writer;
    use poe_circle_stark::recursion::node::gadgets::digest_values;
    use poe_circle_stark::recursion::node::merge::key_digest;
    use poe_circle_stark::recursion::node::tree::{day_digest, fold_tree, TreeNode, TreeProver};
    use poe_circle_stark::recursion::node::verify_node;
    use poe_circle_stark::recursion::node::wrap::{statement_digest, validity_w};
    use poe_circle_stark::recursion::AnyTrace;
    use poe_circle_stark::validity::{prove_batches, trace_validity, ValidityAir};
    use poe_circle_stark::venue::sample;

    if leaves == 0 {
        return Err("--leaves must be at least 1".into());
    }
    let (child_config, node_config, final_config) = (
        crate::preset(child_preset)?,
        crate::preset(node_preset)?,
        crate::preset(final_preset)?,
    );
    let policy = VerifierPolicy::default();
    let kb = |p: &poe_circle_stark::proof::Proof| p.to_bytes().len() as f64 / 1024.0;
    println!(
        "poe bench-tree: {leaves} W leaves over a batch-validity v3 proof of {ops} operations ({child_preset}, Poseidon2 channel), M nodes ({node_preset}) pairing them level by level, the final node ({final_preset}: {} bits) over the root",
        final_config.security_bits()
    );
    let (venue, batch) = sample::batch_settling(ops, 8, 1, 1_800_000_000_000_000, 1_000);
    let (statement, proof) = prove_batches(
        &venue,
        &[&batch],
        child_config,
        ChannelId::Poseidon2,
        ValidityAir::V3,
    )
    .map_err(|e| e.to_string())?;
    let sums = proof.claimed_sums.clone();
    let AnyTrace::Poseidon2(trace) =
        trace_validity(proof, &statement, &policy).map_err(|e| e.to_string())?
    else {
        return Err("the child is not a Poseidon2 proof".into());
    };
    let mut w = Writer::new();
    validity_w(&mut w, &statement, &child_config, &sums, &trace)?;
    let (program, witness) = w.finish();
    let shape = (program.log_rows(), program.log_perm_rows());
    let (w_rows, w_perms) = (program.n_rows(), program.perms().len());
    let output = digest_values(&statement_digest(&statement));
    let (w_prover, w_key_s) = timed_key(program, node_config);
    let (w_proof, w_s, w_verify) = timed_node(&w_prover, &output, &witness)?;
    println!(
        "\nTree shape (W's): 2^{} gate rows, 2^{} permutations; every node padded to it\n",
        shape.0, shape.1
    );
    println!(
        "| node | level | gate rows | permutations | key s | prove s | proof KB | verify ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| W | 0 | {w_rows} | {w_perms} | {w_key_s:.2} | {w_s:.2} | {:.0} | {w_verify:.1} |",
        kb(&w_proof)
    );
    let leaf = TreeNode {
        key: w_prover.key().clone(),
        output,
        proof: w_proof,
    };
    drop(w_prover);
    let statements = vec![leaf.statement(); leaves];
    let mut tree = TreeProver::new(shape, node_config, final_config, policy);
    let mut first = true;
    let root = fold_tree(vec![leaf; leaves], |level, a: &TreeNode, b: &TreeNode| {
        let t = Instant::now();
        let m = tree.merge(a, b)?;
        let s = t.elapsed().as_secs_f64();
        let p = tree.programs().0.expect("an M was proven");
        println!(
            "| M{} | {level} | {} | {} | {} | {s:.2} | {:.0} | |",
            if first { " (its wiring committed)" } else { "" },
            p.n_rows(),
            p.perms().len(),
            if first { "in prove" } else { "—" },
            kb(&m.proof)
        );
        first = false;
        Ok::<_, String>(m)
    })
    .ok_or("no leaves")??;
    // What the day's root would bind: here a digest standing for a day statement.
    let bound = poe_circle_stark::hash::poseidon2::hash_elements(
        poe_circle_stark::hash::poseidon2::Domain::DayStatement,
        &[poe_circle_stark::field::M31::from(leaves as u32)],
    );
    let t = Instant::now();
    let last = tree.finish(&root, &bound)?;
    let final_s = t.elapsed().as_secs_f64();
    let f_program = tree.programs().1.expect("the final node was proven");
    let verify = |threads: usize| {
        rss::median_ms_on(threads, 7, || {
            verify_node(&last.proof, &last.key, &last.output, &policy).map_err(|e| e.to_string())
        })
    };
    let (one, all) = (verify(1)?, verify(0)?);
    println!(
        "| final (wiring committed in prove) | root | {} | {} | in prove | {final_s:.2} | {:.0} | {one:.1} (1 core), {all:.1} (all) |",
        f_program.n_rows(),
        f_program.perms().len(),
        kb(&last.proof)
    );
    // The auditor's side: the digest rebuilt from the leaves' statements and the M key.
    let m_key = tree
        .m_key()
        .map_or_else(|| leaf_key_for_one(&statements), key_digest);
    let expected = day_digest(&statements, m_key, &bound).ok_or("no leaves")?;
    if digest_values(&expected) != last.output {
        return Err("the final node's output is not the digest rebuilt from the leaves".into());
    }
    println!(
        "\nfinal node: 2^{} gate rows, 2^{} permutations at log blowup {}, {} queries; its output equals the digest rebuilt from the {leaves} leaves' statements",
        last.key.log_rows,
        last.key.log_perm_rows,
        final_config.log_blowup(),
        final_config.n_queries()
    );
    println!("\nWhere the final proof's bytes go (KB):\n");
    println!("| OODS samples | queried values | FRI values | FRI paths | trace paths |");
    println!("|---:|---:|---:|---:|---:|");
    let parts: Vec<String> = last
        .proof
        .stark
        .size_breakdown()
        .iter()
        .map(|(_, b)| format!("{:.1}", *b as f64 / 1024.0))
        .collect();
    println!("| {} |", parts.join(" | "));
    if let Some(rss) = peak_rss_bytes() {
        println!(
            "peak RSS {:.2} GiB (the whole run)",
            rss as f64 / (1u64 << 30) as f64
        );
    }
    Ok(())
}

/// With one leaf there is no M node: any key digest will do (the root is the leaf).
fn leaf_key_for_one(
    statements: &[poe_circle_stark::recursion::node::tree::NodeStatement],
) -> poe_circle_stark::hash::poseidon2::Digest {
    statements[0].0
}

/// `poe bench-restart`: start-up of intake over stores of `sizes` operations (batches of
/// `batch_ops`, one rollup): opening the store (redb's page check and every record's digest)
/// and rebuilding the rollup's state, by full replay and from the latest snapshot.
pub(crate) fn bench_restart(sizes: &[usize], batch_ops: usize, runs: usize) -> Result<(), String> {
    use poe_ingest::commitment::Scheme;
    use poe_ingest::intake::{Intake, OpenOptions, Outcome};
    use poe_ingest::store::Store;
    use poe_ingest::testkit::{client, realistic_ops, registry, T0};
    if batch_ops < 64 || runs == 0 {
        return Err("--batch-ops must be at least 64 and --runs at least 1".into());
    }
    println!(
        "poe bench-restart: intake start-up over a store of N operations (one rollup, batches of \
         {batch_ops}, 50 accounts, ~95% trades), {runs} run(s), medians"
    );
    println!(
        "| stored ops | batches | store MB | open store s | replay all s | start, full replay s | start from snapshot s | ratio |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &n in sizes {
        let dir =
            std::env::temp_dir().join(format!("poe-bench-restart-{n}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let path = dir.join("intake.redb");
        let mut c = client("bench", 5, Scheme::Keccak256);
        let reg = registry(&[&c]);
        let batches = n.div_ceil(batch_ops);
        {
            let mut intake = Intake::create(reg.clone(), &path).map_err(|e| e.to_string())?;
            let t = Instant::now();
            for b in 0..batches {
                let start = T0 + (b * batch_ops) as u64;
                let ops = realistic_ops(batch_ops, 1_000 + b as u64, start);
                let body = c.next_batch(&ops, "none", b"");
                match intake.submit(&body, start + batch_ops as u64) {
                    Ok(Outcome::Accepted(_)) => {}
                    other => return Err(format!("batch {b}: {other:?}")),
                }
                if (b + 1) % 100 == 0 || b + 1 == batches {
                    eprintln!(
                        "  {n} ops: {}/{batches} batches stored ({:.0} s)",
                        b + 1,
                        t.elapsed().as_secs_f64()
                    );
                }
            }
            intake.snapshot_all().map_err(|e| e.to_string())?;
        }
        let mb = std::fs::metadata(&path).map_err(|e| e.to_string())?.len() as f64 / 1e6;
        let time = |f: &dyn Fn() -> Result<(), String>| -> Result<f64, String> {
            let mut xs = Vec::new();
            for _ in 0..runs {
                let t = Instant::now();
                f()?;
                xs.push(t.elapsed().as_secs_f64());
            }
            Ok(rss::median(xs))
        };
        let open = time(&|| Store::open(&path).map(drop).map_err(|e| e.to_string()))?;
        let full = time(&|| {
            Intake::open_with(reg.clone(), &path, OpenOptions { snapshots: false })
                .map(drop)
                .map_err(|e| e.to_string())
        })?;
        let snap = time(&|| {
            Intake::open_with(reg.clone(), &path, OpenOptions { snapshots: true })
                .map(drop)
                .map_err(|e| e.to_string())
        })?;
        println!(
            "| {n} | {batches} | {mb:.0} | {open:.2} | {:.2} | {full:.2} | {snap:.2} | {:.1}× |",
            full - open,
            full / snap
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
