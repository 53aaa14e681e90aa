//! The buffer Durable Object, `buf:<project>:<region>:<shard>`, on SQLite
//! storage.
//!
//! A store call runs its SQL with no `await` in between, so the rate-limit
//! token, the dedupe ids and the buffered chunk of one request commit together,
//! and the runtime's output gate holds the answer until that commit is
//! durable: a `200` from the Worker means the events are on disk at the edge.
//!
//! Tables:
//! - `seen(event_id, at_ms)`: ids stored in the dedupe window (pruned by the alarm);
//! - `chunks(seq, kind, events, bytes, received_ms, body)`: buffered events
//!   (kind 0) and quarantined messages (kind 1), one row per request share,
//!   as a JSON array of the contract's objects, until flushed. One row per
//!   request rather than per event: a 1 KB row costs workerd's SQLite about
//!   50 µs of CPU, a 100 KB one little more (measured with bench/worker.sh);
//! - `buckets(key_hash, tokens, updated_ms)`: rate-limit buckets (a hash, never the key);
//! - `flush(next_seq, plan_upto, plan_at_ms)`: the flush sequence and the flush in progress;
//! - `meta(k, v)`: the object's own name (the runtime does not tell an object its name).

use std::cell::{Cell, RefCell};
use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use worker::{Date, DurableObject, Env, Request, Response, SqlStorage, SqlStorageValue, State, durable_object};

use super::error::Error;
use super::protocol::{StoreAnswer, StoreRequest};
use super::{configured, flush};
use crate::rate::{RateLimit, TokenBucket};
use crate::settings::BufferSettings;

/// Row kinds in `chunks`.
pub(crate) const KIND_EVENT: i64 = 0;
pub(crate) const KIND_REJECTED: i64 = 1;

const SCHEMA: [&str; 6] = [
    "CREATE TABLE IF NOT EXISTS seen (event_id TEXT PRIMARY KEY, at_ms INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS seen_at ON seen (at_ms)",
    "CREATE TABLE IF NOT EXISTS chunks (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind INTEGER NOT NULL, \
     events INTEGER NOT NULL, bytes INTEGER NOT NULL, received_ms INTEGER NOT NULL, body TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS buckets (key_hash TEXT PRIMARY KEY, tokens REAL NOT NULL, updated_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS flush (id INTEGER PRIMARY KEY CHECK (id = 0), next_seq INTEGER NOT NULL, \
     plan_upto INTEGER, plan_at_ms INTEGER)",
    "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)",
];

/// One project's buffer in one region and shard.
#[durable_object]
pub struct EventBuffer {
    state: State,
    env: Env,
    /// What is buffered, kept in memory once read (the object is single-threaded
    /// and the only writer of its storage); `None` until read or after a flush.
    pending: RefCell<Option<Pending>>,
    /// The alarm time this instance set, so that a store does not set it again.
    armed_ms: Cell<Option<i64>>,
    /// Whether this instance has recorded the object's name.
    named: Cell<bool>,
    /// Flushes failed in a row, for the retry backoff.
    failures: Cell<u32>,
}

impl DurableObject for EventBuffer {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        for statement in SCHEMA {
            if let Err(e) = sql.exec(statement, None) {
                worker::console_error!("buffer schema: {e}");
            }
        }
        Self {
            state,
            env,
            pending: RefCell::new(None),
            armed_ms: Cell::new(None),
            named: Cell::new(false),
            failures: Cell::new(0),
        }
    }

    async fn fetch(&self, mut request: Request) -> worker::Result<Response> {
        let outcome = async {
            // serde_json over the bytes: `Request::json` would build a JS
            // object graph and walk it field by field across the boundary.
            let body = request.bytes().await?;
            let store: StoreRequest<'_> = serde_json::from_slice(&body)?;
            let settings = &configured(&self.env)?.settings;
            let sql = self.state.storage().sql();
            if !self.named.get() {
                set_meta(&sql, "buffer", &store.buffer)?;
                self.named.set(true);
            }
            // What was buffered before this store (read before it writes).
            let mut pending = self.pending(&sql)?;
            let answer = store_request(&sql, &store, &settings.rate)?;
            if let Stored::Stored { added, .. } = &answer {
                pending.messages += added.messages;
                pending.bytes += added.bytes;
                if added.messages > 0 {
                    pending.oldest_ms = Some(pending.oldest_ms.map_or(store.now_ms, |t| t.min(store.now_ms)));
                }
                *self.pending.borrow_mut() = Some(pending);
                self.arm(&settings.buffer, store.now_ms).await?;
            }
            Ok::<StoreAnswer, Error>(answer.into())
        };
        match outcome.await {
            Ok(answer) => Response::from_json(&answer),
            Err(e) => Response::error(e.to_string(), 500),
        }
    }

    async fn alarm(&self) -> worker::Result<Response> {
        let now_ms = Date::now().as_millis() as i64;
        self.armed_ms.set(None); // this alarm is the one that was set
        let result = async {
            let settings = &configured(&self.env)?.settings;
            let flushed = flush::flush_due(&self.state, &self.env, &settings.buffer, now_ms).await;
            self.pending.replace(None); // re-read after any flush, even a failed one
            flushed?;
            prune(&self.state.storage().sql(), now_ms, &settings.buffer, &settings.rate)?;
            self.arm(&settings.buffer, now_ms).await
        };
        match result.await {
            Ok(()) => self.failures.set(0),
            Err(e) => {
                // Retry on our own schedule, backing off, rather than rely on
                // the runtime's few retries; the next ingest re-arms too. The
                // buffered events stay in storage whatever the error.
                let failures = self.failures.get().saturating_add(1);
                self.failures.set(failures);
                let delay_ms = retry_delay_ms(failures);
                worker::console_error!("flush failed ({failures} in a row), retrying in {delay_ms} ms: {e}");
                self.state.storage().set_alarm(delay_ms).await?;
                self.armed_ms.set(Some(Date::now().as_millis() as i64 + delay_ms));
            }
        }
        Response::ok("")
    }
}

impl EventBuffer {
    fn pending(&self, sql: &SqlStorage) -> Result<Pending, Error> {
        if let Some(pending) = *self.pending.borrow() {
            return Ok(pending);
        }
        let pending = pending(sql)?;
        self.pending.replace(Some(pending));
        Ok(pending)
    }

    /// Sets the alarm for the next flush: now when a threshold is reached,
    /// else when the oldest row is due; none when nothing is buffered. Called
    /// after every store and every alarm, because the runtime gives up on an
    /// alarm after a few failed retries; skipped when this instance already
    /// set one at or before that time.
    async fn arm(&self, settings: &BufferSettings, now_ms: i64) -> Result<(), Error> {
        let pending = self.pending(&self.state.storage().sql())?;
        let Some(oldest_ms) = pending.oldest_ms else {
            return Ok(());
        };
        let full = pending.messages as usize >= settings.flush_events || pending.bytes as usize >= settings.flush_bytes;
        let due_ms = if full { now_ms } else { (oldest_ms + settings.flush_interval_ms).max(now_ms) };
        if self.armed_ms.get().is_some_and(|armed| armed <= due_ms) {
            return Ok(());
        }
        let due = DateTime::<Utc>::from_timestamp_millis(due_ms).unwrap_or_default();
        self.state.storage().set_alarm(due).await?;
        self.armed_ms.set(Some(due_ms));
        Ok(())
    }
}

/// Delay before a failed flush is tried again: 1 s, doubling up to 5 min.
fn retry_delay_ms(failures: u32) -> i64 {
    (1_000i64 << failures.saturating_sub(1).min(9)).min(300_000)
}

/// What a store added to the buffer.
#[derive(Debug, Clone, Copy, Default)]
struct Added {
    messages: i64,
    bytes: i64,
}

/// A store's outcome inside the object.
enum Stored {
    Stored { duplicates: usize, added: Added },
    RateLimited { retry_after_secs: u64 },
}

impl From<Stored> for StoreAnswer {
    fn from(stored: Stored) -> Self {
        match stored {
            Stored::Stored { duplicates, .. } => StoreAnswer::Stored { duplicates },
            Stored::RateLimited { retry_after_secs } => StoreAnswer::RateLimited { retry_after_secs },
        }
    }
}

/// Rate limit, dedupe and buffer one request's share, atomically (no await).
/// Ids travel as one JSON array per statement (`json_each`) and events as one
/// chunk, so a request costs a handful of statements whatever its size, and
/// no statement nears the 100 bound parameters the runtime allows.
fn store_request(sql: &SqlStorage, request: &StoreRequest<'_>, rate: &RateLimit) -> Result<Stored, Error> {
    let now_ms = request.now_ms;
    let shards = f64::from(request.rate_shards.max(1));
    let share = RateLimit { per_sec: rate.per_sec / shards, burst: (rate.burst / shards).max(1.0) };
    if let Some(key) = &request.rate_key
        && let Err(retry_after_secs) = take_token(sql, key, &share, now_ms)?
    {
        return Ok(Stored::RateLimited { retry_after_secs });
    }
    let ids = &request.ids;
    let mut known: HashSet<String> = HashSet::new();
    if !ids.is_empty() {
        let query = "SELECT json_group_array(j.value) FROM json_each(?) AS j \
                     WHERE EXISTS (SELECT 1 FROM seen WHERE seen.event_id = j.value)";
        // Owned: SQLite escapes quotes and backslashes, which `&str` cannot borrow.
        let seen: Vec<String> = serde_json::from_str(&one_text(sql, query, vec![serde_json::to_string(ids)?.into()])?)?;
        known.extend(seen);
    }
    // The first copy of an id within the request is the one stored.
    let mut fresh: Vec<usize> = Vec::with_capacity(ids.len());
    for (index, id) in ids.iter().enumerate() {
        if known.insert(id.to_string()) {
            fresh.push(index);
        }
    }
    let duplicates = ids.len() - fresh.len();

    // Everything that can fail to parse or serialise is done before the first
    // write: a store that fails part-way must not leave ids marked as seen
    // without their events (the retry would call them duplicates).
    let mut chunks: Vec<(i64, usize, String)> = Vec::new();
    let events = request.events.get();
    if fresh.len() == ids.len() && !fresh.is_empty() && events.len() <= MAX_CHUNK_BYTES {
        chunks.push((KIND_EVENT, fresh.len(), events.to_owned()));
    } else if !fresh.is_empty() {
        let all: Vec<&RawValue> = serde_json::from_str(events)?;
        let kept: Vec<&RawValue> = fresh.iter().map(|&i| all[i]).collect();
        for part in split_by_size(&kept) {
            chunks.push((KIND_EVENT, part.len(), serde_json::to_string(part)?));
        }
    }
    if !request.rejected.is_empty() {
        chunks.push((KIND_REJECTED, request.rejected.len(), serde_json::to_string(&request.rejected)?));
    }
    let fresh_ids: Vec<&str> = fresh.iter().map(|&i| ids[i].as_ref()).collect();
    let fresh_ids = serde_json::to_string(&fresh_ids)?;

    // Chunks before ids: if the ids' insert failed after the chunks', a retry
    // would buffer the events twice (and the compactor drop the copy), never
    // lose them.
    let mut added = Added::default();
    for (kind, count, body) in &chunks {
        add_chunk(sql, *kind, *count, body, now_ms)?;
        added = Added { messages: added.messages + *count as i64, bytes: added.bytes + body.len() as i64 };
    }
    if !fresh.is_empty() {
        sql.exec(
            "INSERT INTO seen (event_id, at_ms) SELECT value, ? FROM json_each(?)",
            vec![now_ms.into(), fresh_ids.into()],
        )?;
    }
    Ok(Stored::Stored { duplicates, added })
}

/// Largest chunk body: Durable Object rows hold at most 2 MB.
const MAX_CHUNK_BYTES: usize = 1 << 20;

/// Consecutive runs of `items` whose JSON array stays under about
/// [`MAX_CHUNK_BYTES`]; a single larger item is a chunk of its own.
fn split_by_size<'a, 'b>(items: &'b [&'a RawValue]) -> Vec<&'b [&'a RawValue]> {
    let mut parts = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let len = item.get().len() + 1;
        if size + len > MAX_CHUNK_BYTES && i > start {
            parts.push(&items[start..i]);
            (start, size) = (i, 0);
        }
        size += len;
    }
    if start < items.len() {
        parts.push(&items[start..]);
    }
    parts
}

/// Appends one chunk: `count` objects in the JSON array `body`.
fn add_chunk(sql: &SqlStorage, kind: i64, count: usize, body: &str, now_ms: i64) -> Result<(), Error> {
    sql.exec(
        "INSERT INTO chunks (kind, events, bytes, received_ms, body) VALUES (?, ?, ?, ?, ?)",
        vec![kind.into(), (count as i64).into(), (body.len() as i64).into(), now_ms.into(), body.into()],
    )?;
    Ok(())
}

/// The one text value a query returns.
fn one_text(sql: &SqlStorage, query: &str, values: Vec<SqlStorageValue>) -> Result<String, Error> {
    match sql.exec(query, values)?.raw().next().transpose()?.and_then(|row| row.into_iter().next()) {
        Some(SqlStorageValue::String(text)) => Ok(text),
        other => Err(Error::Runtime(format!("{query}: expected one text value, got {other:?}"))),
    }
}

fn take_token(sql: &SqlStorage, key: &str, rate: &RateLimit, now_ms: i64) -> Result<Result<(), u64>, Error> {
    let key_hash = hex(&Sha256::digest(key.as_bytes())[..16]);
    #[derive(Deserialize)]
    struct Row {
        tokens: f64,
        updated_ms: i64,
    }
    let rows: Vec<Row> = sql
        .exec("SELECT tokens, updated_ms FROM buckets WHERE key_hash = ?", vec![key_hash.as_str().into()])?
        .to_array()?;
    let mut bucket = rows
        .first()
        .map(|r| TokenBucket { tokens: r.tokens, updated_ms: r.updated_ms })
        .unwrap_or_else(|| rate.full(now_ms));
    let taken = rate.take(&mut bucket, now_ms);
    sql.exec(
        "INSERT OR REPLACE INTO buckets (key_hash, tokens, updated_ms) VALUES (?, ?, ?)",
        vec![key_hash.into(), bucket.tokens.into(), bucket.updated_ms.into()],
    )?;
    Ok(taken)
}

/// What is buffered: events and quarantined messages, bytes, and when the oldest arrived.
#[derive(Debug, Clone, Copy, Deserialize)]
pub(crate) struct Pending {
    pub messages: i64,
    pub bytes: i64,
    pub oldest_ms: Option<i64>,
}

pub(crate) fn pending(sql: &SqlStorage) -> Result<Pending, Error> {
    let query = "SELECT coalesce(sum(events), 0) AS messages, coalesce(sum(bytes), 0) AS bytes, \
                 min(received_ms) AS oldest_ms FROM chunks";
    Ok(sql.exec(query, None)?.one()?)
}

/// Forgets ids older than the dedupe window and buckets that are full again.
fn prune(sql: &SqlStorage, now_ms: i64, settings: &BufferSettings, rate: &RateLimit) -> Result<(), Error> {
    sql.exec("DELETE FROM seen WHERE at_ms < ?", vec![(now_ms - settings.dedupe_ms).into()])?;
    let refill_ms = (rate.burst / rate.per_sec.max(f64::MIN_POSITIVE) * 1000.0).ceil().min(i64::MAX as f64) as i64;
    sql.exec("DELETE FROM buckets WHERE updated_ms < ?", vec![now_ms.saturating_sub(refill_ms).into()])?;
    Ok(())
}

pub(crate) fn meta(sql: &SqlStorage, key: &str) -> Result<Option<String>, Error> {
    #[derive(Deserialize)]
    struct Row {
        v: String,
    }
    let rows: Vec<Row> = sql.exec("SELECT v FROM meta WHERE k = ?", vec![key.into()])?.to_array()?;
    Ok(rows.into_iter().next().map(|r| r.v))
}

pub(crate) fn set_meta(sql: &SqlStorage, key: &str, value: &str) -> Result<(), Error> {
    sql.exec("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", vec![key.into(), value.into()])?;
    Ok(())
}

/// Lower-case hex of a digest.
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
