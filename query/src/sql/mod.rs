//! SQL over a project's events: a consistent view of table + raw rows
//! (`view`), the `events` table provider over it (`events`, with partition
//! pruning from `pruning`), the read-only gate (`sandbox`), the engine with
//! its limits (`engine`) and the answer formats (`output`).

pub mod engine;
pub mod events;
pub mod output;
pub mod pruning;
pub mod sandbox;
pub mod view;

pub use engine::{Engine, QueryResult};
