//! Stage 1 of the validity prover: the operations applied natively to the venue, each turned
//! into its component's row (with the access times of the memory argument), so that every row
//! is valid on its own before any trace is built.

use crate::error::ProveError;
use crate::validity::cash::CashRow;
use crate::validity::row::LastAccess;
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
    /// Attack tests only: rewrites AIR v4's per-batch touched leaves and windows before the
    /// state trees are built from them (`None` in every honest proof).
    pub(crate) forge_windows: Option<WindowForgery>,
}

/// A rewrite of AIR v4's per-batch touched leaves and their time windows.
pub(crate) type WindowForgery =
    Box<dyn FnOnce(&mut Vec<(Vec<crate::validity::state_tree::Touched>, (u32, u32))>)>;

/// A rewrite of the closure input rows, given the closure list they were built from.
pub(crate) type InputForgery = Box<
    dyn FnOnce(
        &mut Vec<crate::validity::row::RowWitness>,
        &[crate::validity::closure::ClosureTerm],
    ),
>;

/// Applies `ops` to `venue`, one row per operation, and leaves it after the last operation
/// applied (or partway, on an error). `windows` (AIR v4: the operation index each batch starts at) opens a
/// new time window at each: a key's first access in a batch follows the batch's init, not
/// its access in an earlier batch.
///
/// # Errors
/// [`ProveError::Rule`] naming the first operation that breaks a venue rule.
pub(crate) fn execute_on(
    venue: &mut Venue,
    ops: &[Operation],
    windows: &[usize],
) -> Result<Execution, ProveError> {
    let pre_tree = venue.state_tree().clone();
    let mut last = LastAccess::default();
    let mut next_window = windows.iter().copied().peekable();
    let at = |i: usize| move |v: Violation| Violation { op_index: i, ..v };
    let (mut cash, mut trade) = (Vec::new(), Vec::new());
    let (mut settle, mut holder) = (Vec::new(), Vec::new());
    for (i, op) in ops.iter().enumerate() {
        while next_window.next_if(|&w| w <= i).is_some() {
            last.open_window(i as u32 * crate::validity::gadgets::SLOTS_PER_OP);
        }
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
                row.t_prev = last.swap(a.key, a.t);
                let k = row.clock_access();
                row.clock_t_prev = last.swap(k.key, k.t);
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
        forge_windows: None,
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
