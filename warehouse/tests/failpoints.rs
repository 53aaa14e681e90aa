//! Crash at each step of a compaction (the `fail` crate's failpoints), then
//! restart: every event is in the table exactly once. A binary of its own,
//! because failpoints are process-wide and these tests must not share them.

#![allow(clippy::unwrap_used)]

#[path = "it/harness.rs"]
#[allow(dead_code)]
mod harness;

use harness::{BACKENDS, DAY0, TestLocation, events};

const STEPS: [&str; 5] = [
    "compact::after_parquet_write",
    "compact::before_commit",
    "compact::after_commit",
    "compact::before_gc",
    "compact::during_gc",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_step_is_repaired_by_the_next_run() {
    let scenario = fail::FailScenario::setup();
    for backend in BACKENDS {
        for step in STEPS {
            let t = TestLocation::new(backend);
            // GC steps need consumed files past their grace: a zero grace and an
            // earlier run whose raw file is now collectable.
            let config = contrail_warehouse::CompactorConfig { grace: std::time::Duration::ZERO, ..Default::default() };
            let compactor = contrail_warehouse::Compactor::new(t.location.clone(), config);
            t.put_raw(&events("acme", (0..10).map(|i| format!("a{i}")), DAY0), DAY0, 1).await;
            compactor.run_once().await.unwrap();
            t.put_raw(&events("acme", (5..25).map(|i| format!("a{i}")), DAY0), DAY0 + 1, 2).await;
            t.put_raw(&events("acme", (20..30).map(|i| format!("a{i}")), DAY0), DAY0 + 2, 3).await;

            fail::cfg(step, "return").unwrap();
            let crashed = compactor.run_once().await;
            fail::remove(step);
            assert!(
                matches!(crashed, Err(contrail_warehouse::Error::Injected(at)) if at == step),
                "{backend:?} {step}: {crashed:?}"
            );
            compactor.run_until_caught_up().await.unwrap();
            compactor.run_once().await.unwrap();
            let counts = t.id_counts("acme").await;
            assert_eq!(counts.len(), 30, "{backend:?} {step}: events lost");
            assert!(counts.values().all(|n| *n == 1), "{backend:?} {step}: an event twice");
            assert!(t.raw_keys().await.is_empty(), "{backend:?} {step}: consumed raw files are collected");
        }
    }
    scenario.teardown();
}
