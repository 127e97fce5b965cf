//! Proving a circuit, and computing its verifying key.

use stwo::core::channel::MerkleChannel;
use stwo::core::fields::qm31::SecureField;
use stwo::core::poly::circle::CanonicCoset;
use stwo::core::utils::MaybeOwned;
use stwo::prover::backend::simd::column::BaseColumn;
use stwo::prover::backend::simd::m31::{PackedM31, LOG_N_LANES};
use stwo::prover::backend::simd::qm31::PackedSecureField;
use stwo::prover::backend::simd::SimdBackend;
use stwo::prover::backend::BackendForChannel;
use stwo::prover::poly::circle::PolyOps;
use stwo::prover::poly::twiddles::TwiddleTree;
use stwo::prover::{prove, CommitmentSchemeProver, CommitmentTreeProver};
use stwo_constraint_framework::{LogupTraceGenerator, Relation};

use super::gates::{main_columns, preprocessed_columns, WireRel};
use super::perm;
use super::program::Program;
use super::{Components, NodeKey};
use crate::config::SecurityConfig;
use crate::data_root::prove::{evaluations, Evaluation};
use crate::error::ProveError;
use crate::field::M31;
use crate::proof::{AirId, PoeChannel, Proof};
use crate::stark::{mix_claimed_sums, mix_preamble};

fn evals(log_rows: u32, cols: &[Vec<M31>]) -> Vec<Evaluation> {
    evaluations(
        log_rows,
        cols.iter()
            .map(|c| c.iter().copied().collect::<BaseColumn>())
            .collect(),
    )
}

/// Rows `16·vr .. 16·vr + 16` of `col` as one SIMD vector.
fn packed(col: &[M31], vr: usize) -> PackedM31 {
    PackedM31::from_array(std::array::from_fn(|l| col[(vr << LOG_N_LANES) + l]))
}

fn twiddles(log_rows: u32, config: &SecurityConfig) -> TwiddleTree<SimdBackend> {
    SimdBackend::precompute_twiddles(
        CanonicCoset::new(log_rows + 1 + config.log_blowup())
            .circle_domain()
            .half_coset,
    )
}

/// The verifying key of `program` under channel `MC` at `config`'s blowup: commits the
/// preprocessed wiring as a proof would.
pub fn node_key<MC: PoeChannel>(program: &Program, config: &SecurityConfig) -> NodeKey
where
    SimdBackend: BackendForChannel<MC>,
{
    NodeProver::<MC>::new(program.clone(), *config).key
}

/// The key without its root: everything the prover needs before it commits the wiring.
fn wiring<MC: PoeChannel>(program: &Program, config: &SecurityConfig) -> NodeKey {
    let uses = program.uses();
    NodeKey {
        log_rows: program.log_rows(),
        log_perm_rows: program.log_perm_rows(),
        channel: MC::ID,
        log_blowup: config.log_blowup(),
        preprocessed_root: [0; 8],
        publics: program
            .publics()
            .iter()
            .map(|w| (w.0, uses[w.0 as usize]))
            .collect(),
    }
}

/// A circuit's proving key: the program with its wiring committed once. The preprocessed
/// tree (evaluations and Merkle tree) depends only on the circuit, so every proof of the same
/// circuit — every M of a day's tree — reuses it instead of extending and hashing the wiring
/// again (a quarter of a node proof's hashing, BENCHMARKS.md).
pub struct NodeProver<MC: PoeChannel>
where
    SimdBackend: BackendForChannel<MC>,
{
    program: Program,
    config: SecurityConfig,
    key: NodeKey,
    twiddles: TwiddleTree<SimdBackend>,
    preprocessed: CommitmentTreeProver<SimdBackend, MC>,
    /// The gate and permutation components' preprocessed columns, which the LogUp columns read.
    pre: Vec<Vec<M31>>,
    perm_pre: Vec<Vec<M31>>,
}

impl<MC: PoeChannel> std::fmt::Debug for NodeProver<MC>
where
    SimdBackend: BackendForChannel<MC>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeProver")
            .field("key", &self.key)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<MC: PoeChannel> NodeProver<MC>
where
    SimdBackend: BackendForChannel<MC>,
{
    /// Commits `program`'s wiring at `config`'s blowup.
    #[must_use]
    pub fn new(program: Program, config: SecurityConfig) -> Self {
        let mut key = wiring::<MC>(&program, &config);
        let twiddles = twiddles(key.log_rows.max(key.log_perm_rows), &config);
        let pre = preprocessed_columns(&program);
        let perm_pre = perm::preprocessed_columns(&program);
        let preprocessed = {
            let mut scheme = CommitmentSchemeProver::<SimdBackend, MC>::new(
                AirId::Node.pcs_config(&config),
                &twiddles,
            );
            let mut tree = scheme.tree_builder();
            tree.extend_evals(evals(key.log_rows, &pre));
            tree.extend_evals(evals(key.log_perm_rows, &perm_pre));
            tree.commit(&mut <MC as MerkleChannel>::C::default());
            match scheme.trees.0.pop() {
                Some(MaybeOwned::Owned(tree)) => tree,
                _ => unreachable!("the scheme owns the one tree it committed"),
            }
        };
        key.preprocessed_root = MC::hash_words(&preprocessed.commitment.root());
        NodeProver {
            program,
            config,
            key,
            twiddles,
            preprocessed,
            pre,
            perm_pre,
        }
    }

    /// The verifying key.
    #[must_use]
    pub const fn key(&self) -> &NodeKey {
        &self.key
    }

    /// The circuit.
    #[must_use]
    pub const fn program(&self) -> &Program {
        &self.program
    }

    /// Proves that the circuit is satisfied with public values `public` (which the verifier
    /// will supply) and some witness values (`witness`, which stay private).
    ///
    /// # Errors
    /// `CircuitInputs`, `Unsatisfied` ([`Program::evaluate`]); `Stwo` on a prover failure.
    pub fn prove(
        &self,
        public: &[SecureField],
        witness: &[SecureField],
    ) -> Result<Proof, ProveError> {
        let values = self.program.evaluate(public, witness)?;
        self.prove_values(&values, |_, _| {})
    }

    /// The STARK over wire values `values` as they are, checked by nothing but the AIR: the
    /// tests forge values and main columns (`forge`) through it.
    pub(crate) fn prove_values(
        &self,
        values: &[SecureField],
        forge: impl FnOnce(&mut Vec<Vec<M31>>, &mut Vec<Vec<M31>>),
    ) -> Result<Proof, ProveError> {
        let (program, config, key) = (&self.program, self.config, &self.key);
        let public: Vec<SecureField> = program
            .publics()
            .iter()
            .map(|w| values[w.0 as usize])
            .collect();
        let public_inputs = key.public_inputs(&public);
        let (log_rows, log_perm) = (key.log_rows, key.log_perm_rows);
        let channel = &mut <MC as MerkleChannel>::C::default();
        mix_preamble(channel, MC::ID, AirId::Node, &config, &public_inputs);
        let mut scheme = CommitmentSchemeProver::<SimdBackend, MC>::new(
            AirId::Node.pcs_config(&config),
            &self.twiddles,
        );
        scheme.commit_tree(MaybeOwned::Borrowed(&self.preprocessed), channel);

        let mut main = main_columns(program, values);
        let mut perm_main = perm::main_columns(program, values);
        forge(&mut main, &mut perm_main);
        let mut tree = scheme.tree_builder();
        tree.extend_evals(evals(log_rows, &main));
        tree.extend_evals(evals(log_perm, &perm_main));
        tree.commit(channel);

        let wires = WireRel::draw(channel);
        let (gate_interaction, gate_sum) = interaction(log_rows, &self.pre, &main, &wires);
        let (perm_interaction, perm_sum) =
            perm_interaction(log_perm, &self.perm_pre, &perm_main, &wires);
        let sums = [gate_sum, perm_sum];
        mix_claimed_sums(channel, &sums);
        let mut tree = scheme.tree_builder();
        tree.extend_evals(gate_interaction);
        tree.extend_evals(perm_interaction);
        tree.commit(channel);

        let components = Components::new(key, &wires, &sums);
        let stark = prove::<SimdBackend, MC>(&components.as_components_prover(), channel, scheme)
            .map_err(|e| ProveError::Stwo(e.to_string()))?;
        Ok(Proof {
            air: AirId::Node,
            config,
            public_inputs,
            claimed_sums: sums.to_vec(),
            stark: MC::wrap(stark),
        })
    }
}

/// Proves that `program` is satisfied with public values `public` (which the verifier will
/// supply) and some witness values (`witness`, which stay private). One proof; a caller with
/// many proofs of one circuit keeps a [`NodeProver`].
///
/// # Errors
/// `CircuitInputs`, `Unsatisfied` ([`Program::evaluate`]); `Stwo` on a prover failure.
pub fn prove_node<MC: PoeChannel>(
    program: &Program,
    public: &[SecureField],
    witness: &[SecureField],
    config: SecurityConfig,
) -> Result<Proof, ProveError>
where
    SimdBackend: BackendForChannel<MC>,
{
    prove_once::<MC>(program, public, witness, config).map(|(proof, _)| proof)
}

/// One proof with its key; the witness is checked before anything is committed.
fn prove_once<MC: PoeChannel>(
    program: &Program,
    public: &[SecureField],
    witness: &[SecureField],
    config: SecurityConfig,
) -> Result<(Proof, NodeKey), ProveError>
where
    SimdBackend: BackendForChannel<MC>,
{
    let values = program.evaluate(public, witness)?;
    let prover = NodeProver::<MC>::new(program.clone(), config);
    Ok((prover.prove_values(&values, |_, _| {})?, prover.key))
}

/// The LogUp columns: `−1/d(id_a, a) − 1/d(id_b, b)` in the first,
/// `−1/d(id_d, d) + mult_c/d(id_c, c)` in the second (the pairs `finalize_logup_in_pairs`
/// forms).
fn interaction(
    log_rows: u32,
    pre: &[Vec<M31>],
    main: &[Vec<M31>],
    wires: &WireRel,
) -> (Vec<Evaluation>, SecureField) {
    let mut gen = LogupTraceGenerator::new(log_rows);
    let entry = |id: usize, first: usize, vr: usize| -> PackedSecureField {
        let mut e = vec![packed(&pre[id], vr)];
        e.extend((first..first + 4).map(|c| packed(&main[c], vr)));
        wires.combine(&e)
    };
    let mut col = gen.new_col();
    for vr in 0..1 << (log_rows - LOG_N_LANES) {
        let (da, db) = (entry(0, 0, vr), entry(1, 4, vr));
        col.write_frac(vr, -(da + db), da * db);
    }
    col.finalize_col();
    let mut col = gen.new_col();
    for vr in 0..1 << (log_rows - LOG_N_LANES) {
        let (dd, dc) = (entry(2, 8, vr), entry(3, 12, vr));
        let mult: PackedSecureField = packed(&pre[4], vr).into();
        col.write_frac(vr, mult * dd - dc, dd * dc);
    }
    col.finalize_col();
    gen.finalize_last()
}

/// [`prove_node`] under the channel `channel`, with the key a verifier needs for the proof.
///
/// # Errors
/// As [`prove_node`].
pub fn prove_node_under(
    channel: crate::proof::ChannelId,
    program: &Program,
    public: &[SecureField],
    witness: &[SecureField],
    config: SecurityConfig,
) -> Result<(Proof, NodeKey), ProveError> {
    use crate::hash::channel::Poseidon2MerkleChannel;
    use stwo::core::vcs_lifted::blake2_merkle::Blake2sMerkleChannel;
    match channel {
        crate::proof::ChannelId::Blake2s => {
            prove_once::<Blake2sMerkleChannel>(program, public, witness, config)
        }
        crate::proof::ChannelId::Poseidon2 => {
            prove_once::<Poseidon2MerkleChannel>(program, public, witness, config)
        }
    }
}

/// The permutation component's LogUp: inputs consumed `enabled` times, outputs yielded with
/// their read counts, paired as the component adds them.
fn perm_interaction(
    log_rows: u32,
    pre: &[Vec<M31>],
    main: &[Vec<M31>],
    wires: &WireRel,
) -> (Vec<Evaluation>, SecureField) {
    use crate::hash::chip::fill_chip_row;
    let n = 1usize << log_rows;
    // The outputs are not main columns: recompute them from the inputs as they stand (forged
    // ones included), as columns.
    let mut outputs = vec![vec![M31::from(0u32); n]; 16];
    let mut row = vec![M31::from(0u32); 1 + perm::MAIN_COLUMNS];
    for r in 0..n {
        let out = fill_chip_row(&mut row, 0, std::array::from_fn(|i| main[i][r]));
        for (col, v) in outputs.iter_mut().zip(out) {
            col[r] = v;
        }
    }
    let denom = |k: usize, vr: usize| -> PackedSecureField {
        let values = if k < 4 {
            &main[4 * k..4 * k + 4]
        } else {
            &outputs[4 * (k - 4)..4 * (k - 3)]
        };
        let mut e = vec![packed(&pre[k], vr)];
        e.extend(values.iter().map(|c| packed(c, vr)));
        wires.combine(&e)
    };
    let mut gen = LogupTraceGenerator::new(log_rows);
    for pair in [[0, 1], [2, 3], [4, 5], [6, 7]] {
        let mut col = gen.new_col();
        for vr in 0..1 << (log_rows - LOG_N_LANES) {
            let num = |k: usize| -> PackedSecureField {
                if k < 4 {
                    -PackedSecureField::from(packed(&pre[12], vr))
                } else {
                    packed(&pre[8 + k - 4], vr).into()
                }
            };
            let (d0, d1) = (denom(pair[0], vr), denom(pair[1], vr));
            col.write_frac(vr, num(pair[0]) * d1 + num(pair[1]) * d0, d0 * d1);
        }
        col.finalize_col();
    }
    gen.finalize_last()
}
