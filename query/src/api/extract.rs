//! axum's `Json`, `Query` and `Path` extractors, with rejections in the API's
//! error shape (`{"error":{"code":"invalid_query","message"}}`, 400) instead
//! of axum's plain-text ones.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::Error;

/// axum's default body limit, which the query routes keep: a query or an
/// analytics request is a few kilobytes.
pub const BODY_LIMIT: usize = 2 << 20;

/// A JSON body. Any content type is accepted (`curl -d` sends a form type),
/// as the ingest API accepts any content type whose body is JSON.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Error> {
        let bytes = Bytes::from_request(request, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Error::TooLarge(format!(
                    "the request body is over the {} MiB limit; send a shorter request",
                    BODY_LIMIT >> 20
                ))
            } else {
                Error::BadQuery(format!("could not read the request body: {}", e.body_text()))
            }
        })?;
        crate::error::named(&mut serde_json::Deserializer::from_slice(&bytes), "").map(Json)
    }
}

/// Query-string parameters.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Error> {
        axum::extract::Query::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|e| Error::BadQuery(format!("the query string is not valid: {}", e.body_text())))
    }
}

/// Path parameters.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        axum::extract::Path::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(|e| Error::BadQuery(format!("the path is not valid: {}", e.body_text())))
    }
}
