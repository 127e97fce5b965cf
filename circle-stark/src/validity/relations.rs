//! The LogUp relations of the batch-validity AIR, drawn together after the main trace.

#[cfg(feature = "prover")]
use stwo::core::fields::qm31::SecureField;
#[cfg(feature = "prover")]
use stwo_constraint_framework::Relation;

use crate::data_root::{MerkleNodeRelation, OpRelation};
#[cfg(feature = "prover")]
use crate::field::M31;
use crate::hash::chip::Poseidon2Io;
use crate::validity::instruments::{InstrumentRel, InstrumentTableRel};
use crate::validity::memory::StateRel;
use crate::validity::range::RangeRelations;
use crate::validity::settle::{SettleChainRel, SettleTermsRel};
use crate::validity::state_tree::StateNodeRel;
#[cfg(feature = "prover")]
use crate::validity::trade::Lookup;

/// The relations of the proof, drawn together after the main trace.
#[derive(Debug, Clone)]
pub struct ValidityRelations {
    /// Range checks.
    pub range: RangeRelations,
    /// The data tree.
    pub merkle: MerkleNodeRelation,
    /// Operation records.
    pub ops: OpRelation,
    /// State accesses.
    pub state: StateRel,
    /// Trade rows ↔ instrument table.
    pub instrument: InstrumentRel,
    /// Instrument table ↔ verifier.
    pub instrument_table: InstrumentTableRel,
    /// The state tree's nodes.
    pub node: StateNodeRel,
    /// The Poseidon2 chip.
    pub perm: Poseidon2Io,
    /// Settlement rows ↔ instrument table.
    pub settle_terms: SettleTermsRel,
    /// Settlement header ↔ holder rows.
    pub chain: SettleChainRel,
    /// The input component's sponge chain (AIR v3). Drawn last: a draw before a mix leaves
    /// the transcript's state after the mix unchanged, so v2 proofs are unaffected.
    pub closure_chain: crate::validity::closure::ClosureChain,
}

impl ValidityRelations {
    /// Draws them in a fixed order.
    pub fn draw(channel: &mut impl stwo::core::channel::Channel) -> Self {
        Self {
            range: RangeRelations::draw(channel),
            merkle: MerkleNodeRelation::draw(channel),
            ops: OpRelation::draw(channel),
            state: StateRel::draw(channel),
            instrument: InstrumentRel::draw(channel),
            instrument_table: InstrumentTableRel::draw(channel),
            node: StateNodeRel::draw(channel),
            perm: Poseidon2Io::draw(channel),
            settle_terms: SettleTermsRel::draw(channel),
            chain: SettleChainRel::draw(channel),
            closure_chain: crate::validity::closure::ClosureChain::draw(channel),
        }
    }

    /// Challenges of no value, for column shapes only.
    pub fn dummy() -> Self {
        Self {
            range: RangeRelations {
                range: crate::validity::range::Range16::dummy(),
                table: crate::validity::range::Range16Table::dummy(),
            },
            merkle: MerkleNodeRelation::dummy(),
            ops: OpRelation::dummy(),
            state: StateRel::dummy(),
            instrument: InstrumentRel::dummy(),
            instrument_table: InstrumentTableRel::dummy(),
            node: StateNodeRel::dummy(),
            perm: Poseidon2Io::dummy(),
            settle_terms: SettleTermsRel::dummy(),
            chain: SettleChainRel::dummy(),
            closure_chain: crate::validity::closure::ClosureChain::dummy(),
        }
    }

    /// The LogUp fraction `(numerator, denominator)` of a witnessed entry.
    #[cfg(feature = "prover")]
    pub fn fraction(&self, lookup: &Lookup) -> (SecureField, SecureField) {
        let one = SecureField::from(M31::from_u32_unchecked(1));
        match lookup {
            Lookup::Range(v) => (-one, self.range.range.combine(&[*v])),
            Lookup::Read(v) => (-one, self.state.combine(v)),
            Lookup::Write(v) => (one, self.state.combine(v)),
            Lookup::Op(v) => (-one, self.ops.combine(v)),
            Lookup::Instrument(v) => (-one, self.instrument.combine(v)),
            Lookup::NodeYield(v) => (one, self.node.combine(v)),
            Lookup::NodeUse(v) => (-one, self.node.combine(v)),
            Lookup::Perm(v) => (-one, self.perm.combine(v)),
            Lookup::Chip(v) => (one, self.perm.combine(v)),
            Lookup::SettleTerms(v) => (-one, self.settle_terms.combine(v)),
            Lookup::ChainYield(v) => (one, self.chain.combine(v)),
            Lookup::ChainUse(v) => (-one, self.chain.combine(v)),
            Lookup::Closure {
                relation,
                mult,
                values,
            } => {
                use crate::validity::closure::ClosureRelation;
                let d = match relation {
                    ClosureRelation::Merkle => self.merkle.combine(values),
                    ClosureRelation::InstrumentTable => self.instrument_table.combine(values),
                    ClosureRelation::StateNode => self.node.combine(values),
                };
                (SecureField::from(*mult), d)
            }
            Lookup::ClosureChainUse(v) => (-one, self.closure_chain.combine(v)),
            Lookup::ClosureChainYield(v) => (one, self.closure_chain.combine(v)),
            Lookup::Nothing => (SecureField::from(M31::from_u32_unchecked(0)), one),
        }
    }
}
