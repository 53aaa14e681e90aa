//! The `contrail` binary's library: `contrail serve` (ingest → durable buffer →
//! raw batches → compactor → Delta tables, and the query API over them),
//! `contrail query` (the query API alone), `contrail compact` and `contrail keys`.
//!
//! ```text
//! HTTP ──▶ app (axum) ──▶ edge contract (prepare) ──▶ buffer (SQLite WAL, group commit)
//!   │                                                    │  200 only after fsync
//!   │                                                    ▼
//!   │                                                  flush ──▶ store/raw/…/<uuidv7>.arrow ──▶ compactor ──▶ store/tables/<project>/
//!   └──▶ api (/v1/sql, timeline, live) ──▶ sql::Engine: events = table version ∪ raw batches it has not consumed
//! ```
//!
//! Guarantees: a `200` means every accepted event is committed and fsynced in
//! the buffer; every buffered event ends up in exactly one raw batch, across
//! crashes (see `flush.rs`); a query reads each acknowledged, flushed event
//! exactly once, before, during and after its compaction (see `sql/view.rs`).

pub mod api;
pub mod app;
pub mod auth;
pub mod buffer;
pub mod clock;
pub mod config;
pub mod error;
pub mod flush;
pub mod openapi;
pub mod rate_limit;
pub mod secret;
pub mod serve;
pub mod sql;
pub mod telemetry;

pub use error::{Error, Result};
