//! Compiled constraints ([`crate::recursion::compiler`]) as node-circuit ops: how a node
//! evaluates a child's constraints at the out-of-domain point (`specs/recursion.md` §7.4).

use num_traits::Zero;
use stwo::core::fields::qm31::SecureField;

use super::program::{Builder, Wire};
use crate::recursion::compiler::{Circuit, Gate, MaskRef, ParamRef};

/// The mask values of `circuit` as fresh witness wires, `[tree][column][k]` as
/// [`Circuit::mask`] lays them out (witnesses in that order).
pub fn mask_witnesses(b: &mut Builder, circuit: &Circuit) -> Vec<Vec<Vec<Wire>>> {
    circuit
        .mask
        .iter()
        .map(|tree| {
            tree.iter()
                .map(|offsets| offsets.iter().map(|_| b.witness()).collect())
                .collect()
        })
        .collect()
}

/// Appends `circuit`'s gates to `b`, reading mask value `m` from `mask` (laid out as
/// [`mask_witnesses`] returns), and returns the constraint outputs in order.
///
/// An inversion gate becomes a prover hint constrained by `x · x⁻¹ = 1`.
///
/// # Errors
/// A mask input the circuit's mask does not list.
pub fn lower(
    b: &mut Builder,
    circuit: &Circuit,
    mask: &[Vec<Vec<Wire>>],
) -> Result<Vec<Wire>, String> {
    lower_with(b, circuit, mask, &mut |p| {
        Err(format!("a parameter ({p:?}) without a wire"))
    })
}

/// [`lower`] for a parametric circuit: each [`ParamRef`] read from `param` (once per gate;
/// the compiler merges repeated parameters into one gate).
///
/// # Errors
/// As [`lower`], and whatever `param` returns.
pub fn lower_with(
    b: &mut Builder,
    circuit: &Circuit,
    mask: &[Vec<Vec<Wire>>],
    param: &mut dyn FnMut(ParamRef) -> Result<Wire, String>,
) -> Result<Vec<Wire>, String> {
    let mut wires: Vec<Wire> = Vec::with_capacity(circuit.gates.len());
    for (i, gate) in circuit.gates.iter().enumerate() {
        let w = |x: &crate::recursion::compiler::Wire| wires[x.0 as usize];
        let out = match gate {
            Gate::Input(MaskRef {
                tree,
                column,
                offset,
            }) => {
                let k = circuit.mask[*tree][*column]
                    .iter()
                    .position(|o| o == offset)
                    .ok_or_else(|| format!("gate {i}: offset {offset} is not in the mask"))?;
                // A record of another AIR (other columns) has no such sample: an error, not a
                // panic.
                *mask
                    .get(*tree)
                    .and_then(|t| t.get(*column))
                    .and_then(|c| c.get(k))
                    .ok_or_else(|| {
                        format!("gate {i}: the record has no sample {k} of column {column} in tree {tree}")
                    })?
            }
            Gate::Const(c) => b.constant(*c),
            Gate::Param(p) => param(*p)?,
            Gate::Add(x, y) => b.add(w(x), w(y)),
            Gate::Sub(x, y) => b.sub(w(x), w(y)),
            Gate::Mul(x, y) => b.mul(w(x), w(y)),
            Gate::Neg(x) => b.sub(Wire::ZERO, w(x)),
            Gate::Inv(x) => b.inverse(w(x)),
        };
        wires.push(out);
    }
    Ok(circuit
        .constraints
        .iter()
        .map(|c| wires[c.0 as usize])
        .collect())
}

/// `Σ coeff^(n−1−i) · values[i]` by Horner's rule (how stwo's point accumulator folds the
/// constraints of a component), with `coeff` a wire.
pub fn horner(b: &mut Builder, coeff: Wire, values: &[Wire]) -> Wire {
    let mut acc = Wire::ZERO;
    for &v in values {
        acc = if acc == Wire::ZERO {
            v
        } else {
            b.mul_add(acc, coeff, v)
        };
    }
    acc
}

/// The out-of-domain constraint check of `circuits` as one node program: each circuit's mask
/// values are witnesses, its constraint values are folded together by Horner's rule with the
/// public coefficient (wire order: `coeff`, then the fold), and the fold is asserted equal to
/// the public value. Returns the program, its public values `[coeff, fold]` (the fold computed
/// natively from `masks`) and its witness.
///
/// # Errors
/// As [`lower`].
pub fn fold_program(
    circuits: &[Circuit],
    masks: &[Vec<Vec<Vec<SecureField>>>],
    coeff: SecureField,
) -> Result<(super::Program, Vec<SecureField>, Vec<SecureField>), String> {
    let mut b = Builder::new();
    let coeff_wire = b.public();
    let claimed = b.public();
    let (mut outs, mut natives, mut witness) = (vec![], vec![], vec![]);
    for (circuit, values) in circuits.iter().zip(masks) {
        let mask = mask_witnesses(&mut b, circuit);
        witness.extend(values.iter().flatten().flatten().copied());
        outs.extend(lower(&mut b, circuit, &mask)?);
        natives.extend(circuit.evaluate(values));
    }
    let fold = horner(&mut b, coeff_wire, &outs);
    b.assert_eq(fold, claimed);
    let native = natives
        .iter()
        .fold(SecureField::zero(), |acc, &v| acc * coeff + v);
    Ok((b.finish(), vec![coeff, native], witness))
}
