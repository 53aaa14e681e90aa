//! One ingest request, start to finish, with no I/O: bytes and headers in,
//! events to buffer and messages to quarantine out.
//!
//! The Worker and `contrail serve` both call [`Ingestor::prepare`], so the two
//! transports cannot drift apart in what they accept, reject or normalise. What
//! differs (durable dedupe, buffering, rate-limit state) happens around it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::body::decode_body;
use crate::error::{IngestError, RejectCode};
use crate::event::{Event, MessageType, RejectedMessage};
use crate::ip_hash::DailySalt;
use crate::keys::{KeyError, KeyKind, Keyring};
use crate::limits::Limits;
use crate::normalise::{Envelope, Geo, normalise};
use crate::project::ProjectId;
use crate::validate::{parse_time, validate};

/// Which ingest endpoint a request hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v1/batch` (also `/v1/import`, Segment's alias for it).
    Batch,
    /// `/v1/track`, `/v1/page`, …: one message whose type is the path's.
    Single(MessageType),
}

/// analytics.js's own telemetry endpoint: answered `200` and discarded, so a
/// page using the unmodified library logs no failed request.
pub const TELEMETRY_PATH: &str = "/v1/m";

/// The one-letter names `@segment/analytics-next` posts to (`/v1/t`, …,
/// `/v1/b` for batches): only under `/v1/`, as the library sends them.
const SHORT_NAMES: [(&str, Option<MessageType>); 7] = [
    ("b", None),
    ("t", Some(MessageType::Track)),
    ("p", Some(MessageType::Page)),
    ("s", Some(MessageType::Screen)),
    ("i", Some(MessageType::Identify)),
    ("g", Some(MessageType::Group)),
    ("a", Some(MessageType::Alias)),
];

impl Endpoint {
    /// Maps `/v1/<name>`, the bare `/<name>` that some SDKs use, and
    /// analytics.js's `/v1/<letter>`.
    pub fn from_path(path: &str) -> Option<Self> {
        let versioned = path.strip_prefix("/v1");
        let name = versioned.unwrap_or(path).strip_prefix('/')?;
        let name = name.strip_suffix('/').unwrap_or(name);
        if versioned.is_some()
            && let Some((_, single)) = SHORT_NAMES.iter().find(|(short, _)| *short == name)
        {
            return Some(single.map_or(Self::Batch, Self::Single));
        }
        match name {
            "batch" | "import" => Some(Self::Batch),
            other => MessageType::parse(other).map(Self::Single),
        }
    }

    /// Every path [`Endpoint::from_path`] accepts (without a trailing `/`),
    /// for transports that register routes one by one.
    pub fn paths() -> Vec<String> {
        let names = ["batch", "import"].into_iter().chain(MessageType::ALL.iter().map(|t| t.as_str()));
        let long = names.flat_map(|n| [format!("/v1/{n}"), format!("/{n}")]);
        long.chain(SHORT_NAMES.iter().map(|(short, _)| format!("/v1/{short}"))).collect()
    }
}

/// The parts of an HTTP request the contract looks at.
#[derive(Debug, Clone)]
pub struct IngestRequest<'a> {
    /// Which endpoint.
    pub endpoint: Endpoint,
    /// `Authorization` header (Basic with the write key as user name, or Bearer).
    pub authorization: Option<&'a str>,
    /// `X-Write-Key` header.
    pub write_key_header: Option<&'a str>,
    /// The raw query string (may carry `writeKey=`).
    pub query: Option<&'a str>,
    /// `Content-Encoding` header.
    pub content_encoding: Option<&'a str>,
    /// The body as received (possibly compressed).
    pub body: &'a [u8],
    /// Receive time.
    pub received_at: DateTime<Utc>,
    /// The connection's client IP.
    pub client_ip: Option<&'a str>,
    /// Edge location data.
    pub geo: Geo,
}

/// A request that passed the whole-request checks.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The project of the write key.
    pub project: ProjectId,
    /// The verified write key (the transport's rate limit is per key).
    pub write_key: String,
    /// Valid messages, normalised, with their index in the request.
    pub events: Vec<(u32, Event)>,
    /// Invalid messages, for quarantine and for the answer.
    pub rejected: Vec<RejectedMessage>,
}

/// The body of a `200` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestAnswer {
    /// Messages newly stored.
    pub accepted: usize,
    /// Messages acknowledged but already stored (same project and event id).
    pub duplicates: usize,
    /// Messages refused, by index, with the reason.
    pub rejected: Vec<RejectedItem>,
}

/// One refused message in an [`IngestAnswer`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedItem {
    /// Position in the request's batch (0 for single-message endpoints).
    pub index: u32,
    /// Stable reason code.
    pub code: String,
    /// What to fix.
    pub error: String,
}

impl Prepared {
    /// The answer once the buffer has stored the events, `duplicates` of which
    /// it had already.
    pub fn answer(&self, duplicates: usize) -> IngestAnswer {
        IngestAnswer {
            accepted: self.events.len() - duplicates,
            duplicates,
            rejected: self
                .rejected
                .iter()
                .map(|r| RejectedItem { index: r.index, code: r.code.clone(), error: r.error.clone() })
                .collect(),
        }
    }
}

/// The contract's configuration: keys, limits and the IP-hash secret.
#[derive(Debug, Clone)]
pub struct Ingestor {
    keyring: Keyring,
    limits: Limits,
    ip_secret: Vec<u8>,
}

/// The top level of a `/v1/batch` body. Messages stay raw so that each one's
/// size is its exact JSON text and one bad message cannot fail the others.
#[derive(Deserialize)]
struct BatchEnvelope<'a> {
    #[serde(borrow)]
    batch: Option<&'a RawValue>,
    context: Option<Value>,
    #[serde(rename = "sentAt")]
    sent_at: Option<Value>,
    #[serde(rename = "writeKey")]
    write_key: Option<Value>,
}

impl Ingestor {
    /// An ingestor with the given keyring and limits; the IP salt derives from
    /// the keyring's primary secret unless `ip_secret` is given.
    pub fn new(keyring: Keyring, limits: Limits, ip_secret: Option<Vec<u8>>) -> Self {
        let ip_secret = ip_secret.unwrap_or_else(|| keyring.primary_secret().to_vec());
        Self { keyring, limits, ip_secret }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The keyring.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Runs every check and normalisation. `admit` is called with the project
    /// and the verified key once they are known and before messages are
    /// processed: the transport's rate limit and origin checks go there.
    pub fn prepare(
        &self,
        request: &IngestRequest<'_>,
        admit: impl FnOnce(&ProjectId, &str) -> Result<(), IngestError>,
    ) -> Result<Prepared, IngestError> {
        let body = decode_body(request.content_encoding, request.body, self.limits.max_request_bytes)?;
        let mut admit = Some(admit);
        // A key in a header is checked before the body is parsed: an
        // unauthenticated client should not get the server to parse 512 KiB.
        let header_key = header_write_key(request);
        let mut credential = match header_key {
            Some(key) => Some((self.authenticate(&key, admit.take())?, key)),
            None => None,
        };

        let text = std::str::from_utf8(&body)
            .map_err(|e| IngestError::MalformedJson(format!("body is not UTF-8 text: {e}")))?;
        let parsed = match request.endpoint {
            Endpoint::Batch => parse_batch(text)?,
            Endpoint::Single(_) => parse_single(text)?,
        };
        let (project, write_key) = match credential.take() {
            Some(verified) => verified,
            None => {
                let key = parsed.write_key.as_deref().ok_or(IngestError::MissingKey)?;
                (self.authenticate(key, admit.take())?, key.to_owned())
            }
        };

        if parsed.messages.len() > self.limits.max_batch_messages {
            return Err(IngestError::TooManyMessages {
                count: parsed.messages.len(),
                limit: self.limits.max_batch_messages,
            });
        }

        let path_type = match request.endpoint {
            Endpoint::Batch => None,
            Endpoint::Single(t) => Some(t),
        };
        let geo = request.geo.clone();
        let envelope = Envelope {
            project: &project,
            received_at: request.received_at,
            sent_at: parsed.sent_at,
            context: parsed.context.as_ref(),
            client_ip: request.client_ip,
            geo: &geo,
            ip_salt: DailySalt::new(&self.ip_secret, request.received_at),
            limits: &self.limits,
        };
        // The top-level context is copied into every message, so it counts
        // toward each message's size: without that, one request could turn a
        // 512 KiB body into a thousand rows of 500 KiB each.
        let inherited = parsed.context.as_ref().and_then(|c| serde_json::to_string(c).ok()).map_or(0, |t| t.len());
        let mut events = Vec::with_capacity(parsed.messages.len());
        let mut rejected = Vec::new();
        for (index, raw) in parsed.messages.iter().enumerate() {
            let index = index as u32;
            match self.message(raw, inherited, path_type, &envelope) {
                Ok(event) => events.push((index, event)),
                Err((code, error)) => rejected.push(RejectedMessage {
                    project_id: project.as_str().to_owned(),
                    received_at: request.received_at.timestamp_millis(),
                    index,
                    code: code.as_str().to_owned(),
                    error,
                    message: truncate(raw.get(), self.limits.max_message_bytes).to_owned(),
                }),
            }
        }
        Ok(Prepared { project, write_key, events, rejected })
    }

    /// One message; `inherited` is the size of the top-level context it gets.
    fn message(
        &self,
        raw: &RawValue,
        inherited: usize,
        path_type: Option<MessageType>,
        envelope: &Envelope<'_>,
    ) -> Result<Event, (RejectCode, String)> {
        let text = raw.get();
        let limit = self.limits.max_message_bytes;
        if text.len() + inherited > limit {
            let error = if inherited == 0 {
                format!("message is {} bytes; at most {limit} are allowed", text.len())
            } else {
                format!(
                    "message is {} bytes plus {inherited} bytes of the batch's top-level context, which is copied \
                     into it; at most {limit} are allowed in all",
                    text.len()
                )
            };
            return Err((RejectCode::MessageTooLarge, error));
        }
        let object = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err((RejectCode::NotAnObject, "each message must be a JSON object".into())),
            Err(e) => return Err((RejectCode::TooDeep, format!("message cannot be parsed: {e}"))),
        };
        let message = validate(object, path_type, &self.limits).map_err(|r| (r.code, r.message))?;
        Ok(normalise(message, envelope))
    }

    fn authenticate(
        &self,
        key: &str,
        admit: Option<impl FnOnce(&ProjectId, &str) -> Result<(), IngestError>>,
    ) -> Result<ProjectId, IngestError> {
        let project = self.keyring.verify(key, KeyKind::Write).map_err(|e| match e {
            KeyError::Revoked => IngestError::RevokedKey,
            other => IngestError::InvalidKey(other.to_string()),
        })?;
        if let Some(admit) = admit {
            admit(&project, key)?;
        }
        Ok(project)
    }
}

/// What the body held, before authentication.
struct ParsedBody<'a> {
    messages: Vec<&'a RawValue>,
    context: Option<Map<String, Value>>,
    sent_at: Option<DateTime<Utc>>,
    write_key: Option<String>,
}

fn json_error(e: serde_json::Error) -> IngestError {
    IngestError::MalformedJson(e.to_string())
}

fn parse_batch(text: &str) -> Result<ParsedBody<'_>, IngestError> {
    check_nesting(text)?;
    if !text.trim_start().starts_with('{') {
        serde_json::from_str::<&RawValue>(text).map_err(json_error)?;
        return Err(IngestError::NotABatch("expected a JSON object {\"batch\": [message, …]}".into()));
    }
    let envelope: BatchEnvelope<'_> = serde_json::from_str(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => IngestError::NotABatch(format!("not a batch: {e}")),
        _ => json_error(e),
    })?;
    let batch = envelope
        .batch
        .ok_or_else(|| IngestError::NotABatch("missing \"batch\": send {\"batch\": [message, …]}".into()))?;
    let messages: Vec<&RawValue> = serde_json::from_str(batch.get())
        .map_err(|_| IngestError::NotABatch("\"batch\" must be an array of messages".into()))?;
    let context = match envelope.context {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map),
        Some(_) => return Err(IngestError::NotABatch("top-level \"context\" must be a JSON object".into())),
    };
    let sent_at = match envelope.sent_at {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(parse_time(&s).ok_or_else(|| {
            IngestError::NotABatch(format!("top-level \"sentAt\" is not an ISO-8601 date-time: {s:?}"))
        })?),
        Some(_) => return Err(IngestError::NotABatch("top-level \"sentAt\" must be an ISO-8601 string".into())),
    };
    let write_key = match envelope.write_key {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    };
    Ok(ParsedBody { messages, context, sent_at, write_key })
}

fn parse_single(text: &str) -> Result<ParsedBody<'_>, IngestError> {
    check_nesting(text)?;
    let root: &RawValue = serde_json::from_str(text).map_err(json_error)?;
    let write_key = match serde_json::from_str::<Value>(root.get()) {
        Ok(Value::Object(map)) => {
            map.get("writeKey").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
        }
        Ok(_) => return Err(IngestError::NotABatch("expected one message as a JSON object".into())),
        Err(e) => return Err(json_error(e)),
    };
    Ok(ParsedBody { messages: vec![root], context: None, sent_at: None, write_key })
}

/// Deepest nesting a request body may have anywhere. Messages are limited to
/// 16 levels (and rejected one by one past that); a body beyond this bound is
/// refused whole, before any parser recurses into it, because no SDK produces
/// it and parsing it is the attack.
const MAX_BODY_NESTING: usize = 128;

/// One pass over the bytes counting brackets outside strings.
fn check_nesting(text: &str) -> Result<(), IngestError> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for byte in text.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_BODY_NESTING {
                    return Err(IngestError::MalformedJson(format!(
                        "JSON nests more than {MAX_BODY_NESTING} levels deep; messages may nest at most 16 levels"
                    )));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn header_write_key(request: &IngestRequest<'_>) -> Option<String> {
    if let Some(auth) = request.authorization {
        let auth = auth.trim();
        if let Some(encoded) = auth.strip_prefix("Basic ").or_else(|| auth.strip_prefix("basic ")) {
            let decoded = STANDARD.decode(encoded.trim()).ok()?;
            let decoded = String::from_utf8(decoded).ok()?;
            let (user, password) = decoded.split_once(':').unwrap_or((&decoded, ""));
            let key = if user.is_empty() { password } else { user };
            return (!key.is_empty()).then(|| key.to_owned());
        }
        if let Some(token) = auth.strip_prefix("Bearer ").or_else(|| auth.strip_prefix("bearer ")) {
            return Some(token.trim().to_owned());
        }
    }
    if let Some(key) = request.write_key_header.map(str::trim).filter(|k| !k.is_empty()) {
        return Some(key.to_owned());
    }
    crate::cors::query_write_key(request.query).map(percent_decode).filter(|v| !v.is_empty())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (hex, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, b) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
