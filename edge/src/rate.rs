//! The token bucket behind the per-write-key rate limit.
//!
//! One piece of arithmetic for both transports: `contrail serve` keeps its
//! buckets in memory, the Worker keeps each one in a Durable Object's SQLite
//! storage (a row of `tokens` and `updated_ms`), so that a client sees the same
//! `429` and `Retry-After` from either.

/// Sustained rate and burst of a bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests per second, sustained.
    pub per_sec: f64,
    /// Requests at once (the bucket's size); at least 1.
    pub burst: f64,
}

/// A bucket's state: tokens left at `updated_ms`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenBucket {
    /// Tokens available at `updated_ms`.
    pub tokens: f64,
    /// When `tokens` was last computed (ms since the epoch).
    pub updated_ms: i64,
}

impl RateLimit {
    fn burst(&self) -> f64 {
        self.burst.max(1.0)
    }

    /// A new client's bucket: full.
    pub fn full(&self, now_ms: i64) -> TokenBucket {
        TokenBucket { tokens: self.burst(), updated_ms: now_ms }
    }

    /// Whether a bucket would be full by `now_ms`, i.e. forgetting it changes nothing.
    pub fn is_idle(&self, bucket: &TokenBucket, now_ms: i64) -> bool {
        self.refilled(bucket, now_ms) >= self.burst()
    }

    fn refilled(&self, bucket: &TokenBucket, now_ms: i64) -> f64 {
        let elapsed = (now_ms - bucket.updated_ms).max(0) as f64;
        (bucket.tokens + elapsed * self.per_sec / 1000.0).min(self.burst())
    }

    /// Takes one token at `now_ms`. On refusal, the whole seconds until one is
    /// available (at least 1), for `Retry-After`.
    pub fn take(&self, bucket: &mut TokenBucket, now_ms: i64) -> Result<(), u64> {
        bucket.tokens = self.refilled(bucket, now_ms);
        bucket.updated_ms = now_ms.max(bucket.updated_ms);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let per_ms = (self.per_sec / 1000.0).max(f64::MIN_POSITIVE);
        let wait_ms = (1.0 - bucket.tokens) / per_ms;
        Err(((wait_ms / 1000.0).ceil() as u64).max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_the_rate() {
        let limit = RateLimit { per_sec: 2.0, burst: 3.0 };
        let mut bucket = limit.full(0);
        for _ in 0..3 {
            assert!(limit.take(&mut bucket, 0).is_ok());
        }
        assert_eq!(limit.take(&mut bucket, 0), Err(1));
        assert!(limit.take(&mut bucket, 500).is_ok(), "one token after 500 ms at 2/s");
        assert!(limit.take(&mut bucket, 500).is_err());
        assert!(!limit.is_idle(&bucket, 1000));
        assert!(limit.is_idle(&bucket, 2000));
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let limit = RateLimit { per_sec: 0.1, burst: 1.0 };
        let mut bucket = limit.full(0);
        assert!(limit.take(&mut bucket, 0).is_ok());
        assert_eq!(limit.take(&mut bucket, 0), Err(10));
        assert_eq!(limit.take(&mut bucket, 9_500), Err(1));
    }

    #[test]
    fn a_clock_going_backwards_never_mints_tokens() {
        let limit = RateLimit { per_sec: 1.0, burst: 1.0 };
        let mut bucket = limit.full(10_000);
        assert!(limit.take(&mut bucket, 10_000).is_ok());
        assert!(limit.take(&mut bucket, 5_000).is_err());
        assert_eq!(bucket.updated_ms, 10_000);
    }
}
