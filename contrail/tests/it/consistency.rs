//! Queries never read a wrong number while the compactor commits underneath:
//! every acknowledged, flushed event counts once, before, during and after
//! its compaction, even when another edge re-sends whole raw batches.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use serde_json::{Value, json};

use crate::harness::{TestStack, objects};
use crate::sql::track;

const ROUNDS: usize = 30;
const PER_ROUND: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_stay_exact_while_the_compactor_commits() {
    let stack = Arc::new(TestStack::new());
    // Lower bound: events flushed by the writer's own flush call. Upper bound:
    // events sent, counted before sending, because the stack's background
    // flusher may make a batch readable before the writer's flush returns.
    let flushed = Arc::new(AtomicI64::new(0));
    let sent = Arc::new(AtomicI64::new(0));
    let done = Arc::new(AtomicBool::new(false));

    let writer = {
        let (stack, flushed, sent) = (stack.clone(), flushed.clone(), sent.clone());
        tokio::spawn(async move {
            for round in 0..ROUNDS {
                let batch: Vec<Value> = (0..PER_ROUND)
                    .map(|i| track(&format!("c-{round}-{i}"), &format!("u{}", i % 5), "Tick", "2026-11-20T12:00:00Z"))
                    .collect();
                sent.fetch_add(PER_ROUND as i64, Ordering::SeqCst);
                let (status, answer) = stack.post_json("/v1/batch", &json!({ "batch": batch })).await;
                assert_eq!(status, axum::http::StatusCode::OK, "{answer}");
                stack.flush().await;
                flushed.fetch_add(PER_ROUND as i64, Ordering::SeqCst);
                if round % 3 == 2 {
                    // Another region's edge re-sends an earlier batch: same
                    // events under a different key.
                    let store = stack.stack.store().clone();
                    let raw = objects(store.as_ref(), "raw").await;
                    let (_, bytes) = &raw[round % raw.len()];
                    let at = chrono::Utc::now().timestamp_millis();
                    let key = contrail_edge::raw_key::batch_key("raw", "demo", "other", at, "buf:other", round as u64);
                    store.put(&ObjectPath::from(key), bytes.clone().into()).await.unwrap();
                }
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        })
    };
    let compactor = {
        let (stack, done) = (stack.clone(), done.clone());
        tokio::spawn(async move {
            // Consumed raw batches are kept 3 s, far longer than any query here.
            let compactor = stack.compactor(Duration::from_secs(3));
            let mut commits = 0;
            while !done.load(Ordering::SeqCst) {
                commits += compactor.run_once().await.expect("compaction succeeds").commits;
                tokio::time::sleep(Duration::from_millis(60)).await;
            }
            commits
        })
    };

    let mut queries = 0;
    while !writer.is_finished() {
        let before = flushed.load(Ordering::SeqCst);
        let rows = stack.rows("SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM events").await;
        let after = sent.load(Ordering::SeqCst);
        let (n, d) = (rows[0]["n"].as_i64().unwrap(), rows[0]["d"].as_i64().unwrap());
        assert_eq!(n, d, "an event was read twice (query {queries})");
        assert!(
            before <= n && n <= after,
            "read {n} events while {before} were flushed and {after} sent (query {queries})"
        );
        queries += 1;
    }
    writer.await.unwrap();
    done.store(true, Ordering::SeqCst);
    let commits = compactor.await.unwrap();
    assert!(commits >= 5, "the compactor committed while queries ran ({commits} commits)");
    assert!(queries >= 20, "enough queries overlapped the commits ({queries})");

    stack.compact().await;
    let total = (ROUNDS * PER_ROUND) as i64;
    assert_eq!(stack.number("SELECT count(*) FROM events").await, total);
    assert_eq!(stack.number("SELECT count(DISTINCT event_id) FROM events").await, total);
}
