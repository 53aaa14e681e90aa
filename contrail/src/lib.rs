//! The `contrail` binary's library: the CLI's commands over the library
//! crates, and the router that puts them on one port.
//!
//! ```text
//! contrail serve   = ingest (buffer → flush) + compactor and upkeep on a timer + query API, one process
//! contrail query   = the query API over a store (local or S3/R2)
//! contrail compact = one compaction run and an upkeep pass, or a loop (--every)
//! contrail keys    = print a write key, query key or the admin token
//! serve and query also answer `/` with the web dashboard, embedded at build time
//! ```
//!
//! Everything with a rule in it lives in a library crate (`contrail_edge`,
//! `contrail_ingest`, `contrail_warehouse`, `contrail_query`); this crate
//! reads the configuration once, wires the parts to one object store
//! handle, and routes.

pub mod compact;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod router;
pub mod secret;
pub mod serve;
pub mod telemetry;

pub use error::{Error, Result};
