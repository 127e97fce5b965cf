//! Shape classes: the planner's counts against the prover's, proofs padded to a class, and
//! attacks on the stated shape.

use crate::config::{SecurityConfig, VerifierPolicy};
use crate::error::{ProveError, VerifyError};
use crate::proof::ChannelId;
use crate::validity::shape::{Shape, ShapeClass, SHAPE_LEN};
use crate::validity::{
    component_rows, plan_classes, prove_batches, prove_in_class, verify_validity, BatchRows,
    ComponentId, RunRows, ValidityAir, ValidityStatement,
};
use crate::venue::{sample, Operation, Venue};

const T0: u64 = 1_800_000_000_000_000;

fn policy() -> VerifierPolicy {
    VerifierPolicy::insecure_for_tests()
}

/// A settling run of `n` operations over `accounts` accounts cut into batches of `sizes`
/// (the last takes the rest).
fn run(n: usize, accounts: u32, sizes: &[usize]) -> (Venue, Vec<Vec<Operation>>) {
    let (venue, ops) = sample::batch_settling(n, accounts, 11, T0, 1_000);
    let mut out = Vec::new();
    let mut at = 0;
    for &k in sizes {
        out.push(ops[at..at + k].to_vec());
        at += k;
    }
    out.push(ops[at..].to_vec());
    (venue, out)
}

fn refs(batches: &[Vec<Operation>]) -> Vec<&[Operation]> {
    batches.iter().map(Vec::as_slice).collect()
}

fn class(k: u32, j: u32) -> ShapeClass {
    ShapeClass {
        log_ops: k,
        log_state: j,
    }
}

#[test]
fn run_rows_equal_the_provers_rows() {
    // Few accounts (batches share keys: the state rows are not a sum) and many.
    for (n, accounts, sizes) in [
        (300, 6, vec![40, 100, 1]),
        (400, 300, vec![200, 17]),
        (90, 40, vec![]),
    ] {
        let (venue, batches) = run(n, accounts, &sizes);
        let mut walked = venue.clone();
        let mut counted = RunRows::default();
        for b in &batches {
            let rows = BatchRows::execute(&mut walked, b).unwrap();
            let predicted = counted.rows_with(&rows);
            counted.push(rows);
            assert_eq!(counted.rows(), predicted, "rows_with is push's");
        }
        let proven = component_rows(&venue, &refs(&batches), ValidityAir::V3).unwrap();
        let mut expected = [0usize; SHAPE_LEN];
        for (id, r) in proven {
            expected[id.index()] = r;
        }
        for id in ComponentId::ALL {
            assert_eq!(
                counted.rows()[id.index()],
                expected[id.index()],
                "{} ({n} ops, {accounts} accounts)",
                id.name()
            );
        }
        assert_eq!(walked.state_root(), {
            let mut v = venue.clone();
            v.apply_batch(&batches.concat()).unwrap();
            v.state_root()
        });
    }
}

/// A small run proven in its planned class.
fn class_proof() -> (ShapeClass, ValidityStatement, crate::proof::Proof) {
    let (venue, batches) = run(150, 12, &[60, 30]);
    let plan = plan_classes(&venue, &refs(&batches), ShapeClass::largest()).unwrap();
    assert_eq!(plan.len(), 1, "{plan:?}");
    assert_eq!(plan[0].batches, 0..3);
    let c = plan[0].class;
    let (statement, proof) = prove_in_class(
        &venue,
        &refs(&batches),
        SecurityConfig::testing(),
        ChannelId::Blake2s,
        c,
    )
    .unwrap();
    (c, statement, proof)
}

#[test]
fn proof_in_its_class_verifies_and_states_the_class_shape() {
    let (c, statement, proof) = class_proof();
    assert_eq!(
        c.log_ops, 8,
        "150 operations: the smallest operation budget"
    );
    assert_eq!(statement.shape, Some(c.shape()));
    let sizes: Vec<u32> = proof.public_inputs[..SHAPE_LEN]
        .iter()
        .map(|x| x.0)
        .collect();
    assert_eq!(sizes, c.shape().0.to_vec());
    verify_validity(proof, &statement, &policy()).unwrap();
}

/// The same statement with another shape (the seven log fields following it).
fn reshaped(s: &ValidityStatement, shape: Option<Shape>) -> ValidityStatement {
    let mut s = s.clone();
    match shape {
        Some(shape) => s.set_shape(shape),
        None => s.shape = None,
    }
    s
}

#[test]
fn class_proof_against_another_class_is_rejected() {
    let (c, statement, proof) = class_proof();
    let other = class(c.log_ops, c.log_state + 2);
    assert_eq!(
        verify_validity(proof, &reshaped(&statement, Some(other.shape())), &policy()),
        Err(VerifyError::BatchStatementMismatch {
            field: "component sizes"
        })
    );
}

#[test]
fn class_proof_against_the_statement_without_its_shape_is_rejected() {
    let (_, statement, proof) = class_proof();
    // The seven sizes stay the class's: as a shapeless statement the data forest and the
    // closure input fall back to their own sizes, which the proof's public input does not have.
    let shapeless = reshaped(&statement, None);
    assert_eq!(
        verify_validity(proof, &shapeless, &policy()),
        Err(VerifyError::BatchStatementMismatch {
            field: "component sizes"
        })
    );
}

#[test]
fn class_proof_with_public_sizes_relabelled_to_another_class_is_rejected() {
    // The prover claims the larger class in the public input and the matching statement: the
    // sizes are in the transcript and in the trace's domains, so the STARK fails.
    let (c, statement, mut proof) = class_proof();
    let other = class(c.log_ops, c.log_state + 2);
    let relabelled = reshaped(&statement, Some(other.shape()));
    proof.public_inputs = relabelled.public_inputs(ValidityAir::V3);
    let err = verify_validity(proof, &relabelled, &policy()).unwrap_err();
    assert!(
        !matches!(
            err,
            VerifyError::BatchStatementMismatch { .. } | VerifyError::InvalidStatement(_)
        ),
        "must reach the STARK: {err:?}"
    );
}

#[test]
fn shape_smaller_than_the_statements_own_data_is_invalid() {
    let (c, statement, proof) = class_proof();
    let mut shape = c.shape();
    shape.0[ComponentId::DataLeaf.index()] = 4;
    let err = verify_validity(proof, &reshaped(&statement, Some(shape)), &policy()).unwrap_err();
    let VerifyError::InvalidStatement(why) = err else {
        panic!("{err:?}")
    };
    assert!(why.contains("data_leaf needs 2^8 rows"), "{why}");
}

#[test]
fn shape_above_the_cap_is_invalid() {
    let (c, statement, _) = class_proof();
    let mut shape = c.shape();
    shape.0[ComponentId::Chip.index()] = 23;
    let why = reshaped(&statement, Some(shape)).check().unwrap_err();
    assert!(why.contains("chip must be in 4..=22, got 23"), "{why}");
}

#[test]
fn v2_statement_with_a_shape_is_invalid() {
    let (venue, batches) = run(40, 6, &[]);
    let (statement, proof) = prove_batches(
        &venue,
        &refs(&batches),
        SecurityConfig::testing(),
        ChannelId::Blake2s,
        ValidityAir::V2,
    )
    .unwrap();
    let mut shaped = statement.clone();
    shaped.shape = Some(class(8, 8).shape());
    assert!(matches!(
        verify_validity(proof, &shaped, &policy()),
        Err(VerifyError::InvalidStatement(_))
    ));
}

#[test]
fn shaped_statement_file_round_trips_and_refuses_trailing_bytes() {
    let (_, statement, _) = class_proof();
    let bytes = statement.to_bytes();
    assert!(bytes.starts_with(b"POEVST04"));
    assert_eq!(ValidityStatement::from_bytes(&bytes).unwrap(), statement);
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(ValidityStatement::from_bytes(&trailing).is_err());
    // A shape out of range is refused on decoding.
    let mut oversized = bytes;
    let at = oversized.len() - 4 * (SHAPE_LEN - ComponentId::Chip.index());
    oversized[at..at + 4].copy_from_slice(&30u32.to_le_bytes());
    assert!(ValidityStatement::from_bytes(&oversized).is_err());
}

#[test]
fn class_too_small_names_the_overflowing_component() {
    let (venue, batches) = run(300, 6, &[]);
    let err = prove_in_class(
        &venue,
        &refs(&batches),
        SecurityConfig::testing(),
        ChannelId::Blake2s,
        class(8, 8),
    )
    .unwrap_err();
    assert!(
        matches!(
            &err,
            ProveError::ShapeOverflow { shape, component: "data_leaf", rows: 300, capacity: 256 }
                if shape == "o8s8"
        ),
        "{err}"
    );
}

#[test]
fn state_budget_too_small_names_a_state_component() {
    // 200 operations over 300 accounts: within the operation budget, not the state budget.
    let (venue, batches) = run(200, 300, &[]);
    let err = prove_in_class(
        &venue,
        &refs(&batches),
        SecurityConfig::testing(),
        ChannelId::Blake2s,
        class(8, 6),
    )
    .unwrap_err();
    let ProveError::ShapeOverflow { component, .. } = err else {
        panic!("{err}")
    };
    assert!(
        ["state_leaf", "state_node", "chip", "holder"].contains(&component),
        "{component}"
    );
}

#[test]
fn planner_cuts_before_a_class_overflows_and_never_splits_a_batch() {
    let (venue, batches) = run(700, 40, &[100, 100, 100, 100, 100, 100]);
    let limit = class(8, 12);
    let plan = plan_classes(&venue, &refs(&batches), limit).unwrap();
    // 2^8 operations at most per segment: two batches of 100 each.
    assert_eq!(
        plan.iter().map(|p| p.batches.clone()).collect::<Vec<_>>(),
        vec![0..2, 2..4, 4..6, 6..7]
    );
    let mut walked = venue.clone();
    for p in &plan {
        assert!(p.class.within(limit));
        assert_eq!(p.class.shape().overflow(&p.rows), None);
        // The cheapest: no class of fewer cells holds the rows.
        for other in ShapeClass::all() {
            if other.shape().overflow(&p.rows).is_none() && other.within(limit) {
                assert!(
                    other.cells() >= p.class.cells(),
                    "{other} beats {}",
                    p.class
                );
            }
        }
        // The counts are the prover's for the segment from the walked state.
        let seg = refs(&batches[p.batches.clone()]);
        let proven = component_rows(&walked, &seg, ValidityAir::V3).unwrap();
        for (id, r) in proven {
            assert_eq!(p.rows[id.index()], r, "{}", id.name());
        }
        walked.apply_batch(&seg.concat()).unwrap();
    }
}

#[test]
fn batch_no_class_holds_is_refused_naming_the_component() {
    let (venue, batches) = run(300, 6, &[]);
    let err = plan_classes(&venue, &refs(&batches), class(8, 10)).unwrap_err();
    let ProveError::NoShapeClass { what } = err else {
        panic!("{err}")
    };
    assert!(
        what.contains("batch 0 (300 operations)") && what.contains("data_leaf needs 300 rows"),
        "{what}"
    );
}
