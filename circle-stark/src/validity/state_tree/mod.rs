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
//!
//! **AIR v4 (windowed)** (`specs/batch-air.md` §7): one tree pair per batch. Every tuple also
//! carries its batch's time window `[start, end)` and packs `side + 2·flag` into one value
//! (`side` and `flag` boolean), so the 21-value tuple is `(level, parent, side + 2·flag, pre[8],
//! post[8], start, end)`; a leaf yields its init at time `start` (not 0) and proves
//! `t_last < end`; the verifier consumes one root tuple per batch. The windows keep each
//! batch's accesses on their own chains: a batch's leaves open and close exactly its own
//! accesses, so every root between two batches is proven.

use stwo_constraint_framework::{
    relation, EvalAtRow, FrameworkComponent, FrameworkEval, RelationEntry,
};

use crate::field::M31;
use crate::hash::chip::Poseidon2Io;
use crate::hash::poseidon2::sponge::sponge_init;
use crate::hash::poseidon2::{Digest, Domain, DIGEST_LEN, RATE, WIDTH};
use crate::validity::memory::StateRel;
use crate::validity::range::RangeRelations;

use crate::venue::state::{LEAF_LIMBS, STATE_DEPTH};

// 21 wide for AIR v4's tuples; v3's 20-value tuples combine with the same challenges (a
// relation's draw does not depend on its width).
relation!(StateNodeRel, 21);

/// Values of a node tuple: `level, parent, side, flag, pre[8], post[8]`.
pub const NODE_TUPLE: usize = 4 + 2 * DIGEST_LEN;
/// Values of an AIR v4 node tuple: `level, parent, side + 2·flag, pre[8], post[8], start, end`.
pub const WINDOWED_NODE_TUPLE: usize = 3 + 2 * DIGEST_LEN + 2;
/// AIR v4 leaf rows append `start, end, d_lo, d_hi` (`end − t_last − 1 = d_lo + 2^16·d_hi`).
pub const WINDOW_LEAF_COLUMNS: usize = 4;
/// AIR v4 leaf rows range-check `d_lo` and `d_hi`.
pub const WINDOW_LEAF_LOOKUPS: usize = 2;
/// AIR v4 node rows append `start, end`.
pub const WINDOW_NODE_COLUMNS: usize = 2;
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

/// AIR v4: the root tuple of one batch's tree pair, `window` its roots and time window.
pub fn windowed_root_tuple(window: &crate::validity::statement::StateWindow) -> Vec<M31> {
    windowed_tuple(
        STATE_DEPTH,
        ROOT_PARENT,
        1,
        1,
        &window.pre,
        &window.post,
        (window.start, window.end),
    )
}

/// An AIR v4 node tuple: `level, parent, side + 2·flag, pre[8], post[8], start, end`.
pub fn windowed_tuple(
    level: u32,
    parent: u32,
    side: u32,
    flag: u32,
    pre: &Digest,
    post: &Digest,
    (start, end): (u32, u32),
) -> Vec<M31> {
    let mut v = vec![m(level), m(parent), m(side + 2 * flag)];
    v.extend(pre.0);
    v.extend(post.0);
    v.extend([m(start), m(end)]);
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
    /// AIR v4: tuples and the init carry the batch's time window.
    pub windowed: bool,
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
        let window: Option<[E::F; WINDOW_LEAF_COLUMNS]> = self.windowed.then(|| read(&mut eval));
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
        let zero = E::F::from(m(0));
        let init_time = match &window {
            None => zero.clone(),
            Some([start, ..]) => start.clone(),
        };
        let init = state(&before, init_time);
        let last = state(&after, t_last.clone());
        eval.add_to_relation(RelationEntry::new(&self.state, e.clone(), &init));
        eval.add_to_relation(RelationEntry::new(&self.state, -e.clone(), &last));
        let parent = q + key_hi * m(1 << 15);
        let mut window_limbs = None;
        let leaf = match window {
            None => {
                let mut leaf = vec![zero.clone(), parent, b0, zero];
                leaf.extend(pre);
                leaf.extend(post);
                leaf
            }
            Some([start, end, d_lo, d_hi]) => {
                // The batch's last access of the key is inside its window: `end − t_last − 1`
                // is a 22-bit number (a 16-bit limb and a 6-bit one, as the memory argument's
                // time differences).
                eval.add_constraint(
                    enabled_cell.clone()
                        * (end.clone()
                            - t_last
                            - E::F::from(m(1))
                            - d_lo.clone()
                            - d_hi.clone() * m(1 << 16)),
                );
                let shifted = d_hi * m(1 << (32 - crate::validity::memory::TIME_BITS));
                window_limbs = Some([d_lo, shifted]);
                // A leaf's flag is 0: `side + 2·flag = b0`.
                let mut leaf = vec![zero, parent, b0];
                leaf.extend(pre);
                leaf.extend(post);
                leaf.extend([start, end]);
                leaf
            }
        };
        eval.add_to_relation(RelationEntry::new(&self.node, e.clone(), &leaf));
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
        for limb in window_limbs.into_iter().flatten() {
            eval.add_to_relation(RelationEntry::new(range, -e.clone(), &[limb]));
        }
        eval.finalize_logup_in_pairs();
        eval
    }
}

/// The node component.
#[derive(Debug, Clone)]
pub struct StateNodeEval {
    /// log2 of the row count.
    pub log_rows: u32,
    /// AIR v4: tuples carry the batch's time window and `side + 2·flag`.
    pub windowed: bool,
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
        let window: Option<[E::F; WINDOW_NODE_COLUMNS]> = self.windowed.then(|| read(&mut eval));
        for b in [&enabled, &has_l, &has_r] {
            eval.add_constraint(b.clone() * b.clone() - b.clone());
        }
        if self.windowed {
            // `side + 2·flag` names both only when both are bits.
            for b in [&side, &flag] {
                eval.add_constraint(b.clone() * b.clone() - b.clone());
            }
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
        let mut own = match &window {
            None => vec![level.clone(), parent, side, flag],
            Some(_) => vec![level.clone(), parent, side + flag * m(2)],
        };
        own.extend(pre);
        own.extend(post);
        if let Some(w) = &window {
            own.extend(w.iter().cloned());
        }
        let child = |s: u32, pre: &[E::F; DIGEST_LEN], post: &[E::F; DIGEST_LEN]| {
            let mut v = vec![level.clone() - one.clone(), index.clone()];
            match &window {
                None => v.extend([E::F::from(m(s)), f.clone()]),
                Some(_) => v.push(E::F::from(m(s)) + f.clone() * m(2)),
            }
            v.extend(pre.iter().cloned());
            v.extend(post.iter().cloned());
            if let Some(w) = &window {
                v.extend(w.iter().cloned());
            }
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

#[cfg(feature = "prover")]
mod witness;
#[cfg(feature = "prover")]
pub use witness::*;

#[cfg(all(test, feature = "prover"))]
mod tests;
