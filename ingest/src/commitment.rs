//! Rollups' native commitments over a batch, recomputed from the submitted operations
//! (`specs/commitments.md`).
//!
//! Every scheme is a binary Merkle tree over one leaf per operation, leaves padded with the
//! scheme's zero to a power of two, nodes `H(left, right)` without sorting. Leaves commit to the
//! operation's nine integer fields (`Operation::fields`) and the venue's trade id.

use std::fmt;
use std::sync::OnceLock;

use ff_ce::{PrimeField, PrimeFieldRepr};
use poe_circle_stark::venue::Operation;
use poseidon_rs::{Fr, FrRepr, Poseidon};
use rayon::prelude::*;
use sha3::{Digest as _, Keccak256};
use starknet_crypto::{pedersen_hash, poseidon_hash, poseidon_hash_many, Felt};

use crate::short_string::ShortString;

/// An operation as the rollup committed to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOp {
    /// The venue's own id of the trade (or transfer).
    pub trade_id: ShortString,
    /// The operation.
    pub op: Operation,
}

/// A native commitment scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// EVM-style: Keccak-256 leaves of packed bytes, Keccak-256 nodes.
    Keccak256,
    /// circom-style Poseidon over BN254 (circomlib constants).
    PoseidonBn254,
    /// Starknet Poseidon over felt252.
    PoseidonFelt252,
    /// Starknet Pedersen over felt252.
    PedersenFelt252,
}

impl Scheme {
    /// Every scheme.
    pub const ALL: [Scheme; 4] = [
        Self::Keccak256,
        Self::PoseidonBn254,
        Self::PoseidonFelt252,
        Self::PedersenFelt252,
    ];

    /// The name used in configuration and on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Self::Keccak256 => "keccak256",
            Self::PoseidonBn254 => "poseidon-bn254",
            Self::PoseidonFelt252 => "poseidon-felt252",
            Self::PedersenFelt252 => "pedersen-felt252",
        }
    }

    /// Parses [`Scheme::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A commitment value: 32 bytes, big-endian (field elements as integers).
pub type Commitment = [u8; 32];

/// The root of `ops` under `scheme`; `None` for an empty batch.
pub fn commit(scheme: Scheme, ops: &[CommittedOp]) -> Option<Commitment> {
    if ops.is_empty() {
        return None;
    }
    Some(match scheme {
        Scheme::Keccak256 => merkle(
            ops.par_iter().map(keccak_leaf).collect(),
            [0u8; 32],
            |l, r| {
                let mut h = Keccak256::new();
                h.update(l);
                h.update(r);
                h.finalize().into()
            },
        ),
        Scheme::PoseidonBn254 => {
            let leaves = ops.par_iter().map(bn254_leaf).collect();
            fr_to_bytes(&merkle(
                leaves,
                Fr::from_repr(FrRepr::from(0)).expect("zero"),
                |l, r| poseidon_bn254().hash(vec![*l, *r]).expect("two inputs"),
            ))
        }
        Scheme::PoseidonFelt252 => {
            let leaves = ops
                .par_iter()
                .map(|o| poseidon_hash_many(&felts(o)))
                .collect();
            merkle(leaves, Felt::ZERO, |l, r| poseidon_hash(*l, *r)).to_bytes_be()
        }
        Scheme::PedersenFelt252 => {
            let leaves = ops
                .iter()
                .map(|o| pedersen_on_elements(&felts(o)))
                .collect();
            merkle(leaves, Felt::ZERO, pedersen_hash).to_bytes_be()
        }
    })
}

/// Leaves and each level are hashed in parallel: a 100k-operation batch under the slower
/// schemes is hundreds of thousands of hashes.
fn merkle<T: Clone + Send + Sync>(
    mut level: Vec<T>,
    zero: T,
    node: impl Fn(&T, &T) -> T + Sync,
) -> T {
    level.resize(level.len().next_power_of_two(), zero);
    while level.len() > 1 {
        level = level.par_chunks(2).map(|p| node(&p[0], &p[1])).collect();
    }
    level.remove(0)
}

/// `abi.encodePacked(uint8 kind, uint32 a, uint32 b, uint32 instrument, uint64 x, uint64 y,
/// uint64 f1, uint64 f2, uint64 ts, bytes32 tradeId)`: 85 bytes.
pub fn keccak_leaf_bytes(o: &CommittedOp) -> Vec<u8> {
    let f = o.op.fields();
    let mut out = Vec::with_capacity(85);
    out.push(f[0] as u8);
    for &v in &f[1..4] {
        out.extend_from_slice(&(v as u32).to_be_bytes());
    }
    for &v in &f[4..] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&o.trade_id.to_bytes32_left());
    out
}

fn keccak_leaf(o: &CommittedOp) -> [u8; 32] {
    Keccak256::digest(keccak_leaf_bytes(o)).into()
}

fn felts(o: &CommittedOp) -> Vec<Felt> {
    let mut out: Vec<Felt> = o.op.fields().iter().map(|&v| Felt::from(v)).collect();
    out.push(Felt::from_bytes_be(&o.trade_id.to_be_bytes32()));
    out
}

/// Starknet's `compute_hash_on_elements`: a Pedersen chain from 0, closed with the length.
fn pedersen_on_elements(elements: &[Felt]) -> Felt {
    let h = elements
        .iter()
        .fold(Felt::ZERO, |acc, e| pedersen_hash(&acc, e));
    pedersen_hash(&h, &Felt::from(elements.len() as u64))
}

fn poseidon_bn254() -> &'static Poseidon {
    static P: OnceLock<Poseidon> = OnceLock::new();
    P.get_or_init(Poseidon::new)
}

fn fr_from_be_bytes(bytes: &[u8; 32]) -> Fr {
    let mut repr = FrRepr::default();
    repr.read_be(&bytes[..]).expect("32 bytes");
    Fr::from_repr(repr).expect("short strings and u64 are below the BN254 modulus")
}

fn fr_to_bytes(x: &Fr) -> [u8; 32] {
    let mut out = Vec::with_capacity(32);
    x.into_repr().write_be(&mut out).expect("32 bytes");
    out.try_into().expect("32 bytes")
}

fn bn254_leaf(o: &CommittedOp) -> Fr {
    let mut inputs: Vec<Fr> =
        o.op.fields()
            .iter()
            .map(|&v| Fr::from_repr(FrRepr::from(v)).expect("u64 < r"))
            .collect();
    inputs.push(fr_from_be_bytes(&o.trade_id.to_be_bytes32()));
    poseidon_bn254().hash(inputs).expect("ten inputs")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops() -> Vec<CommittedOp> {
        vec![
            CommittedOp {
                trade_id: ShortString::try_from("D-1").unwrap(),
                op: Operation::Deposit {
                    account: 7,
                    amount: 1_000_000,
                    timestamp_us: 1_795_000_000_000_000,
                },
            },
            CommittedOp {
                trade_id: ShortString::try_from("BTC-T-42").unwrap(),
                op: Operation::Trade {
                    buyer: 7,
                    seller: 9,
                    instrument: 2,
                    qty: 10_000,
                    price: 1_234,
                    buyer_fee: 5,
                    seller_fee: 6,
                    timestamp_us: 1_795_000_000_000_001,
                },
            },
            CommittedOp {
                trade_id: ShortString::try_from("W-3").unwrap(),
                op: Operation::Withdraw {
                    account: 9,
                    amount: 10,
                    timestamp_us: 1_795_000_000_000_002,
                },
            },
        ]
    }

    #[test]
    fn every_scheme_binds_every_operation() {
        for scheme in Scheme::ALL {
            let root = commit(scheme, &ops()).unwrap();
            let mut changed = ops();
            changed[1].op = Operation::Trade {
                buyer: 7,
                seller: 9,
                instrument: 2,
                qty: 10_000,
                price: 1_235,
                buyer_fee: 5,
                seller_fee: 6,
                timestamp_us: 1_795_000_000_000_001,
            };
            assert_ne!(
                commit(scheme, &changed).unwrap(),
                root,
                "{scheme}: price change"
            );
            let mut renamed = ops();
            renamed[0].trade_id = ShortString::try_from("D-2").unwrap();
            assert_ne!(
                commit(scheme, &renamed).unwrap(),
                root,
                "{scheme}: trade id"
            );
            let mut swapped = ops();
            swapped.swap(0, 2);
            assert_ne!(commit(scheme, &swapped).unwrap(), root, "{scheme}: order");
        }
        assert_eq!(commit(Scheme::Keccak256, &[]), None);
    }

    #[test]
    fn keccak_leaf_is_85_packed_bytes() {
        let bytes = keccak_leaf_bytes(&ops()[1]);
        assert_eq!(bytes.len(), 85);
        assert_eq!(bytes[0], 4);
        assert_eq!(&bytes[53..61], b"BTC-T-42");
    }

    #[test]
    fn scheme_names_round_trip() {
        for s in Scheme::ALL {
            assert_eq!(Scheme::from_name(s.name()), Some(s));
        }
        assert_eq!(Scheme::from_name("sha256"), None);
    }
}
