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
use stwo_constraint_framework::Relation;

use super::relations::ValidityRelations;
use super::statement::ValidityStatement;
use crate::field::M31;
use crate::hash::merkle::{depth_for, empty_digests, empty_siblings};
use crate::hash::poseidon2::sponge::{sponge_state, Domain};
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

/// Widest term (the state roots' tuple).
pub const MAX_TERM_VALUES: usize = 20;

/// Elements per encoded term: relation, sign, the values zero-padded to
/// [`MAX_TERM_VALUES`], two zeros — three sponge blocks.
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
    /// `relation, sign (1 or p − 1), values…, 0…`: [`TERM_LIMBS`] elements.
    pub fn encode(&self) -> [M31; TERM_LIMBS] {
        let mut out = [M31::from_u32_unchecked(0); TERM_LIMBS];
        out[0] = M31::from_u32_unchecked(self.relation as u32);
        out[1] = if self.negative {
            -M31::from_u32_unchecked(1)
        } else {
            M31::from_u32_unchecked(1)
        };
        out[2..2 + self.values.len()].copy_from_slice(&self.values);
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
/// `−InstrumentTable(settle_terms(i))`; last `+StateNode(root tuple)`.
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
    out.push(ClosureTerm {
        relation: ClosureRelation::StateNode,
        negative: false,
        values: root_tuple(&s.pre_state_root, &s.post_state_root),
    });
    out
}

/// The sponge's final state over the closure list's encodings (domain `Closure`, length
/// `TERM_LIMBS × |L|`); its first eight elements are the statement's closure digest.
pub fn closure_state(terms: &[ClosureTerm]) -> [M31; 16] {
    let message: Vec<M31> = terms.iter().flat_map(ClosureTerm::encode).collect();
    sponge_state(Domain::Closure, &message)
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
        }
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
        assert_eq!(sum, s.expected_logup_sum(ValidityAir::V3, &rels));
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
