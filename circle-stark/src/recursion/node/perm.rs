//! The permutation component (`specs/recursion.md` §7.3): one row per Poseidon2-M31
//! permutation of the program, computed by the hash chip's constraints (`hash::chip`). Each
//! row consumes its four input wires (`enabled` times: 0 on padding rows) and yields its four
//! output wires with their read counts, in the same wire relation as the gate component.

use stwo_constraint_framework::preprocessed_columns::PreProcessedColumnId;
use stwo_constraint_framework::{EvalAtRow, FrameworkEval, RelationEntry};

use super::gates::WireRel;
use super::program::{Op, Program};
use crate::data_root::{AirSbox, PERM_CELLS};
use crate::field::M31;
use crate::hash::poseidon2::{permute_generic, WIDTH};

/// The preprocessed columns, in commitment order (after the gate component's).
pub const PREPROCESSED: [&str; 13] = [
    "in0", "in1", "in2", "in3", "out0", "out1", "out2", "out3", "mult0", "mult1", "mult2", "mult3",
    "enabled",
];

/// Main columns: the input state, then the chip's S-box cells.
pub const MAIN_COLUMNS: usize = WIDTH + PERM_CELLS;

/// The ids of [`PREPROCESSED`].
pub fn preprocessed_ids() -> Vec<PreProcessedColumnId> {
    super::gates::column_ids("perm", &PREPROCESSED)
}

/// The permutation component's constraints.
#[derive(Debug, Clone)]
pub struct PermEval {
    /// log2 of the rows.
    pub log_rows: u32,
    /// The wire relation's challenges.
    pub wires: WireRel,
}

impl FrameworkEval for PermEval {
    fn log_size(&self) -> u32 {
        self.log_rows
    }

    fn max_constraint_log_degree_bound(&self) -> u32 {
        self.log_rows + 1
    }

    fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
        let pre: Vec<E::F> = preprocessed_ids()
            .into_iter()
            .map(|id| eval.get_preprocessed_column(id))
            .collect();
        let input: [E::F; WIDTH] = std::array::from_fn(|_| eval.next_trace_mask());
        let output = permute_generic(input.clone(), &mut AirSbox { eval: &mut eval });
        let enabled = pre[12].clone();
        for k in 0..4 {
            let mut e = vec![pre[k].clone()];
            e.extend(input[4 * k..4 * k + 4].iter().cloned());
            eval.add_to_relation(RelationEntry::new(
                &self.wires,
                -E::EF::from(enabled.clone()),
                &e,
            ));
        }
        for k in 0..4 {
            let mut e = vec![pre[4 + k].clone()];
            e.extend(output[4 * k..4 * k + 4].iter().cloned());
            eval.add_to_relation(RelationEntry::new(
                &self.wires,
                E::EF::from(pre[8 + k].clone()),
                &e,
            ));
        }
        eval.finalize_logup_in_pairs();
        eval
    }
}

/// The 13 preprocessed columns of `program`'s permutation component.
pub fn preprocessed_columns(program: &Program) -> Vec<Vec<M31>> {
    let n = 1usize << program.log_perm_rows();
    let uses = program.uses();
    let mut cols = vec![vec![M31::from(0u32); n]; PREPROCESSED.len()];
    for (r, input) in program.perms().iter().enumerate() {
        for (k, w) in input.iter().enumerate() {
            cols[k][r] = M31::from(w.0);
        }
        cols[12][r] = M31::from(1u32);
    }
    for (i, op) in program.ops().iter().enumerate() {
        if let Op::PermOut { perm, lane } = op {
            let (r, k) = (*perm as usize, *lane as usize);
            cols[4 + k][r] = M31::from(i as u32);
            cols[8 + k][r] = M31::from(uses[i]);
        }
    }
    cols
}

/// The main columns for wire values `values`: per permutation its input state and cells;
/// padding rows permute the zero state (the constraints hold on every row).
#[cfg(feature = "prover")]
pub fn main_columns(
    program: &Program,
    values: &[stwo::core::fields::qm31::SecureField],
) -> Vec<Vec<M31>> {
    use crate::hash::chip::fill_chip_row;
    let n = 1usize << program.log_perm_rows();
    let mut cols = vec![vec![M31::from(0u32); n]; MAIN_COLUMNS];
    let mut row = vec![M31::from(0u32); 1 + MAIN_COLUMNS];
    let inputs = (0..n).map(|r| program.perms().get(r));
    for (r, wires) in inputs.enumerate() {
        let input: [M31; WIDTH] = match wires {
            Some(wires) => {
                std::array::from_fn(|i| values[wires[i / 4].0 as usize].to_m31_array()[i % 4])
            }
            None => [M31::from(0u32); WIDTH],
        };
        // The chip's row layout is `uses, input, cells`; the node keeps `input, cells`.
        fill_chip_row(&mut row, 0, input);
        for (c, v) in row[1..].iter().enumerate() {
            cols[c][r] = *v;
        }
    }
    cols
}
