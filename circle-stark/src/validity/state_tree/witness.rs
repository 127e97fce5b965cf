//! The witness side (feature `prover`).

use super::*;
use crate::field::M31;
use crate::hash::poseidon2::{permute, Digest, DIGEST_LEN, WIDTH};
use crate::validity::trade::{Lookup, RowWitness};
use crate::venue::state::{leaf_digest, StateTree, LEAF_LIMBS, STATE_DEPTH};
use std::collections::{BTreeMap, BTreeSet};

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
    leaf_row_in(t, None)
}

/// [`leaf_row`] of AIR v4 in the time window `window` (`None`: v2/v3's row).
pub fn leaf_row_in(t: &Touched, window: Option<(u32, u32)>) -> RowWitness {
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
        Lookup::Write(state(&t.before, window.map_or(0, |w| w.0))),
        Lookup::Read(state(&t.after, t.last_access)),
        Lookup::NodeYield(any_tuple(
            (0, t.key >> 1, b0, 0),
            &digests[0],
            &digests[1],
            window,
        )),
    ];
    lookups.extend(perms);
    if let Some((start, end)) = window {
        // In the field, as the constraint has it: a last access outside the window leaves
        // a `d_hi` of 2^6 or more, which its range check refuses.
        let d = (m(end) - m(t.last_access) - m(1)).0;
        let (d_lo, d_hi) = (d & 0xffff, d >> 16);
        cells.extend([m(start), m(end), m(d_lo), m(d_hi)]);
        lookups.push(Lookup::Range(m(d_lo)));
        lookups.push(Lookup::Range(m(
            d_hi << (32 - crate::validity::memory::TIME_BITS)
        )));
    }
    RowWitness { cells, lookups }
}

fn any_tuple(
    (level, parent, side, flag): (u32, u32, u32, u32),
    pre: &Digest,
    post: &Digest,
    window: Option<(u32, u32)>,
) -> Vec<M31> {
    match window {
        None => tuple(level, parent, side, flag, pre, post),
        Some(w) => windowed_tuple(level, parent, side, flag, pre, post, w),
    }
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
    address: (u32, u32, u32, u32),
    children: [Child; 2],
) -> (RowWitness, Digest, Digest) {
    node_row_in(address, children, None)
}

/// [`node_row`] of AIR v4 in the time window `window` (`None`: v2/v3's row).
pub fn node_row_in(
    (level, parent, side, flag): (u32, u32, u32, u32),
    children: [Child; 2],
    window: Option<(u32, u32)>,
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
            Lookup::NodeUse(any_tuple((level - 1, index, s, f), &c.pre, &c.post, window))
        } else {
            Lookup::Nothing
        }
    };
    let mut lookups = vec![
        Lookup::NodeYield(any_tuple(
            (level, parent, side, flag),
            &out[0],
            &out[1],
            window,
        )),
        use_child(&l, 0),
        use_child(&r, 1),
    ];
    lookups.extend(perms);
    if let Some((start, end)) = window {
        cells.extend([m(start), m(end)]);
    }
    (RowWitness { cells, lookups }, out[0], out[1])
}

/// Rows proving that the `touched` leaves, set in `tree` (the state before the batch) from
/// `before` to `after`, turn its root into the returned post root.
///
/// # Errors
/// If `touched` is empty, not strictly increasing, has a key above the clock's or a `before`
/// that is not `tree`'s value.
pub fn tree_witness(tree: &StateTree, touched: &[Touched]) -> Result<TreeWitness, String> {
    let (w, _) = tree_witness_in(tree, touched, None)?;
    Ok(w)
}

/// AIR v4: one tree pair per batch, `batches` giving each batch's touched leaves (their
/// `before` the values at the batch's start, `last_access` inside its window) and time
/// window, from `tree` (the state before the first batch). Returns the rows of all pairs and
/// the first pre- and last post-state root, and the root after each batch.
///
/// # Errors
/// As [`tree_witness`], for the batch it names.
pub fn windowed_tree_witness(
    tree: &StateTree,
    batches: &[(Vec<Touched>, (u32, u32))],
) -> Result<(TreeWitness, Vec<Digest>), String> {
    let mut tree = tree.clone();
    let (mut leaves, mut nodes, mut roots) = (Vec::new(), Vec::new(), Vec::new());
    let pre_root = tree.root();
    for (t, (touched, window)) in batches.iter().enumerate() {
        let (w, posts) = tree_witness_in(&tree, touched, Some(*window))
            .map_err(|e| format!("batch {t}: {e}"))?;
        for (height, index, digest) in posts {
            tree.put(height, index, digest);
        }
        leaves.extend(w.leaves);
        nodes.extend(w.nodes);
        roots.push(w.post_root);
    }
    let post_root = *roots.last().ok_or("no batches")?;
    let all = TreeWitness {
        leaves,
        nodes,
        pre_root,
        post_root,
    };
    Ok((all, roots))
}

/// Post-state node digests `(height, index, digest)`, leaves at height 0.
type PostNodes = Vec<(u32, u32, Digest)>;

/// The rows of one tree pair, and every post-state node digest they computed, so that the
/// caller can advance `tree`.
fn tree_witness_in(
    tree: &StateTree,
    touched: &[Touched],
    window: Option<(u32, u32)>,
) -> Result<(TreeWitness, PostNodes), String> {
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
    let leaves: Vec<RowWitness> = touched.iter().map(|t| leaf_row_in(t, window)).collect();
    let mut posts: PostNodes = level.iter().map(|(&k, d)| (0, k, d.1)).collect();
    let (nodes, pre_root, post_root) = node_rows_in(tree, level, window, &mut posts);
    if pre_root != tree.root() {
        return Err("bug: recomputed pre-state root differs from the tree's".into());
    }
    Ok((
        TreeWitness {
            leaves,
            nodes,
            pre_root,
            post_root,
        },
        posts,
    ))
}

/// Node rows over leaf digests `(pre, post)` placed at the given positions; siblings off the
/// paths come from `tree`. Returns the rows and both roots.
pub fn node_rows(
    tree: &StateTree,
    level: BTreeMap<u32, (Digest, Digest)>,
) -> (Vec<RowWitness>, Digest, Digest) {
    node_rows_in(tree, level, None, &mut Vec::new())
}

fn node_rows_in(
    tree: &StateTree,
    mut level: BTreeMap<u32, (Digest, Digest)>,
    window: Option<(u32, u32)>,
    posts: &mut PostNodes,
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
            let (row, pre, post) = node_row_in(address, [child(0), child(1)], window);
            nodes.push(row);
            posts.push((h, idx, post));
            next.insert(idx, (pre, post));
        }
        level = next;
    }
    let (pre_root, post_root) = level[&0];
    (nodes, pre_root, post_root)
}

fn tuple(level: u32, parent: u32, side: u32, flag: u32, pre: &Digest, post: &Digest) -> Vec<M31> {
    let mut v = vec![m(level), m(parent), m(side), m(flag)];
    v.extend(pre.0);
    v.extend(post.0);
    v
}
