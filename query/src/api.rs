//! The query API: `POST /v1/sql`, the user timeline, live events, and the
//! OpenAPI document. Every handler first resolves the project from the
//! credential (`auth.rs`); the engine then sees that project's tables only.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use contrail_edge::{Keyring, ProjectId};
use datafusion::common::ScalarValue;
use datafusion::prelude::{Expr, col, lit};
use futures::Stream;
use serde::Deserialize;
use serde_json::Value;

use crate::auth;
use crate::error::{Error, Result};
use crate::openapi;
use crate::sql::output::{Format, TRUNCATED_HEADER, rows_json};
use crate::sql::{Engine, QueryResult};

/// State of the query handlers.
pub struct QueryState {
    /// The SQL engine.
    pub engine: Engine,
    /// Keys.
    pub keyring: Keyring,
    /// How often the live stream looks for new events.
    pub live_poll: Duration,
}

/// The query routes (no fallback: the caller merges them with others).
pub fn routes(state: Arc<QueryState>) -> Router {
    Router::new()
        .route("/v1/sql", post(sql))
        .route("/v1/users/{distinct_id}/events", get(timeline))
        .route("/v1/events/live", get(live))
        .route("/openapi.json", get(openapi_json))
        .route("/docs", get(docs))
        .with_state(state)
}

/// `?project=` (the admin token's way of naming a project).
#[derive(Debug, Default, Deserialize)]
struct ProjectParam {
    project: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlRequest {
    sql: String,
    /// Lower row limit than the server's.
    max_rows: Option<usize>,
}

#[tracing::instrument(skip_all, fields(project = tracing::field::Empty))]
async fn sql(
    State(state): State<Arc<QueryState>>,
    Query(param): Query<ProjectParam>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let project = auth::project(&state.keyring, &headers, param.project.as_deref())?;
    tracing::Span::current().record("project", project.as_str());
    let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()))?;
    let request: SqlRequest = serde_json::from_slice(&body).map_err(|e| {
        Error::BadQuery(format!("the body must be JSON like {{\"sql\": \"SELECT count(*) FROM events\"}}: {e}"))
    })?;
    let limit = state.engine.limits().max_rows;
    let max_rows = request.max_rows.map_or(limit, |n| n.min(limit));
    let result = state.engine.sql(&project, &request.sql, max_rows).await?;
    answer(format, &result)
}

fn answer(format: Format, result: &QueryResult) -> Result<Response> {
    let body = format.encode(result)?;
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    headers.insert(TRUNCATED_HEADER, HeaderValue::from_static(if result.truncated { "true" } else { "false" }));
    Ok(response)
}

/// A position in (time, event id) order, opaque to clients.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Cursor {
    micros: i64,
    event_id: String,
}

impl Cursor {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.micros, self.event_id))
    }

    fn decode(text: &str) -> Result<Self> {
        let bad = || Error::BadQuery(format!("cursor {text:?} is not one this API returned"));
        let raw = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let (micros, event_id) = raw.split_once(':').ok_or_else(bad)?;
        Ok(Self { micros: micros.parse().map_err(|_| bad())?, event_id: event_id.to_owned() })
    }

    /// `(column, event_id)` strictly before (`before`) or after this cursor.
    fn bound(&self, column: &str, before: bool) -> Expr {
        let at = lit(ScalarValue::TimestampMicrosecond(Some(self.micros), Some("UTC".into())));
        let id = lit(self.event_id.clone());
        if before {
            col(column).lt(at.clone()).or(col(column).eq(at).and(col("event_id").lt(id)))
        } else {
            col(column).gt(at.clone()).or(col(column).eq(at).and(col("event_id").gt(id)))
        }
    }
}

#[derive(Debug, Deserialize)]
struct TimelineParams {
    project: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// Timeline page size bounds.
const TIMELINE_DEFAULT: usize = 50;
const TIMELINE_MAX: usize = 1_000;

/// `GET /v1/users/{distinct_id}/events`: newest first, `limit` per page,
/// `next_cursor` for the following page (null on the last).
#[tracing::instrument(skip_all, fields(project = tracing::field::Empty))]
async fn timeline(
    State(state): State<Arc<QueryState>>,
    Path(distinct_id): Path<String>,
    Query(params): Query<TimelineParams>,
    headers: HeaderMap,
) -> Result<Json<Value>> {
    let project = auth::project(&state.keyring, &headers, params.project.as_deref())?;
    tracing::Span::current().record("project", project.as_str());
    let limit = params.limit.unwrap_or(TIMELINE_DEFAULT);
    if limit == 0 || limit > TIMELINE_MAX {
        return Err(Error::BadQuery(format!("limit must be between 1 and {TIMELINE_MAX}; got {limit}")));
    }
    let cursor = params.cursor.as_deref().map(Cursor::decode).transpose()?;
    let result = state
        .engine
        .run("timeline", &project, limit + 1, |ctx| async move {
            let mut filter = col("distinct_id").eq(lit(distinct_id));
            if let Some(cursor) = &cursor {
                filter = filter.and(cursor.bound("timestamp", true));
            }
            events_in_order(ctx, filter, "timestamp", false, limit + 1).await
        })
        .await?;
    let mut events = event_rows(&result)?;
    let next_cursor = if events.len() > limit {
        events.truncate(limit);
        events.last().and_then(|e| cursor_of(e, "timestamp")).map(|c| Value::String(c.encode()))
    } else {
        None
    };
    Ok(Json(serde_json::json!({ "events": events, "next_cursor": next_cursor })))
}

/// The first `limit` events matching `filter` in (`time`, `event_id`) order,
/// ascending or not: the (time, id) pairs are the cursors' positions.
async fn events_in_order(
    ctx: datafusion::prelude::SessionContext,
    filter: Expr,
    time: &str,
    ascending: bool,
    limit: usize,
) -> Result<datafusion::prelude::DataFrame> {
    let order = vec![col(time).sort(ascending, false), col("event_id").sort(ascending, false)];
    Ok(ctx.table("events").await?.filter(filter)?.sort(order)?.limit(0, Some(limit))?)
}

/// Rows as event objects: JSON-text columns parsed, `project_id` dropped.
fn event_rows(result: &QueryResult) -> Result<Vec<Value>> {
    let mut rows = rows_json(&result.schema, &result.batches)?;
    for row in &mut rows {
        if let Value::Object(object) = row {
            object.remove("project_id");
            for key in ["properties", "traits", "context"] {
                if let Some(Value::String(text)) = object.get(key)
                    && let Ok(parsed) = serde_json::from_str::<Value>(text)
                {
                    object.insert(key.to_owned(), parsed);
                }
            }
        }
    }
    Ok(rows)
}

/// The cursor at an event row (its `column` time and id).
fn cursor_of(row: &Value, column: &str) -> Option<Cursor> {
    let text = row.get(column)?.as_str()?;
    let micros = chrono::DateTime::parse_from_rfc3339(text).ok()?.timestamp_micros();
    Some(Cursor { micros, event_id: row.get("event_id")?.as_str()?.to_owned() })
}

#[derive(Debug, Deserialize)]
struct LiveParams {
    project: Option<String>,
    /// Only this event name.
    event: Option<String>,
}

/// How far back each poll of the live stream looks: an event becomes
/// readable when its batch is flushed, which can be after events received
/// later were; ids already sent within the window are not sent again.
const LIVE_LOOKBACK_MICROS: i64 = 120_000_000;
/// Rows per poll at most (a burst drains over several polls).
const LIVE_BATCH: usize = 1_000;

/// `GET /v1/events/live`: server-sent events, one per new event (by
/// `received_at`); the SSE `id` is a cursor, so a reconnecting client's
/// `Last-Event-ID` resumes after the last event it saw.
#[tracing::instrument(skip_all, fields(project = tracing::field::Empty))]
async fn live(
    State(state): State<Arc<QueryState>>,
    Query(params): Query<LiveParams>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = std::result::Result<Event, Infallible>>>> {
    let project = auth::project(&state.keyring, &headers, params.project.as_deref())?;
    tracing::Span::current().record("project", project.as_str());
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(Cursor::decode)
        .transpose()?;
    let start =
        resume.unwrap_or_else(|| Cursor { micros: chrono::Utc::now().timestamp_micros(), event_id: String::new() });
    let live = Live {
        state,
        project,
        event: params.event,
        floor: start.clone(),
        after: start,
        sent: HashMap::new(),
        pending: VecDeque::new(),
        first: true,
    };
    let stream = futures::stream::unfold(live, |mut live| async move {
        loop {
            if let Some(event) = live.pending.pop_front() {
                return Some((Ok(event), live));
            }
            if !live.first {
                tokio::time::sleep(live.state.live_poll).await;
            }
            live.first = false;
            if let Err(e) = live.poll().await {
                tracing::warn!(error = %e, "live poll failed; retrying");
                let event = Event::default().event("error").data(e.to_string());
                return Some((Ok(event), live));
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// One live stream's position.
struct Live {
    state: Arc<QueryState>,
    project: ProjectId,
    event: Option<String>,
    /// Nothing at or before this position is sent: the stream's start, or
    /// the `Last-Event-ID` it resumes after.
    floor: Cursor,
    /// Newest position sent (or the floor).
    after: Cursor,
    /// Ids sent within the lookback window, with their `received_at`.
    sent: HashMap<String, i64>,
    pending: VecDeque<Event>,
    first: bool,
}

impl Live {
    async fn poll(&mut self) -> Result<()> {
        let from = Cursor { micros: self.after.micros - LIVE_LOOKBACK_MICROS, event_id: String::new() };
        let event = self.event.clone();
        let result = self
            .state
            .engine
            .run("live", &self.project, LIVE_BATCH, |ctx| async move {
                let mut filter = from.bound("received_at", false);
                if let Some(name) = event {
                    filter = filter.and(col("event").eq(lit(name)));
                }
                events_in_order(ctx, filter, "received_at", true, LIVE_BATCH).await
            })
            .await?;
        for row in event_rows(&result)? {
            let Some(cursor) = cursor_of(&row, "received_at") else { continue };
            if cursor <= self.floor || self.sent.insert(cursor.event_id.clone(), cursor.micros).is_some() {
                continue;
            }
            let event = Event::default().id(cursor.encode()).event("event").data(row.to_string());
            self.pending.push_back(event);
            if cursor > self.after {
                self.after = cursor;
            }
        }
        // Forget ids older than the window: the next poll cannot return them.
        let horizon = self.after.micros - LIVE_LOOKBACK_MICROS;
        self.sent.retain(|_, micros| *micros >= horizon);
        Ok(())
    }
}

async fn openapi_json() -> Json<Value> {
    Json(openapi::document())
}

async fn docs() -> Html<&'static str> {
    Html(openapi::DOCS_HTML)
}
