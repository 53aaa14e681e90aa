//! Racing compactors: one wins each version, the others re-plan.

use std::collections::{HashMap, HashSet};

use contrail_warehouse::{Compactor, CompactorConfig};
use futures::TryStreamExt;
use object_store::path::Path;
use serde_json::Value;

use crate::harness::{BACKENDS, DAY0, TestLocation, events};

const COMPACTORS: usize = 4;

/// Rounds per backend. On moto every round costs about 85 requests (each
/// compactor lists `raw/`, `tables/` and the log, reads the new commit, the
/// new raw batch and the newest file's footer and bloom filter, writes its
/// Parquet file and tries the commit): 200 rounds take about 3 minutes there.
const ROUNDS: u64 = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_compactors_racing_round_after_round_commit_every_raw_file_exactly_once() {
    for backend in BACKENDS {
        let started = std::time::Instant::now();
        let t = TestLocation::new(backend);
        // Zero grace: consumed raw batches are collected as the rounds go, as
        // in production, so each run scans only the commits since the oldest
        // batch still waiting.
        let config = CompactorConfig { max_attempts: 64, grace: std::time::Duration::ZERO, ..Default::default() };
        let compactors: Vec<_> = (0..COMPACTORS).map(|_| Compactor::new(t.location.clone(), config.clone())).collect();
        let mut keys = HashSet::new();
        let mut ids = HashSet::new();
        for round in 0..ROUNDS {
            // Each round's batch repeats two ids of the previous round.
            let mut round_ids: Vec<String> = (0..8).map(|i| format!("r{round}-{i}")).collect();
            if round > 0 {
                round_ids.extend((0..2).map(|i| format!("r{}-{i}", round - 1)));
            }
            ids.extend(round_ids.iter().cloned());
            let now = chrono::Utc::now().timestamp_millis();
            keys.insert(t.put_raw(&events("acme", round_ids, DAY0 + round as i64), now, round).await);
            let runs = futures::future::join_all(compactors.iter().map(|c| c.run_once())).await;
            for run in runs {
                run.unwrap_or_else(|e| panic!("{backend:?} round {round}: {e}"));
            }
        }

        // Versions are contiguous, and every raw key is consumed by exactly one commit.
        let table = contrail_warehouse::table::open(&t.location, "acme").await.unwrap().unwrap();
        let latest = table.version().unwrap();
        let log: Vec<_> =
            t.location.store.list(Some(&Path::from("tables/acme/_delta_log"))).try_collect().await.unwrap();
        let versions: HashSet<u64> =
            log.iter().filter_map(|m| m.location.filename()?.strip_suffix(".json")?.parse().ok()).collect();
        assert_eq!(versions, (0..=latest).collect::<HashSet<_>>(), "{backend:?}: versions are contiguous");
        let mut consumed_by: HashMap<String, usize> = HashMap::new();
        for version in 0..=latest {
            let bytes = table.log_store().read_commit_entry(version).await.unwrap().unwrap();
            for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let action: Value = serde_json::from_slice(line).unwrap();
                if let Some(keys) = action["commitInfo"][contrail_warehouse::table::CONSUMED_KEY].as_array() {
                    for key in keys {
                        *consumed_by.entry(key.as_str().unwrap().to_owned()).or_default() += 1;
                    }
                }
            }
        }
        assert_eq!(consumed_by.keys().cloned().collect::<HashSet<_>>(), keys, "{backend:?}: every raw file consumed");
        assert!(consumed_by.values().all(|n| *n == 1), "{backend:?}: a raw file consumed twice");
        let counts = t.id_counts("acme").await;
        assert_eq!(counts.keys().cloned().collect::<HashSet<_>>(), ids);
        assert!(counts.values().all(|n| *n == 1), "{backend:?}: an event twice");
        eprintln!(
            "{backend:?}: {COMPACTORS} compactors x {ROUNDS} rounds, {} versions, {:.1} s",
            latest + 1,
            started.elapsed().as_secs_f64()
        );
    }
}
