//! `contrail serve`: the whole chain in one process on a local directory.
//!
//! ```text
//! <data>/secret          the keyring's secret (mode 0600), unless configured
//! <data>/buffer.sqlite   the durable buffer (WAL), standing in for the Durable Objects
//! <data>/store/          the local object store: raw/project=<p>/…, rejected/project=<p>/…, tables/<p>/
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use contrail_edge::{Ingestor, KeyKind, Keyring, Limits, ProjectId};
use contrail_ingest::{Clock, FlushTarget, Flusher, IngestState, RateLimiter};
use contrail_query::{Engine, QueryState};
use contrail_warehouse::table::TableCache;
use contrail_warehouse::{Compactor, Location};
use object_store::ObjectStore;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::compact::{self, Cadence};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::router;
use crate::secret::{self, SecretSource};

/// File name of the buffer database in the data directory.
pub const BUFFER_FILE: &str = "buffer.sqlite";
/// Directory of the local object store in the data directory.
pub const STORE_DIR: &str = "store";
/// How often live streams look for new events.
pub const LIVE_POLL: Duration = Duration::from_millis(500);
/// The project `serve` prints keys for on start.
pub const DEMO_PROJECT: &str = "demo";

/// Everything `serve` runs, built but not yet listening. One object store
/// handle (the location's) is shared by the flusher, the compactor and the
/// query engine, and one table cache by the last two.
pub struct Stack {
    /// The ingest handlers' state.
    pub ingest: Arc<IngestState>,
    /// The flusher.
    pub flusher: Arc<Flusher>,
    /// The query API's state.
    pub query: Arc<QueryState>,
    /// Where raw batches and tables live (`<data>/store`).
    pub location: Location,
    /// Tables, commits and probes read, shared by the compactor and the engine.
    pub tables: Arc<TableCache>,
    /// Where the secret came from.
    pub secret_source: SecretSource,
    /// The data directory.
    pub data: PathBuf,
}

/// The local store location at `<data>/store`.
pub fn local_location(data: &Path) -> Result<Location> {
    Ok(Location::local(&data.join(STORE_DIR))?)
}

impl Stack {
    /// Opens the data directory (creating the secret on first start), the
    /// buffer and the store.
    pub fn open(config: &Config, clock: Arc<dyn Clock>) -> Result<Self> {
        let location = local_location(&config.server.data)?;
        Self::open_at(config, clock, location)
    }

    /// Like [`Stack::open`], with `store` in place of the location's store
    /// (raw batches, table files, readiness) for every part; Delta's log goes
    /// through the location's root store. Tests inject fault-injecting stores
    /// here.
    pub fn open_with_store(config: &Config, clock: Arc<dyn Clock>, store: Arc<dyn ObjectStore>) -> Result<Self> {
        let mut location = local_location(&config.server.data)?;
        location.store = store;
        Self::open_at(config, clock, location)
    }

    fn open_at(config: &Config, clock: Arc<dyn Clock>, location: Location) -> Result<Self> {
        let data = config.server.data.clone();
        std::fs::create_dir_all(&data).map_err(Error::io(format!("creating {}", data.display())))?;
        let (keyring, secret_source) = secret::keyring(&config.keys, &data, true)?;
        let (buffer_settings, warnings) = config.buffer.settings();
        for warning in &warnings {
            tracing::warn!("{warning}");
        }
        let target =
            FlushTarget { store: location.store.clone(), region: config.server.region.clone(), clock: clock.clone() };
        let (buffer, flusher) = contrail_ingest::open(&data.join(BUFFER_FILE), buffer_settings, target)?;
        let ingest = Arc::new(IngestState {
            ingestor: Ingestor::new(keyring.clone(), Limits::default(), None),
            buffer,
            clock,
            rate: RateLimiter::new(config.ingest.rate()),
            allowed_origins: config.projects.iter().map(|(p, c)| (p.clone(), c.allowed_origins.clone())).collect(),
            trust_forwarded_for: config.server.trust_forwarded_for,
        });
        let tables = Arc::new(TableCache::default());
        let engine = Engine::new(location.clone(), tables.clone(), config.query.clone())?;
        let mut projects = configured_projects(config);
        projects.push(ProjectId::parse(DEMO_PROJECT).expect("valid project name"));
        let query = Arc::new(QueryState::new(engine, keyring, LIVE_POLL, projects));
        Ok(Self { ingest, flusher: Arc::new(flusher), query, location, tables, secret_source, data })
    }

    /// Starts the flusher loop; it stops (after a final flush) when `shutdown` flips.
    pub fn spawn_flusher(&self, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        let flusher = self.flusher.clone();
        tokio::spawn(async move { flusher.run(shutdown).await })
    }

    /// The compactor over this stack's location, sharing its table cache.
    pub fn compactor(&self, config: &Config) -> Compactor {
        Compactor::new(self.location.clone(), config.compact.compactor(false)).sharing_tables(self.tables.clone())
    }

    /// The object store every part reads and writes.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.location.store
    }

    /// The keyring.
    pub fn keyring(&self) -> &Keyring {
        &self.query.keyring
    }
}

/// Runs `contrail serve` until Ctrl-C or SIGTERM.
pub async fn run(config: Config, clock: Arc<dyn Clock>) -> Result<()> {
    let stack = Stack::open(&config, clock)?;
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .map_err(Error::io(format!("listening on {}", config.server.listen)))?;
    let addr = listener.local_addr().map_err(Error::io("reading the listening address"))?;
    print_banner(&stack, addr, &config);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let flusher = stack.spawn_flusher(shutdown_rx.clone());
    let compactor = (config.compact.every_secs > 0).then(|| {
        let cadence = Cadence::new(&config.compact, Duration::from_secs(config.compact.every_secs));
        tokio::spawn(compact::run_loop(stack.compactor(&config), config.compact.clone(), cadence, shutdown_rx))
    });
    let query = stack.query.clone();
    axum::serve(listener, router::serve(&stack).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            query.stop_streams();
        })
        .await
        .map_err(Error::io("serving HTTP"))?;
    tracing::info!("shutting down: flushing the buffer");
    let _ = shutdown_tx.send(true);
    let _ = flusher.await;
    if let Some(compactor) = compactor {
        let _ = compactor.await;
    }
    Ok(())
}

/// The store location of `contrail query` and `contrail compact`: `--store`,
/// else the section's `store`, else `<data>/store`.
pub fn location(store: Option<String>, configured: Option<&String>, data: &Path) -> Result<Location> {
    match store.or_else(|| configured.cloned()) {
        Some(url) => Ok(Location::parse(&url)?),
        None => local_location(data),
    }
}

/// Runs `contrail query`: the query API alone over `store` (or `<data>/store`),
/// until Ctrl-C or SIGTERM.
pub async fn run_query(config: Config, store: Option<String>) -> Result<()> {
    let location = location(store, config.query.store.as_ref(), &config.server.data)?;
    let (keyring, _) = secret::keyring(&config.keys, &config.server.data, false)?;
    let engine = Engine::new(location.clone(), Arc::default(), config.query.clone())?;
    let query = Arc::new(QueryState::new(engine, keyring, LIVE_POLL, configured_projects(&config)));
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .map_err(Error::io(format!("listening on {}", config.server.listen)))?;
    let addr = listener.local_addr().map_err(Error::io("reading the listening address"))?;
    println!("Contrail query API on http://{addr}  (SQL: POST /v1/sql, docs: /docs)");
    let streams = query.clone();
    axum::serve(listener, router::query(query, location.store).into_make_service())
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            streams.stop_streams();
        })
        .await
        .map_err(Error::io("serving HTTP"))
}

/// The projects named in `[projects.<name>]` (a name that is not a valid
/// project name configures nothing and is left out).
fn configured_projects(config: &Config) -> Vec<ProjectId> {
    config.projects.keys().filter_map(|name| ProjectId::parse(name).ok()).collect()
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let term = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

fn print_banner(stack: &Stack, addr: SocketAddr, config: &Config) {
    let demo = ProjectId::parse(DEMO_PROJECT).expect("valid project name");
    let keys = stack.keyring();
    let write = keys.mint(KeyKind::Write, &demo);
    let created = match stack.secret_source {
        SecretSource::Generated => format!(" (new secret in {})", stack.data.join(secret::SECRET_FILE).display()),
        SecretSource::DataDir => String::new(),
        SecretSource::Config => " (secret from configuration)".into(),
    };
    println!(
        "Contrail is listening on http://{addr}{created}\n\
         \n  project     {DEMO_PROJECT}\n  write key   {write}\n  query key   {query}\n  admin token {}\n\
         \n  dashboard   http://{addr}/#key={query}\
         \n  ingest      http://{addr}/v1/batch (Segment-compatible: /v1/track, /v1/page, … too)\
         \n  raw batches {} (compacted into tables/<project>/ every {} s, upkeep every {} s)\
         \n  SQL         http://{addr}/v1/sql   API docs http://{addr}/docs\
         \n  metrics     http://{addr}/metrics   health http://{addr}/healthz\n\
         \nTry it:\n  curl -u '{write}:' http://{addr}/v1/track -H 'content-type: application/json' \\\n    -d '{{\"userId\":\"u1\",\"event\":\"Signed Up\",\"properties\":{{\"plan\":\"pro\"}}}}'\
         \n  curl http://{addr}/v1/sql -H 'authorization: Bearer {query}' \\\n    -d '{{\"sql\":\"SELECT event, count(*) AS n FROM events GROUP BY event\"}}'\n",
        keys.admin_token(),
        stack.data.join(STORE_DIR).join("raw").display(),
        config.compact.every_secs,
        config.compact.maintain_every_secs,
        query = keys.mint(KeyKind::Query, &demo),
    );
}
