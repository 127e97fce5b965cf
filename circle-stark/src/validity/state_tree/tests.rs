use stwo::core::fields::qm31::SecureField;
use stwo::core::fields::FieldExpOps;
use stwo_constraint_framework::{Relation, TraceLocationAllocator};

use super::*;
use crate::harness::{
    evaluations, logup_columns, prove_and_verify, range_table_column, range_table_component, Air,
};
use crate::validity::range::LOG_RANGE;
use crate::validity::trade::{Lookup, RowWitness};
use crate::validity::ValidityRelations;
use crate::venue::state::{account_leaf, AccountState, StateKey};
use crate::venue::state::{leaf_digest, StateTree};
use std::collections::BTreeMap;

const UNSAT: &str = "Constraints not satisfied.";

fn account(cash: u64) -> [M31; LEAF_LIMBS] {
    account_leaf(&AccountState { cash, locked: 0 })
}

/// A tree with accounts 0, 5, 9 and the clock set; the batch changes 0 and 5 and reads 9
/// (after = before).
fn setup() -> (StateTree, Vec<Touched>) {
    let mut tree = StateTree::default();
    tree.set(StateKey::Account(0), &account(10));
    tree.set(StateKey::Account(5), &account(500));
    tree.set(StateKey::Account(9), &account(900));
    tree.set(StateKey::Clock, &crate::venue::state::clock_leaf(7));
    let touched = vec![
        Touched {
            key: 0,
            before: account(10),
            after: account(12),
            last_access: 3,
        },
        Touched {
            key: 5,
            before: account(500),
            after: account(498),
            last_access: 2,
        },
        Touched {
            key: 9,
            before: account(900),
            after: account(900),
            last_access: 1,
        },
        Touched {
            key: 3 << 30,
            before: crate::venue::state::clock_leaf(7),
            after: crate::venue::state::clock_leaf(8),
            last_access: 3,
        },
    ];
    (tree, touched)
}

fn columns(rows: &[RowWitness], pad: &[M31], log: u32) -> Vec<Vec<M31>> {
    (0..pad.len())
        .map(|c| {
            (0..1usize << log)
                .map(|r| rows.get(r).map_or(pad[c], |w| w.cells[c]))
                .collect()
        })
        .collect()
}

/// Proves the two components with the range table; the verifier stands in for the
/// memory argument's accesses (`touched`) and consumes the stated roots.
fn prove(
    leaves: &[RowWitness],
    nodes: &[RowWitness],
    touched: &[Touched],
    roots: (Digest, Digest),
) -> Result<(), String> {
    let leaf_log = crate::data_root::log_rows_for(leaves.len());
    let node_log = crate::data_root::log_rows_for(nodes.len());
    let ranges = leaves.iter().flat_map(|w| {
        w.lookups.iter().filter_map(|l| match l {
            Lookup::Range(v) => Some(*v),
            _ => None,
        })
    });
    let table = crate::validity::range::table_columns(ranges);
    let chip = crate::validity::prove::chip_witness(leaves.iter().chain(nodes));
    let chip_log = crate::data_root::log_rows_for(chip.len());
    let zero_leaf = vec![m(0); STATE_LEAF_COLUMNS];
    let zero_node = vec![m(0); STATE_NODE_COLUMNS];
    prove_and_verify(Air {
        main: vec![
            evaluations(LOG_RANGE, &table),
            evaluations(leaf_log, &columns(leaves, &zero_leaf, leaf_log)),
            evaluations(node_log, &columns(nodes, &zero_node, node_log)),
            evaluations(
                chip_log,
                &columns(&chip, &crate::validity::prove::chip_padding(), chip_log),
            ),
        ],
        max_log_rows: LOG_RANGE,
        draw: ValidityRelations::draw,
        interaction: |rel: &ValidityRelations| {
            let table_col = range_table_column(&table, &rel.range);
            let rows_col = |rows: &[RowWitness], log: u32, width: usize| {
                logup_columns(log, |r| match rows.get(r) {
                    Some(w) => w.lookups.iter().map(|l| rel.fraction(l)).collect(),
                    None => vec![rel.fraction(&Lookup::Nothing); width],
                })
            };
            vec![
                table_col,
                rows_col(leaves, leaf_log, STATE_LEAF_LOOKUPS),
                rows_col(nodes, node_log, STATE_NODE_LOOKUPS),
                rows_col(&chip, chip_log, 1),
            ]
        },
        components: |rel: &ValidityRelations,
                     sums: &[SecureField],
                     alloc: &mut TraceLocationAllocator| {
            vec![
                range_table_component(alloc, &rel.range, sums[0]),
                Box::new(StateLeaf::new(
                    alloc,
                    StateLeafEval {
                        windowed: false,
                        log_rows: leaf_log,
                        state: rel.state.clone(),
                        range: rel.range.clone(),
                        node: rel.node.clone(),
                        perm: rel.perm.clone(),
                    },
                    sums[1],
                )),
                Box::new(StateNode::new(
                    alloc,
                    StateNodeEval {
                        windowed: false,
                        log_rows: node_log,
                        node: rel.node.clone(),
                        perm: rel.perm.clone(),
                    },
                    sums[2],
                )),
                Box::new(crate::hash::chip::Poseidon2Chip::new(
                    alloc,
                    crate::hash::chip::Poseidon2ChipEval {
                        log_rows: chip_log,
                        relation: rel.perm.clone(),
                    },
                    sums[3],
                )),
            ]
        },
        expected_total: |rel: &ValidityRelations| {
            // What the accesses would contribute: consume each init, yield each final.
            let accesses: SecureField = touched
                .iter()
                .map(|t| {
                    let w = leaf_row(t);
                    let (n_init, d_init) = rel.fraction(&w.lookups[3]);
                    let (n_last, d_last) = rel.fraction(&w.lookups[4]);
                    n_init * d_init.inverse() + n_last * d_last.inverse()
                })
                .sum();
            let root: SecureField = rel.node.combine(&root_tuple(&roots.0, &roots.1));
            rel.range.expected_component_sum() + accesses + root.inverse()
        },
    })
}

#[test]
fn honest_tree_proves_both_roots() {
    let (tree, touched) = setup();
    let w = tree_witness(&tree, &touched).unwrap();
    let mut after = tree.clone();
    for t in &touched {
        if t.key < crate::venue::MAX_ACCOUNTS {
            after.set(StateKey::Account(t.key), &t.after);
        } else {
            after.set(StateKey::Clock, &t.after);
        }
    }
    assert_eq!(w.pre_root, tree.root());
    assert_eq!(w.post_root, after.root());
    // Four paths to the root: 32 levels, the three accounts share most of theirs.
    assert!(w.nodes.len() < 4 * 32);
    prove(&w.leaves, &w.nodes, &touched, (w.pre_root, w.post_root)).unwrap();
}

#[test]
fn another_post_root_is_rejected() {
    let (tree, touched) = setup();
    let w = tree_witness(&tree, &touched).unwrap();
    let mut wrong = w.post_root;
    wrong.0[0] += m(1);
    assert_eq!(
        prove(&w.leaves, &w.nodes, &touched, (w.pre_root, wrong)).unwrap_err(),
        "logup total"
    );
}

#[test]
fn changed_leaf_hidden_behind_a_free_sibling_is_rejected() {
    // Drop account 5's leaf row and make its position a free sibling whose post digest
    // is the new value: the root would move without the memory argument seeing it.
    let (tree, touched) = setup();
    let w = tree_witness(&tree, &touched).unwrap();
    let kept: Vec<Touched> = touched.iter().copied().filter(|t| t.key != 5).collect();
    let leaves: Vec<RowWitness> = kept.iter().map(leaf_row).collect();
    let mut nodes = w.nodes.clone();
    // The level-1 node over keys 4 and 5 is the first row (level 1, index 2).
    let (pre5, post5) = (leaf_digest(&account(500)), leaf_digest(&account(498)));
    let z = tree.node(0, 4);
    let (row, _, _) = node_row(
        (1, 1, 0, 0),
        [
            Child {
                has: false,
                pre: z,
                post: z,
            },
            Child {
                has: false,
                pre: pre5,
                post: post5,
            },
        ],
    );
    assert_eq!(
        nodes[1].cells[1..4],
        [m(1), m(1), m(0)],
        "row over keys 4, 5"
    );
    nodes[1] = row;
    assert_eq!(
        prove(&leaves, &nodes, &kept, (w.pre_root, w.post_root)).unwrap_err(),
        UNSAT
    );
}

#[test]
fn disabled_row_swallowing_a_subtree_is_rejected() {
    // A padding row consumes the clock's leaf tuple and yields nothing; the tree above
    // takes the clock's old value as a free sibling, so the roots show the clock unchanged.
    let (tree, touched) = setup();
    let clock = touched[3];
    let positions = touched[..3]
        .iter()
        .map(|t| (t.key, (leaf_digest(&t.before), leaf_digest(&t.after))))
        .collect();
    let (mut nodes, pre, post) = node_rows(&tree, positions);
    let sibling = tree.node(0, clock.key + 1);
    let (mut swallow, _, _) = node_row(
        (1, clock.key >> 2, 0, 0),
        [
            Child {
                has: true,
                pre: leaf_digest(&clock.before),
                post: leaf_digest(&clock.after),
            },
            Child {
                has: false,
                pre: sibling,
                post: sibling,
            },
        ],
    );
    // Disabled: it yields nothing and uses no permutation (its digests are unchecked).
    swallow.cells[0] = m(0);
    for k in [0, 3, 4] {
        swallow.lookups[k] = Lookup::Nothing;
    }
    nodes.push(swallow);
    let leaves: Vec<RowWitness> = touched.iter().map(leaf_row).collect();
    assert_eq!(
        prove(&leaves, &nodes, &touched, (pre, post)).unwrap_err(),
        UNSAT
    );
}

#[test]
fn fee_account_moved_to_the_aliased_position_is_rejected() {
    // Index 2^31 − 1 at level 1 equals 0 in the field. With the fee account still empty,
    // place its first credit at key 2^32 − 2 (under that node) and leave key 0 empty: the
    // pre root is the honest one, the post root loses the fee. Without the flag, the leaf's
    // tuple (0, 0, 0, ·) would match the aliased node's left child.
    let tree = StateTree::default();
    let fee = Touched {
        key: 0,
        before: [m(0); LEAF_LIMBS],
        after: account(12),
        last_access: 3,
    };
    let mut positions = BTreeMap::new();
    positions.insert(
        u32::MAX - 1,
        (leaf_digest(&fee.before), leaf_digest(&fee.after)),
    );
    let (nodes, pre, post) = node_rows(&tree, positions);
    assert_eq!(pre, tree.root(), "the forged pre root is the honest one");
    let honest = tree_witness(&tree, &[fee]).unwrap();
    assert_ne!(post, honest.post_root);
    assert_eq!(
        prove(&honest.leaves, &nodes, &[fee], (pre, post)).unwrap_err(),
        "logup total"
    );
}

#[test]
fn leaf_with_key_not_matching_its_halves_is_rejected() {
    // key_lo = 2q + b0 must hold: a leaf row claiming key 5's state but yielding key 4's
    // position.
    let (tree, touched) = setup();
    let w = tree_witness(&tree, &touched).unwrap();
    let mut leaves = w.leaves.clone();
    leaves[1].cells[4] = m(0);
    if let Lookup::NodeYield(v) = &mut leaves[1].lookups[5] {
        v[2] = m(0);
    }
    assert_eq!(
        prove(&leaves, &w.nodes, &touched, (w.pre_root, w.post_root)).unwrap_err(),
        UNSAT
    );
}
