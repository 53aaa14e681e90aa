//! The production commands against a real S3 server (moto on 127.0.0.1):
//! `contrail compact --store s3://…` turns raw batches in a bucket into a
//! Delta table, and `contrail query --store s3://…` serves SQL over the table
//! plus the batches not yet compacted — configured only through the `AWS_*`
//! variables and the store URL, as a user pointing them at R2 would.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use bytes::Bytes;
use contrail_warehouse::{Location, S3Options};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use serde_json::{Value, json};

use crate::harness::{SECRET, TestStack, objects};
use crate::sql::track;

/// The `AWS_*` environment a user sets for an S3-compatible endpoint.
fn aws_env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT", contrail_testkit::s3_endpoint().to_owned()),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_REGION", contrail_testkit::S3_REGION.into()),
        ("AWS_ACCESS_KEY_ID", contrail_testkit::S3_ACCESS_KEY_ID.into()),
        ("AWS_SECRET_ACCESS_KEY", contrail_testkit::S3_SECRET_ACCESS_KEY.into()),
    ]
}

fn contrail(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_contrail"));
    command.args(args).env("CONTRAIL_KEYS_SECRETS", SECRET).env_remove("CONTRAIL_COMPACT_STORE");
    for (name, value) in aws_env() {
        command.env(name, value);
    }
    command
}

/// Copies the stack's raw batches (made by the real ingest path) into the bucket.
async fn upload_raw(stack: &TestStack, bucket: &Location) -> usize {
    let raw = objects(stack.stack.store().as_ref(), "raw").await;
    for (key, bytes) in &raw {
        bucket.store.put(&ObjectPath::from(key.as_str()), bytes.clone().into()).await.unwrap();
    }
    raw.len()
}

struct QueryProcess(Child);

impl Drop for QueryProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A new bucket on the test server: its store URL and location.
fn bucket_location(name: &str) -> (String, Location) {
    let bucket = contrail_testkit::new_bucket(name);
    let store_url = format!("s3://{bucket}/warehouse");
    let options = S3Options {
        endpoint: Some(contrail_testkit::s3_endpoint().to_owned()),
        region: Some(contrail_testkit::S3_REGION.into()),
        access_key_id: Some(contrail_testkit::S3_ACCESS_KEY_ID.into()),
        secret_access_key: Some(contrail_testkit::S3_SECRET_ACCESS_KEY.into()),
        allow_http: true,
    };
    let location = Location::s3(&url::Url::parse(&store_url).unwrap(), &options).unwrap();
    (store_url, location)
}

async fn sql(url: &str, sql: &str) -> (u16, Value) {
    let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let key = contrail_edge::Keyring::new(vec![SECRET.as_bytes().to_vec()], [])
        .unwrap()
        .mint(contrail_edge::KeyKind::Query, &contrail_edge::ProjectId::parse("demo").unwrap());
    let request = hyper::Request::post(url)
        .header("authorization", format!("Bearer {key}"))
        .body(Full::new(Bytes::from(json!({ "sql": sql }).to_string())))
        .unwrap();
    match http.request(request).await {
        Ok(response) => {
            let status = response.status().as_u16();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contrail_compact_and_contrail_query_work_against_an_s3_bucket() {
    let (store_url, location) = bucket_location("cli");

    // Raw batches from the real ingest path, as the Worker would leave them in R2.
    let stack = TestStack::new();
    let first: Vec<Value> =
        (0..40).map(|i| track(&format!("s3-{i}"), &format!("u{}", i % 4), "A", "2026-11-20T10:00:00Z")).collect();
    let (status, _) = stack.post_json("/v1/batch", &json!({ "batch": first })).await;
    assert_eq!(status, StatusCode::OK);
    stack.flush().await;
    assert!(upload_raw(&stack, &location).await > 0);

    let output = contrail(&["compact", "--store", &store_url]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("40 written"), "{stdout}");

    // A second flush stays raw in the bucket: the query service reads both.
    let second: Vec<Value> = (40..55).map(|i| track(&format!("s3-{i}"), "u9", "B", "2026-11-21T10:00:00Z")).collect();
    let (status, _) = stack.post_json("/v1/batch", &json!({ "batch": second })).await;
    assert_eq!(status, StatusCode::OK);
    stack.flush().await;
    upload_raw(&stack, &location).await;

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = contrail(&["query", "--store", &store_url, "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _process = QueryProcess(child);
    let url = format!("http://127.0.0.1:{port}/v1/sql");
    let deadline = Instant::now() + Duration::from_secs(30);
    let answer = loop {
        let (status, answer) =
            sql(&url, "SELECT count(*) AS n, count(DISTINCT event_id) AS d, count(DISTINCT date) AS days FROM events")
                .await;
        if status == 200 {
            break answer;
        }
        assert!(Instant::now() < deadline, "contrail query did not answer within 30 s (last: {status} {answer})");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(answer["rows"], json!([{"n": 55, "d": 55, "days": 2}]));
    let table_only = sql(&url, "SELECT count(*) AS n FROM events WHERE date = DATE '2026-11-20'").await;
    assert_eq!(table_only.1["rows"], json!([{"n": 40}]));
}

/// Replicas of `contrail query` share saved documents through the bucket:
/// of concurrent edits made from one version, S3's create-only put lets
/// exactly one land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_documents_in_an_s3_bucket_keep_exactly_one_of_concurrent_edits() {
    use contrail_query::saved::{Dashboard, SavedStore};
    let (_, location) = bucket_location("saved");
    let saved = SavedStore::new(location.store.clone());
    let project = contrail_edge::ProjectId::parse("demo").unwrap();
    let dashboard = |name: String| Dashboard { name, description: String::new(), insights: Vec::new() };
    let created = saved.create(&project, dashboard("Growth".into())).await.unwrap();
    let edits = (0..8).map(|i| saved.update(&project, &created.id, 1, dashboard(format!("edit {i}"))));
    let outcomes = futures::future::join_all(edits).await;
    let won: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
    let conflicts = outcomes.iter().filter(|o| matches!(o, Err(contrail_query::Error::Conflict(_)))).count();
    assert_eq!((won.len(), conflicts), (1, 7), "{outcomes:?}");
    let now = saved.get::<Dashboard>(&project, &created.id).await.unwrap();
    assert_eq!((now.version, &now.body.name), (2, &won[0].body.name));
    assert_eq!(saved.list::<Dashboard>(&project).await.unwrap().len(), 1);
}
