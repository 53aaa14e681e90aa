//! `GET /v1/users/{distinct_id}/events`: one person's events, newest first,
//! under every distinct id linked to theirs (DESIGN §6.1).

use std::sync::Arc;

use axum::extract::State;
use datafusion::prelude::{col, lit};
use serde::Deserialize;
use serde_json::Value;

use super::QueryState;
use super::cursor::{Cursor, cursor_of, event_rows, events_in_order};
use super::extract::{Path, Query};
use super::project::Project;
use crate::error::{Error, Result};

#[derive(Debug, Deserialize)]
pub(super) struct TimelineParams {
    limit: Option<usize>,
    cursor: Option<String>,
}

/// Timeline page size bounds.
const TIMELINE_DEFAULT: usize = 50;
const TIMELINE_MAX: usize = 1_000;

/// `GET /v1/users/{distinct_id}/events`: newest first, `limit` per page,
/// `next_cursor` for the following page (null on the last).
#[tracing::instrument(skip_all)]
pub(super) async fn timeline(
    State(state): State<Arc<QueryState>>,
    Project(project): Project,
    Path(distinct_id): Path<String>,
    Query(params): Query<TimelineParams>,
) -> Result<axum::Json<Value>> {
    let limit = params.limit.unwrap_or(TIMELINE_DEFAULT);
    if limit == 0 || limit > TIMELINE_MAX {
        return Err(Error::BadQuery(format!("limit must be between 1 and {TIMELINE_MAX}; got {limit}")));
    }
    let cursor = params.cursor.as_deref().map(Cursor::decode).transpose()?;
    let result = state
        .engine
        .run("timeline", &project, limit + 1, |session| async move {
            // The person's events under every id they used.
            let ids = session.persons.ids(&distinct_id).into_iter().map(lit).collect();
            let mut filter = col("distinct_id").in_list(ids, false);
            if let Some(cursor) = &cursor {
                filter = filter.and(cursor.bound("timestamp", true));
            }
            events_in_order(session.ctx, filter, "timestamp", false, limit + 1).await
        })
        .await?;
    let mut events = event_rows(&result)?;
    let next_cursor = if events.len() > limit {
        events.truncate(limit);
        events.last().and_then(|e| cursor_of(e, "timestamp")).map(|c| Value::String(c.encode()))
    } else {
        None
    };
    Ok(axum::Json(serde_json::json!({ "events": events, "next_cursor": next_cursor })))
}
