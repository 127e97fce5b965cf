//! AIR v4 (`specs/batch-air.md` §7): one state-tree pair per batch, each in its batch's time
//! window, so that a segment proves the state root after every batch. The attacks: a false
//! interior root stated, interior roots swapped or left out, and the one a single tree pair
//! cannot see — a batch's chain continued into the next batch's accesses while the boundary
//! root commits another value (refused by the window's bound).

use crate::config::{SecurityConfig, VerifierPolicy};
use crate::error::{ProveError, VerifyError};
use crate::field::M31;
use crate::proof::ChannelId;
use crate::validity::prove::{prove_forest_with, Execution, ProveAs};
use crate::validity::state_tree::Touched;
use crate::validity::{prove_batches, verify_validity, ShapeClass, ValidityAir, ValidityStatement};
use crate::venue::state::{clock_leaf, StateKey};
use crate::venue::{sample, Operation, Venue};

const T0: u64 = 1_800_000_000_000_000;

fn policy() -> VerifierPolicy {
    VerifierPolicy::insecure_for_tests()
}

/// Three batches of 40, 17 and 39 operations, one microsecond apart (so the clock moves in
/// every batch).
fn three_batches() -> (Venue, Vec<Vec<Operation>>) {
    let (venue, ops) = sample::batch(96, 12, 7, T0, 1);
    let mut at = 0;
    let batches = [40, 17, 39]
        .iter()
        .map(|&n| {
            at += n;
            ops[at - n..at].to_vec()
        })
        .collect();
    (venue, batches)
}

fn refs(batches: &[Vec<Operation>]) -> Vec<&[Operation]> {
    batches.iter().map(Vec::as_slice).collect()
}

/// [`three_batches`] proven as one segment under `air` (Blake2s).
fn segment(air: ValidityAir) -> (ValidityStatement, crate::proof::Proof) {
    let (venue, batches) = three_batches();
    prove_batches(
        &venue,
        &refs(&batches),
        SecurityConfig::testing(),
        ChannelId::Blake2s,
        air,
    )
    .unwrap()
}

fn sizes(batches: &[Vec<Operation>]) -> Vec<usize> {
    batches.iter().map(Vec::len).collect()
}

/// [`three_batches`] under AIR v4 with the statement `edit`ed and the rows `forge`d before
/// the trees are built: the verdict, or the prover's refusal, as text.
fn forged(
    edit: impl FnOnce(&mut ValidityStatement),
    forge: impl FnOnce(&mut Execution),
) -> Result<(), String> {
    let (venue, batches) = three_batches();
    let ops = batches.concat();
    let (statement, proof) = prove_forest_with(
        &venue,
        &ops,
        &sizes(&batches),
        &ops,
        edit,
        forge,
        SecurityConfig::testing(),
        ProveAs::new(ChannelId::Blake2s, ValidityAir::V4),
    )
    .map_err(|e| e.to_string())?;
    verify_validity(proof, &statement, &policy()).map_err(|e| e.to_string())
}

#[test]
fn v4_segment_proves_the_root_after_every_batch() {
    let (venue, batches) = three_batches();
    for channel in [ChannelId::Blake2s, ChannelId::Poseidon2] {
        let (statement, proof) = prove_batches(
            &venue,
            &refs(&batches),
            SecurityConfig::testing(),
            channel,
            ValidityAir::V4,
        )
        .unwrap();
        assert_eq!(proof.air, crate::proof::AirId::BatchValidityV4);
        // The roots are the engine's, batch by batch.
        let mut v = venue.clone();
        let mut roots = vec![v.state_root()];
        for b in &batches {
            v.apply_batch(b).unwrap();
            roots.push(v.state_root());
        }
        assert_eq!(statement.pre_state_root, roots[0]);
        assert_eq!(statement.interior_roots.as_deref(), Some(&roots[1..3]));
        assert_eq!(statement.post_state_root, roots[3]);
        let posts: Vec<_> = statement.post_roots().into_iter().flatten().collect();
        assert_eq!(posts, roots[1..]);
        // A constant-size public input, as v3's.
        assert_eq!(proof.public_inputs.len(), crate::validity::V3_PUBLIC_INPUTS);
        let bytes = proof.to_bytes();
        crate::validity::verify_validity_bytes(&bytes, &statement, &policy()).unwrap();
        let decoded = crate::proof::Proof::from_bytes(&bytes).unwrap();
        crate::validity::trace_validity(decoded, &statement, &policy()).unwrap();
    }
}

#[test]
fn v4_statement_file_round_trips_and_refuses_trailing_bytes() {
    let (statement, _) = segment(ValidityAir::V4);
    let file = statement.to_bytes();
    assert_eq!(&file[..8], b"POEVST05");
    assert_eq!(ValidityStatement::from_bytes(&file).unwrap(), statement);
    let mut shaped = statement.clone();
    shaped.set_shape(ShapeClass::largest().shape());
    assert_eq!(
        ValidityStatement::from_bytes(&shaped.to_bytes()).unwrap(),
        shaped
    );
    let mut trailing = file.clone();
    trailing.push(0);
    assert!(ValidityStatement::from_bytes(&trailing).is_err());
    let mut flag = file.clone();
    *flag.last_mut().unwrap() = 2;
    assert!(ValidityStatement::from_bytes(&flag)
        .unwrap_err()
        .contains("shape flag"));
    // The first interior root's first limb made p.
    let mut non_canonical = file;
    let at = non_canonical.len() - 1 - 2 * 32;
    non_canonical[at..at + 4].copy_from_slice(&crate::field::P.to_le_bytes());
    assert!(ValidityStatement::from_bytes(&non_canonical)
        .unwrap_err()
        .contains("not below p"));
}

#[test]
fn v4_honest_forged_helper_verifies() {
    forged(|_| {}, |_| {}).unwrap();
}

#[test]
fn v4_statement_with_another_interior_root_is_rejected() {
    // The trees prove the engine's root after batch 0; the statement (and the closure list
    // the input component hashes) names another.
    let e = forged(
        |s| s.interior_roots.as_mut().unwrap()[0].0[0] += M31::from_u32_unchecked(1),
        |_| {},
    )
    .unwrap_err();
    assert_eq!(e, VerifyError::LogUpSumMismatch.to_string());
}

#[test]
fn v4_statement_with_interior_roots_swapped_is_rejected() {
    let e = forged(|s| s.interior_roots.as_mut().unwrap().swap(0, 1), |_| {}).unwrap_err();
    assert_eq!(e, VerifyError::LogUpSumMismatch.to_string());
}

#[test]
fn v4_proof_checked_against_other_interior_roots_is_a_closure_digest_mismatch() {
    let (statement, proof) = segment(ValidityAir::V4);
    let mut other = statement.clone();
    other.interior_roots.as_mut().unwrap()[1].0[7] += M31::from_u32_unchecked(1);
    let e = verify_validity(proof.clone(), &other, &policy()).unwrap_err();
    assert_eq!(
        e,
        VerifyError::BatchStatementMismatch {
            field: "closure digest"
        }
    );
    // Without its interior roots (v3's statement), or one root short.
    let mut v3_statement = statement.clone();
    v3_statement.interior_roots = None;
    let e = verify_validity(proof.clone(), &v3_statement, &policy()).unwrap_err();
    assert!(matches!(e, VerifyError::InvalidStatement(_)), "{e}");
    let mut short = statement;
    short.interior_roots.as_mut().unwrap().pop();
    let e = verify_validity(proof, &short, &policy()).unwrap_err();
    assert!(
        matches!(e, VerifyError::InvalidStatement(ref m) if m.contains("interior")),
        "{e}"
    );
}

#[test]
fn v3_proof_checked_against_a_statement_with_interior_roots_is_refused() {
    let (mut statement, proof) = segment(ValidityAir::V3);
    verify_validity(proof.clone(), &statement, &policy()).unwrap();
    statement.interior_roots = Some(vec![statement.pre_state_root; 2]);
    let e = verify_validity(proof, &statement, &policy()).unwrap_err();
    assert!(matches!(e, VerifyError::InvalidStatement(_)), "{e}");
}

/// The clock's accesses of the rows, as `(time, which row field)`: every operation writes it.
fn clock_access_times(e: &Execution) -> Vec<u32> {
    let clock = StateKey::Clock.index();
    let mut times: Vec<u32> = e
        .cash
        .iter()
        .map(|r| r.clock_access().t)
        .chain(
            e.trade
                .iter()
                .flat_map(|r| r.accesses())
                .filter(|a| a.key == clock)
                .map(|a| a.t),
        )
        .collect();
    times.sort_unstable();
    times
}

/// Points the clock access at time `t` to a previous access at `t_prev`.
fn set_clock_t_prev(e: &mut Execution, t: u32, t_prev: u32) {
    let clock = StateKey::Clock.index();
    for r in &mut e.cash {
        if r.clock_access().t == t {
            r.clock_t_prev = t_prev;
            return;
        }
    }
    for r in &mut e.trade {
        if let Some(k) = r.accesses().iter().position(|a| a.key == clock && a.t == t) {
            r.t_prev[k] = t_prev;
            return;
        }
    }
    panic!("no clock access at {t}");
}

#[test]
fn v4_chain_carried_across_a_batch_boundary_under_a_false_root_is_rejected() {
    // Batch 1's first clock access reads batch 0's last write directly (as one run would);
    // batch 0's leaf then closes the clock at batch 1's init instead, whose value — the
    // clock in the root after batch 0 — is a forged timestamp. Every State tuple still
    // balances and both trees agree on the false root: only the window's bound (batch 0's
    // last access of a key is before batch 1's window) is broken.
    let (_, batches) = three_batches();
    let start_1 = 40 * crate::validity::gadgets::SLOTS_PER_OP;
    let e = forged(
        |_| {},
        move |e| {
            let times = clock_access_times(e);
            let last_0 = *times.iter().filter(|&&t| t < start_1).max().unwrap();
            let first_1 = *times.iter().find(|&&t| t >= start_1).unwrap();
            set_clock_t_prev(e, first_1, last_0);
            let forged_clock = clock_leaf(T0 + 1_000_000);
            e.forge_windows = Some(Box::new(
                move |windows: &mut Vec<(Vec<Touched>, (u32, u32))>| {
                    let clock = StateKey::Clock.index();
                    fn leaf(w: &mut [Touched], key: u32) -> &mut Touched {
                        w.iter_mut().find(|t| t.key == key).unwrap()
                    }
                    let (start, _) = windows[1].1;
                    let l0 = leaf(&mut windows[0].0, clock);
                    l0.after = forged_clock;
                    l0.last_access = start;
                    leaf(&mut windows[1].0, clock).before = forged_clock;
                },
            ));
        },
    )
    .unwrap_err();
    assert_eq!(e, VerifyError::LogUpSumMismatch.to_string());
    drop(batches);
}

#[test]
fn v4_runs_prove_in_a_class_and_the_planner_counts_their_rows() {
    let (venue, batches) = three_batches();
    let plan = crate::validity::plan_classes_as(
        &venue,
        &refs(&batches),
        ShapeClass::largest(),
        ValidityAir::V4,
    )
    .unwrap();
    assert_eq!(plan.len(), 1);
    let rows = crate::validity::component_rows(&venue, &refs(&batches), ValidityAir::V4).unwrap();
    for (id, n) in rows {
        assert_eq!(plan[0].rows[id.index()], n, "{}", id.name());
    }
    let (statement, proof) = crate::validity::prove_in_class_as(
        &venue,
        &refs(&batches),
        SecurityConfig::testing(),
        ChannelId::Poseidon2,
        plan[0].class,
        ValidityAir::V4,
    )
    .unwrap();
    assert_eq!(statement.shape, Some(plan[0].class.shape()));
    verify_validity(proof, &statement, &policy()).unwrap();
    // v4 opens each batch's keys in its own tree: more state rows than v3's one pair.
    let v3 = crate::validity::component_rows(&venue, &refs(&batches), ValidityAir::V3).unwrap();
    let leaf = crate::validity::ComponentId::StateLeaf.index();
    assert!(plan[0].rows[leaf] > v3[leaf].1);
}

#[test]
fn v4_prover_refuses_a_batch_that_breaks_a_rule_by_name() {
    let (venue, mut batches) = three_batches();
    // A withdrawal of more than any account holds, in batch 2.
    batches[2].push(Operation::Withdraw {
        account: 1,
        amount: u64::MAX / 4,
        timestamp_us: T0 + 1_000,
    });
    let e = prove_batches(
        &venue,
        &refs(&batches),
        SecurityConfig::testing(),
        ChannelId::Blake2s,
        ValidityAir::V4,
    )
    .unwrap_err();
    assert!(matches!(e, ProveError::Rule(_)), "{e}");
}
