//! The normalised event: one row of a raw batch and, later, of the warehouse.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The six Segment message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageType {
    /// A named action (`event`).
    Track,
    /// A web page view (`name` optional).
    Page,
    /// A mobile screen view (`name` optional).
    Screen,
    /// Who the user is (`traits`).
    Identify,
    /// The user's account or organisation (`groupId`).
    Group,
    /// Links `previousId` to `userId`.
    Alias,
}

impl MessageType {
    /// Every type.
    pub const ALL: [MessageType; 6] = [Self::Track, Self::Page, Self::Screen, Self::Identify, Self::Group, Self::Alias];

    /// Lowercase name, as in Segment's `type` field and in the `type` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Track => "track",
            Self::Page => "page",
            Self::Screen => "screen",
            Self::Identify => "identify",
            Self::Group => "group",
            Self::Alias => "alias",
        }
    }

    /// Parses Segment's `type` field.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The `event` column for types other than track, which have no event name
    /// of their own. The `$` prefix cannot collide with a name an SDK user would
    /// pick by accident and sorts these apart in event lists.
    pub fn synthetic_event(self) -> Option<&'static str> {
        match self {
            Self::Track => None,
            Self::Page => Some("$page"),
            Self::Screen => Some("$screen"),
            Self::Identify => Some("$identify"),
            Self::Group => Some("$group"),
            Self::Alias => Some("$alias"),
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated, normalised event. Times are milliseconds since the Unix epoch, UTC.
/// JSON columns (`properties`, `traits`, `context`) hold object text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// `messageId`, or a deterministic id derived from the canonical message.
    pub event_id: String,
    /// The project of the write key.
    pub project_id: String,
    /// Segment message type (column `type`).
    #[serde(rename = "type")]
    pub kind: MessageType,
    /// Track: the event name; other types: `$page`, `$screen`, `$identify`, `$group`, `$alias`.
    pub event: String,
    /// `userId`.
    pub user_id: Option<String>,
    /// `anonymousId`.
    pub anonymous_id: Option<String>,
    /// `userId`, else `anonymousId`: who did it.
    pub distinct_id: String,
    /// `context.sessionId` or `properties.session_id`.
    pub session_id: Option<String>,
    /// `groupId` (group messages).
    pub group_id: Option<String>,
    /// `previousId` (alias messages).
    pub previous_id: Option<String>,
    /// When it happened, clock-skew corrected.
    pub timestamp: i64,
    /// When the edge received it.
    pub received_at: i64,
    /// `properties` (page/screen: with `name` and `category` folded in).
    pub properties: String,
    /// `traits` (identify and group).
    pub traits: Option<String>,
    /// The merged `context`, without `ip`.
    pub context: String,
    /// `context.page.url`, else `properties.url`.
    pub url: Option<String>,
    /// `context.page.referrer`, else `properties.referrer`.
    pub referrer: Option<String>,
    /// `context.userAgent`.
    pub user_agent: Option<String>,
    /// Browser family parsed from the user agent.
    pub browser: Option<String>,
    /// Operating system family parsed from the user agent.
    pub os: Option<String>,
    /// Device type parsed from the user agent.
    pub device: Option<String>,
    /// Edge enrichment (Cloudflare `cf.country`).
    pub country: Option<String>,
    /// Edge enrichment (`cf.region`).
    pub region: Option<String>,
    /// Edge enrichment (`cf.city`).
    pub city: Option<String>,
    /// Edge enrichment (`cf.colo`).
    pub colo: Option<String>,
    /// Daily-salted hash of the client IP.
    pub ip_hash: Option<String>,
}

/// A message that failed validation, kept in quarantine with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedMessage {
    /// The project of the write key.
    pub project_id: String,
    /// When the edge received it (ms).
    pub received_at: i64,
    /// Position in the request's batch.
    pub index: u32,
    /// The stable reason code.
    pub code: String,
    /// The human-readable reason.
    pub error: String,
    /// The message's JSON text as sent (truncated to the per-message limit).
    pub message: String,
}
