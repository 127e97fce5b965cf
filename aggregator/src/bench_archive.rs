//! `poe bench-archive`: writing a day's bundle and auditing it, at 10^4 … 10^6 operations.
//!
//! The batches are realistic operation mixes (`testkit::realistic_ops`) in 10k-operation
//! batches over four rollups. They are not run through intake (that is `bench-load`): state
//! roots are a synthetic chain, which the archive and the audit only check for continuity.

use std::time::Instant;

use poe_archive::bundle::{write_day, ArchivedOp, BatchInput, DayInput, RollupInfo};
use poe_archive::records::NamedInstrument;
use poe_archive::{audit, AuditOptions, Day, LocalDir};
use poe_circle_stark::config::SecurityConfig;
use poe_circle_stark::day::prove_day;
use poe_circle_stark::day::statement::BatchStatement;
use poe_circle_stark::hash::poseidon2::{hash_elements, Digest, Domain};
use poe_circle_stark::venue::OP_LIMBS;
use poe_ingest::commitment::Scheme;
use poe_ingest::testkit::{client, instruments, realistic_ops, signed_submission, T0};

/// One measured size.
#[derive(Debug, Clone)]
pub struct Row {
    /// Operations in the day.
    pub ops: usize,
    /// Batches.
    pub batches: usize,
    /// Seconds to write the bundle, day proof included.
    pub write_s: f64,
    /// Of which the day proof.
    pub prove_s: f64,
    /// Bytes on disk (all files).
    pub bytes: u64,
    /// Root proof bytes.
    pub proof_bytes: u64,
    /// Median full audit, seconds.
    pub audit_s: f64,
    /// Median `--proof-only` audit, milliseconds.
    pub proof_only_ms: f64,
    /// With leaf proofs: what making and checking them costs.
    pub leaves: Option<LeafRow>,
}

/// The auditor's alternative to the root proof: every batch's leaf proof.
#[derive(Debug, Clone, Copy)]
pub struct LeafRow {
    /// Seconds to prove every leaf (production security).
    pub prove_s: f64,
    /// Bytes of all leaf proofs.
    pub bytes: u64,
    /// Median milliseconds to verify every leaf proof.
    pub verify_ms: f64,
}

fn chain_root(rollup: u32, i: u64) -> Digest {
    use poe_circle_stark::field::M31;
    hash_elements(
        Domain::Message,
        &[
            M31::from_u32_unchecked(rollup),
            M31::from_u32_unchecked(i as u32),
        ],
    )
}

/// Builds, writes and audits one day of `ops` operations under `dir`.
///
/// # Errors
/// Archive or audit failures, as text.
pub fn run(
    ops: usize,
    batch_ops: usize,
    leaves: bool,
    dir: &std::path::Path,
) -> Result<Row, String> {
    let day = Day::of_us(T0);
    let table: Vec<NamedInstrument> = instruments()
        .into_iter()
        .map(|(name, instrument)| NamedInstrument { name, instrument })
        .collect();
    let terms: Vec<_> = table.iter().map(|n| n.instrument.clone()).collect();
    let n_rollups = 4u32;
    // Real keys and signatures: the audit recomputes every batch id and checks every
    // signature and native commitment.
    let signers: Vec<_> = (1..=n_rollups)
        .map(|id| client(&format!("rollup-{id}"), u64::from(id), Scheme::Keccak256))
        .collect();
    let rollups: Vec<RollupInfo> = signers
        .iter()
        .zip(1..=n_rollups)
        .map(|(c, id)| RollupInfo {
            id,
            name: c.name.as_str().to_string(),
            native_scheme: "keccak256".into(),
            public_key: c.public_key().to_bytes_be(),
            instruments: table.clone(),
        })
        .collect();
    let n_batches = ops.div_ceil(batch_ops);
    let mut per_rollup: Vec<Vec<BatchInput>> = vec![Vec::new(); n_rollups as usize];
    for b in 0..n_batches {
        let size = batch_ops.min(ops - b * batch_ops);
        let r = (b % n_rollups as usize) as u32 + 1;
        let k = per_rollup[r as usize - 1].len() as u64;
        let committed = realistic_ops(size.max(64), b as u64, T0 + b as u64 * 1_000_000);
        let committed = committed[..size].to_vec();
        let proof = format!("proof {b}").into_bytes();
        let sub = signed_submission(
            &signers[r as usize - 1],
            k + 1,
            chain_root(r, k),
            chain_root(r, k + 1),
            committed,
            "groth16",
            &proof,
        );
        per_rollup[r as usize - 1].push(BatchInput {
            statement: BatchStatement::of_batch(
                r,
                k + 1,
                chain_root(r, k),
                chain_root(r, k + 1),
                sub.ops.iter().map(|o| o.op),
                &terms,
            ),
            batch_id: sub.batch_id(),
            accepted_us: T0 + b as u64 * 1_000_000,
            native_commitment: sub.header.commitment,
            rollup_proof_system: "groth16".into(),
            rollup_vk_id: None,
            signature: (sub.signature.0.to_bytes_be(), sub.signature.1.to_bytes_be()),
            rollup_proof: proof,
            leaf_proof: None,
            ops: sub
                .ops
                .iter()
                .map(|o| ArchivedOp {
                    venue_trade_id: o.trade_id.as_str().to_string(),
                    op: o.op,
                })
                .collect(),
        });
    }
    let mut input = DayInput {
        day,
        rollups,
        batches: per_rollup.into_iter().flatten().collect(),
        root_config: SecurityConfig::production(),
        // The archive's costs are measured over a day-tree proof: the bundle's files are what
        // this bench is about.
        recursive: false,
        leaf_proofs: true,
    };
    let leaf_row = if leaves {
        let t = Instant::now();
        for b in &mut input.batches {
            b.leaf_proof = Some(crate::day::leaf_proof(b, None, SecurityConfig::production())?.0);
        }
        let prove_s = t.elapsed().as_secs_f64();
        let mut times = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            for b in &input.batches {
                let statement = poe_circle_stark::data_root::DataRootStatement {
                    n_records: b.statement.n_ops,
                    record_limbs: OP_LIMBS as u32,
                    root: b.statement.data_root,
                };
                poe_circle_stark::data_root::verify_data_root_bytes(
                    b.leaf_proof.as_deref().expect("proven above"),
                    &statement,
                    &poe_circle_stark::config::VerifierPolicy::default(),
                )
                .map_err(|e| format!("leaf of seq {}: {e}", b.statement.seq))?;
            }
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        Some(LeafRow {
            prove_s,
            bytes: input
                .batches
                .iter()
                .map(|b| b.leaf_proof.as_ref().map_or(0, Vec::len) as u64)
                .sum(),
            verify_ms: times[1],
        })
    } else {
        None
    };
    let _ = std::fs::remove_dir_all(dir);
    let storage = LocalDir::new(dir);
    let t = Instant::now();
    let mut prove_s = 0.0;
    let summary = write_day(
        &storage,
        &input,
        |statements, manifest_hash| {
            let t = Instant::now();
            let r = prove_day(
                day.0,
                statements,
                manifest_hash,
                SecurityConfig::production(),
            )
            .map(|(_, p)| poe_archive::bundle::RootFiles::root(p.to_bytes()))
            .map_err(|e| e.to_string());
            prove_s = t.elapsed().as_secs_f64();
            r
        },
        &mut |_| {},
    )
    .map_err(|e| e.to_string())?;
    let write_s = t.elapsed().as_secs_f64();
    drop(input);
    let day_dir = LocalDir::new(dir.join(&summary.prefix));
    let bytes: u64 = poe_archive::Storage::list(&day_dir, "")
        .map_err(|e| e.to_string())?
        .iter()
        .map(|(_, n)| n)
        .sum();
    let mut full = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let r = audit(&day_dir, &AuditOptions::default(), &mut |_, _| {});
        full.push(t.elapsed().as_secs_f64());
        if !r.passed() {
            return Err(format!("audit failed: {:?}", r.checks));
        }
    }
    let mut quick = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let r = audit(
            &day_dir,
            &AuditOptions {
                proof_only: true,
                ..AuditOptions::default()
            },
            &mut |_, _| {},
        );
        quick.push(t.elapsed().as_secs_f64() * 1e3);
        if !r.passed() {
            return Err(format!("proof-only audit failed: {:?}", r.checks));
        }
    }
    full.sort_by(f64::total_cmp);
    quick.sort_by(f64::total_cmp);
    Ok(Row {
        ops,
        batches: n_batches,
        write_s,
        prove_s,
        bytes,
        proof_bytes: summary.statement.root_proof_bytes,
        audit_s: full[1],
        proof_only_ms: quick[2],
        leaves: leaf_row,
    })
}
