use num_traits::One;
use stwo::core::fields::qm31::SecureField;
use stwo::core::vcs_lifted::blake2_merkle::Blake2sMerkleChannel;

use super::gates::qm31_mul;
use super::*;
use crate::config::SecurityConfig;
use crate::error::ProveError;

fn qm(a: u32, b: u32, c: u32, d: u32) -> SecureField {
    SecureField::from_m31_array([a, b, c, d].map(M31::from))
}

/// `y = x·w + 3` and `(x·w − x)² = v`, with `x`, `y` public and `w`, `v` witnesses.
fn circuit(k: u32) -> Program {
    let mut b = Builder::new();
    let x = b.public();
    let y = b.public();
    let w = b.witness();
    let v = b.witness();
    let t = b.mul(x, w);
    let three = b.constant(qm(k, 0, 0, 0));
    let s = b.add(t, three);
    b.assert_eq(s, y);
    let u = b.sub(t, x);
    let uu = b.mul(u, u);
    b.assert_eq(uu, v);
    b.finish()
}

fn inputs() -> (Vec<SecureField>, Vec<SecureField>) {
    let x = qm(5, 7, 11, 13);
    let w = qm(2, 0, 1, 9);
    let t = x * w;
    let y = t + qm(3, 0, 0, 0);
    let v = (t - x) * (t - x);
    (vec![x, y], vec![w, v])
}

fn config() -> SecurityConfig {
    SecurityConfig::new(1, 3, 0).expect("test config")
}

fn policy() -> VerifierPolicy {
    VerifierPolicy {
        min_security_bits: 0,
    }
}

fn prove_blake(program: &Program, public: &[SecureField], witness: &[SecureField]) -> Proof {
    prove_node::<Blake2sMerkleChannel>(program, public, witness, config()).expect("honest")
}

/// Changes coordinate `k` of both children of the first authentication-path node that came
/// from the proof's witness: the path then misses the root.
fn bump_witness_node(
    m: &mut crate::recursion::trace::MerkleTrace<crate::hash::poseidon2::Digest>,
    k: usize,
) {
    let n = m.nodes.iter_mut().find(|n| n.from_witness).unwrap();
    n.left.0[k] += M31::from(1u32);
    n.right.0[k] += M31::from(1u32);
}

#[test]
fn qm31_mul_by_coordinates_is_stwos_product() {
    let mut s = 0x1234_5678u32;
    let mut next = || {
        s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        s % ((1 << 31) - 1)
    };
    for _ in 0..100 {
        let x = qm(next(), next(), next(), next());
        let y = qm(next(), next(), next(), next());
        let got = qm31_mul(&x.to_m31_array(), &y.to_m31_array());
        assert_eq!(SecureField::from_m31_array(got), x * y);
    }
}

#[test]
fn reads_are_counted_padding_included() {
    let p = circuit(3);
    // 12 ops, 2 public: 10 rows padded to 64 (the smallest node); wire 0 is read three times
    // by the zero row, both witnesses, the constant and each of the 54 padding rows, and once
    // (the unused `d`) by each of the six two-input rows.
    assert_eq!((p.n_rows(), p.log_rows()), (10, 6));
    let uses = p.uses();
    assert_eq!(uses[0], 3 * (1 + 2 + 1 + 54) + 6);
    assert_eq!(uses[p.publics()[0].0 as usize], 2, "x: by mul and sub");
    assert_eq!(uses[p.publics()[1].0 as usize], 1, "y: by one assert");
    assert_eq!(uses.iter().sum::<u32>(), 3 * 64, "three reads per row");
}

#[test]
fn honest_circuit_verifies_under_both_channels() {
    let p = circuit(3);
    let (public, witness) = inputs();
    let proof = prove_blake(&p, &public, &witness);
    let key = node_key::<Blake2sMerkleChannel>(&p, &config());
    let decoded = Proof::from_bytes(&proof.to_bytes()).expect("canonical bytes");
    verify_node(&decoded, &key, &public, &policy()).expect("Blake2s");

    let proof = prove_node::<Poseidon2MerkleChannel>(&p, &public, &witness, config()).unwrap();
    let key = node_key::<Poseidon2MerkleChannel>(&p, &config());
    verify_node(&proof, &key, &public, &policy()).expect("Poseidon2");
}

#[test]
fn proofs_are_byte_identical_across_runs() {
    let p = circuit(3);
    let (public, witness) = inputs();
    assert_eq!(
        prove_blake(&p, &public, &witness).to_bytes(),
        prove_blake(&p, &public, &witness).to_bytes()
    );
}

#[test]
fn a_kept_prover_reuses_its_wiring_for_every_proof() {
    // The prover key commits the wiring once; each proof borrows that tree. Its proofs must be
    // exactly the one-shot prover's, for several statements in turn, and its key the key.
    let p = circuit(3);
    let prover = NodeProver::<Poseidon2MerkleChannel>::new(p.clone(), config());
    assert_eq!(
        prover.key(),
        &node_key::<Poseidon2MerkleChannel>(&p, &config())
    );
    for scale in [1u32, 2, 3] {
        let (mut public, mut witness) = inputs();
        // Another satisfying assignment: x·s with w, so y and v follow.
        public[0] *= qm(scale, 0, 0, 0);
        let t = public[0] * witness[0];
        public[1] = t + qm(3, 0, 0, 0);
        witness[1] = (t - public[0]) * (t - public[0]);
        let kept = prover.prove(&public, &witness).expect("honest");
        let fresh =
            prove_node::<Poseidon2MerkleChannel>(&p, &public, &witness, config()).expect("honest");
        assert_eq!(kept.to_bytes(), fresh.to_bytes(), "scale {scale}");
        verify_node(&kept, prover.key(), &public, &policy()).expect("verifies");
    }
    let (mut public, witness) = inputs();
    public[1] += SecureField::one();
    assert!(matches!(
        prover.prove(&public, &witness),
        Err(ProveError::Unsatisfied { op: 8, .. })
    ));
}

#[test]
fn unsatisfied_assertion_is_refused_by_the_prover() {
    let p = circuit(3);
    let (mut public, witness) = inputs();
    public[1] += SecureField::one();
    let err = prove_node::<Blake2sMerkleChannel>(&p, &public, &witness, config()).unwrap_err();
    assert!(
        matches!(err, ProveError::Unsatisfied { op: 8, .. }),
        "{err}"
    );
    let err = prove_node::<Blake2sMerkleChannel>(&p, &public, &witness[..1], config());
    assert!(matches!(
        err,
        Err(ProveError::CircuitInputs {
            what: "witness",
            expected: 2,
            got: 1
        })
    ));
}

#[test]
fn another_public_value_is_rejected() {
    let p = circuit(3);
    let (mut public, witness) = inputs();
    let proof = prove_blake(&p, &public, &witness);
    let key = node_key::<Blake2sMerkleChannel>(&p, &config());
    public[1] += SecureField::one();
    assert_eq!(
        verify_node(&proof, &key, &public, &policy()),
        Err(VerifyError::PublicInputMismatch {
            field: "public wires"
        })
    );
}

#[test]
fn public_value_changed_in_proof_and_statement_breaks_the_wire_balance() {
    let p = circuit(3);
    let (mut public, witness) = inputs();
    let mut proof = prove_blake(&p, &public, &witness);
    let key = node_key::<Blake2sMerkleChannel>(&p, &config());
    public[1] += SecureField::one();
    proof.public_inputs = key.public_inputs(&public);
    assert_eq!(
        verify_node(&proof, &key, &public, &policy()),
        Err(VerifyError::LogUpSumMismatch)
    );
}

#[test]
fn proof_of_another_circuit_is_rejected_by_the_key() {
    let (public, witness) = inputs();
    // The same wiring with another constant: `y = x·w + 4`.
    let other = circuit(4);
    let mut public4 = public.clone();
    public4[1] += SecureField::one();
    let proof = prove_blake(&other, &public4, &witness);
    let key = node_key::<Blake2sMerkleChannel>(&circuit(3), &config());
    let err = verify_node(&proof, &key, &public4, &policy()).unwrap_err();
    assert!(matches!(err, VerifyError::PreprocessedRoot { .. }), "{err}");
}

#[test]
fn key_of_another_channel_or_blowup_is_rejected() {
    let p = circuit(3);
    let (public, witness) = inputs();
    let proof = prove_blake(&p, &public, &witness);
    let key = node_key::<Poseidon2MerkleChannel>(&p, &config());
    assert!(matches!(
        verify_node(&proof, &key, &public, &policy()),
        Err(VerifyError::WrongKey {
            field: "channel",
            ..
        })
    ));
    let key = node_key::<Blake2sMerkleChannel>(&p, &SecurityConfig::new(2, 3, 0).unwrap());
    assert!(matches!(
        verify_node(&proof, &key, &public, &policy()),
        Err(VerifyError::WrongKey {
            field: "log_blowup",
            ..
        })
    ));
}

/// The honest program proves and verifies under the Poseidon2 channel; witness `k` changed,
/// its assertions fail.
fn proves_then_refuses_tamper(
    p: &Program,
    public: &[SecureField],
    witness: &[SecureField],
    k: usize,
) {
    let (proof, key) =
        prove_node_under(ChannelId::Poseidon2, p, public, witness, config()).unwrap();
    verify_node(&proof, &key, public, &policy()).expect("honest");
    let mut changed = witness.to_vec();
    changed[k] += SecureField::one();
    assert!(matches!(
        p.evaluate(public, &changed),
        Err(ProveError::Unsatisfied { .. })
    ));
}

/// Forged proofs: made from values or columns no honest prover would use. Either stwo's
/// prover refuses (its own OODS self-check) or the verifier rejects.
fn rejected(
    p: &Program,
    public: &[SecureField],
    values: &[SecureField],
    forge: impl FnOnce(&mut Vec<Vec<M31>>, &mut Vec<Vec<M31>>),
) -> Result<Proof, String> {
    let prover = NodeProver::<Blake2sMerkleChannel>::new(p.clone(), config());
    let proof = prover
        .prove_values(values, forge)
        .map_err(|e| e.to_string())?;
    verify_node(&proof, prover.key(), public, &policy())
        .map(|()| proof)
        .map_err(|e| e.to_string())
}

#[test]
fn forged_product_fails_the_gate_constraint() {
    let p = circuit(3);
    let (public, witness) = inputs();
    let mut values = p.evaluate(&public, &witness).unwrap();
    // Wire 5 is `t = x·w`: a wrong product, passed on consistently (`s`, `u`, `uu`, `v`, `y`),
    // so the wires balance and only the mul row's constraint is broken.
    let t = values[5] + SecureField::one();
    let (x, three) = (values[1], values[6]);
    values[5] = t;
    values[7] = t + three;
    values[2] = values[7];
    values[9] = t - x;
    values[10] = values[9] * values[9];
    values[4] = values[10];
    let public = [values[1], values[2]];
    assert!(p.evaluate(&public, &[values[3], values[4]]).is_err());
    let err = rejected(&p, &public, &values, |_, _| {}).unwrap_err();
    assert!(
        err.contains("Constraints not satisfied") || err.contains("constraint check"),
        "{err}"
    );
}

#[test]
fn read_of_another_value_breaks_the_wire_balance() {
    let p = circuit(3);
    let (public, witness) = inputs();
    let values = p.evaluate(&public, &witness).unwrap();
    // Row 6 is `assert_eq(s, y)`: both reads changed to one other value keep its `a = b`
    // constraint but read values no wire holds.
    let err = rejected(&p, &public, &values, |main, _| {
        for col in main.iter_mut().take(8) {
            col[6] += M31::from(1u32);
        }
    })
    .unwrap_err();
    assert_eq!(err, VerifyError::LogUpSumMismatch.to_string());
}

#[test]
fn witness_row_result_is_free_but_bound_by_its_reads() {
    // Row 1 yields the witness `w`: its value changed there alone (its reads unchanged)
    // satisfies its row, but the reads no longer match the one value yielded.
    let p = circuit(3);
    let (public, witness) = inputs();
    let values = p.evaluate(&public, &witness).unwrap();
    let err = rejected(&p, &public, &values, |main, _| {
        main[12][1] += M31::from(1u32);
    })
    .unwrap_err();
    assert_eq!(err, VerifyError::LogUpSumMismatch.to_string());
}

/// `out = P(in)` with `in` witnesses and `out` public.
fn permutation_circuit() -> (Program, Vec<SecureField>, Vec<SecureField>) {
    let mut b = Builder::new();
    let input = [(); 4].map(|_| b.witness());
    let out = b.permute(input);
    let expected = [(); 4].map(|_| b.public());
    for k in 0..4 {
        b.assert_eq(out[k], expected[k]);
    }
    let witness = vec![
        qm(1, 2, 3, 4),
        qm(5, 6, 7, 8),
        qm(9, 10, 11, 12),
        qm(13, 14, 15, 16),
    ];
    let public = program::permute_wires(witness.clone().try_into().unwrap()).to_vec();
    (b.finish(), public, witness)
}

#[test]
fn permutation_wires_are_the_native_permutation() {
    let mut state: [M31; 16] = std::array::from_fn(|i| M31::from(i as u32 + 1));
    let (p, public, witness) = permutation_circuit();
    crate::hash::poseidon2::permute(&mut state);
    assert_eq!(public[1].to_m31_array(), state[4..8]);
    assert_eq!((p.perms().len(), p.log_perm_rows()), (1, 4));
    for channel in [ChannelId::Blake2s, ChannelId::Poseidon2] {
        let (proof, key) = prove_node_under(channel, &p, &public, &witness, config()).unwrap();
        verify_node(&proof, &key, &public, &policy()).expect("honest permutation");
    }
    let mut wrong = public.clone();
    wrong[3] += SecureField::one();
    assert!(matches!(
        prove_node::<Blake2sMerkleChannel>(&p, &wrong, &witness, config()),
        Err(ProveError::Unsatisfied { .. })
    ));
}

#[test]
fn permutation_of_another_input_breaks_the_wire_balance() {
    // Row 0 of the permutation component recomputed (input and S-box cells) for another
    // input: its constraints hold, but it consumes values its input wires do not hold and
    // yields an output the asserted public values do not match.
    let (p, public, witness) = permutation_circuit();
    let values = p.evaluate(&public, &witness).unwrap();
    let err = rejected(&p, &public, &values, |_, perm| {
        let mut input: [M31; 16] = std::array::from_fn(|i| perm[i][0]);
        input[0] += M31::from(1u32);
        let mut row = vec![M31::from(0u32); 1 + perm.len()];
        crate::hash::chip::fill_chip_row(&mut row, 0, input);
        for (c, v) in row[1..].iter().enumerate() {
            perm[c][0] = *v;
        }
    })
    .unwrap_err();
    assert_eq!(err, VerifyError::LogUpSumMismatch.to_string());
}

#[test]
fn permutation_cell_changed_alone_is_unprovable() {
    let (p, public, witness) = permutation_circuit();
    let values = p.evaluate(&public, &witness).unwrap();
    let err = rejected(&p, &public, &values, |_, perm| {
        perm[16 + 40][0] += M31::from(1u32);
    })
    .unwrap_err();
    assert!(err.contains("Constraints not satisfied"), "{err}");
}

/// A compiled batch-validity v3 component, evaluated by a node circuit at a random point:
/// mask values as witnesses, the constraint values folded by Horner with a public coefficient,
/// the fold asserted equal to a public value computed natively.
mod compiled {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use stwo::core::channel::{Blake2sChannel, Channel};
    use stwo_constraint_framework::FrameworkEval;

    use super::*;
    use crate::field::{qm31_from_array, MODULUS};
    use crate::recursion::compiler::{compile, compile_parametric, Circuit, Gate, ParamRef};
    use crate::validity::registry::EvalVisitor;
    use crate::validity::{ComponentId, ValidityAir, ValidityRelations, ValidityStatement};
    use stwo::core::fields::FieldExpOps;

    struct Compile;
    impl EvalVisitor for Compile {
        type Out = Circuit;
        fn visit<E: FrameworkEval + Sync + 'static>(self, eval: E) -> Circuit {
            compile(&eval, SecureField::from(M31::from(12345u32)))
        }
    }

    pub(super) fn component(id: ComponentId) -> Circuit {
        let s = ValidityStatement::from_bytes(include_bytes!(
            "../../../../tests/fixtures/batch_validity_v2.statement"
        ))
        .expect("the golden statement decodes");
        let mut channel = Blake2sChannel::default();
        channel.mix_u64(7);
        id.eval_with(
            ValidityAir::V3,
            &s,
            &ValidityRelations::draw(&mut channel),
            Compile,
        )
    }

    fn random(rng: &mut ChaCha8Rng) -> SecureField {
        qm31_from_array(std::array::from_fn(|_| {
            M31::from_u32_unchecked(rng.gen_range(0..MODULUS))
        }))
    }

    /// The fold program of `circuits` at random mask values and coefficient.
    pub(super) fn folding_program(
        circuits: &[Circuit],
        seed: u64,
    ) -> (Program, Vec<SecureField>, Vec<SecureField>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let masks: Vec<_> = circuits
            .iter()
            .map(|c| c.mask_values(|| random(&mut rng)))
            .collect();
        fold_program(circuits, &masks, random(&mut rng)).expect("no inversions")
    }

    #[test]
    fn node_circuit_evaluates_compiled_constraints_as_the_compiler_does() {
        for id in [ComponentId::Chip, ComponentId::Cash, ComponentId::Holder] {
            let (p, public, witness) = folding_program(&[component(id)], id.index() as u64);
            let proof = prove_blake(&p, &public, &witness);
            let key = node_key::<Blake2sMerkleChannel>(&p, &config());
            verify_node(&proof, &key, &public, &policy()).expect("honest fold");

            let mut wrong = public.clone();
            wrong[1] += SecureField::one();
            let err = prove_node::<Blake2sMerkleChannel>(&p, &wrong, &witness, config());
            assert!(
                matches!(err, Err(ProveError::Unsatisfied { .. })),
                "{}",
                id.name()
            );
        }
    }
    /// `(z, α)` of each relation as `ValidityRelations::draw` draws them (one two-felt draw
    /// per relation), from a channel seeded with `seed`.
    pub(super) fn drawn(seed: u64) -> (ValidityRelations, Vec<(SecureField, SecureField)>) {
        let mut channel = Blake2sChannel::default();
        channel.mix_u64(seed);
        let mut copy = channel.clone();
        let rels = ValidityRelations::draw(&mut channel);
        let raw = (0..12)
            .map(|_| {
                let v = copy.draw_secure_felts(2);
                (v[0], v[1])
            })
            .collect();
        (rels, raw)
    }

    struct Parametric(Vec<(SecureField, SecureField)>);
    impl EvalVisitor for Parametric {
        type Out = (Circuit, u32);
        fn visit<E: FrameworkEval + Sync + 'static>(self, eval: E) -> (Circuit, u32) {
            (compile_parametric(&eval, &self.0), eval.log_size())
        }
    }

    struct Constant(SecureField);
    impl EvalVisitor for Constant {
        type Out = Circuit;
        fn visit<E: FrameworkEval + Sync + 'static>(self, eval: E) -> Circuit {
            compile(&eval, self.0)
        }
    }

    /// Every v3 component compiled with its challenges and claimed sum as parameters: the
    /// same circuit under other challenges (no constant of the AIR was derived from them), and
    /// at any mask it equals the AIR compiled with them as constants.
    #[test]
    fn parametric_constraints_are_the_airs_at_any_challenges() {
        let s = ValidityStatement::from_bytes(include_bytes!(
            "../../../../tests/fixtures/batch_validity_v2.statement"
        ))
        .unwrap();
        let (r1, raw1) = drawn(1);
        let (r2, raw2) = drawn(2);
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for &id in ComponentId::of(ValidityAir::V3) {
            let (c1, log_size) = id.eval_with(ValidityAir::V3, &s, &r1, Parametric(raw1.clone()));
            let (c2, _) = id.eval_with(ValidityAir::V3, &s, &r2, Parametric(raw2.clone()));
            assert_eq!(c1.gates, c2.gates, "{}: gates", id.name());
            assert_eq!(c1.constraints, c2.constraints, "{}", id.name());
            assert!(
                c1.gates
                    .iter()
                    .any(|g| matches!(g, Gate::Param(ParamRef::Z(_)))),
                "{}: reads a relation",
                id.name()
            );
            let sum = random(&mut rng);
            let constant = id.eval_with(ValidityAir::V3, &s, &r1, Constant(sum));
            let mask = c1.mask_values(|| random(&mut rng));
            let shift = sum / M31::from(1u32 << log_size);
            let param = |p: ParamRef| match p {
                ParamRef::Z(r) => raw1[r as usize].0,
                ParamRef::AlphaPower(r, k) => raw1[r as usize].1.pow(u128::from(k)),
                ParamRef::CumsumShift => shift,
            };
            assert_eq!(
                c1.evaluate_with(&mask, &param),
                constant.evaluate(&mask),
                "{}",
                id.name()
            );
        }
    }
}

mod gadgets {
    use super::*;
    use crate::hash::poseidon2::{compress, hash_elements, Digest, Domain};
    use crate::recursion::node::gadgets::{digest_values, DigestWires};

    /// A native tree of eight leaves: the levels from the leaves up.
    fn tree() -> Vec<Vec<Digest>> {
        let mut levels = vec![(0..8u32)
            .map(|i| hash_elements(Domain::Message, &[M31::from(i)]))
            .collect::<Vec<_>>()];
        while levels.last().unwrap().len() > 1 {
            let next = levels
                .last()
                .unwrap()
                .chunks(2)
                .map(|p| compress(&p[0], &p[1]))
                .collect();
            levels.push(next);
        }
        levels
    }

    /// Program: leaf, siblings and direction bits witnesses, the root public.
    fn path_program(index: usize) -> (Program, Vec<SecureField>, Vec<SecureField>) {
        let levels = tree();
        let mut b = Builder::new();
        let mut witness = Vec::new();
        let leaf: DigestWires = [b.witness(), b.witness()];
        witness.extend(digest_values(&levels[0][index]));
        let mut path = Vec::new();
        for (depth, level) in levels[..3].iter().enumerate() {
            let pos = index >> depth;
            let sibling: DigestWires = [b.witness(), b.witness()];
            witness.extend(digest_values(&level[pos ^ 1]));
            let bit = b.witness();
            b.assert_bit(bit);
            witness.push(SecureField::from(M31::from((pos & 1) as u32)));
            path.push((sibling, bit));
        }
        let root = b.merkle_root(leaf, &path);
        let expected = [b.public(), b.public()];
        b.assert_eq(root[0], expected[0]);
        b.assert_eq(root[1], expected[1]);
        (b.finish(), digest_values(&levels[3][0]).to_vec(), witness)
    }

    #[test]
    fn merkle_path_in_the_circuit_reaches_the_native_root() {
        for index in [0, 5, 7] {
            let (p, public, witness) = path_program(index);
            assert_eq!(p.perms().len(), 3, "one compression per level");
            let proof = prove_blake(&p, &public, &witness);
            let key = node_key::<Blake2sMerkleChannel>(&p, &config());
            verify_node(&proof, &key, &public, &policy()).expect("honest path");
        }
        let (p, public, witness) = path_program(6);
        let (proof, key) =
            prove_node_under(ChannelId::Poseidon2, &p, &public, &witness, config()).unwrap();
        verify_node(&proof, &key, &public, &policy()).expect("Poseidon2");
    }

    #[test]
    fn wrong_sibling_or_direction_misses_the_root() {
        let (p, public, witness) = path_program(5);
        // Witness layout: leaf (2), then per level sibling (2) and bit (1).
        let mut sibling = witness.clone();
        sibling[2] += SecureField::one();
        let mut flipped = witness.clone();
        flipped[4] = SecureField::one() - flipped[4];
        let mut two = witness.clone();
        two[4] = SecureField::from(M31::from(2u32));
        for (what, w) in [("sibling", sibling), ("direction", flipped), ("bit 2", two)] {
            let err = prove_node::<Blake2sMerkleChannel>(&p, &public, &w, config());
            assert!(matches!(err, Err(ProveError::Unsatisfied { .. })), "{what}");
        }
    }

    #[test]
    fn bits_have_one_decomposition() {
        let mut b = Builder::new();
        let v = b.public();
        b.bits(v, 31);
        let p = b.finish();
        let bits = |x: u32| -> Vec<SecureField> {
            (0..31)
                .map(|i| SecureField::from(M31::from((x >> i) & 1)))
                .collect()
        };
        let x = 0x5a5a_5a5a & 0x7fff_ffff;
        let values = p.evaluate(&[SecureField::from(M31::from(x))], &[]).unwrap();
        let hinted: Vec<SecureField> = p
            .ops()
            .iter()
            .zip(&values)
            .filter(|(op, _)| matches!(op, Op::Bit { .. }))
            .map(|(_, v)| *v)
            .collect();
        assert_eq!(hinted, bits(x), "the prover's bits");
        // 0 as 2^31 − 1: every bit set sums to p ≡ 0. Forged in place of the prover's bits,
        // it satisfies the sum and the booleanity; the product refuses it, in the AIR.
        let zero = [SecureField::from(M31::from(0u32))];
        let forged = p.values(&zero, &[], &|_, _| SecureField::one());
        assert_ne!(p.evaluate(&zero, &[]).unwrap(), forged);
        let err = NodeProver::<Blake2sMerkleChannel>::new(p.clone(), config())
            .prove_values(&forged, |_, _| {})
            .unwrap_err();
        assert!(
            err.to_string().contains("Constraints not satisfied"),
            "{err}"
        );
        let proof = prove_blake(&p, &[SecureField::from(M31::from(x))], &[]);
        let key = node_key::<Blake2sMerkleChannel>(&p, &config());
        verify_node(&proof, &key, &[SecureField::from(M31::from(x))], &policy()).unwrap();
    }
}

mod transcript {
    use stwo::core::channel::Channel;

    use super::*;
    use crate::hash::channel::Poseidon2Channel;
    use crate::hash::poseidon2::{hash_elements, Digest, Domain};
    use crate::recursion::node::gadgets::{digest_values, DigestWires};
    use crate::recursion::node::transcript::TranscriptWires;

    #[test]
    fn coordinates_come_out_and_go_back() {
        let mut b = Builder::new();
        let x = b.public();
        let c = b.coordinates(x);
        for &cj in &c {
            b.assert_base(cj);
        }
        let back = b.from_coordinates(c);
        b.assert_eq(back, x);
        let expected = [(); 4].map(|_| b.public());
        for j in 0..4 {
            b.assert_eq(c[j], expected[j]);
        }
        let p = b.finish();
        let v = qm(11, 22, 33, 44);
        let public = vec![
            v,
            qm(11, 0, 0, 0),
            qm(22, 0, 0, 0),
            qm(33, 0, 0, 0),
            qm(44, 0, 0, 0),
        ];
        let proof = prove_blake(&p, &public, &[]);
        verify_node(
            &proof,
            &node_key::<Blake2sMerkleChannel>(&p, &config()),
            &public,
            &policy(),
        )
        .expect("coordinates");
        let mut wrong = public.clone();
        wrong[3] = qm(33, 1, 0, 0);
        assert!(
            p.evaluate(&wrong, &[]).is_err(),
            "a coordinate is a base-field value"
        );
    }

    #[test]
    fn sponge_in_the_circuit_is_hash_elements() {
        for len in [0usize, 3, 8, 13] {
            let message: Vec<M31> = (0..len as u32).map(|i| M31::from(7 * i + 1)).collect();
            let mut b = Builder::new();
            let wires: Vec<Wire> = (0..len).map(|_| b.witness()).collect();
            let digest = b.hash_elements(Domain::Message, &wires);
            let expected = [b.public(), b.public()];
            b.assert_eq(digest[0], expected[0]);
            b.assert_eq(digest[1], expected[1]);
            let p = b.finish();
            let witness: Vec<SecureField> = message.iter().map(|&m| SecureField::from(m)).collect();
            let public = digest_values(&hash_elements(Domain::Message, &message)).to_vec();
            p.evaluate(&public, &witness)
                .unwrap_or_else(|e| panic!("length {len}: {e}"));
        }
    }

    #[test]
    fn query_positions_in_the_circuit_are_stwos_draw_queries() {
        let root = hash_elements(Domain::Message, &[M31::from(9u32)]);
        let mut native = Poseidon2Channel::default();
        native.mix_root(root);
        // 12 queries: one draw and half of the next, as stwo takes them.
        let positions = stwo::core::queries::draw_queries(&mut native, 10, 12);

        let mut b = Builder::new();
        let mut t = TranscriptWires::new();
        let root_w: DigestWires = [b.witness(), b.witness()];
        t.mix_root(&mut b, root_w);
        let queries = t.draw_queries(&mut b, 10, 12);
        for bits in &queries {
            let mut sum = Wire::ZERO;
            for (i, &bit) in bits.iter().enumerate() {
                let weight = b.constant(SecureField::from(M31::from(1u32 << i)));
                let term = b.mul(bit, weight);
                sum = b.add(sum, term);
            }
            let expected = b.public();
            b.assert_eq(sum, expected);
        }
        let p = b.finish();
        let public: Vec<SecureField> = positions
            .iter()
            .map(|&q| SecureField::from(M31::from(q as u32)))
            .collect();
        let witness = digest_values(&root).to_vec();
        let (proof, key) =
            prove_node_under(ChannelId::Poseidon2, &p, &public, &witness, config()).unwrap();
        verify_node(&proof, &key, &public, &policy()).expect("stwo's positions");
        let mut other = public.clone();
        other[11] += SecureField::one();
        assert!(p.evaluate(&other, &witness).is_err());
    }

    /// A verifier-like transcript: mix a root, draw a challenge, mix two felts, draw twice.
    #[test]
    fn transcript_in_the_circuit_replays_the_native_channel() {
        let root = hash_elements(Domain::Message, &[M31::from(5u32)]);
        let felts = [qm(1, 2, 3, 4), qm(5, 6, 7, 8)];
        let mut native = Poseidon2Channel::default();
        native.mix_root(root);
        let alpha = native.draw_secure_felt();
        native.mix_felts(&felts);
        let draws = [native.draw_base_felts(), native.draw_base_felts()];
        let digest: Digest = native.digest();

        let mut b = Builder::new();
        let mut t = TranscriptWires::new();
        let root_w: DigestWires = [b.witness(), b.witness()];
        t.mix_root(&mut b, root_w);
        let alpha_w = t.draw_secure_felt(&mut b);
        let felt_w = [b.witness(), b.witness()];
        t.mix_felts(&mut b, &felt_w);
        let d0 = t.draw(&mut b);
        let d1 = t.draw(&mut b);
        let outs = [
            alpha_w,
            d0[0],
            d0[1],
            d1[0],
            d1[1],
            t.digest[0],
            t.digest[1],
        ];
        let publics: Vec<Wire> = outs.iter().map(|_| b.public()).collect();
        for (o, p) in outs.iter().zip(&publics) {
            b.assert_eq(*o, *p);
        }
        let p = b.finish();
        let mut witness = digest_values(&root).to_vec();
        witness.extend(felts);
        let lanes = |d: [M31; 8]| {
            [0, 1].map(|k| SecureField::from_m31_array(std::array::from_fn(|j| d[4 * k + j])))
        };
        let mut public = vec![alpha];
        public.extend(lanes(draws[0]));
        public.extend(lanes(draws[1]));
        public.extend(digest_values(&digest));
        // Another root (witness 0): every later value moves.
        proves_then_refuses_tamper(&p, &public, &witness, 0);
    }
}

/// A real child: one opened leaf of a batch-validity proof under the Poseidon2 channel, hashed
/// and authenticated up to the tree's root inside a node, from the tracing verifier's record.
mod child {
    use super::*;
    use crate::hash::poseidon2::Digest;
    use crate::recursion::node::gadgets::{digest_values, DigestWires};
    use crate::recursion::trace::{MerkleTrace, TreeTrace};

    /// Leaf `leaf` of `opening`: its row and authentication path as witnesses, the root public.
    fn decommitment(
        tree: &TreeTrace<Digest>,
        opening: &MerkleTrace<Digest>,
        leaf: usize,
    ) -> (Program, Vec<SecureField>, Vec<SecureField>) {
        let leaf = &opening.leaves[leaf];
        let mut b = Builder::new();
        let row: Vec<Wire> = leaf.row.iter().map(|_| b.witness()).collect();
        let mut witness: Vec<SecureField> = leaf.row.iter().map(|&v| v.into()).collect();
        for &w in &row {
            b.assert_base(w);
        }
        let hash = b.leaf_hash(&row);
        let mut path = Vec::new();
        for layer in 1..=tree.height {
            let node = opening
                .nodes
                .iter()
                .find(|n| n.layer == layer && n.index == leaf.position >> layer)
                .expect("the path's node is in the record");
            let is_right = (leaf.position >> (layer - 1)) & 1 == 1;
            let sibling = if is_right { node.left } else { node.right };
            let wires: DigestWires = [b.witness(), b.witness()];
            witness.extend(digest_values(&sibling));
            let bit = b.witness();
            b.assert_bit(bit);
            witness.push(SecureField::from(M31::from(u32::from(is_right))));
            path.push((wires, bit));
        }
        let root = b.merkle_root(hash, &path);
        let expected = [b.public(), b.public()];
        b.assert_eq(root[0], expected[0]);
        b.assert_eq(root[1], expected[1]);
        (b.finish(), digest_values(&tree.root).to_vec(), witness)
    }

    #[test]
    fn opened_leaf_of_a_real_proof_authenticates_in_a_node() {
        let trace = super::child_verifier::child();
        // The main tree (index 1): a row of every main column.
        let (tree, opening) = (&trace.trees[1], &trace.tree_openings[1]);
        let (p, public, witness) = decommitment(tree, opening, 0);
        assert_eq!(
            p.perms().len(),
            opening.leaves[0].row.len().div_ceil(8) + tree.height as usize
        );
        // One opened value (witness 17) changed: the leaf no longer reaches the root.
        proves_then_refuses_tamper(&p, &public, &witness, 17);
    }
}

/// A whole child STARK's verification (after its prelude) in a node: a real batch-validity
/// proof under the Poseidon2 channel, its record from the tracing verifier as the witness.
mod child_verifier {
    use super::*;
    use crate::hash::poseidon2::Digest;
    use crate::recursion::node::child::{verify_child, ChildShape, Writer};
    use crate::recursion::node::gadgets::digest_values;
    use crate::recursion::{AnyTrace, VerifierTrace};
    use crate::validity::{prove_validity_under, trace_validity};
    use crate::venue::sample;

    pub(super) fn child() -> VerifierTrace<Digest> {
        let (venue, ops) = sample::batch_settling(8, 6, 14, 1_795_000_000_000_000, 1_000_000);
        let (statement, proof) = prove_validity_under(
            &venue,
            &ops,
            SecurityConfig::testing(),
            ChannelId::Poseidon2,
        )
        .unwrap();
        let AnyTrace::Poseidon2(trace) = trace_validity(proof, &statement, &policy()).unwrap()
        else {
            panic!("a Poseidon2 proof");
        };
        trace
    }

    /// The circuit: entry digest and the first three roots public, then `verify_child`, its
    /// composition value asserted equal to a public value (the constraints' value at the
    /// point, which the node does not evaluate yet).
    pub(super) fn program(
        trace: &VerifierTrace<Digest>,
    ) -> (Program, Vec<SecureField>, Vec<SecureField>) {
        let shape = ChildShape::of_trace(trace, &SecurityConfig::testing()).unwrap();
        let mut w = Writer::new();
        let entry = [w.b.public(), w.b.public()];
        let roots: [[Wire; 2]; 3] = std::array::from_fn(|_| [w.b.public(), w.b.public()]);
        let out = verify_child(&mut w, &shape, entry, roots, trace).unwrap();
        let claimed = w.b.public();
        w.b.assert_eq(out.composition_oods_eval, claimed);
        let mut public = digest_values(&Digest(trace.entry_state.map(M31::from))).to_vec();
        for tree in &trace.trees[..3] {
            public.extend(digest_values(&tree.root));
        }
        public.push(trace.composition_from_constraints);
        let (p, witness) = w.finish();
        (p, public, witness)
    }

    #[test]
    fn a_whole_child_verification_holds_and_proves() {
        let trace = child();
        let (p, public, witness) = program(&trace);
        eprintln!(
            "child verifier: {} gate rows (2^{}), {} permutations, {} witnesses",
            p.n_rows(),
            p.log_rows(),
            p.perms().len(),
            witness.len()
        );
        p.evaluate(&public, &witness)
            .expect("the honest child satisfies its verifier circuit");
        let (proof, key) =
            prove_node_under(ChannelId::Poseidon2, &p, &public, &witness, config()).unwrap();
        verify_node(&proof, &key, &public, &policy()).expect("the node proof verifies");
    }

    /// Each tamper of the child's record: the circuit is the same (it depends only on the
    /// shape), and its assertions no longer hold.
    #[test]
    fn a_tampered_child_fails_its_verifier_circuit() {
        let honest = child();
        let (p, public, _) = program(&honest);
        type Tamper = fn(&mut VerifierTrace<Digest>);
        let tampers: [(&str, Tamper); 13] = [
            ("OODS value, interaction", |t| {
                t.sampled_values[2][0][0] += SecureField::one()
            }),
            ("OODS value, previous row", |t| {
                let col = t.sampled_values[2]
                    .iter()
                    .position(|c| c.len() == 2)
                    .unwrap();
                t.sampled_values[2][col][0] += SecureField::one();
            }),
            ("OODS value, composition", |t| {
                t.sampled_values[3][5][0] += SecureField::one()
            }),
            ("an opened position other than the one drawn", |t| {
                t.raw_queries[0] = t.raw_queries[1];
            }),
            ("opened main value", |t| {
                t.tree_openings[1].leaves[0].row[5] += M31::from(1u32)
            }),
            ("opened interaction value", |t| {
                t.tree_openings[2].leaves[1].row[0] += M31::from(1u32)
            }),
            ("opened composition value", |t| {
                t.tree_openings[3].leaves[2].row[7] += M31::from(1u32)
            }),
            ("authentication path node", |t| {
                bump_witness_node(&mut t.tree_openings[1], 3)
            }),
            ("FRI sibling value", |t| {
                t.fri_layers[1].folds[0].values[0] += SecureField::one();
                t.fri_layers[1].folds[0].values[1] += SecureField::one();
            }),
            ("FRI layer root", |t| {
                t.fri_layers[2].commitment.0[0] += M31::from(1u32)
            }),
            ("last-layer coefficient", |t| {
                t.last_layer_poly[0] += SecureField::one()
            }),
            ("sampled value", |t| {
                t.sampled_values[1][3][0] += SecureField::one()
            }),
            ("proof-of-work nonce", |t| t.pow_nonce += 1),
        ];
        for (what, tamper) in tampers {
            let mut trace = honest.clone();
            tamper(&mut trace);
            let (q, _, witness) = program(&trace);
            assert!(q == p, "{what}: the circuit changed");
            let err = q.evaluate(&public, &witness);
            assert!(
                matches!(err, Err(ProveError::Unsatisfied { .. })),
                "{what}: {err:?}"
            );
        }
        // Publics: the entry digest, a root, the constraints' value.
        let (_, _, witness) = program(&honest);
        for (what, k) in [
            ("entry digest", 0),
            ("main root", 4),
            ("composition value", 8),
        ] {
            let mut public = public.clone();
            public[k] += SecureField::one();
            let err = p.evaluate(&public, &witness);
            assert!(
                matches!(err, Err(ProveError::Unsatisfied { .. })),
                "{what}: {err:?}"
            );
        }
    }

    /// The node AIR, not only the witness generator, refuses a child with one opened value
    /// changed: the trace of the forged values breaks an assertion row's constraint.
    #[test]
    fn a_node_over_a_tampered_child_cannot_be_proven() {
        let mut trace = child();
        trace.tree_openings[1].leaves[0].row[5] += M31::from(1u32);
        let (p, public, witness) = program(&trace);
        let values = p.values(&public, &witness, &|_, v| v);
        let err = rejected(&p, &public, &values, |_, _| {}).unwrap_err();
        assert!(
            err.contains("Constraints not satisfied") || err.contains("constraint check"),
            "{err}"
        );
    }
}

/// Node kind W over a real batch-validity v3 proof: the whole verifier, constraints included.
mod wrap {
    use super::*;
    use crate::hash::poseidon2::Digest;
    use crate::recursion::node::child::Writer;
    use crate::recursion::node::gadgets::digest_values;
    use crate::recursion::node::wrap::{statement_digest, validity_w};
    use crate::recursion::{AnyTrace, VerifierTrace};
    use crate::validity::{
        prove_batches, trace_validity, ComponentId, ValidityAir, ValidityStatement,
    };
    use crate::venue::sample;

    pub(super) fn child() -> (ValidityStatement, Proof, VerifierTrace<Digest>) {
        child_of(14)
    }

    /// A v3 proof (Poseidon2, testing config) of the sample batch of `seed`, and its record.
    pub(super) fn child_of(seed: u64) -> (ValidityStatement, Proof, VerifierTrace<Digest>) {
        child_under(seed, SecurityConfig::testing())
    }

    /// The same under `config`.
    fn child_under(
        seed: u64,
        config: SecurityConfig,
    ) -> (ValidityStatement, Proof, VerifierTrace<Digest>) {
        let (venue, ops) = sample::batch_settling(8, 6, seed, 1_795_000_000_000_000, 1_000_000);
        child_as(&venue, &[&ops], config, ValidityAir::V3)
    }

    fn child_as(
        venue: &crate::venue::Venue,
        batches: &[&[crate::venue::Operation]],
        config: SecurityConfig,
        air: ValidityAir,
    ) -> (ValidityStatement, Proof, VerifierTrace<Digest>) {
        let (statement, proof) =
            prove_batches(venue, batches, config, ChannelId::Poseidon2, air).unwrap();
        let AnyTrace::Poseidon2(trace) =
            trace_validity(proof.clone(), &statement, &policy()).unwrap()
        else {
            panic!("a Poseidon2 proof");
        };
        (statement, proof, trace)
    }

    pub(super) fn program(
        statement: &ValidityStatement,
        proof: &Proof,
        trace: &VerifierTrace<Digest>,
    ) -> (Program, Vec<SecureField>, Vec<SecureField>) {
        let (p, public, witness, _) = program_with(statement, &proof.claimed_sums, trace);
        (p, public, witness)
    }

    fn program_with(
        statement: &ValidityStatement,
        sums: &[SecureField],
        trace: &VerifierTrace<Digest>,
    ) -> (Program, Vec<SecureField>, Vec<SecureField>, Wire) {
        let mut w = Writer::new();
        let out = validity_w(&mut w, statement, &SecurityConfig::testing(), sums, trace).unwrap();
        let public = digest_values(&statement_digest(statement)).to_vec();
        let (p, witness) = w.finish();
        (p, public, witness, out.constraints_at_oods)
    }

    #[test]
    fn a_w_node_verifies_a_whole_batch_validity_proof() {
        let (statement, proof, trace) = child();
        let (p, public, witness) = program(&statement, &proof, &trace);
        eprintln!(
            "W over v3: {} gate rows (2^{}), {} permutations",
            p.n_rows(),
            p.log_rows(),
            p.perms().len()
        );
        let values = p
            .evaluate(&public, &witness)
            .expect("the honest child satisfies W");
        let (_, _, _, oods) = program_with(&statement, &proof.claimed_sums, &trace);
        assert_eq!(
            values[oods.0 as usize], trace.composition_from_constraints,
            "the circuit's constraints at the point are stwo's"
        );
        let (node, key) =
            prove_node_under(ChannelId::Poseidon2, &p, &public, &witness, config()).unwrap();
        verify_node(&node, &key, &public, &policy()).expect("the W proof verifies");
    }

    /// AIR v4 (a segment of two batches, the root between them proven): its W circuit is
    /// another program (another AIR id, the windowed state components), satisfied by the honest
    /// child, with stwo's composition at the point; a v4 child fed to v3's circuit is not.
    #[test]
    fn a_w_node_verifies_a_v4_segment_with_its_interior_root() {
        let (venue, ops) = sample::batch_settling(8, 6, 14, 1_795_000_000_000_000, 1_000_000);
        let (statement, proof, trace) = child_as(
            &venue,
            &[&ops[..3], &ops[3..]],
            SecurityConfig::testing(),
            ValidityAir::V4,
        );
        assert_eq!(statement.interior_roots.as_ref().map(Vec::len), Some(1));
        let (p, public, witness) = program(&statement, &proof, &trace);
        let values = p
            .evaluate(&public, &witness)
            .expect("the honest v4 child satisfies its W");
        let (_, _, _, oods) = program_with(&statement, &proof.claimed_sums, &trace);
        assert_eq!(values[oods.0 as usize], trace.composition_from_constraints);
        // The same proof read as v3's (its statement without the interior root): the
        // preamble's AIR id and the state constraints are v3's, and nothing fits — the record
        // does not even have v3's columns' samples (refused while building), or the circuit is
        // not satisfied.
        let mut as_v3 = statement.clone();
        as_v3.interior_roots = None;
        let mut w = Writer::new();
        let v3 = validity_w(
            &mut w,
            &as_v3,
            &SecurityConfig::testing(),
            &proof.claimed_sums,
            &trace,
        );
        if let Err(e) = &v3 {
            assert!(e.contains("no sample"), "{e}");
        } else {
            let (q, wit) = w.finish();
            assert!(q != p, "another AIR, another circuit");
            let public = digest_values(&statement_digest(&as_v3)).to_vec();
            assert!(matches!(
                q.evaluate(&public, &wit),
                Err(ProveError::Unsatisfied { .. })
            ));
        }
        let (node, key) =
            prove_node_under(ChannelId::Poseidon2, &p, &public, &witness, config()).unwrap();
        verify_node(&node, &key, &public, &policy()).expect("the W proof verifies");
    }

    /// A changed claimed sum, closure end or component size, or constraints that do not hold:
    /// W's assertions fail (the same circuit each time).
    #[test]
    fn a_w_node_refuses_a_changed_statement_or_sum() {
        let (statement, proof, trace) = child();
        let (p, public, witness) = program(&statement, &proof, &trace);
        let mut sums = proof.claimed_sums.clone();
        sums[3] += SecureField::one();
        let (q, _, changed, _) = program_with(&statement, &sums, &trace);
        assert!(q == p);
        assert!(matches!(
            p.evaluate(&public, &changed),
            Err(ProveError::Unsatisfied { .. })
        ));
        // Another statement, its digest the node's public value: the public inputs are the
        // first witnesses.
        let n = ComponentId::of(ValidityAir::V3).len();
        let inputs = statement.public_inputs(ValidityAir::V3);
        for (what, k) in [("a size", 2), ("|L|", n), ("the chain's end", n + 5)] {
            let mut other = inputs.clone();
            other[k] += M31::from(1u32);
            let mut forged = witness.clone();
            forged[k] = other[k].into();
            let digest = crate::hash::poseidon2::hash_elements(
                crate::hash::poseidon2::Domain::Statement,
                &other,
            );
            let public = digest_values(&digest).to_vec();
            assert!(
                matches!(
                    p.evaluate(&public, &forged),
                    Err(ProveError::Unsatisfied { .. })
                ),
                "{what}"
            );
        }
        let mut public = public.clone();
        public[0] += SecureField::one();
        assert!(matches!(
            p.evaluate(&public, &witness),
            Err(ProveError::Unsatisfied { .. })
        ));
    }
    /// A child made under another config (one query more): its W is another circuit — another
    /// key, which the parent pins — and read as if it were of the testing config it is refused
    /// before a circuit exists (its record holds 13 queries where the shape has 12).
    #[test]
    fn a_child_of_another_config_is_another_circuit_or_refused() {
        let (statement, proof, trace) = child();
        let (p, _, _) = program(&statement, &proof, &trace);
        let other = SecurityConfig::new(1, 13, 4).unwrap();
        let (o_statement, o_proof, o_trace) = child_under(14, other);
        assert_eq!(o_statement, statement, "the same batch, the same statement");
        let mut w = Writer::new();
        validity_w(
            &mut w,
            &o_statement,
            &other,
            &o_proof.claimed_sums,
            &o_trace,
        )
        .unwrap();
        let (q, _) = w.finish();
        assert!(q != p, "another config, another circuit");
        let mut w = Writer::new();
        let err = validity_w(
            &mut w,
            &o_statement,
            &SecurityConfig::testing(),
            &o_proof.claimed_sums,
            &o_trace,
        )
        .map(|_| ())
        .unwrap_err();
        assert_eq!(err, "another query count");
    }
}

/// Node kind M over two W nodes.
mod merge {
    use super::*;
    use crate::hash::poseidon2::Digest;
    use crate::recursion::node::child::Writer;
    use crate::recursion::node::gadgets::digest_values;
    use crate::recursion::node::merge::{merge, merge_digest, NodeChild};
    use crate::recursion::node::trace_node;
    use crate::recursion::node::wrap::{statement_digest, validity_w};
    use crate::recursion::{AnyTrace, VerifierTrace};
    use crate::validity::ValidityAir;

    /// A node proof with what verifying it needs (a W node, or an M node at the next level).
    struct WNode {
        key: NodeKey,
        output: [SecureField; 2],
        proof: Proof,
        trace: VerifierTrace<Digest>,
    }

    /// A W node proof (Poseidon2, the tests' node config) over a v3 proof of a sample batch.
    fn w_node(seed: u64) -> (Vec<M31>, WNode) {
        let (statement, child, child_trace) = super::wrap::child_of(seed);
        let mut w = Writer::new();
        validity_w(
            &mut w,
            &statement,
            &SecurityConfig::testing(),
            &child.claimed_sums,
            &child_trace,
        )
        .unwrap();
        let (p, witness) = w.finish();
        let output = digest_values(&statement_digest(&statement));
        let (proof, key) =
            prove_node_under(ChannelId::Poseidon2, &p, &output, &witness, config()).unwrap();
        let AnyTrace::Poseidon2(trace) = trace_node(&proof, &key, &output, &policy()).unwrap()
        else {
            panic!("a Poseidon2 node proof");
        };
        let sizes = statement.public_inputs(ValidityAir::V3)[..12].to_vec();
        (
            sizes,
            WNode {
                key,
                output,
                proof,
                trace,
            },
        )
    }

    fn child(n: &WNode) -> NodeChild<'_> {
        NodeChild {
            key: &n.key,
            output: &n.output,
            claimed_sums: &n.proof.claimed_sums,
            trace: &n.trace,
        }
    }

    /// Two W nodes of one shape (the first seed after 14 whose batch has the same component
    /// sizes; their circuits, hence keys, are equal).
    fn two_w_nodes() -> (WNode, WNode) {
        let (sizes, a) = w_node(14);
        for seed in 15..40 {
            let (other, b) = w_node(seed);
            if other == sizes {
                assert_eq!(a.key, b.key, "one shape, one W key");
                return (a, b);
            }
        }
        panic!("no second batch of the same shape");
    }

    #[test]
    fn an_m_node_verifies_two_w_nodes_and_states_their_keys_and_outputs() {
        let (a, b) = two_w_nodes();
        assert_ne!(a.output, b.output, "two statements");
        let mut w = Writer::new();
        merge(&mut w, [child(&a), child(&b)], &config()).unwrap();
        let (p, witness) = w.finish();
        let public = digest_values(&merge_digest([(&a.key, &a.output), (&b.key, &b.output)]));
        eprintln!(
            "M over two W: {} gate rows (2^{}), {} permutations",
            p.n_rows(),
            p.log_rows(),
            p.perms().len()
        );
        p.evaluate(&public, &witness)
            .expect("the honest children satisfy M");
        let (proof, key) =
            prove_node_under(ChannelId::Poseidon2, &p, &public, &witness, config()).unwrap();
        verify_node(&proof, &key, &public, &policy()).expect("the M proof verifies");
        let (again, _) =
            prove_node_under(ChannelId::Poseidon2, &p, &public, &witness, config()).unwrap();
        assert_eq!(
            again.to_bytes(),
            proof.to_bytes(),
            "M proofs are byte-identical"
        );

        // The next level: an M over this M proof twice holds (its children are M nodes).
        let AnyTrace::Poseidon2(trace) = trace_node(&proof, &key, &public, &policy()).unwrap()
        else {
            panic!("a Poseidon2 node proof");
        };
        let m = WNode {
            key,
            output: [public[0], public[1]],
            proof,
            trace,
        };
        let mut w2 = Writer::new();
        merge(&mut w2, [child(&m), child(&m)], &config()).unwrap();
        let (p2, witness2) = w2.finish();
        let public2 = digest_values(&merge_digest([(&m.key, &m.output), (&m.key, &m.output)]));
        p2.evaluate(&public2, &witness2)
            .expect("an M over M nodes holds");

        // Swapped children, or one stated twice: another output.
        for (what, claimed) in [
            (
                "swapped",
                merge_digest([(&b.key, &b.output), (&a.key, &a.output)]),
            ),
            (
                "duplicated",
                merge_digest([(&a.key, &a.output), (&a.key, &a.output)]),
            ),
        ] {
            let err = p.evaluate(&digest_values(&claimed), &witness);
            assert!(matches!(err, Err(ProveError::Unsatisfied { .. })), "{what}");
        }
        // A child relabelled (another output), or verified against another key's root: the
        // first witnesses are child A's root (2), its wiring (4) and its output (2).
        for (what, k) in [("key's root", 0), ("wiring", 3), ("output", 6)] {
            let mut forged = witness.clone();
            forged[k] += SecureField::one();
            let err = p.evaluate(&public, &forged);
            assert!(matches!(err, Err(ProveError::Unsatisfied { .. })), "{what}");
        }
    }

    /// Node proofs fold twice per FRI layer, four values a packed leaf: each tamper of a W
    /// child's FRI record leaves M's circuit the same and breaks one of its assertions.
    #[test]
    fn a_tampered_two_fold_child_fails_m() {
        use crate::recursion::node::child::ChildShape;
        let (_, a) = w_node(14);
        let shape = ChildShape::of_trace(&a.trace, &config()).unwrap();
        assert!(shape.fri_folds.len() >= 3, "{:?}", shape.fri_folds);
        assert!(shape.fri_folds[..shape.fri_folds.len() - 1]
            .iter()
            .all(|&f| f == 2));
        let build = |trace: &VerifierTrace<Digest>| {
            let c = NodeChild {
                key: &a.key,
                output: &a.output,
                claimed_sums: &a.proof.claimed_sums,
                trace,
            };
            let mut w = Writer::new();
            merge(&mut w, [c, child(&a)], &config()).unwrap();
            w.finish()
        };
        let (p, witness) = build(&a.trace);
        let public = digest_values(&merge_digest([(&a.key, &a.output), (&a.key, &a.output)]));
        p.evaluate(&public, &witness)
            .expect("the honest child satisfies M");
        type Tamper = fn(&mut VerifierTrace<Digest>);
        let tampers: [(&str, Tamper); 6] = [
            ("first layer, a sibling in the packed leaf", |t| {
                t.fri_layers[0].folds[0].values[3] += SecureField::one()
            }),
            ("first layer, every value of a leaf", |t| {
                for v in &mut t.fri_layers[0].folds[1].values {
                    *v += SecureField::one();
                }
            }),
            ("inner layer value", |t| {
                t.fri_layers[1].folds[0].values[2] += SecureField::one()
            }),
            ("inner layer authentication path node", |t| {
                bump_witness_node(&mut t.fri_layers[1].merkle, 1)
            }),
            ("FRI layer root", |t| {
                t.fri_layers[2].commitment.0[0] += M31::from(1u32)
            }),
            ("last-layer coefficient", |t| {
                t.last_layer_poly[5] += SecureField::one()
            }),
        ];
        for (what, tamper) in tampers {
            let mut trace = a.trace.clone();
            tamper(&mut trace);
            let (q, forged) = build(&trace);
            assert!(q == p, "{what}: the circuit changed");
            let err = q.evaluate(&public, &forged);
            assert!(
                matches!(err, Err(ProveError::Unsatisfied { .. })),
                "{what}: {err:?}"
            );
        }
    }
}

mod tree {
    use super::*;
    use crate::hash::poseidon2::Digest;
    use crate::recursion::node::gadgets::digest_values;
    use crate::recursion::node::merge::key_digest;
    use crate::recursion::node::tree::{
        day_digest, final_digest, plan, root_statement, NodeStatement, Step, TreeNode, TreeProver,
    };

    #[test]
    fn the_plan_pairs_left_to_right_and_carries_an_odd_node_up() {
        use Step::{Carry, Merge};
        assert_eq!(plan(0), None);
        assert_eq!(plan(1), Some(vec![]));
        assert_eq!(plan(2), Some(vec![vec![Merge(0)]]));
        assert_eq!(
            plan(3),
            Some(vec![vec![Merge(0), Carry(2)], vec![Merge(0)]])
        );
        assert_eq!(
            plan(5),
            Some(vec![
                vec![Merge(0), Merge(2), Carry(4)],
                vec![Merge(0), Carry(2)],
                vec![Merge(0)]
            ])
        );
        // n leaves take n − 1 M nodes, ⌈log2 n⌉ levels.
        for n in 1..40usize {
            let levels = plan(n).unwrap();
            let merges: usize = levels
                .iter()
                .flatten()
                .filter(|s| matches!(s, Merge(_)))
                .count();
            assert_eq!(merges, n - 1, "{n} leaves");
            assert_eq!(
                levels.len(),
                n.next_power_of_two().trailing_zeros() as usize
            );
        }
    }

    fn statement(k: u32) -> NodeStatement {
        let d = |x: u32| Digest(std::array::from_fn(|i| M31::from(x * 100 + i as u32)));
        (d(k), digest_values(&d(k + 50)))
    }

    #[test]
    fn the_day_digest_moves_with_every_leaf_their_order_and_count() {
        let m = Digest([M31::from(7u32); 8]);
        let leaves: Vec<NodeStatement> = (1..=5).map(statement).collect();
        let bound = Digest([M31::from(9u32); 8]);
        let day = day_digest(&leaves, m, &bound).unwrap();
        assert_eq!(day_digest(&[], m, &bound), None);
        // One leaf is its own root.
        assert_eq!(root_statement(&leaves[..1], m), Some(leaves[0]));
        let mut others = vec![
            ("a leaf removed", leaves[..4].to_vec()),
            (
                "the carried leaf removed",
                [&leaves[..2], &leaves[3..]].concat(),
            ),
            ("two leaves swapped", {
                let mut l = leaves.clone();
                l.swap(1, 2);
                l
            }),
            ("a leaf stated twice", {
                let mut l = leaves.clone();
                l.push(leaves[4]);
                l
            }),
            ("a leaf's output changed", {
                let mut l = leaves.clone();
                l[3].1[1] += SecureField::one();
                l
            }),
            ("a leaf's key changed", {
                let mut l = leaves.clone();
                l[4].0 .0[0] += M31::from(1u32);
                l
            }),
        ];
        for (what, l) in others.drain(..) {
            assert_ne!(day_digest(&l, m, &bound).unwrap(), day, "{what}");
        }
        assert_ne!(
            day_digest(&leaves, Digest([M31::from(8u32); 8]), &bound).unwrap(),
            day,
            "another M key"
        );
        assert_ne!(
            day_digest(&leaves, m, &Digest([M31::from(10u32); 8])).unwrap(),
            day,
            "another bound statement"
        );
        // The final digest is not the root's M digest: a root cannot pass for a final node.
        let root = root_statement(&leaves, m).unwrap();
        assert_ne!(digest_values(&final_digest(&root, &bound)), root.1);
    }

    /// A W leaf over the sample batch `seed`, its program padded to `shape`.
    fn w_leaf(seed: u64, shape: Option<(u32, u32)>) -> (TreeNode, (u32, u32)) {
        let (statement, proof, trace) = super::wrap::child_of(seed);
        let (p, public, witness) = super::wrap::program(&statement, &proof, &trace);
        let natural = (p.log_rows(), p.log_perm_rows());
        let p = match shape {
            Some((r, q)) => p.padded_to(r, q),
            None => p,
        };
        let (proof, key) =
            prove_node_under(ChannelId::Poseidon2, &p, &public, &witness, config()).unwrap();
        let output = [public[0], public[1]];
        (TreeNode { key, output, proof }, natural)
    }

    /// Three W leaves of different batches (and W circuits), padded to one shape: two M nodes
    /// (the second over an M and the carried W: one M circuit for both) and the final node,
    /// which verifies against the digest an auditor rebuilds from the leaves' statements and
    /// against nothing else.
    #[test]
    fn three_w_leaves_make_one_final_proof_of_their_statements() {
        let naturals: Vec<(u32, u32)> = [14, 15, 16]
            .iter()
            .map(|&s| {
                let (statement, proof, trace) = super::wrap::child_of(s);
                let (p, _, _) = super::wrap::program(&statement, &proof, &trace);
                (p.log_rows(), p.log_perm_rows())
            })
            .collect();
        // The tree's shape: the leaves' largest, and M's over it (M is smaller than W here).
        let shape = naturals
            .iter()
            .fold((0, 0), |a, b| (a.0.max(b.0), a.1.max(b.1)));
        let leaves: Vec<TreeNode> = [14, 15, 16]
            .iter()
            .map(|&s| w_leaf(s, Some(shape)).0)
            .collect();
        let statements: Vec<NodeStatement> = leaves.iter().map(TreeNode::statement).collect();
        let mut tree = TreeProver::new(shape, config(), config(), policy());
        let mut levels = Vec::new();
        let bound = Digest([M31::from(5u32); 8]);
        let (root, last) = tree
            .prove(leaves.clone(), &bound, |level, _| levels.push(level))
            .unwrap();
        assert_eq!(
            levels,
            vec![1, 2],
            "M over two W, then M over that M and the carried W"
        );
        assert_eq!((root.key.log_rows, root.key.log_perm_rows), shape);
        let m_key = key_digest(tree.m_key().unwrap());
        let expected = digest_values(&day_digest(&statements, m_key, &bound).unwrap());
        assert_eq!(last.output, expected);
        verify_node(&last.proof, &last.key, &expected, &policy()).expect("the final node verifies");

        // What an auditor would rebuild for another day, tree or statement: refused.
        let refuse = |what: &str, statements: &[NodeStatement], m: Digest| {
            let claimed = digest_values(&day_digest(statements, m, &bound).unwrap());
            let err = verify_node(&last.proof, &last.key, &claimed, &policy());
            assert!(
                matches!(err, Err(VerifyError::PublicInputMismatch { .. })),
                "{what}: {err:?}"
            );
        };
        refuse("a leaf skipped", &[statements[0], statements[2]], m_key);
        refuse("the last leaf removed", &statements[..2], m_key);
        refuse(
            "leaves reordered",
            &[statements[1], statements[0], statements[2]],
            m_key,
        );
        let mut changed = statements.clone();
        changed[1].1[0] += SecureField::one();
        refuse("a leaf's statement changed", &changed, m_key);
        refuse("another M key", &statements, statements[0].0);
        let other_day =
            digest_values(&day_digest(&statements, m_key, &Digest([M31::from(6u32); 8])).unwrap());
        let err = verify_node(&last.proof, &last.key, &other_day, &policy());
        assert!(
            matches!(err, Err(VerifyError::PublicInputMismatch { .. })),
            "another bound statement: {err:?}"
        );
        // The root node's own output is not the day's: only the final node states the day.
        let err = verify_node(&last.proof, &last.key, &root.output, &policy());
        assert!(
            matches!(err, Err(VerifyError::PublicInputMismatch { .. })),
            "{err:?}"
        );

        // A leaf of another shape is refused before anything is proven.
        let (natural_leaf, natural) = w_leaf(14, None);
        if natural != shape {
            let err = tree.merge(&natural_leaf, &leaves[1]).unwrap_err();
            assert!(err.contains("shape"), "{err}");
        }
    }
}
