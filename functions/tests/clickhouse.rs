//! Differential tests against ClickHouse itself: chDB (pinned in
//! `tests/python/requirements.txt`) runs `windowFunnel` in every mode and
//! `retention` on seeded events; `window_funnel` and `retention` must agree
//! person by person, whatever the number of partitions and however a
//! person's rows are split between them.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit, UInt8Type};
use contrail_testkit::clickhouse::{FunnelEvent, STEPS, funnel_events, levels, oracle, write_csv};
use datafusion::datasource::MemTable;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

/// One hour, the funnel window of the tests.
const WINDOW_MS: i64 = 3_600_000;

/// A session over `events`, dealt round-robin into `partitions` partitions
/// (so one person's rows land in several), planned for `target` partitions.
fn session(events: &[FunnelEvent], partitions: usize, target: usize) -> SessionContext {
    let schema = Arc::new(Schema::new(vec![
        Field::new("person", DataType::Utf8, false),
        Field::new("timestamp", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
        Field::new("event", DataType::Utf8, false),
    ]));
    let mut parts: Vec<Vec<&FunnelEvent>> = vec![Vec::new(); partitions];
    for (i, e) in events.iter().enumerate() {
        parts[i % partitions].push(e);
    }
    let batches: Vec<Vec<RecordBatch>> = parts
        .into_iter()
        .map(|rows| {
            let person: StringArray = rows.iter().map(|e| Some(e.person.as_str())).collect();
            let at =
                TimestampMillisecondArray::from(rows.iter().map(|e| e.at_ms).collect::<Vec<_>>()).with_timezone("UTC");
            let event: StringArray = rows.iter().map(|e| Some(e.event)).collect();
            vec![RecordBatch::try_new(schema.clone(), vec![Arc::new(person), Arc::new(at), Arc::new(event)]).unwrap()]
        })
        .collect();
    let mut state = SessionStateBuilder::new()
        .with_config(SessionConfig::new().with_target_partitions(target))
        .with_default_features()
        .build();
    contrail_functions::register_all(&mut state).unwrap();
    let ctx = SessionContext::new_with_state(state);
    ctx.register_table("e", Arc::new(MemTable::try_new(schema, batches).unwrap())).unwrap();
    ctx
}

fn conditions() -> String {
    STEPS.iter().map(|s| format!("event = '{s}'")).collect::<Vec<_>>().join(", ")
}

async fn rows(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    ctx.sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}")).collect().await.unwrap()
}

async fn funnel(ctx: &SessionContext, mode: &str) -> BTreeMap<String, u64> {
    let modes = if mode == "default" { String::new() } else { format!(", '{mode}'") };
    let sql = format!(
        "SELECT person, window_funnel(INTERVAL '{WINDOW_MS} milliseconds', timestamp, {}{modes}) FROM e GROUP BY person",
        conditions()
    );
    let mut out = BTreeMap::new();
    for batch in rows(ctx, &sql).await {
        let person = batch.column(0).as_string::<i32>();
        let level = batch.column(1).as_primitive::<UInt8Type>();
        for i in 0..batch.num_rows() {
            out.insert(person.value(i).to_owned(), u64::from(level.value(i)));
        }
    }
    out
}

async fn retention(ctx: &SessionContext) -> BTreeMap<String, Vec<u64>> {
    let sql = format!("SELECT person, retention({}) FROM e GROUP BY person", conditions());
    let mut out = BTreeMap::new();
    for batch in rows(ctx, &sql).await {
        let person = batch.column(0).as_string::<i32>();
        let lists = batch.column(1).as_list::<i32>();
        for i in 0..batch.num_rows() {
            let flags = lists.value(i);
            let flags = flags.as_boolean();
            out.insert(person.value(i).to_owned(), (0..flags.len()).map(|j| u64::from(flags.value(j))).collect());
        }
    }
    out
}

/// Where two answers differ, for the failure message.
fn differences<V: PartialEq + std::fmt::Debug>(
    ours: &BTreeMap<String, V>,
    theirs: &BTreeMap<String, V>,
) -> Vec<String> {
    theirs
        .iter()
        .filter(|(p, v)| ours.get(*p) != Some(v))
        .take(10)
        .map(|(p, v)| format!("{p}: ClickHouse {v:?}, ours {:?}", ours.get(p)))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn window_funnel_and_retention_agree_with_clickhouse_person_by_person() {
    let events = funnel_events(20_261_201, 1_500, 1_764_547_200_000, WINDOW_MS);
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("events.csv");
    write_csv(&events, &csv);
    let answer = oracle(&csv, WINDOW_MS, &STEPS);
    assert!(
        answer["clickhouse_version"].as_str().unwrap().starts_with("26.9"),
        "pinned chDB: {}",
        answer["clickhouse_version"]
    );

    let expected_retention: BTreeMap<String, Vec<u64>> =
        serde_json::from_value(answer["retention"].clone()).expect("retention per person");
    // The data reaches every level, and every mode answers differently from
    // the default for some persons: the comparison covers what sets modes apart.
    let default = levels(&answer, "default");
    for level in 0..=STEPS.len() as u64 {
        assert!(default.values().any(|l| *l == level), "no person at level {level}");
    }
    for mode in ["strict_order", "strict_deduplication", "strict_increase"] {
        assert!(levels(&answer, mode) != default, "{mode} answers like the default on this data");
    }
    for (partitions, target) in [(1, 1), (2, 2), (8, 8), (8, 1)] {
        let ctx = session(&events, partitions, target);
        for mode in ["default", "strict_order", "strict_deduplication", "strict_increase", "strict_once"] {
            let expected = levels(&answer, mode);
            let ours = funnel(&ctx, mode).await;
            assert_eq!(ours.len(), expected.len(), "{mode}: persons");
            let diff = differences(&ours, &expected);
            assert!(diff.is_empty(), "{mode}, {partitions} partitions, target {target}: {diff:#?}");
        }
        let ours = retention(&ctx).await;
        let diff = differences(&ours, &expected_retention);
        assert!(diff.is_empty(), "retention, {partitions} partitions: {diff:#?}");
    }
}

#[tokio::test]
async fn window_funnel_refuses_bad_calls_with_plan_errors() {
    let ctx = session(&funnel_events(1, 3, 0, WINDOW_MS), 1, 1);
    for (sql, needle) in [
        ("SELECT window_funnel(3600, timestamp) FROM e", "1 to 32 conditions"),
        ("SELECT window_funnel(3600, timestamp, event = 'A', 'strict_nonsense') FROM e", "unknown window_funnel mode"),
        ("SELECT window_funnel(INTERVAL '1 month', timestamp, event = 'A') FROM e", "months"),
        ("SELECT window_funnel(-5, timestamp, event = 'A') FROM e", "zero or positive"),
        ("SELECT window_funnel(3600, event, event = 'A') FROM e", "timestamp"),
        ("SELECT window_funnel(3600, timestamp, event) FROM e", "not a boolean"),
    ] {
        let error = match ctx.sql(sql).await {
            Err(e) => e.to_string(),
            Ok(frame) => frame.collect().await.map(|_| String::new()).unwrap_or_else(|e| e.to_string()),
        };
        assert!(error.contains(needle), "{sql}: {error}");
    }
}
