//! An object store that fails puts on purpose and records reads and lists:
//! how tests make a write that happened look like one that failed (a timeout
//! after success), and count what a component reads.

use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult,
};

/// What happens to one put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The put goes through.
    None,
    /// An error is reported and nothing is written.
    BeforeWrite,
    /// The object is written, then an error is reported.
    AfterWrite,
}

type Decide = Box<dyn FnMut(&Path, &PutOptions) -> Fault + Send>;

/// Wraps a real store. Each put is decided by a function (which may keep
/// state: "the first two", "the next log write", "30 % at random"); every
/// other call goes through. The path of every GET is recorded.
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    decide: Mutex<Decide>,
    reads: Mutex<Vec<String>>,
    lists: Mutex<Vec<String>>,
}

impl FaultyStore {
    /// Wraps `inner`, deciding each put with `decide`.
    pub fn new(inner: Arc<dyn ObjectStore>, decide: impl FnMut(&Path, &PutOptions) -> Fault + Send + 'static) -> Self {
        Self { inner, decide: Mutex::new(Box::new(decide)), reads: Mutex::default(), lists: Mutex::default() }
    }

    /// Decides the following puts with `decide` instead.
    pub fn set(&self, decide: impl FnMut(&Path, &PutOptions) -> Fault + Send + 'static) {
        *self.decide.lock().unwrap() = Box::new(decide);
    }

    /// The paths read (one entry per GET, ranged or not) since the last call.
    pub fn take_reads(&self) -> Vec<String> {
        std::mem::take(&mut *self.reads.lock().unwrap())
    }

    /// The prefixes listed (`""` for the whole store) since the last call.
    pub fn take_lists(&self) -> Vec<String> {
        std::mem::take(&mut *self.lists.lock().unwrap())
    }

    fn listed(&self, prefix: Option<&Path>) {
        self.lists.lock().unwrap().push(prefix.map(Path::to_string).unwrap_or_default());
    }
}

impl fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyStore").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
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
        let fault = (self.decide.lock().unwrap())(location, &opts);
        match fault {
            Fault::None => self.inner.put_opts(location, payload, opts).await,
            Fault::BeforeWrite => Err(injected()),
            Fault::AfterWrite => {
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
        self.listed(prefix);
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.listed(prefix);
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
