//! Test harness: each test gets its own location, a temporary directory or a
//! fresh bucket on a real S3-compatible server (moto, from the project's venv).

use std::collections::HashMap;

use arrow::array::{AsArray, RecordBatch};
use contrail_edge::{Event, MessageType};
use contrail_warehouse::location::{Location, S3Options};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
// `ParquetObjectReader` is deprecated in parquet 59 in favour of a hand-written
// `AsyncFileReader`; it still reads correctly, and replacing it is tracked in
// the warehouse notes.
#[allow(deprecated)]
use parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStreamBuilder};
use tempfile::TempDir;
use url::Url;

/// Which storage a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Local,
    S3,
}

pub const BACKENDS: [Backend; 2] = [Backend::Local, Backend::S3];

/// A test's location, removed (directory) or abandoned (bucket) on drop.
pub struct TestLocation {
    pub location: Location,
    _dir: Option<TempDir>,
    pub bucket: Option<String>,
}

pub fn s3_options() -> S3Options {
    S3Options {
        endpoint: Some(contrail_testkit::s3_endpoint().to_owned()),
        region: Some(contrail_testkit::S3_REGION.into()),
        access_key_id: Some(contrail_testkit::S3_ACCESS_KEY_ID.into()),
        secret_access_key: Some(contrail_testkit::S3_SECRET_ACCESS_KEY.into()),
        allow_http: true,
    }
}

impl TestLocation {
    pub fn new(backend: Backend) -> Self {
        match backend {
            Backend::Local => {
                let dir = tempfile::tempdir().unwrap();
                let location = Location::local(dir.path()).unwrap();
                Self { location, _dir: Some(dir), bucket: None }
            }
            Backend::S3 => {
                let bucket = contrail_testkit::new_bucket("t");
                let url = Url::parse(&format!("s3://{bucket}/warehouse")).unwrap();
                let location = Location::s3(&url, &s3_options()).unwrap();
                Self { location, _dir: None, bucket: Some(bucket) }
            }
        }
    }

    /// Writes events as one raw batch under their project's `raw/project=<p>/`
    /// (flush sequence `seq`, flushed at `at_ms`).
    pub async fn put_raw(&self, events: &[Event], at_ms: i64, seq: u64) -> String {
        let project = events.first().map_or("test", |e| e.project_id.as_str());
        let key = contrail_edge::raw_key::batch_key("raw", project, "test", at_ms, "buf:test", seq);
        let bytes = contrail_edge::encode::encode_events(events).unwrap();
        self.location.store.put(&Path::from(key.as_str()), bytes.into()).await.unwrap();
        key
    }

    pub async fn raw_keys(&self) -> Vec<String> {
        let metas: Vec<_> = self.location.store.list(Some(&Path::from("raw"))).try_collect().await.unwrap();
        metas.into_iter().map(|m| m.location.to_string()).collect()
    }

    /// The table's rows (read from the files of its latest snapshot), with
    /// each row's partition date.
    pub async fn table_rows(&self, project: &str) -> Vec<(RecordBatch, String)> {
        let Some(table) = contrail_warehouse::table::open(&self.location, project).await.unwrap() else {
            return vec![];
        };
        let actions = table.snapshot().unwrap().add_actions_table(true).unwrap();
        let paths = actions.column_by_name("path").unwrap().as_string::<i32>();
        let mut out = Vec::new();
        for i in 0..actions.num_rows() {
            let path = Path::from(format!("tables/{project}/{}", paths.value(i)));
            let date = paths.value(i).split('/').next().unwrap().trim_start_matches("date=").to_owned();
            #[allow(deprecated)]
            let reader = ParquetObjectReader::new(self.location.store.clone(), path);
            let stream = ParquetRecordBatchStreamBuilder::new(reader).await.unwrap().build().unwrap();
            let batches: Vec<RecordBatch> = stream.try_collect().await.unwrap();
            for batch in batches {
                out.push((batch, date.clone()));
            }
        }
        out
    }

    /// Every event id in the table with its count.
    pub async fn id_counts(&self, project: &str) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for (batch, _) in self.table_rows(project).await {
            for id in batch.column_by_name("event_id").unwrap().as_string::<i32>().iter().flatten() {
                *counts.entry(id.to_owned()).or_default() += 1;
            }
        }
        counts
    }
}

pub const DAY_MS: i64 = 86_400_000;
/// 2026-11-23T00:00:00Z.
pub const DAY0: i64 = 1_795_392_000_000;

/// A track event with `id` at `timestamp`.
pub fn event(project: &str, id: &str, timestamp: i64) -> Event {
    Event {
        event_id: id.into(),
        project_id: project.into(),
        kind: MessageType::Track,
        event: "Clicked".into(),
        user_id: Some(format!("user-{}", id.len() % 7)),
        anonymous_id: None,
        distinct_id: format!("user-{}", id.len() % 7),
        session_id: None,
        group_id: None,
        previous_id: None,
        timestamp,
        received_at: timestamp + 1000,
        properties: format!(r#"{{"id":"{id}"}}"#),
        traits: None,
        context: "{}".into(),
        url: Some("https://shop.test/".into()),
        referrer: None,
        user_agent: None,
        browser: None,
        os: None,
        device: None,
        country: None,
        region: None,
        city: None,
        colo: None,
        ip_hash: None,
    }
}

pub fn events(project: &str, ids: impl IntoIterator<Item = String>, timestamp: i64) -> Vec<Event> {
    ids.into_iter().map(|id| event(project, &id, timestamp)).collect()
}

pub fn compactor(t: &TestLocation) -> contrail_warehouse::Compactor {
    contrail_warehouse::Compactor::new(t.location.clone(), contrail_warehouse::CompactorConfig::default())
}
