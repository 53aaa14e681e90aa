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
    /// Not a document version (cut short, edited by hand): why.
    Damaged(String),
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
    /// first. A damaged version is logged and left out, so one bad object
    /// never hides the others; a store that does not answer fails the list
    /// (503) rather than answer one that silently lacks documents.
    pub async fn list<T: Saved>(&self, project: &ProjectId) -> Result<Vec<Record<T>>> {
        let latest = self.latest_versions(&Path::from(prefix::<T>(project))).await?;
        let reads: Vec<(Result<Version<T>>, SavedId)> = futures::stream::iter(latest)
            .map(|(id, version)| async move { (self.read::<T>(project, &id, version).await, id) })
            .buffer_unordered(READ_CONCURRENCY)
            .collect()
            .await;
        let mut records = Vec::with_capacity(reads.len());
        for (read, id) in reads {
            match read? {
                Version::Live(record) => records.push(record),
                Version::Deleted => {}
                Version::Damaged(why) => {
                    tracing::warn!(%id, kind = T::NOUN, why, "leaving out a damaged saved document");
                }
            }
        }
        records.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then_with(|| b.id.cmp(&a.id)));
        Ok(records)
    }

    /// The document `id` (404 when there is none or it was deleted).
    pub async fn get<T: Saved>(&self, project: &ProjectId, id: &SavedId) -> Result<Record<T>> {
        let version = self.latest_version::<T>(project, id).await?;
        match self.read::<T>(project, id, version).await? {
            Version::Live(record) => Ok(record),
            Version::Deleted => Err(not_found::<T>(id)),
            Version::Damaged(why) => {
                tracing::error!(%id, kind = T::NOUN, version, why, "a saved document is damaged");
                Err(Error::Damaged(format!(
                    "{} {id} is damaged in storage and cannot be read; replace it (PUT with \"version\": {version}) or delete it (?version={version})",
                    T::NOUN
                )))
            }
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
        let (version, created_at) = self.current::<T>(project, id, expected).await?;
        let now = Utc::now();
        let record = Record {
            id: id.clone(),
            version: version + 1,
            created_at: created_at.unwrap_or(now),
            updated_at: now,
            body,
        };
        self.write::<T>(project, id, record.version, record.to_json()).await?;
        Ok(record)
    }

    /// Deletes document `id`, which the caller read at version `expected`.
    pub async fn delete<T: Saved>(&self, project: &ProjectId, id: &SavedId, expected: u64) -> Result<()> {
        let (version, created_at) = self.current::<T>(project, id, expected).await?;
        let now = Utc::now();
        let tombstone = serde_json::json!({
            "id": id.as_str(),
            "version": version + 1,
            "deleted": true,
            "created_at": timestamp(created_at.unwrap_or(now)),
            "updated_at": timestamp(now),
        });
        self.write::<T>(project, id, version + 1, tombstone).await
    }

    /// The latest version of `id` and its creation time, refused with 409
    /// when it is not `expected` and 404 when deleted. A damaged latest
    /// version (creation time unknown) may be replaced or deleted: else one
    /// bad object would block its document for good.
    async fn current<T: Saved>(
        &self,
        project: &ProjectId,
        id: &SavedId,
        expected: u64,
    ) -> Result<(u64, Option<DateTime<Utc>>)> {
        let version = self.latest_version::<T>(project, id).await?;
        let created_at = match self.read::<T>(project, id, version).await? {
            Version::Live(record) => Some(record.created_at),
            Version::Deleted => return Err(not_found::<T>(id)),
            Version::Damaged(_) => None,
        };
        if expected != version {
            return Err(Error::Conflict(format!(
                "{} {id} is at version {version}, not {expected}: it changed since you read it; read it again and reapply your change",
                T::NOUN
            )));
        }
        Ok((version, created_at))
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
                // object_store retries a put answered 5xx or 429 with the same
                // bytes: the object in the way may be this very write, which
                // landed although its first answer was an error.
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

    /// Version `version` of `id` (an error only when the store fails).
    async fn read<T: Saved>(&self, project: &ProjectId, id: &SavedId, version: u64) -> Result<Version<T>> {
        let path = object_path::<T>(project, id, version);
        let bytes = self.store.get(&path).await?.bytes().await?;
        Ok(decode(&bytes).map_or_else(
            |why| Version::Damaged(format!("{path}: {why}")),
            |(object, created_at, updated_at)| match object {
                None => Version::Deleted,
                Some(body) => Version::Live(Record { id: id.clone(), version, created_at, updated_at, body }),
            },
        ))
    }
}

/// A stored version: its document (none for a deletion) and times.
type Decoded<T> = (Option<T>, DateTime<Utc>, DateTime<Utc>);

fn decode<T: Saved>(bytes: &[u8]) -> std::result::Result<Decoded<T>, String> {
    let mut object: Map<String, Value> = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let mut take_time = |field: &str| {
        object
            .remove(field)
            .and_then(|v| v.as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok()))
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| format!("no {field}"))
    };
    let created_at = take_time("created_at")?;
    let updated_at = take_time("updated_at")?;
    if object.get("deleted") == Some(&Value::Bool(true)) {
        return Ok((None, created_at, updated_at));
    }
    for field in ["id", "version"] {
        object.remove(field);
    }
    let body = serde_json::from_value(Value::Object(object)).map_err(|e| e.to_string())?;
    Ok((Some(body), created_at, updated_at))
}

fn not_found<T: Saved>(id: &SavedId) -> Error {
    Error::NotFound(format!("no {} {id} in this project (it may have been deleted)", T::NOUN))
}

/// `meta/project=<p>/<collection>`: one project's documents of one kind.
fn prefix<T: Saved>(project: &ProjectId) -> String {
    format!("meta/project={}/{}", project.as_str(), T::COLLECTION)
}

/// `meta/project=<p>/<collection>/<id>/v<version, 8 digits>.json`: padded so
/// that a listing reads in version order (for people; the code parses).
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
