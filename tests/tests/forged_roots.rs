//! The forgery of issue 13: an operator publishes a false state root between two batches of one
//! segment. Batch k's `post_state_root` and batch k+1's `pre_state_root` are replaced
//! consistently (so continuity holds) and the day's root is proven honestly over the new
//! statements and manifest. Under a v5 root (`poe/day-root/v5`) every segment states each
//! root between its batches, so the root proof itself is refused — with or without leaf
//! proofs in the bundle. (Under v4, whose segments stated only each run's first and last
//! root, the audit caught it in `state-roots`, from the leaf proofs.)

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
    run_audit_with(bundle, None)
}

/// With the auditor's key cache at `keys`.
fn run_audit_with(bundle: &std::path::Path, keys: Option<&std::path::Path>) -> AuditReport {
    audit(
        &LocalDir::new(bundle),
        &AuditOptions {
            policy: VerifierPolicy::insecure_for_tests(),
            key_cache: keys.map(std::path::Path::to_path_buf),
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
    // The honest day's audit fills the auditor's key cache (keys depend on the classes and
    // the tree shape, which the forged day shares).
    let keys = dir.join("key-cache");
    let report = run_audit_with(&honest_bundle, Some(&keys));
    assert!(report.passed(), "{:#?}", report.checks);
    // Three rollups of three batches, one segment each: 12 state roots, every one proven by
    // the root proof; the bundle carries no leaf proof.
    let roots = check(&report, &CheckKind::StateRoots);
    assert!(
        roots
            .detail
            .contains("all 12 state roots proven by the root proof's 3 segments")
            && roots.detail.contains("no leaf proof needed"),
        "{roots:?}"
    );
    assert!(!honest_bundle.join("leaf-proofs").exists());

    let seq = day_input(&intake, day(), config()).unwrap().batches[0]
        .statement
        .seq;
    let fake = hash_elements(
        Domain::Message,
        &[poe_circle_stark::field::M31::from_u32_unchecked(13)],
    );
    let forge = |keep_leaves: bool, name: &str| -> std::path::PathBuf {
        let mut input = day_input(&intake, day(), config()).unwrap();
        let venues = day_venues(&intake, &input).unwrap();
        if keep_leaves {
            input.leaf_proofs = true;
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
        out.join("days").join(day().to_string())
    };

    // No leaf proofs: the root proof states the real root after batch 0, which is not the
    // one the batch statements publish. With the keys cached, the final proof is refused
    // against the digest rebuilt from the forged statements; without, the key samples
    // already fail (segment 0's proof does not verify against its rebuilt statement).
    let forged = forge(false, "forged-no-leaves");
    let report = run_audit_with(&forged, Some(&keys));
    assert!(!report.passed());
    let root = check(&report, &CheckKind::RootProof);
    assert!(
        !root.passed && root.detail.contains("public inputs differ"),
        "{root:?}"
    );
    let roots = check(&report, &CheckKind::StateRoots);
    assert!(
        !roots.passed && roots.detail.contains("not checked"),
        "{roots:?}"
    );
    let report = run_audit(&forged);
    let root = check(&report, &CheckKind::RootProof);
    assert!(
        !root.passed
            && root.detail.contains("root.samples")
            && root.detail.contains("closure digest"),
        "{root:?}"
    );

    // The honest leaf proofs kept: the root proof is refused the same way, and the cheap
    // statement check of every leaf names the forged roots too (without --leaves).
    let report = run_audit_with(&forge(true, "forged-with-leaves"), Some(&keys));
    assert!(!check(&report, &CheckKind::RootProof).passed);
    let files = check(&report, &CheckKind::ProofFiles);
    assert!(
        !files.passed && files.detail.contains("pre-state root is"),
        "{files:?}"
    );
}
