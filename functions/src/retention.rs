//! `retention(cond1, …, condN)`: a list of N booleans `[c1, c1 ∧ c2, …,
//! c1 ∧ cN]`, where `ci` is whether any row of the group met condition `i`
//! (ClickHouse `retention`). The partial state is one `u32` of conditions
//! met, merged with `|`: the answer cannot depend on how rows were split.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, BooleanBuilder, ListBuilder, UInt32Array};
use arrow::datatypes::{DataType, Field, FieldRef, UInt32Type};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};

use crate::funnel::MAX_STEPS;

/// The `retention` aggregate function.
pub fn retention_udaf() -> Arc<AggregateUDF> {
    Arc::new(AggregateUDF::from(Retention::default()))
}

/// `retention`'s definition (see the module documentation).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Retention {
    signature: Signature,
}

impl Default for Retention {
    fn default() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

fn list_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Boolean, true)))
}

impl AggregateUDFImpl for Retention {
    fn name(&self) -> &str {
        "retention"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if !(1..=MAX_STEPS).contains(&arg_types.len()) {
            return plan_err!("retention takes 1 to {MAX_STEPS} conditions, got {}", arg_types.len());
        }
        arg_types
            .iter()
            .enumerate()
            .map(|(i, t)| match t {
                DataType::Boolean | DataType::Null => Ok(DataType::Boolean),
                other => plan_err!("retention's condition {} is {other}, not a boolean", i + 1),
            })
            .collect()
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(list_type())
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(format_state_name(args.name, "met"), DataType::UInt32, false))])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(Single { met: Met { conditions: args.exprs.len(), masks: vec![0] } }))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(Met { conditions: args.exprs.len(), masks: Vec::new() }))
    }
}

/// The conditions met, per group.
#[derive(Debug)]
struct Met {
    conditions: usize,
    masks: Vec<u32>,
}

impl Met {
    fn add(&mut self, values: &[ArrayRef], group_of: impl Fn(usize) -> usize, filter: Option<&BooleanArray>) {
        for (step, column) in values.iter().enumerate().take(self.conditions) {
            let column = column.as_boolean();
            for i in 0..column.len() {
                let passes = filter.is_none_or(|f| f.is_valid(i) && f.value(i));
                if passes && column.is_valid(i) && column.value(i) {
                    self.masks[group_of(i)] |= 1 << step;
                }
            }
        }
    }

    fn answer(&self, masks: &[u32]) -> ArrayRef {
        let mut lists = ListBuilder::new(BooleanBuilder::with_capacity(masks.len() * self.conditions));
        for &mask in masks {
            let first = mask & 1 != 0;
            for step in 0..self.conditions {
                lists.values().append_value(first && mask & (1 << step) != 0);
            }
            lists.append(true);
        }
        Arc::new(lists.finish())
    }
}

impl GroupsAccumulator for Met {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.masks.resize(total_num_groups, 0);
        self.add(values, |i| group_indices[i], opt_filter);
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let masks = emit_to.take_needed(&mut self.masks);
        Ok(self.answer(&masks))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let masks = emit_to.take_needed(&mut self.masks);
        Ok(vec![Arc::new(UInt32Array::from(masks))])
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        self.masks.resize(total_num_groups, 0);
        let met = values[0].as_primitive::<UInt32Type>();
        for (i, &group) in group_indices.iter().enumerate() {
            if met.is_valid(i) {
                self.masks[group] |= met.value(i);
            }
        }
        Ok(())
    }

    /// Each input row as its own partial state.
    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        let rows = values.first().map_or(0, |v| v.len());
        let mut single = Self { conditions: self.conditions, masks: vec![0; rows] };
        single.add(values, |i| i, opt_filter);
        Ok(vec![Arc::new(UInt32Array::from(single.masks))])
    }

    fn size(&self) -> usize {
        self.masks.capacity() * size_of::<u32>()
    }
}

/// One group: `retention` without `GROUP BY`, and in windows.
#[derive(Debug)]
struct Single {
    met: Met,
}

impl Accumulator for Single {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.met.add(values, |_| 0, None);
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        ScalarValue::try_from_array(&self.met.answer(&self.met.masks), 0)
    }

    fn size(&self) -> usize {
        size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::UInt32(Some(self.met.masks[0]))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.met.merge_batch(states, &vec![0; states[0].len()], 1)
    }
}
