//! The flusher under faults: ambiguous and failed puts, thresholds, restarts.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use contrail::config::Config;
use contrail::serve::{Stack, local_location};
use contrail_ingest::FixedClock;
use contrail_testkit::faulty_store::{Fault, FaultyStore};
use object_store::ObjectStore;
use serde_json::json;

use crate::harness::{SECRET, TestStack, raw_files};

fn config(dir: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.server.data = dir.to_path_buf();
    config.keys.secrets = vec![SECRET.into()];
    config
}

async fn faulty_stack(dir: &std::path::Path, fault: Fault, failures: usize) -> (TestStack, Arc<dyn ObjectStore>) {
    let real = local_location(dir).unwrap().store;
    let mut remaining = failures;
    let faulty = Arc::new(FaultyStore::new(real.clone(), move |_, _| match remaining.checked_sub(1) {
        Some(left) => {
            remaining = left;
            fault
        }
        None => Fault::None,
    }));
    let clock = Arc::new(FixedClock(Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()));
    let stack = Stack::open_with_store(&config(dir), clock, faulty).unwrap();
    let router = contrail::router::serve(&stack);
    (TestStack { _dir: tempfile::tempdir().unwrap(), stack, router }, real)
}

fn batch(prefix: &str, n: usize) -> serde_json::Value {
    let messages: Vec<_> = (0..n)
        .map(|i| json!({"type": "track", "userId": "u", "event": "E", "messageId": format!("{prefix}{i}")}))
        .collect();
    json!({ "batch": messages })
}

#[tokio::test]
async fn a_put_that_succeeded_but_reported_failure_is_recognised_on_retry() {
    let dir = tempfile::tempdir().unwrap();
    let (t, real) = faulty_stack(dir.path(), Fault::AfterWrite, 1).await;
    t.post_json("/v1/batch", &batch("e", 10)).await;
    assert!(t.stack.flusher.flush_due(true).await.is_err(), "the ambiguous put is reported");
    assert_eq!(raw_files(real.as_ref()).await.len(), 1, "the object was written");
    t.stack.flusher.flush_due(true).await.expect("the retry recognises its own object");
    let files = raw_files(real.as_ref()).await;
    assert_eq!(files.len(), 1, "no second object for the same events");
    assert_eq!(files[0].1.len(), 10);
    assert_eq!(t.stack.ingest.buffer.pending_events(), 0);
}

#[tokio::test]
async fn a_failed_put_keeps_the_rows_buffered_until_it_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let (t, real) = faulty_stack(dir.path(), Fault::BeforeWrite, 2).await;
    t.post_json("/v1/batch", &batch("e", 5)).await;
    assert!(t.stack.flusher.flush_due(true).await.is_err());
    // New events arrive while the flush is failing: they must not be mixed
    // into the planned flush, nor lost.
    t.post_json("/v1/batch", &batch("f", 3)).await;
    assert!(t.stack.flusher.flush_due(true).await.is_err());
    assert!(raw_files(real.as_ref()).await.is_empty());
    t.stack.flusher.flush_due(true).await.unwrap();
    let files = raw_files(real.as_ref()).await;
    // Both flushes carry the same (fixed) time, so their keys' order is the
    // hash's: compare the contents, not the order.
    let mut contents: Vec<Vec<String>> =
        files.iter().map(|(_, events)| events.iter().map(|e| e.event_id.clone()).collect()).collect();
    contents.sort();
    let ids = |prefix: &str, n: usize| (0..n).map(|i| format!("{prefix}{i}")).collect::<Vec<_>>();
    assert_eq!(contents, [ids("e", 5), ids("f", 3)], "the planned flush keeps exactly its rows");
}

#[tokio::test]
async fn a_planned_flush_is_finished_by_the_next_process_under_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = {
        let (t, real) = faulty_stack(dir.path(), Fault::AfterWrite, 1).await;
        t.post_json("/v1/batch", &batch("e", 7)).await;
        assert!(t.stack.flusher.flush_due(true).await.is_err());
        let files = raw_files(real.as_ref()).await;
        files[0].0.clone()
        // The stack is dropped here, as if the process died before finishing.
    };
    let (t, real) = faulty_stack(dir.path(), Fault::AfterWrite, 0).await;
    assert_eq!(t.stack.ingest.buffer.pending_events(), 7, "the rows survived the restart");
    t.stack.flusher.flush_due(false).await.unwrap();
    let files = raw_files(real.as_ref()).await;
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, key);
    assert_eq!(t.stack.ingest.buffer.pending_events(), 0);
}

#[tokio::test]
async fn flushes_respect_the_event_threshold_and_wait_for_the_interval_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock(Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()));
    let mut config = config(dir.path());
    config.buffer.flush_events = 10;
    let stack = Stack::open(&config, clock).unwrap();
    let router = contrail::router::serve(&stack);
    let t = TestStack { _dir: dir, stack, router };
    t.post_json("/v1/batch", &batch("e", 25)).await;
    // The clock is fixed, so nothing is due by age: only full groups flush.
    assert_eq!(t.stack.flusher.flush_due(false).await.unwrap(), 2);
    let sizes: Vec<_> = t.raw_files().await.iter().map(|(_, e)| e.len()).collect();
    assert_eq!(sizes, [10, 10]);
    assert_eq!(t.stack.ingest.buffer.pending_events(), 5);
    t.flush().await;
    assert_eq!(t.raw_events().await.len(), 25);
    let ids: std::collections::HashSet<_> = t.raw_events().await.into_iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), 25);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 24, ..Default::default() })]

    /// Random requests drawing ids from a small pool (so many repeat, within
    /// and across requests), with flushes at random points: every distinct id
    /// ends up in exactly one raw row, and the answers' `accepted` add up to
    /// the number of distinct ids.
    #[test]
    fn every_distinct_event_id_is_stored_exactly_once(
        requests in proptest::collection::vec(
            (proptest::collection::vec(0u8..40, 1..30), proptest::bool::ANY),
            1..12,
        ),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let t = TestStack::new();
            let mut accepted = 0;
            let mut distinct = std::collections::HashSet::new();
            for (ids, flush_after) in &requests {
                let messages: Vec<_> = ids
                    .iter()
                    .map(|id| json!({"type": "track", "userId": "u", "event": "E", "messageId": format!("id-{id}")}))
                    .collect();
                let (_, answer) = t.post_json("/v1/batch", &json!({ "batch": messages })).await;
                assert_eq!(answer["accepted"].as_u64().unwrap() + answer["duplicates"].as_u64().unwrap(), ids.len() as u64);
                accepted += answer["accepted"].as_u64().unwrap();
                distinct.extend(ids.iter().copied());
                if *flush_after {
                    t.flush().await;
                }
            }
            t.flush().await;
            let stored: Vec<_> = t.raw_events().await.into_iter().map(|e| e.event_id).collect();
            let unique: std::collections::HashSet<_> = stored.iter().cloned().collect();
            assert_eq!(stored.len(), unique.len(), "an id was stored twice");
            assert_eq!(unique.len(), distinct.len());
            assert_eq!(accepted, distinct.len() as u64);
        });
    }
}

/// A clock the test moves forward.
struct SteppedClock(std::sync::atomic::AtomicI64);

impl contrail_ingest::Clock for SteppedClock {
    fn now(&self) -> chrono::DateTime<Utc> {
        chrono::DateTime::from_timestamp_millis(self.0.load(std::sync::atomic::Ordering::SeqCst)).unwrap()
    }
}

#[tokio::test]
async fn a_dedupe_window_below_24_hours_is_raised_to_24_hours() {
    const HOUR_MS: i64 = 3_600_000;
    let start = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap().timestamp_millis();
    let clock = Arc::new(SteppedClock(std::sync::atomic::AtomicI64::new(start)));
    let t = TestStack::with(clock.clone(), |c| c.buffer.dedupe_hours = 1);
    let resend = || async {
        let (status, answer) = t.post_json("/v1/batch", &batch("floor-", 1)).await;
        assert_eq!(status, 200, "{answer}");
        (answer["accepted"].as_u64().unwrap(), answer["duplicates"].as_u64().unwrap())
    };
    assert_eq!(resend().await, (1, 0));
    t.flush().await;

    // Two hours on: past the configured hour, inside the 24 h floor.
    clock.0.store(start + 2 * HOUR_MS, std::sync::atomic::Ordering::SeqCst);
    t.stack.flusher.prune_seen().await.unwrap();
    assert_eq!(resend().await, (0, 1), "still remembered: the window is 24 h, not 1 h");

    // Past 24 h the id is forgotten, as documented for the floor.
    clock.0.store(start + 25 * HOUR_MS, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(t.stack.flusher.prune_seen().await.unwrap(), 1);
    assert_eq!(resend().await, (1, 0));
}
