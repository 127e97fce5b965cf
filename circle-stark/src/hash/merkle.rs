//! Poseidon2-M31 Merkle trees over record leaves (`specs/poseidon2.md` §5).
//!
//! Nodes are numbered heap-style: the root is 1 and node `i` has children `2i` and `2i + 1`;
//! with depth `d = ⌈log2 n⌉` the leaves are `2^d .. 2^d + n`. Positions past the last leaf are
//! *empty*: an empty subtree of height `h` has the fixed digest `Z_h` (`Z_0` = zero digest,
//! `Z_{h+1} = compress(Z_h, Z_h)`), so the tree needs only ⌈n/2^h⌉ real nodes per level.

use crate::hash::poseidon2::{compress, Digest};

/// Depth of the tree over `n_leaves` leaves (0 for a single leaf).
pub fn depth_for(n_leaves: usize) -> u32 {
    n_leaves.max(1).next_power_of_two().trailing_zeros()
}

/// `Z_0 ..= Z_depth` (`depth` ≤ 64), from a table computed once: an auditor rebuilding a
/// day's segment statements needs them for every batch.
pub fn empty_digests(depth: u32) -> &'static [Digest] {
    static TABLE: std::sync::OnceLock<Vec<Digest>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut out = vec![Digest::ZERO];
        for h in 0..64 {
            out.push(compress(&out[h], &out[h]));
        }
        out
    });
    &table[..=depth as usize]
}

/// Real (non-empty) nodes at height `h` for `n` leaves: ⌈n / 2^h⌉.
pub fn real_nodes_at(n_leaves: usize, height: u32) -> usize {
    n_leaves.div_ceil(1usize << height)
}

/// Internal nodes that hash at least one real leaf: the rows of the node component.
pub fn n_internal_nodes(n_leaves: usize) -> usize {
    (1..=depth_for(n_leaves))
        .map(|h| real_nodes_at(n_leaves, h))
        .sum()
}

/// Empty siblings of real nodes, as `(heap index, height)`: at most one per level.
pub fn empty_siblings(n_leaves: usize) -> Vec<(u64, u32)> {
    let depth = depth_for(n_leaves);
    (0..depth)
        .filter_map(|h| {
            let real = real_nodes_at(n_leaves, h);
            (real % 2 == 1).then(|| (((1u64 << depth) >> h) + real as u64, h))
        })
        .collect()
}

/// The data root of `records` (flat, `record_limbs` each): the Merkle root over
/// `hash_elements(RecordLeaf, record)` — what a data-root proof proves (`specs/data-root-air.md`).
///
/// # Panics
/// If there are no records or `record_limbs` is zero.
pub fn data_root(records: &[crate::field::M31], record_limbs: usize) -> Digest {
    let leaves = records
        .chunks(record_limbs)
        .map(|r| {
            crate::hash::poseidon2::hash_elements(crate::hash::poseidon2::Domain::RecordLeaf, r)
        })
        .collect();
    MerkleTree::new(leaves).root()
}

/// A Merkle tree with all its real nodes kept, for roots and inclusion proofs.
#[derive(Debug, Clone)]
pub struct MerkleTree {
    /// `levels[h]` holds the real nodes at height `h`; `levels[0]` are the leaves.
    levels: Vec<Vec<Digest>>,
    empty: Vec<Digest>,
}

/// A leaf's path to the root: one sibling per level, leaf level first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// Leaf position, `0 .. n_leaves`.
    pub index: u64,
    /// Siblings from the leaf's level upwards.
    pub siblings: Vec<Digest>,
}

impl MerkleTree {
    /// Builds the tree.
    ///
    /// # Panics
    /// If `leaves` is empty: a data root over nothing is refused earlier, with an error.
    pub fn new(leaves: Vec<Digest>) -> Self {
        assert!(!leaves.is_empty(), "a Merkle tree needs at least one leaf");
        let depth = depth_for(leaves.len());
        let empty = empty_digests(depth);
        let mut levels = vec![leaves];
        for h in 0..depth as usize {
            let below = &levels[h];
            let next = below
                .chunks(2)
                .map(|pair| compress(&pair[0], pair.get(1).unwrap_or(&empty[h])))
                .collect();
            levels.push(next);
        }
        Self {
            levels,
            empty: empty.to_vec(),
        }
    }

    /// The root.
    pub fn root(&self) -> Digest {
        self.levels.last().expect("at least one level")[0]
    }

    /// Number of leaves.
    pub fn n_leaves(&self) -> usize {
        self.levels[0].len()
    }

    /// Depth (levels above the leaves).
    pub fn depth(&self) -> u32 {
        self.levels.len() as u32 - 1
    }

    /// Real nodes at height `h`, left to right.
    pub fn level(&self, height: u32) -> &[Digest] {
        &self.levels[height as usize]
    }

    /// The inclusion proof of leaf `index`, or `None` past the last leaf.
    pub fn prove(&self, index: usize) -> Option<InclusionProof> {
        if index >= self.n_leaves() {
            return None;
        }
        let siblings = (0..self.depth() as usize)
            .map(|h| {
                let pos = (index >> h) ^ 1;
                *self.levels[h].get(pos).unwrap_or(&self.empty[h])
            })
            .collect();
        Some(InclusionProof {
            index: index as u64,
            siblings,
        })
    }
}

impl InclusionProof {
    /// Recomputes the root from `leaf`; the caller compares it with the trusted root.
    pub fn root_from(&self, leaf: &Digest) -> Digest {
        let mut acc = *leaf;
        for (h, sibling) in self.siblings.iter().enumerate() {
            acc = if (self.index >> h) & 1 == 0 {
                compress(&acc, sibling)
            } else {
                compress(sibling, &acc)
            };
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::M31;
    use crate::hash::poseidon2::{hash_elements, Domain};

    fn leaves(n: usize) -> Vec<Digest> {
        (0..n)
            .map(|i| hash_elements(Domain::Message, &[M31::from_u32_unchecked(i as u32)]))
            .collect()
    }

    /// The same root, computed the slow way: pad the leaves with `Z_0` to a power of two.
    fn padded_root(leaves: &[Digest]) -> Digest {
        let mut level: Vec<Digest> = leaves.to_vec();
        level.resize(leaves.len().next_power_of_two(), Digest::ZERO);
        while level.len() > 1 {
            level = level.chunks(2).map(|p| compress(&p[0], &p[1])).collect();
        }
        level[0]
    }

    #[test]
    fn root_equals_fully_padded_tree() {
        for n in [1, 2, 3, 5, 8, 13, 64, 100] {
            let l = leaves(n);
            assert_eq!(
                MerkleTree::new(l.clone()).root(),
                padded_root(&l),
                "n = {n}"
            );
        }
    }

    #[test]
    fn inclusion_proofs_verify_and_bind_the_leaf() {
        let l = leaves(13);
        let tree = MerkleTree::new(l.clone());
        for (i, leaf) in l.iter().enumerate() {
            let proof = tree.prove(i).unwrap();
            assert_eq!(proof.root_from(leaf), tree.root());
            assert_ne!(proof.root_from(&l[(i + 1) % 13]), tree.root());
        }
        assert!(tree.prove(13).is_none());
    }

    #[test]
    fn node_and_sibling_counts() {
        // n = 5: levels of 5, 3, 2, 1 real nodes; empty siblings at (13, h0) and (7, h1).
        assert_eq!(n_internal_nodes(5), 3 + 2 + 1);
        assert_eq!(empty_siblings(5), vec![(13, 0), (7, 1)]);
        assert_eq!(n_internal_nodes(1), 0);
        assert!(empty_siblings(8).is_empty());
        assert_eq!(
            MerkleTree::new(leaves(5)).level(1).len(),
            real_nodes_at(5, 1)
        );
    }
}
