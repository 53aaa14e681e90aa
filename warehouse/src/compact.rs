//! One compaction run: raw batches not yet consumed → deduplicated, sorted
//! Parquet → one atomic Delta commit per project → raw batches deleted after
//! a grace period.
//!
//! Exactly once, whatever crashes or races:
//! - Every commit lists the raw keys it consumed (`commitInfo.contrail.consumed`).
//!   Before reading and again before each commit attempt, the compactor reads
//!   the commits since the oldest waiting raw file and skips consumed keys.
//! - Commits are create-only puts of the next log version with no automatic
//!   retry: if another compactor won the version, or the outcome of our put is
//!   unknown, the run re-plans from the new table state. Our own ambiguous
//!   commit is then seen as consumed, another's as consumed by them.
//! - Rows are deduplicated by `event_id` within the run and against the
//!   table's partitions for the same dates and their neighbours (a retry whose
//!   skew-corrected timestamp crosses midnight still dedupes).
//! - Raw files are deleted only once the commit that consumed them is older
//!   than the grace period; Parquet files of a failed attempt are unreferenced
//!   and removed by vacuum.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{AsArray, RecordBatch};
use deltalake::kernel::Action;
use deltalake::kernel::transaction::CommitBuilder;
use deltalake::protocol::{DeltaOperation, SaveMode};
use indicatif::{ProgressBar, ProgressStyle};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use serde_json::Value;

use crate::cpu::on_cores;
use crate::error::{Error, Result};
use crate::location::Location;
use crate::raw::{self, RawFile};
use crate::table::{self, CONSUMED_KEY, PARTITION_COLUMN};
use crate::telemetry;
use crate::write::{FileLayout, RowRef, add_action, date_string, days_of, encode_rows, sort_rows, to_file_batch};

/// How far a commit's timestamp may trail the flush time of a file it
/// consumed because of clock skew between the edge and the compactor.
pub const CLOCK_MARGIN_MS: i64 = 3_600_000;

/// Compactor settings.
#[derive(Debug, Clone)]
pub struct CompactorConfig {
    /// How long a consumed raw file is kept after its commit (readers that
    /// listed it just before the commit can still read it). Default 10 min.
    pub grace: Duration,
    /// Raw bytes read per run at most; a backlog takes several runs. Default 512 MiB.
    pub max_run_bytes: u64,
    /// Commit attempts per project and run before giving up. Default 16.
    pub max_attempts: usize,
    /// Parquet layout.
    pub layout: FileLayout,
    /// Show a progress bar on a terminal.
    pub progress: bool,
}

impl Default for CompactorConfig {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(600),
            max_run_bytes: 512 << 20,
            max_attempts: 16,
            layout: FileLayout::default(),
            progress: false,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Raw batches read.
    pub raw_files: usize,
    /// Raw bytes read.
    pub raw_bytes: u64,
    /// Events read.
    pub events_in: usize,
    /// Events committed.
    pub events_out: usize,
    /// Duplicates dropped.
    pub duplicates: usize,
    /// Parquet files written (and committed).
    pub files_written: usize,
    /// Parquet bytes committed.
    pub parquet_bytes: usize,
    /// Successful commits.
    pub commits: usize,
    /// Commit attempts re-planned.
    pub retries: usize,
    /// Raw batches deleted.
    pub raw_deleted: usize,
    /// Raw batches still waiting (over this run's byte budget).
    pub raw_left: usize,
}

/// The compactor for one location.
pub struct Compactor {
    location: Location,
    config: CompactorConfig,
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    tables: Arc<table::TableCache>,
    /// Raw batches refused as unusable ([`raw::project_rows`]): read once per
    /// process and left for an operator, so they neither hold the run's
    /// budget nor keep `run_until_caught_up` from finishing.
    refused: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Compactor {
    /// A compactor using the system clock.
    pub fn new(location: Location, config: CompactorConfig) -> Self {
        Self::with_clock(location, config, Arc::new(|| chrono::Utc::now().timestamp_millis()))
    }

    /// A compactor with an injected clock (ms since the epoch).
    pub fn with_clock(location: Location, config: CompactorConfig, clock: Arc<dyn Fn() -> i64 + Send + Sync>) -> Self {
        Self { location, config, clock, tables: Arc::default(), refused: Default::default() }
    }

    /// Uses `tables` for the tables, commits and probes it reads, shared
    /// with another reader of the same location (the query view in `serve`)
    /// so the process loads and reads each of them once.
    pub fn sharing_tables(mut self, tables: Arc<table::TableCache>) -> Self {
        self.tables = tables;
        self
    }

    /// The location compacted.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Runs until no raw batch is left unconsumed (several runs for a backlog).
    pub async fn run_until_caught_up(&self) -> Result<RunReport> {
        let mut total = RunReport::default();
        loop {
            let report = self.run_once().await?;
            let left = report.raw_left;
            add(&mut total, &report);
            if left == 0 {
                return Ok(total);
            }
        }
    }

    /// One run over the raw batches present now.
    #[tracing::instrument(skip_all, fields(raw_files = tracing::field::Empty, events = tracing::field::Empty))]
    pub async fn run_once(&self) -> Result<RunReport> {
        let started = Instant::now();
        let mut report = RunReport::default();
        let result = self.run(&mut report).await;
        telemetry::report_run(result.is_ok(), &report, started.elapsed());
        let span = tracing::Span::current();
        span.record("raw_files", report.raw_files);
        span.record("events", report.events_out);
        result.map(|()| report)
    }

    /// Every project's raw batches are listed under its own prefix; the run's
    /// byte budget goes to the oldest waiting batches first, whichever project
    /// they belong to (a busy project cannot starve the others); then each
    /// project is compacted and garbage-collected on its own, so one
    /// project's failure stops only that project (the first error is returned
    /// once the others are done).
    async fn run(&self, report: &mut RunReport) -> Result<()> {
        let mut projects = Vec::new();
        let mut waiting: Vec<(RawFile, usize)> = Vec::new();
        let mut first_error = None;
        for name in raw::projects(&self.location.store).await? {
            match self.waiting(&name).await {
                Ok((all_raw, consumed)) => {
                    let index = projects.len();
                    let refused = crate::lock(&self.refused);
                    let unconsumed = all_raw
                        .iter()
                        .filter(|f| !consumed.contains_key(&f.key) && !refused.contains(&f.key))
                        .cloned()
                        .collect::<Vec<_>>();
                    drop(refused);
                    waiting.extend(unconsumed.into_iter().map(|f| (f, index)));
                    projects.push((name, all_raw, consumed, Vec::new()));
                }
                Err(e) => {
                    tracing::error!(project = name, error = %e, "listing the project's raw batches failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        waiting.sort();
        let mut budget = self.config.max_run_bytes;
        let mut taken = 0;
        for (file, index) in waiting {
            if taken > 0 && file.size > budget {
                report.raw_left += 1;
                continue;
            }
            budget = budget.saturating_sub(file.size);
            taken += 1;
            projects[index].3.push(file);
        }
        for (project, all_raw, consumed, pending) in projects {
            if let Err(e) = self.run_project(&project, &all_raw, &consumed, pending, report).await {
                if matches!(e, Error::Injected(_)) {
                    return Err(e);
                }
                tracing::error!(project, error = %e, "compacting the project failed; the others go on");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// A project's raw batches, and the keys its table's commits consumed
    /// since the oldest of them was flushed.
    async fn waiting(&self, project: &str) -> Result<(Vec<RawFile>, HashMap<String, i64>)> {
        let all_raw = raw::list(&self.location.store, project).await?;
        let Some(oldest) = all_raw.first() else { return Ok((all_raw, HashMap::new())) };
        let since = oldest.flushed_at_ms - CLOCK_MARGIN_MS;
        let consumed = match self.tables.latest(&self.location, project).await? {
            Some(table) => self.tables.consumed_since(project, &table, since).await?,
            None => HashMap::new(),
        };
        Ok((all_raw, consumed))
    }

    /// One project: reads the batches the budget gave it, compacts them, then
    /// deletes the ones consumed longer than the grace period ago.
    #[tracing::instrument(skip_all, fields(project = %project, files = pending.len()))]
    async fn run_project(
        &self,
        project: &str,
        all_raw: &[RawFile],
        consumed: &HashMap<String, i64>,
        pending: Vec<RawFile>,
        report: &mut RunReport,
    ) -> Result<()> {
        let progress = self.progress_bar(pending.len() as u64);
        let mut files = Vec::new();
        for file in pending {
            let batches = raw::read(&self.location.store, &file.key).await?;
            progress.inc(1);
            report.raw_files += 1;
            report.raw_bytes += file.size;
            match raw::project_rows(project, &file.key, &batches)? {
                Some(batch) if batch.num_rows() > 0 => files.push((file, batch)),
                Some(_) => {}
                None => {
                    crate::lock(&self.refused).insert(file.key.clone());
                }
            }
        }
        progress.finish_and_clear();

        if !files.is_empty() {
            self.compact_project(project, files, report).await?;
        }
        fail::fail_point!("compact::before_gc", |_| Err(Error::Injected("compact::before_gc")));
        self.collect_garbage(all_raw, consumed, report).await
    }

    #[tracing::instrument(skip_all, fields(project = %project, files = files.len()))]
    async fn compact_project(
        &self,
        project: &str,
        files: Vec<(RawFile, RecordBatch)>,
        report: &mut RunReport,
    ) -> Result<()> {
        let since = files.iter().map(|(f, _)| f.flushed_at_ms).min().unwrap_or(0) - CLOCK_MARGIN_MS;
        let mut last_error = None;
        for attempt in 1..=self.config.max_attempts {
            if attempt > 1 {
                report.retries += 1;
            }
            let table = self.tables.latest_or_create(&self.location, project).await?;
            let consumed = self.tables.consumed_since(project, &table, since).await?;
            let waiting: Vec<&(RawFile, RecordBatch)> =
                files.iter().filter(|(f, _)| !consumed.contains_key(&f.key)).collect();
            if waiting.is_empty() {
                return Ok(());
            }
            match self.attempt(project, &table, &waiting, report).await {
                Ok(()) => return Ok(()),
                Err(Error::Injected(at)) => return Err(Error::Injected(at)),
                Err(e) => {
                    tracing::warn!(project, attempt, error = %e, "commit not made; re-planning from the latest version");
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| Error::Contended(self.config.max_attempts, project.to_owned())))
    }

    async fn attempt(
        &self,
        project: &str,
        table: &deltalake::DeltaTable,
        files: &[&(RawFile, RecordBatch)],
        report: &mut RunReport,
    ) -> Result<()> {
        let raw: Vec<&RecordBatch> = files.iter().map(|(_, b)| b).collect();
        let events_in: usize = raw.iter().map(|b| b.num_rows()).sum();

        // The first copy (oldest flush) of each id, minus ids the table holds
        // in the same or neighbouring dates.
        let id_columns: Vec<&dyn arrow::array::Array> =
            raw.iter().map(|b| b.column_by_name("event_id").expect("raw schema").as_ref()).collect();
        let ids = arrow::compute::concat(&id_columns)?;
        let days: Vec<i32> =
            raw.iter().flat_map(|b| days_of(b.column_by_name("timestamp").expect("raw schema"))).collect();
        let table_prefix = table::prefix(project);
        let table_files = table::all_files(table)?;
        let keep = self
            .tables
            .probes()
            .keep_new(&self.location.store, &table_prefix, &table_files, ids.as_string::<i32>(), &days)
            .await?;

        // The rows kept, by date, as references into the raw batches.
        let mut by_day: BTreeMap<i32, Vec<RowRef>> = BTreeMap::new();
        let mut next = 0;
        for (batch, rows) in raw.iter().enumerate() {
            for row in 0..rows.num_rows() {
                if keep.value(next) {
                    by_day.entry(days[next]).or_default().push((batch, row));
                }
                next += 1;
            }
        }
        let events_out: usize = by_day.values().map(Vec::len).sum();

        // One sorted file (or several, for a large partition) per date:
        // dates sorted, then files encoded, on the blocking pool, one per core.
        let file_batches = Arc::new(raw.iter().map(|b| to_file_batch(b)).collect::<Result<Vec<_>>>()?);
        let sorter = file_batches.clone();
        let sorted = on_cores(by_day.into_iter().collect(), move |(day, mut rows): (i32, Vec<RowRef>)| {
            sort_rows(&sorter, &mut rows)?;
            Ok((day, Arc::new(rows)))
        })
        .await?;
        let rows_per_file = self.config.layout.rows_per_file.max(1);
        let parts: Vec<(i32, Arc<Vec<RowRef>>, std::ops::Range<usize>)> = sorted
            .into_iter()
            .flat_map(|(day, rows)| {
                (0..rows.len())
                    .step_by(rows_per_file)
                    .map(move |start| (day, rows.clone(), start..(start + rows_per_file).min(rows.len())))
            })
            .collect();
        let layout = Arc::new(self.config.layout.clone());
        let encoded =
            on_cores(parts, move |(day, rows, range)| Ok((day, encode_rows(&file_batches, &rows[range], &layout)?)))
                .await?;
        let mut actions = Vec::new();
        let mut files_written = 0;
        let mut parquet_bytes = 0;
        let now = (self.clock)();
        for (day, file) in encoded {
            let relative =
                format!("{PARTITION_COLUMN}={}/part-{}.zstd.parquet", date_string(day), uuid::Uuid::new_v4());
            let action = add_action(relative.clone(), day, &file, now);
            parquet_bytes += file.bytes.len();
            self.location
                .store
                .put(&Path::from(format!("{table_prefix}{relative}")), PutPayload::from(file.bytes))
                .await?;
            actions.push(Action::Add(action));
            files_written += 1;
        }
        fail::fail_point!("compact::after_parquet_write", |_| Err(Error::Injected("compact::after_parquet_write")));

        let consumed: Vec<Value> = files.iter().map(|(f, _)| Value::String(f.key.clone())).collect();
        let metadata = HashMap::from([
            (CONSUMED_KEY.to_owned(), Value::Array(consumed)),
            ("contrail.events".to_owned(), Value::from(events_out)),
        ]);
        fail::fail_point!("compact::before_commit", |_| Err(Error::Injected("compact::before_commit")));
        let snapshot = table.snapshot()?;
        CommitBuilder::default()
            .with_actions(actions)
            .with_app_metadata(metadata)
            // No retry inside Delta: its conflict checker would let two blind
            // appends of the same raw files both succeed. Losing a version means
            // re-planning, which sees the winner's consumed keys.
            .with_max_retries(0)
            .build(
                Some(snapshot),
                table.log_store(),
                DeltaOperation::Write {
                    mode: SaveMode::Append,
                    partition_by: Some(vec![PARTITION_COLUMN.into()]),
                    predicate: None,
                },
            )
            .await?;
        fail::fail_point!("compact::after_commit", |_| Err(Error::Injected("compact::after_commit")));

        report.events_in += events_in;
        report.events_out += events_out;
        report.duplicates += events_in - events_out;
        report.files_written += files_written;
        report.parquet_bytes += parquet_bytes;
        report.commits += 1;
        Ok(())
    }

    /// Deletes raw batches whose consuming commit is older than the grace period.
    async fn collect_garbage(
        &self,
        raw: &[RawFile],
        consumed: &HashMap<String, i64>,
        report: &mut RunReport,
    ) -> Result<()> {
        let cutoff = (self.clock)() - self.config.grace.as_millis() as i64;
        for file in raw {
            if consumed.get(&file.key).is_some_and(|committed| *committed < cutoff) {
                match self.location.store.delete(&Path::from(file.key.as_str())).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => report.raw_deleted += 1,
                    Err(e) => return Err(e.into()),
                }
                fail::fail_point!("compact::during_gc", |_| Err(Error::Injected("compact::during_gc")));
            }
        }
        Ok(())
    }

    fn progress_bar(&self, len: u64) -> ProgressBar {
        if !self.config.progress || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len);
        if let Ok(style) = ProgressStyle::with_template("{spinner} compacting {pos}/{len} raw batches [{bar:30}] {eta}")
        {
            bar.set_style(style);
        }
        bar
    }
}

fn add(total: &mut RunReport, r: &RunReport) {
    total.raw_files += r.raw_files;
    total.raw_bytes += r.raw_bytes;
    total.events_in += r.events_in;
    total.events_out += r.events_out;
    total.duplicates += r.duplicates;
    total.files_written += r.files_written;
    total.parquet_bytes += r.parquet_bytes;
    total.commits += r.commits;
    total.retries += r.retries;
    total.raw_deleted += r.raw_deleted;
    total.raw_left = r.raw_left;
}
