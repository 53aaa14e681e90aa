//! `funnel_chain(timestamp, steps, excluded, value)`: the aggregate behind
//! `POST /v1/funnels`, built per request from a [`Spec`] (window, order,
//! exclusions) rather than from SQL, since its constants are the request's.
//!
//! `steps` and `excluded` are the `u32` masks of the step and exclusion
//! conditions each event meets (computed by the plan); `value` is the
//! breakdown value of the event (or NULL). The answer per group is a struct:
//! `level` (furthest step), `times` (microseconds of each step of the
//! counted chain), `first` and `last` (the breakdown values on the counted
//! chain's first and last step events).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, ListArray, StringArray, StructArray, UInt8Array};
use arrow::buffer::OffsetBuffer;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Int64Type, UInt32Type};
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, GroupsAccumulator, Signature, Volatility};

use crate::funnel::Row;
use crate::funnel::chain::Spec;
use crate::rows::{Fold, RowAccumulator, RowGroups, Values, state_fields};
use crate::window_funnel::micros;

/// The aggregate for one funnel request.
pub fn funnel_chain_udaf(spec: Spec) -> AggregateUDF {
    AggregateUDF::from(FunnelChain { spec: Arc::new(spec), signature: Signature::user_defined(Volatility::Immutable) })
}

/// The answer's fields.
pub fn chain_fields() -> Fields {
    Fields::from(vec![
        Field::new("level", DataType::UInt8, false),
        Field::new_list("times", Field::new_list_field(DataType::Int64, true), false),
        Field::new("first", DataType::Utf8, true),
        Field::new("last", DataType::Utf8, true),
    ])
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct FunnelChain {
    spec: Arc<Spec>,
    signature: Signature,
}

impl AggregateUDFImpl for FunnelChain {
    fn name(&self) -> &str {
        "funnel_chain"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [DataType::Timestamp(unit, tz), _, _, _] => {
                Ok(vec![DataType::Timestamp(*unit, tz.clone()), DataType::UInt32, DataType::UInt32, DataType::Utf8])
            }
            other => plan_err!("funnel_chain takes (timestamp, steps, excluded, value), got {other:?}"),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(chain_fields()))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(state_fields(args.name))
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(RowAccumulator::new(Arc::new(Chains(self.spec.clone())))))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(RowGroups::new(Arc::new(Chains(self.spec.clone())))))
    }
}

#[derive(Debug)]
struct Chains(Arc<Spec>);

impl Fold for Chains {
    fn decode(&self, args: &[ArrayRef], values: &mut Values) -> Result<Vec<Option<Row>>> {
        let at = micros(&args[0])?;
        let at = at.as_primitive::<Int64Type>();
        let steps = cast(&args[1], &DataType::UInt32)?;
        let steps = steps.as_primitive::<UInt32Type>();
        let excluded = cast(&args[2], &DataType::UInt32)?;
        let excluded = excluded.as_primitive::<UInt32Type>();
        let value = cast(&args[3], &DataType::Utf8)?;
        let value = value.as_string::<i32>();
        Ok((0..at.len())
            .map(|i| {
                if at.is_null(i) {
                    return None;
                }
                let steps = if steps.is_valid(i) { steps.value(i) } else { 0 };
                let excluded = if excluded.is_valid(i) { excluded.value(i) } else { 0 };
                let value = values.intern(value.is_valid(i).then(|| value.value(i)));
                Some(Row { at: at.value(i), steps, excluded, value })
            })
            .collect())
    }

    fn finish(&self, groups: Vec<Vec<Row>>, values: &Values) -> Result<ArrayRef> {
        let chains: Vec<_> = groups.iter().map(|rows| (self.0.evaluate(rows), rows)).collect();
        let level: UInt8Array = chains.iter().map(|(c, _)| Some(c.level)).collect();
        let offsets = OffsetBuffer::from_lengths(chains.iter().map(|(c, _)| c.times.len()));
        let times: Int64Array = chains.iter().flat_map(|(c, _)| c.times.iter().map(|&t| Some(t))).collect();
        let times =
            ListArray::new(Arc::new(Field::new_list_field(DataType::Int64, true)), offsets, Arc::new(times), None);
        let value_at = |row: Option<usize>, rows: &[Row]| row.and_then(|r| values.text(rows[r].value));
        let first: StringArray = chains.iter().map(|(c, rows)| value_at(c.first, rows)).collect();
        let last: StringArray = chains.iter().map(|(c, rows)| value_at(c.last, rows)).collect();
        let columns: Vec<ArrayRef> = vec![Arc::new(level), Arc::new(times), Arc::new(first), Arc::new(last)];
        Ok(Arc::new(StructArray::try_new(chain_fields(), columns, None)?))
    }
}
