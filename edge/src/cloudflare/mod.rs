//! The Cloudflare Worker (wasm32 only): the ingest API in front of
//! [`buffer::EventBuffer`] Durable Objects that dedupe, buffer and flush events
//! to R2 as raw Arrow batches.
//!
//! ```text
//! fetch ──▶ Ingestor::prepare (the contract, as in `contrail serve`)
//!         ──▶ one call per buffer object "buf:<project>:<region>:<shard>"
//!               └─ SQLite: rate limit · dedupe (≥ 24 h) · buffer ──▶ 200 once durable
//! alarm ──▶ flush: plan (rows + flush sequence) ──▶ create-only R2 put ──▶ delete rows
//! ```
//!
//! Everything that decides what an event is comes from the contract modules of
//! this crate; this module only moves bytes between the runtime's bindings.

mod buffer;
mod error;
mod fetch;
mod flush;
mod protocol;

pub use buffer::EventBuffer;

use std::sync::OnceLock;

use worker::Env;

use crate::ingest::Ingestor;
use crate::limits::Limits;
use crate::settings::EdgeSettings;
use error::Error;

/// Binding names in `wrangler.toml`.
pub(crate) mod binding {
    /// The Durable Object namespace of the buffers.
    pub const BUFFERS: &str = "BUFFERS";
    /// The R2 bucket raw batches go to.
    pub const RAW: &str = "RAW";
}

/// The settings and ingestor of this isolate. Variables and secrets cannot
/// change under a running isolate (a new deployment starts new ones), so they
/// are read once.
pub(crate) struct Configured {
    pub settings: EdgeSettings,
    pub ingestor: Ingestor,
}

static CONFIGURED: OnceLock<Result<Configured, String>> = OnceLock::new();

pub(crate) fn configured(env: &Env) -> Result<&'static Configured, Error> {
    let configured = CONFIGURED.get_or_init(|| {
        let settings = EdgeSettings::from_vars(|name| {
            env.secret(name).map(|s| s.to_string()).or_else(|_| env.var(name).map(|v| v.to_string())).ok()
        })?;
        // Logged once per isolate: a value raised to its floor (a dedupe
        // window under 24 h) is a deployment to fix, not a request's fault.
        for warning in &settings.warnings {
            worker::console_warn!("{}", serde_json::json!({ "level": "warn", "message": warning }));
        }
        let ingestor = Ingestor::new(settings.keyring.clone(), Limits::default(), settings.ip_secret.clone());
        Ok(Configured { settings, ingestor })
    });
    configured.as_ref().map_err(|e| Error::Misconfigured(e.clone()))
}
