//! `/v1/insights` and `/v1/dashboards`: list, create, read, replace and
//! delete saved documents, one generic set of handlers for both kinds.
//!
//! A replace or delete must name the version it was made from (`"version"`
//! in the body, `?version=`, or `If-Match: "<version>"`, the `ETag` of a
//! read); when the document has moved on it answers 409 and changes nothing.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::QueryState;
use super::extract::{Json, Path, Query};
use super::project::Project;
use crate::error::{Error, Result, named};
use crate::saved::{Record, Saved, SavedId};

/// Fields of a body that the server owns: accepted (so a client may send
/// back what it read) and ignored, except `version` on a replace.
const SERVER_FIELDS: [&str; 4] = ["id", "version", "created_at", "updated_at"];

#[derive(Debug, Default, Deserialize)]
pub(super) struct VersionParam {
    version: Option<u64>,
}

#[tracing::instrument(skip_all, fields(kind = T::COLLECTION))]
pub(super) async fn list<T: Saved>(
    State(state): State<Arc<QueryState>>,
    Project(project): Project,
) -> Result<Response> {
    let records = state.saved.list::<T>(&project).await?;
    let items: Vec<Value> = records.iter().map(Record::to_json).collect();
    Ok(axum::Json(json!({ T::COLLECTION: items })).into_response())
}

#[tracing::instrument(skip_all, fields(kind = T::COLLECTION))]
pub(super) async fn create<T: Saved>(
    State(state): State<Arc<QueryState>>,
    Project(project): Project,
    Json(body): Json<Map<String, Value>>,
) -> Result<Response> {
    let (document, _) = document::<T>(body)?;
    let record = state.saved.create(&project, document).await?;
    tracing::info!(id = %record.id, "created");
    let mut response = (StatusCode::CREATED, with_etag(&record)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/{}/{}", T::COLLECTION, record.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

#[tracing::instrument(skip_all, fields(kind = T::COLLECTION))]
pub(super) async fn get<T: Saved>(
    State(state): State<Arc<QueryState>>,
    Project(project): Project,
    Path(id): Path<String>,
) -> Result<Response> {
    let record = state.saved.get::<T>(&project, &id_of::<T>(&id)?).await?;
    Ok(with_etag(&record).into_response())
}

#[tracing::instrument(skip_all, fields(kind = T::COLLECTION))]
pub(super) async fn replace<T: Saved>(
    State(state): State<Arc<QueryState>>,
    Project(project): Project,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Map<String, Value>>,
) -> Result<Response> {
    let id = id_of::<T>(&id)?;
    let (document, in_body) = document::<T>(body)?;
    let expected = expected_version::<T>(in_body, &headers, "\"version\" in the body, as read")?;
    let record = state.saved.update(&project, &id, expected, document).await?;
    tracing::info!(%id, version = record.version, "replaced");
    Ok(with_etag(&record).into_response())
}

#[tracing::instrument(skip_all, fields(kind = T::COLLECTION))]
pub(super) async fn delete<T: Saved>(
    State(state): State<Arc<QueryState>>,
    Project(project): Project,
    Path(id): Path<String>,
    Query(param): Query<VersionParam>,
    headers: HeaderMap,
) -> Result<Response> {
    let id = id_of::<T>(&id)?;
    let expected = expected_version::<T>(param.version, &headers, "?version=<the version you read>")?;
    state.saved.delete::<T>(&project, &id, expected).await?;
    tracing::info!(%id, "deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The document in a body, without the server's fields, validated; and the
/// `version` the body names.
fn document<T: Saved>(mut body: Map<String, Value>) -> Result<(T, Option<u64>)> {
    let version = match body.remove("version") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| Error::BadQuery(format!("version: {v} is not a version number")))?),
    };
    for field in SERVER_FIELDS {
        body.remove(field);
    }
    let document: T = named(Value::Object(body), "")?;
    document.validate()?;
    Ok((document, version))
}

/// The version a change was made from: `given` (body or query string) or
/// `If-Match`, which must agree when both are sent. Required: a change that
/// does not say what it changed could overwrite someone else's.
fn expected_version<T: Saved>(given: Option<u64>, headers: &HeaderMap, how: &str) -> Result<u64> {
    match (given, if_match(headers)?) {
        (Some(a), Some(b)) if a != b => Err(Error::BadQuery(format!("version: {a} disagrees with If-Match: \"{b}\""))),
        (Some(v), _) | (None, Some(v)) => Ok(v),
        (None, None) => Err(Error::BadQuery(format!(
            "version: say which version of the {} you changed ({how}, or If-Match), so a concurrent change is never overwritten",
            T::NOUN
        ))),
    }
}

/// A path id; one that cannot be an id names no document (404).
fn id_of<T: Saved>(text: &str) -> Result<SavedId> {
    SavedId::parse(text).ok_or_else(|| Error::NotFound(format!("no {} {text:?}: ids are 20 hex digits", T::NOUN)))
}

/// `If-Match: "<version>"`.
fn if_match(headers: &HeaderMap) -> Result<Option<u64>> {
    let Some(value) = headers.get(header::IF_MATCH) else { return Ok(None) };
    let text = value.to_str().unwrap_or_default().trim();
    let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    text.parse()
        .map(Some)
        .map_err(|_| Error::BadQuery(format!("If-Match: expected a version as sent in ETag (\"3\"), not {text:?}")))
}

fn with_etag<T: Saved>(record: &Record<T>) -> Response {
    let mut response = axum::Json(record.to_json()).into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", record.version)) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}
