//! The venue state and its commitment: a depth-32 sparse Poseidon2-M31 Merkle tree
//! (`specs/batch-air.md` §2).
//!
//! Why sparse and keyed by position rather than an indexed (sorted) tree: every key has a fixed
//! leaf, so a read or write needs no insertion or non-membership argument, and an untouched
//! leaf costs nothing (empty subtrees are the constants `Z_h`). A zero value hashes to the empty
//! leaf `Z_0`, so "never touched" and "back to zero" are the same state.

use std::collections::HashMap;

use crate::encoding::u64_limbs;
use crate::field::M31;
use crate::hash::poseidon2::{compress, hash_elements, Digest, Domain};

use super::{MAX_ACCOUNTS, MAX_INSTRUMENTS};

/// Levels between leaves and root.
pub const STATE_DEPTH: u32 = 32;
/// Limbs of every state leaf value.
pub const LEAF_LIMBS: usize = 8;

/// Which leaf: the top two bits of the 32-bit leaf index say the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StateKey {
    /// `(cash, locked)` of an account: index `account`.
    Account(u32),
    /// Signed position of an account in an instrument: index `2^30 | instrument·2^18 | account`.
    Position {
        /// Instrument index.
        instrument: u32,
        /// Account.
        account: u32,
    },
    /// Open interest (sum of long positions) of an instrument: index `2^31 | instrument`.
    OpenInterest(u32),
    /// Timestamp of the last operation applied, so that time never runs backwards across
    /// batches: index `3·2^30`.
    Clock,
}

impl StateKey {
    /// The leaf index.
    pub fn index(&self) -> u32 {
        match *self {
            Self::Account(a) => {
                debug_assert!(a < MAX_ACCOUNTS);
                a
            }
            Self::Position {
                instrument,
                account,
            } => {
                debug_assert!(instrument < MAX_INSTRUMENTS && account < MAX_ACCOUNTS);
                (1 << 30) | (instrument << 18) | account
            }
            Self::OpenInterest(i) => (1 << 31) | i,
            Self::Clock => 3 << 30,
        }
    }
}

/// An account's balances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountState {
    /// Free cash.
    pub cash: u64,
    /// Cash locked as collateral of short positions.
    pub locked: u64,
}

/// Leaf values. `cash ‖ locked` for accounts; `sign ‖ |qty| ‖ 0` for positions (sign 1 = short);
/// `oi ‖ 0` for open interest.
pub fn account_leaf(a: &AccountState) -> [M31; LEAF_LIMBS] {
    let mut out = [M31::from_u32_unchecked(0); LEAF_LIMBS];
    out[..4].copy_from_slice(&u64_limbs(a.cash));
    out[4..].copy_from_slice(&u64_limbs(a.locked));
    out
}

/// See [`account_leaf`].
pub fn position_leaf(qty: i64) -> [M31; LEAF_LIMBS] {
    let mut out = [M31::from_u32_unchecked(0); LEAF_LIMBS];
    out[0] = M31::from_u32_unchecked(u32::from(qty < 0));
    out[1..5].copy_from_slice(&u64_limbs(qty.unsigned_abs()));
    out
}

/// See [`account_leaf`].
pub fn open_interest_leaf(oi: u64) -> [M31; LEAF_LIMBS] {
    let mut out = [M31::from_u32_unchecked(0); LEAF_LIMBS];
    out[..4].copy_from_slice(&u64_limbs(oi));
    out
}

/// See [`account_leaf`]: `timestamp ‖ 0`.
pub fn clock_leaf(timestamp_us: u64) -> [M31; LEAF_LIMBS] {
    open_interest_leaf(timestamp_us)
}

/// The digest of a leaf value.
pub fn leaf_digest(value: &[M31; LEAF_LIMBS]) -> Digest {
    hash_elements(Domain::StateLeaf, value)
}

/// Sparse Merkle tree over 2^32 leaves; stores only nodes that differ from the empty ones.
#[derive(Debug, Clone)]
pub struct StateTree {
    /// `(height, index at that height) → digest` for non-empty nodes.
    nodes: HashMap<(u32, u32), Digest>,
    /// `Z_h`: the empty subtree of height h, `Z_0` = digest of the all-zero leaf.
    empty: Vec<Digest>,
}

impl Default for StateTree {
    fn default() -> Self {
        let mut empty = vec![leaf_digest(&[M31::from_u32_unchecked(0); LEAF_LIMBS])];
        for h in 0..STATE_DEPTH as usize {
            empty.push(compress(&empty[h], &empty[h]));
        }
        Self {
            nodes: HashMap::new(),
            empty,
        }
    }
}

impl StateTree {
    /// The digest of the node at `(height, index at that height)`.
    pub fn node(&self, height: u32, index: u32) -> Digest {
        *self
            .nodes
            .get(&(height, index))
            .unwrap_or(&self.empty[height as usize])
    }

    /// The root.
    pub fn root(&self) -> Digest {
        self.node(STATE_DEPTH, 0)
    }

    /// `Z_h` for `h = 0..=32`.
    pub fn empty_digests(&self) -> &[Digest] {
        &self.empty
    }

    /// Sets a leaf and rehashes its path (32 compressions).
    pub fn set(&mut self, key: StateKey, value: &[M31; LEAF_LIMBS]) {
        let mut index = key.index();
        let mut digest = leaf_digest(value);
        for height in 0..STATE_DEPTH {
            self.put(height, index, digest);
            let sibling = self.node(height, index ^ 1);
            digest = if index & 1 == 0 {
                compress(&digest, &sibling)
            } else {
                compress(&sibling, &digest)
            };
            index >>= 1;
        }
        self.put(STATE_DEPTH, 0, digest);
    }

    /// Sets one node's digest (the caller keeps the tree consistent: the AIR v4 witness
    /// installs a batch's post-state paths, every node of which it has just hashed).
    pub(crate) fn put(&mut self, height: u32, index: u32, digest: Digest) {
        if digest == self.empty[height as usize] {
            self.nodes.remove(&(height, index));
        } else {
            self.nodes.insert((height, index), digest);
        }
    }

    /// Siblings of a leaf from the bottom up: its inclusion proof.
    pub fn path(&self, key: StateKey) -> Vec<Digest> {
        let mut index = key.index();
        (0..STATE_DEPTH)
            .map(|h| {
                let s = self.node(h, index ^ 1);
                index >>= 1;
                s
            })
            .collect()
    }
}

/// Recomputes a root from a leaf value and its path.
pub fn root_from_path(key: StateKey, value: &[M31; LEAF_LIMBS], path: &[Digest]) -> Digest {
    let mut index = key.index();
    let mut digest = leaf_digest(value);
    for sibling in path {
        digest = if index & 1 == 0 {
            compress(&digest, sibling)
        } else {
            compress(sibling, &digest)
        };
        index >>= 1;
    }
    digest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_state_root_is_the_documented_value() {
        // specs/batch-air.md §2 and specs/api.md §3 publish it: a rollup's seq 1 starts here.
        assert_eq!(StateTree::default().root().to_hex(), EMPTY_ROOT_HEX);
    }

    const EMPTY_ROOT_HEX: &str = "70ed8c3f5f24f719105b9a5f85b3326d3aa57b047d412c672e32492f19844413";

    #[test]
    fn zero_values_are_the_empty_tree() {
        let mut t = StateTree::default();
        let empty_root = t.root();
        t.set(
            StateKey::Account(5),
            &account_leaf(&AccountState {
                cash: 10,
                locked: 0,
            }),
        );
        assert_ne!(t.root(), empty_root);
        t.set(
            StateKey::Account(5),
            &account_leaf(&AccountState::default()),
        );
        assert_eq!(t.root(), empty_root);
        assert!(
            t.nodes.is_empty(),
            "a zeroed leaf must not leave nodes behind"
        );
    }

    #[test]
    fn paths_verify_for_each_key_kind() {
        let mut t = StateTree::default();
        let keys = [
            StateKey::Account(3),
            StateKey::Position {
                instrument: 7,
                account: 3,
            },
            StateKey::OpenInterest(7),
        ];
        let values = [
            account_leaf(&AccountState { cash: 1, locked: 2 }),
            position_leaf(-40),
            open_interest_leaf(40),
        ];
        for (k, v) in keys.iter().zip(&values) {
            t.set(*k, v);
        }
        for (k, v) in keys.iter().zip(&values) {
            assert_eq!(root_from_path(*k, v, &t.path(*k)), t.root());
        }
        assert_ne!(
            root_from_path(keys[1], &position_leaf(40), &t.path(keys[1])),
            t.root(),
            "sign is bound"
        );
    }

    #[test]
    fn key_indices_are_disjoint() {
        let a = StateKey::Account(MAX_ACCOUNTS - 1).index();
        let p = StateKey::Position {
            instrument: 0,
            account: 0,
        }
        .index();
        let p_max = StateKey::Position {
            instrument: MAX_INSTRUMENTS - 1,
            account: MAX_ACCOUNTS - 1,
        }
        .index();
        let o = StateKey::OpenInterest(0).index();
        assert!(a < p && p_max < o);
    }
}
