//! Every SQL statement on the buffer database, and its schema: the one way
//! into `buffer.sqlite`.
//!
//! Tables:
//! - `seen(project, event_id, seen_at)`: dedupe window (pruned after the
//!   configured `dedupe_hours`).
//! - `pending(seq, stream, project, received_at, bytes, row)`: buffered rows, JSON.
//!   `seq` is AUTOINCREMENT, so it is never reused and later rows sort later.
//! - `flushes(flush_seq, stream, project, last_seq, flushed_at, key, done)`: a
//!   flush is planned here before its object is written (see `flush.rs`).
//! - `meta(key, value)`: the buffer's identity.

use std::path::Path;

use contrail_edge::raw_key::{BatchKind, batch_key, project_of, project_prefix};
use contrail_edge::settings::BufferSettings;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::StoreJob;
use crate::error::Result;
use crate::flush::FlushPlan;

/// Opens (creating if needed) the buffer database with durable settings.
/// How a batch kind is stored in the `stream` columns.
fn code(kind: BatchKind) -> i64 {
    match kind {
        BatchKind::Events => 0,
        BatchKind::Rejected => 1,
    }
}

/// The batch kind a `stream` column holds (only the two codes are ever written).
fn kind(code: i64) -> BatchKind {
    if code == 1 { BatchKind::Rejected } else { BatchKind::Events }
}

pub(crate) fn open_connection(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    // WAL: readers (the flusher) never block the writer. synchronous=FULL: the
    // WAL is fsynced at every commit, so a commit survives power loss, which
    // is what a durable acknowledgement promises.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS seen(
             project TEXT NOT NULL, event_id TEXT NOT NULL, seen_at INTEGER NOT NULL,
             PRIMARY KEY(project, event_id)) WITHOUT ROWID;
         CREATE INDEX IF NOT EXISTS seen_by_time ON seen(seen_at);
         CREATE TABLE IF NOT EXISTS pending(
             seq INTEGER PRIMARY KEY AUTOINCREMENT, stream INTEGER NOT NULL, project TEXT NOT NULL,
             received_at INTEGER NOT NULL, bytes INTEGER NOT NULL, row BLOB NOT NULL);
         CREATE INDEX IF NOT EXISTS pending_by_group ON pending(stream, project, seq);
         CREATE TABLE IF NOT EXISTS flushes(
             flush_seq INTEGER PRIMARY KEY AUTOINCREMENT, stream INTEGER NOT NULL, project TEXT NOT NULL,
             last_seq INTEGER NOT NULL, flushed_at INTEGER NOT NULL, key TEXT NOT NULL,
             done INTEGER NOT NULL DEFAULT 0);",
    )?;
    Ok(conn)
}

/// The buffer's identity, created once: it seeds raw batch keys, so that two
/// data directories never produce the same key.
pub(crate) fn identity(conn: &Connection) -> Result<String> {
    if let Some(id) = conn.query_row("SELECT value FROM meta WHERE key = 'identity'", [], |r| r.get(0)).optional()? {
        return Ok(id);
    }
    let id = format!("local:{:032x}", rand::random::<u128>());
    conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('identity', ?1)", [&id])?;
    Ok(conn.query_row("SELECT value FROM meta WHERE key = 'identity'", [], |r| r.get(0))?)
}

/// Events waiting to be flushed (at start-up).
pub(crate) fn pending_events(conn: &Connection) -> Result<u64> {
    Ok(conn.query_row("SELECT count(*) FROM pending WHERE stream = 0", [], |r| r.get::<_, i64>(0))? as u64)
}

/// One transaction for the whole group: dedupe entries and pending rows
/// commit or roll back together.
pub(crate) fn commit(conn: &mut Connection, jobs: &[StoreJob]) -> rusqlite::Result<Vec<usize>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut duplicates = Vec::with_capacity(jobs.len());
    {
        let mut seen =
            tx.prepare_cached("INSERT OR IGNORE INTO seen(project, event_id, seen_at) VALUES (?1, ?2, ?3)")?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO pending(stream, project, received_at, bytes, row) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for job in jobs {
            let mut dup = 0;
            for (event_id, received_at, row) in &job.events {
                if seen.execute(params![job.project, event_id, job.now_ms])? == 0 {
                    dup += 1;
                    continue;
                }
                insert.execute(params![code(BatchKind::Events), job.project, received_at, row.len() as i64, row])?;
            }
            for (received_at, row) in &job.rejected {
                insert.execute(params![code(BatchKind::Rejected), job.project, received_at, row.len() as i64, row])?;
            }
            duplicates.push(dup);
        }
    }
    tx.commit()?;
    Ok(duplicates)
}

/// Moves unfinished flushes planned by a build that wrote keys without the
/// project (`raw/region=…`, read by no reader since raw keys name their
/// project) to the same key under `raw/project=<p>/`. If the old build's put
/// had gone through, its object stays behind unread; the flush writes the
/// rows again where readers look, so nothing acknowledged is lost and nothing
/// is read twice. Returns how many plans moved.
pub(crate) fn migrate_legacy_plans(conn: &mut Connection) -> Result<usize> {
    let plans = unfinished(conn)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut moved = 0;
    for plan in plans {
        let prefix = plan.kind.prefix();
        if project_of(prefix, &plan.key).is_some() {
            continue;
        }
        let Some(rest) = plan.key.strip_prefix(prefix).and_then(|r| r.strip_prefix('/')) else { continue };
        let key = format!("{}{rest}", project_prefix(prefix, &plan.project));
        tx.execute("UPDATE flushes SET key = ?1 WHERE flush_seq = ?2", params![key, plan.flush_seq])?;
        moved += 1;
    }
    tx.commit()?;
    Ok(moved)
}

pub(crate) fn unfinished(conn: &mut Connection) -> Result<Vec<FlushPlan>> {
    let mut stmt = conn
        .prepare("SELECT flush_seq, stream, project, last_seq, key FROM flushes WHERE done = 0 ORDER BY flush_seq")?;
    let plans = stmt
        .query_map([], |r| {
            Ok(FlushPlan {
                flush_seq: r.get(0)?,
                kind: kind(r.get(1)?),
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
pub(crate) fn plan_next(
    conn: &mut Connection,
    config: &BufferSettings,
    now_ms: i64,
    all: bool,
    identity: &str,
    region: &str,
) -> Result<Option<FlushPlan>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let due_before = now_ms - config.flush_interval_ms;
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
    let stream = kind(stream);
    tx.execute(
        "INSERT INTO flushes(stream, project, last_seq, flushed_at, key) VALUES (?1, ?2, ?3, ?4, '')",
        params![code(stream), project, last_seq, now_ms],
    )?;
    let flush_seq = tx.last_insert_rowid();
    let key = batch_key(stream.prefix(), &project, region, now_ms, identity, flush_seq as u64);
    tx.execute("UPDATE flushes SET key = ?1 WHERE flush_seq = ?2", params![key, flush_seq])?;
    tx.commit()?;
    Ok(Some(FlushPlan { flush_seq, kind: stream, project, last_seq, key }))
}

pub(crate) fn load_rows(conn: &mut Connection, plan: &FlushPlan) -> Result<Vec<Vec<u8>>> {
    let mut stmt =
        conn.prepare_cached("SELECT row FROM pending WHERE stream = ?1 AND project = ?2 AND seq <= ?3 ORDER BY seq")?;
    let rows = stmt
        .query_map(params![code(plan.kind), plan.project, plan.last_seq], |r| r.get::<_, Vec<u8>>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Flush records kept after completion, for diagnosis.
const DONE_FLUSHES_KEPT: i64 = 1_000;

pub(crate) fn finish(conn: &mut Connection, plan: &FlushPlan) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute(
        "DELETE FROM pending WHERE stream = ?1 AND project = ?2 AND seq <= ?3",
        params![code(plan.kind), plan.project, plan.last_seq],
    )?;
    tx.execute("UPDATE flushes SET done = 1 WHERE flush_seq = ?1", [plan.flush_seq])?;
    tx.execute("DELETE FROM flushes WHERE done = 1 AND flush_seq <= ?1", [plan.flush_seq - DONE_FLUSHES_KEPT])?;
    tx.commit()?;
    Ok(())
}

/// Forgets event ids seen before `cutoff_ms`: the end of the dedupe window.
pub(crate) fn prune_seen(conn: &mut Connection, cutoff_ms: i64) -> Result<usize> {
    Ok(conn.execute("DELETE FROM seen WHERE seen_at < ?1", [cutoff_ms])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unfinished_flush_planned_with_a_key_without_the_project_moves_under_the_project() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_connection(&dir.path().join("buffer.sqlite")).unwrap();
        let legacy = "raw/region=local/date=2026-11-23/0193a1b2-0000-7000-8000-000000000000.arrow";
        let current = "raw/project=shop/region=local/date=2026-11-23/0193a1b2-0000-7000-8000-000000000001.arrow";
        for (seq, project, key, done) in [(1, "demo", legacy, 0), (2, "shop", current, 0), (3, "demo", legacy, 1)] {
            conn.execute(
                "INSERT INTO flushes(flush_seq, stream, project, last_seq, flushed_at, key, done) VALUES (?1, 0, ?2, 9, 0, ?3, ?4)",
                params![seq, project, key, done],
            )
            .unwrap();
        }
        assert_eq!(migrate_legacy_plans(&mut conn).unwrap(), 1);
        let keys: Vec<String> = unfinished(&mut conn).unwrap().into_iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            ["raw/project=demo/region=local/date=2026-11-23/0193a1b2-0000-7000-8000-000000000000.arrow", current]
        );
        assert_eq!(migrate_legacy_plans(&mut conn).unwrap(), 0, "once");
    }
}
