//! Compaction metrics (rendered by the binary's Prometheus recorder).

use std::time::Duration;

use metrics::{counter, histogram};

/// Compaction runs, by outcome (`ok`, `error`).
pub const RUNS: &str = "contrail_compaction_runs_total";
/// Events read from raw batches.
pub const EVENTS_IN: &str = "contrail_compaction_events_in_total";
/// Events committed to tables.
pub const EVENTS_OUT: &str = "contrail_compaction_events_out_total";
/// Duplicates removed (within a run or already in the table).
pub const DUPLICATES: &str = "contrail_compaction_duplicates_total";
/// Parquet files written.
pub const FILES: &str = "contrail_compaction_files_written_total";
/// Commits that lost a race (or failed ambiguously) and were re-planned.
pub const RETRIES: &str = "contrail_compaction_commit_retries_total";
/// Raw batches deleted after their grace period.
pub const RAW_DELETED: &str = "contrail_compaction_raw_deleted_total";
/// Seconds per compaction run.
pub const SECONDS: &str = "contrail_compaction_seconds";

/// A run finished.
pub fn report_run(ok: bool, report: &crate::compact::RunReport, elapsed: Duration) {
    counter!(RUNS, "outcome" => if ok { "ok" } else { "error" }).increment(1);
    counter!(EVENTS_IN).increment(report.events_in as u64);
    counter!(EVENTS_OUT).increment(report.events_out as u64);
    counter!(DUPLICATES).increment(report.duplicates as u64);
    counter!(FILES).increment(report.files_written as u64);
    counter!(RETRIES).increment(report.retries as u64);
    counter!(RAW_DELETED).increment(report.raw_deleted as u64);
    histogram!(SECONDS).record(elapsed.as_secs_f64());
}
