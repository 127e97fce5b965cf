//! The batch-validity AIR's components, in commitment order: the one list that the prover's
//! main and interaction traces, proving and verifying all iterate. Adding a component is a
//! variant here, its arms below, and its own module.

use stwo::core::air::Component;
use stwo::core::fields::qm31::SecureField;
use stwo_constraint_framework::{FrameworkComponent, FrameworkEval, TraceLocationAllocator};

use super::cash::CashEval;
use super::instruments::InstrumentTableEval;
use super::range::{FixedRangeTableEval, RangeTableEval, LOG_RANGE};
use super::relations::ValidityRelations;
use super::settle::{HolderEval, SettleEval};
use super::state_tree::{StateLeafEval, StateNodeEval};
use super::statement::ValidityStatement;
use super::trade::TradeEval;
use super::ValidityAir;
use crate::data_root::{log_rows_for, LeafEval, NodeEval};
use crate::hash::chip::Poseidon2ChipEval;
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
    /// AIR v3 only: the closure terms, bound by a sponge chain (`closure`).
    Input,
}

/// Number of components of AIR v2, hence of its claimed LogUp sums (v3 has one more).
pub const N_COMPONENTS: usize = 11;

impl ComponentId {
    /// Every component in commitment order, which is also the order of the proof's claimed
    /// sums; v2 has all but the last ([`ComponentId::of`]).
    pub const ALL: [Self; 12] = [
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
        Self::Input,
    ];

    /// The components of `air`, in commitment order.
    pub fn of(air: ValidityAir) -> &'static [Self] {
        match air {
            ValidityAir::V2 => &Self::ALL[..N_COMPONENTS],
            ValidityAir::V3 | ValidityAir::V4 => &Self::ALL,
        }
    }

    /// Position in [`ComponentId::ALL`] (commitment order).
    pub fn index(self) -> usize {
        self as usize
    }

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
            Self::Input => "closure_input",
        }
    }

    /// log2 of the component's rows under `s`: its shape's where it states one.
    pub fn log_rows(self, s: &ValidityStatement) -> u32 {
        if let Some(shape) = &s.shape {
            return shape.log_rows(self);
        }
        self.natural_log_rows(s)
    }

    /// log2 of the rows `s`'s own witness needs (each component's power of two; the derived
    /// components' from the statement), whatever shape it states.
    pub fn natural_log_rows(self, s: &ValidityStatement) -> u32 {
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
            Self::Input => log_rows_for(super::closure::closure_terms(s).len()),
        }
    }

    /// Hands the component's constraint evaluator to `visitor`: the one place each
    /// component's evaluator is built, for the prover's and verifier's components
    /// ([`Components::new`]) and for the constraint compiler.
    pub(crate) fn eval_with<V: EvalVisitor>(
        self,
        air: ValidityAir,
        s: &ValidityStatement,
        rels: &ValidityRelations,
        visitor: V,
    ) -> V::Out {
        self.eval_sized(air, self.log_rows(s), rels, visitor)
    }

    /// [`ComponentId::eval_with`] at a given size: the evaluators depend on the statement only
    /// through it (what lets a shape be costed without a statement).
    pub(crate) fn eval_sized<V: EvalVisitor>(
        self,
        air: ValidityAir,
        log_rows: u32,
        rels: &ValidityRelations,
        visitor: V,
    ) -> V::Out {
        match self {
            Self::Range => match air {
                ValidityAir::V2 => visitor.visit(RangeTableEval {
                    relations: rels.range.clone(),
                }),
                ValidityAir::V3 | ValidityAir::V4 => visitor.visit(FixedRangeTableEval {
                    relations: rels.range.clone(),
                }),
            },
            Self::Instruments => visitor.visit(InstrumentTableEval {
                log_rows,
                instrument: rels.instrument.clone(),
                table: rels.instrument_table.clone(),
                settle: rels.settle_terms.clone(),
            }),
            Self::DataLeaf => visitor.visit(LeafEval {
                log_rows,
                record_limbs: OP_LIMBS,
                relation: rels.merkle.clone(),
                ops: Some(rels.ops.clone()),
            }),
            Self::DataNode => visitor.visit(NodeEval {
                log_rows,
                relation: rels.merkle.clone(),
                forest: true,
            }),
            Self::Cash => visitor.visit(CashEval {
                log_rows,
                state: rels.state.clone(),
                range: rels.range.clone(),
                ops: Some(rels.ops.clone()),
            }),
            Self::Trade => visitor.visit(TradeEval {
                log_rows,
                state: rels.state.clone(),
                range: rels.range.clone(),
                ops: Some((rels.ops.clone(), rels.instrument.clone())),
            }),
            Self::StateLeaf => visitor.visit(StateLeafEval {
                log_rows,
                windowed: air.windowed(),
                state: rels.state.clone(),
                range: rels.range.clone(),
                node: rels.node.clone(),
                perm: rels.perm.clone(),
            }),
            Self::StateNode => visitor.visit(StateNodeEval {
                log_rows,
                windowed: air.windowed(),
                node: rels.node.clone(),
                perm: rels.perm.clone(),
            }),
            Self::Chip => visitor.visit(Poseidon2ChipEval {
                log_rows,
                relation: rels.perm.clone(),
            }),
            Self::Settle => visitor.visit(SettleEval {
                log_rows,
                state: rels.state.clone(),
                range: rels.range.clone(),
                ops: rels.ops.clone(),
                terms: rels.settle_terms.clone(),
                chain: rels.chain.clone(),
            }),
            Self::Holder => visitor.visit(HolderEval {
                log_rows,
                state: rels.state.clone(),
                range: rels.range.clone(),
                chain: rels.chain.clone(),
            }),
            Self::Input => visitor.visit(super::closure::ClosureInputEval {
                log_rows,
                wide: air.windowed(),
                merkle: rels.merkle.clone(),
                instrument_table: rels.instrument_table.clone(),
                node: rels.node.clone(),
                perm: rels.perm.clone(),
                chain: rels.closure_chain.clone(),
            }),
        }
    }
}

/// Something done with a component's evaluator, whatever its type.
pub(crate) trait EvalVisitor {
    /// What it gives back.
    type Out;
    /// Does it.
    fn visit<E: FrameworkEval + Sync + 'static>(self, eval: E) -> Self::Out;
}

/// Builds the boxed stwo component.
struct Build<'a> {
    alloc: &'a mut TraceLocationAllocator,
    sum: SecureField,
}

impl EvalVisitor for Build<'_> {
    type Out = Box<dyn AirComponent>;
    fn visit<E: FrameworkEval + Sync + 'static>(self, eval: E) -> Box<dyn AirComponent> {
        Box::new(FrameworkComponent::new(self.alloc, eval, self.sum))
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
        air: ValidityAir,
        s: &ValidityStatement,
        rels: &ValidityRelations,
        sums: &[SecureField],
    ) -> Self {
        let alloc = &mut TraceLocationAllocator::default();
        let ids = ComponentId::of(air);
        assert_eq!(ids.len(), sums.len(), "one claimed sum per component");
        Self(
            ids.iter()
                .zip(sums)
                .map(|(id, &sum)| id.eval_with(air, s, rels, Build { alloc, sum }))
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
    pub(crate) fn max_log_rows(air: ValidityAir, s: &ValidityStatement) -> u32 {
        ComponentId::of(air)
            .iter()
            .map(|id| id.log_rows(s))
            .max()
            .expect("components")
    }
}
