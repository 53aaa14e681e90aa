//! Shared test harness: a whole `serve` stack in a temporary directory, driven
//! through the router with `oneshot` (no socket), cleaned up on drop.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode};
use contrail::config::Config;
use contrail::router;
use contrail::serve::Stack;
use contrail_edge::encode::{decode_events, decode_rejected};
use contrail_edge::{Event, KeyKind, ProjectId, RejectedMessage};
use contrail_ingest::{Clock, SystemClock};
use futures::TryStreamExt;
use http_body_util::BodyExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::Value;
use tempfile::TempDir;
use tower::ServiceExt;

/// The secret every test stack uses.
pub const SECRET: &str = "golden-secret-0123456789abcdef";

/// A `serve` stack on a temporary data directory.
pub struct TestStack {
    /// Keeps the data directory alive for the stack's lifetime.
    pub _dir: TempDir,
    pub stack: Stack,
    pub router: Router,
}

impl TestStack {
    /// A stack with the system clock and default settings.
    pub fn new() -> Self {
        Self::with(Arc::new(SystemClock), |_| {})
    }

    /// A stack with `clock`, after `configure` adjusts the configuration.
    pub fn with(clock: Arc<dyn Clock>, configure: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::default();
        config.server.data = dir.path().to_path_buf();
        config.keys.secrets = vec![SECRET.into()];
        configure(&mut config);
        let stack = Stack::open(&config, clock).expect("stack opens");
        let router = router::serve(&stack);
        Self { _dir: dir, stack, router }
    }

    /// A key minted under [`SECRET`].
    pub fn key(&self, kind: KeyKind, project: &str) -> String {
        self.stack.keyring().mint(kind, &ProjectId::parse(project).unwrap())
    }

    /// The demo project's write key.
    pub fn write_key(&self) -> String {
        self.key(KeyKind::Write, "demo")
    }

    /// Sends a request; returns status, headers and the JSON body (Null if not JSON).
    pub async fn send(&self, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let response = self.router.clone().oneshot(request).await.expect("router is infallible");
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (parts.status, parts.headers, json)
    }

    /// POSTs `body` to `path` with `headers`.
    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: impl Into<Body>) -> (StatusCode, Value) {
        let mut builder = Request::post(path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let mut request = builder.body(body.into()).unwrap();
        request.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        let (status, _, json) = self.send(request).await;
        (status, json)
    }

    /// POSTs JSON with the demo write key in `X-Write-Key`.
    pub async fn post_json(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let key = self.write_key();
        self.post(path, &[("x-write-key", &key), ("content-type", "application/json")], body.to_string()).await
    }

    /// GETs `path` with `headers`.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Value) {
        let mut builder = Request::get(path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        self.send(builder.body(Body::empty()).unwrap()).await
    }

    /// The project's query key.
    pub fn query_key(&self, project: &str) -> String {
        self.key(KeyKind::Query, project)
    }

    /// Runs `sql` with `key` as the Bearer token; status and JSON answer.
    pub async fn sql_as(&self, key: &str, sql: &str) -> (StatusCode, Value) {
        let auth = format!("Bearer {key}");
        let body = serde_json::json!({ "sql": sql }).to_string();
        self.post("/v1/sql", &[("authorization", &auth), ("content-type", "application/json")], body).await
    }

    /// Runs `sql` over the demo project and returns its rows (panics unless 200).
    pub async fn rows(&self, sql: &str) -> Vec<Value> {
        let (status, answer) = self.sql_as(&self.query_key("demo"), sql).await;
        assert_eq!(status, StatusCode::OK, "{sql}: {answer}");
        answer["rows"].as_array().cloned().unwrap_or_default()
    }

    /// One integer from `sql` (first column of the first row).
    pub async fn number(&self, sql: &str) -> i64 {
        let rows = self.rows(sql).await;
        let row = rows.first().and_then(Value::as_object).unwrap_or_else(|| panic!("{sql}: no row"));
        row.values().next().and_then(Value::as_i64).unwrap_or_else(|| panic!("{sql}: not a number: {row:?}"))
    }

    /// The compactor over this stack's store, keeping consumed raw batches for `grace`.
    pub fn compactor(&self, grace: std::time::Duration) -> contrail_warehouse::Compactor {
        let location = contrail_warehouse::Location::local(&self.stack.data.join(contrail::serve::STORE_DIR)).unwrap();
        let config = contrail_warehouse::CompactorConfig { grace, ..Default::default() };
        contrail_warehouse::Compactor::new(location, config)
    }

    /// One compaction until caught up (raw batches kept for 10 minutes).
    pub async fn compact(&self) -> contrail_warehouse::RunReport {
        self.compactor(std::time::Duration::from_secs(600)).run_until_caught_up().await.expect("compaction succeeds")
    }

    /// Flushes everything buffered to raw batches.
    pub async fn flush(&self) {
        self.stack.flusher.flush_due(true).await.expect("flush succeeds");
    }

    /// Every raw event file with its events, sorted by key.
    pub async fn raw_files(&self) -> Vec<(String, Vec<Event>)> {
        raw_files(self.stack.store().as_ref()).await
    }

    /// Every raw event, in key order.
    pub async fn raw_events(&self) -> Vec<Event> {
        self.raw_files().await.into_iter().flat_map(|(_, events)| events).collect()
    }

    /// Every quarantined message.
    pub async fn quarantined(&self) -> Vec<RejectedMessage> {
        let mut out = Vec::new();
        for (_, bytes) in objects(self.stack.store().as_ref(), "rejected").await {
            out.extend(decode_rejected(&bytes).expect("quarantine batch decodes"));
        }
        out
    }
}

/// Every object under `prefix` with its bytes, sorted by key.
pub async fn objects(store: &dyn ObjectStore, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let prefix = ObjectPath::from(prefix);
    let metas: Vec<_> = store.list(Some(&prefix)).try_collect().await.expect("list");
    let mut out = Vec::new();
    for meta in metas {
        let bytes = store.get(&meta.location).await.expect("get").bytes().await.expect("read");
        out.push((meta.location.to_string(), bytes.to_vec()));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every raw event file of `store` with its decoded events, sorted by key.
pub async fn raw_files(store: &dyn ObjectStore) -> Vec<(String, Vec<Event>)> {
    objects(store, "raw")
        .await
        .into_iter()
        .map(|(key, bytes)| {
            let events = decode_events(&bytes).unwrap_or_else(|e| panic!("{key} does not decode: {e}"));
            (key, events)
        })
        .collect()
}
