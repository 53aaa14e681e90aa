//! Ingest HTTP behaviour beyond the golden corpus: dedupe across requests,
//! hostile bodies, rate limits, CORS, and the operational endpoints.

use std::io::Write;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use contrail::config::ProjectConfig;
use contrail_ingest::SystemClock;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::json;

use crate::harness::TestStack;

fn track(id: &str) -> serde_json::Value {
    json!({"type": "track", "userId": "u", "event": "E", "messageId": id})
}

#[tokio::test]
async fn duplicate_message_ids_across_requests_are_acknowledged_but_stored_once() {
    let t = TestStack::new();
    let (status, first) = t.post_json("/v1/batch", &json!({"batch": [track("a"), track("b")]})).await;
    assert_eq!((status, first["accepted"].as_u64(), first["duplicates"].as_u64()), (StatusCode::OK, Some(2), Some(0)));
    t.flush().await;
    // After the first copy was flushed, a retry still dedupes (the window outlives flushes).
    let (status, second) = t.post_json("/v1/batch", &json!({"batch": [track("b"), track("c")]})).await;
    assert_eq!(
        (status, second["accepted"].as_u64(), second["duplicates"].as_u64()),
        (StatusCode::OK, Some(1), Some(1))
    );
    let (_, third) = t.post_json("/v1/track", &json!({"userId": "u", "event": "E", "messageId": "c"})).await;
    assert_eq!(third["duplicates"], 1);
    t.flush().await;
    let mut ids: Vec<_> = t.raw_events().await.into_iter().map(|e| e.event_id).collect();
    ids.sort();
    assert_eq!(ids, ["a", "b", "c"]);
}

#[tokio::test]
async fn the_same_message_id_in_two_projects_is_two_events() {
    let t = TestStack::new();
    let other = t.key(contrail_edge::KeyKind::Write, "other");
    let body = json!({"batch": [track("same")]}).to_string();
    let (_, a) = t.post_json("/v1/batch", &json!({"batch": [track("same")]})).await;
    let (_, b) = t.post("/v1/batch", &[("x-write-key", &other)], body).await;
    assert_eq!((a["accepted"].as_u64(), b["accepted"].as_u64()), (Some(1), Some(1)));
    t.flush().await;
    let mut projects: Vec<_> = t.raw_events().await.into_iter().map(|e| e.project_id).collect();
    projects.sort();
    assert_eq!(projects, ["demo", "other"]);
}

#[tokio::test]
async fn a_gzip_bomb_is_refused_with_413() {
    let t = TestStack::new();
    // 64 MiB of a valid-looking batch prefix and spaces: ~64 KiB compressed.
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(b"{\"batch\":[").unwrap();
    let spaces = vec![b' '; 1 << 20];
    for _ in 0..64 {
        encoder.write_all(&spaces).unwrap();
    }
    let bomb = encoder.finish().unwrap();
    assert!(bomb.len() < 512 << 10, "the bomb itself is small: {}", bomb.len());
    let key = t.write_key();
    let (status, body) = t.post("/v1/batch", &[("x-write-key", &key), ("content-encoding", "gzip")], bomb).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], "payload_too_large");
}

#[tokio::test]
async fn a_body_larger_than_the_wire_limit_is_refused_before_it_is_read_whole() {
    let t = TestStack::new();
    let key = t.write_key();
    let (status, body) = t.post("/v1/batch", &[("x-write-key", &key)], vec![b' '; 4 << 20]).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")));
}

#[tokio::test]
async fn invalid_utf8_and_non_object_single_messages_are_400() {
    let t = TestStack::new();
    let key = t.write_key();
    let (status, body) = t.post("/v1/track", &[("x-write-key", &key)], vec![0xff, 0xfe, b'{']).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("malformed_json")));
    let (status, body) = t.post("/v1/track", &[("x-write-key", &key)], "[1,2]").await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("not_a_batch")));
    let (status, _) = t.post("/v1/track", &[("x-write-key", &key)], "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_bad_header_key_is_refused_before_the_body_is_parsed() {
    let t = TestStack::new();
    // The body is garbage: were it parsed first, this would be a 400.
    let (status, body) = t.post("/v1/batch", &[("x-write-key", "ck_demo_AAAAAAAAAAAAAAAAAAAAAA")], "{{{").await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_write_key")));
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_retry_after_and_others_keep_working() {
    let t = TestStack::with(Arc::new(SystemClock), |c| {
        c.ingest.rate_limit_per_sec = 0.5;
        c.ingest.rate_limit_burst = 2.0;
    });
    for i in 0..2 {
        let (status, _) = t.post_json("/v1/batch", &json!({"batch": [track(&format!("ok{i}"))]})).await;
        assert_eq!(status, StatusCode::OK);
    }
    let key = t.write_key();
    let request = Request::post("/v1/batch").header("x-write-key", &key).body(Body::from(r#"{"batch":[]}"#)).unwrap();
    let (status, headers, body) = t.send(request).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(headers["retry-after"], "2");
    let other = t.key(contrail_edge::KeyKind::Write, "other");
    let (status, _) = t.post("/v1/batch", &[("x-write-key", &other)], r#"{"batch":[]}"#).await;
    assert_eq!(status, StatusCode::OK, "buckets are per key");
}

#[tokio::test]
async fn cors_preflight_is_answered_and_allowed_origins_are_enforced() {
    let t = TestStack::with(Arc::new(SystemClock), |c| {
        c.projects.insert("demo".into(), ProjectConfig { allowed_origins: vec!["https://shop.test".into()] });
    });
    let preflight = Request::options("/v1/batch")
        .header("origin", "https://anything.test")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type, authorization")
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = t.send(preflight).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(headers["access-control-allow-origin"], "https://anything.test");
    assert_eq!(headers["access-control-allow-headers"], "content-type, authorization");
    assert!(headers["access-control-allow-methods"].to_str().unwrap().contains("POST"));

    let key = t.write_key();
    let body = json!({"batch": [track("x")]}).to_string();
    let (status, refused) =
        t.post("/v1/batch", &[("x-write-key", &key), ("origin", "https://evil.test")], body.clone()).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("origin_not_allowed")));
    let request = Request::post("/v1/batch")
        .header("x-write-key", &key)
        .header("origin", "https://shop.test")
        .body(Body::from(body))
        .unwrap();
    let (status, headers, answer) = t.send(request).await;
    assert_eq!((status, answer["accepted"].as_u64()), (StatusCode::OK, Some(1)));
    assert_eq!(headers["access-control-allow-origin"], "https://shop.test");
    // Server-side SDKs send no Origin and are not affected.
    let (status, _) = t.post_json("/v1/batch", &json!({"batch": [track("y")]})).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_paths_and_methods_get_the_error_body() {
    let t = TestStack::new();
    let (status, _, body) = t.send(Request::get("/v2/nothing").body(Body::empty()).unwrap()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (status, _, body) = t.send(Request::get("/v1/batch").body(Body::empty()).unwrap()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed")));
    assert!(body["error"]["message"].as_str().unwrap().contains("POST"));
}

#[tokio::test]
async fn health_readiness_and_metrics_report_what_happened() {
    let t = TestStack::new();
    let (status, _, body) = t.send(Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (status, _, body) = t.send(Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ready")));

    t.post_json("/v1/batch", &json!({"batch": [track("m1"), track("m1"), {"type": "track", "userId": "u"}]})).await;
    t.flush().await;
    let response = tower::ServiceExt::oneshot(t.router.clone(), Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text =
        String::from_utf8(http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes().to_vec())
            .unwrap();
    // The recorder is process-wide and tests run in parallel: check that the
    // series exist and are non-zero, not exact values.
    for series in [
        "contrail_events_accepted_total",
        "contrail_events_duplicate_total",
        "contrail_events_rejected_total{reason=\"missing_field\"}",
        "contrail_flushes_total{stream=\"events\"}",
        "contrail_flush_rows_total{stream=\"rejected\"}",
        "contrail_flush_seconds_count{stream=\"events\"}",
        "contrail_buffer_commit_seconds_count",
    ] {
        let line = text.lines().find(|l| l.starts_with(series)).unwrap_or_else(|| panic!("{series} missing:\n{text}"));
        let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(value > 0.0, "{line}");
    }
}

#[tokio::test]
async fn every_route_the_router_serves_is_in_the_openapi_document_and_every_documented_one_is_served() {
    let t = TestStack::new();
    let (status, _, doc) = t.get("/openapi.json", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let documented: std::collections::BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    let served: std::collections::BTreeSet<String> = contrail::router::paths().into_iter().collect();
    assert_eq!(
        documented.symmetric_difference(&served).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "routes and /openapi.json disagree"
    );
    // Every documented operation is routed: never the 404/405 fallbacks.
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path.replace("{distinct_id}", "u1").replace("{id}", "0123456789abcdef0123");
        for method in item.as_object().unwrap().keys() {
            let request = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&concrete)
                .header("content-type", "application/json")
                .body(Body::from("{}"))
                .unwrap();
            let (status, _, body) = t.send(request).await;
            assert!(
                status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is documented but answered {status}: {body}"
            );
        }
    }
}

#[tokio::test]
async fn analytics_js_short_paths_ingest_like_the_long_names_and_its_telemetry_is_discarded() {
    let t = TestStack::new();
    let key = t.write_key();
    for (path, message) in [
        ("/v1/t", json!({"type": "track", "userId": "u", "event": "E", "messageId": "short-t"})),
        ("/v1/p", json!({"type": "page", "anonymousId": "a", "name": "Home", "messageId": "short-p"})),
        ("/v1/i", json!({"type": "identify", "userId": "u", "anonymousId": "a", "messageId": "short-i"})),
        ("/v1/s", json!({"type": "screen", "userId": "u", "name": "Main", "messageId": "short-s"})),
        ("/v1/g", json!({"type": "group", "userId": "u", "groupId": "g", "messageId": "short-g"})),
        ("/v1/a", json!({"type": "alias", "userId": "u", "previousId": "a", "messageId": "short-a"})),
    ] {
        // analytics.js sends the key in the body and `text/plain` (no preflight).
        let mut body = message.clone();
        body["writeKey"] = json!(key);
        let (status, answer) = t.post(path, &[("content-type", "text/plain")], body.to_string()).await;
        assert_eq!((status, &answer["accepted"]), (StatusCode::OK, &json!(1)), "{path}: {answer}");
    }
    let batch = json!({"batch": [track("short-b")], "writeKey": key});
    let (status, answer) = t.post("/v1/b", &[("content-type", "text/plain")], batch.to_string()).await;
    assert_eq!((status, &answer["accepted"]), (StatusCode::OK, &json!(1)), "{answer}");
    // The path's type wins over nothing else: a track at /v1/p is refused as at /v1/page.
    let (_, long) = t.post_json("/v1/page", &json!({"type": "track", "userId": "u", "event": "E"})).await;
    let (_, short) = t.post_json("/v1/p", &json!({"type": "track", "userId": "u", "event": "E"})).await;
    assert_eq!(short, long);

    let (status, answer) = t.post("/v1/m", &[("content-type", "text/plain")], r#"{"series":[]}"#).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let request = Request::builder()
        .method("OPTIONS")
        .uri("/v1/t")
        .header("origin", "https://shop.example")
        .header("access-control-request-headers", "content-type")
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = t.send(request).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(headers["access-control-allow-origin"], "https://shop.example");
    t.flush().await;
    let ids: std::collections::BTreeSet<String> = t.raw_events().await.into_iter().map(|e| e.event_id).collect();
    for id in ["short-t", "short-p", "short-i", "short-s", "short-g", "short-a", "short-b"] {
        assert!(ids.contains(id), "{id} stored: {ids:?}");
    }
}
