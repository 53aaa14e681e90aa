//! The `events` table: a project's Delta files at one version, unioned with
//! its raw rows not yet compacted (see the warehouse's `snapshot.rs` for why
//! that is exact).
//!
//! The Delta files are scanned with DataFusion's Parquet reader directly from
//! the version's file list (never by listing the directory, which also holds
//! files a later version removed). Partitions are pruned from bounds on
//! `date` or `timestamp`; row groups and pages are pruned by the Parquet
//! reader from the filters the optimizer pushes into the scan. A file is
//! sorted by (`distinct_id`, `timestamp`, `event_id`); that order is declared
//! when each scan partition reads one file, so per-user queries skip sorts.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use contrail_warehouse::table::TableFile;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Result, ScalarValue, project_schema};
use datafusion::datasource::TableType;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::expressions::col;
use datafusion::physical_plan::union::UnionExec;

use contrail_edge::ProjectId;

use contrail_warehouse::Snapshots;
use contrail_warehouse::snapshot::{date_field, events_schema, scan_file_schema};
use contrail_warehouse::table::SORT_ORDER;

use super::pruning::day_range;

/// One project's `events`.
#[derive(Debug)]
pub struct EventsTable {
    store_url: ObjectStoreUrl,
    /// `tables/<project>/`.
    prefix: String,
    files: Vec<TableFile>,
    raw: Option<RecordBatch>,
    schema: SchemaRef,
}

impl EventsTable {
    /// `files` are read from `store_url` under `prefix`; `raw` rows are in the `events` schema.
    pub fn new(store_url: ObjectStoreUrl, prefix: String, files: Vec<TableFile>, raw: Option<RecordBatch>) -> Self {
        Self { store_url, prefix, files, raw, schema: events_schema() }
    }

    async fn parquet_scan(
        &self,
        state: &dyn Session,
        files: Vec<&TableFile>,
        projection: Option<&Vec<usize>>,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        if files.is_empty() {
            return Ok(None);
        }
        let groups = group_files(files, state.config().target_partitions().max(1), &self.prefix);
        let one_file_each = groups.iter().all(|g| g.len() == 1);
        let table_schema =
            TableSchema::builder(scan_file_schema()).with_table_partition_cols(vec![Arc::new(date_field())]).build();
        let format = ParquetFormat::default().with_options(state.table_options().parquet.clone());
        let source = format.file_source(table_schema);
        let mut builder = FileScanConfigBuilder::new(self.store_url.clone(), source)
            .with_file_groups(groups)
            .with_projection_indices(projection.cloned())?;
        if one_file_each {
            builder = builder.with_output_ordering(vec![file_order(&self.schema)?]);
        }
        Ok(Some(format.create_physical_plan(state, builder.build()).await?))
    }
}

/// Files spread over at most `partitions` groups, balanced by size, in a
/// stable order (largest first).
fn group_files(mut files: Vec<&TableFile>, partitions: usize, prefix: &str) -> Vec<FileGroup> {
    files.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.path.cmp(&b.path)));
    let n = partitions.min(files.len());
    let mut groups: Vec<(i64, Vec<PartitionedFile>)> = (0..n).map(|_| (0, Vec::new())).collect();
    for file in files {
        let smallest = groups.iter_mut().min_by_key(|(bytes, _)| *bytes).expect("at least one group");
        smallest.0 += file.size;
        let mut partitioned = PartitionedFile::new(format!("{prefix}{}", file.path), file.size.max(0) as u64);
        partitioned.partition_values = vec![ScalarValue::Date32(Some(file.date))];
        smallest.1.push(partitioned);
    }
    groups.into_iter().map(|(_, files)| FileGroup::new(files)).collect()
}

fn file_order(schema: &SchemaRef) -> Result<LexOrdering> {
    let exprs = SORT_ORDER
        .iter()
        .map(|name| Ok(PhysicalSortExpr::new_default(col(name, schema)?).asc().nulls_last()))
        .collect::<Result<Vec<_>>>()?;
    Ok(LexOrdering::new(exprs).expect("non-empty ordering"))
}

#[async_trait]
impl TableProvider for EventsTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        // Inexact: the filters are re-applied above the scan, so partition
        // pruning may be conservative and the Parquet reader may use them.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let days = day_range(filters);
        let files: Vec<&TableFile> = self.files.iter().filter(|f| days.contains(f.date)).collect();
        let mut inputs = Vec::new();
        if let Some(scan) = self.parquet_scan(state, files, projection).await? {
            inputs.push(scan);
        }
        if let Some(raw) = &self.raw {
            inputs.push(MemorySourceConfig::try_new_exec(
                &[vec![raw.clone()]],
                self.schema.clone(),
                projection.cloned(),
            )? as Arc<dyn ExecutionPlan>);
        }
        if inputs.is_empty() {
            return Ok(Arc::new(EmptyExec::new(project_schema(&self.schema, projection)?)));
        }
        UnionExec::try_new(inputs)
    }
}

/// One project's `rejected`: quarantined messages, loaded only when a query
/// scans it (listing `rejected/` is a request most queries need not make).
#[derive(Debug)]
pub struct RejectedTable {
    snapshots: Arc<Snapshots>,
    project: ProjectId,
}

impl RejectedTable {
    /// `project`'s quarantine, read through `snapshots`.
    pub fn new(snapshots: Arc<Snapshots>, project: ProjectId) -> Self {
        Self { snapshots, project }
    }
}

#[async_trait]
impl TableProvider for RejectedTable {
    fn schema(&self) -> SchemaRef {
        contrail_edge::schema::rejected_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let rows = self
            .snapshots
            .rejected(self.project.as_str())
            .await
            .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
        Ok(MemorySourceConfig::try_new_exec(&[rows], self.schema(), projection.cloned())?)
    }
}
