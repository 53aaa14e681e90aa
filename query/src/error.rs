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
    /// No usable credential for a query endpoint (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The credential is valid but not for this project (403).
    #[error("{0}")]
    Forbidden(String),
    /// A query request that cannot be run as sent: bad SQL, a forbidden
    /// statement, a bad parameter (400).
    #[error("{0}")]
    BadQuery(String),
    /// No representation the client accepts (406).
    #[error("{0}")]
    NotAcceptable(String),
    /// A query ran past its deadline and was cancelled (503).
    #[error(
        "the query did not finish within {0} s and was cancelled; narrow the time range, filter more, or aggregate before returning rows"
    )]
    QueryTimeout(u64),
    /// A query needed more memory than its limit (503).
    #[error("the query needed more memory than its limit and was cancelled; filter or aggregate more ({0})")]
    QueryMemory(String),
    /// The query engine failed for a reason that is not the query's fault.
    #[error("query engine: {0}")]
    Engine(String),
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }

    /// Classifies a DataFusion error once: the query's fault (400), a limit
    /// (503), storage (503), or ours (500).
    pub fn from_datafusion(error: datafusion::error::DataFusionError) -> Self {
        use datafusion::error::DataFusionError as E;
        let message = error.strip_backtrace();
        match error.find_root() {
            E::ResourcesExhausted(m) => Self::QueryMemory(m.clone()),
            E::SQL(..) | E::Plan(_) | E::SchemaError(..) | E::NotImplemented(_) | E::Configuration(_) => {
                Self::BadQuery(message)
            }
            // Execution and Arrow errors come from the data meeting the query:
            // a failed cast, a division by zero, an overflow.
            E::Execution(_) | E::ArrowError(..) => Self::BadQuery(message),
            E::ObjectStore(e) => Self::Engine(format!("object store: {e}")),
            _ => Self::Engine(message),
        }
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
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::BadQuery(_) => "invalid_query",
            Self::NotAcceptable(_) => "not_acceptable",
            Self::QueryTimeout(_) => "query_timeout",
            Self::QueryMemory(_) => "query_memory_limit",
            Self::Engine(_) => "query_failed",
        }
    }

    /// HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Ingest(e) => StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(..) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::BadQuery(_) => StatusCode::BAD_REQUEST,
            Self::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            Self::QueryTimeout(_) | Self::QueryMemory(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Engine(_) => StatusCode::INTERNAL_SERVER_ERROR,
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

impl From<datafusion::error::DataFusionError> for Error {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        Self::from_datafusion(e)
    }
}

impl From<arrow::error::ArrowError> for Error {
    fn from(e: arrow::error::ArrowError) -> Self {
        Self::Engine(format!("arrow: {e}"))
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        // Internal detail stays in the log, never in a 5xx body; a query's
        // limits are the caller's business and are said plainly.
        let message = if status.is_server_error() && !matches!(self, Self::QueryTimeout(_) | Self::QueryMemory(_)) {
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
