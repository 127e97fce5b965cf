//! Proving data-root statements (feature `prover`).

use rayon::prelude::*;
use stwo::core::channel::Blake2sChannel;
use stwo::core::fields::qm31::SecureField;
use stwo::core::poly::circle::CanonicCoset;
use stwo::core::vcs_lifted::blake2_merkle::Blake2sMerkleChannel;
use stwo::prover::backend::simd::column::BaseColumn;
use stwo::prover::backend::simd::m31::{PackedBaseField, LOG_N_LANES};
use stwo::prover::backend::simd::qm31::PackedSecureField;
use stwo::prover::backend::simd::SimdBackend;
use stwo::prover::backend::Column;
use stwo::prover::poly::circle::{CircleEvaluation, PolyOps};
use stwo::prover::poly::BitReversedOrder;
use stwo::prover::{prove, CommitmentSchemeProver};
use stwo_constraint_framework::{LogupTraceGenerator, Relation};

use crate::air::{
    DataRootStatement, LeafEval, MerkleNodeRelation, NodeEval, MAX_RECORD_LIMBS, PERM_CELLS,
};
use crate::config::SecurityConfig;
use crate::encoding::Record;
use crate::error::ProveError;
use crate::field::{M31, MODULUS};
use crate::merkle::{depth_for, empty_digests, real_nodes_at};
use crate::poseidon2::sponge::sponge_init;
use crate::poseidon2::{permute_generic, Digest, Domain, RecordingSbox, DIGEST_LEN, RATE, WIDTH};
use crate::proof::{AirId, Proof};
use crate::statement::{BatchStatement, DayStatement};
use crate::verifier::{
    build_components, check_statement, mix_claimed_sums, mix_preamble, MAX_RECORDS,
};

type Evaluation = CircleEvaluation<SimdBackend, M31, BitReversedOrder>;

/// A component's trace: committed columns plus the digest each row yields (not committed: the
/// AIR recomputes it from the committed cells).
struct ComponentTrace {
    log_rows: u32,
    columns: Vec<BaseColumn>,
    /// Eight columns: the yielded digest per row.
    yielded: Vec<BaseColumn>,
}

/// Fills a row-major buffer in parallel, then transposes it into columns.
fn build_trace<F>(log_rows: u32, n_columns: usize, fill: F) -> ComponentTrace
where
    F: Fn(usize, &mut [M31]) -> Digest + Sync,
{
    let rows = 1usize << log_rows;
    let mut buffer = vec![M31::from_u32_unchecked(0); rows * n_columns];
    let mut digests = vec![Digest::ZERO; rows];
    buffer
        .par_chunks_mut(n_columns)
        .zip(digests.par_iter_mut())
        .enumerate()
        .for_each(|(row, (cells, digest))| *digest = fill(row, cells));
    let columns = (0..n_columns)
        .into_par_iter()
        .map(|c| {
            (0..rows)
                .map(|r| buffer[r * n_columns + c])
                .collect::<BaseColumn>()
        })
        .collect();
    let yielded = (0..DIGEST_LEN)
        .map(|i| digests.iter().map(|d| d.0[i]).collect::<BaseColumn>())
        .collect();
    ComponentTrace {
        log_rows,
        columns,
        yielded,
    }
}

/// Writes `enabled, index, limbs, cells…` and returns the leaf digest.
fn fill_leaf(cells: &mut [M31], enabled: bool, index: u32, limbs: &[M31]) -> Digest {
    let l = limbs.len();
    cells[0] = M31::from_u32_unchecked(u32::from(enabled));
    cells[1] = M31::from_u32_unchecked(index);
    cells[2..2 + l].copy_from_slice(limbs);
    let mut state = sponge_init(Domain::RecordLeaf, l);
    for (block, perm_cells) in cells[2 + l..].chunks_exact_mut(PERM_CELLS).enumerate() {
        for (s, &m) in state
            .iter_mut()
            .zip(limbs.iter().skip(block * RATE).take(RATE))
        {
            *s += m;
        }
        state = permute_generic(state, &mut RecordingSbox::new(perm_cells));
    }
    Digest(std::array::from_fn(|i| state[i]))
}

/// Writes `enabled, index, left, right, cells…` and returns the parent digest.
fn fill_node(
    cells: &mut [M31],
    enabled: bool,
    index: u32,
    left: &Digest,
    right: &Digest,
) -> Digest {
    cells[0] = M31::from_u32_unchecked(u32::from(enabled));
    cells[1] = M31::from_u32_unchecked(index);
    let mut input = [M31::from_u32_unchecked(0); WIDTH];
    input[..DIGEST_LEN].copy_from_slice(&left.0);
    input[DIGEST_LEN..].copy_from_slice(&right.0);
    cells[2..2 + WIDTH].copy_from_slice(&input);
    let perm = &mut cells[2 + WIDTH..2 + WIDTH + PERM_CELLS];
    let out = permute_generic(input, &mut RecordingSbox::new(perm));
    Digest(std::array::from_fn(|i| out[i] + left.0[i]))
}

fn leaf_trace(records: &[M31], record_limbs: usize, log_rows: u32, depth: u32) -> ComponentTrace {
    let n = records.len() / record_limbs;
    let zero = vec![M31::from_u32_unchecked(0); record_limbs];
    build_trace(log_rows, LeafEval::n_columns(record_limbs), |row, cells| {
        if row < n {
            let limbs = &records[row * record_limbs..(row + 1) * record_limbs];
            fill_leaf(cells, true, (1u32 << depth) + row as u32, limbs)
        } else {
            fill_leaf(cells, false, 0, &zero)
        }
    })
}

/// The internal nodes `(index, left, right)`, bottom level first, and the root. Level by
/// level (each level needs the one below), nodes within a level in parallel.
fn node_jobs(leaves: &[Digest], depth: u32) -> (Vec<(u32, Digest, Digest)>, Digest) {
    let n = leaves.len();
    let empty = empty_digests(depth);
    let mut jobs: Vec<(u32, Digest, Digest)> = Vec::new();
    let mut level = leaves.to_vec();
    for h in 1..=depth {
        let base = (1u32 << depth) >> h;
        let parents: Vec<(u32, Digest, Digest, Digest)> = (0..real_nodes_at(n, h))
            .into_par_iter()
            .map(|j| {
                let left = level[2 * j];
                let right = level
                    .get(2 * j + 1)
                    .copied()
                    .unwrap_or(empty[h as usize - 1]);
                let parent = crate::poseidon2::compress(&left, &right);
                (base + j as u32, left, right, parent)
            })
            .collect();
        level = parents.iter().map(|p| p.3).collect();
        jobs.extend(parents.into_iter().map(|(i, l, r, _)| (i, l, r)));
    }
    (jobs, level[0])
}

/// Node rows over one tree. Returns the trace and the root.
fn node_trace(leaves: &[Digest], log_rows: u32, depth: u32) -> (ComponentTrace, Digest) {
    let (jobs, root) = node_jobs(leaves, depth);
    let trace = build_trace(log_rows, NodeEval::N_COLUMNS, |row, cells| {
        match jobs.get(row) {
            Some((index, left, right)) => fill_node(cells, true, *index, left, right),
            None => fill_node(cells, false, 0, &Digest::ZERO, &Digest::ZERO),
        }
    });
    (trace, root)
}

/// A batch-validity proof's data forest (`LeafEval::ops`): one tree per batch, its rows
/// tagged `tree, shift`. Returns the leaf and node traces and the roots.
fn forest_traces(
    records: &[M31],
    sizes: &[usize],
    shifts: &[M31],
    leaf_log: u32,
    node_log: u32,
) -> (ComponentTrace, ComponentTrace, Vec<Digest>) {
    use crate::air::FOREST_COLUMNS;
    let base_cols = LeafEval::n_columns(crate::venue::OP_LIMBS);
    const OP_LIMBS: usize = crate::venue::OP_LIMBS;
    // (tree, leaf index) per row.
    let owner: Vec<(u32, u32)> = sizes
        .iter()
        .enumerate()
        .flat_map(|(t, &n)| (0..n as u32).map(move |i| (t as u32, i)))
        .collect();
    let zero = vec![M31::from_u32_unchecked(0); OP_LIMBS];
    let leaves_t = build_trace(leaf_log, base_cols + FOREST_COLUMNS, |row, cells| {
        let Some(&(t, i)) = owner.get(row) else {
            return fill_leaf(cells, false, 0, &zero);
        };
        let depth = depth_for(sizes[t as usize]);
        let limbs = &records[row * OP_LIMBS..(row + 1) * OP_LIMBS];
        let d = fill_leaf(cells, true, (1u32 << depth) + i, limbs);
        cells[base_cols] = M31::from_u32_unchecked(t);
        cells[base_cols + 1] = shifts[t as usize];
        d
    });
    let mut jobs: Vec<(u32, u32, Digest, Digest)> = Vec::new();
    let mut roots = Vec::with_capacity(sizes.len());
    let mut at = 0usize;
    for (t, &n) in sizes.iter().enumerate() {
        let digests: Vec<Digest> = (at..at + n)
            .map(|r| Digest(std::array::from_fn(|i| leaves_t.yielded[i].at(r))))
            .collect();
        let (tree_jobs, root) = node_jobs(&digests, depth_for(n));
        jobs.extend(tree_jobs.into_iter().map(|(i, l, r)| (t as u32, i, l, r)));
        roots.push(root);
        at += n;
    }
    let nodes_t = build_trace(
        node_log,
        NodeEval::N_COLUMNS + FOREST_COLUMNS,
        |row, cells| match jobs.get(row) {
            Some((t, index, left, right)) => {
                let d = fill_node(cells, true, *index, left, right);
                cells[NodeEval::N_COLUMNS] = M31::from_u32_unchecked(*t);
                cells[NodeEval::N_COLUMNS + 1] = shifts[*t as usize];
                d
            }
            None => fill_node(cells, false, 0, &Digest::ZERO, &Digest::ZERO),
        },
    );
    (leaves_t, nodes_t, roots)
}

fn packed(col: &BaseColumn, vec_row: usize) -> PackedBaseField {
    col.data[vec_row]
}

/// One LogUp column for the leaf component: `+enabled / c(index, digest)`.
fn leaf_interaction(
    t: &ComponentTrace,
    relation: &MerkleNodeRelation,
) -> (Vec<Evaluation>, SecureField) {
    let mut logup = LogupTraceGenerator::new(t.log_rows);
    let mut col = logup.new_col();
    for vec_row in 0..1 << (t.log_rows - LOG_N_LANES) {
        let mut values = vec![packed(&t.columns[1], vec_row)];
        values.extend(t.yielded.iter().map(|c| packed(c, vec_row)));
        let denom: PackedSecureField = relation.combine(&values);
        col.write_frac(vec_row, packed(&t.columns[0], vec_row).into(), denom);
    }
    col.finalize_col();
    logup.finalize_last()
}

/// Two LogUp columns for the node component: `(+e/c(parent) − e/c(left))` and `−e/c(right)`,
/// paired as `finalize_logup_in_pairs` expects.
fn node_interaction(
    t: &ComponentTrace,
    relation: &MerkleNodeRelation,
    forest: bool,
) -> (Vec<Evaluation>, SecureField) {
    let n_vec_rows = 1 << (t.log_rows - LOG_N_LANES);
    // The forest's `tree, shift` columns, prefixed to every tuple.
    let prefix = |vec_row: usize| -> Vec<PackedBaseField> {
        if forest {
            (0..crate::air::FOREST_COLUMNS)
                .map(|j| packed(&t.columns[NodeEval::N_COLUMNS + j], vec_row))
                .collect()
        } else {
            Vec::new()
        }
    };
    let two = PackedBaseField::broadcast(M31::from_u32_unchecked(2));
    let one = PackedBaseField::broadcast(M31::from_u32_unchecked(1));
    let child = |vec_row: usize, right: bool| -> PackedSecureField {
        let index = packed(&t.columns[1], vec_row) * two
            + if right {
                one
            } else {
                PackedBaseField::broadcast(M31::from_u32_unchecked(0))
            };
        let offset = 2 + if right { DIGEST_LEN } else { 0 };
        let mut values = prefix(vec_row);
        values.push(index);
        values.extend((0..DIGEST_LEN).map(|i| packed(&t.columns[offset + i], vec_row)));
        relation.combine(&values)
    };
    let mut logup = LogupTraceGenerator::new(t.log_rows);
    let mut col = logup.new_col();
    for vec_row in 0..n_vec_rows {
        let e: PackedSecureField = packed(&t.columns[0], vec_row).into();
        let mut values = prefix(vec_row);
        values.push(packed(&t.columns[1], vec_row));
        values.extend(t.yielded.iter().map(|c| packed(c, vec_row)));
        let d_parent: PackedSecureField = relation.combine(&values);
        let d_left = child(vec_row, false);
        col.write_frac(vec_row, e * (d_left - d_parent), d_parent * d_left);
    }
    col.finalize_col();
    let mut col = logup.new_col();
    for vec_row in 0..n_vec_rows {
        let e: PackedSecureField = packed(&t.columns[0], vec_row).into();
        col.write_frac(vec_row, -e, child(vec_row, true));
    }
    col.finalize_col();
    logup.finalize_last()
}

fn evaluations(log_rows: u32, columns: Vec<BaseColumn>) -> Vec<Evaluation> {
    let domain = CanonicCoset::new(log_rows).circle_domain();
    columns
        .into_iter()
        .map(|c| CircleEvaluation::new(domain, c))
        .collect()
}

/// Proves that `records` (flat, `record_limbs` limbs each, in order) are the leaves of the
/// Poseidon2-M31 Merkle tree whose root the returned statement names.
///
/// # Errors
/// [`ProveError`] for inputs outside the AIR's ranges; [`ProveError::Stwo`] only on a bug.
pub fn prove_data_root(
    records: &[M31],
    record_limbs: usize,
    config: SecurityConfig,
) -> Result<(DataRootStatement, Proof), ProveError> {
    prove_records(
        AirId::DataRoot,
        records,
        record_limbs,
        |_| Vec::new(),
        config,
    )
}

/// Proves a day: the batch statements (canonical order, chained per rollup) are the leaves of
/// the day tree, with the day's summary and `manifest_hash` bound as public input
/// (`specs/day-proof.md`).
///
/// # Errors
/// [`ProveError::Day`] for statements that are not a day; otherwise as [`prove_data_root`].
pub fn prove_day(
    day: u32,
    statements: &[BatchStatement],
    manifest_hash: [u8; 32],
    config: SecurityConfig,
) -> Result<(DayStatement, Proof), ProveError> {
    let statement = DayStatement::derive(day, statements, manifest_hash)?;
    let records: Vec<M31> = statements.iter().flat_map(Record::encode).collect();
    let bound = statement.bound_inputs();
    let (inner, proof) = prove_records(
        AirId::DayRoot,
        &records,
        BatchStatement::LIMBS,
        |_| bound,
        config,
    )?;
    debug_assert_eq!(inner, statement.data_root_statement());
    Ok((statement, proof))
}

/// The data-root prover under `air`, with `bound(statement)` appended to the public inputs:
/// those are bound by the transcript only, never by a constraint.
fn prove_records(
    air: AirId,
    records: &[M31],
    record_limbs: usize,
    bound: impl FnOnce(&DataRootStatement) -> Vec<M31>,
    config: SecurityConfig,
) -> Result<(DataRootStatement, Proof), ProveError> {
    if record_limbs == 0 || record_limbs > MAX_RECORD_LIMBS {
        return Err(ProveError::RecordLimbs {
            max: MAX_RECORD_LIMBS,
            got: record_limbs,
        });
    }
    if records.len() % record_limbs != 0 {
        return Err(ProveError::RaggedRecords {
            len: records.len(),
            record_limbs,
        });
    }
    let n = records.len() / record_limbs;
    if n == 0 {
        return Err(ProveError::NoRecords);
    }
    if n > MAX_RECORDS {
        return Err(ProveError::TooManyRecords {
            max: MAX_RECORDS,
            got: n,
        });
    }
    if let Some(i) = records.iter().position(|x| x.0 >= MODULUS) {
        return Err(ProveError::NonCanonicalLimb {
            record: i / record_limbs,
            limb: i % record_limbs,
        });
    }
    let depth = depth_for(n);
    let provisional = DataRootStatement {
        n_records: n as u32,
        record_limbs: record_limbs as u32,
        root: Digest::ZERO,
    };
    check_statement(&provisional).map_err(ProveError::Stwo)?;
    let (leaf_log, node_log) = provisional.log_rows();

    let leaves_t = leaf_trace(records, record_limbs, leaf_log, depth);
    let leaf_digests: Vec<Digest> = (0..n)
        .map(|r| Digest(std::array::from_fn(|i| leaves_t.yielded[i].at(r))))
        .collect();
    let (nodes_t, root) = node_trace(&leaf_digests, node_log, depth);
    let statement = DataRootStatement {
        root,
        ..provisional
    };
    let mut public_inputs = statement.to_public_inputs();
    public_inputs.extend(bound(&statement));

    let max_log = leaf_log.max(node_log);
    let twiddles = SimdBackend::precompute_twiddles(
        CanonicCoset::new(max_log + 1 + config.log_blowup())
            .circle_domain()
            .half_coset,
    );
    let channel = &mut Blake2sChannel::default();
    mix_preamble(channel, air, &config, &public_inputs);
    let mut scheme = CommitmentSchemeProver::<SimdBackend, Blake2sMerkleChannel>::new(
        config.pcs_config(),
        &twiddles,
    );

    let tree = scheme.tree_builder();
    tree.commit(channel);

    let mut tree = scheme.tree_builder();
    tree.extend_evals(evaluations(leaf_log, leaves_t.columns.clone()));
    tree.extend_evals(evaluations(node_log, nodes_t.columns.clone()));
    tree.commit(channel);

    let relation = MerkleNodeRelation::draw(channel);
    let (leaf_inter, leaf_sum) = leaf_interaction(&leaves_t, &relation);
    let (node_inter, node_sum) = node_interaction(&nodes_t, &relation, false);
    drop((leaves_t, nodes_t));
    mix_claimed_sums(channel, &[leaf_sum, node_sum]);
    let mut tree = scheme.tree_builder();
    tree.extend_evals(leaf_inter);
    tree.extend_evals(node_inter);
    tree.commit(channel);

    let (leaf, node) = build_components(&statement, relation, [leaf_sum, node_sum]);
    let stark = prove::<SimdBackend, Blake2sMerkleChannel>(&[&leaf, &node], channel, scheme)
        .map_err(|e| ProveError::Stwo(e.to_string()))?;
    let proof = Proof {
        air,
        config,
        public_inputs,
        claimed_sums: vec![leaf_sum, node_sum],
        stark,
    };
    Ok((statement, proof))
}

/// One LogUp column for the leaf component of a validity proof (forest mode):
/// `+e/c(tree, shift, index, digest)` paired with `+e/c(index + shift, record[..27])`.
fn leaf_op_interaction(
    t: &ComponentTrace,
    merkle: &MerkleNodeRelation,
    ops: &crate::air::OpRelation,
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
        op.extend((0..crate::air::OP_FIELDS).map(|j| packed(&t.columns[2 + j], vec_row)));
        let d_op: PackedSecureField = ops.combine(&op);
        let e: PackedSecureField = packed(&t.columns[0], vec_row).into();
        col.write_frac(vec_row, e * (d_node + d_op), d_node * d_op);
    }
    col.finalize_col();
    logup.finalize_last()
}

/// The range table's LogUp column: `uses/c_range(v) − 1/c_table(v)`.
fn range_interaction(
    table: &[BaseColumn; 2],
    rels: &crate::range::RangeRelations,
) -> (Vec<Evaluation>, SecureField) {
    let mut logup = LogupTraceGenerator::new(crate::range::LOG_RANGE);
    let mut col = logup.new_col();
    for vec_row in 0..1 << (crate::range::LOG_RANGE - LOG_N_LANES) {
        let v = packed(&table[0], vec_row);
        let d_range: PackedSecureField = rels.range.combine(&[v]);
        let d_table: PackedSecureField = rels.table.combine(&[v]);
        let uses: PackedSecureField = packed(&table[1], vec_row).into();
        col.write_frac(vec_row, uses * d_table - d_range, d_range * d_table);
    }
    col.finalize_col();
    logup.finalize_last()
}

/// The instrument table's LogUp columns: `uses/c_inst(terms) + settle_uses/c_settle(full)`,
/// then `−enabled/c_table(full)`.
fn instrument_interaction(
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
fn witness_interaction(
    log_rows: u32,
    rows: &[crate::trade::RowWitness],
    width: usize,
    rels: &crate::validity::ValidityRelations,
) -> (Vec<Evaluation>, SecureField) {
    use crate::trade::Lookup;
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

/// Columns of `2^log_rows` rows from row witnesses, padded with zero rows.
fn witness_columns(
    log_rows: u32,
    rows: &[crate::trade::RowWitness],
    width: usize,
) -> Vec<BaseColumn> {
    padded_columns(log_rows, rows, &vec![M31::from_u32_unchecked(0); width])
}

/// Columns of `2^log_rows` rows from row witnesses, padded with `pad` (for components whose
/// constraints a zero row does not satisfy, such as in-row permutations).
fn padded_columns(
    log_rows: u32,
    rows: &[crate::trade::RowWitness],
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
    rows: impl Iterator<Item = &'a crate::trade::RowWitness>,
) -> Vec<crate::trade::RowWitness> {
    use crate::trade::{Lookup, RowWitness};
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
                vec![M31::from_u32_unchecked(0); crate::chip::Poseidon2ChipEval::N_COLUMNS];
            let out = crate::chip::fill_chip_row(&mut cells, 1, input);
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
    let mut cells = vec![M31::from_u32_unchecked(0); crate::chip::Poseidon2ChipEval::N_COLUMNS];
    crate::chip::fill_chip_row(&mut cells, 0, [M31::from_u32_unchecked(0); WIDTH]);
    cells
}

/// Proves that `ops`, applied in order to `venue`'s state, obey the venue rules and turn its
/// state root into the returned statement's post-state root (batch validity v1,
/// `specs/batch-air.md` §5): deposits, withdrawals and trades.
///
/// # Errors
/// [`ProveError::Rule`] if the batch breaks a rule (naming the operation),
/// size errors as for [`prove_data_root`].
pub fn prove_validity(
    venue: &crate::venue::Venue,
    ops: &[crate::venue::Operation],
    config: SecurityConfig,
) -> Result<(crate::validity::ValidityStatement, Proof), ProveError> {
    prove_validity_with(venue, ops, ops, |_| {}, |_, _, _| {}, config)
}

/// Proves a run of consecutive batches of one rollup in one batch-validity proof (a day
/// segment, `specs/day-proof.md` §4): the statement lists each batch's data tree, its state
/// opened before the first batch and closed after the last.
///
/// # Errors
/// As [`prove_validity`]; [`ProveError::NoRecords`] for an empty batch.
pub fn prove_segment(
    venue: &crate::venue::Venue,
    batches: &[&[crate::venue::Operation]],
    config: SecurityConfig,
) -> Result<(crate::validity::ValidityStatement, Proof), ProveError> {
    if batches.iter().any(|b| b.is_empty()) {
        return Err(ProveError::NoRecords);
    }
    let ops: Vec<crate::venue::Operation> = batches.concat();
    let sizes: Vec<usize> = batches.iter().map(|b| b.len()).collect();
    prove_forest_with(venue, &ops, &sizes, &ops, |_| {}, |_, _, _| {}, config)
}

/// [`prove_forest_with`] for one batch.
pub(crate) fn prove_validity_with(
    venue: &crate::venue::Venue,
    records_ops: &[crate::venue::Operation],
    ops: &[crate::venue::Operation],
    edit: impl FnOnce(&mut crate::validity::ValidityStatement),
    forge: impl FnOnce(
        &mut Vec<crate::cash::CashRow>,
        &mut Vec<crate::settle::SettleRow>,
        &mut Vec<crate::settle::HolderRow>,
    ),
    config: SecurityConfig,
) -> Result<(crate::validity::ValidityStatement, Proof), ProveError> {
    let sizes = [records_ops.len()];
    prove_forest_with(venue, records_ops, &sizes, ops, edit, forge, config)
}

/// The validity prover with its seams exposed for attack tests: the data forest is built from
/// `records_ops` cut into batches of `sizes`, the operation rows from `ops` (applied
/// natively, so each row is valid on its own), `forge` may rewrite the cash and settlement
/// rows (unchecked), and `edit` may rewrite the statement before it is bound. Anything but
/// `records_ops == ops` and a no-op `edit` yields a proof that must not verify.
#[allow(clippy::too_many_arguments)]
pub(crate) fn prove_forest_with(
    venue: &crate::venue::Venue,
    records_ops: &[crate::venue::Operation],
    sizes: &[usize],
    ops: &[crate::venue::Operation],
    edit: impl FnOnce(&mut crate::validity::ValidityStatement),
    forge: impl FnOnce(
        &mut Vec<crate::cash::CashRow>,
        &mut Vec<crate::settle::SettleRow>,
        &mut Vec<crate::settle::HolderRow>,
    ),
    config: SecurityConfig,
) -> Result<(crate::validity::ValidityStatement, Proof), ProveError> {
    use std::collections::BTreeMap;

    use crate::settle::{
        settle_rows, HEADER_COLUMNS, HEADER_LOOKUPS, HOLDER_COLUMNS, HOLDER_LOOKUPS,
    };

    use crate::cash::{CashRow, CASH_BOUND_COLUMNS, CASH_COLUMNS};
    use crate::state_tree::{
        Touched, STATE_LEAF_COLUMNS, STATE_LEAF_LOOKUPS, STATE_NODE_COLUMNS, STATE_NODE_LOOKUPS,
    };
    use crate::trade::{trade_row, Access, Lookup, TRADE_COLUMNS};
    use crate::validity::{
        Components, ValidityRelations, ValidityStatement, MAX_OPS, N_COMPONENTS,
    };
    use crate::venue::Operation;

    if ops.is_empty() {
        return Err(ProveError::NoRecords);
    }
    if ops.len() > MAX_OPS {
        return Err(ProveError::TooManyRecords {
            max: MAX_OPS,
            got: ops.len(),
        });
    }
    let mut venue = venue.clone();
    let pre_tree = venue.state_tree().clone();
    let mut last: BTreeMap<u32, u32> = BTreeMap::new();
    let mut touched: BTreeMap<u32, Touched> = BTreeMap::new();
    let mut touch = |a: &Access| {
        let t = touched.entry(a.key).or_insert(Touched {
            key: a.key,
            before: a.old,
            after: a.old,
            last_access: 0,
        });
        t.after = a.new;
        t.last_access = a.t;
    };
    let at =
        |i: usize| move |v: crate::venue::Violation| crate::venue::Violation { op_index: i, ..v };
    let (mut cash_rows, mut trade_rows) = (Vec::new(), Vec::new());
    let (mut settle_headers, mut holder_rows) = (Vec::new(), Vec::new());
    for (i, op) in ops.iter().enumerate() {
        match *op {
            Operation::Deposit {
                account,
                amount,
                timestamp_us,
            }
            | Operation::Withdraw {
                account,
                amount,
                timestamp_us,
            } => {
                let before = venue.account(account);
                let clock = venue.clock();
                venue.apply_batch(std::slice::from_ref(op)).map_err(at(i))?;
                let mut row = CashRow {
                    index: i as u32,
                    account,
                    withdraw: matches!(op, Operation::Withdraw { .. }),
                    amount,
                    before,
                    after: venue.account(account),
                    t_prev: 0,
                    timestamp: timestamp_us,
                    clock,
                    clock_t_prev: 0,
                };
                let a = row.access();
                row.t_prev = last.insert(a.key, a.t).unwrap_or(0);
                let k = row.clock_access();
                row.clock_t_prev = last.insert(k.key, k.t).unwrap_or(0);
                cash_rows.push(row);
            }
            Operation::Trade { .. } => {
                let row = trade_row(&mut venue, op, i as u32, &mut last).map_err(at(i))?;
                trade_rows.push(row);
            }
            Operation::Settle { .. } => {
                let (header, holders) =
                    settle_rows(&mut venue, op, i as u32, &mut last).map_err(at(i))?;
                settle_headers.push(header);
                holder_rows.extend(holders);
            }
        }
    }
    forge(&mut cash_rows, &mut settle_headers, &mut holder_rows);
    // The touched leaves, from every row's accesses in time order.
    let mut accesses: Vec<Access> = cash_rows
        .iter()
        .flat_map(|r| [r.access(), r.clock_access()])
        .chain(trade_rows.iter().flat_map(|r| r.accesses()))
        .chain(settle_headers.iter().flat_map(|r| r.accesses()))
        .chain(holder_rows.iter().flat_map(|r| r.accesses()))
        .collect();
    accesses.sort_by_key(|a| a.t);
    for a in &accesses {
        touch(a);
    }
    drop(accesses);
    let settle_w: Vec<_> = settle_headers
        .par_iter()
        .map(crate::settle::SettleRow::witness)
        .collect();
    let holder_w: Vec<_> = holder_rows
        .par_iter()
        .map(crate::settle::HolderRow::witness)
        .collect();
    let cash_w: Vec<_> = cash_rows.par_iter().map(CashRow::witness).collect();
    let trade_w: Vec<_> = trade_rows.par_iter().map(|r| r.witness(true)).collect();
    drop((cash_rows, trade_rows));
    let touched: Vec<Touched> = touched.into_values().collect();
    let state = crate::state_tree::tree_witness(&pre_tree, &touched).map_err(ProveError::Stwo)?;
    drop(pre_tree);
    let chip_rows = chip_witness(state.leaves.iter().chain(&state.nodes));
    let ranges = cash_w
        .iter()
        .chain(&trade_w)
        .chain(&settle_w)
        .chain(&holder_w)
        .chain(&state.leaves)
        .flat_map(|w| {
            w.lookups.iter().filter_map(|l| match l {
                Lookup::Range(v) => Some(*v),
                _ => None,
            })
        });
    let table = crate::range::table_columns(ranges);
    let table: [BaseColumn; 2] = table.map(|c| c.into_iter().collect());

    let records: Vec<M31> = records_ops.iter().flat_map(Operation::encode).collect();
    if sizes.iter().sum::<usize>() != records_ops.len() || sizes.contains(&0) {
        return Err(ProveError::Stwo(format!(
            "batch sizes {sizes:?} do not cut {} records into non-empty batches",
            records_ops.len()
        )));
    }
    let mut statement = ValidityStatement {
        batches: sizes
            .iter()
            .map(|&n| crate::validity::BatchTree {
                n_ops: n as u32,
                data_root: Digest::ZERO,
            })
            .collect(),
        log_cash_rows: crate::air::log_rows_for(cash_w.len()),
        log_trade_rows: crate::air::log_rows_for(trade_w.len()),
        pre_state_root: state.pre_root,
        post_state_root: state.post_root,
        log_state_leaf_rows: crate::air::log_rows_for(state.leaves.len()),
        log_state_node_rows: crate::air::log_rows_for(state.nodes.len()),
        log_chip_rows: crate::air::log_rows_for(chip_rows.len()),
        log_settle_rows: crate::air::log_rows_for(settle_w.len()),
        log_holder_rows: crate::air::log_rows_for(holder_w.len()),
        instruments: venue.instruments().to_vec(),
    };
    let (leaf_log, node_log) = statement.data_log_rows();
    let shifts = statement.shifts();
    let (leaves_t, nodes_t, roots) = forest_traces(&records, sizes, &shifts, leaf_log, node_log);
    drop(records);
    for (b, root) in statement.batches.iter_mut().zip(roots) {
        b.data_root = root;
    }
    edit(&mut statement);
    statement.check().map_err(ProveError::Stwo)?;
    let cash_width = CASH_COLUMNS + CASH_BOUND_COLUMNS;
    let trade_width = TRADE_COLUMNS;
    let inst_log = crate::validity::log_instrument_rows(statement.instruments.len());
    let mut inst_uses = vec![[0u32; 2]; statement.instruments.len()];
    for w in trade_w.iter().chain(&settle_w) {
        for l in &w.lookups {
            match l {
                Lookup::Instrument(v) => inst_uses[v[0].0 as usize][0] += 1,
                Lookup::SettleTerms(v) => inst_uses[v[0].0 as usize][1] += 1,
                _ => {}
            }
        }
    }
    let inst_cols: Vec<BaseColumn> = {
        let n = 1usize << inst_log;
        let rows: Vec<[M31; crate::instruments::INSTRUMENT_COLUMNS]> = (0..n)
            .map(|r| {
                let mut row = [M31::from_u32_unchecked(0); crate::instruments::INSTRUMENT_COLUMNS];
                if let Some(inst) = statement.instruments.get(r) {
                    row[0] = M31::from_u32_unchecked(1);
                    let full = crate::instruments::settle_terms(r as u32, inst);
                    row[1..10].copy_from_slice(&full[..9]);
                    row[10] = M31::from_u32_unchecked(inst_uses[r][0]);
                    row[11..16].copy_from_slice(&full[9..]);
                    row[16] = M31::from_u32_unchecked(inst_uses[r][1]);
                }
                row
            })
            .collect();
        (0..crate::instruments::INSTRUMENT_COLUMNS)
            .map(|c| rows.iter().map(|r| r[c]).collect())
            .collect()
    };
    let cash_cols = witness_columns(statement.log_cash_rows, &cash_w, cash_width);
    let trade_cols = witness_columns(statement.log_trade_rows, &trade_w, trade_width);
    let settle_cols = witness_columns(statement.log_settle_rows, &settle_w, HEADER_COLUMNS);
    let holder_cols = witness_columns(statement.log_holder_rows, &holder_w, HOLDER_COLUMNS);
    let leaf_cols = witness_columns(
        statement.log_state_leaf_rows,
        &state.leaves,
        STATE_LEAF_COLUMNS,
    );
    let node_cols = witness_columns(
        statement.log_state_node_rows,
        &state.nodes,
        STATE_NODE_COLUMNS,
    );
    let chip_cols = padded_columns(statement.log_chip_rows, &chip_rows, &chip_padding());

    let public_inputs = statement.to_public_inputs();
    let max_log = Components::max_log_rows(&statement);
    let twiddles = SimdBackend::precompute_twiddles(
        CanonicCoset::new(max_log + 1 + config.log_blowup())
            .circle_domain()
            .half_coset,
    );
    let channel = &mut Blake2sChannel::default();
    mix_preamble(channel, AirId::BatchValidity, &config, &public_inputs);
    let mut scheme = CommitmentSchemeProver::<SimdBackend, Blake2sMerkleChannel>::new(
        config.pcs_config(),
        &twiddles,
    );
    scheme.tree_builder().commit(channel);
    let mut tree = scheme.tree_builder();
    tree.extend_evals(evaluations(crate::range::LOG_RANGE, table.to_vec()));
    tree.extend_evals(evaluations(inst_log, inst_cols.clone()));
    tree.extend_evals(evaluations(leaf_log, leaves_t.columns.clone()));
    tree.extend_evals(evaluations(node_log, nodes_t.columns.clone()));
    tree.extend_evals(evaluations(statement.log_cash_rows, cash_cols));
    tree.extend_evals(evaluations(statement.log_trade_rows, trade_cols));
    tree.extend_evals(evaluations(statement.log_state_leaf_rows, leaf_cols));
    tree.extend_evals(evaluations(statement.log_state_node_rows, node_cols));
    tree.extend_evals(evaluations(statement.log_chip_rows, chip_cols));
    tree.extend_evals(evaluations(statement.log_settle_rows, settle_cols));
    tree.extend_evals(evaluations(statement.log_holder_rows, holder_cols));
    tree.commit(channel);

    let rels = ValidityRelations::draw(channel);
    let inter = [
        range_interaction(&table, &rels.range),
        instrument_interaction(inst_log, &inst_cols, &rels),
        leaf_op_interaction(&leaves_t, &rels.merkle, &rels.ops),
        node_interaction(&nodes_t, &rels.merkle, true),
        witness_interaction(
            statement.log_cash_rows,
            &cash_w,
            crate::cash::CASH_LOOKUPS,
            &rels,
        ),
        witness_interaction(
            statement.log_trade_rows,
            &trade_w,
            crate::trade::TRADE_LOOKUPS,
            &rels,
        ),
        witness_interaction(
            statement.log_state_leaf_rows,
            &state.leaves,
            STATE_LEAF_LOOKUPS,
            &rels,
        ),
        witness_interaction(
            statement.log_state_node_rows,
            &state.nodes,
            STATE_NODE_LOOKUPS,
            &rels,
        ),
        witness_interaction(statement.log_chip_rows, &chip_rows, 1, &rels),
        witness_interaction(statement.log_settle_rows, &settle_w, HEADER_LOOKUPS, &rels),
        witness_interaction(statement.log_holder_rows, &holder_w, HOLDER_LOOKUPS, &rels),
    ];
    drop((leaves_t, nodes_t, cash_w, trade_w, state, chip_rows));
    drop((settle_w, holder_w));
    let sums: [SecureField; N_COMPONENTS] = std::array::from_fn(|i| inter[i].1);
    mix_claimed_sums(channel, &sums);
    let mut tree = scheme.tree_builder();
    for (evals, _) in inter {
        tree.extend_evals(evals);
    }
    tree.commit(channel);

    let c = Components::new(&statement, &rels, &sums);
    let stark = prove::<SimdBackend, Blake2sMerkleChannel>(
        &[
            &c.range,
            &c.instruments,
            &c.leaf,
            &c.node,
            &c.cash,
            &c.trade,
            &c.state_leaf,
            &c.state_node,
            &c.chip,
            &c.settle,
            &c.holder,
        ],
        channel,
        scheme,
    )
    .map_err(|e| ProveError::Stwo(e.to_string()))?;
    let proof = Proof {
        air: AirId::BatchValidity,
        config,
        public_inputs,
        claimed_sums: sums.to_vec(),
        stark,
    };
    Ok((statement, proof))
}

pub use crate::merkle::data_root;

#[cfg(test)]
mod tests {
    use stwo::core::pcs::TreeVec;
    use stwo_constraint_framework::{assert_constraints_on_trace, FrameworkEval};

    use super::*;

    fn records(n: usize, l: usize) -> Vec<M31> {
        (0..n * l)
            .map(|i| M31::from_u32_unchecked((i as u32).wrapping_mul(2654435761) & 0xffff))
            .collect()
    }

    fn check_leaf_trace(t: &ComponentTrace, l: usize) {
        let relation = MerkleNodeRelation::dummy();
        let (inter, sum) = leaf_interaction(t, &relation);
        let main: Vec<Vec<M31>> = t.columns.iter().map(|c| c.clone().into_cpu_vec()).collect();
        let inter: Vec<Vec<M31>> = inter.into_iter().map(|e| e.values.into_cpu_vec()).collect();
        let trees = TreeVec(vec![vec![], main.iter().collect(), inter.iter().collect()]);
        let eval = LeafEval {
            log_rows: t.log_rows,
            record_limbs: l,
            relation,
            ops: None,
        };
        assert_constraints_on_trace(
            &trees,
            t.log_rows,
            |e| {
                eval.evaluate(e);
            },
            sum,
        );
    }

    #[test]
    #[should_panic]
    fn leaf_trace_with_a_wrong_sbox_cell_violates_constraints() {
        let mut t = leaf_trace(&records(20, 12), 12, 5, 5);
        let cell = 2 + 12 + 7; // some S-box square of the first permutation
        let mut col = t.columns[cell].clone().into_cpu_vec();
        col[3] += M31::from_u32_unchecked(1);
        t.columns[cell] = col.into_iter().collect();
        check_leaf_trace(&t, 12);
    }

    #[test]
    #[should_panic]
    fn leaf_trace_with_non_boolean_enabled_violates_constraints() {
        let mut t = leaf_trace(&records(20, 12), 12, 5, 5);
        let mut col = t.columns[0].clone().into_cpu_vec();
        col[0] = M31::from_u32_unchecked(2);
        t.columns[0] = col.into_iter().collect();
        check_leaf_trace(&t, 12);
    }

    #[test]
    fn leaf_and_node_traces_satisfy_their_constraints() {
        let (n, l) = (21, 12);
        let recs = records(n, l);
        let depth = depth_for(n);
        let st = DataRootStatement {
            n_records: n as u32,
            record_limbs: l as u32,
            root: Digest::ZERO,
        };
        let (leaf_log, node_log) = st.log_rows();
        let leaves_t = leaf_trace(&recs, l, leaf_log, depth);
        let leaf_digests: Vec<Digest> = (0..n)
            .map(|r| Digest(std::array::from_fn(|i| leaves_t.yielded[i].at(r))))
            .collect();
        let (nodes_t, root) = node_trace(&leaf_digests, node_log, depth);
        assert_eq!(
            root,
            data_root(&recs, l),
            "trace generator and native tree disagree"
        );

        let relation = MerkleNodeRelation::dummy();
        for (t, is_leaf) in [(&leaves_t, true), (&nodes_t, false)] {
            let (inter, sum) = if is_leaf {
                leaf_interaction(t, &relation)
            } else {
                node_interaction(t, &relation, false)
            };
            let main: Vec<Vec<M31>> = t.columns.iter().map(|c| c.clone().into_cpu_vec()).collect();
            let inter: Vec<Vec<M31>> = inter.into_iter().map(|e| e.values.into_cpu_vec()).collect();
            let trees = TreeVec(vec![vec![], main.iter().collect(), inter.iter().collect()]);
            if is_leaf {
                let eval = LeafEval {
                    log_rows: t.log_rows,
                    record_limbs: l,
                    relation: relation.clone(),
                    ops: None,
                };
                assert_constraints_on_trace(
                    &trees,
                    t.log_rows,
                    |e| {
                        eval.evaluate(e);
                    },
                    sum,
                );
            } else {
                let eval = NodeEval {
                    log_rows: t.log_rows,
                    relation: relation.clone(),
                    forest: false,
                };
                assert_constraints_on_trace(
                    &trees,
                    t.log_rows,
                    |e| {
                        eval.evaluate(e);
                    },
                    sum,
                );
            }
        }
    }
}
