//! Contrail's native ingest: what the edge Worker does on Cloudflare
//! (`edge/src/cloudflare/`), `contrail serve` does on one machine.
//!
//! ```text
//! HTTP ──▶ routes (axum) ──▶ contrail_edge::Ingestor::prepare (auth · limits · validate · normalise)
//!            ──▶ buffer (SQLite WAL, one writer thread, group commit; 200 only after fsync)
//!            ──▶ flush (plan · create-only put · finish) ──▶ store: raw/project=<p>/region=<r>/date=<d>/<uuidv7>.arrow
//! ```
//!
//! Guarantees: a `200` means every accepted event is committed and fsynced in
//! the buffer together with its dedupe entry (see `buffer/`); every buffered
//! event ends up in exactly one raw batch, across crashes (see `flush.rs`).
//! This crate never reads raw batches back and never depends on DataFusion or
//! the warehouse.

pub mod buffer;
pub mod clock;
pub mod error;
pub mod flush;
pub mod rate_limit;
pub mod routes;
pub mod telemetry;

pub use buffer::{Buffer, open};
pub use clock::{Clock, FixedClock, SystemClock};
pub use error::{Error, Result};
pub use flush::{FlushTarget, Flusher};
pub use rate_limit::RateLimiter;
pub use routes::{IngestState, routes};
