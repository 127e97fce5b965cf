//! The state-tree components (`specs/batch-air.md` §4.6): they close the memory argument at
//! the state roots, so that a batch-validity proof speaks of `pre_state_root` and
//! `post_state_root` instead of a public list of touched leaves.
//!
//! - A **leaf** row per touched key yields the memory argument's init `State(key, before, 0)`,
//!   consumes its final `State(key, after, t_last)`, hashes both values and yields the tuple
//!   `StateNode(0, key >> 1, key & 1, 0, H(before), H(after))`.
//! - A **node** row per node on the union of the touched keys' paths hashes its children twice
//!   (pre and post state) and yields its own tuple.
//! - Both hash through the Poseidon2 chip (`chip.rs`): a row holds each permutation's output
//!   (16 cells) and consumes `Poseidon2Io(input ‖ output)`, so the rows stay narrow. A child is either consumed from the rows
//!   below (`has = 1`) or a free sibling whose pre and post digests are equal: an untouched
//!   subtree is the same in both trees.
//! - The verifier consumes the root tuple `(32, 2^30 − 1, 1, 1, pre_state_root,
//!   post_state_root)`.
//!
//! A node is addressed by `(level, parent index, side, flag)` and computes its own index as
//! `m = 2·parent + side`; it consumes its children as `(level − 1, m, 0 | 1, f)` with
//! `f = flag · side`. Every yield must be consumed once and the only consumption from outside
//! is the root's, so the rows form one tree under the root and each row's address is its true
//! position. Indices fit the field except at level 1, where the all-ones index `2^31 − 1`
//! equals 0: the flag marks the all-ones path (the root's tuple sets it, and a left turn
//! clears it), leaves yield flag 0, so no leaf can sit under the one level-1 node whose index
//! aliases another. (The root's own index is `2·(2^30 − 1) + 1 = 2^31 − 1 ≡ 0`, with flag and
//! side 1.) Leaf keys are range-checked: `key_lo = 2q + b₀` with `q` and `key_lo` 16-bit and
//! `key_hi ≤ 0xc000`, so `key >> 1 = q + 2^15·key_hi` stays below p.

use std::collections::{BTreeMap, BTreeSet};

use stwo_constraint_framework::{
    relation, EvalAtRow, FrameworkComponent, FrameworkEval, RelationEntry,
};

use crate::chip::Poseidon2Io;
use crate::field::M31;
use crate::memory::StateRel;
use crate::poseidon2::sponge::sponge_init;
use crate::poseidon2::{permute, Digest, Domain, DIGEST_LEN, RATE, WIDTH};
use crate::range::RangeRelations;
use crate::trade::{Lookup, RowWitness};
use crate::venue::state::{leaf_digest, StateTree, LEAF_LIMBS, STATE_DEPTH};

relation!(StateNodeRel, 20);

/// Values of a node tuple: `level, parent, side, flag, pre[8], post[8]`.
pub const NODE_TUPLE: usize = 4 + 2 * DIGEST_LEN;
/// Leaf rows: `enabled, key_lo, key_hi, q, b0, before[8], after[8], t_last`, the two
/// permutations' outputs.
pub const STATE_LEAF_COLUMNS: usize = 6 + 2 * LEAF_LIMBS + 2 * WIDTH;
/// Relation entries of a leaf row.
pub const STATE_LEAF_LOOKUPS: usize = 8;
/// Node rows: `enabled, level, parent, side, flag, f, has_l, has_r`, the children's pre and
/// post digests `l_pre, r_pre, l_post, r_post`, the two permutations' outputs.
pub const STATE_NODE_COLUMNS: usize = 8 + 4 * DIGEST_LEN + 2 * WIDTH;
/// Relation entries of a node row.
pub const STATE_NODE_LOOKUPS: usize = 5;

/// The root's parent index: `2 · ROOT_PARENT + 1 ≡ 0`, so the root computes index 0 with
/// side and flag 1.
pub const ROOT_PARENT: u32 = (1 << 30) - 1;
/// Added to `key_hi` before its range check: `key_hi ≤ 0xc000` (the clock's key is the
/// largest).
pub const KEY_HI_SLACK: u32 = 0xffff - 0xc000;

/// A state leaf the batch touched: its value before the batch, after it, and the time of its
/// last access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Touched {
    /// Leaf index (`specs/batch-air.md` §2).
    pub key: u32,
    /// Value before the batch.
    pub before: [M31; LEAF_LIMBS],
    /// Value after the batch.
    pub after: [M31; LEAF_LIMBS],
    /// Time of the last access.
    pub last_access: u32,
}

fn m(v: u32) -> M31 {
    M31::from_u32_unchecked(v)
}

/// The tuple the verifier consumes: the root of both trees.
pub fn root_tuple(pre: &Digest, post: &Digest) -> Vec<M31> {
    let mut v = vec![m(STATE_DEPTH), m(ROOT_PARENT), m(1), m(1)];
    v.extend(pre.0);
    v.extend(post.0);
    v
}

fn tuple(level: u32, parent: u32, side: u32, flag: u32, pre: &Digest, post: &Digest) -> Vec<M31> {
    let mut v = vec![m(level), m(parent), m(side), m(flag)];
    v.extend(pre.0);
    v.extend(post.0);
    v
}

/// The sponge input of `hash_elements(StateLeaf, value)`: one permutation.
fn leaf_input<F: Clone + From<M31> + std::ops::Add<Output = F>>(
    value: &[F; LEAF_LIMBS],
) -> [F; WIDTH] {
    let init = sponge_init(Domain::StateLeaf, LEAF_LIMBS);
    std::array::from_fn(|i| {
        if i < RATE {
            F::from(init[i]) + value[i].clone()
        } else {
            F::from(init[i])
        }
    })
}

/// Consumes `Poseidon2Io(input ‖ output)` for a permutation whose output the row holds.
fn eval_perm<E: EvalAtRow>(
    eval: &mut E,
    perm: &Poseidon2Io,
    enabled: &E::F,
    input: [E::F; WIDTH],
    output: &[E::F; WIDTH],
) {
    let values: Vec<E::F> = input.into_iter().chain(output.iter().cloned()).collect();
    eval.add_to_relation(RelationEntry::new(
        perm,
        -E::EF::from(enabled.clone()),
        &values,
    ));
}

fn read<E: EvalAtRow, const N: usize>(eval: &mut E) -> [E::F; N] {
    std::array::from_fn(|_| eval.next_trace_mask())
}

/// The leaf component.
#[derive(Debug, Clone)]
pub struct StateLeafEval {
    /// log2 of the row count.
    pub log_rows: u32,
    /// The memory argument's relation.
    pub state: StateRel,
    /// Range checks.
    pub range: RangeRelations,
    /// The tree's relation.
    pub node: StateNodeRel,
    /// The hash chip's relation.
    pub perm: Poseidon2Io,
}

impl FrameworkEval for StateLeafEval {
    fn log_size(&self) -> u32 {
        self.log_rows
    }

    fn max_constraint_log_degree_bound(&self) -> u32 {
        self.log_rows + 1
    }

    fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
        let [enabled, key_lo, key_hi, q, b0] = read::<E, 5>(&mut eval);
        let before: [E::F; LEAF_LIMBS] = read(&mut eval);
        let after: [E::F; LEAF_LIMBS] = read(&mut eval);
        let t_last = eval.next_trace_mask();
        let out_before: [E::F; WIDTH] = read(&mut eval);
        let out_after: [E::F; WIDTH] = read(&mut eval);
        eval.add_constraint(enabled.clone() * enabled.clone() - enabled.clone());
        eval.add_constraint(b0.clone() * b0.clone() - b0.clone());
        eval.add_constraint(key_lo.clone() - q.clone() * m(2) - b0.clone());
        let pre: [E::F; DIGEST_LEN] = std::array::from_fn(|i| out_before[i].clone());
        let post: [E::F; DIGEST_LEN] = std::array::from_fn(|i| out_after[i].clone());

        let enabled_cell = enabled.clone();
        let e = E::EF::from(enabled);
        let range = &self.range.range;
        eval.add_to_relation(RelationEntry::new(
            range,
            -e.clone(),
            std::slice::from_ref(&q),
        ));
        eval.add_to_relation(RelationEntry::new(
            range,
            -e.clone(),
            std::slice::from_ref(&key_lo),
        ));
        let hi = key_hi.clone() + E::F::from(m(KEY_HI_SLACK));
        eval.add_to_relation(RelationEntry::new(range, -e.clone(), &[hi]));
        let state = |value: &[E::F; LEAF_LIMBS], t: E::F| -> Vec<E::F> {
            let mut v = vec![key_lo.clone(), key_hi.clone()];
            v.extend(value.iter().cloned());
            v.push(t);
            v
        };
        let init = state(&before, E::F::from(m(0)));
        let last = state(&after, t_last);
        eval.add_to_relation(RelationEntry::new(&self.state, e.clone(), &init));
        eval.add_to_relation(RelationEntry::new(&self.state, -e.clone(), &last));
        let zero = E::F::from(m(0));
        let mut leaf = vec![zero.clone(), q + key_hi * m(1 << 15), b0, zero];
        leaf.extend(pre);
        leaf.extend(post);
        eval.add_to_relation(RelationEntry::new(&self.node, e, &leaf));
        let enabled_f = enabled_cell;
        eval_perm(
            &mut eval,
            &self.perm,
            &enabled_f,
            leaf_input(&before),
            &out_before,
        );
        eval_perm(
            &mut eval,
            &self.perm,
            &enabled_f,
            leaf_input(&after),
            &out_after,
        );
        eval.finalize_logup_in_pairs();
        eval
    }
}

/// The node component.
#[derive(Debug, Clone)]
pub struct StateNodeEval {
    /// log2 of the row count.
    pub log_rows: u32,
    /// The tree's relation.
    pub node: StateNodeRel,
    /// The hash chip's relation.
    pub perm: Poseidon2Io,
}

impl FrameworkEval for StateNodeEval {
    fn log_size(&self) -> u32 {
        self.log_rows
    }

    fn max_constraint_log_degree_bound(&self) -> u32 {
        self.log_rows + 1
    }

    fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
        let [enabled, level, parent, side, flag, f, has_l, has_r] = read::<E, 8>(&mut eval);
        let l_pre: [E::F; DIGEST_LEN] = read(&mut eval);
        let r_pre: [E::F; DIGEST_LEN] = read(&mut eval);
        let l_post: [E::F; DIGEST_LEN] = read(&mut eval);
        let r_post: [E::F; DIGEST_LEN] = read(&mut eval);
        let out_pre: [E::F; WIDTH] = read(&mut eval);
        let out_post: [E::F; WIDTH] = read(&mut eval);
        for b in [&enabled, &has_l, &has_r] {
            eval.add_constraint(b.clone() * b.clone() - b.clone());
        }
        let one = E::F::from(m(1));
        // A row that yields nothing may consume nothing: otherwise it could swallow a changed
        // subtree before it reaches the root.
        eval.add_constraint(has_l.clone() * (one.clone() - enabled.clone()));
        eval.add_constraint(has_r.clone() * (one.clone() - enabled.clone()));
        eval.add_constraint(f.clone() - flag.clone() * side.clone());
        // A free sibling is an untouched subtree: the same in both trees.
        for i in 0..DIGEST_LEN {
            eval.add_constraint(
                (one.clone() - has_l.clone()) * (l_pre[i].clone() - l_post[i].clone()),
            );
            eval.add_constraint(
                (one.clone() - has_r.clone()) * (r_pre[i].clone() - r_post[i].clone()),
            );
        }
        // compress(l, r) = P(l ‖ r)[..8] + l.
        let concat = |l: &[E::F; DIGEST_LEN], r: &[E::F; DIGEST_LEN]| -> [E::F; WIDTH] {
            std::array::from_fn(|i| {
                if i < DIGEST_LEN {
                    l[i].clone()
                } else {
                    r[i - DIGEST_LEN].clone()
                }
            })
        };
        let pre: [E::F; DIGEST_LEN] =
            std::array::from_fn(|i| out_pre[i].clone() + l_pre[i].clone());
        let post: [E::F; DIGEST_LEN] =
            std::array::from_fn(|i| out_post[i].clone() + l_post[i].clone());
        let (in_pre, in_post) = (concat(&l_pre, &r_pre), concat(&l_post, &r_post));

        let index = parent.clone() * m(2) + side.clone();
        let mut own = vec![level.clone(), parent, side, flag];
        own.extend(pre);
        own.extend(post);
        let child = |s: u32, pre: &[E::F; DIGEST_LEN], post: &[E::F; DIGEST_LEN]| {
            let mut v = vec![
                level.clone() - one.clone(),
                index.clone(),
                E::F::from(m(s)),
                f.clone(),
            ];
            v.extend(pre.iter().cloned());
            v.extend(post.iter().cloned());
            v
        };
        let left = child(0, &l_pre, &l_post);
        let right = child(1, &r_pre, &r_post);
        eval.add_to_relation(RelationEntry::new(
            &self.node,
            E::EF::from(enabled.clone()),
            &own,
        ));
        eval.add_to_relation(RelationEntry::new(&self.node, -E::EF::from(has_l), &left));
        eval.add_to_relation(RelationEntry::new(&self.node, -E::EF::from(has_r), &right));
        eval_perm(&mut eval, &self.perm, &enabled, in_pre, &out_pre);
        eval_perm(&mut eval, &self.perm, &enabled, in_post, &out_post);
        eval.finalize_logup_in_pairs();
        eval
    }
}

/// The leaf component.
pub type StateLeaf = FrameworkComponent<StateLeafEval>;
/// The node component.
pub type StateNode = FrameworkComponent<StateNodeEval>;

/// The rows of both components and the two roots they prove.
#[derive(Debug, Clone)]
pub struct TreeWitness {
    /// One row per touched key, by increasing key.
    pub leaves: Vec<RowWitness>,
    /// One row per node on the touched keys' paths, level by level from the bottom.
    pub nodes: Vec<RowWitness>,
    /// Root of the state before the batch.
    pub pre_root: Digest,
    /// Root of the state after it.
    pub post_root: Digest,
}

/// A witnessed leaf row (no checks: tests feed it forged values).
pub fn leaf_row(t: &Touched) -> RowWitness {
    let (key_lo, key_hi) = (t.key & 0xffff, t.key >> 16);
    let (q, b0) = (key_lo >> 1, key_lo & 1);
    let mut cells = vec![m(1), m(key_lo), m(key_hi), m(q), m(b0)];
    cells.extend(t.before);
    cells.extend(t.after);
    cells.push(m(t.last_access));
    let mut digests = [Digest::ZERO; 2];
    let mut perms = Vec::new();
    for (value, digest) in [t.before, t.after].iter().zip(&mut digests) {
        let input = leaf_input(value);
        let mut out = input;
        permute(&mut out);
        cells.extend(out);
        *digest = Digest(std::array::from_fn(|i| out[i]));
        perms.push(Lookup::Perm(input.into_iter().chain(out).collect()));
    }
    let state = |value: &[M31; LEAF_LIMBS], time: u32| {
        let mut v = vec![m(key_lo), m(key_hi)];
        v.extend(value);
        v.push(m(time));
        v
    };
    let mut lookups = vec![
        Lookup::Range(m(q)),
        Lookup::Range(m(key_lo)),
        Lookup::Range(m(key_hi + KEY_HI_SLACK)),
        Lookup::Write(state(&t.before, 0)),
        Lookup::Read(state(&t.after, t.last_access)),
        Lookup::NodeYield(tuple(0, t.key >> 1, b0, 0, &digests[0], &digests[1])),
    ];
    lookups.extend(perms);
    RowWitness { cells, lookups }
}

/// One side of a node row: consumed from below, or a free sibling (`pre = post`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Child {
    /// Consumed from the rows below.
    pub has: bool,
    /// Digest in the pre-state tree.
    pub pre: Digest,
    /// Digest in the post-state tree.
    pub post: Digest,
}

/// A witnessed node row at `(level, parent, side, flag)` (no checks: tests feed it forged
/// values). Returns the row and its `(pre, post)` digests.
pub fn node_row(
    (level, parent, side, flag): (u32, u32, u32, u32),
    children: [Child; 2],
) -> (RowWitness, Digest, Digest) {
    let f = flag * side;
    let [l, r] = children;
    let mut cells = vec![
        m(1),
        m(level),
        m(parent),
        m(side),
        m(flag),
        m(f),
        m(u32::from(l.has)),
        m(u32::from(r.has)),
    ];
    for d in [l.pre, r.pre, l.post, r.post] {
        cells.extend(d.0);
    }
    let mut out = [Digest::ZERO; 2];
    let mut perms = Vec::new();
    for (k, (a, b)) in [(l.pre, r.pre), (l.post, r.post)].into_iter().enumerate() {
        let mut input = [m(0); WIDTH];
        input[..DIGEST_LEN].copy_from_slice(&a.0);
        input[DIGEST_LEN..].copy_from_slice(&b.0);
        let mut o = input;
        permute(&mut o);
        cells.extend(o);
        out[k] = Digest(std::array::from_fn(|i| o[i] + a.0[i]));
        perms.push(Lookup::Perm(input.into_iter().chain(o).collect()));
    }
    let index = (parent.wrapping_mul(2).wrapping_add(side)) % crate::field::MODULUS;
    let use_child = |c: &Child, s: u32| {
        if c.has {
            Lookup::NodeUse(tuple(level - 1, index, s, f, &c.pre, &c.post))
        } else {
            Lookup::Nothing
        }
    };
    let mut lookups = vec![
        Lookup::NodeYield(tuple(level, parent, side, flag, &out[0], &out[1])),
        use_child(&l, 0),
        use_child(&r, 1),
    ];
    lookups.extend(perms);
    (RowWitness { cells, lookups }, out[0], out[1])
}

/// Rows proving that the `touched` leaves, set in `tree` (the state before the batch) from
/// `before` to `after`, turn its root into the returned post root.
///
/// # Errors
/// If `touched` is empty, not strictly increasing, has a key above the clock's or a `before`
/// that is not `tree`'s value.
pub fn tree_witness(tree: &StateTree, touched: &[Touched]) -> Result<TreeWitness, String> {
    if touched.is_empty() {
        return Err("no touched leaves".into());
    }
    if touched.windows(2).any(|w| w[0].key >= w[1].key) {
        return Err("touched keys must strictly increase".into());
    }
    let mut level: BTreeMap<u32, (Digest, Digest)> = BTreeMap::new();
    for t in touched {
        if t.key >> 16 > 0xc000 {
            return Err(format!("key {:#x} is above the clock's", t.key));
        }
        let pre = leaf_digest(&t.before);
        if tree.node(0, t.key) != pre {
            return Err(format!(
                "key {:#x}: `before` is not the tree's value",
                t.key
            ));
        }
        level.insert(t.key, (pre, leaf_digest(&t.after)));
    }
    let leaves: Vec<RowWitness> = touched.iter().map(leaf_row).collect();
    let (nodes, pre_root, post_root) = node_rows(tree, level);
    if pre_root != tree.root() {
        return Err("bug: recomputed pre-state root differs from the tree's".into());
    }
    Ok(TreeWitness {
        leaves,
        nodes,
        pre_root,
        post_root,
    })
}

/// Node rows over leaf digests `(pre, post)` placed at the given positions; siblings off the
/// paths come from `tree`. Returns the rows and both roots.
pub fn node_rows(
    tree: &StateTree,
    mut level: BTreeMap<u32, (Digest, Digest)>,
) -> (Vec<RowWitness>, Digest, Digest) {
    let mut nodes = Vec::new();
    for h in 1..=STATE_DEPTH {
        let parents: BTreeSet<u32> = level.keys().map(|k| k >> 1).collect();
        let mut next = BTreeMap::new();
        for idx in parents {
            let child = |s: u32| {
                let c = 2 * u64::from(idx) + u64::from(s);
                let c = u32::try_from(c).expect("children of level ≥ 1 fit 32 bits");
                match level.get(&c) {
                    Some(&(pre, post)) => Child {
                        has: true,
                        pre,
                        post,
                    },
                    None => {
                        let d = tree.node(h - 1, c);
                        Child {
                            has: false,
                            pre: d,
                            post: d,
                        }
                    }
                }
            };
            let address = if h == STATE_DEPTH {
                (h, ROOT_PARENT, 1, 1)
            } else {
                // Flag: the parent lies on the all-ones path.
                let all_ones_parent = (1u64 << (STATE_DEPTH - h - 1)) - 1;
                let flag = u32::from(u64::from(idx >> 1) == all_ones_parent);
                (h, idx >> 1, idx & 1, flag)
            };
            let (row, pre, post) = node_row(address, [child(0), child(1)]);
            nodes.push(row);
            next.insert(idx, (pre, post));
        }
        level = next;
    }
    let (pre_root, post_root) = level[&0];
    (nodes, pre_root, post_root)
}

#[cfg(all(test, feature = "prover"))]
mod tests {
    use stwo::core::fields::qm31::SecureField;
    use stwo::core::fields::FieldExpOps;
    use stwo_constraint_framework::{Relation, TraceLocationAllocator};

    use super::*;
    use crate::harness::{
        evaluations, logup_columns, prove_and_verify, range_table_column, range_table_component,
        Air,
    };
    use crate::range::LOG_RANGE;
    use crate::validity::ValidityRelations;
    use crate::venue::state::{account_leaf, AccountState, StateKey};

    const UNSAT: &str = "Constraints not satisfied.";

    fn account(cash: u64) -> [M31; LEAF_LIMBS] {
        account_leaf(&AccountState { cash, locked: 0 })
    }

    /// A tree with accounts 0, 5, 9 and the clock set; the batch changes 0 and 5 and reads 9
    /// (after = before).
    fn setup() -> (StateTree, Vec<Touched>) {
        let mut tree = StateTree::default();
        tree.set(StateKey::Account(0), &account(10));
        tree.set(StateKey::Account(5), &account(500));
        tree.set(StateKey::Account(9), &account(900));
        tree.set(StateKey::Clock, &crate::venue::state::clock_leaf(7));
        let touched = vec![
            Touched {
                key: 0,
                before: account(10),
                after: account(12),
                last_access: 3,
            },
            Touched {
                key: 5,
                before: account(500),
                after: account(498),
                last_access: 2,
            },
            Touched {
                key: 9,
                before: account(900),
                after: account(900),
                last_access: 1,
            },
            Touched {
                key: 3 << 30,
                before: crate::venue::state::clock_leaf(7),
                after: crate::venue::state::clock_leaf(8),
                last_access: 3,
            },
        ];
        (tree, touched)
    }

    fn columns(rows: &[RowWitness], pad: &[M31], log: u32) -> Vec<Vec<M31>> {
        (0..pad.len())
            .map(|c| {
                (0..1usize << log)
                    .map(|r| rows.get(r).map_or(pad[c], |w| w.cells[c]))
                    .collect()
            })
            .collect()
    }

    /// Proves the two components with the range table; the verifier stands in for the
    /// memory argument's accesses (`touched`) and consumes the stated roots.
    fn prove(
        leaves: &[RowWitness],
        nodes: &[RowWitness],
        touched: &[Touched],
        roots: (Digest, Digest),
    ) -> Result<(), String> {
        let leaf_log = crate::air::log_rows_for(leaves.len());
        let node_log = crate::air::log_rows_for(nodes.len());
        let ranges = leaves.iter().flat_map(|w| {
            w.lookups.iter().filter_map(|l| match l {
                Lookup::Range(v) => Some(*v),
                _ => None,
            })
        });
        let table = crate::range::table_columns(ranges);
        let chip = crate::prover::chip_witness(leaves.iter().chain(nodes));
        let chip_log = crate::air::log_rows_for(chip.len());
        let zero_leaf = vec![m(0); STATE_LEAF_COLUMNS];
        let zero_node = vec![m(0); STATE_NODE_COLUMNS];
        prove_and_verify(Air {
            main: vec![
                evaluations(LOG_RANGE, &table),
                evaluations(leaf_log, &columns(leaves, &zero_leaf, leaf_log)),
                evaluations(node_log, &columns(nodes, &zero_node, node_log)),
                evaluations(
                    chip_log,
                    &columns(&chip, &crate::prover::chip_padding(), chip_log),
                ),
            ],
            max_log_rows: LOG_RANGE,
            draw: ValidityRelations::draw,
            interaction: |rel: &ValidityRelations| {
                let table_col = range_table_column(&table, &rel.range);
                let rows_col = |rows: &[RowWitness], log: u32, width: usize| {
                    logup_columns(log, |r| match rows.get(r) {
                        Some(w) => w.lookups.iter().map(|l| rel.fraction(l)).collect(),
                        None => vec![rel.fraction(&Lookup::Nothing); width],
                    })
                };
                vec![
                    table_col,
                    rows_col(leaves, leaf_log, STATE_LEAF_LOOKUPS),
                    rows_col(nodes, node_log, STATE_NODE_LOOKUPS),
                    rows_col(&chip, chip_log, 1),
                ]
            },
            components: |rel: &ValidityRelations,
                         sums: &[SecureField],
                         alloc: &mut TraceLocationAllocator| {
                vec![
                    range_table_component(alloc, &rel.range, sums[0]),
                    Box::new(StateLeaf::new(
                        alloc,
                        StateLeafEval {
                            log_rows: leaf_log,
                            state: rel.state.clone(),
                            range: rel.range.clone(),
                            node: rel.node.clone(),
                            perm: rel.perm.clone(),
                        },
                        sums[1],
                    )),
                    Box::new(StateNode::new(
                        alloc,
                        StateNodeEval {
                            log_rows: node_log,
                            node: rel.node.clone(),
                            perm: rel.perm.clone(),
                        },
                        sums[2],
                    )),
                    Box::new(crate::chip::Poseidon2Chip::new(
                        alloc,
                        crate::chip::Poseidon2ChipEval {
                            log_rows: chip_log,
                            relation: rel.perm.clone(),
                        },
                        sums[3],
                    )),
                ]
            },
            expected_total: |rel: &ValidityRelations| {
                // What the accesses would contribute: consume each init, yield each final.
                let accesses: SecureField = touched
                    .iter()
                    .map(|t| {
                        let w = leaf_row(t);
                        let (n_init, d_init) = rel.fraction(&w.lookups[3]);
                        let (n_last, d_last) = rel.fraction(&w.lookups[4]);
                        n_init * d_init.inverse() + n_last * d_last.inverse()
                    })
                    .sum();
                let root: SecureField = rel.node.combine(&root_tuple(&roots.0, &roots.1));
                rel.range.expected_component_sum() + accesses + root.inverse()
            },
        })
    }

    #[test]
    fn honest_tree_proves_both_roots() {
        let (tree, touched) = setup();
        let w = tree_witness(&tree, &touched).unwrap();
        let mut after = tree.clone();
        for t in &touched {
            if t.key < crate::venue::MAX_ACCOUNTS {
                after.set(StateKey::Account(t.key), &t.after);
            } else {
                after.set(StateKey::Clock, &t.after);
            }
        }
        assert_eq!(w.pre_root, tree.root());
        assert_eq!(w.post_root, after.root());
        // Four paths to the root: 32 levels, the three accounts share most of theirs.
        assert!(w.nodes.len() < 4 * 32);
        prove(&w.leaves, &w.nodes, &touched, (w.pre_root, w.post_root)).unwrap();
    }

    #[test]
    fn another_post_root_is_rejected() {
        let (tree, touched) = setup();
        let w = tree_witness(&tree, &touched).unwrap();
        let mut wrong = w.post_root;
        wrong.0[0] += m(1);
        assert_eq!(
            prove(&w.leaves, &w.nodes, &touched, (w.pre_root, wrong)).unwrap_err(),
            "logup total"
        );
    }

    #[test]
    fn changed_leaf_hidden_behind_a_free_sibling_is_rejected() {
        // Drop account 5's leaf row and make its position a free sibling whose post digest
        // is the new value: the root would move without the memory argument seeing it.
        let (tree, touched) = setup();
        let w = tree_witness(&tree, &touched).unwrap();
        let kept: Vec<Touched> = touched.iter().copied().filter(|t| t.key != 5).collect();
        let leaves: Vec<RowWitness> = kept.iter().map(leaf_row).collect();
        let mut nodes = w.nodes.clone();
        // The level-1 node over keys 4 and 5 is the first row (level 1, index 2).
        let (pre5, post5) = (leaf_digest(&account(500)), leaf_digest(&account(498)));
        let z = tree.node(0, 4);
        let (row, _, _) = node_row(
            (1, 1, 0, 0),
            [
                Child {
                    has: false,
                    pre: z,
                    post: z,
                },
                Child {
                    has: false,
                    pre: pre5,
                    post: post5,
                },
            ],
        );
        assert_eq!(
            nodes[1].cells[1..4],
            [m(1), m(1), m(0)],
            "row over keys 4, 5"
        );
        nodes[1] = row;
        assert_eq!(
            prove(&leaves, &nodes, &kept, (w.pre_root, w.post_root)).unwrap_err(),
            UNSAT
        );
    }

    #[test]
    fn disabled_row_swallowing_a_subtree_is_rejected() {
        // A padding row consumes the clock's leaf tuple and yields nothing; the tree above
        // takes the clock's old value as a free sibling, so the roots show the clock unchanged.
        let (tree, touched) = setup();
        let clock = touched[3];
        let positions = touched[..3]
            .iter()
            .map(|t| (t.key, (leaf_digest(&t.before), leaf_digest(&t.after))))
            .collect();
        let (mut nodes, pre, post) = node_rows(&tree, positions);
        let sibling = tree.node(0, clock.key + 1);
        let (mut swallow, _, _) = node_row(
            (1, clock.key >> 2, 0, 0),
            [
                Child {
                    has: true,
                    pre: leaf_digest(&clock.before),
                    post: leaf_digest(&clock.after),
                },
                Child {
                    has: false,
                    pre: sibling,
                    post: sibling,
                },
            ],
        );
        // Disabled: it yields nothing and uses no permutation (its digests are unchecked).
        swallow.cells[0] = m(0);
        for k in [0, 3, 4] {
            swallow.lookups[k] = Lookup::Nothing;
        }
        nodes.push(swallow);
        let leaves: Vec<RowWitness> = touched.iter().map(leaf_row).collect();
        assert_eq!(
            prove(&leaves, &nodes, &touched, (pre, post)).unwrap_err(),
            UNSAT
        );
    }

    #[test]
    fn fee_account_moved_to_the_aliased_position_is_rejected() {
        // Index 2^31 − 1 at level 1 equals 0 in the field. With the fee account still empty,
        // place its first credit at key 2^32 − 2 (under that node) and leave key 0 empty: the
        // pre root is the honest one, the post root loses the fee. Without the flag, the leaf's
        // tuple (0, 0, 0, ·) would match the aliased node's left child.
        let tree = StateTree::default();
        let fee = Touched {
            key: 0,
            before: [m(0); LEAF_LIMBS],
            after: account(12),
            last_access: 3,
        };
        let mut positions = BTreeMap::new();
        positions.insert(
            u32::MAX - 1,
            (leaf_digest(&fee.before), leaf_digest(&fee.after)),
        );
        let (nodes, pre, post) = node_rows(&tree, positions);
        assert_eq!(pre, tree.root(), "the forged pre root is the honest one");
        let honest = tree_witness(&tree, &[fee]).unwrap();
        assert_ne!(post, honest.post_root);
        assert_eq!(
            prove(&honest.leaves, &nodes, &[fee], (pre, post)).unwrap_err(),
            "logup total"
        );
    }

    #[test]
    fn leaf_with_key_not_matching_its_halves_is_rejected() {
        // key_lo = 2q + b0 must hold: a leaf row claiming key 5's state but yielding key 4's
        // position.
        let (tree, touched) = setup();
        let w = tree_witness(&tree, &touched).unwrap();
        let mut leaves = w.leaves.clone();
        leaves[1].cells[4] = m(0);
        if let Lookup::NodeYield(v) = &mut leaves[1].lookups[5] {
            v[2] = m(0);
        }
        assert_eq!(
            prove(&leaves, &w.nodes, &touched, (w.pre_root, w.post_root)).unwrap_err(),
            UNSAT
        );
    }
}
