//! Query metrics: names as constants, emitted through small `report_*`
//! helpers with bounded label values (kinds and codes, never user input).
//! The binary installs the recorder that renders them.

use std::time::Duration;

use metrics::{counter, histogram};

/// Queries, by kind (`sql`, `timeline`, `live`, `trends`, `funnels`, `retention`) and outcome (`ok` or an error code).
pub const QUERIES: &str = "contrail_queries_total";
/// Seconds per query, by kind.
pub const QUERY_SECONDS: &str = "contrail_query_seconds";
/// Rows returned per query, by kind.
pub const QUERY_ROWS: &str = "contrail_query_rows_total";

/// What a finished query returned, for [`QUERY_ROWS`].
pub trait Rows {
    /// Rows returned (an analytics answer counts as one).
    fn rows(&self) -> usize {
        1
    }
}

impl Rows for crate::engine::QueryResult {
    fn rows(&self) -> usize {
        self.num_rows()
    }
}

/// Records a finished query.
pub fn report_query<T: Rows>(kind: &'static str, result: &crate::Result<T>, elapsed: Duration) {
    let outcome = match result {
        Ok(r) => {
            counter!(QUERY_ROWS, "kind" => kind).increment(r.rows() as u64);
            "ok"
        }
        Err(e) => e.code(),
    };
    counter!(QUERIES, "kind" => kind, "outcome" => outcome).increment(1);
    histogram!(QUERY_SECONDS, "kind" => kind).record(elapsed.as_secs_f64());
}
