//! The saved documents: an [`Insight`] (a named trends, funnels or retention
//! request) and a [`Dashboard`] (a named list of insights), validated before
//! anything is written.

use std::fmt;

use chrono::Utc;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::analytics::Request;
use crate::analytics::funnels::FunnelsRequest;
use crate::analytics::retention::RetentionRequest;
use crate::analytics::trends::TrendsRequest;
use crate::error::{Error, Result, named};

/// Longest name, in characters.
const MAX_NAME: usize = 200;
/// Longest description, in characters.
const MAX_DESCRIPTION: usize = 2_000;
/// Most insights on one dashboard: a dashboard runs every one when opened.
pub const MAX_DASHBOARD_INSIGHTS: usize = 100;

/// A kind of saved document.
pub trait Saved: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The path segment under `meta/project=<p>/` and under `/v1/`, and the
    /// field that holds a list of them (`insights`, `dashboards`).
    const COLLECTION: &'static str;
    /// One of them, for messages (`insight`, `dashboard`).
    const NOUN: &'static str;
    /// Refuses a document that could not be used (400, naming the field).
    fn validate(&self) -> Result<()>;
}

/// What an insight analyses: the endpoint its query is a body of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InsightKind {
    /// `POST /v1/trends`.
    Trends,
    /// `POST /v1/funnels`.
    Funnels,
    /// `POST /v1/retention`.
    Retention,
}

/// A saved trends, funnels or retention query.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Insight {
    /// Shown in lists and on dashboards.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Which endpoint `query` is a body of.
    pub kind: InsightKind,
    /// The request body, as the endpoint takes it.
    pub query: Value,
}

impl Saved for Insight {
    const COLLECTION: &'static str = "insights";
    const NOUN: &'static str = "insight";

    /// The query must be one its endpoint would run now: checked with the
    /// endpoint's own validation, so nothing the endpoint would refuse at
    /// once is saved. (A range relative to now can still outgrow a limit
    /// later, and is then refused when run, naming the field.)
    fn validate(&self) -> Result<()> {
        check_text("name", &self.name, MAX_NAME, true)?;
        check_text("description", &self.description, MAX_DESCRIPTION, false)?;
        match self.kind {
            InsightKind::Trends => check_query::<TrendsRequest>(&self.query),
            InsightKind::Funnels => check_query::<FunnelsRequest>(&self.query),
            InsightKind::Retention => check_query::<RetentionRequest>(&self.query),
        }
    }
}

fn check_query<R: Request>(query: &Value) -> Result<()> {
    let request: R = named(query, "query")?;
    request.validate(Utc::now()).map(drop).map_err(|e| match e {
        Error::BadQuery(message) => Error::BadQuery(format!("query.{message}")),
        other => other,
    })
}

/// A named list of insights, shown together.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dashboard {
    /// Shown in lists and as the page's title.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// The pinned insights, in display order. An insight deleted since
    /// stays listed and is shown as deleted: checking existence here would
    /// race with deletions anyway.
    #[serde(default)]
    pub insights: Vec<SavedId>,
}

impl Saved for Dashboard {
    const COLLECTION: &'static str = "dashboards";
    const NOUN: &'static str = "dashboard";

    fn validate(&self) -> Result<()> {
        check_text("name", &self.name, MAX_NAME, true)?;
        check_text("description", &self.description, MAX_DESCRIPTION, false)?;
        if self.insights.len() > MAX_DASHBOARD_INSIGHTS {
            return Err(Error::BadQuery(format!(
                "insights: a dashboard holds at most {MAX_DASHBOARD_INSIGHTS} insights, not {}",
                self.insights.len()
            )));
        }
        Ok(())
    }
}

fn check_text(field: &str, text: &str, max: usize, required: bool) -> Result<()> {
    if required && text.trim().is_empty() {
        return Err(Error::BadQuery(format!("{field}: must not be empty")));
    }
    let chars = text.chars().count();
    if chars > max {
        return Err(Error::BadQuery(format!("{field}: at most {max} characters, not {chars}")));
    }
    Ok(())
}

/// A saved document's id: 20 lowercase hex digits, the first 12 the
/// creation time in milliseconds (so ids sort by creation), the rest random.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SavedId(String);

impl SavedId {
    /// A new id, created now.
    pub fn generate() -> Self {
        let millis = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0) & 0xffff_ffff_ffff;
        Self(format!("{millis:012x}{:08x}", rand::random::<u32>()))
    }

    /// `text` if it is an id (ids also appear in object keys, so nothing
    /// else may pass).
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 20 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
            .then(|| Self(text.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SavedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SavedId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not an id")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_back_and_refuse_anything_that_could_leave_their_folder() {
        let id = SavedId::generate();
        assert_eq!(SavedId::parse(id.as_str()), Some(id));
        for bad in ["", "../../../../etc", "0123456789abcdef012G", "0123456789ABCDEF0123", "0123456789abcdef01234"] {
            assert_eq!(SavedId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_insight_is_checked_with_its_endpoint_validation() {
        let insight = |query: Value| Insight {
            name: "Signups".into(),
            description: String::new(),
            kind: InsightKind::Trends,
            query,
        };
        insight(serde_json::json!({"series": [{"event": "Signed Up", "math": "total"}], "interval": "day"}))
            .validate()
            .unwrap();
        let err = insight(serde_json::json!({"series": [{"event": "x", "math": "most"}], "interval": "day"}))
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("query") && err.contains("math"), "{err}");
        let err = insight(serde_json::json!({"series": [], "interval": "day", "bogus": 1})).validate().unwrap_err();
        assert!(err.to_string().contains("query.bogus") || err.to_string().contains("bogus"), "{err}");
        let mut unnamed = insight(serde_json::json!({"series": [{"event": null}], "interval": "day"}));
        unnamed.name = "  ".into();
        assert!(unnamed.validate().unwrap_err().to_string().starts_with("name"));
    }
}
