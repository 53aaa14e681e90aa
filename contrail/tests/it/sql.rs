//! `POST /v1/sql`: freshness, exactly-once across compaction, the read-only
//! sandbox, tenant isolation, limits and answer formats.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use contrail_ingest::SystemClock;
use serde_json::{Value, json};

use crate::harness::TestStack;

/// A track message with a fixed id and time.
pub fn track(id: &str, user: &str, event: &str, timestamp: &str) -> Value {
    json!({"type": "track", "messageId": id, "userId": user, "event": event,
           "timestamp": timestamp, "properties": {"plan": "pro", "n": 1}})
}

async fn send(stack: &TestStack, messages: Vec<Value>) {
    let (status, answer) = stack.post_json("/v1/batch", &json!({ "batch": messages })).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["rejected"], json!([]), "{answer}");
}

#[tokio::test]
async fn an_acknowledged_event_is_queryable_after_the_flush_and_once_after_compaction() {
    let stack = TestStack::new();
    send(
        &stack,
        vec![
            track("f-1", "u1", "Signed Up", "2026-11-20T10:00:00Z"),
            track("f-2", "u2", "Signed Up", "2026-11-20T11:00:00Z"),
        ],
    )
    .await;
    assert_eq!(stack.number("SELECT count(*) FROM events").await, 0, "nothing is flushed yet");
    stack.flush().await;
    assert_eq!(stack.number("SELECT count(*) FROM events").await, 2, "raw batches are read before compaction");
    let ids = stack.rows("SELECT event_id, distinct_id FROM events ORDER BY event_id").await;
    assert_eq!(
        ids,
        vec![json!({"event_id": "f-1", "distinct_id": "u1"}), json!({"event_id": "f-2", "distinct_id": "u2"})]
    );

    let report = stack.compact().await;
    assert_eq!(report.events_out, 2);
    // The raw batches are still there (grace period), and are not read twice.
    assert!(!stack.raw_files().await.is_empty());
    assert_eq!(stack.number("SELECT count(*) FROM events").await, 2);
    assert_eq!(stack.number("SELECT count(DISTINCT event_id) FROM events").await, 2);

    // A later event joins in raw form; the same id again is a duplicate.
    send(&stack, vec![track("f-3", "u1", "Upgraded", "2026-11-21T09:00:00Z")]).await;
    stack.flush().await;
    assert_eq!(stack.number("SELECT count(*) FROM events").await, 3);
    assert_eq!(stack.number("SELECT count(*) FROM events WHERE date = DATE '2026-11-21'").await, 1);
    // After garbage collection the table alone holds everything.
    stack.compactor(Duration::ZERO).run_until_caught_up().await.unwrap();
    stack.compactor(Duration::ZERO).run_until_caught_up().await.unwrap();
    assert!(stack.raw_files().await.is_empty(), "consumed raw batches are collected");
    assert_eq!(stack.number("SELECT count(*) FROM events").await, 3);
}

#[tokio::test]
async fn the_rejected_table_holds_the_projects_quarantined_messages() {
    let stack = TestStack::new();
    let (status, _) = stack
        .post_json(
            "/v1/batch",
            &json!({"batch": [track("r-1", "u1", "Ok", "2026-11-20T10:00:00Z"), {"type": "track", "userId": "u1"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    stack.flush().await;
    let rows = stack.rows("SELECT code, \"index\" FROM rejected").await;
    assert_eq!(rows, vec![json!({"code": "missing_field", "index": 1})]);
    let other = stack.sql_as(&stack.query_key("other"), "SELECT count(*) AS n FROM rejected").await;
    assert_eq!(other.1["rows"], json!([{"n": 0}]), "another project sees none of them");
}

/// Statements and functions the SQL API must refuse with 400.
const FORBIDDEN: &[&str] = &[
    "CREATE TABLE t (a INT)",
    "CREATE TABLE t AS SELECT * FROM events",
    "CREATE VIEW v AS SELECT * FROM events",
    "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/etc/'",
    "CREATE EXTERNAL TABLE t (a INT) STORED AS CSV LOCATION 'file:///etc/passwd'",
    "CREATE SCHEMA s",
    "CREATE DATABASE d",
    "CREATE FUNCTION f(a INT) RETURNS INT RETURN a",
    "DROP TABLE events",
    "DROP VIEW v",
    "DROP SCHEMA public",
    "ALTER TABLE events ADD COLUMN x INT",
    "TRUNCATE TABLE events",
    "INSERT INTO events SELECT * FROM events",
    "INSERT INTO events (event_id) VALUES ('x')",
    "UPDATE events SET event = 'x'",
    "DELETE FROM events",
    "MERGE INTO events USING events AS s ON true WHEN MATCHED THEN DELETE",
    "COPY events TO '/tmp/out.csv'",
    "COPY (SELECT 1) TO '/tmp/out.parquet' STORED AS PARQUET",
    "SET datafusion.execution.target_partitions = 1",
    "SET TIME ZONE 'UTC'",
    "RESET datafusion.execution.batch_size",
    "SHOW TABLES",
    "SHOW ALL",
    "SHOW COLUMNS FROM events",
    "DESCRIBE events",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "PREPARE p AS SELECT 1",
    "EXECUTE p",
    "DEALLOCATE p",
    "EXPLAIN CREATE TABLE t (a INT)",
    "EXPLAIN COPY events TO '/tmp/x'",
    "SELECT 1; SELECT 2",
    "SELECT count(*) FROM events; DROP TABLE events",
    "SELECT * FROM other.events",
    "SELECT * FROM datafusion.other.events",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM information_schema.df_settings",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM 'file:///etc/hosts'",
    "SELECT * FROM read_parquet('/etc/x.parquet')",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_json('/etc/passwd')",
    "SELECT * FROM parquet_metadata('/etc/x.parquet')",
    "SELECT * FROM generate_series(1, 10)",
    "SELECT * FROM range(1000000000000)",
    "SELECT read_file('/etc/passwd')",
    "SELECT getenv('HOME')",
    "SELECT current_setting('datafusion.catalog.location')",
    "SELECT pg_read_file('/etc/passwd')",
    "ATTACH DATABASE '/tmp/x.db' AS x",
    "INSTALL httpfs",
    "LOAD httpfs",
    "PRAGMA table_info(events)",
    "USE other",
    "VACUUM events",
    "ANALYZE TABLE events COMPUTE STATISTICS",
    "",
    "   ",
    "SELEC * FROM events",
];

#[tokio::test]
async fn the_sandbox_refuses_every_statement_that_is_not_one_read_only_query() {
    let stack = TestStack::new();
    send(&stack, vec![track("s-1", "u1", "A", "2026-11-20T10:00:00Z")]).await;
    stack.flush().await;
    let key = stack.query_key("demo");
    assert!(FORBIDDEN.len() >= 40);
    for sql in FORBIDDEN {
        let (status, answer) = stack.sql_as(&key, sql).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{sql:?} answered {status}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_query", "{sql:?}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.len() > 10, "{sql:?}: the message explains: {answer}");
    }
    // Still intact, and the allowed forms work.
    assert_eq!(stack.number("SELECT count(*) FROM events").await, 1);
    for sql in [
        "WITH e AS (SELECT * FROM events) SELECT count(*) FROM e",
        "EXPLAIN SELECT * FROM events",
        "EXPLAIN ANALYZE SELECT count(*) FROM events",
        "SELECT 1 + 1",
        "VALUES (1), (2)",
        "SELECT * FROM datafusion.public.events",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT sum(n) FROM r",
    ] {
        let (status, answer) = stack.sql_as(&key, sql).await;
        assert_eq!(status, StatusCode::OK, "{sql}: {answer}");
    }
}

#[tokio::test]
async fn a_body_that_is_not_a_sql_request_is_a_400_with_an_example() {
    let stack = TestStack::new();
    let auth = format!("Bearer {}", stack.query_key("demo"));
    for body in ["not json", "{}", "{\"sql\": 1}", "{\"sql\": \"SELECT 1\", \"extra\": true}", "[]"] {
        let (status, answer) = stack.post("/v1/sql", &[("authorization", &auth)], body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains("SELECT count(*) FROM events"), "{answer}");
    }
    let long = format!("SELECT {} 1", "1 + ".repeat(20_000));
    let (status, answer) = stack.sql_as(&stack.query_key("demo"), &long).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let deep = format!("SELECT {}1{}", "(".repeat(500), ")".repeat(500));
    let (status, answer) = stack.sql_as(&stack.query_key("demo"), &deep).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (status, _, _) = stack.get("/v1/sql", &[("authorization", &auth)]).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_runaway_query_is_cancelled_cleanly_and_the_server_keeps_serving() {
    let stack = TestStack::with(Arc::new(SystemClock), |config| {
        config.query.timeout_secs = 1;
    });
    let batch: Vec<Value> =
        (0..200).map(|i| track(&format!("w-{i}"), &format!("u{i}"), "A", "2026-11-20T10:00:00Z")).collect();
    send(&stack, batch).await;
    stack.flush().await;
    let started = std::time::Instant::now();
    let (status, answer) = stack
        .sql_as(
            &stack.query_key("demo"),
            "SELECT count(*) FROM events a, events b, events c, events d WHERE a.event_id <> d.event_id",
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(answer["error"]["code"], "query_timeout");
    assert!(answer["error"]["message"].as_str().unwrap().contains("did not finish within 1 s"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(10), "cancelled promptly: {:?}", started.elapsed());
    assert_eq!(stack.number("SELECT count(*) FROM events").await, 200);
}

#[tokio::test]
async fn a_query_over_its_memory_limit_gets_a_clean_503() {
    let stack = TestStack::with(Arc::new(SystemClock), |config| {
        config.query.memory_mb = 1;
    });
    let batch: Vec<Value> =
        (0..500).map(|i| track(&format!("m-{i}"), &format!("u{i}"), "A", "2026-11-20T10:00:00Z")).collect();
    send(&stack, batch).await;
    stack.flush().await;
    let (status, answer) = stack
        .sql_as(
            &stack.query_key("demo"),
            "SELECT a.event_id, array_agg(b.context) FROM events a, events b GROUP BY a.event_id ORDER BY 1",
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(answer["error"]["code"], "query_memory_limit", "{answer}");
    assert_eq!(stack.number("SELECT count(*) FROM events").await, 500);
}

#[tokio::test]
async fn the_row_limit_truncates_with_an_explicit_flag() {
    let stack = TestStack::with(Arc::new(SystemClock), |config| {
        config.query.max_rows = 5;
    });
    let batch: Vec<Value> = (0..12).map(|i| track(&format!("t-{i}"), "u1", "A", "2026-11-20T10:00:00Z")).collect();
    send(&stack, batch).await;
    stack.flush().await;
    let (status, answer) = stack.sql_as(&stack.query_key("demo"), "SELECT event_id FROM events").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["rows"].as_array().unwrap().len(), 5);
    assert_eq!(answer["truncated"], true);
    let (_, answer) = stack.sql_as(&stack.query_key("demo"), "SELECT event_id FROM events LIMIT 5").await;
    assert_eq!(answer["truncated"], false, "exactly the limit is not truncated");
    let auth = format!("Bearer {}", stack.query_key("demo"));
    let (_, answer) = stack
        .post(
            "/v1/sql",
            &[("authorization", &auth)],
            json!({"sql": "SELECT event_id FROM events", "max_rows": 2}).to_string(),
        )
        .await;
    assert_eq!(answer["rows"].as_array().unwrap().len(), 2);
    assert_eq!(answer["truncated"], true);
}
