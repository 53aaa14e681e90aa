//! `POST /v1/funnels` (DESIGN §6.3): per person, the furthest step reached
//! within the window ([`contrail_functions::funnel_chain`], grouped by
//! person), then counts, conversion and time to convert per step.

use std::collections::HashMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, UInt8Type};
use chrono::{DateTime, Utc};
use contrail_functions::funnel::chain::{Exclusion, Order, Spec};
use contrail_functions::funnel_chain::funnel_chain_udaf;
use datafusion::common::ScalarValue;
use datafusion::functions::core::expr_fn::get_field;
use datafusion::logical_expr::{Expr, lit, when};
use datafusion::prelude::col;
use serde::Deserialize;
use serde_json::{Value, json};

use super::limits::{DEFAULT_WINDOW_SECS, MAX_SERIES, MAX_WINDOW_SECS};
use super::vocabulary::{
    EventSelector, FilterFields, OTHER, Property, RangeFields, all_of, breakdown_limit, in_range, invalid, person,
};
use super::{Answer, text_column};
use crate::engine::Session;
use crate::error::Result;

/// A funnels request as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunnelsRequest {
    steps: Vec<EventSelector>,
    #[serde(default)]
    window: Option<Value>,
    #[serde(default)]
    order: Option<String>,
    #[serde(default)]
    exclusions: Vec<ExclusionFields>,
    #[serde(default)]
    breakdown: Option<String>,
    #[serde(default)]
    breakdown_attribution: Option<String>,
    #[serde(default)]
    breakdown_limit: Option<usize>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    filters: Vec<FilterFields>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExclusionFields {
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    filters: Vec<FilterFields>,
    from_step: usize,
    to_step: usize,
}

/// `"30m"`, `"1h"`, `"7d"`, `"2w"`, `"90s"` or a number of seconds.
fn window_seconds(window: Option<&Value>) -> Result<i64> {
    let seconds = match window {
        None | Some(Value::Null) => return Ok(DEFAULT_WINDOW_SECS),
        Some(Value::Number(n)) => {
            n.as_i64().ok_or_else(|| invalid("window", format!("{n} is not a whole number of seconds")))?
        }
        Some(Value::String(text)) => {
            let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
            let (count, unit) = text.split_at(split);
            let count: i64 = count
                .parse()
                .map_err(|_| invalid("window", format!("'{text}' is not like 30m, 1h, 7d or a number of seconds")))?;
            let scale = match unit {
                "s" => 1,
                "m" => 60,
                "h" => 3_600,
                "d" => 86_400,
                "w" => 7 * 86_400,
                _ => return Err(invalid("window", format!("'{text}': the unit is s, m, h, d or w"))),
            };
            count.saturating_mul(scale)
        }
        Some(other) => {
            return Err(invalid("window", format!("expected a duration like \"1h\" or seconds, got {other}")));
        }
    };
    if seconds <= 0 || seconds > MAX_WINDOW_SECS {
        return Err(invalid("window", format!("must be more than 0 and at most 366 days; got {seconds} s")));
    }
    Ok(seconds)
}

/// A validated funnels request.
#[derive(Debug)]
pub struct Funnels {
    spec: Spec,
    names: Vec<Option<String>>,
    steps: Vec<Expr>,
    exclusions: Vec<Expr>,
    global: Expr,
    range: super::vocabulary::Range,
    breakdown: Option<Property>,
    last_touch: bool,
    limit: usize,
}

impl super::Request for FunnelsRequest {
    type Analysis = Funnels;

    /// Validates the request as of `now` (DESIGN §6.1, §6.3).
    fn validate(self, now: DateTime<Utc>) -> Result<Funnels> {
        let range = RangeFields { from: self.from, to: self.to, timezone: self.timezone }.parse(now)?;
        if self.steps.is_empty() {
            return Err(invalid("steps", "the steps list is empty; a funnel needs 2 to 32 steps"));
        }
        if self.steps.len() < 2 || self.steps.len() > MAX_SERIES {
            return Err(invalid("steps", format!("a funnel has 2 to {MAX_SERIES} steps; got {}", self.steps.len())));
        }
        let window = window_seconds(self.window.as_ref())?;
        let order = match self.order.as_deref().unwrap_or("ordered") {
            "ordered" => Order::Ordered,
            "strict" => Order::Strict,
            "unordered" => Order::Unordered,
            other => {
                return Err(invalid(
                    "order",
                    format!("unknown order '{other}'; expected ordered, strict or unordered"),
                ));
            }
        };
        if self.exclusions.len() > MAX_SERIES {
            return Err(invalid(
                "exclusions",
                format!("at most {MAX_SERIES} exclusions; got {}", self.exclusions.len()),
            ));
        }
        if order == Order::Unordered && !self.exclusions.is_empty() {
            return Err(invalid(
                "exclusions",
                "an unordered funnel has no 'between two steps'; exclusions need order ordered or strict",
            ));
        }
        let global = all_of(&self.filters, "filters")?;
        let steps = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| s.predicate(&format!("steps[{i}]")))
            .collect::<Result<Vec<_>>>()?;
        let mut exclusions = Vec::new();
        let mut spans = Vec::new();
        for (i, e) in self.exclusions.iter().enumerate() {
            let field = format!("exclusions[{i}]");
            if e.from_step >= e.to_step || e.to_step >= steps.len() {
                return Err(invalid(
                    &field,
                    format!(
                        "from_step must be below to_step and to_step below {}; got {} and {}",
                        steps.len(),
                        e.from_step,
                        e.to_step
                    ),
                ));
            }
            exclusions.push(EventSelector { event: e.event.clone(), filters: e.filters.clone() }.predicate(&field)?);
            spans.push(Exclusion { from: e.from_step, to: e.to_step });
        }
        let last_touch = match self.breakdown_attribution.as_deref().unwrap_or("first_touch") {
            "first_touch" => false,
            "last_touch" => true,
            other => {
                return Err(invalid(
                    "breakdown_attribution",
                    format!("unknown attribution '{other}'; expected first_touch or last_touch"),
                ));
            }
        };
        let breakdown = self.breakdown.as_deref().map(|b| Property::parse(b, "breakdown")).transpose()?;
        let limit = breakdown_limit(self.breakdown_limit)?;
        let names = self.steps.into_iter().map(|s| s.event).collect();
        let spec = Spec { steps: steps.len(), window: window * 1_000_000, order, exclusions: spans };
        Ok(Funnels { spec, names, steps, exclusions, global, range, breakdown, last_touch, limit })
    }
}

/// The `u32` mask of the predicates an event meets.
fn mask(predicates: &[Expr]) -> Result<Expr> {
    let mut mask = lit(0i64);
    for (i, p) in predicates.iter().enumerate() {
        mask = mask + when(p.clone(), lit(1i64 << i)).otherwise(lit(0i64))?;
    }
    Ok(mask)
}

/// One person's outcome.
struct Person {
    level: usize,
    times: Vec<i64>,
    value: Option<String>,
}

/// Counts and times to convert of one group of persons.
#[derive(Default)]
struct Tally {
    reached: Vec<u64>,
    seconds: Vec<Vec<f64>>,
}

impl Tally {
    fn add(&mut self, person: &Person, steps: usize) {
        self.reached.resize(steps, 0);
        self.seconds.resize(steps, Vec::new());
        for step in 0..person.level {
            self.reached[step] += 1;
            if step >= 1 && person.times.len() > step {
                self.seconds[step].push((person.times[step] - person.times[step - 1]) as f64 / 1e6);
            }
        }
    }

    fn steps(&mut self, names: &[Option<String>], timed: bool) -> Vec<Value> {
        self.reached.resize(names.len(), 0);
        self.seconds.resize(names.len(), Vec::new());
        let first = self.reached[0];
        let ratio = |n: u64, d: u64| if d == 0 { 0.0 } else { n as f64 / d as f64 };
        (0..names.len())
            .map(|i| {
                let count = self.reached[i];
                let previous = if i == 0 { 1.0 } else { ratio(count, self.reached[i - 1]) };
                let seconds = &mut self.seconds[i];
                seconds.sort_by(f64::total_cmp);
                let (median, average) = if i == 0 || !timed || seconds.is_empty() {
                    (Value::Null, Value::Null)
                } else {
                    let n = seconds.len();
                    let median = if n % 2 == 1 { seconds[n / 2] } else { (seconds[n / 2 - 1] + seconds[n / 2]) / 2.0 };
                    (json!(median), json!(seconds.iter().sum::<f64>() / n as f64))
                };
                json!({
                    "index": i,
                    "event": names[i],
                    "count": count,
                    "conversion_from_first": ratio(count, first),
                    "conversion_from_previous": previous,
                    "median_seconds_to_convert": median,
                    "average_seconds_to_convert": average,
                })
            })
            .collect()
    }
}

impl super::Analysis for Funnels {
    const KIND: &'static str = "funnels";

    /// Runs the request over `session`.
    async fn run(self, session: Session) -> Result<Answer> {
        let batches = self.outcomes(&session).await?;
        let steps = self.names.len();
        let timed = self.spec.order != Order::Unordered;
        let mut all = Tally::default();
        let mut by_value: HashMap<Option<String>, Tally> = HashMap::new();
        for batch in &batches {
            let level = batch.column(1).as_primitive::<UInt8Type>();
            let times = batch.column(2).as_list::<i32>();
            let value = text_column(batch, 3)?;
            for i in 0..batch.num_rows() {
                let t = times.value(i);
                let person = Person {
                    level: usize::from(level.value(i)),
                    times: t.as_primitive::<Int64Type>().values().to_vec(),
                    value: value.is_valid(i).then(|| value.value(i).to_owned()),
                };
                all.add(&person, steps);
                if self.breakdown.is_some() {
                    by_value.entry(person.value.clone()).or_default().add(&person, steps);
                }
            }
        }
        let mut answer = json!({ "steps": all.steps(&self.names, timed) });
        if self.breakdown.is_some() {
            answer["breakdowns"] = Value::Array(self.breakdowns(by_value, timed));
        }
        Ok(Answer::new(answer, session.version))
    }
}

impl Funnels {
    /// One row per person who reached step 1: `person`, `level` (the
    /// furthest step, 1-based), `times` (the counted chain's step times)
    /// and `value` (the breakdown value by the request's attribution).
    async fn outcomes(&self, session: &Session) -> Result<Vec<RecordBatch>> {
        let person = person(&session.ctx)?;
        let steps_mask = mask(&self.steps)?;
        let excluded_mask = mask(&self.exclusions)?;
        let mut rows = in_range(&self.range).and(self.global.clone());
        if self.spec.order != Order::Strict {
            // A strict funnel sees every event (they break chains); the others only theirs.
            let any: Vec<Expr> = self.steps.iter().chain(&self.exclusions).cloned().collect();
            rows = rows.and(any.into_iter().reduce(Expr::or).unwrap_or_else(|| lit(false)));
        }
        let value = match &self.breakdown {
            None => lit(ScalarValue::Utf8(None)),
            Some(property) => property.text(),
        };
        let chain = funnel_chain_udaf(self.spec.clone()).call(vec![col("timestamp"), steps_mask, excluded_mask, value]);
        let touch = if self.last_touch { "last" } else { "first" };
        Ok(session
            .ctx
            .table("events")
            .await?
            .filter(rows)?
            .aggregate(vec![person.alias("person")], vec![chain.alias("chain")])?
            .select(vec![
                col("person"),
                get_field(col("chain"), "level").alias("level"),
                get_field(col("chain"), "times").alias("times"),
                get_field(col("chain"), touch).alias("value"),
            ])?
            .filter(col("level").gt(lit(0u8)))?
            .collect()
            .await?)
    }

    /// The top values by step-0 persons (ties by value, missing first),
    /// then `$other` for the rest (a value that is literally `$other` included).
    fn breakdowns(&self, by_value: HashMap<Option<String>, Tally>, timed: bool) -> Vec<Value> {
        let (mut ranked, mut rest): (Vec<_>, Vec<_>) =
            by_value.into_iter().partition(|(value, _)| value.as_deref() != Some(OTHER));
        ranked.sort_by(|a, b| {
            let first = |t: &Tally| t.reached.first().copied().unwrap_or(0);
            first(&b.1).cmp(&first(&a.1)).then_with(|| a.0.cmp(&b.0))
        });
        rest.extend(ranked.split_off(self.limit.min(ranked.len())));
        let mut out: Vec<Value> = ranked
            .iter_mut()
            .map(|(value, tally)| json!({ "value": value, "steps": tally.steps(&self.names, timed) }))
            .collect();
        // `$other`: counts add; times to convert are kept per person.
        let mut other = Tally::default();
        other.reached.resize(self.names.len(), 0);
        other.seconds.resize(self.names.len(), Vec::new());
        for (_, mut tally) in rest {
            for (i, n) in tally.reached.iter().enumerate() {
                other.reached[i] += n;
            }
            for (i, seconds) in tally.seconds.iter_mut().enumerate() {
                other.seconds[i].append(seconds);
            }
        }
        if other.reached[0] > 0 {
            out.push(json!({ "value": OTHER, "steps": other.steps(&self.names, timed) }));
        }
        out
    }
}

/// Most persons one `POST /v1/funnels/persons` answer lists.
pub const MAX_FUNNEL_PERSONS: usize = 10_000;
/// Persons listed when the request does not say.
const DEFAULT_FUNNEL_PERSONS: usize = 100;

/// `POST /v1/funnels/persons`: who reached a step of a funnel, or who
/// reached it and went no further (the drop-off behind a funnel's bar).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunnelPersonsRequest {
    funnel: FunnelsRequest,
    step: usize,
    #[serde(default)]
    dropped: bool,
    #[serde(default)]
    limit: Option<usize>,
}

/// A validated funnel persons request.
#[derive(Debug)]
pub struct FunnelPersons {
    funnel: Funnels,
    step: usize,
    dropped: bool,
    limit: usize,
}

impl super::Request for FunnelPersonsRequest {
    type Analysis = FunnelPersons;

    fn validate(self, now: DateTime<Utc>) -> Result<FunnelPersons> {
        let funnel = self.funnel.validate(now).map_err(|e| match e {
            crate::error::Error::BadQuery(m) => crate::error::Error::BadQuery(format!("funnel.{m}")),
            other => other,
        })?;
        let steps = funnel.names.len();
        let last = if self.dropped { steps - 1 } else { steps };
        if self.step >= last {
            let why = if self.dropped { " (no one drops off after the last step)" } else { "" };
            return Err(invalid("step", format!("0-based, below {last} for this funnel{why}; got {}", self.step)));
        }
        let limit = self.limit.unwrap_or(DEFAULT_FUNNEL_PERSONS);
        if limit == 0 || limit > MAX_FUNNEL_PERSONS {
            return Err(invalid("limit", format!("1 to {MAX_FUNNEL_PERSONS}; got {limit}")));
        }
        Ok(FunnelPersons { funnel, step: self.step, dropped: self.dropped, limit })
    }
}

impl super::Analysis for FunnelPersons {
    const KIND: &'static str = "funnel_persons";

    /// The persons whose furthest step is exactly `step` (dropped) or at
    /// least `step` (reached), by id, the first `limit`.
    async fn run(self, session: Session) -> Result<Answer> {
        let reached = self.step + 1;
        let mut persons = Vec::new();
        for batch in self.funnel.outcomes(&session).await? {
            let person = text_column(&batch, 0)?;
            let level = batch.column(1).as_primitive::<UInt8Type>();
            for i in 0..batch.num_rows() {
                let level = usize::from(level.value(i));
                if (self.dropped && level == reached) || (!self.dropped && level >= reached) {
                    persons.push(person.value(i).to_owned());
                }
            }
        }
        persons.sort_unstable();
        let truncated = persons.len() > self.limit;
        persons.truncate(self.limit);
        let body = json!({ "step": self.step, "dropped": self.dropped, "persons": persons, "truncated": truncated });
        Ok(Answer::new(body, session.version))
    }
}
