//! Every batch-validity component compiled to a QM31 circuit (`crate::recursion::compiler`):
//! the constraint side of what a recursive verifier of a validity proof evaluates.

use super::registry::EvalVisitor;
use super::{ComponentId, ValidityAir, ValidityRelations, ValidityStatement};
use crate::recursion::compiler::{compile, Circuit};

/// Every component of the batch-validity AIR `air` compiled under `statement`'s sizes, with relation elements
/// drawn from a fixed transcript (gate counts do not depend on their values, but a zero or a
/// one would fold away gates a real proof pays for).
pub fn compiled_circuits(
    air: ValidityAir,
    statement: &ValidityStatement,
) -> Vec<(ComponentId, Circuit)> {
    use stwo::core::channel::{Blake2sChannel, Channel};
    struct Compile(stwo::core::fields::qm31::SecureField);
    impl EvalVisitor for Compile {
        type Out = Circuit;
        fn visit<E: stwo_constraint_framework::FrameworkEval + Sync + 'static>(
            self,
            eval: E,
        ) -> Circuit {
            compile(&eval, self.0)
        }
    }
    let mut channel = Blake2sChannel::default();
    channel.mix_u32s(&[u32::from_le_bytes(*b"gate")]);
    let rels = ValidityRelations::draw(&mut channel);
    let sum = channel.draw_secure_felt();
    ComponentId::of(air)
        .iter()
        .copied()
        .map(|id| (id, id.eval_with(air, statement, &rels, Compile(sum))))
        .collect()
}
