//! Raw batches as Arrow IPC files: events (or quarantined messages) to bytes and back.
//!
//! The file format (not the stream format) because R2 objects are read whole
//! or by range, and the footer lets a reader find record batches without
//! scanning. One record batch per file: flushes are bounded in size anyway.

use std::io::Cursor;
use std::sync::Arc;

use arrow_array::builder::StringDictionaryBuilder;
use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, TimestampMillisecondType, UInt32Type};
use arrow_array::{Array, ArrayAccessor, ArrayRef, RecordBatch, StringArray, TimestampMillisecondArray, UInt32Array};
use arrow_ipc::reader::FileReader;
use arrow_ipc::writer::FileWriter;
use arrow_schema::SchemaRef;
use sha2::{Digest, Sha256};

use crate::error::EncodeError;
use crate::event::{Event, MessageType, RejectedMessage};
use crate::schema::{NULLABLE_TEXT_COLUMNS, SCHEMA_VERSION, SCHEMA_VERSION_KEY, UTC, event_schema, rejected_schema};

/// Builds the record batch of `events` in the event schema.
pub fn events_to_batch(events: &[Event]) -> Result<RecordBatch, EncodeError> {
    let text = |f: fn(&Event) -> Option<&str>| -> ArrayRef { Arc::new(events.iter().map(f).collect::<StringArray>()) };
    let dict = |f: fn(&Event) -> &str| -> ArrayRef {
        let mut builder = StringDictionaryBuilder::<Int32Type>::new();
        for event in events {
            builder.append_value(f(event));
        }
        Arc::new(builder.finish())
    };
    let time = |f: fn(&Event) -> i64| -> ArrayRef {
        Arc::new(TimestampMillisecondArray::from_iter_values(events.iter().map(f)).with_timezone(UTC))
    };
    let columns: Vec<ArrayRef> = vec![
        text(|e| Some(&e.event_id)),
        text(|e| Some(&e.project_id)),
        dict(|e| e.kind.as_str()),
        dict(|e| &e.event),
        text(|e| e.user_id.as_deref()),
        text(|e| e.anonymous_id.as_deref()),
        text(|e| Some(&e.distinct_id)),
        text(|e| e.session_id.as_deref()),
        text(|e| e.group_id.as_deref()),
        text(|e| e.previous_id.as_deref()),
        time(|e| e.timestamp),
        time(|e| e.received_at),
        text(|e| Some(&e.properties)),
        text(|e| e.traits.as_deref()),
        text(|e| Some(&e.context)),
        text(|e| e.url.as_deref()),
        text(|e| e.referrer.as_deref()),
        text(|e| e.user_agent.as_deref()),
        text(|e| e.browser.as_deref()),
        text(|e| e.os.as_deref()),
        text(|e| e.device.as_deref()),
        text(|e| e.country.as_deref()),
        text(|e| e.region.as_deref()),
        text(|e| e.city.as_deref()),
        text(|e| e.colo.as_deref()),
        text(|e| e.ip_hash.as_deref()),
    ];
    Ok(RecordBatch::try_new(event_schema(), columns)?)
}

/// Builds the record batch of quarantined messages.
pub fn rejected_to_batch(rejected: &[RejectedMessage]) -> Result<RecordBatch, EncodeError> {
    let mut code = StringDictionaryBuilder::<Int32Type>::new();
    for r in rejected {
        code.append_value(&r.code);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(rejected.iter().map(|r| Some(r.project_id.as_str())).collect::<StringArray>()),
        Arc::new(
            TimestampMillisecondArray::from_iter_values(rejected.iter().map(|r| r.received_at)).with_timezone(UTC),
        ),
        Arc::new(UInt32Array::from_iter_values(rejected.iter().map(|r| r.index))),
        Arc::new(code.finish()),
        Arc::new(rejected.iter().map(|r| Some(r.error.as_str())).collect::<StringArray>()),
        Arc::new(rejected.iter().map(|r| Some(r.message.as_str())).collect::<StringArray>()),
    ];
    Ok(RecordBatch::try_new(rejected_schema(), columns)?)
}

/// Footer metadata key of a flushed raw batch: the SHA-256 (hex) of the
/// buffered bytes it was encoded from ([`SourceDigest`]).
pub const SOURCE_DIGEST_KEY: &str = "contrail.source_sha256";

/// The digest a flush writes into its object's footer: SHA-256 over the
/// buffered rows or chunks it encodes, each as stored (length-prefixed). A
/// flusher that finds its create-only key taken compares the existing
/// object's digest with its own: equal means the object is its own earlier
/// attempt (a crash after the put, a retried put that had succeeded), from
/// the very same buffered bytes, whichever build encoded it; anything else is
/// a collision, never papered over. The Worker and `contrail serve` decide
/// it this one way, and reading a footer needs no Arrow array decoder in the
/// Worker's module.
#[derive(Debug, Clone, Default)]
pub struct SourceDigest(Sha256);

impl SourceDigest {
    /// Adds one buffered row or chunk, as stored.
    pub fn add(&mut self, part: &[u8]) {
        self.0.update((part.len() as u64).to_be_bytes());
        self.0.update(part);
    }

    /// The hex digest.
    pub fn finish(self) -> String {
        self.0.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Serialises a batch as an Arrow IPC file, with `source` (a
/// [`SourceDigest`]) in its footer when given.
pub fn write_ipc_file(batch: &RecordBatch, source: Option<&str>) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    let mut writer = FileWriter::try_new(&mut out, &batch.schema())?;
    if let Some(source) = source {
        writer.write_metadata(SOURCE_DIGEST_KEY, source);
    }
    writer.write(batch)?;
    writer.finish()?;
    drop(writer);
    Ok(out)
}

/// Events to Arrow IPC file bytes.
pub fn encode_events(events: &[Event]) -> Result<Vec<u8>, EncodeError> {
    write_ipc_file(&events_to_batch(events)?, None)
}

/// Events to the Arrow IPC file a flush writes, its source digest in the footer.
pub fn encode_flushed_events(events: &[Event], source: &str) -> Result<Vec<u8>, EncodeError> {
    write_ipc_file(&events_to_batch(events)?, Some(source))
}

/// Quarantined messages to Arrow IPC file bytes.
pub fn encode_rejected(rejected: &[RejectedMessage]) -> Result<Vec<u8>, EncodeError> {
    write_ipc_file(&rejected_to_batch(rejected)?, None)
}

/// Quarantined messages to the Arrow IPC file a flush writes, its source
/// digest in the footer.
pub fn encode_flushed_rejected(rejected: &[RejectedMessage], source: &str) -> Result<Vec<u8>, EncodeError> {
    write_ipc_file(&rejected_to_batch(rejected)?, Some(source))
}

/// How much of an object's tail a flusher reads for its footer: a raw
/// batch's footer (schema, one block, the digest) is a few kilobytes.
pub const FOOTER_READ_BYTES: u64 = 64 << 10;

/// The source digest in an Arrow IPC file's footer, read from the footer
/// alone, so `bytes` may be just the file's tail (`None`: not an IPC file's
/// end, a tail shorter than the footer, or written without a digest).
pub fn source_digest(bytes: &[u8]) -> Option<String> {
    // An IPC file ends with: footer, footer length (i32 LE), "ARROW1".
    let end = bytes.len().checked_sub(10)?;
    if &bytes[end + 4..] != b"ARROW1" {
        return None;
    }
    let length = usize::try_from(i32::from_le_bytes(bytes[end..end + 4].try_into().ok()?)).ok()?;
    let footer = arrow_ipc::root_as_footer(bytes.get(end.checked_sub(length)?..end)?).ok()?;
    let entries = footer.custom_metadata()?;
    entries.iter().find(|kv| kv.key() == Some(SOURCE_DIGEST_KEY)).and_then(|kv| kv.value()).map(str::to_owned)
}

/// Reads the record batches of an Arrow IPC file, checking the schema version.
pub fn read_ipc_file(bytes: &[u8]) -> Result<(SchemaRef, Vec<RecordBatch>), EncodeError> {
    let reader = FileReader::try_new(Cursor::new(bytes), None)?;
    let schema = reader.schema();
    match schema.metadata().get(SCHEMA_VERSION_KEY) {
        Some(v) if v == SCHEMA_VERSION => {}
        other => {
            return Err(EncodeError::Schema(format!(
                "{SCHEMA_VERSION_KEY} is {other:?}; this build reads version {SCHEMA_VERSION}"
            )));
        }
    }
    let batches = reader.collect::<Result<Vec<_>, _>>()?;
    Ok((schema, batches))
}

/// Decodes events from Arrow IPC file bytes.
pub fn decode_events(bytes: &[u8]) -> Result<Vec<Event>, EncodeError> {
    let (_, batches) = read_ipc_file(bytes)?;
    let mut events = Vec::new();
    for batch in &batches {
        let col = Columns(batch);
        let (event_id, project_id, distinct_id) =
            (col.text("event_id")?, col.text("project_id")?, col.text("distinct_id")?);
        let (kind, event) = (col.dict("type")?, col.dict("event")?);
        let (timestamp, received_at) = (col.time("timestamp")?, col.time("received_at")?);
        let (properties, context) = (col.text("properties")?, col.text("context")?);
        let optional = NULLABLE_TEXT_COLUMNS.map(|name| col.text(name));
        let [
            user_id,
            anonymous_id,
            session_id,
            group_id,
            previous_id,
            traits,
            url,
            referrer,
            user_agent,
            browser,
            os,
            device,
            country,
            region,
            city,
            colo,
            ip_hash,
        ] = optional;
        let (user_id, anonymous_id, session_id, group_id, previous_id) =
            (user_id?, anonymous_id?, session_id?, group_id?, previous_id?);
        let (traits, url, referrer, user_agent, browser, os, device) =
            (traits?, url?, referrer?, user_agent?, browser?, os?, device?);
        let (country, region, city, colo, ip_hash) = (country?, region?, city?, colo?, ip_hash?);
        let opt = |a: &StringArray, i: usize| a.is_valid(i).then(|| a.value(i).to_owned());
        for i in 0..batch.num_rows() {
            let kind_text = kind.value(i);
            events.push(Event {
                event_id: event_id.value(i).to_owned(),
                project_id: project_id.value(i).to_owned(),
                kind: MessageType::parse(kind_text)
                    .ok_or_else(|| EncodeError::Schema(format!("unknown message type {kind_text:?}")))?,
                event: event.value(i).to_owned(),
                user_id: opt(user_id, i),
                anonymous_id: opt(anonymous_id, i),
                distinct_id: distinct_id.value(i).to_owned(),
                session_id: opt(session_id, i),
                group_id: opt(group_id, i),
                previous_id: opt(previous_id, i),
                timestamp: timestamp.value(i),
                received_at: received_at.value(i),
                properties: properties.value(i).to_owned(),
                traits: opt(traits, i),
                context: context.value(i).to_owned(),
                url: opt(url, i),
                referrer: opt(referrer, i),
                user_agent: opt(user_agent, i),
                browser: opt(browser, i),
                os: opt(os, i),
                device: opt(device, i),
                country: opt(country, i),
                region: opt(region, i),
                city: opt(city, i),
                colo: opt(colo, i),
                ip_hash: opt(ip_hash, i),
            });
        }
    }
    Ok(events)
}

/// Decodes quarantined messages from Arrow IPC file bytes.
pub fn decode_rejected(bytes: &[u8]) -> Result<Vec<RejectedMessage>, EncodeError> {
    let (_, batches) = read_ipc_file(bytes)?;
    let mut out = Vec::new();
    for batch in &batches {
        let col = Columns(batch);
        let (project_id, received_at, code) = (col.text("project_id")?, col.time("received_at")?, col.dict("code")?);
        let (error, message) = (col.text("error")?, col.text("message")?);
        let index = batch
            .column_by_name("index")
            .and_then(|a| a.as_primitive_opt::<UInt32Type>())
            .ok_or_else(|| EncodeError::Schema("column index is missing or not UInt32".into()))?;
        for i in 0..batch.num_rows() {
            out.push(RejectedMessage {
                project_id: project_id.value(i).to_owned(),
                received_at: received_at.value(i),
                index: index.value(i),
                code: code.value(i).to_owned(),
                error: error.value(i).to_owned(),
                message: message.value(i).to_owned(),
            });
        }
    }
    Ok(out)
}

/// Typed column access by name, with a schema error naming the column.
struct Columns<'a>(&'a RecordBatch);

/// A dictionary column whose values are strings.
type StringDict<'a> = arrow_array::TypedDictionaryArray<'a, Int32Type, StringArray>;

impl<'a> Columns<'a> {
    fn get(&self, name: &str) -> Result<&'a ArrayRef, EncodeError> {
        self.0.column_by_name(name).ok_or_else(|| EncodeError::Schema(format!("column {name} is missing")))
    }

    fn text(&self, name: &str) -> Result<&'a StringArray, EncodeError> {
        self.get(name)?.as_string_opt::<i32>().ok_or_else(|| EncodeError::Schema(format!("column {name} is not Utf8")))
    }

    fn dict(&self, name: &str) -> Result<StringDict<'a>, EncodeError> {
        self.get(name)?
            .as_dictionary_opt::<Int32Type>()
            .and_then(|d| d.downcast_dict::<StringArray>())
            .ok_or_else(|| EncodeError::Schema(format!("column {name} is not Dictionary(Int32, Utf8)")))
    }

    fn time(&self, name: &str) -> Result<&'a TimestampMillisecondArray, EncodeError> {
        self.get(name)?
            .as_primitive_opt::<TimestampMillisecondType>()
            .ok_or_else(|| EncodeError::Schema(format!("column {name} is not Timestamp(ms)")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flushed_batch_carries_its_source_digest_in_the_footer() {
        let events: Vec<Event> = (0..5).map(sample).collect();
        let mut source = SourceDigest::default();
        source.add(b"row one");
        source.add(b"row two");
        let digest = source.finish();
        let bytes = encode_flushed_events(&events, &digest).unwrap();
        assert_eq!(source_digest(&bytes).as_deref(), Some(digest.as_str()));
        assert_eq!(decode_events(&bytes).unwrap(), events, "the footer changes no row");
        let mut other = SourceDigest::default();
        other.add(b"row onerow two");
        assert_ne!(other.finish(), digest, "parts are length-prefixed");
        assert_eq!(source_digest(&encode_events(&events).unwrap()), None);
        assert_eq!(source_digest(b"not an arrow file"), None);
        assert_eq!(source_digest(&bytes[..bytes.len() - 3]), None, "a truncated file has no digest");
    }

    pub(crate) fn sample(i: usize) -> Event {
        Event {
            event_id: format!("id-{i}"),
            project_id: "demo".into(),
            kind: if i.is_multiple_of(2) { MessageType::Track } else { MessageType::Page },
            event: if i.is_multiple_of(2) { "Signed Up".into() } else { "$page".into() },
            user_id: i.is_multiple_of(3).then(|| format!("u{i}")),
            anonymous_id: Some(format!("a{i}")),
            distinct_id: format!("a{i}"),
            session_id: None,
            group_id: None,
            previous_id: None,
            timestamp: 1_795_435_200_000 + i as i64,
            received_at: 1_795_435_200_500,
            properties: format!(r#"{{"n":{i}}}"#),
            traits: None,
            context: "{}".into(),
            url: Some("https://x.test/".into()),
            referrer: None,
            user_agent: None,
            browser: Some("Chrome".into()),
            os: Some("Linux".into()),
            device: Some("desktop".into()),
            country: None,
            region: None,
            city: None,
            colo: None,
            ip_hash: Some("00ff".into()),
        }
    }

    #[test]
    fn events_round_trip_through_an_ipc_file() {
        let events: Vec<Event> = (0..50).map(sample).collect();
        let bytes = encode_events(&events).unwrap();
        assert_eq!(decode_events(&bytes).unwrap(), events);
        // Same events, same bytes: a retried flush writes an identical object.
        assert_eq!(encode_events(&events).unwrap(), bytes);
    }

    #[test]
    fn rejected_messages_round_trip() {
        let rejected = vec![RejectedMessage {
            project_id: "demo".into(),
            received_at: 1,
            index: 3,
            code: "too_deep".into(),
            error: "nested".into(),
            message: "{}".into(),
        }];
        assert_eq!(decode_rejected(&encode_rejected(&rejected).unwrap()).unwrap(), rejected);
    }

    #[test]
    fn files_carry_the_schema_version_and_other_versions_are_refused() {
        let bytes = encode_events(&[sample(0)]).unwrap();
        let (schema, _) = read_ipc_file(&bytes).unwrap();
        assert_eq!(schema.metadata()[SCHEMA_VERSION_KEY], SCHEMA_VERSION);
        let batch = events_to_batch(&[sample(0)]).unwrap();
        let unversioned = RecordBatch::try_new(
            Arc::new(arrow_schema::Schema::new(batch.schema().fields().clone())),
            batch.columns().to_vec(),
        )
        .unwrap();
        assert!(matches!(decode_events(&write_ipc_file(&unversioned, None).unwrap()), Err(EncodeError::Schema(_))));
    }
}
