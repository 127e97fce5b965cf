//! The forgery of issue 13: an operator publishes a false state root between two batches of one
//! segment. Batch k's `post_state_root` and batch k+1's `pre_state_root` are replaced
//! consistently (so continuity holds) and the day's v4 root is proven honestly over the new
//! statements and manifest — it can be: the segments state only each run's first pre- and last
//! post-state root, so the real operations prove them — and the audit must still refuse the
//! bundle, naming the batch whose root nothing proves.

mod common;

use common::{day, scratch, submit_day};
use poe_aggregator::day::{close_day, day_input, day_venues, prove_leaves, prove_root};
use poe_archive::audit::CheckKind;
use poe_archive::bundle::write_day;
use poe_archive::{audit, AuditOptions, AuditReport, LocalDir};
use poe_circle_stark::config::{SecurityConfig, VerifierPolicy};
use poe_circle_stark::hash::poseidon2::{hash_elements, Domain};

fn config() -> SecurityConfig {
    SecurityConfig::testing()
}

fn run_audit(bundle: &std::path::Path) -> AuditReport {
    audit(
        &LocalDir::new(bundle),
        &AuditOptions {
            policy: VerifierPolicy::insecure_for_tests(),
            ..AuditOptions::default()
        },
        &mut |_, _| {},
    )
}

fn check<'a>(r: &'a AuditReport, kind: &CheckKind) -> &'a poe_archive::audit::Check {
    r.checks
        .iter()
        .find(|c| c.kind == *kind)
        .unwrap_or_else(|| panic!("no {kind} check in {:#?}", r.checks))
}

#[test]
fn invented_root_between_batches_of_a_segment_is_rejected() {
    let dir = scratch("forged-roots");
    let (intake, _) = submit_day(&dir, 24);
    let honest_dir = dir.join("honest");
    close_day(
        &intake,
        &LocalDir::new(&honest_dir),
        day(),
        config(),
        &mut |_| {},
    )
    .unwrap();
    let honest_bundle = honest_dir.join("days").join(day().to_string());
    let report = run_audit(&honest_bundle);
    assert!(report.passed(), "{:#?}", report.checks);
    // Three rollups of three batches, one segment each: 12 state roots, of which the 6 between
    // batches rest on the batch-validity leaf proofs.
    let roots = check(&report, &CheckKind::StateRoots);
    assert!(
        roots.detail.contains("all 12 state roots proven")
            && roots
                .detail
                .contains("6 between batches by batch-validity leaf proofs"),
        "{roots:?}"
    );

    let seq = day_input(&intake, day(), config()).unwrap().batches[0]
        .statement
        .seq;
    let fake = hash_elements(
        Domain::Message,
        &[poe_circle_stark::field::M31::from_u32_unchecked(13)],
    );
    let forge = |keep_leaves: bool, name: &str| -> AuditReport {
        let mut input = day_input(&intake, day(), config()).unwrap();
        let venues = day_venues(&intake, &input).unwrap();
        if keep_leaves {
            let mut walked = venues.clone();
            prove_leaves(&mut input, &mut walked, config(), &mut |_, _| {}).unwrap();
        }
        assert_eq!(input.batches[1].statement.seq, seq + 1);
        input.batches[0].statement.post_state_root = fake;
        input.batches[1].statement.pre_state_root = fake;
        let out = dir.join(name);
        write_day(
            &LocalDir::new(&out),
            &input,
            |statements, manifest_hash| {
                prove_root(
                    &input,
                    statements,
                    manifest_hash,
                    &venues,
                    input.root_config,
                    &mut |_| {},
                    &mut poe_circle_stark::day::Runs::none(),
                )
                .map_err(|e| e.to_string())
            },
            &mut |_| {},
        )
        .unwrap();
        run_audit(&out.join("days").join(day().to_string()))
    };

    // Leaf proofs deleted (leaf_proof_digest null): the root proof itself verifies — the
    // segments never state the forged root — so only the state-roots check can catch it.
    let report = forge(false, "forged-no-leaves");
    assert!(!report.passed());
    assert!(
        check(&report, &CheckKind::RootProof).passed,
        "{:#?}",
        report.checks
    );
    let roots = check(&report, &CheckKind::StateRoots);
    assert!(!roots.passed);
    assert!(
        roots.detail.contains(&format!(
            "batch seq {seq} of aurora (post-state root {fake}): lies inside a segment and has no leaf proof"
        )),
        "{roots:?}"
    );

    // The honest leaf proofs kept: batch 0's proves the real post-state root, not the forged.
    let report = forge(true, "forged-with-leaves");
    let roots = check(&report, &CheckKind::StateRoots);
    assert!(!roots.passed);
    assert!(
        roots.detail.contains(&format!("batch seq {seq} of aurora"))
            && roots.detail.contains("its post-state root is"),
        "{roots:?}"
    );
    // The cheap statement check of every leaf names both batches without --leaves.
    let files = check(&report, &CheckKind::ProofFiles);
    assert!(
        !files.passed && files.detail.contains("pre-state root is"),
        "{files:?}"
    );
}
