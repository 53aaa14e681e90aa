//! Which Durable Object buffers an event: `buf:<project>:<region>:<shard>`.
//!
//! The shard is a hash of the event id, so a retried message (same id, from
//! anywhere in the region) meets its first copy in the same object and is
//! deduplicated there. A project's buffer is split across shards because one
//! Durable Object serves on the order of a thousand requests per second.

use std::fmt;

use sha2::{Digest, Sha256};

/// The name of one buffer object.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BufferName {
    /// The project.
    pub project: String,
    /// The region (also the `region=` of its raw batch keys).
    pub region: String,
    /// The shard, `0..shards`.
    pub shard: u32,
}

impl BufferName {
    /// Parses `buf:<project>:<region>:<shard>`.
    pub fn parse(name: &str) -> Option<Self> {
        let mut parts = name.strip_prefix("buf:")?.split(':');
        let (project, region, shard) = (parts.next()?, parts.next()?, parts.next()?.parse().ok()?);
        (parts.next().is_none() && !project.is_empty() && !region.is_empty()).then(|| Self {
            project: project.to_owned(),
            region: region.to_owned(),
            shard,
        })
    }
}

impl fmt::Display for BufferName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "buf:{}:{}:{}", self.project, self.region, self.shard)
    }
}

/// The shard of `id` among `shards` (at least 1). Stable across releases and
/// targets: it decides where a retry's first copy lives.
pub fn shard_of(id: &str, shards: u32) -> u32 {
    let digest = Sha256::digest(id.as_bytes());
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(head) % u64::from(shards.max(1))) as u32
}

/// The buffer region of a request: an override when configured, else
/// Cloudflare's continent code in lower case (`eu`, `na`, …), so that events
/// are buffered on their continent; `global` when the edge does not say.
pub fn region_of(configured: Option<&str>, continent: Option<&str>) -> String {
    let clean = |s: &str| -> Option<String> {
        let s: String =
            s.trim().to_ascii_lowercase().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
        (!s.is_empty()).then_some(s)
    };
    configured.and_then(clean).or_else(|| continent.and_then(clean)).unwrap_or_else(|| "global".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_round_trip() {
        let name = BufferName { project: "demo".into(), region: "eu".into(), shard: 3 };
        assert_eq!(name.to_string(), "buf:demo:eu:3");
        assert_eq!(BufferName::parse("buf:demo:eu:3"), Some(name));
        for bad in ["demo:eu:3", "buf:demo:eu", "buf:demo:eu:x", "buf::eu:1", "buf:a:b:1:2"] {
            assert_eq!(BufferName::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn regions_come_from_the_override_then_the_continent() {
        assert_eq!(region_of(None, Some("EU")), "eu");
        assert_eq!(region_of(Some("Europe-West"), Some("EU")), "europe-west");
        assert_eq!(region_of(Some(" "), None), "global");
        assert_eq!(region_of(None, Some("a/b")), "ab", "no path separators in keys");
    }

    #[test]
    fn shards_are_known_values_and_cover_the_range() {
        // Pinned: changing the hash would send retries to another object.
        // Values from Python's hashlib (first 8 bytes of SHA-256, big-endian).
        assert_eq!(shard_of("m-1", 1), 0);
        assert_eq!((shard_of("m-1", 8), shard_of("m-2", 8), shard_of("hello", 8)), (4, 3, 6));
        assert_eq!((shard_of("m-1", 3), shard_of("m-2", 3), shard_of("hello", 3)), (1, 2, 1));
        let mut seen = [0u32; 4];
        for i in 0..400 {
            seen[shard_of(&format!("m-{i}"), 4) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 60), "roughly even: {seen:?}");
    }

    proptest! {
        #[test]
        fn shard_is_always_in_range(id in ".{0,40}", shards in 1u32..64) {
            prop_assert!(shard_of(&id, shards) < shards);
        }
    }
}
