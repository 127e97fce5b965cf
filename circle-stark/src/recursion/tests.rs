//! The compiled circuit of every component of every poe AIR against stwo's `PointEvaluator` at
//! random points: the same constraint values, in the same order, LogUp included.

use num_traits::Zero;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use stwo::core::air::accumulation::PointEvaluationAccumulator;
use stwo::core::channel::{Blake2sChannel, Channel};
use stwo::core::fields::qm31::SecureField;
use stwo::core::pcs::TreeVec;
use stwo_constraint_framework::{FrameworkEval, PointEvaluator};

use super::compiler::{compile, Circuit, Gate, Val};
use crate::data_root::{LeafEval, MerkleNodeRelation, NodeEval};
use crate::field::{qm31_from_array, M31, MODULUS};
use crate::validity::registry::EvalVisitor;
use crate::validity::{ComponentId, ValidityAir, ValidityRelations, ValidityStatement};

fn random_qm31(rng: &mut ChaCha8Rng) -> SecureField {
    qm31_from_array(std::array::from_fn(|_| {
        M31::from_u32_unchecked(rng.gen_range(0..MODULUS))
    }))
}

/// Compiles `eval`, then evaluates it and `PointEvaluator` on the same random mask, a few
/// times; returns the circuit.
fn differential<E: FrameworkEval>(name: &str, eval: &E, seed: u64) -> Circuit {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let claimed_sum = random_qm31(&mut rng);
    let circuit = compile(eval, claimed_sum);
    assert!(!circuit.constraints.is_empty(), "{name}: no constraints");
    for _ in 0..3 {
        let mask = circuit.mask_values(|| random_qm31(&mut rng));
        let coeff = random_qm31(&mut rng);
        let denom_inverse = random_qm31(&mut rng);

        let mut theirs = PointEvaluationAccumulator::new(coeff);
        let refs = TreeVec::new(mask.iter().map(|tree| tree.iter().collect()).collect());
        eval.evaluate(PointEvaluator::new(
            refs,
            &mut theirs,
            denom_inverse,
            eval.log_size(),
            claimed_sum,
        ));

        let mut ours = PointEvaluationAccumulator::new(coeff);
        for value in circuit.evaluate(&mask) {
            ours.accumulate(denom_inverse * value);
        }
        let ours = ours.finalize();
        assert_eq!(ours, theirs.finalize(), "{name}");
        assert!(!ours.is_zero(), "{name}: a random point satisfies nothing");
    }
    circuit
}

struct Differential {
    name: &'static str,
    seed: u64,
}

impl EvalVisitor for Differential {
    type Out = Circuit;
    fn visit<E: FrameworkEval + Sync + 'static>(self, eval: E) -> Circuit {
        differential(self.name, &eval, self.seed)
    }
}

fn statement() -> ValidityStatement {
    ValidityStatement::from_bytes(include_bytes!(
        "../../../tests/fixtures/batch_validity_v2.statement"
    ))
    .expect("the golden statement decodes")
}

fn relations(seed: u64) -> ValidityRelations {
    let mut channel = Blake2sChannel::default();
    channel.mix_u64(seed);
    ValidityRelations::draw(&mut channel)
}

#[test]
fn every_batch_validity_component_compiles_to_what_point_evaluator_computes() {
    let s = statement();
    let rels = relations(1);
    for air in [ValidityAir::V2, ValidityAir::V3] {
        for (i, &id) in ComponentId::of(air).iter().enumerate() {
            let circuit = id.eval_with(
                air,
                &s,
                &rels,
                Differential {
                    name: id.name(),
                    seed: i as u64,
                },
            );
            // Inputs are one per mask value read.
            let masks: usize = circuit.mask.iter().flatten().map(Vec::len).sum();
            assert_eq!(circuit.counts().inputs, masks, "{air:?} {}", id.name());
            if id == ComponentId::Range {
                // v3 reads its values from the preprocessed tree, v2 from the main trace.
                let preprocessed = circuit.mask[0].len();
                assert_eq!(preprocessed, usize::from(air == ValidityAir::V3), "{air:?}");
            }
        }
    }
}

#[test]
fn data_root_components_compile_to_what_point_evaluator_computes() {
    let mut channel = Blake2sChannel::default();
    channel.mix_u64(7);
    let relation = MerkleNodeRelation::draw(&mut channel);
    for limbs in [1, 12] {
        let leaf = LeafEval {
            log_rows: 5,
            record_limbs: limbs,
            relation: relation.clone(),
            ops: None,
        };
        differential("data-root leaf", &leaf, limbs as u64);
    }
    for forest in [false, true] {
        let node = NodeEval {
            log_rows: 5,
            relation: relation.clone(),
            forest,
        };
        differential("data-root node", &node, 20 + forest as u64);
    }
}

#[test]
fn poseidon2_rounds_stay_a_dag() {
    // An expression tree of the chip's constraints would repeat each partial round's linear
    // layer in every later round; as a DAG every multiplication is a gate once.
    let s = statement();
    let circuit = ComponentId::Chip.eval_with(
        ValidityAir::V2,
        &s,
        &relations(2),
        Differential {
            name: "chip",
            seed: 9,
        },
    );
    let counts = circuit.counts();
    assert!(
        counts.muls + counts.linear < 20_000,
        "chip circuit has {} gates",
        circuit.gates.len()
    );
    // No gate reads a later one.
    for (i, g) in circuit.gates.iter().enumerate() {
        let reads = match g {
            Gate::Add(a, b) | Gate::Sub(a, b) | Gate::Mul(a, b) => vec![*a, *b],
            Gate::Neg(a) | Gate::Inv(a) => vec![*a],
            Gate::Input(_) | Gate::Const(_) | Gate::Param(_) => vec![],
        };
        assert!(reads.iter().all(|w| (w.0 as usize) < i));
    }
}

#[test]
fn constants_fold_and_identical_gates_merge() {
    struct Twice;
    impl FrameworkEval for Twice {
        fn log_size(&self) -> u32 {
            4
        }
        fn max_constraint_log_degree_bound(&self) -> u32 {
            5
        }
        fn evaluate<E: stwo_constraint_framework::EvalAtRow>(&self, mut eval: E) -> E {
            let x = eval.next_trace_mask();
            let one = E::F::from(M31::from_u32_unchecked(1));
            let two = one.clone() + one;
            eval.add_constraint(x.clone() * x.clone() - two.clone());
            eval.add_constraint(x.clone() * x - two);
            eval
        }
    }
    let circuit = differential("twice", &Twice, 3);
    // x, x·x, the constant 2 and one subtraction: the second constraint is the same gate.
    assert_eq!(circuit.gates.len(), 4);
    assert_eq!(circuit.constraints[0], circuit.constraints[1]);
    let _: Val = Val::Const(SecureField::zero());
}
