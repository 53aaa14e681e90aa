//! Table upkeep: merge small files (optimize) and delete files no version
//! needs any more (vacuum).
//!
//! Optimize is written here rather than taken from delta-rs (whose optimize
//! needs its DataFusion feature and does not keep our sort order): a
//! partition's small files are read, merged, re-sorted by (`distinct_id`,
//! `timestamp`) and written as one file, and the old files are removed in the
//! same commit (`dataChange: false`). Readers see the old files or the new
//! one, never both; a commit that loses a race is dropped and retried at the
//! next maintenance.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use deltalake::DeltaTable;
use deltalake::kernel::transaction::CommitBuilder;
use deltalake::kernel::{Action, Remove};
use deltalake::operations::vacuum::VacuumMode;
use deltalake::protocol::DeltaOperation;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
// See dedupe.rs: deprecated in parquet 59 but correct.
#[allow(deprecated)]
use parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStreamBuilder};

use crate::cpu::off_runtime;
use crate::error::Result;
use crate::location::Location;
use crate::table::{self, PARTITION_COLUMN, TableFile};
use crate::write::{FileLayout, RowRef, add_action, date_string, encode_rows, sort_rows, to_file_batch};

/// Maintenance settings.
#[derive(Debug, Clone)]
pub struct MaintainConfig {
    /// Files below this size count as small. Default 32 MiB.
    pub small_file_bytes: i64,
    /// A partition is merged once it has this many small files. Default 8.
    pub min_small_files: usize,
    /// Vacuum deletes files unreferenced for longer than this. Default 7 days
    /// (Delta's default), so time travel and slow readers keep working.
    pub retention: Duration,
}

impl Default for MaintainConfig {
    fn default() -> Self {
        Self { small_file_bytes: 32 << 20, min_small_files: 8, retention: Duration::from_secs(7 * 86_400) }
    }
}

/// What maintenance did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaintainReport {
    /// Partitions whose small files were merged.
    pub partitions_merged: usize,
    /// Small files replaced.
    pub files_merged: usize,
    /// Files deleted by vacuum.
    pub files_vacuumed: usize,
}

/// Merges small files and vacuums every project's table.
pub async fn maintain(
    location: &Location,
    layout: &FileLayout,
    config: &MaintainConfig,
    now_ms: i64,
) -> Result<MaintainReport> {
    let mut report = MaintainReport::default();
    let listing = location.store.list_with_delimiter(Some(&Path::from(table::TABLES_PREFIX))).await?;
    for project in listing.common_prefixes.iter().filter_map(|p| p.filename()) {
        let Some(table) = table::open(location, project).await? else { continue };
        merge_small_files(location, project, &table, layout, config, now_ms, &mut report).await?;
        let Some(table) = table::open(location, project).await? else { continue };
        report.files_vacuumed += vacuum(table, config.retention).await?;
    }
    Ok(report)
}

#[tracing::instrument(skip_all, fields(project))]
async fn merge_small_files(
    location: &Location,
    project: &str,
    table: &DeltaTable,
    layout: &FileLayout,
    config: &MaintainConfig,
    now_ms: i64,
    report: &mut MaintainReport,
) -> Result<()> {
    let mut by_day: BTreeMap<i32, Vec<TableFile>> = BTreeMap::new();
    for file in table::all_files(table)? {
        if file.size < config.small_file_bytes {
            by_day.entry(file.date).or_default().push(file);
        }
    }
    let prefix = table::prefix(project);
    let mut actions = Vec::new();
    let mut merged_files = 0;
    let mut partitions = 0;
    for (day, files) in by_day.into_iter().filter(|(_, f)| f.len() >= config.min_small_files) {
        let mut batches = Vec::new();
        for file in &files {
            batches.extend(read_file(&location.store, &format!("{prefix}{}", file.path), file.size).await?);
        }
        // Files in the file schema (another engine may have written other
        // string types); a partition that does not convert is left as it is.
        let batches = match batches.iter().map(to_file_batch).collect::<Result<Vec<_>>>() {
            Ok(batches) if !batches.is_empty() => batches,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(project, date = %date_string(day), error = %e, "small files not merged");
                continue;
            }
        };
        let layout = layout.clone();
        let merged = off_runtime(move || {
            let mut rows: Vec<RowRef> =
                batches.iter().enumerate().flat_map(|(b, batch)| (0..batch.num_rows()).map(move |r| (b, r))).collect();
            sort_rows(&batches, &mut rows)?;
            encode_rows(&batches, &rows, &layout)
        })
        .await?;
        let relative = format!("{PARTITION_COLUMN}={}/part-{}.zstd.parquet", date_string(day), uuid::Uuid::new_v4());
        let mut add = add_action(relative.clone(), day, &merged, now_ms);
        add.data_change = false;
        location.store.put(&Path::from(format!("{prefix}{relative}")), PutPayload::from(merged.bytes)).await?;
        actions.push(Action::Add(add));
        for file in &files {
            actions.push(Action::Remove(Remove {
                path: file.path.clone(),
                data_change: false,
                deletion_timestamp: Some(now_ms),
                extended_file_metadata: Some(true),
                partition_values: Some(HashMap::from([(PARTITION_COLUMN.to_owned(), Some(date_string(day)))])),
                size: Some(file.size),
                tags: None,
                deletion_vector: None,
                base_row_id: None,
                default_row_commit_version: None,
            }));
        }
        merged_files += files.len();
        partitions += 1;
    }
    if actions.is_empty() {
        return Ok(());
    }
    let committed = CommitBuilder::default()
        .with_actions(actions)
        .with_max_retries(0)
        .build(
            Some(table.snapshot()?),
            table.log_store(),
            DeltaOperation::Optimize { predicate: None, target_size: config.small_file_bytes },
        )
        .await;
    match committed {
        Ok(_) => {
            report.partitions_merged += partitions;
            report.files_merged += merged_files;
        }
        // Lost to a concurrent commit: the merged file is unreferenced (vacuum
        // removes it) and the merge is retried next time.
        Err(e) => tracing::info!(project, error = %e, "small-file merge not committed; will retry"),
    }
    Ok(())
}

async fn read_file(store: &Arc<dyn ObjectStore>, key: &str, size: i64) -> Result<Vec<RecordBatch>> {
    #[allow(deprecated)]
    let reader = ParquetObjectReader::new(store.clone(), Path::from(key)).with_file_size(size as u64);
    let stream = ParquetRecordBatchStreamBuilder::new(reader).await?.build()?;
    Ok(stream.try_collect().await?)
}

/// Deletes files that no version within the retention period references:
/// files removed by merges, and files of compaction attempts that never committed.
/// Files no commit references (a failed attempt's, or those a compactor in
/// another process has written and not yet committed) are deleted only past
/// this age, whatever the configured retention: a compaction run writes its
/// files and commits them within seconds to minutes.
const ORPHAN_MIN_AGE: Duration = Duration::from_secs(3_600);

/// Two passes: files removed by a commit longer than `retention` ago (no
/// version younger than that reads them), then unreferenced files older
/// than `retention` and [`ORPHAN_MIN_AGE`].
async fn vacuum(table: DeltaTable, retention: Duration) -> Result<usize> {
    let period = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(7));
    let (table, removed) = table
        .vacuum()
        .with_retention_period(period(retention))
        .with_enforce_retention_duration(false)
        .with_mode(VacuumMode::Lite)
        .await?;
    let (_, orphans) = table
        .vacuum()
        .with_retention_period(period(retention.max(ORPHAN_MIN_AGE)))
        .with_enforce_retention_duration(false)
        .with_mode(VacuumMode::Full)
        .await?;
    Ok(removed.files_deleted.len() + orphans.files_deleted.len())
}
