//! Contrail's query service: DataFusion over each project's warehouse
//! snapshot, and the query API over HTTP.
//!
//! ```text
//! HTTP ──▶ api (Project extractor: credential → project, once)
//!            ──▶ engine: a DataFusion session per request holding that project's tables only
//!                  events = contrail_warehouse::Snapshot (table version ∪ unconsumed raw batches)
//!                  rejected = the project's quarantine
//!            ──▶ format (JSON · CSV · Arrow) / SSE
//! ```
//!
//! Guarantees: a query reads each acknowledged, flushed event of its project
//! exactly once, before, during and after its compaction (the warehouse's
//! snapshot decides what that is); a request never sees another project's
//! data; every query runs read-only, under a deadline, a memory limit and a
//! row limit. This crate never depends on the ingest crate or SQLite.

pub mod analytics;
pub mod api;
pub mod config;
pub mod engine;
pub mod error;
pub mod saved;
pub mod telemetry;

pub use api::{QueryState, routes};
pub use config::QueryConfig;
pub use engine::{Engine, QueryResult};
pub use error::{Error, Result};
