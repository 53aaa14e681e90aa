//! Object stores that fail on purpose, and the ambiguous-commit test.

use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use contrail_warehouse::{Compactor, CompactorConfig, Location};
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult,
};

use crate::harness::{BACKENDS, DAY0, TestLocation, events};

/// When a [`FaultyStore`] fails a write.
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

/// Wraps a store, fails writes according to a [`Policy`] and records the
/// paths it is asked to read.
#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    policy: Mutex<Policy>,
    reads: Mutex<Vec<String>>,
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

enum Fail {
    No,
    Before,
    After,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn ObjectStore>, policy: Policy) -> Self {
        Self { inner, policy: Mutex::new(policy), reads: Mutex::default() }
    }

    /// The paths read (one entry per GET, ranged or not) since the last call.
    pub fn take_reads(&self) -> Vec<String> {
        std::mem::take(&mut *self.reads.lock().unwrap())
    }

    pub fn set(&self, policy: Policy) {
        *self.policy.lock().unwrap() = policy;
    }

    fn decide(&self, path: &Path, create: bool) -> Fail {
        let mut policy = self.policy.lock().unwrap();
        match &mut *policy {
            Policy::AmbiguousOnce(text) if create && path.as_ref().contains(*text) => {
                *policy = Policy::Never;
                Fail::After
            }
            Policy::Random { state, p } => {
                *state ^= *state << 13;
                *state ^= *state >> 7;
                *state ^= *state << 17;
                let roll = (*state % 10_000) as f64 / 10_000.0;
                if roll < *p / 2.0 {
                    Fail::Before
                } else if roll < *p {
                    Fail::After
                } else {
                    Fail::No
                }
            }
            _ => Fail::No,
        }
    }
}

fn injected() -> object_store::Error {
    object_store::Error::Generic { store: "faulty", source: "injected fault".into() }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let create = matches!(opts.mode, object_store::PutMode::Create);
        match self.decide(location, create) {
            Fail::No => self.inner.put_opts(location, payload, opts).await,
            Fail::Before => Err(injected()),
            Fail::After => {
                self.inner.put_opts(location, payload, opts).await?;
                Err(injected())
            }
        }
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }
    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        self.reads.lock().unwrap().push(location.to_string());
        self.inner.get_opts(location, options).await
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// A location whose every store goes through `faulty` wrappers sharing one policy.
pub fn faulty_location(base: &Location, policy: Policy) -> (Location, Arc<FaultyStore>, Arc<FaultyStore>) {
    let root = Arc::new(FaultyStore::new(base.root_store.clone(), policy));
    let store = Arc::new(FaultyStore::new(base.store.clone(), Policy::Never));
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
