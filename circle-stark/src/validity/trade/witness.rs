//! The witness side of a trade row (prover only): the values the engine computes for an
//! honest trade, and the row's cells and lookups in the order `TradeEval` adds them.

use super::*;
use crate::validity::mul::MulWitness;
use crate::venue::state::{account_leaf, position_leaf, AccountState, StateKey};

fn limbs(v: u64) -> [M31; 4] {
    crate::encoding::u64_limbs(v)
}

fn inverse_or_zero(v: M31) -> M31 {
    if v.0 == 0 {
        c(0)
    } else {
        v.inverse()
    }
}

/// Everything a trade row holds, as plain values: what the engine computed for an honest
/// trade, or what a test forges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeRow {
    /// Operation index in the batch (access times derive from it).
    pub index: u32,
    /// Instrument.
    pub instrument: u32,
    /// Buyer account.
    pub buyer: u32,
    /// Seller account.
    pub seller: u32,
    /// Lots.
    pub qty: u64,
    /// Price per lot.
    pub price: u64,
    /// Buyer's fee.
    pub fee_b: u64,
    /// Seller's fee.
    pub fee_s: u64,
    /// The instrument's collateral per lot.
    pub collateral: u64,
    /// Buyer, seller and fee account before and after.
    pub accounts: [(AccountState, AccountState); 3],
    /// Buyer's and seller's positions before and after.
    pub positions: [(i64, i64); 2],
    /// `qty · price`.
    pub notional: u64,
    /// Lots of short the buyer closed, and their collateral.
    pub released: (u64, u64),
    /// Lots of short the seller opened, and their collateral.
    pub added: (u64, u64),
    /// Previous access time of each of the seven leaves (buyer, seller, fee, positions,
    /// clock, open interest).
    pub t_prev: [u32; 7],
    /// The instrument's open interest before and after.
    pub open_interest: (u64, u64),
    /// The clock before the trade.
    pub clock: u64,
    /// The operation's timestamp (bound to its record; at least the clock, below expiry).
    pub timestamp: u64,
    /// The instrument's expiry.
    pub expiry: u64,
}

impl TradeRow {
    /// The row's seven accesses.
    pub fn accesses(&self) -> [Access; 7] {
        let t = |k: u32| self.index * SLOTS_PER_OP + k;
        let acct = |k: usize, id: u32| Access {
            key: StateKey::Account(id).index(),
            old: account_leaf(&self.accounts[k].0),
            new: account_leaf(&self.accounts[k].1),
            t_prev: self.t_prev[k],
            t: t(k as u32 + 1),
        };
        let pos = |k: usize, id: u32| Access {
            key: StateKey::Position {
                instrument: self.instrument,
                account: id,
            }
            .index(),
            old: position_leaf(self.positions[k].0),
            new: position_leaf(self.positions[k].1),
            t_prev: self.t_prev[3 + k],
            t: t(4 + k as u32),
        };
        let clock = Access {
            key: StateKey::Clock.index(),
            old: crate::venue::state::clock_leaf(self.clock),
            new: crate::venue::state::clock_leaf(self.timestamp),
            t_prev: self.t_prev[5],
            t: t(6),
        };
        let oi = Access {
            key: StateKey::OpenInterest(self.instrument).index(),
            old: crate::venue::state::open_interest_leaf(self.open_interest.0),
            new: crate::venue::state::open_interest_leaf(self.open_interest.1),
            t_prev: self.t_prev[6],
            t: t(7),
        };
        [
            acct(0, self.buyer),
            acct(1, self.seller),
            acct(2, 0),
            pos(0, self.buyer),
            pos(1, self.seller),
            clock,
            oi,
        ]
    }

    /// Cells and lookups in the order [`TradeEval`] reads and adds them; `bound` as
    /// `TradeEval::ops` is set.
    pub fn witness(&self, bound: bool) -> RowWitness {
        let mut w = RowWitness::default();
        w.push([c(1), c(self.index), c(self.instrument)]);
        w.range(c(self.instrument) * c(1 << 4));
        let inputs = [
            self.qty,
            self.price,
            self.fee_b,
            self.fee_s,
            self.collateral,
        ];
        for v in inputs {
            w.push(limbs(v));
        }
        for v in inputs {
            w.u63(limbs(v));
        }
        let qty_sum = limbs(self.qty).into_iter().fold(c(0), |a, b| a + b);
        w.push([inverse_or_zero(qty_sum)]);
        let accesses = self.accesses();
        for a in &accesses[..5] {
            w.access_cells(a);
        }
        let (b, s) = (c(self.buyer), c(self.seller));
        let mag = |q: i64| limbs(q.unsigned_abs()).into_iter().fold(c(0), |a, b| a + b);
        w.push([
            inverse_or_zero(b),
            inverse_or_zero(s),
            inverse_or_zero(b - s),
            inverse_or_zero(mag(self.positions[0].1)),
            inverse_or_zero(mag(self.positions[1].1)),
        ]);
        for a in [&accesses[0], &accesses[1]] {
            w.range(c(a.key & 0xffff));
            w.range(c(a.key >> 16) * c(1 << 14));
        }
        for a in &accesses[..5] {
            w.access_lookups(a);
        }
        let mul = |a: u64, b: u64, prod: u64| {
            MulWitness::new(a, b)
                .filter(|m| m.c == limbs(prod).map(|x| x.0))
                .unwrap_or_else(|| MulWitness::claiming(a, b, prod))
        };
        w.push(limbs(self.notional));
        w.mul(&mul(self.qty, self.price, self.notional));
        w.push(limbs(self.released.0));
        w.push(limbs(self.released.1));
        w.mul(&mul(self.released.0, self.collateral, self.released.1));
        w.push(limbs(self.added.0));
        w.push(limbs(self.added.1));
        w.mul(&mul(self.added.0, self.collateral, self.added.1));

        let ls = |q: i64| {
            let m = q.unsigned_abs();
            if q < 0 {
                (limbs(0), limbs(m))
            } else {
                (limbs(m), limbs(0))
            }
        };
        let (long_b, short_b) = ls(self.positions[0].0);
        let (long_b2, short_b2) = ls(self.positions[0].1);
        let (long_s, short_s) = ls(self.positions[1].0);
        let (long_s2, short_s2) = ls(self.positions[1].1);
        let [(ob, nb), (os, ns), (of, nf)] = self.accounts;
        let l = limbs;
        w.sum_eq(&[long_b2, short_b], &[long_b, short_b2, l(self.qty)]);
        w.sum_eq(&[long_s2, short_s, l(self.qty)], &[long_s, short_s2]);
        w.sum_eq(&[short_b2, l(self.released.0)], &[short_b]);
        w.sum_eq(&[short_s, l(self.added.0)], &[short_s2]);
        w.sum_eq(
            &[l(nb.cash), l(self.notional), l(self.fee_b)],
            &[l(ob.cash), l(self.released.1)],
        );
        w.sum_eq(&[l(nb.locked), l(self.released.1)], &[l(ob.locked)]);
        w.sum_eq(
            &[l(os.cash), l(self.notional)],
            &[l(ns.cash), l(self.fee_s), l(self.added.1)],
        );
        w.sum_eq(&[l(os.locked), l(self.added.1)], &[l(ns.locked)]);
        w.sum_eq(&[l(of.cash), l(self.fee_b), l(self.fee_s)], &[l(nf.cash)]);
        for v in [
            nb.cash,
            nb.locked,
            ns.cash,
            ns.locked,
            nf.cash,
            self.positions[0].1.unsigned_abs(),
            self.positions[1].1.unsigned_abs(),
        ] {
            w.u63(l(v));
        }
        let ts = l(self.timestamp);
        let gap = self.expiry.wrapping_sub(self.timestamp).wrapping_sub(1);
        w.push(ts);
        w.push(l(self.expiry));
        w.push(l(gap));
        for v in [self.timestamp, self.expiry, gap] {
            w.u63(l(v));
        }
        w.sum_eq(&[ts, l(1), l(gap)], &[l(self.expiry)]);
        let clock = &accesses[5];
        let d = self.timestamp.wrapping_sub(self.clock);
        w.access_cells(clock);
        w.push(l(d));
        w.u63(l(d));
        w.sum_eq(&[l(self.clock), l(d)], &[ts]);
        w.access_lookups(clock);
        let oi = &accesses[6];
        w.access_cells(oi);
        let (oi0, oi1) = self.open_interest;
        w.sum_eq(&[l(oi1), long_b, long_s], &[l(oi0), long_b2, long_s2]);
        w.u63(l(oi1));
        w.access_lookups(oi);
        debug_assert_eq!(w.cells.len(), TRADE_COLUMNS);
        if bound {
            let mut op = vec![
                c(self.index),
                c(crate::venue::ops::kind::TRADE),
                c(self.buyer & 0xffff),
                c(self.buyer >> 16),
                c(self.seller & 0xffff),
                c(self.seller >> 16),
                c(self.instrument),
                c(0),
            ];
            for v in [self.qty, self.price, self.fee_b, self.fee_s] {
                op.extend(l(v));
            }
            op.extend(ts);
            w.lookups.push(Lookup::Op(op));
            let mut terms = vec![c(self.instrument)];
            terms.extend(l(self.expiry));
            terms.extend(l(self.collateral));
            w.lookups.push(Lookup::Instrument(terms));
            debug_assert_eq!(w.lookups.len(), TRADE_LOOKUPS);
        }
        w
    }
}

impl TradeRow {
    /// The row the trade rules give for these inputs and balances, computed with wrapping
    /// arithmetic and **no** rule checks: the test-only path to invalid witnesses (an
    /// overdraft wraps around, a self-trade or zero quantity goes through). For a valid trade it
    /// equals the engine's row ([`trade_row`]). `t_prev` is left zero.
    #[allow(clippy::too_many_arguments)]
    pub fn unchecked(
        index: u32,
        instrument: u32,
        (buyer, seller): (u32, u32),
        (qty, price, fee_b, fee_s): (u64, u64, u64, u64),
        collateral: u64,
        accounts: [AccountState; 3],
        positions: [i64; 2],
        open_interest: u64,
    ) -> Self {
        let q = qty as i64;
        let new_pos = [positions[0].wrapping_add(q), positions[1].wrapping_sub(q)];
        let long = |p: i64| if p > 0 { p.unsigned_abs() } else { 0 };
        let oi_after = open_interest
            .wrapping_add(long(new_pos[0]))
            .wrapping_add(long(new_pos[1]))
            .wrapping_sub(long(positions[0]))
            .wrapping_sub(long(positions[1]));
        let short = |p: i64| if p < 0 { p.unsigned_abs() } else { 0 };
        let released = short(positions[0]).wrapping_sub(short(new_pos[0]));
        let added = short(new_pos[1]).wrapping_sub(short(positions[1]));
        let notional = qty.wrapping_mul(price);
        let (rv, av) = (
            released.wrapping_mul(collateral),
            added.wrapping_mul(collateral),
        );
        let [ob, os, of] = accounts;
        let nb = AccountState {
            cash: ob
                .cash
                .wrapping_add(rv)
                .wrapping_sub(notional)
                .wrapping_sub(fee_b),
            locked: ob.locked.wrapping_sub(rv),
        };
        let ns = AccountState {
            cash: os
                .cash
                .wrapping_add(notional)
                .wrapping_sub(fee_s)
                .wrapping_sub(av),
            locked: os.locked.wrapping_add(av),
        };
        let nf = AccountState {
            cash: of.cash.wrapping_add(fee_b).wrapping_add(fee_s),
            locked: of.locked,
        };
        Self {
            index,
            instrument,
            buyer,
            seller,
            qty,
            price,
            fee_b,
            fee_s,
            collateral,
            accounts: [(ob, nb), (os, ns), (of, nf)],
            positions: [(positions[0], new_pos[0]), (positions[1], new_pos[1])],
            notional,
            released: (released, rv),
            added: (added, av),
            t_prev: [0; 7],
            open_interest: (open_interest, oi_after),
            clock: 0,
            timestamp: 0,
            expiry: u64::MAX >> 1,
        }
    }
}

/// The honest row of `op` (a trade) applied to `venue` as operation `index`, with the
/// previous access times of its leaves taken from `last_access` (and updated). Applies the
/// trade to `venue`.
///
/// # Errors
/// The engine's violation if the trade breaks a rule (no honest row exists then).
pub fn trade_row(
    venue: &mut crate::venue::Venue,
    op: &crate::venue::Operation,
    index: u32,
    last_access: &mut crate::validity::row::LastAccess,
) -> Result<TradeRow, crate::venue::engine::Violation> {
    let crate::venue::Operation::Trade {
        buyer,
        seller,
        instrument,
        qty,
        price,
        buyer_fee,
        seller_fee,
        ..
    } = *op
    else {
        panic!("trade_row takes trades");
    };
    let collateral = venue.instruments()[instrument as usize].collateral;
    let clock = venue.clock();
    let oi_before = venue.open_interest(instrument);
    let expiry = venue.instruments()[instrument as usize].expiry_us;
    let before_acc = [
        venue.account(buyer),
        venue.account(seller),
        venue.account(0),
    ];
    let before_pos = [
        venue.position(instrument, buyer),
        venue.position(instrument, seller),
    ];
    venue.apply_batch(std::slice::from_ref(op))?;
    let after_acc = [
        venue.account(buyer),
        venue.account(seller),
        venue.account(0),
    ];
    let after_pos = [
        venue.position(instrument, buyer),
        venue.position(instrument, seller),
    ];
    let short = |p: i64| (-p).max(0).unsigned_abs();
    let released = short(before_pos[0]) - short(after_pos[0]);
    let added = short(after_pos[1]) - short(before_pos[1]);
    let mut row = TradeRow {
        index,
        instrument,
        buyer,
        seller,
        qty,
        price,
        fee_b: buyer_fee,
        fee_s: seller_fee,
        collateral,
        accounts: std::array::from_fn(|k| (before_acc[k], after_acc[k])),
        positions: std::array::from_fn(|k| (before_pos[k], after_pos[k])),
        notional: qty * price,
        released: (released, released * collateral),
        added: (added, added * collateral),
        t_prev: [0; 7],
        open_interest: (oi_before, venue.open_interest(instrument)),
        clock,
        timestamp: op.timestamp_us(),
        expiry,
    };
    for (k, a) in row.accesses().iter().enumerate() {
        row.t_prev[k] = last_access.swap(a.key, a.t);
    }
    Ok(row)
}
