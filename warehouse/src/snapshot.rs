//! What "exactly once" means for a reader: one project's events as a Delta
//! table version plus the raw batches that version has not consumed yet,
//! deduplicated as the compactor will. The query engine asks for a
//! [`Snapshot`] and scans what it names; the rules live here, next to the
//! compactor's.
//!
//! Order matters. The table is loaded first (version `V`), then the
//! project's `raw/project=<p>/` prefix is listed (never another project's),
//! and every raw batch that a commit up to `V` consumed is dropped. A batch
//! consumed by a later commit `V+1` (landing while the query runs) is
//! still read from `raw/`, because the compactor deletes a consumed batch only
//! after its grace period, which is longer than any query may run. So each
//! event is read from exactly one place: the table at `V`, or its raw batch.
//!
//! Raw rows are deduplicated the way the compactor will: the first copy (oldest
//! flush) wins, and ids the table already holds in the same or neighbouring
//! date partition are dropped. What a query counts now is what it will count
//! after compaction.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, AsArray, BooleanArray, Date32Array, RecordBatch};
use arrow::compute::{concat_batches, filter_record_batch};
use arrow::datatypes::{DataType, Date32Type, Field, Schema, SchemaRef};
use contrail_edge::ProjectId;
use contrail_edge::raw_key::{RAW_PREFIX, REJECTED_PREFIX, project_prefix};
use deltalake::DeltaTable;

use crate::compact::CLOCK_MARGIN_MS;
use crate::error::{Error, Result};
use crate::location::Location;
use crate::lock;
use crate::raw;
use crate::table::{self as delta, PARTITION_COLUMN, TableCache, TableFile};
use crate::write::{days_of, to_file_batch};

static SCAN_FILE_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let files = delta::file_schema();
    let fields: Vec<Field> = files
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 => Field::new(f.name(), DataType::Utf8View, f.is_nullable()),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, files.metadata().clone()))
});

static EVENTS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let files = scan_file_schema();
    let mut fields: Vec<Field> = files.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(date_field());
    Arc::new(Schema::new_with_metadata(fields, files.metadata().clone()))
});

/// Columns of the table's files as the scan reads them: text as `Utf8View`,
/// which the Parquet reader fills without copying string bytes and which
/// DataFusion groups, compares and sorts faster than `Utf8`.
pub fn scan_file_schema() -> SchemaRef {
    SCAN_FILE_SCHEMA.clone()
}

/// Schema of the `events` table: the scanned file columns plus `date`.
pub fn events_schema() -> SchemaRef {
    EVENTS_SCHEMA.clone()
}

/// The partition column as a field.
pub fn date_field() -> Field {
    Field::new(PARTITION_COLUMN, DataType::Date32, false)
}

/// What a query of one project reads: exactly the project's acknowledged,
/// flushed events, each once.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Table version read (`None`: no table yet).
    pub version: Option<u64>,
    /// The table's files at that version.
    pub files: Vec<TableFile>,
    /// Raw rows that version has not consumed, deduplicated, in the `events` schema.
    pub raw: Option<RecordBatch>,
}

/// A raw batch, decoded once: objects under a raw key never change.
struct CachedRaw {
    flushed_at_ms: i64,
    /// Rows in the `events` schema.
    rows: RecordBatch,
}

/// A project's deduplicated raw rows, valid for one table version and one
/// list of raw keys.
struct Deduped {
    version: Option<u64>,
    keys: Vec<String>,
    rows: Option<RecordBatch>,
}

type ConsumedKeys = (Option<u64>, i64, Arc<HashMap<String, i64>>);

/// Takes snapshots of projects at one object store location, caching what
/// is immutable (decoded raw batches) or cheap to bring up to date (Delta
/// tables, shared with a compactor of the same location).
pub struct Snapshots {
    location: Location,
    tables: Arc<TableCache>,
    raw: Mutex<HashMap<String, Arc<CachedRaw>>>,
    rejected: Mutex<HashMap<String, Arc<RecordBatch>>>,
    /// Per project: the deduplicated raw rows for (version, raw keys).
    deduped: Mutex<HashMap<String, Deduped>>,
    /// Per project: (version, since, raw keys consumed since then).
    consumed: Mutex<HashMap<String, ConsumedKeys>>,
    /// When each project was last read: a project idle for [`IDLE_EVICTION`]
    /// gives its cached batches and sets back.
    last_read: Mutex<HashMap<String, Instant>>,
}

/// How long an unread project keeps its decoded raw batches, deduplicated
/// rows and consumed keys in memory. Without it, every project ever queried
/// would hold them until the process ends.
const IDLE_EVICTION: Duration = Duration::from_secs(600);

impl std::fmt::Debug for Snapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshots").field("location", &self.location.base.as_str()).finish_non_exhaustive()
    }
}

impl Snapshots {
    /// Snapshots of `location`, reading tables through `tables`.
    pub fn new(location: Location, tables: Arc<TableCache>) -> Self {
        Self {
            location,
            tables,
            raw: Mutex::default(),
            rejected: Mutex::default(),
            deduped: Mutex::default(),
            consumed: Mutex::default(),
            last_read: Mutex::default(),
        }
    }

    /// The location read.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The tables, commits and probes read, for a compactor of the same
    /// location to share.
    pub fn tables(&self) -> &Arc<TableCache> {
        &self.tables
    }

    /// The current snapshot of `project`.
    #[tracing::instrument(skip(self), fields(project = %project, version = tracing::field::Empty, raw_rows = tracing::field::Empty))]
    pub async fn snapshot(&self, project: &ProjectId) -> Result<Snapshot> {
        self.evict_idle(project.as_str());
        let table = self.table(project.as_str()).await?;
        let version = table.as_ref().and_then(DeltaTable::version);
        let files = match &table {
            Some(t) if version.is_some() => delta::all_files(t)?,
            _ => Vec::new(),
        };

        let listed = raw::list(&self.location.store, project.as_str()).await?;
        let consumed = match (&table, listed.first()) {
            (Some(t), Some(oldest)) => {
                self.consumed(project.as_str(), t, oldest.flushed_at_ms - CLOCK_MARGIN_MS).await?
            }
            _ => Arc::new(HashMap::new()),
        };
        let mut waiting = Vec::new();
        for file in &listed {
            if consumed.contains_key(&file.key) {
                continue;
            }
            if let Some(cached) = self.raw_file(project.as_str(), file).await?
                && cached.rows.num_rows() > 0
            {
                waiting.push((file.key.clone(), cached));
            }
        }
        self.forget_raw(&listed, project.as_str(), &consumed);
        waiting.sort_by_key(|(key, c)| (c.flushed_at_ms, key.clone()));

        let raw = self.deduplicated(project.as_str(), version, &files, &waiting).await?;
        let span = tracing::Span::current();
        span.record("version", version);
        span.record("raw_rows", raw.as_ref().map_or(0, RecordBatch::num_rows));
        Ok(Snapshot { version, files, raw })
    }

    /// The project's table at its latest version (cached, updated incrementally).
    async fn table(&self, project: &str) -> Result<Option<DeltaTable>> {
        self.tables.latest(&self.location, project).await
    }

    /// Raw keys consumed by the table's commits since `since` (each commit
    /// read once; the set kept while the version and `since` stay the same).
    async fn consumed(&self, project: &str, table: &DeltaTable, since: i64) -> Result<Arc<HashMap<String, i64>>> {
        let version = table.version();
        if let Some((v, s, keys)) = lock(&self.consumed).get(project)
            && *v == version
            && *s == since
        {
            return Ok(keys.clone());
        }
        let keys = Arc::new(self.tables.consumed_since(project, table, since).await?);
        lock(&self.consumed).insert(project.to_owned(), (version, since, keys.clone()));
        Ok(keys)
    }

    /// A raw batch, decoded and converted (cached). `None` if it vanished
    /// between listing and reading: only garbage collection deletes raw
    /// batches, and only long after the commit that consumed them.
    async fn raw_file(&self, project: &str, file: &raw::RawFile) -> Result<Option<Arc<CachedRaw>>> {
        if let Some(hit) = lock(&self.raw).get(&file.key) {
            return Ok(Some(hit.clone()));
        }
        let batches = match raw::read(&self.location.store, &file.key).await {
            Ok(b) => b,
            Err(Error::Store(object_store::Error::NotFound { .. })) => {
                tracing::warn!(key = %file.key, "raw batch deleted while being read; it was compacted");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        // A batch the compactor refuses is refused here too (cached as empty,
        // so it is not read again), so what a query counts is what the table
        // will hold.
        let rows = match raw::project_rows(project, &file.key, &batches)? {
            Some(batch) => to_events_batch(&batch)?,
            None => RecordBatch::new_empty(events_schema()),
        };
        let cached = Arc::new(CachedRaw { flushed_at_ms: file.flushed_at_ms, rows });
        lock(&self.raw).insert(file.key.clone(), cached.clone());
        Ok(Some(cached))
    }

    /// Drops cached raw batches that are gone, or that `project`'s table
    /// has consumed: they stay in `raw/` for the grace period, but no query
    /// of this version or later reads them again.
    fn forget_raw(&self, listed: &[raw::RawFile], project: &str, consumed: &HashMap<String, i64>) {
        let mine = project_prefix(RAW_PREFIX, project);
        let keys: HashSet<&str> = listed.iter().map(|f| f.key.as_str()).collect();
        lock(&self.raw)
            .retain(|k, _| !k.starts_with(&mine) || (keys.contains(k.as_str()) && !consumed.contains_key(k)));
    }

    /// Marks `project` read now and drops what projects unread for
    /// [`IDLE_EVICTION`] cached (they are read again on their next query).
    fn evict_idle(&self, project: &str) {
        let now = Instant::now();
        let idle: Vec<String> = {
            let mut last_read = lock(&self.last_read);
            last_read.insert(project.to_owned(), now);
            let idle: Vec<String> =
                last_read.iter().filter(|(_, at)| now - **at > IDLE_EVICTION).map(|(p, _)| p.clone()).collect();
            for p in &idle {
                last_read.remove(p);
            }
            idle
        };
        if idle.is_empty() {
            return;
        }
        let prefixes: Vec<String> =
            idle.iter().flat_map(|p| [project_prefix(RAW_PREFIX, p), project_prefix(REJECTED_PREFIX, p)]).collect();
        let keep = |key: &String| !prefixes.iter().any(|p| key.starts_with(p.as_str()));
        lock(&self.raw).retain(|k, _| keep(k));
        lock(&self.rejected).retain(|k, _| keep(k));
        lock(&self.deduped).retain(|p, _| !idle.contains(p));
        lock(&self.consumed).retain(|p, _| !idle.contains(p));
    }

    /// Raw rows minus duplicates (within the raw rows, and against the table).
    async fn deduplicated(
        &self,
        project: &str,
        version: Option<u64>,
        files: &[TableFile],
        waiting: &[(String, Arc<CachedRaw>)],
    ) -> Result<Option<RecordBatch>> {
        let keys: Vec<String> = waiting.iter().map(|(k, _)| k.clone()).collect();
        if let Some(hit) = lock(&self.deduped).get(project)
            && hit.version == version
            && hit.keys == keys
        {
            return Ok(hit.rows.clone());
        }
        let rows = if waiting.is_empty() {
            None
        } else {
            let batches: Vec<RecordBatch> = waiting.iter().map(|(_, c)| c.rows.clone()).collect();
            let all = concat_batches(&events_schema(), &batches)?;
            let ids = arrow::compute::cast(all.column_by_name("event_id").expect("events schema"), &DataType::Utf8)?;
            let dates = all.column_by_name(PARTITION_COLUMN).expect("events schema").as_primitive::<Date32Type>();
            let prefix = delta::prefix(project);
            let keep = self
                .tables
                .probes()
                .keep_new(&self.location.store, &prefix, files, ids.as_string::<i32>(), dates.values())
                .await?;
            Some(filter_record_batch(&all, &keep)?)
        };
        lock(&self.deduped).insert(project.to_owned(), Deduped { version, keys, rows: rows.clone() });
        Ok(rows)
    }

    /// The project's quarantined messages (its `rejected/project=<p>/`
    /// batches), read only by queries that name `rejected`.
    pub async fn rejected(&self, project: &str) -> Result<Vec<RecordBatch>> {
        let prefix = object_store::path::Path::from(project_prefix(REJECTED_PREFIX, project));
        let listed: Vec<object_store::ObjectMeta> =
            futures::TryStreamExt::try_collect(self.location.store.list(Some(&prefix))).await?;
        let mut out = Vec::new();
        for meta in &listed {
            let key = meta.location.to_string();
            let cached = lock(&self.rejected).get(&key).cloned();
            let batch = match cached {
                Some(b) => b,
                None => {
                    let bytes =
                        match object_store::ObjectStoreExt::get(self.location.store.as_ref(), &meta.location).await {
                            Ok(r) => r.bytes().await?,
                            Err(object_store::Error::NotFound { .. }) => continue,
                            Err(e) => return Err(e.into()),
                        };
                    let (schema, batches) = contrail_edge::encode::read_ipc_file(&bytes)
                        .map_err(|source| Error::Raw { key: key.clone(), source })?;
                    let batch = Arc::new(only_project(&concat_batches(&schema, &batches)?, project)?);
                    lock(&self.rejected).insert(key, batch.clone());
                    batch
                }
            };
            if batch.num_rows() > 0 {
                out.push(batch.as_ref().clone());
            }
        }
        Ok(out)
    }
}

/// The rows of a quarantine batch whose `project_id` is `project` (none if
/// it has no such text column).
fn only_project(batch: &RecordBatch, project: &str) -> Result<RecordBatch> {
    let Some(projects) = batch.column_by_name("project_id").and_then(|c| c.as_string_opt::<i32>()).cloned() else {
        return Ok(batch.slice(0, 0));
    };
    if projects.iter().all(|p| p == Some(project)) {
        return Ok(batch.clone());
    }
    let mine: BooleanArray = projects.iter().map(|p| Some(p == Some(project))).collect();
    Ok(filter_record_batch(batch, &mine)?)
}

/// Raw rows (dictionaries, milliseconds) to the `events` schema (plain
/// strings, microseconds, `date`), the shape of the table's rows.
pub fn to_events_batch(raw: &RecordBatch) -> Result<RecordBatch> {
    let file = to_file_batch(raw)?;
    let schema = events_schema();
    let days = days_of(raw.column_by_name("timestamp").expect("raw schema"));
    let mut columns: Vec<ArrayRef> = file
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| arrow::compute::cast(column, field.data_type()))
        .collect::<std::result::Result<_, _>>()?;
    columns.push(Arc::new(Date32Array::from(days)));
    Ok(RecordBatch::try_new(schema, columns)?)
}
