//! Recursion's building blocks (`specs/recursion.md`): what a STARK that verifies poe STARKs
//! needs from the proofs it verifies. So far the constraint compiler, which turns a component's
//! constraints into the QM31 circuit such a verifier evaluates at the out-of-domain point, and
//! the verifier's costs counted on real proofs.

pub mod compiler;
pub mod costs;
#[cfg(test)]
mod tests;

pub use compiler::{compile, Circuit, Gate, GateCounts, MaskRef, Wire};
#[cfg(feature = "prover")]
pub use costs::count_permutations;
pub use costs::{shape_costs, VerifierCosts};

use crate::validity::registry::EvalVisitor;
use crate::validity::{ComponentId, ValidityRelations, ValidityStatement};

/// Every batch-validity component compiled under `statement`'s sizes, with relation elements
/// drawn from a fixed transcript (gate counts do not depend on their values, but a zero or a
/// one would fold away gates a real proof pays for).
pub fn validity_circuits(statement: &ValidityStatement) -> Vec<(ComponentId, Circuit)> {
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
    ComponentId::ALL
        .into_iter()
        .map(|id| (id, id.eval_with(statement, &rels, Compile(sum))))
        .collect()
}
