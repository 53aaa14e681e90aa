//! What the Worker sends a buffer object, and what it answers. Internal to
//! one deployment (both ends always run the same build).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::event::{Event, RejectedMessage};

/// Path of the store call (the host is ignored by the runtime).
pub(crate) const STORE_URL: &str = "https://buffer/store";

/// One request's share for one buffer object.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoreRequest<'a> {
    /// The object's name, `buf:<project>:<region>:<shard>`: it keys the raw
    /// batches the object writes, and an object cannot learn it otherwise.
    pub buffer: String,
    /// Receive time of the request.
    pub now_ms: i64,
    /// Take a rate-limit token for this write key first (sent to exactly one
    /// object per request, before any other object is written).
    pub rate_key: Option<String>,
    /// Events whose id hashes to this object's shard.
    pub events: Vec<Cow<'a, Event>>,
    /// The request's rejected messages, for quarantine.
    pub rejected: Cow<'a, [RejectedMessage]>,
}

/// A buffer object's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub(crate) enum StoreAnswer {
    /// Durable; `duplicates` of the events were stored before.
    Stored {
        /// Events already seen within the dedupe window.
        duplicates: usize,
    },
    /// The write key's bucket is empty; nothing was stored.
    RateLimited {
        /// Seconds until a token is available.
        retry_after_secs: u64,
    },
}
