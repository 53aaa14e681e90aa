//! The query API over HTTP: `POST /v1/sql`, trends, funnels and retention,
//! the person timeline, live events,
//! and the OpenAPI document. Handlers only extract, call the engine and
//! render: the [`project::Project`] extractor resolves the credential once,
//! and the engine then sees that project's tables only.

mod analytics;
pub mod cursor;
pub mod extract;
pub mod format;
mod live;
pub mod openapi;
pub mod project;
mod sql;
mod timeline;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::response::Html;
use axum::routing::{get, post};
use contrail_edge::Keyring;

use crate::analytics::funnels::FunnelsRequest;
use crate::analytics::retention::RetentionRequest;
use crate::analytics::trends::TrendsRequest;
use crate::engine::Engine;

/// State of the query handlers.
pub struct QueryState {
    /// The SQL engine.
    pub engine: Engine,
    /// Keys.
    pub keyring: Keyring,
    /// How often the live stream looks for new events.
    pub live_poll: Duration,
}

/// `POST`: one SQL statement.
pub const SQL_PATH: &str = "/v1/sql";
/// `GET`: a user's events, newest first.
pub const TIMELINE_PATH: &str = "/v1/users/{distinct_id}/events";
/// `GET`: new events as server-sent events.
pub const LIVE_PATH: &str = "/v1/events/live";
/// `POST`: counts and measures per calendar bucket.
pub const TRENDS_PATH: &str = "/v1/trends";
/// `POST`: persons through ordered steps.
pub const FUNNELS_PATH: &str = "/v1/funnels";
/// `POST`: cohorts and their return rates.
pub const RETENTION_PATH: &str = "/v1/retention";
/// `GET`: the OpenAPI document.
pub const OPENAPI_PATH: &str = "/openapi.json";
/// `GET`: the OpenAPI document, rendered.
pub const DOCS_PATH: &str = "/docs";
/// Every path [`routes`] serves (the OpenAPI test compares them with the document).
pub const PATHS: [&str; 8] =
    [SQL_PATH, TRENDS_PATH, FUNNELS_PATH, RETENTION_PATH, TIMELINE_PATH, LIVE_PATH, OPENAPI_PATH, DOCS_PATH];

/// The query routes (no fallback: the binary merges them with others).
pub fn routes(state: Arc<QueryState>) -> Router {
    Router::new()
        .route(SQL_PATH, post(sql::sql))
        .route(TRENDS_PATH, post(analytics::analyze::<TrendsRequest>))
        .route(FUNNELS_PATH, post(analytics::analyze::<FunnelsRequest>))
        .route(RETENTION_PATH, post(analytics::analyze::<RetentionRequest>))
        .route(TIMELINE_PATH, get(timeline::timeline))
        .route(LIVE_PATH, get(live::live))
        .route(OPENAPI_PATH, get(|| async { axum::Json(openapi::document()) }))
        .route(DOCS_PATH, get(|| async { Html(openapi::DOCS_HTML) }))
        .with_state(state)
}
