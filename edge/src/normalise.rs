//! Normalisation: a validated [`Message`] and what the edge knows about the
//! request into the [`Event`] row.
//!
//! - `event_id`: `messageId`, or `h1-` + 32 hex characters of SHA-256 over the
//!   canonical message (without `sentAt` and `writeKey`, which change between
//!   retries of the same message), so that a retried message dedupes.
//! - `timestamp` (Segment's clock-skew rule): with `sentAt`,
//!   `receivedAt − (sentAt − timestamp)`; without it, `timestamp`; with neither,
//!   `receivedAt`. More than the allowed skew in the future: `receivedAt`, and the
//!   original is kept in `context.contrail.future_timestamp`.
//! - `distinct_id`: `userId`, else `anonymousId`.
//! - The client IP (`context.ip`, else the connection's) is replaced by a
//!   daily-salted hash and never stored.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::canonical::write_canonical;
use crate::event::{Event, MessageType};
use crate::ip_hash::{DailySalt, ip_hash_salted};
use crate::limits::Limits;
use crate::project::ProjectId;
use crate::useragent;
use crate::validate::Message;

/// Prefix of derived ids; the digit versions the canonical form.
pub const DERIVED_ID_PREFIX: &str = "h1-";

/// Location data the edge has about a request (Cloudflare's `request.cf`);
/// all absent under `contrail serve`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Geo {
    /// ISO 3166-1 alpha-2 country code.
    pub country: Option<String>,
    /// Region (ISO 3166-2 name).
    pub region: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Cloudflare data centre (IATA code).
    pub colo: Option<String>,
}

/// What the edge knows about the request a message came in.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    /// Project of the write key.
    pub project: &'a ProjectId,
    /// Edge receive time.
    pub received_at: DateTime<Utc>,
    /// The batch's top-level `sentAt` (a message's own wins).
    pub sent_at: Option<DateTime<Utc>>,
    /// The batch's top-level `context`, merged under each message's.
    pub context: Option<&'a Map<String, Value>>,
    /// The connection's client IP.
    pub client_ip: Option<&'a str>,
    /// Edge location data.
    pub geo: &'a Geo,
    /// The receive day's IP salt.
    pub ip_salt: DailySalt,
    /// Limits (for the future clamp).
    pub limits: &'a Limits,
}

/// Turns a validated message into its event row.
pub fn normalise(message: Message, envelope: &Envelope<'_>) -> Event {
    let Message {
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
        mut properties,
        traits,
        context,
        raw,
    } = message;

    let mut context = match envelope.context {
        Some(batch) => merged(batch, context),
        None => context,
    };
    let event_id = match (message_id, raw) {
        (Some(id), _) => id,
        (None, Some(raw)) => derived_id(&raw, &context),
        (None, None) => unreachable!("validation keeps the raw message when there is no messageId"),
    };

    let received = envelope.received_at.timestamp_millis();
    let mut ts = match (timestamp, sent_at.or(envelope.sent_at)) {
        (Some(t), Some(sent)) => received - (sent.timestamp_millis() - t.timestamp_millis()),
        (Some(t), None) => t.timestamp_millis(),
        (None, _) => received,
    };
    if ts > received + envelope.limits.max_future_ms {
        let original = DateTime::<Utc>::from_timestamp_millis(ts).map(|t| t.to_rfc3339());
        let flags = context.entry("contrail").or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(flags) = flags {
            flags.insert("future_timestamp".into(), original.map_or(Value::Null, Value::String));
        }
        ts = received;
    }

    if matches!(kind, MessageType::Page | MessageType::Screen) {
        // Segment's analytics.js does the same: page/screen names are properties.
        if let Some(name) = &name {
            properties.entry("name").or_insert_with(|| Value::String(name.clone()));
        }
        if let Some(category) = &category {
            properties.entry("category").or_insert_with(|| Value::String(category.clone()));
        }
    }

    let ip = match context.remove("ip") {
        Some(Value::String(ip)) if !ip.is_empty() => Some(ip),
        _ => envelope.client_ip.map(str::to_owned),
    };
    let ip_hash = ip.map(|ip| ip_hash_salted(&envelope.ip_salt, envelope.project.as_str(), &ip));

    let page = context.get("page").and_then(Value::as_object);
    let url = page.and_then(|p| string_at(p, "url")).or_else(|| string_at(&properties, "url"));
    let referrer = page.and_then(|p| string_at(p, "referrer")).or_else(|| string_at(&properties, "referrer"));
    let session_id = scalar_at(&context, "sessionId").or_else(|| scalar_at(&properties, "session_id"));
    let user_agent = string_at(&context, "userAgent");
    let parsed = user_agent.as_deref().map(useragent::parse);

    let distinct_id = user_id.clone().or_else(|| anonymous_id.clone()).expect("validation requires an identity");
    let event = match kind.synthetic_event() {
        Some(synthetic) => synthetic.to_owned(),
        None => event.expect("validation requires a track event name"),
    };

    Event {
        event_id,
        project_id: envelope.project.as_str().to_owned(),
        kind,
        event,
        user_id,
        anonymous_id,
        distinct_id,
        session_id,
        group_id,
        previous_id,
        timestamp: ts,
        received_at: received,
        properties: Value::Object(properties).to_string(),
        traits: traits.map(|t| Value::Object(t).to_string()),
        context: Value::Object(context).to_string(),
        url,
        referrer,
        user_agent,
        browser: parsed.as_ref().map(|p| p.browser.to_owned()),
        os: parsed.as_ref().map(|p| p.os.to_owned()),
        device: parsed.as_ref().map(|p| p.device.to_owned()),
        country: envelope.geo.country.clone(),
        region: envelope.geo.region.clone(),
        city: envelope.geo.city.clone(),
        colo: envelope.geo.colo.clone(),
        ip_hash,
    }
}

/// The id of a message sent without `messageId`: SHA-256 of the canonical
/// message with its merged context, leaving out what differs between retries.
fn derived_id(raw: &Map<String, Value>, context: &Map<String, Value>) -> String {
    let mut identity: Map<String, Value> = raw
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "sentAt" | "writeKey" | "_metadata"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !context.is_empty() {
        identity.insert("context".into(), Value::Object(context.clone()));
    }
    let mut text = String::new();
    write_canonical(&Value::Object(identity), &mut text);
    let digest = Sha256::digest(text.as_bytes());
    let mut id = String::from(DERIVED_ID_PREFIX);
    for byte in &digest[..16] {
        id.push_str(&format!("{byte:02x}"));
    }
    id
}

/// `top` merged under `own`: keys of `own` win; objects present in both merge recursively.
fn merged(top: &Map<String, Value>, own: Map<String, Value>) -> Map<String, Value> {
    let mut out = top.clone();
    for (key, value) in own {
        match (out.get_mut(&key), value) {
            (Some(Value::Object(base)), Value::Object(over)) => {
                let combined = merged(base, over);
                *base = combined;
            }
            (_, value) => {
                out.insert(key, value);
            }
        }
    }
    out
}

fn string_at(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
}

fn scalar_at(map: &Map<String, Value>, key: &str) -> Option<String> {
    match map.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;
    use crate::ip_hash::ip_hash;
    use crate::validate::validate;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn run(message: Value, sent_at: Option<&str>, context: Option<Value>, ip: Option<&str>) -> Event {
        let project = ProjectId::parse("demo").unwrap();
        let limits = Limits::default();
        let geo = Geo::default();
        let context = context.map(|c| c.as_object().unwrap().clone());
        let envelope = Envelope {
            project: &project,
            received_at: Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap(),
            sent_at: sent_at.map(|s| crate::validate::parse_time(s).unwrap()),
            context: context.as_ref(),
            client_ip: ip,
            geo: &geo,
            ip_salt: DailySalt::new(SECRET, Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()),
            limits: &limits,
        };
        let Value::Object(map) = message else { panic!() };
        normalise(validate(map, None, &limits).unwrap(), &envelope)
    }

    const NOON: i64 = 1_795_435_200_000; // 2026-11-23T12:00:00Z

    #[test]
    fn clock_skew_is_corrected_from_sent_at() {
        // The device clock is 1 h fast: it says the event happened at 13:00 and
        // was sent at 13:05; we received it at 12:00, so it happened at 11:55.
        let e = run(
            json!({"type":"track","event":"E","userId":"u","timestamp":"2026-11-23T13:00:00Z","sentAt":"2026-11-23T13:05:00Z"}),
            None,
            None,
            None,
        );
        assert_eq!(e.timestamp, NOON - 5 * 60_000);
        assert_eq!(e.received_at, NOON);
        // The batch's sentAt applies when the message has none.
        let e = run(
            json!({"type":"track","event":"E","userId":"u","timestamp":"2026-11-23T13:00:00Z"}),
            Some("2026-11-23T13:05:00Z"),
            None,
            None,
        );
        assert_eq!(e.timestamp, NOON - 5 * 60_000);
    }

    #[test]
    fn timestamps_default_to_receipt_and_the_future_is_clamped() {
        let e = run(json!({"type":"track","event":"E","userId":"u"}), None, None, None);
        assert_eq!(e.timestamp, NOON);
        let e =
            run(json!({"type":"track","event":"E","userId":"u","timestamp":"2026-11-24T12:00:00Z"}), None, None, None);
        assert_eq!(e.timestamp, NOON + 86_400_000, "exactly 24 h ahead is allowed");
        let e = run(
            json!({"type":"track","event":"E","userId":"u","timestamp":"2026-11-24T12:00:00.001Z"}),
            None,
            None,
            None,
        );
        assert_eq!(e.timestamp, NOON);
        let context: Value = serde_json::from_str(&e.context).unwrap();
        assert_eq!(context["contrail"]["future_timestamp"], "2026-11-24T12:00:00.001+00:00");
    }

    #[test]
    fn derived_ids_ignore_sent_at_and_depend_on_content() {
        let a = run(json!({"type":"track","event":"E","userId":"u","sentAt":"2026-11-23T12:00:00Z"}), None, None, None);
        let b = run(json!({"userId":"u","event":"E","type":"track","sentAt":"2026-11-23T12:00:09Z"}), None, None, None);
        let c = run(json!({"type":"track","event":"F","userId":"u"}), None, None, None);
        assert!(a.event_id.starts_with(DERIVED_ID_PREFIX) && a.event_id.len() == 35);
        assert_eq!(a.event_id, b.event_id);
        assert_ne!(a.event_id, c.event_id);
        let given = run(json!({"type":"track","event":"E","userId":"u","messageId":"m-1"}), None, None, None);
        assert_eq!(given.event_id, "m-1");
    }

    #[test]
    fn batch_context_merges_under_the_message_context_and_the_ip_is_hashed_away() {
        let e = run(
            json!({"type":"page","anonymousId":"a","context":{"ip":"198.51.100.1","page":{"url":"https://x.test/a"},"library":{"name":"own"}}}),
            None,
            Some(
                json!({"library":{"name":"top","version":"1"},"locale":"fr-FR","page":{"referrer":"https://r.test/"}}),
            ),
            Some("203.0.113.9"),
        );
        let context: Value = serde_json::from_str(&e.context).unwrap();
        assert_eq!(context["library"], json!({"name":"own","version":"1"}));
        assert_eq!(context["locale"], "fr-FR");
        assert!(context.get("ip").is_none());
        assert_eq!(e.url.as_deref(), Some("https://x.test/a"));
        assert_eq!(e.referrer.as_deref(), Some("https://r.test/"));
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        assert_eq!(e.ip_hash, Some(ip_hash(SECRET, at, "demo", "198.51.100.1")));
        let from_connection = run(json!({"type":"page","anonymousId":"a"}), None, None, Some("203.0.113.9"));
        assert_eq!(from_connection.ip_hash, Some(ip_hash(SECRET, at, "demo", "203.0.113.9")));
    }

    #[test]
    fn identity_and_synthetic_event_names() {
        let e =
            run(json!({"type":"identify","userId":"u","anonymousId":"a","traits":{"plan":"pro"}}), None, None, None);
        assert_eq!((e.distinct_id.as_str(), e.event.as_str()), ("u", "$identify"));
        assert_eq!(e.traits.as_deref(), Some(r#"{"plan":"pro"}"#));
        let e = run(json!({"type":"page","anonymousId":"a","name":"Home","category":"Docs"}), None, None, None);
        assert_eq!((e.distinct_id.as_str(), e.event.as_str()), ("a", "$page"));
        assert_eq!(serde_json::from_str::<Value>(&e.properties).unwrap(), json!({"name":"Home","category":"Docs"}));
        let e = run(json!({"type":"alias","userId":"u","previousId":"a"}), None, None, None);
        assert_eq!((e.previous_id.as_deref(), e.event.as_str()), (Some("a"), "$alias"));
    }
}

#[cfg(test)]
mod properties {
    use chrono::TimeZone;
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    use super::*;
    use crate::validate::validate;

    fn id_of(object: Map<String, Value>) -> String {
        let project = ProjectId::parse("p").unwrap();
        let limits = Limits::default();
        let geo = Geo::default();
        let envelope = Envelope {
            project: &project,
            received_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            sent_at: None,
            context: None,
            client_ip: None,
            geo: &geo,
            ip_salt: DailySalt::new(b"secret", Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()),
            limits: &limits,
        };
        normalise(validate(object, None, &limits).unwrap(), &envelope).event_id
    }

    proptest! {
        /// A retry may reorder keys and change `sentAt`: the derived id must not move.
        #[test]
        fn derived_ids_ignore_key_order_and_sent_at(
            props in proptest::collection::btree_map("[a-z]{1,6}", any::<i32>(), 0..8),
            seconds in 0u32..59,
        ) {
            let properties: Map<String, Value> = props.iter().map(|(k, v)| (k.clone(), Value::from(*v))).collect();
            let reversed: Map<String, Value> = props.iter().rev().map(|(k, v)| (k.clone(), Value::from(*v))).collect();
            let mut a = Map::new();
            a.insert("type".into(), "track".into());
            a.insert("event".into(), "E".into());
            a.insert("userId".into(), "u".into());
            a.insert("properties".into(), Value::Object(properties));
            let mut b = Map::new();
            b.insert("properties".into(), Value::Object(reversed));
            b.insert("sentAt".into(), format!("2026-01-01T00:00:{seconds:02}Z").into());
            b.insert("userId".into(), "u".into());
            b.insert("event".into(), "E".into());
            b.insert("type".into(), "track".into());
            prop_assert_eq!(id_of(a.clone()), id_of(b));
            let mut c = a.clone();
            c.insert("event".into(), "F".into());
            prop_assert_ne!(id_of(a), id_of(c));
        }
    }
}
