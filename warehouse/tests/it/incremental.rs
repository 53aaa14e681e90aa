//! A compactor that stays up reads what changed since its last run, not the
//! whole table: each commit file once, and each table file's footer and
//! bloom filter once.

use std::time::Duration;

use contrail_warehouse::{Compactor, CompactorConfig};

use crate::faults::{Policy, faulty_location};
use crate::harness::{BACKENDS, DAY0, TestLocation, events};

const RUNS: u64 = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_runs_read_no_more_than_the_first_ones() {
    for backend in BACKENDS {
        let t = TestLocation::new(backend);
        let (location, root, store) = faulty_location(&t.location, Policy::Never);
        let compactor =
            Compactor::new(location, CompactorConfig { grace: Duration::ZERO, ..CompactorConfig::default() });
        let mut per_run = Vec::new();
        for run in 0..RUNS {
            // One small file per run, all on one day (a partition between two
            // `optimize`s); each batch repeats an id of the run before.
            let mut ids: Vec<String> = (0..8).map(|i| format!("r{run}-{i}")).collect();
            ids.extend(run.checked_sub(1).map(|previous| format!("r{previous}-0")));
            t.put_raw(&events("acme", ids, DAY0 + run as i64), DAY0 + run as i64, run).await;
            root.take_reads();
            store.take_reads();
            let report = compactor.run_once().await.unwrap();
            assert_eq!((report.commits, report.duplicates), (1, usize::from(run > 0)), "{backend:?} run {run}");
            let reads: Vec<String> = root.take_reads().into_iter().chain(store.take_reads()).collect();
            let commits = reads.iter().filter(|p| p.contains("/_delta_log/") && p.ends_with(".json")).count();
            let parquet = reads.iter().filter(|p| p.ends_with(".parquet")).count();
            per_run.push((commits, parquet));
        }
        // Run k has k files on its day, and its look-back (from the waiting
        // batch's flush time, DAY0 + k ms, minus the clock margin) reaches
        // all k commits before it, made at the real time, later. Re-reading
        // them would cost at least k commit reads and 2k footer and bloom
        // filter reads; reading only what is new costs the same at
        // run 29 as at run 3 (give or take a bloom filter's false positive,
        // which costs one column read).
        let early = per_run[3];
        for (run, (commits, parquet)) in per_run.iter().enumerate().skip(3) {
            assert!(
                *commits <= early.0,
                "{backend:?} run {run} read {commits} commit files (run 3: {}); {per_run:?}",
                early.0
            );
            assert!(
                *parquet <= early.1 + 2,
                "{backend:?} run {run} made {parquet} Parquet reads (run 3: {}); {per_run:?}",
                early.1
            );
        }
        eprintln!("{backend:?}: (commit, parquet) reads per run {per_run:?}");
    }
}
