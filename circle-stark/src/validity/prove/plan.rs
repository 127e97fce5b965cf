//! Cutting a rollup's run of batches into segments that each fit a shape class
//! (`specs/day-proof.md` §4, `specs/recursion.md` §5), from exact row counts: the batches are
//! executed on the venue, nothing is hashed into a trace or proven.
//!
//! The state components depend on the distinct keys a segment touches, not on its operations,
//! so a segment's rows are not the sum of its batches' rows: [`RunRows`] keeps the touched
//! leaves and the state tree's nodes above them as sets and counts what a batch adds.

use std::collections::{BTreeSet, HashSet};
use std::ops::Range;

use super::execute::{accesses, execute_on};
use crate::error::ProveError;
use crate::hash::merkle::n_internal_nodes;
use crate::validity::closure::{closure_len, PERMS_PER_TERM};
use crate::validity::shape::{ShapeClass, SHAPE_LEN};
use crate::validity::{ComponentId, MAX_BATCHES, MAX_OPS};
use crate::venue::state::STATE_DEPTH;
use crate::venue::{Operation, Venue};

/// The chip's permutations per state leaf and per state node row: each hashes its pre-state
/// and its post-state value (`state_tree::witness`).
const PERMS_PER_STATE_ROW: usize = 2;

/// What one batch adds to a run: its own rows and the state keys it touches.
#[derive(Debug, Clone)]
pub struct BatchRows {
    ops: usize,
    keys: BTreeSet<u32>,
    /// State-tree nodes on its own keys' paths (its tree pair's rows under AIR v4).
    nodes: usize,
    cash: usize,
    trade: usize,
    settle: usize,
    holder: usize,
    instruments: usize,
}

impl BatchRows {
    /// Executes `batch` on `venue`, which it advances past the batch.
    ///
    /// # Errors
    /// [`ProveError::NoRecords`] for an empty batch, [`ProveError::Rule`] for one that breaks
    /// a venue rule.
    pub fn execute(venue: &mut Venue, batch: &[Operation]) -> Result<Self, ProveError> {
        if batch.is_empty() {
            return Err(ProveError::NoRecords);
        }
        let e = execute_on(venue, batch, &[])?;
        let keys: BTreeSet<u32> = accesses(&e.cash, &e.trade, &e.settle, &e.holder)
            .iter()
            .map(|a| a.key)
            .collect();
        let nodes = RunRows::default().new_state_of(&keys).1.len();
        Ok(Self {
            ops: batch.len(),
            keys,
            nodes,
            cash: e.cash.len(),
            trade: e.trade.len(),
            settle: e.settle.len(),
            holder: e.holder.len(),
            instruments: e.instruments.len(),
        })
    }
}

/// The rows of a run of consecutive batches of one rollup, exactly as the prover will build
/// them (tested against [`super::component_rows`]).
#[derive(Debug, Clone, Default)]
pub struct RunRows {
    /// AIR v4: one tree pair per batch, so the state rows are the batches' own, summed.
    windowed: bool,
    /// Windowed: the batches' state leaf and node rows so far.
    window_rows: (usize, usize),
    sizes: Vec<usize>,
    leaves: HashSet<u32>,
    /// `(height, index)` of every state-tree node on a touched leaf's path.
    nodes: HashSet<(u32, u32)>,
    cash: usize,
    trade: usize,
    settle: usize,
    holder: usize,
    instruments: usize,
}

impl RunRows {
    /// An empty run under `air` (v3's rows are [`RunRows::default`]'s).
    pub fn new(air: crate::validity::ValidityAir) -> Self {
        Self {
            windowed: air.windowed(),
            ..Self::default()
        }
    }

    /// Batches in the run.
    pub fn n_batches(&self) -> usize {
        self.sizes.len()
    }

    /// Operations in the run.
    pub fn n_ops(&self) -> usize {
        self.sizes.iter().sum()
    }

    /// The run's rows per component ([`ComponentId::ALL`] order).
    pub fn rows(&self) -> [usize; SHAPE_LEN] {
        let (leaves, nodes) = self.state_rows();
        self.rows_from(&self.sizes, leaves, nodes, None)
    }

    /// State leaf and node rows so far.
    fn state_rows(&self) -> (usize, usize) {
        match self.windowed {
            true => self.window_rows,
            false => (self.leaves.len(), self.nodes.len()),
        }
    }

    /// The rows the run would have with `b` appended.
    pub fn rows_with(&self, b: &BatchRows) -> [usize; SHAPE_LEN] {
        let (leaves, nodes) = self.state_rows();
        let (new_leaves, new_nodes) = match self.windowed {
            true => (b.keys.len(), b.nodes),
            false => {
                let (l, n) = self.new_state(b);
                (l.len(), n.len())
            }
        };
        let mut sizes = self.sizes.clone();
        sizes.push(b.ops);
        self.rows_from(&sizes, leaves + new_leaves, nodes + new_nodes, Some(b))
    }

    /// Appends `b`.
    pub fn push(&mut self, b: BatchRows) {
        if self.windowed {
            self.window_rows.0 += b.keys.len();
            self.window_rows.1 += b.nodes;
        } else {
            let (leaves, nodes) = self.new_state(&b);
            self.leaves.extend(leaves);
            self.nodes.extend(nodes);
        }
        self.sizes.push(b.ops);
        self.cash += b.cash;
        self.trade += b.trade;
        self.settle += b.settle;
        self.holder += b.holder;
        self.instruments = self.instruments.max(b.instruments);
    }

    /// The leaves and nodes `b` touches that the run does not yet.
    fn new_state(&self, b: &BatchRows) -> (Vec<u32>, HashSet<(u32, u32)>) {
        self.new_state_of(&b.keys)
    }

    fn new_state_of(&self, keys: &BTreeSet<u32>) -> (Vec<u32>, HashSet<(u32, u32)>) {
        let leaves: Vec<u32> = keys
            .iter()
            .copied()
            .filter(|k| !self.leaves.contains(k))
            .collect();
        let mut nodes = HashSet::new();
        for &k in &leaves {
            for h in 1..=STATE_DEPTH {
                let node = (h, (u64::from(k) >> h) as u32);
                // Above a node already on a path, every node is too.
                if self.nodes.contains(&node) || !nodes.insert(node) {
                    break;
                }
            }
        }
        (leaves, nodes)
    }

    fn rows_from(
        &self,
        sizes: &[usize],
        leaves: usize,
        nodes: usize,
        extra: Option<&BatchRows>,
    ) -> [usize; SHAPE_LEN] {
        let add = |own: usize, f: fn(&BatchRows) -> usize| own + extra.map_or(0, f);
        let instruments = self.instruments.max(extra.map_or(0, |b| b.instruments));
        let input = closure_len(sizes.iter().copied(), instruments, self.windowed);
        let mut rows = [0; SHAPE_LEN];
        for id in ComponentId::ALL {
            rows[id.index()] = match id {
                ComponentId::Range => 1 << crate::validity::range::LOG_RANGE,
                ComponentId::Instruments => instruments,
                ComponentId::DataLeaf => sizes.iter().sum(),
                ComponentId::DataNode => sizes.iter().map(|&n| n_internal_nodes(n)).sum(),
                ComponentId::Cash => add(self.cash, |b| b.cash),
                ComponentId::Trade => add(self.trade, |b| b.trade),
                ComponentId::StateLeaf => leaves,
                ComponentId::StateNode => nodes,
                ComponentId::Chip => {
                    PERMS_PER_STATE_ROW * (leaves + nodes) + PERMS_PER_TERM * input
                }
                ComponentId::Settle => add(self.settle, |b| b.settle),
                ComponentId::Holder => add(self.holder, |b| b.holder),
                ComponentId::Input => input,
            };
        }
        rows
    }
}

/// One planned segment: batches `batches` (indices into the run) proven in `class`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedSegment {
    /// The batches it covers.
    pub batches: Range<usize>,
    /// The cheapest class that holds them.
    pub class: ShapeClass,
    /// Their rows per component.
    pub rows: [usize; SHAPE_LEN],
}

/// Cuts `batches` (one rollup's, consecutive, starting from `venue`'s state) into segments:
/// each as long as some class within `limit` ([`ShapeClass::largest`]: any) still holds it
/// (and within [`MAX_OPS`] operations and [`MAX_BATCHES`] batches), proven in the cheapest
/// class that holds it. A batch is never split.
///
/// # Errors
/// [`ProveError::NoShapeClass`] for a batch that no class within `limit` holds on its own;
/// the errors of [`BatchRows::execute`] (naming the operation).
pub fn plan_classes(
    venue: &Venue,
    batches: &[&[Operation]],
    limit: ShapeClass,
) -> Result<Vec<PlannedSegment>, ProveError> {
    plan_classes_as(venue, batches, limit, crate::validity::ValidityAir::V3)
}

/// [`plan_classes`] with the rows of AIR `air` (v3 or v4: v4's state rows are per batch).
///
/// # Errors
/// As [`plan_classes`].
pub fn plan_classes_as(
    venue: &Venue,
    batches: &[&[Operation]],
    limit: ShapeClass,
    air: crate::validity::ValidityAir,
) -> Result<Vec<PlannedSegment>, ProveError> {
    let mut venue = venue.clone();
    let mut out = Vec::new();
    let fresh = || RunRows::new(air);
    let mut run = fresh();
    let mut start = 0usize;
    let close = |run: &RunRows, range: Range<usize>| {
        let rows = run.rows();
        PlannedSegment {
            batches: range,
            class: ShapeClass::cheapest_holding_within(&rows, limit)
                .expect("a run is only grown while held"),
            rows,
        }
    };
    for (i, batch) in batches.iter().enumerate() {
        let b = BatchRows::execute(&mut venue, batch)?;
        let held = |run: &RunRows| {
            run.n_ops() + b.ops <= MAX_OPS
                && run.n_batches() < MAX_BATCHES
                && ShapeClass::cheapest_holding_within(&run.rows_with(&b), limit).is_some()
        };
        if run.n_batches() > 0 && !held(&run) {
            out.push(close(&run, start..i));
            run = fresh();
            start = i;
        }
        if run.n_batches() == 0 && !held(&run) {
            let rows = run.rows_with(&b);
            let why = match limit.shape().overflow(&rows) {
                Some(o) => format!(
                    "{} needs {} rows of at most {}",
                    o.component.name(),
                    o.rows,
                    o.capacity
                ),
                None => format!("more than {MAX_OPS} operations"),
            };
            return Err(ProveError::NoShapeClass {
                what: format!(
                    "batch {i} ({} operations) on its own within {limit}: {why}",
                    b.ops
                ),
            });
        }
        run.push(b);
    }
    if run.n_batches() > 0 {
        out.push(close(&run, start..batches.len()));
    }
    Ok(out)
}
