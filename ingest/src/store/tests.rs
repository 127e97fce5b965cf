use super::*;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("poe-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn put_then_reopen_finds_everything_in_order() {
    let dir = scratch("order");
    let path = dir.join("intake.redb");
    let rollup = [7u8; 32];
    {
        let store = Store::create(&path).unwrap();
        for seq in [2u64, 1, 3] {
            store
                .put(
                    &rollup,
                    seq,
                    &[seq as u8; 32],
                    seq * 10,
                    &[seq as u8; 5],
                    &[[seq as u8; 32]],
                )
                .unwrap();
        }
        store.put(&[8u8; 32], 1, &[99; 32], 0, &[], &[]).unwrap();
        assert_eq!(
            store
                .first_used_trade_id(&rollup, &[[9; 32], [2; 32]])
                .unwrap(),
            Some((1, 2))
        );
        assert_eq!(
            store.first_used_trade_id(&[8u8; 32], &[[2; 32]]).unwrap(),
            None
        );
    }
    let store = Store::open(&path).unwrap();
    let got = store.batches_of(&rollup).unwrap();
    assert_eq!(
        got.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(
        (got[1].1.body.clone(), got[1].1.accepted_us),
        (vec![2u8; 5], 20)
    );
    assert_eq!(store.id_at(&rollup, 3).unwrap(), Some([3u8; 32]));
    assert_eq!(store.id_at(&rollup, 4).unwrap(), None);
    assert_eq!(store.last_accepted_us(), 30);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn store_truncated_to_zero_bytes_is_refused_not_reinitialised() {
    let dir = scratch("zero");
    let path = dir.join("intake.redb");
    Store::create(&path)
        .unwrap()
        .put(&[7; 32], 1, &[1; 32], 5, b"body", &[])
        .unwrap();
    std::fs::File::create(&path).unwrap(); // truncates
    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(&err, StoreError::Empty { path: p } if *p == path),
        "{err}"
    );
    assert!(err.to_string().contains("0 bytes"), "{err}");
    // Still empty: nothing was written over it.
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    assert!(matches!(
        Store::create(&path),
        Err(StoreError::Exists { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_store_is_refused_and_create_makes_one_only_where_none_is() {
    let dir = scratch("missing");
    let path = dir.join("intake.redb");
    assert!(matches!(
        Store::open(&path),
        Err(StoreError::Missing { .. })
    ));
    assert!(!path.exists(), "open must not create");
    drop(Store::create(&path).unwrap());
    assert!(matches!(
        Store::create(&path),
        Err(StoreError::Exists { .. })
    ));
    assert!(Store::open(&path).is_ok());
    let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn close_mark_survives_reopen_and_never_moves_back() {
    let dir = scratch("close");
    let path = dir.join("intake.redb");
    {
        let store = Store::create(&path).unwrap();
        assert_eq!(store.closed_before_us().unwrap(), 0);
        store.close_before(86_400_000_000).unwrap();
        store.close_before(1).unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.closed_before_us().unwrap(), 86_400_000_000);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Flips one byte in every copy of `needle` in the file (copy-on-write pages may hold
/// stale copies; the live one is among them).
fn flip_all(path: &Path, needle: &[u8]) -> usize {
    let mut bytes = std::fs::read(path).unwrap();
    let mut hits = 0;
    let mut i = 0;
    while let Some(at) = bytes[i..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + i)
    {
        bytes[at + needle.len() / 2] ^= 0x01;
        hits += 1;
        i = at + needle.len();
    }
    std::fs::write(path, bytes).unwrap();
    hits
}

#[test]
fn flipped_byte_in_a_stored_body_names_the_batch() {
    let dir = scratch("flip");
    let path = dir.join("intake.redb");
    let rollup = [7u8; 32];
    {
        let store = Store::create(&path).unwrap();
        for seq in 1..=3u64 {
            let body = format!(
                "{{\"batch\":{seq},\"pad\":\"{}\"}}",
                "x".repeat(64) + &seq.to_string()
            );
            store
                .put(&rollup, seq, &[seq as u8; 32], seq, body.as_bytes(), &[])
                .unwrap();
        }
    }
    assert!(flip_all(&path, format!("{}2", "x".repeat(64)).as_bytes()) > 0);
    let err = Store::open(&path).unwrap_err();
    let StoreError::Corrupted { what, .. } = &err else {
        panic!("expected Corrupted, got {err}");
    };
    assert!(err.to_string().starts_with("store corrupted: "), "{err}");
    assert!(
        what.contains(&hex::encode([2u8; 32])),
        "names the batch: {what}"
    );
    assert!(
        !what.contains(&hex::encode([1u8; 32])),
        "only the damaged one: {what}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn record_digest_covers_every_field() {
    let base = record_digest(&[1; 32], &[2; 32], 3, 4, b"body");
    for other in [
        record_digest(&[9; 32], &[2; 32], 3, 4, b"body"),
        record_digest(&[1; 32], &[9; 32], 3, 4, b"body"),
        record_digest(&[1; 32], &[2; 32], 9, 4, b"body"),
        record_digest(&[1; 32], &[2; 32], 3, 9, b"body"),
        record_digest(&[1; 32], &[2; 32], 3, 4, b"bodY"),
    ] {
        assert_ne!(base, other);
    }
}
