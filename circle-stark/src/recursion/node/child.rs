//! A child proof's STARK verification as node ops (`specs/recursion.md` §7.7): everything
//! stwo's `verify` does after its entry — the transcript's draws and mixes, the out-of-domain
//! point, the composition value from its sampled coordinates, FRI's commitments, the proof of
//! work, the query positions, and per query the opened rows against their trees, the DEEP
//! quotient and FRI's folds down to the last layer — for a child under the Poseidon2-M31
//! channel with fold step 1 and a constant last layer (poe's FRI shape).
//!
//! The circuit depends only on the child's [`ChildShape`]; the proof's values are witnesses,
//! written beside the ops by a [`Writer`] from the tracing verifier's record. Queries are
//! checked one by one, in the order drawn, each with its whole authentication paths (repeated
//! positions are checked twice, not merged as stwo's decommitment does), so the circuit does
//! not depend on which positions coincide.
//!
//! What this does not do yet: evaluate the child's constraints at the out-of-domain point (the
//! caller compares [`ChildWires::composition_oods_eval`] with them) and the caller's prelude
//! (statement, roots of the first three trees, relation draws and LogUp sums), which give the
//! transcript's entry state and the three roots.

use std::collections::HashMap;

use num_traits::One;
use stwo::core::circle::{CirclePoint, Coset};
use stwo::core::fields::m31::BaseField;
use stwo::core::fields::qm31::SecureField;
use stwo::core::poly::circle::CanonicCoset;

use super::gadgets::{digest_values, DigestWires};
use super::program::{Builder, Form, Program, Wire};
use super::transcript::TranscriptWires;
use crate::config::SecurityConfig;
use crate::field::M31;
use crate::hash::poseidon2::{Digest, Domain};
use crate::recursion::trace::{MerkleTrace, VerifierTrace};

/// What the verifier circuit of a child depends on: its trees' column sizes, the mask (sample
/// points relative to the out-of-domain point), and the FRI configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildShape {
    pub log_blowup: u32,
    pub n_queries: usize,
    pub pow_bits: u32,
    /// log2 of the lifting domain, FRI's first layer.
    pub lifting_log_size: u32,
    /// Per tree (preprocessed, main, interaction, composition): committed column log sizes.
    pub column_log_sizes: Vec<Vec<u32>>,
    /// Per tree, its height.
    pub heights: Vec<u32>,
    /// Per tree, per column: the sample points as multiples of the trace step
    /// (`CanonicCoset(lifting − blowup).step()`) added to the out-of-domain point.
    pub offsets: Vec<Vec<Vec<isize>>>,
    /// FRI's line layers between the first layer and the last.
    pub n_inner_layers: usize,
    /// Per FRI layer (the first, then the inner ones), how many times it folds: 1 for batch
    /// validity, 2 for node proofs (the last inner layer whatever remains).
    pub fri_folds: Vec<u32>,
    /// log2 of the last layer's coefficients (0 for batch validity, 4 for node proofs).
    pub log_last_layer: u32,
}

impl ChildShape {
    /// The shape of the proof `trace` records, made under `config`.
    ///
    /// # Errors
    /// A sample point that is not the out-of-domain point shifted by at most 8 trace steps, a
    /// tree other than the preprocessed one lower than the lifting domain, or not four trees.
    pub fn of_trace(
        trace: &VerifierTrace<Digest>,
        config: &SecurityConfig,
    ) -> Result<Self, String> {
        if trace.trees.len() != 4 {
            return Err(format!("expected 4 trees, got {}", trace.trees.len()));
        }
        let n = trace.lifting_log_size;
        let log_blowup = config.log_blowup();
        let step = CanonicCoset::new(n - log_blowup).step();
        let offsets = trace
            .sample_points
            .iter()
            .enumerate()
            .map(|(t, tree)| {
                tree.iter()
                    .enumerate()
                    .map(|(c, points)| {
                        points
                            .iter()
                            .map(|p| {
                                (-8..=8isize)
                                    .find(|&k| {
                                        trace.oods_point + step.mul_signed(k).into_ef() == *p
                                    })
                                    .ok_or_else(|| {
                                        format!("tree {t} column {c}: a sample point off the mask")
                                    })
                            })
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        // The circuit folds one or two steps per layer.
        if let Some(layer) = trace
            .fri_layers
            .iter()
            .find(|l| !(1..=2).contains(&l.fold_step))
        {
            return Err(format!(
                "FRI fold step {} (the circuit folds one or two steps per layer)",
                layer.fold_step
            ));
        }
        for (t, tree) in trace.trees.iter().enumerate().skip(1) {
            if tree.height != n {
                return Err(format!(
                    "tree {t}: height {} below the lifting domain {n}",
                    tree.height
                ));
            }
        }
        Ok(Self {
            log_blowup,
            n_queries: config.n_queries() as usize,
            pow_bits: config.pow_bits(),
            lifting_log_size: n,
            column_log_sizes: trace
                .trees
                .iter()
                .map(|t| t.column_log_sizes.clone())
                .collect(),
            heights: trace.trees.iter().map(|t| t.height).collect(),
            offsets,
            n_inner_layers: trace.fri_layers.len().saturating_sub(1),
            fri_folds: trace.fri_layers.iter().map(|l| l.fold_step).collect(),
            log_last_layer: trace.last_layer_poly.len().trailing_zeros(),
        })
    }
}

/// A program built together with its witness: each witness wire is created with its value,
/// so the two cannot drift apart. It also tallies what each part of the circuit costs.
#[derive(Debug, Clone, Default)]
pub struct Writer {
    pub b: Builder,
    pub witness: Vec<SecureField>,
    /// `(part, gate rows, permutations)`, parts in order of first charge.
    pub tally: Vec<(&'static str, usize, usize)>,
    mark: (usize, usize),
}

impl Writer {
    /// An empty program.
    pub fn new() -> Self {
        Self::default()
    }

    /// A witness wire holding `v`.
    pub fn wit(&mut self, v: SecureField) -> Wire {
        self.witness.push(v);
        self.b.witness()
    }

    /// A digest as two witness wires.
    pub fn wit_digest(&mut self, d: &Digest) -> DigestWires {
        digest_values(d).map(|v| self.wit(v))
    }

    /// Charges what was built since the last charge to `part`.
    pub fn charge(&mut self, part: &'static str) {
        let now = self.b.size();
        let (rows, perms) = (now.0 - self.mark.0, now.1 - self.mark.1);
        self.mark = now;
        match self.tally.iter_mut().find(|t| t.0 == part) {
            Some(t) => {
                t.1 += rows;
                t.2 += perms;
            }
            None => self.tally.push((part, rows, perms)),
        }
    }

    /// The program and its witness.
    pub fn finish(self) -> (Program, Vec<SecureField>) {
        (self.b.finish(), self.witness)
    }
}

/// The wires a caller needs to finish a child's verification: the composition coefficient,
/// the out-of-domain point, every sampled value, and the composition polynomial's value there
/// as the proof's sampled coordinates give it.
#[derive(Debug, Clone)]
pub struct ChildWires {
    pub composition_coeff: Wire,
    pub oods_point: [Wire; 2],
    /// Per tree, per column, per sample point.
    pub sampled: Vec<Vec<Vec<Wire>>>,
    pub composition_oods_eval: Wire,
}

fn qm(v: [u32; 4]) -> SecureField {
    SecureField::from_m31_array(v.map(M31::from))
}

/// The basis element `e_j`.
fn basis(j: usize) -> SecureField {
    qm(std::array::from_fn(|k| u32::from(k == j)))
}

fn neg(x: M31) -> M31 {
    -x
}

/// `p + g` for a constant point `g` (the circle group law; two rows).
pub(crate) fn add_const_point(
    b: &mut Builder,
    p: [Wire; 2],
    g: CirclePoint<BaseField>,
) -> [Wire; 2] {
    let [x, y] = p;
    let x2 = b.compute(
        x,
        y,
        Wire::ZERO,
        Form {
            la: g.x,
            lb: neg(g.y),
            ..Form::default()
        },
    );
    let y2 = b.compute(
        x,
        y,
        Wire::ZERO,
        Form {
            la: g.y,
            lb: g.x,
            ..Form::default()
        },
    );
    [x2, y2]
}

/// `2x² − 1`: the x-coordinate of a point doubled.
pub(crate) fn double_x(b: &mut Builder, x: Wire) -> Wire {
    b.compute(
        x,
        x,
        Wire::ZERO,
        Form {
            mab: M31::from(2u32),
            k: -SecureField::one(),
            ..Form::default()
        },
    )
}

/// Coordinate `j` of `x` moved to slot `m`: `(x ⊙ e_j) · e_j⁻¹ · e_m`, added to `acc`.
fn move_coordinate(b: &mut Builder, x: Wire, j: usize, m: usize, acc: Wire) -> Wire {
    let mask = b.constant(basis(j));
    let masked = b.pointwise_mul(x, mask);
    let shift = b.constant(basis(m) / basis(j));
    b.mul_add(masked, shift, acc)
}

/// A decommitment's node compressions by `(layer, index)`.
struct Nodes(HashMap<(u32, usize), (Digest, Digest)>);

impl Nodes {
    fn new(opening: &MerkleTrace<Digest>) -> Self {
        Self(
            opening
                .nodes
                .iter()
                .map(|n| ((n.layer, n.index), (n.left, n.right)))
                .collect(),
        )
    }

    /// The sibling of `position` at `level` (0 = leaves) of its authentication path.
    fn sibling(&self, position: usize, level: u32) -> Result<Digest, String> {
        let (left, right) = self
            .0
            .get(&(level + 1, position >> (level + 1)))
            .ok_or_else(|| format!("no node above position {position} at level {level}"))?;
        Ok(if (position >> level) & 1 == 1 {
            *left
        } else {
            *right
        })
    }
}

/// A batch of DEEP terms: the columns sampled at one point.
struct Batch {
    shift: CirclePoint<BaseField>,
    /// `(tree, column, sampled value, α power)`.
    terms: Vec<(usize, usize, Wire, usize)>,
}

/// Per-proof values of one batch the per-query sums use.
struct BatchWires {
    /// `conj(z.y) − z.y`.
    c: Wire,
    /// `Σ α^n · (conj(v) − v)`.
    a: Wire,
    /// `c · Σ α^n · v − z.y · a`.
    b: Wire,
    /// The CM31 halves of `z`: `z.x.1`, `z.y.1` and `z.x.0·z.y.1 − z.y.0·z.x.1`.
    x1: Wire,
    y1: Wire,
    k: Wire,
    /// Per `(tree, lane)` the batch touches, the transposed coefficients `T^m` (m = 0..4):
    /// slot `j` of `T^m` is coordinate `m` of the α power of the column at slot `j`.
    lanes: Vec<((usize, usize), [Wire; 4])>,
}

/// The row of `tree` at a query as stwo's leaf orders it: columns sorted by log size, stable.
fn leaf_order(sizes: &[u32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&c| sizes[c]);
    order
}

/// The position bits of a query in a tree of height `h` (least significant first) from its
/// bits in the lifting domain of log size `n` (stwo's preprocessed positions for `h ≠ n`).
fn tree_bits(q: &[Wire], n: u32, h: u32) -> Vec<Wire> {
    if h == n {
        return q.to_vec();
    }
    let mut bits = vec![q[0]];
    if h < n {
        bits.extend_from_slice(&q[(n - h + 1) as usize..]);
    } else {
        bits.extend(std::iter::repeat_n(Wire::ZERO, (h - n) as usize));
        bits.extend_from_slice(&q[1..]);
    }
    bits
}

/// The position of a lifting-domain query in a tree of height `h`.
fn tree_position(q: usize, n: u32, h: u32) -> usize {
    if h == n {
        q
    } else if h < n {
        (q >> (n - h + 1) << 1) + (q & 1)
    } else {
        (q >> 1 << (h - n + 1)) + (q & 1)
    }
}

/// Appends the verification of the child `trace` records (shape `shape`) to `w`, starting
/// from the transcript digest `entry` (after the caller's prelude, no draws since its last
/// mix) with the preprocessed, main and interaction roots `roots`.
///
/// # Errors
/// A record that does not have the shape's structure (a bug in the caller).
pub fn verify_child(
    w: &mut Writer,
    shape: &ChildShape,
    entry: DigestWires,
    roots: [DigestWires; 3],
    trace: &VerifierTrace<Digest>,
) -> Result<ChildWires, String> {
    let n = shape.lifting_log_size;
    let mut t = TranscriptWires {
        digest: entry,
        n_draws: 0,
    };

    let composition_coeff = t.draw_secure_felt(&mut w.b);
    let composition_root = w.wit_digest(&trace.trees[3].root);
    t.mix_root(&mut w.b, composition_root);
    let tree_roots = [roots[0], roots[1], roots[2], composition_root];

    // The out-of-domain point ((1 − t²)/(1 + t²), 2t/(1 + t²)).
    let oods_t = t.draw_secure_felt(&mut w.b);
    let b = &mut w.b;
    let t2 = b.mul(oods_t, oods_t);
    let one = b.one();
    let denom = b.add(t2, one);
    let inv = b.inverse(denom);
    let ox = b.sub_mul(inv, t2, inv);
    let oy = b.compute(
        oods_t,
        inv,
        Wire::ZERO,
        Form {
            mab: M31::from(2u32),
            ..Form::default()
        },
    );

    // Sampled values, in the proof's order, mixed whole.
    if trace.sampled_values.len() != shape.offsets.len() {
        return Err("sampled values of another tree count".into());
    }
    let mut sampled: Vec<Vec<Vec<Wire>>> = Vec::new();
    for (tree, offs) in trace.sampled_values.iter().zip(&shape.offsets) {
        if tree.len() != offs.len() || tree.iter().zip(offs).any(|(v, o)| v.len() != o.len()) {
            return Err("sampled values off the mask".into());
        }
        sampled.push(
            tree.iter()
                .map(|col| col.iter().map(|&v| w.wit(v)).collect())
                .collect(),
        );
    }
    let flat: Vec<Wire> = sampled.iter().flatten().flatten().copied().collect();
    t.mix_felts(&mut w.b, &flat);

    // The composition polynomial at the point from its eight coordinate samples.
    let b = &mut w.b;
    let comp: Vec<Wire> = sampled[3].iter().map(|c| c[0]).collect();
    let mut halves = [Wire::ZERO; 2];
    for (h, half) in halves.iter_mut().enumerate() {
        let mut acc = comp[4 * h];
        for j in 1..4 {
            let e = b.constant(basis(j));
            acc = b.mul_add(comp[4 * h + j], e, acc);
        }
        *half = acc;
    }
    let mut xz = ox;
    for _ in 1..n - shape.log_blowup {
        xz = double_x(b, xz);
    }
    let composition_oods_eval = b.mul_add(xz, halves[1], halves[0]);

    let deep_coeff = t.draw_secure_felt(&mut w.b);

    // FRI's commitments.
    let n_layers = 1 + shape.n_inner_layers;
    if trace.fri_layers.len() != n_layers
        || trace.last_layer_poly.len() != 1 << shape.log_last_layer
        || trace
            .fri_layers
            .iter()
            .map(|l| l.fold_step)
            .ne(shape.fri_folds.iter().copied())
    {
        return Err("FRI layers of another shape".into());
    }
    let mut fri_roots = Vec::with_capacity(n_layers);
    let mut fri_alphas = Vec::with_capacity(n_layers);
    for layer in &trace.fri_layers {
        let root = w.wit_digest(&layer.commitment);
        t.mix_root(&mut w.b, root);
        fri_roots.push(root);
        fri_alphas.push(t.draw_secure_felt(&mut w.b));
    }
    let last: Vec<Wire> = trace.last_layer_poly.iter().map(|&c| w.wit(c)).collect();
    t.mix_felts(&mut w.b, &last);
    // A layer that folds twice folds its second time with α².
    let fri_alphas_sq: Vec<Option<Wire>> = fri_alphas
        .iter()
        .zip(&shape.fri_folds)
        .map(|(&a, &f)| (f == 2).then(|| w.b.mul(a, a)))
        .collect();
    // Line layers that fold twice need the y of the query's point in their domain.
    let track_y = shape.fri_folds.iter().skip(1).any(|&f| f == 2);

    // Proof of work: the low bits of compress(H(ProofOfWork, D ‖ [bits]), nonce)[0].
    let limbs: [Wire; 4] = std::array::from_fn(|i| {
        w.wit(SecureField::from(M31::from(
            ((trace.pow_nonce >> (16 * i)) & 0xffff) as u32,
        )))
    });
    let b = &mut w.b;
    for &limb in &limbs {
        b.bits(limb, 16);
    }
    let nonce = b.from_coordinates(limbs);
    let n_bits = b.constant(SecureField::from(M31::from(shape.pow_bits)));
    let prefix = b.hash_lanes(
        Domain::ProofOfWork,
        0,
        &[t.digest[0], t.digest[1], n_bits],
        9,
    );
    let work = b.compress(prefix, [nonce, Wire::ZERO]);
    let first = b.coordinate(work[0], 0);
    let work_bits = b.bits(first, 31);
    for &bit in &work_bits[..shape.pow_bits as usize] {
        b.assert_eq(bit, Wire::ZERO);
    }
    t.mix_u64_limbs(&mut w.b, nonce);

    let queries = t.draw_queries(&mut w.b, n, shape.n_queries);
    if trace.raw_queries.len() != shape.n_queries {
        return Err("another query count".into());
    }
    w.charge("transcript, OODS point, proof of work, query bits");

    let batches = deep_batches(&mut w.b, shape, &sampled, [ox, oy], deep_coeff);
    w.charge("DEEP coefficients (per proof)");

    // The domain's points: half coset `initial + i·step`, its second half conjugated.
    let half = Coset::half_odds(n - 1);
    let tree_nodes: Vec<Nodes> = trace.tree_openings.iter().map(Nodes::new).collect();
    let fri_nodes: Vec<Nodes> = trace
        .fri_layers
        .iter()
        .map(|l| Nodes::new(&l.merkle))
        .collect();
    for (qi, bits) in queries.iter().enumerate() {
        let q = trace.raw_queries[qi];
        let b = &mut w.b;
        let mut p = [
            b.constant(half.initial.x.into()),
            b.constant(half.initial.y.into()),
        ];
        // Index bit `k` of the half coset is query bit `n − 1 − k` (bit-reversed order).
        for k in 0..(n - 1) as usize {
            let moved = add_const_point(b, p, half.step.repeated_double(k as u32));
            let bit = bits[n as usize - 1 - k];
            p = [b.select(bit, moved[0], p[0]), b.select(bit, moved[1], p[1])];
        }
        // Query bit 0 picks the conjugate: y → −y.
        let y = b.compute(
            bits[0],
            p[1],
            Wire::ZERO,
            Form {
                mab: neg(M31::from(2u32)),
                lb: M31::from(1u32),
                ..Form::default()
            },
        );
        let point = [p[0], y];

        // The opened rows, as lanes, against their trees.
        let mut lanes: Vec<Vec<Wire>> = Vec::with_capacity(4);
        for (ti, opening) in trace.tree_openings.iter().enumerate() {
            let h = shape.heights[ti];
            if h == 0 {
                // A tree without columns: stwo's empty commitment, the zero digest.
                if qi == 0 {
                    w.b.assert_digest_eq(tree_roots[ti], [Wire::ZERO; 2]);
                }
                lanes.push(Vec::new());
                continue;
            }
            let pos = tree_position(q, n, h);
            let leaf = opening
                .leaves
                .iter()
                .find(|l| l.position == pos)
                .ok_or_else(|| format!("tree {ti}: no opened row at {pos}"))?;
            let row_lanes: Vec<Wire> = leaf
                .row
                .chunks(4)
                .map(|c| {
                    w.wit(SecureField::from_m31_array(std::array::from_fn(|j| {
                        c.get(j).copied().unwrap_or(M31::from(0u32))
                    })))
                })
                .collect();
            w.charge("opened rows (witness lanes)");
            let digest = w.b.leaf_hash_lanes(&row_lanes);
            w.charge("opened rows' leaf hashes");
            let tbits = tree_bits(bits, n, h);
            let mut path = Vec::with_capacity(h as usize);
            for (level, &bit) in tbits.iter().enumerate() {
                let s = tree_nodes[ti].sibling(pos, level as u32)?;
                path.push((w.wit_digest(&s), bit));
            }
            let root = w.b.merkle_root(digest, &path);
            w.b.assert_digest_eq(root, tree_roots[ti]);
            w.charge("trace trees' authentication paths");
            lanes.push(row_lanes);
        }

        let value = deep_value(&mut w.b, &batches, &lanes, point);
        w.charge("DEEP quotients (per query)");

        // FRI: fold the query's value layer by layer with its own point's twiddle, so that
        // neither a pair's order nor the twiddle's sign depends on the position's parity.
        // `(cx, cy)` is the query's point in the current line domain once `pending` doublings
        // are applied (the first line domain's point is the half coset's `p`).
        let mut v = value;
        let (mut cx, mut cy) = (point[0], p[1]);
        let mut pending = 0u32;
        let mut offset = 0usize;
        for (j, layer) in trace.fri_layers.iter().enumerate() {
            let pos = q >> offset;
            let fold = shape.fri_folds[j];
            if j > 0 {
                for _ in 0..pending {
                    let b = &mut w.b;
                    if track_y {
                        cy = b.compute(
                            cx,
                            cy,
                            Wire::ZERO,
                            Form {
                                mab: M31::from(2u32),
                                ..Form::default()
                            },
                        );
                    }
                    cx = double_x(b, cx);
                }
                pending = 0;
            }
            let f = layer
                .folds
                .iter()
                .find(|f| f.position == pos >> fold)
                .ok_or_else(|| format!("FRI layer {j}: no fold at {}", pos >> fold))?;
            let layer_bits = &bits[offset..];
            if fold == 1 {
                let s = w.wit(f.values[1 - (pos & 1)]);
                let b = &mut w.b;
                let twiddle = if j == 0 { point[1] } else { cx };
                let tinv = b.inverse(twiddle);
                let beta = b.mul(fri_alphas[j], tinv);
                let folded = fold_pair(b, beta, v, s);
                let leaf_v = b.leaf_hash_lanes(&[v]);
                let leaf_s = b.leaf_hash_lanes(&[s]);
                let mut path = vec![(leaf_s, layer_bits[0])];
                for (level, &bit) in layer_bits.iter().enumerate().skip(1) {
                    let sib = fri_nodes[j].sibling(pos, level as u32)?;
                    path.push((w.wit_digest(&sib), bit));
                }
                let root = w.b.merkle_root(leaf_v, &path);
                w.b.assert_digest_eq(root, fri_roots[j]);
                v = folded;
                pending += u32::from(j > 0);
            } else {
                // Four values in position order, one packed leaf; the query's value is the one
                // at its two low bits.
                let vals: Vec<Wire> = f.values.iter().map(|&x| w.wit(x)).collect();
                let b = &mut w.b;
                let (b0, b1) = (layer_bits[0], layer_bits[1]);
                let a0 = b.select(b0, vals[1], vals[0]);
                let a1 = b.linear(&[(vals[0], 1), (vals[1], 1), (a0, -1)]);
                let c0 = b.select(b0, vals[3], vals[2]);
                let c1 = b.linear(&[(vals[2], 1), (vals[3], 1), (c0, -1)]);
                let own = b.select(b1, c0, a0);
                let sib = b.select(b1, c1, a1);
                let other = b.linear(&[(a0, 1), (c0, 1), (own, -1)]);
                let other_sib = b.linear(&[(a1, 1), (c1, 1), (sib, -1)]);
                b.assert_eq(own, v);
                // The pair holding the query folds by the query's own twiddle; the other pair
                // by its member at the query's parity, whose point is the query's moved by a
                // quarter (line) or half (circle) turn of the domain.
                let (g_own, g_other, line_x) = if j == 0 {
                    // Circle: the other pair's point is −Q, twiddle −y.
                    let tinv = b.inverse(point[1]);
                    let beta = b.mul(fri_alphas[j], tinv);
                    let g_own = fold_pair(b, beta, v, sib);
                    let g_other = fold_pair(b, beta, other_sib, other);
                    (g_own, g_other, point[0])
                } else {
                    let tinv = b.inverse(cx);
                    let beta = b.mul(fri_alphas[j], tinv);
                    let g_own = fold_pair(b, beta, v, sib);
                    // x(C ± R) = ∓R.y·C.y for R the domain's point of order 4: the sign is the
                    // query's bit 1 (+R from bit 1 clear).
                    let log_size = layer.log_size;
                    let r_y = line_domain_quarter_y(n, offset, log_size);
                    let yinv = b.inverse(cy);
                    // 1/t = −r_y·(1 − 2·b1)/C.y
                    let uinv = b.compute(
                        b1,
                        yinv,
                        Wire::ZERO,
                        Form {
                            lb: neg(r_y),
                            mab: M31::from(2u32) * r_y,
                            ..Form::default()
                        },
                    );
                    let beta_u = b.mul(fri_alphas[j], uinv);
                    let g_other = fold_pair(b, beta_u, other, other_sib);
                    (g_own, g_other, cx)
                };
                // The second fold, along the line: the pair's own point doubled.
                let x2 = if j == 0 { line_x } else { double_x(b, line_x) };
                let x2inv = b.inverse(x2);
                let alpha_sq = fri_alphas_sq[j].ok_or("a two-fold layer without α²")?;
                let beta2 = b.mul(alpha_sq, x2inv);
                let folded = fold_pair(b, beta2, g_own, g_other);
                let leaf = b.leaf_hash_lanes(&vals);
                let height = layer.log_size as usize - 2;
                let mut path = Vec::with_capacity(height);
                for (level, &bit) in layer_bits[2..2 + height].iter().enumerate() {
                    let s = fri_nodes[j].sibling(pos >> 2, level as u32)?;
                    path.push((w.wit_digest(&s), bit));
                }
                let root = w.b.merkle_root(leaf, &path);
                w.b.assert_digest_eq(root, fri_roots[j]);
                v = folded;
                pending += if j == 0 { 1 } else { 2 };
            }
            offset += fold as usize;
        }
        // The last layer at the query's x there.
        let b = &mut w.b;
        for _ in 0..pending {
            cx = double_x(b, cx);
        }
        let mut factors = Vec::with_capacity(shape.log_last_layer as usize);
        if shape.log_last_layer > 0 {
            let mut f = cx;
            for _ in 0..shape.log_last_layer {
                factors.push(f);
                f = double_x(b, f);
            }
        }
        let at_x = line_eval(b, &last, &factors);
        b.assert_eq(v, at_x);
        w.charge("FRI folds and paths");
    }

    Ok(ChildWires {
        composition_coeff,
        oods_point: [ox, oy],
        sampled,
        composition_oods_eval,
    })
}

/// `v + s + β·(v − s)`: a pair folded by the twiddle of `v`'s own point (`β = α/t`), whatever
/// `v`'s place in the pair.
fn fold_pair(b: &mut Builder, beta: Wire, v: Wire, s: Wire) -> Wire {
    b.compute(
        beta,
        v,
        s,
        Form {
            lb: M31::from(1u32),
            ld: M31::from(1u32),
            mab: M31::from(1u32),
            mad: neg(M31::from(1u32)),
            ..Form::default()
        },
    )
}

/// `R.y` for `R` the point of order 4 that moves a position of the line domain of FRI layer
/// (`offset` folds into a lifting domain of log size `n`, this layer's log size `log_size`) by
/// two in bit-reversed order: `step · 2^(log_size − 2)` of its coset.
fn line_domain_quarter_y(n: u32, offset: usize, log_size: u32) -> M31 {
    // The first line domain is the circle domain's half coset; each fold doubles it.
    let coset = Coset::half_odds(n - 1).repeated_double(offset as u32 - 1);
    debug_assert_eq!(coset.log_size, log_size);
    coset.step.repeated_double(log_size - 2).y
}

/// stwo's `LinePoly::eval_at_point` from its coefficients (bit-reversed, as in the proof) and
/// the doublings of the point: `fold(lhs) + fold(rhs)·factor`, halves recursively.
fn line_eval(b: &mut Builder, coeffs: &[Wire], factors: &[Wire]) -> Wire {
    match factors.split_first() {
        None => coeffs[0],
        Some((&factor, rest)) => {
            let (lhs, rhs) = coeffs.split_at(coeffs.len() / 2);
            let l = line_eval(b, lhs, rest);
            let r = line_eval(b, rhs, rest);
            b.mul_add(r, factor, l)
        }
    }
}

/// The DEEP batches in stwo's order (by point, in order of first appearance; a column sampled
/// at two points first gets its periodicity sample), with their per-proof wires.
fn deep_batches(
    b: &mut Builder,
    shape: &ChildShape,
    sampled: &[Vec<Vec<Wire>>],
    oods: [Wire; 2],
    alpha: Wire,
) -> Vec<BatchWires> {
    let n = shape.lifting_log_size;
    let step = CanonicCoset::new(n - shape.log_blowup).step();
    let generator = CanonicCoset::new(n).step();
    let mut batches: Vec<Batch> = Vec::new();
    let mut n_terms = 0;
    let mut add = |shift: CirclePoint<BaseField>, tree, col, value| {
        let power = n_terms;
        n_terms += 1;
        match batches.iter_mut().find(|bt| bt.shift == shift) {
            Some(bt) => bt.terms.push((tree, col, value, power)),
            None => batches.push(Batch {
                shift,
                terms: vec![(tree, col, value, power)],
            }),
        }
    };
    for (ti, (offs, values)) in shape.offsets.iter().zip(sampled).enumerate() {
        for (c, (o, v)) in offs.iter().zip(values).enumerate() {
            if let [_, last] = o.as_slice() {
                let period = generator.repeated_double(shape.column_log_sizes[ti][c]);
                add(step.mul_signed(*last) + period, ti, c, v[1]);
            }
            for (&k, &value) in o.iter().zip(v) {
                add(step.mul_signed(k), ti, c, value);
            }
        }
    }

    let mut powers = Vec::with_capacity(n_terms);
    let mut p = b.one();
    for _ in 0..n_terms {
        powers.push(p);
        p = b.mul(p, alpha);
    }
    // conj(v) − v = v ⊙ (0, 0, −2, −2); the CM31 halves by masks and u⁻¹.
    let minus_two = neg(M31::from(2u32));
    let conj_diff = b.constant(SecureField::from_m31_array([
        M31::from(0u32),
        M31::from(0u32),
        minus_two,
        minus_two,
    ]));
    let low = b.constant(qm([1, 1, 0, 0]));
    let high = b.constant(qm([0, 0, 1, 1]));
    let u_inv = b.constant(SecureField::one() / basis(2));
    let orders: Vec<Vec<usize>> = shape
        .column_log_sizes
        .iter()
        .map(|s| leaf_order(s))
        .collect();
    let slots: Vec<HashMap<usize, usize>> = orders
        .iter()
        .map(|o| o.iter().enumerate().map(|(s, &c)| (c, s)).collect())
        .collect();

    batches
        .into_iter()
        .map(|batch| {
            let z = if batch.shift == CirclePoint::zero() {
                oods
            } else {
                add_const_point(b, oods, batch.shift)
            };
            let c = b.pointwise_mul(z[1], conj_diff);
            let (mut a, mut v) = (Wire::ZERO, Wire::ZERO);
            for &(_, _, value, power) in &batch.terms {
                let d = b.pointwise_mul(value, conj_diff);
                a = b.mul_add(powers[power], d, a);
                v = b.mul_add(powers[power], value, v);
            }
            let cv = b.mul(c, v);
            let bb = b.sub_mul(cv, z[1], a);
            let halves = |b: &mut Builder, x: Wire| {
                let x0 = b.pointwise_mul(x, low);
                let x1 = b.pointwise_mul(x, high);
                (x0, b.mul(x1, u_inv))
            };
            let (x0, x1) = halves(b, z[0]);
            let (y0, y1) = halves(b, z[1]);
            let x0y1 = b.mul(x0, y1);
            let k = b.sub_mul(x0y1, y0, x1);

            // Transposed coefficients per lane the batch touches, lanes in first-touch order.
            let mut lanes: Vec<((usize, usize), [Wire; 4])> = Vec::new();
            for &(ti, col, _, power) in &batch.terms {
                let slot = slots[ti][&col];
                let key = (ti, slot / 4);
                let idx = match lanes.iter().position(|(k, _)| *k == key) {
                    Some(i) => i,
                    None => {
                        lanes.push((key, [Wire::ZERO; 4]));
                        lanes.len() - 1
                    }
                };
                for m in 0..4 {
                    let acc = lanes[idx].1[m];
                    lanes[idx].1[m] = move_coordinate(b, powers[power], m, slot % 4, acc);
                }
            }
            BatchWires {
                c,
                a,
                b: bb,
                x1,
                y1,
                k,
                lanes,
            }
        })
        .collect()
}

/// The DEEP quotient at a query: `Σ_B (c_B·S_B − a_B·p.y − b_B) / den_B(p)` with
/// `S_B = Σ α^n · v` over the batch's opened values.
fn deep_value(b: &mut Builder, batches: &[BatchWires], lanes: &[Vec<Wire>], p: [Wire; 2]) -> Wire {
    let mut acc = Wire::ZERO;
    for batch in batches {
        // P_m = Σ T^m ⊙ lane, then S = Σ_m Σ_j P_m[j]·e_m.
        let mut s = Wire::ZERO;
        for m in 0..4 {
            let mut pm = Wire::ZERO;
            for &((ti, lane), t) in &batch.lanes {
                pm = b.pointwise_mul_add(t[m], lanes[ti][lane], pm);
            }
            for j in 0..4 {
                s = move_coordinate(b, pm, j, m, s);
            }
        }
        // den = k − p.x·y1 + p.y·x1
        let d1 = b.sub_mul(batch.k, p[0], batch.y1);
        let den = b.mul_add(p[1], batch.x1, d1);
        let inv = b.inverse(den);
        let n1 = b.mul_sub(batch.c, s, batch.b);
        let n2 = b.sub_mul(n1, p[1], batch.a);
        acc = b.mul_add(n2, inv, acc);
    }
    acc
}

/// The zero digest's wires (a tree without columns).
pub fn zero_digest() -> DigestWires {
    [Wire::ZERO, Wire::ZERO]
}

/// `α^k` of each relation, each computed once from the next lower one.
#[derive(Debug, Clone)]
pub struct Powers {
    alphas: Vec<Wire>,
    cache: HashMap<(usize, u16), Wire>,
}

impl Powers {
    /// Powers of the relations' `α` wires, in draw order.
    pub fn new(alphas: Vec<Wire>) -> Self {
        Self {
            alphas,
            cache: HashMap::new(),
        }
    }

    /// `α_r^k` (`k ≥ 1`).
    pub fn get(&mut self, b: &mut Builder, r: usize, k: u16) -> Wire {
        if k == 1 {
            return self.alphas[r];
        }
        if let Some(&p) = self.cache.get(&(r, k)) {
            return p;
        }
        let lower = self.get(b, r, k - 1);
        let p = b.mul(lower, self.alphas[r]);
        self.cache.insert((r, k), p);
        p
    }
}

/// One component of a child's AIR, compiled with its challenges as parameters
/// ([`crate::recursion::compiler::compile_parametric`]).
#[derive(Debug, Clone)]
pub struct Compiled {
    pub circuit: crate::recursion::compiler::Circuit,
    /// Its preprocessed columns' indices in the preprocessed tree, in the order it reads them.
    pub preprocessed: Vec<usize>,
    /// log2 of its rows.
    pub log_size: u32,
    /// Its claimed LogUp sum's wire.
    pub sum: Wire,
}

/// The out-of-domain constraint check: every component's constraints, lowered over the
/// sampled values (main and interaction columns consecutive per component, in order) with
/// each relation's `z` and `α` wires from `rel` (draw order) and each LogUp shift
/// `sum / 2^log_size`, folded by the composition coefficient (Horner, in order, as stwo's
/// accumulator), divided by the vanishing polynomial of the trace domain at the point, and
/// asserted equal to the proof's composition value. Returns the folded value.
///
/// # Errors
/// A parameter the child's relations do not provide.
pub fn constraints_at_oods(
    b: &mut Builder,
    out: &ChildWires,
    shape: &ChildShape,
    components: &[Compiled],
    rel: &[[Wire; 2]],
    powers: &mut Powers,
) -> Result<Wire, String> {
    use crate::recursion::compiler::{Gate, ParamRef};
    let (mut main_offset, mut interaction_offset) = (0, 0);
    let mut outputs = Vec::new();
    for c in components {
        let circuit = &c.circuit;
        let mask: Vec<Vec<Vec<Wire>>> = (0..3)
            .map(|tree| {
                (0..circuit.mask[tree].len())
                    .map(|k| {
                        let global = match tree {
                            0 => c.preprocessed[k],
                            1 => main_offset + k,
                            _ => interaction_offset + k,
                        };
                        out.sampled[tree][global].clone()
                    })
                    .collect()
            })
            .collect();
        let shift = b.scale(c.sum, M31::from(1u32 << c.log_size).inverse());
        // Resolved first: the lowering holds the builder.
        let mut resolved: HashMap<ParamRef, Wire> = HashMap::new();
        for gate in &circuit.gates {
            if let Gate::Param(p) = *gate {
                let wire = match p {
                    ParamRef::Z(r) => rel
                        .get(r as usize)
                        .ok_or_else(|| format!("no relation {r}"))?[0],
                    ParamRef::AlphaPower(r, k) => {
                        if r as usize >= rel.len() {
                            return Err(format!("no relation {r}"));
                        }
                        powers.get(b, r as usize, k)
                    }
                    ParamRef::CumsumShift => shift,
                };
                resolved.insert(p, wire);
            }
        }
        outputs.extend(super::lower::lower_with(b, circuit, &mask, &mut |p| {
            resolved
                .get(&p)
                .copied()
                .ok_or_else(|| format!("{p:?} unresolved"))
        })?);
        main_offset += circuit.mask[1].len();
        interaction_offset += circuit.mask[2].len();
    }
    let folded = super::lower::horner(b, out.composition_coeff, &outputs);
    let coset = CanonicCoset::new(shape.lifting_log_size - shape.log_blowup).coset;
    let to_canonic = coset.initial.conjugate() + coset.step_size.half().to_point();
    let p = add_const_point(b, out.oods_point, to_canonic);
    let mut vanishing = p[0];
    for _ in 1..coset.log_size {
        vanishing = double_x(b, vanishing);
    }
    let inverse = b.inverse(vanishing);
    let composition = b.mul(folded, inverse);
    b.assert_eq(composition, out.composition_oods_eval);
    Ok(composition)
}
