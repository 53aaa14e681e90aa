//! What the Worker sends a buffer object, and what it answers. Both ends of a
//! call run the same build, but what an object stored (events as the
//! contract's JSON) outlives builds: `Event` fields are only ever added as
//! `Option`s, which an older chunk decodes to `None`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::event::RejectedMessage;

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
    /// How many objects share the key's bucket: each holds this fraction of
    /// the rate and burst, so the key's limit holds across them on average.
    pub rate_shards: u32,
    /// The ids of `events`, in order: all the object needs to dedupe.
    #[serde(borrow)]
    pub ids: Vec<Cow<'a, str>>,
    /// Events whose id hashes to this object's shard, as one JSON array of
    /// the contract's event objects. The object stores each element's text as
    /// it is (SQLite's `json_each` splits the array) and never decodes an
    /// event until it flushes.
    pub events: Box<RawValue>,
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
