//! What a batch-validity proof states, and its canonical encodings (`specs/batch-air.md` §1).

use stwo::core::fields::qm31::SecureField;
use stwo::core::fields::FieldExpOps;
use stwo_constraint_framework::Relation;

use super::relations::ValidityRelations;
use super::shape::{Shape, MAX_SHAPE_LOG, SHAPE_LEN};
use super::ValidityAir;
use crate::data_root::{log_rows_for, MerkleNodeRelation};
use crate::field::M31;
use crate::hash::merkle::depth_for;
use crate::hash::poseidon2::{Digest, DIGEST_LEN};
use crate::validity::state_tree::root_tuple;
use crate::venue::state::STATE_DEPTH;
use crate::venue::Instrument;

/// Largest settlement holder component: 2^22 rows (one per position settled).
pub const MAX_HOLDER_LOG: u32 = 22;

/// Largest batch one proof covers: access times `16·i + k` stay below 2^22.
pub const MAX_OPS: usize = 1 << 18;

/// Most batches (data trees) one proof covers.
pub const MAX_BATCHES: usize = 1 << 12;

/// One batch inside a validity proof: its operations form their own data tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchTree {
    /// Operations in the batch.
    pub n_ops: u32,
    /// Poseidon2-M31 root of their records (the batch statement's `data_root`).
    pub data_root: Digest,
}

/// What a batch-validity proof states: the operations of `batches`, in order, obey the venue
/// rules and take the state committed by `pre_state_root` to the one committed by
/// `post_state_root`. A leaf proof covers one batch; a day segment
/// (`specs/day-proof.md` §4) covers a run of one rollup's consecutive batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidityStatement {
    /// The batches, in order; operation `i` of the proof is the concatenation's `i`-th.
    pub batches: Vec<BatchTree>,
    /// Root of the rollup's state tree before the first batch.
    pub pre_state_root: Digest,
    /// Root after the last.
    pub post_state_root: Digest,
    /// log2 of the deposit/withdrawal component's rows.
    pub log_cash_rows: u32,
    /// log2 of the trade component's rows.
    pub log_trade_rows: u32,
    /// log2 of the state-leaf component's rows (touched keys).
    pub log_state_leaf_rows: u32,
    /// log2 of the state-node component's rows (nodes on the touched keys' paths).
    pub log_state_node_rows: u32,
    /// log2 of the Poseidon2 chip's rows (the state tree's permutations).
    pub log_chip_rows: u32,
    /// log2 of the settlement header rows.
    pub log_settle_rows: u32,
    /// log2 of the settlement holder rows.
    pub log_holder_rows: u32,
    /// The rollup's listed instruments (instrument `i` is entry `i`); their Merkle root is
    /// every covered batch's `instruments_root`.
    pub instruments: Vec<Instrument>,
    /// AIR v3 only: the size of every component, padded beyond the witness's own (a shape
    /// class's, `shape`); the seven log fields above then equal its entries. `None`: each
    /// component at its own power of two.
    pub shape: Option<Shape>,
    /// AIR v4 only: the state root after each batch but the last (`n_batches − 1` roots), so
    /// that batch `t` takes `state_root(t)` to `state_root(t + 1)`
    /// ([`ValidityStatement::state_windows`]). `None` under v2 and v3, which state the run's
    /// first and last root only.
    pub interior_roots: Option<Vec<Digest>>,
}

/// Per batch of `sizes` operations, its AIR v4 time window `[16·base, 16·(base + n))`: the
/// one place both the prover and the statement cut time.
pub fn time_windows(sizes: impl IntoIterator<Item = usize>) -> Vec<(u32, u32)> {
    let slots = crate::validity::gadgets::SLOTS_PER_OP;
    let mut base = 0u32;
    sizes
        .into_iter()
        .map(|n| {
            let start = slots * base;
            base += n as u32;
            (start, slots * base)
        })
        .collect()
}

/// One batch's state transition under AIR v4: the roots before and after it and its time
/// window `[16·base, 16·(base + n_ops))` (`specs/batch-air.md` §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateWindow {
    /// Root before the batch.
    pub pre: Digest,
    /// Root after it.
    pub post: Digest,
    /// The first access time of the batch's window (its init time).
    pub start: u32,
    /// The window's end: every access of the batch is before it.
    pub end: u32,
}

const N_LOGS: usize = 7;

/// Public inputs of every AIR v3 proof: 12 component sizes, `|L|`, a 16-element sponge state.
pub const V3_PUBLIC_INPUTS: usize = 12 + 1 + 16;
const TREE_LIMBS: usize = 1 + DIGEST_LEN;
const STATEMENT_MAGIC: [u8; 8] = *b"POEVST03";
/// A statement with a shape: the same, then the shape's logs.
const SHAPED_STATEMENT_MAGIC: [u8; 8] = *b"POEVST04";
/// A statement with interior roots (AIR v4): `POEVST03`'s layout, the `n_batches − 1` roots
/// (eight `u32`s each), a shape flag byte (0 or 1) and, with 1, the shape's logs.
const WINDOWED_STATEMENT_MAGIC: [u8; 8] = *b"POEVST05";

impl ValidityStatement {
    /// Operations in all batches.
    pub fn n_ops(&self) -> u64 {
        self.batches.iter().map(|b| u64::from(b.n_ops)).sum()
    }

    /// Per batch its roots and time window (AIR v4), from `pre_state_root`, the interior
    /// roots and `post_state_root`; `None` without interior roots or with a count other than
    /// `n_batches − 1`.
    pub fn state_windows(&self) -> Option<Vec<StateWindow>> {
        let interior = self.interior_roots.as_ref()?;
        if interior.len() + 1 != self.batches.len() {
            return None;
        }
        let roots: Vec<Digest> = std::iter::once(self.pre_state_root)
            .chain(interior.iter().copied())
            .chain(std::iter::once(self.post_state_root))
            .collect();
        let sizes = self.batches.iter().map(|b| b.n_ops as usize);
        Some(
            time_windows(sizes)
                .into_iter()
                .zip(roots.windows(2))
                .map(|((start, end), r)| StateWindow {
                    pre: r[0],
                    post: r[1],
                    start,
                    end,
                })
                .collect(),
        )
    }

    /// The state root after each batch, the last's being `post_state_root`: the interior
    /// roots under AIR v4, else only the last (`None` for the others).
    pub fn post_roots(&self) -> Vec<Option<Digest>> {
        let n = self.batches.len();
        (0..n)
            .map(|t| match (&self.interior_roots, t + 1 == n) {
                (_, true) => Some(self.post_state_root),
                (Some(roots), false) => roots.get(t).copied(),
                (None, false) => None,
            })
            .collect()
    }

    /// Public inputs: `n_batches, (n_ops, data_root[8]) per batch, pre_state_root[8],
    /// post_state_root[8], log_cash_rows, log_trade_rows, log_state_leaf_rows,
    /// log_state_node_rows, log_chip_rows, log_settle_rows, log_holder_rows, n_instruments`,
    /// then the instruments' 16-limb encodings.
    pub fn to_public_inputs(&self) -> Vec<M31> {
        let m = M31::from_u32_unchecked;
        let mut out = vec![m(self.batches.len() as u32)];
        for b in &self.batches {
            out.push(m(b.n_ops));
            out.extend(b.data_root.0);
        }
        out.extend(self.pre_state_root.0);
        out.extend(self.post_state_root.0);
        out.extend(
            [
                self.log_cash_rows,
                self.log_trade_rows,
                self.log_state_leaf_rows,
                self.log_state_node_rows,
                self.log_chip_rows,
                self.log_settle_rows,
                self.log_holder_rows,
            ]
            .map(m),
        );
        out.push(m(self.instruments.len() as u32));
        for i in &self.instruments {
            out.extend(i.encode());
        }
        out
    }

    /// The public inputs of a proof of this statement under `air`: v2's are
    /// [`ValidityStatement::to_public_inputs`]; v3's are constant-size
    /// ([`V3_PUBLIC_INPUTS`] elements): the log2 rows of its 12 components in commitment order,
    /// the closure list's length `|L|`, and the closure sponge's final state (16 elements,
    /// `closure::closure_state`), which binds everything else the statement says.
    pub fn public_inputs(&self, air: ValidityAir) -> Vec<M31> {
        match air {
            ValidityAir::V2 => self.to_public_inputs(),
            ValidityAir::V3 | ValidityAir::V4 => {
                let terms = crate::validity::closure::closure_terms(self);
                let mut out: Vec<M31> = crate::validity::ComponentId::of(air)
                    .iter()
                    .map(|id| M31::from_u32_unchecked(id.log_rows(self)))
                    .collect();
                out.push(M31::from_u32_unchecked(terms.len() as u32));
                out.extend(crate::validity::closure::closure_state(&terms));
                out
            }
        }
    }

    /// Inverse of [`ValidityStatement::to_public_inputs`]; `None` unless the encoding is the
    /// canonical one (lengths, instrument encodings).
    pub fn from_public_inputs(inputs: &[M31]) -> Option<Self> {
        let (&n_batches, rest) = inputs.split_first()?;
        let n_batches = n_batches.0 as usize;
        if n_batches > MAX_BATCHES {
            return None;
        }
        let trees = rest.get(..n_batches * TREE_LIMBS)?;
        let rest = &rest[n_batches * TREE_LIMBS..];
        let digest = |at: &[M31]| -> Option<Digest> { Some(Digest(at.try_into().ok()?)) };
        let batches = trees
            .chunks_exact(TREE_LIMBS)
            .map(|t| {
                Some(BatchTree {
                    n_ops: t[0].0,
                    data_root: digest(&t[1..])?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let fixed = 2 * DIGEST_LEN + N_LOGS + 1;
        if rest.len() < fixed {
            return None;
        }
        let n_inst = rest[fixed - 1].0 as usize;
        let tail = &rest[fixed..];
        if tail.len() != n_inst.checked_mul(Instrument::LIMBS)? {
            return None;
        }
        let instruments = tail
            .chunks_exact(Instrument::LIMBS)
            .map(Instrument::decode)
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        let logs = &rest[2 * DIGEST_LEN..2 * DIGEST_LEN + N_LOGS];
        Some(Self {
            batches,
            pre_state_root: digest(&rest[..DIGEST_LEN])?,
            post_state_root: digest(&rest[DIGEST_LEN..2 * DIGEST_LEN])?,
            log_cash_rows: logs[0].0,
            log_trade_rows: logs[1].0,
            log_state_leaf_rows: logs[2].0,
            log_state_node_rows: logs[3].0,
            log_chip_rows: logs[4].0,
            log_settle_rows: logs[5].0,
            log_holder_rows: logs[6].0,
            instruments,
            shape: None,
            interior_roots: None,
        })
    }

    /// The statement as a file: `POEVST03`, then the public inputs as a `u32` count and
    /// little-endian `u32`s.
    /// With a shape, `POEVST04` and the shape's 12 logs as `u32`s after them.
    /// With interior roots, `POEVST05`: the public inputs, the roots, a shape flag byte and
    /// the shape's logs after a 1.
    pub fn to_bytes(&self) -> Vec<u8> {
        let inputs = self.to_public_inputs();
        let magic = match (&self.interior_roots, self.shape) {
            (Some(_), _) => WINDOWED_STATEMENT_MAGIC,
            (None, None) => STATEMENT_MAGIC,
            (None, Some(_)) => SHAPED_STATEMENT_MAGIC,
        };
        let mut out = magic.to_vec();
        out.extend((inputs.len() as u32).to_le_bytes());
        for x in inputs {
            out.extend(x.0.to_le_bytes());
        }
        if let Some(roots) = &self.interior_roots {
            for r in roots {
                for x in r.0 {
                    out.extend(x.0.to_le_bytes());
                }
            }
            out.push(u8::from(self.shape.is_some()));
        }
        if let Some(shape) = &self.shape {
            for l in shape.0 {
                out.extend(l.to_le_bytes());
            }
        }
        out
    }

    /// Inverse of [`ValidityStatement::to_bytes`]: refuses another magic, a wrong length,
    /// non-canonical field elements and non-canonical encodings.
    ///
    /// # Errors
    /// What is wrong, as text.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let magic = bytes.get(..8).unwrap_or_default();
        let (rest, mut shaped, windowed) = if magic == STATEMENT_MAGIC {
            (&bytes[8..], false, false)
        } else if magic == SHAPED_STATEMENT_MAGIC {
            (&bytes[8..], true, false)
        } else if magic == WINDOWED_STATEMENT_MAGIC {
            (&bytes[8..], false, true)
        } else {
            return Err(
                "not a batch-validity statement (magic POEVST03, POEVST04 or POEVST05 expected)"
                    .into(),
            );
        };
        let (count, rest) = rest
            .split_first_chunk::<4>()
            .ok_or("truncated before the count")?;
        let count = u32::from_le_bytes(*count) as usize;
        let (rest, interior) = if windowed {
            // The batch count is the first public input: the roots' length follows from it.
            let n_batches = match rest.get(..4) {
                Some(c) => u32::from_le_bytes(c.try_into().expect("4 bytes")) as usize,
                None => return Err("truncated before the batch count".into()),
            };
            if n_batches == 0 || n_batches > MAX_BATCHES {
                return Err(format!("1..={MAX_BATCHES} batches, got {n_batches}"));
            }
            let at = count.saturating_mul(4);
            let len = (n_batches - 1) * 4 * DIGEST_LEN;
            let body = rest.get(at..at + len + 1).ok_or_else(|| {
                format!(
                    "expected {count} field elements, {} interior roots and a shape flag",
                    n_batches - 1
                )
            })?;
            let roots = body[..len]
                .chunks_exact(4 * DIGEST_LEN)
                .map(|c| {
                    let mut d = [M31::from_u32_unchecked(0); DIGEST_LEN];
                    for (x, w) in d.iter_mut().zip(c.chunks_exact(4)) {
                        let v = u32::from_le_bytes(w.try_into().expect("4 bytes"));
                        *x = crate::field::m31_from_canonical(v)
                            .ok_or_else(|| format!("interior root limb {v} is not below p"))?;
                    }
                    Ok(Digest(d))
                })
                .collect::<Result<Vec<Digest>, String>>()?;
            shaped = match body[len] {
                0 => false,
                1 => true,
                f => return Err(format!("shape flag must be 0 or 1, got {f}")),
            };
            let mut joined = rest[..at].to_vec();
            joined.extend_from_slice(&rest[at + len + 1..]);
            (std::borrow::Cow::Owned(joined), Some(roots))
        } else {
            (std::borrow::Cow::Borrowed(rest), None)
        };
        let rest: &[u8] = &rest;
        let tail = if shaped { 4 * SHAPE_LEN } else { 0 };
        if rest.len() != count.saturating_mul(4).saturating_add(tail) {
            return Err(format!(
                "expected {count} field elements ({} bytes) and {tail} bytes of shape, got {} bytes",
                count * 4,
                rest.len()
            ));
        }
        let (rest, shape_bytes) = rest.split_at(count * 4);
        let inputs = rest
            .chunks_exact(4)
            .enumerate()
            .map(|(i, c)| {
                let v = u32::from_le_bytes(c.try_into().expect("4 bytes"));
                crate::field::m31_from_canonical(v)
                    .ok_or_else(|| format!("element {i} is {v}, not below p"))
            })
            .collect::<Result<Vec<M31>, String>>()?;
        let mut statement = Self::from_public_inputs(&inputs).ok_or("not a canonical statement")?;
        statement.interior_roots = interior;
        if shaped {
            let mut shape = [0u32; SHAPE_LEN];
            for (l, c) in shape.iter_mut().zip(shape_bytes.chunks_exact(4)) {
                *l = u32::from_le_bytes(c.try_into().expect("4 bytes"));
            }
            statement.shape = Some(Shape(shape));
            statement.check()?;
        }
        Ok(statement)
    }

    /// Per batch, the `shift` of its tree's rows: `base − 2^depth` (mod p), `base` being the
    /// operations of the batches before it (`LeafEval::ops`).
    pub fn shifts(&self) -> Vec<M31> {
        let mut base = 0u64;
        self.batches
            .iter()
            .map(|b| {
                let n = b.n_ops as usize;
                let s = M31::from_u32_unchecked(base as u32)
                    - M31::from_u32_unchecked(1u32 << depth_for(n));
                base += u64::from(b.n_ops);
                s
            })
            .collect()
    }

    /// Row counts (log2) of the data forest's leaf and node components.
    pub fn data_log_rows(&self) -> (u32, u32) {
        let nodes: usize = self
            .batches
            .iter()
            .map(|b| crate::hash::merkle::n_internal_nodes(b.n_ops as usize))
            .sum();
        (log_rows_for(self.n_ops() as usize), log_rows_for(nodes))
    }

    /// The forest's LogUp closure: per tree `t`, `1/c(t, shift_t, 1, root_t)` minus its empty
    /// siblings `1/c(t, shift_t, index, Z_h)`.
    pub fn forest_logup_sum(&self, relation: &MerkleNodeRelation) -> SecureField {
        let mut sum = SecureField::from(M31::from_u32_unchecked(0));
        for (t, (b, shift)) in self.batches.iter().zip(self.shifts()).enumerate() {
            let term = |index: u64, digest: &Digest| -> SecureField {
                let mut values = vec![
                    M31::from_u32_unchecked(t as u32),
                    shift,
                    M31::from_u32_unchecked(index as u32),
                ];
                values.extend(digest.0);
                let denom: SecureField = relation.combine(&values);
                denom.inverse()
            };
            let n = b.n_ops as usize;
            let empty = crate::hash::merkle::empty_digests(depth_for(n));
            sum += term(1, &b.data_root);
            for (index, height) in crate::hash::merkle::empty_siblings(n) {
                sum -= term(index, &empty[height as usize]);
            }
        }
        sum
    }

    /// Ranges the statement itself must respect.
    ///
    /// # Errors
    /// The first violated range, as text.
    pub fn check(&self) -> Result<(), String> {
        if self.batches.is_empty() || self.batches.len() > MAX_BATCHES {
            return Err(format!(
                "1..={MAX_BATCHES} batches, got {}",
                self.batches.len()
            ));
        }
        if let Some(t) = self.batches.iter().position(|b| b.n_ops == 0) {
            return Err(format!("batch {t} has no operations"));
        }
        let n = self.n_ops() as usize;
        if n > MAX_OPS {
            return Err(format!("n_ops must be in 1..={MAX_OPS}, got {n}"));
        }
        if let Some(roots) = &self.interior_roots {
            if roots.len() + 1 != self.batches.len() {
                return Err(format!(
                    "expected {} interior state roots (one per batch but the last), got {}",
                    self.batches.len() - 1,
                    roots.len()
                ));
            }
        }
        if let Some(shape) = &self.shape {
            return self.check_shape(shape);
        }
        let max_log = log_rows_for(n);
        // Each operation touches at most `SLOTS_PER_OP` leaves; each leaf adds at most
        // `STATE_DEPTH` nodes.
        let max_leaf_log = log_rows_for(n * crate::validity::trade::SLOTS_PER_OP as usize);
        let max_node_log = max_leaf_log + STATE_DEPTH.next_power_of_two().trailing_zeros();
        for (name, log, max) in [
            ("log_cash_rows", self.log_cash_rows, max_log),
            ("log_trade_rows", self.log_trade_rows, max_log),
            (
                "log_state_leaf_rows",
                self.log_state_leaf_rows,
                max_leaf_log,
            ),
            (
                "log_state_node_rows",
                self.log_state_node_rows,
                max_node_log,
            ),
        ] {
            if !(crate::data_root::MIN_LOG_ROWS..=max).contains(&log) {
                return Err(format!(
                    "{name} must be in {}..={max}, got {log}",
                    crate::data_root::MIN_LOG_ROWS
                ));
            }
        }
        self.check_instruments()
    }

    /// States `shape`: the shape itself and the seven log fields that must equal its entries.
    pub fn set_shape(&mut self, shape: Shape) {
        use crate::validity::ComponentId as C;
        self.log_cash_rows = shape.log_rows(C::Cash);
        self.log_trade_rows = shape.log_rows(C::Trade);
        self.log_state_leaf_rows = shape.log_rows(C::StateLeaf);
        self.log_state_node_rows = shape.log_rows(C::StateNode);
        self.log_chip_rows = shape.log_rows(C::Chip);
        self.log_settle_rows = shape.log_rows(C::Settle);
        self.log_holder_rows = shape.log_rows(C::Holder);
        self.shape = Some(shape);
    }

    /// A stated shape: every log in `MIN_LOG_ROWS ..= MAX_SHAPE_LOG` (the range table's
    /// fixed), the seven log fields equal to its entries, and the components sized from the
    /// statement (instrument table, data forest, closure input) at least their own size.
    fn check_shape(&self, shape: &Shape) -> Result<(), String> {
        use crate::validity::ComponentId as C;
        self.check_instruments()?;
        for id in C::ALL {
            let log = shape.log_rows(id);
            let range = match id {
                C::Range => crate::validity::range::LOG_RANGE..=crate::validity::range::LOG_RANGE,
                _ => crate::data_root::MIN_LOG_ROWS..=MAX_SHAPE_LOG,
            };
            if !range.contains(&log) {
                return Err(format!(
                    "shape: {} must be in {}..={}, got {log}",
                    id.name(),
                    range.start(),
                    range.end()
                ));
            }
        }
        for (id, stated) in [
            (C::Cash, self.log_cash_rows),
            (C::Trade, self.log_trade_rows),
            (C::StateLeaf, self.log_state_leaf_rows),
            (C::StateNode, self.log_state_node_rows),
            (C::Chip, self.log_chip_rows),
            (C::Settle, self.log_settle_rows),
            (C::Holder, self.log_holder_rows),
        ] {
            if stated != shape.log_rows(id) {
                return Err(format!(
                    "shape: {} is {} but the statement says {stated}",
                    id.name(),
                    shape.log_rows(id)
                ));
            }
        }
        for id in [C::Instruments, C::DataLeaf, C::DataNode, C::Input] {
            let need = id.natural_log_rows(self);
            if shape.log_rows(id) < need {
                return Err(format!(
                    "shape: {} needs 2^{need} rows, the shape gives 2^{}",
                    id.name(),
                    shape.log_rows(id)
                ));
            }
        }
        Ok(())
    }

    fn check_instruments(&self) -> Result<(), String> {
        if self.instruments.is_empty()
            || self.instruments.len() > crate::venue::MAX_INSTRUMENTS as usize
        {
            return Err(format!(
                "1..={} instruments, got {}",
                crate::venue::MAX_INSTRUMENTS,
                self.instruments.len()
            ));
        }
        Ok(())
    }

    /// The LogUp total the components must claim under `air`. v2: the range table's closure,
    /// the instrument table's, the data tree's, and the state tree's root (`+1/c(root tuple)`:
    /// the verifier consumes it). v3: the two ends of the input component's chain over the
    /// closure list (`closure`), whose rows yield those terms themselves.
    pub fn expected_logup_sum(&self, air: ValidityAir, rels: &ValidityRelations) -> SecureField {
        if air.closed_by_input() {
            return crate::validity::closure::expected_chain_sum(
                &rels.closure_chain,
                &crate::validity::closure::closure_terms(self),
            );
        }
        rels.range.expected_component_sum() + self.closure_sum(rels)
    }

    /// The closures of the instrument table, the data forest and the state root (v2's
    /// verifier adds them; in v3 the input component yields them).
    pub fn closure_sum(&self, rels: &ValidityRelations) -> SecureField {
        let root: SecureField = rels
            .node
            .combine(&root_tuple(&self.pre_state_root, &self.post_state_root));
        crate::validity::instruments::expected_table_sum(&rels.instrument_table, &self.instruments)
            + self.forest_logup_sum(&rels.merkle)
            + root.inverse()
    }
}
