//! Calendar buckets in a time zone (DESIGN §6.1): minutes and hours step in
//! absolute time from a local boundary (so a DST change gives a repeated or
//! a skipped local hour, never a wrong one); days, weeks (from Monday) and
//! months step in local dates, each starting at its local midnight (so a
//! local day may last 23 or 25 hours).
//!
//! Events are put in buckets by `bucket_of(timestamp)`, a scalar function
//! built per request over the bucket boundaries: a binary search, where SQL
//! would need the zone's rules.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{AsArray, Int32Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type, TimeUnit};
use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;
use datafusion::common::{Result as DfResult, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::col;
use serde::Deserialize;

use super::vocabulary::local_midnight;

/// A calendar unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// A minute.
    Minute,
    /// An hour.
    Hour,
    /// A local day.
    Day,
    /// A local week, from Monday.
    Week,
    /// A local month.
    Month,
}

impl Unit {
    /// The name used in requests and answers.
    pub fn name(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
        }
    }
}

/// The start of the unit holding `at`.
pub fn floor(at: DateTime<Utc>, unit: Unit, tz: Tz) -> DateTime<Utc> {
    let local = at.with_timezone(&tz);
    match unit {
        Unit::Minute => {
            at - Duration::seconds(i64::from(local.second())) - Duration::nanoseconds(i64::from(local.nanosecond()))
        }
        Unit::Hour => floor(at, Unit::Minute, tz) - Duration::minutes(i64::from(local.minute())),
        Unit::Day => local_midnight(local.date_naive(), tz),
        Unit::Week => {
            let date = local.date_naive();
            local_midnight(date - Duration::days(i64::from(date.weekday().num_days_from_monday())), tz)
        }
        Unit::Month => local_midnight(local.date_naive().with_day(1).unwrap_or(local.date_naive()), tz),
    }
}

/// The start of the unit after the one starting at `start`.
pub fn next(start: DateTime<Utc>, unit: Unit, tz: Tz) -> DateTime<Utc> {
    let date = |start: DateTime<Utc>| start.with_timezone(&tz).date_naive();
    match unit {
        Unit::Minute => start + Duration::minutes(1),
        Unit::Hour => start + Duration::hours(1),
        Unit::Day => local_midnight(date(start) + Duration::days(1), tz),
        Unit::Week => local_midnight(date(start) + Duration::days(7), tz),
        Unit::Month => local_midnight(add_months(date(start), 1), tz),
    }
}

fn add_months(date: NaiveDate, months: u32) -> NaiveDate {
    date.checked_add_months(Months::new(months)).unwrap_or(date)
}

/// Consecutive units: `starts[i]` is the start of unit `i`, and the last
/// entry is the end of the last unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Units {
    /// Unit starts, then the end of the last unit.
    pub edges: Vec<DateTime<Utc>>,
}

impl Units {
    /// The units from the one holding `from` up to the one holding the
    /// instant before `to`. `limit` bounds their number (a request for
    /// minute buckets over a year is refused, not computed).
    pub fn covering(from: DateTime<Utc>, to: DateTime<Utc>, unit: Unit, tz: Tz, limit: usize) -> Option<Self> {
        let mut edges = vec![floor(from, unit, tz)];
        while *edges.last()? < to {
            if edges.len() > limit {
                return None;
            }
            let last = *edges.last()?;
            edges.push(next(last, unit, tz));
        }
        Some(Self { edges })
    }

    /// Number of units.
    pub fn len(&self) -> usize {
        self.edges.len().saturating_sub(1)
    }

    /// No units.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Unit starts.
    pub fn starts(&self) -> &[DateTime<Utc>] {
        &self.edges[..self.len()]
    }

    /// The unit holding `at`, if any.
    pub fn index_of(&self, at: DateTime<Utc>) -> Option<usize> {
        let after = self.edges.partition_point(|e| *e <= at);
        (after >= 1 && after < self.edges.len()).then(|| after - 1)
    }

    /// `bucket_of(timestamp)`: the unit index of each event (NULL outside).
    pub fn bucket_of(&self, name: &str) -> Expr {
        let edges: Vec<i64> = self.edges.iter().map(|e| e.timestamp_micros()).collect();
        let udf = ScalarUDF::from(BucketOf {
            name: name.to_owned(),
            edges: Arc::new(edges),
            signature: Signature::any(1, Volatility::Immutable),
        });
        udf.call(vec![col("timestamp")])
    }
}

#[derive(Debug)]
struct BucketOf {
    name: String,
    edges: Arc<Vec<i64>>,
    signature: Signature,
}

impl PartialEq for BucketOf {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.edges == other.edges
    }
}

impl Eq for BucketOf {}

impl Hash for BucketOf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.edges.hash(state);
    }
}

impl ScalarUDFImpl for BucketOf {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let [at] = args.args.as_slice() else {
            return exec_err!("{} takes one timestamp", self.name);
        };
        let at = at.to_array(args.number_rows)?;
        let micros = cast(&cast(&at, &DataType::Timestamp(TimeUnit::Microsecond, None))?, &DataType::Int64)?;
        let edges = &self.edges;
        let index: Int32Array = micros
            .as_primitive::<Int64Type>()
            .iter()
            .map(|t| {
                let t = t?;
                let after = edges.partition_point(|&e| e <= t);
                (after >= 1 && after < edges.len()).then(|| (after - 1) as i32)
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(index)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn local(units: &Units, tz: Tz) -> Vec<String> {
        units.starts().iter().map(|s| super::super::vocabulary::local(*s, tz)).collect()
    }

    #[test]
    fn paris_days_across_spring_forward_last_23_hours() {
        let tz: Tz = "Europe/Paris".parse().unwrap();
        let units =
            Units::covering(at("2026-03-28T00:00:00+01:00"), at("2026-03-31T00:00:00+02:00"), Unit::Day, tz, 100)
                .unwrap();
        assert_eq!(
            local(&units, tz),
            ["2026-03-28T00:00:00+01:00", "2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"]
        );
        assert_eq!(units.edges[2] - units.edges[1], Duration::hours(23));
    }

    #[test]
    fn new_york_hours_across_fall_back_repeat_one_local_hour() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let units =
            Units::covering(at("2026-11-01T00:00:00-04:00"), at("2026-11-01T03:00:00-05:00"), Unit::Hour, tz, 100)
                .unwrap();
        assert_eq!(
            local(&units, tz),
            [
                "2026-11-01T00:00:00-04:00",
                "2026-11-01T01:00:00-04:00",
                "2026-11-01T01:00:00-05:00",
                "2026-11-01T02:00:00-05:00"
            ]
        );
    }

    #[test]
    fn weeks_start_on_monday_and_months_have_their_length() {
        let tz = Tz::UTC;
        let weeks =
            Units::covering(at("2026-02-05T12:00:00Z"), at("2026-02-17T00:00:00Z"), Unit::Week, tz, 100).unwrap();
        assert_eq!(
            local(&weeks, tz),
            ["2026-02-02T00:00:00+00:00", "2026-02-09T00:00:00+00:00", "2026-02-16T00:00:00+00:00"]
        );
        let months =
            Units::covering(at("2028-01-31T00:00:00Z"), at("2028-04-01T00:00:00Z"), Unit::Month, tz, 100).unwrap();
        let lengths: Vec<i64> = months.edges.windows(2).map(|w| (w[1] - w[0]).num_days()).collect();
        assert_eq!(lengths, [31, 29, 31]);
    }

    #[test]
    fn paris_fall_back_day_lasts_25_hours_and_new_york_spring_forward_day_23() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let units =
            Units::covering(at("2026-10-24T12:00:00+02:00"), at("2026-10-26T12:00:00+01:00"), Unit::Day, paris, 100)
                .unwrap();
        assert_eq!(
            local(&units, paris),
            ["2026-10-24T00:00:00+02:00", "2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00"]
        );
        assert_eq!(units.edges[2] - units.edges[1], Duration::hours(25));
        let new_york: Tz = "America/New_York".parse().unwrap();
        let units =
            Units::covering(at("2026-03-08T00:00:00-05:00"), at("2026-03-09T00:00:00-04:00"), Unit::Day, new_york, 100)
                .unwrap();
        assert_eq!(units.len(), 1);
        assert_eq!(units.edges[1] - units.edges[0], Duration::hours(23));
        // The hour that does not exist locally is skipped: 01:00 is followed by 03:00.
        let hours = Units::covering(
            at("2026-03-08T01:00:00-05:00"),
            at("2026-03-08T04:00:00-04:00"),
            Unit::Hour,
            new_york,
            100,
        )
        .unwrap();
        assert_eq!(local(&hours, new_york), ["2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00"]);
        // Paris's month of March 2026 holds a 23-hour day: 30 × 24 + 23 hours.
        let march =
            Units::covering(at("2026-03-10T00:00:00Z"), at("2026-03-11T00:00:00Z"), Unit::Month, paris, 10).unwrap();
        assert_eq!(local(&march, paris), ["2026-03-01T00:00:00+01:00"]);
        assert_eq!(march.edges[1] - march.edges[0], Duration::hours(30 * 24 + 23));
    }

    #[test]
    fn minute_buckets_start_on_the_local_minute_and_index_events() {
        let kathmandu: Tz = "Asia/Kathmandu".parse().unwrap(); // UTC+05:45
        let units =
            Units::covering(at("2026-05-01T10:00:30Z"), at("2026-05-01T10:03:00Z"), Unit::Minute, kathmandu, 100)
                .unwrap();
        assert_eq!(
            local(&units, kathmandu),
            ["2026-05-01T15:45:00+05:45", "2026-05-01T15:46:00+05:45", "2026-05-01T15:47:00+05:45"]
        );
        assert_eq!(units.index_of(at("2026-05-01T10:01:59.999Z")), Some(1));
        assert_eq!(units.index_of(at("2026-05-01T10:03:00Z")), None);
        // Hours in a zone off by 45 minutes start at local whole hours.
        let hours = Units::covering(at("2026-05-01T10:00:00Z"), at("2026-05-01T10:30:00Z"), Unit::Hour, kathmandu, 100)
            .unwrap();
        assert_eq!(local(&hours, kathmandu), ["2026-05-01T15:00:00+05:45", "2026-05-01T16:00:00+05:45"]);
    }

    #[test]
    fn too_many_units_are_refused() {
        assert!(
            Units::covering(at("2026-01-01T00:00:00Z"), at("2026-12-31T00:00:00Z"), Unit::Minute, Tz::UTC, 10_000)
                .is_none()
        );
    }
}
