//! The accumulator machinery shared by the funnel aggregates: each group (a
//! person, under `GROUP BY person`) collects its [`Row`]s; the partial state
//! is those rows as four list columns, so merging partial states is
//! concatenation and the answer never depends on how a person's rows were
//! split across partitions, files or raw batches. The order of rows is
//! irrelevant: every funnel sorts them when it evaluates.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, ListArray, StringArray, UInt32Array};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, FieldRef, Int64Type, UInt32Type};
use datafusion::common::{Result, ScalarValue, internal_err};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{Accumulator, EmitTo, GroupsAccumulator};

use crate::funnel::Row;

/// Carried values (breakdown values), interned per accumulator: a row holds
/// a `u32`, not a string. Id 0 is "no value".
#[derive(Debug, Default)]
pub(crate) struct Values {
    ids: HashMap<Arc<str>, u32>,
    texts: Vec<Arc<str>>,
    bytes: usize,
}

impl Values {
    pub(crate) fn intern(&mut self, text: Option<&str>) -> u32 {
        let Some(text) = text else { return 0 };
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        let shared: Arc<str> = text.into();
        self.texts.push(shared.clone());
        self.bytes += text.len() + 48;
        let id = self.texts.len() as u32;
        self.ids.insert(shared, id);
        id
    }

    pub(crate) fn text(&self, id: u32) -> Option<&str> {
        id.checked_sub(1).and_then(|i| self.texts.get(i as usize)).map(|t| &**t)
    }
}

/// What one aggregate does with a group's rows.
pub(crate) trait Fold: Debug + Send + Sync + 'static {
    /// One row per input row (`None`: the row is not kept), from the call's arguments.
    fn decode(&self, args: &[ArrayRef], values: &mut Values) -> Result<Vec<Option<Row>>>;
    /// The answer of each group, in order.
    fn finish(&self, groups: Vec<Vec<Row>>, values: &Values) -> Result<ArrayRef>;
}

/// The partial-state fields of a row-collecting aggregate called `name`.
pub(crate) fn state_fields(name: &str) -> Vec<FieldRef> {
    let list = |part: &str, item: DataType| {
        Arc::new(Field::new_list(format_state_name(name, part), Field::new_list_field(item, true), true))
    };
    vec![
        list("at", DataType::Int64),
        list("steps", DataType::UInt32),
        list("excluded", DataType::UInt32),
        list("value", DataType::Utf8),
    ]
}

/// Rows per group, for `GROUP BY` (the fast path) and, with one group, for
/// everything else.
#[derive(Debug)]
pub(crate) struct RowGroups<F: Fold> {
    fold: Arc<F>,
    groups: Vec<Vec<Row>>,
    values: Values,
    rows: usize,
}

impl<F: Fold> RowGroups<F> {
    pub(crate) fn new(fold: Arc<F>) -> Self {
        Self { fold, groups: Vec::new(), values: Values::default(), rows: 0 }
    }

    fn push(&mut self, group: usize, row: Row) {
        self.groups[group].push(row);
        self.rows += 1;
    }

    fn take(&mut self, emit_to: EmitTo) -> Vec<Vec<Row>> {
        let taken = emit_to.take_needed(&mut self.groups);
        self.rows -= taken.iter().map(Vec::len).sum::<usize>();
        taken
    }

    fn state_of(&self, groups: &[Vec<Row>]) -> Vec<ArrayRef> {
        let offsets = OffsetBuffer::from_lengths(groups.iter().map(Vec::len));
        let rows = groups.iter().flatten();
        let at: Int64Array = rows.clone().map(|r| Some(r.at)).collect();
        let steps: UInt32Array = rows.clone().map(|r| Some(r.steps)).collect();
        let excluded: UInt32Array = rows.clone().map(|r| Some(r.excluded)).collect();
        let value: StringArray = rows.map(|r| self.values.text(r.value)).collect();
        let list = |item: DataType, values: ArrayRef| -> ArrayRef {
            Arc::new(ListArray::new(Arc::new(Field::new_list_field(item, true)), offsets.clone(), values, None))
        };
        vec![
            list(DataType::Int64, Arc::new(at)),
            list(DataType::UInt32, Arc::new(steps)),
            list(DataType::UInt32, Arc::new(excluded)),
            list(DataType::Utf8, Arc::new(value)),
        ]
    }

    fn merge(&mut self, state: &[ArrayRef], group_of: impl Fn(usize) -> usize) -> Result<()> {
        let [at, steps, excluded, value] = state else {
            return internal_err!("a funnel state has four columns, got {}", state.len());
        };
        let (at, steps, excluded, value) =
            (at.as_list::<i32>(), steps.as_list::<i32>(), excluded.as_list::<i32>(), value.as_list::<i32>());
        let at_values = at.values().as_primitive::<Int64Type>();
        let steps_values = steps.values().as_primitive::<UInt32Type>();
        let excluded_values = excluded.values().as_primitive::<UInt32Type>();
        let value_values = value.values().as_string::<i32>();
        for i in 0..at.len() {
            if at.is_null(i) {
                continue;
            }
            let group = group_of(i);
            let (start, end) = (at.value_offsets()[i] as usize, at.value_offsets()[i + 1] as usize);
            // All four lists share offsets: they were written together by `state_of`.
            let base = steps.value_offsets()[i] as usize;
            for (k, j) in (start..end).enumerate() {
                let value = self.values.intern(value_values.is_valid(base + k).then(|| value_values.value(base + k)));
                let row = Row {
                    at: at_values.value(j),
                    steps: steps_values.value(base + k),
                    excluded: excluded_values.value(base + k),
                    value,
                };
                self.push(group, row);
            }
        }
        Ok(())
    }
}

impl<F: Fold> GroupsAccumulator for RowGroups<F> {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups.resize_with(total_num_groups, Vec::new);
        let rows = self.fold.decode(values, &mut self.values)?;
        for (i, (&group, row)) in group_indices.iter().zip(rows).enumerate() {
            let passes = opt_filter.is_none_or(|f| f.is_valid(i) && f.value(i));
            if let (true, Some(row)) = (passes, row) {
                self.push(group, row);
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let groups = self.take(emit_to);
        self.fold.finish(groups, &self.values)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let groups = self.take(emit_to);
        Ok(self.state_of(&groups))
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        self.groups.resize_with(total_num_groups, Vec::new);
        self.merge(values, |i| group_indices[i])
    }

    /// Each input row as its own partial state (for DataFusion's
    /// skip-partial-aggregation path, taken when grouping barely reduces rows).
    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        let mut single = Self::new(self.fold.clone());
        let rows = single.fold.decode(values, &mut single.values)?;
        single.groups = rows
            .into_iter()
            .enumerate()
            .map(|(i, row)| {
                let passes = opt_filter.is_none_or(|f| f.is_valid(i) && f.value(i));
                row.filter(|_| passes).into_iter().collect()
            })
            .collect();
        Ok(single.state_of(&single.groups))
    }

    fn size(&self) -> usize {
        self.groups.capacity() * size_of::<Vec<Row>>() + self.rows * size_of::<Row>() + self.values.bytes
    }
}

/// The same, for one group: aggregates without `GROUP BY`, and windows.
#[derive(Debug)]
pub(crate) struct RowAccumulator<F: Fold>(RowGroups<F>);

impl<F: Fold> RowAccumulator<F> {
    pub(crate) fn new(fold: Arc<F>) -> Self {
        let mut groups = RowGroups::new(fold);
        groups.groups.push(Vec::new());
        Self(groups)
    }
}

impl<F: Fold> Accumulator for RowAccumulator<F> {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let n = values.first().map_or(0, |v| v.len());
        self.0.update_batch(values, &vec![0; n], None, 1)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let rows = self.0.groups[0].clone();
        let answer = self.0.fold.finish(vec![rows], &self.0.values)?;
        ScalarValue::try_from_array(&answer, 0)
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.0.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let state = self.0.state_of(&self.0.groups);
        state.iter().map(|column| ScalarValue::try_from_array(column, 0)).collect()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.0.merge(states, |_| 0)
    }
}
