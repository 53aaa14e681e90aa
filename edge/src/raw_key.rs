//! Object keys of raw batches: `<prefix>/region=<region>/date=<YYYY-MM-DD>/<uuidv7>.arrow`.
//!
//! The UUIDv7's time part is the flush time, so names sort by time; its other
//! bits come from SHA-256 of the buffer's identity and the flush's sequence
//! number. A retried flush of the same sequence number therefore writes the
//! very same key, and with create-only puts the same events can never land
//! under two keys.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::{Builder, Uuid};

/// Prefix of raw event batches.
pub const RAW_PREFIX: &str = "raw";
/// Prefix of quarantined-message batches.
pub const REJECTED_PREFIX: &str = "rejected";

/// The deterministic flush id.
pub fn flush_id(flushed_at_ms: i64, buffer_identity: &str, flush_seq: u64) -> Uuid {
    let digest = Sha256::new()
        .chain_update(buffer_identity.as_bytes())
        .chain_update([0u8])
        .chain_update(flush_seq.to_be_bytes())
        .finalize();
    let mut random = [0u8; 10];
    random.copy_from_slice(&digest[..10]);
    Builder::from_unix_timestamp_millis(flushed_at_ms.max(0) as u64, &random).into_uuid()
}

/// The key of a flush's object under `prefix` ([`RAW_PREFIX`] or [`REJECTED_PREFIX`]).
pub fn batch_key(prefix: &str, region: &str, flushed_at_ms: i64, buffer_identity: &str, flush_seq: u64) -> String {
    let date = DateTime::<Utc>::from_timestamp_millis(flushed_at_ms).unwrap_or_default().format("%Y-%m-%d");
    let id = flush_id(flushed_at_ms, buffer_identity, flush_seq);
    format!("{prefix}/region={region}/date={date}/{id}.arrow")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_deterministic_time_sorted_uuidv7s() {
        let a = batch_key(RAW_PREFIX, "local", 1_795_435_200_000, "buf:demo:local:0", 7);
        assert_eq!(a, batch_key(RAW_PREFIX, "local", 1_795_435_200_000, "buf:demo:local:0", 7));
        assert!(a.starts_with("raw/region=local/date=2026-11-23/"), "{a}");
        assert_ne!(a, batch_key(RAW_PREFIX, "local", 1_795_435_200_000, "buf:demo:local:0", 8));
        assert_ne!(a, batch_key(RAW_PREFIX, "local", 1_795_435_200_000, "buf:demo:local:1", 7));
        let id = flush_id(1_795_435_200_000, "x", 1);
        assert_eq!(id.get_version_num(), 7);
        assert!(flush_id(1_795_435_200_001, "x", 0) > id, "later flushes sort later");
    }
}
