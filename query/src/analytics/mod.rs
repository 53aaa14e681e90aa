//! The product-analytics answers of DESIGN §6.2–6.4, as typed requests that
//! validate before any I/O and then plan DataFusion queries over the same
//! session as SQL (so a just-acknowledged event counts). No HTTP here: the
//! handlers in `api::analytics` only extract and render.
//!
//! - [`vocabulary`]: ranges, property references, filters, event selectors;
//! - [`limits`]: the bounds of a request, with their reasons;
//! - [`calendar`]: buckets and periods in a time zone;
//! - [`trends`], [`funnels`], [`retention`]: one module per answer.

pub mod calendar;
pub mod funnels;
pub mod limits;
pub mod retention;
pub mod trends;
pub mod vocabulary;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use chrono::{SecondsFormat, Utc};
use serde_json::Value;

use crate::engine::Session;
use crate::error::{Error, Result};

/// An analytics request as sent: validated (400 on any fault, before I/O)
/// into an [`Analysis`].
pub trait Request: serde::de::DeserializeOwned + Send {
    /// The validated form.
    type Analysis: Analysis;
    /// Validates the request as of `now`.
    fn validate(self, now: chrono::DateTime<Utc>) -> Result<Self::Analysis>;
}

/// A validated analytics request, ready to run over a project's session.
pub trait Analysis: Send + 'static {
    /// The query kind in metrics (`trends`, `funnels`, `retention`).
    const KIND: &'static str;
    /// Runs the analysis.
    fn run(self, session: Session) -> impl Future<Output = Result<Answer>> + Send;
}

/// An analytics answer: the body, the table version read, and when.
#[derive(Debug)]
pub struct Answer {
    body: Value,
}

impl Answer {
    /// `body` (an object) with `table_version` and `computed_at` added.
    pub fn new(mut body: Value, version: Option<u64>) -> Self {
        body["table_version"] = version.map_or(Value::Null, Value::from);
        body["computed_at"] = Value::String(Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true));
        Self { body }
    }

    /// The JSON answer.
    pub fn into_json(self) -> Value {
        self.body
    }
}

impl crate::telemetry::Rows for Answer {}

/// Column `index` of `batch` as UTF-8 text.
pub(crate) fn text_column(batch: &RecordBatch, index: usize) -> Result<StringArray> {
    let column: ArrayRef = cast(batch.column(index), &DataType::Utf8)?;
    column
        .as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .ok_or_else(|| Error::Engine("a text column did not cast to UTF-8".into()))
}
