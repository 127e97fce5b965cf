//! The `trades` and `signatures` checks: every row against its batch, every batch against its rollup.

use super::*;

/// The `signatures` check: each batch rebuilt from its statement row and trade rows as intake
/// saw it, its id recomputed, its rollup's signature and native commitment verified
/// (`specs/archive.md` §6). Fed one batch at a time by [`check_trades`].
#[derive(Default)]
pub(super) struct SignatureCheck {
    checked: usize,
    rollups: usize,
    problems: Vec<String>,
}

/// [`SignatureCheck`] for one rollup's batches.
pub(super) struct RollupSigner<'c> {
    tally: &'c mut SignatureCheck,
    name: String,
    key: Result<Felt, String>,
}

impl SignatureCheck {
    pub(super) fn rollup(&mut self, name: &str, key: Option<&str>) -> RollupSigner<'_> {
        self.rollups += 1;
        let key = match key {
            None => Err("the manifest gives no public key".to_string()),
            Some(k) => parse_hex32(k)
                .map(|b| Felt::from_bytes_be(&b))
                .map_err(|e| format!("manifest public_key: {e}")),
        };
        RollupSigner {
            tally: self,
            name: name.to_string(),
            key,
        }
    }

    pub(super) fn report(self, a: &mut Auditor<'_>, n_batches: usize) {
        if !self.problems.is_empty() {
            let more = self.problems.len().saturating_sub(5);
            let mut detail = self.problems[..self.problems.len().min(5)].join("; ");
            if more > 0 {
                detail.push_str(&format!("; and {more} more"));
            }
            a.fail(CheckKind::Signatures, detail);
        } else {
            a.pass(
                CheckKind::Signatures,
                format!(
                    "{} of {n_batches} batches: ids recomputed from their rows, native commitments recomputed, signed by their rollup's key in the manifest ({} rollups; compare those keys with the ones the rollups publish)",
                    self.checked, self.rollups
                ),
            );
        }
    }
}

impl RollupSigner<'_> {
    fn check(&mut self, row: &StatementRow, s: &BatchStatement, ops: Vec<CommittedOp>) {
        let at = format!("rollup {} batch seq {}", self.name, s.seq);
        match self.verify(row, s, ops) {
            Ok(()) => self.tally.checked += 1,
            Err(e) => self.tally.problems.push(format!("{at}: {e}")),
        }
    }

    fn verify(
        &self,
        row: &StatementRow,
        s: &BatchStatement,
        ops: Vec<CommittedOp>,
    ) -> Result<(), String> {
        let key = self.key.as_ref().map_err(Clone::clone)?;
        let (r, sig_s) = row
            .signature
            .as_ref()
            .ok_or("the statement row has no signature")?;
        let short =
            |field: &str, v: &str| ShortString::try_from(v).map_err(|e| format!("{field}: {e}"));
        let header = Header {
            rollup: short("rollup", &row.rollup)?,
            seq: s.seq,
            pre_state_root: s.pre_state_root,
            post_state_root: s.post_state_root,
            scheme: Scheme::from_name(&row.native_scheme)
                .ok_or_else(|| format!("native_scheme {:?} is unknown", row.native_scheme))?,
            commitment: parse_hex32(&row.native_commitment)
                .map_err(|e| format!("native_commitment: {e}"))?,
            proof_system: short("rollup_proof_system", &row.rollup_proof_system)?,
            vk_id: row
                .rollup_vk_id
                .as_deref()
                .map(|v| short("rollup_vk_id", v))
                .transpose()?,
            proof_digest: parse_hex32(&row.rollup_proof_digest)
                .map_err(|e| format!("rollup_proof_digest: {e}"))?,
            n_ops: s.n_ops,
        };
        let felt = |field: &str, v: &str| {
            parse_hex32(v)
                .map(|b| Felt::from_bytes_be(&b))
                .map_err(|e| format!("{field}: {e}"))
        };
        let sub = Submission {
            header,
            signature: (felt("signature_r", r)?, felt("signature_s", sig_s)?),
            ops,
            proof_bytes: Vec::new(),
        };
        verify_signed(&sub, key).map_err(|e| format!("{}: {}", e.code, e.message))?;
        let id = hex::encode(sub.batch_id());
        if id != row.batch_id {
            return Err(format!(
                "batch_id {} in statements.parquet, the archived batch hashes to {id}",
                row.batch_id
            ));
        }
        Ok(())
    }
}

/// 32 bytes from exactly 64 lowercase hex digits (one spelling per value).
pub(super) fn parse_hex32(v: &str) -> Result<[u8; 32], String> {
    if v.len() != 64
        || !v
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!("{v:?} is not 64 lowercase hex digits"));
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(v, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// One rollup of the manifest, as the trades check needs it.
pub(super) struct RollupTable<'t> {
    pub(super) id: u32,
    pub(super) name: &'t str,
    pub(super) table: &'t [NamedInstrument],
}

pub(super) fn check_trades(
    a: &mut Auditor<'_>,
    day: Day,
    rollup: RollupTable<'_>,
    batches: &[(&StatementRow, &BatchStatement)],
    mut signer: Option<&mut RollupSigner<'_>>,
    progress: &mut dyn FnMut(u64),
) -> Option<RollupFigures> {
    let RollupTable {
        id: rollup_id,
        name,
        table,
    } = rollup;
    let check = CheckKind::Trades(name.to_string());
    let mut committed: Vec<CommittedOp> = Vec::new();
    let dir = layout::trades_dir(name);
    // Only the manifest's files of the partition, in path order: anything else in the
    // directory is reported by the manifest check and never opened.
    let prefix = format!("{dir}/");
    let files: Vec<String> = a
        .listed
        .keys()
        .filter_map(|p| p.strip_prefix(&prefix).map(str::to_string))
        .collect();
    let expected_ops: u64 = batches.iter().map(|(_, s)| u64::from(s.n_ops)).sum();
    let mut figures = RollupFigures {
        rollup: name.to_string(),
        batches: batches.len() as u64,
        ops: 0,
        trades: 0,
        notional: String::new(),
    };
    let mut notional = 0i128;
    let mut batch_i = 0usize;
    let mut records = Vec::new();
    let mut next_index = 0u32;
    let mut ok_batches = 0usize;
    for file in &files {
        let path = format!("{dir}/{file}");
        let bytes = match a.read(&path) {
            Ok(b) => b,
            Err(e) => {
                a.fail(check.clone(), e);
                return None;
            }
        };
        let read = match parquet_io::read(bytes, &trades_schema()) {
            Ok(r) => r,
            Err(e) => {
                a.fail(check.clone(), format!("{path}: {e}"));
                return None;
            }
        };
        let meta: BTreeMap<_, _> = read.metadata.iter().cloned().collect();
        // Exactly the writer's keys (and Arrow's schema): nothing an operator could add
        // that a reader of the file would take for poe's.
        let extra: Vec<&String> = meta
            .keys()
            .filter(|k| *k != "ARROW:schema" && !TRADES_METADATA_KEYS.contains(&k.as_str()))
            .collect();
        if !extra.is_empty() || read.metadata.len() != meta.len() {
            a.fail(
                check.clone(),
                format!("{path}: metadata keys {extra:?} (or a repeated key) are not poe's"),
            );
            return None;
        }
        let want = [
            ("poe.day", day.to_string()),
            ("poe.rollup", name.to_string()),
            ("poe.rollup_id", rollup_id.to_string()),
            ("poe.schema_version", TRADES_SCHEMA_VERSION.to_string()),
        ];
        for (k, v) in want {
            if meta.get(k) != Some(&v) {
                a.fail(
                    check.clone(),
                    format!("{path}: metadata {k} is {:?}, expected {v:?}", meta.get(k)),
                );
                return None;
            }
        }
        let mut starting: Vec<(u64, Digest)> = Vec::new();
        let rows = match trade_rows(&read.rows) {
            Ok(r) => r,
            Err(e) => {
                a.fail(check.clone(), format!("{path}: {e}"));
                return None;
            }
        };
        for (row_i, row) in rows.iter().enumerate() {
            let Some((srow, s)) = batches.get(batch_i) else {
                a.fail(check.clone(), format!("{path} row {row_i}: a row beyond the day's {expected_ops} operations (batch_seq {} op_index {})", row.batch_seq, row.op_index));
                return None;
            };
            let at = format!("{path} row {row_i} (batch seq {} op {})", s.seq, next_index);
            if next_index == 0 {
                starting.push((s.seq, s.data_root));
            }
            if row.batch_seq != s.seq || row.op_index != next_index {
                a.fail(
                    check.clone(),
                    format!(
                        "{at}: found batch_seq {} op_index {}: rows missing, added or out of order",
                        row.batch_seq, row.op_index
                    ),
                );
                return None;
            }
            let op = match Operation::from_fields(row.air) {
                Ok(op) => op,
                Err(e) => {
                    a.fail(
                        check.clone(),
                        format!("{at}: AIR fields do not decode: {e}"),
                    );
                    return None;
                }
            };
            let key = RowKey {
                day: day.0,
                rollup: name,
                rollup_id,
                batch_seq: s.seq,
                op_index: next_index,
                venue_trade_id: &row.venue_trade_id,
            };
            match TradeRow::new(&key, &op, table) {
                Some(expected) => {
                    if let Some(col) = expected.first_difference(row) {
                        a.fail(
                            check.clone(),
                            format!("{at}: column {col} does not match the operation's AIR record"),
                        );
                        return None;
                    }
                }
                None => {
                    a.fail(
                        check.clone(),
                        format!("{at}: instrument index outside the rollup's table"),
                    );
                    return None;
                }
            }
            if let Operation::Trade { qty, price, .. } = op {
                figures.trades += 1;
                notional += i128::from(qty) * i128::from(price);
            }
            records.extend(op.encode());
            if signer.is_some() {
                match ShortString::try_from(row.venue_trade_id.as_str()) {
                    Ok(trade_id) => committed.push(CommittedOp { trade_id, op }),
                    Err(e) => {
                        a.fail(check.clone(), format!("{at}: venue_trade_id: {e}"));
                        return None;
                    }
                }
            }
            next_index += 1;
            figures.ops += 1;
            if next_index == s.n_ops {
                if let Some(signer) = signer.as_mut() {
                    signer.check(srow, s, std::mem::take(&mut committed));
                }
                let root = data_root(&records, OP_LIMBS);
                if root != s.data_root {
                    a.fail(check.clone(),
                        format!(
                            "{path}: batch seq {} ({}): data root from its {} rows is {}, statement says {}",
                            s.seq, srow.batch_id, s.n_ops, root.to_hex(), s.data_root.to_hex()
                        ),
                    );
                    return None;
                }
                records.clear();
                next_index = 0;
                batch_i += 1;
                ok_batches += 1;
            }
        }
        let roots = data_roots_value(&starting);
        if meta.get("poe.data_roots") != Some(&roots) {
            a.fail(check.clone(),
                format!(
                    "{path}: metadata poe.data_roots is {:?}, the batches starting in the file give {roots:?}",
                    meta.get("poe.data_roots")
                ),
            );
            return None;
        }
        progress(rows.len() as u64);
    }
    if batch_i != batches.len() || next_index != 0 {
        let (_, s) = batches[batch_i.min(batches.len() - 1)];
        a.fail(
            check.clone(),
            format!(
                "{dir}: rows end inside or before batch seq {} ({} of {} operations present)",
                s.seq, figures.ops, expected_ops
            ),
        );
        return None;
    }
    figures.notional = format_decimal(notional, 6);
    a.pass(
        check.clone(),
        format!(
            "{} rows in {} files; {ok_batches} data roots recomputed and equal",
            figures.ops,
            files.len()
        ),
    );
    Some(figures)
}
