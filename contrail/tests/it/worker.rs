//! The edge Worker inside the real Workers runtime: `wrangler dev` (workerd,
//! local R2 and Durable Objects, a fresh state directory per test), driven
//! over HTTP. Its raw batches are read back by exporting local R2 through
//! Miniflare (`tests/worker/r2-export.mjs`) and decoded with the contract.

// Each test holds `exclusive()` for its whole body (one wrangler at a time);
// every test runs on its own runtime, so holding it across awaits cannot deadlock.
#![allow(clippy::await_holding_lock)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use contrail_edge::encode::{decode_events, decode_rejected};
use contrail_edge::{Event, KeyKind, Keyring, ProjectId};
use contrail_testkit::wrangler::{Wrangler, exclusive};
use http_body_util::{BodyExt, Full};
use hyper::HeaderMap;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::golden;
use crate::harness::{SECRET, TestStack};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

fn keyring() -> Keyring {
    Keyring::new(vec![SECRET.as_bytes().to_vec()], []).unwrap()
}

fn key(kind: KeyKind, project: &str) -> String {
    keyring().mint(kind, &ProjectId::parse(project).unwrap())
}

/// The Worker with the test secret and `vars`, on fresh state under `dir`.
fn start(dir: &Path, vars: &[(&str, &str)]) -> Wrangler {
    Wrangler::start(&dir.join("state"), &[("CONTRAIL_KEYS_SECRETS", SECRET)], vars)
}

async fn send(
    http: &HttpClient,
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> (u16, HeaderMap, Value) {
    let mut builder = hyper::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    let response = http.request(builder.body(Full::new(Bytes::from(body))).unwrap()).await.expect("worker answers");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (parts.status.as_u16(), parts.headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn post_batch(http: &HttpClient, worker: &Wrangler, key: &str, messages: &[Value]) -> (u16, HeaderMap, Value) {
    let headers =
        [("x-write-key".to_owned(), key.to_owned()), ("content-type".to_owned(), "application/json".to_owned())];
    send(http, "POST", &worker.url("/v1/batch"), &headers, json!({ "batch": messages }).to_string().into_bytes()).await
}

/// Exports local R2 into `out` until `done` holds for the decoded raw
/// batches (the alarm flushes asynchronously), or panics after `within`.
fn await_raw(
    worker: &Wrangler,
    out: &Path,
    within: Duration,
    done: impl Fn(&[(String, Vec<Event>)]) -> bool,
) -> Vec<(String, Vec<Event>)> {
    let deadline = Instant::now() + within;
    loop {
        let _ = std::fs::remove_dir_all(out);
        worker.export_r2(out);
        let files = read_batches(out, "raw", |bytes| decode_events(bytes).expect("a raw batch decodes"));
        if done(&files) {
            return files;
        }
        assert!(
            Instant::now() < deadline,
            "raw batches not as expected within {within:?}: {files:?}\n{}",
            worker.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Every `.arrow` file under `root/prefix`, decoded, keyed by object key.
fn read_batches<T>(root: &Path, prefix: &str, decode: impl Fn(&[u8]) -> T) -> Vec<(String, T)> {
    let mut out = Vec::new();
    let mut stack = vec![root.join(prefix)];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let key = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.push((key, decode(&std::fs::read(&path).unwrap())));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn track(id: &str, user: &str) -> Value {
    json!({"type": "track", "event": "Clicked", "userId": user, "messageId": id, "timestamp": "2026-11-20T10:00:00Z"})
}

/// Every case of the golden corpus gets the status, error code and answer
/// the corpus expects, as `contrail serve` does (`golden.rs`). Each case uses
/// its own project, so dedupe state never leaks between cases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_answers_the_golden_corpus_like_serve() {
    let _one = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let revoked = key(KeyKind::Write, "revoked");
    let worker = start(dir.path(), &[("CONTRAIL_KEYS_DENIED", &revoked)]);
    let http = client();
    let mut failures = Vec::new();
    let cases = golden::cases();
    for (n, case) in cases.iter().enumerate() {
        let project = format!("golden-{n}");
        let write_key = key(KeyKind::Write, &project);
        let substitutions = [
            ("{write_key_basic}", base64::engine::general_purpose::STANDARD.encode(format!("{write_key}:"))),
            ("{write_key}", write_key.clone()),
            ("{query_key}", key(KeyKind::Query, &project)),
            ("{revoked_key}", revoked.clone()),
        ];
        let substitute =
            |text: &str| substitutions.iter().fold(text.to_owned(), |acc, (from, to)| acc.replace(from, to));
        let request = golden::golden_request(case, &substitute);
        let (status, _, answer) = send(&http, "POST", &worker.url(&request.uri), &request.headers, request.body).await;
        if let Err(e) = golden::check_answer(case, status, &answer) {
            failures.push(format!("{}: {e}", case["name"].as_str().unwrap_or("?")));
        }
    }
    assert!(cases.len() >= 40);
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

/// What the corpus does not cover: unknown paths, wrong methods, CORS
/// preflights and origin rules, an over-long body without a length.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_refuses_what_serve_refuses_with_the_same_bodies() {
    let _one = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let worker = start(dir.path(), &[("CONTRAIL_PROJECT_ORIGINS", r#"{"web": ["https://app.test"]}"#)]);
    let serve = TestStack::with(std::sync::Arc::new(contrail_ingest::SystemClock), |c| {
        c.projects
            .insert("web".into(), contrail::config::ProjectConfig { allowed_origins: vec!["https://app.test".into()] });
    });
    let http = client();
    let web_key = key(KeyKind::Write, "web");
    let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    let event = json!({"type":"track","event":"E","userId":"u"}).to_string().into_bytes();
    let preflight = format!("/v1/batch?writeKey={web_key}");
    let short_track = json!({"type":"track","event":"E","userId":"u","messageId":"short-t","writeKey":web_key})
        .to_string()
        .into_bytes();
    type Case<'a> = (&'a str, &'a str, Vec<(String, String)>, Vec<u8>);
    let cases: Vec<Case<'_>> = vec![
        ("GET", "/nowhere", vec![], vec![]),
        ("GET", "/v1/batch", vec![], vec![]),
        ("POST", "/healthz", vec![], vec![]),
        ("POST", "/v1/track", h(&[("x-write-key", &web_key), ("origin", "https://evil.test")]), event.clone()),
        ("POST", "/v1/track", h(&[("x-write-key", &web_key), ("origin", "https://app.test")]), event.clone()),
        ("OPTIONS", &preflight, h(&[("origin", "https://evil.test")]), vec![]),
        // analytics.js: a one-letter path with the key in a text/plain body,
        // its preflight, and its telemetry (answered and discarded).
        ("POST", "/v1/t", h(&[("origin", "https://app.test"), ("content-type", "text/plain")]), short_track.clone()),
        ("OPTIONS", "/v1/b", h(&[("origin", "https://app.test")]), vec![]),
        ("POST", "/v1/m", h(&[("origin", "https://app.test")]), br#"{"series":[]}"#.to_vec()),
        ("GET", "/v1/m", vec![], vec![]),
    ];
    for (method, path, headers, body) in cases {
        let (status, got_headers, answer) = send(&http, method, &worker.url(path), &headers, body.clone()).await;
        let mut request = axum::http::Request::builder().method(method).uri(path);
        for (k, v) in &headers {
            request = request.header(k, v);
        }
        let mut request = request.body(axum::body::Body::from(body)).unwrap();
        request.extensions_mut().insert(axum::extract::ConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 1))));
        let (serve_status, _, serve_answer) = serve.send(request).await;
        assert_eq!(status, serve_status.as_u16(), "{method} {path}: worker {answer}, serve {serve_answer}");
        assert_eq!(answer["error"]["code"], serve_answer["error"]["code"], "{method} {path}");
        if status >= 400 {
            assert!(answer["error"]["message"].as_str().is_some_and(|m| m.len() > 10), "{method} {path}: {answer}");
        }
        if status == 200 {
            assert_eq!(got_headers["access-control-allow-origin"], "https://app.test");
        }
    }

    // A preflight without a key is answered for any origin, echoing what was asked.
    let (status, headers, _) = send(
        &http,
        "OPTIONS",
        &worker.url("/v1/batch"),
        &h(&[("origin", "https://any.test"), ("access-control-request-headers", "content-type, x-write-key")]),
        vec![],
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(headers["access-control-allow-origin"], "https://any.test");
    assert_eq!(headers["access-control-allow-methods"], "POST, OPTIONS");
    assert_eq!(headers["access-control-allow-headers"], "content-type, x-write-key");

    // 600 KiB streamed without Content-Length: refused while reading, 413.
    let big = vec![b' '; 600 * 1024];
    let chunks = futures::stream::iter(
        big.chunks(16 * 1024)
            .map(|c| Ok::<_, std::io::Error>(hyper::body::Frame::data(Bytes::copy_from_slice(c))))
            .collect::<Vec<_>>(),
    );
    let body = http_body_util::StreamBody::new(chunks);
    let streaming: Client<HttpConnector, http_body_util::StreamBody<_>> =
        Client::builder(TokioExecutor::new()).build_http();
    let request = hyper::Request::post(worker.url("/v1/batch")).header("x-write-key", &web_key).body(body).unwrap();
    let response = streaming.request(request).await.unwrap();
    assert_eq!(response.status(), 413);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(answer["error"]["code"], "payload_too_large", "{answer}");
}

/// An id whose shard is `shard` of `shards`, starting with `prefix`.
fn id_on_shard(prefix: &str, shard: u32, shards: u32) -> String {
    (0..).map(|i| format!("{prefix}-{i}")).find(|id| contrail_edge::shard::shard_of(id, shards) == shard).unwrap()
}

/// A write key's bucket empties: 429 with `Retry-After` and the error body,
/// and nothing of the refused request is stored, on any shard. The bucket is
/// split over the shards (the shard of a request's first event takes the
/// token), so a busy key does not queue at one object; another key is
/// unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_rate_limits_per_write_key_and_stores_nothing_refused() {
    let _one = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let worker = start(
        dir.path(),
        &[
            ("CONTRAIL_INGEST_RATE_LIMIT_PER_SEC", "0.3"),
            ("CONTRAIL_INGEST_RATE_LIMIT_BURST", "3"),
            ("CONTRAIL_BUFFER_FLUSH_INTERVAL_MS", "200"),
            ("CONTRAIL_BUFFER_SHARDS", "3"),
        ],
    );
    let http = client();
    let demo = key(KeyKind::Write, "demo");
    // 20 events on all three shards, led by an event on `home`.
    let batch = |name: &str, home: u32| -> Vec<Value> {
        let mut events = vec![track(&id_on_shard(name, home, 3), "u")];
        events.extend((0..19).map(|i| track(&format!("{name}-x{i}"), "u")));
        events
    };
    let (status, _, answer) = post_batch(&http, &worker, &demo, &batch("a", 0)).await;
    assert_eq!((status, answer["accepted"].as_u64()), (200, Some(20)), "{answer}");
    let (status, headers, answer) = post_batch(&http, &worker, &demo, &batch("b", 0)).await;
    assert_eq!(status, 429, "shard 0's share of the bucket (one request) is spent: {answer}");
    assert_eq!(answer["error"]["code"], "rate_limited");
    assert!(answer["error"]["message"].as_str().is_some_and(|m| m.contains("retry after")), "{answer}");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry), "Retry-After {retry}");
    let (status, _, answer) = post_batch(&http, &worker, &demo, &batch("c", 1)).await;
    assert_eq!((status, answer["accepted"].as_u64()), (200, Some(20)), "shard 1 has its own share: {answer}");
    let other = key(KeyKind::Write, "other");
    let (status, _, _) = post_batch(&http, &worker, &other, &batch("o", 0)).await;
    assert_eq!(status, 200, "buckets are per write key");

    let out = dir.path().join("r2");
    let files = await_raw(&worker, &out, Duration::from_secs(30), |files| {
        files.iter().map(|(_, e)| e.len()).sum::<usize>() >= 60
    });
    let ids: Vec<&str> = files.iter().flat_map(|(_, e)| e.iter().map(|e| e.event_id.as_str())).collect();
    assert_eq!(ids.len(), 60, "{ids:?}");
    assert!(!ids.iter().any(|id| id.starts_with("b-")), "the refused request stored nothing on any shard");
}

/// Four shards: retries meet their first copy whichever request carries
/// them; every flush is a create-only object holding exactly the accepted
/// events; and a flush that fails right after its put (the test fault) is
/// retried without writing anything twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_dedupes_across_requests_and_shards_and_flushes_each_event_once() {
    let _one = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let worker = start(
        dir.path(),
        &[
            ("CONTRAIL_BUFFER_SHARDS", "4"),
            ("CONTRAIL_BUFFER_FLUSH_INTERVAL_MS", "300"),
            ("CONTRAIL_BUFFER_FLUSH_EVENTS", "60"),
            ("CONTRAIL_TEST_FAULT", "fail_after_put"),
        ],
    );
    let http = client();
    let demo = key(KeyKind::Write, "demo");
    let mut accepted = BTreeSet::new();
    for n in 0..3 {
        let batch: Vec<Value> = (0..100).map(|i| track(&format!("m-{}", n * 100 + i), &format!("u{i}"))).collect();
        let (status, _, answer) = post_batch(&http, &worker, &demo, &batch).await;
        assert_eq!((status, &answer["accepted"], &answer["duplicates"]), (200, &json!(100), &json!(0)), "{answer}");
        accepted.extend((0..100).map(|i| format!("m-{}", n * 100 + i)));
    }
    // Retries: the same 300 ids in other batches and orders, plus in-batch
    // copies and one new id.
    let mut retry: Vec<Value> = (0..300).rev().map(|i| track(&format!("m-{i}"), "someone-else")).collect();
    retry.truncate(150);
    retry.push(track("m-7", "u"));
    retry.push(track("new-1", "u"));
    retry.push(track("new-1", "u"));
    let (status, _, answer) = post_batch(&http, &worker, &demo, &retry).await;
    assert_eq!((status, &answer["accepted"], &answer["duplicates"]), (200, &json!(1), &json!(152)), "{answer}");
    accepted.insert("new-1".to_owned());
    let rest: Vec<Value> = (0..150).map(|i| track(&format!("m-{i}"), "u")).collect();
    let (_, _, answer) = post_batch(&http, &worker, &demo, &rest).await;
    assert_eq!((&answer["accepted"], &answer["duplicates"]), (&json!(0), &json!(150)), "{answer}");
    // Ids that SQLite's JSON functions escape still dedupe.
    let odd = r#"q"uo\te/ü"#;
    for expected in [json!({"accepted": 1, "duplicates": 0}), json!({"accepted": 0, "duplicates": 1})] {
        let (status, _, answer) = post_batch(&http, &worker, &demo, &[track(odd, "u")]).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(json!({"accepted": answer["accepted"], "duplicates": answer["duplicates"]}), expected);
    }
    accepted.insert(odd.to_owned());

    let out = dir.path().join("r2");
    let files = await_raw(&worker, &out, Duration::from_secs(60), |files| {
        files.iter().map(|(_, e)| e.len()).sum::<usize>() >= accepted.len()
    });
    let mut seen = BTreeMap::new();
    for (key, events) in &files {
        assert!(key.starts_with("raw/project=demo/region=na/date="), "{key}");
        assert!(events.len() <= 60, "a flush holds at most CONTRAIL_BUFFER_FLUSH_EVENTS: {key} has {}", events.len());
        for event in events {
            *seen.entry(event.event_id.clone()).or_insert(0) += 1;
            assert_eq!(event.project_id, "demo");
            assert_eq!(event.colo.as_deref(), Some("DFW"), "request.cf enrichment (Miniflare's)");
            assert!(event.country.is_some() && event.city.is_some() && event.region.is_some());
        }
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "events written twice: {twice:?}");
    assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), accepted);
    // Each shard's first flush failed after its put, and its retry found
    // its own object instead of writing a second one.
    let log = worker.log();
    let retried = log.matches("was written by an earlier attempt of this flush").count();
    assert!(retried >= 1, "no flush was retried after the injected fault:\n{log}");
    let buffers: BTreeSet<&str> = files.iter().map(|(k, _)| k.rsplit('/').next().unwrap()).collect();
    assert_eq!(buffers.len(), files.len(), "one object per flush");
    // Events went to all four shards (each shard flushes its own objects).
    assert!(files.len() >= 4, "{} objects", files.len());
}

/// `wrangler dev` killed between ingest and flush: after a restart on the
/// same state, the persisted alarm flushes every acknowledged event, once,
/// and the ids are still remembered. The dedupe window is configured below
/// its 24-hour floor: raised to it, with a warning naming the variable (as
/// `serve` does; `settings.rs`'s unit tests check the window in force).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_restart_between_ingest_and_flush_loses_nothing() {
    let _one = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let vars = [
        ("CONTRAIL_BUFFER_FLUSH_INTERVAL_MS", "8000"),
        ("CONTRAIL_BUFFER_SHARDS", "2"),
        ("CONTRAIL_BUFFER_DEDUPE_HOURS", "1"),
    ];
    let worker = start(dir.path(), &vars);
    let http = client();
    let demo = key(KeyKind::Write, "demo");
    let batch: Vec<Value> = (0..50).map(|i| track(&format!("k-{i}"), "u")).collect();
    let (status, _, answer) = post_batch(&http, &worker, &demo, &batch).await;
    assert_eq!((status, &answer["accepted"]), (200, &json!(50)), "{answer}");
    // wrangler relays workerd's console output a moment after the answer.
    let warning = "buffer.dedupe_hours (CONTRAIL_BUFFER_DEDUPE_HOURS) = 1 is below 24";
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !worker.log().contains(warning) {
        assert!(std::time::Instant::now() < deadline, "the raised dedupe window is logged:\n{}", worker.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let bad = json!({"type": "track", "userId": "u"});
    let (_, _, answer) = post_batch(&http, &worker, &demo, &[bad]).await;
    assert_eq!(answer["rejected"][0]["code"], "missing_field");
    worker.kill();

    let out = dir.path().join("r2");
    assert_eq!(
        contrail_testkit::wrangler::export_r2(&dir.path().join("state"), &out),
        0,
        "nothing flushed before the kill"
    );
    let worker = start(dir.path(), &vars);
    let files = await_raw(&worker, &out, Duration::from_secs(60), |files| {
        files.iter().map(|(_, e)| e.len()).sum::<usize>() >= 50
    });
    let ids: BTreeSet<String> = files.iter().flat_map(|(_, e)| e.iter().map(|e| e.event_id.clone())).collect();
    assert_eq!(ids.len(), 50);
    assert_eq!(files.iter().map(|(_, e)| e.len()).sum::<usize>(), 50, "none twice");
    let (status, _, answer) = post_batch(&http, &worker, &demo, &batch).await;
    assert_eq!((status, &answer["duplicates"]), (200, &json!(50)), "ids remembered across the restart: {answer}");
    let quarantine = read_batches(&out, "rejected", |b| decode_rejected(b).expect("quarantine decodes"));
    let rejected: Vec<_> = quarantine.iter().flat_map(|(_, r)| r.iter()).collect();
    assert_eq!(rejected.len(), 1);
    assert_eq!(
        (rejected[0].code.as_str(), rejected[0].message.as_str()),
        ("missing_field", r#"{"type":"track","userId":"u"}"#)
    );
}

/// The same messages through the Worker and through `contrail serve` end up
/// as the same rows after compaction and SQL, but for the receive time and
/// the edge-only enrichment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_and_serve_give_the_same_rows_after_compaction() {
    let _one = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let worker = start(dir.path(), &[("CONTRAIL_BUFFER_FLUSH_INTERVAL_MS", "200"), ("CONTRAIL_BUFFER_SHARDS", "2")]);
    let http = client();
    let mut messages: Vec<Value> = include_str!("../../../fixtures/query/events.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The fixture has track, page and identify; add the other three types.
    messages.extend([
        json!({"type": "screen", "name": "Settings", "userId": "user-01", "messageId": "x-screen",
               "timestamp": "2026-11-21T09:00:00Z", "properties": {"tab": "billing"}}),
        json!({"type": "group", "groupId": "acme-inc", "userId": "user-01", "messageId": "x-group",
               "timestamp": "2026-11-21T09:01:00Z", "traits": {"plan": "team", "seats": 12}}),
        json!({"type": "alias", "previousId": "anon-9", "userId": "user-01", "messageId": "x-alias",
               "timestamp": "2026-11-21T09:02:00Z"}),
    ]);
    let serve = TestStack::new();
    let demo = key(KeyKind::Write, "demo");
    for chunk in messages.chunks(50) {
        let (status, _, worker_answer) = post_batch(&http, &worker, &demo, chunk).await;
        let (serve_status, serve_answer) = serve.post_json("/v1/batch", &json!({ "batch": chunk })).await;
        assert_eq!((status, &worker_answer), (serve_status.as_u16(), &serve_answer));
    }
    serve.flush().await;
    serve.compact().await;

    // The Worker's raw batches, copied into an empty stack's object store.
    let sink = TestStack::new();
    let store = sink.stack.data.join(contrail::serve::STORE_DIR);
    await_raw(&worker, &dir.path().join("r2"), Duration::from_secs(30), |files| {
        files.iter().map(|(_, e)| e.len()).sum::<usize>() >= messages.len()
    });
    assert!(worker.export_r2(&store) >= 2, "raw batches from both shards");
    let report = sink.compact().await;
    assert_eq!((report.events_in, report.events_out), (messages.len(), messages.len()), "{report:?}");

    let columns = "event_id, project_id, type, event, user_id, anonymous_id, distinct_id, session_id, group_id, \
                   previous_id, timestamp, properties, traits, context, url, referrer, user_agent, browser, os, device, ip_hash";
    let sql = format!("SELECT {columns} FROM events ORDER BY event_id");
    let (from_serve, from_worker) = (serve.rows(&sql).await, sink.rows(&sql).await);
    assert_eq!(from_serve.len(), messages.len());
    let types: BTreeSet<&str> = from_worker.iter().filter_map(|r| r["type"].as_str()).collect();
    assert_eq!(types.len(), 6, "every message type went through: {types:?}");
    assert_eq!(from_worker.len(), from_serve.len());
    for (w, s) in from_worker.iter().zip(&from_serve) {
        assert_eq!(w, s);
    }
    let enriched = sink.number("SELECT count(*) FROM events WHERE colo IS NOT NULL AND country IS NOT NULL").await;
    assert_eq!(enriched as usize, messages.len(), "edge rows carry request.cf enrichment");
    let local = serve.number("SELECT count(*) FROM events WHERE colo IS NULL").await;
    assert_eq!(local as usize, messages.len(), "serve has no edge data");
}

/// `wrangler deploy --dry-run` accepts the configuration: the bundle, the
/// Durable Object binding with its SQLite migration, the R2 bucket, the vars.
#[test]
fn wrangler_deploy_dry_run_succeeds() {
    let _one = exclusive();
    let root = contrail_testkit::wrangler::repo_root();
    let out = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(root.join("tests/worker/node_modules/.bin/wrangler"))
        .current_dir(&root)
        .args(["deploy", "--dry-run", "--outdir"])
        .arg(out.path())
        .env("WRANGLER_SEND_METRICS", "false")
        .output()
        .expect("wrangler runs");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{text}");
    for expected in
        ["env.BUFFERS (EventBuffer)", "Durable Object", "env.RAW (contrail)", "R2 Bucket", "--dry-run: exiting now"]
    {
        assert!(text.contains(expected), "{expected:?} missing from:\n{text}");
    }
    let wasm =
        std::fs::read_dir(out.path()).unwrap().flatten().any(|e| e.path().extension().is_some_and(|x| x == "wasm"));
    assert!(wasm, "the bundle holds the wasm module");
}
