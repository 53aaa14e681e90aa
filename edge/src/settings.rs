//! The Worker's configuration, read from its environment (`[vars]` in
//! `wrangler.toml`, secrets from `wrangler secret put`).
//!
//! Variable names are `contrail serve`'s environment overrides
//! (`CONTRAIL_<SECTION>_<KEY>`), and the `[buffer]` and `[ingest]` sections
//! deserialise into the same types ([`BufferConfig`], [`IngestConfig`]) with
//! the same defaults and bounds, so one set of names configures either
//! transport the same way. Parsing is pure and lives outside the wasm32-only code so that
//! it is tested natively; every error names the variable and what it expects.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::keys::Keyring;
use crate::project::ProjectId;
use crate::rate::RateLimit;

/// Everything the Worker's request path needs.
#[derive(Debug, Clone)]
pub struct EdgeSettings {
    /// Secrets (newest first) and revoked keys.
    pub keyring: Keyring,
    /// Secret for the daily IP-hash salt; the primary key secret when absent.
    pub ip_secret: Option<Vec<u8>>,
    /// Buffer region for every request instead of the continent.
    pub region: Option<String>,
    /// Buffer shards per project.
    pub shards: Shards,
    /// Origins allowed to send each project's events (absent or empty: any).
    pub allowed_origins: BTreeMap<String, Vec<String>>,
    /// Per-write-key request rate.
    pub rate: RateLimit,
    /// The buffer objects' flush and dedupe settings.
    pub buffer: BufferSettings,
    /// Values raised to their floor, one line each (logged by the Worker).
    pub warnings: Vec<String>,
}

/// Buffer shards: a default and per-project overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shards {
    /// Shards of a project not listed.
    pub default: u32,
    /// Per-project counts.
    pub projects: BTreeMap<String, u32>,
}

impl Shards {
    /// How many buffer objects `project` is spread over.
    pub fn of(&self, project: &ProjectId) -> u32 {
        self.projects.get(project.as_str()).copied().unwrap_or(self.default).max(1)
    }
}

/// `[buffer]` as written: `contrail.toml`'s section, or the Worker's
/// `CONTRAIL_BUFFER_*` variables. Both transports deserialise into this one
/// type and turn it into [`BufferSettings`] with the same bounds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BufferConfig {
    /// Flush at this many buffered events (also the most one raw batch
    /// holds). Default 10,000. At least 1.
    pub flush_events: usize,
    /// Flush at this many buffered bytes of event JSON. Default 8 MiB. At least 1.
    pub flush_bytes: usize,
    /// Flush events older than this. Default 500 ms, so an event is in a raw
    /// batch (and queryable) within about a second. The Worker's
    /// `wrangler.toml` sets 10 s: every flush there is a billed R2 write per
    /// buffer object. At least 1.
    pub flush_interval_ms: u64,
    /// Remember event ids this long for dedupe. Default 48; below
    /// [`MIN_DEDUPE_HOURS`] it is raised to it, with a warning.
    pub dedupe_hours: u64,
}

impl BufferConfig {
    /// The keys of the section, as `CONTRAIL_BUFFER_<KEY>` variables name them.
    pub const KEYS: [&'static str; 4] = ["flush_events", "flush_bytes", "flush_interval_ms", "dedupe_hours"];

    /// The settings in force, and a warning for every value that was raised
    /// to its floor (each names the key and its variable).
    pub fn settings(&self) -> (BufferSettings, Vec<String>) {
        let mut warnings = Vec::new();
        let mut floor = |key: &str, value: u64, min: u64, why: &str| {
            if value < min {
                warnings.push(format!(
                    "buffer.{key} (CONTRAIL_BUFFER_{}) = {value} is below {min}{why}; using {min}",
                    key.to_ascii_uppercase()
                ));
            }
            value.max(min)
        };
        let promise = ", the dedupe window Contrail promises";
        let settings = BufferSettings {
            flush_events: floor("flush_events", self.flush_events as u64, 1, "") as usize,
            flush_bytes: floor("flush_bytes", self.flush_bytes as u64, 1, "") as usize,
            flush_interval_ms: floor("flush_interval_ms", self.flush_interval_ms, 1, "") as i64,
            dedupe_ms: floor("dedupe_hours", self.dedupe_hours, MIN_DEDUPE_HOURS as u64, promise) as i64 * 3_600_000,
        };
        (settings, warnings)
    }
}

impl Default for BufferConfig {
    fn default() -> Self {
        Self { flush_events: 10_000, flush_bytes: 8 << 20, flush_interval_ms: 500, dedupe_hours: 48 }
    }
}

/// `[ingest]` as written (or `CONTRAIL_INGEST_*`): the per-write-key rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Sustained requests per second per write key. Default 2,000 (200,000
    /// events/s in batches of 100).
    pub rate_limit_per_sec: f64,
    /// Burst size, in requests. Default 4,000.
    pub rate_limit_burst: f64,
}

impl IngestConfig {
    /// The keys of the section, as `CONTRAIL_INGEST_<KEY>` variables name them.
    pub const KEYS: [&'static str; 2] = ["rate_limit_per_sec", "rate_limit_burst"];

    /// The rate limit in force.
    pub fn rate(&self) -> RateLimit {
        RateLimit { per_sec: self.rate_limit_per_sec, burst: self.rate_limit_burst }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self { rate_limit_per_sec: 2_000.0, rate_limit_burst: 4_000.0 }
    }
}

/// When a buffer flushes, and how long it remembers event ids: a
/// [`BufferConfig`] with its bounds applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferSettings {
    /// Flush at this many buffered events (also the most one raw batch holds).
    pub flush_events: usize,
    /// Flush at this many buffered bytes of event JSON.
    pub flush_bytes: usize,
    /// Flush events older than this.
    pub flush_interval_ms: i64,
    /// Remember event ids this long for dedupe (at least 24 h).
    pub dedupe_ms: i64,
}

/// The dedupe window the design promises; shorter settings are raised to it.
pub const MIN_DEDUPE_HOURS: i64 = 24;

impl Default for BufferSettings {
    fn default() -> Self {
        BufferConfig::default().settings().0
    }
}

impl EdgeSettings {
    /// Reads the settings through `var` (a variable or secret by name).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let var = |name: &str| var(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let secrets: Vec<Vec<u8>> = var("CONTRAIL_KEYS_SECRETS")
            .ok_or("CONTRAIL_KEYS_SECRETS is not set: run `wrangler secret put CONTRAIL_KEYS_SECRETS` (a comma-separated list of secrets, newest first)")?
            .split(',')
            .map(|s| s.trim().as_bytes().to_vec())
            .filter(|s| !s.is_empty())
            .collect();
        let denied = var("CONTRAIL_KEYS_DENIED").map(|d| list(&d)).unwrap_or_default();
        let keyring = Keyring::new(secrets, denied).map_err(|e| format!("CONTRAIL_KEYS_SECRETS: {e}"))?;
        let buffer: BufferConfig = section(&var, "BUFFER", &BufferConfig::KEYS)?;
        let ingest: IngestConfig = section(&var, "INGEST", &IngestConfig::KEYS)?;
        let (buffer, warnings) = buffer.settings();
        Ok(Self {
            keyring,
            ip_secret: var("CONTRAIL_IP_SECRET").map(String::into_bytes),
            region: var("CONTRAIL_SERVER_REGION"),
            shards: Shards {
                default: number(&var, "CONTRAIL_BUFFER_SHARDS", 1)?,
                projects: json(&var, "CONTRAIL_PROJECT_SHARDS", r#"{"demo": 4}"#)?,
            },
            allowed_origins: json(&var, "CONTRAIL_PROJECT_ORIGINS", r#"{"demo": ["https://app.example"]}"#)?,
            rate: ingest.rate(),
            buffer,
            warnings,
        })
    }

    /// The allowed origins of `project` (empty: any).
    pub fn origins(&self, project: &ProjectId) -> &[String] {
        self.allowed_origins.get(project.as_str()).map(Vec::as_slice).unwrap_or(&[])
    }
}

fn list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// A settings section from its `CONTRAIL_<SECTION>_<KEY>` variables, through
/// the same `Deserialize` as `contrail.toml`'s `[section]`. Every key of these
/// sections is a number.
fn section<T: serde::de::DeserializeOwned>(
    var: &impl Fn(&str) -> Option<String>,
    section: &str,
    keys: &[&str],
) -> Result<T, String> {
    let mut table = serde_json::Map::new();
    for key in keys {
        let name = format!("CONTRAIL_{section}_{}", key.to_ascii_uppercase());
        if let Some(value) = var(&name) {
            let number: serde_json::Number =
                value.parse().map_err(|_| format!("{name} must be a number, got {value:?}"))?;
            table.insert((*key).to_owned(), serde_json::Value::Number(number));
        }
    }
    serde_json::from_value(serde_json::Value::Object(table)).map_err(|e| format!("CONTRAIL_{section}_*: {e}"))
}

fn number<T: std::str::FromStr>(var: &impl Fn(&str) -> Option<String>, name: &str, default: T) -> Result<T, String> {
    match var(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| format!("{name} must be a number, got {v:?}")),
    }
}

fn json<T: serde::de::DeserializeOwned + Default>(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    example: &str,
) -> Result<T, String> {
    match var(name) {
        None => Ok(T::default()),
        Some(v) => serde_json::from_str(&v).map_err(|e| format!("{name} must be JSON like {example}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_need_only_a_secret() {
        let err = EdgeSettings::from_vars(vars(&[])).unwrap_err();
        assert!(err.contains("wrangler secret put CONTRAIL_KEYS_SECRETS"), "{err}");
        let s = EdgeSettings::from_vars(vars(&[("CONTRAIL_KEYS_SECRETS", "s3cret-0123456789abcdef")])).unwrap();
        assert_eq!(s.buffer, BufferSettings::default());
        assert!(s.warnings.is_empty());
        assert_eq!(s.shards.of(&ProjectId::parse("demo").unwrap()), 1);
        assert_eq!(s.rate, RateLimit { per_sec: 2_000.0, burst: 4_000.0 });
        assert!(s.region.is_none() && s.ip_secret.is_none());
    }

    #[test]
    fn every_variable_is_read_and_checked() {
        let s = EdgeSettings::from_vars(vars(&[
            ("CONTRAIL_KEYS_SECRETS", "new-secret-0123456789, old-secret-0123456789"),
            ("CONTRAIL_KEYS_DENIED", "ck_a_x"),
            ("CONTRAIL_BUFFER_SHARDS", "2"),
            ("CONTRAIL_PROJECT_SHARDS", r#"{"big": 8}"#),
            ("CONTRAIL_PROJECT_ORIGINS", r#"{"web": ["https://a.test"]}"#),
            ("CONTRAIL_BUFFER_FLUSH_EVENTS", "5"),
            ("CONTRAIL_BUFFER_FLUSH_INTERVAL_MS", "200"),
            ("CONTRAIL_BUFFER_DEDUPE_HOURS", "1"),
            ("CONTRAIL_SERVER_REGION", "eu"),
        ]))
        .unwrap();
        let project = |p: &str| ProjectId::parse(p).unwrap();
        assert_eq!((s.shards.of(&project("big")), s.shards.of(&project("small"))), (8, 2));
        assert_eq!(s.origins(&project("web")), ["https://a.test".to_owned()]);
        assert!(s.origins(&project("other")).is_empty());
        assert_eq!((s.buffer.flush_events, s.buffer.flush_interval_ms), (5, 200));
        assert_eq!(s.buffer.dedupe_ms, MIN_DEDUPE_HOURS * 3_600_000, "raised to the promised window");
        assert_eq!(s.warnings.len(), 1);
        assert!(s.warnings[0].contains("CONTRAIL_BUFFER_DEDUPE_HOURS) = 1 is below 24"), "{}", s.warnings[0]);
        assert_eq!(s.region.as_deref(), Some("eu"));
        let old_key = Keyring::new(vec![b"old-secret-0123456789".to_vec()], [])
            .unwrap()
            .mint(crate::KeyKind::Write, &project("web"));
        assert!(s.keyring.verify(&old_key, crate::KeyKind::Write).is_ok(), "rotation: old secret still verifies");

        let err = EdgeSettings::from_vars(vars(&[
            ("CONTRAIL_KEYS_SECRETS", "s3cret-0123456789abcdef"),
            ("CONTRAIL_BUFFER_SHARDS", "x"),
        ]));
        assert!(err.unwrap_err().contains("CONTRAIL_BUFFER_SHARDS must be a number"));
        let err = EdgeSettings::from_vars(vars(&[
            ("CONTRAIL_KEYS_SECRETS", "s3cret-0123456789abcdef"),
            ("CONTRAIL_PROJECT_SHARDS", "["),
        ]));
        assert!(err.unwrap_err().contains(r#"like {"demo": 4}"#));
        let err = EdgeSettings::from_vars(vars(&[
            ("CONTRAIL_KEYS_SECRETS", "s3cret-0123456789abcdef"),
            ("CONTRAIL_BUFFER_FLUSH_EVENTS", "-5"),
        ]));
        assert!(err.unwrap_err().contains("CONTRAIL_BUFFER_*"));
    }
}
