//! The `contrail` command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use contrail::compact::{self, Cadence};
use contrail::config::Config;
use contrail::{Result, secret, serve, telemetry};
use contrail_edge::{KeyKind, ProjectId};
use contrail_ingest::SystemClock;

/// Contrail: edge-to-warehouse product analytics.
/// The ingest path allocates many small JSON values per event; mimalloc's
/// thread-local free lists cut allocator time measurably under load (bench/ingest.sh).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run ingest, the durable buffer and the flusher in one process on a local directory.
    Serve {
        /// Address to listen on [default: 127.0.0.1:8787].
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Data directory [default: ./contrail-data].
        #[arg(long)]
        data: Option<PathBuf>,
        /// Configuration file (contrail.toml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Compact raw batches into Delta tables, then merge small files and
    /// vacuum: once, or in a loop with --every (upkeep on `[compact] maintain_every_secs`).
    Compact {
        /// Data directory whose store/ to compact [default: ./contrail-data].
        #[arg(long, conflicts_with = "store")]
        data: Option<PathBuf>,
        /// Object store URL instead: file:///path or s3://bucket/prefix (credentials from AWS_* variables).
        #[arg(long)]
        store: Option<String>,
        /// Run repeatedly at this interval (e.g. 30s, 5m, 1h) instead of once.
        #[arg(long, value_parser = parse_duration)]
        every: Option<std::time::Duration>,
        /// Configuration file (contrail.toml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Serve the query API alone (SQL, timelines, live events) over a store.
    Query {
        /// Data directory whose store/ to read [default: ./contrail-data].
        #[arg(long, conflicts_with = "store")]
        data: Option<PathBuf>,
        /// Object store URL instead: file:///path or s3://bucket/prefix (credentials from AWS_* variables).
        #[arg(long)]
        store: Option<String>,
        /// Address to listen on [default: 127.0.0.1:8787].
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Configuration file (contrail.toml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print a key: a project's write or query key, or the admin token.
    Keys {
        /// Which key.
        kind: KeyChoice,
        /// Project (write and query keys).
        #[arg(long)]
        project: Option<String>,
        /// Data directory holding the generated secret [default: ./contrail-data].
        #[arg(long)]
        data: Option<PathBuf>,
        /// Configuration file (contrail.toml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum KeyChoice {
    Write,
    Query,
    Admin,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("contrail: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(config: Option<PathBuf>, data: Option<PathBuf>) -> Result<Config> {
    let mut loaded = Config::load(config.as_deref(), std::env::vars())?;
    if let Some(data) = data {
        loaded.server.data = data;
    }
    Ok(loaded)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(contrail::Error::io("starting the async runtime"))
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve { listen, data, config } => {
            let mut config = load(config, data)?;
            if let Some(listen) = listen {
                config.server.listen = listen;
            }
            telemetry::init_logging(config.server.log_format);
            let runtime = runtime()?;
            runtime.block_on(serve::run(config, Arc::new(SystemClock)))
        }
        Command::Compact { data, store, every, config } => {
            let config = load(config, data)?;
            telemetry::init_logging(config.server.log_format);
            let runtime = runtime()?;
            runtime.block_on(compact(config, store, every))
        }
        Command::Query { data, store, listen, config } => {
            let mut config = load(config, data)?;
            if let Some(listen) = listen {
                config.server.listen = listen;
            }
            telemetry::init_logging(config.server.log_format);
            let runtime = runtime()?;
            runtime.block_on(serve::run_query(config, store))
        }
        Command::Keys { kind, project, data, config } => {
            let config = load(config, data)?;
            let (keyring, _) = secret::keyring(&config.keys, &config.server.data, false)?;
            let key = match kind {
                KeyChoice::Admin => keyring.admin_token(),
                KeyChoice::Write | KeyChoice::Query => {
                    let name = project.ok_or_else(|| contrail::Error::Config("--project is required".into()))?;
                    let project = ProjectId::parse(&name).map_err(contrail::Error::Config)?;
                    let kind = if matches!(kind, KeyChoice::Write) { KeyKind::Write } else { KeyKind::Query };
                    keyring.mint(kind, &project)
                }
            };
            println!("{key}");
            Ok(())
        }
    }
}

async fn compact(config: Config, store: Option<String>, every: Option<std::time::Duration>) -> Result<()> {
    let location = serve::location(store, config.compact.store.as_ref(), &config.server.data)?;
    let compactor = contrail_warehouse::Compactor::new(location, config.compact.compactor(true));
    match every {
        None => {
            let report = compactor.run_until_caught_up().await?;
            compact::upkeep(&compactor, &config.compact).await;
            println!(
                "compacted {} raw batches ({} bytes): {} events in, {} written, {} duplicates removed, {} files, {} raw batches deleted",
                report.raw_files,
                report.raw_bytes,
                report.events_in,
                report.events_out,
                report.duplicates,
                report.files_written,
                report.raw_deleted
            );
            Ok(())
        }
        Some(every) => {
            let (_tx, rx) = tokio::sync::watch::channel(false);
            let cadence = Cadence::new(&config.compact, every);
            tokio::select! {
                _ = compact::run_loop(compactor, config.compact.clone(), cadence, rx) => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            Ok(())
        }
    }
}

/// `30s`, `5m`, `1h`, or plain seconds.
fn parse_duration(text: &str) -> std::result::Result<std::time::Duration, String> {
    let (number, unit) = text.find(|c: char| !c.is_ascii_digit()).map_or((text, "s"), |i| text.split_at(i));
    let n: u64 = number.parse().map_err(|_| format!("{text:?}: expected e.g. 30s, 5m or 1h"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{text:?}: the unit must be s, m or h")),
    };
    if secs == 0 {
        return Err("the interval must be positive".into());
    }
    Ok(std::time::Duration::from_secs(secs))
}
