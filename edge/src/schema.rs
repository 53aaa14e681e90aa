//! The raw-batch Arrow schemas, defined once and used by every reader.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Schema-metadata key carrying [`SCHEMA_VERSION`].
pub const SCHEMA_VERSION_KEY: &str = "contrail.schema_version";
/// Version of the event and quarantine schemas. Bump on any incompatible
/// change; readers refuse versions they do not know rather than misread them.
pub const SCHEMA_VERSION: &str = "1";

/// Time zone of every timestamp column.
pub const UTC: &str = "UTC";

fn dictionary() -> DataType {
    // Types and event names repeat heavily within a batch: dictionary-encode them.
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into()))
}

fn with_version(fields: Vec<Field>) -> SchemaRef {
    let metadata = HashMap::from([(SCHEMA_VERSION_KEY.to_owned(), SCHEMA_VERSION.to_owned())]);
    Arc::new(Schema::new_with_metadata(fields, metadata))
}

/// The optional text columns of the event schema, in schema order.
pub const NULLABLE_TEXT_COLUMNS: [&str; 17] = [
    "user_id",
    "anonymous_id",
    "session_id",
    "group_id",
    "previous_id",
    "traits",
    "url",
    "referrer",
    "user_agent",
    "browser",
    "os",
    "device",
    "country",
    "region",
    "city",
    "colo",
    "ip_hash",
];

static EVENT_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let text = |name: &str, nullable: bool| {
        debug_assert_eq!(nullable, NULLABLE_TEXT_COLUMNS.contains(&name), "{name}");
        Field::new(name, DataType::Utf8, nullable)
    };
    with_version(vec![
        text("event_id", false),
        text("project_id", false),
        Field::new("type", dictionary(), false),
        Field::new("event", dictionary(), false),
        text("user_id", true),
        text("anonymous_id", true),
        text("distinct_id", false),
        text("session_id", true),
        text("group_id", true),
        text("previous_id", true),
        Field::new("timestamp", timestamp(), false),
        Field::new("received_at", timestamp(), false),
        text("properties", false),
        text("traits", true),
        text("context", false),
        text("url", true),
        text("referrer", true),
        text("user_agent", true),
        text("browser", true),
        text("os", true),
        text("device", true),
        text("country", true),
        text("region", true),
        text("city", true),
        text("colo", true),
        text("ip_hash", true),
    ])
});

static REJECTED_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    with_version(vec![
        Field::new("project_id", DataType::Utf8, false),
        Field::new("received_at", timestamp(), false),
        Field::new("index", DataType::UInt32, false),
        Field::new("code", dictionary(), false),
        Field::new("error", DataType::Utf8, false),
        Field::new("message", DataType::Utf8, false),
    ])
});

/// Schema of raw event batches (`raw/…`).
pub fn event_schema() -> SchemaRef {
    EVENT_SCHEMA.clone()
}

/// Schema of quarantined messages (`rejected/…`).
pub fn rejected_schema() -> SchemaRef {
    REJECTED_SCHEMA.clone()
}
