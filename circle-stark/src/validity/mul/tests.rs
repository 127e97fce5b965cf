use stwo::core::fields::qm31::SecureField;
use stwo_constraint_framework::{
    FrameworkComponent, FrameworkEval, Relation, TraceLocationAllocator,
};

use super::witness::bytes;
use super::*;
use crate::harness::{evaluations, logup_columns, prove_and_verify, Air};
use crate::validity::range::{RangeTable, RangeTableEval, LOG_RANGE};

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
