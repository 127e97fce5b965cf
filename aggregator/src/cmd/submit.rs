//! `poe submit`: a rollup's next batch from a file of operations (JSON or CSV) — built against
//! the rollup's registry entry, its state roots from poe's own venue engine, signed with its
//! key, dry-run, then submitted. The rollup's history (the operations of every batch it
//! submitted, one JSON line each) is kept in a file and replayed to rebuild its state; the
//! server's head must agree with it before anything is sent.

use std::io::Write;
use std::path::Path;

use poe_aggregator::fetch::Fetcher;
use poe_circle_stark::venue::{Instrument, OptionKind};
use poe_ingest::client::RollupClient;
use poe_ingest::registry::{NamedInstrument, Rollup};
use serde_json::{json, Value};

/// The CSV columns, as the wire form's fields (`specs/api/openapi.yaml`, Operation); a row
/// leaves empty the fields its `type` does not have.
const CSV_FIELDS: [&str; 12] = [
    "type",
    "id",
    "account",
    "amount",
    "buyer",
    "seller",
    "instrument",
    "qty",
    "price",
    "buyer_fee",
    "seller_fee",
    "timestamp_us",
];

/// Operations from `path`: a JSON array of wire-form operations, or CSV with a header row
/// naming (some of) [`CSV_FIELDS`].
fn read_operations(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
    {
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let headers = reader
            .headers()
            .map_err(|e| format!("{}: {e}", path.display()))?
            .clone();
        if let Some(h) = headers.iter().find(|h| !CSV_FIELDS.contains(h)) {
            return Err(format!(
                "{}: unknown column {h:?} (columns: {})",
                path.display(),
                CSV_FIELDS.join(", ")
            ));
        }
        let mut ops = Vec::new();
        for (i, row) in reader.records().enumerate() {
            let row = row.map_err(|e| format!("{}: {e}", path.display()))?;
            let mut op = serde_json::Map::new();
            for (name, value) in headers.iter().zip(row.iter()) {
                if value.is_empty() {
                    continue;
                }
                // Accounts are numbers on the wire; amounts and times decimal strings.
                let v = match name {
                    "account" | "buyer" | "seller" => json!(value.parse::<u32>().map_err(
                        |e| format!("{} row {}: {name} {value:?}: {e}", path.display(), i + 2)
                    )?),
                    _ => json!(value),
                };
                op.insert(name.to_string(), v);
            }
            ops.push(Value::Object(op));
        }
        Ok(Value::Array(ops))
    } else {
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

pub(crate) struct SubmitArgs<'a> {
    pub server: &'a str,
    pub config: &'a Path,
    pub rollup: &'a str,
    pub key: &'a Path,
    pub ops: &'a Path,
    pub history: &'a Path,
    pub proof_system: &'a str,
    pub dry_run: bool,
}

fn read_key(path: &Path) -> Result<starknet_crypto::Felt, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    starknet_crypto::Felt::from_hex(text.trim()).map_err(|e| format!("{}: {e}", path.display()))
}

/// The instruments of `GET /v1/rollups/{rollup}/instruments`, in table order, with the time
/// each trades from.
fn server_table(server: &Fetcher, rollup: &str) -> Result<Vec<(NamedInstrument, u64)>, String> {
    let table: Value =
        serde_json::from_slice(&server.get(&format!("/v1/rollups/{rollup}/instruments"))?)
            .map_err(|e| format!("instruments: {e}"))?;
    let bad = || format!("instruments: not poe's table: {table}");
    let num = |v: &Value| v.as_str().and_then(|t| t.parse::<u64>().ok());
    table["instruments"]
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|t| {
            let instrument = Instrument {
                underlying: t["underlying"]
                    .as_u64()
                    .and_then(|u| u32::try_from(u).ok())
                    .ok_or_else(bad)?,
                expiry_us: num(&t["expiry_us"]).ok_or_else(bad)?,
                strike: num(&t["strike"]).ok_or_else(bad)?,
                kind: if t["kind"] == "put" {
                    OptionKind::Put
                } else {
                    OptionKind::Call
                },
                collateral: num(&t["collateral"]).ok_or_else(bad)?,
            };
            let name = t["name"].as_str().ok_or_else(bad)?.to_owned();
            Ok((
                NamedInstrument { name, instrument },
                num(&t["effective_from_us"]).ok_or_else(bad)?,
            ))
        })
        .collect()
}

/// `entry` with the instruments the server lists beyond it (listed through the API); the
/// ones `entry` has must be the server's first ones.
fn with_listed(entry: &Rollup, server: &Fetcher) -> Result<Rollup, String> {
    let table = server_table(server, entry.name.as_str())?;
    let mut out = entry.clone();
    for (i, (t, _)) in table.iter().enumerate().take(entry.instruments.len()) {
        if entry.instruments[i] != t.instrument || entry.instrument_names[i] != t.name {
            return Err(format!(
                "instrument {i}: the registry has {}, the server {}: use the server's poe.toml",
                entry.instrument_names[i], t.name
            ));
        }
    }
    for (t, from) in table.into_iter().skip(entry.instruments.len()) {
        out.append(std::slice::from_ref(&t), from)
            .map_err(|e| format!("the server's instrument {}: {e}", t.name))?;
    }
    Ok(out)
}

/// What `poe list-instruments` needs.
pub(crate) struct ListArgs<'a> {
    pub server: &'a str,
    pub rollup: &'a str,
    pub key: &'a Path,
    pub file: &'a Path,
}

/// `poe list-instruments`: instruments from a JSON file listed at the end of the rollup's
/// table on the server, signed with its key; they trade from the next UTC day.
pub(crate) fn list_instruments(a: &ListArgs<'_>) -> Result<(), String> {
    let key = read_key(a.key)?;
    let text = std::fs::read_to_string(a.file).map_err(|e| format!("{}: {e}", a.file.display()))?;
    // Checked as the server will (terms, canonical amounts) before anything is sent.
    let instruments = poe_ingest::listing::parse_instruments(text.as_bytes())
        .map_err(|r| format!("{}: {}: {}", a.file.display(), r.path, r.message))?;
    let server = Fetcher::new(a.server, None)?;
    let table = server_table(&server, a.rollup)?;
    // Run again after a listing went through: nothing to do.
    if let Some(at) = table
        .windows(instruments.len())
        .position(|w| w.iter().map(|(t, _)| t).eq(instruments.iter()))
    {
        println!(
            "already listed: {} instrument(s) of {} at positions {at}.., trading from {} µs",
            instruments.len(),
            a.rollup,
            table[at].1
        );
        return Ok(());
    }
    let first = table.len() as u32;
    let body = poe_ingest::listing::Listing::signed_body(a.rollup, first, &instruments, &key);
    let (status, answer) = server.post(&format!("/v1/rollups/{}/instruments", a.rollup), &body)?;
    let answer: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
    if status != 202 && status != 200 {
        return Err(format!("HTTP {status}: {answer}"));
    }
    println!(
        "HTTP {status}: {} instrument(s) of {} at positions {}.., trading from {} µs (the next UTC day)",
        answer["count"], a.rollup, answer["first_index"],
        answer["effective_from_us"].as_str().unwrap_or("?")
    );
    Ok(())
}

pub(crate) fn submit(a: &SubmitArgs<'_>) -> Result<(), String> {
    let registry = poe_ingest::registry::Registry::load(a.config)
        .map_err(|e| format!("{}: {e}", a.config.display()))?;
    let entry = registry
        .get(a.rollup)
        .ok_or_else(|| format!("{}: no rollup {:?}", a.config.display(), a.rollup))?;
    let key = read_key(a.key)?;
    let server = Fetcher::new(a.server, None)?;
    // Instruments listed through the API since poe.toml was written.
    let entry = &with_listed(entry, &server)?;
    let mut client = RollupClient::for_rollup(entry, key)?;

    // The rollup's state: its history replayed.
    let history = match std::fs::read_to_string(a.history) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("{}: {e}", a.history.display())),
    };
    for (i, line) in history
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let ops = poe_ingest::model::parse_operations(line.as_bytes(), entry).map_err(|r| {
            format!(
                "{} line {}: {}: {}",
                a.history.display(),
                i + 1,
                r.path,
                r.message
            )
        })?;
        client
            .try_next_batch(&ops, "none", b"")
            .map_err(|e| format!("{} line {}: {e}", a.history.display(), i + 1))?;
    }
    let head: Value =
        serde_json::from_slice(&server.get(&format!("/v1/rollups/{}/head", a.rollup))?)
            .map_err(|e| format!("head: {e}"))?;
    let (seq, root) = (
        head["seq"].as_u64().unwrap_or(0),
        head["post_state_root"].as_str().unwrap_or(""),
    );
    let local_root = client.state_root().to_hex();
    if seq != client.seq || root != local_root {
        return Err(format!(
            "the server's head is seq {seq} (root {root}), {} replays to seq {} (root {local_root}): submit from the history that matches the server's",
            a.history.display(),
            client.seq,
        ));
    }

    let ops_json = read_operations(a.ops)?;
    let ops_line = serde_json::to_string(&ops_json).expect("JSON");
    let ops = poe_ingest::model::parse_operations(ops_line.as_bytes(), entry)
        .map_err(|r| format!("{}: {}: {}", a.ops.display(), r.path, r.message))?;
    let body = client
        .try_next_batch(&ops, a.proof_system, b"")
        .map_err(|e| format!("{}: {e}", a.ops.display()))?;

    let (status, answer) = server.post("/v1/batches/dry-run", &body)?;
    let answer: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
    if status != 200 || answer["would_be_accepted"] != true {
        return Err(format!("dry run: HTTP {status}: {answer}"));
    }
    println!(
        "dry run: seq {} from {} to {}, {} operations: would be accepted",
        client.seq,
        answer["pre_state_root"],
        answer["post_state_root"],
        ops.len()
    );
    if a.dry_run {
        return Ok(());
    }
    let (status, answer) = server.post("/v1/batches", &body)?;
    let receipt: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
    if status != 202 && status != 200 {
        return Err(format!("HTTP {status}: {receipt}"));
    }
    // Recorded once the server has it (a 200 is the same batch, sent before).
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(a.history)
        .map_err(|e| format!("{}: {e}", a.history.display()))?;
    writeln!(file, "{ops_line}")
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", a.history.display()))?;
    println!(
        "HTTP {status}: batch {} seq {} {}; receipt {}{}",
        receipt["batch_id"].as_str().unwrap_or("?"),
        receipt["seq"],
        receipt["status"].as_str().unwrap_or("?"),
        a.server.trim_end_matches('/'),
        receipt["status_url"].as_str().unwrap_or("")
    );
    Ok(())
}
