//! `poe sample-batches`: TEST MATERIAL — a registry with one rollup whose private key is
//! public (printed, derived from a fixed seed), and a chain of validly signed batches of it,
//! stamped now, to post to a local `poe serve` (CI's schemathesis run posts them).

use std::path::Path;

use poe_circle_stark::venue::{Instrument, OptionKind, Venue};
use poe_ingest::client::RollupClient;
use poe_ingest::commitment::Scheme;
use poe_ingest::short_string::ShortString;
use poe_ingest::testkit::{realistic_ops, registry_toml_with, wall_clock_us};
use starknet_crypto::Felt;

/// The sample rollup's private key: public knowledge, never for anything but a local test.
const SAMPLE_KEY_SEED: u64 = 0x5a4d_504c_455f_4b45;

pub(crate) fn sample_batches(dir: &Path, batches: usize, ops: usize) -> Result<(), String> {
    if ops < 64 {
        return Err(format!(
            "--ops {ops}: a sample batch has at least 64 operations"
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let now = wall_clock_us();
    // Listed for a month from the next UTC midnight, so that the batches trade live options.
    let expiry = (now / 86_400_000_000 + 31) * 86_400_000_000;
    let instruments = vec![
        (
            "BTC-SAMPLE-100-C".to_string(),
            Instrument {
                underlying: 1,
                expiry_us: expiry,
                strike: 100,
                kind: OptionKind::Call,
                collateral: 60,
            },
        ),
        (
            "BTC-SAMPLE-80-P".to_string(),
            Instrument {
                underlying: 1,
                expiry_us: expiry,
                strike: 80,
                kind: OptionKind::Put,
                collateral: 80,
            },
        ),
    ];
    let private_key = Felt::from(SAMPLE_KEY_SEED);
    let mut client = RollupClient {
        name: ShortString::try_from("sample-options").expect("short"),
        private_key,
        scheme: Scheme::Keccak256,
        instrument_names: instruments.iter().map(|i| i.0.clone()).collect(),
        venue: Venue::new(instruments.iter().map(|i| i.1.clone()).collect()),
        seq: 0,
    };
    let toml = format!(
        "# TEST MATERIAL from `poe sample-batches`: the private key of this rollup is public\n# ({private_key:#x}). Never register it anywhere but a local test.\n{}",
        registry_toml_with(&[&client], &instruments)
    );
    std::fs::write(dir.join("poe.toml"), toml).map_err(|e| format!("poe.toml: {e}"))?;
    let mut lines = String::new();
    for b in 0..batches {
        // Stamped a minute ago onwards: inside intake's window (not in the future, under a day).
        let start = now - 60_000_000 + (b * ops) as u64;
        let body = client.next_batch(&realistic_ops(ops, b as u64 + 1, start), "none", b"");
        lines.push_str(std::str::from_utf8(&body).map_err(|e| e.to_string())?);
        lines.push('\n');
    }
    std::fs::write(dir.join("batches.jsonl"), lines).map_err(|e| format!("batches.jsonl: {e}"))?;
    println!(
        "wrote {0}/poe.toml (rollup sample-options, TEST key {private_key:#x}) and {0}/batches.jsonl ({batches} signed batches of {ops} operations, seq 1..={batches}, stamped now)",
        dir.display()
    );
    Ok(())
}
