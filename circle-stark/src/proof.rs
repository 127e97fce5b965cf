//! poe's canonical, versioned proof format (`specs/proof-format.md`).
//!
//! One encoding per proof: fixed little-endian integers, counts before every list, canonical
//! field elements only, nothing after the last field. [`Proof::from_bytes`] rejects anything
//! else with a specific [`ProofFormatError`], and re-encoding a decoded proof gives back the
//! same bytes.

use sha3::{Digest as _, Sha3_256};
use stwo::core::channel::MerkleChannel;
use stwo::core::fri::{FriLayerProof, FriProof};
use stwo::core::pcs::quotients::CommitmentSchemeProof;
use stwo::core::pcs::TreeVec;
use stwo::core::poly::line::LinePoly;
use stwo::core::proof::StarkProof;
use stwo::core::vcs::blake2_hash::Blake2sHash;
use stwo::core::vcs_lifted::blake2_merkle::{Blake2sMerkleChannel, Blake2sMerkleHasher};
use stwo::core::vcs_lifted::merkle_hasher::MerkleHasherLifted;
use stwo::core::vcs_lifted::verifier::MerkleDecommitmentLifted;

use crate::config::{ConfigError, SecurityConfig};
use crate::field::{m31_from_canonical, qm31_from_array, qm31_to_array, SecureField, M31};
use crate::hash::channel::{Poseidon2MerkleChannel, Poseidon2MerkleHasher};
use crate::hash::poseidon2::Digest;

/// The first eight bytes of every proof file.
pub const MAGIC: [u8; 8] = *b"POEPROOF";
/// Version 1: Blake2s proofs, no channel field. Every Blake2s proof is written in it, so that
/// the proofs archived before version 2 keep their bytes and addresses.
pub const FORMAT_V1: u16 = 1;
/// Version 2: a channel field after the AIR id; written for every channel but Blake2s.
pub const FORMAT_V2: u16 = 2;

/// The hash a proof's commitments, transcript and proof of work are made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ChannelId {
    /// stwo's Blake2s Merkle channel: fastest to prove natively.
    Blake2s = 1,
    /// poe's Poseidon2-M31 Merkle channel (`specs/poseidon2.md` §8): cheap to verify inside an
    /// M31 AIR, the channel of proofs that recursion verifies. Id 3: its transcript puts the
    /// update kind in the sponge's capacity, so that every value it absorbs is lane-aligned
    /// ([`RETIRED_CHANNELS`] holds id 2, the first layout).
    Poseidon2 = 3,
}

/// Channel ids that were written once and are refused now, with the reason: id 2, the
/// Poseidon2-M31 channel with the update kind as the first message element (stops 24–31),
/// retired before any bundle carried a proof under it — its messages were not lane-aligned,
/// which a recursive verifier pays for with ~8 rows per absorbed QM31.
pub const RETIRED_CHANNELS: [(u16, &str); 1] = [(
    2,
    "Poseidon2-M31 with the unaligned transcript of stops 24-31; re-prove under channel 3",
)];

impl ChannelId {
    /// Every channel, in wire order.
    pub const ALL: [ChannelId; 2] = [ChannelId::Blake2s, ChannelId::Poseidon2];

    /// Parses the wire value.
    pub fn from_u16(value: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|c| *c as u16 == value)
    }

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Blake2s => "blake2s",
            Self::Poseidon2 => "poseidon2",
        }
    }

    /// Parses [`ChannelId::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The format version a proof under this channel is written in.
    pub fn format_version(self) -> u16 {
        match self {
            Self::Blake2s => FORMAT_V1,
            Self::Poseidon2 => FORMAT_V2,
        }
    }
}

/// A stwo Merkle channel poe proves and verifies under: its wire id, and the way its proofs sit
/// in [`Stark`].
pub trait PoeChannel: MerkleChannel + 'static {
    /// The wire id.
    const ID: ChannelId;
    /// Wraps a stwo proof made under this channel.
    fn wrap(proof: StarkProof<Self::H>) -> Stark;
    /// The transcript state as eight words: Blake2s's digest as little-endian words, or the
    /// eight M31 limbs of the Poseidon2 digest. (The draw counter is not part of it; it resets
    /// on every mix and counts draws since.)
    fn transcript_state(channel: &Self::C) -> [u32; 8];
    /// A Merkle root as eight words, in the same convention as [`Self::transcript_state`].
    fn hash_words(hash: &<Self::H as MerkleHasherLifted>::Hash) -> [u32; 8];
}

impl PoeChannel for Blake2sMerkleChannel {
    const ID: ChannelId = ChannelId::Blake2s;
    fn wrap(proof: StarkProof<Self::H>) -> Stark {
        Stark::Blake2s(proof)
    }
    fn transcript_state(channel: &Self::C) -> [u32; 8] {
        Self::hash_words(&channel.digest())
    }
    fn hash_words(hash: &<Self::H as MerkleHasherLifted>::Hash) -> [u32; 8] {
        let bytes: [u8; 32] = (*hash).into();
        std::array::from_fn(|i| u32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap()))
    }
}

impl PoeChannel for Poseidon2MerkleChannel {
    const ID: ChannelId = ChannelId::Poseidon2;
    fn wrap(proof: StarkProof<Self::H>) -> Stark {
        Stark::Poseidon2(proof)
    }
    fn transcript_state(channel: &Self::C) -> [u32; 8] {
        Self::hash_words(&channel.digest())
    }
    fn hash_words(hash: &<Self::H as MerkleHasherLifted>::Hash) -> [u32; 8] {
        hash.0.map(|x| x.0)
    }
}

/// The stwo proof, under the channel it was made with.
#[derive(Debug, Clone)]
pub enum Stark {
    /// Blake2s commitments and transcript.
    Blake2s(StarkProof<Blake2sMerkleHasher>),
    /// Poseidon2-M31 commitments and transcript.
    Poseidon2(StarkProof<Poseidon2MerkleHasher>),
}

impl Stark {
    /// The channel.
    pub fn channel(&self) -> ChannelId {
        match self {
            Self::Blake2s(_) => ChannelId::Blake2s,
            Self::Poseidon2(_) => ChannelId::Poseidon2,
        }
    }

    /// Where the proof's bytes go (stwo's estimate, in bytes): out-of-domain samples, queried
    /// values, FRI's sibling values, FRI's and the trace trees' authentication paths.
    pub fn size_breakdown(&self) -> [(&'static str, usize); 5] {
        let b = match self {
            Self::Blake2s(p) => p.size_breakdown_estimate(),
            Self::Poseidon2(p) => p.size_breakdown_estimate(),
        };
        [
            ("OODS samples", b.oods_samples),
            ("queried values", b.queries_values),
            ("FRI values", b.fri_samples),
            ("FRI paths", b.fri_decommitments),
            ("trace paths", b.trace_decommitments),
        ]
    }

    /// The number of committed trees.
    pub fn n_trees(&self) -> usize {
        match self {
            Self::Blake2s(p) => p.0.commitments.len(),
            Self::Poseidon2(p) => p.0.commitments.len(),
        }
    }

    /// The Blake2s proof, for tests and tools that edit one.
    pub fn as_blake2s_mut(&mut self) -> Option<&mut StarkProof<Blake2sMerkleHasher>> {
        match self {
            Self::Blake2s(p) => Some(p),
            Self::Poseidon2(_) => None,
        }
    }

    /// The Poseidon2-M31 proof, for tests and tools that edit one.
    pub fn as_poseidon2_mut(&mut self) -> Option<&mut StarkProof<Poseidon2MerkleHasher>> {
        match self {
            Self::Poseidon2(p) => Some(p),
            Self::Blake2s(_) => None,
        }
    }
}

/// Which statement a proof is about; each has its own AIR and public-input layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum AirId {
    /// `air::DataRootStatement`: records ↦ Poseidon2-M31 Merkle root.
    DataRoot = 1,
    /// `statement::DayStatement`: the day's batch statements ↦ day root, with the day's
    /// summary bound as public input (`specs/day-proof.md`).
    DayRoot = 2,
    /// `validity::ValidityStatement`: one or more consecutive batches of a rollup obey the
    /// venue rules (`specs/batch-air.md` §5: bound to the pre- and post-state roots, one data
    /// tree per batch). (Retired: id 3, v0, which stated the touched leaves in the clear; id 4,
    /// v1, one batch per proof.)
    BatchValidity = 5,
    /// The same statement under the batch-validity AIR v3 (`specs/batch-air.md` §6): the
    /// range table's values are a preprocessed column whose commitment the verifier pins,
    /// the public input is constant-size and the component sizes may be a shape class's: a
    /// proof a fixed recursive verifier can check. The day root's segments since
    /// `poe/day-root/v3`; frozen by the golden bundle `tests/fixtures/bundle_v3`.
    BatchValidityV3 = 6,
    /// `recursion::node`: an arithmetic circuit over QM31, wiring preprocessed (the verifying
    /// key), the statement its public wires (`specs/recursion.md` §7). Recursion's node AIR
    /// (issue 16): not made by the pipeline until the root proof uses it (issue 17), not frozen.
    Node = 7,
    /// The same statement under the batch-validity AIR v4 (`specs/batch-air.md` §7): v3 with
    /// one state-tree pair per batch, so that the proof also states the state root after every
    /// batch (`ValidityStatement::interior_roots`): a segment opens every root between its
    /// batches and the day needs no leaf proofs for them.
    BatchValidityV4 = 8,
}

/// The last FRI layer's log degree bound of node proofs: FRI stops four layers early on a
/// 16-coefficient polynomial, which spares a node verifying a node those layers' leaves and
/// paths (`specs/recursion.md` §7.11). Every other AIR folds to a constant.
pub const NODE_LOG_LAST_LAYER: u32 = 4;

/// How many times each FRI layer of a node proof folds: two, so a query opens four values of a
/// layer in one packed leaf (stwo packs four values a leaf) and half as many layers — half the
/// FRI paths a node verifying a node hashes, and in the proof (`specs/recursion.md` §7.11).
/// Every other AIR folds once per layer.
pub const NODE_FOLD_STEP: u32 = 2;

impl AirId {
    /// The stwo configuration of proofs of this AIR under `config`: lifting off; for node
    /// proofs fold step `NODE_FOLD_STEP` and a last FRI layer of degree
    /// `2^NODE_LOG_LAST_LAYER`, for the others fold step 1 and a constant last layer.
    pub fn pcs_config(self, config: &SecurityConfig) -> stwo::core::pcs::PcsConfig {
        let mut pcs = config.pcs_config();
        if self == AirId::Node {
            pcs.fri_config.log_last_layer_degree_bound = NODE_LOG_LAST_LAYER;
            pcs.fri_config.fold_step = NODE_FOLD_STEP;
        }
        pcs
    }

    /// Parses the wire value.
    pub fn from_u16(value: u16) -> Option<Self> {
        match value {
            1 => Some(Self::DataRoot),
            2 => Some(Self::DayRoot),
            5 => Some(Self::BatchValidity),
            6 => Some(Self::BatchValidityV3),
            7 => Some(Self::Node),
            8 => Some(Self::BatchValidityV4),
            _ => None,
        }
    }

    /// Human name, also the AIR's identity in specs and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::DataRoot => "poe/data-root/v1",
            Self::DayRoot => "poe/day-root/v1",
            Self::BatchValidity => "poe/batch-validity/v2",
            Self::BatchValidityV3 => "poe/batch-validity/v3",
            Self::Node => "poe/node/v0",
            Self::BatchValidityV4 => "poe/batch-validity/v4",
        }
    }
}

/// A proof: what it proves (AIR and public inputs), under which parameters, and the STARK.
#[derive(Debug, Clone)]
pub struct Proof {
    /// The AIR.
    pub air: AirId,
    /// FRI and grinding parameters the proof was made with.
    pub config: SecurityConfig,
    /// Public inputs, in the AIR's canonical order.
    pub public_inputs: Vec<M31>,
    /// LogUp sums claimed per component, in component order.
    pub claimed_sums: Vec<SecureField>,
    /// The stwo proof, which also says the channel.
    pub stark: Stark,
}

/// Why bytes are not a proof.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofFormatError {
    /// Not a poe proof at all.
    #[error("bad magic: expected {expected:?}, got {got:?}")]
    BadMagic {
        /// `POEPROOF`.
        expected: [u8; 8],
        /// What the file starts with.
        got: Vec<u8>,
    },
    /// A format version this build does not know.
    #[error("unsupported proof format version: expected {expected:?}, got {got}")]
    UnsupportedVersion {
        /// [`FORMAT_V1`] and [`FORMAT_V2`].
        expected: [u16; 2],
        /// Found.
        got: u16,
    },
    /// A channel id this build does not know.
    #[error("unknown channel id {got}")]
    UnknownChannel {
        /// Found.
        got: u16,
    },
    /// A channel id this build knows as retired ([`RETIRED_CHANNELS`]).
    #[error("retired channel id {got}: {reason}")]
    RetiredChannel {
        /// Found.
        got: u16,
        /// Why, and what to do.
        reason: &'static str,
    },
    /// A channel written in a version other than its own (Blake2s proofs are version 1 only),
    /// which would give one proof two encodings.
    #[error("a {channel} proof is written as version {expected}, got version {got}")]
    NonCanonicalVersion {
        /// The channel's name.
        channel: &'static str,
        /// [`ChannelId::format_version`].
        expected: u16,
        /// Found.
        got: u16,
    },
    /// An AIR id this build does not know.
    #[error("unknown AIR id {got}")]
    UnknownAir {
        /// Found.
        got: u16,
    },
    /// The input ends inside a field.
    #[error("truncated: {needed} more bytes needed at offset {offset}")]
    Truncated {
        /// Where the field starts.
        offset: usize,
        /// Bytes missing.
        needed: usize,
    },
    /// Bytes after the last field.
    #[error("{count} trailing bytes after the proof")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// A field element encoded as a value ≥ p.
    #[error("non-canonical field element {value:#010x} at offset {offset}")]
    NonCanonicalField {
        /// Where.
        offset: usize,
        /// The raw value.
        value: u32,
    },
    /// A list count that cannot fit in the remaining input.
    #[error("list of {count} items at offset {offset} exceeds the remaining {remaining} bytes")]
    LengthOverflow {
        /// Where the count is.
        offset: usize,
        /// The count.
        count: u32,
        /// Bytes left.
        remaining: usize,
    },
    /// The last FRI layer must have a power-of-two number of coefficients.
    #[error("FRI last layer has {got} coefficients, not a power of two")]
    LastLayerNotPowerOfTwo {
        /// Found.
        got: usize,
    },
    /// Parameters outside their ranges.
    #[error("invalid security configuration: {0}")]
    Config(#[from] ConfigError),
    /// A recursive root names a segment shape class outside the catalogue.
    #[error("unknown shape class o{log_ops}s{log_state} at offset {offset}")]
    UnknownClass {
        /// Where.
        offset: usize,
        /// The class's operation budget (log2).
        log_ops: u8,
        /// Its state budget (log2).
        log_state: u8,
    },
    /// A value that has one canonical spelling spelt another way (an order, a flag).
    #[error("non-canonical {what} at offset {offset}")]
    NonCanonical {
        /// What.
        what: &'static str,
        /// Where.
        offset: usize,
    },
}

impl Proof {
    /// The canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.bytes(&MAGIC);
        let channel = self.stark.channel();
        let version = channel.format_version();
        w.u16(version);
        w.u16(self.air as u16);
        if version >= FORMAT_V2 {
            w.u16(channel as u16);
        }
        w.u32(self.config.log_blowup());
        w.u32(self.config.n_queries());
        w.u32(self.config.pow_bits());
        w.list(&self.public_inputs, |w, x| w.m31(*x));
        w.list(&self.claimed_sums, |w, x| w.qm31(*x));
        match &self.stark {
            Stark::Blake2s(p) => w.stark(p),
            Stark::Poseidon2(p) => w.stark(p),
        }
        w.out
    }

    /// The channel the proof was made under.
    pub fn channel(&self) -> ChannelId {
        self.stark.channel()
    }

    /// Parses canonical bytes.
    ///
    /// # Errors
    /// The first [`ProofFormatError`] met, reading front to back.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProofFormatError> {
        let mut r = Reader { bytes, pos: 0 };
        let magic = r.take(8)?;
        if magic != MAGIC {
            return Err(ProofFormatError::BadMagic {
                expected: MAGIC,
                got: magic.to_vec(),
            });
        }
        let version = r.u16()?;
        if version != FORMAT_V1 && version != FORMAT_V2 {
            return Err(ProofFormatError::UnsupportedVersion {
                expected: [FORMAT_V1, FORMAT_V2],
                got: version,
            });
        }
        let air_raw = r.u16()?;
        let air = AirId::from_u16(air_raw).ok_or(ProofFormatError::UnknownAir { got: air_raw })?;
        let channel = if version == FORMAT_V1 {
            ChannelId::Blake2s
        } else {
            let raw = r.u16()?;
            if let Some(&(_, reason)) = RETIRED_CHANNELS.iter().find(|(id, _)| *id == raw) {
                return Err(ProofFormatError::RetiredChannel { got: raw, reason });
            }
            let channel =
                ChannelId::from_u16(raw).ok_or(ProofFormatError::UnknownChannel { got: raw })?;
            if channel.format_version() != version {
                return Err(ProofFormatError::NonCanonicalVersion {
                    channel: channel.name(),
                    expected: channel.format_version(),
                    got: version,
                });
            }
            channel
        };
        let config = SecurityConfig::new(r.u32()?, r.u32()?, r.u32()?)?;
        let public_inputs = r.list(4, |r| r.m31())?;
        let claimed_sums = r.list(16, |r| r.qm31())?;
        let stark = match channel {
            ChannelId::Blake2s => Stark::Blake2s(r.stark(air.pcs_config(&config))?),
            ChannelId::Poseidon2 => Stark::Poseidon2(r.stark(air.pcs_config(&config))?),
        };
        if r.pos != bytes.len() {
            return Err(ProofFormatError::TrailingBytes {
                count: bytes.len() - r.pos,
            });
        }
        Ok(Proof {
            air,
            config,
            public_inputs,
            claimed_sums,
            stark,
        })
    }

    /// SHA3-256 of the canonical bytes: the proof's address in archives.
    pub fn digest(&self) -> [u8; 32] {
        Sha3_256::digest(self.to_bytes()).into()
    }
}

/// A Merkle hash on the wire: 32 bytes, one encoding each.
pub(crate) trait WireHash: Sized {
    fn write(&self, out: &mut Vec<u8>);
    fn read(r: &mut Reader<'_>) -> Result<Self, ProofFormatError>;
}

impl WireHash for Blake2sHash {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, ProofFormatError> {
        Ok(Blake2sHash(r.take(32)?.try_into().expect("32 bytes")))
    }
}

impl WireHash for Digest {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, ProofFormatError> {
        let mut elements = [M31(0); 8];
        for x in &mut elements {
            *x = r.m31()?;
        }
        Ok(Digest(elements))
    }
}

impl Writer {
    fn stark<H>(&mut self, proof: &StarkProof<H>)
    where
        H: MerkleHasherLifted,
        H::Hash: WireHash,
    {
        let w = self;
        let p = &proof.0;
        w.list(&p.commitments, |w, h| w.hash(h));
        w.list(&p.sampled_values, |w, tree| {
            w.list(tree, |w, col| w.list(col, |w, x| w.qm31(*x)))
        });
        w.list(&p.decommitments, |w, d| {
            w.list(&d.hash_witness, |w, h| w.hash(h))
        });
        w.list(&p.queried_values, |w, tree| {
            w.list(tree, |w, col| w.list(col, |w, x| w.m31(*x)))
        });
        w.u64(p.proof_of_work);
        w.fri_layer(&p.fri_proof.first_layer);
        w.list(&p.fri_proof.inner_layers, |w, l| w.fri_layer(l));
        w.list(&p.fri_proof.last_layer_poly, |w, x| w.qm31(*x));
    }
}

#[derive(Default)]
struct Writer {
    out: Vec<u8>,
}

impl Writer {
    fn bytes(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
    }
    fn u16(&mut self, v: u16) {
        self.bytes(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    fn m31(&mut self, v: M31) {
        self.u32(v.0);
    }
    fn qm31(&mut self, v: SecureField) {
        qm31_to_array(v).into_iter().for_each(|x| self.m31(x));
    }
    fn hash(&mut self, h: &impl WireHash) {
        h.write(&mut self.out);
    }
    fn list<T>(&mut self, items: &[T], mut each: impl FnMut(&mut Self, &T)) {
        self.u32(u32::try_from(items.len()).expect("proof lists are far below 2^32 items"));
        for item in items {
            each(self, item);
        }
    }
    fn fri_layer<H>(&mut self, layer: &FriLayerProof<H>)
    where
        H: MerkleHasherLifted,
        H::Hash: WireHash,
    {
        self.list(&layer.fri_witness, |w, x| w.qm31(*x));
        self.list(&layer.decommitment.hash_witness, |w, h| w.hash(h));
        self.hash(&layer.commitment);
    }
}

/// Little-endian cursor over a canonical encoding; every read past the end is `Truncated`.
/// Shared with the root-proof container (`root.rs`).
pub(crate) struct Reader<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], ProofFormatError> {
        let remaining = self.bytes.len() - self.pos;
        if remaining < n {
            return Err(ProofFormatError::Truncated {
                offset: self.pos,
                needed: n - remaining,
            });
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, ProofFormatError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, ProofFormatError> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, ProofFormatError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, ProofFormatError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn m31(&mut self) -> Result<M31, ProofFormatError> {
        let offset = self.pos;
        let value = self.u32()?;
        m31_from_canonical(value).ok_or(ProofFormatError::NonCanonicalField { offset, value })
    }
    fn qm31(&mut self) -> Result<SecureField, ProofFormatError> {
        Ok(qm31_from_array([
            self.m31()?,
            self.m31()?,
            self.m31()?,
            self.m31()?,
        ]))
    }
    fn hash<T: WireHash>(&mut self) -> Result<T, ProofFormatError> {
        T::read(self)
    }
    /// A count, then items of at least `min_item_bytes` each; the count is checked against the
    /// remaining input before anything is allocated.
    fn list<T>(
        &mut self,
        min_item_bytes: usize,
        mut each: impl FnMut(&mut Self) -> Result<T, ProofFormatError>,
    ) -> Result<Vec<T>, ProofFormatError> {
        let offset = self.pos;
        let count = self.u32()?;
        let remaining = self.bytes.len() - self.pos;
        if (count as usize).saturating_mul(min_item_bytes) > remaining {
            return Err(ProofFormatError::LengthOverflow {
                offset,
                count,
                remaining,
            });
        }
        (0..count).map(|_| each(self)).collect()
    }
    fn fri_layer<H>(&mut self) -> Result<FriLayerProof<H>, ProofFormatError>
    where
        H: MerkleHasherLifted,
        H::Hash: WireHash,
    {
        let fri_witness = self.list(16, |r| r.qm31())?;
        let hash_witness = self.list(32, |r| r.hash())?;
        let commitment = self.hash()?;
        Ok(FriLayerProof {
            fri_witness,
            decommitment: MerkleDecommitmentLifted { hash_witness },
            commitment,
        })
    }

    /// The STARK part, after the header and claimed sums; `config` is rebuilt from the header.
    fn stark<H>(
        &mut self,
        config: stwo::core::pcs::PcsConfig,
    ) -> Result<StarkProof<H>, ProofFormatError>
    where
        H: MerkleHasherLifted,
        H::Hash: WireHash,
    {
        let commitments = TreeVec(self.list(32, |r| r.hash())?);
        let sampled_values = TreeVec(self.list(4, |r| r.list(4, |r| r.list(16, |r| r.qm31())))?);
        let decommitments = TreeVec(self.list(4, |r| {
            Ok(MerkleDecommitmentLifted {
                hash_witness: r.list(32, |r| r.hash())?,
            })
        })?);
        let queried_values = TreeVec(self.list(4, |r| r.list(4, |r| r.list(4, |r| r.m31())))?);
        let proof_of_work = self.u64()?;
        let first_layer = self.fri_layer()?;
        let inner_layers = self.list(40, |r| r.fri_layer())?;
        let coeffs = self.list(16, |r| r.qm31())?;
        if !coeffs.len().is_power_of_two() {
            return Err(ProofFormatError::LastLayerNotPowerOfTwo { got: coeffs.len() });
        }
        Ok(StarkProof(CommitmentSchemeProof {
            config,
            commitments,
            sampled_values,
            decommitments,
            queried_values,
            proof_of_work,
            fri_proof: FriProof {
                first_layer,
                inner_layers,
                last_layer_poly: LinePoly::new(coeffs),
            },
        }))
    }
}
