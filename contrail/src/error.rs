//! The binary's one error type: start-up failures, the router's own answers
//! (404, 405, readiness), and the library crates' errors, each mapped to
//! HTTP by the crate that knows it.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use contrail_edge::error::error_body;

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the `contrail` binary.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration file or environment is invalid (start-up only).
    #[error("configuration: {0}")]
    Config(String),
    /// A local file (secret, data directory) or socket failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Ingest: the buffer, the flusher, a refused request.
    #[error(transparent)]
    Ingest(#[from] contrail_ingest::Error),
    /// The query service.
    #[error(transparent)]
    Query(#[from] contrail_query::Error),
    /// The warehouse: compaction, upkeep, opening a store location.
    #[error("warehouse: {0}")]
    Warehouse(#[from] contrail_warehouse::Error),
    /// The object store does not answer (readiness).
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// No route for this method and path.
    #[error("no endpoint {0}; see /docs for the API")]
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
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = match self {
            Self::Ingest(e) => return e.into_response(),
            Self::Query(e) => return e.into_response(),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Store(_) => {
                tracing::error!(error = %self, "object store unavailable");
                let body = error_body("store_unavailable", "the object store does not answer; retry shortly");
                let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(1));
                return response;
            }
            Self::MethodNotAllowed(..) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Config(_) | Self::Io { .. } | Self::Warehouse(_) => {
                tracing::error!(error = %self, "request failed");
                let message = "the server could not complete the request; it has been logged, retry shortly";
                return (StatusCode::INTERNAL_SERVER_ERROR, Json(error_body("internal", message))).into_response();
            }
        };
        tracing::warn!(error = %self, code, "request refused");
        (status, Json(error_body(code, &self.to_string()))).into_response()
    }
}
