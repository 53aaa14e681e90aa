//! The size and shape limits of DESIGN §3, in one place so that the Worker,
//! `contrail serve` and the tests agree on every bound.

/// Limits applied to every ingest request. `Default` is the documented contract;
/// deployments may tighten them but the edge and `serve` share the same values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of one message's JSON text. Segment's own limit, so that anything
    /// an SDK accepts client-side is accepted here.
    pub max_message_bytes: usize,
    /// Bytes of a whole request body *after* decompression. Bounds the memory a
    /// single request can pin, whatever its compression ratio.
    pub max_request_bytes: usize,
    /// Messages in one batch: SDKs flush at 100–500, so 1,000 leaves headroom
    /// without letting one request monopolise a buffer's group commit.
    pub max_batch_messages: usize,
    /// Characters (Unicode scalar values) of an event or page/screen name. Names
    /// are dictionary-encoded and shown in the dashboard: they are labels, not data.
    pub max_event_name_chars: usize,
    /// Keys of the `properties` (and `traits`) object.
    pub max_properties: usize,
    /// Nesting of `properties`, `traits` and `context`, where a flat object is
    /// one level. Deeper documents are almost always serialisation accidents.
    pub max_depth: usize,
    /// Characters of a client-supplied `messageId`.
    pub max_message_id_chars: usize,
    /// How far in the future a (skew-corrected) timestamp may be before it is
    /// replaced by the receive time.
    pub max_future_ms: i64,
}

impl Limits {
    /// Bytes accepted on the wire before decompression: gzip can make
    /// incompressible data slightly larger than the decoded limit, so the
    /// transport reads a little more than `max_request_bytes` before refusing.
    pub fn max_wire_bytes(&self) -> usize {
        self.max_request_bytes + self.max_request_bytes / 16 + 1024
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 32 * 1024,
            max_request_bytes: 512 * 1024,
            max_batch_messages: 1_000,
            max_event_name_chars: 200,
            max_properties: 1_000,
            max_depth: 16,
            max_message_id_chars: 100,
            max_future_ms: 24 * 60 * 60 * 1000,
        }
    }
}
