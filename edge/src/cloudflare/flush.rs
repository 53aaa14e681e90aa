//! The alarm's flush: buffered chunks to R2 as raw Arrow batches, exactly once.
//!
//! 1. **Plan**: the next flush sequence number, the last chunk it covers and its
//!    time are stored before anything is written, so a retry (the alarm is
//!    at-least-once, and may die mid-flush) redoes the very same flush.
//! 2. **Put** the batch under `raw/project=…/region=…/date=…/<uuidv7>.arrow`, whose id
//!    derives from the object's name and the flush sequence, create-only, with
//!    the SHA-256 of its chunks in the file's footer (`encode::SourceDigest`).
//!    If the key exists, an earlier attempt of this flush wrote it: accepted
//!    only if its footer carries the digest of exactly these chunks, as
//!    `contrail serve`'s flusher decides it. (Reading a footer keeps the
//!    Arrow array decoders out of the module, and survives an encoder change
//!    between attempts.)
//! 3. **Finish**: delete the chunks and advance the sequence, in one commit.
//!
//! A flush takes whole chunks, oldest first, up to `flush_events` events and
//! `flush_bytes` bytes, and at least one chunk (a chunk is never split).

use serde::Deserialize;
use worker::{Bucket, Conditional, Env, Range, SqlStorage, State};

use super::binding;
use super::buffer::{KIND_EVENT, KIND_REJECTED, meta, pending, set_meta};
use super::error::Error;
use crate::encode::{FOOTER_READ_BYTES, SourceDigest, encode_flushed_events, encode_flushed_rejected, source_digest};
use crate::event::{Event, RejectedMessage};
use crate::raw_key::{BatchKind, batch_key};
use crate::settings::BufferSettings;
use crate::shard::BufferName;

/// Flushes per alarm at most; the alarm re-arms for the rest.
const MAX_FLUSHES_PER_ALARM: usize = 8;

/// The `flush` row: the next sequence number and the flush in progress, if any.
#[derive(Debug, Clone, Copy, Deserialize)]
struct FlushRow {
    next_seq: i64,
    plan_upto: Option<i64>,
    plan_at_ms: Option<i64>,
}

/// A flush in progress: sequence number, last chunk covered, flush time.
#[derive(Debug, Clone, Copy)]
struct Plan {
    seq: i64,
    upto: i64,
    at_ms: i64,
}

impl FlushRow {
    fn plan(self) -> Option<Plan> {
        Some(Plan { seq: self.next_seq, upto: self.plan_upto?, at_ms: self.plan_at_ms? })
    }
}

/// Flushes while something is due: a threshold reached or rows older than the interval.
pub(crate) async fn flush_due(state: &State, env: &Env, settings: &BufferSettings, now_ms: i64) -> Result<(), Error> {
    let sql = state.storage().sql();
    let Some(name) = meta(&sql, "buffer")? else {
        return Ok(()); // never stored anything
    };
    let name = BufferName::parse(&name).ok_or_else(|| Error::Runtime(format!("bad buffer name {name:?}")))?;
    let bucket = env.bucket(binding::RAW)?;
    for _ in 0..MAX_FLUSHES_PER_ALARM {
        let in_progress = flush_row(&sql)?.and_then(FlushRow::plan);
        let plan = match in_progress {
            Some(plan) => plan,
            None => {
                let pending = pending(&sql)?;
                let due = pending.oldest_ms.is_some_and(|t| t + settings.flush_interval_ms <= now_ms)
                    || pending.messages as usize >= settings.flush_events
                    || pending.bytes as usize >= settings.flush_bytes;
                if !due {
                    break;
                }
                match new_plan(&sql, settings, now_ms)? {
                    Some(plan) => plan,
                    None => break,
                }
            }
        };
        write(&sql, &bucket, &name, &plan, env).await?;
        finish(&sql, &plan)?;
    }
    Ok(())
}

fn flush_row(sql: &SqlStorage) -> Result<Option<FlushRow>, Error> {
    let rows: Vec<FlushRow> =
        sql.exec("SELECT next_seq, plan_upto, plan_at_ms FROM flush WHERE id = 0", None)?.to_array()?;
    Ok(rows.into_iter().next())
}

/// Records the flush of the oldest chunks holding up to `flush_events` events
/// and `flush_bytes` bytes (at least one chunk), or `None` if nothing is
/// buffered. The byte bound keeps a flush within the object's memory whatever
/// the events' sizes.
fn new_plan(sql: &SqlStorage, settings: &BufferSettings, now_ms: i64) -> Result<Option<Plan>, Error> {
    #[derive(Deserialize)]
    struct Upto {
        upto: Option<i64>,
    }
    let upto: Upto = sql
        .exec(
            "SELECT max(seq) AS upto FROM (SELECT seq, sum(events) OVER w AS total_events, \
             sum(bytes) OVER w AS total_bytes, row_number() OVER w AS n FROM chunks WINDOW w AS (ORDER BY seq)) \
             WHERE (total_events <= ? AND total_bytes <= ?) OR n = 1",
            vec![(settings.flush_events as i64).into(), (settings.flush_bytes as i64).into()],
        )?
        .one()?;
    let Some(upto) = upto.upto else {
        return Ok(None);
    };
    let seq = flush_row(sql)?.map_or(0, |row| row.next_seq);
    sql.exec(
        "INSERT OR REPLACE INTO flush (id, next_seq, plan_upto, plan_at_ms) VALUES (0, ?, ?, ?)",
        vec![seq.into(), upto.into(), now_ms.into()],
    )?;
    Ok(Some(Plan { seq, upto, at_ms: now_ms }))
}

async fn write(sql: &SqlStorage, bucket: &Bucket, name: &BufferName, plan: &Plan, env: &Env) -> Result<(), Error> {
    #[derive(Deserialize)]
    struct Row {
        kind: i64,
        body: String,
    }
    let (upto, at_ms) = (plan.upto, plan.at_ms);
    let chunks: Vec<Row> =
        sql.exec("SELECT kind, body FROM chunks WHERE seq <= ? ORDER BY seq", vec![upto.into()])?.to_array()?;
    let (mut events, mut rejected): (Vec<Event>, Vec<RejectedMessage>) = (Vec::new(), Vec::new());
    let (mut events_source, mut rejected_source) = (SourceDigest::default(), SourceDigest::default());
    for chunk in chunks {
        match chunk.kind {
            KIND_EVENT => {
                events.extend(serde_json::from_str::<Vec<Event>>(&chunk.body)?);
                events_source.add(chunk.body.as_bytes());
            }
            KIND_REJECTED => {
                rejected.extend(serde_json::from_str::<Vec<RejectedMessage>>(&chunk.body)?);
                rejected_source.add(chunk.body.as_bytes());
            }
            other => return Err(Error::Runtime(format!("unknown chunk kind {other}"))),
        }
    }
    let identity = name.to_string();
    let seq = plan.seq as u64;
    let target = Target { bucket, project: &name.project, region: &name.region, identity: &identity, seq, at_ms };
    if !events.is_empty() {
        let source = events_source.finish();
        let encoded = encode_flushed_events(&events, &source).map_err(|e| Error::Runtime(e.to_string()))?;
        target.put(BatchKind::Events, encoded, &source, events.len()).await?;
        inject_fault(sql, env)?;
    }
    if !rejected.is_empty() {
        let source = rejected_source.finish();
        let encoded = encode_flushed_rejected(&rejected, &source).map_err(|e| Error::Runtime(e.to_string()))?;
        target.put(BatchKind::Rejected, encoded, &source, rejected.len()).await?;
    }
    Ok(())
}

/// Where one flush's objects go: the key derives from the project, the
/// buffer's identity, the flush sequence number and time, under the prefix of
/// the batch's kind (events or quarantine).
struct Target<'a> {
    bucket: &'a Bucket,
    project: &'a str,
    region: &'a str,
    identity: &'a str,
    seq: u64,
    at_ms: i64,
}

impl Target<'_> {
    async fn put(&self, kind: BatchKind, bytes: Vec<u8>, source: &str, rows: usize) -> Result<(), Error> {
        let key = batch_key(kind.prefix(), self.project, self.region, self.at_ms, self.identity, self.seq);
        let size = bytes.len();
        put_once(self.bucket, &key, bytes, source).await?;
        log_flush(self.identity, self.seq, &key, rows, size);
        Ok(())
    }
}

/// One structured line per object written, like the Worker's per-request line.
fn log_flush(buffer: &str, seq: u64, key: &str, rows: usize, bytes: usize) {
    let line =
        serde_json::json!({ "flush": { "buffer": buffer, "seq": seq, "key": key, "rows": rows, "bytes": bytes } });
    worker::console_log!("{line}");
}

/// Create-only put. An existing object under the key is this flush's own
/// earlier attempt only if its footer carries `source`, the digest of exactly
/// these chunks; anything else is a collision that must not be papered over
/// (the chunks stay buffered).
async fn put_once(bucket: &Bucket, key: &str, bytes: Vec<u8>, source: &str) -> Result<(), Error> {
    let only_if_absent = Conditional { etag_does_not_match: Some("*".into()), ..Conditional::default() };
    if bucket.put(key, bytes).only_if(only_if_absent).execute().await?.is_some() {
        return Ok(());
    }
    let mut found = existing_source(bucket, key, Some(Range::Suffix { suffix: FOOTER_READ_BYTES })).await?;
    if found.is_none() {
        found = existing_source(bucket, key, None).await?;
    }
    if found.as_deref() == Some(source) {
        worker::console_log!("{key} was written by an earlier attempt of this flush; not writing it again");
        Ok(())
    } else {
        Err(Error::Runtime(format!("{key} exists with other events: refusing to overwrite it")))
    }
}

/// The source digest in the footer of the object at `key`, reading `range`
/// of it (its tail first: the footer is a few kilobytes).
async fn existing_source(bucket: &Bucket, key: &str, range: Option<Range>) -> Result<Option<String>, Error> {
    let mut get = bucket.get(key);
    if let Some(range) = range {
        get = get.range(range);
    }
    let object = get
        .execute()
        .await?
        .ok_or_else(|| Error::Runtime(format!("create-only put of {key} was refused but the object does not exist")))?;
    let bytes = object.body().ok_or_else(|| Error::Runtime(format!("{key} exists without a body")))?.bytes().await?;
    Ok(source_digest(&bytes))
}

/// Removes the flushed chunks and ends the plan, in one commit.
fn finish(sql: &SqlStorage, plan: &Plan) -> Result<(), Error> {
    sql.exec("DELETE FROM chunks WHERE seq <= ?", vec![plan.upto.into()])?;
    sql.exec(
        "UPDATE flush SET next_seq = ?, plan_upto = NULL, plan_at_ms = NULL WHERE id = 0",
        vec![(plan.seq + 1).into()],
    )?;
    Ok(())
}

/// Test hook, named as such: with `CONTRAIL_TEST_FAULT=fail_after_put`, the
/// first flush of each object fails right after its put, as if the isolate
/// died before finishing, so that tests can watch the retry find its own
/// object and write nothing twice. Unset in any real deployment.
fn inject_fault(sql: &SqlStorage, env: &Env) -> Result<(), Error> {
    let fault = env.var("CONTRAIL_TEST_FAULT").map(|v| v.to_string()).unwrap_or_default();
    if fault == "fail_after_put" && meta(sql, "fault_injected")?.is_none() {
        set_meta(sql, "fault_injected", "1")?;
        return Err(Error::Runtime("injected fault: failing after the put (CONTRAIL_TEST_FAULT)".into()));
    }
    Ok(())
}
