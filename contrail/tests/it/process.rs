//! Tests of the real `contrail` binary: a crash (kill -9) in the middle of
//! ingest and flushes, and an unmodified Segment SDK from npm.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use contrail_edge::{Event, KeyKind, Keyring, ProjectId};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use object_store::local::LocalFileSystem;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::harness::{SECRET, raw_files};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

fn write_key(project: &str) -> String {
    Keyring::new(vec![SECRET.as_bytes().to_vec()], [])
        .unwrap()
        .mint(KeyKind::Write, &ProjectId::parse(project).unwrap())
}

/// A `contrail serve` child process on a free port.
struct ServeProcess {
    child: Child,
    port: u16,
}

impl ServeProcess {
    fn start(data: &Path, env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(data.with_extension("log")).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_contrail"));
        command
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
            .arg(data)
            .env("CONTRAIL_KEYS_SECRETS", SECRET)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log));
        for (k, v) in env {
            command.env(k, v);
        }
        Self { child: command.spawn().expect("contrail binary starts"), port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn wait_ready(&self) {
        let http = client();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let request = hyper::Request::get(self.url("/readyz")).body(Full::default()).unwrap();
            if let Ok(response) = http.request(request).await
                && response.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("contrail serve did not become ready within 30 s");
    }

    fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().unwrap();
    }

    /// SIGTERM, and wait for the graceful shutdown (which flushes the buffer).
    fn terminate(mut self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "serve exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("serve did not exit within 30 s of SIGTERM");
    }
}

async fn post(http: &HttpClient, url: &str, key: &str, body: &Value) -> Result<(u16, Value), String> {
    let request = hyper::Request::post(url)
        .header("x-write-key", key)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = http.request(request).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

async fn raw_events_in(data: &Path) -> Vec<(String, Vec<Event>)> {
    let store = LocalFileSystem::new_with_prefix(data.join("store")).unwrap();
    raw_files(&store).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_loses_no_acknowledged_event_and_duplicates_none() {
    let dir = tempfile::tempdir().unwrap();
    let data: PathBuf = dir.path().join("data");
    let key = write_key("demo");
    // Tiny thresholds so flushes are constantly in progress when the process dies.
    let env = [("CONTRAIL_BUFFER_FLUSH_EVENTS", "150"), ("CONTRAIL_BUFFER_FLUSH_INTERVAL_MS", "20")];
    let sent = Arc::new(Mutex::new(HashSet::<String>::new()));
    let acked = Arc::new(Mutex::new(HashSet::<String>::new()));
    for round in 0..3 {
        let serve = ServeProcess::start(&data, &env);
        serve.wait_ready().await;
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for c in 0..6 {
            let (url, key, stop, sent, acked) =
                (serve.url("/v1/batch"), key.clone(), stop.clone(), sent.clone(), acked.clone());
            clients.push(tokio::spawn(async move {
                let http = client();
                let mut b = 0;
                while !stop.load(Ordering::Relaxed) {
                    let ids: Vec<String> = (0..20).map(|i| format!("r{round}-c{c}-b{b}-{i}")).collect();
                    let batch: Vec<Value> =
                        ids.iter().map(|id| json!({"type":"track","userId":"u","event":"E","messageId":id})).collect();
                    sent.lock().await.extend(ids.iter().cloned());
                    if let Ok((200, answer)) = post(&http, &url, &key, &json!({ "batch": batch })).await {
                        assert_eq!(answer["accepted"].as_u64().unwrap() + answer["duplicates"].as_u64().unwrap(), 20);
                        acked.lock().await.extend(ids);
                    }
                    b += 1;
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        serve.kill_9();
        stop.store(true, Ordering::Relaxed);
        for client in clients {
            client.await.unwrap();
        }
    }
    // Restart once more and shut down cleanly: recovery redoes unfinished
    // flushes, and the graceful shutdown flushes what is left.
    let serve = ServeProcess::start(&data, &env);
    serve.wait_ready().await;
    serve.terminate();

    let files = raw_events_in(&data).await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (_, events) in &files {
        for event in events {
            *seen.entry(event.event_id.clone()).or_default() += 1;
        }
    }
    let (sent, acked) = (sent.lock().await, acked.lock().await);
    assert!(acked.len() > 1_000, "the test must acknowledge a meaningful number of events, got {}", acked.len());
    let missing: Vec<_> = acked.iter().filter(|id| !seen.contains_key(*id)).take(5).collect();
    assert!(missing.is_empty(), "acknowledged events missing from raw files: {missing:?}");
    let doubled: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(doubled.is_empty(), "events in more than one raw row: {doubled:?}");
    let invented: Vec<_> = seen.keys().filter(|id| !sent.contains(*id)).take(5).collect();
    assert!(invented.is_empty(), "events that were never sent: {invented:?}");
    assert!(files.len() > 3, "expected many flushes, got {}", files.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmodified_segment_node_sdk_delivers_every_message_type() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("tests/sdk");
    assert!(
        root.join("node_modules/@segment/analytics-node").exists(),
        "the SDK is not installed: run scripts/test (it runs `npm ci` in tests/sdk)"
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let serve = ServeProcess::start(&data, &[]);
    serve.wait_ready().await;
    let key = write_key("demo");
    let output =
        Command::new("node").arg(root.join("send-node.mjs")).arg(serve.url("")).arg(&key).output().expect("node runs");
    assert!(
        output.status.success(),
        "SDK script failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serve.terminate();

    let events: HashMap<String, Event> =
        raw_events_in(&data).await.into_iter().flat_map(|(_, e)| e).map(|e| (e.event_id.clone(), e)).collect();
    assert_eq!(events.len(), 6, "one row per message: {:?}", events.keys().collect::<Vec<_>>());
    let json = |text: &str| serde_json::from_str::<Value>(text).unwrap();
    for event in events.values() {
        assert_eq!(event.project_id, "demo");
        let context = json(&event.context);
        assert_eq!(context["library"]["name"], "@segment/analytics-node", "{context}");
        assert!(context.get("ip").is_none(), "the IP is never stored");
    }

    let track = &events["sdk-track-1"];
    assert_eq!((track.kind.as_str(), track.event.as_str()), ("track", "Order Completed"));
    assert_eq!((track.user_id.as_deref(), track.distinct_id.as_str()), (Some("sdk-user"), "sdk-user"));
    assert_eq!(
        json(&track.properties),
        json!({"revenue": 42.5, "currency": "EUR", "items": [{"sku": "a-1", "qty": 2}]})
    );
    assert_eq!(json(&track.context)["locale"], "de-DE");
    assert_eq!(track.ip_hash.as_ref().map(String::len), Some(16), "hash of context.ip");
    // The SDK sets sentAt; with one clock on both sides the skew correction is
    // at most the delivery time.
    let expected = 1_795_428_000_000; // 2026-11-23T10:00:00Z
    assert!((track.timestamp - expected).abs() < 5_000, "timestamp {} vs {expected}", track.timestamp);

    let identify = &events["sdk-identify-1"];
    assert_eq!((identify.kind.as_str(), identify.event.as_str()), ("identify", "$identify"));
    assert_eq!((identify.user_id.as_deref(), identify.anonymous_id.as_deref()), (Some("sdk-user"), Some("sdk-anon")));
    assert_eq!(json(identify.traits.as_deref().unwrap()), json!({"email": "sdk@example.test", "plan": "pro"}));

    let page = &events["sdk-page-1"];
    assert_eq!((page.kind.as_str(), page.event.as_str(), page.distinct_id.as_str()), ("page", "$page", "sdk-anon"));
    assert_eq!(
        json(&page.properties),
        json!({"url": "https://shop.test/pricing", "name": "Pricing", "category": "Docs"})
    );
    assert_eq!(page.url.as_deref(), Some("https://shop.test/pricing"));

    let screen = &events["sdk-screen-1"];
    assert_eq!((screen.kind.as_str(), screen.event.as_str()), ("screen", "$screen"));
    assert_eq!(json(&screen.properties)["name"], "Home");

    let group = &events["sdk-group-1"];
    assert_eq!((group.kind.as_str(), group.group_id.as_deref()), ("group", Some("org-7")));
    assert_eq!(json(group.traits.as_deref().unwrap()), json!({"name": "Acme"}));

    let alias = &events["sdk-alias-1"];
    assert_eq!(
        (alias.kind.as_str(), alias.previous_id.as_deref(), alias.user_id.as_deref()),
        ("alias", Some("sdk-anon"), Some("sdk-user"))
    );
}

/// Rows of a Delta table, read by delta-rs' Python binding (an independent reader).
fn delta_rows(table: &Path) -> Option<usize> {
    let python = contrail_testkit::python();
    // `os._exit`: PyPI deltalake 1.6.6 aborts in interpreter teardown in about
    // half of the runs (see warehouse/tests/it/interop.rs).
    let script = "import os, sys, deltalake; print(deltalake.DeltaTable(sys.argv[1]).to_pyarrow_table().num_rows, flush=True); os._exit(0)";
    let output = Command::new(python).args(["-c", script]).arg(table).output().unwrap();
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().parse().unwrap())
}

/// Sends `n` events; returns (accepted, duplicates).
async fn send_events(serve: &ServeProcess, prefix: &str, n: usize) -> (u64, u64) {
    let batch: Vec<Value> = (0..n)
        .map(|i| json!({"type": "track", "userId": "u", "event": "E", "messageId": format!("{prefix}{i}")}))
        .collect();
    let (status, answer) =
        post(&client(), &serve.url("/v1/batch"), &write_key("demo"), &json!({ "batch": batch })).await.unwrap();
    assert_eq!(status, 200);
    (answer["accepted"].as_u64().unwrap(), answer["duplicates"].as_u64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_compacts_into_delta_tables_on_its_own_and_contrail_compact_does_it_on_demand() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let table = data.join("store/tables/demo");

    // serve with its compaction timer: events reach the table by themselves.
    let serve = ServeProcess::start(&data, &[("CONTRAIL_COMPACT_EVERY_SECS", "1")]);
    serve.wait_ready().await;
    assert_eq!(send_events(&serve, "a", 30).await, (30, 0));
    let deadline = Instant::now() + Duration::from_secs(30);
    while delta_rows(&table) != Some(30) {
        assert!(Instant::now() < deadline, "events did not reach the Delta table within 30 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    serve.terminate();

    // serve without the timer; `contrail compact --data` does one run.
    let serve = ServeProcess::start(&data, &[("CONTRAIL_COMPACT_EVERY_SECS", "0")]);
    serve.wait_ready().await;
    assert_eq!(send_events(&serve, "b", 20).await, (20, 0));
    // Re-sent after compaction: acknowledged as duplicates, never stored twice.
    assert_eq!(send_events(&serve, "a", 5).await, (0, 5));
    serve.terminate();
    let output = Command::new(env!("CARGO_BIN_EXE_contrail"))
        .args(["compact", "--data"])
        .arg(&data)
        .env("CONTRAIL_KEYS_SECRETS", SECRET)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("20 written"), "{stdout}");
    assert_eq!(delta_rows(&table), Some(50));
}

/// Data files of a Delta table as delta-rs' Python binding lists them.
fn delta_files(table: &Path) -> Option<usize> {
    let python = contrail_testkit::python();
    let script =
        "import os, sys, deltalake; print(len(deltalake.DeltaTable(sys.argv[1]).file_uris()), flush=True); os._exit(0)";
    let output = Command::new(python).args(["-c", script]).arg(table).output().unwrap();
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().parse().unwrap())
}

/// Parquet files on disk under a table directory (live or not yet vacuumed).
fn parquet_on_disk(table: &Path) -> usize {
    fn walk(dir: &Path, n: &mut usize) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() && !path.ends_with("_delta_log") {
                walk(&path, n);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                *n += 1;
            }
        }
    }
    let mut n = 0;
    walk(table, &mut n);
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_running_serve_merges_small_files_and_vacuums_on_its_cadence() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let table = data.join("store/tables/demo");
    // Compaction every second, upkeep every 3 s: a partition with 2 small
    // files or more is merged, and vacuum (no retention) deletes the replaced
    // files, so however the rounds and passes interleave, one file is left.
    let serve = ServeProcess::start(
        &data,
        &[
            ("CONTRAIL_COMPACT_EVERY_SECS", "1"),
            ("CONTRAIL_COMPACT_MAINTAIN_EVERY_SECS", "3"),
            ("CONTRAIL_COMPACT_MERGE_MIN_FILES", "2"),
            ("CONTRAIL_COMPACT_VACUUM_RETENTION_HOURS", "0"),
        ],
    );
    serve.wait_ready().await;
    // Five rounds, each compacted on its own: five small files in one partition
    // (unless upkeep already merged some, which is as good).
    for round in 0..5 {
        let batch: Vec<Value> = (0..10)
            .map(|i| {
                json!({"type": "track", "userId": "u", "event": "E", "messageId": format!("m{round}-{i}"),
                       "timestamp": "2026-11-20T10:00:00Z"})
            })
            .collect();
        let (status, _) =
            post(&client(), &serve.url("/v1/batch"), &write_key("demo"), &json!({ "batch": batch })).await.unwrap();
        assert_eq!(status, 200);
        let deadline = Instant::now() + Duration::from_secs(30);
        while delta_rows(&table) != Some(10 * (round + 1)) {
            assert!(Instant::now() < deadline, "round {round} did not reach the table within 30 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(delta_files(&table) == Some(1) && parquet_on_disk(&table) == 1) {
        assert!(
            Instant::now() < deadline,
            "upkeep did not merge and vacuum within 60 s: {:?} files in the table, {} on disk",
            delta_files(&table),
            parquet_on_disk(&table)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(delta_rows(&table), Some(50), "merging changes no row, read by the PyPI deltalake reader");
    serve.terminate();
    let log = std::fs::read_to_string(data.with_extension("log")).unwrap_or_default();
    assert!(log.contains("table upkeep done"), "{log}");
}

/// Segment's browser library, unmodified, in headless Debian Chromium, on a
/// page served from another origin: its one-letter paths (`/v1/t`, …), its
/// batches and the `fetch` keepalive it sends when the page unloads, its
/// preflights and its telemetry (`/v1/m`) all work against `serve`, and every
/// message it sent is stored once. `tests/browser/analytics-next.mjs` drives
/// the browser and fails on any console error or non-2xx answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmodified_analytics_js_in_headless_chromium_delivers_every_call_once() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("tests/browser");
    assert!(
        root.join("node_modules/@segment/analytics-next").exists() && Path::new("/usr/bin/chromium").exists(),
        "analytics.js or Chromium is not installed: run scripts/test (it runs scripts/setup-browser)"
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let serve = ServeProcess::start(&data, &[]);
    serve.wait_ready().await;
    let key = write_key("demo");
    let output = Command::new("node")
        .arg(root.join("analytics-next.mjs"))
        .arg(serve.url(""))
        .arg(&key)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "browser script failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("a JSON report");
    serve.terminate();

    let sent = report["sent"].as_array().unwrap();
    let paths: HashSet<&str> = sent.iter().filter_map(|m| m["path"].as_str()).collect();
    for path in ["/v1/p", "/v1/t", "/v1/i", "/v1/g", "/v1/s", "/v1/a", "/v1/b"] {
        assert!(paths.contains(path), "analytics.js sent nothing to {path}: {paths:?}");
    }
    let requests = report["requests"].as_array().unwrap();
    assert!(
        requests.iter().any(|r| r["path"] == "/v1/b" && r["keepalive"] == true && r["status"] == 200),
        "the unload batch went out as a keepalive fetch and was accepted"
    );
    assert!(requests.iter().any(|r| r["method"] == "OPTIONS" && r["status"] == 204), "preflights answered");
    assert!(requests.iter().any(|r| r["path"] == "/v1/m" && r["status"] == 200), "telemetry answered 200");

    let mut stored: HashMap<String, Event> = HashMap::new();
    for (_, events) in raw_events_in(&data).await {
        for event in events {
            assert!(stored.insert(event.event_id.clone(), event).is_none(), "an event stored twice");
        }
    }
    assert_eq!(stored.len(), sent.len(), "exactly the messages sent: {:?}", stored.keys().collect::<Vec<_>>());
    for message in sent {
        let id = message["messageId"].as_str().unwrap();
        let event = stored.get(id).unwrap_or_else(|| panic!("{id} ({}) was not stored", message["path"]));
        assert_eq!(event.kind.as_str(), message["type"].as_str().unwrap(), "{id}");
        let context: Value = serde_json::from_str(&event.context).unwrap();
        assert_eq!(context["library"]["name"], "analytics.js", "{context}");
        assert!(event.browser.is_some(), "the user agent was parsed: {id}");
    }
    let identify = stored.values().find(|e| e.kind.as_str() == "identify").unwrap();
    assert_eq!(identify.user_id.as_deref(), Some("user-1"));
    assert!(identify.anonymous_id.is_some(), "identify links the anonymous visitor to the user");
    assert!(stored.values().any(|e| e.event == "Left Page"), "the event sent on unload was stored");
}

/// The web dashboard in headless Debian Chromium against a real `serve`
/// (which the script starts, restarts and stops itself): sign-in, every page
/// at desktop and phone width without console errors, numbers compared with
/// the API's answers to the same queries, the live feed, a funnel built by
/// clicking, saved insights surviving a restart, and the insights API.
/// Screenshots of every page land in `<target>/tmp/dashboard-screenshots`.
#[test]
fn the_dashboard_works_in_headless_chromium_against_a_real_serve() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("tests/browser");
    assert!(
        root.join("node_modules/playwright-core").exists() && Path::new("/usr/bin/chromium").exists(),
        "playwright-core or Chromium is not installed: run scripts/test (it runs scripts/setup-browser)"
    );
    assert!(contrail::dashboard::is_embedded(), "the binary has no dashboard: run scripts/build-dashboard, then build");
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    let output = Command::new("node")
        .args(["--test", "--test-reporter=spec"])
        .arg(root.join("dashboard.test.mjs"))
        .env("CONTRAIL_BIN", env!("CARGO_BIN_EXE_contrail"))
        .env("ARTIFACTS", &artifacts)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "dashboard tests failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    println!("{stdout}\nscreenshots: {}", artifacts.display());
}
