//! The verifier's closure list (`specs/recursion.md` §5): the LogUp terms a batch-validity
//! verifier adds from the statement — per batch its data root and empty siblings, per
//! instrument its table tuple, and the state roots' tuple — as data, in one canonical order.
//!
//! The native verifier sums them ([`ValidityStatement::expected_logup_sum`]); a recursive
//! verifier cannot, since their number grows with the statement. The next step of AIR v3 yields
//! them from an input component whose rows a sponge chain binds to [`closure_state`], so that a
//! node verifying a leaf needs that state alone.

use stwo::core::fields::qm31::SecureField;
use stwo::core::fields::FieldExpOps;
use stwo_constraint_framework::{relation, EvalAtRow, FrameworkEval, Relation, RelationEntry};

use super::relations::ValidityRelations;
use super::statement::ValidityStatement;
use crate::field::M31;
use crate::hash::merkle::{depth_for, empty_digests, empty_siblings};
use crate::hash::poseidon2::sponge::{sponge_init, sponge_state, Domain};
use crate::hash::poseidon2::{RATE, WIDTH};
use crate::validity::instruments::settle_terms;
use crate::validity::state_tree::root_tuple;

/// The relation a closure term closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosureRelation {
    /// `MerkleNode(tree, shift, index, digest[8])`: the data forest.
    Merkle = 1,
    /// `InstrumentTable(id, terms…)`: the listed instruments.
    InstrumentTable = 2,
    /// `StateNode(…)`: the state tree's root pair.
    StateNode = 3,
}

/// Widest term of AIR v3 (the state roots' tuple).
pub const MAX_TERM_VALUES: usize = 20;

/// Widest term of AIR v4 (a batch's windowed root tuple): the encoding's last element, a zero
/// under v3, is then a value.
pub const WIDE_TERM_VALUES: usize = 21;

/// Elements per encoded term: its sign in each relation's slot (Merkle, instrument table,
/// state node; 0 in the two others), the values zero-padded to [`MAX_TERM_VALUES`], one zero —
/// three sponge blocks. (AIR v4: the values padded to [`WIDE_TERM_VALUES`].)
pub const TERM_LIMBS: usize = 24;

/// One term: the verifier adds `±1 / c(values)` in `relation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosureTerm {
    /// Its relation.
    pub relation: ClosureRelation,
    /// Subtracted (`−1/c`) rather than added.
    pub negative: bool,
    /// The tuple.
    pub values: Vec<M31>,
}

impl ClosureTerm {
    /// The sign as a field element: 1 or p − 1.
    pub fn sign(&self) -> M31 {
        if self.negative {
            -M31::from_u32_unchecked(1)
        } else {
            M31::from_u32_unchecked(1)
        }
    }

    /// `[m_merkle, m_instrument, m_state, values…, 0…]`, `m` the sign in the term's relation's
    /// slot: [`TERM_LIMBS`] elements.
    pub fn encode(&self) -> [M31; TERM_LIMBS] {
        let mut out = [M31::from_u32_unchecked(0); TERM_LIMBS];
        out[self.relation as usize - 1] = self.sign();
        out[3..3 + self.values.len()].copy_from_slice(&self.values);
        out
    }

    /// `±1 / c(values)` under the drawn relations.
    pub fn fraction(&self, rels: &ValidityRelations) -> SecureField {
        let denom: SecureField = match self.relation {
            ClosureRelation::Merkle => rels.merkle.combine(&self.values),
            ClosureRelation::InstrumentTable => rels.instrument_table.combine(&self.values),
            ClosureRelation::StateNode => rels.node.combine(&self.values),
        };
        if self.negative {
            -denom.inverse()
        } else {
            denom.inverse()
        }
    }
}

/// The closure list of `s`: per batch `t` in order, `+MerkleNode(t, shift_t, 1, data_root_t)`
/// then `−MerkleNode(t, shift_t, index, Z_h)` for its empty siblings (in
/// `hash::merkle::empty_siblings` order); per instrument `i` in order,
/// `−InstrumentTable(settle_terms(i))`; last `+StateNode(root tuple)` — under AIR v4 (interior
/// roots stated) one per batch in order, each its windowed root tuple.
pub fn closure_terms(s: &ValidityStatement) -> Vec<ClosureTerm> {
    let m = M31::from_u32_unchecked;
    let mut out = Vec::new();
    for (t, (b, shift)) in s.batches.iter().zip(s.shifts()).enumerate() {
        let node = |index: u64, digest: &[M31]| {
            let mut values = vec![m(t as u32), shift, m(index as u32)];
            values.extend_from_slice(digest);
            values
        };
        out.push(ClosureTerm {
            relation: ClosureRelation::Merkle,
            negative: false,
            values: node(1, &b.data_root.0),
        });
        let n = b.n_ops as usize;
        let empty = empty_digests(depth_for(n));
        for (index, height) in empty_siblings(n) {
            out.push(ClosureTerm {
                relation: ClosureRelation::Merkle,
                negative: true,
                values: node(index, &empty[height as usize].0),
            });
        }
    }
    for (i, inst) in s.instruments.iter().enumerate() {
        out.push(ClosureTerm {
            relation: ClosureRelation::InstrumentTable,
            negative: true,
            values: settle_terms(i as u32, inst).to_vec(),
        });
    }
    match (&s.interior_roots, s.state_windows()) {
        (None, _) => out.push(ClosureTerm {
            relation: ClosureRelation::StateNode,
            negative: false,
            values: root_tuple(&s.pre_state_root, &s.post_state_root),
        }),
        (Some(_), windows) => {
            // A count other than one root per batch boundary is refused by `check`; the list
            // then has no state term at all, which no proof closes.
            for w in windows.unwrap_or_default() {
                out.push(ClosureTerm {
                    relation: ClosureRelation::StateNode,
                    negative: false,
                    values: crate::validity::state_tree::windowed_root_tuple(&w),
                });
            }
        }
    }
    out
}

/// Permutations the closure input's sponge pays per term (a term is three rate blocks).
pub const PERMS_PER_TERM: usize = TERM_LIMBS / RATE;

/// `|L|` without building the list: per batch its root and empty siblings, per instrument its
/// tuple, and the state roots' tuple (`windowed`, AIR v4: one per batch).
pub fn closure_len(
    batch_sizes: impl IntoIterator<Item = usize>,
    n_instruments: usize,
    windowed: bool,
) -> usize {
    let (mut n_batches, mut len) = (0, 0);
    for n in batch_sizes {
        n_batches += 1;
        len += 1 + empty_siblings(n).len();
    }
    len + n_instruments + if windowed { n_batches } else { 1 }
}

/// The sponge's final state over the closure list's encodings (domain `Closure`, length
/// `TERM_LIMBS × |L|`); its first eight elements are the statement's closure digest.
pub fn closure_state(terms: &[ClosureTerm]) -> [M31; 16] {
    let message: Vec<M31> = terms.iter().flat_map(ClosureTerm::encode).collect();
    sponge_state(Domain::Closure, &message)
}

relation!(ClosureChain, 17);

/// The chain's start: the sponge's initial state for `n_terms` terms.
pub fn chain_start(n_terms: usize) -> [M31; WIDTH] {
    sponge_init(Domain::Closure, TERM_LIMBS * n_terms)
}

/// What the components of an AIR v3 proof must total (`specs/batch-air.md` §6): the input
/// component's chain telescopes to `−1/c(0, start) + 1/c(|L|, closure_state)`, and its terms
/// cancel the closure the verifier would otherwise add.
pub fn expected_chain_sum(chain: &ClosureChain, terms: &[ClosureTerm]) -> SecureField {
    chain_ends_sum(chain, terms.len(), closure_state(terms))
}

/// [`expected_chain_sum`] from the list's length and final state (a v3 public input's).
pub fn chain_ends_sum(chain: &ClosureChain, n_terms: usize, end: [M31; WIDTH]) -> SecureField {
    let tuple = |index: usize, state: [M31; WIDTH]| {
        let mut v = vec![M31::from_u32_unchecked(index as u32)];
        v.extend(state);
        let d: SecureField = chain.combine(&v);
        d.inverse()
    };
    tuple(n_terms, end) - tuple(0, chain_start(n_terms))
}

/// Columns of the input component: `enabled, index, m[3], values[20], in[16], mid1[16],
/// mid2[16], out[16]`.
pub const INPUT_COLUMNS: usize = 2 + 3 + MAX_TERM_VALUES + 4 * WIDTH;

/// AIR v4's: `values[21]`.
pub const WIDE_INPUT_COLUMNS: usize = INPUT_COLUMNS + WIDE_TERM_VALUES - MAX_TERM_VALUES;

/// LogUp entries per input row: chain use, three permutations, chain yield, three terms.
pub const INPUT_LOOKUPS: usize = 8;

/// The input component (AIR v3): one row per closure term, absorbing its encoding into a
/// sponge chained row to row (three permutations through the Poseidon2 chip) and yielding the
/// term with the opposite sign, so that the verifier closes the chain's two ends instead of
/// every term.
#[derive(Debug, Clone)]
pub struct ClosureInputEval {
    /// log2 rows.
    pub log_rows: u32,
    /// AIR v4: 21 value columns (the windowed root tuples).
    pub wide: bool,
    /// The relations the terms close, the chip's, and the chain's.
    pub merkle: crate::data_root::MerkleNodeRelation,
    /// Instrument table ↔ verifier.
    pub instrument_table: crate::validity::instruments::InstrumentTableRel,
    /// State tree nodes.
    pub node: crate::validity::state_tree::StateNodeRel,
    /// The Poseidon2 chip.
    pub perm: crate::hash::chip::Poseidon2Io,
    /// The sponge chain.
    pub chain: ClosureChain,
}

impl FrameworkEval for ClosureInputEval {
    fn log_size(&self) -> u32 {
        self.log_rows
    }

    fn max_constraint_log_degree_bound(&self) -> u32 {
        self.log_rows + 1
    }

    fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
        let enabled = eval.next_trace_mask();
        let index = eval.next_trace_mask();
        let m: [E::F; 3] = std::array::from_fn(|_| eval.next_trace_mask());
        let n_values = if self.wide {
            WIDE_TERM_VALUES
        } else {
            MAX_TERM_VALUES
        };
        let v: Vec<E::F> = (0..n_values).map(|_| eval.next_trace_mask()).collect();
        let states: [[E::F; WIDTH]; 4] =
            std::array::from_fn(|_| std::array::from_fn(|_| eval.next_trace_mask()));
        let one = E::F::from(M31::from_u32_unchecked(1));
        eval.add_constraint(enabled.clone() * (one.clone() - enabled.clone()));
        // A disabled row yields no term: it is not on the chain, so nothing binds it.
        for mk in &m {
            eval.add_constraint((one.clone() - enabled.clone()) * mk.clone());
        }
        let encoding: Vec<E::F> = m
            .iter()
            .chain(&v)
            .cloned()
            .chain(std::iter::repeat_n(
                E::F::from(M31::from_u32_unchecked(0)),
                TERM_LIMBS - 3 - n_values,
            ))
            .collect();
        let mut tuple = vec![index.clone()];
        tuple.extend(states[0].iter().cloned());
        eval.add_to_relation(RelationEntry::new(
            &self.chain,
            -E::EF::from(enabled.clone()),
            &tuple,
        ));
        for block in 0..3 {
            let io: Vec<E::F> = (0..WIDTH)
                .map(|i| {
                    if i < RATE {
                        states[block][i].clone() + encoding[block * RATE + i].clone()
                    } else {
                        states[block][i].clone()
                    }
                })
                .chain(states[block + 1].iter().cloned())
                .collect();
            eval.add_to_relation(RelationEntry::new(
                &self.perm,
                -E::EF::from(enabled.clone()),
                &io,
            ));
        }
        let mut tuple = vec![index + one];
        tuple.extend(states[3].iter().cloned());
        eval.add_to_relation(RelationEntry::new(
            &self.chain,
            E::EF::from(enabled),
            &tuple,
        ));
        eval.add_to_relation(RelationEntry::new(
            &self.merkle,
            -E::EF::from(m[0].clone()),
            &v[..11],
        ));
        eval.add_to_relation(RelationEntry::new(
            &self.instrument_table,
            -E::EF::from(m[1].clone()),
            &v[..14],
        ));
        eval.add_to_relation(RelationEntry::new(
            &self.node,
            -E::EF::from(m[2].clone()),
            &v[..n_values],
        ));
        eval.finalize_logup_in_pairs();
        eval
    }
}

/// The input component's rows for `terms`, and the chip rows' permutation inputs they consume
/// (as `Lookup::Perm` entries of the rows).
#[cfg(feature = "prover")]
pub(crate) fn input_rows(
    terms: &[ClosureTerm],
    wide: bool,
) -> Vec<crate::validity::row::RowWitness> {
    let n_values = if wide {
        WIDE_TERM_VALUES
    } else {
        MAX_TERM_VALUES
    };
    use crate::hash::poseidon2::permute;
    use crate::validity::row::{Lookup, RowWitness};
    let mut state = chain_start(terms.len());
    terms
        .iter()
        .enumerate()
        .map(|(i, term)| {
            let enc = term.encode();
            let mut states = [state; 4];
            let mut lookups = Vec::with_capacity(INPUT_LOOKUPS);
            let chain = |index: usize, s: &[M31; WIDTH]| {
                std::iter::once(M31::from_u32_unchecked(index as u32))
                    .chain(s.iter().copied())
                    .collect::<Vec<_>>()
            };
            lookups.push(Lookup::ClosureChainUse(chain(i, &states[0])));
            for block in 0..3 {
                let mut input = states[block];
                for (s, e) in input.iter_mut().zip(&enc[block * RATE..(block + 1) * RATE]) {
                    *s += *e;
                }
                let mut out = input;
                permute(&mut out);
                states[block + 1] = out;
                lookups.push(Lookup::Perm(input.into_iter().chain(out).collect()));
            }
            lookups.push(Lookup::ClosureChainYield(chain(i + 1, &states[3])));
            for (k, relation) in [
                ClosureRelation::Merkle,
                ClosureRelation::InstrumentTable,
                ClosureRelation::StateNode,
            ]
            .into_iter()
            .enumerate()
            {
                lookups.push(if term.relation == relation {
                    Lookup::Closure {
                        relation,
                        mult: -enc[k],
                        values: term.values.clone(),
                    }
                } else {
                    Lookup::Nothing
                });
            }
            state = states[3];
            let mut cells = vec![
                M31::from_u32_unchecked(1),
                M31::from_u32_unchecked(i as u32),
            ];
            cells.extend_from_slice(&enc[..3]);
            cells.extend_from_slice(&enc[3..3 + n_values]);
            for s in &states {
                cells.extend_from_slice(s);
            }
            debug_assert_eq!(cells.len(), INPUT_COLUMNS + n_values - MAX_TERM_VALUES);
            RowWitness { cells, lookups }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use stwo::core::channel::{Blake2sChannel, Channel};

    use super::*;
    use crate::hash::poseidon2::Digest;
    use crate::validity::BatchTree;
    use crate::validity::ValidityAir;
    use crate::venue::{Instrument, OptionKind};

    fn statement() -> ValidityStatement {
        let d = |x: u32| {
            Digest(std::array::from_fn(|i| {
                M31::from_u32_unchecked(x + i as u32)
            }))
        };
        ValidityStatement {
            batches: vec![
                BatchTree {
                    n_ops: 5,
                    data_root: d(10),
                },
                BatchTree {
                    n_ops: 8,
                    data_root: d(20),
                },
                BatchTree {
                    n_ops: 1,
                    data_root: d(30),
                },
            ],
            pre_state_root: d(40),
            post_state_root: d(50),
            log_cash_rows: 4,
            log_trade_rows: 4,
            log_state_leaf_rows: 4,
            log_state_node_rows: 4,
            log_chip_rows: 4,
            log_settle_rows: 4,
            log_holder_rows: 4,
            instruments: vec![
                Instrument {
                    underlying: 1,
                    expiry_us: 1_800_000_000_000_000,
                    strike: 60_000_000_000,
                    kind: OptionKind::Call,
                    collateral: 10_000_000_000,
                },
                Instrument {
                    underlying: 2,
                    expiry_us: 1_800_000_000_000_000,
                    strike: 3_000_000_000,
                    kind: OptionKind::Put,
                    collateral: 3_000_000_000,
                },
            ],
            shape: None,
            interior_roots: None,
        }
    }

    #[test]
    fn closure_len_counts_the_list() {
        let s = statement();
        assert_eq!(
            closure_len(
                s.batches.iter().map(|b| b.n_ops as usize),
                s.instruments.len(),
                false
            ),
            closure_terms(&s).len()
        );
        let d = |x: u32| Digest([M31::from_u32_unchecked(x); 8]);
        let windowed = ValidityStatement {
            interior_roots: Some(vec![d(1), d(2)]),
            ..s
        };
        assert_eq!(
            closure_len(
                windowed.batches.iter().map(|b| b.n_ops as usize),
                windowed.instruments.len(),
                true
            ),
            closure_terms(&windowed).len()
        );
    }

    #[test]
    fn closure_list_sums_to_the_verifier_closure() {
        let s = statement();
        let terms = closure_terms(&s);
        // Batch of 5: root and the empty siblings of leaves 5..8; of 8: the root alone; of 1:
        // the root alone (depth 0).
        let merkle = terms
            .iter()
            .filter(|t| t.relation == ClosureRelation::Merkle)
            .count();
        assert_eq!(merkle, 3 + empty_siblings(5).len());
        assert_eq!(terms.len(), merkle + 2 + 1);
        let mut channel = Blake2sChannel::default();
        channel.mix_u64(3);
        let rels = ValidityRelations::draw(&mut channel);
        let sum: SecureField = terms.iter().map(|t| t.fraction(&rels)).sum();
        assert_eq!(sum, s.closure_sum(&rels));
        assert_eq!(
            sum + rels.range.expected_component_sum(),
            s.expected_logup_sum(ValidityAir::V2, &rels)
        );
    }

    #[test]
    fn closure_state_binds_every_term() {
        let s = statement();
        let terms = closure_terms(&s);
        let state = closure_state(&terms);
        assert_eq!(
            Digest(std::array::from_fn(|i| state[i])),
            crate::hash::poseidon2::hash_elements(
                Domain::Closure,
                &terms
                    .iter()
                    .flat_map(ClosureTerm::encode)
                    .collect::<Vec<_>>()
            )
        );
        let mut other = s.clone();
        other.batches[1].n_ops = 7;
        assert_ne!(closure_state(&closure_terms(&other)), state);
        let mut other = s.clone();
        other.instruments[1].collateral += 1;
        assert_ne!(closure_state(&closure_terms(&other)), state);
        let mut flipped = terms.clone();
        flipped[0].negative = true;
        assert_ne!(closure_state(&flipped), state);
    }
}
