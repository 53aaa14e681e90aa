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
mod projects;
mod saved;
mod sql;
mod timeline;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::response::Html;
use axum::routing::{get, post};
use contrail_edge::{Keyring, ProjectId};

use crate::analytics::funnels::{FunnelPersonsRequest, FunnelsRequest};
use crate::analytics::retention::RetentionRequest;
use crate::analytics::trends::TrendsRequest;
use crate::engine::Engine;
use crate::saved::{Dashboard, Insight, Saved, SavedStore};

/// State of the query handlers.
pub struct QueryState {
    /// The SQL engine.
    pub engine: Engine,
    /// Keys.
    pub keyring: Keyring,
    /// How often the live stream looks for new events.
    pub live_poll: Duration,
    /// Saved insights and dashboards (in the engine's object store).
    pub saved: SavedStore,
    /// Projects named in the configuration, listed to the admin token
    /// before they hold any data.
    pub projects: Vec<ProjectId>,
    /// Flips to `true` when the server shuts down: open live streams end,
    /// so a graceful shutdown does not wait on a dashboard left open.
    stopping: tokio::sync::watch::Sender<bool>,
}

impl QueryState {
    /// The state of an API over `engine`, whose object store also keeps
    /// the saved documents.
    pub fn new(engine: Engine, keyring: Keyring, live_poll: Duration, projects: Vec<ProjectId>) -> Self {
        let saved = SavedStore::new(engine.store());
        let stopping = tokio::sync::watch::Sender::new(false);
        Self { engine, keyring, live_poll, saved, projects, stopping }
    }

    /// Ends every open live stream (and any opened later): call it when a
    /// graceful shutdown starts, which otherwise waits for them forever.
    pub fn stop_streams(&self) {
        self.stopping.send_replace(true);
    }

    /// Resolves once [`QueryState::stop_streams`] has been called.
    pub(crate) fn stopped(&self) -> impl Future<Output = ()> + Send + use<> {
        let mut stopping = self.stopping.subscribe();
        async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        }
    }
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
/// `POST`: the persons behind one step of a funnel.
pub const FUNNEL_PERSONS_PATH: &str = "/v1/funnels/persons";
/// `GET`: the projects a credential reads.
pub const PROJECTS_PATH: &str = "/v1/projects";
/// `GET`, `POST`: saved insights.
pub const INSIGHTS_PATH: &str = "/v1/insights";
/// `GET`, `PUT`, `DELETE`: one saved insight.
pub const INSIGHT_PATH: &str = "/v1/insights/{id}";
/// `GET`, `POST`: dashboards.
pub const DASHBOARDS_PATH: &str = "/v1/dashboards";
/// `GET`, `PUT`, `DELETE`: one dashboard.
pub const DASHBOARD_PATH: &str = "/v1/dashboards/{id}";
/// `GET`: the OpenAPI document.
pub const OPENAPI_PATH: &str = "/openapi.json";
/// `GET`: the OpenAPI document, rendered.
pub const DOCS_PATH: &str = "/docs";
/// Every path [`routes`] serves (the OpenAPI test compares them with the document).
pub const PATHS: [&str; 14] = [
    SQL_PATH,
    TRENDS_PATH,
    FUNNELS_PATH,
    FUNNEL_PERSONS_PATH,
    RETENTION_PATH,
    TIMELINE_PATH,
    LIVE_PATH,
    PROJECTS_PATH,
    INSIGHTS_PATH,
    INSIGHT_PATH,
    DASHBOARDS_PATH,
    DASHBOARD_PATH,
    OPENAPI_PATH,
    DOCS_PATH,
];

/// The query routes (no fallback: the binary merges them with others).
pub fn routes(state: Arc<QueryState>) -> Router {
    Router::new()
        .route(SQL_PATH, post(sql::sql))
        .route(TRENDS_PATH, post(analytics::analyze::<TrendsRequest>))
        .route(FUNNELS_PATH, post(analytics::analyze::<FunnelsRequest>))
        .route(FUNNEL_PERSONS_PATH, post(analytics::analyze::<FunnelPersonsRequest>))
        .route(RETENTION_PATH, post(analytics::analyze::<RetentionRequest>))
        .route(PROJECTS_PATH, get(projects::projects))
        .merge(saved_routes::<Insight>(INSIGHTS_PATH, INSIGHT_PATH))
        .merge(saved_routes::<Dashboard>(DASHBOARDS_PATH, DASHBOARD_PATH))
        .route(TIMELINE_PATH, get(timeline::timeline))
        .route(LIVE_PATH, get(live::live))
        .route(OPENAPI_PATH, get(|| async { axum::Json(openapi::document()) }))
        .route(DOCS_PATH, get(|| async { Html(openapi::DOCS_HTML) }))
        .with_state(state)
}

/// The five routes of one kind of saved document.
fn saved_routes<T: Saved>(collection: &'static str, item: &'static str) -> Router<Arc<QueryState>> {
    Router::new()
        .route(collection, get(saved::list::<T>).post(saved::create::<T>))
        .route(item, get(saved::get::<T>).put(saved::replace::<T>).delete(saved::delete::<T>))
}
