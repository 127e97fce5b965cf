//! The rollup registry: which rollups may submit, with which key, commitment scheme and
//! instruments (`poe.toml`, documented in `specs/api.md` §1).

use std::collections::HashMap;
use std::path::Path;

use poe_circle_stark::venue::{Instrument, OptionKind, MAX_INSTRUMENTS};
use serde::Deserialize;
use starknet_crypto::Felt;

use crate::auth::parse_felt;
use crate::commitment::Scheme;
use crate::short_string::ShortString;

/// A configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct RegistryError {
    /// Where in the file (`rollups[1].instruments[0].collateral`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

fn err(path: impl Into<String>, message: impl Into<String>) -> RegistryError {
    RegistryError {
        path: path.into(),
        message: message.into(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    #[serde(default)]
    rollups: Vec<RollupToml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RollupToml {
    id: u32,
    name: String,
    public_key: String,
    commitment: String,
    #[serde(default)]
    instruments: Vec<InstrumentToml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InstrumentToml {
    name: String,
    underlying: u32,
    expiry_us: u64,
    strike: u64,
    kind: String,
    collateral: u64,
}

/// An instrument with its venue name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedInstrument {
    /// Venue name (what operations and Parquet rows carry).
    pub name: String,
    /// Its terms.
    pub instrument: Instrument,
}

/// A registered rollup.
#[derive(Debug, Clone)]
pub struct Rollup {
    /// Numeric id (public input of its proofs).
    pub id: u32,
    /// Name used on the wire.
    pub name: ShortString,
    /// Stark-curve public key (x-coordinate).
    pub public_key: Felt,
    /// Its native commitment scheme.
    pub scheme: Scheme,
    /// Instruments; index = position in this list.
    pub instruments: Vec<Instrument>,
    /// Instrument names, same order.
    pub instrument_names: Vec<String>,
    /// When each instrument can first be traded (µs; 0 for those in `poe.toml`): listings
    /// through the API take effect at the start of the next UTC day. Non-decreasing.
    pub effective_from_us: Vec<u64>,
    by_name: HashMap<String, u32>,
}

impl Rollup {
    /// Instrument index by venue name (listed ones included, effective or not yet).
    pub fn instrument_index(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).copied()
    }

    /// How many instruments can be traded at `us`: the table of its day is the first this many.
    pub fn effective_count(&self, us: u64) -> usize {
        self.effective_from_us.partition_point(|&from| from <= us)
    }

    /// The instrument table in effect at `us` (a prefix of `instruments`).
    pub fn instruments_at(&self, us: u64) -> &[Instrument] {
        &self.instruments[..self.effective_count(us)]
    }

    /// The names of [`Rollup::instruments_at`].
    pub fn names_at(&self, us: u64) -> &[String] {
        &self.instrument_names[..self.effective_count(us)]
    }

    /// Appends `listed`, tradable from `effective_from_us`, after checking them as the
    /// registry checks its own: an option's terms, a put's collateral equal to its strike, a
    /// name not in the table, an expiry after `effective_from_us`, at most
    /// [`MAX_INSTRUMENTS`] in all. Nothing is appended unless all pass.
    ///
    /// # Errors
    /// [`RegistryError`] naming `instruments[i].field`.
    pub fn append(
        &mut self,
        listed: &[NamedInstrument],
        effective_from_us: u64,
    ) -> Result<(), RegistryError> {
        if self.instruments.len() + listed.len() > MAX_INSTRUMENTS as usize {
            return Err(err(
                "instruments",
                format!(
                    "{} listed and {} more: at most {MAX_INSTRUMENTS}",
                    self.instruments.len(),
                    listed.len()
                ),
            ));
        }
        let mut names = std::collections::HashSet::new();
        for (j, t) in listed.iter().enumerate() {
            let at = format!("instruments[{j}]");
            if self.by_name.contains_key(&t.name) || !names.insert(&t.name) {
                return Err(err(
                    format!("{at}.name"),
                    format!("{} is already in the table", t.name),
                ));
            }
            let i = &t.instrument;
            if i.kind == OptionKind::Put && i.collateral != i.strike {
                return Err(err(
                    format!("{at}.collateral"),
                    format!("a put's collateral must equal its strike {}", i.strike),
                ));
            }
            if i.expiry_us <= effective_from_us {
                return Err(err(
                    format!("{at}.expiry_us"),
                    format!(
                        "expires at {} µs, before it could trade (from {effective_from_us} µs)",
                        i.expiry_us
                    ),
                ));
            }
        }
        for t in listed {
            self.by_name
                .insert(t.name.clone(), self.instruments.len() as u32);
            self.instruments.push(t.instrument.clone());
            self.instrument_names.push(t.name.clone());
            self.effective_from_us.push(effective_from_us);
        }
        Ok(())
    }
}

/// All registered rollups.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    rollups: Vec<Rollup>,
}

impl Registry {
    /// Reads and checks a `poe.toml`.
    ///
    /// # Errors
    /// [`RegistryError`] naming the file position of the first problem.
    pub fn load(path: &Path) -> Result<Self, RegistryError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(path.display().to_string(), e.to_string()))?;
        Self::parse(&text)
    }

    /// Parses and checks TOML text.
    ///
    /// # Errors
    /// [`RegistryError`] naming the position of the first problem.
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        let file: FileToml = toml::from_str(text).map_err(|e| err("poe.toml", e.to_string()))?;
        let mut rollups: Vec<Rollup> = Vec::new();
        for (i, r) in file.rollups.into_iter().enumerate() {
            let at = format!("rollups[{i}]");
            let name = ShortString::try_from(r.name.as_str())
                .map_err(|e| err(format!("{at}.name"), e.to_string()))?;
            if rollups.iter().any(|o| o.name == name || o.id == r.id) {
                return Err(err(
                    at,
                    format!("duplicate rollup name {name} or id {}", r.id),
                ));
            }
            let public_key = parse_felt("public_key", &r.public_key)
                .map_err(|e| err(format!("{at}.public_key"), e.to_string()))?;
            let scheme = Scheme::from_name(&r.commitment).ok_or_else(|| {
                err(format!("{at}.commitment"), format!("unknown scheme {:?}; use keccak256, poseidon-bn254, poseidon-felt252 or pedersen-felt252", r.commitment))
            })?;
            if r.instruments.len() > MAX_INSTRUMENTS as usize {
                return Err(err(
                    format!("{at}.instruments"),
                    format!("at most {MAX_INSTRUMENTS} instruments"),
                ));
            }
            let mut instruments = Vec::new();
            let mut instrument_names = Vec::new();
            let mut by_name = HashMap::new();
            for (j, t) in r.instruments.into_iter().enumerate() {
                let at = format!("{at}.instruments[{j}]");
                let kind = match t.kind.as_str() {
                    "call" => OptionKind::Call,
                    "put" => OptionKind::Put,
                    other => {
                        return Err(err(
                            format!("{at}.kind"),
                            format!("{other:?} is neither call nor put"),
                        ))
                    }
                };
                if kind == OptionKind::Put && t.collateral != t.strike {
                    return Err(err(
                        format!("{at}.collateral"),
                        format!("a put's collateral must equal its strike {}", t.strike),
                    ));
                }
                if by_name.insert(t.name.clone(), j as u32).is_some() {
                    return Err(err(
                        format!("{at}.name"),
                        format!("duplicate instrument {}", t.name),
                    ));
                }
                instruments.push(Instrument {
                    underlying: t.underlying,
                    expiry_us: t.expiry_us,
                    strike: t.strike,
                    kind,
                    collateral: t.collateral,
                });
                instrument_names.push(t.name);
            }
            rollups.push(Rollup {
                id: r.id,
                name,
                public_key,
                scheme,
                effective_from_us: vec![0; instruments.len()],
                instruments,
                instrument_names,
                by_name,
            });
        }
        Ok(Self { rollups })
    }

    /// A rollup by wire name.
    pub fn get(&self, name: &str) -> Option<&Rollup> {
        self.rollups.iter().find(|r| r.name.as_str() == name)
    }

    /// Every rollup.
    pub fn rollups(&self) -> &[Rollup] {
        &self.rollups
    }

    /// A rollup by wire name, to append listings to.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Rollup> {
        self.rollups.iter_mut().find(|r| r.name.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0x0596221be35aa2e8a9846b03dead63cd7d531eff0ea2a0c6ffa210a9993ddf9a";

    fn toml_with(instrument: &str) -> String {
        format!(
            "[[rollups]]\nid = 1\nname = \"aurora\"\npublic_key = \"{KEY}\"\ncommitment = \"keccak256\"\n\n[[rollups.instruments]]\n{instrument}\n"
        )
    }

    #[test]
    fn parses_a_rollup_with_instruments() {
        let r = Registry::parse(&toml_with(
            "name = \"BTC-27DEC26-60000-P\"\nunderlying = 1\nexpiry_us = 1798358400000000\nstrike = 6000000\nkind = \"put\"\ncollateral = 6000000",
        ))
        .unwrap();
        let a = r.get("aurora").unwrap();
        assert_eq!(a.scheme, Scheme::Keccak256);
        assert_eq!(a.instrument_index("BTC-27DEC26-60000-P"), Some(0));
        assert!(r.get("borealis").is_none());
    }

    #[test]
    fn put_with_wrong_collateral_is_refused_with_its_path() {
        let e = Registry::parse(&toml_with(
            "name = \"X\"\nunderlying = 1\nexpiry_us = 1\nstrike = 10\nkind = \"put\"\ncollateral = 9",
        ))
        .unwrap_err();
        assert_eq!(e.path, "rollups[0].instruments[0].collateral");
    }

    #[test]
    fn unknown_scheme_and_fields_are_refused() {
        let bad = toml_with("name = \"X\"\nunderlying = 1\nexpiry_us = 1\nstrike = 10\nkind = \"call\"\ncollateral = 9")
            .replace("keccak256", "sha256");
        assert_eq!(
            Registry::parse(&bad).unwrap_err().path,
            "rollups[0].commitment"
        );
        assert!(Registry::parse("[[rollups]]\nid = 1\nnmae = \"x\"\n").is_err());
    }
}

#[cfg(test)]
mod example {
    #[test]
    fn the_shipped_example_registry_is_valid() {
        let text = include_str!("../../aggregator/poe.example.toml");
        let r = super::Registry::parse(text).unwrap();
        assert_eq!(r.rollups().len(), 2);
        assert_eq!(r.get("aurora-options").unwrap().instruments.len(), 2);
    }
}
