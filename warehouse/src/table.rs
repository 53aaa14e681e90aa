//! A project's Delta table: schema, opening or creating it, and reading what
//! its commits consumed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use deltalake::kernel::{DataType as DeltaType, StructField};
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use serde_json::Value;

use crate::dedupe::ProbeCache;
use crate::error::Result;
use crate::location::Location;
use crate::lock;

/// Where every project's table lives: `tables/<project>/`.
pub const TABLES_PREFIX: &str = "tables";
/// The order rows are sorted in within each table file (and `maintain`'s
/// merged files): a user's events are contiguous and in time order, which
/// makes per-user reads (timelines, funnels) a range and compresses the
/// user id column to almost nothing.
pub const SORT_ORDER: [&str; 3] = ["distinct_id", "timestamp", "event_id"];

/// `tables/<project>/`, relative to the location's base.
pub fn prefix(project: &str) -> String {
    format!("{TABLES_PREFIX}/{project}/")
}

/// The partition column: the UTC date of `timestamp`.
pub const PARTITION_COLUMN: &str = "date";
/// commitInfo key listing the raw batch keys a commit consumed.
pub const CONSUMED_KEY: &str = "contrail.consumed";
/// Table property carrying the event schema version.
pub const SCHEMA_VERSION_PROPERTY: &str = "contrail.schemaVersion";

/// Arrow schema of the table's Parquet files: the raw event schema with
/// dictionaries decoded (Delta has no dictionary type) and timestamps in
/// microseconds (Delta's timestamp unit), without the partition column.
pub fn file_schema() -> SchemaRef {
    let raw = contrail_edge::schema::event_schema();
    let fields: Vec<Field> = raw
        .fields()
        .iter()
        .map(|f| {
            let data_type = match f.data_type() {
                DataType::Dictionary(_, value) => value.as_ref().clone(),
                DataType::Timestamp(_, tz) => DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
                other => other.clone(),
            };
            Field::new(f.name(), data_type, f.is_nullable())
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, raw.metadata().clone()))
}

/// The Delta schema: the file columns plus `date`.
fn delta_columns() -> Vec<StructField> {
    let mut columns: Vec<StructField> = file_schema()
        .fields()
        .iter()
        .map(|f| {
            let data_type = match f.data_type() {
                DataType::Timestamp(..) => DeltaType::TIMESTAMP,
                _ => DeltaType::STRING,
            };
            StructField::new(f.name(), data_type, f.is_nullable())
        })
        .collect();
    columns.push(StructField::new(PARTITION_COLUMN, DeltaType::DATE, false));
    columns
}

fn builder(location: &Location, project: &str) -> Result<DeltaTableBuilder> {
    let url = location.table_url(project);
    if let Ok(dir) = url.to_file_path() {
        // Delta's local log store wants the table directory to exist, even to
        // find that there is no table in it yet.
        std::fs::create_dir_all(&dir)
            .map_err(|e| crate::error::Error::Location(format!("creating {}: {e}", dir.display())))?;
    }
    Ok(DeltaTableBuilder::from_url(url.clone())?.with_storage_backend(location.root_store.clone(), url))
}

/// Opens the project's table, or `None` if it does not exist yet.
pub async fn open(location: &Location, project: &str) -> Result<Option<DeltaTable>> {
    // Look before loading: Delta's kernel logs an error for a missing table,
    // which on a first run is the normal case, not one.
    let log = object_store::path::Path::from(format!("{}_delta_log", prefix(project)));
    let mut entries = location.store.list(Some(&log));
    if futures::StreamExt::next(&mut entries).await.transpose()?.is_none() {
        return Ok(None);
    }
    drop(entries);
    let mut table = builder(location, project)?.build()?;
    match table.load().await {
        Ok(()) => Ok(Some(table)),
        Err(DeltaTableError::NotATable(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Opens the project's table, creating it on first use. Two compactors may
/// race to create it: creation is a create-only put of version 0, so one wins
/// and the other loads the winner's table.
pub async fn open_or_create(location: &Location, project: &str) -> Result<DeltaTable> {
    if let Some(table) = open(location, project).await? {
        return Ok(table);
    }
    let table = builder(location, project)?.build()?;
    let created = table
        .create()
        .with_table_name(project)
        .with_comment("Contrail events (one row per event, exactly once)")
        .with_columns(delta_columns())
        .with_partition_columns([PARTITION_COLUMN])
        .with_configuration([(SCHEMA_VERSION_PROPERTY, Some(contrail_edge::schema::SCHEMA_VERSION))])
        .with_raise_if_key_not_exists(false)
        .with_save_mode(SaveMode::Ignore)
        .await;
    match created {
        Ok(table) => Ok(table),
        Err(e) => match open(location, project).await? {
            Some(table) => Ok(table),
            None => Err(e.into()),
        },
    }
}

/// Commit summaries kept per project: about 34 hours of commits at `serve`'s
/// default of one run every 30 s, a few megabytes.
const COMMITS_REMEMBERED: usize = 4096;

/// Tables kept loaded between runs and queries and brought up to date with
/// the commits made since (`update_incremental`), instead of listing the
/// whole `_delta_log/` and replaying it from the last checkpoint each time;
/// what each commit consumed, read once per version (a commit file is
/// written create-only and never changes); and the dedupe probe's view of
/// the table files.
#[derive(Default)]
pub struct TableCache {
    tables: Mutex<HashMap<String, DeltaTable>>,
    commits: Mutex<HashMap<String, BTreeMap<u64, Arc<CommitSummary>>>>,
    probes: ProbeCache,
}

impl TableCache {
    /// Footers and bloom filters of the files the dedupe probe reads.
    pub fn probes(&self) -> &ProbeCache {
        &self.probes
    }

    /// The project's table at its latest version, or `None` if it has none.
    pub async fn latest(&self, location: &Location, project: &str) -> Result<Option<DeltaTable>> {
        let cached = lock(&self.tables).get(project).cloned();
        let table = match cached {
            Some(mut table) => {
                table.update_incremental(None).await?;
                Some(table)
            }
            None => open(location, project).await?,
        };
        if let Some(table) = &table {
            lock(&self.tables).insert(project.to_owned(), table.clone());
        }
        Ok(table)
    }

    /// The project's table at its latest version, created on first use.
    pub async fn latest_or_create(&self, location: &Location, project: &str) -> Result<DeltaTable> {
        if let Some(table) = self.latest(location, project).await? {
            return Ok(table);
        }
        let table = open_or_create(location, project).await?;
        lock(&self.tables).insert(project.to_owned(), table.clone());
        Ok(table)
    }

    /// [`consumed_since`], reading only the commits this cache has not read
    /// before. Without it every compaction run and every query re-read each
    /// commit of the last hour ([`crate::compact::CLOCK_MARGIN_MS`]): quadratic in the
    /// commit rate.
    pub async fn consumed_since(
        &self,
        project: &str,
        table: &DeltaTable,
        since_ms: i64,
    ) -> Result<HashMap<String, i64>> {
        let consumed = walk_commits(
            table,
            since_ms,
            |version| lock(&self.commits).get(project).and_then(|m| m.get(&version).cloned()),
            |version, summary| {
                lock(&self.commits).entry(project.to_owned()).or_default().insert(version, summary);
            },
        )
        .await?;
        // Bounded by count, not by this caller's `since`: the compactor asks
        // from two different points in one run (every raw batch, then the
        // waiting ones) and evicting by the later one would re-read the
        // commits between them on every run.
        let mut memo = lock(&self.commits);
        if let Some(commits) = memo.get_mut(project)
            && commits.len() > COMMITS_REMEMBERED
            && let Some(&keep_from) = commits.keys().rev().nth(COMMITS_REMEMBERED - 1)
        {
            *commits = commits.split_off(&keep_from);
        }
        Ok(consumed)
    }
}

/// What one commit says about raw batches.
#[derive(Debug, Default)]
struct CommitSummary {
    /// `commitInfo.timestamp` (ms), if the commit has one.
    timestamp: Option<i64>,
    /// Raw keys the commit consumed (none for commits other than compaction).
    consumed: Vec<String>,
}

impl CommitSummary {
    fn parse(bytes: &[u8]) -> Self {
        let mut summary = Self::default();
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let Ok(action) = serde_json::from_slice::<Value>(line) else { continue };
            let Some(info) = action.get("commitInfo") else { continue };
            summary.timestamp = info.get("timestamp").and_then(Value::as_i64);
            if let Some(keys) = info.get(CONSUMED_KEY).and_then(Value::as_array) {
                summary.consumed.extend(keys.iter().filter_map(Value::as_str).map(str::to_owned));
            }
        }
        summary
    }
}

/// Raw keys consumed by commits made at or after `since_ms`, with each
/// commit's time. Reads commit files newest first and stops at the first
/// commit older than `since_ms`: a raw file cannot be consumed before it was
/// flushed, so older commits cannot list any file still waiting.
pub async fn consumed_since(table: &DeltaTable, since_ms: i64) -> Result<HashMap<String, i64>> {
    walk_commits(table, since_ms, |_| None, |_, _| {}).await
}

/// The walk behind [`consumed_since`], with a memo of commit summaries
/// (`cached`/`remember`).
async fn walk_commits(
    table: &DeltaTable,
    since_ms: i64,
    cached: impl Fn(u64) -> Option<Arc<CommitSummary>>,
    remember: impl Fn(u64, Arc<CommitSummary>),
) -> Result<HashMap<String, i64>> {
    let mut consumed = HashMap::new();
    let Some(latest) = table.version() else { return Ok(consumed) };
    let log_store = table.log_store();
    let mut version = latest;
    loop {
        let summary = match cached(version) {
            Some(summary) => summary,
            None => {
                let Some(bytes) = log_store.read_commit_entry(version).await? else { break };
                let summary = Arc::new(CommitSummary::parse(&bytes));
                remember(version, summary.clone());
                summary
            }
        };
        for key in &summary.consumed {
            consumed.insert(key.clone(), summary.timestamp.unwrap_or(i64::MAX));
        }
        if summary.timestamp.is_some_and(|t| t < since_ms) || version == 0 {
            break;
        }
        version -= 1;
    }
    Ok(consumed)
}

/// A data file of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFile {
    /// Path relative to the table root.
    pub path: String,
    /// Partition date (days since the Unix epoch).
    pub date: i32,
    /// Size in bytes.
    pub size: i64,
}

/// Every current file of the table.
pub fn all_files(table: &DeltaTable) -> Result<Vec<TableFile>> {
    let actions = table.snapshot()?.add_actions_table(true)?;
    let paths = actions.column_by_name("path").map(|c| c.as_string::<i32>().clone());
    let sizes =
        actions.column_by_name("size_bytes").and_then(|c| c.as_primitive_opt::<arrow::datatypes::Int64Type>().cloned());
    let partition = actions.column_by_name(&format!("partition.{PARTITION_COLUMN}"));
    let (Some(paths), Some(sizes), Some(partition)) = (paths, sizes, partition) else { return Ok(Vec::new()) };
    let dates_col = partition.as_primitive_opt::<arrow::datatypes::Date32Type>();
    let mut out = Vec::new();
    for i in 0..actions.num_rows() {
        let date = match dates_col {
            Some(d) if d.is_valid(i) => d.value(i),
            _ => continue,
        };
        out.push(TableFile { path: paths.value(i).to_owned(), date, size: sizes.value(i) });
    }
    Ok(out)
}
