//! Table files: raw rows to sorted, ZSTD-compressed Parquet with statistics,
//! page indexes and a bloom filter on `event_id`.

use std::collections::HashMap;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::compute::{cast, interleave_record_batch};
use arrow::datatypes::TimestampMicrosecondType;
use arrow::error::ArrowError;
use chrono::{DateTime, NaiveDate, Utc};
use deltalake::kernel::Add;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use serde_json::json;

use crate::error::Result;
use crate::table::{PARTITION_COLUMN, SORT_ORDER, file_schema};

/// How table files are laid out.
#[derive(Debug, Clone)]
pub struct FileLayout {
    /// Rows per Parquet file (a partition with more rows gets several files).
    pub rows_per_file: usize,
    /// Rows per row group: the unit of pruning and of the dedupe probe.
    pub row_group_rows: usize,
    /// ZSTD level.
    pub zstd_level: i32,
}

impl Default for FileLayout {
    fn default() -> Self {
        // Measured with bench/query.sh (5 M events, 2 cores, 1 Mi-row files):
        // 512 Ki-row groups scanned 10–35 % faster than 128 Ki (group-bys,
        // one-day range, distinct users) and wrote 10 % less Parquet, with
        // user timelines as fast (page indexes do the fine-grained work);
        // 1 Mi-row groups were a little faster still but leave one group per
        // file, so a file can no longer be split across threads.
        Self { rows_per_file: 1 << 20, row_group_rows: 512 << 10, zstd_level: 3 }
    }
}

/// Casts raw rows to the table's file schema (dictionaries decoded,
/// timestamps to microseconds).
pub fn to_file_batch(raw: &RecordBatch) -> Result<RecordBatch> {
    let schema = file_schema();
    let columns = schema
        .fields()
        .iter()
        .map(|field| {
            let column = raw.column_by_name(field.name()).ok_or_else(|| {
                arrow::error::ArrowError::SchemaError(format!("raw batch has no column {}", field.name()))
            })?;
            Ok(cast(column, field.data_type())?)
        })
        .collect::<Result<Vec<ArrayRef>>>()?;
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// A row of one of several batches: (batch index, row index), the form
/// `interleave` gathers from. The compactor sorts these references and copies
/// each row once, straight into the file being written, instead of copying
/// whole columns at every step (concatenate, filter, split by day, sort).
pub type RowRef = (usize, usize);

/// Rows gathered and handed to the Parquet writer at a time: small enough
/// that the allocator reuses the buffers (large ones are fresh pages the
/// kernel must zero, which cost more than the copy itself).
const GATHER_ROWS: usize = 16 << 10;

/// Sorts row references into table order, [`SORT_ORDER`]: (`distinct_id`,
/// `timestamp`, `event_id`). A user's events are contiguous, so per-user
/// queries (timelines, funnels) read few pages and the columns compress well.
/// `batches` have the file schema.
pub fn sort_rows(batches: &[RecordBatch], rows: &mut [RowRef]) -> Result<()> {
    struct Keys<'a> {
        user: &'a StringArray,
        time: &'a [i64],
        id: &'a StringArray,
    }
    let keys = batches
        .iter()
        .map(|b| {
            let column = |name: &str| {
                b.column_by_name(name).ok_or_else(|| ArrowError::SchemaError(format!("table rows have no {name}")))
            };
            Ok(Keys {
                user: column("distinct_id")?.as_string_opt::<i32>().ok_or_else(|| type_error("distinct_id"))?,
                time: column("timestamp")?
                    .as_primitive_opt::<TimestampMicrosecondType>()
                    .ok_or_else(|| type_error("timestamp"))?
                    .values(),
                id: column("event_id")?.as_string_opt::<i32>().ok_or_else(|| type_error("event_id"))?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    // The three columns are non-nullable in the event schema.
    //
    // Users are ranked first (each distinct id hashed once, the distinct ids
    // sorted), so the sort compares two integers held in the element and
    // only looks at the rows' strings to break a tie on user and time:
    // comparing strings scattered over a run's batches made the sort cache
    // misses all the way down.
    #[derive(Clone, Copy)]
    struct Sortable {
        time: i64,
        /// The user's first-seen number, then its rank.
        user: u32,
        batch: u32,
        row: u32,
    }
    let mut first_seen: foldhash::HashMap<&str, u32> = foldhash::HashMapExt::with_capacity(rows.len() / 4);
    let mut sortable: Vec<Sortable> = rows
        .iter()
        .map(|&(b, r)| {
            let next = first_seen.len() as u32;
            let user = *first_seen.entry(keys[b].user.value(r)).or_insert(next);
            Sortable { time: keys[b].time[r], user, batch: b as u32, row: r as u32 }
        })
        .collect();
    let mut users: Vec<(&str, u32)> = first_seen.into_iter().collect();
    users.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut rank = vec![0u32; users.len()];
    for (position, (_, user)) in users.iter().enumerate() {
        rank[*user as usize] = position as u32;
    }
    for s in &mut sortable {
        s.user = rank[s.user as usize];
    }
    sortable.sort_unstable_by(|a, b| {
        (a.user, a.time).cmp(&(b.user, b.time)).then_with(|| {
            keys[a.batch as usize].id.value(a.row as usize).cmp(keys[b.batch as usize].id.value(b.row as usize))
        })
    });
    for (slot, s) in rows.iter_mut().zip(sortable) {
        *slot = (s.batch as usize, s.row as usize);
    }
    Ok(())
}

fn type_error(column: &str) -> crate::error::Error {
    ArrowError::SchemaError(format!("table column {column} has an unexpected type")).into()
}

/// One encoded table file and what its Delta `add` action records.
#[derive(Debug)]
pub struct EncodedFile {
    /// The Parquet bytes.
    pub bytes: Vec<u8>,
    /// Rows in the file.
    pub rows: usize,
    timestamp: TimeRange,
    received_at: TimeRange,
}

/// Minimum, maximum and null count of a timestamp column (µs).
#[derive(Debug, Clone, Copy)]
struct TimeRange {
    min: Option<i64>,
    max: Option<i64>,
    nulls: usize,
}

impl TimeRange {
    const EMPTY: Self = Self { min: None, max: None, nulls: 0 };

    fn add(&mut self, column: &ArrayRef) {
        let values = column.as_primitive::<TimestampMicrosecondType>();
        let (min, max) = (arrow::compute::min(values), arrow::compute::max(values));
        self.min = self.min.into_iter().chain(min).min();
        self.max = self.max.into_iter().chain(max).max();
        self.nulls += column.null_count();
    }
}

/// Encodes the referenced rows, in the given order, as one Parquet file.
/// `batches` have the file schema.
pub fn encode_rows(batches: &[RecordBatch], rows: &[RowRef], layout: &FileLayout) -> Result<EncodedFile> {
    let schema = batches.first().map(RecordBatch::schema).unwrap_or_else(file_schema);
    let index = |name: &str| schema.index_of(name).map(|i| i as i32);
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(layout.zstd_level)?))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(layout.row_group_rows))
        .set_column_bloom_filter_enabled("event_id".into(), true)
        .set_column_bloom_filter_fpp("event_id".into(), 0.01)
        .set_column_bloom_filter_max_ndv("event_id".into(), rows.len().min(layout.row_group_rows).max(1) as u64)
        .set_sorting_columns(Some(
            SORT_ORDER
                .iter()
                .map(|name| Ok(SortingColumn { column_idx: index(name)?, descending: false, nulls_first: false }))
                .collect::<Result<Vec<_>>>()?,
        ))
        .build();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema.clone(), Some(properties))?;
    let sources: Vec<&RecordBatch> = batches.iter().collect();
    let (mut timestamp, mut received_at) = (TimeRange::EMPTY, TimeRange::EMPTY);
    for chunk in rows.chunks(GATHER_ROWS) {
        let gathered = interleave_record_batch(&sources, chunk)?;
        timestamp.add(gathered.column(index("timestamp")? as usize));
        received_at.add(gathered.column(index("received_at")? as usize));
        writer.write(&gathered)?;
    }
    writer.close()?;
    Ok(EncodedFile { bytes: out, rows: rows.len(), timestamp, received_at })
}

/// `YYYY-MM-DD` of a day number.
pub fn date_string(days: i32) -> String {
    (NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + chrono::Days::new(days.max(0) as u64))
        .format("%Y-%m-%d")
        .to_string()
}

/// The Delta `add` action for a written file, with the statistics Delta
/// readers use to skip files (row count; `timestamp` and `received_at` ranges).
pub fn add_action(path: String, days: i32, file: &EncodedFile, now_ms: i64) -> Add {
    let iso = |micros: i64| {
        DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    };
    // Delta statistics are in milliseconds: the maximum is rounded up.
    let range = |r: &TimeRange| (iso(r.min.unwrap_or(0)), iso(r.max.unwrap_or(0) + 999), r.nulls);
    let (ts_min, ts_max, ts_nulls) = range(&file.timestamp);
    let (rx_min, rx_max, rx_nulls) = range(&file.received_at);
    let stats = json!({
        "numRecords": file.rows,
        "minValues": {"timestamp": ts_min, "received_at": rx_min},
        "maxValues": {"timestamp": ts_max, "received_at": rx_max},
        "nullCount": {"timestamp": ts_nulls, "received_at": rx_nulls},
    });
    Add {
        path,
        partition_values: HashMap::from([(PARTITION_COLUMN.to_owned(), Some(date_string(days)))]),
        size: file.bytes.len() as i64,
        modification_time: now_ms,
        data_change: true,
        stats: Some(stats.to_string()),
        tags: None,
        deletion_vector: None,
        base_row_id: None,
        default_row_commit_version: None,
        clustering_provider: None,
    }
}

/// Day numbers (UTC) of a batch's `timestamp` column (raw, in milliseconds).
pub fn days_of(raw_timestamps: &ArrayRef) -> Vec<i32> {
    let ts = raw_timestamps.as_primitive::<arrow::datatypes::TimestampMillisecondType>();
    ts.values().iter().map(|ms| ms.div_euclid(86_400_000) as i32).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::TimestampMicrosecondArray;
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    use super::*;

    /// Three batches of rows with many ties on user and on (user, time):
    /// `sort_rows` must give the order of a plain sort of the key tuples.
    #[test]
    fn rows_sort_by_user_then_time_then_event_id_across_batches() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("distinct_id", DataType::Utf8, false),
            Field::new("timestamp", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
            Field::new("event_id", DataType::Utf8, false),
        ]));
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut expected = Vec::new();
        let batches: Vec<RecordBatch> = (0..3)
            .map(|b| {
                let rows: Vec<(String, i64, String)> = (0..400)
                    .map(|r| {
                        (format!("user-{}", next() % 17), (next() % 5) as i64, format!("e{}-{b}-{r}", next() % 1000))
                    })
                    .collect();
                expected.extend(rows.iter().cloned());
                RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0.as_str()))),
                        Arc::new(
                            TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.1)).with_timezone("UTC"),
                        ),
                        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2.as_str()))),
                    ],
                )
                .unwrap()
            })
            .collect();
        let mut rows: Vec<RowRef> = (0..3).flat_map(|b| (0..400).map(move |r| (b, r))).collect();
        sort_rows(&batches, &mut rows).unwrap();
        expected.sort();
        let got: Vec<(String, i64, String)> = rows
            .iter()
            .map(|&(b, r)| {
                let column = |i: usize| batches[b].column(i).clone();
                (
                    column(0).as_string::<i32>().value(r).to_owned(),
                    column(1).as_primitive::<TimestampMicrosecondType>().value(r),
                    column(2).as_string::<i32>().value(r).to_owned(),
                )
            })
            .collect();
        assert_eq!(got, expected);
    }
}
