//! The witness side (feature `prover`).

use super::*;
use crate::field::M31;

/// A deposit or withdrawal row as plain values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CashRow {
    /// Operation index in the batch.
    pub index: u32,
    /// Account.
    pub account: u32,
    /// Withdrawal (else deposit).
    pub withdraw: bool,
    /// Amount.
    pub amount: u64,
    /// The account before and after.
    pub before: crate::venue::AccountState,
    /// See `before`.
    pub after: crate::venue::AccountState,
    /// Time of the account leaf's previous access.
    pub t_prev: u32,
    /// The operation's timestamp.
    pub timestamp: u64,
    /// The clock before the operation.
    pub clock: u64,
    /// Time of the clock leaf's previous access.
    pub clock_t_prev: u32,
}

impl CashRow {
    /// The leaf access of the row (at time `16·index + 1`).
    pub fn access(&self) -> crate::validity::row::Access {
        use crate::venue::state::{account_leaf, StateKey};
        crate::validity::row::Access {
            key: StateKey::Account(self.account).index(),
            old: account_leaf(&self.before),
            new: account_leaf(&self.after),
            t_prev: self.t_prev,
            t: self.index * crate::validity::gadgets::SLOTS_PER_OP + 1,
        }
    }

    /// The clock leaf's access (at time `16·index + 2`).
    pub fn clock_access(&self) -> crate::validity::row::Access {
        use crate::venue::state::{clock_leaf, StateKey};
        crate::validity::row::Access {
            key: StateKey::Clock.index(),
            old: clock_leaf(self.clock),
            new: clock_leaf(self.timestamp),
            t_prev: self.clock_t_prev,
            t: self.index * crate::validity::gadgets::SLOTS_PER_OP + 2,
        }
    }

    /// Cells and lookups in the order [`CashEval`] (with `ops`) reads and adds them.
    pub fn witness(&self) -> crate::validity::row::RowWitness {
        use crate::encoding::u64_limbs;
        use crate::validity::row::{Lookup, RowWitness};
        let m = M31::from_u32_unchecked;
        let mut w = RowWitness::default();
        // The addend `amount` is added to: `old` for a deposit, `new` for a withdrawal.
        let a = if self.withdraw {
            self.after.cash
        } else {
            self.before.cash
        };
        let mut carries = [m(0); 3];
        let mut carry = 0u64;
        for (i, slot) in carries.iter_mut().enumerate() {
            let s = ((a >> (16 * i)) & 0xffff) + ((self.amount >> (16 * i)) & 0xffff) + carry;
            carry = s >> 16;
            *slot = m(carry as u32);
        }
        w.push([m(u32::from(self.withdraw))]);
        w.push(u64_limbs(self.amount));
        w.push(carries);
        let access = self.access();
        w.access_cells(&access);
        w.u63(u64_limbs(self.amount));
        w.u63(u64_limbs(self.after.cash));
        w.access_lookups(&access);
        let ts = u64_limbs(self.timestamp);
        w.push([m(self.index)]);
        w.push(ts);
        let mut op = vec![
            m(self.index),
            m(2 + u32::from(self.withdraw)),
            m(self.account & 0xffff),
            m(self.account >> 16),
        ];
        op.extend([m(0); 4]);
        op.extend(u64_limbs(self.amount));
        op.extend([m(0); 12]);
        op.extend(ts);
        w.lookups.push(Lookup::Op(op));
        let clock = self.clock_access();
        let d = self.timestamp.wrapping_sub(self.clock);
        w.access_cells(&clock);
        w.push(u64_limbs(d));
        w.u63(ts);
        w.u63(u64_limbs(d));
        w.sum_eq(&[u64_limbs(self.clock), u64_limbs(d)], &[ts]);
        w.access_lookups(&clock);
        debug_assert_eq!(w.cells.len(), CASH_COLUMNS + CASH_BOUND_COLUMNS);
        debug_assert_eq!(w.lookups.len(), CASH_LOOKUPS);
        w
    }
}
