//! The proof checks of the audit: the root proof, the leaf proofs, the state roots.

use super::*;

/// What a root proof that verified proves of the day's state roots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RootsProven {
    /// The root proof did not verify (reported by `root-proof`).
    Nothing,
    /// A v1 root proof (the day tree alone): no state root; each rests on its batch's leaf.
    V1,
    /// A v2 root proof: every segment's first pre- and last post-state root; the indices are
    /// the batches whose post-state root lies inside a segment.
    Segments {
        segments: usize,
        interior: Vec<usize>,
    },
}

pub(super) fn check_root_proof(
    a: &mut Auditor<'_>,
    day: Day,
    manifest: &Manifest,
    (derived, tables): (Option<&DayStatement>, &BTreeMap<u32, Vec<Instrument>>),
    batches: Option<&[BatchStatement]>,
    options: &AuditOptions,
) -> RootsProven {
    let bytes = match a.read(layout::ROOT_PROOF) {
        Ok(b) => b,
        Err(e) => {
            a.fail(CheckKind::RootProof, e);
            return RootsProven::Nothing;
        }
    };
    let recursive = RecursiveFormat::of(&bytes);
    let v4 = recursive.is_some();
    // The format first: a downgrade is refused whatever else is wrong with the bundle.
    if recursive == Some(RecursiveFormat::V4) && day.0 >= V5_REQUIRED_FROM_DAY {
        a.fail(
            CheckKind::RootProof,
            format!(
                "root.proof is a {ROOT_V4_AIR_NAME} root proof (the roots between a segment's batches left to leaf proofs); days from {} on need {ROOT_V5_AIR_NAME}, which proves every state root: a refused downgrade",
                Day(V5_REQUIRED_FROM_DAY)
            ),
        );
        return RootsProven::Nothing;
    }
    if !v4 && day.0 >= V4_REQUIRED_FROM_DAY {
        let got = if RootProof::is_v2(&bytes) {
            let name = RootProof::from_bytes(&bytes).map_or("v2 or v3", |r| r.format.name());
            format!("{name} root proof (day tree and segment proofs)")
        } else {
            "poe/day-root/v1 root proof (the day tree alone)".into()
        };
        a.fail(
            CheckKind::RootProof,
            format!(
                "root.proof is a {got}; days from {} on need {ROOT_V4_AIR_NAME}, one recursive proof: a refused downgrade",
                Day(V4_REQUIRED_FROM_DAY)
            ),
        );
        return RootsProven::Nothing;
    }
    let Some(statement) = derived else {
        a.fail(
            CheckKind::RootProof,
            "no day statement to verify against (see above)",
        );
        return RootsProven::Nothing;
    };
    // v4 and v5 (`POEROOT4`, `POEROOT5`): one recursive proof of the day.
    if v4 {
        let (proven, samples) =
            check_recursive_root(a, manifest, statement, tables, batches, options, &bytes);
        check_statement_json(a, manifest, statement, batches, &bytes, samples);
        return proven;
    }
    // v2 (`POEROOT2`): the day-tree proof and the segments re-proving every batch; v1 bundles
    // (written before segments) hold the day-tree proof alone.
    let v2 = RootProof::is_v2(&bytes);
    if !v2 && day.0 >= V2_REQUIRED_FROM_DAY {
        a.fail(
            CheckKind::RootProof,
            format!(
                "root.proof is a v1 root proof (the day tree alone, without batch validity); days from {} on need {ROOT_AIR_NAME}",
                Day(V2_REQUIRED_FROM_DAY)
            ),
        );
        return RootsProven::Nothing;
    }
    let (day_proof, root) = if v2 {
        match RootProof::from_bytes(&bytes) {
            Ok(r) => (r.day.clone(), Some(r)),
            Err(e) => {
                a.fail(CheckKind::RootProof, format!("root.proof: {e}"));
                return RootsProven::Nothing;
            }
        }
    } else {
        match Proof::from_bytes(&bytes) {
            Ok(p) => (p, None),
            Err(e) => {
                a.fail(CheckKind::RootProof, format!("root.proof: {e}"));
                return RootsProven::Nothing;
            }
        }
    };
    if day_proof.air == AirId::DayRoot
        && VerifierParams::day_root(&day_proof.config) != manifest.verifier
    {
        a.fail(
            CheckKind::RootProof,
            "root.proof parameters differ from the manifest's verifier section",
        );
    }
    let start = std::time::Instant::now();
    let mut proven = RootsProven::Nothing;
    let verified = match (root, batches) {
        (Some(root), Some(batches)) => {
            let format = root.format;
            let threads = std::thread::available_parallelism().map_or(1, usize::from);
            let listed = |id: u32| tables.get(&id).cloned();
            verify_root_with(root, statement, batches, &listed, &options.policy, threads).map(|c| {
                let text = format!(
                    "; {}: batch validity of all {} batches ({} ops) re-proven in {} segment proofs; \
                     state roots proven: each segment's first pre- and last post-state root \
                     ({} between batches inside a segment rest on leaf proofs: state-roots)",
                    format.name(),
                    c.batches,
                    c.ops,
                    c.segments,
                    c.interior.len()
                );
                proven = RootsProven::Segments {
                    segments: c.segments,
                    interior: c.interior,
                };
                text
            })
        }
        (Some(_), None) => Err(poe_circle_stark::error::VerifyError::InvalidStatement(
            "no batch statements to check the segments against (see above)".into(),
        )),
        (None, _) => verify_day(day_proof, statement, &options.policy).map(|()| {
            proven = RootsProven::V1;
            "; v1 root proof: batch validity is not in it, nor any state root (leaf proofs only)"
                .into()
        }),
    };
    match verified {
        Ok(coverage) => {
            a.facts.root_verify_ms = Some(start.elapsed().as_secs_f64() * 1e3);
            a.pass(
                CheckKind::RootProof,
                format!(
                "day root {} over {} batches and {} ops verified in {:.1} ms ({} bytes){coverage}",
                statement.day_root.to_hex(),
                statement.n_batches,
                statement.n_ops,
                start.elapsed().as_secs_f64() * 1e3,
                bytes.len()
            ),
            );
        }
        Err(e) => a.fail(CheckKind::RootProof, format!("root.proof: {e}")),
    }
    check_statement_json(a, manifest, statement, batches, &bytes, Samples::None);
    proven
}

/// What the audit saw of `root.samples`.
pub(super) enum Samples {
    /// Not a v4 bundle: there is none.
    None,
    /// Read (its bytes).
    Read(Vec<u8>),
    /// A v4 bundle whose keys came from the cache under `--proof-only`: not read, so
    /// `statement.json`'s facts about it are taken as published.
    Unread,
}

/// `statement.json` against the statement derived from the bundle.
fn check_statement_json(
    a: &mut Auditor<'_>,
    manifest: &Manifest,
    statement: &DayStatement,
    batches: Option<&[BatchStatement]>,
    bytes: &[u8],
    samples: Samples,
) {
    match a.read(layout::STATEMENT_JSON).and_then(|b| {
        serde_json::from_slice::<StatementJson>(&b).map_err(|e| format!("statement.json: {e}"))
    }) {
        Ok(published) => {
            let mut expected = StatementJson::new(
                &manifest.day,
                statement,
                batches,
                bytes,
                match &samples {
                    Samples::Read(b) => Some(b),
                    _ => None,
                },
            );
            if matches!(samples, Samples::Unread) {
                expected.root_samples_sha3_256 = published.root_samples_sha3_256.clone();
                expected.root_samples_bytes = published.root_samples_bytes;
            }
            a.facts.statement = Some(expected.clone());
            if published == expected {
                a.pass(
                    CheckKind::StatementJson,
                    "matches the statement derived from the bundle",
                );
            } else {
                a.fail(
                    CheckKind::StatementJson,
                    "differs from the statement derived from the bundle",
                );
            }
        }
        Err(e) => a.fail(CheckKind::StatementJson, e),
    }
}

/// A v4 or v5 root: its keys (from the auditor's cache, else derived from `root.samples` and
/// cached), then the one proof against the statements the auditor derived.
fn check_recursive_root(
    a: &mut Auditor<'_>,
    manifest: &Manifest,
    statement: &DayStatement,
    tables: &BTreeMap<u32, Vec<Instrument>>,
    batches: Option<&[BatchStatement]>,
    options: &AuditOptions,
    bytes: &[u8],
) -> (RootsProven, Samples) {
    let root = match RecursiveRoot::from_bytes(bytes) {
        Ok(r) => r,
        Err(e) => {
            a.fail(CheckKind::RootProof, format!("root.proof: {e}"));
            return (RootsProven::Nothing, Samples::Unread);
        }
    };
    if VerifierParams::recursive(root.format, &root.last.config) != manifest.verifier {
        a.fail(
            CheckKind::RootProof,
            "root.proof parameters differ from the manifest's verifier section",
        );
    }
    let Some(batches) = batches else {
        a.fail(
            CheckKind::RootProof,
            "no batch statements to check the segments against (see above)",
        );
        return (RootsProven::Nothing, Samples::Unread);
    };
    let listed = |id: u32| tables.get(&id).cloned();
    let start = std::time::Instant::now();
    let cache = options
        .key_cache
        .as_deref()
        .map(|dir| dir.join(key_cache_name(&root)));
    let cached = options
        .key_cache
        .as_deref()
        .and_then(|dir| cached_keys(dir, &root));
    let mut samples = Samples::Unread;
    a.facts.keys_from = Some(if cached.is_some() { "cache" } else { "samples" });
    let (keys, source) = match cached {
        Some(k) if options.proof_only => (k, "from the key cache".to_string()),
        cached => {
            let read = a.read(layout::ROOT_SAMPLES);
            if let Ok(b) = &read {
                samples = Samples::Read(b.clone());
            }
            match cached {
                Some(k) => (k, "from the key cache".to_string()),
                None => {
                    let derived = read.and_then(|b| {
                        let s = RootSamples::from_bytes(&b)
                            .map_err(|e| format!("{}: {e}", layout::ROOT_SAMPLES))?;
                        derive_keys(&root, &s, batches, &listed, options)
                    });
                    match derived {
                        Ok((k, secs)) => {
                            let note = cache.as_deref().map(|p| store_keys(p, &k)).map_or(
                                String::new(),
                                |r| match r {
                                    Ok(()) => ", cached".into(),
                                    Err(e) => format!(", not cached ({e})"),
                                },
                            );
                            (
                                k,
                                format!(
                                    "derived from {} in {secs:.1} s{note}",
                                    layout::ROOT_SAMPLES
                                ),
                            )
                        }
                        Err(e) => {
                            a.fail(CheckKind::RootProof, e);
                            return (RootsProven::Nothing, samples);
                        }
                    }
                }
            }
        }
    };
    let t = std::time::Instant::now();
    a.facts.keys_s = Some(start.elapsed().as_secs_f64());
    match verify_recursive(&root, statement, batches, &listed, &keys, &options.policy) {
        Ok(c) => {
            a.facts.root_verify_ms = Some(t.elapsed().as_secs_f64() * 1e3);
            let classes: std::collections::BTreeSet<String> =
                root.segments.iter().map(|s| s.class.name()).collect();
            let roots = match root.format {
                RecursiveFormat::V4 => format!(
                    "each segment's first pre- and last post-state root ({} between batches inside a segment rest on leaf proofs: state-roots)",
                    c.interior.len()
                ),
                RecursiveFormat::V5 => format!(
                    "every one, {} after the day's batches and each segment's first pre-state root",
                    c.batches
                ),
            };
            a.pass(
                CheckKind::RootProof,
                format!(
                    "day root {} over {} batches and {} ops verified in {:.1} ms ({} bytes, {} s with the keys); {}: one proof over {} segments ({}) in a tree of {} W and {} M nodes of 2^{} rows ({}); keys {source}; state roots proven: {roots}",
                    statement.day_root.to_hex(),
                    statement.n_batches,
                    statement.n_ops,
                    t.elapsed().as_secs_f64() * 1e3,
                    bytes.len(),
                    format_args!("{:.1}", start.elapsed().as_secs_f64()),
                    root.format.air_name(),
                    c.segments,
                    classes.into_iter().collect::<Vec<_>>().join(", "),
                    root.segments.len(),
                    root.segments.len() - 1,
                    root.shape.0,
                    root.presets().name(),
                ),
            );
            (
                RootsProven::Segments {
                    segments: c.segments,
                    interior: c.interior,
                },
                samples,
            )
        }
        Err(e) => {
            a.fail(CheckKind::RootProof, format!("root.proof: {e}"));
            (RootsProven::Nothing, samples)
        }
    }
}

/// A v4 root's keys derived from its samples, with the seconds it took.
#[cfg(feature = "derive-keys")]
fn derive_keys(
    root: &RecursiveRoot,
    samples: &RootSamples,
    batches: &[BatchStatement],
    listed: &(dyn Fn(u32) -> Option<Vec<Instrument>> + Sync),
    options: &AuditOptions,
) -> Result<(RootKeys, f64), String> {
    let t = std::time::Instant::now();
    poe_circle_stark::day::keys_from_samples(root, samples, batches, listed, &options.policy)
        .map(|k| (k, t.elapsed().as_secs_f64()))
        .map_err(|e| format!("{}: {e}", layout::ROOT_SAMPLES))
}

/// Without the prover's machinery no key can be derived: the cache must hold them.
#[cfg(not(feature = "derive-keys"))]
fn derive_keys(
    _: &RecursiveRoot,
    _: &RootSamples,
    _: &[BatchStatement],
    _: &(dyn Fn(u32) -> Option<Vec<Instrument>> + Sync),
    _: &AuditOptions,
) -> Result<(RootKeys, f64), String> {
    Err(format!(
        "the key cache holds no keys for this root, and this build cannot derive them from {} (feature derive-keys; `poe audit` can)",
        layout::ROOT_SAMPLES
    ))
}

/// The keys of `root` from the key cache in `dir`, if it holds them for its presets, tree
/// shape and every class it uses.
pub fn cached_keys(dir: &std::path::Path, root: &RecursiveRoot) -> Option<RootKeys> {
    std::fs::read(dir.join(key_cache_name(root)))
        .ok()
        .and_then(|b| RootKeys::from_bytes(&b).ok())
        .filter(|k| k.format == root.format && k.shape == root.shape && k.presets == root.presets())
        .filter(|k| {
            root.segments
                .iter()
                .all(|s| k.w.contains_key(&(s.class.log_ops, s.class.log_state)))
        })
}

/// The cache file of a root's keys: one per format, presets and tree shape (the classes
/// accumulate).
fn key_cache_name(root: &RecursiveRoot) -> String {
    let p = root.presets();
    let mut id = root.format.magic().to_vec();
    for c in [p.segment, p.node, p.last] {
        for v in [c.log_blowup(), c.n_queries(), c.pow_bits()] {
            id.extend(v.to_le_bytes());
        }
    }
    id.extend(root.shape.0.to_le_bytes());
    id.extend(root.shape.1.to_le_bytes());
    format!("root-keys-{}.bin", &sha3_hex(&id)[..16])
}

/// Adds `keys` to the cache file at `path` (keeping the classes it holds for the same M and
/// final keys), written whole under a temporary name and renamed.
fn store_keys(path: &std::path::Path, keys: &RootKeys) -> Result<(), String> {
    let mut merged = keys.clone();
    if let Some(old) = std::fs::read(path)
        .ok()
        .and_then(|b| RootKeys::from_bytes(&b).ok())
        .filter(|k| {
            k.format == keys.format
                && k.shape == keys.shape
                && k.presets == keys.presets
                && k.m == keys.m
                && k.last == keys.last
        })
    {
        for (class, d) in old.w {
            merged.w.entry(class).or_insert(d);
        }
    }
    let dir = path.parent().ok_or("a cache path without a directory")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, merged.to_bytes()).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// What a leaf proof proves of its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LeafKind {
    /// A batch-validity proof: the batch's rules, data root and both state roots.
    Validity,
    /// A data-root proof (or the rollup's own `poe-circle-stark/v1` proof): the records only.
    DataRoot,
}

/// Checks that one leaf proof states exactly its batch and, with `stark`, verifies it.
pub(super) fn verify_leaf(
    bytes: &[u8],
    s: &BatchStatement,
    data: &poe_circle_stark::data_root::DataRootStatement,
    options: &AuditOptions,
    stark: bool,
) -> Result<LeafKind, String> {
    use poe_circle_stark::proof::{AirId, Proof};
    use poe_circle_stark::validity::{verify_validity, ValidityStatement};
    let proof = Proof::from_bytes(bytes).map_err(|e| e.to_string())?;
    match proof.air {
        AirId::BatchValidity => {
            let st = ValidityStatement::from_public_inputs(&proof.public_inputs)
                .ok_or("its statement does not decode")?;
            let this = poe_circle_stark::validity::BatchTree {
                n_ops: s.n_ops,
                data_root: s.data_root,
            };
            if st.batches != [this] {
                return Err(format!(
                    "a validity proof of other batches ({} batches, {} operations, first data root {})",
                    st.batches.len(),
                    st.n_ops(),
                    st.batches.first().map(|b| b.data_root.to_hex()).unwrap_or_default()
                ));
            }
            // The batch statements chain per rollup (checked with the day statement), so
            // equal roots chain the validity proofs too.
            for (what, proven, stated) in [
                ("pre", st.pre_state_root, s.pre_state_root),
                ("post", st.post_state_root, s.post_state_root),
            ] {
                if proven != stated {
                    return Err(format!(
                        "its {what}-state root is {proven}, the batch's is {stated}"
                    ));
                }
            }
            let listed = poe_circle_stark::venue::instruments_root(&st.instruments);
            if listed != s.instruments_root {
                return Err(format!(
                    "its instrument list has root {listed}, the batch's instruments root is {}",
                    s.instruments_root
                ));
            }
            if stark {
                verify_validity(proof, &st, &options.policy).map_err(|e| e.to_string())?;
            }
            Ok(LeafKind::Validity)
        }
        // v3's public input is a digest: the auditor would rebuild the statement from the
        // batch statement, the manifest's instruments and the proof's sizes. The pipeline does
        // not make v3 leaves yet, so no bundle holds one.
        AirId::BatchValidityV3 | AirId::BatchValidityV4 => Err(format!(
            "a {} leaf proof: not made by poe's pipeline, and the audit does not rebuild its statement",
            proof.air.name()
        )),
        AirId::DataRoot if !stark => {
            if proof.public_inputs != data.to_public_inputs() {
                return Err(format!(
                    "a data-root proof of other records (batch data root {}, {} operations)",
                    data.root, data.n_records
                ));
            }
            Ok(LeafKind::DataRoot)
        }
        _ => verify_data_root(proof, data, &options.policy)
            .map(|()| LeafKind::DataRoot)
            .map_err(|e| e.to_string()),
    }
}

pub(super) fn data_statement(s: &BatchStatement) -> poe_circle_stark::data_root::DataRootStatement {
    poe_circle_stark::data_root::DataRootStatement {
        n_records: s.n_ops,
        record_limbs: OP_LIMBS as u32,
        root: s.data_root,
    }
}

/// Rollup proofs and leaf proofs: present, named by their digest, and every leaf proof stating
/// exactly its batch; with `--leaves`, every STARK among them verified.
pub(super) fn check_rollup_proofs(
    a: &mut Auditor<'_>,
    rows: &[StatementRow],
    stmts: &[BatchStatement],
    options: &AuditOptions,
) {
    let leaves = options.leaves;
    let mut problems = Vec::new();
    let mut verified = 0usize;
    let mut leaf_kinds = [0usize; 2];
    for (r, s) in rows.iter().zip(stmts) {
        let path = format!("rollup-proofs/{}", r.rollup_proof_digest);
        match a.read(&path) {
            Ok(bytes) => {
                if rollup_proof_digest(&bytes) != r.rollup_proof_digest {
                    problems.push(format!(
                        "{path}: keccak-256 differs from its name (batch seq {})",
                        r.seq
                    ));
                } else if leaves && r.rollup_proof_system == "poe-circle-stark/v1" {
                    match verify_data_root_bytes(&bytes, &data_statement(s), &options.policy) {
                        Ok(()) => verified += 1,
                        Err(e) => problems.push(format!("{path} (batch seq {}): {e}", r.seq)),
                    }
                }
            }
            Err(e) => problems.push(e),
        }
        if let Some(d) = &r.leaf_proof_digest {
            let path = format!("leaf-proofs/{d}");
            match a.read(&path) {
                Ok(bytes) if sha3_hex(&bytes) == *d => {
                    // A leaf proof is a batch-validity proof, or — where the prover did not
                    // hold the venue state — a data-root proof of the batch's operation
                    // records (specs/day-proof.md §4). Its statement is always checked
                    // (cheap); its STARK with --leaves, or by `state-roots` where needed.
                    match verify_leaf(&bytes, s, &data_statement(s), options, leaves) {
                        Ok(kind) => leaf_kinds[usize::from(kind == LeafKind::DataRoot)] += 1,
                        Err(e) => problems.push(format!("{path} (batch seq {}): {e}", r.seq)),
                    }
                }
                Ok(_) => problems.push(format!("{path}: sha3-256 differs from its name")),
                Err(e) => problems.push(e),
            }
        }
    }
    if problems.is_empty() {
        let n_leaves = leaf_kinds[0] + leaf_kinds[1];
        let extra = if leaves {
            format!(
                "; {n_leaves} leaf proofs ({} batch-validity, {} data-root) and {verified} poe-circle-stark/v1 rollup proofs verified",
                leaf_kinds[0], leaf_kinds[1]
            )
        } else {
            format!(
                "; {n_leaves} leaf proofs ({} batch-validity, {} data-root) state their batch",
                leaf_kinds[0], leaf_kinds[1]
            )
        };
        a.pass(
            CheckKind::ProofFiles,
            format!("{} rollup proof digests match{extra}", rows.len()),
        );
    } else {
        a.fail(CheckKind::ProofFiles, problems.join("; "));
    }
}

/// Every state root of the day proven by something (`specs/archive.md` §6): the root proof
/// proves each segment's first pre- and last post-state root; a root between two batches
/// of one segment needs the earlier batch's batch-validity leaf proof, verified here whatever
/// the options (with its pre-state root proven, by induction along the segment, it proves
/// the post-state root the batch statement publishes and `/v1/batches/{id}/inclusion` serves).
pub(super) fn check_state_roots(
    a: &mut Auditor<'_>,
    rows: &[StatementRow],
    stmts: &[BatchStatement],
    proven: &RootsProven,
    options: &AuditOptions,
) {
    let (segments, needed): (usize, Vec<usize>) = match proven {
        RootsProven::Nothing => {
            a.fail(
                CheckKind::StateRoots,
                "not checked: the root proof did not verify (see root-proof)",
            );
            return;
        }
        RootsProven::V1 => (0, (0..stmts.len()).collect()),
        RootsProven::Segments { segments, interior } => (*segments, interior.clone()),
    };
    let mut problems = Vec::new();
    let mut by_leaf = 0usize;
    let mut unproven = 0usize;
    for &i in &needed {
        let (r, s) = (&rows[i], &stmts[i]);
        let at = format!(
            "batch seq {} of {} (post-state root {})",
            s.seq, r.rollup, s.post_state_root
        );
        let leaf = r.leaf_proof_digest.as_ref().map(|d| {
            let path = format!("leaf-proofs/{d}");
            a.read(&path).and_then(|bytes| {
                if sha3_hex(&bytes) == *d {
                    verify_leaf(&bytes, s, &data_statement(s), options, true)
                        .map_err(|e| format!("{path}: {e}"))
                } else {
                    Err(format!("{path}: sha3-256 differs from its name"))
                }
            })
        });
        match (leaf, proven) {
            (Some(Ok(LeafKind::Validity)), _) => by_leaf += 1,
            // v1 days (before V2_REQUIRED_FROM_DAY) were published with data-root leaves: their
            // roots were never proven, which the line says instead of failing the archive.
            (None | Some(Ok(LeafKind::DataRoot)), RootsProven::V1) => unproven += 1,
            (None, _) => problems.push(format!(
                "{at}: lies inside a segment and has no leaf proof; nothing proves it"
            )),
            (Some(Ok(LeafKind::DataRoot)), _) => problems.push(format!(
                "{at}: lies inside a segment and its leaf proof is a data-root proof, which does not prove state roots"
            )),
            (Some(Err(e)), _) => problems.push(format!("{at}: {e}")),
        }
    }
    if !problems.is_empty() {
        a.fail(CheckKind::StateRoots, problems.join("; "));
        return;
    }
    let n_roots = stmts.len() + rollup_starts(stmts);
    match proven {
        RootsProven::V1 => a.pass(
            CheckKind::StateRoots,
            format!(
                "v1 root proof: of {} post-state roots, {by_leaf} proven by batch-validity leaf proofs, {unproven} stated but not proven (days before {})",
                stmts.len(),
                Day(V2_REQUIRED_FROM_DAY)
            ),
        ),
        _ if needed.is_empty() => a.pass(
            CheckKind::StateRoots,
            format!(
                "all {n_roots} state roots proven by the root proof's {segments} segments (each states every root of its batches); no leaf proof needed"
            ),
        ),
        _ => a.pass(
            CheckKind::StateRoots,
            format!(
                "all {n_roots} state roots proven: {} by the {segments} segment proofs (each segment's first pre- and last post-state root), {by_leaf} between batches by batch-validity leaf proofs",
                n_roots - by_leaf
            ),
        ),
    }
}

/// Distinct state roots of a day: every batch's post-state root plus one pre-state root per
/// rollup (the batch statements chain the rest).
pub(super) fn rollup_starts(stmts: &[BatchStatement]) -> usize {
    stmts
        .iter()
        .enumerate()
        .filter(|(i, s)| *i == 0 || stmts[i - 1].rollup_id != s.rollup_id)
        .count()
}
