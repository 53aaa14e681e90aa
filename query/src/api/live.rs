//! `GET /v1/events/live`: server-sent events of new events.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use contrail_edge::ProjectId;
use datafusion::prelude::{col, lit};
use futures::{Stream, StreamExt};
use serde::Deserialize;

use super::QueryState;
use super::cursor::{Cursor, cursor_of, event_rows, events_in_order};
use super::extract::Query;
use super::project::Project;
use crate::error::Result;

#[derive(Debug, Deserialize)]
pub(super) struct LiveParams {
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
#[tracing::instrument(skip_all)]
pub(super) async fn live(
    State(state): State<Arc<QueryState>>,
    Project(project): Project,
    Query(params): Query<LiveParams>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = std::result::Result<Event, Infallible>>>> {
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
    let stopped = live.state.stopped();
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
    // The stream ends when the server shuts down; a client reconnects with
    // Last-Event-ID and resumes where it was.
    Ok(Sse::new(stream.take_until(stopped)).keep_alive(KeepAlive::default()))
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
            .run("live", &self.project, LIVE_BATCH, |session| async move {
                let ctx = session.ctx;
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
