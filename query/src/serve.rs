//! `contrail serve`: the whole chain in one process on a local directory.
//!
//! ```text
//! <data>/secret          the keyring's secret (mode 0600), unless configured
//! <data>/buffer.sqlite   the durable buffer (WAL), standing in for the Durable Objects
//! <data>/store/          the local object store: raw/…, rejected/…
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use contrail_edge::{Ingestor, KeyKind, Keyring, Limits, ProjectId};
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::api::QueryState;
use crate::app::{AppState, app_with_query};
use crate::buffer::{Buffer, open_connection};
use crate::clock::Clock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::flush::Flusher;
use crate::rate_limit::RateLimiter;
use crate::secret::{self, SecretSource};
use crate::sql::Engine;
use crate::telemetry;

/// File name of the buffer database in the data directory.
pub const BUFFER_FILE: &str = "buffer.sqlite";
/// Directory of the local object store in the data directory.
pub const STORE_DIR: &str = "store";
/// How often live streams look for new events.
pub const LIVE_POLL: std::time::Duration = std::time::Duration::from_millis(500);
/// The project `serve` prints keys for on start.
pub const DEMO_PROJECT: &str = "demo";

/// Everything `serve` runs, built but not yet listening.
pub struct Stack {
    /// Handler state (shared with the router).
    pub state: Arc<AppState>,
    /// The flusher.
    pub flusher: Arc<Flusher>,
    /// Where the secret came from.
    pub secret_source: SecretSource,
    /// The data directory.
    pub data: PathBuf,
    /// The query API's state (engine over `<data>/store`).
    pub query: Arc<QueryState>,
}

/// The local object store rooted at `<data>/store`.
pub fn local_store(data: &Path) -> Result<Arc<dyn ObjectStore>> {
    let root = data.join(STORE_DIR);
    std::fs::create_dir_all(&root).map_err(Error::io(format!("creating {}", root.display())))?;
    Ok(Arc::new(LocalFileSystem::new_with_prefix(&root)?))
}

impl Stack {
    /// Opens the data directory (creating the secret on first start), the
    /// buffer and the store.
    pub fn open(config: &Config, clock: Arc<dyn Clock>) -> Result<Self> {
        let store = local_store(&config.server.data)?;
        Self::open_with_store(config, clock, store)
    }

    /// Like [`Stack::open`], flushing to `store` instead of `<data>/store`
    /// (tests inject fault-injecting stores here).
    pub fn open_with_store(config: &Config, clock: Arc<dyn Clock>, store: Arc<dyn ObjectStore>) -> Result<Self> {
        let data = config.server.data.clone();
        std::fs::create_dir_all(&data).map_err(Error::io(format!("creating {}", data.display())))?;
        let (keyring, secret_source) = secret::keyring(&config.keys, &data, true)?;
        let wake = Arc::new(Notify::new());
        let buffer_path = data.join(BUFFER_FILE);
        let buffer = Buffer::start(&buffer_path, config.buffer.flush_events, wake)?;
        let flusher = Flusher::new(
            open_connection(&buffer_path)?,
            store.clone(),
            clock.clone(),
            buffer.clone(),
            config.buffer.clone(),
            config.server.region.clone(),
        )?;
        let state = Arc::new(AppState {
            ingestor: Ingestor::new(keyring, Limits::default(), None),
            buffer,
            clock,
            rate: RateLimiter::new(config.ingest.rate_limit_per_sec, config.ingest.rate_limit_burst),
            projects: config.projects.clone(),
            trust_forwarded_for: config.server.trust_forwarded_for,
            store,
            metrics: telemetry::prometheus(),
        });
        let location = contrail_warehouse::Location::local(&data.join(STORE_DIR))?;
        let query = Arc::new(QueryState {
            engine: Engine::new(location, config.query.clone())?,
            keyring: state.ingestor.keyring().clone(),
            live_poll: LIVE_POLL,
        });
        Ok(Self { state, flusher: Arc::new(flusher), secret_source, data, query })
    }

    /// Starts the flusher loop; it stops (after a final flush) when `shutdown` flips.
    pub fn spawn_flusher(&self, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        let flusher = self.flusher.clone();
        tokio::spawn(async move { flusher.run(shutdown).await })
    }

    /// The keyring.
    pub fn keyring(&self) -> &Keyring {
        self.state.ingestor.keyring()
    }
}

/// Runs `contrail serve` until Ctrl-C or SIGTERM.
pub async fn run(config: Config, clock: Arc<dyn Clock>) -> Result<()> {
    let stack = Stack::open(&config, clock)?;
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .map_err(Error::io(format!("listening on {}", config.server.listen)))?;
    let addr = listener.local_addr().map_err(Error::io("reading the listening address"))?;
    print_banner(&stack, addr, config.compact.every_secs);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let flusher = stack.spawn_flusher(shutdown_rx.clone());
    let compactor = (config.compact.every_secs > 0).then(|| {
        let location = contrail_warehouse::Location::local(&stack.data.join(STORE_DIR));
        let every = std::time::Duration::from_secs(config.compact.every_secs);
        let settings = config.compact.compactor(false);
        let tables = stack.query.engine.tables();
        tokio::spawn(async move {
            match location {
                Ok(location) => {
                    let compactor = contrail_warehouse::Compactor::new(location, settings).sharing_tables(tables);
                    compact_loop(compactor, every, shutdown_rx).await
                }
                Err(e) => tracing::error!(error = %e, "compactor not started"),
            }
        })
    });
    let router = app_with_query(stack.state.clone(), stack.query.clone());
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
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

/// Runs `contrail query`: the query API alone over `store` (or `<data>/store`),
/// until Ctrl-C or SIGTERM.
pub async fn run_query(config: Config, store: Option<String>) -> Result<()> {
    let location = match store.or(config.query.store.clone()) {
        Some(url) => contrail_warehouse::Location::parse(&url)?,
        None => contrail_warehouse::Location::local(&config.server.data.join(STORE_DIR))?,
    };
    let (keyring, _) = secret::keyring(&config.keys, &config.server.data, false)?;
    let query =
        Arc::new(QueryState { engine: Engine::new(location, config.query.clone())?, keyring, live_poll: LIVE_POLL });
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .map_err(Error::io(format!("listening on {}", config.server.listen)))?;
    let addr = listener.local_addr().map_err(Error::io("reading the listening address"))?;
    println!("Contrail query API on http://{addr}  (SQL: POST /v1/sql, docs: /docs)");
    axum::serve(listener, crate::app::query_app(query).into_make_service())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(Error::io("serving HTTP"))
}

/// Runs the compactor every `every` until `shutdown` flips. Failures are
/// logged and retried on the next tick: a run that fails leaves the previous
/// table version valid and its raw batches in place.
pub async fn compact_loop(
    compactor: contrail_warehouse::Compactor,
    every: std::time::Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        match compactor.run_once().await {
            Ok(report) if report.raw_files > 0 || report.raw_deleted > 0 => tracing::info!(
                raw_files = report.raw_files,
                events = report.events_out,
                duplicates = report.duplicates,
                raw_deleted = report.raw_deleted,
                "compacted"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "compaction failed; retrying on the next tick"),
        }
    }
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

fn print_banner(stack: &Stack, addr: SocketAddr, compact_every: u64) {
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
         \n  ingest      http://{addr}/v1/batch (Segment-compatible: /v1/track, /v1/page, … too)\
         \n  raw batches {} (compacted into tables/<project>/ every {} s)\
         \n  SQL         http://{addr}/v1/sql   API docs http://{addr}/docs\
         \n  metrics     http://{addr}/metrics   health http://{addr}/healthz\n\
         \nTry it:\n  curl -u '{write}:' http://{addr}/v1/track -H 'content-type: application/json' \\\n    -d '{{\"userId\":\"u1\",\"event\":\"Signed Up\",\"properties\":{{\"plan\":\"pro\"}}}}'\
         \n  curl http://{addr}/v1/sql -H 'authorization: Bearer {query}' \\\n    -d '{{\"sql\":\"SELECT event, count(*) AS n FROM events GROUP BY event\"}}'\n",
        keys.admin_token(),
        stack.data.join(STORE_DIR).join("raw").display(),
        compact_every,
        query = keys.mint(KeyKind::Query, &demo),
    );
}

/// One maintenance pass over every table, logged.
pub async fn maintain(compactor: &contrail_warehouse::Compactor) {
    let now = chrono::Utc::now().timestamp_millis();
    let layout = contrail_warehouse::write::FileLayout::default();
    match contrail_warehouse::maintain(compactor.location(), &layout, &Default::default(), now).await {
        Ok(report) => tracing::info!(
            partitions_merged = report.partitions_merged,
            files_merged = report.files_merged,
            files_vacuumed = report.files_vacuumed,
            "table maintenance done"
        ),
        Err(e) => tracing::warn!(error = %e, "table maintenance failed; retrying later"),
    }
}
