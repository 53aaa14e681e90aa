//! The router: ingest, the query API and operations (`/healthz`, `/readyz`,
//! `/metrics`) on one port, with JSON 404/405 answers and one `tracing` span
//! per request. Built apart from `main` so tests drive it with
//! `tower::ServiceExt::oneshot` and no socket.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use contrail_edge::Endpoint;
use contrail_edge::ingest::TELEMETRY_PATH;
use contrail_ingest::Buffer;
use contrail_query::QueryState;
use metrics_exporter_prometheus::PrometheusHandle;
use object_store::ObjectStore;
use tracing::Instrument;

use crate::dashboard;
use crate::error::Error;
use crate::serve::Stack;
use crate::telemetry;

/// What `contrail serve` listens with: ingest, the query API, operations.
pub fn serve(stack: &Stack) -> Router {
    let ops = operations(Some(stack.ingest.buffer.clone()), stack.store().clone(), telemetry::prometheus());
    finish(
        contrail_ingest::routes(stack.ingest.clone())
            .merge(contrail_query::routes(stack.query.clone()))
            .merge(ops)
            .merge(dashboard::routes()),
    )
}

/// What `contrail query` listens with: the query API and operations (ready
/// when the object store answers).
pub fn query(query: Arc<QueryState>, store: Arc<dyn ObjectStore>) -> Router {
    finish(
        contrail_query::routes(query)
            .merge(operations(None, store, telemetry::prometheus()))
            .merge(dashboard::routes()),
    )
}

/// Liveness: the process answers.
pub const HEALTHZ: &str = "/healthz";
/// Readiness: the buffer commits (in `serve`) and the object store answers.
pub const READYZ: &str = "/readyz";
/// Prometheus text metrics.
pub const METRICS: &str = "/metrics";

/// Every path `serve`'s router answers (besides its 404/405 fallbacks).
pub fn paths() -> Vec<String> {
    let ingest = Endpoint::paths().into_iter().chain([TELEMETRY_PATH.to_owned()]);
    let query = contrail_query::api::PATHS.iter().map(|p| (*p).to_owned());
    ingest.chain(query).chain([HEALTHZ, READYZ, METRICS].map(str::to_owned)).collect()
}

/// `/healthz` (the process answers), `/readyz` (the buffer commits, if there
/// is one, and the object store answers) and `/metrics` (Prometheus text).
fn operations(buffer: Option<Buffer>, store: Arc<dyn ObjectStore>, metrics: PrometheusHandle) -> Router {
    Router::new()
        .route(HEALTHZ, get(|| async { Json(serde_json::json!({ "status": "ok" })) }))
        .route(
            READYZ,
            get(move || async move {
                if let Some(buffer) = &buffer
                    && let Err(e) = buffer.ping().await
                {
                    return Error::from(e).into_response();
                }
                match store.list_with_delimiter(None).await {
                    Ok(_) => Json(serde_json::json!({ "status": "ready" })).into_response(),
                    Err(e) => Error::from(e).into_response(),
                }
            }),
        )
        .route(METRICS, get(move || async move { prometheus_text(&metrics) }))
}

/// Fallbacks (404/405 with a JSON error) and the per-request span.
fn finish(router: Router) -> Router {
    router.fallback(not_found).method_not_allowed_fallback(method_not_allowed).layer(middleware::from_fn(request_span))
}

/// One `tracing` span per request, with its outcome; the query API's
/// `Project` extractor records the project on it.
async fn request_span(request: Request, next: Next) -> Response {
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        project = tracing::field::Empty,
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
    Error::MethodNotAllowed(format!("{} {path}", request.method()), allowed_methods(&path))
}

/// The methods a routed path answers, for a 405's `Allow`.
fn allowed_methods(path: &str) -> &'static str {
    use contrail_query::api::{
        DASHBOARDS_PATH, FUNNEL_PERSONS_PATH, FUNNELS_PATH, INSIGHTS_PATH, RETENTION_PATH, SQL_PATH, TRENDS_PATH,
    };
    let saved_item = [INSIGHTS_PATH, DASHBOARDS_PATH]
        .iter()
        .any(|collection| path.strip_prefix(collection).is_some_and(|rest| rest.starts_with('/')));
    if Endpoint::from_path(path).is_some() || path == TELEMETRY_PATH {
        "POST, OPTIONS"
    } else if [SQL_PATH, TRENDS_PATH, FUNNELS_PATH, FUNNEL_PERSONS_PATH, RETENTION_PATH].contains(&path) {
        "POST"
    } else if path == INSIGHTS_PATH || path == DASHBOARDS_PATH {
        "GET, POST"
    } else if saved_item {
        "GET, PUT, DELETE"
    } else {
        "GET"
    }
}
