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

// Header names are lower case (HTTP/2's form, and what `http::HeaderName`
// accepts as a constant); both transports copy these sets as they are.

/// Headers of every answer to a cross-origin request other than a
/// preflight: the origin may read it, and a 429's `Retry-After` with it.
pub fn answer_headers(origin: &str) -> [(&'static str, &str); 3] {
    [("access-control-allow-origin", origin), ("access-control-expose-headers", EXPOSE_HEADERS), ("vary", "Origin")]
}

/// Headers of a preflight's `204`. Browsers send no key with a preflight, so
/// it is answered for any origin (echoed, or `*` without one); the actual
/// request is checked against the project's allowed origins.
pub fn preflight_headers<'a>(
    origin: Option<&'a str>,
    requested_headers: Option<&'a str>,
) -> [(&'static str, &'a str); 5] {
    [
        ("access-control-allow-origin", origin.unwrap_or("*")),
        ("vary", "Origin"),
        ("access-control-allow-methods", ALLOW_METHODS),
        ("access-control-allow-headers", requested_headers.unwrap_or(DEFAULT_ALLOW_HEADERS)),
        ("access-control-max-age", MAX_AGE_SECS),
    ]
}

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
