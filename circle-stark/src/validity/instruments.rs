//! The instrument table of the batch AIR (`specs/batch-air.md` §5): binds each trade row's
//! collateral and expiry to the batch's public instrument list.
//!
//! One row per listed instrument: `enabled, id, expiry[4], collateral[4], uses, strike[4],
//! is_put, settle_uses`. A row *yields* `Instrument(id, expiry, collateral)` with multiplicity
//! `uses` (trade rows), `SettleTerms(id, expiry, collateral, strike, is_put)` with multiplicity
//! `settle_uses` (settlement rows), and *consumes* `InstrumentTable(id, expiry, collateral,
//! strike, is_put)` once if enabled; `uses · (1 − enabled) = 0` and the same for
//! `settle_uses`, so only enabled rows yield. The verifier closes `InstrumentTable` itself from the public list
//! (as the range table is closed, `range.rs`), so the enabled rows are exactly the listed
//! instruments, and a trade row can only consume terms that are listed. The auditor checks the
//! list against the batch's `instruments_root`.

use stwo::core::fields::qm31::SecureField;
use stwo::core::fields::FieldExpOps;
use stwo_constraint_framework::{
    relation, EvalAtRow, FrameworkComponent, FrameworkEval, Relation, RelationEntry,
};

use crate::encoding::u64_limbs;
use crate::field::M31;
use crate::venue::Instrument;

relation!(InstrumentRel, 9);
relation!(InstrumentTableRel, 14);

/// Columns of the table.
pub const INSTRUMENT_COLUMNS: usize = 17;

/// `id, expiry[4], collateral[4]`: the terms a trade row consumes.
pub fn terms(id: u32, instrument: &Instrument) -> [M31; 9] {
    let mut out = [M31::from_u32_unchecked(id); 9];
    out[1..5].copy_from_slice(&u64_limbs(instrument.expiry_us));
    out[5..9].copy_from_slice(&u64_limbs(instrument.collateral));
    out
}

/// `id, expiry[4], collateral[4], strike[4], is_put`: the terms a settlement row consumes, and
/// the row the verifier closes.
pub fn settle_terms(id: u32, instrument: &Instrument) -> [M31; 14] {
    let mut out = [M31::from_u32_unchecked(0); 14];
    out[..9].copy_from_slice(&terms(id, instrument));
    out[9..13].copy_from_slice(&u64_limbs(instrument.strike));
    out[13] = M31::from_u32_unchecked(instrument.kind as u32);
    out
}

/// What the table component must claim for `InstrumentTable`: `−Σ 1/c(terms)` over the
/// listed instruments (the verifier adds the opposite).
pub fn expected_table_sum(table: &InstrumentTableRel, instruments: &[Instrument]) -> SecureField {
    let denoms: Vec<SecureField> = instruments
        .iter()
        .enumerate()
        .map(|(i, inst)| table.combine(&settle_terms(i as u32, inst)))
        .collect();
    -SecureField::batch_inverse(&denoms)
        .into_iter()
        .sum::<SecureField>()
}

/// The table component.
#[derive(Debug, Clone)]
pub struct InstrumentTableEval {
    /// log2 of the row count.
    pub log_rows: u32,
    /// Trade rows ↔ table.
    pub instrument: InstrumentRel,
    /// Table ↔ verifier.
    pub table: InstrumentTableRel,
    /// Settlement rows ↔ table.
    pub settle: crate::validity::settle::SettleTermsRel,
}

impl FrameworkEval for InstrumentTableEval {
    fn log_size(&self) -> u32 {
        self.log_rows
    }

    fn max_constraint_log_degree_bound(&self) -> u32 {
        self.log_rows + 1
    }

    fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
        let enabled = eval.next_trace_mask();
        let values: Vec<E::F> = (0..9).map(|_| eval.next_trace_mask()).collect();
        let uses = eval.next_trace_mask();
        let mut full = values.clone();
        full.extend((0..5).map(|_| eval.next_trace_mask()));
        let settle_uses = eval.next_trace_mask();
        let one = E::F::from(M31::from_u32_unchecked(1));
        eval.add_constraint(enabled.clone() * enabled.clone() - enabled.clone());
        eval.add_constraint(uses.clone() * (one.clone() - enabled.clone()));
        eval.add_constraint(settle_uses.clone() * (one - enabled.clone()));
        eval.add_to_relation(RelationEntry::new(
            &self.instrument,
            E::EF::from(uses),
            &values,
        ));
        eval.add_to_relation(RelationEntry::new(
            &self.settle,
            E::EF::from(settle_uses),
            &full,
        ));
        eval.add_to_relation(RelationEntry::new(
            &self.table,
            -E::EF::from(enabled),
            &full,
        ));
        eval.finalize_logup_in_pairs();
        eval
    }
}

/// The table component.
pub type InstrumentTable = FrameworkComponent<InstrumentTableEval>;
