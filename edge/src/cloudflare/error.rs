//! The Worker's errors, mapped once to HTTP answers with the body every
//! Contrail endpoint uses: `{"error":{"code","message"}}`.

use worker::{Headers, Response};

use crate::error::{IngestError, error_body};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The request itself is refused (4xx), exactly as `contrail serve` refuses it.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// No such path.
    #[error("no such endpoint: {0}")]
    NotFound(String),
    /// The path exists with other methods.
    #[error("{method} is not supported here; use {allow}")]
    MethodNotAllowed {
        /// The method used.
        method: String,
        /// The methods the path answers.
        allow: &'static str,
    },
    /// A variable or secret is missing or malformed: the operator must fix it.
    #[error("{0}")]
    Misconfigured(String),
    /// The runtime failed (a binding, storage, R2): nothing was acknowledged,
    /// the client should retry.
    #[error("{0}")]
    Runtime(String),
}

impl From<worker::Error> for Error {
    fn from(e: worker::Error) -> Self {
        Self::Runtime(e.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::Runtime(format!("json: {e}"))
    }
}

impl Error {
    fn status(&self) -> u16 {
        match self {
            Self::Ingest(e) => e.status(),
            Self::NotFound(_) => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::Misconfigured(_) => 500,
            Self::Runtime(_) => 503,
        }
    }

    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::Ingest(e) => e.code(),
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::Misconfigured(_) => "misconfigured",
            Self::Runtime(_) => "unavailable",
        }
    }

    /// The answer. Operator-side failures are logged in full and answered
    /// with a message a client can act on, without internals.
    pub(crate) fn into_response(self) -> worker::Result<Response> {
        let message = match &self {
            Self::Misconfigured(detail) => {
                worker::console_error!("misconfigured: {detail}");
                "the Worker is misconfigured; its operator can see why in the Worker's logs".to_owned()
            }
            Self::Runtime(detail) => {
                worker::console_error!("runtime error: {detail}");
                "events could not all be stored just now: retry the request (events that were stored are \
                 recognised as duplicates)"
                    .to_owned()
            }
            other => other.to_string(),
        };
        let headers = Headers::new();
        headers.set("Content-Type", "application/json")?;
        if let Self::Ingest(e) = &self
            && let Some(secs) = e.retry_after_secs()
        {
            headers.set("Retry-After", &secs.to_string())?;
        }
        if let Self::MethodNotAllowed { allow, .. } = &self {
            headers.set("Allow", allow)?;
        }
        if let Self::Runtime(_) = &self {
            headers.set("Retry-After", "1")?;
        }
        Ok(Response::from_json(&error_body(self.code(), &message))?.with_status(self.status()).with_headers(headers))
    }
}
