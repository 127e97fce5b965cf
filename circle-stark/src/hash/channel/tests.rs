//! The Poseidon2-M31 channel: the SIMD commitment against the scalar hasher the verifier runs
//! (through stwo's own CPU backend, which drives `update_leaf` in its own chunking), grinding
//! against `verify_pow_nonce`, and a whole stwo proof made and checked under the channel, with
//! the tampers a Merkle channel must catch.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use stwo::core::channel::Channel;
use stwo::core::fields::m31::BaseField;
use stwo::core::fields::qm31::SecureField;
use stwo::core::pcs::{CommitmentSchemeVerifier, TreeVec};
use stwo::core::poly::circle::CanonicCoset;
use stwo::core::proof_of_work::GrindOps;
use stwo::core::vcs_lifted::verifier::{MerkleVerificationError, MerkleVerifierLifted};
use stwo::core::verifier::{verify, VerificationError};
use stwo::prover::backend::simd::column::BaseColumn;
use stwo::prover::backend::simd::SimdBackend;
use stwo::prover::backend::CpuBackend;
use stwo::prover::poly::circle::{CircleEvaluation, PolyOps};
use stwo::prover::vcs_lifted::ops::MerkleOpsLifted;
use stwo::prover::vcs_lifted::prover::MerkleProverLifted;
use stwo::prover::{prove, CommitmentSchemeProver};
use stwo_constraint_framework::{
    EvalAtRow, FrameworkComponent, FrameworkEval, TraceLocationAllocator,
};

use super::*;
use crate::config::SecurityConfig;

fn random_column(rng: &mut ChaCha8Rng, log_size: u32) -> Vec<BaseField> {
    (0..1 << log_size)
        .map(|_| M31::from_u32_unchecked(rng.gen_range(0..crate::field::MODULUS)))
        .collect()
}

/// Column log sizes, sorted as stwo hands them to `build_leaves`: groups that end inside a rate
/// block, groups of one, sizes below and above the SIMD width.
const SHAPES: &[&[u32]] = &[
    &[1],
    &[3, 3, 3],
    &[2, 4, 4, 4, 4, 4, 4, 4, 4, 4, 6],
    &[3, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 7, 7, 7, 9],
    &[4, 4, 4, 4, 4, 4, 4, 4, 8, 8, 8, 8, 8, 8, 8, 8],
    &[6; 23],
];

#[test]
fn simd_leaves_match_the_scalar_hasher_for_every_shape_and_lifting() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for shape in SHAPES {
        let cols: Vec<Vec<BaseField>> = shape.iter().map(|&l| random_column(&mut rng, l)).collect();
        let simd_cols: Vec<BaseColumn> = cols.iter().map(|c| BaseColumn::from_cpu(c)).collect();
        let max = *shape.last().unwrap();
        for lifting in [max, max + 1, max + 3] {
            let cpu = <CpuBackend as MerkleOpsLifted<Poseidon2MerkleHasher>>::build_leaves(
                &cols.iter().collect::<Vec<_>>(),
                lifting,
            );
            let simd = <SimdBackend as MerkleOpsLifted<Poseidon2MerkleHasher>>::build_leaves(
                &simd_cols.iter().collect::<Vec<_>>(),
                lifting,
            );
            assert_eq!(cpu, simd, "shape {shape:?} lifted to {lifting}");
        }
    }
}

#[test]
fn leaf_hash_is_the_streamed_sponge_however_the_row_is_chunked() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let row = random_column(&mut rng, 5)[..27].to_vec();
    let mut whole = Poseidon2MerkleHasher::default();
    whole.update_leaf(&row);
    let mut pieces = Poseidon2MerkleHasher::default();
    for chunk in row.chunks(5) {
        pieces.update_leaf(chunk);
    }
    // The spec's definition: add into the rate, permute after every eighth, pad the last block
    // with zeros.
    let mut state = leaf_init();
    for block in row.chunks(RATE) {
        for (s, v) in state.iter_mut().zip(block) {
            *s += *v;
        }
        permute(&mut state);
    }
    let spec = Digest(std::array::from_fn(|i| state[i]));
    assert_eq!(whole.finalize(), spec);
    assert_eq!(pieces.finalize(), spec);
}

#[test]
fn simd_next_layer_matches_scalar_compression() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for log_size in 1..=7 {
        let layer: Vec<Digest> = (0..1 << log_size)
            .map(|_| {
                Digest(std::array::from_fn(|_| {
                    M31::from_u32_unchecked(rng.gen_range(0..crate::field::MODULUS))
                }))
            })
            .collect();
        let simd =
            <SimdBackend as MerkleOpsLifted<Poseidon2MerkleHasher>>::build_next_layer(&layer);
        let scalar: Vec<Digest> = layer.chunks(2).map(|p| compress(&p[0], &p[1])).collect();
        assert_eq!(simd, scalar, "layer of {} nodes", layer.len());
    }
}

/// A committed tree, its decommitment at `queries`, and the verifier that checks it.
fn committed(
    queries: &[usize],
) -> (
    MerkleVerifierLifted<Poseidon2MerkleHasher>,
    Vec<Vec<BaseField>>,
    stwo::core::vcs_lifted::verifier::MerkleDecommitmentLifted<Poseidon2MerkleHasher>,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let log_sizes = [3u32, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6, 6];
    let cols: Vec<BaseColumn> = log_sizes
        .iter()
        .map(|&l| BaseColumn::from_cpu(&random_column(&mut rng, l)))
        .collect();
    let prover = MerkleProverLifted::<SimdBackend, Poseidon2MerkleHasher>::commit(
        cols.iter().collect(),
        6,
        0,
    );
    let (values, decommitment) = prover.decommit(queries, cols.iter().collect());
    let verifier = MerkleVerifierLifted::new(prover.root(), log_sizes.to_vec(), None);
    (verifier, values, decommitment.decommitment)
}

const QUERIES: [usize; 4] = [3, 17, 18, 60];

#[test]
fn merkle_decommitment_verifies() {
    let (verifier, values, decommitment) = committed(&QUERIES);
    assert_eq!(verifier.verify(&QUERIES, values, decommitment), Ok(()));
}

#[test]
fn wrong_merkle_sibling_is_rejected() {
    let (verifier, values, mut decommitment) = committed(&QUERIES);
    decommitment.hash_witness[2].0[5] += M31::from_u32_unchecked(1);
    assert_eq!(
        verifier.verify(&QUERIES, values, decommitment),
        Err(MerkleVerificationError::RootMismatch)
    );
}

#[test]
fn wrong_leaf_value_is_rejected() {
    let (verifier, mut values, decommitment) = committed(&QUERIES);
    values[7][1] += M31::from_u32_unchecked(1);
    assert_eq!(
        verifier.verify(&QUERIES, values, decommitment),
        Err(MerkleVerificationError::RootMismatch)
    );
}

#[test]
fn grinding_finds_the_smallest_nonce_the_verifier_accepts() {
    let mut channel = Poseidon2Channel::default();
    channel.mix_u64(42);
    let bits = 10;
    let nonce = <SimdBackend as GrindOps<Poseidon2Channel>>::grind(&channel, bits);
    assert!(channel.verify_pow_nonce(bits, nonce));
    assert!((0..nonce).all(|n| !channel.verify_pow_nonce(bits, n)));
    // The same nonce does not carry over to another transcript.
    let mut other = channel.clone();
    other.mix_u64(43);
    let theirs = <SimdBackend as GrindOps<Poseidon2Channel>>::grind(&other, bits);
    assert_ne!(nonce, theirs);
}

#[test]
fn draws_are_canonical_fresh_and_follow_the_transcript() {
    let mut a = Poseidon2Channel::default();
    let mut b = Poseidon2Channel::default();
    a.mix_u32s(&[1, 2, 3]);
    b.mix_u32s(&[1, 2, 3]);
    let fa = a.draw_secure_felts(5);
    assert_eq!(fa, b.draw_secure_felts(5));
    assert_eq!(fa.len(), 5);
    // Two draws in a row differ; a different message gives different draws.
    assert_ne!(a.draw_secure_felt(), a.draw_secure_felt());
    let mut c = Poseidon2Channel::default();
    c.mix_u32s(&[1, 2, 4]);
    assert_ne!(c.draw_secure_felts(5), fa);
    // A u64 is mixed as its two words, low first (as stwo's own channels do); felts are a
    // different kind of update, so equal elements under another kind give another digest.
    let mut d = Poseidon2Channel::default();
    let mut e = Poseidon2Channel::default();
    d.mix_u64(0x0000_0001_0000_0002);
    e.mix_u32s(&[2, 1]);
    assert_eq!(d.digest(), e.digest());
    let mut f = Poseidon2Channel::default();
    f.mix_felts(&[SecureField::from(M31::from_u32_unchecked(2))]);
    assert_ne!(f.digest(), e.digest());
    assert!(a.draw_u32s().iter().all(|&w| w < crate::field::MODULUS));
}

/// `y = x²` on one column pair, and a second, smaller component so that the trees lift.
#[derive(Clone)]
struct Squares {
    log_size: u32,
}

impl FrameworkEval for Squares {
    fn log_size(&self) -> u32 {
        self.log_size
    }
    fn max_constraint_log_degree_bound(&self) -> u32 {
        self.log_size + 1
    }
    fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
        let x = eval.next_trace_mask();
        let y = eval.next_trace_mask();
        eval.add_constraint(y - x.clone() * x);
        eval
    }
}

fn squares_trace(
    log_size: u32,
    seed: u64,
) -> Vec<CircleEvaluation<SimdBackend, BaseField, stwo::prover::poly::BitReversedOrder>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = random_column(&mut rng, log_size);
    let y: Vec<BaseField> = x.iter().map(|&v| v * v).collect();
    let domain = CanonicCoset::new(log_size).circle_domain();
    [x, y]
        .iter()
        .map(|c| CircleEvaluation::new(domain, BaseColumn::from_cpu(c)))
        .collect()
}

const SIZES: [u32; 2] = [7, 5];

fn components() -> Vec<FrameworkComponent<Squares>> {
    let alloc = &mut TraceLocationAllocator::default();
    SIZES
        .iter()
        .map(|&log_size| {
            FrameworkComponent::new(alloc, Squares { log_size }, SecureField::default())
        })
        .collect()
}

fn prove_squares() -> stwo::core::proof::StarkProof<Poseidon2MerkleHasher> {
    let config = SecurityConfig::testing();
    let twiddles = SimdBackend::precompute_twiddles(
        CanonicCoset::new(SIZES[0] + 1 + config.log_blowup())
            .circle_domain()
            .half_coset,
    );
    let channel = &mut Poseidon2Channel::default();
    let mut scheme = CommitmentSchemeProver::<SimdBackend, Poseidon2MerkleChannel>::new(
        config.pcs_config(),
        &twiddles,
    );
    scheme.tree_builder().commit(channel);
    let mut tree = scheme.tree_builder();
    for (i, &log_size) in SIZES.iter().enumerate() {
        tree.extend_evals(squares_trace(log_size, i as u64));
    }
    tree.commit(channel);
    let comps = components();
    let provers: Vec<&dyn stwo::prover::ComponentProver<SimdBackend>> = comps
        .iter()
        .map(|c| c as &dyn stwo::prover::ComponentProver<SimdBackend>)
        .collect();
    prove::<SimdBackend, Poseidon2MerkleChannel>(&provers, channel, scheme).expect("proves")
}

fn verify_squares(
    proof: stwo::core::proof::StarkProof<Poseidon2MerkleHasher>,
) -> Result<(), VerificationError> {
    let config = SecurityConfig::testing();
    let channel = &mut Poseidon2Channel::default();
    let mut scheme = CommitmentSchemeVerifier::<Poseidon2MerkleChannel>::new(config.pcs_config());
    let comps = components();
    let refs: Vec<&dyn stwo::core::air::Component> = comps
        .iter()
        .map(|c| c as &dyn stwo::core::air::Component)
        .collect();
    let sizes = TreeVec::concat_cols(refs.iter().map(|c| c.trace_log_degree_bounds()));
    scheme.commit(proof.0.commitments[0], &sizes[0], channel);
    scheme.commit(proof.0.commitments[1], &sizes[1], channel);
    verify(&refs, channel, &mut scheme, proof)
}

#[test]
fn stark_under_the_poseidon2_channel_proves_and_verifies() {
    let proof = prove_squares();
    assert!(verify_squares(proof.clone()).is_ok());
    // Byte-identical across runs: grinding takes the smallest nonce.
    assert_eq!(proof.0.proof_of_work, prove_squares().0.proof_of_work);
    assert_eq!(proof.0.commitments.0, prove_squares().0.commitments.0);
}

#[test]
fn stark_with_a_wrong_pow_nonce_is_rejected() {
    let mut proof = prove_squares();
    proof.0.proof_of_work += 1;
    assert!(matches!(
        verify_squares(proof),
        Err(VerificationError::ProofOfWork)
    ));
}

#[test]
fn stark_with_a_wrong_merkle_sibling_is_rejected() {
    let mut proof = prove_squares();
    proof.0.decommitments[1].hash_witness[0].0[0] += M31::from_u32_unchecked(1);
    assert!(matches!(
        verify_squares(proof),
        Err(VerificationError::Merkle(
            MerkleVerificationError::RootMismatch
        ))
    ));
}

#[test]
fn stark_with_a_wrong_leaf_value_is_rejected() {
    let mut proof = prove_squares();
    proof.0.queried_values[1][0][0] += M31::from_u32_unchecked(1);
    assert!(matches!(
        verify_squares(proof),
        Err(VerificationError::Merkle(
            MerkleVerificationError::RootMismatch
        ))
    ));
}

#[test]
fn stark_with_a_wrong_fri_root_is_rejected() {
    let mut proof = prove_squares();
    proof.0.fri_proof.first_layer.commitment.0[3] += M31::from_u32_unchecked(1);
    assert!(verify_squares(proof).is_err());
}
