//! The shared request vocabulary of DESIGN §6.1: time ranges, property
//! references, filters and event selectors, each parsed into a typed value
//! that builds its DataFusion expression. Every refusal names the field.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use contrail_warehouse::snapshot::events_schema;
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::{Expr, ScalarUDF, cast, lit, try_cast};
use datafusion::prelude::{col, regexp_like, strpos};
use serde::Deserialize;
use serde_json::Value;

use super::limits::MAX_BREAKDOWN_LIMIT;
use crate::error::{Error, Result};

/// A 400 `invalid_query` naming `field`.
pub fn invalid(field: &str, message: impl std::fmt::Display) -> Error {
    Error::BadQuery(format!("{field}: {message}"))
}

/// The `[from, to)` range and zone of a request.
#[derive(Debug, Clone)]
pub struct Range {
    /// Inclusive start.
    pub from: DateTime<Utc>,
    /// Exclusive end.
    pub to: DateTime<Utc>,
    /// The zone calendar units are taken in.
    pub tz: Tz,
}

/// The range fields every analytics request has.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct RangeFields {
    /// RFC 3339 instant or `YYYY-MM-DD` (local midnight); default `to` − 7 days.
    pub from: Option<String>,
    /// RFC 3339 instant or `YYYY-MM-DD`; default now.
    pub to: Option<String>,
    /// IANA zone name; default `UTC`.
    pub timezone: Option<String>,
}

impl RangeFields {
    /// The range, as of `now`.
    pub fn parse(&self, now: DateTime<Utc>) -> Result<Range> {
        let tz: Tz = match self.timezone.as_deref() {
            None => Tz::UTC,
            Some(name) => name.parse().map_err(|_| {
                invalid("timezone", format!("'{name}' is not an IANA time zone name (like Europe/Paris or UTC)"))
            })?,
        };
        let to = match &self.to {
            None => now,
            Some(text) => instant(text, tz).map_err(|m| invalid("to", m))?,
        };
        let from = match &self.from {
            None => to - chrono::Duration::days(7),
            Some(text) => instant(text, tz).map_err(|m| invalid("from", m))?,
        };
        if from >= to {
            return Err(invalid(
                "from",
                format!("must be before to ({} is not before {})", from.to_rfc3339(), to.to_rfc3339()),
            ));
        }
        Ok(Range { from, to, tz })
    }
}

/// An RFC 3339 instant, or a date meaning its local midnight in `tz`.
fn instant(text: &str, tz: Tz) -> std::result::Result<DateTime<Utc>, String> {
    // Years are bounded so that calendar arithmetic (a week back, a month on)
    // can never leave chrono's range.
    let years = 1970..=9999;
    let at = if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        at.with_timezone(&Utc)
    } else if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        if !years.contains(&date.year()) {
            return Err(format!("'{text}' is outside the years 1970 to 9999"));
        }
        local_midnight(date, tz)
    } else {
        return Err(format!("'{text}' is neither an RFC 3339 instant (2026-03-29T00:00:00Z) nor a date (2026-03-29)"));
    };
    if !years.contains(&at.year()) {
        return Err(format!("'{text}' is outside the years 1970 to 9999"));
    }
    Ok(at)
}

/// The first instant of `date` in `tz` (where midnight is skipped by a DST
/// change, the first instant that exists).
pub fn local_midnight(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let mut local = date.and_time(NaiveTime::MIN);
    loop {
        if let Some(at) = tz.from_local_datetime(&local).earliest() {
            return at.with_timezone(&Utc);
        }
        local += chrono::Duration::minutes(15);
    }
}

/// The column predicate for a range on `timestamp`.
pub fn in_range(range: &Range) -> Expr {
    between(range.from, range.to)
}

/// `from <= timestamp < to`.
pub fn between(from: DateTime<Utc>, to: DateTime<Utc>) -> Expr {
    let at = |t: DateTime<Utc>| {
        lit(datafusion::common::ScalarValue::TimestampMillisecond(Some(t.timestamp_millis()), Some("UTC".into())))
    };
    col("timestamp").gt_eq(at(from)).and(col("timestamp").lt(at(to)))
}

/// JSON text columns a property reference may point into.
const JSON_COLUMNS: [&str; 3] = ["properties", "context", "traits"];

/// A property reference: a column of `events`, or a path into one of its
/// JSON columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Property {
    /// A column of `events`.
    Column(String),
    /// `properties.cart.total` and the like.
    Json {
        /// `properties`, `context` or `traits`.
        column: &'static str,
        /// The keys, outermost first.
        path: Vec<String>,
    },
}

impl Property {
    /// Parses a reference; `field` names it in errors.
    pub fn parse(text: &str, field: &str) -> Result<Self> {
        if text.is_empty() {
            return Err(invalid(field, "a property reference cannot be empty"));
        }
        if let Some((head, rest)) = text.split_once('.')
            && let Some(column) = JSON_COLUMNS.iter().find(|c| **c == head)
        {
            let path: Vec<String> = rest.split('.').map(str::to_owned).collect();
            if path.iter().any(String::is_empty) {
                return Err(invalid(
                    field,
                    format!("'{text}' has an empty key; write {head}.key or {head}.outer.inner"),
                ));
            }
            return Ok(Self::Json { column, path });
        }
        if JSON_COLUMNS.contains(&text) {
            return Err(invalid(field, format!("'{text}' is a JSON column; name a key inside it, like {text}.plan")));
        }
        if events_schema().field_with_name(text).is_ok() {
            return Ok(Self::Column(text.to_owned()));
        }
        // A bare name that is not a column is a key of `properties`.
        Ok(Self::Json { column: "properties", path: text.split('.').map(str::to_owned).collect() })
    }

    fn json_call(&self, function: &ScalarUDF) -> Expr {
        match self {
            Self::Json { column, path } => {
                let mut args = vec![col(*column)];
                args.extend(path.iter().map(|k| lit(k.as_str())));
                function.call(args)
            }
            Self::Column(name) => col(name.as_str()),
        }
    }

    /// The value as text (NULL when missing): a JSON string unquoted, any
    /// other JSON value as its JSON text.
    pub fn text(&self) -> Expr {
        match self {
            Self::Column(name) => cast(col(name.as_str()), arrow::datatypes::DataType::Utf8),
            Self::Json { .. } => self.json_call(&contrail_functions::json::udfs::json_as_text_udf()),
        }
    }

    /// The value as a number (NULL when missing or not a number).
    pub fn number(&self) -> Expr {
        match self {
            Self::Column(name) => try_cast(col(name.as_str()), arrow::datatypes::DataType::Float64),
            Self::Json { .. } => self.json_call(&contrail_functions::json::udfs::json_get_float_udf()),
        }
    }
}

/// A filter as sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterFields {
    /// A property reference.
    pub property: String,
    /// The operator.
    pub op: String,
    /// The operand (an array for `in`/`not_in`; none for `is_set`/`is_not_set`).
    #[serde(default)]
    pub value: Option<Value>,
}

/// Operators a filter may use.
pub const FILTER_OPS: &str = "eq, neq, in, not_in, contains, not_contains, regex, gt, gte, lt, lte, is_set, is_not_set";

/// One operand: numbers compare numerically, strings as strings.
enum Operand {
    Number(f64),
    Text(String),
}

fn operand(value: &Value, field: &str) -> Result<Operand> {
    match value {
        Value::Number(n) => n.as_f64().map(Operand::Number).ok_or_else(|| invalid(field, "the number is out of range")),
        Value::String(s) => Ok(Operand::Text(s.clone())),
        Value::Bool(b) => Ok(Operand::Text(b.to_string())),
        other => Err(invalid(field, format!("expected a string or a number, got {other}"))),
    }
}

impl FilterFields {
    /// The filter's predicate; `field` is its place in the request
    /// (`filters[2]`). A missing property matches only `neq`, `not_in`,
    /// `not_contains` and `is_not_set`.
    pub fn predicate(&self, field: &str) -> Result<Expr> {
        let property = Property::parse(&self.property, &format!("{field}.property"))?;
        let value_field = format!("{field}.value");
        let value = || {
            self.value
                .as_ref()
                .filter(|v| !v.is_null())
                .ok_or_else(|| invalid(&value_field, format!("op '{}' needs a value", self.op)))
        };
        let text = property.text();
        let compare = |operand: Operand, op: fn(Expr, Expr) -> Expr| match operand {
            Operand::Number(n) => op(property.number(), lit(n)),
            Operand::Text(s) => op(text.clone(), lit(s)),
        };
        let missing = text.clone().is_null();
        let one_of = |values: &Value| -> Result<Expr> {
            let Value::Array(items) = values else {
                return Err(invalid(&value_field, format!("op '{}' takes an array of values", self.op)));
            };
            if items.is_empty() {
                return Err(invalid(&value_field, "the array of values is empty"));
            }
            let mut any: Option<Expr> = None;
            for (i, item) in items.iter().enumerate() {
                let equal = compare(operand(item, &format!("{value_field}[{i}]"))?, Expr::eq);
                any = Some(match any {
                    None => equal,
                    Some(e) => e.or(equal),
                });
            }
            Ok(any.unwrap_or_else(|| lit(false)))
        };
        let string = |v: &Value| -> Result<String> {
            match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                other => Err(invalid(&value_field, format!("op '{}' takes a string, got {other}", self.op))),
            }
        };
        let no_value = || match &self.value {
            None | Some(Value::Null) => Ok(()),
            Some(_) => Err(invalid(&value_field, format!("op '{}' takes no value", self.op))),
        };
        Ok(match self.op.as_str() {
            "eq" => compare(operand(value()?, &value_field)?, Expr::eq),
            // Missing, or present and not equal (a text value is not equal to a number).
            "neq" => missing.or(compare(operand(value()?, &value_field)?, Expr::eq).is_not_true()),
            "in" => one_of(value()?)?,
            "not_in" => missing.or(one_of(value()?)?.is_not_true()),
            "contains" => strpos(text, lit(string(value()?)?)).gt(lit(0)),
            "not_contains" => missing.or(strpos(text, lit(string(value()?)?)).eq(lit(0))),
            "regex" => {
                let pattern = string(value()?)?;
                regex::Regex::new(&pattern)
                    .map_err(|e| invalid(&value_field, format!("not a valid regular expression: {e}")))?;
                regexp_like(text, lit(pattern), None)
            }
            "gt" => compare(operand(value()?, &value_field)?, Expr::gt),
            "gte" => compare(operand(value()?, &value_field)?, Expr::gt_eq),
            "lt" => compare(operand(value()?, &value_field)?, Expr::lt),
            "lte" => compare(operand(value()?, &value_field)?, Expr::lt_eq),
            "is_set" => {
                no_value()?;
                text.is_not_null()
            }
            "is_not_set" => {
                no_value()?;
                missing
            }
            other => {
                return Err(invalid(
                    &format!("{field}.op"),
                    format!("unknown op '{other}'; expected one of {FILTER_OPS}"),
                ));
            }
        })
    }
}

/// The AND of `filters` (true when there are none); `field` names the list.
pub fn all_of(filters: &[FilterFields], field: &str) -> Result<Expr> {
    let mut all = lit(true);
    for (i, filter) in filters.iter().enumerate() {
        all = all.and(filter.predicate(&format!("{field}[{i}]"))?);
    }
    Ok(all)
}

/// An event selector as sent: `{"event": "Purchased", "filters": […]}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSelector {
    /// The event name; null or absent: any event.
    #[serde(default)]
    pub event: Option<String>,
    /// Filters on the event.
    #[serde(default)]
    pub filters: Vec<FilterFields>,
}

impl EventSelector {
    /// The predicate; `field` names the selector in errors.
    pub fn predicate(&self, field: &str) -> Result<Expr> {
        let filters = all_of(&self.filters, &format!("{field}.filters"))?;
        Ok(match &self.event {
            Some(name) => col("event").eq(lit(name.as_str())).and(filters),
            None => filters,
        })
    }
}

/// Persons: `person_id(distinct_id)` through the session's person map.
pub fn person(ctx: &datafusion::prelude::SessionContext) -> Result<Expr> {
    use datafusion::execution::FunctionRegistry;
    Ok(ctx.udf("person_id")?.call(vec![col("distinct_id")]))
}

/// `count(*)`.
pub fn events() -> Expr {
    count(lit(1))
}

/// The text of a breakdown value as it appears in answers.
pub const OTHER: &str = "$other";

/// `breakdown_limit`'s bounds.
pub fn breakdown_limit(limit: Option<usize>) -> Result<usize> {
    match limit.unwrap_or(10) {
        n @ 1..=MAX_BREAKDOWN_LIMIT => Ok(n),
        n => Err(invalid("breakdown_limit", format!("must be between 1 and {MAX_BREAKDOWN_LIMIT}; got {n}"))),
    }
}

/// The local RFC 3339 rendering of `at` in `tz`.
pub fn local(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}
