//! Versioned documents in the object store. Each version is its own object,
//! written create-only; the highest version of an id is the document, and a
//! deletion writes a last version marked deleted (so a deletion and an edit
//! made from the same version race like two edits: one wins, one gets 409).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use contrail_edge::ProjectId;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde_json::{Map, Value};

use super::document::{Saved, SavedId};
use crate::error::{Error, Result};

/// Reads of one listing that run at once.
const READ_CONCURRENCY: usize = 16;

/// One version of a document, with what the store knows about it.
#[derive(Debug, Clone)]
pub struct Record<T> {
    /// Its id.
    pub id: SavedId,
    /// 1 when created, one more on every change.
    pub version: u64,
    /// When version 1 was written.
    pub created_at: DateTime<Utc>,
    /// When this version was written.
    pub updated_at: DateTime<Utc>,
    /// The document.
    pub body: T,
}

impl<T: Saved> Record<T> {
    /// The API's representation: the document's fields plus `id`,
    /// `version`, `created_at` and `updated_at` (what is also stored).
    pub fn to_json(&self) -> Value {
        let mut object = match serde_json::to_value(&self.body) {
            Ok(Value::Object(object)) => object,
            _ => Map::new(),
        };
        object.insert("id".into(), Value::String(self.id.to_string()));
        object.insert("version".into(), Value::from(self.version));
        object.insert("created_at".into(), Value::String(timestamp(self.created_at)));
        object.insert("updated_at".into(), Value::String(timestamp(self.updated_at)));
        Value::Object(object)
    }
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// What one stored version holds.
enum Version<T> {
    Live(Record<T>),
    Deleted,
}

/// The saved documents of every project, in one object store.
#[derive(Debug, Clone)]
pub struct SavedStore {
    store: Arc<dyn ObjectStore>,
}

impl SavedStore {
    /// Documents kept in `store` under `meta/`.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    /// Every live document of a kind in `project`, most recently updated
    /// first. A version that cannot be read is logged and left out, so one
    /// damaged object never hides the others.
    pub async fn list<T: Saved>(&self, project: &ProjectId) -> Result<Vec<Record<T>>> {
        let latest = self.latest_versions(&Path::from(prefix::<T>(project))).await?;
        let mut records: Vec<Record<T>> = futures::stream::iter(latest)
            .map(|(id, version)| async move { (self.read::<T>(project, &id, version).await, id) })
            .buffer_unordered(READ_CONCURRENCY)
            .filter_map(|(read, id)| async move {
                match read {
                    Ok(Version::Live(record)) => Some(record),
                    Ok(Version::Deleted) => None,
                    Err(e) => {
                        tracing::warn!(error = %e, %id, kind = T::NOUN, "skipping a saved document that cannot be read");
                        None
                    }
                }
            })
            .collect()
            .await;
        records.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then_with(|| b.id.cmp(&a.id)));
        Ok(records)
    }

    /// The document `id` (404 when there is none or it was deleted).
    pub async fn get<T: Saved>(&self, project: &ProjectId, id: &SavedId) -> Result<Record<T>> {
        let version = self.latest_version::<T>(project, id).await?;
        match self.read::<T>(project, id, version).await? {
            Version::Live(record) => Ok(record),
            Version::Deleted => Err(not_found::<T>(id)),
        }
    }

    /// Saves a new document as version 1.
    pub async fn create<T: Saved>(&self, project: &ProjectId, body: T) -> Result<Record<T>> {
        let now = Utc::now();
        let record = Record { id: SavedId::generate(), version: 1, created_at: now, updated_at: now, body };
        self.write::<T>(project, &record.id, 1, record.to_json()).await?;
        Ok(record)
    }

    /// Replaces document `id`, which the caller read at version `expected`;
    /// 409 when it has changed since (or is changing concurrently).
    pub async fn update<T: Saved>(
        &self,
        project: &ProjectId,
        id: &SavedId,
        expected: u64,
        body: T,
    ) -> Result<Record<T>> {
        let current = self.current::<T>(project, id, Some(expected)).await?;
        let record = Record {
            id: id.clone(),
            version: current.version + 1,
            created_at: current.created_at,
            updated_at: Utc::now(),
            body,
        };
        self.write::<T>(project, id, record.version, record.to_json()).await?;
        Ok(record)
    }

    /// Deletes document `id` (at version `expected`, when given).
    pub async fn delete<T: Saved>(&self, project: &ProjectId, id: &SavedId, expected: Option<u64>) -> Result<()> {
        let current = self.current::<T>(project, id, expected).await?;
        let tombstone = serde_json::json!({
            "id": id.as_str(),
            "version": current.version + 1,
            "deleted": true,
            "created_at": timestamp(current.created_at),
            "updated_at": timestamp(Utc::now()),
        });
        self.write::<T>(project, id, current.version + 1, tombstone).await
    }

    /// The live document `id`, refused with 409 when it is not at `expected`.
    async fn current<T: Saved>(&self, project: &ProjectId, id: &SavedId, expected: Option<u64>) -> Result<Record<T>> {
        let current = self.get::<T>(project, id).await?;
        match expected {
            Some(expected) if expected != current.version => Err(Error::Conflict(format!(
                "{} {id} is at version {}, not {expected}: it changed since you read it; read it again and reapply your change",
                T::NOUN,
                current.version
            ))),
            _ => Ok(current),
        }
    }

    /// Writes version `version` of `id`, create-only: when that version
    /// exists already, someone else changed the document first (409).
    async fn write<T: Saved>(&self, project: &ProjectId, id: &SavedId, version: u64, document: Value) -> Result<()> {
        let path = object_path::<T>(project, id, version);
        let bytes = serde_json::to_vec(&document).map_err(|e| Error::Engine(format!("encoding a {}: {e}", T::NOUN)))?;
        let options = PutOptions { mode: PutMode::Create, ..Default::default() };
        match self.store.put_opts(&path, PutPayload::from(bytes.clone()), options).await {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                // object_store retries a put that timed out: the object in the
                // way may be this very write, landed on an earlier attempt.
                let existing = self.store.get(&path).await?.bytes().await?;
                if existing == bytes {
                    return Ok(());
                }
                Err(Error::Conflict(format!(
                    "{} {id} was changed by someone else at the same moment; read it again and reapply your change",
                    T::NOUN
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The highest version of document `id` (404 when it has none).
    async fn latest_version<T: Saved>(&self, project: &ProjectId, id: &SavedId) -> Result<u64> {
        let prefix = Path::from(format!("{}/{id}", prefix::<T>(project)));
        let versions = self.latest_versions(&prefix).await?;
        versions.get(id).copied().ok_or_else(|| not_found::<T>(id))
    }

    /// The highest version of every document under `prefix`.
    async fn latest_versions(&self, prefix: &Path) -> Result<BTreeMap<SavedId, u64>> {
        let objects: Vec<_> = self.store.list(Some(prefix)).try_collect().await?;
        let mut latest = BTreeMap::new();
        for object in objects {
            let Some((id, version)) = parse_object_path(&object.location) else {
                tracing::warn!(path = %object.location, "ignoring an object that is not a saved document version");
                continue;
            };
            let entry = latest.entry(id).or_insert(version);
            *entry = (*entry).max(version);
        }
        Ok(latest)
    }

    /// Version `version` of `id`.
    async fn read<T: Saved>(&self, project: &ProjectId, id: &SavedId, version: u64) -> Result<Version<T>> {
        let path = object_path::<T>(project, id, version);
        let bytes = self.store.get(&path).await?.bytes().await?;
        let unreadable = |why: String| Error::Engine(format!("{path} cannot be read as a {}: {why}", T::NOUN));
        let mut object: Map<String, Value> = serde_json::from_slice(&bytes).map_err(|e| unreadable(e.to_string()))?;
        if object.get("deleted") == Some(&Value::Bool(true)) {
            return Ok(Version::Deleted);
        }
        let mut take_time = |field: &str| -> Result<DateTime<Utc>> {
            object
                .remove(field)
                .and_then(|v| v.as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok()))
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(|| unreadable(format!("no {field}")))
        };
        let created_at = take_time("created_at")?;
        let updated_at = take_time("updated_at")?;
        object.remove("id");
        object.remove("version");
        let body = serde_json::from_value(Value::Object(object)).map_err(|e| unreadable(e.to_string()))?;
        Ok(Version::Live(Record { id: id.clone(), version, created_at, updated_at, body }))
    }
}

fn not_found<T: Saved>(id: &SavedId) -> Error {
    Error::NotFound(format!("no {} {id} in this project (it may have been deleted)", T::NOUN))
}

/// `meta/project=<p>/<collection>`: one project's documents of one kind.
fn prefix<T: Saved>(project: &ProjectId) -> String {
    format!("meta/project={}/{}", project.as_str(), T::COLLECTION)
}

/// `meta/project=<p>/<collection>/<id>/v<version, 8 digits>.json`: zero-padded
/// so that versions also sort by name.
fn object_path<T: Saved>(project: &ProjectId, id: &SavedId, version: u64) -> Path {
    Path::from(format!("{}/{id}/v{version:08}.json", prefix::<T>(project)))
}

/// The id and version in a document version's path.
fn parse_object_path(path: &Path) -> Option<(SavedId, u64)> {
    let mut parts: Vec<_> = path.parts().collect();
    let file = parts.pop()?;
    let id = SavedId::parse(parts.pop()?.as_ref())?;
    let version = file.as_ref().strip_prefix('v')?.strip_suffix(".json")?.parse().ok()?;
    Some((id, version))
}
