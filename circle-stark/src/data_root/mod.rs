//! The data-root AIR: "the records in this trace are exactly the leaves of the Poseidon2-M31
//! Merkle tree with root R" (`specs/data-root-air.md`).
//!
//! Two components share one LogUp relation `MerkleNode(index, digest[8])`:
//! - the **leaf** component: one record per row; the row hashes the record with the sponge
//!   (one permutation per 8 limbs, all in the row) and *yields* `(2^d + i, leaf digest)`;
//! - the **node** component: one compression per row; it *consumes* its two children
//!   `(2·idx, left)`, `(2·idx + 1, right)` and *yields* `(idx, parent)`.
//!
//! The verifier closes the relation from outside: it consumes `(1, R)` and yields the few
//! empty-subtree siblings `(index, Z_h)` that it computes from `n` alone. The relation balances
//! only if the yields form a hash tree rooted at `R` whose indices are fixed top-down from the
//! root; with a collision-resistant hash this pins every leaf to its position.

#[cfg(feature = "prover")]
pub(crate) mod prove;
pub(crate) mod verify;

#[cfg(feature = "prover")]
pub use prove::prove_data_root;
pub use verify::{verify_data_root, verify_data_root_bytes};

use stwo::core::fields::qm31::SecureField;
use stwo_constraint_framework::{
    relation, EvalAtRow, FrameworkComponent, FrameworkEval, RelationEntry,
};

use crate::field::M31;
use crate::hash::merkle::{depth_for, empty_digests, empty_siblings, n_internal_nodes};
use crate::hash::poseidon2::sponge::{n_absorptions, sponge_init};
use crate::hash::poseidon2::{
    permute_generic, Digest, Domain, SboxSink, DIGEST_LEN, N_SBOXES, RATE, WIDTH,
};

// Up to 11 values: `(index, digest[8])` in a data-root proof, `(tree, shift, index, digest[8])`
// in a batch-validity proof's forest of per-batch trees.
relation!(MerkleNodeRelation, 11);
relation!(OpRelation, 28);

/// Limbs of an operation record that carry data (`kind ‖ a ‖ b ‖ instrument ‖ x ‖ y ‖ f1 ‖ f2 ‖
/// ts`); the remaining five are zero, fixed by the data root. `OpRelation` carries the op index
/// and these (28 values).
pub const OP_FIELDS: usize = 27;

/// Committed cells per permutation: a square and a fifth power per S-box.
pub const PERM_CELLS: usize = 2 * N_SBOXES;
/// Smallest component: one SIMD vector of rows.
pub const MIN_LOG_ROWS: u32 = 4;
/// Longest record the leaf component accepts (eight permutations per row).
pub const MAX_RECORD_LIMBS: usize = 64;
/// Largest record count one data-root proof may state (2^22 rows per component).
pub const MAX_RECORDS: usize = 1 << 22;

/// Turns S-boxes into two committed cells and two constraints of degree ≤ 3.
pub(crate) struct AirSbox<'a, E: EvalAtRow> {
    pub(crate) eval: &'a mut E,
}

impl<E: EvalAtRow> SboxSink<E::F> for AirSbox<'_, E> {
    fn sbox(&mut self, x: E::F) -> E::F {
        let sq = self.eval.next_trace_mask();
        let x5 = self.eval.next_trace_mask();
        self.eval.add_constraint(sq.clone() - x.clone() * x.clone());
        self.eval.add_constraint(x5.clone() - sq.clone() * sq * x);
        x5
    }
}

/// The public statement of a data-root proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataRootStatement {
    /// Number of records (≥ 1).
    pub n_records: u32,
    /// Limbs per record (1..=64).
    pub record_limbs: u32,
    /// The Merkle root over the records' leaf digests.
    pub root: Digest,
}

impl DataRootStatement {
    /// Public inputs in their canonical order: `n_records, record_limbs, root[0..8]`.
    pub fn to_public_inputs(&self) -> Vec<M31> {
        let mut out = vec![
            M31::from_u32_unchecked(self.n_records),
            M31::from_u32_unchecked(self.record_limbs),
        ];
        out.extend(self.root.0);
        out
    }

    /// Inverse of [`DataRootStatement::to_public_inputs`]; `None` for a wrong count.
    pub fn from_public_inputs(inputs: &[M31]) -> Option<Self> {
        let [n, limbs, root @ ..] = inputs else {
            return None;
        };
        let root: [M31; DIGEST_LEN] = root.try_into().ok()?;
        Some(Self {
            n_records: n.0,
            record_limbs: limbs.0,
            root: Digest(root),
        })
    }

    /// Row counts (log2) of the leaf and node components.
    pub fn log_rows(&self) -> (u32, u32) {
        let n = self.n_records as usize;
        (log_rows_for(n), log_rows_for(n_internal_nodes(n)))
    }

    /// The LogUp sum the two components must claim together:
    /// `1 / c(1, R) − Σ 1 / c(index, Z_h)` over the empty siblings.
    pub fn expected_logup_sum(&self, relation: &MerkleNodeRelation) -> SecureField {
        use stwo::core::fields::FieldExpOps;
        use stwo_constraint_framework::Relation;
        let n = self.n_records as usize;
        let term = |index: u64, digest: &Digest| -> SecureField {
            let mut values = vec![M31::from_u32_unchecked(index as u32)];
            values.extend(digest.0);
            let denom: SecureField = relation.combine(&values);
            denom.inverse()
        };
        let empty = empty_digests(depth_for(n));
        let mut sum = term(1, &self.root);
        for (index, height) in empty_siblings(n) {
            sum -= term(index, &empty[height as usize]);
        }
        sum
    }
}

/// `max(MIN_LOG_ROWS, ⌈log2 rows⌉)`.
pub fn log_rows_for(rows: usize) -> u32 {
    rows.max(1)
        .next_power_of_two()
        .trailing_zeros()
        .max(MIN_LOG_ROWS)
}

/// Leaf component: `enabled, index, limbs[L], k × PERM_CELLS` with `k = ⌈L/8⌉`.
#[derive(Debug, Clone)]
pub struct LeafEval {
    /// log2 of the row count.
    pub log_rows: u32,
    /// Limbs per record.
    pub record_limbs: usize,
    /// The relation's challenges.
    pub relation: MerkleNodeRelation,
    /// In a batch-validity proof, the forest mode: two more columns `tree, shift`, the node
    /// tuple becomes `(tree, shift, index, digest)` and the row also yields
    /// `Op(index + shift, record[..27])` for the operation rows to consume. The verifier closes
    /// tree `t` at `(t, shift_t, 1, root_t)` with `shift_t = base_t − 2^depth_t` (`base_t`: the
    /// operations of the trees before it), and node rows carry `tree, shift` unchanged from
    /// parent to children, so every leaf of tree `t` has `shift_t` and leaf `i` yields
    /// `Op(base_t + i)`.
    pub ops: Option<OpRelation>,
}

/// Extra columns of a forest-mode row (leaf or node): `tree, shift`, after the others.
pub const FOREST_COLUMNS: usize = 2;

impl LeafEval {
    /// Main-trace columns (data-root mode).
    pub fn n_columns(record_limbs: usize) -> usize {
        2 + record_limbs + n_absorptions(record_limbs) * PERM_CELLS
    }

    /// Main-trace columns of this component.
    pub fn columns(&self) -> usize {
        Self::n_columns(self.record_limbs)
            + if self.ops.is_some() {
                FOREST_COLUMNS
            } else {
                0
            }
    }
}

impl FrameworkEval for LeafEval {
    fn log_size(&self) -> u32 {
        self.log_rows
    }

    fn max_constraint_log_degree_bound(&self) -> u32 {
        self.log_rows + 1
    }

    fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
        let enabled = eval.next_trace_mask();
        let index = eval.next_trace_mask();
        let limbs: Vec<E::F> = (0..self.record_limbs)
            .map(|_| eval.next_trace_mask())
            .collect();
        eval.add_constraint(enabled.clone() * enabled.clone() - enabled.clone());

        let mut state: [E::F; WIDTH] =
            sponge_init(Domain::RecordLeaf, self.record_limbs).map(E::F::from);
        for block in 0..n_absorptions(self.record_limbs) {
            for (s, limb) in state
                .iter_mut()
                .zip(limbs.iter().skip(block * RATE).take(RATE))
            {
                *s = s.clone() + limb.clone();
            }
            state = permute_generic(state, &mut AirSbox { eval: &mut eval });
        }
        let forest = self
            .ops
            .as_ref()
            .map(|_| [eval.next_trace_mask(), eval.next_trace_mask()]);
        let mut entry = match &forest {
            Some([tree, shift]) => vec![tree.clone(), shift.clone(), index.clone()],
            None => vec![index.clone()],
        };
        entry.extend(state.into_iter().take(DIGEST_LEN));
        eval.add_to_relation(RelationEntry::new(
            &self.relation,
            E::EF::from(enabled.clone()),
            &entry,
        ));
        if let (Some(ops), Some([_, shift])) = (&self.ops, forest) {
            let mut op = vec![index + shift];
            op.extend(limbs.iter().take(OP_FIELDS).cloned());
            eval.add_to_relation(RelationEntry::new(ops, E::EF::from(enabled), &op));
        }
        eval.finalize_logup_in_pairs();
        eval
    }
}

/// Node component: `enabled, index, left[8], right[8], PERM_CELLS`.
#[derive(Debug, Clone)]
pub struct NodeEval {
    /// log2 of the row count.
    pub log_rows: u32,
    /// The relation's challenges.
    pub relation: MerkleNodeRelation,
    /// Forest mode (see [`LeafEval::ops`]): `tree, shift` columns, prefixed to every tuple.
    pub forest: bool,
}

impl NodeEval {
    /// Main-trace columns (data-root mode).
    pub const N_COLUMNS: usize = 2 + 2 * DIGEST_LEN + PERM_CELLS;

    /// Main-trace columns of this component.
    pub fn columns(&self) -> usize {
        Self::N_COLUMNS + if self.forest { FOREST_COLUMNS } else { 0 }
    }
}

impl FrameworkEval for NodeEval {
    fn log_size(&self) -> u32 {
        self.log_rows
    }

    fn max_constraint_log_degree_bound(&self) -> u32 {
        self.log_rows + 1
    }

    fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
        let enabled = eval.next_trace_mask();
        let index = eval.next_trace_mask();
        let input: [E::F; WIDTH] = std::array::from_fn(|_| eval.next_trace_mask());
        eval.add_constraint(enabled.clone() * enabled.clone() - enabled.clone());

        let out = permute_generic(input.clone(), &mut AirSbox { eval: &mut eval });
        let prefix: Vec<E::F> = if self.forest {
            vec![eval.next_trace_mask(), eval.next_trace_mask()]
        } else {
            Vec::new()
        };
        let mut parent = prefix.clone();
        parent.push(index.clone());
        parent.extend((0..DIGEST_LEN).map(|i| out[i].clone() + input[i].clone()));
        let left_index = index.clone() * M31::from_u32_unchecked(2);
        let right_index = left_index.clone() + E::F::from(M31::from_u32_unchecked(1));
        let mut left = prefix.clone();
        left.push(left_index);
        left.extend(input[..DIGEST_LEN].iter().cloned());
        let mut right = prefix;
        right.push(right_index);
        right.extend(input[DIGEST_LEN..].iter().cloned());

        let yield_ = E::EF::from(enabled.clone());
        let consume = -E::EF::from(enabled);
        eval.add_to_relation(RelationEntry::new(&self.relation, yield_, &parent));
        eval.add_to_relation(RelationEntry::new(&self.relation, consume.clone(), &left));
        eval.add_to_relation(RelationEntry::new(&self.relation, consume, &right));
        eval.finalize_logup_in_pairs();
        eval
    }
}

/// The leaf component.
pub type LeafComponent = FrameworkComponent<LeafEval>;
/// The node component.
pub type NodeComponent = FrameworkComponent<NodeEval>;
