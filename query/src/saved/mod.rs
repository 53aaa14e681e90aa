//! Saved insights and dashboards: small JSON documents kept in the object
//! store next to the tables, so `contrail query` replicas reading one bucket
//! share them and nothing else (no database) has to run.
//!
//! ```text
//! meta/project=<p>/insights/<id>/v00000001.json     one object per version, written create-only
//! meta/project=<p>/dashboards/<id>/v00000003.json   a deletion is a last version marked deleted
//! ```
//!
//! Every change writes the next version's key create-only, so of two edits
//! made from the same version exactly one lands and the other is told (409):
//! no edit is ever silently lost, on a local directory or on S3/R2 alike.
//!
//! - [`document`]: what an insight and a dashboard are, and their validation;
//! - [`store`]: the versioned documents in the object store.

pub mod document;
pub mod store;

pub use document::{Dashboard, Insight, InsightKind, Saved, SavedId};
pub use store::{Record, SavedStore};
