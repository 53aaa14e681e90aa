//! Flushes buffered rows to the object store as raw Arrow IPC batches.
//!
//! Exactly-once across crashes, in three steps:
//! 1. **Plan** (one SQLite transaction): pick a project's oldest rows up to the
//!    size thresholds and record `flushes(flush_seq, last_seq, flushed_at, key)`.
//!    The key is derived from the project, the buffer identity and `flush_seq`.
//! 2. **Write**: encode the planned rows (`seq ≤ last_seq` of that stream and
//!    project: later rows always get larger `seq`), with the SHA-256 of their
//!    stored bytes in the file's footer, and put the object create-only.
//!    `AlreadyExists` is accepted only if the existing object's footer carries
//!    that same digest, i.e. it is our own earlier attempt (the Worker's
//!    flusher decides this the same way).
//! 3. **Finish** (one transaction): delete the flushed rows, mark the flush done.
//!
//! A crash between 1 and 3 leaves the plan; on restart it is redone with the
//! same rows under the same key, so no row is lost and none lands in two objects.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use contrail_edge::encode::{
    FOOTER_READ_BYTES, SourceDigest, encode_flushed_events, encode_flushed_rejected, source_digest,
};
use contrail_edge::settings::BufferSettings;
use contrail_edge::{Event, RejectedMessage};
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use rusqlite::Connection;
use tokio::sync::watch;

use contrail_edge::raw_key::BatchKind;

use crate::buffer::{self, Buffer};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::telemetry;

/// Where flushes go: the object store, the region named in their keys, and
/// the clock that dates them.
#[derive(Clone)]
pub struct FlushTarget {
    /// The store raw batches are written to (`raw/…`, `rejected/…`).
    pub store: Arc<dyn ObjectStore>,
    /// Region name in raw batch keys.
    pub region: String,
    /// Now.
    pub clock: Arc<dyn Clock>,
}

/// A planned flush, as recorded in `flushes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlushPlan {
    /// Sequence number of the flush (part of its key).
    pub flush_seq: i64,
    /// Events or quarantined messages.
    pub kind: BatchKind,
    /// The project whose rows these are.
    pub project: String,
    /// Rows of (stream, project) with `seq ≤ last_seq` belong to this flush.
    pub last_seq: i64,
    /// The object key.
    pub key: String,
}

/// Everything the flusher needs. Its own connection only reads (a WAL reader
/// never blocks the writer); its writes go through the buffer's writer thread.
pub struct Flusher {
    conn: Arc<Mutex<Connection>>,
    store: Arc<dyn ObjectStore>,
    clock: Arc<dyn Clock>,
    buffer: Buffer,
    config: BufferSettings,
    region: String,
    identity: String,
}

impl Flusher {
    /// A flusher over its own connection to the buffer database (see [`buffer::open`]).
    pub(crate) fn new(conn: Connection, buffer: Buffer, config: BufferSettings, target: FlushTarget) -> Self {
        let identity = buffer.identity().to_owned();
        let FlushTarget { store, region, clock } = target;
        Self { conn: Arc::new(Mutex::new(conn)), store, clock, buffer, config, region, identity }
    }

    /// Runs until `shutdown` flips, flushing on the thresholds, then flushes
    /// everything left (best effort: whatever is not flushed stays durable in
    /// the buffer for the next start).
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        let interval = Duration::from_millis(self.config.flush_interval_ms.max(1) as u64);
        // Check several times per interval so an event waits at most ~1.25 intervals.
        let tick = (interval / 4).clamp(Duration::from_millis(10), Duration::from_millis(250));
        let wake = self.buffer.wake_handle();
        let mut last_prune = Instant::now();
        loop {
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(tick) => {}
                _ = shutdown.changed() => break,
            }
            if let Err(e) = self.flush_due(false).await {
                telemetry::report_flush_error();
                tracing::warn!(error = %e, "flush failed; will retry");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            if last_prune.elapsed() > Duration::from_secs(60) {
                last_prune = Instant::now();
                if let Err(e) = self.prune_seen().await {
                    tracing::warn!(error = %e, "pruning the dedupe window failed");
                }
            }
        }
        if let Err(e) = self.flush_due(true).await {
            tracing::warn!(error = %e, "final flush failed; rows stay in the buffer for the next start");
        }
    }

    /// Completes unfinished flushes, then flushes every group that is due (or
    /// every group, with `all`). Returns the number of flushes written.
    #[tracing::instrument(skip_all, fields(flushes = tracing::field::Empty))]
    pub async fn flush_due(&self, all: bool) -> Result<usize> {
        let mut written = 0;
        for plan in self.blocking(buffer::unfinished).await? {
            self.execute(&plan).await?;
            written += 1;
        }
        loop {
            let now = self.clock.now_ms();
            let config = self.config;
            let (identity, region) = (self.identity.clone(), self.region.clone());
            let plan =
                self.buffer.write(move |conn| buffer::plan_next(conn, &config, now, all, &identity, &region)).await?;
            let Some(plan) = plan else { break };
            self.execute(&plan).await?;
            written += 1;
        }
        tracing::Span::current().record("flushes", written);
        Ok(written)
    }

    #[tracing::instrument(skip_all, fields(key = %plan.key, stream = telemetry::stream_label(plan.kind), rows = tracing::field::Empty))]
    async fn execute(&self, plan: &FlushPlan) -> Result<()> {
        let started = Instant::now();
        let p = plan.clone();
        // Reading, hashing and encoding up to `flush_bytes` of rows is CPU
        // work: it runs on the blocking pool, not on the runtime serving requests.
        let (bytes, count, source) = self.blocking(move |conn| encode_plan(conn, &p)).await?;
        tracing::Span::current().record("rows", count);
        let size = bytes.len();
        if count > 0 {
            self.put_create_only(plan, Bytes::from(bytes), &source).await?;
        }
        let p = plan.clone();
        self.buffer.write(move |conn| buffer::finish(conn, &p)).await?;
        if plan.kind == BatchKind::Events {
            self.buffer.flushed(count as u64);
        }
        telemetry::report_flush(plan.kind, count, size, started.elapsed());
        Ok(())
    }

    async fn put_create_only(&self, plan: &FlushPlan, bytes: Bytes, source: &str) -> Result<()> {
        let path = ObjectPath::from(plan.key.as_str());
        let options = PutOptions { mode: PutMode::Create, ..Default::default() };
        match self.store.put_opts(&path, PutPayload::from(bytes), options).await {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => {
                // Ours only if it was encoded from exactly these buffered rows:
                // our previous attempt (a crash after the put, or a retried put
                // that had succeeded), decided as the Worker decides it.
                if self.existing_source(&path).await?.as_deref() == Some(source) {
                    tracing::info!(key = %plan.key, "raw batch already written by an earlier attempt");
                    Ok(())
                } else {
                    Err(Error::Commit(format!(
                        "{} exists with different content; refusing to overwrite (two buffers share an identity?)",
                        plan.key
                    )))
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The source digest in the footer of the object at `path`: its tail is
    /// read first, the whole object only if the footer is longer.
    async fn existing_source(&self, path: &ObjectPath) -> Result<Option<String>> {
        let tail = GetOptions { range: Some(GetRange::Suffix(FOOTER_READ_BYTES)), ..Default::default() };
        let bytes = self.store.get_opts(path, tail).await?.bytes().await?;
        if let Some(source) = source_digest(&bytes) {
            return Ok(Some(source));
        }
        Ok(source_digest(&self.store.get(path).await?.bytes().await?))
    }

    /// Forgets event ids older than the dedupe window; returns how many.
    pub async fn prune_seen(&self) -> Result<usize> {
        let cutoff = self.clock.now_ms() - self.config.dedupe_ms;
        self.buffer.write(move |conn| buffer::prune_seen(conn, cutoff)).await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| Error::Commit(format!("flush task failed: {e}")))?
    }
}

/// A plan's rows, encoded as the raw batch they become, with their count and
/// the digest of their stored bytes (in the batch's footer).
fn encode_plan(conn: &mut Connection, plan: &FlushPlan) -> Result<(Vec<u8>, usize, String)> {
    let rows = buffer::load_rows(conn, plan)?;
    let mut source = SourceDigest::default();
    for row in &rows {
        source.add(row);
    }
    let source = source.finish();
    let encoded = match plan.kind {
        BatchKind::Events => {
            let events = rows.iter().map(|r| serde_json::from_slice::<Event>(r)).collect::<Result<Vec<_>, _>>();
            let events = events.map_err(|e| Error::Commit(format!("corrupt buffered event: {e}")))?;
            encode_flushed_events(&events, &source)?
        }
        BatchKind::Rejected => {
            let rejected =
                rows.iter().map(|r| serde_json::from_slice::<RejectedMessage>(r)).collect::<Result<Vec<_>, _>>();
            let rejected = rejected.map_err(|e| Error::Commit(format!("corrupt buffered message: {e}")))?;
            encode_flushed_rejected(&rejected, &source)?
        }
    };
    Ok((encoded, rows.len(), source))
}
