//! The intake store across crashes and damage (`specs/api.md` §7): never re-initialised behind
//! the operator's back, damage reported as the batch it hit, and a closed day stays closed
//! whatever the clock says after a restart.

use poe_circle_stark::calendar::Day;
use poe_circle_stark::venue::Operation;
use poe_ingest::client::RollupClient;
use poe_ingest::commitment::Scheme;
use poe_ingest::intake::{Intake, IntakeError, Outcome, Receipt};
use poe_ingest::store::StoreError;
use poe_ingest::testkit::{funding, op, registry, trade_at, T0};
use std::path::{Path, PathBuf};

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("poe-durability-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn client() -> RollupClient {
    poe_ingest::testkit::client("aurora", 1, Scheme::Keccak256)
}

fn accept(intake: &mut Intake, body: &[u8], now_us: u64) -> Receipt {
    match intake.submit(body, now_us).unwrap() {
        Outcome::Accepted(r) => r,
        other => panic!("expected a new acceptance, got {other:?}"),
    }
}

/// A store holding three accepted batches of one rollup; returns the client, the bodies and
/// their receipts.
fn three_batches(path: &Path) -> (RollupClient, Vec<Vec<u8>>, Vec<Receipt>) {
    let mut c = client();
    let mut intake = Intake::create(registry(&[&c]), path).unwrap();
    let mut bodies = Vec::new();
    let mut receipts = Vec::new();
    for (i, ops) in [funding(), trade_at(T0 + 2), trade_at(T0 + 3)]
        .into_iter()
        .enumerate()
    {
        let body = c.next_batch(&ops, "groth16", b"p");
        receipts.push(accept(&mut intake, &body, T0 + 10 + i as u64));
        bodies.push(body);
    }
    (c, bodies, receipts)
}

fn store_error(r: Result<Intake, IntakeError>) -> StoreError {
    match r {
        Err(IntakeError::Store(e)) => e,
        Err(other) => panic!("expected a store error, got {other}"),
        Ok(_) => panic!("expected a store error, the intake opened"),
    }
}

#[test]
fn store_truncated_to_zero_bytes_refuses_to_start() {
    let dir = scratch("zero");
    let path = dir.join("intake.redb");
    let (c, _, _) = three_batches(&path);
    std::fs::File::create(&path).unwrap(); // truncates to 0 bytes
    let err = store_error(Intake::open(registry(&[&c]), &path));
    assert!(
        matches!(&err, StoreError::Empty { path: p } if *p == path),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&path.display().to_string()),
        "names the file: {text}"
    );
    assert!(
        text.contains("--init"),
        "says how to start afresh on purpose: {text}"
    );
    // Refused, not re-initialised: the file is untouched, and --init will not overwrite it.
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    assert!(matches!(
        store_error(Intake::create(registry(&[&c]), &path)),
        StoreError::Exists { .. }
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_store_refuses_to_start_without_init() {
    let dir = scratch("missing");
    let path = dir.join("intake.redb");
    let err = store_error(Intake::open(registry(&[&client()]), &path));
    assert!(matches!(err, StoreError::Missing { .. }), "{err}");
    assert!(!path.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Flips one byte in every copy of `needle` in the file: copy-on-write pages may hold stale
/// copies of a record, and the live one is among them.
fn flip_every_copy(path: &Path, needle: &[u8]) -> usize {
    let mut bytes = std::fs::read(path).unwrap();
    let mut hits = 0;
    let mut from = 0;
    while let Some(at) = bytes[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
    {
        bytes[at + needle.len() / 2] ^= 0x01;
        hits += 1;
        from = at + needle.len();
    }
    std::fs::write(path, bytes).unwrap();
    hits
}

#[test]
fn flipped_byte_in_a_stored_body_is_reported_as_a_corrupted_store() {
    let dir = scratch("flip");
    let path = dir.join("intake.redb");
    let (c, bodies, receipts) = three_batches(&path);
    let json: serde_json::Value = serde_json::from_slice(&bodies[1]).unwrap();
    let r = json["signature"]["r"].as_str().unwrap().to_owned();
    assert!(
        flip_every_copy(&path, r.as_bytes()) > 0,
        "the body is in the file"
    );
    let err = store_error(Intake::open(registry(&[&c]), &path));
    let text = err.to_string();
    assert!(matches!(err, StoreError::Corrupted { .. }), "{text}");
    assert!(text.starts_with("store corrupted: batch "), "{text}");
    assert!(
        text.contains(&hex::encode(receipts[1].batch_id)),
        "names the batch: {text}"
    );
    assert!(text.contains("seq 2"), "{text}");
    assert!(
        !text.contains(&hex::encode(receipts[0].batch_id)),
        "only the damaged one: {text}"
    );
    assert!(text.contains("restore"), "a way forward: {text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn restart_with_the_clock_behind_after_a_day_was_marked_closed_stays_out_of_that_day() {
    let dir = scratch("clock");
    let path = dir.join("intake.redb");
    let day = Day::of_us(T0);
    let (mut c, _, _) = three_batches(&path);
    {
        let mut intake = Intake::open(registry(&[&c]), &path).unwrap();
        // The closer has begun closing `day`, then the process is killed (dropped, nothing
        // published).
        intake.close_through(day).unwrap();
    }
    // Restarted on a clock a few seconds behind midnight (an NTP step).
    let mut intake = Intake::open(registry(&[&c]), &path).unwrap();
    assert_eq!(intake.open_from_us(), day.next().start_us());
    let late = day.next().start_us() - 3_000_000;
    let body = c.next_batch(&trade_at(late - 1_000_000), "groth16", b"p");
    let receipt = accept(&mut intake, &body, late);
    assert_eq!(receipt.day, day.next().to_string());
    assert!(receipt.accepted_us >= day.next().start_us());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn acceptance_times_never_go_backwards_across_restarts() {
    let dir = scratch("monotone");
    let path = dir.join("intake.redb");
    let (mut c, _, receipts) = three_batches(&path);
    let last = receipts.last().unwrap().accepted_us;
    let mut intake = Intake::open(registry(&[&c]), &path).unwrap();
    let body = c.next_batch(&trade_at(T0 + 4), "groth16", b"p");
    // The clock now reads an hour before the last acceptance.
    let receipt = accept(&mut intake, &body, last - 3_600_000_000);
    assert_eq!(receipt.accepted_us, last);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn format_1_store_is_upgraded_in_place_and_its_trade_ids_indexed() {
    let dir = scratch("format1");
    let path = dir.join("intake.redb");
    let (mut c, _, receipts) = three_batches(&path);
    // What a store written before 2026-12-02 looks like: no digests, no meta, no id index.
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        assert!(txn
            .delete_table(redb::TableDefinition::<&[u8], &[u8]>::new("records"))
            .unwrap());
        assert!(txn
            .delete_table(redb::TableDefinition::<&[u8], u64>::new("trade_ids"))
            .unwrap());
        assert!(txn
            .delete_table(redb::TableDefinition::<&str, u64>::new("meta"))
            .unwrap());
        txn.commit().unwrap();
    }
    let mut intake = Intake::open(registry(&[&c]), &path).unwrap();
    assert_eq!(intake.head("aurora").unwrap().0, 3);
    assert!(intake.batch(&receipts[1].batch_id).unwrap().is_some());
    // The replay filled the id index: funding's "D-1" cannot be used again.
    let reused = vec![op(
        "D-1",
        Operation::Deposit {
            account: 1,
            amount: 1,
            timestamp_us: T0 + 4,
        },
    )];
    match intake.submit(&c.clone().next_batch(&reused, "groth16", b"p"), T0 + 20) {
        Err(IntakeError::Refused(r)) => assert_eq!(r.code, "duplicate_trade_id"),
        other => panic!("expected duplicate_trade_id, got {other:?}"),
    }
    accept(
        &mut intake,
        &c.next_batch(&trade_at(T0 + 5), "groth16", b"p"),
        T0 + 21,
    );
    drop(intake);
    // Upgraded for good: it opens as format 2 with every record digested.
    let intake = Intake::open(registry(&[&c]), &path).unwrap();
    assert_eq!(intake.head("aurora").unwrap().0, 4);
    std::fs::remove_dir_all(&dir).unwrap();
}
