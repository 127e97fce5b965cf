//! Node kind W over a batch-validity v3 or v4 proof (`specs/recursion.md` §7.8): the whole of
//! `verify_validity` for one statement shape as a node circuit — the preamble (constant for
//! the shape, then the statement's public inputs as the node's public wires), the pinned
//! range-table root, the main root, the twelve relation draws, the claimed LogUp sums and
//! their closing against the closure chain's two ends, the interaction root, the STARK
//! verification after its entry ([`super::child::verify_child`]), and the out-of-domain
//! constraint check: every component's compiled constraints, with the relation challenges
//! and LogUp shifts as wires, folded by the composition coefficient and divided by the
//! vanishing polynomial, equal to the composition value the proof's samples give.
//!
//! The circuit depends on the statement's component sizes only (a shape class: one W key per
//! class); the proof's values are witnesses.

use num_traits::Zero;
use stwo::core::channel::Channel;
use stwo::core::fields::qm31::SecureField;
use stwo_constraint_framework::FrameworkEval;

use super::child::{constraints_at_oods, verify_child, ChildShape, Compiled, Powers, Writer};
use super::gadgets::digest_values;
use super::program::Wire;
use super::transcript::TranscriptWires;
use crate::config::SecurityConfig;
use crate::field::M31;
use crate::hash::channel::Poseidon2Channel;
use crate::hash::poseidon2::{Digest, Domain, RATE};
use crate::proof::ChannelId;
use crate::recursion::compiler::{compile_parametric, Circuit};
use crate::recursion::trace::VerifierTrace;
use crate::validity::closure::TERM_LIMBS;
use crate::validity::registry::{Components, EvalVisitor};
use crate::validity::{ComponentId, ValidityAir, ValidityRelations, ValidityStatement};

/// Relation draws of the batch-validity AIR (`ValidityRelations::draw`: one two-felt draw
/// each, `z` then `α`).
pub const N_RELATION_DRAWS: usize = 12;

/// The closure chain's draw index.
const CLOSURE_CHAIN: usize = 11;

struct Parametric<'a>(&'a [(SecureField, SecureField)]);

impl EvalVisitor for Parametric<'_> {
    type Out = (Circuit, u32);
    fn visit<E: FrameworkEval + Sync + 'static>(self, eval: E) -> (Circuit, u32) {
        (compile_parametric(&eval, self.0), eval.log_size())
    }
}

/// Challenges to compile with: drawn from a fixed channel, so that the compiled circuits (and
/// the key) are the same on every machine. Any challenges give the same circuit (tested); these
/// are only the values the compiler recognises as parameters.
fn compile_relations() -> (ValidityRelations, Vec<(SecureField, SecureField)>) {
    let mut channel = Poseidon2Channel::default();
    channel.mix_u64(u64::from_le_bytes(*b"poe/wrap"));
    let mut copy = channel.clone();
    let rels = ValidityRelations::draw(&mut channel);
    let raw = (0..N_RELATION_DRAWS)
        .map(|_| {
            let v = copy.draw_secure_felts(2);
            (v[0], v[1])
        })
        .collect();
    (rels, raw)
}

/// The AIR a W node verifies a proof of `statement` under: v4 where it states interior roots
/// (`ValidityStatement::interior_roots`), else v3.
pub fn child_air(statement: &ValidityStatement) -> ValidityAir {
    match statement.interior_roots {
        Some(_) => ValidityAir::V4,
        None => ValidityAir::V3,
    }
}

/// A W node's output for `statement`: `hash_elements(Statement, public inputs)`.
pub fn statement_digest(statement: &ValidityStatement) -> Digest {
    crate::hash::poseidon2::hash_elements(
        Domain::Statement,
        &statement.public_inputs(child_air(statement)),
    )
}

/// The wires a W circuit exposes.
#[derive(Debug, Clone)]
pub struct WrapWires {
    /// The node's public wires: the statement digest ([`statement_digest`]).
    pub public: [Wire; 2],
    /// The child's constraints folded at the out-of-domain point and divided by the vanishing
    /// polynomial: what stwo's verifier compares with the composition samples.
    pub constraints_at_oods: Wire,
}

/// Appends the W circuit of a batch-validity v3 proof of `statement` (its shape: the
/// component sizes) made under `config` with claimed sums `sums`, whose verification `trace`
/// records — a v4 proof where the statement states interior roots ([`child_air`]: the AIR id
/// in the preamble and the state components' constraints differ, the public input's layout
/// does not). The statement's public inputs are witnesses; the node states their digest.
///
/// # Errors
/// A record or statement of another shape than the circuit's (a bug in the caller).
pub fn validity_w(
    w: &mut Writer,
    statement: &ValidityStatement,
    config: &SecurityConfig,
    sums: &[SecureField],
    trace: &VerifierTrace<Digest>,
) -> Result<WrapWires, String> {
    let air = child_air(statement);
    let ids = ComponentId::of(air);
    if sums.len() != ids.len() {
        return Err(format!(
            "expected {} claimed sums, got {}",
            ids.len(),
            sums.len()
        ));
    }
    let public_inputs = statement.public_inputs(air);

    // The preamble up to the public inputs: constants of the shape.
    let mut head = Poseidon2Channel::default();
    crate::stark::mix_preamble_head(
        &mut head,
        ChannelId::Poseidon2,
        air.air_id(),
        config,
        public_inputs.len(),
    );
    let mut t = TranscriptWires::at(&mut w.b, &head.digest());
    let pis: Vec<Wire> = public_inputs.iter().map(|&v| w.wit(v.into())).collect();
    let b = &mut w.b;
    t.mix_word_values(b, &pis);

    // The component sizes are the shape's.
    for (k, id) in ids.iter().enumerate() {
        let size = b.constant(SecureField::from(M31::from(id.log_rows(statement))));
        b.assert_eq(pis[k], size);
    }

    let pinned =
        crate::validity::range::pinned_table_root(ChannelId::Poseidon2, config.log_blowup())
            .ok_or_else(|| {
                format!(
                    "no pinned range table for log_blowup {}",
                    config.log_blowup()
                )
            })?;
    let pp_root = digest_values(&Digest(pinned.map(M31::from))).map(|v| b.constant(v));
    t.mix_root(b, pp_root);
    let main_root = w.wit_digest(&trace.trees[1].root);
    t.mix_root(&mut w.b, main_root);
    let rel: Vec<[Wire; 2]> = (0..N_RELATION_DRAWS).map(|_| t.draw(&mut w.b)).collect();
    let sum_wires: Vec<Wire> = sums.iter().map(|&s| w.wit(s)).collect();
    t.mix_felts(&mut w.b, &sum_wires);
    let interaction_root = w.wit_digest(&trace.trees[2].root);
    t.mix_root(&mut w.b, interaction_root);

    let mut powers = Powers::new(rel.iter().map(|r| r[1]).collect());

    // The sums close against the chain's ends: Σ sums = 1/d(|L|, end) − 1/d(0, start(|L|)),
    // with d(i, s) = i + Σ_k α^(k+1)·s_k − z.
    let b = &mut w.b;
    let n = ids.len();
    let [z, _] = rel[CLOSURE_CHAIN];
    let mut d_end = b.sub(pis[n], z);
    for k in 0..16 {
        let a = powers.get(b, CLOSURE_CHAIN, (k + 1) as u16);
        d_end = b.mul_add(a, pis[n + 1 + k], d_end);
    }
    // start(|L|) = [0; 8, Closure, TERM_LIMBS·|L|, 0, …]
    let a_dom = powers.get(b, CLOSURE_CHAIN, (RATE + 1) as u16);
    let a_len = powers.get(b, CLOSURE_CHAIN, (RATE + 2) as u16);
    let dom = b.constant(SecureField::from(M31::from(Domain::Closure as u32)));
    let d_start = b.mul_sub(a_dom, dom, z);
    let len_term = b.scale(pis[n], M31::from(TERM_LIMBS as u32));
    let d_start = b.mul_add(a_len, len_term, d_start);
    let inv_end = b.inverse(d_end);
    let inv_start = b.inverse(d_start);
    let expected = b.sub(inv_end, inv_start);
    let mut total = sum_wires[0];
    for &s in &sum_wires[1..] {
        total = b.add(total, s);
    }
    b.assert_eq(total, expected);

    w.charge("prelude: preamble, roots, relations, sums");

    // The STARK after its entry.
    let shape = ChildShape::of_trace(trace, config)?;
    let out = verify_child(
        w,
        &shape,
        t.digest,
        [pp_root, main_root, interaction_root],
        trace,
    )?;

    // The constraints at the out-of-domain point.
    let (rels, raw) = compile_relations();
    let zero_sums = vec![SecureField::zero(); ids.len()];
    let components = Components::new(air, statement, &ValidityRelations::dummy(), &zero_sums);
    let compiled: Vec<Compiled> = ids
        .iter()
        .zip(components.as_components())
        .zip(&sum_wires)
        .map(|((id, component), &sum)| {
            let (circuit, log_size) = id.eval_with(air, statement, &rels, Parametric(&raw));
            Compiled {
                circuit,
                preprocessed: component.preprocessed_column_indices(),
                log_size,
                sum,
            }
        })
        .collect();
    let composition = constraints_at_oods(&mut w.b, &out, &shape, &compiled, &rel, &mut powers)?;
    w.charge("constraints at the OODS point");
    let b = &mut w.b;
    let digest = b.hash_elements(Domain::Statement, &pis);
    let public = [b.public(), b.public()];
    b.assert_digest_eq(digest, public);
    w.charge("statement digest");
    Ok(WrapWires {
        public,
        constraints_at_oods: composition,
    })
}
