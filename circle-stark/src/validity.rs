//! The batch-validity proof, v0 (`specs/batch-air.md` §5): one STARK showing that the
//! operations committed by `data_root`, applied in order to the touched state leaves' values
//! `before`, obey the venue rules and leave the values `after`.
//!
//! Components: the range table, the data-root leaf and node components (the leaves also yield
//! `Op(i, record)`), deposit/withdrawal rows and trade rows (each consuming its `Op` and
//! accessing state through the memory argument at times `16·i + k`). The verifier closes the
//! state relation itself from the statement's touched leaves — yielding `(key, before, 0)` and
//! consuming `(key, after, t_last)` — as it closes the range table and the Merkle tree.
//!
//! v0 states the touched leaves in the clear; binding them to `pre_state_root` and
//! `post_state_root` inside the proof (a sparse multiproof over the Poseidon2 chip), settlement
//! rows, the clock, expiry and open-interest checks and the instrument lookup are not in it
//! yet.

use stwo::core::air::Component;
use stwo::core::channel::Blake2sChannel;
use stwo::core::fields::qm31::SecureField;
use stwo::core::fields::FieldExpOps;
use stwo::core::pcs::{CommitmentSchemeVerifier, TreeVec};
use stwo::core::vcs_lifted::blake2_merkle::Blake2sMerkleChannel;
use stwo_constraint_framework::{FrameworkComponent, Relation, TraceLocationAllocator};

use crate::air::{
    log_rows_for, DataRootStatement, LeafComponent, LeafEval, MerkleNodeRelation, NodeComponent,
    NodeEval, OpRelation,
};
use crate::cash::{Cash, CashEval};
use crate::config::VerifierPolicy;
use crate::error::VerifyError;
use crate::field::M31;
use crate::instruments::{InstrumentRel, InstrumentTable, InstrumentTableEval, InstrumentTableRel};
use crate::memory::StateRel;
use crate::merkle::depth_for;
use crate::poseidon2::{Digest, DIGEST_LEN};
use crate::proof::{AirId, Proof};
use crate::range::{RangeRelations, RangeTable, RangeTableEval, LOG_RANGE};
use crate::trade::{Trade, TradeEval};
use crate::venue::state::LEAF_LIMBS;
use crate::venue::{Instrument, OP_LIMBS};

/// Largest batch one proof covers: access times `16·i + k` stay below 2^22.
pub const MAX_OPS: usize = 1 << 18;

/// A state leaf the batch touched: its value before the batch, after it, and the time of its
/// last access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Touched {
    /// Leaf index (`specs/batch-air.md` §2).
    pub key: u32,
    /// Value before the batch.
    pub before: [M31; LEAF_LIMBS],
    /// Value after the batch.
    pub after: [M31; LEAF_LIMBS],
    /// Time of the last access.
    pub last_access: u32,
}

/// What a batch-validity proof states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidityStatement {
    /// Operations in the batch.
    pub n_ops: u32,
    /// Poseidon2-M31 root of their records.
    pub data_root: Digest,
    /// log2 of the deposit/withdrawal component's rows.
    pub log_cash_rows: u32,
    /// log2 of the trade component's rows.
    pub log_trade_rows: u32,
    /// The rollup's listed instruments (instrument `i` is entry `i`); their Merkle root is
    /// the batch's `instruments_root`.
    pub instruments: Vec<Instrument>,
    /// Every leaf the batch touched, by increasing key.
    pub touched: Vec<Touched>,
}

const HEADER: usize = 1 + DIGEST_LEN + 2;
const STATEMENT_MAGIC: [u8; 8] = *b"POEVST01";
const PER_TOUCHED: usize = 2 + 2 * LEAF_LIMBS + 1;

impl ValidityStatement {
    /// Public inputs: `n_ops, data_root[8], log_cash_rows, log_trade_rows, n_instruments`,
    /// the instruments' 16-limb encodings, `n_touched`, then per leaf `key_lo, key_hi,
    /// before[8], after[8], last_access`.
    pub fn to_public_inputs(&self) -> Vec<M31> {
        let m = M31::from_u32_unchecked;
        let mut out = vec![m(self.n_ops)];
        out.extend(self.data_root.0);
        out.extend([m(self.log_cash_rows), m(self.log_trade_rows)]);
        out.push(m(self.instruments.len() as u32));
        for i in &self.instruments {
            out.extend(i.encode());
        }
        out.push(m(self.touched.len() as u32));
        for t in &self.touched {
            out.extend([m(t.key & 0xffff), m(t.key >> 16)]);
            out.extend(t.before);
            out.extend(t.after);
            out.push(m(t.last_access));
        }
        out
    }

    /// Inverse of [`ValidityStatement::to_public_inputs`]; `None` unless the encoding is the
    /// canonical one (lengths, key limbs below 2^16, keys strictly increasing).
    pub fn from_public_inputs(inputs: &[M31]) -> Option<Self> {
        if inputs.len() < HEADER + 1 {
            return None;
        }
        let n_inst = inputs[HEADER].0 as usize;
        let inst_end = HEADER + 1 + n_inst.checked_mul(Instrument::LIMBS)?;
        let instruments = inputs
            .get(HEADER + 1..inst_end)?
            .chunks_exact(Instrument::LIMBS)
            .map(Instrument::decode)
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        let n_touched = inputs.get(inst_end)?.0 as usize;
        let rest = &inputs[inst_end + 1..];
        if rest.len() != n_touched.checked_mul(PER_TOUCHED)? {
            return None;
        }
        let mut touched = Vec::with_capacity(n_touched);
        for chunk in rest.chunks_exact(PER_TOUCHED) {
            if chunk[0].0 >= 1 << 16 || chunk[1].0 >= 1 << 16 {
                return None;
            }
            let key = chunk[0].0 | (chunk[1].0 << 16);
            if touched.last().is_some_and(|t: &Touched| t.key >= key) {
                return None;
            }
            touched.push(Touched {
                key,
                before: chunk[2..2 + LEAF_LIMBS].try_into().ok()?,
                after: chunk[2 + LEAF_LIMBS..2 + 2 * LEAF_LIMBS].try_into().ok()?,
                last_access: chunk[PER_TOUCHED - 1].0,
            });
        }
        Some(Self {
            n_ops: inputs[0].0,
            data_root: Digest(inputs[1..1 + DIGEST_LEN].try_into().ok()?),
            log_cash_rows: inputs[1 + DIGEST_LEN].0,
            log_trade_rows: inputs[2 + DIGEST_LEN].0,
            instruments,
            touched,
        })
    }

    /// The statement as a file: `POEVST01`, then the public inputs as a `u32` count and
    /// little-endian `u32`s.
    pub fn to_bytes(&self) -> Vec<u8> {
        let inputs = self.to_public_inputs();
        let mut out = STATEMENT_MAGIC.to_vec();
        out.extend((inputs.len() as u32).to_le_bytes());
        for x in inputs {
            out.extend(x.0.to_le_bytes());
        }
        out
    }

    /// Inverse of [`ValidityStatement::to_bytes`]: refuses another magic, a wrong length,
    /// non-canonical field elements and non-canonical encodings.
    ///
    /// # Errors
    /// What is wrong, as text.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let rest = bytes
            .strip_prefix(&STATEMENT_MAGIC)
            .ok_or("not a batch-validity statement (magic POEVST01 expected)")?;
        let (count, rest) = rest
            .split_first_chunk::<4>()
            .ok_or("truncated before the count")?;
        let count = u32::from_le_bytes(*count) as usize;
        if rest.len() != count.saturating_mul(4) {
            return Err(format!(
                "expected {count} field elements ({} bytes), got {} bytes",
                count * 4,
                rest.len()
            ));
        }
        let inputs = rest
            .chunks_exact(4)
            .enumerate()
            .map(|(i, c)| {
                let v = u32::from_le_bytes(c.try_into().expect("4 bytes"));
                crate::field::m31_from_canonical(v)
                    .ok_or_else(|| format!("element {i} is {v}, not below p"))
            })
            .collect::<Result<Vec<M31>, String>>()?;
        Self::from_public_inputs(&inputs).ok_or_else(|| "not a canonical statement".into())
    }

    /// The data-root part: the operation records' tree.
    pub fn data_root_statement(&self) -> DataRootStatement {
        DataRootStatement {
            n_records: self.n_ops,
            record_limbs: OP_LIMBS as u32,
            root: self.data_root,
        }
    }

    /// Ranges the statement itself must respect.
    ///
    /// # Errors
    /// The first violated range, as text.
    pub fn check(&self) -> Result<(), String> {
        let n = self.n_ops as usize;
        if n == 0 || n > MAX_OPS {
            return Err(format!("n_ops must be in 1..={MAX_OPS}, got {n}"));
        }
        let max_log = log_rows_for(n);
        for (name, log) in [
            ("log_cash_rows", self.log_cash_rows),
            ("log_trade_rows", self.log_trade_rows),
        ] {
            if !(crate::air::MIN_LOG_ROWS..=max_log).contains(&log) {
                return Err(format!(
                    "{name} must be in {}..={max_log}, got {log}",
                    crate::air::MIN_LOG_ROWS
                ));
            }
        }
        if self.instruments.is_empty()
            || self.instruments.len() > crate::venue::MAX_INSTRUMENTS as usize
        {
            return Err(format!(
                "1..={} instruments, got {}",
                crate::venue::MAX_INSTRUMENTS,
                self.instruments.len()
            ));
        }
        if self.touched.windows(2).any(|w| w[0].key >= w[1].key) {
            return Err("touched leaves must be in strictly increasing key order".into());
        }
        Ok(())
    }

    /// The LogUp total the components must claim: the range table's closure, the data tree's,
    /// and the state relation's (`Σ 1/c(key, after, t_last) − 1/c(key, before, 0)`).
    pub fn expected_logup_sum(&self, rels: &ValidityRelations) -> SecureField {
        let m = M31::from_u32_unchecked;
        let entry = |t: &Touched, after: bool| -> SecureField {
            let mut v = vec![m(t.key & 0xffff), m(t.key >> 16)];
            v.extend(if after { t.after } else { t.before });
            v.push(if after { m(t.last_access) } else { m(0) });
            rels.state.combine(&v)
        };
        let denoms: Vec<SecureField> = self
            .touched
            .iter()
            .flat_map(|t| [entry(t, true), entry(t, false)])
            .collect();
        let inv = SecureField::batch_inverse(&denoms);
        let state: SecureField = inv.chunks_exact(2).map(|p| p[0] - p[1]).sum();
        rels.range.expected_component_sum()
            + crate::instruments::expected_table_sum(&rels.instrument_table, &self.instruments)
            + self.data_root_statement().expected_logup_sum(&rels.merkle)
            + state
    }
}

/// The relations of the proof, drawn together after the main trace.
#[derive(Debug, Clone)]
pub struct ValidityRelations {
    /// Range checks.
    pub range: RangeRelations,
    /// The data tree.
    pub merkle: MerkleNodeRelation,
    /// Operation records.
    pub ops: OpRelation,
    /// State accesses.
    pub state: StateRel,
    /// Trade rows ↔ instrument table.
    pub instrument: InstrumentRel,
    /// Instrument table ↔ verifier.
    pub instrument_table: InstrumentTableRel,
}

impl ValidityRelations {
    /// Draws them in a fixed order.
    pub fn draw(channel: &mut Blake2sChannel) -> Self {
        Self {
            range: RangeRelations::draw(channel),
            merkle: MerkleNodeRelation::draw(channel),
            ops: OpRelation::draw(channel),
            state: StateRel::draw(channel),
            instrument: InstrumentRel::draw(channel),
            instrument_table: InstrumentTableRel::draw(channel),
        }
    }

    /// Challenges of no value, for column shapes only.
    pub fn dummy() -> Self {
        Self {
            range: RangeRelations {
                range: crate::range::Range16::dummy(),
                table: crate::range::Range16Table::dummy(),
            },
            merkle: MerkleNodeRelation::dummy(),
            ops: OpRelation::dummy(),
            state: StateRel::dummy(),
            instrument: InstrumentRel::dummy(),
            instrument_table: InstrumentTableRel::dummy(),
        }
    }
}

/// Number of components, hence of claimed sums.
pub const N_COMPONENTS: usize = 6;

/// log2 rows of the instrument table for `n` instruments.
pub fn log_instrument_rows(n: usize) -> u32 {
    log_rows_for(n)
}

/// The components in commitment order: range table, instrument table, leaves, nodes, cash
/// rows, trade rows.
pub(crate) struct Components {
    pub(crate) range: RangeTable,
    pub(crate) instruments: InstrumentTable,
    pub(crate) leaf: LeafComponent,
    pub(crate) node: NodeComponent,
    pub(crate) cash: Cash,
    pub(crate) trade: Trade,
}

impl Components {
    pub(crate) fn new(
        s: &ValidityStatement,
        rels: &ValidityRelations,
        sums: &[SecureField; N_COMPONENTS],
    ) -> Self {
        let dr = s.data_root_statement();
        let (leaf_log, node_log) = dr.log_rows();
        let depth = depth_for(s.n_ops as usize);
        let alloc = &mut TraceLocationAllocator::default();
        Self {
            range: RangeTable::new(
                alloc,
                RangeTableEval {
                    relations: rels.range.clone(),
                },
                sums[0],
            ),
            instruments: InstrumentTable::new(
                alloc,
                InstrumentTableEval {
                    log_rows: log_instrument_rows(s.instruments.len()),
                    instrument: rels.instrument.clone(),
                    table: rels.instrument_table.clone(),
                },
                sums[1],
            ),
            leaf: FrameworkComponent::new(
                alloc,
                LeafEval {
                    log_rows: leaf_log,
                    record_limbs: OP_LIMBS,
                    relation: rels.merkle.clone(),
                    ops: Some((rels.ops.clone(), depth)),
                },
                sums[2],
            ),
            node: FrameworkComponent::new(
                alloc,
                NodeEval {
                    log_rows: node_log,
                    relation: rels.merkle.clone(),
                },
                sums[3],
            ),
            cash: Cash::new(
                alloc,
                CashEval {
                    log_rows: s.log_cash_rows,
                    state: rels.state.clone(),
                    range: rels.range.clone(),
                    ops: Some(rels.ops.clone()),
                },
                sums[4],
            ),
            trade: Trade::new(
                alloc,
                TradeEval {
                    log_rows: s.log_trade_rows,
                    state: rels.state.clone(),
                    range: rels.range.clone(),
                    ops: Some((rels.ops.clone(), rels.instrument.clone())),
                },
                sums[5],
            ),
        }
    }

    pub(crate) fn as_components(&self) -> [&dyn Component; N_COMPONENTS] {
        [
            &self.range,
            &self.instruments,
            &self.leaf,
            &self.node,
            &self.cash,
            &self.trade,
        ]
    }

    /// The largest component, log2 rows.
    pub(crate) fn max_log_rows(s: &ValidityStatement) -> u32 {
        let (leaf_log, node_log) = s.data_root_statement().log_rows();
        LOG_RANGE
            .max(leaf_log)
            .max(node_log)
            .max(s.log_cash_rows)
            .max(s.log_trade_rows)
            .max(log_instrument_rows(s.instruments.len()))
    }
}

/// Decodes and verifies a batch-validity proof.
///
/// # Errors
/// As [`verify_validity`].
pub fn verify_validity_bytes(
    bytes: &[u8],
    statement: &ValidityStatement,
    policy: &VerifierPolicy,
) -> Result<(), VerifyError> {
    verify_validity(Proof::from_bytes(bytes)?, statement, policy)
}

/// Verifies that `proof` shows `statement`.
///
/// # Errors
/// [`VerifyError::InvalidStatement`] for a statement out of range,
/// [`VerifyError::BatchStatementMismatch`] naming the first differing field, otherwise the
/// first failing check of the STARK.
pub fn verify_validity(
    proof: Proof,
    statement: &ValidityStatement,
    policy: &VerifierPolicy,
) -> Result<(), VerifyError> {
    crate::verifier::check_air_and_policy(&proof, AirId::BatchValidity, policy)?;
    statement.check().map_err(VerifyError::InvalidStatement)?;
    let public_inputs = statement.to_public_inputs();
    if proof.public_inputs != public_inputs {
        let field = ValidityStatement::from_public_inputs(&proof.public_inputs)
            .map_or("encoding", |got| first_difference(statement, &got));
        return Err(VerifyError::BatchStatementMismatch { field });
    }
    let sums: [SecureField; N_COMPONENTS] =
        proof.claimed_sums.as_slice().try_into().map_err(|_| {
            VerifyError::Structure(format!(
                "expected {N_COMPONENTS} LogUp sums, got {}",
                proof.claimed_sums.len()
            ))
        })?;
    let n_trees = proof.stark.0.commitments.len();
    if n_trees != 4 {
        return Err(VerifyError::Structure(format!(
            "expected 4 commitment trees, got {n_trees}"
        )));
    }
    let channel = &mut Blake2sChannel::default();
    crate::verifier::mix_preamble(channel, AirId::BatchValidity, &proof.config, &public_inputs);
    let mut scheme =
        CommitmentSchemeVerifier::<Blake2sMerkleChannel>::new(proof.config.pcs_config());
    let shape = Components::new(statement, &ValidityRelations::dummy(), &sums);
    let sizes = TreeVec::concat_cols(
        shape
            .as_components()
            .iter()
            .map(|c| c.trace_log_degree_bounds()),
    );
    let commitments = proof.stark.0.commitments.clone();
    scheme.commit(commitments[0], &sizes[0], channel);
    scheme.commit(commitments[1], &sizes[1], channel);
    let rels = ValidityRelations::draw(channel);
    crate::verifier::mix_claimed_sums(channel, &sums);
    scheme.commit(commitments[2], &sizes[2], channel);
    if sums.iter().copied().sum::<SecureField>() != statement.expected_logup_sum(&rels) {
        return Err(VerifyError::LogUpSumMismatch);
    }
    let components = Components::new(statement, &rels, &sums);
    crate::verifier::run_stark(&components.as_components(), channel, &mut scheme, proof)
}

fn first_difference(a: &ValidityStatement, b: &ValidityStatement) -> &'static str {
    if a.n_ops != b.n_ops {
        "n_ops"
    } else if a.data_root != b.data_root {
        "data_root"
    } else if (a.log_cash_rows, a.log_trade_rows) != (b.log_cash_rows, b.log_trade_rows) {
        "component sizes"
    } else if a.instruments != b.instruments {
        "instruments"
    } else if a.touched.len() != b.touched.len()
        || a.touched
            .iter()
            .zip(&b.touched)
            .any(|(x, y)| x.key != y.key)
    {
        "touched keys"
    } else if a
        .touched
        .iter()
        .zip(&b.touched)
        .any(|(x, y)| x.before != y.before)
    {
        "touched.before"
    } else if a
        .touched
        .iter()
        .zip(&b.touched)
        .any(|(x, y)| x.after != y.after)
    {
        "touched.after"
    } else {
        "touched.last_access"
    }
}
