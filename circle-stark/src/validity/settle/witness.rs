//! The witness side (feature `prover`).

use super::*;
use crate::field::M31;
use crate::validity::gadgets::SLOTS_PER_OP;
use crate::validity::mul::MulWitness;
use crate::validity::row::{Access, Lookup, RowWitness};
use crate::venue::state::{
    account_leaf, clock_leaf, open_interest_leaf, position_leaf, AccountState, StateKey,
};

/// A settlement header's values: the engine's, or a test's forgery (the witness derives the
/// rest with wrapping arithmetic and no checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettleRow {
    /// Operation index.
    pub index: u32,
    /// Instrument.
    pub instrument: u32,
    /// Settlement price per lot.
    pub price: u64,
    /// The instrument's strike, collateral and expiry; put or call.
    pub strike: u64,
    /// Collateral per lot.
    pub collateral: u64,
    /// Expiry.
    pub expiry: u64,
    /// A put.
    pub is_put: bool,
    /// The settlement's timestamp.
    pub timestamp: u64,
    /// The clock before.
    pub clock: u64,
    /// Open interest before.
    pub open_interest: u64,
    /// Payoff per lot (the rule: `min(intrinsic, collateral)`).
    pub payoff: u64,
    /// Holder rows.
    pub holders: u32,
    /// Previous access times of the clock and the open-interest leaf.
    pub t_prev: [u32; 2],
}

/// One holder row's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderRow {
    /// Operation index.
    pub index: u32,
    /// Position in the chain.
    pub j: u32,
    /// Instrument.
    pub instrument: u32,
    /// The holder.
    pub account: u32,
    /// Payoff and collateral per lot (from the header).
    pub payoff: u64,
    /// Collateral per lot.
    pub collateral: u64,
    /// Long and short lots still to settle before this row.
    pub remaining: (u64, u64),
    /// The position before (lots, negative = short).
    pub position: i64,
    /// The account before and after.
    pub account_state: (AccountState, AccountState),
    /// Previous access times of the position and the account.
    pub t_prev: [u32; 2],
}

fn intrinsic(r: &SettleRow) -> (u64, u64, bool) {
    let (a, b) = if r.is_put {
        (r.strike, r.price)
    } else {
        (r.price, r.strike)
    };
    if a >= b {
        (a - b, 0, true)
    } else {
        (0, b - a, false)
    }
}

impl SettleRow {
    /// The clock and open-interest accesses.
    pub fn accesses(&self) -> [Access; 2] {
        let t = self.index * SLOTS_PER_OP;
        [
            Access {
                key: StateKey::Clock.index(),
                old: clock_leaf(self.clock),
                new: clock_leaf(self.timestamp),
                t_prev: self.t_prev[0],
                t: t + 1,
            },
            Access {
                key: StateKey::OpenInterest(self.instrument).index(),
                old: open_interest_leaf(self.open_interest),
                new: open_interest_leaf(0),
                t_prev: self.t_prev[1],
                t: t + 2,
            },
        ]
    }

    /// Cells and lookups in [`SettleEval`]'s order.
    pub fn witness(&self) -> RowWitness {
        let mut w = RowWitness::default();
        let (intr, gap, itm) = intrinsic(self);
        let capped = self.payoff == self.collateral && intr >= self.collateral;
        let (over, under) = (
            intr.wrapping_sub(self.payoff),
            self.collateral.wrapping_sub(self.payoff),
        );
        let (over, under) = if capped { (over, 0) } else { (0, under) };
        let d1 = self.timestamp.wrapping_sub(self.expiry);
        let d2 = self.timestamp.wrapping_sub(self.clock);
        w.push([
            c(1),
            c(self.index),
            c(self.instrument),
            c(self.holders),
            c(u32::from(self.is_put)),
            c(u32::from(itm)),
            c(u32::from(capped)),
        ]);
        w.range(c(self.instrument) * c(1 << 4));
        let values = [
            self.price,
            self.strike,
            self.collateral,
            self.expiry,
            self.timestamp,
            intr,
            gap,
            self.payoff,
            over,
            under,
            d1,
            d2,
        ];
        for v in values {
            w.push(l(v));
        }
        for v in [
            self.price,
            self.timestamp,
            intr,
            gap,
            self.payoff,
            over,
            under,
            d1,
            d2,
        ] {
            w.u63(l(v));
        }
        let (a, b) = if self.is_put {
            (self.strike, self.price)
        } else {
            (self.price, self.strike)
        };
        let accesses = self.accesses();
        for x in &accesses {
            w.access_cells(x);
        }
        w.sum_eq(&[l(a), l(gap)], &[l(b), l(intr)]);
        w.sum_eq(&[l(self.payoff), l(over)], &[l(intr)]);
        w.sum_eq(&[l(self.payoff), l(under)], &[l(self.collateral)]);
        w.sum_eq(&[l(self.expiry), l(d1)], &[l(self.timestamp)]);
        w.sum_eq(&[l(self.clock), l(d2)], &[l(self.timestamp)]);
        for x in &accesses {
            w.access_lookups(x);
        }
        debug_assert_eq!(w.cells.len(), HEADER_COLUMNS);
        let mut op = vec![c(self.index), c(crate::venue::ops::kind::SETTLE)];
        op.extend([c(0); 4]);
        op.extend([c(self.instrument), c(0)]);
        op.extend([c(0); 4]);
        op.extend(l(self.price));
        op.extend([c(0); 8]);
        op.extend(l(self.timestamp));
        w.lookups.push(Lookup::Op(op));
        let mut terms = vec![c(self.instrument)];
        for v in [self.expiry, self.collateral, self.strike] {
            terms.extend(l(v));
        }
        terms.push(c(u32::from(self.is_put)));
        w.lookups.push(Lookup::SettleTerms(terms));
        let link = |j: u32, rl: u64, rs: u64| {
            let values = [self.payoff, self.collateral, rl, rs].map(l);
            chain_link(
                &c(self.index),
                c(j),
                &c(self.instrument),
                [&values[0], &values[1], &values[2], &values[3]],
            )
        };
        w.lookups.push(Lookup::ChainYield(link(
            0,
            self.open_interest,
            self.open_interest,
        )));
        w.lookups.push(Lookup::ChainUse(link(self.holders, 0, 0)));
        debug_assert_eq!(w.lookups.len(), HEADER_LOOKUPS);
        w
    }
}

impl HolderRow {
    /// `(long, short)` lots of the position.
    pub fn long_short(&self) -> (u64, u64) {
        let lots = self.position.unsigned_abs();
        if self.position < 0 {
            (0, lots)
        } else {
            (lots, 0)
        }
    }

    /// The position and account accesses.
    pub fn accesses(&self) -> [Access; 2] {
        let t = self.index * SLOTS_PER_OP;
        [
            Access {
                key: StateKey::Position {
                    instrument: self.instrument,
                    account: self.account,
                }
                .index(),
                old: position_leaf(self.position),
                new: position_leaf(0),
                t_prev: self.t_prev[0],
                t: t + 3,
            },
            Access {
                key: StateKey::Account(self.account).index(),
                old: account_leaf(&self.account_state.0),
                new: account_leaf(&self.account_state.1),
                t_prev: self.t_prev[1],
                t: t + 4,
            },
        ]
    }

    /// Cells and lookups in [`HolderEval`]'s order.
    pub fn witness(&self) -> RowWitness {
        let mut w = RowWitness::default();
        let (long, short) = self.long_short();
        let lots = self.position.unsigned_abs();
        let (rl, rs) = self.remaining;
        let (rl2, rs2) = (rl.wrapping_sub(long), rs.wrapping_sub(short));
        w.push([c(1), c(self.index), c(self.j), c(self.instrument)]);
        for v in [self.payoff, self.collateral, rl, rs, rl2, rs2] {
            w.push(l(v));
        }
        let accesses = self.accesses();
        for x in &accesses {
            w.access_cells(x);
        }
        w.range(c(self.account & 0xffff));
        w.range(c(self.account >> 16) * c(1 << 14));
        for x in &accesses {
            w.access_lookups(x);
        }
        let paid = lots.wrapping_mul(self.payoff);
        let freed = lots.wrapping_mul(self.collateral);
        let mul = |a: u64, b: u64, prod: u64| {
            MulWitness::new(a, b)
                .filter(|m| m.c == l(prod).map(|x| x.0))
                .unwrap_or_else(|| MulWitness::claiming(a, b, prod))
        };
        w.push(l(paid));
        w.mul(&mul(lots, self.payoff, paid));
        w.push(l(freed));
        w.mul(&mul(lots, self.collateral, freed));
        let (before, after) = self.account_state;
        let is_short = self.position < 0;
        let gated = |on: bool, v: u64| l(if on { v } else { 0 });
        w.sum_eq(&[l(rl2), l(long)], &[l(rl)]);
        w.sum_eq(&[l(rs2), l(short)], &[l(rs)]);
        w.sum_eq(
            &[l(after.cash), gated(is_short, paid)],
            &[
                l(before.cash),
                gated(!is_short, paid),
                gated(is_short, freed),
            ],
        );
        w.sum_eq(
            &[l(after.locked), gated(is_short, freed)],
            &[l(before.locked)],
        );
        for v in [rl2, rs2, after.cash, after.locked] {
            w.u63(l(v));
        }
        debug_assert_eq!(w.cells.len(), HOLDER_COLUMNS);
        let link = |j: u32, rl: u64, rs: u64| {
            let values = [self.payoff, self.collateral, rl, rs].map(l);
            chain_link(
                &c(self.index),
                c(j),
                &c(self.instrument),
                [&values[0], &values[1], &values[2], &values[3]],
            )
        };
        w.lookups.push(Lookup::ChainUse(link(self.j, rl, rs)));
        w.lookups
            .push(Lookup::ChainYield(link(self.j + 1, rl2, rs2)));
        debug_assert_eq!(w.lookups.len(), HOLDER_LOOKUPS);
        w
    }

    /// The account after settling this position by the rule, with wrapping arithmetic (the
    /// test path: a forged payoff flows through).
    pub fn settled(
        before: AccountState,
        position: i64,
        payoff: u64,
        collateral: u64,
    ) -> AccountState {
        let lots = position.unsigned_abs();
        if position < 0 {
            AccountState {
                cash: before
                    .cash
                    .wrapping_add(lots.wrapping_mul(collateral))
                    .wrapping_sub(lots.wrapping_mul(payoff)),
                locked: before.locked.wrapping_sub(lots.wrapping_mul(collateral)),
            }
        } else {
            AccountState {
                cash: before.cash.wrapping_add(lots.wrapping_mul(payoff)),
                locked: before.locked,
            }
        }
    }
}

/// The header and holder rows of a settlement, from the engine (which applies it to `venue`).
///
/// # Errors
/// The engine's violation.
pub fn settle_rows(
    venue: &mut crate::venue::Venue,
    op: &crate::venue::Operation,
    index: u32,
    last_access: &mut crate::validity::row::LastAccess,
) -> Result<(SettleRow, Vec<HolderRow>), crate::venue::engine::Violation> {
    let crate::venue::Operation::Settle {
        instrument,
        price,
        timestamp_us,
    } = *op
    else {
        panic!("settle_rows takes settlements");
    };
    let inst = venue.instruments().get(instrument as usize).cloned();
    let clock = venue.clock();
    let open_interest = venue.open_interest(instrument);
    let holders = venue.holders(instrument);
    let before: Vec<AccountState> = holders.iter().map(|&(a, _)| venue.account(a)).collect();
    venue.apply_batch(std::slice::from_ref(op))?;
    let inst = inst.expect("the engine checked the instrument");
    let mut header = SettleRow {
        index,
        instrument,
        price,
        strike: inst.strike,
        collateral: inst.collateral,
        expiry: inst.expiry_us,
        is_put: inst.kind == crate::venue::OptionKind::Put,
        timestamp: timestamp_us,
        clock,
        open_interest,
        payoff: inst.payoff(price),
        holders: holders.len() as u32,
        t_prev: [0; 2],
    };
    for (k, a) in header.accesses().iter().enumerate() {
        header.t_prev[k] = last_access.swap(a.key, a.t);
    }
    let mut remaining = (open_interest, open_interest);
    let mut rows = Vec::with_capacity(holders.len());
    for (j, (&(account, position), before)) in holders.iter().zip(before).enumerate() {
        let mut row = HolderRow {
            index,
            j: j as u32,
            instrument,
            account,
            payoff: header.payoff,
            collateral: header.collateral,
            remaining,
            position,
            account_state: (before, venue.account(account)),
            t_prev: [0; 2],
        };
        for (k, a) in row.accesses().iter().enumerate() {
            row.t_prev[k] = last_access.swap(a.key, a.t);
        }
        let (long, short) = row.long_short();
        remaining = (remaining.0 - long, remaining.1 - short);
        rows.push(row);
    }
    Ok((header, rows))
}

fn l(v: u64) -> [M31; 4] {
    crate::encoding::u64_limbs(v)
}
