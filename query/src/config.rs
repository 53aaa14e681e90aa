//! `[query]`: the query engine's limits and tuning (a section of the
//! binary's `contrail.toml`).

use serde::Deserialize;

/// `[query]`: limits and tuning of the SQL engine.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryConfig {
    /// Seconds a query may run before it is cancelled (answer 503). Default 30.
    pub timeout_secs: u64,
    /// Memory one query may hold, in megabytes (over it: 503). Default 512.
    pub memory_mb: u64,
    /// Queries executing at once; more wait their turn (within the timeout). Default 4.
    pub max_concurrent: usize,
    /// Rows returned at most; beyond, the answer says `truncated`. Default 10,000.
    pub max_rows: usize,
    /// Partitions (threads) a query plan may use; 0 = the number of cores. Default 0.
    pub target_partitions: usize,
    /// Object store URL for `contrail query` (`file:///…` or `s3://bucket/prefix`).
    /// Default: `<data>/store`.
    pub store: Option<String>,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            timeout_secs: 30,
            memory_mb: 512,
            max_concurrent: 4,
            max_rows: 10_000,
            target_partitions: 0,
            store: None,
        }
    }
}
