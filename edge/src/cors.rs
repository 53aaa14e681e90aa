//! Cross-origin rules shared by the Worker and `contrail serve`: which origins
//! may send a project's events, and what a preflight answers.

use crate::error::IngestError;

/// `Access-Control-Allow-Methods` of a preflight.
pub const ALLOW_METHODS: &str = "POST, OPTIONS";
/// `Access-Control-Allow-Headers` when the preflight names none.
pub const DEFAULT_ALLOW_HEADERS: &str = "Content-Type, Content-Encoding, Authorization, X-Write-Key";
/// `Access-Control-Max-Age`: browsers cache a preflight for a day.
pub const MAX_AGE_SECS: &str = "86400";
/// Response headers a page's script may read: a 429's `Retry-After`.
pub const EXPOSE_HEADERS: &str = "Retry-After";

/// Refuses `origin` unless `allowed` is empty (any origin) or lists it
/// exactly. Requests without an `Origin` (servers, SDKs) are always allowed:
/// the write key is what authenticates them.
pub fn check_origin(allowed: &[String], origin: Option<&str>) -> Result<(), IngestError> {
    match origin {
        Some(origin) if !allowed.is_empty() && !allowed.iter().any(|o| o == origin) => {
            Err(IngestError::OriginNotAllowed(origin.to_owned()))
        }
        _ => Ok(()),
    }
}

/// The write key of a `?writeKey=` query string (a preflight's only key).
pub fn query_write_key(query: Option<&str>) -> Option<&str> {
    query?.split('&').filter_map(|pair| pair.split_once('=')).find(|(k, _)| *k == "writeKey").map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_open_by_default_and_exact_when_listed() {
        assert!(check_origin(&[], Some("https://any.test")).is_ok());
        let allowed = vec!["https://a.test".to_owned()];
        assert!(check_origin(&allowed, Some("https://a.test")).is_ok());
        assert!(check_origin(&allowed, None).is_ok());
        let refused = check_origin(&allowed, Some("https://a.test.evil")).unwrap_err();
        assert_eq!(refused.status(), 403);
        assert_eq!(query_write_key(Some("x=1&writeKey=ck_a_b")), Some("ck_a_b"));
        assert_eq!(query_write_key(Some("x=1")), None);
    }
}
