//! Flushes buffered rows to the object store as raw Arrow IPC batches.
//!
//! Exactly-once across crashes, in three steps:
//! 1. **Plan** (one SQLite transaction): pick a project's oldest rows up to the
//!    size thresholds and record `flushes(flush_seq, last_seq, flushed_at, key)`.
//!    The key is derived from the buffer identity and `flush_seq`.
//! 2. **Write**: encode the planned rows (`seq ≤ last_seq` of that stream and
//!    project: later rows always get larger `seq`) and put the object
//!    create-only. `AlreadyExists` is accepted only if the object holds exactly
//!    these rows, i.e. it is our own earlier attempt.
//! 3. **Finish** (one transaction): delete the flushed rows, mark the flush done.
//!
//! A crash between 1 and 3 leaves the plan; on restart it is redone with the
//! same rows under the same key, so no row is lost and none lands in two objects.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use contrail_edge::encode::{decode_events, decode_rejected, encode_events, encode_rejected};
use contrail_edge::raw_key::{RAW_PREFIX, REJECTED_PREFIX, batch_key};
use contrail_edge::{Event, RejectedMessage};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::watch;

use crate::buffer::{Buffer, Stream};
use crate::clock::Clock;
use crate::config::BufferConfig;
use crate::error::{Error, Result};
use crate::telemetry;

/// A planned flush, as recorded in `flushes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlushPlan {
    /// Sequence number of the flush (part of its key).
    pub flush_seq: i64,
    /// Events or quarantined messages.
    pub stream: Stream,
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
    config: BufferConfig,
    region: String,
    identity: String,
}

impl Flusher {
    /// A flusher over its own connection to the buffer database.
    pub fn new(
        conn: Connection,
        store: Arc<dyn ObjectStore>,
        clock: Arc<dyn Clock>,
        buffer: Buffer,
        config: BufferConfig,
        region: String,
    ) -> Result<Self> {
        let identity = buffer.identity().to_owned();
        Ok(Self { conn: Arc::new(Mutex::new(conn)), store, clock, buffer, config, region, identity })
    }

    /// Runs until `shutdown` flips, flushing on the thresholds, then flushes
    /// everything left (best effort: whatever is not flushed stays durable in
    /// the buffer for the next start).
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        let interval = Duration::from_millis(self.config.flush_interval_ms.max(1));
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
        for plan in self.blocking(unfinished).await? {
            self.execute(&plan).await?;
            written += 1;
        }
        loop {
            let now = self.clock.now_ms();
            let config = self.config.clone();
            let (identity, region) = (self.identity.clone(), self.region.clone());
            let plan = self.buffer.write(move |conn| plan_next(conn, &config, now, all, &identity, &region)).await?;
            let Some(plan) = plan else { break };
            self.execute(&plan).await?;
            written += 1;
        }
        tracing::Span::current().record("flushes", written);
        Ok(written)
    }

    #[tracing::instrument(skip_all, fields(key = %plan.key, stream = plan.stream.name(), rows = tracing::field::Empty))]
    async fn execute(&self, plan: &FlushPlan) -> Result<()> {
        let started = Instant::now();
        let p = plan.clone();
        let rows: Vec<Vec<u8>> = self.blocking(move |conn| load_rows(conn, &p)).await?;
        tracing::Span::current().record("rows", rows.len());
        let (bytes, count) = match plan.stream {
            Stream::Events => {
                let events = rows.iter().map(|r| serde_json::from_slice::<Event>(r)).collect::<Result<Vec<_>, _>>();
                let events = events.map_err(|e| Error::Commit(format!("corrupt buffered event: {e}")))?;
                (encode_events(&events)?, events.len())
            }
            Stream::Rejected => {
                let rejected =
                    rows.iter().map(|r| serde_json::from_slice::<RejectedMessage>(r)).collect::<Result<Vec<_>, _>>();
                let rejected = rejected.map_err(|e| Error::Commit(format!("corrupt buffered message: {e}")))?;
                (encode_rejected(&rejected)?, rejected.len())
            }
        };
        let size = bytes.len();
        if count > 0 {
            self.put_create_only(plan, Bytes::from(bytes)).await?;
        }
        let p = plan.clone();
        self.buffer.write(move |conn| finish(conn, &p)).await?;
        if plan.stream == Stream::Events {
            self.buffer.flushed(count as u64);
        }
        telemetry::report_flush(plan.stream.name(), count, size, started.elapsed());
        Ok(())
    }

    async fn put_create_only(&self, plan: &FlushPlan, bytes: Bytes) -> Result<()> {
        let path = ObjectPath::from(plan.key.as_str());
        let options = PutOptions { mode: PutMode::Create, ..Default::default() };
        match self.store.put_opts(&path, PutPayload::from(bytes.clone()), options).await {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => {
                // Ours only if it holds exactly these rows: our previous attempt
                // (a crash after the put, or a retried put that had succeeded).
                let existing = self.store.get(&path).await?.bytes().await?;
                let same = match plan.stream {
                    Stream::Events => decode_events(&existing)? == decode_events(&bytes)?,
                    Stream::Rejected => decode_rejected(&existing)? == decode_rejected(&bytes)?,
                };
                if same {
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

    async fn prune_seen(&self) -> Result<usize> {
        let cutoff = self.clock.now_ms() - (self.config.dedupe_hours as i64) * 3_600_000;
        self.buffer.write(move |conn| Ok(conn.execute("DELETE FROM seen WHERE seen_at < ?1", [cutoff])?)).await
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

fn unfinished(conn: &mut Connection) -> Result<Vec<FlushPlan>> {
    let mut stmt = conn
        .prepare("SELECT flush_seq, stream, project, last_seq, key FROM flushes WHERE done = 0 ORDER BY flush_seq")?;
    let plans = stmt
        .query_map([], |r| {
            Ok(FlushPlan {
                flush_seq: r.get(0)?,
                stream: Stream::from_i64(r.get(1)?).unwrap_or(Stream::Events),
                project: r.get(2)?,
                last_seq: r.get(3)?,
                key: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(plans)
}

/// Plans the next due flush, if any: the group (stream, project) with the
/// oldest row among those over a threshold.
fn plan_next(
    conn: &mut Connection,
    config: &BufferConfig,
    now_ms: i64,
    all: bool,
    identity: &str,
    region: &str,
) -> Result<Option<FlushPlan>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let due_before = now_ms - config.flush_interval_ms as i64;
    let group: Option<(i64, String)> = tx
        .query_row(
            "SELECT stream, project FROM pending GROUP BY stream, project
             HAVING ?1 OR count(*) >= ?2 OR sum(bytes) >= ?3 OR min(received_at) <= ?4
             ORDER BY min(seq) LIMIT 1",
            params![all, config.flush_events as i64, config.flush_bytes as i64, due_before],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((stream, project)) = group else { return Ok(None) };
    let last_seq = {
        let mut stmt =
            tx.prepare("SELECT seq, bytes FROM pending WHERE stream = ?1 AND project = ?2 ORDER BY seq LIMIT ?3")?;
        let mut rows = stmt.query(params![stream, project, config.flush_events.max(1) as i64])?;
        let (mut last, mut bytes) = (0i64, 0i64);
        while let Some(row) = rows.next()? {
            let (seq, size): (i64, i64) = (row.get(0)?, row.get(1)?);
            if last != 0 && bytes + size > config.flush_bytes as i64 {
                break;
            }
            last = seq;
            bytes += size;
        }
        last
    };
    let stream = Stream::from_i64(stream).unwrap_or(Stream::Events);
    tx.execute(
        "INSERT INTO flushes(stream, project, last_seq, flushed_at, key) VALUES (?1, ?2, ?3, ?4, '')",
        params![stream.as_i64(), project, last_seq, now_ms],
    )?;
    let flush_seq = tx.last_insert_rowid();
    let prefix = match stream {
        Stream::Events => RAW_PREFIX,
        Stream::Rejected => REJECTED_PREFIX,
    };
    let key = batch_key(prefix, region, now_ms, identity, flush_seq as u64);
    tx.execute("UPDATE flushes SET key = ?1 WHERE flush_seq = ?2", params![key, flush_seq])?;
    tx.commit()?;
    Ok(Some(FlushPlan { flush_seq, stream, project, last_seq, key }))
}

fn load_rows(conn: &mut Connection, plan: &FlushPlan) -> Result<Vec<Vec<u8>>> {
    let mut stmt =
        conn.prepare_cached("SELECT row FROM pending WHERE stream = ?1 AND project = ?2 AND seq <= ?3 ORDER BY seq")?;
    let rows = stmt
        .query_map(params![plan.stream.as_i64(), plan.project, plan.last_seq], |r| r.get::<_, Vec<u8>>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Flush records kept after completion, for diagnosis.
const DONE_FLUSHES_KEPT: i64 = 1_000;

fn finish(conn: &mut Connection, plan: &FlushPlan) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute(
        "DELETE FROM pending WHERE stream = ?1 AND project = ?2 AND seq <= ?3",
        params![plan.stream.as_i64(), plan.project, plan.last_seq],
    )?;
    tx.execute("UPDATE flushes SET done = 1 WHERE flush_seq = ?1", [plan.flush_seq])?;
    tx.execute("DELETE FROM flushes WHERE done = 1 AND flush_seq <= ?1", [plan.flush_seq - DONE_FLUSHES_KEPT])?;
    tx.commit()?;
    Ok(())
}
