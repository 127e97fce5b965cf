//! The lifted Merkle check (stwo's `MerkleVerifierLifted::verify`), recording each hash.

use stwo::core::fields::m31::BaseField;
use stwo::core::vcs_lifted::merkle_hasher::MerkleHasherLifted;
use stwo::core::vcs_lifted::verifier::MerkleVerificationError;
use stwo::core::verifier::VerificationError;

use super::{structure, MerkleLeaf, MerkleNode, MerkleTrace, TreeTrace};

/// Checks `queried_values` at `positions` against `tree`'s root with the witness, as stwo.
pub(super) fn verify<H: MerkleHasherLifted>(
    tree: &TreeTrace<H::Hash>,
    positions: &[usize],
    queried_values: &[Vec<BaseField>],
    witness: &[H::Hash],
) -> Result<MerkleTrace<H::Hash>, VerificationError> {
    let mut trace = MerkleTrace {
        leaves: Vec::new(),
        nodes: Vec::new(),
    };
    if tree.height == 0 {
        return Ok(trace);
    }
    if queried_values.len() != tree.column_log_sizes.len() {
        return Err(structure(format!(
            "expected {} opened columns, got {}",
            tree.column_log_sizes.len(),
            queried_values.len()
        )));
    }
    // Every column holds one value per query position, repeats included.
    if let Some(col) = queried_values
        .iter()
        .position(|c| c.len() != positions.len())
    {
        return Err(structure(format!(
            "column {col}: expected {} opened values, got {}",
            positions.len(),
            queried_values[col].len()
        )));
    }
    for i in 1..positions.len() {
        if positions[i - 1] == positions[i] && queried_values.iter().any(|c| c[i - 1] != c[i]) {
            return Err(structure("a repeated position opened to different values"));
        }
    }
    if positions.is_empty() {
        return Err(structure("no query positions"));
    }
    // Stable, as stwo's `sorted_by_key`.
    let mut order: Vec<usize> = (0..queried_values.len()).collect();
    order.sort_by_key(|&c| tree.column_log_sizes[c]);
    let mut layer: Vec<(usize, H::Hash)> = Vec::new();
    for (idx, &pos) in positions.iter().enumerate() {
        if idx > 0 && positions[idx - 1] == pos {
            continue;
        }
        let row: Vec<BaseField> = order.iter().map(|&c| queried_values[c][idx]).collect();
        let mut hasher = H::default();
        hasher.update_leaf(&row);
        let hash = hasher.finalize();
        trace.leaves.push(MerkleLeaf {
            position: pos,
            row,
            hash,
        });
        layer.push((pos, hash));
    }

    let mut witness = witness.iter();
    for depth in 1..=tree.height {
        let mut next = Vec::with_capacity(layer.len());
        for chunk in layer.chunk_by(|a, b| a.0 ^ 1 == b.0) {
            let (idx0, hash0) = chunk[0];
            let (left, right, from_witness) = if chunk.len() == 1 {
                let sibling = *witness
                    .next()
                    .ok_or(MerkleVerificationError::WitnessTooShort)?;
                if idx0 & 1 == 0 {
                    (hash0, sibling, true)
                } else {
                    (sibling, hash0, true)
                }
            } else {
                (hash0, chunk[1].1, false)
            };
            let parent = H::hash_children((left, right));
            trace.nodes.push(MerkleNode {
                layer: depth,
                index: idx0 >> 1,
                left,
                right,
                parent,
                from_witness,
            });
            next.push((idx0 >> 1, parent));
        }
        layer = next;
    }
    if witness.next().is_some() {
        return Err(MerkleVerificationError::WitnessTooLong.into());
    }
    match layer.as_slice() {
        [(_, root)] if *root == tree.root => Ok(trace),
        [_] => Err(MerkleVerificationError::RootMismatch.into()),
        _ => Err(structure("positions outside the tree")),
    }
}
