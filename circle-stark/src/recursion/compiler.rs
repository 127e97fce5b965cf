//! The constraint compiler: an [`EvalAtRow`] whose values are copyable handles into a gate
//! list, so that any poe [`FrameworkEval`] becomes a QM31 arithmetic circuit — the form a
//! recursive verifier evaluates at the out-of-domain point (`specs/recursion.md` §2).
//!
//! Why not stwo's `ExprEvaluator`: it builds cloned `Box` expression trees, and poe's Poseidon2
//! constraints keep the partial rounds as linear expressions of earlier cells, so a tree grows
//! ~16× per round. Here every intermediate value is one gate, shared wherever it is used (a
//! DAG), constants are folded, and identical gates are merged.
//!
//! The circuit's outputs are the component's constraint values *before* stwo divides them by
//! the vanishing polynomial and folds them with the composition coefficient; the verifier does
//! both outside. LogUp follows `stwo-constraint-framework` 2.3.0 step for step (its
//! `logup_proxy!` is crate-private), fraction sums included, so each output equals the value
//! `PointEvaluator` accumulates, not just an equivalent one.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::{Add, AddAssign, Mul, MulAssign, Neg, Sub};

use num_traits::{One, Zero};
use stwo::core::fields::m31::BaseField;
use stwo::core::fields::qm31::{SecureField, SECURE_EXTENSION_DEGREE};
use stwo::core::fields::FieldExpOps;
use stwo::core::Fraction;
use stwo_constraint_framework::{EvalAtRow, FrameworkEval, INTERACTION_TRACE_IDX};

/// A gate's output: its index in [`Circuit::gates`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Wire(pub u32);

/// One mask value the circuit reads: column `column` (counted within the component's own
/// columns of tree `tree`) at row offset `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MaskRef {
    /// 0 preprocessed, 1 main, 2 interaction.
    pub tree: usize,
    /// The component's column index within that tree.
    pub column: usize,
    /// Row offset (0 = this row, −1 = the previous one).
    pub offset: isize,
}

/// A value a verifier draws or reads from the proof, not a constant of the AIR: the LogUp
/// relations' challenges and the component's claimed sum. A circuit compiled with
/// [`compile_parametric`] reads them as inputs, so that one circuit serves every proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamRef {
    /// `z` of the relation drawn `r`-th.
    Z(u16),
    /// `α^k` (`k ≥ 1`) of the relation drawn `r`-th.
    AlphaPower(u16, u16),
    /// The claimed sum divided by the component's row count (LogUp's cumulative-sum shift).
    CumsumShift,
}

/// A QM31 gate. Base-field values are QM31 values with zero higher coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gate {
    /// A mask value.
    Input(MaskRef),
    /// A parameter.
    Param(ParamRef),
    /// A constant.
    Const(SecureField),
    /// `a + b`.
    Add(Wire, Wire),
    /// `a − b`.
    Sub(Wire, Wire),
    /// `a · b`.
    Mul(Wire, Wire),
    /// `−a`.
    Neg(Wire),
    /// `a⁻¹` (no poe AIR uses one; kept so that every `EvalAtRow` program compiles).
    Inv(Wire),
}

/// A compiled component: gates in topological order, the constraint outputs in the order the
/// component adds them, and the mask it reads.
#[derive(Debug, Clone, Default)]
pub struct Circuit {
    /// Every gate; a gate reads only earlier ones.
    pub gates: Vec<Gate>,
    /// The constraint values, in `add_constraint` order.
    pub constraints: Vec<Wire>,
    /// Per tree, per column of the component, the offsets read (the shape of stwo's mask).
    pub mask: Vec<Vec<Vec<isize>>>,
}

/// Gate counts, the input to sizing a verifier circuit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GateCounts {
    /// Mask inputs.
    pub inputs: usize,
    /// Distinct constants.
    pub consts: usize,
    /// Additions, subtractions and negations.
    pub linear: usize,
    /// Multiplications.
    pub muls: usize,
    /// Inversions.
    pub invs: usize,
    /// Constraint outputs.
    pub constraints: usize,
}

impl Circuit {
    /// Evaluates every constraint, reading mask values from `mask[tree][column][k]`, `k` the
    /// index of the offset in [`Circuit::mask`].
    ///
    /// # Panics
    /// If `mask` is smaller than [`Circuit::mask`] says.
    pub fn evaluate(&self, mask: &[Vec<Vec<SecureField>>]) -> Vec<SecureField> {
        self.evaluate_with(mask, &|p| {
            panic!("a parameter ({p:?}) in a circuit evaluated without")
        })
    }

    /// [`Circuit::evaluate`] with parameter values from `param`.
    pub fn evaluate_with(
        &self,
        mask: &[Vec<Vec<SecureField>>],
        param: &dyn Fn(ParamRef) -> SecureField,
    ) -> Vec<SecureField> {
        let mut values: Vec<SecureField> = Vec::with_capacity(self.gates.len());
        for gate in &self.gates {
            let v = |w: &Wire| values[w.0 as usize];
            let x = match gate {
                Gate::Input(m) => {
                    let k = self.mask[m.tree][m.column]
                        .iter()
                        .position(|&o| o == m.offset)
                        .expect("every input's offset is in the mask");
                    mask[m.tree][m.column][k]
                }
                Gate::Const(c) => *c,
                Gate::Param(p) => param(*p),
                Gate::Add(a, b) => v(a) + v(b),
                Gate::Sub(a, b) => v(a) - v(b),
                Gate::Mul(a, b) => v(a) * v(b),
                Gate::Neg(a) => -v(a),
                Gate::Inv(a) => v(a).inverse(),
            };
            values.push(x);
        }
        self.constraints
            .iter()
            .map(|w| values[w.0 as usize])
            .collect()
    }

    /// Mask values shaped as [`Circuit::mask`] lays them out, each from `value()`.
    pub fn mask_values(
        &self,
        mut value: impl FnMut() -> SecureField,
    ) -> Vec<Vec<Vec<SecureField>>> {
        self.mask
            .iter()
            .map(|tree| {
                tree.iter()
                    .map(|offsets| offsets.iter().map(|_| value()).collect())
                    .collect()
            })
            .collect()
    }

    /// How many gates of each kind.
    pub fn counts(&self) -> GateCounts {
        let mut c = GateCounts {
            constraints: self.constraints.len(),
            ..GateCounts::default()
        };
        for g in &self.gates {
            match g {
                Gate::Input(_) | Gate::Param(_) => c.inputs += 1,
                Gate::Const(_) => c.consts += 1,
                Gate::Add(..) | Gate::Sub(..) | Gate::Neg(_) => c.linear += 1,
                Gate::Mul(..) => c.muls += 1,
                Gate::Inv(_) => c.invs += 1,
            }
        }
        c
    }
}

/// The circuit under construction, shared by every [`Val`] of one compilation.
#[derive(Default)]
struct Builder {
    circuit: Circuit,
    /// Identical gates are one gate.
    seen: HashMap<Gate, Wire>,
    /// Values that become [`Gate::Param`] where the AIR turns them into circuit values.
    params: HashMap<[u32; 4], ParamRef>,
}

thread_local! {
    static BUILDER: RefCell<Option<Builder>> = const { RefCell::new(None) };
}

fn push(gate: Gate) -> Wire {
    BUILDER.with(|b| {
        let mut b = b.borrow_mut();
        let b = b
            .as_mut()
            .expect("circuit values are used only inside `compile`");
        if let Some(&w) = b.seen.get(&gate) {
            return w;
        }
        let w = Wire(u32::try_from(b.circuit.gates.len()).expect("fewer than 2^32 gates"));
        b.circuit.gates.push(gate);
        b.seen.insert(gate, w);
        w
    })
}

/// A circuit value: a constant (folded without a gate) or a wire.
#[derive(Debug, Clone, Copy)]
pub enum Val {
    /// Known at compile time.
    Const(SecureField),
    /// A gate's output.
    Wire(Wire),
}

impl Val {
    fn wire(self) -> Wire {
        match self {
            Val::Wire(w) => w,
            Val::Const(c) => push(Gate::Const(c)),
        }
    }
}

impl From<SecureField> for Val {
    fn from(c: SecureField) -> Self {
        // Relation challenges reach an AIR's constraints only through here (stwo's
        // `combine` converts `z` and each `α^k` with `EF::from`).
        let key = c.to_m31_array().map(|x| x.0);
        match BUILDER.with(|b| {
            b.borrow()
                .as_ref()
                .and_then(|b| b.params.get(&key).copied())
        }) {
            Some(p) => Val::Wire(push(Gate::Param(p))),
            None => Val::Const(c),
        }
    }
}

impl From<BaseField> for Val {
    fn from(c: BaseField) -> Self {
        Val::Const(c.into())
    }
}

impl Add for Val {
    type Output = Val;
    fn add(self, rhs: Val) -> Val {
        match (self, rhs) {
            (Val::Const(a), Val::Const(b)) => Val::Const(a + b),
            (Val::Const(z), x) | (x, Val::Const(z)) if z.is_zero() => x,
            (a, b) => Val::Wire(push(Gate::Add(a.wire(), b.wire()))),
        }
    }
}

impl Sub for Val {
    type Output = Val;
    fn sub(self, rhs: Val) -> Val {
        match (self, rhs) {
            (Val::Const(a), Val::Const(b)) => Val::Const(a - b),
            (x, Val::Const(z)) if z.is_zero() => x,
            (a, b) => Val::Wire(push(Gate::Sub(a.wire(), b.wire()))),
        }
    }
}

impl Mul for Val {
    type Output = Val;
    fn mul(self, rhs: Val) -> Val {
        match (self, rhs) {
            (Val::Const(a), Val::Const(b)) => Val::Const(a * b),
            (Val::Const(z), _) | (_, Val::Const(z)) if z.is_zero() => Val::Const(z),
            (Val::Const(o), x) | (x, Val::Const(o)) if o.is_one() => x,
            (a, b) => Val::Wire(push(Gate::Mul(a.wire(), b.wire()))),
        }
    }
}

impl Neg for Val {
    type Output = Val;
    fn neg(self) -> Val {
        match self {
            Val::Const(a) => Val::Const(-a),
            Val::Wire(w) => Val::Wire(push(Gate::Neg(w))),
        }
    }
}

impl AddAssign for Val {
    fn add_assign(&mut self, rhs: Val) {
        *self = *self + rhs;
    }
}

impl MulAssign for Val {
    fn mul_assign(&mut self, rhs: Val) {
        *self = *self * rhs;
    }
}

/// The mixed-type operators `EvalAtRow` asks for, all through `Val`.
macro_rules! mixed {
    ($($t:ty),*) => {$(
        impl Add<$t> for Val {
            type Output = Val;
            fn add(self, rhs: $t) -> Val {
                self + Val::from(rhs)
            }
        }
        impl Sub<$t> for Val {
            type Output = Val;
            fn sub(self, rhs: $t) -> Val {
                self - Val::from(rhs)
            }
        }
        impl Mul<$t> for Val {
            type Output = Val;
            fn mul(self, rhs: $t) -> Val {
                self * Val::from(rhs)
            }
        }
        impl AddAssign<$t> for Val {
            fn add_assign(&mut self, rhs: $t) {
                *self = *self + Val::from(rhs);
            }
        }
    )*};
}
mixed!(BaseField, SecureField);

impl Zero for Val {
    fn zero() -> Self {
        Val::Const(SecureField::zero())
    }
    fn is_zero(&self) -> bool {
        matches!(self, Val::Const(c) if c.is_zero())
    }
}

impl One for Val {
    fn one() -> Self {
        Val::Const(SecureField::one())
    }
}

impl FieldExpOps for Val {
    fn inverse(&self) -> Self {
        match self {
            Val::Const(c) => Val::Const(c.inverse()),
            Val::Wire(w) => Val::Wire(push(Gate::Inv(*w))),
        }
    }
}

/// The LogUp state of one row, as `stwo_constraint_framework::logup::LogupAtRow`.
#[derive(Debug)]
struct Logup {
    cumsum_shift: Val,
    fracs: Vec<Fraction<Val, Val>>,
    is_finalized: bool,
}

/// The compiling evaluator.
#[derive(Debug)]
pub struct CircuitEval {
    col_index: Vec<usize>,
    logup: Logup,
}

impl CircuitEval {
    fn new(cumsum_shift: Val) -> Self {
        Self {
            col_index: vec![0; 3],
            logup: Logup {
                cumsum_shift,
                fracs: Vec::new(),
                is_finalized: true,
            },
        }
    }
}

impl EvalAtRow for CircuitEval {
    type F = Val;
    type EF = Val;

    fn next_interaction_mask<const N: usize>(
        &mut self,
        interaction: usize,
        offsets: [isize; N],
    ) -> [Val; N] {
        let column = self.col_index[interaction];
        self.col_index[interaction] += 1;
        BUILDER.with(|b| {
            let mut b = b.borrow_mut();
            let mask = &mut b.as_mut().expect("inside compile").circuit.mask;
            mask[interaction].push(offsets.to_vec());
        });
        offsets.map(|offset| {
            Val::Wire(push(Gate::Input(MaskRef {
                tree: interaction,
                column,
                offset,
            })))
        })
    }

    fn add_constraint<G>(&mut self, constraint: G)
    where
        Val: Mul<G, Output = Val> + From<G>,
    {
        let w = Val::from(constraint).wire();
        BUILDER.with(|b| {
            b.borrow_mut()
                .as_mut()
                .expect("inside compile")
                .circuit
                .constraints
                .push(w)
        });
    }

    fn combine_ef(values: [Val; SECURE_EXTENSION_DEGREE]) -> Val {
        // `SecureField::from_partial_evals`, in the same order of operations.
        let [a, b, c, d] = values;
        let mut res = a;
        res += b * SecureField::from_u32_unchecked(0, 1, 0, 0);
        res += c * SecureField::from_u32_unchecked(0, 0, 1, 0);
        res += d * SecureField::from_u32_unchecked(0, 0, 0, 1);
        res
    }

    // From `stwo-constraint-framework` 2.3.0 `logup_proxy!` (Apache-2.0), which is not exported.
    fn write_logup_frac(&mut self, fraction: Fraction<Val, Val>) {
        if self.logup.fracs.is_empty() {
            self.logup.is_finalized = false;
        }
        self.logup.fracs.push(fraction);
    }

    #[allow(clippy::ptr_arg)] // the trait's signature
    fn finalize_logup_batched(&mut self, batching: &Vec<usize>) {
        assert!(!self.logup.is_finalized, "LogUp was already finalized");
        assert_eq!(batching.len(), self.logup.fracs.len());
        let last_batch = *batching.iter().max().expect("at least one fraction");
        let mut by_batch: Vec<Vec<Fraction<Val, Val>>> = vec![Vec::new(); last_batch + 1];
        for (&batch, frac) in batching.iter().zip(&self.logup.fracs) {
            by_batch[batch].push(*frac);
        }
        assert!(
            by_batch.iter().all(|b| !b.is_empty()),
            "batching must contain all consecutive batches"
        );
        let mut prev_col_cumsum = Val::zero();
        for batch in &by_batch[..last_batch] {
            let cur_frac: Fraction<Val, Val> = batch.iter().copied().sum();
            let [cur_cumsum] = self.next_extension_interaction_mask(INTERACTION_TRACE_IDX, [0]);
            let diff = cur_cumsum - prev_col_cumsum;
            prev_col_cumsum = cur_cumsum;
            self.add_constraint(diff * cur_frac.denominator - cur_frac.numerator);
        }
        let frac: Fraction<Val, Val> = by_batch[last_batch].iter().copied().sum();
        let [prev_row_cumsum, cur_cumsum] =
            self.next_extension_interaction_mask(INTERACTION_TRACE_IDX, [-1, 0]);
        let diff = cur_cumsum - prev_row_cumsum - prev_col_cumsum;
        let shifted_diff = diff + self.logup.cumsum_shift;
        self.add_constraint(shifted_diff * frac.denominator - frac.numerator);
        self.logup.is_finalized = true;
    }

    fn finalize_logup(&mut self) {
        let batches = (0..self.logup.fracs.len()).collect();
        self.finalize_logup_batched(&batches)
    }

    fn finalize_logup_in_pairs(&mut self) {
        let batches = (0..self.logup.fracs.len()).map(|n| n / 2).collect();
        self.finalize_logup_batched(&batches)
    }
}

/// Compiles a component's constraints, with its claimed LogUp sum (which enters as the
/// cumulative-sum shift).
///
/// # Panics
/// If the component leaves LogUp fractions unfinalized, or compiles re-entrantly.
pub fn compile<E: FrameworkEval>(eval: &E, claimed_sum: SecureField) -> Circuit {
    let shift = claimed_sum / BaseField::from_u32_unchecked(1 << eval.log_size());
    run(eval, HashMap::new(), |_| Val::Const(shift))
}

/// The highest relation power registered as a parameter (poe's widest relation has 32
/// elements).
pub const MAX_RELATION_POWER: u16 = 64;

/// Compiles a component whose `eval` was built with the relation challenges `relations`
/// (`(z, α)` in draw order): `z` and `α^k` become [`ParamRef`] inputs where the constraints
/// use them, and the cumulative-sum shift is [`ParamRef::CumsumShift`]. The challenges should
/// be random (a constant of the AIR equal to one would be taken for it; compiling twice with
/// different challenges and comparing the circuits shows none is).
///
/// # Panics
/// As [`compile`].
pub fn compile_parametric<E: FrameworkEval>(
    eval: &E,
    relations: &[(SecureField, SecureField)],
) -> Circuit {
    let mut params = HashMap::new();
    for (r, &(z, alpha)) in relations.iter().enumerate() {
        let r = u16::try_from(r).expect("fewer than 2^16 relations");
        params.insert(z.to_m31_array().map(|x| x.0), ParamRef::Z(r));
        let mut power = alpha;
        for k in 1..=MAX_RELATION_POWER {
            params.insert(
                power.to_m31_array().map(|x| x.0),
                ParamRef::AlphaPower(r, k),
            );
            power *= alpha;
        }
    }
    run(eval, params, |_| {
        Val::Wire(push(Gate::Param(ParamRef::CumsumShift)))
    })
}

fn run<E: FrameworkEval>(
    eval: &E,
    params: HashMap<[u32; 4], ParamRef>,
    shift: impl FnOnce(u32) -> Val,
) -> Circuit {
    /// Clears the builder however `evaluate` ends, so that a panic in one compilation does not
    /// poison the next.
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            BUILDER.with(|b| b.borrow_mut().take());
        }
    }
    BUILDER.with(|b| {
        let mut b = b.borrow_mut();
        assert!(b.is_none(), "compile is not re-entrant");
        *b = Some(Builder {
            circuit: Circuit {
                mask: vec![Vec::new(); 3],
                ..Circuit::default()
            },
            params,
            ..Builder::default()
        });
    });
    let _reset = Reset;
    let done = eval.evaluate(CircuitEval::new(shift(eval.log_size())));
    assert!(done.logup.is_finalized, "LogUp was not finalized");
    BUILDER.with(|b| b.borrow_mut().take().expect("set above").circuit)
}
