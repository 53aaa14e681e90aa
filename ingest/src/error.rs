//! The ingest crate's one error type, mapped once to HTTP.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use contrail_edge::IngestError;
use contrail_edge::error::error_body;

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong between an ingest request and its raw batch.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A whole ingest request was refused by the event contract (4xx).
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The local buffer could not store or read events (disk full, corrupt file).
    #[error("buffer: {0}")]
    Buffer(#[from] rusqlite::Error),
    /// The buffer's writer is gone (shutting down).
    #[error("the buffer is shutting down")]
    BufferClosed,
    /// A group commit failed; every request in the group gets this error and
    /// none of their events were stored. Also a flush that cannot proceed
    /// (corrupt buffered row, a key taken by different content).
    #[error("buffer commit failed: {0}")]
    Commit(String),
    /// The object store failed (flushes, readiness).
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// Encoding or decoding a raw batch failed.
    #[error("raw batch: {0}")]
    Encode(#[from] contrail_edge::EncodeError),
    /// The buffer's thread could not be started.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }

    /// Stable code, also the metric label.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Ingest(e) => e.code(),
            Self::Buffer(_) | Self::BufferClosed | Self::Commit(_) => "buffer_unavailable",
            Self::Store(_) => "store_unavailable",
            Self::Encode(_) => "encode_failed",
            Self::Io { .. } => "io",
        }
    }

    /// HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Ingest(e) => StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
            Self::Buffer(_) | Self::BufferClosed | Self::Commit(_) | Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Encode(_) | Self::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Seconds a client should wait before retrying, where a retry can help.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Ingest(e) => e.retry_after_secs(),
            Self::Buffer(_) | Self::BufferClosed | Self::Commit(_) | Self::Store(_) => Some(1),
            Self::Encode(_) | Self::Io { .. } => None,
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        // Internal detail stays in the log, never in a 5xx body.
        let message = if status.is_server_error() {
            tracing::error!(error = %self, code = self.code(), "request failed");
            "the server could not store the events; nothing was acknowledged, retry shortly".to_owned()
        } else {
            tracing::warn!(error = %self, code = self.code(), "request refused");
            self.to_string()
        };
        let mut response = (status, Json(error_body(self.code(), &message))).into_response();
        if let Some(secs) = self.retry_after() {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
