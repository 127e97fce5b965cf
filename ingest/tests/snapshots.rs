//! State snapshots (`specs/api.md` §7.1): start-up from the latest one replays only the
//! batches after it and reaches the same head; a snapshot that does not check out is refused,
//! named, and every batch replayed instead — a snapshot is a cache, never trusted over the
//! batches.

use poe_ingest::client::RollupClient;
use poe_ingest::commitment::Scheme;
use poe_ingest::intake::{Intake, OpenOptions, Outcome};
use poe_ingest::short_string::ShortString;
use poe_ingest::store::Store;
use poe_ingest::testkit::{funding, registry, trade_at, T0};
use std::path::{Path, PathBuf};

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("poe-snapshots-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Four batches of one rollup, a snapshot of its state taken after the third; returns the
/// client (at seq 4) and the head root after each batch.
fn four_batches_snapshot_after_three(path: &Path) -> (RollupClient, Vec<String>) {
    let mut c = poe_ingest::testkit::client("aurora", 1, Scheme::Keccak256);
    let mut intake = Intake::create(registry(&[&c]), path).unwrap();
    let mut roots = Vec::new();
    for (i, ops) in [
        funding(),
        trade_at(T0 + 2),
        trade_at(T0 + 3),
        trade_at(T0 + 4),
    ]
    .into_iter()
    .enumerate()
    {
        let body = c.next_batch(&ops, "none", b"");
        let Outcome::Accepted(r) = intake.submit(&body, T0 + 10 + i as u64).unwrap() else {
            panic!("not accepted");
        };
        roots.push(r.post_state_root.to_hex());
        if i == 2 {
            intake.snapshot_all().unwrap();
        }
    }
    (c, roots)
}

fn head_root(intake: &Intake) -> String {
    intake.head("aurora").unwrap().1.to_hex()
}

#[test]
fn start_up_from_a_snapshot_replays_only_the_batches_after_it() {
    let dir = scratch("used");
    let path = dir.join("intake.redb");
    let (mut c, roots) = four_batches_snapshot_after_three(&path);

    let full = Intake::open_with(registry(&[&c]), &path, OpenOptions { snapshots: false }).unwrap();
    assert_eq!(
        (full.rebuilt()[0].from_seq, full.rebuilt()[0].replayed),
        (0, 4)
    );
    let full_root = head_root(&full);
    drop(full);

    let intake = Intake::open(registry(&[&c]), &path).unwrap();
    let how = &intake.rebuilt()[0];
    assert_eq!((how.from_seq, how.replayed), (3, 1));
    assert_eq!(how.snapshot_refused, None);
    assert_eq!(head_root(&intake), roots[3]);
    assert_eq!(head_root(&intake), full_root, "the same head either way");

    // The venue before batch 4 (a proof's witness) starts from the snapshot too, and is the
    // state batch 3 left.
    let mut before = intake.venue_before(1, 4).unwrap();
    assert_eq!(before.state_root().to_hex(), roots[2]);

    // Intake goes on from the rebuilt head.
    let mut intake = intake;
    let body = c.next_batch(&trade_at(T0 + 5), "none", b"");
    assert!(matches!(
        intake.submit(&body, T0 + 20).unwrap(),
        Outcome::Accepted(_)
    ));
    // A snapshot at the head, taken on shutdown, leaves nothing to replay.
    intake.snapshot_all().unwrap();
    drop(intake);
    let intake = Intake::open(registry(&[&c]), &path).unwrap();
    assert_eq!(
        (intake.rebuilt()[0].from_seq, intake.rebuilt()[0].replayed),
        (5, 0)
    );
}

/// Replaces the snapshot after batch 3 with `bytes` (the service stopped).
fn put_snapshot(path: &Path, bytes: &[u8]) {
    let store = Store::open(path).unwrap();
    store
        .put_snapshot(
            &ShortString::try_from("aurora").unwrap().to_be_bytes32(),
            3,
            bytes,
            4,
        )
        .unwrap();
}

#[test]
fn a_snapshot_of_another_state_is_refused_and_every_batch_replayed() {
    let dir = scratch("forged");
    let path = dir.join("intake.redb");
    let (c, roots) = four_batches_snapshot_after_three(&path);
    // A canonical snapshot, but of the state after batch 1: its root is not batch 3's.
    let mut v = Intake::open(registry(&[&c]), &path)
        .unwrap()
        .venue_before(1, 2)
        .unwrap();
    assert_eq!(v.state_root().to_hex(), roots[0]);
    put_snapshot(&path, &v.to_snapshot());

    let intake = Intake::open(registry(&[&c]), &path).unwrap();
    let how = &intake.rebuilt()[0];
    assert_eq!((how.from_seq, how.replayed), (0, 4), "every batch replayed");
    let why = how.snapshot_refused.as_deref().unwrap();
    assert!(
        why.contains("snapshot at seq 3") && why.contains("is not batch 3's post-state root"),
        "{why}"
    );
    assert_eq!(head_root(&intake), roots[3], "the head the batches give");
}

#[test]
fn a_snapshot_with_trailing_bytes_is_refused_and_every_batch_replayed() {
    let dir = scratch("trailing");
    let path = dir.join("intake.redb");
    let (c, roots) = four_batches_snapshot_after_three(&path);
    let mut v = Intake::open(registry(&[&c]), &path)
        .unwrap()
        .venue_before(1, 4)
        .unwrap();
    let mut bytes = v.to_snapshot();
    bytes.push(0);
    assert_eq!(v.state_root().to_hex(), roots[2]);
    put_snapshot(&path, &bytes);

    let intake = Intake::open(registry(&[&c]), &path).unwrap();
    let how = &intake.rebuilt()[0];
    assert_eq!((how.from_seq, how.replayed), (0, 4));
    assert_eq!(
        how.snapshot_refused.as_deref(),
        Some("snapshot at seq 3: 1 trailing bytes")
    );
    assert_eq!(head_root(&intake), roots[3]);
}
