//! A batch's inclusion proof in its day tree, from a published bundle (`specs/day-proof.md` §1).

use poe_circle_stark::day::statement::BatchStatement;
use poe_circle_stark::encoding::Record;
use poe_circle_stark::hash::merkle::{InclusionProof, MerkleTree};
use poe_circle_stark::hash::poseidon2::{hash_elements, Digest, Domain};

use crate::day::Day;
use crate::error::ArchiveError;
use crate::layout;
use crate::records::read_statements_file;
use crate::storage::Storage;

/// A batch statement, its leaf and its Merkle path to the day root.
#[derive(Debug, Clone)]
pub struct Inclusion {
    /// The batch statement (the leaf's record).
    pub statement: BatchStatement,
    /// `H(RecordLeaf, statement)`.
    pub leaf: Digest,
    /// The path.
    pub proof: InclusionProof,
    /// The day root it leads to.
    pub day_root: Digest,
}

fn digest(s: &str) -> Result<Digest, ArchiveError> {
    Digest::from_hex(s).map_err(|e| ArchiveError::Value(format!("statements.parquet: {e}")))
}

/// The inclusion proof of batch `batch_id` (hex) in the published bundle of `day`; `None` if
/// the day is not published or the batch is not in it.
///
/// # Errors
/// Storage or Parquet failures.
pub fn inclusion(
    storage: &dyn Storage,
    day: Day,
    batch_id: &str,
) -> Result<Option<Inclusion>, ArchiveError> {
    if !layout::is_published(storage, day) {
        return Ok(None);
    }
    let path = layout::day_file(day, layout::STATEMENTS_PARQUET);
    let bytes = storage
        .read(&path)
        .map_err(|e| ArchiveError::io(&path, e))?;
    let rows = read_statements_file(&bytes)?;
    let Some(index) = rows.iter().position(|r| r.batch_id == batch_id) else {
        return Ok(None);
    };
    let statements = rows
        .iter()
        .map(|r| {
            Ok(BatchStatement {
                rollup_id: r.rollup_id,
                seq: r.seq,
                pre_state_root: digest(&r.pre_state_root)?,
                post_state_root: digest(&r.post_state_root)?,
                data_root: digest(&r.data_root)?,
                instruments_root: digest(&r.instruments_root)?,
                n_ops: r.n_ops,
            })
        })
        .collect::<Result<Vec<_>, ArchiveError>>()?;
    let leaves: Vec<Digest> = statements
        .iter()
        .map(|s| hash_elements(Domain::RecordLeaf, &s.encode()))
        .collect();
    let tree = MerkleTree::new(leaves.clone());
    Ok(Some(Inclusion {
        statement: statements[index],
        leaf: leaves[index],
        proof: tree.prove(index).expect("index within the leaves"),
        day_root: tree.root(),
    }))
}
