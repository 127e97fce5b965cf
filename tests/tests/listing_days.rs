//! An instrument listed through intake on one day, traded the next: each day's bundle carries
//! the table of its day, every proof of the day binds that table, and `poe audit` passes both
//! days (`specs/api.md` §2.6).

mod common;

use std::process::Command;

use common::{day, poe_binary, scratch};
use poe_archive::LocalDir;
use poe_circle_stark::config::SecurityConfig;
use poe_circle_stark::venue::Operation;
use poe_ingest::commitment::Scheme;
use poe_ingest::intake::{Intake, ListingOutcome, Outcome};
use poe_ingest::testkit::{client, funding, op, realistic_ops, registry, weekly_call, T0};
use serde_json::Value;

#[test]
fn a_listing_goes_into_the_next_days_table_and_both_days_audit() {
    let dir = scratch("listing-days");
    let mut c = client("aurora", 1, Scheme::Keccak256);
    let mut intake = Intake::create(registry(&[&c]), &dir.join("intake.redb")).unwrap();
    let mut now = T0 + 1_000_000;
    let submit = |intake: &mut Intake, body: Vec<u8>, at: u64| {
        assert!(matches!(
            intake.submit(&body, at).unwrap(),
            Outcome::Accepted(_)
        ));
    };
    submit(&mut intake, c.next_batch(&funding(), "none", b""), now);
    now += 1_000_000;
    submit(
        &mut intake,
        c.next_batch(&realistic_ops(64, 5, T0 + 2_000_000), "none", b""),
        now,
    );

    // Day 1: a weekly call is listed (table position 2), for day 2.
    let body = c.list_instruments(&[weekly_call()]);
    assert!(matches!(
        intake.list(&body, T0 + 3_600_000_000).unwrap(),
        ListingOutcome::Listed(_)
    ));

    // Day 2: it trades.
    let day2 = day().next();
    let t = day2.start_us() + 60_000_000;
    let trade = vec![op(
        "W-1",
        Operation::Trade {
            buyer: 1,
            seller: 2,
            instrument: 2,
            qty: 2,
            price: 9,
            buyer_fee: 1,
            seller_fee: 1,
            timestamp_us: t,
        },
    )];
    submit(&mut intake, c.next_batch(&trade, "none", b""), t + 1_000);

    let archive = LocalDir::new(dir.join("archive"));
    for d in [day(), day2] {
        poe_aggregator::day::close_day(
            &intake,
            &archive,
            d,
            SecurityConfig::production(),
            &mut |_| {},
        )
        .unwrap();
    }

    let table = |d: &poe_archive::Day| -> Vec<String> {
        let m: Value = serde_json::from_slice(
            &std::fs::read(dir.join(format!("archive/days/{d}/manifest.json"))).unwrap(),
        )
        .unwrap();
        m["rollups"][0]["instruments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        table(&day()).len(),
        2,
        "day 1's table: the listing is not in effect"
    );
    assert_eq!(table(&day2).len(), 3);
    assert_eq!(table(&day2)[2], "BTC-26NOV26-120-C");

    for d in [day(), day2] {
        let out = Command::new(poe_binary())
            .arg("audit")
            .arg(dir.join(format!("archive/days/{d}")))
            .arg("--key-cache")
            .arg(dir.join("key-cache"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{d}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
