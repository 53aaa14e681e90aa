//! `contrail.toml`, with every key overridable by `CONTRAIL_<SECTION>_<KEY>`.
//!
//! One typed [`Config`], loaded once at start-up. Each field documents its
//! default; a missing file means all defaults.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::time::Duration;

use contrail_edge::settings::{BufferConfig, IngestConfig};
use contrail_query::QueryConfig;
use contrail_warehouse::write::FileLayout;
use contrail_warehouse::{CompactorConfig, MaintainConfig};
use serde::Deserialize;

use crate::error::{Error, Result};

/// Sections that environment overrides may address.
const SECTIONS: [&str; 6] = ["server", "keys", "ingest", "buffer", "compact", "query"];

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[server]`.
    pub server: ServerConfig,
    /// `[keys]`.
    pub keys: KeysConfig,
    /// `[ingest]`: the per-write-key rate limit (the Worker reads the same section).
    pub ingest: IngestConfig,
    /// `[buffer]`: flush thresholds and the dedupe window (the Worker reads the same section).
    pub buffer: BufferConfig,
    /// `[compact]`.
    pub compact: CompactConfig,
    /// `[query]`.
    pub query: QueryConfig,
    /// `[projects.<name>]`: per-project settings.
    pub projects: BTreeMap<String, ProjectConfig>,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on. Default `127.0.0.1:8787` (also `wrangler dev`'s port).
    pub listen: SocketAddr,
    /// Data directory: secret, buffer, and the local object store under `store/`.
    /// Default `./contrail-data`.
    pub data: PathBuf,
    /// Take the client IP from `X-Forwarded-For` (behind a trusted proxy only).
    /// Default `false`.
    pub trust_forwarded_for: bool,
    /// Log format: `text` or `json`. Default `text`.
    pub log_format: LogFormat,
    /// Region name in raw batch keys. Default `local`.
    pub region: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            data: PathBuf::from("./contrail-data"),
            trust_forwarded_for: false,
            log_format: LogFormat::Text,
            region: "local".into(),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (production).
    Json,
}

/// `[keys]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    /// Secrets, newest first; keys are minted with the first and accepted under
    /// any. Default: none, and `serve` generates one in the data directory.
    /// From the environment: comma-separated.
    #[serde(deserialize_with = "list")]
    pub secrets: Vec<String>,
    /// Revoked keys (write, query or admin). Default: none. Comma-separated in
    /// the environment.
    #[serde(deserialize_with = "list")]
    pub denied: Vec<String>,
}

/// `[compact]`: the compactor (raw batches → Delta tables) and table upkeep.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompactConfig {
    /// Seconds between compaction runs inside `serve` (0 disables). Default 30.
    pub every_secs: u64,
    /// Seconds a consumed raw batch is kept after its commit. Default 600.
    pub grace_secs: u64,
    /// Raw megabytes read per run at most. Default 512.
    pub max_run_mb: u64,
    /// Object store URL for `contrail compact` (`file:///…` or `s3://bucket/prefix`).
    /// Default: `<data>/store`.
    pub store: Option<String>,
    /// Seconds between upkeep passes (small-file merging, then vacuum) in
    /// `serve` and `contrail compact --every` (0 disables). Default 3,600.
    pub maintain_every_secs: u64,
    /// A partition's files are merged once it has this many small ones. Default 8.
    pub merge_min_files: usize,
    /// Files below this many megabytes count as small. Default 32.
    pub small_file_mb: u64,
    /// Vacuum deletes files no version has referenced for this many hours.
    /// Default 168 (7 days, Delta's default), so time travel and slow
    /// readers keep working.
    pub vacuum_retention_hours: u64,
    /// Rows per Parquet file (a larger partition gets several). Default 1,048,576.
    pub rows_per_file: usize,
    /// Rows per row group, the unit of pruning. Default 524,288 (measured
    /// with bench/query.sh; see `FileLayout::default`).
    pub row_group_rows: usize,
    /// ZSTD level of table files. Default 3.
    pub zstd_level: i32,
}

impl Default for CompactConfig {
    fn default() -> Self {
        let layout = FileLayout::default();
        let upkeep = MaintainConfig::default();
        Self {
            every_secs: 30,
            grace_secs: 600,
            max_run_mb: 512,
            store: None,
            maintain_every_secs: 3_600,
            merge_min_files: upkeep.min_small_files,
            small_file_mb: (upkeep.small_file_bytes >> 20) as u64,
            vacuum_retention_hours: upkeep.retention.as_secs() / 3_600,
            rows_per_file: layout.rows_per_file,
            row_group_rows: layout.row_group_rows,
            zstd_level: layout.zstd_level,
        }
    }
}

impl CompactConfig {
    /// The Parquet layout of table files.
    pub fn layout(&self) -> FileLayout {
        FileLayout {
            rows_per_file: self.rows_per_file.max(1),
            row_group_rows: self.row_group_rows.max(1),
            zstd_level: self.zstd_level,
        }
    }

    /// The compactor settings these values describe.
    pub fn compactor(&self, progress: bool) -> CompactorConfig {
        CompactorConfig {
            grace: Duration::from_secs(self.grace_secs),
            max_run_bytes: self.max_run_mb << 20,
            layout: self.layout(),
            progress,
            ..Default::default()
        }
    }

    /// The upkeep settings these values describe.
    pub fn maintain(&self) -> MaintainConfig {
        MaintainConfig {
            small_file_bytes: i64::try_from(self.small_file_mb << 20).unwrap_or(i64::MAX),
            min_small_files: self.merge_min_files.max(2),
            retention: Duration::from_secs(self.vacuum_retention_hours * 3_600),
        }
    }
}

/// `[projects.<name>]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectConfig {
    /// Origins allowed to send browser events (`Origin` header). Default: any.
    pub allowed_origins: Vec<String>,
}

fn list<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<String>),
        One(String),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::Many(v) => v,
        OneOrMany::One(s) => s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect(),
    })
}

impl Config {
    /// Loads `path` (if given; a missing explicit file is an error) and applies
    /// `CONTRAIL_*` overrides from `env`.
    pub fn load(path: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let mut table = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| Error::Config(format!("cannot read {}: {e}", p.display())))?;
                toml::from_str::<toml::Table>(&text).map_err(|e| Error::Config(format!("{}: {e}", p.display())))?
            }
            None => toml::Table::new(),
        };
        for (name, raw) in env {
            let Some(rest) = name.strip_prefix("CONTRAIL_") else { continue };
            let rest = rest.to_ascii_lowercase();
            let Some((section, key)) =
                SECTIONS.iter().find_map(|s| rest.strip_prefix(s).and_then(|k| k.strip_prefix('_')).map(|k| (*s, k)))
            else {
                continue;
            };
            let section = table
                .entry(section)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .ok_or_else(|| Error::Config(format!("[{section}] must be a table")))?;
            section.insert(key.to_owned(), env_value(&raw));
        }
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| Error::Config(format!("invalid configuration: {e}")))
    }
}

/// An environment value as TOML when it parses as a scalar or array (numbers,
/// booleans, `["a","b"]`), else as a plain string.
fn env_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .filter(|v| !v.is_table())
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_apply_without_a_file() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8787");
        assert_eq!(c.buffer.flush_interval_ms, 500);
        assert!(c.keys.secrets.is_empty());
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("contrail.toml");
        std::fs::write(
            &path,
            "[server]\nlisten = \"127.0.0.1:9000\"\n[buffer]\nflush_events = 5\n[projects.demo]\nallowed_origins = [\"https://a.test\"]\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&path),
            env(&[
                ("CONTRAIL_BUFFER_FLUSH_EVENTS", "7"),
                ("CONTRAIL_KEYS_SECRETS", "new-secret-0123456789,old-secret-0123456789"),
                ("CONTRAIL_SERVER_DATA", "/tmp/x"),
                ("UNRELATED", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.listen.port(), 9000);
        assert_eq!(c.buffer.flush_events, 7);
        assert_eq!(c.keys.secrets, vec!["new-secret-0123456789", "old-secret-0123456789"]);
        assert_eq!(c.server.data, PathBuf::from("/tmp/x"));
        assert_eq!(c.projects["demo"].allowed_origins, vec!["https://a.test"]);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_reported() {
        let err = Config::load(None, env(&[("CONTRAIL_BUFFER_FLUSH_EVENTZ", "1")])).unwrap_err();
        assert!(err.to_string().contains("flush_eventz"), "{err}");
        let err = Config::load(None, env(&[("CONTRAIL_BUFFER_FLUSH_EVENTS", "many")])).unwrap_err();
        assert!(err.to_string().contains("flush_events"), "{err}");
    }
}
