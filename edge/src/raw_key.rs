//! Object keys of raw batches:
//! `<prefix>/project=<project>/region=<region>/date=<YYYY-MM-DD>/<uuidv7>.arrow`.
//!
//! The project comes first so that a compaction or a query for one project
//! lists that project's prefix only and never opens another tenant's batch.
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

/// What a raw batch holds, and so where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchKind {
    /// Accepted events, under [`RAW_PREFIX`].
    Events,
    /// Quarantined messages, under [`REJECTED_PREFIX`].
    Rejected,
}

impl BatchKind {
    /// The key prefix of this kind of batch.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Events => RAW_PREFIX,
            Self::Rejected => REJECTED_PREFIX,
        }
    }
}

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

/// The key of a flush's object for `project` under `prefix` ([`RAW_PREFIX`]
/// or [`REJECTED_PREFIX`]).
pub fn batch_key(
    prefix: &str,
    project: &str,
    region: &str,
    flushed_at_ms: i64,
    buffer_identity: &str,
    flush_seq: u64,
) -> String {
    let date = DateTime::<Utc>::from_timestamp_millis(flushed_at_ms).unwrap_or_default().format("%Y-%m-%d");
    let id = flush_id(flushed_at_ms, buffer_identity, flush_seq);
    format!("{}region={region}/date={date}/{id}.arrow", project_prefix(prefix, project))
}

/// Where `project`'s batches under `prefix` live: `<prefix>/project=<project>/`.
pub fn project_prefix(prefix: &str, project: &str) -> String {
    format!("{prefix}/project={project}/")
}

/// The project a key under `prefix` names, if it is in the per-project layout.
pub fn project_of<'a>(prefix: &str, key: &'a str) -> Option<&'a str> {
    key.strip_prefix(prefix)?.strip_prefix("/project=")?.split('/').next().filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_deterministic_time_sorted_uuidv7s() {
        let a = batch_key(RAW_PREFIX, "demo", "local", 1_795_435_200_000, "buf:demo:local:0", 7);
        assert_eq!(a, batch_key(RAW_PREFIX, "demo", "local", 1_795_435_200_000, "buf:demo:local:0", 7));
        assert!(a.starts_with("raw/project=demo/region=local/date=2026-11-23/"), "{a}");
        assert_eq!(project_of(RAW_PREFIX, &a), Some("demo"));
        assert_eq!(project_of(REJECTED_PREFIX, &a), None);
        assert_eq!(project_of(RAW_PREFIX, "raw/region=local/date=2026-11-23/x.arrow"), None);
        assert_ne!(a, batch_key(RAW_PREFIX, "demo", "local", 1_795_435_200_000, "buf:demo:local:0", 8));
        assert_ne!(a, batch_key(RAW_PREFIX, "demo", "local", 1_795_435_200_000, "buf:demo:local:1", 7));
        let id = flush_id(1_795_435_200_000, "x", 1);
        assert_eq!(id.get_version_num(), 7);
        assert!(flush_id(1_795_435_200_001, "x", 0) > id, "later flushes sort later");
    }
}
