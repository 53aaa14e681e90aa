//! Compaction end to end: partitions, order, dedupe, late events, garbage collection.

use std::collections::HashSet;
use std::time::Duration;

use arrow::array::AsArray;
use arrow::datatypes::TimestampMicrosecondType;
use contrail_warehouse::{Compactor, CompactorConfig};

use crate::harness::{BACKENDS, Backend, DAY_MS, DAY0, TestLocation, compactor, event, events};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_land_once_in_their_date_partition_sorted_by_user_and_time() {
    for backend in BACKENDS {
        let t = TestLocation::new(backend);
        let mut day1 = events("acme", (0..50).map(|i| format!("a{i}")), DAY0 + 3_600_000);
        day1.extend(events("acme", (0..20).map(|i| format!("b{i}")), DAY0 + DAY_MS + 60_000));
        t.put_raw(&day1, DAY0 + 2 * DAY_MS, 1).await;
        // A second flush repeats 10 ids (a retried batch) and adds 5 new ones.
        let mut again = events("acme", (0..10).map(|i| format!("a{i}")), DAY0 + 3_600_000);
        again.extend(events("acme", (50..55).map(|i| format!("a{i}")), DAY0 + 7_200_000));
        t.put_raw(&again, DAY0 + 2 * DAY_MS + 1, 2).await;

        let report = compactor(&t).run_once().await.unwrap();
        assert_eq!((report.events_in, report.events_out, report.duplicates), (85, 75, 10), "{backend:?}");
        assert_eq!(report.commits, 1);

        let counts = t.id_counts("acme").await;
        assert_eq!(counts.len(), 75, "{backend:?}");
        assert!(counts.values().all(|n| *n == 1));
        for (batch, date) in t.table_rows("acme").await {
            let ts = batch.column_by_name("timestamp").unwrap().as_primitive::<TimestampMicrosecondType>();
            let users = batch.column_by_name("distinct_id").unwrap().as_string::<i32>();
            for i in 0..batch.num_rows() {
                let day = chrono::DateTime::from_timestamp_micros(ts.value(i)).unwrap().format("%Y-%m-%d").to_string();
                assert_eq!(day, date, "row in the wrong partition");
                if i > 0 {
                    let prev = (users.value(i - 1), ts.value(i - 1));
                    assert!(prev <= (users.value(i), ts.value(i)), "not sorted by (distinct_id, timestamp)");
                }
            }
        }
        // Nothing left to do: a second run consumes nothing and adds nothing.
        let again = compactor(&t).run_once().await.unwrap();
        assert_eq!((again.raw_files, again.commits), (0, 0), "{backend:?}");
        assert_eq!(t.id_counts("acme").await.len(), 75);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_retry_dedupes_against_the_table_even_across_midnight() {
    for backend in BACKENDS {
        let t = TestLocation::new(backend);
        let just_before_midnight = DAY0 + DAY_MS - 1_000;
        t.put_raw(&events("acme", ["x1".into(), "x2".into()], just_before_midnight), DAY0 + DAY_MS, 1).await;
        compactor(&t).run_once().await.unwrap();
        // Hours later the same messages come back; their skew-corrected
        // timestamps now fall after midnight, in the next partition.
        let mut retry = events("acme", ["x1".into(), "x2".into()], DAY0 + DAY_MS + 2_000);
        retry.push(event("acme", "x3", DAY0 + DAY_MS + 2_000));
        t.put_raw(&retry, DAY0 + DAY_MS + 3_600_000, 2).await;
        let report = compactor(&t).run_once().await.unwrap();
        assert_eq!((report.events_out, report.duplicates), (1, 2), "{backend:?}");
        let counts = t.id_counts("acme").await;
        assert_eq!(
            counts.keys().cloned().collect::<HashSet<_>>(),
            HashSet::from(["x1".into(), "x2".into(), "x3".into()])
        );
        assert!(counts.values().all(|n| *n == 1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_get_their_own_tables() {
    for backend in BACKENDS {
        let t = TestLocation::new(backend);
        t.put_raw(&events("acme", ["same".into(), "a".into()], DAY0), DAY0 + 1, 1).await;
        t.put_raw(&events("other", ["same".into()], DAY0), DAY0 + 2, 2).await;
        let report = compactor(&t).run_once().await.unwrap();
        assert_eq!(report.commits, 2);
        assert_eq!(t.id_counts("acme").await.len(), 2);
        assert_eq!(t.id_counts("other").await.len(), 1, "{backend:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_batches_are_deleted_only_after_the_grace_period() {
    for backend in BACKENDS {
        let t = TestLocation::new(backend);
        t.put_raw(&events("acme", ["g1".into()], DAY0), DAY0, 1).await;
        let config = CompactorConfig { grace: Duration::from_secs(60), ..Default::default() };
        let now = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(chrono::Utc::now().timestamp_millis()));
        let clock = {
            let now = now.clone();
            std::sync::Arc::new(move || now.load(std::sync::atomic::Ordering::SeqCst))
        };
        let compactor = Compactor::with_clock(t.location.clone(), config, clock);
        compactor.run_once().await.unwrap();
        assert_eq!(t.raw_keys().await.len(), 1, "kept during the grace period");
        compactor.run_once().await.unwrap();
        assert_eq!(t.raw_keys().await.len(), 1, "the commit is younger than the grace period");
        now.fetch_add(120_000, std::sync::atomic::Ordering::SeqCst);
        let report = compactor.run_once().await.unwrap();
        assert_eq!(report.raw_deleted, 1, "{backend:?}");
        assert!(t.raw_keys().await.is_empty());
        assert_eq!(t.id_counts("acme").await.len(), 1, "deleting raw files loses nothing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_carries_the_schema_version_and_the_consumed_files() {
    for backend in BACKENDS {
        let t = TestLocation::new(backend);
        let key = t.put_raw(&events("acme", ["s1".into()], DAY0), DAY0, 1).await;
        compactor(&t).run_once().await.unwrap();
        let table = contrail_warehouse::table::open(&t.location, "acme").await.unwrap().unwrap();
        let metadata = table.snapshot().unwrap().metadata().clone();
        assert_eq!(
            metadata.configuration().get(contrail_warehouse::table::SCHEMA_VERSION_PROPERTY).map(String::as_str),
            Some(contrail_edge::schema::SCHEMA_VERSION)
        );
        assert_eq!(metadata.partition_columns(), &vec!["date".to_owned()]);
        let consumed = contrail_warehouse::table::consumed_since(&table, 0).await.unwrap();
        assert!(consumed.contains_key(&key), "{backend:?}: {consumed:?}");
        let _ = event("acme", "unused", 0).timestamp;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_byte_budget_goes_to_the_oldest_batches_of_any_project_and_a_broken_project_stops_no_other() {
    let t = TestLocation::new(Backend::Local);
    // "busy" (sorting first) has a backlog flushed after "quiet"'s one batch.
    for seq in 0..4u64 {
        let batch = events("busy", (0..50).map(|i| format!("b{seq}-{i}")), DAY0 + 1_000);
        t.put_raw(&batch, DAY0 + 10_000 + seq as i64, seq).await;
    }
    t.put_raw(&events("quiet", (0..5).map(|i| format!("q{i}")), DAY0 + 1_000), DAY0 + 5_000, 9).await;
    // A batch under "broken"'s prefix holding another project's rows: refused,
    // and the run still compacts everyone else.
    let foreign = events("busy", ["stray".to_owned()], DAY0 + 1_000);
    let key = contrail_edge::raw_key::batch_key("raw", "broken", "test", DAY0 + 1, "buf:test", 1);
    let bytes = contrail_edge::encode::encode_events(&foreign).unwrap();
    object_store::ObjectStoreExt::put(t.location.store.as_ref(), &object_store::path::Path::from(key), bytes.into())
        .await
        .unwrap();

    // A budget of one byte: each run takes exactly its oldest waiting batch.
    let config = CompactorConfig { max_run_bytes: 1, ..Default::default() };
    let compactor = contrail_warehouse::Compactor::new(t.location.clone(), config);
    let first = compactor.run_once().await.unwrap();
    assert_eq!(
        (first.raw_files, first.events_out),
        (1, 0),
        "the refused batch was the oldest: read, refused: {first:?}"
    );
    let second = compactor.run_once().await.unwrap();
    assert_eq!((second.raw_files, second.events_out), (1, 5), "then quiet's batch, older than busy's: {second:?}");
    assert_eq!(t.id_counts("quiet").await.len(), 5);
    let report = compactor.run_until_caught_up().await.unwrap();
    assert_eq!((report.raw_files, report.raw_left), (4, 0), "the refused batch holds no budget: {report:?}");
    let busy = t.id_counts("busy").await;
    assert_eq!(busy.len(), 200, "{report:?}");
    assert!(!busy.contains_key("stray"), "a foreign row under another project's prefix is never committed");
}
