//! Exactly once: duplicates within a run, and against what the table holds.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use arrow::array::{Array, AsArray, BooleanArray, StringArray};
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::bloom_filter::Sbbf;
// `ParquetObjectReader` is deprecated in parquet 59 in favour of a hand-written
// `AsyncFileReader`; it still reads correctly, and replacing it is tracked in
// the warehouse notes.
#[allow(deprecated)]
use parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStreamBuilder};

use foldhash::{HashSet, HashSetExt};

use crate::error::Result;
use crate::lock;
use crate::table::TableFile;

/// Marks the first occurrence of each id (rows are in raw-file order, oldest
/// flush first, so the first acknowledged copy wins).
pub fn first_occurrences(ids: &StringArray) -> BooleanArray {
    let mut seen = HashSet::with_capacity(ids.len());
    ids.iter().map(|id| Some(id.is_some_and(|id| seen.insert(id)))).collect()
}

/// The footers and `event_id` bloom filters of table files, read once per
/// file: a table file never changes, and every compaction run (and every
/// query over raw batches) probes the same few days. Without it each run
/// re-read two or three objects per file of those days, so a day of small
/// files made every later run slower until `optimize` merged them.
///
/// Holds only the files of the latest probe per table (the days being
/// written), so memory stays at about 1.2 bytes per event of those days
/// (bloom filters at 1 % false positives).
#[derive(Default)]
pub struct ProbeCache {
    files: Mutex<HashMap<String, Arc<FileProbe>>>,
}

/// What a probe needs from one table file.
struct FileProbe {
    metadata: ArrowReaderMetadata,
    /// Leaf index of `event_id` (`None`: the file has no such column).
    column: Option<usize>,
    /// Per row group, its `event_id` bloom filter (`None`: the writer made
    /// none, e.g. another engine; the row group must be read).
    filters: Vec<Option<Sbbf>>,
}

impl ProbeCache {
    /// Which rows to keep: the first copy of each id (rows in flush order,
    /// oldest first), unless the table already holds that id in the row's
    /// date partition or a neighbouring one (`days[i]` is row `i`'s day).
    /// The compactor writes exactly these rows, and queries read raw rows
    /// through the same filter, so what a query counts before compaction it
    /// counts after.
    pub async fn keep_new(
        &self,
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
        let probe: Vec<&TableFile> = table_files.iter().filter(|f| probe_days.contains(&f.date)).collect();
        let existing = if probe.is_empty() {
            HashSet::new()
        } else {
            let candidates: HashSet<&str> = ids
                .iter()
                .zip(first.iter())
                .filter_map(|(id, keep)| if keep == Some(true) { id } else { None })
                .collect();
            self.existing_ids(store, table_prefix, &probe, &candidates).await?
        };
        let probed: HashSet<String> = probe.iter().map(|f| format!("{table_prefix}{}", f.path)).collect();
        lock(&self.files).retain(|path, _| !path.starts_with(table_prefix) || probed.contains(path));
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
    async fn existing_ids(
        &self,
        store: &Arc<dyn ObjectStore>,
        table_prefix: &str,
        files: &[&TableFile],
        candidates: &HashSet<&str>,
    ) -> Result<HashSet<String>> {
        let mut found = HashSet::new();
        if candidates.is_empty() {
            return Ok(found);
        }
        for file in files {
            let path = format!("{table_prefix}{}", file.path);
            let reader = || {
                #[allow(deprecated)]
                ParquetObjectReader::new(store.clone(), Path::from(path.as_str())).with_file_size(file.size as u64)
            };
            let cached = lock(&self.files).get(&path).cloned();
            let probe = match cached {
                Some(probe) => probe,
                None => {
                    let probe = Arc::new(FileProbe::read(reader()).await?);
                    lock(&self.files).insert(path.clone(), probe.clone());
                    probe
                }
            };
            let Some(column) = probe.column else { continue };
            let row_groups: Vec<usize> = probe
                .filters
                .iter()
                .enumerate()
                .filter(|(_, filter)| filter.as_ref().is_none_or(|f| candidates.iter().any(|id| f.check(id))))
                .map(|(rg, _)| rg)
                .collect();
            if row_groups.is_empty() {
                continue;
            }
            let builder = ParquetRecordBatchStreamBuilder::new_with_metadata(reader(), probe.metadata.clone());
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
}

impl FileProbe {
    /// Reads the footer and every row group's `event_id` bloom filter.
    async fn read<R: AsyncFileReader + Unpin + Send + 'static>(mut reader: R) -> Result<Self> {
        let metadata = ArrowReaderMetadata::load_async(&mut reader, ArrowReaderOptions::new()).await?;
        let column =
            metadata.metadata().file_metadata().schema_descr().columns().iter().position(|c| c.name() == "event_id");
        let mut filters = Vec::new();
        if let Some(column) = column {
            let mut builder = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, metadata.clone());
            for rg in 0..metadata.metadata().num_row_groups() {
                filters.push(builder.get_row_group_column_bloom_filter(rg, column).await?);
            }
        }
        Ok(Self { metadata, column, filters })
    }
}
