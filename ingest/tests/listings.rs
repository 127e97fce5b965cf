//! Instrument listings through intake (`specs/api.md` §2.6): signed, stored, effective from
//! the next UTC day, idempotent, refused with a specific code when forged or wrong, and
//! replayed onto the registry after a restart.

use poe_circle_stark::calendar::Day;
use poe_circle_stark::venue::{Operation, OptionKind};
use poe_ingest::client::RollupClient;
use poe_ingest::commitment::Scheme;
use poe_ingest::intake::{Intake, IntakeError, ListingOutcome, Outcome};
use poe_ingest::listing::Listing;
use poe_ingest::model::RefusalCode;
use poe_ingest::testkit::{funding, op, registry, weekly_call, T0};
use std::path::PathBuf;

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("poe-listings-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn client() -> RollupClient {
    poe_ingest::testkit::client("aurora", 1, Scheme::Keccak256)
}

fn trade(id: &str, instrument: u32, ts: u64) -> Vec<poe_ingest::commitment::CommittedOp> {
    vec![op(
        id,
        Operation::Trade {
            buyer: 1,
            seller: 2,
            instrument,
            qty: 1,
            price: 7,
            buyer_fee: 1,
            seller_fee: 1,
            timestamp_us: ts,
        },
    )]
}

fn refusal(r: Result<impl std::fmt::Debug, IntakeError>) -> poe_ingest::model::Refusal {
    match r {
        Err(IntakeError::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_listing_trades_from_the_next_day_and_survives_a_restart() {
    let dir = scratch("next-day");
    let path = dir.join("intake.redb");
    let mut c = client();
    let mut intake = Intake::create(registry(&[&c]), &path).unwrap();
    let body = c.next_batch(&funding(), "none", b"");
    assert!(matches!(
        intake.submit(&body, T0 + 10).unwrap(),
        Outcome::Accepted(_)
    ));

    let listing = c.list_instruments(&[weekly_call()]);
    let tomorrow = Day::of_us(T0).next().start_us();
    let ListingOutcome::Listed(r) = intake.list(&listing, T0 + 20).unwrap() else {
        panic!("not listed");
    };
    assert_eq!(
        (r.first_index, r.count, r.effective_from_us),
        (2, 1, tomorrow)
    );
    // Sent again (a retry): the same receipt, 200.
    assert_eq!(
        intake.list(&listing, T0 + 30).unwrap(),
        ListingOutcome::Duplicate(r.clone())
    );

    // Today the new instrument is not tradable: the venue does not know it yet.
    let early = c.next_batch(&trade("T-early", 2, T0 + 40), "none", b"");
    let r = refusal(intake.submit(&early, T0 + 50));
    assert_eq!(
        (r.code, r.path.as_str()),
        (RefusalCode::RuleViolation, "operations[0]")
    );
    assert!(r.message.contains("instrument 2"), "{}", r.message);
    // The refused batch moved the client's replica on: it starts again from what was accepted.
    let mut c = client();
    c.next_batch(&funding(), "none", b"");
    c.list_instruments(&[weekly_call()]);

    // Tomorrow it is.
    let body = c.next_batch(&trade("T-1", 2, tomorrow + 1_000), "none", b"");
    assert!(matches!(
        intake.submit(&body, tomorrow + 2_000).unwrap(),
        Outcome::Accepted(_)
    ));
    let head = intake.head("aurora").unwrap();
    assert_eq!(intake.instruments_at(1, T0 + 20).len(), 2, "today's table");
    assert_eq!(intake.instruments_at(1, tomorrow).len(), 3, "tomorrow's");
    drop(intake);

    // After a restart the listing is back in the table, and the history replays to the same head.
    let intake = Intake::open(registry(&[&c]), &path).unwrap();
    assert_eq!(intake.head("aurora").unwrap(), head);
    let entry = intake.registry().get("aurora").unwrap();
    assert_eq!(entry.instrument_index("BTC-26NOV26-120-C"), Some(2));
    assert_eq!(entry.effective_from_us, [0, 0, tomorrow]);
    // The venue before batch 2 (its proof's witness) carries tomorrow's table.
    assert_eq!(intake.venue_before(1, 2).unwrap().instruments().len(), 3);
}

#[test]
fn forged_conflicting_and_invalid_listings_are_refused_with_their_code() {
    let dir = scratch("refused");
    let mut c = client();
    let mut intake = Intake::create(registry(&[&c]), &dir.join("intake.redb")).unwrap();

    // Signed by another key.
    let other = poe_ingest::testkit::client("aurora", 2, Scheme::Keccak256);
    let forged = Listing::signed_body("aurora", 2, &[weekly_call()], &other.private_key);
    assert_eq!(
        refusal(intake.list(&forged, T0)).code,
        RefusalCode::BadSignature
    );

    // A strike changed after signing.
    let signed = String::from_utf8(Listing::signed_body(
        "aurora",
        2,
        &[weekly_call()],
        &c.private_key,
    ))
    .unwrap();
    let tampered = signed.replace("\"strike\":\"120\"", "\"strike\":\"1\"");
    assert_ne!(tampered, signed);
    assert_eq!(
        refusal(intake.list(tampered.as_bytes(), T0)).code,
        RefusalCode::BadSignature
    );

    // Not at the end of the table.
    let gap = Listing::signed_body("aurora", 5, &[weekly_call()], &c.private_key);
    let r = refusal(intake.list(&gap, T0));
    assert_eq!(
        (r.code, r.path.as_str()),
        (RefusalCode::ListingConflict, "first_index")
    );
    assert!(r.message.contains("starts at 2, not 5"), "{}", r.message);

    // A put whose collateral is not its strike.
    let mut put = weekly_call();
    put.name = "BTC-26NOV26-90-P".into();
    put.instrument.kind = OptionKind::Put;
    put.instrument.strike = 90;
    let r = refusal(intake.list(
        &Listing::signed_body("aurora", 2, &[put], &c.private_key),
        T0,
    ));
    assert_eq!(
        (r.code, r.path.as_str()),
        (RefusalCode::InvalidListing, "instruments[0].collateral")
    );

    // A name already in the table.
    let mut again = weekly_call();
    again.name = "BTC-19NOV26-100-C".into();
    let r = refusal(intake.list(
        &Listing::signed_body("aurora", 2, &[again], &c.private_key),
        T0,
    ));
    assert_eq!(
        (r.code, r.path.as_str()),
        (RefusalCode::InvalidListing, "instruments[0].name")
    );

    // Expiring before it could trade (tomorrow).
    let mut stale = weekly_call();
    stale.instrument.expiry_us = T0 + 1;
    let r = refusal(intake.list(
        &Listing::signed_body("aurora", 2, &[stale], &c.private_key),
        T0,
    ));
    assert_eq!(
        (r.code, r.path.as_str()),
        (RefusalCode::InvalidListing, "instruments[0].expiry_us")
    );

    // Nothing of the above was listed; then a good one is, and other instruments at its
    // position conflict.
    let listing = c.list_instruments(&[weekly_call()]);
    assert!(matches!(
        intake.list(&listing, T0).unwrap(),
        ListingOutcome::Listed(_)
    ));
    let mut other_call = weekly_call();
    other_call.name = "BTC-26NOV26-140-C".into();
    let r = refusal(intake.list(
        &Listing::signed_body("aurora", 2, &[other_call], &c.private_key),
        T0,
    ));
    assert_eq!(r.code, RefusalCode::ListingConflict);
    assert!(
        r.message.contains("already hold other instruments"),
        "{}",
        r.message
    );
}
