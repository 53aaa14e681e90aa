//! Small-file merging and vacuum.

use std::collections::HashSet;
use std::time::Duration;

use contrail_warehouse::{MaintainConfig, maintain};

use crate::harness::{BACKENDS, DAY_MS, DAY0, TestLocation, compactor, events};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_files_are_merged_per_partition_and_vacuum_removes_the_old_ones() {
    for backend in BACKENDS {
        let t = TestLocation::new(backend);
        // Ten runs of ten events each: ten small files in each of two partitions.
        for run in 0..10u64 {
            let mut batch = events("acme", (0..10).map(|i| format!("r{run}-{i}")), DAY0 + 1_000);
            batch.extend(events("acme", (0..5).map(|i| format!("n{run}-{i}")), DAY0 + DAY_MS + 1_000));
            t.put_raw(&batch, DAY0 + 2 * DAY_MS + run as i64, run).await;
            compactor(&t).run_once().await.unwrap();
        }
        let table = contrail_warehouse::table::open(&t.location, "acme").await.unwrap().unwrap();
        assert_eq!(contrail_warehouse::table::all_files(&table).unwrap().len(), 20);
        let before = t.id_counts("acme").await;
        // A file no commit references yet: what a compactor in another process
        // has written and is about to commit. Vacuum must leave it, even with
        // no retention, or that commit would point at a deleted file.
        let in_flight = object_store::path::Path::from("tables/acme/date=2026-01-01/part-in-flight.zstd.parquet");
        object_store::ObjectStoreExt::put(t.location.store.as_ref(), &in_flight, b"not yet committed".to_vec().into())
            .await
            .unwrap();

        let config = MaintainConfig { retention: Duration::ZERO, ..Default::default() };
        let report =
            maintain(&t.location, &Default::default(), &config, chrono::Utc::now().timestamp_millis()).await.unwrap();
        assert_eq!((report.partitions_merged, report.files_merged), (2, 20), "{backend:?}");
        assert!(report.files_vacuumed >= 20, "{backend:?}: the replaced files are deleted: {report:?}");
        assert!(
            object_store::ObjectStoreExt::head(t.location.store.as_ref(), &in_flight).await.is_ok(),
            "{backend:?}: a file younger than an hour that no commit references is kept"
        );

        let table = contrail_warehouse::table::open(&t.location, "acme").await.unwrap().unwrap();
        let files = contrail_warehouse::table::all_files(&table).unwrap();
        assert_eq!(files.len(), 2, "one file per partition");
        let after = t.id_counts("acme").await;
        assert_eq!(after, before, "{backend:?}: merging changes no row");
        assert_eq!(after.len(), 150);
        assert!(after.values().all(|n| *n == 1));
        let dates: HashSet<i32> = files.iter().map(|f| f.date).collect();
        assert_eq!(dates.len(), 2);
        // Nothing to do the second time.
        let again =
            maintain(&t.location, &Default::default(), &config, chrono::Utc::now().timestamp_millis()).await.unwrap();
        assert_eq!(again.files_merged, 0);
    }
}
