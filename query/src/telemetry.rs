//! Query metrics: names as constants, emitted through small `report_*`
//! helpers with bounded label values (kinds and codes, never user input).
//! The binary installs the recorder that renders them.

use std::time::Duration;

use metrics::{counter, histogram};

/// Queries, by kind (`sql`, `timeline`, `live`) and outcome (`ok` or an error code).
pub const QUERIES: &str = "contrail_queries_total";
/// Seconds per query, by kind.
pub const QUERY_SECONDS: &str = "contrail_query_seconds";
/// Rows returned per query, by kind.
pub const QUERY_ROWS: &str = "contrail_query_rows_total";

/// Records a finished query.
pub fn report_query(kind: &'static str, result: &crate::Result<crate::engine::QueryResult>, elapsed: Duration) {
    let outcome = match result {
        Ok(r) => {
            counter!(QUERY_ROWS, "kind" => kind).increment(r.num_rows() as u64);
            "ok"
        }
        Err(e) => e.code(),
    };
    counter!(QUERIES, "kind" => kind, "outcome" => outcome).increment(1);
    histogram!(QUERY_SECONDS, "kind" => kind).record(elapsed.as_secs_f64());
}
