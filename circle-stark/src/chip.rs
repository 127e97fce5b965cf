//! The Poseidon2-M31 hash chip: a component whose rows are permutations, offered to other
//! components through the LogUp relation `Poseidon2Io(input[16] ‖ output[16])`
//! (`specs/poseidon2.md` §6).
//!
//! A component that needs "`P(x) = y`" consumes `(x ‖ y)` with multiplicity −1; the chip yields
//! each row's `(x ‖ P(x))` with the multiplicity committed in its `uses` column. The relation
//! balances only if every consumed pair is a true permutation evaluation. Consumers keep narrow
//! rows (32 relation values instead of 284 cells per permutation) and share one chip.

use stwo_constraint_framework::{
    relation, EvalAtRow, FrameworkComponent, FrameworkEval, RelationEntry,
};

use crate::air::{AirSbox, PERM_CELLS};
use crate::poseidon2::{permute_generic, WIDTH};

relation!(Poseidon2Io, 32);

/// Columns: `uses, input[16], PERM_CELLS`.
#[derive(Debug, Clone)]
pub struct Poseidon2ChipEval {
    /// log2 of the row count.
    pub log_rows: u32,
    /// The relation's challenges.
    pub relation: Poseidon2Io,
}

impl Poseidon2ChipEval {
    /// Main-trace columns.
    pub const N_COLUMNS: usize = 1 + WIDTH + PERM_CELLS;
}

impl FrameworkEval for Poseidon2ChipEval {
    fn log_size(&self) -> u32 {
        self.log_rows
    }

    fn max_constraint_log_degree_bound(&self) -> u32 {
        self.log_rows + 1
    }

    fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
        let uses = eval.next_trace_mask();
        let input: [E::F; WIDTH] = std::array::from_fn(|_| eval.next_trace_mask());
        let output = permute_generic(input.clone(), &mut AirSbox { eval: &mut eval });
        let values: Vec<E::F> = input.into_iter().chain(output).collect();
        eval.add_to_relation(RelationEntry::new(
            &self.relation,
            E::EF::from(uses),
            &values,
        ));
        eval.finalize_logup_in_pairs();
        eval
    }
}

/// The chip component.
pub type Poseidon2Chip = FrameworkComponent<Poseidon2ChipEval>;

/// Writes one chip row: `uses, input, cells`; returns the output.
pub fn fill_chip_row(
    cells: &mut [crate::field::M31],
    uses: u32,
    input: [crate::field::M31; WIDTH],
) -> [crate::field::M31; WIDTH] {
    use crate::field::M31;
    use crate::poseidon2::RecordingSbox;
    cells[0] = M31::from_u32_unchecked(uses);
    cells[1..1 + WIDTH].copy_from_slice(&input);
    permute_generic(input, &mut RecordingSbox::new(&mut cells[1 + WIDTH..]))
}

#[cfg(all(test, feature = "prover"))]
mod tests {
    use num_traits::{One, Zero};
    use stwo::core::air::Component;
    use stwo::core::channel::{Blake2sChannel, Channel};
    use stwo::core::fields::qm31::SecureField;
    use stwo::core::pcs::{CommitmentSchemeVerifier, TreeVec};
    use stwo::core::poly::circle::CanonicCoset;
    use stwo::core::vcs_lifted::blake2_merkle::Blake2sMerkleChannel;
    use stwo::core::verifier::verify;
    use stwo::prover::backend::simd::column::BaseColumn;
    use stwo::prover::backend::simd::m31::LOG_N_LANES;
    use stwo::prover::backend::simd::qm31::PackedSecureField;
    use stwo::prover::backend::simd::SimdBackend;
    use stwo::prover::poly::circle::{CircleEvaluation, PolyOps};
    use stwo::prover::{prove, CommitmentSchemeProver};
    use stwo_constraint_framework::{LogupTraceGenerator, Relation, TraceLocationAllocator};

    use super::*;
    use crate::config::SecurityConfig;
    use crate::field::M31;

    /// A minimal user of the chip: each row claims `P(input) = output` and consumes it.
    #[derive(Clone)]
    struct ConsumerEval {
        log_rows: u32,
        relation: Poseidon2Io,
    }

    impl FrameworkEval for ConsumerEval {
        fn log_size(&self) -> u32 {
            self.log_rows
        }
        fn max_constraint_log_degree_bound(&self) -> u32 {
            self.log_rows + 1
        }
        fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
            let values: Vec<E::F> = (0..2 * WIDTH).map(|_| eval.next_trace_mask()).collect();
            eval.add_to_relation(RelationEntry::new(&self.relation, -E::EF::one(), &values));
            eval.finalize_logup_in_pairs();
            eval
        }
    }

    const LOG_ROWS: u32 = 5;

    fn m(v: u32) -> M31 {
        M31::from_u32_unchecked(v)
    }

    /// Proves a chip of 2^5 distinct permutations, each used once by a consumer row; `tamper`
    /// may edit the consumer's claimed pairs first. Returns the verifier's verdict.
    fn prove_and_verify(tamper: impl Fn(&mut [Vec<M31>])) -> Result<(), String> {
        let rows = 1usize << LOG_ROWS;
        let inputs: Vec<[M31; WIDTH]> = (0..rows)
            .map(|r| std::array::from_fn(|i| m((r * 31 + i) as u32)))
            .collect();
        let mut chip_cols = vec![vec![m(0); rows]; Poseidon2ChipEval::N_COLUMNS];
        let mut outputs = Vec::new();
        for (r, input) in inputs.iter().enumerate() {
            let mut row = vec![m(0); Poseidon2ChipEval::N_COLUMNS];
            outputs.push(fill_chip_row(&mut row, 1, *input));
            for (c, v) in row.into_iter().enumerate() {
                chip_cols[c][r] = v;
            }
        }
        let mut consumer_cols: Vec<Vec<M31>> = (0..2 * WIDTH)
            .map(|c| {
                (0..rows)
                    .map(|r| {
                        if c < WIDTH {
                            inputs[r][c]
                        } else {
                            outputs[r][c - WIDTH]
                        }
                    })
                    .collect()
            })
            .collect();
        tamper(&mut consumer_cols);

        let config = SecurityConfig::testing();
        let domain = CanonicCoset::new(LOG_ROWS).circle_domain();
        let evals = |cols: &[Vec<M31>]| -> Vec<CircleEvaluation<SimdBackend, M31, _>> {
            cols.iter()
                .map(|c| CircleEvaluation::new(domain, c.iter().copied().collect::<BaseColumn>()))
                .collect()
        };
        let twiddles = SimdBackend::precompute_twiddles(
            CanonicCoset::new(LOG_ROWS + 1 + config.log_blowup())
                .circle_domain()
                .half_coset,
        );
        let channel = &mut Blake2sChannel::default();
        let mut scheme = CommitmentSchemeProver::<SimdBackend, Blake2sMerkleChannel>::new(
            config.pcs_config(),
            &twiddles,
        );
        scheme.tree_builder().commit(channel);
        let mut tree = scheme.tree_builder();
        tree.extend_evals(evals(&chip_cols));
        tree.extend_evals(evals(&consumer_cols));
        tree.commit(channel);
        let relation = Poseidon2Io::draw(channel);

        let packed_row = |cols: &[Vec<M31>],
                          vec_row: usize,
                          c: usize|
         -> stwo::prover::backend::simd::m31::PackedBaseField {
            let col: BaseColumn = cols[c].iter().copied().collect();
            col.data[vec_row]
        };
        let output_cols: Vec<Vec<M31>> = (0..WIDTH)
            .map(|c| outputs.iter().map(|o| o[c]).collect())
            .collect();
        let mut chip_logup = LogupTraceGenerator::new(LOG_ROWS);
        let mut col = chip_logup.new_col();
        for vec_row in 0..1 << (LOG_ROWS - LOG_N_LANES) {
            let values: Vec<_> = (0..WIDTH)
                .map(|c| packed_row(&chip_cols, vec_row, 1 + c))
                .chain((0..WIDTH).map(|c| packed_row(&output_cols, vec_row, c)))
                .collect();
            let denom: PackedSecureField = relation.combine(&values);
            col.write_frac(vec_row, packed_row(&chip_cols, vec_row, 0).into(), denom);
        }
        col.finalize_col();
        let (chip_inter, chip_sum) = chip_logup.finalize_last();
        let mut consumer_logup = LogupTraceGenerator::new(LOG_ROWS);
        let mut col = consumer_logup.new_col();
        for vec_row in 0..1 << (LOG_ROWS - LOG_N_LANES) {
            let values: Vec<_> = (0..2 * WIDTH)
                .map(|c| packed_row(&consumer_cols, vec_row, c))
                .collect();
            let denom: PackedSecureField = relation.combine(&values);
            col.write_frac(vec_row, -PackedSecureField::one(), denom);
        }
        col.finalize_col();
        let (consumer_inter, consumer_sum) = consumer_logup.finalize_last();
        channel.mix_felts(&[chip_sum, consumer_sum]);
        let mut tree = scheme.tree_builder();
        tree.extend_evals(chip_inter);
        tree.extend_evals(consumer_inter);
        tree.commit(channel);

        let mut allocator = TraceLocationAllocator::default();
        let chip = Poseidon2Chip::new(
            &mut allocator,
            Poseidon2ChipEval {
                log_rows: LOG_ROWS,
                relation: relation.clone(),
            },
            chip_sum,
        );
        let consumer = FrameworkComponent::new(
            &mut allocator,
            ConsumerEval {
                log_rows: LOG_ROWS,
                relation,
            },
            consumer_sum,
        );
        let proof =
            prove::<SimdBackend, Blake2sMerkleChannel>(&[&chip, &consumer], channel, scheme)
                .map_err(|e| e.to_string())?;

        // Verifier.
        if chip_sum + consumer_sum != SecureField::zero() {
            return Err("LogUp sums do not cancel".into());
        }
        let channel = &mut Blake2sChannel::default();
        let mut vscheme =
            CommitmentSchemeVerifier::<Blake2sMerkleChannel>::new(config.pcs_config());
        let sizes = TreeVec::concat_cols(
            [
                chip.trace_log_degree_bounds(),
                consumer.trace_log_degree_bounds(),
            ]
            .into_iter(),
        );
        vscheme.commit(proof.0.commitments[0], &sizes[0], channel);
        vscheme.commit(proof.0.commitments[1], &sizes[1], channel);
        let _ = Poseidon2Io::draw(channel);
        channel.mix_felts(&[chip_sum, consumer_sum]);
        vscheme.commit(proof.0.commitments[2], &sizes[2], channel);
        verify(&[&chip, &consumer], channel, &mut vscheme, proof).map_err(|e| e.to_string())
    }

    #[test]
    fn consumer_of_true_permutations_verifies() {
        prove_and_verify(|_| {}).unwrap();
    }

    #[test]
    fn consumer_claiming_a_wrong_output_is_rejected() {
        let err = prove_and_verify(|cols| cols[WIDTH + 3][7] += m(1)).unwrap_err();
        assert_eq!(err, "LogUp sums do not cancel");
    }

    #[test]
    fn consumer_using_a_permutation_twice_is_rejected() {
        // Row 1 repeats row 0's (true) pair, but the chip offers row 0's pair once.
        let err = prove_and_verify(|cols| {
            for col in cols.iter_mut() {
                col[1] = col[0];
            }
        })
        .unwrap_err();
        assert_eq!(err, "LogUp sums do not cancel");
    }
}
