//! The HTTP surface of `contrail serve`: ingest (Segment-compatible), health,
//! readiness and metrics. `app(state)` is apart from `main` so tests drive it
//! with `tower::ServiceExt::oneshot` and no socket.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use contrail_edge::cors;
use contrail_edge::{Endpoint, Geo, IngestAnswer, IngestError, IngestRequest, Ingestor, KeyKind, MessageType};
use metrics_exporter_prometheus::PrometheusHandle;
use object_store::ObjectStore;
use tracing::Instrument;

use crate::buffer::Buffer;
use crate::clock::Clock;
use crate::config::ProjectConfig;
use crate::error::{Error, Result};
use crate::rate_limit::RateLimiter;
use crate::telemetry;

/// Shared state of every handler.
pub struct AppState {
    /// The event contract with its keys and limits.
    pub ingestor: Ingestor,
    /// The durable buffer.
    pub buffer: Buffer,
    /// Now.
    pub clock: Arc<dyn Clock>,
    /// Per-write-key request rate limit.
    pub rate: RateLimiter,
    /// Per-project settings.
    pub projects: BTreeMap<String, ProjectConfig>,
    /// Take the client IP from `X-Forwarded-For`.
    pub trust_forwarded_for: bool,
    /// The object store raw batches go to (for readiness).
    pub store: Arc<dyn ObjectStore>,
    /// Prometheus text rendering.
    pub metrics: PrometheusHandle,
}

/// Every ingest path: `/v1/<name>` and the bare `/<name>` some SDKs use.
pub fn ingest_paths() -> Vec<String> {
    let names = ["batch", "import"].into_iter().chain(MessageType::ALL.iter().map(|t| t.as_str()));
    names.flat_map(|n| [format!("/v1/{n}"), format!("/{n}")]).collect()
}

/// The ingest router (with health, readiness and metrics), complete.
pub fn app(state: Arc<AppState>) -> Router {
    finish(ingest_routes(state))
}

/// Ingest and the query API on one router: what `contrail serve` listens with.
pub fn app_with_query(state: Arc<AppState>, query: Arc<crate::api::QueryState>) -> Router {
    finish(ingest_routes(state).merge(crate::api::routes(query)))
}

/// The query API alone (`contrail query`), with health, readiness (the
/// object store answers) and metrics.
pub fn query_app(query: Arc<crate::api::QueryState>) -> Router {
    let store = query.engine.store();
    let ops = Router::new()
        .route("/healthz", get(healthz))
        .route(
            "/readyz",
            get(move || async move {
                match store.list_with_delimiter(None).await {
                    Ok(_) => Json(serde_json::json!({ "status": "ready" })).into_response(),
                    Err(e) => Error::from(e).into_response(),
                }
            }),
        )
        .route("/metrics", get(|| async { prometheus_text(&telemetry::prometheus()) }));
    finish(crate::api::routes(query).merge(ops))
}

fn ingest_routes(state: Arc<AppState>) -> Router {
    let mut router = Router::new();
    for path in ingest_paths() {
        router = router.route(&path, post(ingest).options(preflight));
    }
    router
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Fallbacks (404/405 with a JSON error) and the per-request span.
fn finish(router: Router) -> Router {
    router.fallback(not_found).method_not_allowed_fallback(method_not_allowed).layer(middleware::from_fn(request_span))
}

/// One `tracing` span per request, with its outcome.
async fn request_span(request: Request, next: Next) -> Response {
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        status = tracing::field::Empty,
        ms = tracing::field::Empty,
    );
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    span.record("status", response.status().as_u16());
    span.record("ms", started.elapsed().as_secs_f64() * 1000.0);
    tracing::debug!(parent: &span, "done");
    response
}

#[tracing::instrument(skip_all, fields(project = tracing::field::Empty, messages = tracing::field::Empty))]
async fn ingest(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let origin = request.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let result = ingest_inner(&state, request, origin.as_deref()).await;
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
    allow_origin(response.headers_mut(), origin.as_deref());
    response
}

async fn ingest_inner(state: &AppState, request: Request, origin: Option<&str>) -> Result<IngestAnswer> {
    let (parts, body) = request.into_parts();
    let endpoint = Endpoint::from_path(parts.uri.path()).ok_or_else(|| Error::NotFound(parts.uri.path().to_owned()))?;
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
        check_origin(state.projects.get(project.as_str()), origin)?;
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

fn check_origin(project: Option<&ProjectConfig>, origin: Option<&str>) -> Result<(), IngestError> {
    cors::check_origin(project.map(|p| p.allowed_origins.as_slice()).unwrap_or(&[]), origin)
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

fn allow_origin(headers: &mut HeaderMap, origin: Option<&str>) {
    if let Some(value) = origin.and_then(|o| HeaderValue::from_str(o).ok()) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        // A browser script may read a 429's Retry-After only if it is exposed.
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(cors::EXPOSE_HEADERS));
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
}

/// CORS preflight. Browsers send no key with it, so it is answered for any
/// origin; the actual request is checked against the project's allowed origins
/// (unless the key is in the query string, when the preflight is checked too).
async fn preflight(State(state): State<Arc<AppState>>, headers: HeaderMap, request: Request) -> Response {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let key = cors::query_write_key(request.uri().query());
    if let Some(project) = key.and_then(|k| state.ingestor.keyring().verify(k, KeyKind::Write).ok())
        && let Err(e) = check_origin(state.projects.get(project.as_str()), origin)
    {
        return Error::from(e).into_response();
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        origin.and_then(|o| HeaderValue::from_str(o).ok()).unwrap_or(HeaderValue::from_static("*")),
    );
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(cors::ALLOW_METHODS));
    let requested = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        requested.unwrap_or(HeaderValue::from_static(cors::DEFAULT_ALLOW_HEADERS)),
    );
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(cors::MAX_AGE_SECS));
    response
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Ready when the buffer commits and the object store answers.
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let buffer = state.buffer.ping().await;
    let store = state.store.list_with_delimiter(None).await.map(|_| ());
    match (buffer, store) {
        (Ok(()), Ok(())) => Json(serde_json::json!({ "status": "ready" })).into_response(),
        (Err(e), _) => e.into_response(),
        (_, Err(e)) => Error::from(e).into_response(),
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    prometheus_text(&state.metrics)
}

fn prometheus_text(handle: &PrometheusHandle) -> Response {
    let mut response = handle.render().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

async fn not_found(method: Method, request: Request<Body>) -> Error {
    Error::NotFound(format!("{method} {}", request.uri().path()))
}

async fn method_not_allowed(request: Request<Body>) -> Error {
    let path = request.uri().path().to_owned();
    let allowed = if Endpoint::from_path(&path).is_some() || path == "/v1/sql" { "POST" } else { "GET" };
    Error::MethodNotAllowed(format!("{} {path}", request.method()), allowed)
}
