//! The web dashboard at `/`: the files `build.rs` embedded from
//! `dashboard/dist`, each served gzip-compressed when the client accepts it,
//! with an ETag (304 on a match). Hashed files under `/assets/` never
//! change, so browsers keep them for a year; `index.html` is revalidated on
//! every load, so a new binary's dashboard shows at once.
//!
//! A binary built before the front end was serves, at `/`, a page saying how
//! to build it (`cargo build` never runs npm).

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// Where it is served (`/` for `index.html`).
    pub route: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// A hash of its bytes.
    pub etag: &'static str,
    /// The file as built.
    pub identity: &'static [u8],
    /// The file gzip-compressed.
    pub gzip: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/dashboard_assets.rs"));

/// Whether the binary holds a built dashboard.
pub fn is_embedded() -> bool {
    !ASSETS.is_empty()
}

/// `GET` routes for every embedded file, or the how-to-build page at `/`.
pub fn routes() -> Router {
    if !is_embedded() {
        return Router::new().route("/", get(|| async { Html(NOT_BUILT) }));
    }
    ASSETS.iter().fold(Router::new(), |router, asset| {
        router.route(asset.route, get(move |headers: HeaderMap| async move { serve(asset, &headers) }))
    })
}

/// Scripts, styles and API calls from this origin only; no framing (the
/// pages hold a query key).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn serve(asset: &Asset, headers: &HeaderMap) -> Response {
    let gzip = accepts_gzip(headers);
    let etag = if gzip { format!("\"{}-gz\"", asset.etag) } else { format!("\"{}\"", asset.etag) };
    let cache = if asset.route.starts_with("/assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
    let fresh = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|tags| {
        // A proxy that re-compresses weakens the tag (`W/"…"`); it still names these bytes' source.
        tags.split(',').map(|t| t.trim()).any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
    });
    let mut response = if fresh { StatusCode::NOT_MODIFIED.into_response() } else { body(asset, gzip).into_response() };
    let h = response.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, etag);
    }
    response
}

fn body(asset: &Asset, gzip: bool) -> Response {
    let content_type = HeaderValue::from_static(asset.content_type);
    if gzip {
        let encoding = HeaderValue::from_static("gzip");
        ([(header::CONTENT_TYPE, content_type), (header::CONTENT_ENCODING, encoding)], asset.gzip).into_response()
    } else {
        ([(header::CONTENT_TYPE, content_type)], asset.identity).into_response()
    }
}

/// Whether `Accept-Encoding` lists gzip without `q=0`.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let Some(accepted) = headers.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()) else { return false };
    accepted.split(',').any(|coding| {
        let mut parts = coding.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        let refused = parts.any(|p| p.replace(' ', "") == "q=0" || p.replace(' ', "") == "q=0.0");
        (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
    })
}

/// Served at `/` by a binary built without the front end.
const NOT_BUILT: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Contrail: dashboard not built</title>
<link rel="icon" href="data:,"><meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}code,pre{background:#f3f3f3;padding:.1rem .3rem}</style>
</head><body>
<h1>The dashboard is not in this binary</h1>
<p>This <code>contrail</code> was compiled before the web dashboard was built, so it serves the API only
(<a href="/docs">API docs</a>). To build the dashboard and embed it, from the repository:</p>
<pre>scripts/build-dashboard          # npm ci + vite build into dashboard/dist
cargo build --release            # embeds dashboard/dist</pre>
<p>or run everything with <code>scripts/serve</code>, which does both.</p>
</body></html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn gzip_is_sent_only_to_clients_that_accept_it() {
        assert!(accepts_gzip(&accept("gzip, deflate, br")));
        assert!(accepts_gzip(&accept("br;q=1.0, gzip;q=0.8")));
        assert!(accepts_gzip(&accept("*")));
        assert!(!accepts_gzip(&accept("gzip;q=0")));
        assert!(!accepts_gzip(&accept("br, identity")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
