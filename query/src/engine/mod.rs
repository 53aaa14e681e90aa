//! The SQL engine: one DataFusion session per request, holding only the
//! calling project's tables, with a memory pool, a deadline and a row limit.
//! What the session's `events` holds is the warehouse's [`Snapshot`]: this
//! module scans it, it does not decide it.

pub mod events;
pub mod persons;
pub mod pruning;
pub mod sandbox;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use contrail_edge::ProjectId;
use contrail_warehouse::table::TableCache;
use contrail_warehouse::{Location, Snapshot, Snapshots};
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::GreedyMemoryPool;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext, col, lit};
use futures::StreamExt;
use tokio::sync::Semaphore;

use self::events::{EventsTable, RejectedTable};
use self::persons::{LINK_COLUMNS, Link, PersonCache, PersonMap, links_in, person_id_udf};
use crate::config::QueryConfig;
use crate::error::{Error, Result};
use crate::telemetry;

/// Where the session finds the project's files.
const STORE_URL: &str = "contrail://store";
/// Footer and page-index cache shared by all queries (table files never change).
const METADATA_CACHE_BYTES: usize = 64 << 20;

/// A query's answer, at most the row limit.
#[derive(Debug)]
pub struct QueryResult {
    /// Column names and types.
    pub schema: SchemaRef,
    /// The rows.
    pub batches: Vec<RecordBatch>,
    /// More rows existed than were returned.
    pub truncated: bool,
}

impl QueryResult {
    /// Rows returned.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// The engine shared by all requests.
pub struct Engine {
    snapshots: Arc<Snapshots>,
    base: Arc<RuntimeEnv>,
    store_url: ObjectStoreUrl,
    limits: QueryConfig,
    permits: Semaphore,
    persons: PersonCache,
}

/// A request's session over one project's snapshot.
pub struct Session {
    /// The DataFusion session: `events`, `rejected`, `persons`, and the functions.
    pub ctx: SessionContext,
    /// The table version read (`None`: no table yet).
    pub version: Option<u64>,
    /// The person map the session's `person_id` resolves with.
    pub persons: Arc<PersonMap>,
}

impl Engine {
    /// An engine reading `location`, through `tables` (shared with a
    /// compactor of the same location in `serve`, so the process loads each
    /// table, commit and footer once).
    pub fn new(location: Location, tables: Arc<TableCache>, limits: QueryConfig) -> Result<Self> {
        let base = RuntimeEnvBuilder::new()
            // No spilling: a query over its memory limit fails cleanly
            // instead of filling the disk the buffer needs.
            .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled))
            .with_metadata_cache_limit(METADATA_CACHE_BYTES)
            .build_arc()?;
        let store_url = ObjectStoreUrl::parse(STORE_URL)?;
        base.register_object_store(store_url.as_ref(), location.store.clone());
        let permits = Semaphore::new(limits.max_concurrent.max(1));
        Ok(Self {
            snapshots: Arc::new(Snapshots::new(location, tables)),
            base,
            store_url,
            limits,
            permits,
            persons: PersonCache::default(),
        })
    }

    /// The object store queried.
    pub fn store(&self) -> Arc<dyn object_store::ObjectStore> {
        self.snapshots.location().store.clone()
    }

    /// The limits in force.
    pub fn limits(&self) -> &QueryConfig {
        &self.limits
    }

    /// The per-query deadline.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.limits.timeout_secs.max(1))
    }

    /// Runs one read-only SQL statement for `project`.
    #[tracing::instrument(skip(self, sql), fields(project = %project, rows = tracing::field::Empty))]
    pub async fn sql(&self, project: &ProjectId, sql: &str, max_rows: usize) -> Result<QueryResult> {
        let result = self
            .measured("sql", async {
                // Parsed before anything is loaded: a refused statement costs no I/O.
                let statement = sandbox::parse(sql)?;
                self.bounded(async {
                    let ctx = self.context(project).await?;
                    let plan = ctx.state().statement_to_plan(statement).await?;
                    sandbox::check_plan(&plan)?;
                    collect(ctx.execute_logical_plan(plan).await?, max_rows).await
                })
                .await
            })
            .await;
        if let Ok(r) = &result {
            tracing::Span::current().record("rows", r.num_rows());
        }
        result
    }

    /// Runs `build` (which plans against the project's session) under the
    /// engine's limits; for the endpoints that build queries themselves.
    pub async fn run<F, Fut>(
        &self,
        kind: &'static str,
        project: &ProjectId,
        max_rows: usize,
        build: F,
    ) -> Result<QueryResult>
    where
        F: FnOnce(Session) -> Fut,
        Fut: Future<Output = Result<DataFrame>>,
    {
        self.measured(
            kind,
            self.bounded(async {
                let session = self.session(project).await?;
                collect(build(session).await?, max_rows).await
            }),
        )
        .await
    }

    /// Runs `work` (any number of queries against the project's session)
    /// under the engine's limits; for the analytics endpoints.
    pub async fn analyze<T: telemetry::Rows, F, Fut>(
        &self,
        kind: &'static str,
        project: &ProjectId,
        work: F,
    ) -> Result<T>
    where
        F: FnOnce(Session) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.measured(kind, self.bounded(async { work(self.session(project).await?).await })).await
    }

    /// Times a query and records its outcome.
    async fn measured<T: telemetry::Rows>(
        &self,
        kind: &'static str,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let started = Instant::now();
        let result = work.await;
        telemetry::report_query(kind, &result, started.elapsed());
        result
    }

    /// Applies the concurrency limit and the deadline (waiting for a turn counts).
    async fn bounded<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        let limit = self.timeout();
        let guarded = async {
            let _permit =
                self.permits.acquire().await.map_err(|_| Error::Engine("the query engine is shutting down".into()))?;
            work.await
        };
        match tokio::time::timeout(limit, guarded).await {
            Ok(result) => result,
            Err(_) => Err(Error::QueryTimeout(limit.as_secs())),
        }
    }

    /// A session holding `project`'s `events`, `rejected` and `persons` and nothing else.
    pub async fn context(&self, project: &ProjectId) -> Result<SessionContext> {
        Ok(self.session(project).await?.ctx)
    }

    /// [`Self::context`], with the version read and the person map.
    pub async fn session(&self, project: &ProjectId) -> Result<Session> {
        let snapshot = self.snapshots.snapshot(project).await?;
        let version = snapshot.version;
        // Each file's links are kept as soon as read: a request cut short by
        // its deadline still leaves its progress to the next one.
        for file in snapshot.files.iter().filter(|f| !self.persons.has_read(project, &f.path)) {
            let links = self.file_links(project, vec![file.clone()]).await?;
            self.persons.remember(project, &file.path, links);
        }
        let files: Vec<String> = snapshot.files.iter().map(|f| f.path.clone()).collect();
        let raw = match &snapshot.raw {
            Some(rows) => links_in(rows)?,
            None => Vec::new(),
        };
        let persons = self.persons.map(project, version, &files, raw);
        let ctx = self.context_for(project, snapshot, persons.clone())?;
        Ok(Session { ctx, version, persons })
    }

    /// The identity links in table files (each file is read once: see [`PersonCache`]).
    #[tracing::instrument(skip_all, fields(project = %project, files = files.len()))]
    async fn file_links(
        &self,
        project: &ProjectId,
        files: Vec<contrail_warehouse::table::TableFile>,
    ) -> Result<Vec<Link>> {
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let table_only = Snapshot { version: None, files, raw: None };
        let ctx = self.context_for(project, table_only, Arc::new(PersonMap::default()))?;
        let kind = col("type");
        let frame = ctx
            .table("events")
            .await?
            .filter(kind.clone().eq(lit("identify")).or(kind.eq(lit("alias"))))?
            .select_columns(&LINK_COLUMNS)?;
        let mut links = Vec::new();
        for batch in frame.collect().await? {
            links.extend(links_in(&batch)?);
        }
        Ok(links)
    }

    fn context_for(&self, project: &ProjectId, snapshot: Snapshot, persons: Arc<PersonMap>) -> Result<SessionContext> {
        let partitions = match self.limits.target_partitions {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let mut config = SessionConfig::new()
            .with_target_partitions(partitions)
            .with_information_schema(false)
            .with_create_default_catalog_and_schema(true)
            .with_parquet_pruning(true)
            .with_collect_statistics(true);
        let options = config.options_mut();
        options.execution.parquet.pushdown_filters = true;
        options.execution.parquet.reorder_filters = true;
        options.execution.parquet.enable_page_index = true;
        options.execution.parquet.bloom_filter_on_read = true;
        options.sql_parser.enable_ident_normalization = true;
        let memory = usize::try_from(self.limits.memory_mb << 20).unwrap_or(usize::MAX);
        let runtime = RuntimeEnvBuilder::from_runtime_env(&self.base)
            .with_memory_pool(Arc::new(GreedyMemoryPool::new(memory)))
            .build_arc()?;
        let mut state =
            SessionStateBuilder::new().with_config(config).with_runtime_env(runtime).with_default_features().build();
        contrail_functions::register_all(&mut state)?;
        let ctx = SessionContext::new_with_state(state);
        ctx.register_udf(person_id_udf(persons));
        let prefix = contrail_warehouse::table::prefix(project.as_str());
        let events = EventsTable::new(self.store_url.clone(), prefix, snapshot.files, snapshot.raw);
        let events: Arc<dyn datafusion::catalog::TableProvider> = Arc::new(events);
        ctx.register_table("events", events.clone())?;
        let rejected = RejectedTable::new(self.snapshots.clone(), project.clone());
        ctx.register_table("rejected", Arc::new(rejected))?;
        ctx.register_table("persons", persons::view(&ctx, events)?)?;
        Ok(ctx)
    }
}

/// Executes `frame`, keeping at most `max_rows` rows and noting whether more existed.
async fn collect(frame: DataFrame, max_rows: usize) -> Result<QueryResult> {
    let mut stream = frame.execute_stream().await?;
    let schema = stream.schema();
    let mut batches = Vec::new();
    let mut rows = 0;
    let mut truncated = false;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        if rows + batch.num_rows() > max_rows {
            let keep = max_rows - rows;
            if keep > 0 {
                batches.push(batch.slice(0, keep));
            }
            truncated = true;
            break;
        }
        rows += batch.num_rows();
        batches.push(batch);
    }
    Ok(QueryResult { schema, batches, truncated })
}
