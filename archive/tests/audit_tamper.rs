//! A real bundle, written and audited, then every tamper an operator could try on it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use poe_archive::audit::{audit, AuditOptions, AuditReport, CheckKind};
use poe_archive::bundle::{write_day, ArchivedOp, BatchInput, DayInput, RollupInfo};
use poe_archive::day::Day;
use poe_archive::manifest::{sha3_hex, Manifest};
use poe_archive::parquet_io;
use poe_archive::records::{
    statement_rows, statements_batch, statements_schema, trade_rows, trades_batch, trades_schema,
    NamedInstrument,
};
use poe_archive::storage::{LocalDir, Storage};
use poe_circle_stark::config::{SecurityConfig, VerifierPolicy};
use poe_circle_stark::day::prove_day;
use poe_circle_stark::day::statement::BatchStatement;
use poe_circle_stark::field::M31;
use poe_circle_stark::hash::merkle::data_root;
use poe_circle_stark::hash::poseidon2::Digest;
use poe_circle_stark::venue::{instruments_root, Instrument, Operation, OptionKind, OP_LIMBS};
use poe_ingest::client::RollupClient;
use poe_ingest::commitment::{CommittedOp, Scheme};
use poe_ingest::short_string::ShortString;
use poe_ingest::testkit::{client, signed_submission};

const DAY: Day = Day(20_417); // 2025-11-25

fn config() -> SecurityConfig {
    SecurityConfig::new(1, 12, 4).unwrap()
}

fn options() -> AuditOptions {
    AuditOptions {
        policy: VerifierPolicy::insecure_for_tests(),
        ..AuditOptions::default()
    }
}

fn scratch(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "poe-archive-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn instruments() -> Vec<NamedInstrument> {
    let expiry = DAY.next().start_us() + 8 * 3_600_000_000;
    vec![
        NamedInstrument {
            name: "BTC-26NOV25-60000-C".into(),
            instrument: Instrument {
                underlying: 1,
                expiry_us: expiry,
                strike: 6_000_000,
                kind: OptionKind::Call,
                collateral: 3_000_000,
            },
        },
        NamedInstrument {
            name: "BTC-26NOV25-60000-P".into(),
            instrument: Instrument {
                underlying: 1,
                expiry_us: expiry,
                strike: 6_000_000,
                kind: OptionKind::Put,
                collateral: 6_000_000,
            },
        },
    ]
}

/// The fixture's two rollups' signing keys (aurora: Keccak, borealis: Starknet Poseidon).
fn signers() -> [RollupClient; 2] {
    [
        client("aurora", 11, Scheme::Keccak256),
        client("borealis", 12, Scheme::PoseidonFelt252),
    ]
}

fn d(x: u32) -> Digest {
    Digest(std::array::from_fn(|i| {
        M31::from_u32_unchecked(x.wrapping_mul(0x9e37_79b9).wrapping_add(i as u32) >> 1)
    }))
}

/// Two rollups; 3 and 2 batches of deposits, trades, a withdrawal.
fn input() -> DayInput {
    input_on(DAY)
}

fn input_on(day: Day) -> DayInput {
    let table = instruments();
    let terms: Vec<Instrument> = table.iter().map(|n| n.instrument.clone()).collect();
    let iroot = instruments_root(&terms);
    let signers = signers();
    let rollups = vec![
        RollupInfo {
            id: 1,
            name: "aurora".into(),
            native_scheme: "keccak256".into(),
            public_key: signers[0].public_key().to_bytes_be(),
            instruments: table.clone(),
        },
        RollupInfo {
            id: 2,
            name: "borealis".into(),
            native_scheme: "poseidon-felt252".into(),
            public_key: signers[1].public_key().to_bytes_be(),
            instruments: table,
        },
    ];
    let mut batches = Vec::new();
    let t0 = day.start_us() + 3_600_000_000;
    for (rollup_id, n_batches) in [(1u32, 3u64), (2, 2)] {
        for seq in 0..n_batches {
            let ts = t0 + seq * 1_000_000;
            let mut ops = vec![ArchivedOp {
                venue_trade_id: format!("dep-{rollup_id}-{seq}"),
                op: Operation::Deposit {
                    account: 7,
                    amount: 1_000_000_000,
                    timestamp_us: ts,
                },
            }];
            for k in 0..5u64 {
                ops.push(ArchivedOp {
                    venue_trade_id: format!("T{rollup_id}{seq}{k}"),
                    op: Operation::Trade {
                        buyer: 7,
                        seller: 8,
                        instrument: (k % 2) as u32,
                        qty: 100 + k,
                        price: 25_000 + 17 * k,
                        buyer_fee: 30,
                        seller_fee: 31,
                        timestamp_us: ts + k,
                    },
                });
            }
            ops.push(ArchivedOp {
                venue_trade_id: format!("wd-{rollup_id}-{seq}"),
                op: Operation::Withdraw {
                    account: 8,
                    amount: 5_000,
                    timestamp_us: ts + 10,
                },
            });
            let records: Vec<M31> = ops.iter().flat_map(|o| o.op.encode()).collect();
            let at = rollup_id * 100 + seq as u32;
            // Signed as the rollup would, over roots of the fixture's own: the audit
            // recomputes the batch id and checks the signature and native commitment.
            let proof = format!("proof of {rollup_id}/{seq}").into_bytes();
            let signed = signed_submission(
                &signers[rollup_id as usize - 1],
                40 + seq,
                d(at),
                d(at + 1),
                ops.iter()
                    .map(|o| CommittedOp {
                        trade_id: ShortString::try_from(o.venue_trade_id.as_str()).unwrap(),
                        op: o.op,
                    })
                    .collect(),
                "groth16",
                &proof,
            );
            batches.push(BatchInput {
                statement: BatchStatement {
                    rollup_id,
                    seq: 40 + seq,
                    pre_state_root: d(at),
                    post_state_root: d(at + 1),
                    data_root: data_root(&records, OP_LIMBS),
                    instruments_root: iroot,
                    n_ops: ops.len() as u32,
                },
                batch_id: signed.batch_id(),
                accepted_us: ts + 500,
                native_commitment: signed.header.commitment,
                rollup_proof_system: "groth16".into(),
                rollup_vk_id: None,
                signature: (
                    signed.signature.0.to_bytes_be(),
                    signed.signature.1.to_bytes_be(),
                ),
                rollup_proof: proof,
                leaf_proof: None,
                ops,
            });
        }
    }
    DayInput {
        day,
        rollups,
        batches,
        root_config: config(),
        recursive: false,
        leaf_proofs: true,
    }
}

fn write(root: &Path, input: &DayInput) -> PathBuf {
    let storage = LocalDir::new(root);
    write_day(
        &storage,
        input,
        |statements, manifest_hash| {
            prove_day(input.day.0, statements, manifest_hash, config())
                .map(|(_, p)| poe_archive::bundle::RootFiles::root(p.to_bytes()))
                .map_err(|e| e.to_string())
        },
        &mut |_| {},
    )
    .unwrap();
    root.join("days").join(input.day.to_string())
}

/// One pristine bundle; each tamper test works on its own copy.
fn pristine() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| write(&scratch("pristine"), &input()))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn copy() -> PathBuf {
    let dir = scratch("tamper");
    copy_dir(pristine(), &dir);
    dir
}

fn run(dir: &Path) -> AuditReport {
    audit(&LocalDir::new(dir), &options(), &mut |_, _| {})
}

/// The failing checks as `name: detail`.
fn failures(r: &AuditReport) -> Vec<String> {
    r.checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect()
}

fn assert_fails_with(r: &AuditReport, check: &CheckKind, needle: &str) {
    assert!(!r.passed(), "audit passed");
    assert!(
        r.checks
            .iter()
            .any(|c| !c.passed && c.kind == *check && c.detail.contains(needle)),
        "no failing {check} mentioning {needle:?} in {:#?}",
        failures(r)
    );
}

fn assert_passes(r: &AuditReport, check: &CheckKind) {
    let c = r.checks.iter().find(|c| c.kind == *check).unwrap();
    assert!(c.passed, "{c:?}");
}

/// What a careful forger does after editing a file: re-list it in the manifest.
fn refresh_manifest(dir: &Path) {
    let storage = LocalDir::new(dir);
    let mut m = Manifest::from_bytes(&storage.read("manifest.json").unwrap()).unwrap();
    for f in &mut m.files {
        let bytes = storage.read(&f.path).unwrap();
        f.bytes = bytes.len() as u64;
        f.sha3_256 = sha3_hex(&bytes);
    }
    storage.write("manifest.json", &m.to_bytes()).unwrap();
}

const PART: &str = "trades/rollup=aurora/part-0000.parquet";

fn edit_rows(dir: &Path, edit: impl FnOnce(&mut Vec<poe_archive::records::TradeRow>)) {
    let storage = LocalDir::new(dir);
    let read = parquet_io::read(storage.read(PART).unwrap(), &trades_schema()).unwrap();
    let mut rows = trade_rows(&read.rows).unwrap();
    edit(&mut rows);
    let bytes = parquet_io::write(&trades_batch(&rows).unwrap(), read.metadata).unwrap();
    storage.write(PART, &bytes).unwrap();
}

/// Rewrites `statements.parquet` with edited rows and a refreshed manifest.
fn edit_statements(dir: &Path, edit: impl FnOnce(&mut Vec<poe_archive::records::StatementRow>)) {
    let storage = LocalDir::new(dir);
    let read = parquet_io::read(
        storage.read("statements.parquet").unwrap(),
        &statements_schema(),
    )
    .unwrap();
    let mut rows = statement_rows(&read.rows).unwrap();
    edit(&mut rows);
    let meta = read
        .metadata
        .into_iter()
        .filter(|(k, _)| k != "ARROW:schema")
        .collect();
    let bytes = parquet_io::write(&statements_batch(&rows).unwrap(), meta).unwrap();
    storage.write("statements.parquet", &bytes).unwrap();
    refresh_manifest(dir);
}

#[test]
fn pristine_bundle_passes_every_check() {
    let r = run(pristine());
    assert!(r.passed(), "{:#?}", failures(&r));
    let names: Vec<&str> = r.checks.iter().map(|c| c.name.as_str()).collect();
    for expected in [
        "manifest",
        "statements",
        "continuity",
        "root-proof",
        "statement.json",
        "trades rollup=aurora",
        "trades rollup=borealis",
        "signatures",
        "proof-files",
    ] {
        assert!(names.contains(&expected), "{names:?}");
    }
    let sig = r
        .checks
        .iter()
        .find(|c| c.kind == CheckKind::Signatures)
        .unwrap();
    assert!(sig.detail.starts_with("5 of 5 batches"), "{sig:?}");
    assert_eq!(r.rollups.len(), 2);
    assert_eq!(r.rollups[0].ops, 3 * 7);
    assert_eq!(r.rollups[0].trades, 3 * 5);
    let notional: u64 = (0..3)
        .map(|_| {
            (0..5u64)
                .map(|k| (100 + k) * (25_000 + 17 * k))
                .sum::<u64>()
        })
        .sum();
    assert_eq!(
        r.rollups[0].notional,
        format!("{}.{:06}", notional / 1_000_000, notional % 1_000_000)
    );
}

#[test]
fn proof_only_audit_skips_the_records_but_verifies_the_root() {
    let r = audit(
        &LocalDir::new(pristine()),
        &AuditOptions {
            proof_only: true,
            ..options()
        },
        &mut |_, _| {},
    );
    assert!(r.passed(), "{:#?}", failures(&r));
    assert!(r.checks.iter().any(|c| c.kind == CheckKind::RootProof));
    assert!(!r.checks.iter().any(|c| c.name.starts_with("trades")));
}

#[test]
fn rewriting_the_day_gives_byte_identical_files() {
    let again = write(&scratch("again"), &input());
    let a = LocalDir::new(pristine()).list("").unwrap();
    let b = LocalDir::new(&again).list("").unwrap();
    assert_eq!(a, b);
    for (path, _) in a {
        assert_eq!(
            std::fs::read(pristine().join(&path)).unwrap(),
            std::fs::read(again.join(&path)).unwrap(),
            "{path}"
        );
    }
}

#[test]
fn changed_price_in_one_row_is_caught_by_the_manifest() {
    let dir = copy();
    edit_rows(&dir, |rows| {
        rows[3].price = Some(rows[3].price.unwrap() + 1)
    });
    assert_fails_with(&run(&dir), &CheckKind::Manifest, PART);
}

#[test]
fn changed_price_with_a_refreshed_manifest_names_the_row_and_fails_the_root_proof() {
    let dir = copy();
    edit_rows(&dir, |rows| {
        rows[3].price = Some(rows[3].price.unwrap() + 1)
    });
    refresh_manifest(&dir);
    let r = run(&dir);
    assert_fails_with(
        &r,
        &CheckKind::Trades("aurora".into()),
        "row 3 (batch seq 40 op 3): column price",
    );
    assert_fails_with(&r, &CheckKind::RootProof, "manifest_hash");
}

#[test]
fn changed_price_in_the_air_fields_too_fails_the_data_root() {
    let dir = copy();
    edit_rows(&dir, |rows| {
        let r = &mut rows[3];
        r.air[5] += 1;
        r.price = Some(r.price.unwrap() + 1);
        r.notional = Some(r.qty.unwrap() * r.price.unwrap());
    });
    refresh_manifest(&dir);
    assert_fails_with(
        &run(&dir),
        &CheckKind::Trades("aurora".into()),
        "batch seq 40",
    );
    assert_fails_with(&run(&dir), &CheckKind::Trades("aurora".into()), "data root");
}

#[test]
fn dropped_row_is_rejected() {
    let dir = copy();
    edit_rows(&dir, |rows| {
        rows.remove(9);
    });
    refresh_manifest(&dir);
    assert_fails_with(
        &run(&dir),
        &CheckKind::Trades("aurora".into()),
        "rows missing, added or out of order",
    );
}

#[test]
fn two_swapped_rows_are_rejected() {
    let dir = copy();
    edit_rows(&dir, |rows| rows.swap(2, 3));
    refresh_manifest(&dir);
    assert_fails_with(
        &run(&dir),
        &CheckKind::Trades("aurora".into()),
        "row 2 (batch seq 40 op 2)",
    );
}

#[test]
fn added_row_is_rejected() {
    let dir = copy();
    edit_rows(&dir, |rows| {
        let extra = rows.last().unwrap().clone();
        rows.push(extra);
    });
    refresh_manifest(&dir);
    assert_fails_with(
        &run(&dir),
        &CheckKind::Trades("aurora".into()),
        "beyond the day's 21 operations",
    );
}

#[test]
fn edited_statement_is_rejected_by_the_root_proof() {
    let dir = copy();
    edit_statements(&dir, |rows| {
        rows[1].native_commitment = "00".repeat(32);
        rows[4].post_state_root = d(999).to_hex();
    });
    let r = run(&dir);
    assert_fails_with(
        &r,
        &CheckKind::RootProof,
        "day statement differs in day_root",
    );
    assert_fails_with(&r, &CheckKind::StatementJson, "differs");
}

#[test]
fn root_proof_of_another_day_is_rejected() {
    let mut other = input();
    other.day = DAY.next();
    for b in &mut other.batches {
        b.accepted_us += 86_400_000_000;
    }
    let other_dir = write(&scratch("other-day"), &other);
    let dir = copy();
    std::fs::copy(other_dir.join("root.proof"), dir.join("root.proof")).unwrap();
    assert_fails_with(
        &run(&dir),
        &CheckKind::RootProof,
        "day statement differs in day",
    );
}

#[test]
fn edited_manifest_hash_is_rejected() {
    let dir = copy();
    let storage = LocalDir::new(&dir);
    let mut m = Manifest::from_bytes(&storage.read("manifest.json").unwrap()).unwrap();
    m.files[0].sha3_256 = "ab".repeat(32);
    let path = m.files[0].path.clone();
    storage.write("manifest.json", &m.to_bytes()).unwrap();
    let r = run(&dir);
    assert_fails_with(&r, &CheckKind::Manifest, &format!("{path}: sha3-256"));
    assert_fails_with(&r, &CheckKind::RootProof, "manifest_hash");
}

#[test]
fn truncated_parquet_file_is_rejected() {
    let dir = copy();
    let path = dir.join(PART);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    refresh_manifest(&dir);
    assert_fails_with(&run(&dir), &CheckKind::Trades("aurora".into()), PART);
}

#[test]
fn unlisted_file_is_rejected() {
    let dir = copy();
    std::fs::write(dir.join("trades/rollup=aurora/part-0001.parquet"), b"extra").unwrap();
    assert_fails_with(
        &run(&dir),
        &CheckKind::Manifest,
        "present but not in the manifest",
    );
}

#[test]
fn v1_root_proof_for_a_day_after_v2_is_rejected() {
    // The same bundle, dated after root proofs v2 became required: a day-tree proof alone
    // (which says nothing of batch validity) is a downgrade.
    let day = Day(poe_circle_stark::day::root::V2_REQUIRED_FROM_DAY + 2);
    let dir = write(&scratch("downgrade"), &input_on(day));
    let r = run(&dir);
    assert_fails_with(
        &r,
        &CheckKind::RootProof,
        "days from 2026-11-28 on need poe/day-root/v2",
    );
    // The same kind of bundle on a day before: accepted, with the note.
    let pass = run(pristine());
    let line = pass
        .checks
        .iter()
        .find(|c| c.kind == CheckKind::RootProof)
        .unwrap();
    assert!(
        line.passed && line.detail.contains("batch validity is not in it"),
        "{line:?}"
    );
}

#[test]
fn day_tree_root_for_a_day_from_v4_on_is_a_refused_downgrade() {
    let day = Day(poe_circle_stark::day::recursive::V4_REQUIRED_FROM_DAY + 1);
    let dir = write(&scratch("downgrade-v4"), &input_on(day));
    let r = run(&dir);
    assert_fails_with(
        &r,
        &CheckKind::RootProof,
        "root.proof is a poe/day-root/v1 root proof (the day tree alone); days from 2026-12-14 on need poe/day-root/v4",
    );
}

/// Flips each byte of `range` in turn and reads the file back: every corruption must give an
/// error (or, rarely, other rows), never a panic. Returns the first flip that makes parquet-rs
/// fail inside (`ReaderPanic`), else the first that fails at all.
fn worst_flip(bytes: &[u8], range: std::ops::Range<usize>, schema: &SchemaRef) -> usize {
    let mut first_error = None;
    for i in range {
        let mut b = bytes.to_vec();
        b[i] ^= 0xff;
        match parquet_io::read(b, schema) {
            Err(poe_archive::ArchiveError::ReaderPanic(_)) => return i,
            Err(_) if first_error.is_none() => first_error = Some(i),
            _ => {}
        }
    }
    first_error.expect("some flip breaks the file")
}

fn mkfifo(path: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(ok.success());
}

type SchemaRef = std::sync::Arc<arrow_schema::Schema>;

#[test]
fn corrupt_statements_file_under_a_matching_hash_fails_without_a_panic() {
    let dir = copy();
    let path = dir.join("statements.parquet");
    let bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    let schema = poe_archive::records::statements_schema();
    let i = worst_flip(&bytes, 4..n - 8, &schema);
    let mut b = bytes.clone();
    b[i] ^= 0xff;
    std::fs::write(&path, b).unwrap();
    refresh_manifest(&dir);
    assert_fails_with(&run(&dir), &CheckKind::Statements, "statements.parquet");
}

#[test]
fn corrupt_trades_page_under_a_matching_hash_fails_without_a_panic() {
    let dir = copy();
    let path = dir.join(PART);
    let bytes = std::fs::read(&path).unwrap();
    // Past the magic, before the footer: the column chunks' page headers and data.
    let i = worst_flip(&bytes, 4..bytes.len() / 2, &trades_schema());
    let mut b = bytes.clone();
    b[i] ^= 0xff;
    std::fs::write(&path, b).unwrap();
    refresh_manifest(&dir);
    assert_fails_with(&run(&dir), &CheckKind::Trades("aurora".into()), PART);
}

#[test]
fn fifo_in_place_of_a_listed_file_fails_without_hanging() {
    let dir = copy();
    let path = dir.join(PART);
    std::fs::remove_file(&path).unwrap();
    mkfifo(&path);
    // Were the FIFO opened for reading, the audit would wait for a writer for ever.
    let r = run(&dir);
    assert_fails_with(&r, &CheckKind::Manifest, "is a FIFO, not a regular file");
    assert_fails_with(&r, &CheckKind::Trades("aurora".into()), "is a FIFO");
}

#[test]
fn symlink_to_an_endless_device_is_not_followed() {
    let dir = copy();
    let path = dir.join(PART);
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
    let r = run(&dir);
    assert_fails_with(
        &r,
        &CheckKind::Manifest,
        "is a symbolic link, not a regular file",
    );
}

#[test]
fn unlisted_file_in_a_partition_is_never_opened() {
    // A FIFO the manifest does not list: reported, and never opened (opening would hang).
    let dir = copy();
    let extra = dir.join("trades/rollup=aurora/part-0001.parquet");
    mkfifo(&extra);
    let r = run(&dir);
    assert_fails_with(
        &r,
        &CheckKind::Manifest,
        "part-0001.parquet: present but not in the manifest",
    );
    assert_passes(&r, &CheckKind::Trades("aurora".into()));
}

#[test]
fn trades_file_recompressed_with_snappy_is_refused_by_name() {
    let dir = copy();
    let storage = LocalDir::new(&dir);
    let read = parquet_io::read(storage.read(PART).unwrap(), &trades_schema()).unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .set_key_value_metadata(Some(
            read.metadata
                .iter()
                .map(|(k, v)| parquet::file::metadata::KeyValue::new(k.clone(), v.clone()))
                .collect(),
        ))
        .build();
    let mut out = Vec::new();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(&mut out, read.rows.schema(), Some(props)).unwrap();
    w.write(&read.rows).unwrap();
    w.close().unwrap();
    storage.write(PART, &out).unwrap();
    refresh_manifest(&dir);
    assert_fails_with(
        &run(&dir),
        &CheckKind::Trades("aurora".into()),
        "is compressed with SNAPPY; poe archives are ZSTD or UNCOMPRESSED",
    );
}

fn edit_metadata(dir: &Path, edit: impl FnOnce(&mut Vec<(String, String)>)) {
    let storage = LocalDir::new(dir);
    let read = parquet_io::read(storage.read(PART).unwrap(), &trades_schema()).unwrap();
    let mut meta: Vec<(String, String)> = read
        .metadata
        .into_iter()
        .filter(|(k, _)| k != "ARROW:schema")
        .collect();
    edit(&mut meta);
    let bytes = parquet_io::write(&read.rows, meta).unwrap();
    storage.write(PART, &bytes).unwrap();
    refresh_manifest(dir);
}

#[test]
fn trades_metadata_with_another_rollup_id_is_rejected() {
    let dir = copy();
    edit_metadata(&dir, |m| {
        m.iter_mut().find(|(k, _)| k == "poe.rollup_id").unwrap().1 = "2".into();
    });
    assert_fails_with(
        &run(&dir),
        &CheckKind::Trades("aurora".into()),
        "metadata poe.rollup_id is Some(\"2\")",
    );
}

#[test]
fn trades_metadata_with_forged_data_roots_is_rejected() {
    let dir = copy();
    edit_metadata(&dir, |m| {
        m.iter_mut().find(|(k, _)| k == "poe.data_roots").unwrap().1 = "[]".into();
    });
    assert_fails_with(
        &run(&dir),
        &CheckKind::Trades("aurora".into()),
        "metadata poe.data_roots is Some(\"[]\"), the batches starting in the file give",
    );
}

#[test]
fn trades_metadata_with_an_extra_key_is_rejected() {
    let dir = copy();
    edit_metadata(&dir, |m| m.push(("poe.verified".into(), "true".into())));
    assert_fails_with(
        &run(&dir),
        &CheckKind::Trades("aurora".into()),
        "metadata keys [\"poe.verified\"]",
    );
}

#[test]
fn statement_accepted_outside_the_day_is_rejected() {
    let dir = copy();
    edit_statements(&dir, |rows| {
        rows[1].accepted_at = DAY.next().start_us() as i64;
    });
    assert_fails_with(
        &run(&dir),
        &CheckKind::Statements,
        "row 1 (rollup aurora seq 41): accepted_at",
    );
}

#[test]
fn renamed_venue_trade_id_fails_the_rollups_signature() {
    // Operation ids are not in the AIR's records, so the data roots do not see a rename; the
    // native commitment the rollup signed does.
    let dir = copy();
    edit_rows(&dir, |rows| rows[1].venue_trade_id = "T-forged".into());
    refresh_manifest(&dir);
    let r = run(&dir);
    assert_fails_with(
        &r,
        &CheckKind::Signatures,
        "rollup aurora batch seq 40: commitment_mismatch",
    );
    assert_passes(&r, &CheckKind::Trades("aurora".into()));
}

#[test]
fn forged_batch_id_in_statements_fails_the_recomputation() {
    let dir = copy();
    edit_statements(&dir, |rows| rows[2].batch_id = hex::encode([0xab; 32]));
    assert_fails_with(
        &run(&dir),
        &CheckKind::Signatures,
        &format!(
            "batch_id {} in statements.parquet, the archived batch hashes to",
            hex::encode([0xab; 32])
        ),
    );
}

#[test]
fn batches_re_signed_under_a_key_of_the_operators_are_rejected() {
    // The manifest names the operator's key instead of the rollup's: every batch of that
    // rollup fails, since the rollup's signatures do not verify under it.
    let dir = copy();
    let storage = LocalDir::new(&dir);
    let mut m = Manifest::from_bytes(&storage.read("manifest.json").unwrap()).unwrap();
    let operator = client("aurora", 99, Scheme::Keccak256);
    m.rollups[0].public_key = Some(hex::encode(operator.public_key().to_bytes_be()));
    storage.write("manifest.json", &m.to_bytes()).unwrap();
    assert_fails_with(
        &run(&dir),
        &CheckKind::Signatures,
        "rollup aurora batch seq 40: bad_signature",
    );
}

#[test]
fn tampered_signature_is_rejected() {
    let dir = copy();
    edit_statements(&dir, |rows| {
        let (r, s) = rows[0].signature.clone().unwrap();
        let mut s = hex::decode(s).unwrap();
        s[31] ^= 1;
        rows[0].signature = Some((r, hex::encode(s)));
    });
    assert_fails_with(&run(&dir), &CheckKind::Signatures, "bad_signature");
}

#[test]
fn statements_without_signatures_for_a_day_from_december_are_a_refused_downgrade() {
    let day = Day(poe_archive::records::STATEMENTS_V2_REQUIRED_FROM_DAY + 1);
    let dir = write(&scratch("statements-v1"), &input_on(day));
    // Rewrite statements.parquet as a v1 table (the signature columns dropped) and say so.
    let storage = LocalDir::new(&dir);
    let read = parquet_io::read(
        storage.read("statements.parquet").unwrap(),
        &statements_schema(),
    )
    .unwrap();
    let v1 = read.rows.project(&(0..17).collect::<Vec<_>>()).unwrap();
    let meta = vec![
        ("poe.schema_version".to_string(), "1".to_string()),
        ("poe.day".to_string(), day.to_string()),
    ];
    storage
        .write("statements.parquet", &parquet_io::write(&v1, meta).unwrap())
        .unwrap();
    let mut m = Manifest::from_bytes(&storage.read("manifest.json").unwrap()).unwrap();
    m.schemas.statements = 1;
    storage.write("manifest.json", &m.to_bytes()).unwrap();
    refresh_manifest(&dir);
    assert_fails_with(
        &run(&dir),
        &CheckKind::Manifest,
        "a downgrade would hide the rollups' signatures",
    );
}
