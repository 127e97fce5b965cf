//! `poe serve`: the service assembled — registry, intake store, HTTP API, day pipeline.

use std::path::Path;

/// Where `poe serve` reads and writes, and where it listens.
pub(crate) struct Places<'a> {
    /// The rollup registry.
    pub config: &'a Path,
    /// The intake store's directory (and webhooks' cursors, leaf proofs).
    pub data: &'a Path,
    /// Create the store (`--init`).
    pub init: bool,
    /// The archive root.
    pub archive: &'a Path,
    /// The listen address.
    pub listen: &'a str,
    /// The webhooks file, if any.
    pub webhooks: Option<&'a Path>,
}

pub(crate) fn serve(
    places: Places<'_>,
    api: poe_api::ApiConfig,
    pipeline: Option<poe_aggregator::pipeline::PipelineConfig>,
) -> Result<(), String> {
    let Places {
        config,
        data,
        init,
        archive,
        listen,
        webhooks,
    } = places;
    let registry = poe_ingest::registry::Registry::load(config)
        .map_err(|e| format!("{}: {e}", config.display()))?;
    let n_rollups = registry.rollups().len();
    let webhooks = webhooks
        .map(|path| poe_api::webhooks::WebhookConfig::load(path, &registry))
        .transpose()
        .map_err(|e| format!("webhooks {e}"))?;
    let store = data.join("intake.redb");
    let intake = if init {
        std::fs::create_dir_all(data).map_err(|e| format!("creating {}: {e}", data.display()))?;
        let intake = poe_ingest::intake::Intake::create(registry, &store);
        if intake.is_ok() {
            tracing::info!(store = %store.display(), "created a new, empty intake store");
        }
        intake
    } else {
        poe_ingest::intake::Intake::open(registry, &store)
    }
    .map_err(|e| e.to_string())?;
    for r in intake.rebuilt() {
        tracing::info!(
            rollup = %r.rollup,
            from_snapshot_seq = r.from_seq,
            batches_replayed = r.replayed,
            "state rebuilt"
        );
        if let Some(why) = &r.snapshot_refused {
            tracing::warn!(rollup = %r.rollup, "snapshot not used, every batch replayed: {why}");
        }
    }
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("binding {listen}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        // Tests and supervisors read this line to learn the port (listen on :0 for a free one).
        println!(
            "poe serving on http://{addr} ({n_rollups} rollups, store {})",
            data.display()
        );
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            tracing::info!("shutting down: draining requests in flight");
        };
        let archive: std::sync::Arc<dyn poe_archive::Storage> =
            std::sync::Arc::new(poe_archive::LocalDir::new(archive));
        let leaves: std::sync::Arc<dyn poe_archive::Storage> =
            std::sync::Arc::new(poe_archive::LocalDir::new(data.join("leaves")));
        let mut state = poe_api::AppState::new(intake, api)
            .with_archive(archive.clone())
            .with_leaf_store(leaves.clone());
        let pipeline = match pipeline {
            Some(config) => {
                state = state.with_close_schedule(config.close_grace_us);
                let p = poe_aggregator::pipeline::Pipeline::start(
                    state.clone(),
                    archive,
                    leaves,
                    config,
                )?;
                state = state.with_accept_hook(p.hook());
                Some(p)
            }
            None => None,
        };
        let deliverers = match webhooks {
            Some(config) => {
                tracing::info!(receivers = config.hooks.len(), "webhooks");
                Some(poe_api::webhooks::start(
                    &state,
                    config,
                    &data.join("webhooks"),
                )?)
            }
            None => None,
        };
        poe_api::run(listener, state.clone(), shutdown).await;
        if let Some(d) = deliverers {
            d.stop();
        }
        // A leaf proof or day close in progress is abandoned, not awaited: nothing is
        // published half-way, and the next start redoes it.
        if let Some(p) = pipeline {
            p.stop(false);
        }
        // The next start then replays nothing.
        if let Err(e) = state.with_intake_mut(|i| i.snapshot_all()) {
            tracing::warn!("no snapshot at shutdown (the next start replays more): {e}");
        }
        Ok(())
    })
}
