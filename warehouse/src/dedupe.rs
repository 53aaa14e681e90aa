//! Exactly once: duplicates within a run, and against what the table holds.

use std::collections::{BTreeSet, HashSet};
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

/// Which rows to keep: the first copy of each id (rows in flush order,
/// oldest first), unless the table already holds that id in the row's date
/// partition or a neighbouring one (`days[i]` is row `i`'s day). The compactor
/// writes exactly these rows, and queries read raw rows through the same
/// filter, so what a query counts before compaction it counts after.
pub async fn keep_new(
    store: &Arc<dyn ObjectStore>,
    table_prefix: &str,
    table_files: &[TableFile],
    ids: &StringArray,
    days: &[i32],
) -> Result<BooleanArray> {
    let first = first_occurrences(ids);
    let mut probe_days = BTreeSet::new();
    for day in days {
        probe_days.extend([day - 1, *day, day + 1]);
    }
    let candidates: HashSet<&str> =
        ids.iter().zip(first.iter()).filter_map(|(id, keep)| if keep == Some(true) { id } else { None }).collect();
    let probe: Vec<TableFile> = table_files.iter().filter(|f| probe_days.contains(&f.date)).cloned().collect();
    let existing = existing_ids(store, table_prefix, &probe, &candidates).await?;
    Ok(ids
        .iter()
        .zip(first.iter())
        .map(|(id, first)| Some(first == Some(true) && id.is_some_and(|id| !existing.contains(id))))
        .collect())
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
