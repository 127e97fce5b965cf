//! The tracing verifier against stwo's (`poe bench-trace` and the end-to-end test): both run
//! on honest leaf proofs and on random single-byte mutations of them, and must give the same
//! verdict every time — and the same error wherever stwo returns one instead of panicking.

use std::collections::BTreeMap;
use std::sync::Arc;

use poe_circle_stark::config::VerifierPolicy;
use poe_circle_stark::error::VerifyError;
use poe_circle_stark::proof::Proof;
use poe_circle_stark::validity::{trace_validity, verify_validity, ValidityStatement};

/// Worker threads are named with this prefix: stwo's caught panics on their mutated proofs
/// stay off the output.
const THREAD_PREFIX: &str = "mutation-";

/// Outcome of a mutation run.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub mutations: usize,
    /// Mutations the proof decoder refused (canonical encoding): neither verifier runs.
    pub decode_rejected: usize,
    /// Mutations both verifiers ran on.
    pub verified: usize,
    /// Both accepted (a mutated proof that still verifies; expected 0).
    pub accepted: usize,
    /// stwo panicked (caught, a structure error) and the tracing verifier rejected.
    pub stwo_panicked: usize,
    /// Both rejected with the same error, by error kind.
    pub same_error: BTreeMap<String, usize>,
    /// Cases where the verdicts or errors differ.
    pub disagreements: Vec<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.mutations += other.mutations;
        self.decode_rejected += other.decode_rejected;
        self.verified += other.verified;
        self.accepted += other.accepted;
        self.stwo_panicked += other.stwo_panicked;
        for (k, v) in other.same_error {
            *self.same_error.entry(k).or_default() += v;
        }
        self.disagreements.extend(other.disagreements);
    }
}

fn kind(e: &VerifyError) -> String {
    let s = format!("{e:?}");
    s.split(['(', ' ', '{']).next().unwrap_or("?").to_string()
}

/// `n` cases from `seed`: each flips a random nonzero pattern into one random byte.
fn run(bytes: &[u8], statement: &ValidityStatement, seed: u64, n: usize) -> Tally {
    let policy = VerifierPolicy::default();
    let mut rng = crate::demo::Rng(seed);
    let mut tally = Tally::default();
    for case in 0..n {
        let mut m = bytes.to_vec();
        let at = (rng.next() % m.len() as u64) as usize;
        m[at] ^= (rng.next() % 255 + 1) as u8;
        tally.mutations += 1;
        let Ok(proof) = Proof::from_bytes(&m) else {
            tally.decode_rejected += 1;
            continue;
        };
        tally.verified += 1;
        let stwo = verify_validity(proof.clone(), statement, &policy);
        let traced = trace_validity(proof, statement, &policy).map(|_| ());
        match (&stwo, &traced) {
            (Ok(()), Ok(())) => tally.accepted += 1,
            (Err(VerifyError::Structure(_)), Err(_)) => tally.stwo_panicked += 1,
            (Err(a), Err(b)) if a == b => *tally.same_error.entry(kind(a)).or_default() += 1,
            _ => tally.disagreements.push(format!(
                "seed {seed} case {case}: byte {at}: stwo {stwo:?}, tracer {traced:?}"
            )),
        }
    }
    tally
}

/// Runs `n` mutations of `bytes` split over `workers` threads (seeds `seed..seed+workers`).
pub fn mutations(
    bytes: &[u8],
    statement: &ValidityStatement,
    seed: u64,
    n: usize,
    workers: usize,
) -> Tally {
    let workers = workers.max(1);
    let previous = Arc::new(std::panic::take_hook());
    let fallback = previous.clone();
    std::panic::set_hook(Box::new(move |info| {
        if !std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with(THREAD_PREFIX))
        {
            fallback(info);
        }
    }));
    let bytes: Arc<[u8]> = bytes.into();
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let (bytes, statement) = (bytes.clone(), statement.clone());
            let share = n / workers + usize::from(w < n % workers);
            std::thread::Builder::new()
                .name(format!("{THREAD_PREFIX}{w}"))
                .spawn(move || run(&bytes, &statement, seed + w as u64, share))
                .expect("spawning a mutation worker")
        })
        .collect();
    let mut tally = Tally::default();
    for h in handles {
        tally.merge(h.join().expect("a mutation worker"));
    }
    drop(std::panic::take_hook());
    std::panic::set_hook(Box::new(move |info| previous(info)));
    tally
}
