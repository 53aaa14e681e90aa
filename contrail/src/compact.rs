//! `contrail compact`, and the compaction and upkeep cadence that `serve` and
//! `contrail compact --every` run: compaction every `every_secs`, upkeep
//! (small-file merging, then vacuum) every `maintain_every_secs`.

use std::time::{Duration, Instant};

use contrail_warehouse::{Compactor, maintain};
use tokio::sync::watch;

use crate::config::CompactConfig;

/// When the loop runs what: both from `[compact]`.
#[derive(Debug, Clone, Copy)]
pub struct Cadence {
    /// Between compaction runs.
    pub compact: Duration,
    /// Between upkeep passes (`None`: never).
    pub maintain: Option<Duration>,
}

impl Cadence {
    /// The cadence `[compact]` describes, compacting every `every` (`serve`
    /// uses `every_secs`, `contrail compact` its `--every`).
    pub fn new(config: &CompactConfig, every: Duration) -> Self {
        let maintain = (config.maintain_every_secs > 0).then(|| Duration::from_secs(config.maintain_every_secs));
        Self { compact: every, maintain }
    }
}

/// Runs the compactor on `cadence` until `shutdown` flips. Failures are
/// logged and retried on the next tick: a run that fails leaves the previous
/// table version valid and its raw batches in place.
pub async fn run_loop(
    compactor: Compactor,
    config: CompactConfig,
    cadence: Cadence,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut last_upkeep = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(cadence.compact) => {}
            _ = shutdown.changed() => return,
        }
        compact_once(&compactor).await;
        if cadence.maintain.is_some_and(|every| last_upkeep.elapsed() >= every) {
            last_upkeep = Instant::now();
            upkeep(&compactor, &config).await;
        }
    }
}

/// One compaction run, logged.
async fn compact_once(compactor: &Compactor) {
    match compactor.run_once().await {
        Ok(report) if report.raw_files > 0 || report.raw_deleted > 0 => tracing::info!(
            raw_files = report.raw_files,
            events = report.events_out,
            duplicates = report.duplicates,
            raw_deleted = report.raw_deleted,
            "compacted"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "compaction failed; retrying on the next tick"),
    }
}

/// One upkeep pass over every table (merge small files, vacuum), logged.
#[tracing::instrument(skip_all)]
pub async fn upkeep(compactor: &Compactor, config: &CompactConfig) {
    let now = chrono::Utc::now().timestamp_millis();
    match maintain(compactor.location(), &config.layout(), &config.maintain(), now).await {
        Ok(report) => tracing::info!(
            partitions_merged = report.partitions_merged,
            files_merged = report.files_merged,
            files_vacuumed = report.files_vacuumed,
            "table upkeep done"
        ),
        Err(e) => tracing::warn!(error = %e, "table upkeep failed; retrying at the next pass"),
    }
}
