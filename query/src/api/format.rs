//! Answer formats, chosen by `Accept`: JSON (default), CSV, Arrow IPC stream.
//!
//! JSON is `{"columns":[{"name","type"}…],"rows":[{column: value}…],"truncated":bool}`
//! (each row's keys in column order)
//! with typed values: numbers as numbers (NaN and ±∞ as `null`), timestamps
//! and dates as ISO-8601 text, decimals as exact text, binary as base64,
//! lists and structs as arrays and objects. CSV and Arrow carry the
//! `truncated` flag in the `Contrail-Truncated` header.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use base64::Engine as _;
use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};
use serde_json::{Map, Number, Value, json};

use crate::engine::QueryResult;
use crate::error::{Error, Result};

/// Header carrying the truncation flag for CSV and Arrow answers.
pub const TRUNCATED_HEADER: &str = "contrail-truncated";
/// The Arrow IPC stream media type.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// An answer format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json`.
    Json,
    /// `text/csv` with a header row.
    Csv,
    /// `application/vnd.apache.arrow.stream`.
    Arrow,
}

impl Format {
    /// The format for an `Accept` header: the first acceptable media range
    /// in order of preference (`q`), JSON for none or `*/*`.
    pub fn negotiate(accept: Option<&str>) -> Result<Self> {
        let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else { return Ok(Self::Json) };
        let mut ranges: Vec<(f32, usize, &str)> = accept
            .split(',')
            .enumerate()
            .filter_map(|(i, part)| {
                let mut pieces = part.split(';');
                let media = pieces.next()?.trim();
                let q = pieces
                    .filter_map(|p| p.trim().strip_prefix("q="))
                    .find_map(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                (q > 0.0).then_some((q, i, media))
            })
            .collect();
        ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, _, media) in ranges {
            let format = match media.to_ascii_lowercase().as_str() {
                "application/json" | "application/*" | "*/*" => Self::Json,
                "text/csv" | "text/*" => Self::Csv,
                ARROW_STREAM => Self::Arrow,
                _ => continue,
            };
            return Ok(format);
        }
        Err(Error::NotAcceptable(format!(
            "cannot answer as {accept:?}; accepted: application/json, text/csv, {ARROW_STREAM}"
        )))
    }

    /// The `Content-Type` of an answer in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Csv => "text/csv; charset=utf-8",
            Self::Arrow => ARROW_STREAM,
        }
    }

    /// Encodes a result.
    pub fn encode(self, result: &QueryResult) -> Result<Vec<u8>> {
        match self {
            Self::Json => Ok(serde_json::to_vec(&JsonAnswer::new(result)?).expect("JSON values serialise")),
            Self::Csv => {
                let mut out = Vec::new();
                let mut writer = arrow::csv::WriterBuilder::new().with_header(true).build(&mut out);
                if result.batches.is_empty() {
                    writer.write(&RecordBatch::new_empty(result.schema.clone()))?;
                }
                for batch in &result.batches {
                    writer.write(batch)?;
                }
                drop(writer);
                Ok(out)
            }
            Self::Arrow => {
                let mut out = Vec::new();
                let mut writer = arrow::ipc::writer::StreamWriter::try_new(&mut out, &result.schema)?;
                for batch in &result.batches {
                    writer.write(batch)?;
                }
                writer.finish()?;
                drop(writer);
                Ok(out)
            }
        }
    }
}

/// The JSON answer, rows keyed by column name in column order.
struct JsonAnswer {
    columns: Vec<Value>,
    names: Vec<String>,
    rows: Vec<Vec<Value>>,
    truncated: bool,
}

impl JsonAnswer {
    fn new(result: &QueryResult) -> Result<Self> {
        let fields = result.schema.fields();
        let columns = fields.iter().map(|f| json!({"name": f.name(), "type": type_name(f.data_type())})).collect();
        let names = fields.iter().map(|f| f.name().clone()).collect();
        let mut rows = Vec::new();
        for batch in &result.batches {
            let columns: Vec<ArrayRef> = batch.columns().iter().map(plain).collect::<Result<_>>()?;
            for row in 0..batch.num_rows() {
                rows.push(columns.iter().map(|c| value(c, row)).collect::<Result<_>>()?);
            }
        }
        Ok(Self { columns, names, rows, truncated: result.truncated })
    }
}

impl Serialize for JsonAnswer {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        struct Row<'a>(&'a [String], &'a [Value]);
        impl Serialize for Row<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for (name, value) in self.0.iter().zip(self.1) {
                    map.serialize_entry(name, value)?;
                }
                map.end()
            }
        }
        let mut answer = serializer.serialize_struct("Answer", 3)?;
        answer.serialize_field("columns", &self.columns)?;
        let rows: Vec<Row<'_>> = self.rows.iter().map(|r| Row(&self.names, r)).collect();
        answer.serialize_field("rows", &rows)?;
        answer.serialize_field("truncated", &self.truncated)?;
        answer.end()
    }
}

/// Rows as JSON objects keyed by column name.
pub fn rows_json(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<Value>> {
    let names: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
    let mut rows = Vec::new();
    for batch in batches {
        let columns: Vec<ArrayRef> = batch.columns().iter().map(plain).collect::<Result<_>>()?;
        for row in 0..batch.num_rows() {
            let mut object = Map::with_capacity(names.len());
            for (name, column) in names.iter().zip(&columns) {
                object.insert((*name).clone(), value(column, row)?);
            }
            rows.push(Value::Object(object));
        }
    }
    Ok(rows)
}

/// A readable type name (Arrow's, e.g. `Int64`, `Utf8`, `Timestamp(µs, "UTC")`).
fn type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Dictionary(_, value) => type_name(value),
        // View types are an encoding, not a type users should care about.
        DataType::Utf8View => "Utf8".into(),
        DataType::BinaryView => "Binary".into(),
        other => other.to_string(),
    }
}

/// Dictionaries decoded to their values.
fn plain(column: &ArrayRef) -> Result<ArrayRef> {
    match column.data_type() {
        DataType::Dictionary(_, value) => Ok(arrow::compute::cast(column, value)?),
        _ => Ok(column.clone()),
    }
}

fn float(v: f64) -> Value {
    Number::from_f64(v).map_or(Value::Null, Value::Number)
}

/// One cell as JSON.
fn value(column: &ArrayRef, row: usize) -> Result<Value> {
    use arrow::datatypes as t;
    if column.is_null(row) {
        return Ok(Value::Null);
    }
    Ok(match column.data_type() {
        DataType::Null => Value::Null,
        DataType::Boolean => Value::Bool(column.as_boolean().value(row)),
        DataType::Int8 => column.as_primitive::<t::Int8Type>().value(row).into(),
        DataType::Int16 => column.as_primitive::<t::Int16Type>().value(row).into(),
        DataType::Int32 => column.as_primitive::<t::Int32Type>().value(row).into(),
        DataType::Int64 => column.as_primitive::<t::Int64Type>().value(row).into(),
        DataType::UInt8 => column.as_primitive::<t::UInt8Type>().value(row).into(),
        DataType::UInt16 => column.as_primitive::<t::UInt16Type>().value(row).into(),
        DataType::UInt32 => column.as_primitive::<t::UInt32Type>().value(row).into(),
        DataType::UInt64 => column.as_primitive::<t::UInt64Type>().value(row).into(),
        DataType::Float16 => float(column.as_primitive::<t::Float16Type>().value(row).to_f64()),
        DataType::Float32 => float(column.as_primitive::<t::Float32Type>().value(row).into()),
        DataType::Float64 => float(column.as_primitive::<t::Float64Type>().value(row)),
        DataType::Utf8 => Value::String(column.as_string::<i32>().value(row).to_owned()),
        DataType::LargeUtf8 => Value::String(column.as_string::<i64>().value(row).to_owned()),
        DataType::Utf8View => Value::String(column.as_string_view().value(row).to_owned()),
        DataType::Binary => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(column.as_binary::<i32>().value(row)))
        }
        DataType::LargeBinary => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(column.as_binary::<i64>().value(row)))
        }
        DataType::BinaryView => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(column.as_binary_view().value(row)))
        }
        DataType::List(_) => list(&column.as_list::<i32>().value(row))?,
        DataType::LargeList(_) => list(&column.as_list::<i64>().value(row))?,
        DataType::FixedSizeList(..) => list(&column.as_fixed_size_list().value(row))?,
        DataType::Struct(fields) => {
            let s = column.as_struct();
            let mut object = Map::new();
            for (field, child) in fields.iter().zip(s.columns()) {
                object.insert(field.name().clone(), value(&plain(child)?, row)?);
            }
            Value::Object(object)
        }
        // Timestamps, dates, times, durations, intervals, decimals and
        // anything else: Arrow's ISO-8601 / exact text rendering.
        _ => {
            let options = FormatOptions::default();
            let formatter = ArrayFormatter::try_new(column.as_ref(), &options)?;
            Value::String(formatter.value(row).to_string())
        }
    })
}

fn list(values: &ArrayRef) -> Result<Value> {
    let values = plain(values)?;
    (0..values.len()).map(|i| value(&values, i)).collect::<Result<Vec<_>>>().map(Value::Array)
}
