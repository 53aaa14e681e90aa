//! Which project a query request may read: the [`Project`] extractor,
//! resolving the credential once per request and recording the project on
//! the request's span.
//!
//! A query key `cq_<project>_…` opens its own project; the admin token opens
//! any project named with `?project=`. A key for one project naming another
//! is refused with 403, as is a write key (it can send events, not read them).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use contrail_edge::{KeyKind, Keyring, ProjectId};
use serde::Deserialize;

use super::QueryState;
use super::extract::Query;
use crate::error::{Error, Result};

/// The project a request reads, authenticated.
#[derive(Debug, Clone)]
pub struct Project(pub ProjectId);

/// `?project=`: the admin token's way of naming a project.
#[derive(Debug, Default, Deserialize)]
struct ProjectParam {
    project: Option<String>,
}

impl FromRequestParts<Arc<QueryState>> for Project {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<QueryState>) -> Result<Self> {
        let Query(param) = Query::<ProjectParam>::from_request_parts(parts, state).await?;
        let project = project(&state.keyring, &parts.headers, param.project.as_deref())?;
        tracing::Span::current().record("project", project.as_str());
        Ok(Self(project))
    }
}

/// Who a request's `Authorization` header says is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// The admin token: any project.
    Admin,
    /// A query key: its project only.
    Key(ProjectId),
}

impl Credential {
    /// Reads and verifies the `Authorization` header.
    pub fn from_headers(keyring: &Keyring, headers: &HeaderMap) -> Result<Self> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(Error::Unauthorized(
                "send a query key as `Authorization: Bearer cq_…` (or the admin token with ?project=<name>); `contrail keys query --project <name>` prints one".into(),
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or_else(|| Error::Unauthorized("the Authorization header must be `Bearer <query key>`".into()))?;
        if token.starts_with("ca_") {
            keyring.verify_admin(token).map_err(|e| Error::Unauthorized(format!("admin token refused: {e}")))?;
            return Ok(Self::Admin);
        }
        if token.starts_with("ck_") {
            return Err(Error::Forbidden(
                "a write key (ck_…) can send events but not read them; use the project's query key (cq_…)".into(),
            ));
        }
        keyring
            .verify(token, KeyKind::Query)
            .map(Self::Key)
            .map_err(|e| Error::Unauthorized(format!("query key refused: {e}")))
    }
}

/// The project a request reads, from its `Authorization` header and the
/// optional `?project=` parameter.
fn project(keyring: &Keyring, headers: &HeaderMap, requested: Option<&str>) -> Result<ProjectId> {
    let credential = Credential::from_headers(keyring, headers)?;
    let requested = requested
        .map(|name| {
            ProjectId::parse(name).map_err(|e| Error::BadQuery(format!("?project={name:?} is not a project name: {e}")))
        })
        .transpose()?;
    match (credential, requested) {
        (Credential::Admin, requested) => requested
            .ok_or_else(|| Error::BadQuery("the admin token reads any project: name it with ?project=<name>".into())),
        (Credential::Key(project), Some(other)) if other != project => Err(Error::Forbidden(format!(
            "this query key is for project {:?}; it cannot read project {:?}",
            project.as_str(),
            other.as_str()
        ))),
        (Credential::Key(project), _) => Ok(project),
    }
}
