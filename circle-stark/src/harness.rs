//! A small prove-then-verify pipeline for AIR tests (one main trace, one interaction trace,
//! LogUp closed by an expected total), so that each component's tests state only what differs.

use stwo::core::channel::{Blake2sChannel, Channel};
use stwo::core::fields::qm31::SecureField;
use stwo::core::pcs::{CommitmentSchemeVerifier, TreeVec};
use stwo::core::poly::circle::CanonicCoset;
use stwo::core::vcs_lifted::blake2_merkle::Blake2sMerkleChannel;
use stwo::core::verifier::verify;
use stwo::prover::backend::simd::column::BaseColumn;
use stwo::prover::backend::simd::SimdBackend;
use stwo::prover::poly::circle::{CircleEvaluation, PolyOps};
use stwo::prover::poly::BitReversedOrder;
use stwo::prover::{prove, CommitmentSchemeProver, ComponentProver};
use stwo_constraint_framework::TraceLocationAllocator;

use crate::config::SecurityConfig;
use crate::field::M31;

/// A column set committed at one size.
pub(crate) type Evaluations = Vec<CircleEvaluation<SimdBackend, M31, BitReversedOrder>>;

/// Columns of `log_rows` rows as evaluations.
pub(crate) fn evaluations(log_rows: u32, cols: &[Vec<M31>]) -> Evaluations {
    let domain = CanonicCoset::new(log_rows).circle_domain();
    cols.iter()
        .map(|c| CircleEvaluation::new(domain, c.iter().copied().collect::<BaseColumn>()))
        .collect()
}

/// The init and final boundary components of the memory argument, as the component tests
/// place them after their own components.
pub(crate) fn boundary_components(
    alloc: &mut TraceLocationAllocator,
    state: &crate::validity::memory::StateRel,
    log_rows: u32,
    sums: [SecureField; 2],
) -> [Box<dyn ComponentProver<SimdBackend>>; 2] {
    use crate::validity::memory::{Boundary, BoundaryEval};
    let mut component = |is_init: bool, sum| -> Box<dyn ComponentProver<SimdBackend>> {
        Box::new(Boundary::new(
            alloc,
            BoundaryEval {
                log_rows,
                state: state.clone(),
                is_init,
            },
            sum,
        ))
    };
    [component(true, sums[0]), component(false, sums[1])]
}

/// LogUp columns of a component whose rows each add the same number of fractions
/// `(numerator, denominator)`, in the order the component adds them (paired as
/// `finalize_logup_in_pairs` pairs them). `row(r)` gives row `r`'s fractions, in natural
/// (coset) order.
pub(crate) fn logup_columns(
    log_rows: u32,
    row: impl Fn(usize) -> Vec<(SecureField, SecureField)>,
) -> (Evaluations, SecureField) {
    use stwo::prover::backend::simd::m31::{LOG_N_LANES, N_LANES};
    use stwo::prover::backend::simd::qm31::PackedSecureField;
    use stwo_constraint_framework::LogupTraceGenerator;

    let n = 1usize << log_rows;
    // Same layout as `evaluations`: row r is lane r % 16 of packed row r / 16.
    let rows: Vec<Vec<(SecureField, SecureField)>> = (0..n).map(&row).collect();
    let width = rows[0].len();
    let mut gen = LogupTraceGenerator::new(log_rows);
    for first in (0..width).step_by(2) {
        let mut col = gen.new_col();
        for vr in 0..1 << (log_rows - LOG_N_LANES) {
            let frac = |k: usize| -> (PackedSecureField, PackedSecureField) {
                let lanes: [(SecureField, SecureField); N_LANES] =
                    std::array::from_fn(|l| rows[vr * N_LANES + l][k]);
                (
                    PackedSecureField::from_array(lanes.map(|x| x.0)),
                    PackedSecureField::from_array(lanes.map(|x| x.1)),
                )
            };
            let (n0, d0) = frac(first);
            if first + 1 < width {
                let (n1, d1) = frac(first + 1);
                col.write_frac(vr, n0 * d1 + n1 * d0, d0 * d1);
            } else {
                col.write_frac(vr, n0, d0);
            }
        }
        col.finalize_col();
    }
    gen.finalize_last()
}

/// What a test supplies: the main trace, how to draw the relation challenges, the interaction
/// trace and claimed sums, the components, and the LogUp total the verifier expects.
pub(crate) struct Air<R, Draw, Inter, Comps, Total>
where
    Draw: Fn(&mut Blake2sChannel) -> R,
    Inter: Fn(&R) -> Vec<(Evaluations, SecureField)>,
    Comps: Fn(
        &R,
        &[SecureField],
        &mut TraceLocationAllocator,
    ) -> Vec<Box<dyn ComponentProver<SimdBackend>>>,
    Total: Fn(&R) -> SecureField,
{
    pub main: Vec<Evaluations>,
    pub max_log_rows: u32,
    pub draw: Draw,
    pub interaction: Inter,
    pub components: Comps,
    pub expected_total: Total,
}

/// Proves, then verifies as an outside verifier would (re-deriving every challenge). Errors are
/// strings naming the failed step: `logup total`, or stwo's verification error.
pub(crate) fn prove_and_verify<R, Draw, Inter, Comps, Total>(
    air: Air<R, Draw, Inter, Comps, Total>,
) -> Result<(), String>
where
    Draw: Fn(&mut Blake2sChannel) -> R,
    Inter: Fn(&R) -> Vec<(Evaluations, SecureField)>,
    Comps: Fn(
        &R,
        &[SecureField],
        &mut TraceLocationAllocator,
    ) -> Vec<Box<dyn ComponentProver<SimdBackend>>>,
    Total: Fn(&R) -> SecureField,
{
    let config = SecurityConfig::testing();
    let twiddles = SimdBackend::precompute_twiddles(
        CanonicCoset::new(air.max_log_rows + 1 + config.log_blowup())
            .circle_domain()
            .half_coset,
    );
    let channel = &mut Blake2sChannel::default();
    let mut scheme = CommitmentSchemeProver::<SimdBackend, Blake2sMerkleChannel>::new(
        config.pcs_config(),
        &twiddles,
    );
    scheme.tree_builder().commit(channel);
    let mut tree = scheme.tree_builder();
    for evals in air.main {
        tree.extend_evals(evals);
    }
    tree.commit(channel);
    let relations = (air.draw)(channel);
    let (inter, sums): (Vec<Evaluations>, Vec<SecureField>) =
        (air.interaction)(&relations).into_iter().unzip();
    channel.mix_felts(&sums);
    let mut tree = scheme.tree_builder();
    for evals in inter {
        tree.extend_evals(evals);
    }
    tree.commit(channel);
    let comps = (air.components)(&relations, &sums, &mut TraceLocationAllocator::default());
    let refs: Vec<&dyn ComponentProver<SimdBackend>> = comps.iter().map(|c| c.as_ref()).collect();
    let proof = prove::<SimdBackend, Blake2sMerkleChannel>(&refs, channel, scheme)
        .map_err(|e| e.to_string())?;

    // The verifier's side.
    let channel = &mut Blake2sChannel::default();
    let mut vscheme = CommitmentSchemeVerifier::<Blake2sMerkleChannel>::new(config.pcs_config());
    let sizes = TreeVec::concat_cols(comps.iter().map(|c| c.trace_log_degree_bounds()));
    vscheme.commit(proof.0.commitments[0], &sizes[0], channel);
    vscheme.commit(proof.0.commitments[1], &sizes[1], channel);
    let relations = (air.draw)(channel);
    channel.mix_felts(&sums);
    vscheme.commit(proof.0.commitments[2], &sizes[2], channel);
    if sums.iter().copied().sum::<SecureField>() != (air.expected_total)(&relations) {
        return Err("logup total".into());
    }
    let comps = (air.components)(&relations, &sums, &mut TraceLocationAllocator::default());
    let refs: Vec<&dyn stwo::core::air::Component> = comps
        .iter()
        .map(|c| c.as_ref() as &dyn stwo::core::air::Component)
        .collect();
    verify(&refs, channel, &mut vscheme, proof).map_err(|e| e.to_string())
}

/// The range table's LogUp column in a component test: `uses/c_range(v) − 1/c_table(v)` per
/// row, from the table's `[value, uses]` columns.
pub(crate) fn range_table_column(
    table: &[Vec<M31>; 2],
    rels: &crate::validity::range::RangeRelations,
) -> (Evaluations, SecureField) {
    use stwo_constraint_framework::Relation;
    let one = SecureField::from(M31::from_u32_unchecked(1));
    logup_columns(crate::validity::range::LOG_RANGE, |r| {
        let v = M31::from_u32_unchecked(r as u32);
        vec![
            (table[1][r].into(), rels.range.combine(&[v])),
            (-one, rels.table.combine(&[v])),
        ]
    })
}

/// The range table component, as the component tests place it first.
pub(crate) fn range_table_component(
    alloc: &mut TraceLocationAllocator,
    rels: &crate::validity::range::RangeRelations,
    sum: SecureField,
) -> Box<dyn ComponentProver<SimdBackend>> {
    use crate::validity::range::{RangeTable, RangeTableEval};
    Box::new(RangeTable::new(
        alloc,
        RangeTableEval {
            relations: rels.clone(),
        },
        sum,
    ))
}
