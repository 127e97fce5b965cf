//! Shape classes of AIR v3 (`specs/batch-air.md` §6, `specs/recursion.md` §5): a **shape** is
//! the log size of every component; a **class** is a catalogued shape, named by its operation
//! budget `2^k` and its state budget `2^j` (Poseidon2 chip rows), with every other component
//! sized from those two. A recursive verifier has one circuit per class; the segment planner
//! proves each run of batches in the cheapest class that holds it.

use stwo::core::fields::qm31::SecureField;
use stwo_constraint_framework::{FrameworkComponent, FrameworkEval, TraceLocationAllocator};

use super::registry::{ComponentId, EvalVisitor};
use super::relations::ValidityRelations;
use super::ValidityAir;
use crate::data_root::MIN_LOG_ROWS;
use crate::validity::range::LOG_RANGE;

/// Largest log size a shape may give a component: what the 24 GiB reference machine proves,
/// and far below the field's characteristic for every LogUp multiplicity.
pub const MAX_SHAPE_LOG: u32 = 22;

/// Number of components a shape sizes (AIR v3's).
pub const SHAPE_LEN: usize = ComponentId::ALL.len();

/// The log2 rows of every AIR v3 component, in commitment order ([`ComponentId::ALL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape(pub [u32; SHAPE_LEN]);

impl Shape {
    /// The component's log2 rows.
    pub fn log_rows(&self, id: ComponentId) -> u32 {
        self.0[id.index()]
    }

    /// Where this shape cannot hold `rows` (rows per component, commitment order): the first
    /// component whose rows exceed `2^log`.
    pub fn overflow(&self, rows: &[usize; SHAPE_LEN]) -> Option<Overflow> {
        ComponentId::ALL.iter().find_map(|&id| {
            let capacity = 1usize << self.log_rows(id);
            let need = rows[id.index()];
            (need > capacity).then_some(Overflow {
                component: id,
                rows: need,
                capacity,
            })
        })
    }

    /// Base-field cells of the main and interaction traces at this shape (the range table's
    /// preprocessed column excluded: every shape has the same): what the prover commits and
    /// extends, so the planner's measure of a class's cost.
    pub fn cells(&self) -> u64 {
        struct Count(u32);
        impl EvalVisitor for Count {
            type Out = u64;
            fn visit<E: FrameworkEval + Sync + 'static>(self, eval: E) -> u64 {
                let component = FrameworkComponent::new(
                    &mut TraceLocationAllocator::default(),
                    eval,
                    SecureField::from(crate::field::M31::from_u32_unchecked(0)),
                );
                let bounds = stwo::core::air::Component::trace_log_degree_bounds(&component);
                bounds
                    .iter()
                    .skip(1)
                    .flatten()
                    .map(|_| 1u64 << self.0)
                    .sum()
            }
        }
        let rels = ValidityRelations::dummy();
        ComponentId::ALL
            .iter()
            .map(|&id| {
                let log = self.log_rows(id);
                id.eval_sized(ValidityAir::V3, log, &rels, Count(log))
            })
            .sum()
    }
}

/// A component that a shape cannot hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow {
    /// The component.
    pub component: ComponentId,
    /// Rows it needs.
    pub rows: usize,
    /// Rows the shape gives it.
    pub capacity: usize,
}

/// A catalogued shape: `2^log_ops` operations, `2^log_state` Poseidon2 chip rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShapeClass {
    /// log2 of the operation budget (data leaves and nodes, cash, trade).
    pub log_ops: u32,
    /// log2 of the state budget (chip rows; state nodes, leaves and holders follow).
    pub log_state: u32,
}

/// Smallest operation budget of a class.
pub const MIN_CLASS_LOG_OPS: u32 = 8;
/// Largest: the AIR's operation limit ([`super::MAX_OPS`]).
pub const MAX_CLASS_LOG_OPS: u32 = 18;
/// State budgets of a class relative to its operation budget: the measured spread of chip
/// rows per operation is 0.02 to 24.5 (BENCHMARKS.md "Rows per component before padding").
pub const STATE_STEPS: [i32; 5] = [-4, -2, 0, 2, 4];

impl ShapeClass {
    /// Every class, in catalogue order (by `log_ops`, then `log_state`).
    pub fn all() -> Vec<Self> {
        catalogue().iter().map(|&(c, _, _)| c).collect()
    }

    /// The class with the most rows in every component.
    pub fn largest() -> Self {
        let last = *Self::all().last().expect("a catalogue");
        debug_assert!(Self::all().iter().all(|c| c.within(last)));
        last
    }

    fn enumerate() -> Vec<Self> {
        (MIN_CLASS_LOG_OPS..=MAX_CLASS_LOG_OPS)
            .flat_map(|k| {
                STATE_STEPS.iter().filter_map(move |&d| {
                    let j = k.checked_add_signed(d)?;
                    let class = Self {
                        log_ops: k,
                        log_state: j,
                    };
                    class.is_valid().then_some(class)
                })
            })
            .collect()
    }

    fn is_valid(self) -> bool {
        (MIN_CLASS_LOG_OPS..=MAX_CLASS_LOG_OPS).contains(&self.log_ops)
            && STATE_STEPS.contains(&(self.log_state as i32 - self.log_ops as i32))
            && self
                .raw_shape()
                .0
                .iter()
                .all(|&l| (MIN_LOG_ROWS..=MAX_SHAPE_LOG).contains(&l))
    }

    /// The class's shape. The ratios follow the measured rows (BENCHMARKS.md): data leaves and
    /// nodes, cash and trade one row per operation at most; the chip hashes every state leaf
    /// and node twice (pre and post), so nodes stay under half its rows, leaves and holders
    /// (positions settled are touched leaves) under a quarter; settlement headers are one per
    /// instrument settled, the instrument table and the closure input an eighth of the
    /// operations (up to 4,096 instruments).
    pub fn shape(self) -> Shape {
        self.raw_shape()
    }

    fn raw_shape(self) -> Shape {
        let (k, j) = (self.log_ops, self.log_state);
        let mut s = [0u32; SHAPE_LEN];
        for id in ComponentId::ALL {
            s[id.index()] = match id {
                ComponentId::Range => LOG_RANGE,
                ComponentId::Instruments => (k - 3).min(12),
                ComponentId::DataLeaf
                | ComponentId::DataNode
                | ComponentId::Cash
                | ComponentId::Trade => k,
                ComponentId::Settle => (k.saturating_sub(6)).clamp(MIN_LOG_ROWS, 12),
                ComponentId::StateLeaf | ComponentId::Holder => j.saturating_sub(2),
                ComponentId::StateNode => j.saturating_sub(1),
                ComponentId::Chip => j,
                ComponentId::Input => k - 3,
            };
        }
        Shape(s)
    }

    /// The class whose shape is `shape`, if any.
    pub fn of(shape: &Shape) -> Option<Self> {
        catalogue()
            .iter()
            .find(|(_, s, _)| s == shape)
            .map(|&(c, _, _)| c)
    }

    /// The cheapest class ([`Shape::cells`]) that holds `rows`; ties go to the smaller
    /// operation budget.
    pub fn cheapest_holding(rows: &[usize; SHAPE_LEN]) -> Option<Self> {
        Self::cheapest_holding_within(rows, Self::largest())
    }

    /// [`ShapeClass::cheapest_holding`] among the classes within `limit` (neither budget
    /// above its): what a prover with less memory than the largest class needs allows.
    pub fn cheapest_holding_within(rows: &[usize; SHAPE_LEN], limit: Self) -> Option<Self> {
        catalogue()
            .iter()
            .filter(|(c, s, _)| c.within(limit) && s.overflow(rows).is_none())
            .min_by_key(|&&(c, _, cells)| (cells, c.log_ops))
            .map(|&(c, _, _)| c)
    }

    /// Whether neither budget exceeds `limit`'s.
    pub fn within(self, limit: Self) -> bool {
        self.log_ops <= limit.log_ops && self.log_state <= limit.log_state
    }

    /// The class's [`Shape::cells`].
    pub fn cells(self) -> u64 {
        catalogue()
            .iter()
            .find(|(c, _, _)| *c == self)
            .map_or_else(|| self.shape().cells(), |&(_, _, cells)| cells)
    }

    /// `o<k>s<j>`, as logs, the CLI and the specs name a class.
    pub fn name(self) -> String {
        format!("o{}s{}", self.log_ops, self.log_state)
    }

    /// Inverse of [`ShapeClass::name`]; `None` for a name outside the catalogue.
    pub fn parse(name: &str) -> Option<Self> {
        let rest = name.strip_prefix('o')?;
        let (k, j) = rest.split_once('s')?;
        let class = Self {
            log_ops: k.parse().ok()?,
            log_state: j.parse().ok()?,
        };
        class.is_valid().then_some(class)
    }
}

/// The catalogue with each class's shape and cost, built once.
fn catalogue() -> &'static [(ShapeClass, Shape, u64)] {
    static CATALOGUE: std::sync::OnceLock<Vec<(ShapeClass, Shape, u64)>> =
        std::sync::OnceLock::new();
    CATALOGUE.get_or_init(|| {
        ShapeClass::enumerate()
            .into_iter()
            .map(|c| {
                let shape = c.raw_shape();
                (c, shape, shape.cells())
            })
            .collect()
    })
}

impl std::fmt::Display for ShapeClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "o{}s{}", self.log_ops, self.log_state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_names_round_trip_and_shapes_are_distinct() {
        let all = ShapeClass::all();
        // 11 operation budgets × 5 state steps, less the state budgets that would size a
        // component below the AIR's minimum or above the cap.
        assert!(all.len() > 40 && all.len() <= 55, "{}", all.len());
        for c in &all {
            assert_eq!(ShapeClass::parse(&c.name()), Some(*c));
            assert_eq!(ShapeClass::of(&c.shape()), Some(*c));
        }
        let shapes: std::collections::HashSet<Shape> = all.iter().map(|c| c.shape()).collect();
        assert_eq!(shapes.len(), all.len(), "two classes share a shape");
        assert_eq!(ShapeClass::parse("o7s7"), None, "below the catalogue");
        assert_eq!(ShapeClass::parse("o16s15"), None, "an odd state step");
        assert_eq!(ShapeClass::parse("o16s16x"), None);
    }

    #[test]
    fn cells_grow_with_each_budget() {
        let c = |k, j| {
            ShapeClass {
                log_ops: k,
                log_state: j,
            }
            .shape()
            .cells()
        };
        assert!(c(12, 12) < c(12, 14));
        assert!(c(12, 12) < c(14, 12));
        assert!(c(16, 12) < c(16, 20));
    }

    #[test]
    fn cheapest_class_holds_and_overflow_names_the_component() {
        let mut rows = [0usize; SHAPE_LEN];
        rows[ComponentId::Range.index()] = 1 << LOG_RANGE;
        rows[ComponentId::DataLeaf.index()] = 3000;
        rows[ComponentId::Chip.index()] = 70_000;
        let class = ShapeClass::cheapest_holding(&rows).expect("a class holds it");
        assert_eq!(class.shape().overflow(&rows), None);
        assert!(class.log_ops >= 12 && class.log_state >= 17, "{class}");
        let small = ShapeClass {
            log_ops: 12,
            log_state: 12,
        };
        let o = small
            .shape()
            .overflow(&rows)
            .expect("2^12 chip rows overflow");
        assert_eq!(
            (o.component, o.rows, o.capacity),
            (ComponentId::Chip, 70_000, 4096)
        );
        rows[ComponentId::Chip.index()] = 1 << 23;
        assert_eq!(ShapeClass::cheapest_holding(&rows), None);
    }
}
