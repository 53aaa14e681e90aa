//! `POST /v1/retention` (DESIGN §6.4): cohorts of persons by the period of
//! their start event, and how many came back in each following period.
//!
//! Two aggregations do the scanning: per (person, period) whether they did
//! the start and the return event, and, for first-time cohorts, each
//! person's first-ever start event over all of history. The matrix is then
//! assembled from those rows.

use std::collections::{HashMap, HashSet};

use arrow::array::{Array, AsArray, StringArray};
use arrow::compute::cast as cast_array;
use arrow::datatypes::{DataType, Int32Type, Int64Type, TimeUnit};
use chrono::{DateTime, TimeZone, Utc};
use datafusion::common::ScalarValue;
use datafusion::functions_aggregate::expr_fn::{bool_or, first_value, min};
use datafusion::logical_expr::{Expr, ExprFunctionExt, cast, lit};
use datafusion::prelude::col;
use serde::Deserialize;
use serde_json::{Value, json};

use super::calendar::{Unit, Units};
use super::limits::{MAX_PERIODS, MAX_RETURN_PERIODS};
use super::vocabulary::{
    EventSelector, FilterFields, OTHER, Property, RangeFields, all_of, between, breakdown_limit, invalid, local, person,
};
use super::{Answer, text_column};
use crate::engine::Session;
use crate::error::Result;

/// A retention request as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRequest {
    start_event: EventSelector,
    #[serde(default)]
    return_event: Option<EventSelector>,
    #[serde(default)]
    period: Option<String>,
    #[serde(default)]
    periods: Option<i64>,
    #[serde(default)]
    cohort: Option<String>,
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

/// A validated retention request.
#[derive(Debug)]
pub struct Retention {
    start: Expr,
    back: Expr,
    global: Expr,
    unit: Unit,
    periods: usize,
    first_time: bool,
    range: super::vocabulary::Range,
    units: Units,
    /// Index of the first unit that starts at or after `from`.
    first_cohort: usize,
    breakdown: Option<Property>,
    limit: usize,
}

impl super::Request for RetentionRequest {
    type Analysis = Retention;

    /// Validates the request as of `now` (DESIGN §6.1, §6.4).
    fn validate(self, now: DateTime<Utc>) -> Result<Retention> {
        let range = RangeFields { from: self.from, to: self.to, timezone: self.timezone }.parse(now)?;
        let unit = match self.period.as_deref().unwrap_or("day") {
            "day" => Unit::Day,
            "week" => Unit::Week,
            "month" => Unit::Month,
            other => return Err(invalid("period", format!("unknown period '{other}'; expected day, week or month"))),
        };
        let periods = match self.periods.unwrap_or(8) {
            n @ 1..=MAX_RETURN_PERIODS => n as usize,
            n => return Err(invalid("periods", format!("must be between 1 and {MAX_RETURN_PERIODS}; got {n}"))),
        };
        let first_time = match self.cohort.as_deref().unwrap_or("first_time") {
            "first_time" => true,
            "recurring" => false,
            other => {
                return Err(invalid("cohort", format!("unknown cohort '{other}'; expected first_time or recurring")));
            }
        };
        let global = all_of(&self.filters, "filters")?;
        let start = self.start_event.predicate("start_event")?;
        let back = self.return_event.unwrap_or_default().predicate("return_event")?;
        let units = Units::covering(range.from, range.to, unit, range.tz, MAX_PERIODS).ok_or_else(|| {
            invalid(
                "period",
                format!("the range holds more than {MAX_PERIODS} periods; use a longer period or a shorter range"),
            )
        })?;
        let first_cohort = units.starts().iter().position(|s| *s >= range.from).unwrap_or(units.len());
        let breakdown = self.breakdown.as_deref().map(|b| Property::parse(b, "breakdown")).transpose()?;
        let limit = breakdown_limit(self.breakdown_limit)?;
        Ok(Retention { start, back, global, unit, periods, first_time, range, units, first_cohort, breakdown, limit })
    }
}

/// Row `i` of an optional text column.
fn text_at(column: Option<&StringArray>, i: usize) -> Option<String> {
    column.filter(|c| c.is_valid(i)).map(|c| c.value(i).to_owned())
}

/// A person in a cohort, with their breakdown value.
struct Member {
    cohort: usize,
    person: u32,
    value: Option<String>,
}

impl super::Analysis for Retention {
    const KIND: &'static str = "retention";

    /// Runs the request over `session`.
    async fn run(self, session: Session) -> Result<Answer> {
        let person = person(&session.ctx)?;
        // The breakdown value on the start event, only when asked for: an
        // ordered first_value per group costs more than the rest together.
        let by_time = vec![col("timestamp").sort(true, false)];
        let value = |filter: Option<Expr>| -> Result<Vec<Expr>> {
            let Some(property) = &self.breakdown else { return Ok(Vec::new()) };
            let first = first_value(property.text(), by_time.clone());
            let first = match filter {
                Some(f) => first.filter(f).build()?,
                None => first,
            };
            Ok(vec![cast(first, DataType::Utf8).alias("value")])
        };
        let period = self.units.bucket_of("period_of");
        let activity = session
            .ctx
            .table("events")
            .await?
            .filter(
                between(self.units.edges[0], self.range.to)
                    .and(self.global.clone())
                    .and(self.start.clone().or(self.back.clone())),
            )?
            .aggregate(
                vec![person.clone().alias("person"), period.alias("period")],
                [bool_or(self.start.clone()).alias("started"), bool_or(self.back.clone()).alias("returned")]
                    .into_iter()
                    .chain(value(Some(self.start.clone()))?)
                    .collect(),
            )?
            .collect()
            .await?;

        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut intern = |p: &str| {
            let next = ids.len() as u32;
            *ids.entry(p.to_owned()).or_insert(next)
        };
        let mut returned: HashSet<(u32, usize)> = HashSet::new();
        let mut members: Vec<Member> = Vec::new();
        for batch in &activity {
            let who = text_column(batch, 0)?;
            let period = batch.column(1).as_primitive::<Int32Type>();
            let started = batch.column(2).as_boolean();
            let back = batch.column(3).as_boolean();
            let value = (batch.num_columns() > 4).then(|| text_column(batch, 4)).transpose()?;
            for i in 0..batch.num_rows() {
                if who.is_null(i) || period.is_null(i) {
                    continue;
                }
                let (p, k) = (intern(who.value(i)), period.value(i) as usize);
                if back.is_valid(i) && back.value(i) {
                    returned.insert((p, k));
                }
                let did_start = started.is_valid(i) && started.value(i);
                if !self.first_time && did_start && k >= self.first_cohort {
                    members.push(Member { cohort: k, person: p, value: text_at(value.as_ref(), i) });
                }
            }
        }
        if self.first_time {
            // The first-ever start event, over all of history.
            let firsts = session
                .ctx
                .table("events")
                .await?
                .filter(self.start.clone().and(self.global.clone()).and(col("timestamp").lt(lit(
                    ScalarValue::TimestampMillisecond(Some(self.range.to.timestamp_millis()), Some("UTC".into())),
                ))))?
                .aggregate(
                    vec![person.alias("person")],
                    [min(col("timestamp")).alias("first")].into_iter().chain(value(None)?).collect(),
                )?
                .collect()
                .await?;
            for batch in &firsts {
                let who = text_column(batch, 0)?;
                let first = cast_array(batch.column(1), &DataType::Timestamp(TimeUnit::Millisecond, None))?;
                let first = cast_array(&first, &DataType::Int64)?;
                let first = first.as_primitive::<Int64Type>();
                let value = (batch.num_columns() > 2).then(|| text_column(batch, 2)).transpose()?;
                for i in 0..batch.num_rows() {
                    if first.is_null(i) || who.is_null(i) {
                        continue;
                    }
                    let Some(at) = Utc.timestamp_millis_opt(first.value(i)).single() else { continue };
                    if let Some(k) = self.units.index_of(at).filter(|k| *k >= self.first_cohort) {
                        let p = intern(who.value(i));
                        members.push(Member { cohort: k, person: p, value: text_at(value.as_ref(), i) });
                    }
                }
            }
        }

        let mut answer = json!({
            "period": self.unit.name(),
            "timezone": self.range.tz.name(),
            "cohorts": self.matrix(members.iter(), &returned),
        });
        if self.breakdown.is_some() {
            let mut sizes: HashMap<Option<&str>, usize> = HashMap::new();
            for m in &members {
                *sizes.entry(m.value.as_deref()).or_default() += 1;
            }
            let mut ranked: Vec<(Option<&str>, usize)> = sizes.into_iter().collect();
            ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            // A value that is literally `$other` is counted with the rest.
            let top: Vec<Option<&str>> =
                ranked.iter().filter(|(v, _)| *v != Some(OTHER)).take(self.limit).map(|(v, _)| *v).collect();
            let mut breakdowns: Vec<Value> = top
                .iter()
                .map(|v| {
                    json!({ "value": v, "cohorts": self.matrix(members.iter().filter(|m| m.value.as_deref() == *v), &returned) })
                })
                .collect();
            if members.iter().any(|m| !top.contains(&m.value.as_deref())) {
                let rest = members.iter().filter(|m| !top.contains(&m.value.as_deref()));
                breakdowns.push(json!({ "value": OTHER, "cohorts": self.matrix(rest, &returned) }));
            }
            answer["breakdowns"] = Value::Array(breakdowns);
        }
        Ok(Answer::new(answer, session.version))
    }
}

impl Retention {
    /// The cohort rows of `members`: every cohort period in range, empty ones included.
    fn matrix<'a>(&self, members: impl Iterator<Item = &'a Member>, returned: &HashSet<(u32, usize)>) -> Vec<Value> {
        let mut cohorts: Vec<HashSet<u32>> = vec![HashSet::new(); self.units.len()];
        for m in members {
            cohorts[m.cohort].insert(m.person);
        }
        (self.first_cohort..self.units.len())
            .map(|c| {
                let persons = &cohorts[c];
                let size = persons.len();
                // Later cohorts have shorter rows: periods starting at or after `to` are left out.
                let width = self.periods.min(self.units.len() - c);
                let counts: Vec<usize> = (0..width)
                    .map(|k| if k == 0 { size } else { persons.iter().filter(|p| returned.contains(&(**p, c + k))).count() })
                    .collect();
                let rates: Vec<Value> =
                    counts.iter().map(|n| if size == 0 { Value::Null } else { json!(*n as f64 / size as f64) }).collect();
                json!({ "start": local(self.units.starts()[c], self.range.tz), "size": size, "counts": counts, "rates": rates })
            })
            .collect()
    }
}
