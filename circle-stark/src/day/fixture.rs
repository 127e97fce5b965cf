//! A small day for the root proofs' tests: each rollup's sample batches, chained from its
//! sample venue's state.

use crate::day::statement::BatchStatement;
use crate::field::M31;
use crate::venue::{instruments_root, sample, Operation, Venue, OP_LIMBS};

pub(crate) const T0: u64 = 1_800_000_000_000_000;

pub(crate) struct Fixture {
    pub statements: Vec<BatchStatement>,
    pub ops: Vec<Vec<Operation>>,
    /// Each rollup's state before its first batch.
    pub venues: Vec<(u32, Venue)>,
}

/// Per rollup `(id, seed, batch sizes)`: `sample::batch(sample_ops, accounts, seed, T0, 0)` cut
/// into batches of those sizes, seqs from `first_seq`.
pub(crate) fn day(
    rollups: &[(u32, u64, &[usize])],
    sample_ops: usize,
    accounts: u32,
    first_seq: u64,
) -> Fixture {
    let mut f = Fixture {
        statements: Vec::new(),
        ops: Vec::new(),
        venues: Vec::new(),
    };
    for &(rollup_id, seed, sizes) in rollups {
        let (venue, all) = sample::batch(sample_ops, accounts, seed, T0, 0);
        f.venues.push((rollup_id, venue.clone()));
        let mut v = venue;
        let mut at = 0;
        for (seq, &n) in sizes.iter().enumerate() {
            let batch = all[at..at + n].to_vec();
            at += n;
            let pre = v.state_root();
            v.apply_batch(&batch).unwrap();
            let records: Vec<M31> = batch.iter().flat_map(Operation::encode).collect();
            f.statements.push(BatchStatement {
                rollup_id,
                seq: seq as u64 + first_seq,
                pre_state_root: pre,
                post_state_root: v.state_root(),
                data_root: crate::hash::merkle::data_root(&records, OP_LIMBS),
                instruments_root: instruments_root(v.instruments()),
                n_ops: n as u32,
            });
            f.ops.push(batch);
        }
    }
    f
}
