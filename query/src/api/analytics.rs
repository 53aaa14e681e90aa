//! `POST /v1/trends`, `/v1/funnels`, `/v1/retention`: extract, validate
//! (400 before any I/O), run under the engine's limits, render.

use std::sync::Arc;

use axum::extract::State;
use serde_json::Value;

use super::QueryState;
use super::extract::Json;
use super::project::Project;
use crate::analytics::funnels::FunnelsRequest;
use crate::analytics::retention::RetentionRequest;
use crate::analytics::trends::TrendsRequest;
use crate::error::Result;

#[tracing::instrument(skip_all)]
pub(super) async fn trends(
    State(state): State<Arc<QueryState>>,
    Project(project): Project,
    Json(request): Json<TrendsRequest>,
) -> Result<axum::Json<Value>> {
    let trends = request.validate(chrono::Utc::now())?;
    let answer = state.engine.analyze("trends", &project, |session| trends.run(session)).await?;
    Ok(axum::Json(answer.into_json()))
}

#[tracing::instrument(skip_all)]
pub(super) async fn funnels(
    State(state): State<Arc<QueryState>>,
    Project(project): Project,
    Json(request): Json<FunnelsRequest>,
) -> Result<axum::Json<Value>> {
    let funnels = request.validate(chrono::Utc::now())?;
    let answer = state.engine.analyze("funnels", &project, |session| funnels.run(session)).await?;
    Ok(axum::Json(answer.into_json()))
}

#[tracing::instrument(skip_all)]
pub(super) async fn retention(
    State(state): State<Arc<QueryState>>,
    Project(project): Project,
    Json(request): Json<RetentionRequest>,
) -> Result<axum::Json<Value>> {
    let retention = request.validate(chrono::Utc::now())?;
    let answer = state.engine.analyze("retention", &project, |session| retention.run(session)).await?;
    Ok(axum::Json(answer.into_json()))
}
