//! Exactly once: duplicates within a run, and against what the table holds.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, StringArray};
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path;
use parquet::arrow::ProjectionMask;
// `ParquetObjectReader` is deprecated in parquet 59 in favour of a hand-written
// `AsyncFileReader`; it still reads correctly, and replacing it is tracked in
// the warehouse notes.
#[allow(deprecated)]
use parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStreamBuilder};

use crate::error::Result;
use crate::table::TableFile;

/// Marks the first occurrence of each id (rows are in raw-file order, oldest
/// flush first, so the first acknowledged copy wins).
pub fn first_occurrences(ids: &StringArray) -> BooleanArray {
    let mut seen = HashSet::with_capacity(ids.len());
    ids.iter().map(|id| Some(id.is_some_and(|id| seen.insert(id)))).collect()
}

/// Which of `candidates` the given table files already hold.
///
/// Each row group's bloom filter on `event_id` is probed first; only row
/// groups where some candidate may be present are read, and then only the
/// `event_id` column. A new day's compaction therefore reads little of the
/// days around it.
pub async fn existing_ids(
    store: &Arc<dyn ObjectStore>,
    table_prefix: &str,
    files: &[TableFile],
    candidates: &HashSet<&str>,
) -> Result<HashSet<String>> {
    let mut found = HashSet::new();
    if candidates.is_empty() {
        return Ok(found);
    }
    for file in files {
        let path = Path::from(format!("{table_prefix}{}", file.path));
        #[allow(deprecated)]
        let reader = ParquetObjectReader::new(store.clone(), path).with_file_size(file.size as u64);
        let mut builder = ParquetRecordBatchStreamBuilder::new(reader).await?;
        let Some(column) = builder.parquet_schema().columns().iter().position(|c| c.name() == "event_id") else {
            continue;
        };
        let mut row_groups = Vec::new();
        for rg in 0..builder.metadata().num_row_groups() {
            let maybe = match builder.get_row_group_column_bloom_filter(rg, column).await? {
                Some(filter) => candidates.iter().any(|id| filter.check(id)),
                // No filter (a file written by another engine): read it.
                None => true,
            };
            if maybe {
                row_groups.push(rg);
            }
        }
        if row_groups.is_empty() {
            continue;
        }
        let mask = ProjectionMask::leaves(builder.parquet_schema(), [column]);
        let mut stream = builder.with_projection(mask).with_row_groups(row_groups).build()?;
        while let Some(batch) = stream.try_next().await? {
            let ids = batch.column(0).as_string::<i32>();
            for id in ids.iter().flatten() {
                if candidates.contains(id) {
                    found.insert(id.to_owned());
                }
            }
        }
    }
    Ok(found)
}
