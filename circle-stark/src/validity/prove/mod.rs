//! Proving batch validity (feature `prover`), in named stages: [`execute`] the operations on
//! the venue (one row per operation, each valid on its own), [`witness`] every component and
//! the statement, then [`prove_statement`]: commit the main traces, draw the relations, commit
//! the interaction traces, prove. The stages iterate the component registry
//! ([`ComponentId::ALL`]); nothing here names a component but [`Trace::of`].

mod columns;
mod execute;
mod plan;

use std::collections::BTreeMap;

use rayon::prelude::*;
use stwo::core::fields::qm31::SecureField;
use stwo::core::poly::circle::CanonicCoset;
use stwo::core::vcs_lifted::blake2_merkle::Blake2sMerkleChannel;
use stwo::prover::backend::simd::column::BaseColumn;
use stwo::prover::backend::simd::SimdBackend;
use stwo::prover::backend::BackendForChannel;
use stwo::prover::poly::circle::PolyOps;
use stwo::prover::{prove, CommitmentSchemeProver};

pub(crate) use self::columns::{chip_padding, chip_witness};
use self::columns::{
    instrument_interaction, leaf_op_interaction, padded_columns, range_interaction,
    witness_interaction,
};
pub(crate) use self::execute::Execution;
pub use self::plan::{plan_classes, plan_classes_as, BatchRows, PlannedSegment, RunRows};
use super::cash::{CashRow, CASH_BOUND_COLUMNS, CASH_COLUMNS, CASH_LOOKUPS};
use super::closure::{closure_terms, input_rows, INPUT_COLUMNS, INPUT_LOOKUPS, WIDE_INPUT_COLUMNS};
use super::instruments::{settle_terms, INSTRUMENT_COLUMNS};
use super::registry::{ComponentId, Components};
use super::row::{Access, Lookup, RowWitness};
use super::settle::{
    HolderRow, SettleRow, HEADER_COLUMNS, HEADER_LOOKUPS, HOLDER_COLUMNS, HOLDER_LOOKUPS,
};
use super::shape::{Shape, ShapeClass, SHAPE_LEN};
use super::state_tree::{
    tree_witness, windowed_tree_witness, Touched, TreeWitness, STATE_LEAF_COLUMNS,
    STATE_LEAF_LOOKUPS, STATE_NODE_COLUMNS, STATE_NODE_LOOKUPS, WINDOW_LEAF_COLUMNS,
    WINDOW_LEAF_LOOKUPS, WINDOW_NODE_COLUMNS,
};
use super::trade::{TRADE_COLUMNS, TRADE_LOOKUPS};
use super::{BatchTree, ValidityAir, ValidityRelations, ValidityStatement, MAX_OPS};
use crate::config::SecurityConfig;
use crate::data_root::log_rows_for;
use crate::data_root::prove::{
    evaluations, forest_traces, node_interaction, ComponentTrace, Evaluation,
};
use crate::error::ProveError;
use crate::field::M31;
use crate::hash::channel::Poseidon2MerkleChannel;
use crate::hash::poseidon2::Digest;
use crate::proof::{ChannelId, PoeChannel, Proof};
use crate::stark::{mix_claimed_sums, mix_preamble};
use crate::venue::{Operation, Venue};

/// Proves that `ops`, applied in order to `venue`'s state, obey the venue rules and turn its
/// state root into the returned statement's post-state root (`specs/batch-air.md` §5):
/// deposits, withdrawals, trades and settlements.
///
/// # Errors
/// [`ProveError::Rule`] if the batch breaks a rule (naming the operation),
/// [`ProveError::NoRecords`] / [`ProveError::TooManyRecords`] for a batch out of range.
pub fn prove_validity(
    venue: &Venue,
    ops: &[Operation],
    config: SecurityConfig,
) -> Result<(ValidityStatement, Proof), ProveError> {
    prove_validity_under(venue, ops, config, ChannelId::Blake2s)
}

/// [`prove_validity`] under a chosen channel: Blake2s, or Poseidon2-M31 for proofs that a
/// recursive verifier will check.
///
/// # Errors
/// As [`prove_validity`].
pub fn prove_validity_under(
    venue: &Venue,
    ops: &[Operation],
    config: SecurityConfig,
    channel: ChannelId,
) -> Result<(ValidityStatement, Proof), ProveError> {
    prove_batches(venue, &[ops], config, channel, ValidityAir::V2)
}

/// Proves a run of consecutive batches of one rollup in one batch-validity proof (a day
/// segment, `specs/day-proof.md` §4): the statement lists each batch's data tree, its state
/// opened before the first batch and closed after the last.
///
/// # Errors
/// As [`prove_validity`]; [`ProveError::NoRecords`] for an empty batch.
pub fn prove_segment(
    venue: &Venue,
    batches: &[&[Operation]],
    config: SecurityConfig,
) -> Result<(ValidityStatement, Proof), ProveError> {
    prove_segment_under(venue, batches, config, ChannelId::Blake2s)
}

/// [`prove_segment`] under a chosen channel.
///
/// # Errors
/// As [`prove_segment`].
pub fn prove_segment_under(
    venue: &Venue,
    batches: &[&[Operation]],
    config: SecurityConfig,
    channel: ChannelId,
) -> Result<(ValidityStatement, Proof), ProveError> {
    prove_batches(venue, batches, config, channel, ValidityAir::V2)
}

/// The general prover: a run of consecutive batches (one for a leaf proof) under a chosen
/// channel and batch-validity AIR.
///
/// # Errors
/// As [`prove_validity`]; [`ProveError::NoRecords`] for an empty batch.
pub fn prove_batches(
    venue: &Venue,
    batches: &[&[Operation]],
    config: SecurityConfig,
    channel: ChannelId,
    air: ValidityAir,
) -> Result<(ValidityStatement, Proof), ProveError> {
    prove_as(venue, batches, config, ProveAs::new(channel, air))
}

/// Proves a run of batches under AIR v3 in the shape of `class` (`shape`): every component
/// padded to the class's size, so that one recursive verifier circuit per class checks it.
///
/// # Errors
/// [`ProveError::ShapeOverflow`] naming the first component the class cannot hold, otherwise
/// as [`prove_batches`].
pub fn prove_in_class(
    venue: &Venue,
    batches: &[&[Operation]],
    config: SecurityConfig,
    channel: ChannelId,
    class: ShapeClass,
) -> Result<(ValidityStatement, Proof), ProveError> {
    prove_in_class_as(venue, batches, config, channel, class, ValidityAir::V3)
}

/// [`prove_in_class`] under AIR `air` (v3 or v4).
///
/// # Errors
/// As [`prove_in_class`]; v2 has no shapes.
pub fn prove_in_class_as(
    venue: &Venue,
    batches: &[&[Operation]],
    config: SecurityConfig,
    channel: ChannelId,
    class: ShapeClass,
    air: ValidityAir,
) -> Result<(ValidityStatement, Proof), ProveError> {
    let target = ProveAs {
        shape: Some(class.shape()),
        ..ProveAs::new(channel, air)
    };
    prove_as(venue, batches, config, target)
}

/// AIR v4's windows: the operation index each batch of `sizes` starts at (none otherwise).
fn window_starts(air: ValidityAir, sizes: &[usize]) -> Vec<usize> {
    if !air.windowed() {
        return Vec::new();
    }
    sizes
        .iter()
        .scan(0, |base, &n| {
            let start = *base;
            *base += n;
            Some(start)
        })
        .collect()
}

fn prove_as(
    venue: &Venue,
    batches: &[&[Operation]],
    config: SecurityConfig,
    target: ProveAs,
) -> Result<(ValidityStatement, Proof), ProveError> {
    if batches.iter().any(|b| b.is_empty()) {
        return Err(ProveError::NoRecords);
    }
    let ops: Vec<Operation> = batches.concat();
    let sizes: Vec<usize> = batches.iter().map(|b| b.len()).collect();
    prove_forest_with(venue, &ops, &sizes, &ops, |_| {}, |_| {}, config, target)
}

/// What a proof is made under: the channel, the AIR and (v3) the shape to pad to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProveAs {
    pub(crate) channel: ChannelId,
    pub(crate) air: ValidityAir,
    pub(crate) shape: Option<Shape>,
}

impl ProveAs {
    pub(crate) fn new(channel: ChannelId, air: ValidityAir) -> Self {
        Self {
            channel,
            air,
            shape: None,
        }
    }
}

/// The rows each component of `air` needs for `batches` (consecutive, one rollup) before
/// padding to a power of two: the data from which shape classes are sized
/// (`specs/recursion.md` §5). Executes and builds the witness; proves nothing.
///
/// # Errors
/// As [`prove_batches`].
pub fn component_rows(
    venue: &Venue,
    batches: &[&[Operation]],
    air: ValidityAir,
) -> Result<Vec<(ComponentId, usize)>, ProveError> {
    if batches.iter().any(|b| b.is_empty()) {
        return Err(ProveError::NoRecords);
    }
    let ops: Vec<Operation> = batches.concat();
    if ops.len() > MAX_OPS {
        return Err(ProveError::TooManyRecords {
            max: MAX_OPS,
            got: ops.len(),
        });
    }
    let sizes: Vec<usize> = batches.iter().map(|b| b.len()).collect();
    let execution = execute::execute_on(&mut venue.clone(), &ops, &window_starts(air, &sizes))?;
    let (statement, w) = witness(
        execution,
        &ops,
        &sizes,
        ProveAs::new(ChannelId::Blake2s, air),
    )?;
    let rows = w.rows(&statement, &sizes);
    Ok(ComponentId::of(air)
        .iter()
        .map(|&id| (id, rows[id.index()]))
        .collect())
}

/// [`prove_forest_with`] for one batch.
#[cfg(test)]
pub(crate) fn prove_validity_with(
    venue: &Venue,
    records_ops: &[Operation],
    ops: &[Operation],
    edit: impl FnOnce(&mut ValidityStatement),
    forge: impl FnOnce(&mut Execution),
    config: SecurityConfig,
) -> Result<(ValidityStatement, Proof), ProveError> {
    prove_validity_as(
        ValidityAir::V2,
        venue,
        records_ops,
        ops,
        edit,
        forge,
        config,
    )
}

/// [`prove_validity_with`] under the AIR `air`.
#[cfg(test)]
pub(crate) fn prove_validity_as(
    air: ValidityAir,
    venue: &Venue,
    records_ops: &[Operation],
    ops: &[Operation],
    edit: impl FnOnce(&mut ValidityStatement),
    forge: impl FnOnce(&mut Execution),
    config: SecurityConfig,
) -> Result<(ValidityStatement, Proof), ProveError> {
    let sizes = [records_ops.len()];
    prove_forest_with(
        venue,
        records_ops,
        &sizes,
        ops,
        edit,
        forge,
        config,
        ProveAs::new(ChannelId::Blake2s, air),
    )
}

/// The validity prover with its seams exposed for attack tests: the data forest is built from
/// `records_ops` cut into batches of `sizes`, the operation rows from `ops` (applied
/// natively, so each row is valid on its own), `forge` may rewrite the rows (unchecked), and
/// `edit` may rewrite the statement before it is bound. Anything but `records_ops == ops`
/// and no-op `edit` and `forge` yields a proof that must not verify.
#[allow(clippy::too_many_arguments)] // the seams are the point
pub(crate) fn prove_forest_with(
    venue: &Venue,
    records_ops: &[Operation],
    sizes: &[usize],
    ops: &[Operation],
    edit: impl FnOnce(&mut ValidityStatement),
    forge: impl FnOnce(&mut Execution),
    config: SecurityConfig,
    target: ProveAs,
) -> Result<(ValidityStatement, Proof), ProveError> {
    let ProveAs { channel, air, .. } = target;
    if ops.is_empty() {
        return Err(ProveError::NoRecords);
    }
    if ops.len() > MAX_OPS {
        return Err(ProveError::TooManyRecords {
            max: MAX_OPS,
            got: ops.len(),
        });
    }
    if sizes.iter().sum::<usize>() != records_ops.len() || sizes.contains(&0) {
        return Err(ProveError::Stwo(format!(
            "batch sizes {sizes:?} do not cut {} records into non-empty batches",
            records_ops.len()
        )));
    }
    let mut execution = execute::execute_on(&mut venue.clone(), ops, &window_starts(air, sizes))?;
    forge(&mut execution);
    let (mut statement, witness) = witness(execution, records_ops, sizes, target)?;
    edit(&mut statement);
    statement.check().map_err(ProveError::Stwo)?;
    let proof = match channel {
        ChannelId::Blake2s => {
            prove_statement::<Blake2sMerkleChannel>(&statement, witness, config, air)?
        }
        ChannelId::Poseidon2 => {
            prove_statement::<Poseidon2MerkleChannel>(&statement, witness, config, air)?
        }
    };
    Ok((statement, proof))
}

/// Everything the components' traces are built from.
pub(crate) struct BatchWitness {
    range_table: [BaseColumn; 2],
    /// Per instrument, its uses by trade rows and by settlement rows.
    instrument_uses: Vec<[u32; 2]>,
    data_leaves: ComponentTrace,
    data_nodes: ComponentTrace,
    cash: Vec<RowWitness>,
    trade: Vec<RowWitness>,
    state: TreeWitness,
    chip: Vec<RowWitness>,
    settle: Vec<RowWitness>,
    holder: Vec<RowWitness>,
    /// AIR v3's closure input rows (empty under v2).
    input: Vec<RowWitness>,
}

impl BatchWitness {
    /// Rows per component before padding ([`ComponentId::ALL`] order; the input's 0 under v2).
    fn rows(&self, s: &ValidityStatement, sizes: &[usize]) -> [usize; SHAPE_LEN] {
        let mut rows = [0; SHAPE_LEN];
        for id in ComponentId::ALL {
            rows[id.index()] = match id {
                ComponentId::Range => 1 << crate::validity::range::LOG_RANGE,
                ComponentId::Instruments => s.instruments.len(),
                ComponentId::DataLeaf => sizes.iter().sum(),
                ComponentId::DataNode => data_nodes(sizes),
                ComponentId::Cash => self.cash.len(),
                ComponentId::Trade => self.trade.len(),
                ComponentId::StateLeaf => self.state.leaves.len(),
                ComponentId::StateNode => self.state.nodes.len(),
                ComponentId::Chip => self.chip.len(),
                ComponentId::Settle => self.settle.len(),
                ComponentId::Holder => self.holder.len(),
                ComponentId::Input => self.input.len(),
            };
        }
        rows
    }
}

/// Internal nodes of the data forest of batches of `sizes`.
fn data_nodes(sizes: &[usize]) -> usize {
    sizes
        .iter()
        .map(|&n| crate::hash::merkle::n_internal_nodes(n))
        .sum()
}

/// The first component of `shape` that `rows` overflow, as the error.
fn fits(shape: &Shape, rows: &[usize; SHAPE_LEN]) -> Result<(), ProveError> {
    match shape.overflow(rows) {
        None => Ok(()),
        Some(o) => Err(ProveError::ShapeOverflow {
            shape: ShapeClass::of(shape).map_or_else(|| "custom".into(), |c| c.name()),
            component: o.component.name(),
            rows: o.rows,
            capacity: o.capacity,
        }),
    }
}

/// Where a component's trace comes from.
pub(crate) enum Trace<'a> {
    /// The range table's `(value, uses)` columns.
    Range(&'a [BaseColumn; 2]),
    /// The instrument table, built from the statement's instruments and their uses.
    Instruments(&'a [[u32; 2]]),
    /// The data forest's leaves.
    DataLeaf(&'a ComponentTrace),
    /// The data forest's nodes.
    DataNode(&'a ComponentTrace),
    /// Rows from their witnesses, padded with `pad`, with `lookups` LogUp entries each.
    Rows {
        rows: &'a [RowWitness],
        pad: Vec<M31>,
        lookups: usize,
    },
}

impl<'a> Trace<'a> {
    fn rows(rows: &'a [RowWitness], width: usize, lookups: usize) -> Self {
        Self::Rows {
            rows,
            pad: vec![M31::from_u32_unchecked(0); width],
            lookups,
        }
    }

    /// The registry's prover side: where `id`'s rows are in `w`.
    pub(crate) fn of(id: ComponentId, w: &'a BatchWitness, air: ValidityAir) -> Self {
        let windowed = usize::from(air.windowed());
        match id {
            ComponentId::Range => Self::Range(&w.range_table),
            ComponentId::Instruments => Self::Instruments(&w.instrument_uses),
            ComponentId::DataLeaf => Self::DataLeaf(&w.data_leaves),
            ComponentId::DataNode => Self::DataNode(&w.data_nodes),
            ComponentId::Cash => {
                Self::rows(&w.cash, CASH_COLUMNS + CASH_BOUND_COLUMNS, CASH_LOOKUPS)
            }
            ComponentId::Trade => Self::rows(&w.trade, TRADE_COLUMNS, TRADE_LOOKUPS),
            ComponentId::StateLeaf => Self::rows(
                &w.state.leaves,
                STATE_LEAF_COLUMNS + windowed * WINDOW_LEAF_COLUMNS,
                STATE_LEAF_LOOKUPS + windowed * WINDOW_LEAF_LOOKUPS,
            ),
            ComponentId::StateNode => Self::rows(
                &w.state.nodes,
                STATE_NODE_COLUMNS + windowed * WINDOW_NODE_COLUMNS,
                STATE_NODE_LOOKUPS,
            ),
            // A zero row does not satisfy an in-row permutation: pad with the permutation of 0.
            ComponentId::Chip => Self::Rows {
                rows: &w.chip,
                pad: chip_padding(),
                lookups: 1,
            },
            ComponentId::Settle => Self::rows(&w.settle, HEADER_COLUMNS, HEADER_LOOKUPS),
            ComponentId::Holder => Self::rows(&w.holder, HOLDER_COLUMNS, HOLDER_LOOKUPS),
            ComponentId::Input => Self::rows(
                &w.input,
                if air.windowed() {
                    WIDE_INPUT_COLUMNS
                } else {
                    INPUT_COLUMNS
                },
                INPUT_LOOKUPS,
            ),
        }
    }

    /// The component's main-trace columns.
    fn main(
        &self,
        id: ComponentId,
        s: &ValidityStatement,
        air: ValidityAir,
    ) -> (u32, Vec<BaseColumn>) {
        match self {
            // v3: the values are the preprocessed column, only `uses` is main trace.
            Self::Range(table) => match air {
                ValidityAir::V2 => (crate::validity::range::LOG_RANGE, table.to_vec()),
                ValidityAir::V3 | ValidityAir::V4 => {
                    (crate::validity::range::LOG_RANGE, vec![table[1].clone()])
                }
            },
            Self::Instruments(uses) => {
                let log_rows = id.log_rows(s);
                (log_rows, instrument_columns(log_rows, s, uses))
            }
            Self::DataLeaf(t) | Self::DataNode(t) => (t.log_rows, t.columns.clone()),
            Self::Rows { rows, pad, .. } => {
                let log_rows = id.log_rows(s);
                (log_rows, padded_columns(log_rows, rows, pad))
            }
        }
    }

    /// The component's interaction columns and its claimed LogUp sum.
    fn interaction(
        &self,
        id: ComponentId,
        s: &ValidityStatement,
        rels: &ValidityRelations,
        air: ValidityAir,
    ) -> (Vec<Evaluation>, SecureField) {
        match self {
            Self::Range(table) => range_interaction(table, &rels.range, air),
            Self::Instruments(uses) => {
                let log_rows = id.log_rows(s);
                instrument_interaction(log_rows, &instrument_columns(log_rows, s, uses), rels)
            }
            Self::DataLeaf(t) => leaf_op_interaction(t, &rels.merkle, &rels.ops),
            Self::DataNode(t) => node_interaction(t, &rels.merkle, true),
            Self::Rows { rows, lookups, .. } => {
                witness_interaction(id.log_rows(s), rows, *lookups, rels)
            }
        }
    }
}

/// The instrument table's columns: `enabled, terms[9], uses, settle terms[5], settle uses`.
fn instrument_columns(log_rows: u32, s: &ValidityStatement, uses: &[[u32; 2]]) -> Vec<BaseColumn> {
    let rows: Vec<[M31; INSTRUMENT_COLUMNS]> = (0..1usize << log_rows)
        .map(|r| {
            let mut row = [M31::from_u32_unchecked(0); INSTRUMENT_COLUMNS];
            if let Some(inst) = s.instruments.get(r) {
                let [trade_uses, settle_uses] = uses.get(r).copied().unwrap_or_default();
                row[0] = M31::from_u32_unchecked(1);
                let full = settle_terms(r as u32, inst);
                row[1..10].copy_from_slice(&full[..9]);
                row[10] = M31::from_u32_unchecked(trade_uses);
                row[11..16].copy_from_slice(&full[9..]);
                row[16] = M31::from_u32_unchecked(settle_uses);
            }
            row
        })
        .collect();
    (0..INSTRUMENT_COLUMNS)
        .map(|c| rows.iter().map(|r| r[c]).collect())
        .collect()
}

/// Stage 2: every component's witness and the statement (its data roots, state roots and
/// component sizes) from the executed rows and the records the data forest commits.
fn witness(
    execution: Execution,
    records_ops: &[Operation],
    sizes: &[usize],
    target: ProveAs,
) -> Result<(ValidityStatement, BatchWitness), ProveError> {
    let ProveAs { air, shape, .. } = target;
    if shape.is_some() && !air.closed_by_input() {
        return Err(ProveError::Stwo("a shape is AIR v3's and v4's only".into()));
    }
    let Execution {
        pre_tree,
        instruments,
        cash,
        trade,
        settle,
        holder,
        forge_input,
        forge_windows,
    } = execution;
    // The touched leaves, from every row's accesses in time order: one set for the run, or
    // (AIR v4) one per batch, each in the batch's time window.
    let accesses: Vec<Access> = execute::accesses(&cash, &trade, &settle, &holder);
    let windows: Vec<(u32, u32)> = match air.windowed() {
        false => vec![(0, u32::MAX)],
        true => super::statement::time_windows(sizes.iter().copied()),
    };
    let mut touched: Vec<BTreeMap<u32, Touched>> = vec![BTreeMap::new(); windows.len()];
    let mut w = 0;
    for a in &accesses {
        while a.t >= windows[w].1 && w + 1 < windows.len() {
            w += 1;
        }
        let t = touched[w].entry(a.key).or_insert(Touched {
            key: a.key,
            before: a.old,
            after: a.old,
            last_access: 0,
        });
        t.after = a.new;
        t.last_access = a.t;
    }
    drop(accesses);
    let settle: Vec<RowWitness> = settle.par_iter().map(SettleRow::witness).collect();
    let holder: Vec<RowWitness> = holder.par_iter().map(HolderRow::witness).collect();
    let cash: Vec<RowWitness> = cash.par_iter().map(CashRow::witness).collect();
    let trade: Vec<RowWitness> = trade.par_iter().map(|r| r.witness(true)).collect();
    let (state, interior_roots) = if air.windowed() {
        let mut batches: Vec<(Vec<Touched>, (u32, u32))> = touched
            .into_iter()
            .map(|t| t.into_values().collect())
            .zip(windows)
            .collect();
        if let Some(forge) = forge_windows {
            forge(&mut batches);
        }
        let (state, mut roots) =
            windowed_tree_witness(&pre_tree, &batches).map_err(ProveError::Stwo)?;
        roots.pop();
        (state, Some(roots))
    } else {
        let touched: Vec<Touched> = touched.remove(0).into_values().collect();
        (
            tree_witness(&pre_tree, &touched).map_err(ProveError::Stwo)?,
            None,
        )
    };
    drop(pre_tree);
    let lookups = || {
        cash.iter()
            .chain(&trade)
            .chain(&settle)
            .chain(&holder)
            .chain(&state.leaves)
            .flat_map(|w| &w.lookups)
    };
    let range_table = crate::validity::range::table_columns(lookups().filter_map(|l| match l {
        Lookup::Range(v) => Some(*v),
        _ => None,
    }))
    .map(|c| c.into_iter().collect());
    let mut instrument_uses = vec![[0u32; 2]; instruments.len()];
    for l in lookups() {
        match l {
            Lookup::Instrument(v) => instrument_uses[v[0].0 as usize][0] += 1,
            Lookup::SettleTerms(v) => instrument_uses[v[0].0 as usize][1] += 1,
            _ => {}
        }
    }

    let mut statement = ValidityStatement {
        batches: sizes
            .iter()
            .map(|&n| BatchTree {
                n_ops: n as u32,
                data_root: Digest::ZERO,
            })
            .collect(),
        log_cash_rows: log_rows_for(cash.len()),
        log_trade_rows: log_rows_for(trade.len()),
        pre_state_root: state.pre_root,
        post_state_root: state.post_root,
        log_state_leaf_rows: log_rows_for(state.leaves.len()),
        log_state_node_rows: log_rows_for(state.nodes.len()),
        // Set below, once the closure input's permutations are known.
        log_chip_rows: 0,
        log_settle_rows: log_rows_for(settle.len()),
        log_holder_rows: log_rows_for(holder.len()),
        instruments,
        shape: None,
        interior_roots,
    };
    if let Some(shape) = shape {
        // Everything but the chip, which also hashes the closure input, fits before the
        // traces are built at the shape's sizes.
        let mut rows = [0; SHAPE_LEN];
        rows[ComponentId::Instruments.index()] = statement.instruments.len();
        rows[ComponentId::DataLeaf.index()] = sizes.iter().sum();
        rows[ComponentId::DataNode.index()] = data_nodes(sizes);
        rows[ComponentId::Cash.index()] = cash.len();
        rows[ComponentId::Trade.index()] = trade.len();
        rows[ComponentId::StateLeaf.index()] = state.leaves.len();
        rows[ComponentId::StateNode.index()] = state.nodes.len();
        rows[ComponentId::Settle.index()] = settle.len();
        rows[ComponentId::Holder.index()] = holder.len();
        rows[ComponentId::Input.index()] = closure_terms(&statement).len();
        fits(&shape, &rows)?;
        statement.set_shape(shape);
    }
    let records: Vec<M31> = records_ops.iter().flat_map(Operation::encode).collect();
    let (leaf_log, node_log) = (
        ComponentId::DataLeaf.log_rows(&statement),
        ComponentId::DataNode.log_rows(&statement),
    );
    let (data_leaves, data_nodes, roots) =
        forest_traces(&records, sizes, &statement.shifts(), leaf_log, node_log);
    for (b, root) in statement.batches.iter_mut().zip(roots) {
        b.data_root = root;
    }
    let input = match air {
        ValidityAir::V2 => Vec::new(),
        ValidityAir::V3 | ValidityAir::V4 => {
            let terms = closure_terms(&statement);
            let mut rows = input_rows(&terms, air.windowed());
            if let Some(forge) = forge_input {
                forge(&mut rows, &terms);
            }
            rows
        }
    };
    let chip = chip_witness(state.leaves.iter().chain(&state.nodes).chain(&input));
    match shape {
        None => statement.log_chip_rows = log_rows_for(chip.len()),
        Some(shape) => {
            let mut rows = [0; SHAPE_LEN];
            rows[ComponentId::Chip.index()] = chip.len();
            fits(&shape, &rows)?;
        }
    }
    let witness = BatchWitness {
        range_table,
        instrument_uses,
        data_leaves,
        data_nodes,
        cash,
        trade,
        state,
        chip,
        settle,
        holder,
        input,
    };
    Ok((statement, witness))
}

/// Stage 3: the STARK. The transcript binds the preamble (AIR, config, public inputs), the
/// main traces, the relations drawn from them, the claimed sums, then the interaction traces.
fn prove_statement<MC: PoeChannel>(
    statement: &ValidityStatement,
    witness: BatchWitness,
    config: SecurityConfig,
    air: ValidityAir,
) -> Result<Proof, ProveError>
where
    SimdBackend: BackendForChannel<MC>,
{
    let public_inputs = statement.public_inputs(air);
    let twiddles = SimdBackend::precompute_twiddles(
        CanonicCoset::new(Components::max_log_rows(air, statement) + 1 + config.log_blowup())
            .circle_domain()
            .half_coset,
    );
    let channel = &mut MC::C::default();
    mix_preamble(channel, MC::ID, air.air_id(), &config, &public_inputs);
    let mut scheme = CommitmentSchemeProver::<SimdBackend, MC>::new(config.pcs_config(), &twiddles);
    let mut tree = scheme.tree_builder();
    if air.closed_by_input() {
        tree.extend_evals(evaluations(
            crate::validity::range::LOG_RANGE,
            vec![crate::validity::range::table_values()],
        ));
    }
    tree.commit(channel);

    let traces: Vec<(ComponentId, Trace<'_>)> = ComponentId::of(air)
        .iter()
        .map(|&id| (id, Trace::of(id, &witness, air)))
        .collect();
    let mut tree = scheme.tree_builder();
    for (id, trace) in &traces {
        let (log_rows, columns) = trace.main(*id, statement, air);
        tree.extend_evals(evaluations(log_rows, columns));
    }
    tree.commit(channel);

    let rels = ValidityRelations::draw(channel);
    let interactions: Vec<(Vec<Evaluation>, SecureField)> = traces
        .iter()
        .map(|(id, trace)| trace.interaction(*id, statement, &rels, air))
        .collect();
    drop(traces);
    drop(witness);
    let sums: Vec<SecureField> = interactions.iter().map(|(_, sum)| *sum).collect();
    mix_claimed_sums(channel, &sums);
    let mut tree = scheme.tree_builder();
    for (evals, _) in interactions {
        tree.extend_evals(evals);
    }
    tree.commit(channel);

    let components = Components::new(air, statement, &rels, &sums);
    let stark = prove::<SimdBackend, MC>(&components.as_provers(), channel, scheme)
        .map_err(|e| ProveError::Stwo(e.to_string()))?;
    Ok(Proof {
        air: air.air_id(),
        config,
        public_inputs,
        claimed_sums: sums.to_vec(),
        stark: MC::wrap(stark),
    })
}
