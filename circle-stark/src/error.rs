//! Errors of proving and verifying.

use crate::proof::{AirId, ProofFormatError};

/// Why a list of batch statements is not a day.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DayError {
    /// A day needs at least one batch.
    #[error("a day needs at least one batch")]
    Empty,
    /// Statements out of canonical order `(rollup_id, seq)` or duplicated.
    #[error("statement {index} (rollup {rollup_id}, seq {seq}) is out of canonical order")]
    Order {
        /// Position in the list.
        index: usize,
        /// Its rollup.
        rollup_id: u32,
        /// Its seq.
        seq: u64,
    },
    /// A sequence number skipped within one rollup.
    #[error("rollup {rollup_id}: expected seq {expected}, got {got}")]
    SeqGap {
        /// The rollup.
        rollup_id: u32,
        /// Previous seq + 1.
        expected: u64,
        /// Found.
        got: u64,
    },
    /// A batch that does not start where the previous one ended.
    #[error("rollup {rollup_id} seq {seq}: pre-state root {got} does not continue {expected}")]
    BrokenChain {
        /// The rollup.
        rollup_id: u32,
        /// The batch that breaks the chain.
        seq: u64,
        /// The previous batch's post-state root.
        expected: String,
        /// This batch's pre-state root.
        got: String,
    },
    /// More batches or operations than the statement can carry.
    #[error("{what}: {got} exceeds the maximum {max}")]
    TooLarge {
        /// Which count.
        what: &'static str,
        /// The limit.
        max: u64,
        /// Found.
        got: u64,
    },
}

/// Why a proof could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProveError {
    /// Nothing to prove.
    #[error("no records to prove")]
    NoRecords,
    /// Record length outside 1..=64 limbs.
    #[error("records must have 1..={max} limbs, got {got}")]
    RecordLimbs {
        /// The limit, `MAX_RECORD_LIMBS` of the data-root AIR.
        max: usize,
        /// Given.
        got: usize,
    },
    /// The flat record buffer is not a whole number of records.
    #[error("{len} limbs is not a multiple of the record length {record_limbs}")]
    RaggedRecords {
        /// Limbs given.
        len: usize,
        /// Limbs per record.
        record_limbs: usize,
    },
    /// More records than one proof takes.
    #[error("{got} records exceed the limit of {max} per proof")]
    TooManyRecords {
        /// The limit.
        max: usize,
        /// Given.
        got: usize,
    },
    /// A limb ≥ p: cannot come from poe's encoders.
    #[error("record {record}, limb {limb} is not a canonical field element")]
    NonCanonicalLimb {
        /// Record index.
        record: usize,
        /// Limb index.
        limb: usize,
    },
    /// The statements are not a day.
    #[error("not a day: {0}")]
    Day(#[from] DayError),
    /// The batch breaks a venue rule: it has no validity proof.
    #[error("the batch breaks a rule: {0}")]
    Rule(#[from] crate::venue::Violation),
    /// No starting state for a rollup in the day.
    #[error("no venue state for rollup {rollup_id} before seq {seq}")]
    NoVenue {
        /// The rollup.
        rollup_id: u32,
        /// Its first batch of the day.
        seq: u64,
    },
    /// A segment of the root proof failed.
    #[error("segment of rollup {rollup_id} seq {first_seq}..={last_seq}: {error}")]
    Segment {
        /// The rollup.
        rollup_id: u32,
        /// The segment's first batch.
        first_seq: u64,
        /// Its last.
        last_seq: u64,
        /// What failed.
        error: Box<ProveError>,
    },
    /// A run of batches needs more rows in a component than the requested shape gives it.
    #[error("shape {shape}: component {component} needs {rows} rows, the shape gives {capacity}")]
    ShapeOverflow {
        /// The shape (class name, or `custom`).
        shape: String,
        /// The component.
        component: &'static str,
        /// Rows it needs.
        rows: usize,
        /// Rows the shape gives it.
        capacity: usize,
    },
    /// No shape class holds a run of batches (one batch too large for the catalogue).
    #[error("no shape class holds {what}")]
    NoShapeClass {
        /// The run, and its largest component's needs.
        what: String,
    },
    /// A circuit was given another number of public or witness values than it has wires.
    #[error("the circuit has {expected} {what} wires, {got} values given")]
    CircuitInputs {
        /// `public` or `witness`.
        what: &'static str,
        /// The circuit's count.
        expected: usize,
        /// The values given.
        got: usize,
    },
    /// The values given do not satisfy the circuit.
    #[error("op {op} asserts {form} = 0, got {got}")]
    Unsatisfied {
        /// The failing assertion's index.
        op: usize,
        /// The asserted form with its reads' values.
        form: String,
        /// The form's value.
        got: String,
    },
    /// stwo refused to prove: the trace does not satisfy the AIR (a bug in poe).
    #[error("prover failed: {0}")]
    Stwo(String),
    /// A node of the day's tree could not be built or proven (a bug in poe, or a shape the
    /// tree does not hold).
    #[error("recursion: {0}")]
    Recursion(String),
}

/// Why a proof was rejected. Each variant names one check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The bytes are not a well-formed proof.
    #[error("malformed proof: {0}")]
    Format(#[from] ProofFormatError),
    /// A proof for another statement type.
    #[error("proof is for AIR {got:?}, expected {expected:?}")]
    WrongAir {
        /// What the verifier checks.
        expected: AirId,
        /// What the proof says.
        got: AirId,
    },
    /// Below the verifier's minimum security.
    #[error("proof has {got} bits of conjectured security, minimum is {expected}")]
    SecurityTooLow {
        /// The policy's minimum.
        expected: u32,
        /// The proof's.
        got: u32,
    },
    /// The proof's public inputs are not the statement being checked.
    #[error("public inputs differ in {field}: the proof is for another statement")]
    PublicInputMismatch {
        /// The first differing field (`n_records`, `record_limbs`, `root`), or `encoding`
        /// if the proof's public inputs do not decode.
        field: &'static str,
    },
    /// The day proof is for another day statement.
    #[error("day statement differs in {field}: the proof is for another statement")]
    DayStatementMismatch {
        /// The first differing field (`day`, `day_root`, `manifest_hash`, ...).
        field: &'static str,
    },
    /// The proof's batch-validity statement is not the one asked about.
    #[error("batch-validity statement differs in {field}")]
    BatchStatementMismatch {
        /// The first field that differs (`encoding` if the proof's does not decode).
        field: &'static str,
    },
    /// The statement itself is out of range (no records, bad record length, too many).
    #[error("invalid statement: {0}")]
    InvalidStatement(String),
    /// The proof's shape (trees, columns, components) is not the AIR's.
    #[error("proof structure does not match the AIR: {0}")]
    Structure(String),
    /// The LogUp sums do not close the Merkle relation at the public root.
    #[error("LogUp sums do not match the public root")]
    LogUpSumMismatch,
    /// The preprocessed tree is not the one the AIR pins (batch validity v3: the range table).
    #[error("preprocessed commitment is {got}, the AIR pins {expected}")]
    PreprocessedRoot {
        /// The pinned root, as eight hex words.
        expected: String,
        /// The proof's.
        got: String,
    },
    /// The proof was made for another verifying key (channel, blowup) than the one given.
    #[error("the key has {field} {expected}, the proof {got}")]
    WrongKey {
        /// `channel` or `log_blowup`.
        field: &'static str,
        /// The key's.
        expected: String,
        /// The proof's.
        got: String,
    },
    /// A recursive root names a circuit the verifier holds no key for (a shape class, a
    /// tree shape), or was made under other keys than the verifier's.
    #[error("no verifying key for {circuit}")]
    UnknownKey {
        /// The circuit: `W over class o12s10`, `tree shape (2^19, 2^15)`.
        circuit: String,
    },
    /// The sample proofs a recursive root's keys are derived from (`root.samples`) do not
    /// give them: a sample of another segment, one that does not verify, another circuit.
    #[error("the key samples do not give the root's keys: {0}")]
    KeySamples(String),
    /// The out-of-domain sample does not satisfy the constraints.
    #[error("constraint check at the out-of-domain point failed")]
    OodsMismatch,
    /// A Merkle decommitment of the trace failed.
    #[error("trace decommitment rejected: {0}")]
    Merkle(String),
    /// FRI low-degree test failed.
    #[error("FRI rejected: {0}")]
    Fri(String),
    /// Proof-of-work nonce does not meet the grinding bits.
    #[error("proof of work is invalid")]
    ProofOfWork,
    /// A root proof's segments do not cover the day's batches exactly once, in order.
    #[error("segments of rollup {rollup_id}: expected {expected}, got {got}")]
    SegmentCoverage {
        /// The rollup where coverage breaks.
        rollup_id: u32,
        /// What the batch statements call for.
        expected: String,
        /// What the root proof has.
        got: String,
    },
    /// A segment proof of a root proof was rejected.
    #[error("segment rollup {rollup_id} seq {first_seq}..={last_seq}: {error}")]
    Segment {
        /// Its rollup.
        rollup_id: u32,
        /// First batch it covers.
        first_seq: u64,
        /// Last batch it covers.
        last_seq: u64,
        /// Why.
        error: Box<VerifyError>,
    },
}
