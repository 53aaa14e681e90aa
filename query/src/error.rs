//! The query crate's one error type, mapped once to HTTP.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use contrail_edge::error::error_body;

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong answering a query request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable credential (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The credential is valid but not for this project (403).
    #[error("{0}")]
    Forbidden(String),
    /// A request that cannot be run as sent: bad SQL, a forbidden statement,
    /// a malformed body or parameter (400).
    #[error("{0}")]
    BadQuery(String),
    /// No such saved document, or it was deleted (404).
    #[error("{0}")]
    NotFound(String),
    /// A change made from a version that is no longer the latest (409).
    #[error("{0}")]
    Conflict(String),
    /// A saved document's latest version cannot be decoded (500; the
    /// message says how to recover, and holds nothing internal).
    #[error("{0}")]
    Damaged(String),
    /// A request body over the server's limit (413).
    #[error("{0}")]
    TooLarge(String),
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
    /// The query engine failed for a reason that is not the query's fault (500).
    #[error("query engine: {0}")]
    Engine(String),
    /// The object store failed (503).
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// Reading the project's snapshot (table version, raw batches) failed
    /// for a reason other than the store not answering (500).
    #[error("reading the project's data: {0}")]
    Snapshot(contrail_warehouse::Error),
}

impl Error {
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
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::BadQuery(_) => "invalid_query",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Damaged(_) => "document_damaged",
            Self::TooLarge(_) => "payload_too_large",
            Self::NotAcceptable(_) => "not_acceptable",
            Self::QueryTimeout(_) => "query_timeout",
            Self::QueryMemory(_) => "query_memory_limit",
            Self::Engine(_) => "query_failed",
            Self::Store(_) => "store_unavailable",
            Self::Snapshot(_) => "snapshot_failed",
        }
    }

    /// HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::BadQuery(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            Self::QueryTimeout(_) | Self::QueryMemory(_) | Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Engine(_) | Self::Snapshot(_) | Self::Damaged(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn retry_after(&self) -> Option<u64> {
        matches!(self, Self::Store(_)).then_some(1)
    }
}

impl From<contrail_warehouse::Error> for Error {
    fn from(e: contrail_warehouse::Error) -> Self {
        match e {
            contrail_warehouse::Error::Store(e) => Self::Store(e),
            other => Self::Snapshot(other),
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

/// Deserializes a `T` whose error names the field that failed
/// (`series[0].math: invalid type …`, not only a line and column), under
/// `within` (`query.series[0].math`) when the value sits inside a larger one.
pub fn named<'de, T, D>(deserializer: D, within: &str) -> Result<T, Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
    D::Error: std::fmt::Display,
{
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let field = e.path().to_string();
        let error = e.into_inner();
        match (within, field.as_str()) {
            ("", ".") => Error::BadQuery(format!("the body is not valid: {error}")),
            (_, ".") => Error::BadQuery(format!("{within}: {error}")),
            ("", _) => Error::BadQuery(format!("{field}: {error}")),
            _ => Error::BadQuery(format!("{within}.{field}: {error}")),
        }
    })
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        // Internal detail stays in the log, never in a 5xx body; a query's
        // limits are the caller's business and are said plainly.
        let message = if status.is_server_error()
            && !matches!(self, Self::QueryTimeout(_) | Self::QueryMemory(_) | Self::Damaged(_))
        {
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
