//! The witness side of an operation row: its cells and LogUp entries, built gadget by gadget
//! in the order the component's evaluation adds them (`crate::validity::gadgets`).

use crate::field::M31;
use crate::validity::gadgets::{SUM_CARRIES, SUM_CARRY_OFFSET};
use crate::validity::memory::TIME_BITS;
use crate::validity::mul::MulWitness;
use crate::venue::state::LEAF_LIMBS;

fn c(v: u32) -> M31 {
    M31::from_u32_unchecked(v)
}

/// A LogUp entry of a row, in the order the component adds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Consumes `Range16(value)`.
    Range(M31),
    /// Consumes `State(key, value, t)`.
    Read(Vec<M31>),
    /// Yields `State(key, value, t)`.
    Write(Vec<M31>),
    /// Consumes `Op(index, record fields)`.
    Op(Vec<M31>),
    /// Consumes `Instrument(id, expiry[4], collateral[4])`.
    Instrument(Vec<M31>),
    /// Yields `StateNode(level, parent, side, flag, pre[8], post[8])`.
    NodeYield(Vec<M31>),
    /// Consumes `StateNode(…)`.
    NodeUse(Vec<M31>),
    /// Consumes `Poseidon2Io(input[16] ‖ output[16])` from the hash chip.
    Perm(Vec<M31>),
    /// Yields `Poseidon2Io(…)` once: a row of the hash chip.
    Chip(Vec<M31>),
    /// Consumes `SettleTerms(id, expiry[4], collateral[4], strike[4], is_put)`.
    SettleTerms(Vec<M31>),
    /// Yields `SettleChain(…)`.
    ChainYield(Vec<M31>),
    /// Consumes `SettleChain(…)`.
    ChainUse(Vec<M31>),
    /// A closure term yielded by the input component with multiplicity `mult` (AIR v3).
    Closure {
        /// Its relation.
        relation: crate::validity::closure::ClosureRelation,
        /// Its multiplicity (the negated sign).
        mult: M31,
        /// Its tuple.
        values: Vec<M31>,
    },
    /// Consumes `ClosureChain(index, state[16])`.
    ClosureChainUse(Vec<M31>),
    /// Yields `ClosureChain(index, state[16])`.
    ClosureChainYield(Vec<M31>),
    /// An entry whose multiplicity is zero in this row.
    Nothing,
}

/// One access of a row: leaf key, value before and after, time of the previous access and of
/// this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// The leaf.
    pub key: u32,
    /// Value read.
    pub old: [M31; LEAF_LIMBS],
    /// Value written.
    pub new: [M31; LEAF_LIMBS],
    /// Time of the key's previous access (0 for its initial value).
    pub t_prev: u32,
    /// This access's time.
    pub t: u32,
}

/// A row's cells and lookups, built gadget by gadget in the component's order.
#[derive(Debug, Clone, Default)]
pub struct RowWitness {
    /// Cells in column order.
    pub cells: Vec<M31>,
    /// LogUp entries in the order the component adds them.
    pub lookups: Vec<Lookup>,
}

impl RowWitness {
    pub(crate) fn push(&mut self, v: impl IntoIterator<Item = M31>) {
        self.cells.extend(v);
    }

    pub(crate) fn range(&mut self, v: M31) {
        self.lookups.push(Lookup::Range(v));
    }

    pub(crate) fn u63(&mut self, v: [M31; 4]) {
        for l in v {
            self.range(l);
        }
        self.range(v[3] * c(2));
    }

    pub(crate) fn access_cells(&mut self, a: &Access) {
        let d = c(a.t) - c(a.t_prev) - c(1);
        self.push([c(1), c(a.key & 0xffff), c(a.key >> 16)]);
        self.push(a.old);
        self.push(a.new);
        self.push([c(a.t_prev), c(a.t), c(d.0 & 0xffff), c(d.0 >> 16)]);
    }

    pub(crate) fn access_lookups(&mut self, a: &Access) {
        let entry = |v: &[M31; LEAF_LIMBS], t: u32| -> Vec<M31> {
            let mut out = vec![c(a.key & 0xffff), c(a.key >> 16)];
            out.extend(v);
            out.push(c(t));
            out
        };
        self.lookups.push(Lookup::Read(entry(&a.old, a.t_prev)));
        self.lookups.push(Lookup::Write(entry(&a.new, a.t)));
        let d = c(a.t) - c(a.t_prev) - c(1);
        self.range(c(d.0 & 0xffff));
        self.range(c(d.0 >> 16) * c(1 << (32 - TIME_BITS)));
    }

    pub(crate) fn mul(&mut self, w: &MulWitness) {
        self.push(w.cells().map(c));
        for v in w.range_lookups() {
            self.range(crate::field::m31_reduce(v));
        }
    }

    pub(crate) fn sum_eq(&mut self, lhs: &[[M31; 4]], rhs: &[[M31; 4]]) {
        // Carries solved over the field: true identities give small carries, false ones give
        // carries out of range or an unsatisfiable top limb.
        let inv = c(1 << 16).inverse();
        let mut carry = c(0);
        let mut carries = [c(0); SUM_CARRIES];
        for (i, slot) in carries.iter_mut().enumerate() {
            let mut acc = carry;
            for t in lhs {
                acc += t[i];
            }
            for t in rhs {
                acc -= t[i];
            }
            carry = acc * inv;
            *slot = carry;
        }
        self.push(carries);
        for k in carries {
            self.range((k + c(SUM_CARRY_OFFSET)) * c(1 << 12));
        }
    }
}

/// Per state key, the time of its last access: what an access's `t_prev` is. A key not yet
/// accessed counts from the open window's start: 0 under v2/v3 (one window), the batch's
/// init time under AIR v4 ([`LastAccess::open_window`] at each batch).
#[derive(Debug, Clone, Default)]
pub struct LastAccess {
    times: std::collections::BTreeMap<u32, u32>,
    floor: u32,
}

impl LastAccess {
    /// Records an access of `key` at `t` and returns the previous one's time.
    pub fn swap(&mut self, key: u32, t: u32) -> u32 {
        self.times.insert(key, t).unwrap_or(self.floor)
    }

    /// Starts a batch's window at `start`: every key's chain starts again from its init there.
    pub fn open_window(&mut self, start: u32) {
        self.times.clear();
        self.floor = start;
    }
}
