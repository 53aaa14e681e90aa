//! The Worker's configuration, read from its environment (`[vars]` in
//! `wrangler.toml`, secrets from `wrangler secret put`).
//!
//! Variable names are `contrail serve`'s environment overrides
//! (`CONTRAIL_<SECTION>_<KEY>`), so one set of names configures either
//! transport. Parsing is pure and lives outside the wasm32-only code so that
//! it is tested natively; every error names the variable and what it expects.

use std::collections::BTreeMap;

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

/// When a buffer object flushes, and how long it remembers event ids.
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
        // Every flush is an R2 write (a billed Class A operation) per buffer
        // object, so the edge flushes less often than `contrail serve` (500 ms):
        // events are in R2, and queryable, within about ten seconds.
        Self { flush_events: 10_000, flush_bytes: 8 << 20, flush_interval_ms: 10_000, dedupe_ms: 48 * 3_600_000 }
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
        let defaults = BufferSettings::default();
        let dedupe_hours = number(&var, "CONTRAIL_BUFFER_DEDUPE_HOURS", defaults.dedupe_ms / 3_600_000)?;
        Ok(Self {
            keyring,
            ip_secret: var("CONTRAIL_IP_SECRET").map(String::into_bytes),
            region: var("CONTRAIL_SERVER_REGION"),
            shards: Shards {
                default: number(&var, "CONTRAIL_BUFFER_SHARDS", 1)?,
                projects: json(&var, "CONTRAIL_PROJECT_SHARDS", r#"{"demo": 4}"#)?,
            },
            allowed_origins: json(&var, "CONTRAIL_PROJECT_ORIGINS", r#"{"demo": ["https://app.example"]}"#)?,
            rate: RateLimit {
                per_sec: number(&var, "CONTRAIL_INGEST_RATE_LIMIT_PER_SEC", 2_000.0)?,
                burst: number(&var, "CONTRAIL_INGEST_RATE_LIMIT_BURST", 4_000.0)?,
            },
            buffer: BufferSettings {
                flush_events: number(&var, "CONTRAIL_BUFFER_FLUSH_EVENTS", defaults.flush_events)?.max(1),
                flush_bytes: number(&var, "CONTRAIL_BUFFER_FLUSH_BYTES", defaults.flush_bytes)?.max(1),
                flush_interval_ms: number(&var, "CONTRAIL_BUFFER_FLUSH_INTERVAL_MS", defaults.flush_interval_ms)?
                    .max(1),
                dedupe_ms: dedupe_hours.max(MIN_DEDUPE_HOURS) * 3_600_000,
            },
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
    }
}
