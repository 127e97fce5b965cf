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
//!
//! AIR v3 ([`FixedRangeTableEval`], `specs/batch-air.md` §6) drops the second relation: the
//! values are a preprocessed column, committed in the proof's first tree, whose root the
//! verifier compares with the one pinned here per channel and blowup
//! ([`pinned_table_root`]). A recursive verifier can check a pinned root; it cannot afford
//! 2^16 inversions.

use num_traits::One;
use stwo::core::fields::qm31::SecureField;
use stwo::core::fields::FieldExpOps;
use stwo_constraint_framework::preprocessed_columns::PreProcessedColumnId;
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

/// The preprocessed column holding `0 .. 2^16` (AIR v3).
pub fn table_column_id() -> PreProcessedColumnId {
    PreProcessedColumnId {
        id: "poe/range16".into(),
    }
}

/// The AIR v3 table: the values are the preprocessed column [`table_column_id`], the main
/// trace holds only `uses`. Each row yields `Range16(value)` with multiplicity `uses`.
#[derive(Debug, Clone)]
pub struct FixedRangeTableEval {
    /// The challenges (only `range` is used).
    pub relations: RangeRelations,
}

impl FrameworkEval for FixedRangeTableEval {
    fn log_size(&self) -> u32 {
        LOG_RANGE
    }

    fn max_constraint_log_degree_bound(&self) -> u32 {
        LOG_RANGE + 1
    }

    fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
        let value = eval.get_preprocessed_column(table_column_id());
        let uses = eval.next_trace_mask();
        eval.add_to_relation(RelationEntry::new(
            &self.relations.range,
            E::EF::from(uses),
            &[value],
        ));
        eval.finalize_logup();
        eval
    }
}

/// The Merkle root of the v3 preprocessed tree (the column `0 .. 2^16` alone), as
/// [`crate::proof::PoeChannel::hash_words`] spells it, for each channel and `log_blowup`
/// 1..=4 (log blowup 5, which `SecurityConfig` allows for the final node of the day's tree,
/// has no pinned table: batch validity v3 refuses it). The tree depends on nothing else: no
/// challenge, no statement. `pinned_roots_are_the_committed_tables` recomputes every entry.
pub fn pinned_table_root(channel: crate::proof::ChannelId, log_blowup: u32) -> Option<[u32; 8]> {
    let roots = match channel {
        crate::proof::ChannelId::Blake2s => &PINNED_BLAKE2S,
        crate::proof::ChannelId::Poseidon2 => &PINNED_POSEIDON2,
    };
    roots.get(log_blowup.checked_sub(1)? as usize).copied()
}

const PINNED_BLAKE2S: [[u32; 8]; 4] = [
    [
        0xfdd161c9, 0x2f6f3483, 0xa63cfe86, 0xfa17559b, 0xd78bf546, 0x5e6123ee, 0xf68f5cdf,
        0x922eacbb,
    ],
    [
        0xac8a93f7, 0x3faeb2b4, 0xc7b47bac, 0x26257d17, 0x1837821f, 0xba1c6a0f, 0x5b3457fc,
        0xb00fa13f,
    ],
    [
        0x9e045fc5, 0x836e168b, 0xd7012eae, 0x86439ac2, 0xd77f9a6b, 0x4532728d, 0x7dd4dbfe,
        0x9ee9e443,
    ],
    [
        0x99158268, 0x2d8f6e3f, 0x899b2bbc, 0xe6d85fb7, 0x7562c7df, 0x5272ff06, 0x2f1e53c6,
        0x2a4fe5e7,
    ],
];
const PINNED_POSEIDON2: [[u32; 8]; 4] = [
    [
        0x7abc0d54, 0x42a9be51, 0x6ddef9a1, 0x7cddb158, 0x31d4f46e, 0x6917b4ed, 0x5c59448a,
        0x5d11367e,
    ],
    [
        0x535e26a0, 0x7d769862, 0x519ba322, 0x5af103d3, 0x7bbb6c36, 0x71bc2bda, 0x4d3f5767,
        0x0a67d84a,
    ],
    [
        0x707c67b4, 0x300a85c5, 0x6fb51515, 0x39f94e40, 0x0e9f0e82, 0x77854c11, 0x257387f4,
        0x667c532b,
    ],
    [
        0x13e3aba1, 0x6be88d89, 0x4435b5f1, 0x50f8ce62, 0x59dff261, 0x6ea26927, 0x3fa6c4f9,
        0x3425f389,
    ],
];

/// The v3 preprocessed column, `value = row`.
#[cfg(feature = "prover")]
pub fn table_values() -> stwo::prover::backend::simd::column::BaseColumn {
    (0..1u32 << LOG_RANGE)
        .map(M31::from_u32_unchecked)
        .collect()
}

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

/// Commits the v3 preprocessed tree under `MC` at `log_blowup`, as the prover does, and
/// returns its root.
#[cfg(all(test, feature = "prover"))]
pub(crate) fn committed_table_root<MC: crate::proof::PoeChannel>(log_blowup: u32) -> [u32; 8]
where
    stwo::prover::backend::simd::SimdBackend: stwo::prover::backend::BackendForChannel<MC>,
{
    use stwo::core::poly::circle::CanonicCoset;
    use stwo::prover::backend::simd::SimdBackend;
    use stwo::prover::poly::circle::PolyOps;
    use stwo::prover::CommitmentSchemeProver;
    let config = crate::config::SecurityConfig::new(log_blowup, 1, 0)
        .expect("log_blowup in range")
        .pcs_config();
    let twiddles = SimdBackend::precompute_twiddles(
        CanonicCoset::new(LOG_RANGE + 1 + log_blowup)
            .circle_domain()
            .half_coset,
    );
    let mut scheme = CommitmentSchemeProver::<SimdBackend, MC>::new(config, &twiddles);
    let mut tree = scheme.tree_builder();
    tree.extend_evals(crate::data_root::prove::evaluations(
        LOG_RANGE,
        vec![table_values()],
    ));
    tree.commit(&mut MC::C::default());
    MC::hash_words(&scheme.roots()[0])
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
    fn pinned_roots_are_the_committed_tables() {
        use crate::hash::channel::Poseidon2MerkleChannel;
        use crate::proof::ChannelId;
        use stwo::core::vcs_lifted::blake2_merkle::Blake2sMerkleChannel;
        let blake: Vec<[u32; 8]> = (1..=4)
            .map(committed_table_root::<Blake2sMerkleChannel>)
            .collect();
        let poseidon: Vec<[u32; 8]> = (1..=4)
            .map(committed_table_root::<Poseidon2MerkleChannel>)
            .collect();
        let rust = |name: &str, roots: &[[u32; 8]]| {
            let rows: Vec<String> = roots
                .iter()
                .map(|r| {
                    let words: Vec<String> = r.iter().map(|w| format!("0x{w:08x}")).collect();
                    format!("    [{}],", words.join(", "))
                })
                .collect();
            format!("const {name}: [[u32; 8]; 4] = [\n{}\n];", rows.join("\n"))
        };
        let pinned = |c| {
            (1..=4)
                .map(|b| pinned_table_root(c, b).unwrap())
                .collect::<Vec<_>>()
        };
        // On a change of the commitment (stwo, the hash, the column), the message is the new
        // constants, to be reviewed: every v3 proof made before stops verifying.
        assert!(
            pinned(ChannelId::Blake2s) == blake && pinned(ChannelId::Poseidon2) == poseidon,
            "the committed tables differ from the pinned roots:\n{}\n{}",
            rust("PINNED_BLAKE2S", &blake),
            rust("PINNED_POSEIDON2", &poseidon)
        );
        assert_eq!(pinned_table_root(ChannelId::Blake2s, 0), None);
        assert_eq!(pinned_table_root(ChannelId::Blake2s, 5), None);
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
