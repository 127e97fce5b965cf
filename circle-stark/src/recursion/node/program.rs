//! The circuit a node proof proves (`specs/recursion.md` §7): QM31 wires, each produced once —
//! by one row of the gate component, or by the verifier for a public wire — and used any
//! number of times.

use std::collections::HashMap;

use num_traits::{One, Zero};
use stwo::core::fields::qm31::SecureField;

use crate::error::ProveError;
use crate::field::M31;

/// A wire: the index of the op that produces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Wire(pub u32);

impl Wire {
    /// The constant 0, the first wire of every program (and what padding rows read).
    pub const ZERO: Wire = Wire(0);
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
    /// `a + b`.
    Add(Wire, Wire),
    /// `a − b`.
    Sub(Wire, Wire),
    /// `a · b`.
    Mul(Wire, Wire),
    /// `a ⊙ b`: the product coordinate by coordinate (not a field operation: it reaches the M31
    /// coordinates of a wire, which the channel's sponges and the opened rows are made of).
    PointwiseMul(Wire, Wire),
    /// `a = b`; produces no value (its wire is never used).
    AssertEq(Wire, Wire),
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
    /// The wires the op's row reads, `(a, b)`; ops that read none read wire 0 twice (so every
    /// row consumes two wires and the component needs no per-row consume flags).
    pub fn inputs(&self) -> (Wire, Wire) {
        match *self {
            Op::Add(a, b)
            | Op::Sub(a, b)
            | Op::Mul(a, b)
            | Op::PointwiseMul(a, b)
            | Op::AssertEq(a, b) => (a, b),
            Op::Const(_) | Op::Witness | Op::Public | Op::Bit { .. } | Op::PermOut { .. } => {
                (Wire::ZERO, Wire::ZERO)
            }
        }
    }

    /// Whether the op is a row of the gate component (public wires and permutation outputs
    /// are yielded elsewhere).
    pub fn is_gate_row(&self) -> bool {
        !matches!(self, Op::Public | Op::PermOut { .. })
    }

    fn produces(&self) -> bool {
        !matches!(self, Op::AssertEq(..))
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
}

/// Builds a [`Program`]: wire 0 is the constant 0, equal constants share one wire.
#[derive(Debug, Clone)]
pub struct Builder {
    ops: Vec<Op>,
    perms: Vec<[Wire; 4]>,
    consts: HashMap<[u32; 4], Wire>,
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
        self.check_read(op.inputs().0, &op);
        self.check_read(op.inputs().1, &op);
        self.ops.push(op);
        Wire(self.ops.len() as u32 - 1)
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

    /// A value the verifier supplies (in creation order).
    pub fn public(&mut self) -> Wire {
        self.push(Op::Public)
    }

    /// `a + b`.
    pub fn add(&mut self, a: Wire, b: Wire) -> Wire {
        self.push(Op::Add(a, b))
    }

    /// `a − b`.
    pub fn sub(&mut self, a: Wire, b: Wire) -> Wire {
        self.push(Op::Sub(a, b))
    }

    /// `a · b`.
    pub fn mul(&mut self, a: Wire, b: Wire) -> Wire {
        self.push(Op::Mul(a, b))
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
        self.push(Op::PointwiseMul(a, b))
    }

    /// Constrains `a = b`.
    pub fn assert_eq(&mut self, a: Wire, b: Wire) {
        self.push(Op::AssertEq(a, b));
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

    /// log2 of the permutation component's rows: at least 4.
    pub fn log_perm_rows(&self) -> u32 {
        self.perms.len().next_power_of_two().trailing_zeros().max(4)
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

    /// log2 of the gate component's rows: at least 4 (one SIMD vector).
    pub fn log_rows(&self) -> u32 {
        self.n_rows().next_power_of_two().trailing_zeros().max(4)
    }

    /// How often each wire is read: by the rows of the padded gate component (padding rows
    /// read wire 0 twice, as ops without inputs do) and by the permutations (each reads its
    /// four input wires once; padding permutations read nothing).
    pub fn uses(&self) -> Vec<u32> {
        let mut uses = vec![0u32; self.ops.len()];
        for input in &self.perms {
            for w in input {
                uses[w.0 as usize] += 1;
            }
        }
        for op in self.ops.iter().filter(|op| op.is_gate_row()) {
            let (a, b) = op.inputs();
            uses[a.0 as usize] += 1;
            uses[b.0 as usize] += 1;
        }
        uses[0] += 2 * ((1u32 << self.log_rows()) - self.n_rows() as u32);
        uses
    }

    /// Every wire's value, given the public and witness values in creation order.
    ///
    /// # Errors
    /// `ProveError::CircuitInputs` on a count that differs from the program's,
    /// `ProveError::Unsatisfied` for the first `AssertEq` that fails.
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
            if let Op::AssertEq(a, b) = op {
                let (l, r) = (values[a.0 as usize], values[b.0 as usize]);
                if l != r {
                    return Err(ProveError::Unsatisfied {
                        op: i,
                        left: l.to_string(),
                        right: r.to_string(),
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
                Op::Add(a, b) => v(a) + v(b),
                Op::Sub(a, b) => v(a) - v(b),
                Op::Mul(a, b) => v(a) * v(b),
                Op::PointwiseMul(a, b) => pointwise(v(a), v(b)),
                Op::PermOut { perm, lane } => {
                    let out = outputs[*perm as usize].get_or_insert_with(|| {
                        permute_wires(self.perms[*perm as usize].map(|w| values[w.0 as usize]))
                    });
                    out[*lane as usize]
                }
                Op::AssertEq(..) => SecureField::zero(),
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
