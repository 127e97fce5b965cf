//! Exact products of u64s in the batch AIR (`specs/batch-air.md` §4.4): `a · b = c` with
//! `c < 2^63`, for notionals (`qty · price`), collateral (`lots · collateral`) and payoffs.
//!
//! Two 16-bit limbs multiply to 32 bits, above p = 2^31 − 1, so the factors are split into
//! bytes: each 16-bit limb is `lo + 256·hi` with both bytes range-checked (`byte · 2^8 <
//! 2^16`). The schoolbook product is summed in radix 2^16 columns: column `m` gathers the byte
//! products of positions `2m` and `2m + 1` (weights 1 and 256), at most 2^27, plus the incoming
//! carry; the constraint is `T_m + carry_{m−1} = c_m + 2^16 · carry_m` with `c_m = 0` above
//! the fourth limb and no carry out of the last column. Carries are range-checked below 2^14
//! (`carry · 4 < 2^16`) and `c` as a u64 below 2^63, so every term is far below p and each
//! column equation holds over the integers, not just mod p: the product is exact, and one
//! that reaches 2^63 has no satisfying trace.

use stwo_constraint_framework::{EvalAtRow, RelationEntry};

use crate::field::M31;
use crate::gadgets::eval_range_u63;
use crate::range::RangeRelations;

/// Carry columns: one per radix-2^16 column but the last.
pub const MUL_CARRIES: usize = 7;

/// Columns of one product besides its three u64s: bytes of `a`, bytes of `b`, carries.
pub const MUL_COLUMNS: usize = 8 + 8 + MUL_CARRIES;

/// Bits of a carry (checked as `carry · 2^(16 − CARRY_BITS) < 2^16`).
pub const CARRY_BITS: u32 = 14;

/// The cells of one product, in column order.
#[derive(Debug, Clone)]
pub struct MulCells<F> {
    /// Bytes of `a`, least significant first.
    pub a_bytes: [F; 8],
    /// Bytes of `b`.
    pub b_bytes: [F; 8],
    /// Carries between radix-2^16 columns.
    pub carries: [F; MUL_CARRIES],
}

impl<F: Clone> MulCells<F> {
    /// Reads the cells from the next columns.
    pub fn read<E: EvalAtRow<F = F>>(eval: &mut E) -> Self {
        Self {
            a_bytes: std::array::from_fn(|_| eval.next_trace_mask()),
            b_bytes: std::array::from_fn(|_| eval.next_trace_mask()),
            carries: std::array::from_fn(|_| eval.next_trace_mask()),
        }
    }
}

/// Constrains `a · b = c` over the integers with `c < 2^63`, where `a`, `b`, `c` are u64s as
/// four 16-bit limbs. Range-checks the bytes (which bounds `a` and `b` limbs too), the carries
/// and `c`. Lookups are weighted by `enabled`; the algebraic constraints hold on all-zero
/// padding rows by themselves.
pub fn eval_mul_u63<E: EvalAtRow>(
    eval: &mut E,
    range: &RangeRelations,
    enabled: &E::F,
    a: &[E::F; 4],
    b: &[E::F; 4],
    c: &[E::F; 4],
    cells: MulCells<E::F>,
) {
    let b256 = M31::from_u32_unchecked(256);
    let b16 = M31::from_u32_unchecked(1 << 16);
    let MulCells {
        a_bytes,
        b_bytes,
        carries,
    } = cells;
    for j in 0..4 {
        eval.add_constraint(
            a[j].clone() - a_bytes[2 * j].clone() - a_bytes[2 * j + 1].clone() * b256,
        );
        eval.add_constraint(
            b[j].clone() - b_bytes[2 * j].clone() - b_bytes[2 * j + 1].clone() * b256,
        );
    }
    for m in 0..8usize {
        let mut lhs: Option<E::F> = None;
        for (k, weight) in [(2 * m, None), (2 * m + 1, Some(b256))] {
            for i in k.saturating_sub(7)..=k.min(7) {
                let mut term = a_bytes[i].clone() * b_bytes[k - i].clone();
                if let Some(w) = weight {
                    term = term * w;
                }
                lhs = Some(match lhs {
                    Some(l) => l + term,
                    None => term,
                });
            }
        }
        let mut lhs = lhs.expect("every column has a product");
        if m > 0 {
            lhs += carries[m - 1].clone();
        }
        if m < 4 {
            lhs = lhs - c[m].clone();
        }
        if m < MUL_CARRIES {
            lhs = lhs - carries[m].clone() * b16;
        }
        eval.add_constraint(lhs);
    }
    let neg = -E::EF::from(enabled.clone());
    for byte in a_bytes.iter().chain(&b_bytes) {
        let shifted = byte.clone() * b256;
        eval.add_to_relation(RelationEntry::new(&range.range, neg.clone(), &[shifted]));
    }
    eval_range_u63(eval, range, enabled, c);
    let shift = M31::from_u32_unchecked(1 << (16 - CARRY_BITS));
    for carry in carries {
        eval.add_to_relation(RelationEntry::new(
            &range.range,
            neg.clone(),
            &[carry * shift],
        ));
    }
}

/// The witness of one product, as the trace holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MulWitness {
    /// Bytes of `a`.
    pub a_bytes: [u32; 8],
    /// Bytes of `b`.
    pub b_bytes: [u32; 8],
    /// Carries (canonical field values).
    pub carries: [u32; MUL_CARRIES],
    /// The product's 16-bit limbs.
    pub c: [u32; 4],
}

fn bytes(v: u64) -> [u32; 8] {
    std::array::from_fn(|i| ((v >> (8 * i)) & 0xff) as u32)
}

impl MulWitness {
    /// The honest witness of `a · b`; `None` if the product reaches 2^63 (the venue's
    /// `Overflow`: no witness exists).
    pub fn new(a: u64, b: u64) -> Option<Self> {
        let c = u128::from(a) * u128::from(b);
        if c >= 1 << 63 {
            return None;
        }
        let w = Self::claiming(a, b, c as u64);
        debug_assert!(w.carries.iter().all(|&k| k < 1 << CARRY_BITS));
        Some(w)
    }

    /// The witness of the claim `a · b = c` with every carry solved from its column equation
    /// over the field, true or not: what a cheating prover would commit (tests use it; the
    /// carries of a false claim come out out of range or the last column fails).
    pub fn claiming(a: u64, b: u64, c: u64) -> Self {
        Self::from_parts(bytes(a), bytes(b), c)
    }

    /// The witness of given byte decompositions and claimed product, carries solved over the
    /// field.
    pub fn from_parts(a_bytes: [u32; 8], b_bytes: [u32; 8], c: u64) -> Self {
        let c_limbs: [u32; 4] = std::array::from_fn(|i| ((c >> (16 * i)) & 0xffff) as u32);
        let inv16 = M31::from_u32_unchecked(1 << 16).inverse();
        let mut carries = [0u32; MUL_CARRIES];
        let mut carry = M31::from_u32_unchecked(0);
        for (m, slot) in carries.iter_mut().enumerate() {
            let mut t = 0u64;
            for (k, w) in [(2 * m, 1u64), (2 * m + 1, 256)] {
                for i in k.saturating_sub(7)..=k.min(7) {
                    t += u64::from(a_bytes[i]) * u64::from(b_bytes[k - i]) * w;
                }
            }
            let t = crate::field::m31_reduce(t);
            let c_m = if m < 4 { c_limbs[m] } else { 0 };
            carry = (t + carry - M31::from_u32_unchecked(c_m)) * inv16;
            *slot = carry.0;
        }
        Self {
            a_bytes,
            b_bytes,
            carries,
            c: c_limbs,
        }
    }

    /// The cells in column order (bytes of `a`, bytes of `b`, carries).
    pub fn cells(&self) -> impl Iterator<Item = u32> + '_ {
        self.a_bytes
            .iter()
            .chain(&self.b_bytes)
            .chain(&self.carries)
            .copied()
    }

    /// The values consumed from `Range16`, in the order [`eval_mul_u63`] consumes them (a value
    /// of 2^16 or more means the claim has no valid trace).
    pub fn range_lookups(&self) -> Vec<u64> {
        let mut out: Vec<u64> = self
            .a_bytes
            .iter()
            .chain(&self.b_bytes)
            .map(|&x| u64::from(x) * 256)
            .collect();
        out.extend(self.c.iter().map(|&l| u64::from(l)));
        out.push(u64::from(self.c[3]) * 2);
        out.extend(
            self.carries
                .iter()
                .map(|&k| u64::from(k) << (16 - CARRY_BITS)),
        );
        out
    }
}

#[cfg(all(test, feature = "prover"))]
mod tests {
    use stwo::core::fields::qm31::SecureField;
    use stwo_constraint_framework::{
        FrameworkComponent, FrameworkEval, Relation, TraceLocationAllocator,
    };

    use super::*;
    use crate::harness::{evaluations, logup_columns, prove_and_verify, Air};
    use crate::range::{RangeTable, RangeTableEval, LOG_RANGE};

    const LOG: u32 = 4;

    /// Test component: `enabled, a[4], b[4], c[4]`, then the product's cells.
    #[derive(Clone)]
    struct MulEval {
        range: RangeRelations,
    }

    impl FrameworkEval for MulEval {
        fn log_size(&self) -> u32 {
            LOG
        }
        fn max_constraint_log_degree_bound(&self) -> u32 {
            LOG + 1
        }
        fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
            let enabled = eval.next_trace_mask();
            let a: [E::F; 4] = std::array::from_fn(|_| eval.next_trace_mask());
            let b: [E::F; 4] = std::array::from_fn(|_| eval.next_trace_mask());
            let c: [E::F; 4] = std::array::from_fn(|_| eval.next_trace_mask());
            let cells = MulCells::read(&mut eval);
            eval.add_constraint(enabled.clone() * enabled.clone() - enabled.clone());
            eval_mul_u63(&mut eval, &self.range, &enabled, &a, &b, &c, cells);
            eval.finalize_logup_in_pairs();
            eval
        }
    }

    fn m(v: u32) -> M31 {
        M31::from_u32_unchecked(v)
    }

    fn limbs(v: u64) -> [u32; 4] {
        std::array::from_fn(|i| ((v >> (16 * i)) & 0xffff) as u32)
    }

    /// A row: the factors' limbs and the witness (tests may forge either).
    #[derive(Clone)]
    struct Row {
        a: [u32; 4],
        b: [u32; 4],
        w: MulWitness,
    }

    fn honest(a: u64, b: u64) -> Row {
        Row {
            a: limbs(a),
            b: limbs(b),
            w: MulWitness::new(a, b).expect("below 2^63"),
        }
    }

    fn rows() -> Vec<Row> {
        let mut out = vec![
            honest(0, u64::MAX >> 1),
            honest((1 << 63) - 1, 1),
            honest(1 << 31, 1 << 31),
            honest(3_037_000_499, 3_037_000_499), // ⌊√(2^63)⌋²
            honest(0xffff_ffff, 0x7fff_ffff),
            honest(12_345_678, 987_654_321),
        ];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        while out.len() < 12 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let a = x >> (33 + out.len() as u32);
            let b = (x & 0xffff_ffff) >> 3;
            out.push(honest(a, b));
        }
        out
    }

    fn run(rows: &[Row]) -> Result<(), String> {
        let n = 1usize << LOG;
        let width = 1 + 12 + MUL_COLUMNS;
        let mut cols = vec![vec![m(0); n]; width];
        let mut uses = vec![0u32; 1 << LOG_RANGE];
        let mut lookups: Vec<Vec<u64>> = Vec::new();
        for (r, row) in rows.iter().enumerate() {
            let vals: Vec<u32> = [1]
                .into_iter()
                .chain(row.a)
                .chain(row.b)
                .chain(row.w.c)
                .chain(row.w.cells())
                .collect();
            for (c, v) in vals.into_iter().enumerate() {
                cols[c][r] = m(v);
            }
            let l = row.w.range_lookups();
            for &v in &l {
                if v < 1 << LOG_RANGE {
                    uses[v as usize] += 1;
                }
            }
            lookups.push(l);
        }
        let table = [
            (0..1u32 << LOG_RANGE).map(m).collect::<Vec<_>>(),
            uses.into_iter().map(m).collect(),
        ];
        let n_lookups = MulWitness::new(1, 1).unwrap().range_lookups().len();
        prove_and_verify(Air {
            main: vec![evaluations(LOG_RANGE, &table), evaluations(LOG, &cols)],
            max_log_rows: LOG_RANGE,
            draw: RangeRelations::draw,
            interaction: |rel: &RangeRelations| {
                let table_col = logup_columns(LOG_RANGE, |r| {
                    let v = m(r as u32);
                    vec![
                        (table[1][r].into(), rel.range.combine(&[v])),
                        (-SecureField::from(m(1)), rel.table.combine(&[v])),
                    ]
                });
                let mul_cols = logup_columns(LOG, |r| {
                    let (num, vals) = match lookups.get(r) {
                        Some(l) => (-SecureField::from(m(1)), l.clone()),
                        None => (SecureField::from(m(0)), vec![0; n_lookups]),
                    };
                    vals.iter()
                        .map(|&v| {
                            let v = crate::field::m31_reduce(v);
                            (num, rel.range.combine(&[v]))
                        })
                        .collect()
                });
                vec![table_col, mul_cols]
            },
            components: |rel: &RangeRelations,
                         sums: &[SecureField],
                         alloc: &mut TraceLocationAllocator| {
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
                        MulEval { range: rel.clone() },
                        sums[1],
                    )),
                ]
            },
            expected_total: RangeRelations::expected_component_sum,
        })
    }

    #[test]
    fn products_below_2_63_verify() {
        run(&rows()).unwrap();
    }

    #[test]
    fn product_off_by_one_is_rejected() {
        let mut rows = rows();
        let (a, b) = (12_345_678u64, 987_654_321u64);
        rows[5].w = MulWitness::claiming(a, b, a * b + 1);
        // a·b ≢ c (mod p): the column equations have no solution even over the field.
        assert_eq!(run(&rows).unwrap_err(), "Constraints not satisfied.");
    }

    #[test]
    fn product_congruent_mod_p_is_rejected() {
        // The wrap-around attack: claim c = a·b − p. Over the field every column equation
        // then has a solution; only the carries' range checks can refuse it.
        let mut rows = rows();
        let (a, b) = (12_345_678u64, 987_654_321u64);
        let forged = a * b - u64::from(crate::field::P);
        let w = MulWitness::claiming(a, b, forged);
        assert!(w.carries.iter().any(|&k| k >= 1 << CARRY_BITS));
        rows[5].w = w;
        assert_eq!(run(&rows).unwrap_err(), "logup total");
    }

    #[test]
    fn product_reaching_2_63_is_rejected() {
        // 2^32 · 2^31 = 2^63: honest bytes and carries, but the product's top limb is 2^15.
        let mut rows = rows();
        let (a, b) = (1u64 << 32, 1u64 << 31);
        assert!(MulWitness::new(a, b).is_none());
        rows[0] = Row {
            a: limbs(a),
            b: limbs(b),
            w: MulWitness::claiming(a, b, a * b),
        };
        assert_eq!(run(&rows).unwrap_err(), "logup total");
    }

    #[test]
    fn product_wrapping_2_64_is_rejected() {
        // 2^40 · (2^24 + 3) = 2^64 + 3·2^40: claim the low 64 bits, as a u64 multiply would.
        let mut rows = rows();
        let (a, b) = (1u64 << 40, (1u64 << 24) + 3);
        let wrapped = a.wrapping_mul(b);
        assert_eq!(wrapped, 3 << 40);
        rows[1] = Row {
            a: limbs(a),
            b: limbs(b),
            w: MulWitness::claiming(a, b, wrapped),
        };
        // 2^64 ≡ 4 (mod p): no field solution either.
        assert_eq!(run(&rows).unwrap_err(), "Constraints not satisfied.");
    }

    #[test]
    fn factor_byte_of_256_is_rejected() {
        // The limb 0x0100 written as bytes (256, 0) instead of (0, 1): the same limb, a
        // different product column split — the byte range check refuses it.
        let mut rows = rows();
        let (a, b) = (0x0100u64, 0x0203u64);
        let mut forged = bytes(a);
        forged[0] = 256;
        forged[1] = 0;
        // Carries solved for the forged bytes: every column equation holds.
        let w = MulWitness::from_parts(forged, bytes(b), a * b);
        rows[2] = Row {
            a: limbs(a),
            b: limbs(b),
            w,
        };
        assert_eq!(run(&rows).unwrap_err(), "logup total");
    }
}
