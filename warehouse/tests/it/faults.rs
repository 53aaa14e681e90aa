//! Object stores that fail on purpose, and the ambiguous-commit test.

use std::sync::Arc;

use contrail_testkit::faulty_store::{Fault, FaultyStore};
use contrail_warehouse::{Compactor, CompactorConfig, Location};
use object_store::PutOptions;
use object_store::path::Path;

use crate::harness::{BACKENDS, DAY0, TestLocation, events};

/// Which puts a [`FaultyStore`] fails.
#[derive(Debug)]
pub enum Policy {
    /// The next create-only put whose path contains the text is performed,
    /// then reported as failed (a timeout after success).
    AmbiguousOnce(&'static str),
    /// Each write fails with probability `p`, half before and half after it
    /// is performed (xorshift state for reproducibility).
    Random {
        state: u64,
        p: f64,
    },
    Never,
}

impl Policy {
    /// The policy as a [`FaultyStore`]'s decision function.
    pub fn decider(mut self) -> impl FnMut(&Path, &PutOptions) -> Fault + Send + 'static {
        move |path, opts| {
            let create = matches!(opts.mode, object_store::PutMode::Create);
            match &mut self {
                Policy::AmbiguousOnce(text) if create && path.as_ref().contains(*text) => {
                    self = Policy::Never;
                    Fault::AfterWrite
                }
                Policy::Random { state, p } => {
                    *state ^= *state << 13;
                    *state ^= *state >> 7;
                    *state ^= *state << 17;
                    let roll = (*state % 10_000) as f64 / 10_000.0;
                    if roll < *p / 2.0 {
                        Fault::BeforeWrite
                    } else if roll < *p {
                        Fault::AfterWrite
                    } else {
                        Fault::None
                    }
                }
                _ => Fault::None,
            }
        }
    }
}

/// A location whose stores go through [`FaultyStore`]s: Delta's (the root
/// store) with `policy`, the compactor's own with none.
pub fn faulty_location(base: &Location, policy: Policy) -> (Location, Arc<FaultyStore>, Arc<FaultyStore>) {
    let root = Arc::new(FaultyStore::new(base.root_store.clone(), policy.decider()));
    let store = Arc::new(FaultyStore::new(base.store.clone(), Policy::Never.decider()));
    let location = Location { store: store.clone(), root_store: root.clone(), base: base.base.clone() };
    (location, root, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_commit_is_neither_duplicated_nor_lost() {
    for backend in BACKENDS {
        let t = TestLocation::new(backend);
        // Create the table first, so the ambiguous put is the data commit.
        t.put_raw(&events("acme", ["warm".into()], DAY0), DAY0, 1).await;
        crate::harness::compactor(&t).run_once().await.unwrap();

        t.put_raw(&events("acme", (0..30).map(|i| format!("e{i}")), DAY0), DAY0 + 1, 2).await;
        let (location, _root, _) = faulty_location(&t.location, Policy::AmbiguousOnce("_delta_log/"));
        let compactor = Compactor::new(location, CompactorConfig::default());
        // The commit is written, reported failed, re-planned: the re-plan sees
        // its raw file consumed by the commit that did land.
        let report = compactor.run_once().await.unwrap();
        assert_eq!(report.commits, 0, "{backend:?}: the ambiguous commit is not counted, and not redone");
        assert_eq!(report.retries, 1);
        let counts = t.id_counts("acme").await;
        assert_eq!(counts.len(), 31);
        assert!(counts.values().all(|n| *n == 1), "{backend:?}");
        let table = contrail_warehouse::table::open(&t.location, "acme").await.unwrap().unwrap();
        assert_eq!(table.version(), Some(2), "create, first commit, the ambiguous commit: no fourth version");
    }
}
