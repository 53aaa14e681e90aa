//! `POST /v1/sql`: one read-only statement, answered as JSON, CSV or Arrow.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::QueryState;
use super::extract::Json;
use super::format::{Format, TRUNCATED_HEADER};
use super::project::Project;
use crate::engine::QueryResult;
use crate::error::{Error, Result};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SqlRequest {
    sql: String,
    /// Lower row limit than the server's.
    max_rows: Option<usize>,
}

#[tracing::instrument(skip_all)]
pub(super) async fn sql(
    State(state): State<Arc<QueryState>>,
    Project(project): Project,
    headers: HeaderMap,
    body: Result<Json<SqlRequest>>,
) -> Result<Response> {
    let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()))?;
    let Json(request) = body.map_err(|e| {
        Error::BadQuery(format!("the body must be JSON like {{\"sql\": \"SELECT count(*) FROM events\"}}; {e}"))
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
