//! Logs and Prometheus metrics: names as constants, emitted through small
//! `report_*` helpers with bounded label values (codes, never user input).

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Ingest requests, by outcome (`ok` or an error code).
pub const INGEST_REQUESTS: &str = "contrail_ingest_requests_total";
/// Events newly accepted into the buffer.
pub const EVENTS_ACCEPTED: &str = "contrail_events_accepted_total";
/// Events acknowledged as duplicates of buffered or flushed ones.
pub const EVENTS_DUPLICATE: &str = "contrail_events_duplicate_total";
/// Messages rejected and quarantined, by reason code.
pub const EVENTS_REJECTED: &str = "contrail_events_rejected_total";
/// Seconds from taking a group of requests to its durable commit.
pub const BUFFER_COMMIT_SECONDS: &str = "contrail_buffer_commit_seconds";
/// Requests sharing one durable commit.
pub const BUFFER_GROUP_REQUESTS: &str = "contrail_buffer_group_requests";
/// Events waiting in the buffer.
pub const BUFFER_PENDING_EVENTS: &str = "contrail_buffer_pending_events";
/// Raw batches written, by stream (`events` or `rejected`).
pub const FLUSHES: &str = "contrail_flushes_total";
/// Rows written to raw batches, by stream.
pub const FLUSH_ROWS: &str = "contrail_flush_rows_total";
/// Bytes written to raw batches, by stream.
pub const FLUSH_BYTES: &str = "contrail_flush_bytes_total";
/// Seconds to encode and write one raw batch.
pub const FLUSH_SECONDS: &str = "contrail_flush_seconds";
/// Flushes that failed and will be retried.
pub const FLUSH_ERRORS: &str = "contrail_flush_errors_total";

/// Queries, by kind (`sql`, `timeline`, `live`) and outcome (`ok` or an error code).
pub const QUERIES: &str = "contrail_queries_total";
/// Seconds per query, by kind.
pub const QUERY_SECONDS: &str = "contrail_query_seconds";
/// Rows returned per query, by kind.
pub const QUERY_ROWS: &str = "contrail_query_rows_total";

/// Records a finished query.
pub fn query_done(kind: &'static str, result: &crate::Result<crate::sql::QueryResult>, elapsed: Duration) {
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

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder (installed on first use, so tests that
/// build several apps in one process share it).
pub fn prometheus() -> PrometheusHandle {
    PROMETHEUS
        .get_or_init(|| {
            let seconds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(BUFFER_GROUP_REQUESTS.into()),
                        &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0],
                    )
                })
                .expect("bucket lists are non-empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (a test harness); the
            // handle then renders only what this recorder saw, which is none.
            let _ = metrics::set_global_recorder(recorder);
            for code in contrail_edge::RejectCode::ALL {
                counter!(EVENTS_REJECTED, "reason" => code.as_str()).increment(0);
            }
            counter!(EVENTS_ACCEPTED).increment(0);
            counter!(EVENTS_DUPLICATE).increment(0);
            handle
        })
        .clone()
}

/// Default log filter: Contrail's own crates at `info`, dependencies at
/// `warn` (Delta's kernel logs every snapshot load at `info`).
const DEFAULT_FILTER: &str = "warn,contrail=info,contrail_warehouse=info,contrail_edge=info";

/// Installs the log subscriber (`RUST_LOG` overrides [`DEFAULT_FILTER`]).
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// An ingest request finished with `outcome` (`ok` or an error code).
pub fn report_ingest(outcome: &'static str, accepted: usize, duplicates: usize) {
    counter!(INGEST_REQUESTS, "outcome" => outcome).increment(1);
    counter!(EVENTS_ACCEPTED).increment(accepted as u64);
    counter!(EVENTS_DUPLICATE).increment(duplicates as u64);
}

/// A message was rejected with `code`.
pub fn report_rejected(code: &str) {
    // Codes come from the contract's closed set; map back to its static strings
    // so an unexpected value cannot create a new series.
    let code = contrail_edge::RejectCode::parse(code).map_or("other", |c| c.as_str());
    counter!(EVENTS_REJECTED, "reason" => code).increment(1);
}

/// A group commit of `requests` requests took `elapsed`.
pub fn report_commit(requests: usize, elapsed: Duration, pending_events: u64) {
    histogram!(BUFFER_COMMIT_SECONDS).record(elapsed.as_secs_f64());
    histogram!(BUFFER_GROUP_REQUESTS).record(requests as f64);
    gauge!(BUFFER_PENDING_EVENTS).set(pending_events as f64);
}

/// A raw batch of `rows` rows and `bytes` bytes was written in `elapsed`.
pub fn report_flush(stream: &'static str, rows: usize, bytes: usize, elapsed: Duration) {
    counter!(FLUSHES, "stream" => stream).increment(1);
    counter!(FLUSH_ROWS, "stream" => stream).increment(rows as u64);
    counter!(FLUSH_BYTES, "stream" => stream).increment(bytes as u64);
    histogram!(FLUSH_SECONDS, "stream" => stream).record(elapsed.as_secs_f64());
}

/// A flush failed and will be retried.
pub fn report_flush_error() {
    counter!(FLUSH_ERRORS).increment(1);
}
