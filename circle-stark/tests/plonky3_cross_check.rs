//! Independent cross-check of poe's Poseidon2-M31 against Plonky3's implementation
//! (`p3-poseidon2`, `p3-mersenne-31`), with identical constants, on many random states.

use p3_field::{PrimeCharacteristicRing, PrimeField32};
use p3_mersenne_31::{
    GenericPoseidon2LinearLayersMersenne31, Mersenne31, MERSENNE31_POSEIDON2_RC_16_EXTERNAL_FINAL,
    MERSENNE31_POSEIDON2_RC_16_EXTERNAL_INITIAL, MERSENNE31_POSEIDON2_RC_16_INTERNAL,
};
use p3_poseidon2::{
    add_rc_and_sbox_generic, external_initial_permute_state, external_terminal_permute_state,
    internal_permute_state, GenericPoseidon2LinearLayers, HLMDSMat4,
};
use poe_circle_stark::field::M31;
use poe_circle_stark::hash::poseidon2::{permute, round_constants, WIDTH};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn to_p3(x: u32) -> Mersenne31 {
    Mersenne31::from_u32(x)
}

/// Plonky3's building blocks, assembled with the paper's `M4` (Plonky3 calls it `HLMDSMat4`)
/// and Plonky3's width-16 internal layer.
fn plonky3_permute(
    state: &mut [Mersenne31; WIDTH],
    rc: &poe_circle_stark::hash::poseidon2::RoundConstants,
) {
    let initial: Vec<[Mersenne31; WIDTH]> =
        rc.external_initial.iter().map(|r| r.map(to_p3)).collect();
    let terminal: Vec<[Mersenne31; WIDTH]> =
        rc.external_terminal.iter().map(|r| r.map(to_p3)).collect();
    let internal: Vec<Mersenne31> = rc.internal.iter().copied().map(to_p3).collect();
    external_initial_permute_state(
        state,
        &initial,
        add_rc_and_sbox_generic::<_, _, 5>,
        &HLMDSMat4,
    );
    internal_permute_state::<Mersenne31, Mersenne31, WIDTH, 5>(
        state,
        GenericPoseidon2LinearLayersMersenne31::internal_linear_layer,
        &internal,
    );
    external_terminal_permute_state(
        state,
        &terminal,
        add_rc_and_sbox_generic::<_, _, 5>,
        &HLMDSMat4,
    );
}

#[test]
fn grain_constants_equal_plonky3_tables() {
    let rc = round_constants();
    let p3_initial =
        MERSENNE31_POSEIDON2_RC_16_EXTERNAL_INITIAL.map(|r| r.map(|x| x.as_canonical_u32()));
    let p3_final =
        MERSENNE31_POSEIDON2_RC_16_EXTERNAL_FINAL.map(|r| r.map(|x| x.as_canonical_u32()));
    let p3_internal = MERSENNE31_POSEIDON2_RC_16_INTERNAL.map(|x| x.as_canonical_u32());
    assert_eq!(rc.external_initial, p3_initial);
    assert_eq!(rc.internal, p3_internal);
    assert_eq!(rc.external_terminal, p3_final);
}

#[test]
fn permutation_equals_plonky3_on_random_states() {
    let rc = round_constants();
    let mut rng = ChaCha8Rng::seed_from_u64(0x9053_1d0e);
    for i in 0..2_000 {
        let input: [u32; WIDTH] = std::array::from_fn(|_| rng.gen_range(0..(1u32 << 31) - 1));
        let mut ours = input.map(M31::from_u32_unchecked);
        permute(&mut ours);
        let mut theirs = input.map(to_p3);
        plonky3_permute(&mut theirs, rc);
        assert_eq!(
            ours.map(|x| x.0),
            theirs.map(|x| x.as_canonical_u32()),
            "state {i} differs from Plonky3 for input {input:?}"
        );
    }
}

#[test]
fn permutation_equals_plonky3_on_edge_states() {
    let rc = round_constants();
    let p_minus_1 = (1u32 << 31) - 2;
    for input in [
        [0u32; WIDTH],
        [p_minus_1; WIDTH],
        std::array::from_fn(|i| i as u32),
    ] {
        let mut ours = input.map(M31::from_u32_unchecked);
        permute(&mut ours);
        let mut theirs = input.map(to_p3);
        plonky3_permute(&mut theirs, rc);
        assert_eq!(ours.map(|x| x.0), theirs.map(|x| x.as_canonical_u32()));
    }
}

#[test]
fn plonky3_with_its_own_mds_would_differ() {
    // Guards the cross-check itself: Plonky3's default M31 instance uses a different 4×4 matrix,
    // so agreement above is not an accident of both sides ignoring the matrix.
    let mut ours = [M31::from_u32_unchecked(1); WIDTH];
    permute(&mut ours);
    let mut theirs = [Mersenne31::ONE; WIDTH];
    let default = p3_mersenne_31::default_mersenne31_poseidon2_16();
    p3_symmetric::Permutation::permute_mut(&default, &mut theirs);
    assert_ne!(ours.map(|x| x.0), theirs.map(|x| x.as_canonical_u32()));
}

#[test]
fn packed_permutation_equals_plonky3_in_every_lane() {
    use poe_circle_stark::hash::poseidon2::packed::{permute_many, LANES};
    let rc = round_constants();
    let mut rng = ChaCha8Rng::seed_from_u64(0x16_1a9e5);
    for _ in 0..64 {
        let inputs: Vec<[u32; WIDTH]> = (0..LANES)
            .map(|_| std::array::from_fn(|_| rng.gen_range(0..(1u32 << 31) - 1)))
            .collect();
        let mut ours: Vec<[M31; WIDTH]> = inputs
            .iter()
            .map(|s| s.map(M31::from_u32_unchecked))
            .collect();
        permute_many(&mut ours);
        for (lane, (got, input)) in ours.iter().zip(&inputs).enumerate() {
            let mut theirs = input.map(to_p3);
            plonky3_permute(&mut theirs, rc);
            assert_eq!(
                got.map(|x| x.0),
                theirs.map(|x| x.as_canonical_u32()),
                "lane {lane}"
            );
        }
    }
}
