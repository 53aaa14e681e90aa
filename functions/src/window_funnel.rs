//! `window_funnel(window, timestamp, cond1, …, condN [, 'mode,mode'])`: the
//! furthest step (0 ..= N) a group reached, with ClickHouse `windowFunnel`
//! semantics (DESIGN §6.5).
//!
//! `window` is whole seconds (an integer) or an `INTERVAL` without months;
//! `timestamp` is a timestamp of any unit (compared in microseconds) or an
//! integer number of seconds. Modes: `strict_order`, `strict_deduplication`,
//! `strict_increase`, `strict_once`.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, UInt8Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, FieldRef, Int64Type, TimeUnit};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, GroupsAccumulator, Signature, Volatility};
use datafusion::physical_expr::expressions::Literal;

use crate::funnel::{MAX_STEPS, Modes, Row, clickhouse};
use crate::rows::{Fold, RowAccumulator, RowGroups, Values, state_fields};

const MICROS_PER_SECOND: i64 = 1_000_000;

/// The `window_funnel` aggregate function.
pub fn window_funnel_udaf() -> Arc<AggregateUDF> {
    Arc::new(AggregateUDF::from(WindowFunnel::default()))
}

/// `window_funnel`'s definition (see the module documentation).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct WindowFunnel {
    signature: Signature,
}

impl Default for WindowFunnel {
    fn default() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

/// Where the conditions are among the arguments, and whether modes follow.
fn layout(arg_types: &[DataType]) -> Result<(usize, bool)> {
    let with_modes = arg_types.len() > 3
        && matches!(arg_types.last(), Some(DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View));
    let conditions = arg_types.len().saturating_sub(2 + usize::from(with_modes));
    if !(1..=MAX_STEPS).contains(&conditions) {
        return plan_err!(
            "window_funnel takes (window, timestamp, cond1, …, condN [, 'modes']) with 1 to {MAX_STEPS} conditions, got {} arguments",
            arg_types.len()
        );
    }
    Ok((conditions, with_modes))
}

impl AggregateUDFImpl for WindowFunnel {
    fn name(&self) -> &str {
        "window_funnel"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let (conditions, with_modes) = layout(arg_types)?;
        let window = match &arg_types[0] {
            t if t.is_integer() => DataType::Int64,
            t @ DataType::Interval(_) => t.clone(),
            other => return plan_err!("window_funnel's window is whole seconds or an INTERVAL, not {other}"),
        };
        let timestamp = match &arg_types[1] {
            // The zone is kept: dropping it would move every instant to local time.
            DataType::Timestamp(_, zone) => DataType::Timestamp(TimeUnit::Microsecond, zone.clone()),
            DataType::Date32 | DataType::Date64 => DataType::Timestamp(TimeUnit::Microsecond, None),
            t if t.is_integer() => DataType::Int64,
            other => return plan_err!("window_funnel's timestamp is a timestamp or whole seconds, not {other}"),
        };
        let mut types = vec![window, timestamp];
        for (i, t) in arg_types[2..2 + conditions].iter().enumerate() {
            if !matches!(t, DataType::Boolean | DataType::Null) {
                return plan_err!("window_funnel's condition {} is {t}, not a boolean", i + 1);
            }
            types.push(DataType::Boolean);
        }
        if with_modes {
            types.push(DataType::Utf8);
        }
        Ok(types)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::UInt8)
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(state_fields(args.name))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(RowAccumulator::new(Arc::new(Funnel::from_args(&args)?))))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(RowGroups::new(Arc::new(Funnel::from_args(&args)?))))
    }

    fn default_value(&self, _data_type: &DataType) -> Result<ScalarValue> {
        Ok(ScalarValue::UInt8(Some(0)))
    }
}

/// One call's constants.
#[derive(Debug)]
struct Funnel {
    window: i64,
    steps: usize,
    modes: Modes,
}

fn literal(args: &AccumulatorArgs, index: usize, what: &str) -> Result<ScalarValue> {
    match args.exprs.get(index).and_then(|e| e.downcast_ref::<Literal>()) {
        Some(literal) => Ok(literal.value().clone()),
        None => plan_err!("window_funnel's {what} must be a constant"),
    }
}

/// A window as microseconds.
fn window_micros(window: &ScalarValue) -> Result<i64> {
    let micros = match window {
        ScalarValue::Int64(Some(seconds)) => seconds.checked_mul(MICROS_PER_SECOND),
        ScalarValue::IntervalDayTime(Some(v)) => {
            i64::from(v.days).checked_mul(86_400_000_000).and_then(|d| d.checked_add(i64::from(v.milliseconds) * 1_000))
        }
        ScalarValue::IntervalMonthDayNano(Some(v)) if v.months == 0 => {
            i64::from(v.days).checked_mul(86_400_000_000).and_then(|d| d.checked_add(v.nanoseconds / 1_000))
        }
        ScalarValue::IntervalMonthDayNano(Some(_)) | ScalarValue::IntervalYearMonth(Some(_)) => {
            return plan_err!("window_funnel's window cannot be in months or years (their length varies): use days");
        }
        other => return plan_err!("window_funnel's window must be a non-null constant, got {other}"),
    };
    match micros {
        Some(m) if m >= 0 => Ok(m),
        _ => plan_err!("window_funnel's window must be zero or positive and at most i64 microseconds"),
    }
}

impl Funnel {
    fn from_args(args: &AccumulatorArgs) -> Result<Self> {
        let types: Vec<DataType> = args.expr_fields.iter().map(|f| f.data_type().clone()).collect();
        let (steps, with_modes) = layout(&types)?;
        let window = window_micros(&literal(args, 0, "window")?)?;
        let modes = if with_modes {
            match literal(args, types.len() - 1, "modes")? {
                ScalarValue::Utf8(Some(text))
                | ScalarValue::LargeUtf8(Some(text))
                | ScalarValue::Utf8View(Some(text)) => {
                    Modes::parse(&text).map_err(datafusion::error::DataFusionError::Plan)?
                }
                other => return plan_err!("window_funnel's modes must be a string constant, got {other}"),
            }
        } else {
            Modes::default()
        };
        Ok(Self { window, steps, modes })
    }
}

/// A timestamp column as microseconds (integers are seconds).
pub(crate) fn micros(column: &ArrayRef) -> Result<ArrayRef> {
    match column.data_type() {
        DataType::Timestamp(_, zone) => {
            let as_micros = cast(column, &DataType::Timestamp(TimeUnit::Microsecond, zone.clone()))?;
            Ok(cast(&as_micros, &DataType::Int64)?)
        }
        DataType::Date32 | DataType::Date64 => {
            let as_micros = cast(column, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
            Ok(cast(&as_micros, &DataType::Int64)?)
        }
        t if t.is_integer() => {
            let seconds = cast(column, &DataType::Int64)?;
            let seconds = seconds.as_primitive::<Int64Type>();
            Ok(Arc::new(seconds.unary::<_, Int64Type>(|s| s.saturating_mul(MICROS_PER_SECOND))))
        }
        other => exec_err!("window_funnel's timestamp is {other}"),
    }
}

impl Fold for Funnel {
    fn decode(&self, args: &[ArrayRef], _values: &mut Values) -> Result<Vec<Option<Row>>> {
        let at = micros(&args[1])?;
        let at = at.as_primitive::<Int64Type>();
        let conditions: Vec<_> = args[2..2 + self.steps].iter().map(|c| c.as_boolean()).collect();
        let rows = (0..at.len())
            .map(|i| {
                if at.is_null(i) {
                    return None;
                }
                let steps = conditions
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.is_valid(i) && c.value(i))
                    .fold(0u32, |mask, (step, _)| mask | (1 << step));
                (steps != 0 || self.modes.strict_order).then_some(Row { at: at.value(i), steps, excluded: 0, value: 0 })
            })
            .collect();
        Ok(rows)
    }

    fn finish(&self, groups: Vec<Vec<Row>>, _values: &Values) -> Result<ArrayRef> {
        let mut levels = Vec::with_capacity(groups.len());
        for rows in &groups {
            match clickhouse::window_funnel(rows, self.steps, self.window, self.modes) {
                Ok(level) => levels.push(level),
                Err(clickhouse::TooManyChains) => {
                    return exec_err!(
                        "window_funnel with strict_once needed more than {} partial chains for one group; filter the rows or use another mode",
                        clickhouse::MAX_PARTIAL_CHAINS
                    );
                }
            }
        }
        Ok(Arc::new(UInt8Array::from(levels)))
    }
}
