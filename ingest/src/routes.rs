//! The ingest routes: every Segment-compatible path (`/v1/batch`, `/v1/track`,
//! the bare `/track`, analytics.js's `/v1/t`, …), their CORS preflights, and
//! analytics.js's telemetry path. Handlers extract, call the contract's
//! [`Ingestor::prepare`] and the buffer, and render; the Worker's `fetch.rs`
//! is the same over Durable Objects.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use contrail_edge::ingest::TELEMETRY_PATH;
use contrail_edge::{Endpoint, Geo, IngestAnswer, IngestError, IngestRequest, Ingestor, KeyKind, cors};

use crate::buffer::Buffer;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::rate_limit::RateLimiter;
use crate::telemetry;

/// Shared state of the ingest handlers.
pub struct IngestState {
    /// The event contract with its keys and limits.
    pub ingestor: Ingestor,
    /// The durable buffer.
    pub buffer: Buffer,
    /// Now.
    pub clock: Arc<dyn Clock>,
    /// Per-write-key request rate limit.
    pub rate: RateLimiter,
    /// Origins allowed to send each project's events (absent or empty: any).
    pub allowed_origins: BTreeMap<String, Vec<String>>,
    /// Take the client IP from `X-Forwarded-For`.
    pub trust_forwarded_for: bool,
}

/// The ingest routes (no fallback: the binary merges them with the others).
pub fn routes(state: Arc<IngestState>) -> Router {
    let mut router = Router::new();
    for path in Endpoint::paths() {
        let Some(endpoint) = Endpoint::from_path(&path) else { continue };
        let handler = move |state: State<Arc<IngestState>>, request: Request| ingest(state, endpoint, request);
        router = router.route(&path, post(handler).options(preflight));
    }
    router.route(TELEMETRY_PATH, post(telemetry_discarded).options(preflight)).with_state(state)
}

#[tracing::instrument(skip_all, fields(project = tracing::field::Empty, messages = tracing::field::Empty))]
async fn ingest(State(state): State<Arc<IngestState>>, endpoint: Endpoint, request: Request) -> Response {
    let origin = request.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let result = ingest_inner(&state, endpoint, request, origin.as_deref()).await;
    let mut response = match result {
        Ok(answer) => {
            telemetry::report_ingest("ok", answer.accepted, answer.duplicates);
            (StatusCode::OK, Json(answer)).into_response()
        }
        Err(e) => {
            telemetry::report_ingest(e.code(), 0, 0);
            e.into_response()
        }
    };
    if let Some(origin) = origin.as_deref() {
        copy_headers(response.headers_mut(), cors::answer_headers(origin));
    }
    response
}

async fn ingest_inner(
    state: &IngestState,
    endpoint: Endpoint,
    request: Request,
    origin: Option<&str>,
) -> Result<IngestAnswer> {
    let (parts, body) = request.into_parts();
    let limit = state.ingestor.limits().max_request_bytes;
    let bytes = axum::body::to_bytes(body, state.ingestor.limits().max_wire_bytes()).await.map_err(|e| {
        let too_large = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            || e.to_string().contains("length limit");
        if too_large {
            IngestError::PayloadTooLarge { limit }
        } else {
            IngestError::MalformedJson(format!("could not read the request body: {e}"))
        }
    })?;
    let headers = &parts.headers;
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let client_ip = client_ip(&parts.extensions, headers, state.trust_forwarded_for);
    let received_at = state.clock.now();
    let request = IngestRequest {
        endpoint,
        authorization: text("authorization"),
        write_key_header: text("x-write-key"),
        query: parts.uri.query(),
        content_encoding: text("content-encoding"),
        body: &bytes,
        received_at,
        client_ip: client_ip.as_deref(),
        geo: Geo::default(),
    };
    let now_ms = received_at.timestamp_millis();
    let prepared = state.ingestor.prepare(&request, |project, key| {
        cors::check_origin(state.origins(project.as_str()), origin)?;
        state.rate.take(key, now_ms).map_err(|retry_after_secs| IngestError::RateLimited { retry_after_secs })
    })?;
    let span = tracing::Span::current();
    span.record("project", prepared.project.as_str());
    span.record("messages", prepared.events.len() + prepared.rejected.len());
    for rejected in &prepared.rejected {
        telemetry::report_rejected(&rejected.code);
    }
    let duplicates = state
        .buffer
        .store(prepared.project.as_str(), now_ms, prepared.events.iter().map(|(_, e)| e), &prepared.rejected)
        .await?;
    Ok(prepared.answer(duplicates))
}

impl IngestState {
    fn origins(&self, project: &str) -> &[String] {
        self.allowed_origins.get(project).map(Vec::as_slice).unwrap_or(&[])
    }
}

fn client_ip(extensions: &http::Extensions, headers: &HeaderMap, trust_forwarded_for: bool) -> Option<String> {
    if trust_forwarded_for {
        let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
        if let Some(first) = forwarded.and_then(|v| v.split(',').next()).map(str::trim).filter(|s| !s.is_empty()) {
            return Some(first.to_owned());
        }
    }
    extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string())
}

/// Copies the contract's CORS header set (the Worker copies the same one).
fn copy_headers<'a>(headers: &mut HeaderMap, set: impl IntoIterator<Item = (&'static str, &'a str)>) {
    for (name, value) in set {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
}

/// CORS preflight: answered for any origin (a preflight carries no key),
/// unless the key is in the query string, when the project's allowed origins
/// are checked here too.
async fn preflight(State(state): State<Arc<IngestState>>, request: Request) -> Response {
    let headers = request.headers();
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let key = cors::query_write_key(request.uri().query());
    if let Some(project) = key.and_then(|k| state.ingestor.keyring().verify(k, KeyKind::Write).ok())
        && let Err(e) = cors::check_origin(state.origins(project.as_str()), origin)
    {
        return Error::from(e).into_response();
    }
    let requested = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS).and_then(|v| v.to_str().ok());
    let mut response = StatusCode::NO_CONTENT.into_response();
    copy_headers(response.headers_mut(), cors::preflight_headers(origin, requested));
    response
}

/// analytics.js's telemetry (`/v1/m`): `200`, discarded.
async fn telemetry_discarded(request: Request) -> Response {
    let origin = request.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut response = Json(serde_json::json!({})).into_response();
    if let Some(origin) = origin.as_deref() {
        copy_headers(response.headers_mut(), cors::answer_headers(origin));
    }
    response
}
