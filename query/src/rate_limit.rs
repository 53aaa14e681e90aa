//! Per-write-key token buckets (the Durable Object keeps the same bucket at the edge).

use std::collections::HashMap;
use std::sync::Mutex;

/// Token buckets keyed by write key, refilled continuously.
#[derive(Debug)]
pub struct RateLimiter {
    rate_per_ms: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated_ms: i64,
}

/// Keys tracked before idle buckets are dropped; bounds memory under key spraying
/// (invalid keys never reach the limiter: it runs after authentication).
const MAX_TRACKED_KEYS: usize = 100_000;

impl RateLimiter {
    /// `per_sec` sustained requests, `burst` at once.
    pub fn new(per_sec: f64, burst: f64) -> Self {
        Self { rate_per_ms: per_sec / 1000.0, burst: burst.max(1.0), buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token for `key` at `now_ms`; on refusal, the seconds until one is available.
    pub fn take(&self, key: &str, now_ms: i64) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_TRACKED_KEYS && !buckets.contains_key(key) {
            let burst = self.burst;
            let rate = self.rate_per_ms;
            buckets.retain(|_, b| b.tokens + (now_ms - b.updated_ms) as f64 * rate < burst);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket { tokens: self.burst, updated_ms: now_ms });
        let elapsed = (now_ms - bucket.updated_ms).max(0) as f64;
        bucket.tokens = (bucket.tokens + elapsed * self.rate_per_ms).min(self.burst);
        bucket.updated_ms = now_ms;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait_ms = (1.0 - bucket.tokens) / self.rate_per_ms.max(f64::MIN_POSITIVE);
            Err(((wait_ms / 1000.0).ceil() as u64).max(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_the_rate() {
        let limiter = RateLimiter::new(2.0, 3.0);
        for _ in 0..3 {
            assert!(limiter.take("k", 0).is_ok());
        }
        assert_eq!(limiter.take("k", 0), Err(1));
        assert!(limiter.take("other", 0).is_ok(), "buckets are per key");
        assert!(limiter.take("k", 500).is_ok(), "one token after 500 ms at 2/s");
        assert!(limiter.take("k", 500).is_err());
    }
}
