//! `POST /v1/trends`, `/v1/funnels`, `/v1/retention`: extract, validate
//! (400 before any I/O), run under the engine's limits, render. One handler,
//! generic over the request type.

use std::sync::Arc;

use axum::extract::State;
use serde_json::Value;

use super::QueryState;
use super::extract::Json;
use super::project::Project;
use crate::analytics::{Analysis, Request};
use crate::error::Result;

#[tracing::instrument(skip_all, fields(kind = <R::Analysis as Analysis>::KIND))]
pub(super) async fn analyze<R: Request>(
    State(state): State<Arc<QueryState>>,
    Project(project): Project,
    Json(request): Json<R>,
) -> Result<axum::Json<Value>> {
    let analysis = request.validate(chrono::Utc::now())?;
    let kind = <R::Analysis as Analysis>::KIND;
    let answer = state.engine.analyze(kind, &project, |session| analysis.run(session)).await?;
    Ok(axum::Json(answer.into_json()))
}
