//! `poe close-day`: close a finished UTC day by hand, with the service stopped.

use std::time::Instant;

use crate::{bar, now_us, preset};

pub(crate) fn close_day(
    day: &str,
    config: &std::path::Path,
    data: &std::path::Path,
    archive: &std::path::Path,
    p: &str,
    leaf_proofs: bool,
) -> Result<(), String> {
    let day: poe_archive::Day = day.parse().map_err(|e| format!("{e}"))?;
    if now_us() < day.next().start_us() {
        return Err(format!(
            "{day} has not ended (UTC): a day is closed only after midnight, so that no batch of it can arrive later"
        ));
    }
    let config_sec = preset(p)?;
    let registry = poe_ingest::registry::Registry::load(config)
        .map_err(|e| format!("{}: {e}", config.display()))?;
    let intake = poe_ingest::intake::Intake::open(registry, &data.join("intake.redb"))
        .map_err(|e| e.to_string())?;
    let storage = poe_archive::LocalDir::new(archive);
    let runs = poe_archive::LocalDir::new(data.join("leaves"));
    let start = Instant::now();
    let mut input = poe_aggregator::day::day_input(&intake, day, config_sec)?;
    input.leaf_proofs = leaf_proofs;
    let mut venues = poe_aggregator::day::day_venues(&intake, &input)?;
    if leaf_proofs && !poe_archive::layout::is_published(&storage, day) {
        let pb = bar(0, "ops");
        pb.set_message("leaf proofs");
        let stats = poe_aggregator::day::prove_leaves(
            &mut input,
            &mut venues.clone(),
            config_sec,
            &mut |done, total| {
                pb.set_length(total);
                pb.set_position(done);
            },
        )?;
        pb.finish_and_clear();
        println!(
            "leaf proofs: {} made ({} batch-validity, {} data-root; {} ops) and {} reused in {:.2} s",
            stats.proven,
            stats.validity,
            stats.proven - stats.validity,
            stats.ops_proven,
            stats.reused,
            stats.seconds
        );
    }
    let pb = bar(0, "ops");
    pb.set_message("writing trades");
    let closed = poe_aggregator::day::close_input(
        input,
        &mut venues,
        &storage,
        config_sec,
        &mut |stage| match stage {
            poe_archive::Stage::Trades { done, total } => {
                pb.set_length(total);
                pb.set_position(done);
            }
            poe_archive::Stage::ProvingRoot => pb.set_message("proving root"),
            poe_archive::Stage::RootStep(step) => pb.set_message(format!("proving root: {step}")),
            poe_archive::Stage::Done => pb.finish_and_clear(),
        },
        start,
        // The service's leaf store: runs it proved before it stopped are used, and the runs
        // proven here are kept there, so that a close-day killed half-way resumes from them.
        Some(poe_aggregator::day::RunStore {
            storage: &runs,
            capacity_ops: poe_circle_stark::day::root::SEGMENT_CAPACITY_OPS,
        }),
    )?;
    pb.finish_and_clear();
    let s = &closed.summary.statement;
    let dir = archive.join(&closed.summary.prefix);
    if !closed.summary.written {
        println!(
            "{day} was already closed: {} (left as it was)",
            dir.display()
        );
    } else {
        let bytes: u64 = closed.summary.files.iter().map(|f| f.bytes).sum();
        println!(
            "closed {day}: {} batches, {} ops, {} rollups -> {}",
            s.n_batches,
            s.n_ops,
            s.rollups.len(),
            dir.display()
        );
        println!(
            "  day root {}  root proof ({}) {} bytes in {:.2} s  data files {} bytes  total {:.2} s",
            s.day_root, s.air, s.root_proof_bytes, closed.prove_s, bytes, closed.total_s
        );
        if let Some(t) = &s.tree {
            println!(
                "  tree: {} segments ({} runs proven before), {} W and {} M nodes of 2^{} gate rows ({}); root.samples {} bytes",
                t.segments.len(),
                closed.runs_reused,
                t.w_nodes,
                t.m_nodes,
                t.log_rows,
                t.presets,
                s.root_samples_bytes.unwrap_or(0)
            );
        }
    }
    Ok(())
}
