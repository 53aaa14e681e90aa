//! The `contrail` binary's library: `contrail serve` (ingest → durable buffer →
//! raw batches) and `contrail keys`. The query service and compactor join it
//! in later steps.
//!
//! ```text
//! HTTP ──▶ app (axum) ──▶ edge contract (prepare) ──▶ buffer (SQLite WAL, group commit)
//!                                                        │  200 only after fsync
//!                                                        ▼
//!                                                      flush ──▶ store/raw/region=…/date=…/<uuidv7>.arrow
//! ```
//!
//! Guarantees: a `200` means every accepted event is committed and fsynced in
//! the buffer; every buffered event ends up in exactly one raw batch, across
//! crashes (see `flush.rs`).

pub mod app;
pub mod buffer;
pub mod clock;
pub mod config;
pub mod error;
pub mod flush;
pub mod rate_limit;
pub mod secret;
pub mod serve;
pub mod telemetry;

pub use error::{Error, Result};
