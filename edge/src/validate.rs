//! Validation: one message's JSON text into a typed [`Message`], or a [`Rejection`].

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::error::{RejectCode, Rejection};
use crate::event::MessageType;
use crate::limits::Limits;

/// A message that passed validation; nothing is normalised yet.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Message type.
    pub kind: MessageType,
    /// `event` (track).
    pub event: Option<String>,
    /// `name` (page/screen).
    pub name: Option<String>,
    /// `category` (page).
    pub category: Option<String>,
    /// `userId`.
    pub user_id: Option<String>,
    /// `anonymousId`.
    pub anonymous_id: Option<String>,
    /// `previousId` (alias).
    pub previous_id: Option<String>,
    /// `groupId` (group).
    pub group_id: Option<String>,
    /// `messageId`.
    pub message_id: Option<String>,
    /// `timestamp`.
    pub timestamp: Option<DateTime<Utc>>,
    /// `sentAt`.
    pub sent_at: Option<DateTime<Utc>>,
    /// `properties` (empty when absent).
    pub properties: Map<String, Value>,
    /// `traits`.
    pub traits: Option<Map<String, Value>>,
    /// `context` (empty when absent), before merging the batch context.
    pub context: Map<String, Value>,
    /// The whole message object as sent, kept only when there is no
    /// `messageId` (the deterministic id is derived from it).
    pub raw: Option<Map<String, Value>>,
}

/// Validates one message object. `path_type` is the type implied by a
/// single-message endpoint (`/v1/track` …), `None` on `/v1/batch`.
pub fn validate(
    mut object: Map<String, Value>,
    path_type: Option<MessageType>,
    limits: &Limits,
) -> Result<Message, Rejection> {
    let kind = message_type(&object, path_type)?;
    let user_id = id_field(&object, "userId")?;
    let anonymous_id = id_field(&object, "anonymousId")?;
    if user_id.is_none() && anonymous_id.is_none() {
        return Err(Rejection::new(
            RejectCode::MissingIdentity,
            "every message needs a userId or an anonymousId (a non-empty string)",
        ));
    }
    let event = name_field(&object, "event", limits)?;
    let name = name_field(&object, "name", limits)?;
    let category = name_field(&object, "category", limits)?;
    let previous_id = id_field(&object, "previousId")?;
    let group_id = id_field(&object, "groupId")?;
    match kind {
        MessageType::Track if event.is_none() => {
            return Err(Rejection::new(RejectCode::MissingField, "a track message needs a non-empty \"event\" name"));
        }
        MessageType::Alias if previous_id.is_none() || user_id.is_none() => {
            return Err(Rejection::new(
                RejectCode::MissingField,
                "an alias message needs both \"previousId\" and \"userId\"",
            ));
        }
        MessageType::Group if group_id.is_none() => {
            return Err(Rejection::new(RejectCode::MissingField, "a group message needs a \"groupId\""));
        }
        _ => {}
    }
    let message_id = id_field(&object, "messageId")?;
    if let Some(id) = &message_id
        && id.chars().count() > limits.max_message_id_chars
    {
        return Err(Rejection::new(
            RejectCode::MessageIdTooLong,
            format!("messageId is longer than {} characters", limits.max_message_id_chars),
        ));
    }
    let timestamp = time_field(&object, "timestamp")?;
    let sent_at = time_field(&object, "sentAt")?;
    for field in ["properties", "traits", "context"] {
        check_object_field(&object, field, limits)?;
    }
    // Cloning the message costs an allocation per value; it is needed only to
    // derive an id, and SDKs nearly always send a messageId.
    let raw = message_id.is_none().then(|| object.clone());
    let mut take = |field: &str| match object.remove(field) {
        Some(Value::Object(map)) => Some(map),
        _ => None,
    };
    let properties = take("properties").unwrap_or_default();
    let traits = take("traits");
    let context = take("context").unwrap_or_default();
    Ok(Message {
        kind,
        event,
        name,
        category,
        user_id,
        anonymous_id,
        previous_id,
        group_id,
        message_id,
        timestamp,
        sent_at,
        properties,
        traits,
        context,
        raw,
    })
}

fn message_type(object: &Map<String, Value>, path_type: Option<MessageType>) -> Result<MessageType, Rejection> {
    let given = match object.get("type") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(MessageType::parse(&s.to_ascii_lowercase()).ok_or_else(|| {
            Rejection::new(
                RejectCode::InvalidType,
                format!("unknown message type {s:?}: use track, page, screen, identify, group or alias"),
            )
        })?),
        Some(_) => return Err(Rejection::new(RejectCode::InvalidType, "\"type\" must be a string")),
    };
    match (given, path_type) {
        (Some(t), Some(p)) if t != p => Err(Rejection::new(
            RejectCode::InvalidType,
            format!("message type {t} was sent to the /v1/{p} endpoint: send it to /v1/{t} or /v1/batch"),
        )),
        (Some(t), _) | (None, Some(t)) => Ok(t),
        (None, None) => Err(Rejection::new(
            RejectCode::InvalidType,
            "messages in a batch need a \"type\": track, page, screen, identify, group or alias",
        )),
    }
}

/// Ids may be strings or numbers (some SDKs send numeric user ids); empty
/// strings count as absent, as in Segment.
fn id_field(object: &Map<String, Value>, field: &str) -> Result<Option<String>, Rejection> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(Rejection::new(RejectCode::InvalidField, format!("\"{field}\" must be a string"))),
    }
}

fn name_field(object: &Map<String, Value>, field: &str, limits: &Limits) -> Result<Option<String>, Rejection> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s.chars().count() > limits.max_event_name_chars => Err(Rejection::new(
            RejectCode::NameTooLong,
            format!("\"{field}\" is longer than {} characters", limits.max_event_name_chars),
        )),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Rejection::new(RejectCode::InvalidField, format!("\"{field}\" must be a string"))),
    }
}

fn time_field(object: &Map<String, Value>, field: &str) -> Result<Option<DateTime<Utc>>, Rejection> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_time(s).map(Some).ok_or_else(|| {
            Rejection::new(
                RejectCode::InvalidTimestamp,
                format!(
                    "\"{field}\" is not an ISO-8601 date-time with a time zone (e.g. 2026-01-31T12:00:00.000Z): {s:?}"
                ),
            )
        }),
        Some(_) => Err(Rejection::new(RejectCode::InvalidTimestamp, format!("\"{field}\" must be an ISO-8601 string"))),
    }
}

/// Parses an ISO-8601 / RFC 3339 date-time. Accepts a space for `T` as well
/// (some server SDKs format times that way).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_rfc3339(&s.replacen(' ', "T", 1)))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn check_object_field(object: &Map<String, Value>, field: &str, limits: &Limits) -> Result<(), Rejection> {
    let map = match object.get(field) {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(Rejection::new(RejectCode::InvalidField, format!("\"{field}\" must be a JSON object"))),
    };
    if field != "context" && map.len() > limits.max_properties {
        return Err(Rejection::new(
            RejectCode::TooManyProperties,
            format!("\"{field}\" has {} keys; at most {} are allowed", map.len(), limits.max_properties),
        ));
    }
    let depth = depth_of_object(map);
    if depth > limits.max_depth {
        return Err(Rejection::new(
            RejectCode::TooDeep,
            format!("\"{field}\" nests {depth} levels deep; at most {} are allowed", limits.max_depth),
        ));
    }
    Ok(())
}

/// Nesting depth where a flat object is 1 and a scalar 0.
fn depth_of_object(map: &Map<String, Value>) -> usize {
    1 + map.values().map(depth).max().unwrap_or(0)
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Object(map) => depth_of_object(map),
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(message: Value, path_type: Option<MessageType>) -> Result<Message, RejectCode> {
        let Value::Object(map) = message else { panic!("test messages are objects") };
        validate(map, path_type, &Limits::default()).map_err(|r| r.code)
    }

    fn nested(levels: usize) -> Value {
        let mut v = json!(1);
        for _ in 0..levels {
            v = json!({ "k": v });
        }
        v
    }

    #[test]
    fn each_type_needs_its_own_fields() {
        assert!(check(json!({"type":"track","event":"E","userId":"u"}), None).is_ok());
        assert_eq!(check(json!({"type":"track","userId":"u"}), None), Err(RejectCode::MissingField));
        assert!(check(json!({"type":"page","anonymousId":"a"}), None).is_ok());
        assert!(check(json!({"type":"screen","anonymousId":"a","name":"Home"}), None).is_ok());
        assert!(check(json!({"type":"identify","userId":"u","traits":{"plan":"pro"}}), None).is_ok());
        assert_eq!(check(json!({"type":"group","userId":"u"}), None), Err(RejectCode::MissingField));
        assert!(check(json!({"type":"group","userId":"u","groupId":"g"}), None).is_ok());
        assert_eq!(check(json!({"type":"alias","previousId":"a"}), None), Err(RejectCode::MissingIdentity));
        assert_eq!(
            check(json!({"type":"alias","anonymousId":"x","previousId":"a"}), None),
            Err(RejectCode::MissingField)
        );
        assert!(check(json!({"type":"alias","userId":"u","previousId":"a"}), None).is_ok());
    }

    #[test]
    fn type_comes_from_the_path_and_must_agree_with_the_body() {
        assert_eq!(
            check(json!({"event":"E","userId":"u"}), Some(MessageType::Track)).unwrap().kind,
            MessageType::Track
        );
        assert_eq!(check(json!({"event":"E","userId":"u"}), None), Err(RejectCode::InvalidType));
        assert_eq!(check(json!({"type":"page","userId":"u"}), Some(MessageType::Track)), Err(RejectCode::InvalidType));
        assert_eq!(check(json!({"type":"click","userId":"u"}), None), Err(RejectCode::InvalidType));
        assert_eq!(check(json!({"type":"TRACK","event":"E","userId":"u"}), None).unwrap().kind, MessageType::Track);
    }

    #[test]
    fn identity_may_be_numeric_but_not_empty_or_structured() {
        assert_eq!(check(json!({"type":"page","userId":42}), None).unwrap().user_id.as_deref(), Some("42"));
        assert_eq!(check(json!({"type":"page","userId":""}), None), Err(RejectCode::MissingIdentity));
        assert_eq!(check(json!({"type":"page","userId":{"a":1}}), None), Err(RejectCode::InvalidField));
    }

    #[test]
    fn names_are_limited_at_200_characters() {
        let at = "é".repeat(200);
        let past = "é".repeat(201);
        assert!(check(json!({"type":"track","event":at,"userId":"u"}), None).is_ok());
        assert_eq!(check(json!({"type":"track","event":past,"userId":"u"}), None), Err(RejectCode::NameTooLong));
        assert_eq!(check(json!({"type":"page","name":past,"userId":"u"}), None), Err(RejectCode::NameTooLong));
    }

    #[test]
    fn message_ids_are_limited_at_100_characters() {
        assert!(check(json!({"type":"page","userId":"u","messageId":"m".repeat(100)}), None).is_ok());
        assert_eq!(
            check(json!({"type":"page","userId":"u","messageId":"m".repeat(101)}), None),
            Err(RejectCode::MessageIdTooLong)
        );
    }

    #[test]
    fn properties_are_limited_in_count_and_depth() {
        let at: Map<String, Value> = (0..1000).map(|i| (format!("p{i}"), json!(i))).collect();
        let past: Map<String, Value> = (0..1001).map(|i| (format!("p{i}"), json!(i))).collect();
        assert!(check(json!({"type":"page","userId":"u","properties":at}), None).is_ok());
        assert_eq!(
            check(json!({"type":"page","userId":"u","properties":past}), None),
            Err(RejectCode::TooManyProperties)
        );
        // `nested(16)` is an object 16 levels deep.
        assert!(check(json!({"type":"page","userId":"u","properties":nested(16)}), None).is_ok());
        assert_eq!(check(json!({"type":"page","userId":"u","properties":nested(17)}), None), Err(RejectCode::TooDeep));
        assert_eq!(check(json!({"type":"page","userId":"u","context":nested(17)}), None), Err(RejectCode::TooDeep));
        assert_eq!(check(json!({"type":"page","userId":"u","properties":[1]}), None), Err(RejectCode::InvalidField));
    }

    #[test]
    fn timestamps_must_be_iso_8601_with_a_zone() {
        let ok = check(json!({"type":"page","userId":"u","timestamp":"2026-01-31T12:00:00.250+01:00"}), None).unwrap();
        assert_eq!(ok.timestamp.unwrap().timestamp_millis(), 1_769_857_200_250);
        assert!(check(json!({"type":"page","userId":"u","timestamp":"2026-01-31 12:00:00Z"}), None).is_ok());
        for bad in [json!("yesterday"), json!("2026-01-31T12:00:00"), json!(1_769_857_200)] {
            assert_eq!(
                check(json!({"type":"page","userId":"u","timestamp":bad}), None),
                Err(RejectCode::InvalidTimestamp)
            );
        }
    }
}
