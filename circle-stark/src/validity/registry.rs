//! The batch-validity AIR's components, in commitment order: the one list that the prover's
//! main and interaction traces, proving and verifying all iterate. Adding a component is a
//! variant here, its arms below, and its own module.

use stwo::core::air::Component;
use stwo::core::fields::qm31::SecureField;
use stwo_constraint_framework::{FrameworkComponent, TraceLocationAllocator};

use super::cash::{Cash, CashEval};
use super::instruments::{InstrumentTable, InstrumentTableEval};
use super::range::{RangeTable, RangeTableEval, LOG_RANGE};
use super::relations::ValidityRelations;
use super::settle::{Holder, HolderEval, Settle, SettleEval};
use super::state_tree::{StateLeaf, StateLeafEval, StateNode, StateNodeEval};
use super::statement::ValidityStatement;
use super::trade::{Trade, TradeEval};
use crate::data_root::{log_rows_for, LeafEval, NodeEval};
use crate::hash::chip::{Poseidon2Chip, Poseidon2ChipEval};
use crate::venue::OP_LIMBS;

/// A component of the batch-validity AIR (`specs/batch-air.md` §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ComponentId {
    /// The 16-bit range table.
    Range,
    /// The instrument table.
    Instruments,
    /// The data forest's leaves (they also yield the operation records).
    DataLeaf,
    /// The data forest's internal nodes.
    DataNode,
    /// Deposit and withdrawal rows.
    Cash,
    /// Trade rows.
    Trade,
    /// The state tree's touched leaves.
    StateLeaf,
    /// The state tree's nodes on the touched paths.
    StateNode,
    /// The Poseidon2 chip (the state tree's permutations).
    Chip,
    /// Settlement header rows.
    Settle,
    /// Settlement holder rows.
    Holder,
}

/// Number of components, hence of claimed LogUp sums.
pub const N_COMPONENTS: usize = ComponentId::ALL.len();

impl ComponentId {
    /// Every component in commitment order, which is also the order of the proof's claimed
    /// sums.
    pub const ALL: [Self; 11] = [
        Self::Range,
        Self::Instruments,
        Self::DataLeaf,
        Self::DataNode,
        Self::Cash,
        Self::Trade,
        Self::StateLeaf,
        Self::StateNode,
        Self::Chip,
        Self::Settle,
        Self::Holder,
    ];

    /// The component's name, as the specs and errors spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Range => "range",
            Self::Instruments => "instruments",
            Self::DataLeaf => "data_leaf",
            Self::DataNode => "data_node",
            Self::Cash => "cash",
            Self::Trade => "trade",
            Self::StateLeaf => "state_leaf",
            Self::StateNode => "state_node",
            Self::Chip => "chip",
            Self::Settle => "settle",
            Self::Holder => "holder",
        }
    }

    /// log2 of the component's rows under `s`.
    pub fn log_rows(self, s: &ValidityStatement) -> u32 {
        match self {
            Self::Range => LOG_RANGE,
            Self::Instruments => log_rows_for(s.instruments.len()),
            Self::DataLeaf => s.data_log_rows().0,
            Self::DataNode => s.data_log_rows().1,
            Self::Cash => s.log_cash_rows,
            Self::Trade => s.log_trade_rows,
            Self::StateLeaf => s.log_state_leaf_rows,
            Self::StateNode => s.log_state_node_rows,
            Self::Chip => s.log_chip_rows,
            Self::Settle => s.log_settle_rows,
            Self::Holder => s.log_holder_rows,
        }
    }

    fn build(
        self,
        alloc: &mut TraceLocationAllocator,
        s: &ValidityStatement,
        rels: &ValidityRelations,
        sum: SecureField,
    ) -> Box<dyn AirComponent> {
        let log_rows = self.log_rows(s);
        match self {
            Self::Range => Box::new(RangeTable::new(
                alloc,
                RangeTableEval {
                    relations: rels.range.clone(),
                },
                sum,
            )),
            Self::Instruments => Box::new(InstrumentTable::new(
                alloc,
                InstrumentTableEval {
                    log_rows,
                    instrument: rels.instrument.clone(),
                    table: rels.instrument_table.clone(),
                    settle: rels.settle_terms.clone(),
                },
                sum,
            )),
            Self::DataLeaf => Box::new(FrameworkComponent::new(
                alloc,
                LeafEval {
                    log_rows,
                    record_limbs: OP_LIMBS,
                    relation: rels.merkle.clone(),
                    ops: Some(rels.ops.clone()),
                },
                sum,
            )),
            Self::DataNode => Box::new(FrameworkComponent::new(
                alloc,
                NodeEval {
                    log_rows,
                    relation: rels.merkle.clone(),
                    forest: true,
                },
                sum,
            )),
            Self::Cash => Box::new(Cash::new(
                alloc,
                CashEval {
                    log_rows,
                    state: rels.state.clone(),
                    range: rels.range.clone(),
                    ops: Some(rels.ops.clone()),
                },
                sum,
            )),
            Self::Trade => Box::new(Trade::new(
                alloc,
                TradeEval {
                    log_rows,
                    state: rels.state.clone(),
                    range: rels.range.clone(),
                    ops: Some((rels.ops.clone(), rels.instrument.clone())),
                },
                sum,
            )),
            Self::StateLeaf => Box::new(StateLeaf::new(
                alloc,
                StateLeafEval {
                    log_rows,
                    state: rels.state.clone(),
                    range: rels.range.clone(),
                    node: rels.node.clone(),
                    perm: rels.perm.clone(),
                },
                sum,
            )),
            Self::StateNode => Box::new(StateNode::new(
                alloc,
                StateNodeEval {
                    log_rows,
                    node: rels.node.clone(),
                    perm: rels.perm.clone(),
                },
                sum,
            )),
            Self::Chip => Box::new(Poseidon2Chip::new(
                alloc,
                Poseidon2ChipEval {
                    log_rows,
                    relation: rels.perm.clone(),
                },
                sum,
            )),
            Self::Settle => Box::new(Settle::new(
                alloc,
                SettleEval {
                    log_rows,
                    state: rels.state.clone(),
                    range: rels.range.clone(),
                    ops: rels.ops.clone(),
                    terms: rels.settle_terms.clone(),
                    chain: rels.chain.clone(),
                },
                sum,
            )),
            Self::Holder => Box::new(Holder::new(
                alloc,
                HolderEval {
                    log_rows,
                    state: rels.state.clone(),
                    range: rels.range.clone(),
                    chain: rels.chain.clone(),
                },
                sum,
            )),
        }
    }
}

/// A component as the build needs it: the prover's view where the prover is built (stwo's
/// prover takes `ComponentProver`s, its verifier plain `Component`s), the verifier's otherwise.
#[cfg(feature = "prover")]
pub(crate) trait AirComponent:
    stwo::prover::ComponentProver<stwo::prover::backend::simd::SimdBackend>
{
}
#[cfg(feature = "prover")]
impl<T: stwo::prover::ComponentProver<stwo::prover::backend::simd::SimdBackend>> AirComponent
    for T
{
}
#[cfg(not(feature = "prover"))]
pub(crate) trait AirComponent: Component {}
#[cfg(not(feature = "prover"))]
impl<T: Component> AirComponent for T {}

/// The components of one statement, in commitment order.
pub(crate) struct Components(Vec<Box<dyn AirComponent>>);

impl Components {
    pub(crate) fn new(
        s: &ValidityStatement,
        rels: &ValidityRelations,
        sums: &[SecureField; N_COMPONENTS],
    ) -> Self {
        let alloc = &mut TraceLocationAllocator::default();
        Self(
            ComponentId::ALL
                .iter()
                .zip(sums)
                .map(|(id, &sum)| id.build(alloc, s, rels, sum))
                .collect(),
        )
    }

    pub(crate) fn as_components(&self) -> Vec<&dyn Component> {
        self.0
            .iter()
            .map(|c| c.as_ref() as &dyn Component)
            .collect()
    }

    #[cfg(feature = "prover")]
    pub(crate) fn as_provers(
        &self,
    ) -> Vec<&dyn stwo::prover::ComponentProver<stwo::prover::backend::simd::SimdBackend>> {
        self.0
            .iter()
            .map(|c| c.as_ref() as &dyn stwo::prover::ComponentProver<_>)
            .collect()
    }

    /// The largest component, log2 rows (the prover's twiddle domain).
    #[cfg(feature = "prover")]
    pub(crate) fn max_log_rows(s: &ValidityStatement) -> u32 {
        ComponentId::ALL
            .iter()
            .map(|id| id.log_rows(s))
            .max()
            .expect("components")
    }
}
