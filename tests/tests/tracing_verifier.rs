//! The tracing verifier (`recursion::trace`) against stwo's verifier on the golden leaf proofs
//! (`tests/fixtures/batch_validity_v2*.proof`, Blake2s and Poseidon2-M31 channels): it accepts
//! both, records a consistent trace of every value it computed, and gives stwo's verdict on
//! random single-byte mutations of each proof — and stwo's error, wherever stwo returns one
//! rather than panicking. The same for fresh batch-validity v3 proofs (preprocessed range
//! table, closure input component), which have no golden fixture yet.

use std::path::PathBuf;

use poe_aggregator::trace_diff::mutations;
use poe_circle_stark::config::VerifierPolicy;
use poe_circle_stark::proof::Proof;
use poe_circle_stark::recursion::trace::{AnyTrace, TranscriptOp, VerifierTrace};
use poe_circle_stark::validity::{trace_validity, ValidityStatement};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

const PROOFS: [&str; 2] = [
    "batch_validity_v2.proof",
    "batch_validity_v2_poseidon2.proof",
];

fn golden(name: &str) -> (Vec<u8>, ValidityStatement) {
    let proof = std::fs::read(fixture(name)).expect("fixture proof");
    let statement = std::fs::read(fixture("batch_validity_v2.statement")).expect("statement");
    (
        proof,
        ValidityStatement::from_bytes(&statement).expect("fixture statement decodes"),
    )
}

/// What a trace must satisfy on its own: every recorded value follows from the ones before.
fn check_consistent<H: PartialEq + Copy + std::fmt::Debug>(t: &VerifierTrace<H>, n_queries: usize) {
    let prelude: Vec<&str> = t.prelude.iter().map(|s| s.0).collect();
    assert_eq!(
        prelude,
        [
            "preamble",
            "preprocessed root",
            "main root",
            "relation elements",
            "LogUp sums",
            "interaction root"
        ]
    );
    assert_eq!(t.prelude.last().unwrap().1, t.entry_state);
    let labels: Vec<&str> = t.transcript.iter().map(|s| s.label).collect();
    assert_eq!(
        &labels[..4],
        &[
            "composition coefficient",
            "composition root",
            "OODS point parameter",
            "sampled values"
        ]
    );
    assert_eq!(labels.last(), Some(&"query positions"));
    assert!(t.transcript.windows(2).all(|w| w[0].state != w[1].state
        || matches!(
            w[1].op,
            TranscriptOp::DrawFelt(_) | TranscriptOp::DrawU32s(_)
        )));
    assert_eq!(t.composition_oods_eval, t.composition_from_constraints);
    assert_eq!(t.raw_queries.len(), n_queries);
    assert!(t.queries.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(t.deep_queries.len(), t.queries.len());
    assert_eq!(t.trees.len(), 4);
    for (tree, opening) in t.trees.iter().zip(&t.tree_openings) {
        if tree.height == 0 {
            assert!(opening.nodes.is_empty());
            continue;
        }
        assert_eq!(opening.nodes.last().unwrap().parent, tree.root);
        assert_eq!(opening.nodes.last().unwrap().layer, tree.height);
    }
    // Each FRI layer's Merkle path ends at its commitment, and its folds are the next layer's
    // opened values at the queried positions.
    // The golden proofs fold one step per layer: each fold is (a + b) + α·(a − b)·t⁻¹ with t
    // the subset's first point's y (first layer) or x (line layers).
    let first_domain =
        stwo::core::poly::circle::CanonicCoset::new(t.fri_layers[0].log_size).circle_domain();
    let mut line = stwo::core::poly::line::LineDomain::new(stwo::core::circle::Coset::half_odds(
        t.fri_layers[0].log_size - 1,
    ));
    for (k, layer) in t.fri_layers.iter().enumerate() {
        assert_eq!(layer.merkle.nodes.last().unwrap().parent, layer.commitment);
        assert_eq!(layer.fold_step, 1);
        for f in &layer.folds {
            let at = stwo::core::utils::bit_reverse_index(2 * f.position, layer.log_size);
            let twiddle = if k == 0 {
                first_domain.at(at).y
            } else {
                line.at(at)
            };
            let [a, b] = [f.values[0], f.values[1]];
            assert_eq!(
                f.folded,
                (a + b) + layer.alpha * ((a - b) * twiddle.inverse())
            );
        }
        if k > 0 {
            line = line.double();
        }
        if let Some(next) = t.fri_layers.get(k + 1) {
            assert_eq!(next.log_size + 1, layer.log_size);
        }
    }
    // The DEEP values are the first layer's opened values.
    let first = &t.fri_layers[0];
    for q in &t.deep_queries {
        let (start, values) = first
            .folds
            .iter()
            .map(|f| (f.position * 2, &f.values))
            .find(|(s, _)| q.position >> 1 << 1 == *s)
            .expect("a fold for every query");
        assert_eq!(values[q.position - start], q.value);
    }
    assert_eq!(
        t.last_layer_checks.len(),
        t.fri_layers.last().unwrap().folds.len()
    );
}

/// Blake2s's state can be set: every draw that follows a mix is replayed from the state
/// recorded after the mix (the draw counter restarts at every mix).
fn check_blake2s_states<H>(t: &VerifierTrace<H>) {
    use poe_circle_stark::recursion::trace::TranscriptStep;
    use stwo::core::channel::{Blake2sChannel, Channel};
    use stwo::core::vcs::blake2_hash::Blake2sHash;
    let channel_at = |state: &[u32; 8]| {
        let mut bytes = [0u8; 32];
        for (chunk, w) in bytes.chunks_mut(4).zip(state) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        let mut c = Blake2sChannel::default();
        c.update_digest(Blake2sHash(bytes));
        c
    };
    let mut replayed = 0;
    let mut previous = TranscriptStep {
        label: "entry",
        op: TranscriptOp::MixRoot,
        state: t.entry_state,
    };
    for step in &t.transcript {
        if let (TranscriptOp::DrawFelt(x), false) = (
            &step.op,
            matches!(
                previous.op,
                TranscriptOp::DrawFelt(_) | TranscriptOp::DrawU32s(_)
            ),
        ) {
            assert_eq!(
                channel_at(&previous.state).draw_secure_felt(),
                *x,
                "{}",
                step.label
            );
            replayed += 1;
        }
        previous = step.clone();
    }
    // Composition coefficient, OODS parameter, DEEP coefficient and every FRI alpha.
    assert_eq!(replayed, 3 + t.fri_layers.len());
}

#[test]
fn tracing_verifier_accepts_the_golden_proofs_with_a_consistent_trace() {
    for name in PROOFS {
        let (bytes, statement) = golden(name);
        let proof = Proof::from_bytes(&bytes).unwrap();
        let n_queries = proof.config.n_queries() as usize;
        let trace = trace_validity(proof, &statement, &VerifierPolicy::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        match &trace {
            AnyTrace::Blake2s(t) => {
                check_consistent(t, n_queries);
                check_blake2s_states(t);
            }
            AnyTrace::Poseidon2(t) => check_consistent(t, n_queries),
        }
    }
}

/// Mutations per golden proof in CI (enough to meet every kind of rejection asserted below);
/// `poe bench-trace` runs 10,000 per channel in release (BENCHMARKS.md).
const MUTATIONS_PER_PROOF: usize = 300;

#[test]
fn tracing_verifier_agrees_with_stwo_on_single_byte_mutations() {
    for (seed, name) in PROOFS.into_iter().enumerate() {
        let (bytes, statement) = golden(name);
        let tally = mutations(
            &bytes,
            &statement,
            100 * seed as u64,
            MUTATIONS_PER_PROOF,
            2,
        );
        println!("{name}: {tally:?}");
        assert!(tally.disagreements.is_empty(), "{:#?}", tally.disagreements);
        assert_eq!(tally.accepted, 0, "{name}: a mutated proof was accepted");
        assert_eq!(tally.mutations, MUTATIONS_PER_PROOF);
        // The mutations must reach the verifiers, not only the decoder, and both verifiers
        // must fail in the Merkle, FRI and OODS checks, not just somewhere.
        assert!(tally.verified * 2 > tally.mutations, "{name}: {tally:?}");
        for kind in ["Merkle", "Fri", "OodsMismatch"] {
            assert!(
                tally.same_error.get(kind).copied().unwrap_or(0) > 0,
                "{name}: no {kind} rejection: {tally:?}"
            );
        }
    }
}

/// Mutations per channel of a fresh v3 proof: fewer than the golden proofs', which already
/// cover the shared verifier; v3 adds a non-empty preprocessed tree and a twelfth component.
const V3_MUTATIONS: usize = 300;

#[test]
fn tracing_verifier_agrees_with_stwo_on_v3_proofs_and_their_mutations() {
    use poe_circle_stark::config::SecurityConfig;
    use poe_circle_stark::proof::ChannelId;
    use poe_circle_stark::validity::{prove_batches, ValidityAir};
    use poe_circle_stark::venue::sample;
    let (venue, ops) = sample::batch_settling(64, 8, 5, 1_800_000_000_000_000, 1_000);
    for (seed, channel) in [ChannelId::Blake2s, ChannelId::Poseidon2]
        .into_iter()
        .enumerate()
    {
        let (statement, proof) = prove_batches(
            &venue,
            &[&ops],
            SecurityConfig::production(),
            channel,
            ValidityAir::V3,
        )
        .unwrap();
        let bytes = proof.to_bytes();
        let n_queries = proof.config.n_queries() as usize;
        let trace = trace_validity(proof, &statement, &VerifierPolicy::default())
            .unwrap_or_else(|e| panic!("{channel:?}: {e}"));
        match &trace {
            AnyTrace::Blake2s(t) => {
                check_consistent(t, n_queries);
                check_blake2s_states(t);
            }
            AnyTrace::Poseidon2(t) => check_consistent(t, n_queries),
        }
        let tally = mutations(&bytes, &statement, 7 + seed as u64, V3_MUTATIONS, 2);
        println!("v3 {channel:?}: {tally:?}");
        assert!(tally.disagreements.is_empty(), "{:#?}", tally.disagreements);
        assert_eq!(
            tally.accepted, 0,
            "{channel:?}: a mutated proof was accepted"
        );
        assert!(
            tally.verified * 2 > tally.mutations,
            "{channel:?}: {tally:?}"
        );
        assert!(
            tally.same_error.get("Merkle").copied().unwrap_or(0) > 0,
            "{channel:?}: no Merkle rejection: {tally:?}"
        );
    }
}
