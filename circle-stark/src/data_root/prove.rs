//! Proving data-root statements, and the data forest a batch-validity proof carries (feature `prover`).

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

use super::verify::{build_components, check_statement};
use super::MAX_RECORDS;
use crate::config::SecurityConfig;
use crate::data_root::{
    DataRootStatement, LeafEval, MerkleNodeRelation, NodeEval, MAX_RECORD_LIMBS, PERM_CELLS,
};
use crate::error::ProveError;
use crate::field::{M31, MODULUS};
use crate::hash::merkle::{depth_for, empty_digests, real_nodes_at};
use crate::hash::poseidon2::sponge::sponge_init;
use crate::hash::poseidon2::{
    permute_generic, Digest, Domain, RecordingSbox, DIGEST_LEN, RATE, WIDTH,
};
use crate::proof::{AirId, ChannelId, Proof, Stark};
use crate::stark::{mix_claimed_sums, mix_preamble};

pub(crate) type Evaluation = CircleEvaluation<SimdBackend, M31, BitReversedOrder>;

/// A component's trace: committed columns plus the digest each row yields (not committed: the
/// AIR recomputes it from the committed cells).
pub(crate) struct ComponentTrace {
    pub(crate) log_rows: u32,
    pub(crate) columns: Vec<BaseColumn>,
    /// Eight columns: the yielded digest per row.
    pub(crate) yielded: Vec<BaseColumn>,
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
                let parent = crate::hash::poseidon2::compress(&left, &right);
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
pub(crate) fn forest_traces(
    records: &[M31],
    sizes: &[usize],
    shifts: &[M31],
    leaf_log: u32,
    node_log: u32,
) -> (ComponentTrace, ComponentTrace, Vec<Digest>) {
    use crate::data_root::FOREST_COLUMNS;
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

pub(crate) fn packed(col: &BaseColumn, vec_row: usize) -> PackedBaseField {
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
pub(crate) fn node_interaction(
    t: &ComponentTrace,
    relation: &MerkleNodeRelation,
    forest: bool,
) -> (Vec<Evaluation>, SecureField) {
    let n_vec_rows = 1 << (t.log_rows - LOG_N_LANES);
    // The forest's `tree, shift` columns, prefixed to every tuple.
    let prefix = |vec_row: usize| -> Vec<PackedBaseField> {
        if forest {
            (0..crate::data_root::FOREST_COLUMNS)
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

pub(crate) fn evaluations(log_rows: u32, columns: Vec<BaseColumn>) -> Vec<Evaluation> {
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

/// The data-root prover under `air`, with `bound(statement)` appended to the public inputs:
/// those are bound by the transcript only, never by a constraint.
pub(crate) fn prove_records(
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
    mix_preamble(channel, ChannelId::Blake2s, air, &config, &public_inputs);
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
        stark: Stark::Blake2s(stark),
    };
    Ok((statement, proof))
}

#[cfg(test)]
mod tests {
    use crate::hash::merkle::data_root;
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
