//! The native execution engine: applies operations under the venue rules, atomically per
//! batch, and reports the first violation with its operation index and rule.

use std::collections::{BTreeMap, BTreeSet};

use super::ops::{Instrument, Operation};
use super::state::{
    account_leaf, clock_leaf, open_interest_leaf, position_leaf, AccountState, StateKey, StateTree,
};
use super::{FEE_ACCOUNT, MAX_ACCOUNTS, MAX_AMOUNT};
use crate::poseidon2::Digest;

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

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::venue::ops::OptionKind;

    const T0: u64 = 1_795_000_000_000_000;
    const EXPIRY: u64 = T0 + 1_000_000;

    fn instruments() -> Vec<Instrument> {
        vec![
            // 0: call, strike 100, payoff capped at 60 per lot.
            Instrument {
                underlying: 1,
                expiry_us: EXPIRY,
                strike: 100,
                kind: OptionKind::Call,
                collateral: 60,
            },
            // 1: put, strike 80 (collateral = strike).
            Instrument {
                underlying: 1,
                expiry_us: EXPIRY,
                strike: 80,
                kind: OptionKind::Put,
                collateral: 80,
            },
        ]
    }

    fn funded() -> Venue {
        let mut v = Venue::new(instruments());
        let ops: Vec<Operation> = (1..=4)
            .map(|a| Operation::Deposit {
                account: a,
                amount: 1_000_000,
                timestamp_us: T0,
            })
            .collect();
        v.apply_batch(&ops).unwrap();
        v
    }

    fn trade(buyer: u32, seller: u32, instrument: u32, qty: u64, price: u64, ts: u64) -> Operation {
        Operation::Trade {
            buyer,
            seller,
            instrument,
            qty,
            price,
            buyer_fee: 3,
            seller_fee: 2,
            timestamp_us: ts,
        }
    }

    fn rule_of(v: &mut Venue, ops: &[Operation]) -> Rule {
        let before = v.clone().state_root();
        let err = v.apply_batch(ops).unwrap_err();
        assert_eq!(
            v.state_root(),
            before,
            "a refused batch must leave no trace"
        );
        err.rule
    }

    #[test]
    fn trade_moves_cash_fees_positions_and_collateral() {
        let mut v = funded();
        v.apply_batch(&[trade(1, 2, 0, 10, 7, T0 + 1)]).unwrap();
        assert_eq!(
            v.account(1),
            AccountState {
                cash: 1_000_000 - 70 - 3,
                locked: 0
            }
        );
        // Seller: +70 − 2, and 10 lots × 60 locked.
        assert_eq!(
            v.account(2),
            AccountState {
                cash: 1_000_000 + 70 - 2 - 600,
                locked: 600
            }
        );
        assert_eq!(v.account(FEE_ACCOUNT).cash, 5);
        assert_eq!((v.position(0, 1), v.position(0, 2)), (10, -10));
        assert_eq!(v.open_interest(0), 10);
        // The short buys back 4 lots: 240 unlocked.
        v.apply_batch(&[trade(2, 3, 0, 4, 7, T0 + 2)]).unwrap();
        assert_eq!(v.account(2).locked, 360);
        assert_eq!((v.position(0, 2), v.position(0, 3)), (-6, -4));
        // Account 3 went short, so the longs (account 1's 10 lots) are unchanged.
        assert_eq!(v.open_interest(0), 10);
    }

    #[test]
    fn settlement_pays_capped_intrinsic_and_closes_everything() {
        let mut v = funded();
        v.apply_batch(&[trade(1, 2, 0, 10, 7, T0 + 1), trade(3, 4, 1, 5, 9, T0 + 2)])
            .unwrap();
        let total = v.total_value();
        // Call settles at 200: intrinsic 100, capped at 60.
        v.apply_batch(&[
            Operation::Settle {
                instrument: 0,
                price: 200,
                timestamp_us: EXPIRY,
            },
            Operation::Settle {
                instrument: 1,
                price: 50,
                timestamp_us: EXPIRY,
            },
        ])
        .unwrap();
        assert_eq!(v.account(1).cash, 1_000_000 - 73 + 600);
        assert_eq!(
            v.account(2),
            AccountState {
                cash: 1_000_000 + 68 - 600,
                locked: 0
            }
        );
        // Put at 50: intrinsic 30 per lot; the short keeps 5 × (80 − 30).
        assert_eq!(v.account(3).cash, 1_000_000 - 45 - 3 + 150);
        assert_eq!(
            v.account(4),
            AccountState {
                cash: 1_000_000 + 45 - 2 - 400 + 250,
                locked: 0
            }
        );
        assert_eq!(
            (v.position(0, 1), v.position(1, 4), v.open_interest(0)),
            (0, 0, 0)
        );
        assert_eq!(
            v.total_value(),
            total,
            "settlement moves value, never creates it"
        );
    }

    #[test]
    fn each_rule_is_enforced() {
        let mut v = funded();
        let t = T0 + 1;
        assert_eq!(
            rule_of(
                &mut v,
                &[Operation::Withdraw {
                    account: 1,
                    amount: 1_000_001,
                    timestamp_us: t
                }]
            ),
            Rule::InsufficientCash {
                account: 1,
                needed: 1_000_001,
                available: 1_000_000
            }
        );
        assert_eq!(
            rule_of(&mut v, &[trade(1, 1, 0, 1, 1, t)]),
            Rule::SelfTrade { account: 1 }
        );
        assert_eq!(
            rule_of(&mut v, &[trade(1, 2, 0, 0, 1, t)]),
            Rule::ZeroQuantity
        );
        assert_eq!(
            rule_of(&mut v, &[trade(0, 2, 0, 1, 1, t)]),
            Rule::FeeAccountTrades
        );
        assert_eq!(
            rule_of(&mut v, &[trade(1, 2, 9, 1, 1, t)]),
            Rule::UnknownInstrument { got: 9, listed: 2 }
        );
        assert_eq!(
            rule_of(&mut v, &[trade(1, 2, 0, 1, 1, EXPIRY)]),
            Rule::TradeAfterExpiry {
                expiry: EXPIRY,
                timestamp: EXPIRY
            }
        );
        assert_eq!(
            rule_of(
                &mut v,
                &[Operation::Settle {
                    instrument: 0,
                    price: 1,
                    timestamp_us: EXPIRY - 1
                }]
            ),
            Rule::SettleBeforeExpiry {
                expiry: EXPIRY,
                timestamp: EXPIRY - 1
            }
        );
        // Uncollateralised short: 20,000 lots × 60 = 1.2M of collateral the seller lacks.
        assert!(matches!(
            rule_of(&mut v, &[trade(1, 2, 0, 20_000, 1, t)]),
            Rule::InsufficientCash { account: 2, .. }
        ));
        assert_eq!(
            rule_of(&mut v, &[trade(1, 2, 0, 1 << 40, 1 << 40, t)]),
            Rule::Overflow {
                what: "qty * price"
            }
        );
        assert_eq!(
            rule_of(
                &mut v,
                &[Operation::Deposit {
                    account: 1 << 18,
                    amount: 1,
                    timestamp_us: t
                }]
            ),
            Rule::AccountOutOfRange {
                got: 1 << 18,
                max: (1 << 18) - 1
            }
        );
        assert_eq!(
            rule_of(
                &mut v,
                &[Operation::Deposit {
                    account: 1,
                    amount: 1,
                    timestamp_us: T0 - 1
                }]
            ),
            Rule::TimestampDecreasing {
                previous: T0,
                got: T0 - 1
            }
        );
    }

    #[test]
    fn violation_names_the_operation_index() {
        let mut v = funded();
        let ops = [
            Operation::Deposit {
                account: 1,
                amount: 5,
                timestamp_us: T0 + 1,
            },
            trade(1, 2, 0, 1, 1, T0 + 2),
            Operation::Withdraw {
                account: 3,
                amount: 2_000_000,
                timestamp_us: T0 + 3,
            },
        ];
        assert_eq!(v.apply_batch(&ops).unwrap_err().op_index, 2);
    }

    #[test]
    fn random_batches_conserve_value_and_keep_invariants() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut v = funded();
        let mut ts = T0 + 1;
        for _ in 0..50 {
            let mut ops = Vec::new();
            for _ in 0..40 {
                ts += rng.gen_range(0..3);
                ops.push(match rng.gen_range(0..10) {
                    0 => Operation::Deposit {
                        account: rng.gen_range(1..6),
                        amount: rng.gen_range(0..5_000),
                        timestamp_us: ts,
                    },
                    1 => Operation::Withdraw {
                        account: rng.gen_range(1..6),
                        amount: rng.gen_range(0..5_000),
                        timestamp_us: ts,
                    },
                    _ => {
                        let buyer = rng.gen_range(1..6);
                        let seller = 1 + (buyer + rng.gen_range(0..4)) % 5;
                        trade(
                            buyer,
                            seller,
                            rng.gen_range(0..2),
                            rng.gen_range(1..50),
                            rng.gen_range(1..40),
                            ts,
                        )
                    }
                });
            }
            let before = v.total_value();
            let mut probe = v.clone();
            // Apply op by op so that refused operations are simply skipped.
            let mut net = 0i128;
            for op in &ops {
                if let Ok(e) = probe.apply_batch(std::slice::from_ref(op)) {
                    net += e.net_deposits;
                }
            }
            assert_eq!(
                probe.total_value() as i128,
                before as i128 + net,
                "value created or destroyed"
            );
            let coll = [60u64, 80];
            assert!(
                probe.positions.values().all(|&q| q != 0),
                "zero positions are not stored"
            );
            for inst in 0..coll.len() {
                let longs: i64 = probe
                    .positions
                    .iter()
                    .filter(|(k, _)| k.0 == inst as u32)
                    .map(|(_, &q)| q.max(0))
                    .sum();
                let net_pos: i64 = probe
                    .positions
                    .iter()
                    .filter(|(k, _)| k.0 == inst as u32)
                    .map(|(_, &q)| q)
                    .sum();
                assert_eq!(net_pos, 0, "positions must net to zero");
                assert_eq!(probe.open_interest(inst as u32), longs as u64);
            }
            for (&acct, a) in &probe.accounts {
                let required: u64 = probe
                    .positions
                    .iter()
                    .filter(|(k, _)| k.1 == acct)
                    .map(|(k, &q)| (-q).max(0) as u64 * coll[k.0 as usize])
                    .sum();
                assert_eq!(
                    a.locked, required,
                    "account {acct}: locked must equal its shorts' collateral"
                );
            }
            v = probe;
        }
    }
}
