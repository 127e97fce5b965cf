//! Instruments and operations, and their canonical limb encodings (`specs/encoding.md` §3).

use crate::encoding::{read_u32, read_u64, u32_limbs, u64_limbs, EncodingError};
use crate::field::M31;
use crate::hash::merkle::MerkleTree;
use crate::hash::poseidon2::{hash_elements, Digest, Domain};

/// Call or put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OptionKind {
    /// Pays `max(0, S − K)`, capped at the collateral.
    Call = 0,
    /// Pays `max(0, K − S)`; its collateral is its strike.
    Put = 1,
}

/// A listed option. Prices are per lot (10^-4 contract), in 10^-6 quote units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instrument {
    /// Venue's code of the underlying (e.g. 1 = BTC, 2 = ETH).
    pub underlying: u32,
    /// Expiry, µs since the Unix epoch.
    pub expiry_us: u64,
    /// Strike per lot.
    pub strike: u64,
    /// Call or put.
    pub kind: OptionKind,
    /// Collateral locked per short lot; for a put it must equal the strike.
    pub collateral: u64,
}

impl Instrument {
    /// Limbs in an instrument leaf.
    pub const LIMBS: usize = 16;

    /// `underlying(2) ‖ expiry(4) ‖ strike(4) ‖ kind(1) ‖ collateral(4) ‖ 0`.
    pub fn encode(&self) -> Vec<M31> {
        let mut out = Vec::with_capacity(Self::LIMBS);
        out.extend(u32_limbs(self.underlying));
        out.extend(u64_limbs(self.expiry_us));
        out.extend(u64_limbs(self.strike));
        out.push(M31::from_u32_unchecked(self.kind as u32));
        out.extend(u64_limbs(self.collateral));
        out.push(M31::from_u32_unchecked(0));
        out
    }

    /// Inverse of [`Instrument::encode`], canonical only: 16 limbs, every limb in range, the
    /// kind 0 or 1, the last limb 0.
    ///
    /// # Errors
    /// [`EncodingError`] naming the offending limb.
    pub fn decode(limbs: &[M31]) -> Result<Self, EncodingError> {
        if limbs.len() != Self::LIMBS {
            return Err(EncodingError::Length {
                kind: 0,
                expected: Self::LIMBS,
                got: limbs.len(),
            });
        }
        let kind = match crate::encoding::check_limb(limbs, 10, 1)? {
            0 => OptionKind::Call,
            _ => OptionKind::Put,
        };
        crate::encoding::check_limb(limbs, 15, 0)?;
        Ok(Self {
            underlying: read_u32(limbs, 0)?,
            expiry_us: read_u64(limbs, 2)?,
            strike: read_u64(limbs, 6)?,
            kind,
            collateral: read_u64(limbs, 11)?,
        })
    }

    /// The per-lot payoff at settlement price `price`: intrinsic value capped at the collateral.
    pub fn payoff(&self, price: u64) -> u64 {
        let intrinsic = match self.kind {
            OptionKind::Call => price.saturating_sub(self.strike),
            OptionKind::Put => self.strike.saturating_sub(price),
        };
        intrinsic.min(self.collateral)
    }
}

/// The Merkle root over the instrument list (leaf i = instrument i).
pub fn instruments_root(instruments: &[Instrument]) -> Digest {
    if instruments.is_empty() {
        return Digest::ZERO;
    }
    let leaves = instruments
        .iter()
        .map(|i| hash_elements(Domain::Instrument, &i.encode()))
        .collect();
    MerkleTree::new(leaves).root()
}

/// One operation of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Cash enters an account.
    Deposit {
        /// Account.
        account: u32,
        /// Amount.
        amount: u64,
        /// µs since the epoch.
        timestamp_us: u64,
    },
    /// Cash leaves an account; at most its free cash.
    Withdraw {
        /// Account.
        account: u32,
        /// Amount.
        amount: u64,
        /// µs since the epoch.
        timestamp_us: u64,
    },
    /// `qty` lots of `instrument` change hands at `price` per lot.
    Trade {
        /// Receives the position (long).
        buyer: u32,
        /// Gives the position (short).
        seller: u32,
        /// Instrument index.
        instrument: u32,
        /// Lots, > 0.
        qty: u64,
        /// Cash per lot.
        price: u64,
        /// Fee the buyer pays.
        buyer_fee: u64,
        /// Fee the seller pays.
        seller_fee: u64,
        /// µs since the epoch, before expiry.
        timestamp_us: u64,
    },
    /// Cash settlement of an expired instrument at `price`; every position closes.
    Settle {
        /// Instrument index.
        instrument: u32,
        /// Settlement price per lot.
        price: u64,
        /// µs since the epoch, at or after expiry.
        timestamp_us: u64,
    },
}

/// Operation records are 32 limbs: kind tag first, then fields, zero-padded.
pub const OP_LIMBS: usize = 32;

/// Kind tags (limb 0). Kind 1 is `encoding::CashMovement`.
pub mod kind {
    /// [`super::Operation::Deposit`].
    pub const DEPOSIT: u32 = 2;
    /// [`super::Operation::Withdraw`].
    pub const WITHDRAW: u32 = 3;
    /// [`super::Operation::Trade`].
    pub const TRADE: u32 = 4;
    /// [`super::Operation::Settle`].
    pub const SETTLE: u32 = 5;
}

impl Operation {
    /// The operation's timestamp.
    pub fn timestamp_us(&self) -> u64 {
        match *self {
            Self::Deposit { timestamp_us, .. }
            | Self::Withdraw { timestamp_us, .. }
            | Self::Trade { timestamp_us, .. }
            | Self::Settle { timestamp_us, .. } => timestamp_us,
        }
    }

    /// The operation as nine integers, in record order:
    /// `kind, a, b, instrument, x, y, f1, f2, ts` (`specs/batch-air.md` §3). Native commitments
    /// and the limb encoding both start from this.
    pub fn fields(&self) -> [u64; 9] {
        let (k, a, b, inst, x, y, f1, f2, ts) = match *self {
            Self::Deposit {
                account,
                amount,
                timestamp_us,
            } => (kind::DEPOSIT, account, 0, 0, amount, 0, 0, 0, timestamp_us),
            Self::Withdraw {
                account,
                amount,
                timestamp_us,
            } => (kind::WITHDRAW, account, 0, 0, amount, 0, 0, 0, timestamp_us),
            Self::Trade {
                buyer,
                seller,
                instrument,
                qty,
                price,
                buyer_fee,
                seller_fee,
                timestamp_us,
            } => (
                kind::TRADE,
                buyer,
                seller,
                instrument,
                qty,
                price,
                buyer_fee,
                seller_fee,
                timestamp_us,
            ),
            Self::Settle {
                instrument,
                price,
                timestamp_us,
            } => (kind::SETTLE, 0, 0, instrument, 0, price, 0, 0, timestamp_us),
        };
        [
            u64::from(k),
            u64::from(a),
            u64::from(b),
            u64::from(inst),
            x,
            y,
            f1,
            f2,
            ts,
        ]
    }

    /// Canonical limbs (`specs/encoding.md` §3): one layout for all kinds,
    /// `kind ‖ a(2) ‖ b(2) ‖ instrument(2) ‖ x(4) ‖ y(4) ‖ f1(4) ‖ f2(4) ‖ ts(4) ‖ 0…`.
    pub fn encode(&self) -> Vec<M31> {
        let f = self.fields();
        let mut out = Vec::with_capacity(OP_LIMBS);
        out.push(M31::from_u32_unchecked(f[0] as u32));
        for &v in &f[1..4] {
            out.extend(u32_limbs(v as u32));
        }
        for &v in &f[4..] {
            out.extend(u64_limbs(v));
        }
        out.resize(OP_LIMBS, M31::from_u32_unchecked(0));
        out
    }

    /// Inverse of [`Operation::fields`], through the canonical limbs.
    ///
    /// # Errors
    /// [`EncodingError::FieldRange`] for an account or instrument field above `u32`, else as
    /// [`Operation::decode`].
    pub fn from_fields(f: [u64; 9]) -> Result<Self, EncodingError> {
        let mut limbs = Vec::with_capacity(OP_LIMBS);
        for (i, &v) in f[..4].iter().enumerate() {
            let max = if i == 0 { 0xffff } else { u64::from(u32::MAX) };
            if v > max {
                return Err(EncodingError::FieldRange {
                    field: i,
                    value: v,
                    max,
                });
            }
            if i == 0 {
                limbs.push(M31::from_u32_unchecked(v as u32));
            } else {
                limbs.extend(u32_limbs(v as u32));
            }
        }
        for &v in &f[4..] {
            limbs.extend(u64_limbs(v));
        }
        limbs.resize(OP_LIMBS, M31::from_u32_unchecked(0));
        Self::decode(&limbs)
    }

    /// Inverse of [`Operation::encode`]; fields a kind does not use must be zero.
    ///
    /// # Errors
    /// [`EncodingError`] for a wrong length, unknown kind, limb out of range or a non-zero
    /// unused field.
    pub fn decode(limbs: &[M31]) -> Result<Self, EncodingError> {
        if limbs.len() != OP_LIMBS {
            return Err(EncodingError::Length {
                kind: limbs.first().map_or(0, |l| l.0),
                expected: OP_LIMBS,
                got: limbs.len(),
            });
        }
        let (a, b, inst) = (
            read_u32(limbs, 1)?,
            read_u32(limbs, 3)?,
            read_u32(limbs, 5)?,
        );
        let [x, y, f1, f2, ts] = [7, 11, 15, 19, 23].map(|at| read_u64(limbs, at));
        let (x, y, f1, f2, timestamp_us) = (x?, y?, f1?, f2?, ts?);
        let op = match limbs[0].0 {
            kind::DEPOSIT => Self::Deposit {
                account: a,
                amount: x,
                timestamp_us,
            },
            kind::WITHDRAW => Self::Withdraw {
                account: a,
                amount: x,
                timestamp_us,
            },
            kind::TRADE => Self::Trade {
                buyer: a,
                seller: b,
                instrument: inst,
                qty: x,
                price: y,
                buyer_fee: f1,
                seller_fee: f2,
                timestamp_us,
            },
            kind::SETTLE => Self::Settle {
                instrument: inst,
                price: y,
                timestamp_us,
            },
            got => {
                return Err(EncodingError::Kind {
                    expected: kind::TRADE,
                    got,
                })
            }
        };
        // One encoding per operation: re-encoding must give the same limbs.
        if let Some(index) = op.encode().iter().zip(limbs).position(|(e, l)| e != l) {
            return Err(EncodingError::LimbRange {
                index,
                value: limbs[index].0,
                max: 0,
            });
        }
        Ok(op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trade() -> Operation {
        Operation::Trade {
            buyer: 7,
            seller: 9,
            instrument: 3,
            qty: 12_500,
            price: 1_234_567,
            buyer_fee: 10,
            seller_fee: 11,
            timestamp_us: 1_795_000_000_000_123,
        }
    }

    #[test]
    fn operations_round_trip() {
        for op in [
            trade(),
            Operation::Deposit {
                account: 1,
                amount: u64::MAX >> 1,
                timestamp_us: 5,
            },
            Operation::Withdraw {
                account: 2,
                amount: 3,
                timestamp_us: 6,
            },
            Operation::Settle {
                instrument: 4095,
                price: 99,
                timestamp_us: 7,
            },
        ] {
            let limbs = op.encode();
            assert_eq!(limbs.len(), OP_LIMBS);
            assert_eq!(Operation::decode(&limbs), Ok(op));
        }
    }

    #[test]
    fn unused_field_must_be_zero() {
        let mut limbs = Operation::Deposit {
            account: 1,
            amount: 2,
            timestamp_us: 3,
        }
        .encode();
        limbs[3] = M31::from_u32_unchecked(1); // seller slot of a deposit
        assert!(matches!(
            Operation::decode(&limbs),
            Err(EncodingError::LimbRange { index: 3, .. })
        ));
        let mut limbs = trade().encode();
        limbs[31] = M31::from_u32_unchecked(1); // padding
        assert!(matches!(
            Operation::decode(&limbs),
            Err(EncodingError::LimbRange { index: 31, .. })
        ));
    }

    #[test]
    fn payoff_is_capped_intrinsic() {
        let call = Instrument {
            underlying: 1,
            expiry_us: 10,
            strike: 100,
            kind: OptionKind::Call,
            collateral: 50,
        };
        assert_eq!(call.payoff(90), 0);
        assert_eq!(call.payoff(130), 30);
        assert_eq!(call.payoff(400), 50);
        let put = Instrument {
            kind: OptionKind::Put,
            collateral: 100,
            ..call
        };
        assert_eq!(put.payoff(130), 0);
        assert_eq!(put.payoff(60), 40);
        assert_eq!(put.payoff(0), 100);
    }
}
