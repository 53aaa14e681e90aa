//! Errors of the event contract.
//!
//! [`IngestError`] is a failure of a whole request (nothing in it was accepted);
//! [`RejectCode`] is the reason one message of an otherwise good request was
//! rejected and quarantined. Both know their stable snake_case `code()`, which is
//! part of the API (clients switch on it) and doubles as a metric label.

use std::fmt;

/// A whole ingest request failed; the transport answers `status()` with
/// `{"error":{"code","message"}}` and nothing in the request is stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    /// No write key in the `Authorization` header, `X-Write-Key`, `?writeKey=` or body.
    #[error(
        "no write key: send it as the HTTP Basic user name, the X-Write-Key header, ?writeKey= or \"writeKey\" in the body"
    )]
    MissingKey,
    /// The key is not one this deployment minted (or is malformed).
    #[error("invalid write key: {0}")]
    InvalidKey(String),
    /// The key was valid but is on the deny list.
    #[error("this write key has been revoked; ask the project owner for a new one")]
    RevokedKey,
    /// The request's `Origin` is not in the project's allowed origins.
    #[error("origin {0:?} is not allowed to send events to this project")]
    OriginNotAllowed(String),
    /// A `Content-Encoding` other than gzip or identity.
    #[error("unsupported Content-Encoding {0:?}: send gzip or no encoding")]
    UnsupportedEncoding(String),
    /// The body, after decompression, exceeds the request limit.
    #[error("request body exceeds {limit} bytes after decompression: split it into smaller batches")]
    PayloadTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// More messages in one batch than allowed.
    #[error("batch has {count} messages; at most {limit} are allowed per request: split it")]
    TooManyMessages {
        /// Messages in the request.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// The body is not JSON, or not valid UTF-8, or nested too deeply to parse.
    #[error("body is not valid JSON: {0}")]
    MalformedJson(String),
    /// The body is JSON but not the expected shape (`{"batch":[…]}` or a message object).
    #[error("{0}")]
    NotABatch(String),
    /// Too many requests for this write key.
    #[error("rate limit exceeded for this write key; retry after {retry_after_secs} s")]
    RateLimited {
        /// Seconds until a token is available.
        retry_after_secs: u64,
    },
}

impl IngestError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingKey => "missing_write_key",
            Self::InvalidKey(_) => "invalid_write_key",
            Self::RevokedKey => "revoked_write_key",
            Self::OriginNotAllowed(_) => "origin_not_allowed",
            Self::UnsupportedEncoding(_) => "unsupported_encoding",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::TooManyMessages { .. } => "too_many_messages",
            Self::MalformedJson(_) => "malformed_json",
            Self::NotABatch(_) => "not_a_batch",
            Self::RateLimited { .. } => "rate_limited",
        }
    }

    /// HTTP status the transport answers with.
    pub fn status(&self) -> u16 {
        match self {
            Self::MissingKey | Self::InvalidKey(_) => 401,
            Self::RevokedKey | Self::OriginNotAllowed(_) => 403,
            Self::UnsupportedEncoding(_) => 415,
            Self::PayloadTooLarge { .. } | Self::TooManyMessages { .. } => 413,
            Self::MalformedJson(_) | Self::NotABatch(_) => 400,
            Self::RateLimited { .. } => 429,
        }
    }

    /// Seconds for a `Retry-After` header, when the client should retry later.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        }
    }

    /// The error body every transport sends: `{"error":{"code","message"}}`.
    pub fn to_body(&self) -> serde_json::Value {
        error_body(self.code(), &self.to_string())
    }
}

/// The one error body shape of every Contrail endpoint.
pub fn error_body(code: &str, message: &str) -> serde_json::Value {
    serde_json::json!({ "error": { "code": code, "message": message } })
}

/// Why one message was rejected. The message itself is quarantined with this code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectCode {
    /// The message is not a JSON object.
    NotAnObject,
    /// The JSON text of the message exceeds the per-message limit.
    MessageTooLarge,
    /// `type` is missing (on `/batch`) or not a Segment message type, or disagrees with the path.
    InvalidType,
    /// A required field is absent (`event` for track, `groupId` for group, …).
    MissingField,
    /// Neither `userId` nor `anonymousId`.
    MissingIdentity,
    /// A field has the wrong JSON type (e.g. `properties` is a string).
    InvalidField,
    /// `event` or `name` is longer than allowed.
    NameTooLong,
    /// `messageId` is longer than allowed.
    MessageIdTooLong,
    /// More keys in `properties`/`traits` than allowed.
    TooManyProperties,
    /// `properties`, `traits` or `context` nest too deeply.
    TooDeep,
    /// `timestamp`/`sentAt` is not an ISO-8601 date-time.
    InvalidTimestamp,
}

impl RejectCode {
    /// Every code, for metrics pre-registration and documentation.
    pub const ALL: [RejectCode; 11] = [
        Self::NotAnObject,
        Self::MessageTooLarge,
        Self::InvalidType,
        Self::MissingField,
        Self::MissingIdentity,
        Self::InvalidField,
        Self::NameTooLong,
        Self::MessageIdTooLong,
        Self::TooManyProperties,
        Self::TooDeep,
        Self::InvalidTimestamp,
    ];

    /// Stable machine-readable code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotAnObject => "not_an_object",
            Self::MessageTooLarge => "message_too_large",
            Self::InvalidType => "invalid_type",
            Self::MissingField => "missing_field",
            Self::MissingIdentity => "missing_identity",
            Self::InvalidField => "invalid_field",
            Self::NameTooLong => "name_too_long",
            Self::MessageIdTooLong => "message_id_too_long",
            Self::TooManyProperties => "too_many_properties",
            Self::TooDeep => "too_deep",
            Self::InvalidTimestamp => "invalid_timestamp",
        }
    }

    /// Parses a code back (quarantine files store the string).
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == code)
    }
}

impl fmt::Display for RejectCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message-level rejection: the code and a sentence a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The stable code.
    pub code: RejectCode,
    /// What was wrong and how to fix it.
    pub message: String,
}

impl Rejection {
    pub(crate) fn new(code: RejectCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

/// Errors of the raw-batch encoding (Arrow IPC files).
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// Arrow failed to build or read a batch.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// The file does not carry the columns or schema version this reader understands.
    #[error("raw batch schema mismatch: {0}")]
    Schema(String),
}
