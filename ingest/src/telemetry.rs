//! Ingest metrics: names as constants, emitted through small `report_*`
//! helpers with bounded label values (codes, never user input). The binary
//! installs the recorder that renders them.

use std::time::Duration;

use contrail_edge::raw_key::BatchKind;
use metrics::{counter, gauge, histogram};

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

/// Starts every ingest series at zero, so a dashboard shows `0` rather than
/// no data before the first event (called once the recorder is installed).
pub fn register() {
    for code in contrail_edge::RejectCode::ALL {
        counter!(EVENTS_REJECTED, "reason" => code.as_str()).increment(0);
    }
    counter!(EVENTS_ACCEPTED).increment(0);
    counter!(EVENTS_DUPLICATE).increment(0);
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

/// The `stream` label of a kind of raw batch.
pub fn stream_label(kind: BatchKind) -> &'static str {
    match kind {
        BatchKind::Events => "events",
        BatchKind::Rejected => "rejected",
    }
}

/// A raw batch of `rows` rows and `bytes` bytes was written in `elapsed`.
pub fn report_flush(kind: BatchKind, rows: usize, bytes: usize, elapsed: Duration) {
    let stream = stream_label(kind);
    counter!(FLUSHES, "stream" => stream).increment(1);
    counter!(FLUSH_ROWS, "stream" => stream).increment(rows as u64);
    counter!(FLUSH_BYTES, "stream" => stream).increment(bytes as u64);
    histogram!(FLUSH_SECONDS, "stream" => stream).record(elapsed.as_secs_f64());
}

/// A flush failed and will be retried.
pub fn report_flush_error() {
    counter!(FLUSH_ERRORS).increment(1);
}
