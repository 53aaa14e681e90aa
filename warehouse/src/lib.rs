//! Contrail's warehouse: the compactor that merges raw Arrow batches into one
//! Delta Lake table per project.
//!
//! Not built yet: this crate exists so the workspace already has the shape the
//! data flows through (`edge` ← `warehouse` ← `query`). The compactor arrives
//! with the warehouse issue; until then `contrail serve` stops at raw batches.

pub use contrail_edge as contract;
