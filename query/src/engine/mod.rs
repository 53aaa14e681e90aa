//! The SQL engine: one DataFusion session per request, holding only the
//! calling project's tables, with a memory pool, a deadline and a row limit.
//! What the session's `events` holds is the warehouse's [`Snapshot`]: this
//! module scans it, it does not decide it.

pub mod events;
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
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use futures::StreamExt;
use tokio::sync::Semaphore;

use self::events::{EventsTable, RejectedTable};
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
        Ok(Self { snapshots: Arc::new(Snapshots::new(location, tables)), base, store_url, limits, permits })
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
        F: FnOnce(SessionContext) -> Fut,
        Fut: Future<Output = Result<DataFrame>>,
    {
        self.measured(
            kind,
            self.bounded(async {
                let ctx = self.context(project).await?;
                collect(build(ctx).await?, max_rows).await
            }),
        )
        .await
    }

    /// Times a query and records its outcome.
    async fn measured(
        &self,
        kind: &'static str,
        work: impl Future<Output = Result<QueryResult>>,
    ) -> Result<QueryResult> {
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

    /// A session holding `project`'s `events` and `rejected` and nothing else.
    pub async fn context(&self, project: &ProjectId) -> Result<SessionContext> {
        let snapshot = self.snapshots.snapshot(project).await?;
        self.context_for(project, snapshot)
    }

    fn context_for(&self, project: &ProjectId, snapshot: Snapshot) -> Result<SessionContext> {
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
        let state =
            SessionStateBuilder::new().with_config(config).with_runtime_env(runtime).with_default_features().build();
        let ctx = SessionContext::new_with_state(state);
        let prefix = contrail_warehouse::table::prefix(project.as_str());
        let events = EventsTable::new(self.store_url.clone(), prefix, snapshot.files, snapshot.raw);
        ctx.register_table("events", Arc::new(events))?;
        let rejected = RejectedTable::new(self.snapshots.clone(), project.clone());
        ctx.register_table("rejected", Arc::new(rejected))?;
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
