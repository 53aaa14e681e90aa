//! Which `date` partitions a query can touch, from its filters.
//!
//! `date` is the UTC date of `timestamp`, so a bound on either column bounds
//! the partitions. Users filter on `timestamp`; mapping those bounds to
//! partitions means a one-day query opens one day's files, not the table's.
//! The filters stay in the plan (the scan reports them as inexact), so this
//! only has to be conservative, never exact.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator};

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// An inclusive range of day numbers (days since 1970-01-01, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRange {
    /// First day that may hold matching rows.
    pub min: i32,
    /// Last day that may hold matching rows.
    pub max: i32,
}

impl DayRange {
    /// Every day.
    pub const ALL: Self = Self { min: i32::MIN, max: i32::MAX };

    /// Whether `day` is in the range.
    pub fn contains(&self, day: i32) -> bool {
        self.min <= day && day <= self.max
    }

    fn intersect(self, other: Self) -> Self {
        Self { min: self.min.max(other.min), max: self.max.min(other.max) }
    }
}

/// The days the conjunction of `filters` allows.
pub fn day_range(filters: &[Expr]) -> DayRange {
    filters.iter().fold(DayRange::ALL, |range, f| range.intersect(of_expr(f)))
}

fn of_expr(expr: &Expr) -> DayRange {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::And, right }) => of_expr(left).intersect(of_expr(right)),
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match (column_day(left), literal_day(right)) {
            (Some(column), Some(value)) => compare(column, *op, value),
            _ => match (literal_day(left), column_day(right), op.swap()) {
                (Some(value), Some(column), Some(op)) => compare(column, op, value),
                _ => DayRange::ALL,
            },
        },
        Expr::Between(Between { expr, negated: false, low, high }) => {
            match (column_day(expr), literal_day(low), literal_day(high)) {
                (Some(column), Some(low), Some(high)) => {
                    compare(column, Operator::GtEq, low).intersect(compare(column, Operator::LtEq, high))
                }
                _ => DayRange::ALL,
            }
        }
        _ => DayRange::ALL,
    }
}

/// A column whose value determines the day: `date` or `timestamp`.
#[derive(Clone, Copy)]
enum DayColumn {
    Date,
    Timestamp,
}

fn column_day(expr: &Expr) -> Option<DayColumn> {
    match expr {
        Expr::Column(c) if c.name == "date" => Some(DayColumn::Date),
        Expr::Column(c) if c.name == "timestamp" => Some(DayColumn::Timestamp),
        _ => None,
    }
}

/// A literal as (day, whether it is exactly midnight).
fn literal_day(expr: &Expr) -> Option<(i32, bool)> {
    let Expr::Literal(value, _) = expr else { return None };
    let micros = match value {
        ScalarValue::Date32(Some(d)) => return Some((*d, true)),
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000)?,
        ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000)?,
        ScalarValue::TimestampMicrosecond(Some(v), _) => *v,
        ScalarValue::TimestampNanosecond(Some(v), _) => v.div_euclid(1_000),
        _ => return None,
    };
    let day = i32::try_from(micros.div_euclid(MICROS_PER_DAY)).ok()?;
    Some((day, micros.rem_euclid(MICROS_PER_DAY) == 0))
}

fn compare(column: DayColumn, op: Operator, (day, midnight): (i32, bool)) -> DayRange {
    let exact_day = matches!(column, DayColumn::Date) || midnight;
    match op {
        Operator::Eq => DayRange { min: day, max: day },
        Operator::Gt if matches!(column, DayColumn::Date) => DayRange { min: day.saturating_add(1), max: i32::MAX },
        Operator::Gt | Operator::GtEq => DayRange { min: day, max: i32::MAX },
        // `timestamp < midnight of D` ends on D-1; `date < D` too.
        Operator::Lt if exact_day => DayRange { min: i32::MIN, max: day.saturating_sub(1) },
        Operator::Lt | Operator::LtEq => DayRange { min: i32::MIN, max: day },
        _ => DayRange::ALL,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::{col, lit};

    use super::*;

    fn ts(micros: i64) -> Expr {
        lit(ScalarValue::TimestampMicrosecond(Some(micros), Some("UTC".into())))
    }

    #[test]
    fn timestamp_bounds_select_days() {
        let day = 20_000;
        let midnight = day as i64 * MICROS_PER_DAY;
        let range =
            day_range(&[col("timestamp").gt_eq(ts(midnight)), col("timestamp").lt(ts(midnight + MICROS_PER_DAY))]);
        assert_eq!(range, DayRange { min: day, max: day });
        let range = day_range(&[col("timestamp").lt_eq(ts(midnight + 5))]);
        assert_eq!(range, DayRange { min: i32::MIN, max: day });
        let range = day_range(&[ts(midnight).lt(col("timestamp"))]);
        assert_eq!(range, DayRange { min: day, max: i32::MAX });
    }

    #[test]
    fn date_bounds_and_between() {
        let d = |v| lit(ScalarValue::Date32(Some(v)));
        assert_eq!(day_range(&[col("date").gt(d(10))]), DayRange { min: 11, max: i32::MAX });
        assert_eq!(day_range(&[col("date").between(d(3), d(5))]), DayRange { min: 3, max: 5 });
        assert_eq!(day_range(&[col("date").eq(d(7)).and(col("date").lt(d(9)))]), DayRange { min: 7, max: 7 });
    }

    #[test]
    fn anything_else_keeps_every_day() {
        assert_eq!(day_range(&[col("event").eq(lit("x"))]), DayRange::ALL);
        assert_eq!(day_range(&[col("date").eq(col("x"))]), DayRange::ALL);
        assert_eq!(day_range(&[col("timestamp").not_eq(ts(0))]), DayRange::ALL);
    }
}
