//! The DEEP quotients at the queries (stwo's `fri_answers`).

use num_traits::{One, Zero};
use stwo::core::circle::CirclePoint;
use stwo::core::fields::cm31::CM31;
use stwo::core::fields::m31::BaseField;
use stwo::core::fields::qm31::SecureField;
use stwo::core::fields::{ComplexConjugate, FieldExpOps};
use stwo::core::pcs::TreeVec;
use stwo::core::poly::circle::CanonicCoset;
use stwo::core::utils::bit_reverse_index;
use stwo::core::verifier::VerificationError;

use super::{structure, DeepBatch, DeepQuery};

/// stwo's `fri_answers`: for each query, `Σ_batches Σ_terms (c·v − (a·y + b)) / line(p)`.
#[allow(clippy::type_complexity)]
pub(super) fn quotients(
    column_log_sizes: &[Vec<u32>],
    sample_points: &TreeVec<Vec<Vec<CirclePoint<SecureField>>>>,
    sampled_values: &TreeVec<Vec<Vec<SecureField>>>,
    alpha: SecureField,
    queries: &[usize],
    queried_values: &TreeVec<Vec<Vec<BaseField>>>,
    lifting_log_size: u32,
) -> Result<(Vec<DeepBatch>, Vec<DeepQuery>), VerificationError> {
    let generator = CanonicCoset::new(lifting_log_size).step();
    let mut power = SecureField::one();
    let mut next_power = || {
        let p = power;
        power *= alpha;
        p
    };
    // Samples grouped by point in order of first appearance (stwo's `IndexMap`), each term
    // with its power of α; a column sampled at two points also gets the periodicity sample.
    let mut batches: Vec<DeepBatch> = Vec::new();
    let mut add = |point: CirclePoint<SecureField>, column, value, coeff| {
        let terms = line_coeffs(point, value, coeff)?;
        match batches.iter_mut().find(|b| b.point == point) {
            Some(b) => b.terms.push((column, value, terms)),
            None => batches.push(DeepBatch {
                point,
                terms: vec![(column, value, terms)],
            }),
        }
        Ok::<_, VerificationError>(())
    };
    let mut column = 0;
    for (tree, sizes) in sample_points
        .iter()
        .zip(sampled_values.iter())
        .zip(column_log_sizes)
    {
        let (points, values) = tree;
        for ((points, values), &log_size) in points.iter().zip(values).zip(sizes) {
            if let [_, last] = points.as_slice() {
                let period = generator.repeated_double(log_size).into_ef();
                add(*last + period, column, values[1], next_power())?;
            }
            for (&p, &v) in points.iter().zip(values) {
                add(p, column, v, next_power())?;
            }
            column += 1;
        }
    }
    let opened: Vec<&Vec<BaseField>> = queried_values.iter().flatten().collect();
    if opened.len() != column {
        return Err(structure(format!(
            "expected {column} opened columns, got {}",
            opened.len()
        )));
    }
    let domain = CanonicCoset::new(lifting_log_size).circle_domain();
    let mut out = Vec::with_capacity(queries.len());
    for (idx, &position) in queries.iter().enumerate() {
        let p = domain.at(bit_reverse_index(position, lifting_log_size));
        let denominators: Vec<CM31> = batches
            .iter()
            .map(|b| (b.point.x.0 - p.x) * b.point.y.1 - (b.point.y.0 - p.y) * b.point.x.1)
            .collect();
        if denominators.iter().any(|d| d.is_zero()) {
            return Err(structure("a query position on a sample line"));
        }
        let denominator_inverses: Vec<CM31> = denominators.iter().map(|d| d.inverse()).collect();
        let mut value = SecureField::zero();
        for (batch, &inv) in batches.iter().zip(&denominator_inverses) {
            let mut numerator = SecureField::zero();
            for &(col, _, [a, b, c]) in &batch.terms {
                numerator += c * opened[col][idx] - (a * p.y + b);
            }
            value += numerator.mul_cm31(inv);
        }
        out.push(DeepQuery {
            position,
            domain_point: p,
            denominator_inverses,
            value,
        });
    }
    Ok((batches, out))
}

/// `(α·a, α·b, α·c)` of the line `c·Y − a·X − b` through `(z.y, v)` and its conjugate.
fn line_coeffs(
    point: CirclePoint<SecureField>,
    value: SecureField,
    alpha: SecureField,
) -> Result<[SecureField; 3], VerificationError> {
    let conj_y = point.y.complex_conjugate();
    if conj_y == point.y {
        return Err(structure("a sample point on the base circle"));
    }
    let a = value.complex_conjugate() - value;
    let c = conj_y - point.y;
    let b = value * c - a * point.y;
    Ok([alpha * a, alpha * b, alpha * c])
}
