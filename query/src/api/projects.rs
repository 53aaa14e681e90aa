//! `GET /v1/projects`: the projects a credential reads, each with its write
//! key. The dashboard checks a key with it at sign-in, lists projects for
//! the admin token, and fills the write key into "send your first event":
//! a write key only sends events and ships inside web pages anyway, and a
//! query key already reads everything the project holds, so its holder
//! learns nothing they could not. A revoked write key is `null`.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use contrail_edge::{KeyKind, ProjectId};
use object_store::path::Path;
use serde_json::{Value, json};

use super::QueryState;
use super::project::Credential;
use crate::error::Result;

/// Prefixes under which a project's name appears as `project=<name>` (raw
/// batches, quarantine, saved documents) or as `<name>` (tables).
const NAMED_PREFIXES: [&str; 3] = ["raw", "rejected", "meta"];
const TABLES: &str = "tables";

#[tracing::instrument(skip_all)]
pub(super) async fn projects(State(state): State<Arc<QueryState>>, headers: HeaderMap) -> Result<axum::Json<Value>> {
    let projects = match Credential::from_headers(&state.keyring, &headers)? {
        Credential::Key(project) => BTreeSet::from([project]),
        Credential::Admin => stored_projects(&state).await?,
    };
    let projects: Vec<Value> = projects
        .iter()
        .map(|p| {
            // A revoked key is minted all the same (keys are HMACs): never hand it out.
            let key = state.keyring.mint(KeyKind::Write, p);
            let key = state.keyring.verify(&key, KeyKind::Write).is_ok().then_some(key);
            json!({ "name": p.as_str(), "write_key": key })
        })
        .collect();
    Ok(axum::Json(json!({ "projects": projects })))
}

/// The configured projects and every project with data or saved documents.
async fn stored_projects(state: &QueryState) -> Result<BTreeSet<ProjectId>> {
    let store = state.engine.store();
    let mut projects: BTreeSet<ProjectId> = state.projects.iter().cloned().collect();
    for prefix in NAMED_PREFIXES.into_iter().chain([TABLES]) {
        let listing = store.list_with_delimiter(Some(&Path::from(prefix))).await?;
        for folder in listing.common_prefixes {
            let Some(name) = folder.filename() else { continue };
            let name = if prefix == TABLES { Some(name) } else { name.strip_prefix("project=") };
            if let Some(project) = name.and_then(|n| ProjectId::parse(n).ok()) {
                projects.insert(project);
            }
        }
    }
    Ok(projects)
}
