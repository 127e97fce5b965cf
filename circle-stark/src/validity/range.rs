//! 16-bit range checks by lookup (`specs/batch-air.md` §4.2).
//!
//! The table is a main-trace component of 2^16 rows `(value, uses)`. It *yields*
//! `Range16(value)` with multiplicity `uses`, which users *consume* once per limb they claim is
//! below 2^16. So that the table cannot hold other values, each row also consumes
//! `Range16Table(value)` once, and the verifier closes that relation itself with
//! `+Σ_{v < 2^16} 1 / c(v)` (so the components must total its negation) — 2^16 inversions, a few milliseconds — instead of trusting a
//! preprocessed commitment. With independent challenges for the two relations, the sums can
//! only balance if the table's values are exactly `0 .. 2^16` and every consumed limb is one
//! of them.

use num_traits::One;
use stwo::core::fields::qm31::SecureField;
use stwo::core::fields::FieldExpOps;
use stwo_constraint_framework::{
    relation, EvalAtRow, FrameworkComponent, FrameworkEval, Relation, RelationEntry,
};

use crate::field::M31;

relation!(Range16, 1);
relation!(Range16Table, 1);

/// log2 of the table size.
pub const LOG_RANGE: u32 = 16;

/// The challenges of both relations, drawn together after the main trace.
#[derive(Debug, Clone)]
pub struct RangeRelations {
    /// Users ↔ table.
    pub range: Range16,
    /// Table ↔ verifier.
    pub table: Range16Table,
}

impl RangeRelations {
    /// Draws both.
    pub fn draw(channel: &mut impl stwo::core::channel::Channel) -> Self {
        Self {
            range: Range16::draw(channel),
            table: Range16Table::draw(channel),
        }
    }

    /// What the components' LogUp sums must add up to: the table consumes each value once, so
    /// with the verifier yielding `Σ_{v < 2^16} 1 / c_table(v)` from outside, the components
    /// must total its negation.
    pub fn expected_component_sum(&self) -> SecureField {
        let denoms: Vec<SecureField> = (0..1u32 << LOG_RANGE)
            .map(|v| self.table.combine(&[M31::from_u32_unchecked(v)]))
            .collect();
        -SecureField::batch_inverse(&denoms)
            .into_iter()
            .sum::<SecureField>()
    }
}

/// The table component: columns `value, uses`.
#[derive(Debug, Clone)]
pub struct RangeTableEval {
    /// The challenges.
    pub relations: RangeRelations,
}

impl FrameworkEval for RangeTableEval {
    fn log_size(&self) -> u32 {
        LOG_RANGE
    }

    fn max_constraint_log_degree_bound(&self) -> u32 {
        LOG_RANGE + 1
    }

    fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
        let value = eval.next_trace_mask();
        let uses = eval.next_trace_mask();
        eval.add_to_relation(RelationEntry::new(
            &self.relations.range,
            E::EF::from(uses),
            std::slice::from_ref(&value),
        ));
        eval.add_to_relation(RelationEntry::new(
            &self.relations.table,
            -E::EF::one(),
            &[value],
        ));
        eval.finalize_logup_in_pairs();
        eval
    }
}

/// The table component.
pub type RangeTable = FrameworkComponent<RangeTableEval>;

/// The table's columns for the given consumed limbs: `value = row`, `uses = count`. A limb
/// ≥ 2^16 (only a forged witness has one) is not in the table: its lookup stays unbalanced and
/// the verifier's LogUp check rejects the proof.
#[cfg(feature = "prover")]
pub fn table_columns(limbs: impl IntoIterator<Item = M31>) -> [Vec<M31>; 2] {
    let mut uses = vec![0u32; 1 << LOG_RANGE];
    for l in limbs {
        if let Some(u) = uses.get_mut(l.0 as usize) {
            *u += 1;
        }
    }
    [
        (0..1u32 << LOG_RANGE)
            .map(M31::from_u32_unchecked)
            .collect(),
        uses.into_iter().map(M31::from_u32_unchecked).collect(),
    ]
}

#[cfg(all(test, feature = "prover"))]
mod tests {
    use stwo::prover::backend::simd::column::BaseColumn;
    use stwo::prover::backend::simd::m31::LOG_N_LANES;
    use stwo::prover::backend::simd::qm31::PackedSecureField;
    use stwo_constraint_framework::LogupTraceGenerator;

    use super::*;
    use crate::harness::{evaluations, prove_and_verify, Air};

    /// A user that claims each of its 4 columns is below 2^16.
    #[derive(Debug, Clone)]
    struct UserEval {
        log_rows: u32,
        relations: RangeRelations,
    }

    impl FrameworkEval for UserEval {
        fn log_size(&self) -> u32 {
            self.log_rows
        }
        fn max_constraint_log_degree_bound(&self) -> u32 {
            self.log_rows + 1
        }
        fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
            for _ in 0..4 {
                let x = eval.next_trace_mask();
                eval.add_to_relation(RelationEntry::new(
                    &self.relations.range,
                    -E::EF::one(),
                    &[x],
                ));
            }
            eval.finalize_logup_in_pairs();
            eval
        }
    }

    const USER_LOG: u32 = 6;

    fn packed(col: &[M31], vec_row: usize) -> stwo::prover::backend::simd::m31::PackedBaseField {
        col.iter().copied().collect::<BaseColumn>().data[vec_row]
    }

    /// Proves a user of 4 × 64 limbs against the table; `edit` may corrupt the traces first.
    fn run(edit: impl Fn(&mut Vec<Vec<M31>>, &mut [Vec<M31>; 2])) -> Result<(), String> {
        let mut user: Vec<Vec<M31>> = (0..4)
            .map(|c| {
                (0..1u32 << USER_LOG)
                    .map(|r| M31::from_u32_unchecked((r * 977 + c * 40_000) % 65_536))
                    .collect()
            })
            .collect();
        let mut table = table_columns(user.iter().flatten().copied());
        edit(&mut user, &mut table);
        let (user_ref, table_ref) = (&user, &table);
        prove_and_verify(Air {
            main: vec![evaluations(LOG_RANGE, &table), evaluations(USER_LOG, &user)],
            max_log_rows: LOG_RANGE,
            draw: RangeRelations::draw,
            interaction: move |rel: &RangeRelations| {
                let mut t = LogupTraceGenerator::new(LOG_RANGE);
                let mut col = t.new_col();
                for vr in 0..1 << (LOG_RANGE - LOG_N_LANES) {
                    let v = packed(&table_ref[0], vr);
                    let d_range: PackedSecureField = rel.range.combine(&[v]);
                    let d_table: PackedSecureField = rel.table.combine(&[v]);
                    let uses: PackedSecureField = packed(&table_ref[1], vr).into();
                    col.write_frac(vr, uses * d_table - d_range, d_range * d_table);
                }
                col.finalize_col();
                let mut u = LogupTraceGenerator::new(USER_LOG);
                for pair in [[0, 1], [2, 3]] {
                    let mut col = u.new_col();
                    for vr in 0..1 << (USER_LOG - LOG_N_LANES) {
                        let d0: PackedSecureField =
                            rel.range.combine(&[packed(&user_ref[pair[0]], vr)]);
                        let d1: PackedSecureField =
                            rel.range.combine(&[packed(&user_ref[pair[1]], vr)]);
                        col.write_frac(vr, -(d0 + d1), d0 * d1);
                    }
                    col.finalize_col();
                }
                vec![t.finalize_last(), u.finalize_last()]
            },
            components:
                |rel: &RangeRelations,
                 sums: &[SecureField],
                 alloc: &mut stwo_constraint_framework::TraceLocationAllocator| {
                    vec![
                        Box::new(RangeTable::new(
                            alloc,
                            RangeTableEval {
                                relations: rel.clone(),
                            },
                            sums[0],
                        )) as Box<_>,
                        Box::new(FrameworkComponent::new(
                            alloc,
                            UserEval {
                                log_rows: USER_LOG,
                                relations: rel.clone(),
                            },
                            sums[1],
                        )),
                    ]
                },
            expected_total: |rel: &RangeRelations| rel.expected_component_sum(),
        })
    }

    #[test]
    fn limbs_below_2_16_verify() {
        run(|_, _| {}).unwrap();
    }

    #[test]
    fn limb_of_2_16_is_rejected() {
        // The user claims 65,536; the table offers it only if a row holds it, which breaks the
        // table's own closure.
        let err = run(|user, table| {
            let old = user[2][9];
            user[2][9] = M31::from_u32_unchecked(1 << 16);
            table[1][old.0 as usize] -= M31::from_u32_unchecked(1);
        })
        .unwrap_err();
        assert_eq!(err, "logup total");
    }

    #[test]
    fn table_row_rewritten_to_an_out_of_range_value_is_rejected() {
        let err = run(|user, table| {
            // Row 5 now offers 70,000 (used once by the user) instead of 5.
            let old = user[0][0];
            user[0][0] = M31::from_u32_unchecked(70_000);
            table[1][old.0 as usize] -= M31::from_u32_unchecked(1);
            table[0][5] = M31::from_u32_unchecked(70_000);
            table[1][5] = M31::from_u32_unchecked(1);
        })
        .unwrap_err();
        assert_eq!(err, "logup total");
    }

    #[test]
    fn negative_value_wrapping_to_a_large_field_element_is_rejected() {
        // p − 1 (i.e. −1) is not below 2^16.
        let err = run(|user, table| {
            let old = user[1][3];
            user[1][3] = M31::from_u32_unchecked((1 << 31) - 2);
            table[1][old.0 as usize] -= M31::from_u32_unchecked(1);
        })
        .unwrap_err();
        assert_eq!(err, "logup total");
    }
}
