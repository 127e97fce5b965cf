//! The submission wire format (`specs/api/openapi.yaml`, `specs/api.md` §2) and its parsing at
//! the edge: after [`parse_submission`] every identifier, amount and root is a checked value.

use poe_circle_stark::hash::poseidon2::Digest;
use poe_circle_stark::venue::Operation;
use serde::Deserialize;
use sha3::{Digest as _, Keccak256, Sha3_256};
use starknet_crypto::Felt;

use crate::auth::{parse_felt, starknet_keccak};
use crate::commitment::{keccak_leaf_bytes, Commitment, CommittedOp, Scheme};
use crate::registry::{Registry, Rollup};
use crate::short_string::ShortString;

/// The system name of proofs made with poe's own prover.
pub const POE_PROOF_SYSTEM: &str = "poe-circle-stark/v1";
/// Domain separator at the start of the signed header.
pub const HEADER_DOMAIN: &[u8] = b"poe/batch-header/v1";

/// Why intake refused a batch: one variant per code of `specs/api.md` §3. The HTTP status of
/// each is given once, in `poe-api`, by an exhaustive match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalCode {
    /// `malformed_json`.
    MalformedJson,
    /// `malformed_amount`.
    MalformedAmount,
    /// `malformed_root`.
    MalformedRoot,
    /// `malformed_identifier`.
    MalformedIdentifier,
    /// `malformed_hex`.
    MalformedHex,
    /// `malformed_commitment`.
    MalformedCommitment,
    /// `malformed_signature`.
    MalformedSignature,
    /// `n_ops_mismatch`.
    NOpsMismatch,
    /// `empty_batch`.
    EmptyBatch,
    /// `unknown_rollup`.
    UnknownRollup,
    /// `unknown_instrument`.
    UnknownInstrument,
    /// `bad_signature`.
    BadSignature,
    /// `commitment_scheme_mismatch`.
    CommitmentSchemeMismatch,
    /// `commitment_mismatch`.
    CommitmentMismatch,
    /// `duplicate_trade_id`.
    DuplicateTradeId,
    /// `seq_conflict`.
    SeqConflict,
    /// `seq_gap`.
    SeqGap,
    /// `state_fork`.
    StateFork,
    /// `rollup_proof_invalid`.
    RollupProofInvalid,
    /// `timestamp_in_future`.
    TimestampInFuture,
    /// `timestamp_too_old`.
    TimestampTooOld,
    /// `instrument_expired`.
    InstrumentExpired,
    /// `rule_violation`.
    RuleViolation,
    /// `post_state_root_mismatch`.
    PostStateRootMismatch,
    /// `replay_failed`.
    ReplayFailed,
    /// `invalid_listing`: an instrument listing whose terms cannot be listed.
    InvalidListing,
    /// `listing_conflict`: a listing at a table position another listing holds.
    ListingConflict,
}

impl RefusalCode {
    /// Every code, in the order of this declaration.
    pub const ALL: [Self; 27] = [
        Self::MalformedJson,
        Self::MalformedAmount,
        Self::MalformedRoot,
        Self::MalformedIdentifier,
        Self::MalformedHex,
        Self::MalformedCommitment,
        Self::MalformedSignature,
        Self::NOpsMismatch,
        Self::EmptyBatch,
        Self::UnknownRollup,
        Self::UnknownInstrument,
        Self::BadSignature,
        Self::CommitmentSchemeMismatch,
        Self::CommitmentMismatch,
        Self::DuplicateTradeId,
        Self::SeqConflict,
        Self::SeqGap,
        Self::StateFork,
        Self::RollupProofInvalid,
        Self::TimestampInFuture,
        Self::TimestampTooOld,
        Self::InstrumentExpired,
        Self::RuleViolation,
        Self::PostStateRootMismatch,
        Self::ReplayFailed,
        Self::InvalidListing,
        Self::ListingConflict,
    ];

    /// The wire spelling (`code` and `urn:poe:problem:<code>` of a problem).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MalformedJson => "malformed_json",
            Self::MalformedAmount => "malformed_amount",
            Self::MalformedRoot => "malformed_root",
            Self::MalformedIdentifier => "malformed_identifier",
            Self::MalformedHex => "malformed_hex",
            Self::MalformedCommitment => "malformed_commitment",
            Self::MalformedSignature => "malformed_signature",
            Self::NOpsMismatch => "n_ops_mismatch",
            Self::EmptyBatch => "empty_batch",
            Self::UnknownRollup => "unknown_rollup",
            Self::UnknownInstrument => "unknown_instrument",
            Self::BadSignature => "bad_signature",
            Self::CommitmentSchemeMismatch => "commitment_scheme_mismatch",
            Self::CommitmentMismatch => "commitment_mismatch",
            Self::DuplicateTradeId => "duplicate_trade_id",
            Self::SeqConflict => "seq_conflict",
            Self::SeqGap => "seq_gap",
            Self::StateFork => "state_fork",
            Self::RollupProofInvalid => "rollup_proof_invalid",
            Self::TimestampInFuture => "timestamp_in_future",
            Self::TimestampTooOld => "timestamp_too_old",
            Self::InstrumentExpired => "instrument_expired",
            Self::RuleViolation => "rule_violation",
            Self::PostStateRootMismatch => "post_state_root_mismatch",
            Self::ReplayFailed => "replay_failed",
            Self::InvalidListing => "invalid_listing",
            Self::ListingConflict => "listing_conflict",
        }
    }
}

impl std::fmt::Display for RefusalCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for RefusalCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A refusal at the door: a stable code, the JSON path it concerns, and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} at {path}: {message}")]
pub struct Refusal {
    /// Stable machine-readable code (`specs/api.md` §3).
    pub code: RefusalCode,
    /// JSON path (`operations[3].qty`) or `""` for the whole body.
    pub path: String,
    /// Human explanation, with expected and received values where there are any.
    pub message: String,
    /// Index of the offending operation, if one.
    pub op_index: Option<usize>,
}

impl Refusal {
    /// A refusal without an operation index.
    pub fn new(code: RefusalCode, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            path: path.into(),
            message: message.into(),
            op_index: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BodyJson {
    header: HeaderJson,
    signature: SignatureJson,
    operations: Vec<OpJson>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderJson {
    rollup: String,
    seq: u64,
    pre_state_root: String,
    post_state_root: String,
    native_commitment: CommitmentJson,
    rollup_proof: ProofJson,
    n_ops: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitmentJson {
    scheme: String,
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProofJson {
    system: String,
    bytes: String,
    #[serde(default)]
    vk_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureJson {
    r: String,
    s: String,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum OpJson {
    Deposit {
        id: String,
        account: u32,
        amount: String,
        timestamp_us: String,
    },
    Withdraw {
        id: String,
        account: u32,
        amount: String,
        timestamp_us: String,
    },
    Trade {
        id: String,
        buyer: u32,
        seller: u32,
        instrument: String,
        qty: String,
        price: String,
        buyer_fee: String,
        seller_fee: String,
        timestamp_us: String,
    },
    Settle {
        id: String,
        instrument: String,
        price: String,
        timestamp_us: String,
    },
}

/// The checked header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Rollup wire name.
    pub rollup: ShortString,
    /// Sequence number, from 1.
    pub seq: u64,
    /// poe state root before the batch.
    pub pre_state_root: Digest,
    /// poe state root after the batch.
    pub post_state_root: Digest,
    /// The rollup's commitment scheme.
    pub scheme: Scheme,
    /// The rollup's commitment value.
    pub commitment: Commitment,
    /// Proof system label.
    pub proof_system: ShortString,
    /// Verification key id, if the rollup gave one.
    pub vk_id: Option<ShortString>,
    /// Keccak-256 of the rollup's proof bytes.
    pub proof_digest: [u8; 32],
    /// Operation count.
    pub n_ops: u32,
}

/// A parsed, checked submission (not yet authenticated or re-executed).
#[derive(Debug, Clone)]
pub struct Submission {
    /// The header.
    pub header: Header,
    /// Signature `(r, s)` over [`Header::message_hash`].
    pub signature: (Felt, Felt),
    /// Operations in batch order.
    pub ops: Vec<CommittedOp>,
    /// The rollup's own proof.
    pub proof_bytes: Vec<u8>,
}

impl Header {
    /// The signed bytes (`specs/api.md` §2.2).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_DOMAIN.len() + 7 * 32 + 13);
        out.extend_from_slice(HEADER_DOMAIN);
        out.extend_from_slice(&self.rollup.to_be_bytes32());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.pre_state_root.to_bytes());
        out.extend_from_slice(&self.post_state_root.to_bytes());
        out.push(scheme_code(self.scheme));
        out.extend_from_slice(&self.commitment);
        out.extend_from_slice(&self.n_ops.to_be_bytes());
        out.extend_from_slice(&self.proof_system.to_be_bytes32());
        out.extend_from_slice(
            &self
                .vk_id
                .as_ref()
                .map_or([0u8; 32], ShortString::to_be_bytes32),
        );
        out.extend_from_slice(&self.proof_digest);
        out
    }

    /// `starknet_keccak(signed_bytes)`: what the rollup signs.
    pub fn message_hash(&self) -> Felt {
        starknet_keccak(&self.signed_bytes())
    }
}

/// 1..=4 in [`Scheme::ALL`] order.
pub fn scheme_code(s: Scheme) -> u8 {
    Scheme::ALL.iter().position(|&x| x == s).expect("listed") as u8 + 1
}

impl Submission {
    /// Canonical bytes: signed header, `r`, the low-s form of `s` (`min(s, n − s)`: both
    /// verify, and must name one batch), then each operation's 85 packed bytes.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = self.header.signed_bytes();
        out.extend_from_slice(&self.signature.0.to_bytes_be());
        out.extend_from_slice(&crate::auth::low_s(&self.signature.1).to_bytes_be());
        for op in &self.ops {
            out.extend_from_slice(&keccak_leaf_bytes(op));
        }
        out
    }

    /// The batch id: SHA3-256 of the canonical bytes.
    pub fn batch_id(&self) -> [u8; 32] {
        Sha3_256::digest(self.canonical_bytes()).into()
    }
}

/// A canonical unsigned decimal: `0` or no leading zero, at most 2^63 − 1.
fn parse_amount(path: &str, text: &str) -> Result<u64, Refusal> {
    let bad = || {
        Refusal::new(
            RefusalCode::MalformedAmount,
            path,
            format!("{text:?} is not a canonical decimal integer in 0..=2^63-1"),
        )
    };
    if text.is_empty()
        || text.len() > 19
        || !text.bytes().all(|b| b.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return Err(bad());
    }
    let v: u64 = text.parse().map_err(|_| bad())?;
    if v > poe_circle_stark::venue::MAX_AMOUNT {
        return Err(bad());
    }
    Ok(v)
}

fn parse_digest(path: &str, text: &str) -> Result<Digest, Refusal> {
    Digest::from_hex(text)
        .map_err(|e| Refusal::new(RefusalCode::MalformedRoot, path, e.to_string()))
}

fn parse_short(path: &str, text: &str) -> Result<ShortString, Refusal> {
    ShortString::try_from(text)
        .map_err(|e| Refusal::new(RefusalCode::MalformedIdentifier, path, e.to_string()))
}

fn parse_hex_bytes(path: &str, text: &str) -> Result<Vec<u8>, Refusal> {
    text.strip_prefix("0x")
        .and_then(|h| hex::decode(h).ok())
        .ok_or_else(|| {
            Refusal::new(
                RefusalCode::MalformedHex,
                path,
                "expected 0x-prefixed hex bytes",
            )
        })
}

/// Parses a request body against the registry.
///
/// # Errors
/// [`Refusal`] with code `malformed_json`, `unknown_rollup`, `unknown_instrument`,
/// `malformed_*`, `n_ops_mismatch` or `empty_batch`.
pub fn parse_submission<'r>(
    body: &[u8],
    registry: &'r Registry,
) -> Result<(Submission, &'r Rollup), Refusal> {
    let json: BodyJson = serde_json::from_slice(body).map_err(|e| {
        Refusal::new(
            RefusalCode::MalformedJson,
            format!("line {} column {}", e.line(), e.column()),
            e.to_string(),
        )
    })?;
    let h = json.header;
    let rollup = registry.get(&h.rollup).ok_or_else(|| {
        Refusal::new(
            RefusalCode::UnknownRollup,
            "header.rollup",
            format!("rollup {:?} is not registered", h.rollup),
        )
    })?;
    let scheme = Scheme::from_name(&h.native_commitment.scheme).ok_or_else(|| {
        Refusal::new(
            RefusalCode::MalformedCommitment,
            "header.native_commitment.scheme",
            format!("unknown scheme {:?}", h.native_commitment.scheme),
        )
    })?;
    let value = parse_hex_bytes("header.native_commitment.value", &h.native_commitment.value)?;
    let commitment: Commitment = value.try_into().map_err(|_| {
        Refusal::new(
            RefusalCode::MalformedCommitment,
            "header.native_commitment.value",
            "expected 32 bytes",
        )
    })?;
    let proof_bytes = parse_hex_bytes("header.rollup_proof.bytes", &h.rollup_proof.bytes)?;
    let header = Header {
        rollup: rollup.name.clone(),
        seq: h.seq,
        pre_state_root: parse_digest("header.pre_state_root", &h.pre_state_root)?,
        post_state_root: parse_digest("header.post_state_root", &h.post_state_root)?,
        scheme,
        commitment,
        proof_system: parse_short("header.rollup_proof.system", &h.rollup_proof.system)?,
        vk_id: h
            .rollup_proof
            .vk_id
            .as_deref()
            .map(|v| parse_short("header.rollup_proof.vk_id", v))
            .transpose()?,
        proof_digest: Keccak256::digest(&proof_bytes).into(),
        n_ops: h.n_ops,
    };
    let signature = (
        parse_felt("r", &json.signature.r).map_err(|e| {
            Refusal::new(
                RefusalCode::MalformedSignature,
                "signature.r",
                e.to_string(),
            )
        })?,
        parse_felt("s", &json.signature.s).map_err(|e| {
            Refusal::new(
                RefusalCode::MalformedSignature,
                "signature.s",
                e.to_string(),
            )
        })?,
    );
    if json.operations.is_empty() {
        return Err(Refusal::new(
            RefusalCode::EmptyBatch,
            "operations",
            "a batch needs at least one operation",
        ));
    }
    if json.operations.len() != h.n_ops as usize {
        return Err(Refusal::new(
            RefusalCode::NOpsMismatch,
            "header.n_ops",
            format!(
                "header says {} operations, body has {}",
                h.n_ops,
                json.operations.len()
            ),
        ));
    }
    let ops = json
        .operations
        .into_iter()
        .enumerate()
        .map(|(i, op)| {
            parse_op(i, op, rollup).map_err(|mut r| {
                r.op_index = Some(i);
                r
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((
        Submission {
            header,
            signature,
            ops,
            proof_bytes,
        },
        rollup,
    ))
}

/// A JSON array of operations in their wire form (`specs/api/openapi.yaml` Operation), with
/// instrument names resolved against `rollup`'s table: what a client builds a batch from.
///
/// # Errors
/// The refusal intake would give the same operations in a submission (`operations[i].…`).
pub fn parse_operations(json: &[u8], rollup: &Rollup) -> Result<Vec<CommittedOp>, Refusal> {
    let ops: Vec<OpJson> = serde_json::from_slice(json).map_err(|e| {
        Refusal::new(
            RefusalCode::MalformedJson,
            format!("line {} column {}", e.line(), e.column()),
            e.to_string(),
        )
    })?;
    ops.into_iter()
        .enumerate()
        .map(|(i, op)| parse_op(i, op, rollup))
        .collect()
}

fn parse_op(i: usize, op: OpJson, rollup: &Rollup) -> Result<CommittedOp, Refusal> {
    let at = |f: &str| format!("operations[{i}].{f}");
    let instrument = |name: &str| {
        rollup.instrument_index(name).ok_or_else(|| {
            Refusal::new(
                RefusalCode::UnknownInstrument,
                at("instrument"),
                format!("{name:?} is not an instrument of {}", rollup.name),
            )
        })
    };
    let (id, op) = match op {
        OpJson::Deposit {
            id,
            account,
            amount,
            timestamp_us,
        } => (
            id,
            Operation::Deposit {
                account,
                amount: parse_amount(&at("amount"), &amount)?,
                timestamp_us: parse_amount(&at("timestamp_us"), &timestamp_us)?,
            },
        ),
        OpJson::Withdraw {
            id,
            account,
            amount,
            timestamp_us,
        } => (
            id,
            Operation::Withdraw {
                account,
                amount: parse_amount(&at("amount"), &amount)?,
                timestamp_us: parse_amount(&at("timestamp_us"), &timestamp_us)?,
            },
        ),
        OpJson::Trade {
            id,
            buyer,
            seller,
            instrument: name,
            qty,
            price,
            buyer_fee,
            seller_fee,
            timestamp_us,
        } => (
            id,
            Operation::Trade {
                buyer,
                seller,
                instrument: instrument(&name)?,
                qty: parse_amount(&at("qty"), &qty)?,
                price: parse_amount(&at("price"), &price)?,
                buyer_fee: parse_amount(&at("buyer_fee"), &buyer_fee)?,
                seller_fee: parse_amount(&at("seller_fee"), &seller_fee)?,
                timestamp_us: parse_amount(&at("timestamp_us"), &timestamp_us)?,
            },
        ),
        OpJson::Settle {
            id,
            instrument: name,
            price,
            timestamp_us,
        } => (
            id,
            Operation::Settle {
                instrument: instrument(&name)?,
                price: parse_amount(&at("price"), &price)?,
                timestamp_us: parse_amount(&at("timestamp_us"), &timestamp_us)?,
            },
        ),
    };
    let trade_id = parse_short(&at("id"), &id)?;
    Ok(CommittedOp { trade_id, op })
}
