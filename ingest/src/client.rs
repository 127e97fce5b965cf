//! Building signed submissions as a rollup does: keep a replica of the venue, apply the batch,
//! commit, sign (`specs/api.md` §2). Used by `poe demo`, the tests, and as a reference for rollups.

use poe_circle_stark::venue::{Operation, Venue};
use serde_json::{json, Value};
use sha3::{Digest as _, Keccak256};
use starknet_crypto::{get_public_key, rfc6979_generate_k, sign, Felt};

use crate::commitment::{commit, CommittedOp, Scheme};
use crate::model::{Header, HEADER_DOMAIN};
use crate::short_string::ShortString;

/// A rollup's signing side.
#[derive(Debug, Clone)]
pub struct RollupClient {
    /// Wire name.
    pub name: ShortString,
    /// Private key.
    pub private_key: Felt,
    /// Native commitment scheme.
    pub scheme: Scheme,
    /// Instrument names, index order (as registered).
    pub instrument_names: Vec<String>,
    /// The rollup's own replica of its state.
    pub venue: Venue,
    /// Last seq submitted.
    pub seq: u64,
}

impl RollupClient {
    /// The client of a registered rollup, holding its private key, from the empty state (a
    /// rollup's first batch). The key must be the one the registry names.
    ///
    /// # Errors
    /// A private key whose public key is not the registry's.
    pub fn for_rollup(rollup: &crate::registry::Rollup, private_key: Felt) -> Result<Self, String> {
        let client = Self {
            name: rollup.name.clone(),
            private_key,
            scheme: rollup.scheme,
            instrument_names: rollup.instrument_names.clone(),
            venue: Venue::new(rollup.instruments.clone()),
            seq: 0,
        };
        if client.public_key() != rollup.public_key {
            return Err(format!(
                "this private key's public key is {:#066x}, the registry's for {} is {:#066x}",
                client.public_key(),
                rollup.name,
                rollup.public_key
            ));
        }
        Ok(client)
    }

    /// The signed body of a listing of `listed` at the end of the rollup's table
    /// (`POST /v1/rollups/{rollup}/instruments`), and the instruments appended to this
    /// client's table so that its batches can name them (they trade from the next UTC day).
    pub fn list_instruments(&mut self, listed: &[crate::registry::NamedInstrument]) -> Vec<u8> {
        let first = self.instrument_names.len() as u32;
        let body = crate::listing::Listing::signed_body(
            self.name.as_str(),
            first,
            listed,
            &self.private_key,
        );
        self.add_instruments(listed);
        body
    }

    /// Appends instruments listed earlier to this client's table (a client started from
    /// `poe.toml` after listings: `GET /v1/rollups/{rollup}/instruments` has them).
    pub fn add_instruments(&mut self, listed: &[crate::registry::NamedInstrument]) {
        let mut table = self.venue.instruments().to_vec();
        table.extend(listed.iter().map(|t| t.instrument.clone()));
        self.venue.extend_instruments(&table);
        self.instrument_names
            .extend(listed.iter().map(|t| t.name.clone()));
    }

    /// The state root of the rollup's replica now (the next batch's `pre_state_root`).
    pub fn state_root(&mut self) -> poe_circle_stark::hash::poseidon2::Digest {
        self.venue.state_root()
    }

    /// The public key to register.
    pub fn public_key(&self) -> Felt {
        get_public_key(&self.private_key)
    }

    /// Applies `ops` to the replica and returns the signed request body for the next seq, with
    /// `proof_system`/`proof_bytes` as the rollup's own proof.
    ///
    /// # Panics
    /// If the batch breaks a venue rule (a rollup would not submit it) or is empty.
    pub fn next_batch(
        &mut self,
        ops: &[CommittedOp],
        proof_system: &str,
        proof_bytes: &[u8],
    ) -> Vec<u8> {
        self.try_next_batch(ops, proof_system, proof_bytes)
            .expect("valid batch")
    }

    /// [`RollupClient::next_batch`], for operations not known to be valid: a broken venue rule,
    /// an empty batch or a proof system name too long is an error, and the replica is left as
    /// it was.
    ///
    /// # Errors
    /// The rule broken (with the operation's index), or the bad field.
    pub fn try_next_batch(
        &mut self,
        ops: &[CommittedOp],
        proof_system: &str,
        proof_bytes: &[u8],
    ) -> Result<Vec<u8>, String> {
        let proof_system = ShortString::try_from(proof_system)
            .map_err(|e| format!("proof system {proof_system:?}: {e}"))?;
        let commitment = commit(self.scheme, ops).ok_or("a batch has at least one operation")?;
        // apply_batch is all or nothing: a broken rule leaves the replica as it was.
        let effect = self
            .venue
            .apply_batch(&ops.iter().map(|o| o.op).collect::<Vec<_>>())
            .map_err(|v| format!("operations[{}]: {}", v.op_index, v.rule))?;
        self.seq += 1;
        let header = Header {
            rollup: self.name.clone(),
            seq: self.seq,
            pre_state_root: effect.pre_state_root,
            post_state_root: effect.post_state_root,
            scheme: self.scheme,
            commitment,
            proof_system,
            vk_id: None,
            proof_digest: Keccak256::digest(proof_bytes).into(),
            n_ops: ops.len() as u32,
        };
        debug_assert!(header.signed_bytes().starts_with(HEADER_DOMAIN));
        let body = self.body(&header, ops, proof_bytes);
        Ok(serde_json::to_vec(&body).expect("JSON"))
    }

    /// The signature `(r, s)` of `header` (RFC 6979 nonce: deterministic).
    pub fn sign(&self, header: &Header) -> (Felt, Felt) {
        let msg = header.message_hash();
        let k = rfc6979_generate_k(&msg, &self.private_key, None);
        let sig = sign(&self.private_key, &msg, &k).expect("valid key and message");
        (sig.r, sig.s)
    }

    /// The JSON body for a header and operations, signed with this client's key.
    pub fn body(&self, header: &Header, ops: &[CommittedOp], proof_bytes: &[u8]) -> Value {
        let (r, s) = self.sign(header);
        json!({
            "header": {
                "rollup": header.rollup.as_str(),
                "seq": header.seq,
                "pre_state_root": header.pre_state_root.to_hex(),
                "post_state_root": header.post_state_root.to_hex(),
                "native_commitment": {"scheme": header.scheme.name(), "value": format!("0x{}", hex::encode(header.commitment))},
                "rollup_proof": {"system": header.proof_system.as_str(), "bytes": format!("0x{}", hex::encode(proof_bytes))},
                "n_ops": header.n_ops,
            },
            "signature": {"r": format!("{r:#066x}"), "s": format!("{s:#066x}")},
            "operations": ops.iter().map(|o| self.op_json(o)).collect::<Vec<_>>(),
        })
    }

    fn op_json(&self, o: &CommittedOp) -> Value {
        let id = o.trade_id.as_str();
        let name = |i: u32| self.instrument_names[i as usize].clone();
        match o.op {
            Operation::Deposit {
                account,
                amount,
                timestamp_us,
            } => {
                json!({"type": "deposit", "id": id, "account": account, "amount": amount.to_string(), "timestamp_us": timestamp_us.to_string()})
            }
            Operation::Withdraw {
                account,
                amount,
                timestamp_us,
            } => {
                json!({"type": "withdraw", "id": id, "account": account, "amount": amount.to_string(), "timestamp_us": timestamp_us.to_string()})
            }
            Operation::Trade {
                buyer,
                seller,
                instrument,
                qty,
                price,
                buyer_fee,
                seller_fee,
                timestamp_us,
            } => json!({
                "type": "trade", "id": id, "buyer": buyer, "seller": seller, "instrument": name(instrument),
                "qty": qty.to_string(), "price": price.to_string(), "buyer_fee": buyer_fee.to_string(),
                "seller_fee": seller_fee.to_string(), "timestamp_us": timestamp_us.to_string(),
            }),
            Operation::Settle {
                instrument,
                price,
                timestamp_us,
            } => json!({
                "type": "settle", "id": id, "instrument": name(instrument), "price": price.to_string(), "timestamp_us": timestamp_us.to_string(),
            }),
        }
    }
}
