//! Proving the recursive daily root, v4 (feature `prover`; `specs/day-proof.md` §6): the
//! day's segments under the Poseidon2-M31 channel in their shape classes, a W node over each
//! (one W circuit, one proving key, per class), the tree of M nodes and the final node.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use super::prove::{prove_segments, Runs};
use super::recursive::{
    check_presets, rebuild_segments, RecursionPresets, RecursiveFormat, RecursiveRoot, RootKeys,
    RootSamples, SegmentRef,
};
use super::statement::{BatchStatement, DayStatement};
use crate::config::VerifierPolicy;
use crate::error::{ProveError, VerifyError};
use crate::hash::channel::Poseidon2MerkleChannel;
use crate::proof::ChannelId;
use crate::proof::Proof;
use crate::recursion::node::child::Writer;
use crate::recursion::node::gadgets::digest_values;
use crate::recursion::node::merge::key_digest;
use crate::recursion::node::tree::{TreeNode, TreeProver};
use crate::recursion::node::wrap::{statement_digest, validity_w};
use crate::recursion::node::{NodeProver, Program};
use crate::recursion::AnyTrace;
use crate::validity::{trace_validity, ShapeClass, ValidityStatement};
use crate::venue::{Instrument, Operation, Venue};

/// Seconds per stage of a v4 root.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RecursionTimings {
    /// The segments' batch-validity proofs.
    pub segments: f64,
    /// The W circuits built and their wiring committed.
    pub w_keys: f64,
    /// The W node proofs.
    pub w: f64,
    /// The M node proofs (their circuit's wiring committed with the first).
    pub m: f64,
    /// The final node (its wiring committed too).
    pub last: f64,
    /// M nodes proven.
    pub n_m: usize,
    /// Runs whose segments were proven before the close ([`Runs`]) and reused.
    pub reused_runs: usize,
}

fn recursion(e: impl std::fmt::Display) -> ProveError {
    ProveError::Recursion(e.to_string())
}

/// A v4 root with what its prover also knows.
#[derive(Debug, Clone)]
pub struct RecursiveProof {
    /// The root file's contents.
    pub root: RecursiveRoot,
    /// The keys it verifies under.
    pub keys: RootKeys,
    /// The segments' proofs, each with its class and the statement it proves, in order.
    pub segments: Vec<(ShapeClass, ValidityStatement, Proof)>,
    /// The tree's leaves: the W node proofs, one per segment, in order.
    pub leaves: Vec<TreeNode>,
    /// Seconds per stage.
    pub timings: RecursionTimings,
}

/// The W circuit over a segment proof of `statement` and its witness.
fn w_circuit(
    statement: &ValidityStatement,
    proof: &Proof,
    presets: RecursionPresets,
    policy: &VerifierPolicy,
) -> Result<(Program, Vec<crate::field::SecureField>), ProveError> {
    let AnyTrace::Poseidon2(trace) =
        trace_validity(proof.clone(), statement, policy).map_err(recursion)?
    else {
        return Err(recursion("a segment under the Blake2s channel"));
    };
    let mut w = Writer::new();
    validity_w(
        &mut w,
        statement,
        &presets.segment,
        &proof.claimed_sums,
        &trace,
    )
    .map_err(recursion)?;
    Ok(w.finish())
}

/// The keys of v4 roots derived from proofs of the circuits' shapes, as an auditor can: per
/// class a segment proof of it with the statement it proves (`samples`: each verified, its W
/// circuit built — the circuit depends on the class alone, so any proof of the class gives it),
/// the tree shape the largest of those W's, and one W node proof over the first sample (`w`,
/// verified under the derived key) from which the M and final circuits are built. Every key
/// committed here: seconds per circuit.
///
/// # Errors
/// [`ProveError::Recursion`] for a sample or W proof that does not verify, two samples of one
/// class with different circuits, or none.
pub fn derive_keys(
    samples: &[(ShapeClass, ValidityStatement, Proof)],
    w: &Proof,
    presets: RecursionPresets,
    policy: &VerifierPolicy,
) -> Result<RootKeys, ProveError> {
    let mut programs: BTreeMap<(u32, u32), Program> = BTreeMap::new();
    for (class, statement, proof) in samples {
        let id = (class.log_ops, class.log_state);
        if proof.config != presets.segment {
            return Err(recursion(format!(
                "a sample of class {} proven under another configuration than the segments'",
                class.name()
            )));
        }
        if statement.shape != Some(class.shape()) {
            return Err(recursion(format!(
                "a sample of class {} states another shape",
                class.name()
            )));
        }
        let (program, _) = w_circuit(statement, proof, presets, policy)?;
        if programs.get(&id).is_some_and(|p| *p != program) {
            return Err(recursion(format!(
                "two W circuits for class {}",
                class.name()
            )));
        }
        programs.insert(id, program);
    }
    let (class, statement, _) = samples.first().ok_or_else(|| recursion("no samples"))?;
    // The samples' statements say the segments' AIR, hence the root format the keys are for.
    let format = match crate::recursion::node::wrap::child_air(statement) {
        crate::validity::ValidityAir::V4 => RecursiveFormat::V5,
        _ => RecursiveFormat::V4,
    };
    if samples
        .iter()
        .any(|(_, s, _)| s.interior_roots.is_some() != statement.interior_roots.is_some())
    {
        return Err(recursion("samples of two root formats"));
    }
    if w.config != presets.node {
        return Err(recursion(
            "the W sample proven under another configuration than the nodes'",
        ));
    }
    let shape = programs.values().fold((0, 0), |(r, q), p| {
        (r.max(p.log_rows()), q.max(p.log_perm_rows()))
    });
    let mut keys = BTreeMap::new();
    let mut first = None;
    for (id, program) in programs {
        let key = NodeProver::<Poseidon2MerkleChannel>::new(
            program.padded_to(shape.0, shape.1),
            presets.node,
        )
        .key()
        .clone();
        if id == (class.log_ops, class.log_state) {
            first = Some(key.clone());
        }
        keys.insert(id, key_digest(&key));
    }
    let node = TreeNode {
        key: first.expect("the first sample's class has a key"),
        output: digest_values(&statement_digest(statement)),
        proof: w.clone(),
    };
    let mut tree = TreeProver::new(shape, presets.node, presets.last, *policy);
    let m = key_digest(tree.m_key_over(&node).map_err(recursion)?);
    let last = tree.final_key_over(&node).map_err(recursion)?.clone();
    Ok(RootKeys {
        format,
        shape,
        presets,
        w: keys,
        m,
        last,
    })
}

impl RecursiveProof {
    /// What an auditor derives the keys from: the first segment of each class and the W
    /// over segment 0.
    pub fn samples(&self) -> RootSamples {
        RootSamples {
            segments: RootSamples::expected_indices(&self.root)
                .into_iter()
                .map(|i| (i, self.segments[i as usize].2.clone()))
                .collect(),
            w: self.leaves[0].proof.clone(),
        }
    }
}

/// A v4 root's keys derived by its auditor from the published samples ([`RootSamples`]):
/// each sample checked to be the first segment of its class, verified against the statement
/// rebuilt from the auditor's own batch statements, its W circuit built and committed
/// ([`derive_keys`]); the tree shape checked against the root's. Seconds per class on two
/// cores; cache the result (the keys depend on the presets, shape and classes alone).
///
/// # Errors
/// The coverage errors of [`rebuild_segments`]; [`VerifyError::SecurityTooLow`] for presets
/// under the policy; [`VerifyError::KeySamples`] for samples of other segments, or that do
/// not verify, or that give another tree shape.
pub fn keys_from_samples(
    root: &RecursiveRoot,
    samples: &RootSamples,
    batches: &[BatchStatement],
    listed: &(dyn Fn(u32) -> Option<Vec<Instrument>> + Sync),
    policy: &VerifierPolicy,
) -> Result<RootKeys, VerifyError> {
    check_presets(root, policy)?;
    let expected = RootSamples::expected_indices(root);
    let got: Vec<u32> = samples.segments.iter().map(|(i, _)| *i).collect();
    if got != expected {
        return Err(VerifyError::KeySamples(format!(
            "samples of segments {got:?}; the root's classes need the first segment of each, {expected:?}"
        )));
    }
    let (statements, _) = rebuild_segments(root, batches, listed)?;
    let triples: Vec<(ShapeClass, ValidityStatement, Proof)> = samples
        .segments
        .iter()
        .map(|(i, p)| {
            let i = *i as usize;
            (root.segments[i].class, statements[i].clone(), p.clone())
        })
        .collect();
    let keys = derive_keys(&triples, &samples.w, root.presets(), policy)
        .map_err(|e| VerifyError::KeySamples(e.to_string()))?;
    if keys.shape != root.shape {
        return Err(VerifyError::KeySamples(format!(
            "they give tree shape (2^{}, 2^{}), the root states (2^{}, 2^{})",
            keys.shape.0, keys.shape.1, root.shape.0, root.shape.1
        )));
    }
    Ok(keys)
}

/// The v5 root of a day: `statements` in canonical order, `ops[i]` batch `i`'s operations,
/// `venues` each rollup's state before its first batch of the day; `progress` hears of each
/// stage.
///
/// # Errors
/// As [`super::prove_root_as`] for the segments; [`ProveError::Recursion`] for a node that
/// cannot be built or proven.
#[allow(clippy::too_many_arguments)]
pub fn prove_recursive(
    day: u32,
    statements: &[BatchStatement],
    ops: &[&[Operation]],
    manifest_hash: [u8; 32],
    venues: &HashMap<u32, Venue>,
    presets: RecursionPresets,
    policy: &VerifierPolicy,
    progress: &mut dyn FnMut(&str),
) -> Result<RecursiveProof, ProveError> {
    prove_recursive_with(
        RecursiveFormat::V5,
        day,
        statements,
        ops,
        manifest_hash,
        venues,
        presets,
        policy,
        progress,
        &mut Runs::none(),
    )
}

/// [`prove_recursive`] in `format` (v5, or v4 for its golden bundle), taking the runs proven
/// before the close from `runs` (each checked, and proven again where it does not verify) and
/// handing it each run it proves: the same bytes either way.
///
/// # Errors
/// As [`prove_recursive`].
#[allow(clippy::too_many_arguments)]
pub fn prove_recursive_with(
    format: RecursiveFormat,
    day: u32,
    statements: &[BatchStatement],
    ops: &[&[Operation]],
    manifest_hash: [u8; 32],
    venues: &HashMap<u32, Venue>,
    presets: RecursionPresets,
    policy: &VerifierPolicy,
    progress: &mut dyn FnMut(&str),
    runs: &mut Runs<'_>,
) -> Result<RecursiveProof, ProveError> {
    assert_eq!(
        statements.len(),
        ops.len(),
        "one list of operations per batch"
    );
    let statement = DayStatement::derive(day, statements, manifest_hash)?;
    let mut timings = RecursionTimings::default();
    let t = Instant::now();
    let segments = prove_segments(
        statements,
        ops,
        venues,
        presets.segment,
        ChannelId::Poseidon2,
        Some(format.segment_air()),
        runs,
    )?;
    timings.segments = t.elapsed().as_secs_f64();
    timings.reused_runs = runs.reused;
    progress(&format!(
        "{} segments in {:.1} s ({} runs proven before the close)",
        segments.len(),
        timings.segments,
        runs.reused
    ));

    // Each segment's W circuit and witness; one circuit per class.
    let t = Instant::now();
    let mut programs: BTreeMap<(u32, u32), Program> = BTreeMap::new();
    let mut leaves = Vec::with_capacity(segments.len());
    let mut table = Vec::with_capacity(segments.len());
    for seg in &segments {
        let class = seg
            .class
            .ok_or_else(|| recursion("a segment outside the classes"))?;
        let id = (class.log_ops, class.log_state);
        let AnyTrace::Poseidon2(trace) =
            trace_validity(seg.segment.proof.clone(), &seg.statement, policy).map_err(recursion)?
        else {
            return Err(recursion("a segment under the Blake2s channel"));
        };
        let mut w = Writer::new();
        validity_w(
            &mut w,
            &seg.statement,
            &presets.segment,
            &seg.segment.proof.claimed_sums,
            &trace,
        )
        .map_err(recursion)?;
        let (program, witness) = w.finish();
        match programs.entry(id) {
            Entry::Vacant(e) => {
                e.insert(program);
            }
            Entry::Occupied(e) if *e.get() != program => {
                return Err(recursion(format!(
                    "two W circuits for class {}",
                    class.name()
                )))
            }
            Entry::Occupied(_) => {}
        }
        leaves.push((
            id,
            witness,
            digest_values(&statement_digest(&seg.statement)),
        ));
        table.push(SegmentRef {
            rollup_id: seg.segment.rollup_id,
            first_seq: seg.segment.first_seq,
            last_seq: seg.segment.last_seq,
            class,
        });
    }
    let segments: Vec<(ShapeClass, ValidityStatement, Proof)> = segments
        .into_iter()
        .zip(&table)
        .map(|(s, t)| (t.class, s.statement, s.segment.proof))
        .collect();
    // The tree's shape: the largest W's (M is smaller than the W it verifies).
    let shape = programs.values().fold((0, 0), |(r, q), p| {
        (r.max(p.log_rows()), q.max(p.log_perm_rows()))
    });
    let provers: BTreeMap<(u32, u32), NodeProver<Poseidon2MerkleChannel>> = programs
        .into_iter()
        .map(|(id, p)| {
            (
                id,
                NodeProver::new(p.padded_to(shape.0, shape.1), presets.node),
            )
        })
        .collect();
    timings.w_keys = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut nodes = Vec::with_capacity(leaves.len());
    for (id, witness, output) in &leaves {
        let prover = &provers[id];
        let proof = prover.prove(output, witness).map_err(recursion)?;
        nodes.push(TreeNode {
            key: prover.key().clone(),
            output: *output,
            proof,
        });
    }
    timings.w = t.elapsed().as_secs_f64();
    progress(&format!(
        "{} W nodes proven in {:.1} s (tree shape 2^{} gate rows, 2^{} permutations)",
        nodes.len(),
        timings.w,
        shape.0,
        shape.1
    ));
    let w: BTreeMap<(u32, u32), _> = provers
        .iter()
        .map(|(id, p)| (*id, key_digest(p.key())))
        .collect();
    drop(provers);

    let mut tree = TreeProver::new(shape, presets.node, presets.last, *policy);
    let t = Instant::now();
    let mut n_m = 0usize;
    let leaves = nodes.clone();
    let root = crate::recursion::node::tree::fold_tree(nodes, |level, a, b| {
        let m = tree.merge(a, b);
        n_m += 1;
        progress(&format!(
            "M node {n_m} (level {level}) proven at {:.1} s",
            t.elapsed().as_secs_f64()
        ));
        m
    })
    .ok_or_else(|| recursion("a day without segments"))?
    .map_err(recursion)?;
    timings.m = t.elapsed().as_secs_f64();
    timings.n_m = n_m;
    let m = key_digest(tree.m_key_over(&leaves[0]).map_err(recursion)?);
    let t = Instant::now();
    let last = tree.finish(&root, &statement.digest()).map_err(recursion)?;
    timings.last = t.elapsed().as_secs_f64();
    progress(&format!("final node proven in {:.1} s", timings.last));
    let keys = RootKeys {
        format,
        shape,
        presets,
        w,
        m,
        last: tree.final_key().expect("the final node was proven").clone(),
    };
    Ok(RecursiveProof {
        root: RecursiveRoot {
            format,
            shape,
            segment_config: presets.segment,
            node_config: presets.node,
            segments: table,
            last: last.proof,
        },
        keys,
        segments,
        leaves,
        timings,
    })
}
