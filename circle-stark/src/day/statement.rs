//! Batch statements and the day statement (`specs/day-proof.md`).
//!
//! A batch statement is what a batch proof shows (its public input, `specs/batch-air.md` §1).
//! The day tree is the Poseidon2-M31 Merkle tree over a day's batch statements in canonical
//! order, and the day statement — the public input of the daily root proof — is derived from
//! those statements alone plus the manifest hash, so an auditor recomputes it from the archive
//! instead of reading it from the operator.

use crate::encoding::{
    check_header, read_u32, read_u64, u32_limbs, u64_limbs, EncodingError, Record,
};
pub use crate::error::DayError;
use crate::field::M31;
use crate::hash::merkle::data_root;
use crate::hash::poseidon2::{Digest, DIGEST_LEN};
use crate::venue::{instruments_root, Instrument, Operation, OP_LIMBS};

/// What one batch proof states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchStatement {
    /// The rollup's numeric id in the registry.
    pub rollup_id: u32,
    /// The batch's sequence number within its rollup.
    pub seq: u64,
    /// Venue state root before the batch.
    pub pre_state_root: Digest,
    /// Venue state root after the batch.
    pub post_state_root: Digest,
    /// Data root of the batch's operation records.
    pub data_root: Digest,
    /// Root of the rollup's instrument table.
    pub instruments_root: Digest,
    /// Number of operations.
    pub n_ops: u32,
}

impl BatchStatement {
    /// The statement of a batch: its operations (their records' data root and count) and its
    /// rollup's instrument table (its root), between two state roots. The one constructor
    /// the pipeline, the day close and the benchmarks share.
    pub fn of_batch(
        rollup_id: u32,
        seq: u64,
        pre_state_root: Digest,
        post_state_root: Digest,
        ops: impl IntoIterator<Item = Operation>,
        instruments: &[Instrument],
    ) -> Self {
        let mut records = Vec::new();
        let mut n_ops = 0u32;
        for op in ops {
            records.extend(op.encode());
            n_ops += 1;
        }
        Self {
            rollup_id,
            seq,
            pre_state_root,
            post_state_root,
            data_root: data_root(&records, OP_LIMBS),
            instruments_root: instruments_root(instruments),
            n_ops,
        }
    }
}

fn digest_at(limbs: &[M31], at: usize) -> Digest {
    Digest(std::array::from_fn(|i| limbs[at + i]))
}

impl Record for BatchStatement {
    const KIND: u32 = 6;
    // kind, rollup (2), seq (4), four digests (32), n_ops (2).
    const LIMBS: usize = 41;

    fn encode(&self) -> Vec<M31> {
        let mut out = Vec::with_capacity(Self::LIMBS);
        out.push(M31::from_u32_unchecked(Self::KIND));
        out.extend(u32_limbs(self.rollup_id));
        out.extend(u64_limbs(self.seq));
        // Digests are already canonical field elements: absorbing them whole keeps the record
        // at six permutations instead of ten, and the encoding stays injective.
        for d in [
            &self.pre_state_root,
            &self.post_state_root,
            &self.data_root,
            &self.instruments_root,
        ] {
            out.extend(d.0);
        }
        out.extend(u32_limbs(self.n_ops));
        out
    }

    fn decode(limbs: &[M31]) -> Result<Self, EncodingError> {
        check_header::<Self>(limbs)?;
        Ok(Self {
            rollup_id: read_u32(limbs, 1)?,
            seq: read_u64(limbs, 3)?,
            pre_state_root: digest_at(limbs, 7),
            post_state_root: digest_at(limbs, 7 + DIGEST_LEN),
            data_root: digest_at(limbs, 7 + 2 * DIGEST_LEN),
            instruments_root: digest_at(limbs, 7 + 3 * DIGEST_LEN),
            n_ops: read_u32(limbs, 7 + 4 * DIGEST_LEN)?,
        })
    }
}

/// One rollup's part of a day: its first and last batch and the state roots they chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollupSpan {
    /// Registry id.
    pub rollup_id: u32,
    /// Sequence number of the day's first batch of this rollup.
    pub first_seq: u64,
    /// Sequence number of its last batch (`first_seq + n_batches − 1`).
    pub last_seq: u64,
    /// State root before the first batch.
    pub first_pre_state_root: Digest,
    /// State root after the last batch.
    pub last_post_state_root: Digest,
}

/// The public input of the daily root proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayStatement {
    /// Days since 1970-01-01 (UTC).
    pub day: u32,
    /// Merkle root over the day's batch statements, in canonical order.
    pub day_root: Digest,
    /// Number of batches (leaves of the day tree).
    pub n_batches: u32,
    /// Operations across all batches.
    pub n_ops: u64,
    /// SHA3-256 of the bundle's `manifest.json` (`specs/archive.md` §3).
    pub manifest_hash: [u8; 32],
    /// One span per rollup that submitted that day, by ascending id.
    pub rollups: Vec<RollupSpan>,
}

/// Why public inputs are not a day statement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("day statement public inputs: {0}")]
pub struct DayInputsError(pub String);

impl DayStatement {
    /// Derives the day statement from a day's batch statements (canonical order: by rollup
    /// id, then seq; each rollup's batches consecutive and chained) and the manifest hash.
    ///
    /// # Errors
    /// [`DayError`] for an empty, unordered, gapped or broken list.
    pub fn derive(
        day: u32,
        statements: &[BatchStatement],
        manifest_hash: [u8; 32],
    ) -> Result<Self, DayError> {
        let Some(first) = statements.first() else {
            return Err(DayError::Empty);
        };
        let max_batches = crate::data_root::MAX_RECORDS as u64;
        if statements.len() as u64 > max_batches {
            return Err(DayError::TooLarge {
                what: "batches",
                max: max_batches,
                got: statements.len() as u64,
            });
        }
        let mut rollups: Vec<RollupSpan> = Vec::new();
        let mut n_ops = 0u64;
        let mut prev = first;
        for (index, s) in statements.iter().enumerate() {
            n_ops += u64::from(s.n_ops);
            if index == 0 || s.rollup_id != prev.rollup_id {
                if index > 0 && s.rollup_id < prev.rollup_id {
                    return Err(DayError::Order {
                        index,
                        rollup_id: s.rollup_id,
                        seq: s.seq,
                    });
                }
                rollups.push(RollupSpan {
                    rollup_id: s.rollup_id,
                    first_seq: s.seq,
                    last_seq: s.seq,
                    first_pre_state_root: s.pre_state_root,
                    last_post_state_root: s.post_state_root,
                });
            } else {
                if s.seq <= prev.seq {
                    return Err(DayError::Order {
                        index,
                        rollup_id: s.rollup_id,
                        seq: s.seq,
                    });
                }
                if s.seq != prev.seq + 1 {
                    return Err(DayError::SeqGap {
                        rollup_id: s.rollup_id,
                        expected: prev.seq + 1,
                        got: s.seq,
                    });
                }
                if s.pre_state_root != prev.post_state_root {
                    return Err(DayError::BrokenChain {
                        rollup_id: s.rollup_id,
                        seq: s.seq,
                        expected: prev.post_state_root.to_hex(),
                        got: s.pre_state_root.to_hex(),
                    });
                }
                let span = rollups.last_mut().expect("pushed above");
                span.last_seq = s.seq;
                span.last_post_state_root = s.post_state_root;
            }
            prev = s;
        }
        Ok(Self {
            day,
            day_root: day_root(statements),
            n_batches: statements.len() as u32,
            n_ops,
            manifest_hash,
            rollups,
        })
    }

    /// The inputs bound after the data-root part `n_batches, 41, day_root`:
    /// `day (2), n_ops (4), manifest_hash (16), n_rollups (2)`, then per rollup
    /// `id (2), first_seq (4), last_seq (4), first_pre (8), last_post (8)`.
    pub fn bound_inputs(&self) -> Vec<M31> {
        let mut out = Vec::with_capacity(24 + 26 * self.rollups.len());
        out.extend(u32_limbs(self.day));
        out.extend(u64_limbs(self.n_ops));
        out.extend(
            self.manifest_hash
                .chunks(2)
                .map(|c| M31::from_u32_unchecked(u32::from(u16::from_le_bytes([c[0], c[1]])))),
        );
        out.extend(u32_limbs(self.rollups.len() as u32));
        for r in &self.rollups {
            out.extend(u32_limbs(r.rollup_id));
            out.extend(u64_limbs(r.first_seq));
            out.extend(u64_limbs(r.last_seq));
            out.extend(r.first_pre_state_root.0);
            out.extend(r.last_post_state_root.0);
        }
        out
    }

    /// `hash_elements(DayStatement, public inputs)`: what a recursive root binds
    /// (`specs/day-proof.md` §6).
    pub fn digest(&self) -> crate::hash::poseidon2::Digest {
        crate::hash::poseidon2::hash_elements(
            crate::hash::poseidon2::Domain::DayStatement,
            &self.to_public_inputs(),
        )
    }

    /// The full public inputs of a day proof.
    pub fn to_public_inputs(&self) -> Vec<M31> {
        let mut out = self.data_root_statement().to_public_inputs();
        out.extend(self.bound_inputs());
        out
    }

    /// The data-root part: the day tree's size, leaf length and root.
    pub fn data_root_statement(&self) -> crate::data_root::DataRootStatement {
        crate::data_root::DataRootStatement {
            n_records: self.n_batches,
            record_limbs: BatchStatement::LIMBS as u32,
            root: self.day_root,
        }
    }

    /// Inverse of [`DayStatement::to_public_inputs`].
    ///
    /// # Errors
    /// [`DayInputsError`] for a wrong length or a limb out of range.
    pub fn from_public_inputs(inputs: &[M31]) -> Result<Self, DayInputsError> {
        let e = |m: String| DayInputsError(m);
        let head = 2 + DIGEST_LEN + 24;
        if inputs.len() < head {
            return Err(e(format!(
                "{} inputs, at least {head} needed",
                inputs.len()
            )));
        }
        let inner =
            crate::data_root::DataRootStatement::from_public_inputs(&inputs[..2 + DIGEST_LEN])
                .ok_or_else(|| e("data-root part".into()))?;
        if inner.record_limbs as usize != BatchStatement::LIMBS {
            return Err(e(format!(
                "record length {} is not a batch statement's {}",
                inner.record_limbs,
                BatchStatement::LIMBS
            )));
        }
        let b = &inputs[2 + DIGEST_LEN..];
        let r = |x: Result<u64, EncodingError>| x.map_err(|x| e(x.to_string()));
        let day = r(read_u32(b, 0).map(u64::from))? as u32;
        let n_ops = r(read_u64(b, 2))?;
        let mut manifest_hash = [0u8; 32];
        for (i, pair) in manifest_hash.chunks_mut(2).enumerate() {
            let v = crate::encoding::check_limb(b, 6 + i, 0xffff).map_err(|x| e(x.to_string()))?;
            pair.copy_from_slice(&(v as u16).to_le_bytes());
        }
        let n_rollups = r(read_u32(b, 22).map(u64::from))? as usize;
        let rest = &b[24..];
        if rest.len() != n_rollups * 26 {
            return Err(e(format!(
                "{n_rollups} rollups need {} inputs, got {}",
                n_rollups * 26,
                rest.len()
            )));
        }
        let rollups = rest
            .chunks(26)
            .map(|c| {
                Ok(RollupSpan {
                    rollup_id: r(read_u32(c, 0).map(u64::from))? as u32,
                    first_seq: r(read_u64(c, 2))?,
                    last_seq: r(read_u64(c, 6))?,
                    first_pre_state_root: digest_at(c, 10),
                    last_post_state_root: digest_at(c, 18),
                })
            })
            .collect::<Result<Vec<_>, DayInputsError>>()?;
        Ok(Self {
            day,
            day_root: inner.root,
            n_batches: inner.n_records,
            n_ops,
            manifest_hash,
            rollups,
        })
    }

    /// The first field in which `other` differs from `self`, for error messages.
    pub fn first_difference(&self, other: &Self) -> Option<&'static str> {
        if self.day != other.day {
            Some("day")
        } else if self.day_root != other.day_root {
            Some("day_root")
        } else if self.n_batches != other.n_batches {
            Some("n_batches")
        } else if self.n_ops != other.n_ops {
            Some("n_ops")
        } else if self.manifest_hash != other.manifest_hash {
            Some("manifest_hash")
        } else if self.rollups != other.rollups {
            Some("rollups")
        } else {
            None
        }
    }
}

/// The day root: Merkle root over the statements' encodings, in the order given.
pub fn day_root(statements: &[BatchStatement]) -> Digest {
    let flat: Vec<M31> = statements.iter().flat_map(Record::encode).collect();
    data_root(&flat, BatchStatement::LIMBS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(x: u32) -> Digest {
        Digest(std::array::from_fn(|i| {
            M31::from_u32_unchecked(x.wrapping_mul(16).wrapping_add(i as u32) >> 1)
        }))
    }

    fn chain(rollup_id: u32, first_seq: u64, n: usize) -> Vec<BatchStatement> {
        (0..n)
            .map(|i| BatchStatement {
                rollup_id,
                seq: first_seq + i as u64,
                pre_state_root: d(rollup_id.wrapping_mul(1000) + i as u32),
                post_state_root: d(rollup_id.wrapping_mul(1000) + i as u32 + 1),
                data_root: d(7 + i as u32),
                instruments_root: d(99),
                n_ops: 10 + i as u32,
            })
            .collect()
    }

    #[test]
    fn statement_round_trips_with_extremes() {
        let mut s = chain(u32::MAX, u64::MAX, 1)[0];
        s.n_ops = u32::MAX;
        s.pre_state_root = Digest([M31::from_u32_unchecked((1 << 31) - 2); 8]);
        let limbs = s.encode();
        assert_eq!(limbs.len(), BatchStatement::LIMBS);
        assert_eq!(BatchStatement::decode(&limbs), Ok(s));
    }

    #[test]
    fn day_derivation_and_public_inputs_round_trip() {
        let mut all = chain(1, 5, 3);
        all.extend(chain(4, 0, 2));
        let day = DayStatement::derive(20_000, &all, [0xab; 32]).unwrap();
        assert_eq!(day.n_batches, 5);
        assert_eq!(day.n_ops, 10 + 11 + 12 + 10 + 11);
        assert_eq!(day.rollups.len(), 2);
        assert_eq!((day.rollups[0].first_seq, day.rollups[0].last_seq), (5, 7));
        assert_eq!(day.rollups[0].last_post_state_root, d(1003));
        let back = DayStatement::from_public_inputs(&day.to_public_inputs()).unwrap();
        assert_eq!(back, day);
    }

    #[test]
    fn unordered_gapped_and_broken_days_are_refused() {
        let mut all = chain(4, 0, 2);
        all.extend(chain(1, 0, 1));
        assert!(matches!(
            DayStatement::derive(1, &all, [0; 32]),
            Err(DayError::Order { index: 2, .. })
        ));
        let mut gap = chain(1, 0, 3);
        gap.remove(1);
        assert!(matches!(
            DayStatement::derive(1, &gap, [0; 32]),
            Err(DayError::SeqGap {
                expected: 1,
                got: 2,
                ..
            })
        ));
        let mut broken = chain(1, 0, 3);
        broken[2].pre_state_root = d(5);
        assert!(matches!(
            DayStatement::derive(1, &broken, [0; 32]),
            Err(DayError::BrokenChain { seq: 2, .. })
        ));
        assert_eq!(DayStatement::derive(1, &[], [0; 32]), Err(DayError::Empty));
    }
}
