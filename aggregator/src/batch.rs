//! A synthetic batch of cash movements, proven and verified end to end.

use std::time::{Duration, Instant};

use poe_circle_stark::config::{SecurityConfig, VerifierPolicy};
use poe_circle_stark::data_root::prove_data_root;
use poe_circle_stark::data_root::verify_data_root_bytes;
use poe_circle_stark::data_root::{DataRootStatement, LeafEval, NodeEval};
use poe_circle_stark::encoding::{CashMovement, Direction, Record};
use poe_circle_stark::error::{ProveError, VerifyError};
use poe_circle_stark::field::M31;
use poe_circle_stark::hash::merkle::n_internal_nodes;
use poe_circle_stark::hash::poseidon2::sponge::n_absorptions;

/// What went wrong in a batch run.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Proving failed.
    #[error(transparent)]
    Prove(#[from] ProveError),
    /// The fresh proof did not verify: a bug, reported as such.
    #[error("the proof just made does not verify: {0}")]
    Verify(#[from] VerifyError),
}

/// Deterministic pseudo-random cash movements (SplitMix64 from `seed`).
pub fn synthetic_records(n: usize, seed: u64) -> Vec<CashMovement> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let start_us = 1_795_000_000_000_000u64;
    (0..n)
        .map(|i| CashMovement {
            direction: if next() % 4 == 0 {
                Direction::Withdrawal
            } else {
                Direction::Deposit
            },
            account: (next() % 10_000) as u32,
            amount: next() % 1_000_000_000_000,
            timestamp_us: start_us + i as u64 * 1_000 + next() % 1_000,
        })
        .collect()
}

/// Verifications per run; the report keeps the median.
pub const VERIFY_RUNS: usize = 5;

/// Measurements of one run.
#[derive(Debug, Clone)]
pub struct BatchReport {
    /// The proven statement.
    pub statement: DataRootStatement,
    /// Parameters.
    pub config: SecurityConfig,
    /// Poseidon2 permutations inside the proof (leaf sponges + internal nodes).
    pub permutations: usize,
    /// Rows (log2) of the leaf and node components.
    pub log_rows: (u32, u32),
    /// Committed main-trace columns.
    pub columns: usize,
    /// Wall time of proving (trace generation included).
    pub prove: Duration,
    /// Wall time of decoding + verifying the bytes (median of [`VERIFY_RUNS`]).
    pub verify: Duration,
    /// Canonical proof size.
    pub proof_bytes: usize,
    /// The canonical proof.
    pub proof: Vec<u8>,
}

impl BatchReport {
    /// Records per second of proving.
    pub fn records_per_second(&self) -> f64 {
        f64::from(self.statement.n_records) / self.prove.as_secs_f64()
    }
}

/// Proves `n` synthetic records under `config`, then verifies the bytes as an auditor would
/// (with the default 100-bit policy unless the config is below it, which is then allowed
/// explicitly).
///
/// # Errors
/// [`BatchError`] if proving fails or the proof does not verify.
pub fn run(n: usize, seed: u64, config: SecurityConfig) -> Result<BatchReport, BatchError> {
    let records: Vec<M31> = synthetic_records(n, seed)
        .iter()
        .flat_map(Record::encode)
        .collect();
    let limbs = CashMovement::LIMBS;
    let t = Instant::now();
    let (statement, proof) = prove_data_root(&records, limbs, config)?;
    let prove = t.elapsed();
    let bytes = proof.to_bytes();
    let policy = if config.security_bits() >= VerifierPolicy::default().min_security_bits {
        VerifierPolicy::default()
    } else {
        VerifierPolicy::insecure_for_tests()
    };
    // The first verification after proving pays for page faults of a heap the prover just
    // released; report the median of five, as an auditor's fresh process sees it.
    let mut times = Vec::with_capacity(VERIFY_RUNS);
    for _ in 0..VERIFY_RUNS {
        let t = Instant::now();
        verify_data_root_bytes(&bytes, &statement, &policy)?;
        times.push(t.elapsed());
    }
    times.sort();
    let verify = times[VERIFY_RUNS / 2];
    Ok(BatchReport {
        statement,
        config,
        permutations: n * n_absorptions(limbs) + n_internal_nodes(n),
        log_rows: statement.log_rows(),
        columns: LeafEval::n_columns(limbs) + NodeEval::N_COLUMNS,
        prove,
        verify,
        proof_bytes: bytes.len(),
        proof: bytes,
    })
}
