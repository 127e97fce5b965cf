//! The gate component (`specs/recursion.md` §7.2): one row per op, the op and its wiring in
//! preprocessed columns, the four values `a`, `b`, `d`, `c` (QM31, four M31 each) in the main
//! trace. Each row consumes `Wire(id_a, a)`, `Wire(id_b, b)` and `Wire(id_d, d)` once and
//! yields `Wire(id_c, c)` with the preprocessed multiplicity `mult_c` — the number of reads of
//! the wire in the whole program — so the LogUp sum can only close if every read sees the
//! value its one producer wrote.

use num_traits::One;
use stwo::core::fields::qm31::SecureField;
use stwo::core::fields::FieldExpOps;
use stwo_constraint_framework::preprocessed_columns::PreProcessedColumnId;
use stwo_constraint_framework::{relation, EvalAtRow, FrameworkEval, RelationEntry};

use super::program::{Form, Op, Program};
use crate::field::M31;

relation!(WireRel, 5);

/// The preprocessed columns, in commitment order.
pub const PREPROCESSED: [&str; 17] = [
    "id_a", "id_b", "id_d", "id_c", "mult_c", "la", "lb", "ld", "mab", "mad", "pm", "free", "eq",
    "k0", "k1", "k2", "k3",
];

/// Main columns: `a`, `b`, `d`, `c`, four coordinates each.
pub const MAIN_COLUMNS: usize = 16;

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
        let [id_a, id_b, id_d, id_c, mult_c, la, lb, ld, mab, mad, pm, free, eq, k0, k1, k2, k3]: [E::F; 17] =
            pre.try_into()
                .unwrap_or_else(|_| unreachable!("17 columns"));
        let a: [E::F; 4] = std::array::from_fn(|_| eval.next_trace_mask());
        let b: [E::F; 4] = std::array::from_fn(|_| eval.next_trace_mask());
        let d: [E::F; 4] = std::array::from_fn(|_| eval.next_trace_mask());
        let c: [E::F; 4] = std::array::from_fn(|_| eval.next_trace_mask());
        let k = [k0, k1, k2, k3];
        let ab = qm31_mul(&a, &b);
        let ad = qm31_mul(&a, &d);
        for i in 0..4 {
            // Rows with `free` set (witnesses) leave `c` to the prover; the others compute it.
            // Padding rows have zero coefficients, so their `c` is 0.
            let form = k[i].clone()
                + la.clone() * a[i].clone()
                + lb.clone() * b[i].clone()
                + ld.clone() * d[i].clone()
                + mab.clone() * ab[i].clone()
                + mad.clone() * ad[i].clone()
                + pm.clone() * a[i].clone() * b[i].clone();
            eval.add_constraint(c[i].clone() - c[i].clone() * free.clone() - form);
        }
        // An assertion row computes its form like any other and requires it to be 0.
        for ci in &c {
            eval.add_constraint(eq.clone() * ci.clone());
        }
        let entry = |id: &E::F, v: &[E::F; 4]| {
            let mut e = vec![id.clone()];
            e.extend(v.iter().cloned());
            e
        };
        for (id, v) in [(&id_a, &a), (&id_b, &b), (&id_d, &d)] {
            eval.add_to_relation(RelationEntry::new(
                &self.wires,
                -E::EF::one(),
                &entry(id, v),
            ));
        }
        eval.add_to_relation(RelationEntry::new(
            &self.wires,
            E::EF::from(mult_c),
            &entry(&id_c, &c),
        ));
        eval.finalize_logup_in_pairs();
        eval
    }
}

/// The 17 preprocessed columns of `program`'s gate component, padded to its `log_rows`.
pub fn preprocessed_columns(program: &Program) -> Vec<Vec<M31>> {
    let n = 1usize << program.log_rows();
    let uses = program.uses();
    let mut cols = vec![vec![M31::from(0u32); n]; PREPROCESSED.len()];
    let one = M31::from(1u32);
    for (r, (i, op)) in program.gate_rows().enumerate() {
        for (col, w) in op.inputs().into_iter().enumerate() {
            cols[col][r] = M31::from(w.0);
        }
        cols[3][r] = M31::from(i as u32);
        let form = match *op {
            Op::Compute { form, .. } => {
                cols[4][r] = M31::from(uses[i]);
                form
            }
            Op::Assert { form, .. } => {
                cols[12][r] = one;
                form
            }
            Op::Witness | Op::Bit { .. } | Op::Inv { .. } => {
                cols[4][r] = M31::from(uses[i]);
                cols[11][r] = one;
                Form::default()
            }
            Op::Const(v) => {
                cols[4][r] = M31::from(uses[i]);
                Form {
                    k: v,
                    ..Form::default()
                }
            }
            Op::Public | Op::PermOut { .. } => unreachable!("filtered"),
        };
        for (col, x) in [form.la, form.lb, form.ld, form.mab, form.mad, form.pm]
            .into_iter()
            .enumerate()
        {
            cols[5 + col][r] = x;
        }
        for (j, x) in form.k.to_m31_array().into_iter().enumerate() {
            cols[13 + j][r] = x;
        }
    }
    cols
}

/// The main columns for wire values `values` (one per op; [`Program::evaluate`]). An
/// assertion row's `c` is its form's value (0 when it holds).
pub fn main_columns(program: &Program, values: &[SecureField]) -> Vec<Vec<M31>> {
    let n = 1usize << program.log_rows();
    let mut cols = vec![vec![M31::from(0u32); n]; MAIN_COLUMNS];
    for (r, (i, op)) in program.gate_rows().enumerate() {
        let [a, b, d] = op.inputs().map(|w| values[w.0 as usize]);
        let c = match op {
            Op::Assert { form, .. } => form.eval(a, b, d),
            _ => values[i],
        };
        for (j, v) in [a, b, d, c]
            .iter()
            .flat_map(|v| v.to_m31_array())
            .enumerate()
        {
            cols[j][r] = v;
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
