//! Per-write-key token buckets in memory. The arithmetic is the contract's
//! ([`contrail_edge::rate`]); the Worker keeps the same buckets in its Durable
//! Objects.

use std::collections::HashMap;
use std::sync::Mutex;

use contrail_edge::rate::{RateLimit, TokenBucket};

/// Token buckets keyed by write key, refilled continuously.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, TokenBucket>>,
}

/// Keys tracked before idle buckets are dropped; bounds memory under key spraying
/// (invalid keys never reach the limiter: it runs after authentication).
const MAX_TRACKED_KEYS: usize = 100_000;

impl RateLimiter {
    /// Buckets of `limit` (sustained requests per second, burst).
    pub fn new(limit: RateLimit) -> Self {
        Self { limit, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token for `key` at `now_ms`; on refusal, the seconds until one is available.
    pub fn take(&self, key: &str, now_ms: i64) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_TRACKED_KEYS && !buckets.contains_key(key) {
            buckets.retain(|_, b| !self.limit.is_idle(b, now_ms));
        }
        let bucket = buckets.entry(key.to_owned()).or_insert_with(|| self.limit.full(now_ms));
        self.limit.take(bucket, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_per_key() {
        let limiter = RateLimiter::new(RateLimit { per_sec: 2.0, burst: 1.0 });
        assert!(limiter.take("k", 0).is_ok());
        assert_eq!(limiter.take("k", 0), Err(1));
        assert!(limiter.take("other", 0).is_ok());
    }
}
