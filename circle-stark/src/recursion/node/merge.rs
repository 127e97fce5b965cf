//! Node kind M (`specs/recursion.md` §7.9): verifies two node proofs — W or M nodes of one
//! node shape — and states `H(NodeOutput, key(A) ‖ out(A) ‖ key(B) ‖ out(B))`, so that a
//! parent (or the root's verifier) knows which circuits produced which outputs, in order.
//!
//! A child's verifying key is data, not part of the M circuit: its preprocessed root and its
//! public wiring are witnesses, bound by the child's transcript (the root is mixed and every
//! opened preprocessed row is authenticated against it) and stated through the key digest.
//! What the M circuit fixes is the children's shape: their component sizes, channel and FRI
//! configuration, and that they have two public wires (a digest).
//!
//! For each child: the node verifier's preamble (constant head, then the public inputs
//! `[2, id, uses, out coordinates]` as 16-bit limbs), the roots, the wire relation's draw,
//! the claimed sums, their balance against the public wires' share, the STARK after its entry
//! ([`super::child::verify_child`]) and the gate and permutation components' constraints at
//! the out-of-domain point.

use num_traits::Zero;
use stwo::core::channel::Channel;
use stwo::core::fields::qm31::SecureField;
use stwo_constraint_framework::FrameworkEval;

use super::child::{constraints_at_oods, verify_child, ChildShape, Compiled, Powers, Writer};
use super::gadgets::DigestWires;
use super::program::{Builder, Wire};
use super::transcript::TranscriptWires;
use super::{perm, GateEval, NodeKey, WireRel};
use crate::config::SecurityConfig;
use crate::field::M31;
use crate::hash::channel::Poseidon2Channel;
use crate::hash::poseidon2::{hash_elements, Digest, Domain};
use crate::proof::{AirId, ChannelId};
use crate::recursion::compiler::compile_parametric;
use crate::recursion::trace::VerifierTrace;

/// Public wires of every node of the tree: one digest.
pub const NODE_PUBLICS: usize = 2;

/// The elements a node key's digest hashes: its preprocessed root, component sizes, blowup,
/// and each public wire's id and read count.
fn key_message(key: &NodeKey) -> Vec<M31> {
    let mut m: Vec<M31> = key.preprocessed_root.map(M31::from).to_vec();
    m.extend([key.log_rows, key.log_perm_rows, key.log_blowup].map(M31::from));
    for &(id, uses) in &key.publics {
        m.extend([M31::from(id), M31::from(uses)]);
    }
    m
}

/// `hash_elements(NodeKey, root ‖ log_rows ‖ log_perm_rows ‖ log_blowup ‖ (id, uses)…)`.
pub fn key_digest(key: &NodeKey) -> Digest {
    hash_elements(Domain::NodeKey, &key_message(key))
}

/// An M node's output over children `(key, output)`, in order.
pub fn merge_digest(children: [(&NodeKey, &[SecureField; 2]); 2]) -> Digest {
    merge_digest_of(children.map(|(key, out)| (key_digest(key), *out)))
}

/// [`merge_digest`] with the children's keys given by their digests (what an auditor holds).
pub fn merge_digest_of(children: [(Digest, [SecureField; 2]); 2]) -> Digest {
    let mut m = Vec::with_capacity(32);
    for (key, out) in children {
        m.extend(key.0);
        m.extend(out.iter().flat_map(|v| v.to_m31_array()));
    }
    hash_elements(Domain::NodeOutput, &m)
}

/// One child of an M node: a node proof with its key, its output and the record of its
/// verification.
#[derive(Debug, Clone, Copy)]
pub struct NodeChild<'a> {
    pub key: &'a NodeKey,
    /// The values of its two public wires.
    pub output: &'a [SecureField; 2],
    pub claimed_sums: &'a [SecureField],
    pub trace: &'a VerifierTrace<Digest>,
}

/// Challenges to compile the node components with (any give the same circuit).
fn compile_relations() -> (WireRel, (SecureField, SecureField)) {
    let mut channel = Poseidon2Channel::default();
    channel.mix_u64(u64::from_le_bytes(*b"poe/merg"));
    let mut copy = channel.clone();
    let rel = WireRel::draw(&mut channel);
    let v = copy.draw_secure_felts(2);
    (rel, (v[0], v[1]))
}

/// Appends the verification of one node proof made under `config`: returns its key digest
/// and output as wires.
///
/// # Errors
/// A child that is not a Poseidon2 node proof with two public wires at the blowup of
/// `config`, or a record of another shape.
pub fn verify_node_child(
    w: &mut Writer,
    child: NodeChild<'_>,
    config: &SecurityConfig,
) -> Result<(DigestWires, [Wire; 2]), String> {
    let key = child.key;
    if key.publics.len() != NODE_PUBLICS
        || key.channel != ChannelId::Poseidon2
        || key.log_blowup != config.log_blowup()
        || child.claimed_sums.len() != 2
    {
        return Err("a child of another node shape".into());
    }
    // The key and the output: witnesses.
    let pp_root = w.wit_digest(&Digest(key.preprocessed_root.map(M31::from)));
    let wiring: Vec<Wire> = key
        .publics
        .iter()
        .flat_map(|&(id, uses)| [id, uses])
        .map(|v| SecureField::from(M31::from(v)))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|v| w.wit(v))
        .collect();
    let out: [Wire; 2] = child.output.map(|v| w.wit(v));

    // The preamble: constant up to the public inputs, which are
    // `[2, (id, uses, four coordinates) per public wire]`.
    let n_inputs = 1 + NODE_PUBLICS * 6;
    let mut head = Poseidon2Channel::default();
    crate::stark::mix_preamble_head(
        &mut head,
        ChannelId::Poseidon2,
        AirId::Node,
        config,
        n_inputs,
    );
    let b = &mut w.b;
    let mut t = TranscriptWires::at(b, &head.digest());
    let mut inputs = vec![b.constant(SecureField::from(M31::from(NODE_PUBLICS as u32)))];
    let mut coords = Vec::with_capacity(NODE_PUBLICS);
    for k in 0..NODE_PUBLICS {
        let c = b.coordinates(out[k]);
        inputs.extend([wiring[2 * k], wiring[2 * k + 1]]);
        inputs.extend(c);
        coords.push(c);
    }
    t.mix_word_values(b, &inputs);
    t.mix_root(b, pp_root);
    let main_root = w.wit_digest(&child.trace.trees[1].root);
    t.mix_root(&mut w.b, main_root);
    let rel = t.draw(&mut w.b);
    let sums: Vec<Wire> = child.claimed_sums.iter().map(|&s| w.wit(s)).collect();
    t.mix_felts(&mut w.b, &sums);
    let interaction_root = w.wit_digest(&child.trace.trees[2].root);
    t.mix_root(&mut w.b, interaction_root);

    // The wires balance: gate sum + permutation sum + Σ uses / d(id, value) = 0, with
    // d(id, v) = id + α·v0 + α²·v1 + α³·v2 + α⁴·v3 − z.
    let b = &mut w.b;
    let mut powers = Powers::new(vec![rel[1]]);
    let mut total = b.add(sums[0], sums[1]);
    for k in 0..NODE_PUBLICS {
        let mut d = b.sub(wiring[2 * k], rel[0]);
        for (j, &c) in coords[k].iter().enumerate() {
            let a = powers.get(b, 0, (j + 1) as u16);
            d = b.mul_add(a, c, d);
        }
        let inv = b.inverse(d);
        total = b.mul_add(wiring[2 * k + 1], inv, total);
    }
    b.assert_eq(total, Wire::ZERO);
    w.charge("prelude: preamble, roots, relations, sums");

    let shape = ChildShape::of_trace(child.trace, config)?;
    let verified = verify_child(
        w,
        &shape,
        t.digest,
        [pp_root, main_root, interaction_root],
        child.trace,
    )?;

    let (rels, raw) = compile_relations();
    let components = super::Components::new(key, &WireRel::dummy(), &[SecureField::zero(); 2]);
    let gate = GateEval {
        log_rows: key.log_rows,
        wires: rels.clone(),
    };
    let perm_eval = perm::PermEval {
        log_rows: key.log_perm_rows,
        wires: rels,
    };
    let compiled = [
        Compiled {
            circuit: compile_parametric(&gate, &[raw]),
            preprocessed: stwo::core::air::Component::preprocessed_column_indices(&components.gate),
            log_size: gate.log_size(),
            sum: sums[0],
        },
        Compiled {
            circuit: compile_parametric(&perm_eval, &[raw]),
            preprocessed: stwo::core::air::Component::preprocessed_column_indices(&components.perm),
            log_size: perm_eval.log_size(),
            sum: sums[1],
        },
    ];
    constraints_at_oods(&mut w.b, &verified, &shape, &compiled, &[rel], &mut powers)?;
    w.charge("constraints at the OODS point");

    // The key digest.
    let b = &mut w.b;
    let sizes = b.constant(SecureField::from_m31_array([
        M31::from(key.log_rows),
        M31::from(key.log_perm_rows),
        M31::from(key.log_blowup),
        M31::from(0u32),
    ]));
    // Lanes of root ‖ log_rows ‖ log_perm_rows ‖ log_blowup ‖ id0 ‖ uses0 ‖ id1 ‖ uses1.
    let e3 = b.constant(SecureField::from_m31_array([0, 0, 0, 1].map(M31::from)));
    let lane2 = b.mul_add(wiring[0], e3, sizes);
    let lane3 = b.from_coordinates([wiring[1], wiring[2], wiring[3], Wire::ZERO]);
    let key_wires = b.hash_lanes(
        Domain::NodeKey,
        0,
        &[pp_root[0], pp_root[1], lane2, lane3],
        15,
    );
    w.charge("key digest");
    Ok((key_wires, out))
}

/// The M circuit over two node proofs: each verified ([`verify_node_child`]), and the public
/// digest `H(NodeOutput, key(A) ‖ out(A) ‖ key(B) ‖ out(B))`.
///
/// # Errors
/// As [`verify_node_child`].
pub fn merge(
    w: &mut Writer,
    children: [NodeChild<'_>; 2],
    config: &SecurityConfig,
) -> Result<[Wire; 2], String> {
    let mut lanes = Vec::with_capacity(8);
    for child in children {
        let (key, out) = verify_node_child(w, child, config)?;
        lanes.extend(key);
        lanes.extend(out);
    }
    let b: &mut Builder = &mut w.b;
    let digest = b.hash_lanes(Domain::NodeOutput, 0, &lanes, 32);
    let public = [b.public(), b.public()];
    b.assert_digest_eq(digest, public);
    w.charge("output digest");
    Ok(public)
}
