//! `POST /v1/trends` (DESIGN §6.2): per series, a number per calendar
//! bucket and over the whole range, optionally broken down by a property.

use std::collections::HashMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int32Type};
use chrono::{DateTime, Duration, Utc};
use datafusion::functions_aggregate::expr_fn::{avg, count_distinct, max, min, percentile_cont, sum};
use datafusion::logical_expr::{Expr, cast, lit, when};
use datafusion::prelude::col;
use serde::Deserialize;
use serde_json::{Value, json};

use super::calendar::{Unit, Units};
use super::limits::{MAX_BUCKETS, MAX_SERIES};
use super::vocabulary::{
    EventSelector, FilterFields, OTHER, Property, RangeFields, all_of, between, breakdown_limit, events, in_range,
    invalid, local, person,
};
use super::{Answer, text_column};
use crate::engine::Session;
use crate::error::Result;

/// A trends request as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendsRequest {
    series: Vec<SeriesFields>,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    filters: Vec<FilterFields>,
    #[serde(default)]
    breakdown: Option<String>,
    #[serde(default)]
    breakdown_limit: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeriesFields {
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    filters: Vec<FilterFields>,
    #[serde(default)]
    math: Option<String>,
    #[serde(default)]
    property: Option<String>,
    #[serde(default)]
    label: Option<String>,
}

/// What a series computes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Math {
    Total,
    UniqueUsers,
    UniqueSessions,
    /// Persons active in the `n` local days ending with the bucket's last day.
    Active(i64),
    Sum,
    Avg,
    Min,
    Max,
    Percentile(f64),
}

const MATHS: &str = "total, unique_users, unique_sessions, dau, wau, mau, sum, avg, min, max, median, p90, p95, p99";

impl Math {
    fn parse(text: &str, field: &str) -> Result<Self> {
        Ok(match text {
            "total" => Self::Total,
            "unique_users" => Self::UniqueUsers,
            "unique_sessions" => Self::UniqueSessions,
            "dau" => Self::Active(1),
            "wau" => Self::Active(7),
            "mau" => Self::Active(30),
            "sum" => Self::Sum,
            "avg" => Self::Avg,
            "min" => Self::Min,
            "max" => Self::Max,
            "median" => Self::Percentile(0.5),
            "p90" => Self::Percentile(0.9),
            "p95" => Self::Percentile(0.95),
            "p99" => Self::Percentile(0.99),
            other => return Err(invalid(field, format!("unknown math '{other}'; expected one of {MATHS}"))),
        })
    }

    fn is_count(self) -> bool {
        matches!(self, Self::Total | Self::UniqueUsers | Self::UniqueSessions | Self::Active(_))
    }

    fn needs_property(self) -> bool {
        matches!(self, Self::Sum | Self::Avg | Self::Min | Self::Max | Self::Percentile(_))
    }

    /// The aggregate over the matching events.
    fn aggregate(self, person: &Expr, property: Option<&Property>) -> Expr {
        let number = || property.map_or(lit(0.0), Property::number);
        let value = match self {
            Self::Total | Self::Active(_) => events(),
            Self::UniqueUsers => count_distinct(person.clone()),
            Self::UniqueSessions => count_distinct(col("session_id")),
            Self::Sum => sum(number()),
            Self::Avg => avg(number()),
            Self::Min => min(number()),
            Self::Max => max(number()),
            Self::Percentile(p) => percentile_cont(number().sort(true, false), lit(p)),
        };
        cast(value, DataType::Float64).alias("value")
    }
}

/// One series, validated.
#[derive(Debug)]
struct Series {
    label: String,
    math: Math,
    property: Option<Property>,
    selector: Expr,
}

/// A validated trends request: nothing here can fail for the caller's reasons.
#[derive(Debug)]
pub struct Trends {
    series: Vec<Series>,
    unit: Unit,
    buckets: Units,
    range: super::vocabulary::Range,
    breakdown: Option<Property>,
    limit: usize,
    /// Local days from 29 days before `from`'s day to `to`, for dau/wau/mau.
    days: Option<Units>,
}

/// The longest trailing window of dau/wau/mau, in days.
const LONGEST_ACTIVE_WINDOW: i64 = 30;

impl super::Request for TrendsRequest {
    type Analysis = Trends;

    /// Validates the request as of `now` (DESIGN §6.1–6.2).
    fn validate(self, now: DateTime<Utc>) -> Result<Trends> {
        let range = RangeFields { from: self.from, to: self.to, timezone: self.timezone }.parse(now)?;
        let unit = match self.interval.as_deref().unwrap_or("day") {
            "minute" => Unit::Minute,
            "hour" => Unit::Hour,
            "day" => Unit::Day,
            "week" => Unit::Week,
            "month" => Unit::Month,
            other => {
                return Err(invalid(
                    "interval",
                    format!("unknown interval '{other}'; expected minute, hour, day, week or month"),
                ));
            }
        };
        let buckets = Units::covering(range.from, range.to, unit, range.tz, MAX_BUCKETS).ok_or_else(|| {
            invalid("interval", format!("'{}' gives more than {MAX_BUCKETS} buckets over this range; use a coarser interval or a shorter range", unit.name()))
        })?;
        if self.series.is_empty() {
            return Err(invalid("series", "at least one series is needed"));
        }
        if self.series.len() > MAX_SERIES {
            return Err(invalid("series", format!("at most {MAX_SERIES} series; got {}", self.series.len())));
        }
        let global = all_of(&self.filters, "filters")?;
        let mut series = Vec::with_capacity(self.series.len());
        for (i, s) in self.series.into_iter().enumerate() {
            let field = format!("series[{i}]");
            let math = Math::parse(s.math.as_deref().unwrap_or("total"), &format!("{field}.math"))?;
            if matches!(math, Math::Active(_)) && matches!(unit, Unit::Minute | Unit::Hour) {
                return Err(invalid(
                    &format!("{field}.math"),
                    format!("dau, wau and mau need interval day, week or month, not {}", unit.name()),
                ));
            }
            let property = match (&s.property, math.needs_property()) {
                (Some(p), true) => Some(Property::parse(p, &format!("{field}.property"))?),
                (None, true) => {
                    return Err(invalid(&format!("{field}.property"), "this math needs a numeric property"));
                }
                (Some(_), false) => {
                    return Err(invalid(
                        &format!("{field}.property"),
                        "only sum, avg, min, max, median and percentiles take a property",
                    ));
                }
                (None, false) => None,
            };
            let selector =
                EventSelector { event: s.event.clone(), filters: s.filters }.predicate(&field)?.and(global.clone());
            let label = s.label.or(s.event).unwrap_or_else(|| "All events".to_owned());
            series.push(Series { label, math, property, selector });
        }
        let breakdown = self.breakdown.as_deref().map(|b| Property::parse(b, "breakdown")).transpose()?;
        let limit = breakdown_limit(self.breakdown_limit)?;
        let days = if series.iter().any(|s| matches!(s.math, Math::Active(_))) {
            let first = look_back(&range, LONGEST_ACTIVE_WINDOW);
            // Buckets are at most MAX_BUCKETS days (or weeks or months): bound the days the same way.
            let days =
                Units::covering(first, range.to, Unit::Day, range.tz, MAX_BUCKETS + LONGEST_ACTIVE_WINDOW as usize)
                    .ok_or_else(|| {
                        invalid(
                            "from",
                            format!("daily, weekly and monthly active users cover at most {MAX_BUCKETS} days"),
                        )
                    })?;
            Some(days)
        } else {
            None
        };
        Ok(Trends { series, unit, buckets, range, breakdown, limit, days })
    }
}

/// One answer row: (bucket or none, breakdown key, value).
type Cells = Vec<(Option<usize>, Option<String>, Option<f64>)>;

impl super::Analysis for Trends {
    const KIND: &'static str = "trends";

    /// Runs the request over `session`.
    async fn run(self, session: Session) -> Result<Answer> {
        let person = person(&session.ctx)?;
        let mut out = Vec::new();
        for (index, series) in self.series.iter().enumerate() {
            let matching = in_range(&self.range).and(series.selector.clone());
            let keys = match &self.breakdown {
                None => vec![None],
                Some(property) => self.top_values(&session, property, &matching).await?,
            };
            let key = match &self.breakdown {
                None => lit(datafusion::common::ScalarValue::Utf8(None)),
                Some(property) => breakdown_key(property, &keys)?,
            };
            let (by_bucket, overall) = match series.math {
                Math::Active(days) => (self.active(&session, series, &person, &key, days).await?, Vec::new()),
                math => {
                    let value = math.aggregate(&person, series.property.as_ref());
                    let bucket = self.buckets.bucket_of("bucket_of");
                    let frame = session.ctx.table("events").await?.filter(matching.clone())?;
                    let by_bucket = frame
                        .clone()
                        .aggregate(vec![bucket.alias("bucket"), key.clone().alias("key")], vec![value.clone()])?
                        .collect()
                        .await?;
                    let overall = frame.aggregate(vec![key.clone().alias("key")], vec![value])?.collect().await?;
                    (cells(&by_bucket, true)?, cells(&overall, false)?)
                }
            };
            let mut entries: Vec<Option<String>> = keys.clone();
            let has_other = self.breakdown.is_some()
                && by_bucket.iter().any(|(_, k, _)| k.as_deref() == Some(OTHER) && !keys.contains(k));
            if has_other {
                entries.push(Some(OTHER.to_owned()));
            }
            for value in entries {
                let mut data = vec![if series.math.is_count() { Some(0.0) } else { None }; self.buckets.len()];
                for (bucket, key, v) in &by_bucket {
                    if *key == value
                        && let Some(b) = bucket
                    {
                        data[*b] = v.or(data[*b]);
                    }
                }
                let aggregated = match series.math {
                    Math::Active(_) => Value::Null,
                    math => {
                        let found = overall.iter().find(|(_, k, _)| *k == value).and_then(|(_, _, v)| *v);
                        number(found.or(math.is_count().then_some(0.0)), math)
                    }
                };
                let mut entry = json!({
                    "index": index,
                    "label": series.label,
                    "data": data.iter().map(|v| number(*v, series.math)).collect::<Vec<_>>(),
                    "aggregated": aggregated,
                });
                if self.breakdown.is_some() {
                    entry["breakdown_value"] = value.map_or(Value::Null, Value::String);
                }
                out.push(entry);
            }
        }
        let buckets: Vec<String> = self.buckets.starts().iter().map(|s| local(*s, self.range.tz)).collect();
        Ok(Answer::new(
            json!({
                "interval": self.unit.name(),
                "timezone": self.range.tz.name(),
                "buckets": buckets,
                "series": out,
            }),
            session.version,
        ))
    }
}

impl Trends {
    /// The top `limit` values of `property` among the matching events, by
    /// count (ties by value, missing first).
    async fn top_values(&self, session: &Session, property: &Property, matching: &Expr) -> Result<Vec<Option<String>>> {
        let batches = session
            .ctx
            .table("events")
            .await?
            .filter(matching.clone())?
            .aggregate(vec![property.text().alias("value")], vec![events().alias("n")])?
            .collect()
            .await?;
        top(&batches, self.limit)
    }

    /// dau/wau/mau: persons active in the `days` local days ending with each
    /// bucket's last day, looking back before `from` where needed.
    async fn active(&self, session: &Session, series: &Series, person: &Expr, key: &Expr, days: i64) -> Result<Cells> {
        let Some(day_units) = &self.days else {
            return Err(crate::Error::Engine("active users without their days".into()));
        };
        let look_back = look_back(&self.range, days);
        let batches = session
            .ctx
            .table("events")
            .await?
            .filter(between(look_back, self.range.to).and(series.selector.clone()))?
            .aggregate(
                vec![
                    day_units.bucket_of("day_of").alias("day"),
                    person.clone().alias("person"),
                    key.clone().alias("key"),
                ],
                vec![],
            )?
            .collect()
            .await?;
        // The last day of each bucket, as a day index.
        let last_days: Vec<i64> = self.buckets.edges[1..]
            .iter()
            .map(|end| {
                day_units.index_of(*end - Duration::microseconds(1)).map_or(day_units.len() as i64 - 1, |d| d as i64)
            })
            .collect();
        let mut persons: HashMap<String, u32> = HashMap::new();
        let mut active: HashMap<(usize, Option<String>), std::collections::HashSet<u32>> = HashMap::new();
        for batch in &batches {
            let day = batch.column(0).as_primitive::<Int32Type>();
            let who = text_column(batch, 1)?;
            let key = text_column(batch, 2)?;
            for i in 0..batch.num_rows() {
                let (Some(d), Some(p)) =
                    (day.is_valid(i).then(|| i64::from(day.value(i))), who.is_valid(i).then(|| who.value(i)))
                else {
                    continue;
                };
                let next = persons.len() as u32;
                let id = *persons.entry(p.to_owned()).or_insert(next);
                let k = key.is_valid(i).then(|| key.value(i).to_owned());
                // Buckets whose last day is in [d, d + days - 1].
                let from = last_days.partition_point(|&l| l < d);
                let until = last_days.partition_point(|&l| l < d + days);
                for bucket in from..until {
                    active.entry((bucket, k.clone())).or_default().insert(id);
                }
            }
        }
        Ok(active.into_iter().map(|((bucket, key), ids)| (Some(bucket), key, Some(ids.len() as f64))).collect())
    }
}

/// The first instant of the local day `days − 1` days before `from`'s day.
fn look_back(range: &super::vocabulary::Range, days: i64) -> DateTime<Utc> {
    let first_day = super::calendar::floor(range.from, Unit::Day, range.tz);
    let date = first_day.with_timezone(&range.tz).date_naive() - Duration::days(days - 1);
    super::vocabulary::local_midnight(date, range.tz)
}

/// The values in rank order (count descending, then value; missing first).
pub(super) fn top(batches: &[RecordBatch], limit: usize) -> Result<Vec<Option<String>>> {
    let mut ranked: Vec<(i64, Option<String>)> = Vec::new();
    for batch in batches {
        let value = text_column(batch, 0)?;
        let n = arrow::compute::cast(batch.column(1), &DataType::Int64)?;
        let n = n.as_primitive::<arrow::datatypes::Int64Type>();
        for i in 0..batch.num_rows() {
            ranked.push((n.value(i), value.is_valid(i).then(|| value.value(i).to_owned())));
        }
    }
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    // A value that is literally `$other` is counted with the rest.
    Ok(ranked.into_iter().filter(|(_, v)| v.as_deref() != Some(OTHER)).take(limit).map(|(_, v)| v).collect())
}

/// The breakdown key: the value when it is one of `keys`, else `$other`.
pub(super) fn breakdown_key(property: &Property, keys: &[Option<String>]) -> Result<Expr> {
    let value = property.text();
    let named: Vec<Expr> = keys.iter().flatten().map(|k| lit(k.as_str())).collect();
    let missing_is_top = keys.iter().any(Option::is_none);
    let other = lit(OTHER);
    let known = if named.is_empty() { lit(false) } else { value.clone().in_list(named, false) };
    let mut case = when(known, value.clone());
    if missing_is_top {
        case = case.when(value.is_null(), lit(datafusion::common::ScalarValue::Utf8(None)));
    }
    Ok(case.otherwise(other)?)
}

/// Rows of (bucket?, key, value) answers.
fn cells(batches: &[RecordBatch], with_bucket: bool) -> Result<Cells> {
    let mut out = Vec::new();
    for batch in batches {
        let offset = usize::from(with_bucket);
        let key = text_column(batch, offset)?;
        let value = batch.column(offset + 1).as_primitive::<Float64Type>();
        for i in 0..batch.num_rows() {
            let bucket = if with_bucket {
                let b = batch.column(0).as_primitive::<Int32Type>();
                if b.is_null(i) {
                    continue;
                }
                Some(b.value(i) as usize)
            } else {
                None
            };
            let k = key.is_valid(i).then(|| key.value(i).to_owned());
            out.push((bucket, k, value.is_valid(i).then(|| value.value(i))));
        }
    }
    Ok(out)
}

/// A JSON number: counts as integers, the rest as floats; null stays null.
fn number(value: Option<f64>, math: Math) -> Value {
    match value {
        None => Value::Null,
        Some(v) if math.is_count() => json!(v as i64),
        Some(v) => json!(v),
    }
}
