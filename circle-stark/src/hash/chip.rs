//! The Poseidon2-M31 hash chip: a component whose rows are permutations, offered to other
//! components through the LogUp relation `Poseidon2Io(input[16] ‖ output[16])`
//! (`specs/poseidon2.md` §7).
//!
//! A component that needs "`P(x) = y`" consumes `(x ‖ y)` with multiplicity −1; the chip yields
//! each row's `(x ‖ P(x))` with the multiplicity committed in its `uses` column. The relation
//! balances only if every consumed pair is a true permutation evaluation. Consumers keep narrow
//! rows (32 relation values instead of 284 cells per permutation) and share one chip.

use stwo_constraint_framework::{
    relation, EvalAtRow, FrameworkComponent, FrameworkEval, RelationEntry,
};

use crate::data_root::{AirSbox, PERM_CELLS};
use crate::hash::poseidon2::{permute_generic, WIDTH};

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
#[cfg(feature = "prover")]
pub fn fill_chip_row(
    cells: &mut [crate::field::M31],
    uses: u32,
    input: [crate::field::M31; WIDTH],
) -> [crate::field::M31; WIDTH] {
    use crate::field::M31;
    use crate::hash::poseidon2::RecordingSbox;
    cells[0] = M31::from_u32_unchecked(uses);
    cells[1..1 + WIDTH].copy_from_slice(&input);
    permute_generic(input, &mut RecordingSbox::new(&mut cells[1 + WIDTH..]))
}

#[cfg(all(test, feature = "prover"))]
mod tests {
    use num_traits::{One, Zero};
    use stwo::core::fields::qm31::SecureField;
    use stwo::prover::backend::simd::column::BaseColumn;
    use stwo::prover::backend::simd::m31::{PackedBaseField, LOG_N_LANES};
    use stwo::prover::backend::simd::qm31::PackedSecureField;
    use stwo_constraint_framework::{LogupTraceGenerator, Relation, TraceLocationAllocator};

    use super::*;
    use crate::field::M31;
    use crate::harness::{evaluations, prove_and_verify, Air};

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

    fn packed(col: &[M31], vec_row: usize) -> PackedBaseField {
        col.iter().copied().collect::<BaseColumn>().data[vec_row]
    }

    /// One LogUp column: `numerator(row) / combine(values(row))`.
    fn logup_column(
        relation: &Poseidon2Io,
        cols: &[&[M31]],
        numerator: impl Fn(usize) -> PackedSecureField,
    ) -> (crate::harness::Evaluations, SecureField) {
        let mut gen = LogupTraceGenerator::new(LOG_ROWS);
        let mut col = gen.new_col();
        for vr in 0..1 << (LOG_ROWS - LOG_N_LANES) {
            let values: Vec<PackedBaseField> = cols.iter().map(|c| packed(c, vr)).collect();
            let denom: PackedSecureField = relation.combine(&values);
            col.write_frac(vr, numerator(vr), denom);
        }
        col.finalize_col();
        gen.finalize_last()
    }

    /// Proves a chip of 2^5 distinct permutations, each used once by a consumer row; `tamper`
    /// may edit the consumer's claimed pairs first.
    fn prove_and_verify_with(tamper: impl Fn(&mut [Vec<M31>])) -> Result<(), String> {
        let rows = 1usize << LOG_ROWS;
        let inputs: Vec<[M31; WIDTH]> = (0..rows)
            .map(|r| std::array::from_fn(|i| m((r * 31 + i) as u32)))
            .collect();
        let mut chip = vec![vec![m(0); rows]; Poseidon2ChipEval::N_COLUMNS];
        let mut outputs = Vec::new();
        for (r, input) in inputs.iter().enumerate() {
            let mut row = vec![m(0); Poseidon2ChipEval::N_COLUMNS];
            outputs.push(fill_chip_row(&mut row, 1, *input));
            for (c, v) in row.into_iter().enumerate() {
                chip[c][r] = v;
            }
        }
        let mut consumer: Vec<Vec<M31>> = (0..2 * WIDTH)
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
        tamper(&mut consumer);
        let outs: Vec<Vec<M31>> = (0..WIDTH)
            .map(|c| outputs.iter().map(|o| o[c]).collect())
            .collect();
        let (chip_ref, consumer_ref, outs_ref) = (&chip, &consumer, &outs);
        prove_and_verify(Air {
            main: vec![
                evaluations(LOG_ROWS, &chip),
                evaluations(LOG_ROWS, &consumer),
            ],
            max_log_rows: LOG_ROWS,
            draw: Poseidon2Io::draw,
            interaction: move |rel: &Poseidon2Io| {
                let chip_values: Vec<&[M31]> = chip_ref[1..=WIDTH]
                    .iter()
                    .chain(outs_ref.iter())
                    .map(Vec::as_slice)
                    .collect();
                let consumer_values: Vec<&[M31]> = consumer_ref.iter().map(Vec::as_slice).collect();
                vec![
                    logup_column(rel, &chip_values, |vr| packed(&chip_ref[0], vr).into()),
                    logup_column(rel, &consumer_values, |_| -PackedSecureField::one()),
                ]
            },
            components: |rel: &Poseidon2Io,
                         sums: &[SecureField],
                         alloc: &mut TraceLocationAllocator| {
                vec![
                    Box::new(Poseidon2Chip::new(
                        alloc,
                        Poseidon2ChipEval {
                            log_rows: LOG_ROWS,
                            relation: rel.clone(),
                        },
                        sums[0],
                    )) as Box<_>,
                    Box::new(FrameworkComponent::new(
                        alloc,
                        ConsumerEval {
                            log_rows: LOG_ROWS,
                            relation: rel.clone(),
                        },
                        sums[1],
                    )),
                ]
            },
            expected_total: |_: &Poseidon2Io| SecureField::zero(),
        })
    }

    #[test]
    fn consumer_of_true_permutations_verifies() {
        prove_and_verify_with(|_| {}).unwrap();
    }

    #[test]
    fn consumer_claiming_a_wrong_output_is_rejected() {
        let err = prove_and_verify_with(|cols| cols[WIDTH + 3][7] += m(1)).unwrap_err();
        assert_eq!(err, "logup total");
    }

    #[test]
    fn consumer_using_a_permutation_twice_is_rejected() {
        // Row 1 repeats row 0's (true) pair, but the chip offers row 0's pair once.
        let err = prove_and_verify_with(|cols| {
            for col in cols.iter_mut() {
                col[1] = col[0];
            }
        })
        .unwrap_err();
        assert_eq!(err, "logup total");
    }
}
