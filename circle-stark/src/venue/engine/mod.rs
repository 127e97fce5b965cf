//! The native execution engine: applies operations under the venue rules, atomically per
//! batch, and reports the first violation with its operation index and rule.

use std::collections::{BTreeMap, BTreeSet};

use super::ops::{Instrument, Operation};
use super::state::{
    account_leaf, clock_leaf, open_interest_leaf, position_leaf, AccountState, StateKey, StateTree,
};
use super::{FEE_ACCOUNT, MAX_ACCOUNTS, MAX_AMOUNT};
use crate::hash::poseidon2::Digest;

/// A broken rule, with what was expected and what was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rule {
    /// Account id ≥ 2^18.
    #[error("account {got} is out of range (max {max})")]
    AccountOutOfRange {
        /// Given.
        got: u32,
        /// Largest id.
        max: u32,
    },
    /// Instrument index not in the list.
    #[error("instrument {got} does not exist ({listed} listed)")]
    UnknownInstrument {
        /// Given.
        got: u32,
        /// Instruments listed.
        listed: usize,
    },
    /// A field above 2^63 − 1.
    #[error("{field} = {got} exceeds 2^63 - 1")]
    AmountOutOfRange {
        /// Which field.
        field: &'static str,
        /// Given.
        got: u64,
    },
    /// A result above 2^63 − 1.
    #[error("{what} would exceed 2^63 - 1")]
    Overflow {
        /// Which quantity.
        what: &'static str,
    },
    /// Trade of zero lots.
    #[error("trade quantity must be positive")]
    ZeroQuantity,
    /// Buyer and seller are the same account.
    #[error("account {account} trades with itself")]
    SelfTrade {
        /// The account.
        account: u32,
    },
    /// The fee account may not hold positions.
    #[error("the fee account cannot trade")]
    FeeAccountTrades,
    /// Time ran backwards.
    #[error("timestamp {got} is before the previous operation's {previous}")]
    TimestampDecreasing {
        /// Last timestamp applied.
        previous: u64,
        /// This operation's.
        got: u64,
    },
    /// Trade at or after the instrument's expiry.
    #[error("trade at {timestamp} is not before expiry {expiry}")]
    TradeAfterExpiry {
        /// Instrument expiry.
        expiry: u64,
        /// Trade time.
        timestamp: u64,
    },
    /// Settlement before expiry.
    #[error("settlement at {timestamp} is before expiry {expiry}")]
    SettleBeforeExpiry {
        /// Instrument expiry.
        expiry: u64,
        /// Settlement time.
        timestamp: u64,
    },
    /// Cash would go negative.
    #[error("account {account} needs {needed} but has {available}")]
    InsufficientCash {
        /// The account.
        account: u32,
        /// Cash the operation takes.
        needed: u128,
        /// Cash it has (before the operation's credits).
        available: u128,
    },
}

/// A rule broken by operation `op_index` of a batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("operation {op_index}: {rule}")]
pub struct Violation {
    /// Index of the offending operation in its batch.
    pub op_index: usize,
    /// The rule.
    pub rule: Rule,
}

/// A venue: its instruments and state, committed by a sparse Merkle tree.
#[derive(Debug, Clone, Default)]
pub struct Venue {
    instruments: Vec<Instrument>,
    accounts: BTreeMap<u32, AccountState>,
    /// `(instrument, account) → signed lots`; zero positions are removed.
    positions: BTreeMap<(u32, u32), i64>,
    open_interest: BTreeMap<u32, u64>,
    clock: u64,
    tree: StateTree,
    dirty: BTreeSet<StateKey>,
}

/// What applying a batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchEffect {
    /// State root before.
    pub pre_state_root: Digest,
    /// State root after.
    pub post_state_root: Digest,
    /// Deposits minus withdrawals, the only way value enters or leaves.
    pub net_deposits: i128,
}

fn check_amount(field: &'static str, got: u64) -> Result<(), Rule> {
    if got > MAX_AMOUNT {
        return Err(Rule::AmountOutOfRange { field, got });
    }
    Ok(())
}

fn check_account(got: u32) -> Result<(), Rule> {
    if got >= MAX_ACCOUNTS {
        return Err(Rule::AccountOutOfRange {
            got,
            max: MAX_ACCOUNTS - 1,
        });
    }
    Ok(())
}

fn to_amount(x: i128, what: &'static str) -> Result<u64, Rule> {
    u64::try_from(x)
        .ok()
        .filter(|&v| v <= MAX_AMOUNT)
        .ok_or(Rule::Overflow { what })
}

impl Venue {
    /// A venue with no balances.
    pub fn new(instruments: Vec<Instrument>) -> Self {
        Self {
            instruments,
            ..Self::default()
        }
    }

    /// The instruments.
    pub fn instruments(&self) -> &[Instrument] {
        &self.instruments
    }

    /// Grows the instrument table to `table` (instruments listed since, appended: an index
    /// keeps its terms). The state is untouched: instruments are not in the state tree.
    ///
    /// # Panics
    /// If `table` does not start with the current table.
    pub fn extend_instruments(&mut self, table: &[Instrument]) {
        assert!(
            table.starts_with(&self.instruments),
            "an instrument table only grows by appending"
        );
        if table.len() > self.instruments.len() {
            self.instruments = table.to_vec();
        }
    }

    /// An account's balances (zero if never touched).
    pub fn account(&self, id: u32) -> AccountState {
        self.accounts.get(&id).copied().unwrap_or_default()
    }

    /// A position in lots (negative = short).
    pub fn position(&self, instrument: u32, account: u32) -> i64 {
        self.positions
            .get(&(instrument, account))
            .copied()
            .unwrap_or(0)
    }

    /// The non-zero positions in an instrument, by account: `(account, lots)`.
    pub fn holders(&self, instrument: u32) -> Vec<(u32, i64)> {
        self.positions
            .range((instrument, 0)..(instrument + 1, 0))
            .map(|(&(_, a), &q)| (a, q))
            .collect()
    }

    /// Timestamp of the last operation applied (0 before any).
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// Sum of long positions in an instrument.
    pub fn open_interest(&self, instrument: u32) -> u64 {
        self.open_interest.get(&instrument).copied().unwrap_or(0)
    }

    /// Σ cash + Σ locked over all accounts, fee account included.
    pub fn total_value(&self) -> u128 {
        self.accounts
            .values()
            .map(|a| u128::from(a.cash) + u128::from(a.locked))
            .sum()
    }

    /// The state root, after writing every changed leaf into the tree.
    pub fn state_root(&mut self) -> Digest {
        for key in std::mem::take(&mut self.dirty) {
            let value = match key {
                StateKey::Account(a) => account_leaf(&self.account(a)),
                StateKey::Position {
                    instrument,
                    account,
                } => position_leaf(self.position(instrument, account)),
                StateKey::OpenInterest(i) => open_interest_leaf(self.open_interest(i)),
                StateKey::Clock => clock_leaf(self.clock),
            };
            self.tree.set(key, &value);
        }
        self.tree.root()
    }

    /// The state tree, after writing every changed leaf into it.
    pub fn state_tree(&mut self) -> &StateTree {
        self.state_root();
        &self.tree
    }

    /// Applies a batch atomically: all operations, or none and the first violation.
    ///
    /// # Errors
    /// The first [`Violation`]; the venue is then unchanged.
    pub fn apply_batch(&mut self, ops: &[Operation]) -> Result<BatchEffect, Violation> {
        let pre_state_root = self.state_root();
        let mut next = self.clone();
        let mut net_deposits = 0i128;
        for (op_index, op) in ops.iter().enumerate() {
            next.apply(op, &mut net_deposits)
                .map_err(|rule| Violation { op_index, rule })?;
        }
        *self = next;
        let post_state_root = self.state_root();
        Ok(BatchEffect {
            pre_state_root,
            post_state_root,
            net_deposits,
        })
    }

    fn set_account(&mut self, id: u32, a: AccountState) {
        if a == AccountState::default() {
            self.accounts.remove(&id);
        } else {
            self.accounts.insert(id, a);
        }
        self.dirty.insert(StateKey::Account(id));
    }

    fn set_position(&mut self, instrument: u32, account: u32, qty: i64) {
        if qty == 0 {
            self.positions.remove(&(instrument, account));
        } else {
            self.positions.insert((instrument, account), qty);
        }
        self.dirty.insert(StateKey::Position {
            instrument,
            account,
        });
    }

    fn set_open_interest(&mut self, instrument: u32, oi: u64) {
        if oi == 0 {
            self.open_interest.remove(&instrument);
        } else {
            self.open_interest.insert(instrument, oi);
        }
        self.dirty.insert(StateKey::OpenInterest(instrument));
    }

    fn instrument(&self, got: u32) -> Result<Instrument, Rule> {
        self.instruments
            .get(got as usize)
            .cloned()
            .ok_or(Rule::UnknownInstrument {
                got,
                listed: self.instruments.len(),
            })
    }

    fn apply(&mut self, op: &Operation, net_deposits: &mut i128) -> Result<(), Rule> {
        let ts = op.timestamp_us();
        check_amount("timestamp", ts)?;
        if ts < self.clock {
            return Err(Rule::TimestampDecreasing {
                previous: self.clock,
                got: ts,
            });
        }
        match *op {
            Operation::Deposit {
                account, amount, ..
            } => {
                check_account(account)?;
                check_amount("amount", amount)?;
                let mut a = self.account(account);
                a.cash = to_amount(i128::from(a.cash) + i128::from(amount), "cash")?;
                self.set_account(account, a);
                *net_deposits += i128::from(amount);
            }
            Operation::Withdraw {
                account, amount, ..
            } => {
                check_account(account)?;
                check_amount("amount", amount)?;
                let mut a = self.account(account);
                if amount > a.cash {
                    return Err(Rule::InsufficientCash {
                        account,
                        needed: amount.into(),
                        available: a.cash.into(),
                    });
                }
                a.cash -= amount;
                self.set_account(account, a);
                *net_deposits -= i128::from(amount);
            }
            Operation::Trade {
                buyer,
                seller,
                instrument,
                qty,
                price,
                buyer_fee,
                seller_fee,
                timestamp_us,
            } => {
                check_account(buyer)?;
                check_account(seller)?;
                for (field, v) in [
                    ("qty", qty),
                    ("price", price),
                    ("buyer_fee", buyer_fee),
                    ("seller_fee", seller_fee),
                ] {
                    check_amount(field, v)?;
                }
                if qty == 0 {
                    return Err(Rule::ZeroQuantity);
                }
                if buyer == seller {
                    return Err(Rule::SelfTrade { account: buyer });
                }
                if buyer == FEE_ACCOUNT || seller == FEE_ACCOUNT {
                    return Err(Rule::FeeAccountTrades);
                }
                let inst = self.instrument(instrument)?;
                if timestamp_us >= inst.expiry_us {
                    return Err(Rule::TradeAfterExpiry {
                        expiry: inst.expiry_us,
                        timestamp: timestamp_us,
                    });
                }
                let notional = to_amount(i128::from(qty) * i128::from(price), "qty * price")?;
                let q = i64::try_from(qty).map_err(|_| Rule::Overflow { what: "qty" })?;
                let coll = i128::from(inst.collateral);

                let old_b = self.position(instrument, buyer);
                let old_s = self.position(instrument, seller);
                let new_b = old_b
                    .checked_add(q)
                    .ok_or(Rule::Overflow { what: "position" })?;
                let new_s = old_s
                    .checked_sub(q)
                    .ok_or(Rule::Overflow { what: "position" })?;
                let lock = |p: i64| i128::from((-p).max(0)) * coll;
                let long = |p: i64| i128::from(p.max(0));

                // Buyer: pays notional and fee; buying back a short releases collateral.
                let mut b = self.account(buyer);
                let d_lock_b = lock(new_b) - lock(old_b);
                let needed_b = i128::from(notional) + i128::from(buyer_fee) + d_lock_b;
                let cash_b = i128::from(b.cash) - needed_b;
                if cash_b < 0 {
                    return Err(Rule::InsufficientCash {
                        account: buyer,
                        needed: needed_b as u128,
                        available: b.cash.into(),
                    });
                }
                b.cash = to_amount(cash_b, "cash")?;
                b.locked = to_amount(i128::from(b.locked) + d_lock_b, "locked")?;

                // Seller: receives notional, pays fee and locks collateral for a new short.
                let mut s = self.account(seller);
                let d_lock_s = lock(new_s) - lock(old_s);
                let cash_s =
                    i128::from(s.cash) + i128::from(notional) - i128::from(seller_fee) - d_lock_s;
                if cash_s < 0 {
                    let needed =
                        (i128::from(seller_fee) + d_lock_s - i128::from(notional)).max(0) as u128;
                    return Err(Rule::InsufficientCash {
                        account: seller,
                        needed,
                        available: s.cash.into(),
                    });
                }
                s.cash = to_amount(cash_s, "cash")?;
                s.locked = to_amount(i128::from(s.locked) + d_lock_s, "locked")?;

                let mut fee = self.account(FEE_ACCOUNT);
                fee.cash = to_amount(
                    i128::from(fee.cash) + i128::from(buyer_fee) + i128::from(seller_fee),
                    "fee cash",
                )?;

                let oi = i128::from(self.open_interest(instrument)) + long(new_b) - long(old_b)
                    + long(new_s)
                    - long(old_s);
                let oi = to_amount(oi, "open interest")?;
                self.set_account(buyer, b);
                self.set_account(seller, s);
                self.set_account(FEE_ACCOUNT, fee);
                self.set_position(instrument, buyer, new_b);
                self.set_position(instrument, seller, new_s);
                self.set_open_interest(instrument, oi);
            }
            Operation::Settle {
                instrument,
                price,
                timestamp_us,
            } => {
                check_amount("price", price)?;
                let inst = self.instrument(instrument)?;
                if timestamp_us < inst.expiry_us {
                    return Err(Rule::SettleBeforeExpiry {
                        expiry: inst.expiry_us,
                        timestamp: timestamp_us,
                    });
                }
                let payoff = i128::from(inst.payoff(price));
                let coll = i128::from(inst.collateral);
                let holders: Vec<(u32, i64)> = self
                    .positions
                    .range((instrument, 0)..(instrument + 1, 0))
                    .map(|(&(_, a), &q)| (a, q))
                    .collect();
                for (account, q) in holders {
                    let mut a = self.account(account);
                    let lots = i128::from(q.unsigned_abs());
                    if q > 0 {
                        a.cash = to_amount(i128::from(a.cash) + lots * payoff, "cash")?;
                    } else {
                        a.locked = to_amount(i128::from(a.locked) - lots * coll, "locked")?;
                        a.cash = to_amount(i128::from(a.cash) + lots * (coll - payoff), "cash")?;
                    }
                    self.set_account(account, a);
                    self.set_position(instrument, account, 0);
                }
                self.set_open_interest(instrument, 0);
            }
        }
        self.clock = ts;
        self.dirty.insert(StateKey::Clock);
        Ok(())
    }
}

mod snapshot;
pub use snapshot::{SnapshotError, SNAPSHOT_TAG};

#[cfg(test)]
mod tests;
