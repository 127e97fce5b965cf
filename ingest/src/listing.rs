//! Instrument listings: a rollup adds strikes and expiries to its table through the API,
//! signed with its key, without a restart (`specs/api.md` §2.6).
//!
//! A listing appends to the table (an instrument's index is its position, and positions
//! never move), and takes effect at the start of the UTC day after it is accepted: a day's
//! instrument table is one per rollup in the day's manifest, bound by every proof of that day,
//! so it cannot change within the day.

use serde::Deserialize;
use starknet_crypto::Felt;

use crate::auth::{self, parse_felt, starknet_keccak};
use crate::model::{Refusal, RefusalCode};
use crate::registry::{NamedInstrument, Registry, Rollup};
use poe_circle_stark::venue::{Instrument, OptionKind};

/// The tag the signed bytes of a listing start with.
pub const LISTING_TAG: &[u8] = b"poe/listing/v1";

/// A parsed, not yet authenticated listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// Rollup wire name.
    pub rollup: String,
    /// The table position of the first instrument listed: the table's length when signed.
    pub first_index: u32,
    /// The instruments, in table order.
    pub instruments: Vec<NamedInstrument>,
    /// ECDSA over the Stark curve of [`Listing::message_hash`].
    pub signature: (Felt, Felt),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListingJson {
    rollup: String,
    first_index: u32,
    instruments: Vec<InstrumentJson>,
    signature: SignatureJson,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InstrumentJson {
    name: String,
    underlying: u32,
    expiry_us: String,
    strike: String,
    kind: String,
    collateral: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureJson {
    r: String,
    s: String,
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> Refusal {
    Refusal::new(RefusalCode::InvalidListing, path, message)
}

/// A canonical unsigned decimal (`0`, or no leading zero) that fits a u64.
fn decimal(path: &str, text: &str) -> Result<u64, Refusal> {
    let ok = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    ok.then(|| text.parse::<u64>().ok())
        .flatten()
        .ok_or_else(|| {
            Refusal::new(
                RefusalCode::MalformedAmount,
                path,
                format!("{text:?} is not a canonical unsigned decimal below 2^64"),
            )
        })
}

/// A JSON array of instruments in their wire form (as in a listing's `instruments`), checked
/// as a listing's are: what clients list from.
///
/// # Errors
/// The refusal a listing of them would get for its terms (`instruments[i].field`).
pub fn parse_instruments(json: &[u8]) -> Result<Vec<NamedInstrument>, Refusal> {
    let instruments: serde_json::Value = serde_json::from_slice(json)
        .map_err(|e| Refusal::new(RefusalCode::MalformedJson, "", e.to_string()))?;
    let probe = serde_json::json!({
        "rollup": "", "first_index": 0, "instruments": instruments,
        "signature": {"r": "0x0", "s": "0x0"},
    });
    Ok(Listing::parse(probe.to_string().as_bytes())?.instruments)
}

impl Listing {
    /// Parses a request body.
    ///
    /// # Errors
    /// `malformed_json`, `malformed_amount`, `malformed_signature` or `invalid_listing` (an
    /// instrument whose terms are not an option's), with the JSON path.
    pub fn parse(body: &[u8]) -> Result<Self, Refusal> {
        let json: ListingJson = serde_json::from_slice(body)
            .map_err(|e| Refusal::new(RefusalCode::MalformedJson, "", e.to_string()))?;
        if json.instruments.is_empty() {
            return Err(invalid(
                "instruments",
                "a listing names at least one instrument",
            ));
        }
        let mut instruments = Vec::with_capacity(json.instruments.len());
        for (i, t) in json.instruments.into_iter().enumerate() {
            let at = format!("instruments[{i}]");
            let kind = match t.kind.as_str() {
                "call" => OptionKind::Call,
                "put" => OptionKind::Put,
                other => {
                    return Err(invalid(
                        format!("{at}.kind"),
                        format!("{other:?} is neither call nor put"),
                    ))
                }
            };
            if t.name.is_empty()
                || t.name.len() > 64
                || !t.name.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(invalid(
                    format!("{at}.name"),
                    "1 to 64 printable ASCII characters, no spaces",
                ));
            }
            let instrument = Instrument {
                underlying: t.underlying,
                expiry_us: decimal(&format!("{at}.expiry_us"), &t.expiry_us)?,
                strike: decimal(&format!("{at}.strike"), &t.strike)?,
                kind,
                collateral: decimal(&format!("{at}.collateral"), &t.collateral)?,
            };
            instruments.push(NamedInstrument {
                name: t.name,
                instrument,
            });
        }
        let sig = |field: &'static str, v: &str| {
            parse_felt(field, v).map_err(|e| {
                Refusal::new(
                    RefusalCode::MalformedSignature,
                    format!("signature.{field}"),
                    e.to_string(),
                )
            })
        };
        Ok(Self {
            rollup: json.rollup,
            first_index: json.first_index,
            instruments,
            signature: (sig("r", &json.signature.r)?, sig("s", &json.signature.s)?),
        })
    }

    /// What is signed: the tag, the rollup name (32 bytes, left-padded), `first_index` and the
    /// count (u32 BE), then per instrument its name (u16 BE length, bytes), underlying (u32),
    /// expiry, strike (u64), kind (u8: 0 call, 1 put) and collateral (u64), big-endian.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = LISTING_TAG.to_vec();
        let mut name = [0u8; 32];
        let b = self.rollup.as_bytes();
        let n = b.len().min(32);
        name[32 - n..].copy_from_slice(&b[..n]);
        out.extend_from_slice(&name);
        out.extend_from_slice(&self.first_index.to_be_bytes());
        out.extend_from_slice(&(self.instruments.len() as u32).to_be_bytes());
        for t in &self.instruments {
            out.extend_from_slice(&(t.name.len() as u16).to_be_bytes());
            out.extend_from_slice(t.name.as_bytes());
            let i = &t.instrument;
            out.extend_from_slice(&i.underlying.to_be_bytes());
            out.extend_from_slice(&i.expiry_us.to_be_bytes());
            out.extend_from_slice(&i.strike.to_be_bytes());
            out.push(u8::from(i.kind == OptionKind::Put));
            out.extend_from_slice(&i.collateral.to_be_bytes());
        }
        out
    }

    /// `starknet_keccak` of [`Listing::signed_bytes`]: the message the rollup signs.
    pub fn message_hash(&self) -> Felt {
        starknet_keccak(&self.signed_bytes())
    }

    /// The rollup the listing names, and its signature checked against the rollup's key.
    ///
    /// # Errors
    /// `unknown_rollup`, `bad_signature`.
    pub fn authenticate<'r>(&self, registry: &'r Registry) -> Result<&'r Rollup, Refusal> {
        let rollup = registry.get(&self.rollup).ok_or_else(|| {
            Refusal::new(
                RefusalCode::UnknownRollup,
                "rollup",
                format!("rollup {:?} is not registered", self.rollup),
            )
        })?;
        let (r, s) = &self.signature;
        auth::verify(&rollup.public_key, &self.message_hash(), r, s)
            .map_err(|e| Refusal::new(RefusalCode::BadSignature, "signature", e.to_string()))?;
        Ok(rollup)
    }

    /// The request body of this listing, signed with `private_key` (clients, tests).
    pub fn signed_body(
        rollup: &str,
        first_index: u32,
        instruments: &[NamedInstrument],
        private_key: &Felt,
    ) -> Vec<u8> {
        let mut l = Self {
            rollup: rollup.to_owned(),
            first_index,
            instruments: instruments.to_vec(),
            signature: (Felt::ZERO, Felt::ZERO),
        };
        let msg = l.message_hash();
        let k = starknet_crypto::rfc6979_generate_k(&msg, private_key, None);
        let sig = starknet_crypto::sign(private_key, &msg, &k).expect("valid key and message");
        l.signature = (sig.r, sig.s);
        let json = serde_json::json!({
            "rollup": l.rollup,
            "first_index": l.first_index,
            "instruments": l.instruments.iter().map(|t| serde_json::json!({
                "name": t.name,
                "underlying": t.instrument.underlying,
                "expiry_us": t.instrument.expiry_us.to_string(),
                "strike": t.instrument.strike.to_string(),
                "kind": if t.instrument.kind == OptionKind::Put { "put" } else { "call" },
                "collateral": t.instrument.collateral.to_string(),
            })).collect::<Vec<_>>(),
            "signature": {"r": format!("{:#x}", l.signature.0), "s": format!("{:#x}", l.signature.1)},
        });
        serde_json::to_vec(&json).expect("JSON serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, strike: u64) -> NamedInstrument {
        NamedInstrument {
            name: name.into(),
            instrument: Instrument {
                underlying: 1,
                expiry_us: 1_800_000_000_000_000,
                strike,
                kind: OptionKind::Call,
                collateral: 100,
            },
        }
    }

    #[test]
    fn a_signed_body_parses_back_to_the_same_listing() {
        let key = Felt::from(0x1234u64);
        let body = Listing::signed_body("aurora", 2, &[call("A", 10), call("B", 20)], &key);
        let l = Listing::parse(&body).unwrap();
        assert_eq!(l.first_index, 2);
        assert_eq!(l.instruments, [call("A", 10), call("B", 20)]);
        let (r, s) = l.signature;
        auth::verify(
            &starknet_crypto::get_public_key(&key),
            &l.message_hash(),
            &r,
            &s,
        )
        .unwrap();
    }

    #[test]
    fn non_canonical_amounts_and_unknown_fields_are_refused() {
        let key = Felt::from(0x1234u64);
        let body =
            String::from_utf8(Listing::signed_body("aurora", 0, &[call("A", 10)], &key)).unwrap();
        let padded = body.replace("\"strike\":\"10\"", "\"strike\":\"010\"");
        let r = Listing::parse(padded.as_bytes()).unwrap_err();
        assert_eq!(
            (r.code, r.path.as_str()),
            (RefusalCode::MalformedAmount, "instruments[0].strike")
        );
        let extra = body.replacen('{', "{\"x\":1,", 1);
        assert_eq!(
            Listing::parse(extra.as_bytes()).unwrap_err().code,
            RefusalCode::MalformedJson
        );
        let bad_kind = body.replace("\"call\"", "\"future\"");
        let r = Listing::parse(bad_kind.as_bytes()).unwrap_err();
        assert_eq!(
            (r.code, r.path.as_str()),
            (RefusalCode::InvalidListing, "instruments[0].kind")
        );
    }
}
