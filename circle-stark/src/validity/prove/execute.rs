//! Stage 1 of the validity prover: the operations applied natively to the venue, each turned
//! into its component's row (with the access times of the memory argument), so that every row
//! is valid on its own before any trace is built.

use std::collections::BTreeMap;

use crate::error::ProveError;
use crate::validity::cash::CashRow;
use crate::validity::settle::{settle_rows, HolderRow, SettleRow};
use crate::validity::trade::{trade_row, TradeRow};
use crate::venue::state::StateTree;
use crate::venue::{Instrument, Operation, Venue, Violation};

/// The rows of one run of operations, and what the later stages need of the venue.
pub(crate) struct Execution {
    /// The state tree before the first operation.
    pub(crate) pre_tree: StateTree,
    /// The venue's instruments after the last operation.
    pub(crate) instruments: Vec<Instrument>,
    /// Deposit and withdrawal rows.
    pub(crate) cash: Vec<CashRow>,
    /// Trade rows.
    pub(crate) trade: Vec<TradeRow>,
    /// Settlement header rows.
    pub(crate) settle: Vec<SettleRow>,
    /// Settlement holder rows.
    pub(crate) holder: Vec<HolderRow>,
    /// Attack tests only: rewrites AIR v3's closure input rows before the chip is built from
    /// them (`None` in every honest proof).
    pub(crate) forge_input: Option<InputForgery>,
}

/// A rewrite of the closure input rows, given the closure list they were built from.
pub(crate) type InputForgery = Box<
    dyn FnOnce(
        &mut Vec<crate::validity::row::RowWitness>,
        &[crate::validity::closure::ClosureTerm],
    ),
>;

/// Applies `ops` to a copy of `venue`, one row per operation.
///
/// # Errors
/// [`ProveError::Rule`] naming the first operation that breaks a venue rule.
pub(crate) fn execute(venue: &Venue, ops: &[Operation]) -> Result<Execution, ProveError> {
    execute_on(&mut venue.clone(), ops)
}

/// [`execute`] on `venue` itself, which it leaves after the last operation applied (or
/// partway, on an error).
///
/// # Errors
/// As [`execute`].
pub(crate) fn execute_on(venue: &mut Venue, ops: &[Operation]) -> Result<Execution, ProveError> {
    let pre_tree = venue.state_tree().clone();
    // Per state key, the time of its last access.
    let mut last: BTreeMap<u32, u32> = BTreeMap::new();
    let at = |i: usize| move |v: Violation| Violation { op_index: i, ..v };
    let (mut cash, mut trade) = (Vec::new(), Vec::new());
    let (mut settle, mut holder) = (Vec::new(), Vec::new());
    for (i, op) in ops.iter().enumerate() {
        match *op {
            Operation::Deposit {
                account,
                amount,
                timestamp_us,
            }
            | Operation::Withdraw {
                account,
                amount,
                timestamp_us,
            } => {
                let before = venue.account(account);
                let clock = venue.clock();
                venue.apply_batch(std::slice::from_ref(op)).map_err(at(i))?;
                let mut row = CashRow {
                    index: i as u32,
                    account,
                    withdraw: matches!(op, Operation::Withdraw { .. }),
                    amount,
                    before,
                    after: venue.account(account),
                    t_prev: 0,
                    timestamp: timestamp_us,
                    clock,
                    clock_t_prev: 0,
                };
                let a = row.access();
                row.t_prev = last.insert(a.key, a.t).unwrap_or(0);
                let k = row.clock_access();
                row.clock_t_prev = last.insert(k.key, k.t).unwrap_or(0);
                cash.push(row);
            }
            Operation::Trade { .. } => {
                trade.push(trade_row(venue, op, i as u32, &mut last).map_err(at(i))?);
            }
            Operation::Settle { .. } => {
                let (header, holders) =
                    settle_rows(venue, op, i as u32, &mut last).map_err(at(i))?;
                settle.push(header);
                holder.extend(holders);
            }
        }
    }
    Ok(Execution {
        forge_input: None,
        pre_tree,
        instruments: venue.instruments().to_vec(),
        cash,
        trade,
        settle,
        holder,
    })
}

/// Every state access of the rows, in time order: what the state tree opens and closes.
pub(crate) fn accesses(
    cash: &[CashRow],
    trade: &[TradeRow],
    settle: &[SettleRow],
    holder: &[HolderRow],
) -> Vec<crate::validity::row::Access> {
    let mut out: Vec<_> = cash
        .iter()
        .flat_map(|r| [r.access(), r.clock_access()])
        .chain(trade.iter().flat_map(|r| r.accesses()))
        .chain(settle.iter().flat_map(|r| r.accesses()))
        .chain(holder.iter().flat_map(|r| r.accesses()))
        .collect();
    out.sort_by_key(|a| a.t);
    out
}
