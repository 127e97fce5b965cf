//! The gate component (`specs/recursion.md` §7.2): one row per op, the op and its wiring in
//! preprocessed columns, the three values `a`, `b`, `c` (QM31, four M31 each) in the main
//! trace. Each row consumes `Wire(id_a, a)` and `Wire(id_b, b)` once and yields
//! `Wire(id_c, c)` with the preprocessed multiplicity `mult_c` — the number of reads of the
//! wire in the whole program — so the LogUp sum can only close if every read sees the value
//! its one producer wrote.

use num_traits::One;
use stwo::core::fields::qm31::SecureField;
use stwo::core::fields::FieldExpOps;
use stwo_constraint_framework::preprocessed_columns::PreProcessedColumnId;
use stwo_constraint_framework::{relation, EvalAtRow, FrameworkEval, RelationEntry};

use super::program::{Op, Program};
use crate::field::M31;

relation!(WireRel, 5);

/// The preprocessed columns, in commitment order.
pub const PREPROCESSED: [&str; 14] = [
    "id_a", "id_b", "id_c", "mult_c", "add", "sub", "mul", "pmul", "free", "eq", "k0", "k1", "k2",
    "k3",
];

/// Main columns: `a`, `b`, `c`, four coordinates each.
pub const MAIN_COLUMNS: usize = 12;

/// The ids of [`PREPROCESSED`].
pub fn preprocessed_ids() -> Vec<PreProcessedColumnId> {
    column_ids("gate", &PREPROCESSED)
}

/// `poe/node/<component>/<name>` for each name.
pub(crate) fn column_ids(component: &str, names: &[&str]) -> Vec<PreProcessedColumnId> {
    names
        .iter()
        .map(|name| PreProcessedColumnId {
            id: format!("poe/node/{component}/{name}"),
        })
        .collect()
}

/// The gate component's constraints.
#[derive(Debug, Clone)]
pub struct GateEval {
    /// log2 of the rows.
    pub log_rows: u32,
    /// The wire relation's challenges.
    pub wires: WireRel,
}

/// `x · y` in stwo's QM31 (`(x0 + x1·i) + (x2 + x3·i)·u`, `i² = −1`, `u² = 2 + i`), by
/// coordinates.
pub fn qm31_mul<F>(x: &[F; 4], y: &[F; 4]) -> [F; 4]
where
    F: Clone
        + std::ops::Add<Output = F>
        + std::ops::Sub<Output = F>
        + std::ops::Mul<Output = F>
        + std::ops::Mul<M31, Output = F>,
{
    let p = |i: usize, j: usize| x[i].clone() * y[j].clone();
    let two = M31::from(2u32);
    [
        p(0, 0) - p(1, 1) + (p(2, 2) - p(3, 3)) * two - p(2, 3) - p(3, 2),
        p(0, 1) + p(1, 0) + (p(2, 3) + p(3, 2)) * two + p(2, 2) - p(3, 3),
        p(0, 2) - p(1, 3) + p(2, 0) - p(3, 1),
        p(0, 3) + p(1, 2) + p(2, 1) + p(3, 0),
    ]
}

impl FrameworkEval for GateEval {
    fn log_size(&self) -> u32 {
        self.log_rows
    }

    fn max_constraint_log_degree_bound(&self) -> u32 {
        // Degree 3 (`mul · a · b`): the composition needs twice the trace domain.
        self.log_rows + 1
    }

    fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
        let pre: Vec<E::F> = preprocessed_ids()
            .into_iter()
            .map(|id| eval.get_preprocessed_column(id))
            .collect();
        let [id_a, id_b, id_c, mult_c, add, sub, mul, pmul, free, eq, k0, k1, k2, k3]: [E::F; 14] =
            pre.try_into()
                .unwrap_or_else(|_| unreachable!("14 columns"));
        let a: [E::F; 4] = std::array::from_fn(|_| eval.next_trace_mask());
        let b: [E::F; 4] = std::array::from_fn(|_| eval.next_trace_mask());
        let c: [E::F; 4] = std::array::from_fn(|_| eval.next_trace_mask());
        let k = [k0, k1, k2, k3];
        let prod = qm31_mul(&a, &b);
        for i in 0..4 {
            // Rows with `free` set (witnesses) leave `c` to the prover; the others compute it.
            // Padding and `AssertEq` rows have no flag and `k = 0`, so their `c` is 0.
            eval.add_constraint(
                c[i].clone()
                    - c[i].clone() * free.clone()
                    - (add.clone() * (a[i].clone() + b[i].clone())
                        + sub.clone() * (a[i].clone() - b[i].clone())
                        + mul.clone() * prod[i].clone()
                        + pmul.clone() * a[i].clone() * b[i].clone()
                        + k[i].clone()),
            );
        }
        for i in 0..4 {
            eval.add_constraint(eq.clone() * (a[i].clone() - b[i].clone()));
        }
        let entry = |id: &E::F, v: &[E::F; 4]| {
            let mut e = vec![id.clone()];
            e.extend(v.iter().cloned());
            e
        };
        eval.add_to_relation(RelationEntry::new(
            &self.wires,
            -E::EF::one(),
            &entry(&id_a, &a),
        ));
        eval.add_to_relation(RelationEntry::new(
            &self.wires,
            -E::EF::one(),
            &entry(&id_b, &b),
        ));
        eval.add_to_relation(RelationEntry::new(
            &self.wires,
            E::EF::from(mult_c),
            &entry(&id_c, &c),
        ));
        eval.finalize_logup_in_pairs();
        eval
    }
}

/// The 14 preprocessed columns of `program`'s gate component, padded to its `log_rows`.
pub fn preprocessed_columns(program: &Program) -> Vec<Vec<M31>> {
    let n = 1usize << program.log_rows();
    let uses = program.uses();
    let mut cols = vec![vec![M31::from(0u32); n]; PREPROCESSED.len()];
    let one = M31::from(1u32);
    for (r, (i, op)) in program.gate_rows().enumerate() {
        let (a, b) = op.inputs();
        cols[0][r] = M31::from(a.0);
        cols[1][r] = M31::from(b.0);
        cols[2][r] = M31::from(i as u32);
        if !matches!(op, Op::AssertEq(..)) {
            cols[3][r] = M31::from(uses[i]);
        }
        match op {
            Op::Add(..) => cols[4][r] = one,
            Op::Sub(..) => cols[5][r] = one,
            Op::Mul(..) => cols[6][r] = one,
            Op::PointwiseMul(..) => cols[7][r] = one,
            Op::Witness | Op::Bit { .. } => cols[8][r] = one,
            Op::AssertEq(..) => cols[9][r] = one,
            Op::Const(v) => {
                for (j, x) in v.to_m31_array().into_iter().enumerate() {
                    cols[10 + j][r] = x;
                }
            }
            Op::Public | Op::PermOut { .. } => unreachable!("filtered"),
        }
    }
    cols
}

/// The main columns for wire values `values` (one per op; [`Program::evaluate`]).
pub fn main_columns(program: &Program, values: &[SecureField]) -> Vec<Vec<M31>> {
    let n = 1usize << program.log_rows();
    let mut cols = vec![vec![M31::from(0u32); n]; MAIN_COLUMNS];
    for (r, (i, op)) in program.gate_rows().enumerate() {
        let (a, b) = op.inputs();
        let c = if matches!(op, Op::AssertEq(..)) {
            [M31::from(0u32); 4]
        } else {
            values[i].to_m31_array()
        };
        let cells = [
            values[a.0 as usize].to_m31_array(),
            values[b.0 as usize].to_m31_array(),
            c,
        ];
        for (j, v) in cells.iter().flatten().enumerate() {
            cols[j][r] = *v;
        }
    }
    cols
}

/// The verifier's share of the wire relation: it yields each public wire `(id, value)` with
/// the wire's read count `uses`. The gate component's sum must be its negation.
pub fn public_sum(wires: &WireRel, publics: &[(u32, u32, SecureField)]) -> SecureField {
    use stwo_constraint_framework::Relation;
    publics
        .iter()
        .map(|&(id, uses, v)| {
            let mut e = vec![M31::from(id)];
            e.extend(v.to_m31_array());
            let d: SecureField = wires.combine(&e);
            SecureField::from(M31::from(uses)) * d.inverse()
        })
        .sum()
}
