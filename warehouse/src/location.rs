//! Where the data lives: a local directory or an S3-compatible bucket (R2).
//!
//! Both are an `object_store` rooted at a base URL; raw batches are under
//! `raw/`, tables under `tables/<project>/`. Delta needs the store "at the root"
//! plus the table's URL, so both are kept.

use std::path::Path as FsPath;
use std::sync::{Arc, Once};

use deltalake::logstore::{LogStore, LogStoreFactory, StorageConfig, default_logstore, logstore_factories};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreScheme};
use url::Url;

use crate::error::{Error, Result};

/// A data location: the store seen from its base, and what Delta needs.
#[derive(Debug, Clone)]
pub struct Location {
    /// Store rooted at the base URL (`raw/…`, `tables/…` are relative to it).
    pub store: Arc<dyn ObjectStore>,
    /// Store rooted at the bucket or filesystem root, for Delta.
    pub root_store: Arc<dyn ObjectStore>,
    /// Base URL, ending in `/`.
    pub base: Url,
}

/// S3 connection settings; unset fields come from the standard `AWS_*`
/// environment variables (`AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`, …).
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// Endpoint URL, e.g. `https://<account>.r2.cloudflarestorage.com` or `http://127.0.0.1:9000`.
    pub endpoint: Option<String>,
    /// Region (`auto` for R2).
    pub region: Option<String>,
    /// Access key id.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<String>,
    /// Allow plain HTTP (local test servers).
    pub allow_http: bool,
}

impl Location {
    /// A local directory (created if missing).
    pub fn local(dir: &FsPath) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::Location(format!("creating {}: {e}", dir.display())))?;
        let dir = dir.canonicalize().map_err(|e| Error::Location(format!("{}: {e}", dir.display())))?;
        let base = Url::from_directory_path(&dir)
            .map_err(|()| Error::Location(format!("{} is not absolute", dir.display())))?;
        Ok(Self {
            store: Arc::new(LocalFileSystem::new_with_prefix(&dir)?),
            root_store: Arc::new(LocalFileSystem::new()),
            base,
        })
    }

    /// An S3-compatible bucket, `s3://bucket[/prefix]`.
    pub fn s3(url: &Url, options: &S3Options) -> Result<Self> {
        let bucket = url.host_str().ok_or_else(|| Error::Location(format!("{url}: no bucket")))?;
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket).with_virtual_hosted_style_request(false);
        if let Some(endpoint) = &options.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &options.region {
            builder = builder.with_region(region);
        }
        if let (Some(key), Some(secret)) = (&options.access_key_id, &options.secret_access_key) {
            builder = builder.with_access_key_id(key).with_secret_access_key(secret);
        }
        if options.allow_http {
            builder = builder.with_allow_http(true);
        }
        let root: Arc<dyn ObjectStore> = Arc::new(builder.build()?);
        let prefix = url.path().trim_matches('/');
        let store: Arc<dyn ObjectStore> =
            if prefix.is_empty() { root.clone() } else { Arc::new(PrefixStore::new(root.clone(), prefix)) };
        let base = Url::parse(&format!(
            "s3://{bucket}/{}",
            if prefix.is_empty() { String::new() } else { format!("{prefix}/") }
        ))
        .map_err(|e| Error::Location(e.to_string()))?;
        register_s3_logstore();
        Ok(Self { store, root_store: root, base })
    }

    /// Parses `file:///path`, a plain path, or `s3://bucket/prefix` (credentials from the environment).
    pub fn parse(text: &str) -> Result<Self> {
        match Url::parse(text) {
            Ok(url) => match ObjectStoreScheme::parse(&url) {
                Ok((ObjectStoreScheme::Local, _)) => {
                    Self::local(&url.to_file_path().map_err(|()| Error::Location(format!("{text}: not a file path")))?)
                }
                Ok((ObjectStoreScheme::AmazonS3, _)) if url.scheme() == "s3" => Self::s3(&url, &S3Options::default()),
                _ => Err(Error::Location(format!("{text}: use file:///path or s3://bucket/prefix"))),
            },
            Err(_) => Self::local(FsPath::new(text)),
        }
    }

    /// The URL of a project's table, `<base>tables/<project>/`.
    pub fn table_url(&self, project: &str) -> Url {
        self.base.join(&crate::table::prefix(project)).expect("project names are URL-safe")
    }
}

/// Delta only knows `file://` and `memory://` without its AWS crate. Our S3
/// store does create-only puts natively (`If-None-Match: *`, which R2 and
/// current S3 honour), which is all Delta's default log store needs, so it is
/// registered for `s3://` rather than pulling in a DynamoDB lock client.
fn register_s3_logstore() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        logstore_factories().insert(Url::parse("s3://").expect("valid"), Arc::new(DefaultFactory));
    });
}

struct DefaultFactory;

impl LogStoreFactory for DefaultFactory {
    fn with_options(
        &self,
        prefixed_store: Arc<dyn ObjectStore>,
        root_store: Arc<dyn ObjectStore>,
        location: &Url,
        options: &StorageConfig,
    ) -> deltalake::DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(prefixed_store, root_store, location, options))
    }
}
