//! Contrail's warehouse: the compactor that turns raw Arrow batches into one
//! Delta Lake table per project, its upkeep, and the read-side snapshot.
//!
//! ```text
//! raw/project=<p>/region=…/date=…/<uuidv7>.arrow ──▶ compact: read · dedupe (run + table) · sort
//!        ▲ deleted after grace                ──▶ tables/<p>/date=YYYY-MM-DD/part-*.zstd.parquet
//!        └──────────── commitInfo.contrail.consumed ◀── one atomic Delta commit per project
//! maintain: small files merged (sort order kept) · vacuum
//! snapshot: table version V ∪ raw batches V has not consumed, deduplicated as compact will
//! ```
//!
//! Guarantees: an `event_id` appears at most once per project in the table and
//! every event of a raw batch is committed exactly once, across crashes at any
//! instant and concurrent compactors (see `compact.rs`). A commit is never
//! partially visible: it is one create-only put of the next log version. A
//! snapshot holds each acknowledged, flushed event exactly once, before,
//! during and after its compaction (see `snapshot.rs`).

pub mod compact;
mod cpu;
pub mod dedupe;
pub mod error;
pub mod location;
pub mod maintain;
pub mod raw;
pub mod snapshot;
pub mod table;
pub mod telemetry;
pub mod write;

/// Locks a cache. A poisoned lock means a panic elsewhere between two
/// statements that each leave the cache valid, so its content is still usable.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

pub use compact::{Compactor, CompactorConfig, RunReport};
pub use error::{Error, Result};
pub use location::{Location, S3Options};
pub use maintain::{MaintainConfig, MaintainReport, maintain};
pub use snapshot::{Snapshot, Snapshots};
