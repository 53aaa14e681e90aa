//! Events in (time, event id) order, and the opaque cursor at a position in
//! it: what the timeline pages by and the live stream resumes from.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use datafusion::common::ScalarValue;
use datafusion::prelude::{Expr, col, lit};
use serde_json::Value;

use super::format::rows_json;
use crate::engine::QueryResult;
use crate::error::{Error, Result};

/// A position in (time, event id) order, opaque to clients.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Cursor {
    pub(crate) micros: i64,
    pub(crate) event_id: String,
}

impl Cursor {
    pub(crate) fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.micros, self.event_id))
    }

    pub(crate) fn decode(text: &str) -> Result<Self> {
        let bad = || Error::BadQuery(format!("cursor {text:?} is not one this API returned"));
        let raw = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let (micros, event_id) = raw.split_once(':').ok_or_else(bad)?;
        Ok(Self { micros: micros.parse().map_err(|_| bad())?, event_id: event_id.to_owned() })
    }

    /// `(column, event_id)` strictly before (`before`) or after this cursor.
    pub(crate) fn bound(&self, column: &str, before: bool) -> Expr {
        let at = lit(ScalarValue::TimestampMicrosecond(Some(self.micros), Some("UTC".into())));
        let id = lit(self.event_id.clone());
        if before {
            col(column).lt(at.clone()).or(col(column).eq(at).and(col("event_id").lt(id)))
        } else {
            col(column).gt(at.clone()).or(col(column).eq(at).and(col("event_id").gt(id)))
        }
    }
}

/// The first `limit` events matching `filter` in (`time`, `event_id`) order,
/// ascending or not: the (time, id) pairs are the cursors' positions.
pub(crate) async fn events_in_order(
    ctx: datafusion::prelude::SessionContext,
    filter: Expr,
    time: &str,
    ascending: bool,
    limit: usize,
) -> Result<datafusion::prelude::DataFrame> {
    let order = vec![col(time).sort(ascending, false), col("event_id").sort(ascending, false)];
    Ok(ctx.table("events").await?.filter(filter)?.sort(order)?.limit(0, Some(limit))?)
}

/// Rows as event objects: JSON-text columns parsed, `project_id` dropped.
pub(crate) fn event_rows(result: &QueryResult) -> Result<Vec<Value>> {
    let mut rows = rows_json(&result.schema, &result.batches)?;
    for row in &mut rows {
        if let Value::Object(object) = row {
            object.remove("project_id");
            for key in ["properties", "traits", "context"] {
                if let Some(Value::String(text)) = object.get(key)
                    && let Ok(parsed) = serde_json::from_str::<Value>(text)
                {
                    object.insert(key.to_owned(), parsed);
                }
            }
        }
    }
    Ok(rows)
}

/// The cursor at an event row (its `column` time and id).
pub(crate) fn cursor_of(row: &Value, column: &str) -> Option<Cursor> {
    let text = row.get(column)?.as_str()?;
    let micros = chrono::DateTime::parse_from_rfc3339(text).ok()?.timestamp_micros();
    Some(Cursor { micros, event_id: row.get("event_id")?.as_str()?.to_owned() })
}
