use poe_circle_stark::config::{SecurityConfig, VerifierPolicy};
use poe_circle_stark::validity::prove_validity;
use poe_circle_stark::venue::{sample, Operation};

use super::proofs::{data_statement, verify_leaf, LeafKind};
use super::*;

fn statement(
    seq: u64,
    ops: &[Operation],
    venue: &poe_circle_stark::venue::Venue,
) -> BatchStatement {
    let records: Vec<_> = ops.iter().flat_map(Operation::encode).collect();
    let mut after = venue.clone();
    let effect = after.apply_batch(ops).unwrap();
    BatchStatement {
        rollup_id: 1,
        seq,
        pre_state_root: effect.pre_state_root,
        post_state_root: effect.post_state_root,
        data_root: poe_circle_stark::hash::merkle::data_root(&records, OP_LIMBS),
        instruments_root: poe_circle_stark::venue::instruments_root(venue.instruments()),
        n_ops: ops.len() as u32,
    }
}

#[test]
fn validity_leaf_from_another_pre_state_is_rejected() {
    let (venue, ops) = sample::batch(64, 6, 5, 1_800_000_000_000_000, 10);
    let (first, second) = ops.split_at(32);
    let options = AuditOptions {
        proof_only: false,
        leaves: true,
        policy: VerifierPolicy::insecure_for_tests(),
        key_cache: None,
    };
    let prove = |v: &poe_circle_stark::venue::Venue, ops: &[Operation]| {
        prove_validity(v, ops, SecurityConfig::testing())
            .unwrap()
            .1
            .to_bytes()
    };
    let mut after_first = venue.clone();
    after_first.apply_batch(first).unwrap();
    let leaf1 = prove(&venue, first);
    let honest2 = prove(&after_first, second);
    // The second batch proven from a state in which an account it touches had one more
    // unit of cash: a valid proof on its own, but not of this rollup's history.
    let touched = match second[0] {
        Operation::Trade { buyer, .. } => buyer,
        Operation::Deposit { account, .. } | Operation::Withdraw { account, .. } => account,
        Operation::Settle { .. } => unreachable!(),
    };
    let mut richer = after_first.clone();
    richer
        .apply_batch(&[Operation::Deposit {
            account: touched,
            amount: 1,
            timestamp_us: second[0].timestamp_us(),
        }])
        .unwrap();
    let forged2 = prove(&richer, second);

    let (s1, s2) = (
        statement(1, first, &venue),
        statement(2, second, &after_first),
    );
    assert_eq!(
        verify_leaf(&leaf1, &s1, &data_statement(&s1), &options, true),
        Ok(LeafKind::Validity)
    );
    assert_eq!(
        verify_leaf(&honest2, &s2, &data_statement(&s2), &options, true),
        Ok(LeafKind::Validity)
    );
    let err = verify_leaf(&forged2, &s2, &data_statement(&s2), &options, true).unwrap_err();
    assert!(err.contains("pre-state root is"), "{err}");
    // The first batch's proof offered for the second.
    let err = verify_leaf(&leaf1, &s2, &data_statement(&s2), &options, false).unwrap_err();
    assert!(err.contains("other batches"), "{err}");
}
