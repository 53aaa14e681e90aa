//! The durable local buffer: what a Durable Object is at the edge, `contrail
//! serve` does with SQLite.
//!
//! Guarantee: when [`Buffer::store`] returns `Ok`, the request's new events and
//! quarantined messages are in a committed, fsynced SQLite transaction (WAL,
//! `synchronous=FULL`), together with their dedupe entries. A `200` is sent only
//! after that.
//!
//! One writer thread owns the write connection and commits whatever requests
//! are waiting as one transaction (group commit): under load, many requests
//! share one fsync, which is what makes durable acknowledgements cheap.
//!
//! The schema and every SQL statement are in `db.rs`; [`open`] is the one way
//! in: it opens the writer's connection and the flusher's reader.

mod db;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use contrail_edge::settings::BufferSettings;
use contrail_edge::{Event, RejectedMessage};
use rusqlite::Connection;
use tokio::sync::{Notify, oneshot};

pub(crate) use self::db::{finish, load_rows, plan_next, prune_seen, unfinished};
use crate::error::{Error, Result};
use crate::flush::{FlushTarget, Flusher};
use crate::telemetry;

/// Opens the durable buffer at `path` (created on first use) and the flusher
/// that empties it into `target`'s store: the writer thread owns one
/// connection, the flusher reads through a second one (WAL readers never
/// block the writer) and writes through the writer thread.
pub fn open(path: &Path, settings: BufferSettings, target: FlushTarget) -> Result<(Buffer, Flusher)> {
    let buffer = Buffer::start(path, settings.flush_events)?;
    let flusher = Flusher::new(db::open_connection(path)?, buffer.clone(), settings, target);
    Ok((buffer, flusher))
}

/// Most events one group commit takes: bounds the latency one commit adds to
/// the requests queued behind it.
const MAX_GROUP_EVENTS: usize = 20_000;

/// One request's rows, serialised by the request task so the writer thread
/// only does SQLite work.
pub(crate) struct StoreJob {
    pub(crate) project: String,
    pub(crate) now_ms: i64,
    pub(crate) events: Vec<(String, i64, Vec<u8>)>,
    pub(crate) rejected: Vec<(i64, Vec<u8>)>,
    reply: oneshot::Sender<Result<usize>>,
}

/// Any other write: the flusher's plan/finish steps and dedupe pruning run on
/// the writer thread too. A second writing connection would contend for
/// SQLite's single write lock with back-to-back group commits and lose
/// (`SQLITE_BUSY`); one writer never waits.
pub(crate) type Maintenance = Box<dyn FnOnce(&mut Connection) + Send>;

enum Job {
    Store(StoreJob),
    Maintain(Maintenance),
}

impl Job {
    fn rows(&self) -> usize {
        match self {
            Self::Store(j) => j.events.len() + j.rejected.len(),
            Self::Maintain(_) => 0,
        }
    }
}

/// Handle to the writer thread. Cheap to clone.
#[derive(Clone)]
pub struct Buffer {
    tx: mpsc::Sender<Job>,
    pending: Arc<AtomicU64>,
    wake_flusher: Arc<Notify>,
    identity: Arc<str>,
}

impl Buffer {
    /// Starts the writer thread on `path`.
    fn start(path: &Path, flush_events: usize) -> Result<Self> {
        let mut conn = db::open_connection(path)?;
        let moved = db::migrate_legacy_plans(&mut conn)?;
        if moved > 0 {
            tracing::warn!(moved, "unfinished flushes planned under raw/region=… now go under raw/project=<p>/");
        }
        let identity: Arc<str> = db::identity(&conn)?.into();
        let pending = Arc::new(AtomicU64::new(db::pending_events(&conn)?));
        let wake_flusher = Arc::new(Notify::new());
        let (tx, rx) = mpsc::channel::<Job>();
        let buffer = Self { tx, pending: pending.clone(), wake_flusher: wake_flusher.clone(), identity };
        std::thread::Builder::new()
            .name("contrail-buffer-writer".into())
            .spawn(move || writer_loop(&mut conn, &rx, &pending, &wake_flusher, flush_events as u64))
            .map_err(Error::io("starting the buffer writer thread"))?;
        Ok(buffer)
    }

    /// Stores a request's events (deduplicated) and quarantined messages
    /// durably; returns how many events were duplicates.
    pub async fn store<'a>(
        &self,
        project: &str,
        now_ms: i64,
        events: impl IntoIterator<Item = &'a Event>,
        rejected: &[RejectedMessage],
    ) -> Result<usize> {
        let events = events
            .into_iter()
            .map(|e| {
                Ok((
                    e.event_id.clone(),
                    e.received_at,
                    serde_json::to_vec(e).map_err(|e| Error::Commit(e.to_string()))?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let rejected = rejected
            .iter()
            .map(|r| Ok((r.received_at, serde_json::to_vec(r).map_err(|e| Error::Commit(e.to_string()))?)))
            .collect::<Result<Vec<_>>>()?;
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job::Store(StoreJob { project: project.to_owned(), now_ms, events, rejected, reply }))
            .map_err(|_| Error::BufferClosed)?;
        answer.await.map_err(|_| Error::BufferClosed)?
    }

    /// Runs `f` on the writer thread, in order with the group commits.
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        let job: Maintenance = Box::new(move |conn| {
            let _ = reply.send(f(conn));
        });
        self.tx.send(Job::Maintain(job)).map_err(|_| Error::BufferClosed)?;
        answer.await.map_err(|_| Error::BufferClosed)?
    }

    /// Commits an empty group: proves the writer thread is alive and the
    /// database writable (readiness).
    pub async fn ping(&self) -> Result<()> {
        self.store("", 0, [], &[]).await.map(|_| ())
    }

    /// The buffer's identity (seeds raw batch keys).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Events waiting to be flushed.
    pub fn pending_events(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// Called by the flusher when it removed `n` flushed events.
    pub(crate) fn flushed(&self, n: u64) {
        self.pending.fetch_sub(n.min(self.pending.load(Ordering::Relaxed)), Ordering::Relaxed);
    }

    /// The flusher's wake-up.
    pub(crate) fn wake_handle(&self) -> Arc<Notify> {
        self.wake_flusher.clone()
    }
}

fn writer_loop(conn: &mut Connection, rx: &mpsc::Receiver<Job>, pending: &AtomicU64, wake: &Notify, flush_events: u64) {
    while let Ok(first) = rx.recv() {
        let mut size = first.rows();
        let mut jobs = vec![first];
        while size < MAX_GROUP_EVENTS {
            match rx.try_recv() {
                Ok(job) => {
                    size += job.rows();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let mut stores = Vec::with_capacity(jobs.len());
        let mut maintenance = Vec::new();
        for job in jobs {
            match job {
                Job::Store(s) => stores.push(s),
                Job::Maintain(m) => maintenance.push(m),
            }
        }
        if !stores.is_empty() {
            group_commit(conn, stores, size, pending, wake, flush_events);
        }
        // Flush steps touch only rows already committed, so running them after
        // the group is as correct as before it, and keeps acknowledgements first.
        for job in maintenance {
            job(conn);
        }
    }
}

fn group_commit(
    conn: &mut Connection,
    jobs: Vec<StoreJob>,
    rows: usize,
    pending: &AtomicU64,
    wake: &Notify,
    flush_events: u64,
) {
    let started = Instant::now();
    let _span = tracing::debug_span!("buffer_commit", requests = jobs.len(), rows).entered();
    match db::commit(conn, &jobs) {
        Ok(duplicates) => {
            let accepted: u64 = jobs.iter().zip(&duplicates).map(|(j, d)| (j.events.len() - d) as u64).sum();
            let now_pending = pending.fetch_add(accepted, Ordering::Relaxed) + accepted;
            telemetry::report_commit(jobs.len(), started.elapsed(), now_pending);
            if now_pending >= flush_events {
                wake.notify_one();
            }
            for (job, d) in jobs.into_iter().zip(duplicates) {
                let _ = job.reply.send(Ok(d));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "buffer commit failed; the group's requests get 503");
            let message = e.to_string();
            for job in jobs {
                let _ = job.reply.send(Err(Error::Commit(message.clone())));
            }
        }
    }
}
