//! The crate's one error type, mapped once to HTTP.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use contrail_edge::IngestError;
use contrail_edge::error::error_body;

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the `contrail` binary and its HTTP API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A whole ingest request was refused by the event contract (4xx).
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The configuration file or environment is invalid (start-up only).
    #[error("configuration: {0}")]
    Config(String),
    /// The local buffer could not store or read events (disk full, corrupt file).
    #[error("buffer: {0}")]
    Buffer(#[from] rusqlite::Error),
    /// The buffer's writer is gone (shutting down).
    #[error("the buffer is shutting down")]
    BufferClosed,
    /// A group commit failed; every request in the group gets this error and
    /// none of their events were stored.
    #[error("buffer commit failed: {0}")]
    Commit(String),
    /// The object store failed.
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// Compaction failed.
    #[error("compaction: {0}")]
    Compact(#[from] contrail_warehouse::Error),
    /// Encoding or decoding a raw batch failed.
    #[error("raw batch: {0}")]
    Encode(#[from] contrail_edge::EncodeError),
    /// A local file (secret, data directory) could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// No route for this method and path.
    #[error("no endpoint {0}; see the README for the API")]
    NotFound(String),
    /// The path exists but not with this method.
    #[error("{0} does not accept this method; use {1}")]
    MethodNotAllowed(String, &'static str),
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
            Self::Config(_) => "config",
            Self::Buffer(_) | Self::BufferClosed | Self::Commit(_) => "buffer_unavailable",
            Self::Store(_) => "store_unavailable",
            Self::Encode(_) => "encode_failed",
            Self::Compact(_) => "compaction_failed",
            Self::Io { .. } => "io",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed(..) => "method_not_allowed",
        }
    }

    /// HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Ingest(e) => StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(..) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Buffer(_) | Self::BufferClosed | Self::Commit(_) | Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Config(_) | Self::Encode(_) | Self::Compact(_) | Self::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Ingest(e) => e.retry_after_secs(),
            Self::Buffer(_) | Self::BufferClosed | Self::Commit(_) | Self::Store(_) => Some(1),
            _ => None,
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        // Internal detail stays in the log, never in a 5xx body.
        let message = if status.is_server_error() {
            tracing::error!(error = %self, code = self.code(), "request failed");
            "the server could not complete the request; it has been logged, retry shortly".to_owned()
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
