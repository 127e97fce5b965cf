//! The prover's trace columns: main-trace columns from row witnesses and the LogUp
//! (interaction) columns of each kind of component.

use rayon::prelude::*;
use stwo::core::fields::qm31::SecureField;
use stwo::prover::backend::simd::column::BaseColumn;
use stwo::prover::backend::simd::m31::{PackedBaseField, LOG_N_LANES};
use stwo::prover::backend::simd::qm31::PackedSecureField;
use stwo_constraint_framework::{LogupTraceGenerator, Relation};

use crate::data_root::prove::{packed, ComponentTrace, Evaluation};
use crate::data_root::{LeafEval, MerkleNodeRelation};
use crate::field::M31;
use crate::hash::poseidon2::WIDTH;

/// One LogUp column for the leaf component of a validity proof (forest mode):
/// `+e/c(tree, shift, index, digest)` paired with `+e/c(index + shift, record[..27])`.
pub(crate) fn leaf_op_interaction(
    t: &ComponentTrace,
    merkle: &MerkleNodeRelation,
    ops: &crate::data_root::OpRelation,
) -> (Vec<Evaluation>, SecureField) {
    let mut logup = LogupTraceGenerator::new(t.log_rows);
    let mut col = logup.new_col();
    let at = LeafEval::n_columns(crate::venue::OP_LIMBS);
    for vec_row in 0..1 << (t.log_rows - LOG_N_LANES) {
        let (tree, shift) = (
            packed(&t.columns[at], vec_row),
            packed(&t.columns[at + 1], vec_row),
        );
        let mut values = vec![tree, shift, packed(&t.columns[1], vec_row)];
        values.extend(t.yielded.iter().map(|c| packed(c, vec_row)));
        let d_node: PackedSecureField = merkle.combine(&values);
        let mut op = vec![packed(&t.columns[1], vec_row) + shift];
        op.extend((0..crate::data_root::OP_FIELDS).map(|j| packed(&t.columns[2 + j], vec_row)));
        let d_op: PackedSecureField = ops.combine(&op);
        let e: PackedSecureField = packed(&t.columns[0], vec_row).into();
        col.write_frac(vec_row, e * (d_node + d_op), d_node * d_op);
    }
    col.finalize_col();
    logup.finalize_last()
}

/// The range table's LogUp column: `uses/c_range(v) − 1/c_table(v)` (v2), `uses/c_range(v)`
/// (v3, whose values are preprocessed).
pub(crate) fn range_interaction(
    table: &[BaseColumn; 2],
    rels: &crate::validity::range::RangeRelations,
    air: crate::validity::ValidityAir,
) -> (Vec<Evaluation>, SecureField) {
    let mut logup = LogupTraceGenerator::new(crate::validity::range::LOG_RANGE);
    let mut col = logup.new_col();
    for vec_row in 0..1 << (crate::validity::range::LOG_RANGE - LOG_N_LANES) {
        let v = packed(&table[0], vec_row);
        let d_range: PackedSecureField = rels.range.combine(&[v]);
        let uses: PackedSecureField = packed(&table[1], vec_row).into();
        match air {
            crate::validity::ValidityAir::V2 => {
                let d_table: PackedSecureField = rels.table.combine(&[v]);
                col.write_frac(vec_row, uses * d_table - d_range, d_range * d_table);
            }
            crate::validity::ValidityAir::V3 | crate::validity::ValidityAir::V4 => {
                col.write_frac(vec_row, uses, d_range)
            }
        }
    }
    col.finalize_col();
    logup.finalize_last()
}

/// The instrument table's LogUp columns: `uses/c_inst(terms) + settle_uses/c_settle(full)`,
/// then `−enabled/c_table(full)`.
pub(crate) fn instrument_interaction(
    log_rows: u32,
    cols: &[BaseColumn],
    rels: &crate::validity::ValidityRelations,
) -> (Vec<Evaluation>, SecureField) {
    let mut logup = LogupTraceGenerator::new(log_rows);
    let full = |vec_row: usize| -> Vec<PackedBaseField> {
        (1..10)
            .chain(11..16)
            .map(|c| packed(&cols[c], vec_row))
            .collect()
    };
    let mut col = logup.new_col();
    for vec_row in 0..1 << (log_rows - LOG_N_LANES) {
        let values = full(vec_row);
        let d_inst: PackedSecureField = rels.instrument.combine(&values[..9]);
        let d_settle: PackedSecureField = rels.settle_terms.combine(&values);
        let uses: PackedSecureField = packed(&cols[10], vec_row).into();
        let settle_uses: PackedSecureField = packed(&cols[16], vec_row).into();
        col.write_frac(
            vec_row,
            uses * d_settle + settle_uses * d_inst,
            d_inst * d_settle,
        );
    }
    col.finalize_col();
    let mut col = logup.new_col();
    for vec_row in 0..1 << (log_rows - LOG_N_LANES) {
        let d_table: PackedSecureField = rels.instrument_table.combine(&full(vec_row));
        let enabled: PackedSecureField = packed(&cols[0], vec_row).into();
        col.write_frac(vec_row, -enabled, d_table);
    }
    col.finalize_col();
    logup.finalize_last()
}

/// LogUp columns of operation rows from their witnesses (`width` lookups per row, paired in
/// order; rows past the witnesses are padding with no lookups).
pub(crate) fn witness_interaction(
    log_rows: u32,
    rows: &[crate::validity::trade::RowWitness],
    width: usize,
    rels: &crate::validity::ValidityRelations,
) -> (Vec<Evaluation>, SecureField) {
    use crate::validity::trade::Lookup;
    use stwo::prover::backend::simd::m31::N_LANES;
    let frac = |row: usize, k: usize| -> (SecureField, SecureField) {
        rels.fraction(rows.get(row).map_or(&Lookup::Nothing, |w| &w.lookups[k]))
    };
    let mut logup = LogupTraceGenerator::new(log_rows);
    for first in (0..width).step_by(2) {
        let packed_rows: Vec<(PackedSecureField, PackedSecureField)> = (0..1usize
            << (log_rows - LOG_N_LANES))
            .into_par_iter()
            .map(|vr| {
                let lanes: [(SecureField, SecureField); N_LANES] = std::array::from_fn(|l| {
                    let r = vr * N_LANES + l;
                    let (n0, d0) = frac(r, first);
                    if first + 1 < width {
                        let (n1, d1) = frac(r, first + 1);
                        (n0 * d1 + n1 * d0, d0 * d1)
                    } else {
                        (n0, d0)
                    }
                });
                (
                    PackedSecureField::from_array(lanes.map(|x| x.0)),
                    PackedSecureField::from_array(lanes.map(|x| x.1)),
                )
            })
            .collect();
        let mut col = logup.new_col();
        for (vr, (n, d)) in packed_rows.into_iter().enumerate() {
            col.write_frac(vr, n, d);
        }
        col.finalize_col();
    }
    logup.finalize_last()
}

/// Columns of `2^log_rows` rows from row witnesses, padded with `pad` (for components whose
/// constraints a zero row does not satisfy, such as in-row permutations).
pub(crate) fn padded_columns(
    log_rows: u32,
    rows: &[crate::validity::trade::RowWitness],
    pad: &[M31],
) -> Vec<BaseColumn> {
    let n = 1usize << log_rows;
    (0..pad.len())
        .into_par_iter()
        .map(|c| {
            (0..n)
                .map(|r| rows.get(r).map_or(pad[c], |w| w.cells[c]))
                .collect()
        })
        .collect()
}

/// Chip rows for every permutation the rows consume (`uses = 1` each).
pub(crate) fn chip_witness<'a>(
    rows: impl Iterator<Item = &'a crate::validity::trade::RowWitness>,
) -> Vec<crate::validity::trade::RowWitness> {
    use crate::validity::trade::{Lookup, RowWitness};
    let inputs: Vec<[M31; WIDTH]> = rows
        .flat_map(|w| &w.lookups)
        .filter_map(|l| match l {
            Lookup::Perm(v) => Some(std::array::from_fn(|i| v[i])),
            _ => None,
        })
        .collect();
    inputs
        .into_par_iter()
        .map(|input| {
            let mut cells =
                vec![M31::from_u32_unchecked(0); crate::hash::chip::Poseidon2ChipEval::N_COLUMNS];
            let out = crate::hash::chip::fill_chip_row(&mut cells, 1, input);
            RowWitness {
                cells,
                lookups: vec![Lookup::Chip(input.into_iter().chain(out).collect())],
            }
        })
        .collect()
}

/// A disabled chip row (`uses = 0`): the permutation of zero, whose cells satisfy the chip's
/// constraints.
pub(crate) fn chip_padding() -> Vec<M31> {
    let mut cells =
        vec![M31::from_u32_unchecked(0); crate::hash::chip::Poseidon2ChipEval::N_COLUMNS];
    crate::hash::chip::fill_chip_row(&mut cells, 0, [M31::from_u32_unchecked(0); WIDTH]);
    cells
}
