//! The day's tree of node proofs and its final node (`specs/recursion.md` §8).
//!
//! The leaves are W node proofs, in the order the day plans them; each level pairs its nodes
//! left to right under one M circuit, and an odd last node is **carried up** unchanged (never
//! paired with a dummy: a dummy would be a node an auditor cannot derive). Every node of a
//! tree has one shape — `(log_rows, log_perm_rows)`, every program padded to it
//! ([`super::Program::padded_to`]) — so one M circuit verifies a W and an M alike, at every
//! level. The root is verified once more by the **final node** F, proven at a high blowup and
//! few queries ([`crate::config::SecurityConfig::final_node`]): the one proof an auditor
//! downloads. F states `H(RootNode, key(root) ‖ out(root) ‖ bound)`, `bound` a digest the
//! prover binds to the proof without proving anything of it (the day statement's: the tree's
//! leaves state the segments, not the day); with every key known, an auditor rebuilds that
//! digest from the day's statements alone ([`day_digest`]).

use stwo::core::fields::qm31::SecureField;

use super::child::Writer;
use super::merge::{merge_digest_of, verify_node_child, NodeChild};
use super::program::{Builder, Wire};
use crate::config::SecurityConfig;
use crate::hash::poseidon2::{hash_elements, Digest, Domain};

/// A node as its verifier sees it: its key's digest and its output (two public wires).
pub type NodeStatement = (Digest, [SecureField; 2]);

/// What one level of the tree does with the nodes of the level below, left to right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// An M node over nodes `i` and `i + 1`.
    Merge(usize),
    /// Node `i` (the last, of an odd count) taken up as it is.
    Carry(usize),
}

/// The tree over `n_leaves` leaves, level by level from the leaves up: what each level makes of
/// the one below. Empty for one leaf (it is the root); `None` for none.
pub fn plan(n_leaves: usize) -> Option<Vec<Vec<Step>>> {
    if n_leaves == 0 {
        return None;
    }
    let mut levels = Vec::new();
    let mut n = n_leaves;
    while n > 1 {
        let mut level: Vec<Step> = (0..n / 2).map(|i| Step::Merge(2 * i)).collect();
        if n % 2 == 1 {
            level.push(Step::Carry(n - 1));
        }
        n = level.len();
        levels.push(level);
    }
    Some(levels)
}

/// Folds `leaves` up the tree of [`plan`]: `merge(level, left, right)` makes each M node
/// (`level` 1 for the M nodes over leaves); carried nodes move up. Returns the root.
///
/// # Errors
/// `merge`'s first error; `None` for no leaves.
pub fn fold_tree<T, E>(
    leaves: Vec<T>,
    mut merge: impl FnMut(usize, &T, &T) -> Result<T, E>,
) -> Option<Result<T, E>> {
    let levels = plan(leaves.len())?;
    let mut nodes: Vec<Option<T>> = leaves.into_iter().map(Some).collect();
    for (depth, level) in levels.iter().enumerate() {
        let mut next = Vec::with_capacity(level.len());
        for step in level {
            match *step {
                Step::Merge(i) => {
                    let (a, b) = (nodes[i].as_ref(), nodes[i + 1].as_ref());
                    let (Some(a), Some(b)) = (a, b) else {
                        unreachable!("each node is used once")
                    };
                    match merge(depth + 1, a, b) {
                        Ok(m) => next.push(Some(m)),
                        Err(e) => return Some(Err(e)),
                    }
                }
                Step::Carry(i) => next.push(nodes[i].take()),
            }
        }
        nodes = next;
    }
    nodes.pop().flatten().map(Ok)
}

/// The statement of the tree's root over leaf statements `leaves`, every M node under the key
/// whose digest is `m_key`.
pub fn root_statement(leaves: &[NodeStatement], m_key: Digest) -> Option<NodeStatement> {
    fold_tree(
        leaves.to_vec(),
        |_, a: &NodeStatement, b: &NodeStatement| {
            Ok::<_, std::convert::Infallible>((
                m_key,
                super::gadgets::digest_values(&merge_digest_of([*a, *b])),
            ))
        },
    )
    .map(|r| match r {
        Ok(root) => root,
        Err(never) => match never {},
    })
}

/// The final node's output over the tree's root and the bound digest:
/// `H(RootNode, key(root) ‖ out(root) ‖ bound)`.
pub fn final_digest(root: &NodeStatement, bound: &Digest) -> Digest {
    let mut m = Vec::with_capacity(24);
    m.extend(root.0 .0);
    m.extend(root.1.iter().flat_map(|v| v.to_m31_array()));
    m.extend(bound.0);
    hash_elements(Domain::RootNode, &m)
}

/// What the final node states for a day whose leaves state `leaves` (in the day's order),
/// whose M nodes are under key `m_key` and whose statement's digest is `bound`: what an
/// auditor compares the final proof with.
pub fn day_digest(leaves: &[NodeStatement], m_key: Digest, bound: &Digest) -> Option<Digest> {
    root_statement(leaves, m_key).map(|root| final_digest(&root, bound))
}

/// The final node's circuit: the tree's root (a node proof made under `child_config`)
/// verified whole, and the public digest [`final_digest`] of its key, its output and `bound`
/// (a witness: bound to the proof by the digest, proven of nothing).
///
/// # Errors
/// As [`verify_node_child`].
pub fn finalize(
    w: &mut Writer,
    root: NodeChild<'_>,
    child_config: &SecurityConfig,
    bound: &Digest,
) -> Result<[Wire; 2], String> {
    let (key, out) = verify_node_child(w, root, child_config)?;
    let bound = w.wit_digest(bound);
    let b: &mut Builder = &mut w.b;
    let lanes = [key[0], key[1], out[0], out[1], bound[0], bound[1]];
    let digest = b.hash_lanes(Domain::RootNode, 0, &lanes, 24);
    let public = [b.public(), b.public()];
    b.assert_digest_eq(digest, public);
    w.charge("output digest");
    Ok(public)
}

#[cfg(feature = "prover")]
pub use prover::{TreeNode, TreeProver};

#[cfg(feature = "prover")]
mod prover {
    use stwo::core::fields::qm31::SecureField;

    use super::super::child::Writer;
    use super::super::gadgets::digest_values;
    use super::super::merge::{key_digest, merge, merge_digest, NodeChild};
    use super::super::{trace_node, verify_node, NodeKey, NodeProver, Program};
    use super::{final_digest, finalize, fold_tree};
    use crate::config::{SecurityConfig, VerifierPolicy};
    use crate::hash::channel::Poseidon2MerkleChannel;
    use crate::hash::poseidon2::Digest;
    use crate::proof::Proof;
    use crate::recursion::AnyTrace;

    /// A node proof of the tree with its key and output.
    #[derive(Debug, Clone)]
    pub struct TreeNode {
        pub key: NodeKey,
        pub output: [SecureField; 2],
        pub proof: Proof,
    }

    impl TreeNode {
        /// Its statement: key digest and output.
        pub fn statement(&self) -> super::NodeStatement {
            (key_digest(&self.key), self.output)
        }
    }

    type Prover = NodeProver<Poseidon2MerkleChannel>;

    fn child<'a>(
        n: &'a TreeNode,
        trace: &'a crate::recursion::VerifierTrace<Digest>,
    ) -> NodeChild<'a> {
        NodeChild {
            key: &n.key,
            output: &n.output,
            claimed_sums: &n.proof.claimed_sums,
            trace,
        }
    }

    /// Proves a tree's M nodes and its final node, keeping each circuit's prover (its wiring
    /// committed once) for every proof of that circuit.
    pub struct TreeProver {
        shape: (u32, u32),
        node: SecurityConfig,
        last: SecurityConfig,
        policy: VerifierPolicy,
        m: Option<Prover>,
        f: Option<Prover>,
    }

    impl std::fmt::Debug for TreeProver {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("TreeProver")
                .field("shape", &self.shape)
                .field("node", &self.node)
                .field("last", &self.last)
                .finish_non_exhaustive()
        }
    }

    impl TreeProver {
        /// A prover of trees whose nodes are `2^shape.0` gate rows and `2^shape.1`
        /// permutations, proven under `node`, with a final node under `last`; children are
        /// traced under `policy`.
        #[must_use]
        pub const fn new(
            shape: (u32, u32),
            node: SecurityConfig,
            last: SecurityConfig,
            policy: VerifierPolicy,
        ) -> Self {
            Self {
                shape,
                node,
                last,
                policy,
                m: None,
                f: None,
            }
        }

        /// The node shape.
        #[must_use]
        pub const fn shape(&self) -> (u32, u32) {
            self.shape
        }

        /// The M circuit's key, once an M node was proven.
        pub fn m_key(&self) -> Option<&NodeKey> {
            self.m.as_ref().map(Prover::key)
        }

        /// The M and final circuits, once proven (their rows before padding: `n_rows`).
        pub fn programs(&self) -> (Option<&Program>, Option<&Program>) {
            (
                self.m.as_ref().map(Prover::program),
                self.f.as_ref().map(Prover::program),
            )
        }

        /// The final circuit's key, once the final node was proven.
        pub fn final_key(&self) -> Option<&NodeKey> {
            self.f.as_ref().map(Prover::key)
        }

        fn traced(&self, n: &TreeNode) -> Result<crate::recursion::VerifierTrace<Digest>, String> {
            if (n.key.log_rows, n.key.log_perm_rows) != self.shape {
                return Err(format!(
                    "a node of shape (2^{}, 2^{}) in a tree of shape (2^{}, 2^{})",
                    n.key.log_rows, n.key.log_perm_rows, self.shape.0, self.shape.1
                ));
            }
            match trace_node(&n.proof, &n.key, &n.output, &self.policy) {
                Ok(AnyTrace::Poseidon2(trace)) => Ok(trace),
                Ok(AnyTrace::Blake2s(_)) => Err("a tree node under the Blake2s channel".into()),
                Err(e) => Err(format!("a tree node does not verify: {e}")),
            }
        }

        /// The prover of `program` kept in `slot`: the one there when it is the same
        /// circuit; an error when another circuit of this tree's kind was kept (one key per
        /// kind and shape).
        fn prover<'a>(
            slot: &'a mut Option<Prover>,
            program: Program,
            config: SecurityConfig,
            kind: &str,
        ) -> Result<&'a Prover, String> {
            match slot {
                Some(p) if *p.program() != program => Err(format!(
                    "{kind} over these children is another circuit than this tree's {kind}"
                )),
                Some(p) => Ok(p),
                None => Ok(slot.insert(Prover::new(program, config))),
            }
        }

        /// An M node over `a` and `b` (W or M nodes of the tree's shape), itself of that shape.
        ///
        /// # Errors
        /// A child of another shape or that does not verify; an M circuit larger than the
        /// shape; a prover failure.
        pub fn merge(&mut self, a: &TreeNode, b: &TreeNode) -> Result<TreeNode, String> {
            let (ta, tb) = (self.traced(a)?, self.traced(b)?);
            let mut w = Writer::new();
            merge(&mut w, [child(a, &ta), child(b, &tb)], &self.node)?;
            let (program, witness) = w.finish();
            let natural = (program.log_rows(), program.log_perm_rows());
            if natural.0 > self.shape.0 || natural.1 > self.shape.1 {
                return Err(format!(
                    "M over the shape (2^{}, 2^{}) needs (2^{}, 2^{}): the tree's shape is no fixed point",
                    self.shape.0, self.shape.1, natural.0, natural.1
                ));
            }
            let program = program.padded_to(self.shape.0, self.shape.1);
            let output = digest_values(&merge_digest([(&a.key, &a.output), (&b.key, &b.output)]));
            let prover = Self::prover(&mut self.m, program, self.node, "M")?;
            let proof = prover.prove(&output, &witness).map_err(|e| e.to_string())?;
            Ok(TreeNode {
                key: prover.key().clone(),
                output,
                proof,
            })
        }

        /// The M circuit's key (committing its wiring if no M node was proven yet: a tree of
        /// one leaf has none, but its verifier still names the tree's keys). `any` is any
        /// node of the tree's shape.
        ///
        /// # Errors
        /// As [`Self::merge`].
        pub fn m_key_over(&mut self, any: &TreeNode) -> Result<&NodeKey, String> {
            if self.m.is_none() {
                let trace = self.traced(any)?;
                let mut w = Writer::new();
                merge(&mut w, [child(any, &trace), child(any, &trace)], &self.node)?;
                let (program, _) = w.finish();
                let program = program.padded_to(self.shape.0, self.shape.1);
                Self::prover(&mut self.m, program, self.node, "M")?;
            }
            Ok(self.m_key().expect("just committed"))
        }

        /// The final circuit's key (committing its wiring if no final node was proven yet);
        /// `any` is any node of the tree's shape (the circuit depends on the shape alone).
        ///
        /// # Errors
        /// As [`Self::merge`].
        pub fn final_key_over(&mut self, any: &TreeNode) -> Result<&NodeKey, String> {
            if self.f.is_none() {
                let trace = self.traced(any)?;
                let mut w = Writer::new();
                finalize(&mut w, child(any, &trace), &self.node, &Digest::default())?;
                let (program, _) = w.finish();
                Self::prover(&mut self.f, program, self.last, "the final node")?;
            }
            Ok(self.final_key().expect("just committed"))
        }

        /// The final node over the tree's root binding `bound`, verified here under `policy`.
        ///
        /// # Errors
        /// As [`Self::merge`].
        pub fn finish(&mut self, root: &TreeNode, bound: &Digest) -> Result<TreeNode, String> {
            let trace = self.traced(root)?;
            let mut w = Writer::new();
            finalize(&mut w, child(root, &trace), &self.node, bound)?;
            let (program, witness) = w.finish();
            let output = digest_values(&final_digest(&root.statement(), bound));
            let prover = Self::prover(&mut self.f, program, self.last, "the final node")?;
            let proof = prover.prove(&output, &witness).map_err(|e| e.to_string())?;
            let node = TreeNode {
                key: prover.key().clone(),
                output,
                proof,
            };
            verify_node(&node.proof, &node.key, &node.output, &self.policy)
                .map_err(|e| format!("the final node does not verify: {e}"))?;
            Ok(node)
        }

        /// The whole tree over `leaves` (W nodes of the tree's shape, in the day's order) and
        /// its final node binding `bound`; `progress(level, seconds)` after each M node.
        ///
        /// # Errors
        /// No leaves; as [`Self::merge`].
        pub fn prove(
            &mut self,
            leaves: Vec<TreeNode>,
            bound: &Digest,
            mut progress: impl FnMut(usize, f64),
        ) -> Result<(TreeNode, TreeNode), String> {
            let root = fold_tree(leaves, |level, a, b| {
                let t = std::time::Instant::now();
                let m = self.merge(a, b);
                progress(level, t.elapsed().as_secs_f64());
                m
            })
            .ok_or("a tree without leaves")??;
            let last = self.finish(&root, bound)?;
            Ok((root, last))
        }
    }
}
