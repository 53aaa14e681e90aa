//! Raw batches waiting in `raw/project=<project>/`: listing one project's
//! (the key carries the flush time) and reading them.

use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path;
use uuid::Uuid;

use contrail_edge::raw_key::{RAW_PREFIX, project_prefix};

use crate::error::{Error, Result};

/// One raw batch object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RawFile {
    /// Flush time (ms), from the UUIDv7 in the key; first so files sort by it.
    pub flushed_at_ms: i64,
    /// Key relative to the location's base.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
}

/// Projects that have raw batches (`raw/project=<p>/`). Anything else under
/// `raw/` is not in the per-project layout and is logged, never read.
pub async fn projects(store: &Arc<dyn ObjectStore>) -> Result<Vec<String>> {
    let listing = store.list_with_delimiter(Some(&Path::from(RAW_PREFIX))).await?;
    let mut projects = Vec::new();
    for folder in &listing.common_prefixes {
        let name = folder.filename().unwrap_or_default();
        match name.strip_prefix("project=").filter(|p| contrail_edge::ProjectId::parse(p).is_ok()) {
            Some(project) => projects.push(project.to_owned()),
            None => tracing::warn!(folder = %folder, "ignoring a folder that is not raw/project=<project>/"),
        }
    }
    Ok(projects)
}

/// Every raw batch of `project`, oldest flush first. Keys that are not
/// `<uuidv7>.arrow` are ignored (and logged): they are not ours.
pub async fn list(store: &Arc<dyn ObjectStore>, project: &str) -> Result<Vec<RawFile>> {
    let prefix = Path::from(project_prefix(RAW_PREFIX, project));
    let metas: Vec<_> = store.list(Some(&prefix)).try_collect().await?;
    let mut files: Vec<RawFile> = metas
        .into_iter()
        .filter_map(|meta| {
            let key = meta.location.to_string();
            match flush_time(&key) {
                Some(flushed_at_ms) => Some(RawFile { flushed_at_ms, key, size: meta.size }),
                None => {
                    tracing::warn!(key, "ignoring an object under raw/ that is not a raw batch");
                    None
                }
            }
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The flush time encoded in a raw key's UUIDv7.
pub fn flush_time(key: &str) -> Option<i64> {
    let name = key.rsplit('/').next()?.strip_suffix(".arrow")?;
    let id = Uuid::parse_str(name).ok()?;
    let (secs, nanos) = id.get_timestamp()?.to_unix();
    Some(secs as i64 * 1000 + (nanos / 1_000_000) as i64)
}

/// A raw batch of `project` as one record batch, or `None` if it cannot be
/// used: every row must carry the project its key names. A batch that breaks
/// that (a writer mixing projects, or no `project_id` text column) is left
/// for an operator, logged, by the compactor and the query snapshot alike, so
/// a query never counts rows the table will not hold.
pub fn project_rows(project: &str, key: &str, batches: &[RecordBatch]) -> Result<Option<RecordBatch>> {
    let Some(first) = batches.first() else { return Ok(None) };
    let batch = arrow::compute::concat_batches(&first.schema(), batches)?;
    let projects = batch.column_by_name("project_id").and_then(|c| c.as_string_opt::<i32>());
    match projects {
        Some(projects) if projects.iter().all(|p| p == Some(project)) => Ok(Some(batch)),
        _ => {
            tracing::error!(key, project, "raw batch holds rows of another project (or none); not read");
            Ok(None)
        }
    }
}

/// Reads a raw batch, checking its schema version.
pub async fn read(store: &Arc<dyn ObjectStore>, key: &str) -> Result<Vec<RecordBatch>> {
    let bytes = object_store::ObjectStoreExt::get(store.as_ref(), &Path::from(key)).await?.bytes().await?;
    let (_, batches) =
        contrail_edge::encode::read_ipc_file(&bytes).map_err(|source| Error::Raw { key: key.to_owned(), source })?;
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flush_time_is_read_back_from_the_key() {
        let key = contrail_edge::raw_key::batch_key("raw", "demo", "local", 1_795_435_200_123, "buf", 1);
        assert_eq!(flush_time(&key), Some(1_795_435_200_123));
        assert_eq!(flush_time("raw/region=x/date=y/notes.txt"), None);
    }
}
