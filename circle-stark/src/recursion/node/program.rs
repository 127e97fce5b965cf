//! The circuit a node proof proves (`specs/recursion.md` §7): QM31 wires, each produced once —
//! by one row of the gate component, or by the verifier for a public wire — and used any
//! number of times.

use std::collections::HashMap;

use num_traits::{One, Zero};
use stwo::core::fields::qm31::SecureField;
use stwo::core::fields::FieldExpOps;

use crate::error::ProveError;
use crate::field::M31;

/// A wire: the index of the op that produces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Wire(pub u32);

impl Wire {
    /// The constant 0, the first wire of every program (and what padding rows read).
    pub const ZERO: Wire = Wire(0);
}

/// The arithmetic of a gate row over its three reads `a`, `b`, `d`:
/// `k + la·a + lb·b + ld·d + mab·(a·b) + mad·(a·d) + pm·(a ⊙ b)`, with M31 coefficients and a
/// QM31 constant (all preprocessed: part of the verifying key). One form covers addition,
/// subtraction, products, fused multiply-add, selection and small linear combinations, so each
/// is one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Form {
    pub la: M31,
    pub lb: M31,
    pub ld: M31,
    pub mab: M31,
    pub mad: M31,
    pub pm: M31,
    pub k: SecureField,
}

impl Form {
    /// The form's value at `(a, b, d)`.
    pub fn eval(&self, a: SecureField, b: SecureField, d: SecureField) -> SecureField {
        self.k
            + a * self.la
            + b * self.lb
            + d * self.ld
            + a * b * self.mab
            + a * d * self.mad
            + pointwise(a, b) * self.pm
    }
}

fn m(v: i32) -> M31 {
    if v >= 0 {
        M31::from(v as u32)
    } else {
        -M31::from(v.unsigned_abs())
    }
}

/// One op. Every op but [`Op::Public`] and [`Op::PermOut`] is one row of the gate component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// A constant (a preprocessed value: part of the verifying key).
    Const(SecureField),
    /// A value the prover chooses, bound only by the ops that use it.
    Witness,
    /// A value the verifier supplies (no row: the verifier yields it into the wire relation).
    Public,
    /// Bit `index` of wire `of`'s first coordinate: a witness (a free row: the AIR does not
    /// read `of`) whose value the prover computes instead of taking it from the caller. Only
    /// the ops that use it constrain it ([`Builder::bits`]).
    Bit {
        /// The wire decomposed.
        of: Wire,
        /// 0..31.
        index: u8,
    },
    /// The inverse of wire `of` (0 for 0): a witness the prover computes (a free row, like
    /// [`Op::Bit`]); [`Builder::inverse`] constrains it.
    Inv {
        /// The wire inverted.
        of: Wire,
    },
    /// `form(a, b, d)`. The pointwise product `a ⊙ b` in a form is not a field operation: it
    /// reaches the M31 coordinates of a wire, which the channel's sponges and the opened rows
    /// are made of.
    Compute {
        a: Wire,
        b: Wire,
        d: Wire,
        form: Form,
    },
    /// `form(a, b, d) = 0`; produces no value (its wire is never used).
    Assert {
        a: Wire,
        b: Wire,
        d: Wire,
        form: Form,
    },
    /// Lane `lane` (state elements `4·lane .. 4·lane + 4`) of the Poseidon2-M31 permutation
    /// `perm` ([`Program::perms`]); no gate row: the permutation component yields it.
    PermOut {
        /// The permutation's index.
        perm: u32,
        /// 0..4.
        lane: u8,
    },
}

impl Op {
    /// The wires the op's row reads, `(a, b, d)`; ops that read fewer read wire 0 in the other
    /// slots (so every row consumes three wires and the component needs no per-row consume
    /// flags).
    pub fn inputs(&self) -> [Wire; 3] {
        match *self {
            Op::Compute { a, b, d, .. } | Op::Assert { a, b, d, .. } => [a, b, d],
            Op::Const(_)
            | Op::Witness
            | Op::Public
            | Op::Bit { .. }
            | Op::Inv { .. }
            | Op::PermOut { .. } => [Wire::ZERO; 3],
        }
    }

    /// Whether the op is a row of the gate component (public wires and permutation outputs
    /// are yielded elsewhere).
    pub fn is_gate_row(&self) -> bool {
        !matches!(self, Op::Public | Op::PermOut { .. })
    }

    fn produces(&self) -> bool {
        !matches!(self, Op::Assert { .. })
    }
}

/// A circuit: ops in topological order (an op reads only earlier wires), op `i` producing
/// wire `i`. Build one with [`Builder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    ops: Vec<Op>,
    perms: Vec<[Wire; 4]>,
    publics: Vec<Wire>,
    witnesses: Vec<Wire>,
    /// The smallest `(log_rows, log_perm_rows)` the components are padded to: a tree's nodes
    /// share one shape so that one M circuit verifies any of them (`specs/recursion.md` §8).
    min_shape: (u32, u32),
}

/// Builds a [`Program`]: wire 0 is the constant 0, equal constants share one wire.
#[derive(Debug, Clone)]
pub struct Builder {
    ops: Vec<Op>,
    perms: Vec<[Wire; 4]>,
    consts: HashMap<[u32; 4], Wire>,
    /// Gate rows so far.
    rows: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

fn words(v: SecureField) -> [u32; 4] {
    v.to_m31_array().map(|x| x.0)
}

impl Builder {
    /// A program holding only wire 0.
    pub fn new() -> Self {
        let mut consts = HashMap::new();
        consts.insert([0; 4], Wire::ZERO);
        Self {
            ops: vec![Op::Const(SecureField::zero())],
            perms: Vec::new(),
            consts,
            rows: 1,
        }
    }

    fn check_read(&self, w: Wire, by: &dyn std::fmt::Debug) {
        assert!(
            (w.0 as usize) < self.ops.len() && self.ops[w.0 as usize].produces(),
            "{by:?} reads wire {} that is not produced before it",
            w.0
        );
    }

    fn push(&mut self, op: Op) -> Wire {
        for w in op.inputs() {
            self.check_read(w, &op);
        }
        self.rows += usize::from(op.is_gate_row());
        self.ops.push(op);
        Wire(self.ops.len() as u32 - 1)
    }

    /// Gate rows and permutations so far (costing a circuit's parts).
    pub fn size(&self) -> (usize, usize) {
        (self.rows, self.perms.len())
    }

    /// A constant (equal constants share a wire).
    pub fn constant(&mut self, v: SecureField) -> Wire {
        if let Some(&w) = self.consts.get(&words(v)) {
            return w;
        }
        let w = self.push(Op::Const(v));
        self.consts.insert(words(v), w);
        w
    }

    /// The constant 1.
    pub fn one(&mut self) -> Wire {
        self.constant(SecureField::one())
    }

    /// A value the prover supplies (in creation order, see [`Program::evaluate`]).
    pub fn witness(&mut self) -> Wire {
        self.push(Op::Witness)
    }

    /// Bit `index` of `of`'s first coordinate, computed by the prover (see [`Op::Bit`]).
    pub fn bit_hint(&mut self, of: Wire, index: u8) -> Wire {
        self.check_read(of, &"a bit hint");
        self.push(Op::Bit { of, index })
    }

    /// `x⁻¹`, computed by the prover and constrained by `x · x⁻¹ = 1` (so `x ≠ 0`).
    pub fn inverse(&mut self, x: Wire) -> Wire {
        self.check_read(x, &"an inverse hint");
        let h = self.push(Op::Inv { of: x });
        let form = Form {
            mab: m(1),
            k: SecureField::from(m(-1)),
            ..Form::default()
        };
        self.assert_zero(x, h, Wire::ZERO, form);
        h
    }

    /// A value the verifier supplies (in creation order).
    pub fn public(&mut self) -> Wire {
        self.push(Op::Public)
    }

    /// `form(a, b, d)` as a new wire.
    pub fn compute(&mut self, a: Wire, b: Wire, d: Wire, form: Form) -> Wire {
        self.push(Op::Compute { a, b, d, form })
    }

    /// Constrains `form(a, b, d) = 0`.
    pub fn assert_zero(&mut self, a: Wire, b: Wire, d: Wire, form: Form) {
        self.push(Op::Assert { a, b, d, form });
    }

    /// `a + b`.
    pub fn add(&mut self, a: Wire, b: Wire) -> Wire {
        self.linear(&[(a, 1), (b, 1)])
    }

    /// `a − b`.
    pub fn sub(&mut self, a: Wire, b: Wire) -> Wire {
        self.linear(&[(a, 1), (b, -1)])
    }

    /// `a · b`.
    pub fn mul(&mut self, a: Wire, b: Wire) -> Wire {
        let form = Form {
            mab: m(1),
            ..Form::default()
        };
        self.compute(a, b, Wire::ZERO, form)
    }

    /// `a · b + d` (one row: Horner steps and the DEEP sums are made of these).
    pub fn mul_add(&mut self, a: Wire, b: Wire, d: Wire) -> Wire {
        let form = Form {
            mab: m(1),
            ld: m(1),
            ..Form::default()
        };
        self.compute(a, b, d, form)
    }

    /// `d − a · b` (one row).
    pub fn sub_mul(&mut self, d: Wire, a: Wire, b: Wire) -> Wire {
        let form = Form {
            mab: m(-1),
            ld: m(1),
            ..Form::default()
        };
        self.compute(a, b, d, form)
    }

    /// `a · b − d` (one row).
    pub fn mul_sub(&mut self, a: Wire, b: Wire, d: Wire) -> Wire {
        let form = Form {
            mab: m(1),
            ld: m(-1),
            ..Form::default()
        };
        self.compute(a, b, d, form)
    }

    /// `a ⊙ b + d`, coordinate by coordinate.
    pub fn pointwise_mul_add(&mut self, a: Wire, b: Wire, d: Wire) -> Wire {
        let form = Form {
            pm: m(1),
            ld: m(1),
            ..Form::default()
        };
        self.compute(a, b, d, form)
    }

    /// `Σ λ_i · w_i` for up to three terms with small integer weights (one row).
    ///
    /// # Panics
    /// On more than three terms.
    pub fn linear(&mut self, terms: &[(Wire, i32)]) -> Wire {
        assert!(terms.len() <= 3, "a row reads three wires");
        let mut wires = [Wire::ZERO; 3];
        let mut weights = [m(0); 3];
        for (k, &(w, l)) in terms.iter().enumerate() {
            wires[k] = w;
            weights[k] = m(l);
        }
        let form = Form {
            la: weights[0],
            lb: weights[1],
            ld: weights[2],
            ..Form::default()
        };
        self.compute(wires[0], wires[1], wires[2], form)
    }

    /// `x · λ` for an M31 constant `λ`.
    pub fn scale(&mut self, x: Wire, lambda: M31) -> Wire {
        let form = Form {
            la: lambda,
            ..Form::default()
        };
        self.compute(x, Wire::ZERO, Wire::ZERO, form)
    }

    /// `bit ? x : y` as `y + bit·x − bit·y` (one row); `bit` must be constrained boolean.
    pub fn select(&mut self, bit: Wire, x: Wire, y: Wire) -> Wire {
        let form = Form {
            ld: m(1),
            mab: m(1),
            mad: m(-1),
            ..Form::default()
        };
        self.compute(bit, x, y, form)
    }

    /// The Poseidon2-M31 permutation of the 16 M31 coordinates of `input` (wire `k` holding
    /// state elements `4k .. 4k + 4`), as four wires laid out the same way.
    pub fn permute(&mut self, input: [Wire; 4]) -> [Wire; 4] {
        for w in input {
            self.check_read(w, &"a permutation");
        }
        let perm = self.perms.len() as u32;
        self.perms.push(input);
        std::array::from_fn(|lane| {
            self.push(Op::PermOut {
                perm,
                lane: lane as u8,
            })
        })
    }

    /// `a ⊙ b`, coordinate by coordinate.
    pub fn pointwise_mul(&mut self, a: Wire, b: Wire) -> Wire {
        let form = Form {
            pm: m(1),
            ..Form::default()
        };
        self.compute(a, b, Wire::ZERO, form)
    }

    /// Constrains `a = b`.
    pub fn assert_eq(&mut self, a: Wire, b: Wire) {
        let form = Form {
            la: m(1),
            lb: m(-1),
            ..Form::default()
        };
        self.assert_zero(a, b, Wire::ZERO, form);
    }

    /// Constrains `b ∈ {0, 1}` (`b·b − b = 0`: in a field only 0 and 1 are idempotent).
    pub fn assert_bit(&mut self, b: Wire) {
        let form = Form {
            mab: m(1),
            ld: m(-1),
            ..Form::default()
        };
        self.assert_zero(b, b, b, form);
    }

    /// The program.
    ///
    /// # Panics
    /// If a public wire is never used: nothing would bind the verifier's value to the circuit.
    pub fn finish(self) -> Program {
        let program = Program {
            publics: wires_of(&self.ops, Op::Public),
            witnesses: wires_of(&self.ops, Op::Witness),
            ops: self.ops,
            perms: self.perms,
            min_shape: (0, 0),
        };
        let uses = program.uses();
        for w in &program.publics {
            assert!(
                uses[w.0 as usize] > 0,
                "public wire {} is never used: the verifier's value would bind nothing",
                w.0
            );
        }
        program
    }
}

fn wires_of(ops: &[Op], kind: Op) -> Vec<Wire> {
    ops.iter()
        .enumerate()
        .filter(|(_, op)| **op == kind)
        .map(|(i, _)| Wire(i as u32))
        .collect()
}

impl Program {
    /// The ops, op `i` producing wire `i`.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// The permutations' input wires, in order.
    pub fn perms(&self) -> &[[Wire; 4]] {
        &self.perms
    }

    /// log2 of the permutation component's rows: at least 4, and at least the padded shape's.
    pub fn log_perm_rows(&self) -> u32 {
        self.perms
            .len()
            .next_power_of_two()
            .trailing_zeros()
            .max(4)
            .max(self.min_shape.1)
    }

    /// The same circuit with its components padded to at least `2^log_rows` gate rows and
    /// `2^log_perm_rows` permutations (padding rows read wire 0; padding permutations are of
    /// the zero state and read nothing). Another shape is another circuit, hence another key.
    #[must_use]
    pub fn padded_to(mut self, log_rows: u32, log_perm_rows: u32) -> Self {
        self.min_shape = (log_rows, log_perm_rows);
        self
    }

    /// The public wires, in the order the verifier supplies their values.
    pub fn publics(&self) -> &[Wire] {
        &self.publics
    }

    /// The witness wires, in the order the prover supplies their values.
    pub fn witnesses(&self) -> &[Wire] {
        &self.witnesses
    }

    /// The gate component's rows in order: `(op index, op)`.
    pub fn gate_rows(&self) -> impl Iterator<Item = (usize, &Op)> {
        self.ops
            .iter()
            .enumerate()
            .filter(|(_, op)| op.is_gate_row())
    }

    /// Rows of the gate component before padding: every op but the public wires and the
    /// permutation outputs.
    pub fn n_rows(&self) -> usize {
        self.ops.iter().filter(|op| op.is_gate_row()).count()
    }

    /// log2 of the gate component's rows: at least 6, so that a node proof's FRI, folding
    /// twice a layer, reaches its last layer of `2^NODE_LOG_LAST_LAYER` coefficients
    /// (`proof::NODE_LOG_LAST_LAYER`, `proof::NODE_FOLD_STEP`).
    pub fn log_rows(&self) -> u32 {
        self.n_rows()
            .next_power_of_two()
            .trailing_zeros()
            .max(crate::proof::NODE_LOG_LAST_LAYER + crate::proof::NODE_FOLD_STEP)
            .max(self.min_shape.0)
    }

    /// How often each wire is read: by the rows of the padded gate component (padding rows
    /// read wire 0 three times, as ops without inputs do) and by the permutations (each reads its
    /// four input wires once; padding permutations read nothing).
    pub fn uses(&self) -> Vec<u32> {
        let mut uses = vec![0u32; self.ops.len()];
        for input in &self.perms {
            for w in input {
                uses[w.0 as usize] += 1;
            }
        }
        for op in self.ops.iter().filter(|op| op.is_gate_row()) {
            for w in op.inputs() {
                uses[w.0 as usize] += 1;
            }
        }
        uses[0] += 3 * ((1u32 << self.log_rows()) - self.n_rows() as u32);
        uses
    }

    /// Every wire's value, given the public and witness values in creation order.
    ///
    /// # Errors
    /// `ProveError::CircuitInputs` on a count that differs from the program's,
    /// `ProveError::Unsatisfied` for the first [`Op::Assert`] that fails.
    pub fn evaluate(
        &self,
        public: &[SecureField],
        witness: &[SecureField],
    ) -> Result<Vec<SecureField>, ProveError> {
        for (what, expected, got) in [
            ("public", self.publics.len(), public.len()),
            ("witness", self.witnesses.len(), witness.len()),
        ] {
            if expected != got {
                return Err(ProveError::CircuitInputs {
                    what,
                    expected,
                    got,
                });
            }
        }
        let values = self.values(public, witness, &|_, v| v);
        for (i, op) in self.ops.iter().enumerate() {
            if let Op::Assert { a, b, d, form } = op {
                let v = |w: &Wire| values[w.0 as usize];
                let got = form.eval(v(a), v(b), v(d));
                if got != SecureField::zero() {
                    return Err(ProveError::Unsatisfied {
                        op: i,
                        form: format!("{form:?} at ({}, {}, {})", v(a), v(b), v(d)),
                        got: got.to_string(),
                    });
                }
            }
        }
        Ok(values)
    }

    /// Every wire's value without checking the assertions, each hinted bit passed through
    /// `hint(op, value)` first: what a cheating prover could feed the trace (tests).
    pub(crate) fn values(
        &self,
        public: &[SecureField],
        witness: &[SecureField],
        hint: &dyn Fn(usize, SecureField) -> SecureField,
    ) -> Vec<SecureField> {
        let (mut public, mut witness) = (public.iter(), witness.iter());
        let mut values: Vec<SecureField> = Vec::with_capacity(self.ops.len());
        let mut outputs: Vec<Option<[SecureField; 4]>> = vec![None; self.perms.len()];
        for (i, op) in self.ops.iter().enumerate() {
            let v = |w: &Wire| values[w.0 as usize];
            let x = match op {
                Op::Const(c) => *c,
                Op::Witness => *witness.next().expect("counted"),
                Op::Public => *public.next().expect("counted"),
                Op::Bit { of, index } => hint(
                    i,
                    SecureField::from(M31::from((v(of).to_m31_array()[0].0 >> index) & 1)),
                ),
                Op::Inv { of } => {
                    let x = v(of);
                    if x == SecureField::zero() {
                        x
                    } else {
                        hint(i, x.inverse())
                    }
                }
                Op::Compute { a, b, d, form } => form.eval(v(a), v(b), v(d)),
                Op::PermOut { perm, lane } => {
                    let out = outputs[*perm as usize].get_or_insert_with(|| {
                        permute_wires(self.perms[*perm as usize].map(|w| values[w.0 as usize]))
                    });
                    out[*lane as usize]
                }
                Op::Assert { .. } => SecureField::zero(),
            };
            values.push(x);
        }
        values
    }
}

/// The Poseidon2-M31 permutation on four wires' coordinates (wire `k` = elements `4k .. 4k+4`).
pub fn permute_wires(input: [SecureField; 4]) -> [SecureField; 4] {
    let mut state: [crate::field::M31; 16] =
        std::array::from_fn(|i| input[i / 4].to_m31_array()[i % 4]);
    crate::hash::poseidon2::permute(&mut state);
    std::array::from_fn(|k| SecureField::from_m31_array(std::array::from_fn(|j| state[4 * k + j])))
}

/// `a ⊙ b`: the product of each coordinate.
pub fn pointwise(a: SecureField, b: SecureField) -> SecureField {
    let (a, b) = (a.to_m31_array(), b.to_m31_array());
    SecureField::from_m31_array(std::array::from_fn(|j| a[j] * b[j]))
}
