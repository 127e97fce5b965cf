//! Batch-validity proofs end to end, and the attacks on what binds the rows together: the
//! operation records (dropped, reordered, duplicated operations) and the state roots.

use crate::config::{SecurityConfig, VerifierPolicy};
use crate::error::{ProveError, VerifyError};
use crate::field::M31;
use crate::validity::prove::{prove_forest_with, prove_validity_as, prove_validity_with};
use crate::validity::settle::{HolderRow, SettleRow};
use crate::validity::ValidityAir;
use crate::validity::{prove_segment, prove_validity};
use crate::validity::{verify_validity, ValidityStatement};
use crate::venue::engine::Rule;
use crate::venue::{sample, Operation, Venue};

const T0: u64 = 1_800_000_000_000_000;

fn policy() -> VerifierPolicy {
    VerifierPolicy::insecure_for_tests()
}

/// 96 operations, all at one timestamp so that any order is valid.
fn batch() -> (Venue, Vec<Operation>) {
    sample::batch(96, 12, 7, T0, 0)
}

fn forged(
    rows: impl FnOnce(&mut Vec<Operation>),
    edit: impl FnOnce(&mut ValidityStatement),
) -> Result<(), VerifyError> {
    let (venue, ops) = batch();
    let mut row_ops = ops.clone();
    rows(&mut row_ops);
    let (statement, proof) = prove_validity_with(
        &venue,
        &ops,
        &row_ops,
        edit,
        |_| {},
        SecurityConfig::testing(),
    )
    .unwrap();
    verify_validity(proof, &statement, &policy())
}

#[test]
fn realistic_batch_proves_and_verifies() {
    let (venue, ops) = sample::batch(300, 24, 3, T0, 1_000);
    let kinds = |k: fn(&Operation) -> bool| ops.iter().filter(|o| k(o)).count();
    assert!(kinds(|o| matches!(o, Operation::Trade { .. })) > 200);
    assert!(kinds(|o| matches!(o, Operation::Deposit { .. })) > 10);
    assert!(kinds(|o| matches!(o, Operation::Withdraw { .. })) > 3);
    let (statement, proof) = prove_validity(&venue, &ops, SecurityConfig::testing()).unwrap();
    let records: Vec<M31> = ops.iter().flat_map(Operation::encode).collect();
    assert_eq!(statement.batches.len(), 1);
    assert_eq!(statement.batches[0].n_ops as usize, ops.len());
    assert_eq!(
        statement.batches[0].data_root,
        crate::hash::merkle::data_root(&records, crate::venue::OP_LIMBS)
    );
    // The stated roots are the engine's.
    let mut after = venue.clone();
    assert_eq!(statement.pre_state_root, after.state_root());
    after.apply_batch(&ops).unwrap();
    assert_eq!(statement.post_state_root, after.state_root());
    let bytes = proof.to_bytes();
    crate::validity::verify_validity_bytes(&bytes, &statement, &policy()).unwrap();
    let decoded = ValidityStatement::from_public_inputs(&statement.to_public_inputs()).unwrap();
    assert_eq!(decoded, statement);
    let file = statement.to_bytes();
    assert_eq!(ValidityStatement::from_bytes(&file).unwrap(), statement);
    let mut trailing = file.clone();
    trailing.push(0);
    assert!(ValidityStatement::from_bytes(&trailing).is_err());
    let mut non_canonical = file;
    let at = non_canonical.len() - 4;
    non_canonical[at..].copy_from_slice(&crate::field::P.to_le_bytes());
    assert!(ValidityStatement::from_bytes(&non_canonical)
        .unwrap_err()
        .contains("not below p"));
}

#[test]
fn dropped_operation_is_rejected() {
    let e = forged(
        |rows| {
            rows.pop();
        },
        |_| {},
    )
    .unwrap_err();
    assert_eq!(e, VerifyError::LogUpSumMismatch);
}

#[test]
fn reordered_operations_are_rejected() {
    let e = forged(|rows| rows.swap(40, 41), |_| {}).unwrap_err();
    assert_eq!(e, VerifyError::LogUpSumMismatch);
}

#[test]
fn duplicated_operation_is_rejected() {
    // Replace the last operation's row by a second copy of the one before it.
    let e = forged(
        |rows| {
            let n = rows.len();
            rows[n - 1] = rows[n - 2];
        },
        |_| {},
    )
    .unwrap_err();
    assert_eq!(e, VerifyError::LogUpSumMismatch);
}

#[test]
fn operations_not_matching_the_data_root_are_rejected() {
    // Rows for a batch with one price changed; the data tree of the original.
    let e = forged(
        |rows| {
            let k = rows
                .iter()
                .position(|o| matches!(o, Operation::Trade { .. }))
                .unwrap();
            if let Operation::Trade { price, .. } = &mut rows[k] {
                *price += 1;
            }
        },
        |_| {},
    )
    .unwrap_err();
    assert_eq!(e, VerifyError::LogUpSumMismatch);
}

#[test]
fn wrong_post_state_root_is_rejected() {
    let e = forged(
        |_| {},
        |s| s.post_state_root.0[0] += M31::from_u32_unchecked(1),
    )
    .unwrap_err();
    assert_eq!(e, VerifyError::LogUpSumMismatch);
}

#[test]
fn richer_pre_state_than_the_pre_root_is_rejected() {
    // The rows start from a venue where account 1 has more cash; the statement names the
    // honest venue's root.
    let (venue, ops) = batch();
    let mut richer = venue.clone();
    richer
        .apply_batch(&[Operation::Deposit {
            account: 1,
            amount: 1_000_000,
            timestamp_us: T0,
        }])
        .unwrap();
    let honest_root = venue.clone().state_root();
    let (statement, proof) = prove_validity_with(
        &richer,
        &ops,
        &ops,
        |s| s.pre_state_root = honest_root,
        |_| {},
        SecurityConfig::testing(),
    )
    .unwrap();
    assert_eq!(
        verify_validity(proof, &statement, &policy()).unwrap_err(),
        VerifyError::LogUpSumMismatch
    );
}

#[test]
fn statement_with_another_post_root_is_rejected_before_the_stark() {
    let (venue, ops) = batch();
    let (mut statement, proof) = prove_validity(&venue, &ops, SecurityConfig::testing()).unwrap();
    statement.post_state_root.0[7] += M31::from_u32_unchecked(1);
    assert_eq!(
        verify_validity(proof, &statement, &policy()).unwrap_err(),
        VerifyError::BatchStatementMismatch {
            field: "post_state_root"
        }
    );
}

#[test]
fn collateral_other_than_the_listed_instruments_is_rejected() {
    // The public list says instrument 0 needs less collateral than the rows locked (or, read
    // the other way, the rows used terms that are not listed).
    let e = forged(|_| {}, |s| s.instruments[0].collateral -= 1).unwrap_err();
    assert_eq!(e, VerifyError::LogUpSumMismatch);
}

#[test]
fn statement_with_another_data_root_is_rejected() {
    let (venue, ops) = batch();
    let (mut statement, proof) = prove_validity(&venue, &ops, SecurityConfig::testing()).unwrap();
    statement.batches[0].data_root.0[0] += M31::from_u32_unchecked(1);
    assert_eq!(
        verify_validity(proof, &statement, &policy()).unwrap_err(),
        VerifyError::BatchStatementMismatch { field: "data_root" }
    );
}

#[test]
fn rule_breaking_batch_has_no_proof() {
    let (venue, mut ops) = batch();
    ops.push(Operation::Withdraw {
        account: 1,
        amount: venue.account(1).cash + 1_000_000_000_000_000,
        timestamp_us: T0,
    });
    match prove_validity(&venue, &ops, SecurityConfig::testing()).unwrap_err() {
        ProveError::Rule(v) => {
            assert_eq!(v.op_index, ops.len() - 1);
            assert!(matches!(v.rule, Rule::InsufficientCash { .. }));
        }
        e => panic!("{e}"),
    }
}

/// 160 operations whose last settles instrument 0 (a call, in the money below its cap).
fn settling() -> (Venue, Vec<Operation>) {
    sample::batch_settling(160, 10, 11, T0, 1_000)
}

/// Proves `settling()` with the settlement rows forged by `forge`; records from `records`.
fn forged_settlement(
    records: impl FnOnce(&mut Vec<Operation>),
    forge: impl FnOnce(&mut Vec<SettleRow>, &mut Vec<HolderRow>),
) -> Result<(), String> {
    forged_settlement_as(ValidityAir::V2, records, forge)
}

/// [`forged_settlement`] under the AIR `air`.
fn forged_settlement_as(
    air: ValidityAir,
    records: impl FnOnce(&mut Vec<Operation>),
    forge: impl FnOnce(&mut Vec<SettleRow>, &mut Vec<HolderRow>),
) -> Result<(), String> {
    let (venue, ops) = settling();
    let mut record_ops = ops.clone();
    records(&mut record_ops);
    let (statement, proof) = prove_validity_as(
        air,
        &venue,
        &record_ops,
        &ops,
        |_| {},
        |e| forge(&mut e.settle, &mut e.holder),
        SecurityConfig::testing(),
    )
    .map_err(|e| e.to_string())?;
    verify_validity(proof, &statement, &policy()).map_err(|e| e.to_string())
}

const UNSAT: &str = "Constraints not satisfied.";

/// A forged row is caught by a constraint (no proof) or, when the forgery shows as a value
/// outside the range table (a false identity's carry, a wrapped balance), by the LogUp total.
fn rejected(e: &str) -> bool {
    e.contains(UNSAT) || e.contains("LogUp")
}

#[test]
fn batch_with_a_settlement_proves_and_verifies() {
    let (venue, ops) = settling();
    let mut after = venue.clone();
    after.apply_batch(&ops[..ops.len() - 1]).unwrap();
    let holders = after.holders(0);
    assert!(holders.iter().any(|h| h.1 > 0) && holders.iter().any(|h| h.1 < 0));
    assert!(after.open_interest(0) > 0);
    let (statement, proof) = prove_validity(&venue, &ops, SecurityConfig::testing()).unwrap();
    after.apply_batch(&ops[ops.len() - 1..]).unwrap();
    assert_eq!(after.open_interest(0), 0);
    assert_eq!(statement.post_state_root, after.state_root());
    verify_validity(proof, &statement, &policy()).unwrap();
}

#[test]
fn wrong_settlement_payoff_is_rejected() {
    // One more unit per lot for every long, and the shorts pay it: a consistent chain and
    // balances, but not the rule's payoff. Under both AIRs.
    for air in [ValidityAir::V2, ValidityAir::V3] {
        let e = forged_settlement_as(
            air,
            |_| {},
            |headers, holders| {
                headers[0].payoff += 1;
                for h in holders {
                    h.payoff += 1;
                    h.account_state.1 =
                        HolderRow::settled(h.account_state.0, h.position, h.payoff, h.collateral);
                }
            },
        )
        .unwrap_err();
        assert!(rejected(&e), "{air:?}: {e}");
    }
}

#[test]
fn short_not_charged_at_settlement_is_rejected() {
    for air in [ValidityAir::V2, ValidityAir::V3] {
        let e = forged_settlement_as(
            air,
            |_| {},
            |_, holders| {
                let h = holders.iter_mut().find(|h| h.position < 0).unwrap();
                h.account_state.1 = h.account_state.0;
            },
        )
        .unwrap_err();
        assert!(rejected(&e), "{air:?}: {e}");
    }
}

#[test]
fn settlement_leaving_out_a_holder_is_rejected() {
    // The last holder's row is dropped and the header claims one holder fewer: that position
    // keeps its lots (and the long its payoff), and the chain cannot end at zero.
    let e = forged_settlement(
        |_| {},
        |headers, holders| {
            headers[0].holders -= 1;
            holders.pop();
        },
    )
    .unwrap_err();
    assert!(e.contains("LogUp"), "{e}");
}

#[test]
fn settlement_before_expiry_is_rejected() {
    // The record settles one microsecond before expiry; the rows are the engine's (at expiry)
    // with the header's timestamp moved to match the record.
    let e = forged_settlement(
        |records| {
            if let Some(Operation::Settle { timestamp_us, .. }) = records.last_mut() {
                *timestamp_us -= 1;
            }
        },
        |headers, _| headers[0].timestamp -= 1,
    )
    .unwrap_err();
    assert!(rejected(&e), "{e}");
}

#[test]
fn settlement_before_expiry_has_no_proof() {
    let (venue, mut ops) = settling();
    if let Some(Operation::Settle { timestamp_us, .. }) = ops.last_mut() {
        *timestamp_us -= 1;
    }
    match prove_validity(&venue, &ops, SecurityConfig::testing()).unwrap_err() {
        ProveError::Rule(v) => {
            assert_eq!(v.op_index, ops.len() - 1);
            assert!(matches!(v.rule, Rule::SettleBeforeExpiry { .. }), "{v}");
        }
        e => panic!("{e}"),
    }
}

#[test]
fn settlements_out_of_the_money_and_capped_prove() {
    // The call's strike is 6,000,000 and its cap 3,000,000 per lot: 5,000,000 pays nothing,
    // 10,000,000 pays the cap.
    for settle_price in [5_000_000, 10_000_000] {
        let (venue, mut ops) = settling();
        if let Some(Operation::Settle { price, .. }) = ops.last_mut() {
            *price = settle_price;
        }
        let (statement, proof) = prove_validity(&venue, &ops, SecurityConfig::testing()).unwrap();
        let mut after = venue.clone();
        after.apply_batch(&ops).unwrap();
        assert_eq!(statement.post_state_root, after.state_root());
        verify_validity(proof, &statement, &policy()).unwrap();
    }
}

#[test]
fn put_settlements_prove() {
    // Instrument 1 is the BTC put, strike 6,000,000 with collateral 6,000,000: at 4,000,000 it
    // pays 2,000,000 per lot, at 7,000,000 nothing.
    for price in [4_000_000, 7_000_000] {
        let (venue, ops) = sample::batch_settling_at(160, 10, 13, T0, 1_000, 1, price);
        let mut before = venue.clone();
        before.apply_batch(&ops[..ops.len() - 1]).unwrap();
        assert!(
            before.holders(1).len() >= 2,
            "the put has holders to settle"
        );
        let (statement, proof) = prove_validity(&venue, &ops, SecurityConfig::testing()).unwrap();
        let mut after = venue.clone();
        after.apply_batch(&ops).unwrap();
        assert_eq!(statement.post_state_root, after.state_root());
        verify_validity(proof, &statement, &policy()).unwrap();
    }
}

#[test]
fn deposit_stamped_before_the_clock_is_rejected() {
    // The record of the last operation, a deposit, is stamped before the operation that
    // precedes it; the row (the engine's, at a valid time) is moved to match the record. Only
    // the clock rule (`ts = clock + d`, `d` a u63) is broken.
    let (venue, mut ops) = sample::batch(64, 8, 3, T0, 1_000);
    ops.push(Operation::Deposit {
        account: 1,
        amount: 5,
        timestamp_us: ops.last().unwrap().timestamp_us(),
    });
    let mut records = ops.clone();
    let early = ops[ops.len() - 2].timestamp_us() - 1;
    if let Some(Operation::Deposit { timestamp_us, .. }) = records.last_mut() {
        *timestamp_us = early;
    }
    let e = prove_validity_with(
        &venue,
        &records,
        &ops,
        |_| {},
        |e| {
            let last = e.cash.last_mut().unwrap();
            assert_eq!(last.index as usize, ops.len() - 1);
            last.timestamp = early;
        },
        SecurityConfig::testing(),
    )
    .map_err(|e| e.to_string())
    .and_then(|(s, p)| verify_validity(p, &s, &policy()).map_err(|e| e.to_string()))
    .unwrap_err();
    assert!(rejected(&e), "{e}");
}

#[test]
fn retired_v0_and_v1_air_ids_are_refused() {
    let (venue, ops) = batch();
    let (_, proof) = prove_validity(&venue, &ops, SecurityConfig::testing()).unwrap();
    let mut bytes = proof.to_bytes();
    // Header: magic, format version (u16), AIR id (u16).
    let at = crate::proof::MAGIC.len() + 2;
    assert_eq!(bytes[at..at + 2], 5u16.to_le_bytes());
    for retired in [3u16, 4] {
        bytes[at..at + 2].copy_from_slice(&retired.to_le_bytes());
        assert!(matches!(
            crate::proof::Proof::from_bytes(&bytes),
            Err(crate::proof::ProofFormatError::UnknownAir { got }) if got == retired
        ));
    }
}

/// Three consecutive batches of 40, 17 and 39 operations (all at one timestamp, so any order
/// is valid), cut from one generated run.
fn three_batches() -> (Venue, Vec<Operation>, [usize; 3]) {
    let (venue, ops) = batch();
    (venue, ops, [40, 17, 39])
}

fn cut(ops: &[Operation], sizes: &[usize]) -> Vec<Vec<Operation>> {
    let mut at = 0;
    sizes
        .iter()
        .map(|&n| {
            at += n;
            ops[at - n..at].to_vec()
        })
        .collect()
}

#[test]
fn segment_of_three_batches_proves_each_data_root_and_the_chained_roots() {
    let (venue, ops, sizes) = three_batches();
    let batches = cut(&ops, &sizes);
    let refs: Vec<&[Operation]> = batches.iter().map(Vec::as_slice).collect();
    let (statement, proof) = prove_segment(&venue, &refs, SecurityConfig::testing()).unwrap();
    let mut v = venue.clone();
    assert_eq!(statement.pre_state_root, v.state_root());
    for (b, tree) in batches.iter().zip(&statement.batches) {
        let records: Vec<M31> = b.iter().flat_map(Operation::encode).collect();
        assert_eq!(tree.n_ops as usize, b.len());
        assert_eq!(
            tree.data_root,
            crate::hash::merkle::data_root(&records, crate::venue::OP_LIMBS)
        );
        v.apply_batch(b).unwrap();
    }
    assert_eq!(statement.post_state_root, v.state_root());
    let decoded = ValidityStatement::from_bytes(&statement.to_bytes()).unwrap();
    assert_eq!(decoded, statement);
    verify_validity(proof, &statement, &policy()).unwrap();
}

/// [`three_batches`] proven with the rows `rows(batches)` executed and the statement `edit`ed:
/// the proof's verdict, or the prover's refusal.
fn forged_segment(
    rows: impl FnOnce(&[Vec<Operation>]) -> Vec<Operation>,
    edit: impl FnOnce(&mut ValidityStatement),
) -> Result<Result<(), VerifyError>, ProveError> {
    let (venue, ops, sizes) = three_batches();
    let rows = rows(&cut(&ops, &sizes));
    let (statement, proof) = prove_forest_with(
        &venue,
        &ops,
        &sizes,
        &rows,
        edit,
        |_| {},
        SecurityConfig::testing(),
        crate::validity::prove::ProveAs::new(crate::proof::ChannelId::Blake2s, ValidityAir::V2),
    )?;
    Ok(verify_validity(proof, &statement, &policy()))
}

/// Why a forged segment has no valid proof (panics if it has one).
fn rejection(r: Result<Result<(), VerifyError>, ProveError>) -> String {
    match r {
        Err(e) => e.to_string(),
        Ok(verdict) => verdict.unwrap_err().to_string(),
    }
}

#[test]
fn segment_with_batches_executed_out_of_order_is_rejected() {
    // The data trees are batches 0, 1, 2; the rows execute 1, 0, 2 (valid on their own).
    let verdict = forged_segment(
        |b| [b[1].clone(), b[0].clone(), b[2].clone()].concat(),
        |_| {},
    );
    assert_eq!(verdict.unwrap(), Err(VerifyError::LogUpSumMismatch));
}

#[test]
fn segment_with_a_batch_boundary_moved_is_rejected() {
    // The proof's trees are 40 | 17 | 39; the statement claims 41 | 16 | 39 with the roots the
    // prover computed: each tree's shape is fixed by its stated size.
    let e = rejection(forged_segment(
        |b| b.concat(),
        |s| {
            s.batches[0].n_ops += 1;
            s.batches[1].n_ops -= 1;
        },
    ));
    assert!(rejected(&e), "{e}");
}

#[test]
fn segment_with_two_batches_data_roots_swapped_is_rejected() {
    let verdict = forged_segment(|b| b.concat(), |s| s.batches.swap(0, 2));
    assert_eq!(verdict.unwrap(), Err(VerifyError::LogUpSumMismatch));
}

#[test]
fn segment_statement_with_a_batch_left_out_is_rejected() {
    let e = rejection(forged_segment(
        |b| b.concat(),
        |s| {
            s.batches.remove(1);
        },
    ));
    assert!(rejected(&e), "{e}");
}

// AIR v3: the range table preprocessed, its root pinned.

fn v3_proof() -> (ValidityStatement, crate::proof::Proof) {
    let (venue, ops) = settling();
    crate::validity::prove_batches(
        &venue,
        &[&ops],
        SecurityConfig::testing(),
        crate::proof::ChannelId::Blake2s,
        ValidityAir::V3,
    )
    .unwrap()
}

#[test]
fn v3_batch_proves_and_verifies_under_both_channels() {
    let (venue, ops) = settling();
    let (v2_statement, _) = prove_validity(&venue, &ops, SecurityConfig::testing()).unwrap();
    for channel in [
        crate::proof::ChannelId::Blake2s,
        crate::proof::ChannelId::Poseidon2,
    ] {
        let (statement, proof) = crate::validity::prove_batches(
            &venue,
            &[&ops],
            SecurityConfig::testing(),
            channel,
            ValidityAir::V3,
        )
        .unwrap();
        // Same statement as v2: only the constraints differ.
        assert_eq!(statement, v2_statement);
        assert_eq!(proof.air, crate::proof::AirId::BatchValidityV3);
        let bytes = proof.to_bytes();
        crate::validity::verify_validity_bytes(&bytes, &statement, &policy()).unwrap();
        // The tracing verifier (recursion's witness) handles the preprocessed tree too.
        let decoded = crate::proof::Proof::from_bytes(&bytes).unwrap();
        crate::validity::trace_validity(decoded, &statement, &policy()).unwrap();
        let pinned =
            super::range::pinned_table_root(channel, SecurityConfig::testing().log_blowup())
                .unwrap();
        let root = match &proof.stark {
            crate::proof::Stark::Blake2s(p) => {
                <stwo::core::vcs_lifted::blake2_merkle::Blake2sMerkleChannel as crate::proof::PoeChannel>::hash_words(&p.0.commitments[0])
            }
            crate::proof::Stark::Poseidon2(p) => {
                <crate::hash::channel::Poseidon2MerkleChannel as crate::proof::PoeChannel>::hash_words(&p.0.commitments[0])
            }
        };
        assert_eq!(root, pinned, "{channel:?}");
    }
}

#[test]
fn v3_proof_with_another_preprocessed_root_is_rejected() {
    // The main trace's root stands in for a prover's own "range table" commitment.
    let (statement, mut proof) = v3_proof();
    let crate::proof::Stark::Blake2s(stark) = &mut proof.stark else {
        unreachable!()
    };
    stark.0.commitments[0] = stark.0.commitments[1];
    let e = verify_validity(proof, &statement, &policy()).unwrap_err();
    assert!(matches!(e, VerifyError::PreprocessedRoot { .. }), "{e}");
}

#[test]
fn v2_proof_relabelled_as_v3_is_rejected() {
    let (venue, ops) = settling();
    let (statement, mut proof) = prove_validity(&venue, &ops, SecurityConfig::testing()).unwrap();
    proof.air = crate::proof::AirId::BatchValidityV3;
    let e = verify_validity(proof.clone(), &statement, &policy()).unwrap_err();
    assert_eq!(e, VerifyError::BatchStatementMismatch { field: "encoding" });
    // With v3's public input, then a twelfth sum, it reaches the pin: v2 commits an empty
    // preprocessed tree.
    proof.public_inputs = statement.public_inputs(ValidityAir::V3);
    let e = verify_validity(proof.clone(), &statement, &policy()).unwrap_err();
    assert_eq!(
        e,
        VerifyError::Structure("expected 12 LogUp sums, got 11".into())
    );
    proof.claimed_sums.push(proof.claimed_sums[0]);
    let e = verify_validity(proof, &statement, &policy()).unwrap_err();
    assert!(matches!(e, VerifyError::PreprocessedRoot { .. }), "{e}");
}

#[test]
fn v3_proof_relabelled_as_v2_is_rejected() {
    let (statement, mut proof) = v3_proof();
    proof.air = crate::proof::AirId::BatchValidity;
    let e = verify_validity(proof.clone(), &statement, &policy()).unwrap_err();
    assert_eq!(e, VerifyError::BatchStatementMismatch { field: "encoding" });
    proof.public_inputs = statement.public_inputs(ValidityAir::V2);
    let e = verify_validity(proof.clone(), &statement, &policy()).unwrap_err();
    assert_eq!(
        e,
        VerifyError::Structure("expected 11 LogUp sums, got 12".into())
    );
    // Without the input component's sum: the AIR id is in the preamble, and v2's closures
    // are not what the components claim.
    proof.claimed_sums.pop();
    let e = verify_validity(proof, &statement, &policy()).unwrap_err();
    assert!(
        matches!(
            e,
            VerifyError::LogUpSumMismatch | VerifyError::OodsMismatch | VerifyError::Merkle(_)
        ),
        "{e}"
    );
}

/// [`forged`] under AIR v3, where the statement's closures reach the sums only through the
/// input component's chain.
fn forged_v3(
    rows: impl FnOnce(&mut Vec<Operation>),
    edit: impl FnOnce(&mut ValidityStatement),
) -> Result<(), VerifyError> {
    let (venue, ops) = batch();
    let mut row_ops = ops.clone();
    rows(&mut row_ops);
    let (statement, proof) = prove_validity_as(
        ValidityAir::V3,
        &venue,
        &ops,
        &row_ops,
        edit,
        |_| {},
        SecurityConfig::testing(),
    )
    .unwrap();
    verify_validity(proof, &statement, &policy())
}

#[test]
fn v3_honest_forged_helper_verifies() {
    forged_v3(|_| {}, |_| {}).unwrap();
}

#[test]
fn v3_wrong_post_state_root_is_rejected() {
    let e = forged_v3(
        |_| {},
        |s| s.post_state_root.0[0] += M31::from_u32_unchecked(1),
    )
    .unwrap_err();
    assert_eq!(e, VerifyError::LogUpSumMismatch);
}

#[test]
fn v3_public_instrument_list_differing_from_the_rows_is_rejected() {
    let e = forged_v3(|_| {}, |s| s.instruments[0].collateral -= 1).unwrap_err();
    assert_eq!(e, VerifyError::LogUpSumMismatch);
}

#[test]
fn v3_dropped_operation_is_rejected() {
    let e = forged_v3(
        |rows| {
            rows.pop();
        },
        |_| {},
    )
    .unwrap_err();
    assert_eq!(e, VerifyError::LogUpSumMismatch);
}

#[test]
fn v3_statement_with_another_data_root_is_rejected() {
    // The rows' data tree is the original; the statement (hence the closure list the verifier
    // hashes) names another root.
    let e = forged_v3(
        |_| {},
        |s| s.batches[0].data_root.0[3] += M31::from_u32_unchecked(1),
    )
    .unwrap_err();
    assert_eq!(e, VerifyError::LogUpSumMismatch);
}

#[test]
fn components_pad_to_larger_stated_sizes() {
    // Fixed shapes (issue 15 part 2) pad every component to its class's size: every row-based
    // component must accept rows of padding beyond the witness's own power of two, and the
    // statement states the padded sizes. Each size is raised on its own, and all at once.
    type Field = fn(&mut ValidityStatement) -> &mut u32;
    let fields: [(&str, Field); 7] = [
        ("cash", |s| &mut s.log_cash_rows),
        ("trade", |s| &mut s.log_trade_rows),
        ("state_leaf", |s| &mut s.log_state_leaf_rows),
        ("state_node", |s| &mut s.log_state_node_rows),
        ("chip", |s| &mut s.log_chip_rows),
        ("settle", |s| &mut s.log_settle_rows),
        ("holder", |s| &mut s.log_holder_rows),
    ];
    // Deposits appended after the settlement: more operations than trades, so the trade
    // component may grow within the statement's bounds (sizes at most the operations' power
    // of two above).
    let (venue, mut ops) = settling();
    let last = ops.len() - 1;
    let Operation::Settle { timestamp_us, .. } = ops[last] else {
        unreachable!("settling() ends with its settlement")
    };
    for k in 0..200u32 {
        ops.push(Operation::Deposit {
            account: k % 10,
            amount: 1 + u64::from(k),
            timestamp_us,
        });
    }
    let (natural, _) = prove_validity(&venue, &ops, SecurityConfig::testing()).unwrap();
    // Up to two more, within the bounds `ValidityStatement::check` sets.
    let growth: Vec<u32> = fields
        .iter()
        .map(|(_, field)| {
            (1..=2)
                .rev()
                .find(|d| {
                    let mut s = natural.clone();
                    *field(&mut s) += d;
                    s.check().is_ok()
                })
                .unwrap_or(0)
        })
        .collect();
    for ((name, _), d) in fields.iter().zip(&growth) {
        assert!(*d > 0, "{name} cannot grow: {natural:?}");
    }
    let grow = |which: Option<usize>| {
        let growth = growth.clone();
        move |s: &mut ValidityStatement| {
            for (i, (_, field)) in fields.iter().enumerate() {
                if which.is_none_or(|w| w == i) {
                    *field(s) += growth[i];
                }
            }
        }
    };
    for which in (0..fields.len()).map(Some).chain([None]) {
        let name = which.map_or("all", |w| fields[w].0);
        let (statement, proof) = prove_validity_as(
            ValidityAir::V3,
            &venue,
            &ops,
            &ops,
            grow(which),
            |_| {},
            SecurityConfig::testing(),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut expected = natural.clone();
        grow(which)(&mut expected);
        assert_eq!(statement, expected, "{name}");
        verify_validity(proof, &statement, &policy()).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// Proves `batch()` under AIR v3 with its closure input rows rewritten by `forge`; the
/// verdict, or the prover's refusal, as text.
fn forged_input(
    forge: impl FnOnce(&mut Vec<crate::validity::row::RowWitness>, &[crate::validity::closure::ClosureTerm])
        + 'static,
) -> Result<(), String> {
    let (venue, ops) = batch();
    let (statement, proof) = prove_validity_as(
        ValidityAir::V3,
        &venue,
        &ops,
        &ops,
        |_| {},
        |e| e.forge_input = Some(Box::new(forge)),
        SecurityConfig::testing(),
    )
    .map_err(|e| e.to_string())?;
    verify_validity(proof, &statement, &policy()).map_err(|e| e.to_string())
}

#[test]
fn v3_input_rows_hashed_in_another_order_are_rejected() {
    // The same terms, so the same LogUp total from the terms; only the chain, which hashes the
    // list in order, tells them apart.
    let e = forged_input(|rows, terms| {
        let mut swapped = terms.to_vec();
        swapped.swap(0, 1);
        *rows = crate::validity::closure::input_rows(&swapped, false);
    })
    .unwrap_err();
    assert_eq!(e, VerifyError::LogUpSumMismatch.to_string());
}

#[test]
fn v3_input_chain_over_a_list_without_the_state_roots_is_rejected() {
    let e = forged_input(|rows, terms| {
        *rows = crate::validity::closure::input_rows(&terms[..terms.len() - 1], false);
    })
    .unwrap_err();
    assert_eq!(e, VerifyError::LogUpSumMismatch.to_string());
}

#[test]
fn v3_disabled_input_row_yielding_a_term_has_no_proof() {
    // A padding row (off the chain, so no digest binds it) that yields one more Merkle term.
    let e = forged_input(|rows, terms| {
        use crate::validity::closure::{ClosureRelation, INPUT_COLUMNS, INPUT_LOOKUPS};
        use crate::validity::row::{Lookup, RowWitness};
        let values = terms[0].values.clone();
        let mut cells = vec![M31::from_u32_unchecked(0); INPUT_COLUMNS];
        cells[2] = -M31::from_u32_unchecked(1);
        cells[5..5 + values.len()].copy_from_slice(&values);
        let mut lookups = vec![Lookup::Nothing; INPUT_LOOKUPS];
        lookups[5] = Lookup::Closure {
            relation: ClosureRelation::Merkle,
            mult: M31::from_u32_unchecked(1),
            values,
        };
        assert!(rows.len() < 1 << crate::data_root::log_rows_for(terms.len()));
        rows.push(RowWitness { cells, lookups });
    })
    .unwrap_err();
    assert_eq!(e, format!("prover failed: {UNSAT}"));
}

#[test]
fn v3_public_input_is_constant_size_and_binds_the_statement() {
    let (statement, proof) = v3_proof();
    assert_eq!(proof.public_inputs.len(), crate::validity::V3_PUBLIC_INPUTS);
    // Three batches and another instrument count: the same length.
    let (seg_statement, seg_proof) = {
        let (v, o, sizes) = three_batches();
        let batches = cut(&o, &sizes);
        let refs: Vec<&[Operation]> = batches.iter().map(Vec::as_slice).collect();
        crate::validity::prove_batches(
            &v,
            &refs,
            SecurityConfig::testing(),
            crate::proof::ChannelId::Blake2s,
            ValidityAir::V3,
        )
        .unwrap()
    };
    assert_ne!(seg_statement.batches.len(), statement.batches.len());
    assert_eq!(seg_proof.public_inputs.len(), proof.public_inputs.len());
    verify_validity(seg_proof, &seg_statement, &policy()).unwrap();
    // Checked against another statement: the sizes agree, the digest does not.
    let mut other = statement.clone();
    other.post_state_root.0[2] += M31::from_u32_unchecked(1);
    let e = verify_validity(proof.clone(), &other, &policy()).unwrap_err();
    assert_eq!(
        e,
        VerifyError::BatchStatementMismatch {
            field: "closure digest"
        }
    );
    let mut other = statement.clone();
    other.log_cash_rows += 1;
    let e = verify_validity(proof, &other, &policy()).unwrap_err();
    assert_eq!(
        e,
        VerifyError::BatchStatementMismatch {
            field: "component sizes"
        }
    );
}

#[test]
fn component_rows_are_what_the_statement_sizes_round_up() {
    use crate::data_root::log_rows_for;
    use crate::validity::ComponentId;
    let (venue, ops) = settling();
    let (statement, _) = crate::validity::prove_batches(
        &venue,
        &[&ops],
        SecurityConfig::testing(),
        crate::proof::ChannelId::Blake2s,
        ValidityAir::V3,
    )
    .unwrap();
    let rows = crate::validity::component_rows(&venue, &[&ops], ValidityAir::V3).unwrap();
    assert_eq!(rows.len(), ComponentId::of(ValidityAir::V3).len());
    for (id, n) in rows {
        assert_eq!(log_rows_for(n), id.log_rows(&statement), "{}", id.name());
        if id == ComponentId::Input {
            assert_eq!(n, crate::validity::closure::closure_terms(&statement).len());
        }
        if id == ComponentId::Trade {
            let trades = ops
                .iter()
                .filter(|o| matches!(o, Operation::Trade { .. }))
                .count();
            assert_eq!(n, trades);
        }
    }
}
