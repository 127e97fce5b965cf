//! The two Parquet tables of a bundle and their rows (`specs/archive.md` §4–5).
//!
//! Each trade row carries the venue's view (names, decimals, UTC timestamps) *and* the nine
//! integers the AIR encodes. The auditor rebuilds the venue view from the integers and the
//! instrument table and compares column by column, so the two can never drift apart silently.

use std::sync::{Arc, OnceLock};

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Int32Type, Int8Type, TimestampMicrosecondType, UInt32Type,
    UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, Date32Array, Decimal128Array, DictionaryArray, RecordBatch, StringArray,
    TimestampMicrosecondArray, UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use poe_circle_stark::venue::{Instrument, Operation, OptionKind};

use crate::error::ArchiveError;

/// Version of the trades table layout.
pub const TRADES_SCHEMA_VERSION: u32 = 1;
/// First day (days since 1970-01-01: 2026-12-02) whose statements table must be version 2: a
/// v1 table for a later day would be a downgrade that hides the rollups' signatures.
pub const STATEMENTS_V2_REQUIRED_FROM_DAY: u32 = 20_789;

/// Version of the statements table layout this build writes. Version 2 (bundles from
/// 2026-12-02) adds what the auditor needs to recompute each batch id and check the rollup's
/// signature: `rollup_vk_id`, `signature_r`, `signature_s`. Version 1 is still read.
pub const STATEMENTS_SCHEMA_VERSION: u32 = 2;

fn utc_us() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn dict8() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int8), Box::new(DataType::Utf8))
}

fn dict32() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// Cash: 10^-6 quote units, up to 2^63 − 1 (19 digits).
pub const CASH: DataType = DataType::Decimal128(19, 6);
/// Per-contract prices and strikes: the per-lot micro-unit integer over 100.
pub const PER_CONTRACT: DataType = DataType::Decimal128(19, 2);
/// Quantities in contracts: lots over 10^4.
pub const CONTRACTS: DataType = DataType::Decimal128(19, 4);
/// Notional `qty × price` in quote units: up to 2^126, so 38 digits.
pub const NOTIONAL: DataType = DataType::Decimal128(38, 6);

/// The columns an operation's AIR record holds, in `Operation::fields` order.
pub const AIR_COLUMNS: [&str; 9] = [
    "air_kind",
    "air_a",
    "air_b",
    "air_instrument",
    "air_x",
    "air_y",
    "air_f1",
    "air_f2",
    "air_ts",
];

/// The trades table schema.
pub fn trades_schema() -> Arc<Schema> {
    static S: OnceLock<Arc<Schema>> = OnceLock::new();
    S.get_or_init(|| {
        let f = Field::new;
        let mut fields = vec![
            f("day", DataType::Date32, false),
            f("rollup", DataType::Utf8, false),
            f("rollup_id", DataType::UInt32, false),
            f("batch_seq", DataType::UInt64, false),
            f("op_index", DataType::UInt32, false),
            f("op_kind", dict8(), false),
            f("venue_trade_id", DataType::Utf8, false),
            f("timestamp", utc_us(), false),
            f("instrument", dict32(), true),
            f("underlying", DataType::UInt32, true),
            f("expiry", utc_us(), true),
            f("strike", PER_CONTRACT, true),
            f("option_type", dict8(), true),
            f("buyer", DataType::UInt32, true),
            f("seller", DataType::UInt32, true),
            f("account", DataType::UInt32, true),
            f("qty", CONTRACTS, true),
            f("price", PER_CONTRACT, true),
            f("amount", CASH, true),
            f("buyer_fee", CASH, true),
            f("seller_fee", CASH, true),
            f("notional", NOTIONAL, true),
        ];
        for (i, name) in AIR_COLUMNS.iter().enumerate() {
            let t = if i < 4 {
                DataType::UInt32
            } else {
                DataType::UInt64
            };
            fields.push(f(name, t, false));
        }
        Arc::new(Schema::new(fields))
    })
    .clone()
}

/// One operation as archived. Optional fields are null where the kind has no such value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeRow {
    /// Days since the epoch.
    pub day: i32,
    /// Rollup name.
    pub rollup: String,
    /// Rollup id.
    pub rollup_id: u32,
    /// The batch.
    pub batch_seq: u64,
    /// Position in the batch.
    pub op_index: u32,
    /// `deposit`, `withdraw`, `trade` or `settle`.
    pub op_kind: String,
    /// The venue's own id.
    pub venue_trade_id: String,
    /// µs since the epoch.
    pub timestamp: i64,
    /// Instrument name.
    pub instrument: Option<String>,
    /// Underlying code.
    pub underlying: Option<u32>,
    /// Expiry, µs.
    pub expiry: Option<i64>,
    /// Strike, unscaled [`PER_CONTRACT`].
    pub strike: Option<i128>,
    /// `call` or `put`.
    pub option_type: Option<String>,
    /// Trade buyer.
    pub buyer: Option<u32>,
    /// Trade seller.
    pub seller: Option<u32>,
    /// Deposit or withdrawal account.
    pub account: Option<u32>,
    /// Lots (unscaled [`CONTRACTS`]).
    pub qty: Option<i128>,
    /// Trade or settlement price per lot (unscaled [`PER_CONTRACT`]).
    pub price: Option<i128>,
    /// Deposit or withdrawal amount (unscaled [`CASH`]).
    pub amount: Option<i128>,
    /// Buyer fee.
    pub buyer_fee: Option<i128>,
    /// Seller fee.
    pub seller_fee: Option<i128>,
    /// `qty × price` (unscaled [`NOTIONAL`]).
    pub notional: Option<i128>,
    /// The AIR record's nine integers.
    pub air: [u64; 9],
}

/// An instrument with its venue name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedInstrument {
    /// Venue name, e.g. `BTC-27DEC26-60000-C`.
    pub name: String,
    /// Terms.
    pub instrument: Instrument,
}

/// Name of an operation kind as archived.
pub fn op_kind_name(op: &Operation) -> &'static str {
    match op {
        Operation::Deposit { .. } => "deposit",
        Operation::Withdraw { .. } => "withdraw",
        Operation::Trade { .. } => "trade",
        Operation::Settle { .. } => "settle",
    }
}

/// Where a row sits: day, rollup, batch, index, venue id.
#[derive(Debug, Clone)]
pub struct RowKey<'a> {
    /// Days since the epoch.
    pub day: u32,
    /// Rollup name.
    pub rollup: &'a str,
    /// Rollup id.
    pub rollup_id: u32,
    /// Batch.
    pub batch_seq: u64,
    /// Index in the batch.
    pub op_index: u32,
    /// Venue id.
    pub venue_trade_id: &'a str,
}

impl TradeRow {
    /// The row poe writes for `op`; `None` if it names an instrument outside `instruments`.
    pub fn new(key: &RowKey<'_>, op: &Operation, instruments: &[NamedInstrument]) -> Option<Self> {
        let i = |v: u64| Some(i128::from(v));
        let mut row = Self {
            day: key.day as i32,
            rollup: key.rollup.to_string(),
            rollup_id: key.rollup_id,
            batch_seq: key.batch_seq,
            op_index: key.op_index,
            op_kind: op_kind_name(op).to_string(),
            venue_trade_id: key.venue_trade_id.to_string(),
            timestamp: op.timestamp_us() as i64,
            instrument: None,
            underlying: None,
            expiry: None,
            strike: None,
            option_type: None,
            buyer: None,
            seller: None,
            account: None,
            qty: None,
            price: None,
            amount: None,
            buyer_fee: None,
            seller_fee: None,
            notional: None,
            air: op.fields(),
        };
        let mut terms = |index: u32| -> Option<()> {
            let named = instruments.get(index as usize)?;
            let t = &named.instrument;
            row.instrument = Some(named.name.clone());
            row.underlying = Some(t.underlying);
            row.expiry = Some(t.expiry_us as i64);
            row.strike = i(t.strike);
            row.option_type = Some(
                match t.kind {
                    OptionKind::Call => "call",
                    OptionKind::Put => "put",
                }
                .into(),
            );
            Some(())
        };
        match *op {
            Operation::Deposit {
                account, amount, ..
            }
            | Operation::Withdraw {
                account, amount, ..
            } => {
                row.account = Some(account);
                row.amount = i(amount);
            }
            Operation::Trade {
                buyer,
                seller,
                instrument,
                qty,
                price,
                buyer_fee,
                seller_fee,
                ..
            } => {
                terms(instrument)?;
                row.buyer = Some(buyer);
                row.seller = Some(seller);
                row.qty = i(qty);
                row.price = i(price);
                row.buyer_fee = i(buyer_fee);
                row.seller_fee = i(seller_fee);
                row.notional = Some(i128::from(qty) * i128::from(price));
            }
            Operation::Settle {
                instrument, price, ..
            } => {
                terms(instrument)?;
                row.price = i(price);
            }
        }
        Some(row)
    }

    /// The first column in which `self` differs from `other`, by schema name.
    pub fn first_difference(&self, other: &Self) -> Option<&'static str> {
        macro_rules! cmp {
            ($($f:ident),*) => {
                $(if self.$f != other.$f { return Some(stringify!($f)); })*
            };
        }
        cmp!(
            day,
            rollup,
            rollup_id,
            batch_seq,
            op_index,
            op_kind,
            venue_trade_id,
            timestamp,
            instrument,
            underlying,
            expiry,
            strike,
            option_type,
            buyer,
            seller,
            account,
            qty,
            price,
            amount,
            buyer_fee,
            seller_fee,
            notional
        );
        (0..9)
            .find(|&k| self.air[k] != other.air[k])
            .map(|k| AIR_COLUMNS[k])
    }
}

fn decimal(values: Vec<Option<i128>>, t: &DataType) -> Result<ArrayRef, ArchiveError> {
    let DataType::Decimal128(p, s) = *t else {
        unreachable!("decimal types only")
    };
    Ok(Arc::new(
        Decimal128Array::from(values).with_precision_and_scale(p, s)?,
    ))
}

fn dict8_array<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(values.collect::<DictionaryArray<Int8Type>>())
}

/// Rows to one Arrow batch under [`trades_schema`].
///
/// # Errors
/// [`ArchiveError::Arrow`] for values outside a column's decimal precision.
pub fn trades_batch(rows: &[TradeRow]) -> Result<RecordBatch, ArchiveError> {
    let col_u32 = |f: &dyn Fn(&TradeRow) -> Option<u32>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<UInt32Array>())
    };
    let ts = |f: &dyn Fn(&TradeRow) -> Option<i64>| -> ArrayRef {
        Arc::new(
            rows.iter()
                .map(f)
                .collect::<TimestampMicrosecondArray>()
                .with_timezone("UTC"),
        )
    };
    let dec = |f: &dyn Fn(&TradeRow) -> Option<i128>, t: &DataType| {
        decimal(rows.iter().map(f).collect(), t)
    };
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(Date32Array::from(
            rows.iter().map(|r| r.day).collect::<Vec<_>>(),
        )),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.rollup.as_str()))
                .collect::<StringArray>(),
        ),
        col_u32(&|r| Some(r.rollup_id)),
        Arc::new(rows.iter().map(|r| r.batch_seq).collect::<UInt64Array>()),
        col_u32(&|r| Some(r.op_index)),
        dict8_array(rows.iter().map(|r| Some(r.op_kind.as_str()))),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.venue_trade_id.as_str()))
                .collect::<StringArray>(),
        ),
        ts(&|r| Some(r.timestamp)),
        Arc::new(
            rows.iter()
                .map(|r| r.instrument.as_deref())
                .collect::<DictionaryArray<Int32Type>>(),
        ),
        col_u32(&|r| r.underlying),
        ts(&|r| r.expiry),
        dec(&|r| r.strike, &PER_CONTRACT)?,
        dict8_array(rows.iter().map(|r| r.option_type.as_deref())),
        col_u32(&|r| r.buyer),
        col_u32(&|r| r.seller),
        col_u32(&|r| r.account),
        dec(&|r| r.qty, &CONTRACTS)?,
        dec(&|r| r.price, &PER_CONTRACT)?,
        dec(&|r| r.amount, &CASH)?,
        dec(&|r| r.buyer_fee, &CASH)?,
        dec(&|r| r.seller_fee, &CASH)?,
        dec(&|r| r.notional, &NOTIONAL)?,
    ];
    for k in 0..9 {
        if k < 4 {
            columns.push(col_u32(&|r| Some(r.air[k] as u32)));
        } else {
            columns.push(Arc::new(
                rows.iter().map(|r| r.air[k]).collect::<UInt64Array>(),
            ));
        }
    }
    Ok(RecordBatch::try_new(trades_schema(), columns)?)
}

/// Column accessors over a batch read back, with null checks that name the column.
struct Cols<'a> {
    batch: &'a RecordBatch,
}

impl<'a> Cols<'a> {
    fn col(&self, name: &str) -> &'a ArrayRef {
        self.batch.column_by_name(name).expect("schema checked")
    }

    fn u32(&self, name: &str, row: usize) -> Option<u32> {
        let a = self.col(name).as_primitive::<UInt32Type>();
        a.is_valid(row).then(|| a.value(row))
    }

    fn u64(&self, name: &str, row: usize) -> Option<u64> {
        let a = self.col(name).as_primitive::<UInt64Type>();
        a.is_valid(row).then(|| a.value(row))
    }

    fn ts(&self, name: &str, row: usize) -> Option<i64> {
        let a = self.col(name).as_primitive::<TimestampMicrosecondType>();
        a.is_valid(row).then(|| a.value(row))
    }

    fn dec(&self, name: &str, row: usize) -> Option<i128> {
        let a = self.col(name).as_primitive::<Decimal128Type>();
        a.is_valid(row).then(|| a.value(row))
    }

    fn str(&self, name: &str, row: usize) -> Option<String> {
        let a = self.col(name);
        if !a.is_valid(row) {
            return None;
        }
        Some(match a.data_type() {
            DataType::Utf8 => a.as_string::<i32>().value(row).to_string(),
            DataType::Dictionary(k, _) if **k == DataType::Int8 => {
                let d = a.as_dictionary::<Int8Type>();
                let key = d.keys().value(row) as usize;
                d.values().as_string::<i32>().value(key).to_string()
            }
            _ => {
                let d = a.as_dictionary::<Int32Type>();
                let key = d.keys().value(row) as usize;
                d.values().as_string::<i32>().value(key).to_string()
            }
        })
    }

    fn required<T>(&self, v: Option<T>, name: &str, row: usize) -> Result<T, ArchiveError> {
        v.ok_or_else(|| ArchiveError::Value(format!("row {row}: column {name} is null")))
    }
}

/// Reads rows back from a batch under [`trades_schema`].
///
/// # Errors
/// [`ArchiveError::Value`] for a null in a required column.
pub fn trade_rows(batch: &RecordBatch) -> Result<Vec<TradeRow>, ArchiveError> {
    let c = Cols { batch };
    let day = batch.column(0).as_primitive::<Date32Type>();
    (0..batch.num_rows())
        .map(|r| {
            let mut air = [0u64; 9];
            for (k, name) in AIR_COLUMNS.iter().enumerate() {
                air[k] = if k < 4 {
                    u64::from(c.required(c.u32(name, r), name, r)?)
                } else {
                    c.required(c.u64(name, r), name, r)?
                };
            }
            Ok(TradeRow {
                day: day.value(r),
                rollup: c.required(c.str("rollup", r), "rollup", r)?,
                rollup_id: c.required(c.u32("rollup_id", r), "rollup_id", r)?,
                batch_seq: c.required(c.u64("batch_seq", r), "batch_seq", r)?,
                op_index: c.required(c.u32("op_index", r), "op_index", r)?,
                op_kind: c.required(c.str("op_kind", r), "op_kind", r)?,
                venue_trade_id: c.required(c.str("venue_trade_id", r), "venue_trade_id", r)?,
                timestamp: c.required(c.ts("timestamp", r), "timestamp", r)?,
                instrument: c.str("instrument", r),
                underlying: c.u32("underlying", r),
                expiry: c.ts("expiry", r),
                strike: c.dec("strike", r),
                option_type: c.str("option_type", r),
                buyer: c.u32("buyer", r),
                seller: c.u32("seller", r),
                account: c.u32("account", r),
                qty: c.dec("qty", r),
                price: c.dec("price", r),
                amount: c.dec("amount", r),
                buyer_fee: c.dec("buyer_fee", r),
                seller_fee: c.dec("seller_fee", r),
                notional: c.dec("notional", r),
                air,
            })
        })
        .collect()
}

/// Key-value metadata keys of a trades file besides Arrow's own `ARROW:schema`
/// (`specs/archive.md` §4), in the order the writer puts them.
pub const TRADES_METADATA_KEYS: [&str; 5] = [
    "poe.schema_version",
    "poe.day",
    "poe.rollup",
    "poe.rollup_id",
    "poe.data_roots",
];

/// The `poe.data_roots` value of a trades file: the batches whose first row is in the file,
/// as `(seq, data_root)`, in the one JSON spelling the writer uses.
pub fn data_roots_value(batches: &[(u64, poe_circle_stark::hash::poseidon2::Digest)]) -> String {
    let entries: Vec<String> = batches
        .iter()
        .map(|(seq, root)| format!("{{\"seq\":{seq},\"data_root\":\"{}\"}}", root.to_hex()))
        .collect();
    format!("[{}]", entries.join(","))
}

/// The statements table schema this build writes ([`STATEMENTS_SCHEMA_VERSION`]): one row per
/// batch, in day-tree order.
pub fn statements_schema() -> Arc<Schema> {
    statements_schema_of(STATEMENTS_SCHEMA_VERSION).expect("the current version")
}

/// The statements table schema of a layout version, if this build reads it.
pub fn statements_schema_of(version: u32) -> Option<Arc<Schema>> {
    static V1: OnceLock<Arc<Schema>> = OnceLock::new();
    static V2: OnceLock<Arc<Schema>> = OnceLock::new();
    match version {
        1 => Some(
            V1.get_or_init(|| Arc::new(Schema::new(statement_fields_v1())))
                .clone(),
        ),
        2 => Some(
            V2.get_or_init(|| {
                let f = Field::new;
                let mut fields = statement_fields_v1();
                fields.extend([
                    f("rollup_vk_id", DataType::Utf8, true),
                    f("signature_r", DataType::Utf8, false),
                    f("signature_s", DataType::Utf8, false),
                ]);
                Arc::new(Schema::new(fields))
            })
            .clone(),
        ),
        _ => None,
    }
}

fn statement_fields_v1() -> Vec<Field> {
    {
        let f = Field::new;
        let hex = |name| f(name, DataType::Utf8, false);
        vec![
            f("day", DataType::Date32, false),
            f("leaf_index", DataType::UInt32, false),
            f("rollup", DataType::Utf8, false),
            f("rollup_id", DataType::UInt32, false),
            f("seq", DataType::UInt64, false),
            hex("batch_id"),
            f("accepted_at", utc_us(), false),
            hex("pre_state_root"),
            hex("post_state_root"),
            hex("data_root"),
            hex("instruments_root"),
            f("n_ops", DataType::UInt32, false),
            f("native_scheme", DataType::Utf8, false),
            hex("native_commitment"),
            f("rollup_proof_system", DataType::Utf8, false),
            hex("rollup_proof_digest"),
            f("leaf_proof_digest", DataType::Utf8, true),
        ]
    }
}

/// One batch statement as archived (digests and hashes in lowercase hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRow {
    /// Days since the epoch.
    pub day: i32,
    /// Position in the day tree.
    pub leaf_index: u32,
    /// Rollup name.
    pub rollup: String,
    /// Rollup id.
    pub rollup_id: u32,
    /// Batch seq.
    pub seq: u64,
    /// SHA3-256 batch id.
    pub batch_id: String,
    /// Acceptance time, µs.
    pub accepted_at: i64,
    /// Digest hex.
    pub pre_state_root: String,
    /// Digest hex.
    pub post_state_root: String,
    /// Digest hex.
    pub data_root: String,
    /// Digest hex.
    pub instruments_root: String,
    /// Operation count.
    pub n_ops: u32,
    /// Native commitment scheme name.
    pub native_scheme: String,
    /// The rollup's native commitment, hex.
    pub native_commitment: String,
    /// The rollup's proof system label.
    pub rollup_proof_system: String,
    /// Keccak-256 of the rollup's proof bytes, hex.
    pub rollup_proof_digest: String,
    /// SHA3-256 of the leaf proof, hex, once proven.
    pub leaf_proof_digest: Option<String>,
    /// The signed header's verification-key id (v2; `None` when the rollup gave none).
    pub rollup_vk_id: Option<String>,
    /// The rollup's Stark ECDSA signature over the header, `(r, s)` as received, 64 lowercase
    /// hex digits each (v2; `None` in a v1 table).
    pub signature: Option<(String, String)>,
}

/// Rows to one batch under [`statements_schema`].
///
/// # Errors
/// Arrow errors only on a bug.
pub fn statements_batch(rows: &[StatementRow]) -> Result<RecordBatch, ArchiveError> {
    let s = |f: &dyn Fn(&StatementRow) -> Option<&str>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Date32Array::from(
            rows.iter().map(|r| r.day).collect::<Vec<_>>(),
        )),
        Arc::new(rows.iter().map(|r| r.leaf_index).collect::<UInt32Array>()),
        s(&|r| Some(&r.rollup)),
        Arc::new(rows.iter().map(|r| r.rollup_id).collect::<UInt32Array>()),
        Arc::new(rows.iter().map(|r| r.seq).collect::<UInt64Array>()),
        s(&|r| Some(&r.batch_id)),
        Arc::new(
            TimestampMicrosecondArray::from(rows.iter().map(|r| r.accepted_at).collect::<Vec<_>>())
                .with_timezone("UTC"),
        ),
        s(&|r| Some(&r.pre_state_root)),
        s(&|r| Some(&r.post_state_root)),
        s(&|r| Some(&r.data_root)),
        s(&|r| Some(&r.instruments_root)),
        Arc::new(rows.iter().map(|r| r.n_ops).collect::<UInt32Array>()),
        s(&|r| Some(&r.native_scheme)),
        s(&|r| Some(&r.native_commitment)),
        s(&|r| Some(&r.rollup_proof_system)),
        s(&|r| Some(&r.rollup_proof_digest)),
        s(&|r| r.leaf_proof_digest.as_deref()),
        s(&|r| r.rollup_vk_id.as_deref()),
        s(&|r| r.signature.as_ref().map(|(r, _)| r.as_str())),
        s(&|r| r.signature.as_ref().map(|(_, s)| s.as_str())),
    ];
    Ok(RecordBatch::try_new(statements_schema(), columns)?)
}

/// The rows of a published `statements.parquet` of any version this build reads (the version
/// is the file's `poe.schema_version`; the audit takes it from the manifest instead).
///
/// # Errors
/// [`ArchiveError`] if the file does not read under its version's schema.
pub fn read_statements_file(bytes: &[u8]) -> Result<Vec<StatementRow>, ArchiveError> {
    let mut last = None;
    for version in (1..=STATEMENTS_SCHEMA_VERSION).rev() {
        let schema = statements_schema_of(version).expect("known version");
        match crate::parquet_io::read(bytes.to_vec(), &schema) {
            Ok(read) => return statement_rows(&read.rows),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("at least one version"))
}

/// Reads rows back from a batch under a [`statements_schema_of`] version (the v2 columns are
/// `None` in a v1 table).
///
/// # Errors
/// [`ArchiveError::Value`] for a null in a required column.
pub fn statement_rows(batch: &RecordBatch) -> Result<Vec<StatementRow>, ArchiveError> {
    let c = Cols { batch };
    let v2 = batch.schema().column_with_name("signature_r").is_some();
    let day = batch.column(0).as_primitive::<Date32Type>();
    let s = |name: &str, r: usize| c.required(c.str(name, r), name, r);
    (0..batch.num_rows())
        .map(|r| {
            Ok(StatementRow {
                day: day.value(r),
                leaf_index: c.required(c.u32("leaf_index", r), "leaf_index", r)?,
                rollup: s("rollup", r)?,
                rollup_id: c.required(c.u32("rollup_id", r), "rollup_id", r)?,
                seq: c.required(c.u64("seq", r), "seq", r)?,
                batch_id: s("batch_id", r)?,
                accepted_at: c.required(c.ts("accepted_at", r), "accepted_at", r)?,
                pre_state_root: s("pre_state_root", r)?,
                post_state_root: s("post_state_root", r)?,
                data_root: s("data_root", r)?,
                instruments_root: s("instruments_root", r)?,
                n_ops: c.required(c.u32("n_ops", r), "n_ops", r)?,
                native_scheme: s("native_scheme", r)?,
                native_commitment: s("native_commitment", r)?,
                rollup_proof_system: s("rollup_proof_system", r)?,
                rollup_proof_digest: s("rollup_proof_digest", r)?,
                leaf_proof_digest: c.str("leaf_proof_digest", r),
                rollup_vk_id: if v2 { c.str("rollup_vk_id", r) } else { None },
                signature: if v2 {
                    Some((s("signature_r", r)?, s("signature_s", r)?))
                } else {
                    None
                },
            })
        })
        .collect()
}
