//! Tenant isolation on every query endpoint: a credential opens its own
//! project's data and nothing else.

use std::sync::Arc;

use axum::http::StatusCode;
use contrail_edge::KeyKind;
use contrail_testkit::faulty_store::{Fault, FaultyStore};
use serde_json::json;

use crate::harness::TestStack;
use crate::sql::track;

/// Every query endpoint, as (method, path without `?`).
const ENDPOINTS: &[(&str, &str)] = &[
    ("POST", "/v1/sql"),
    ("POST", "/v1/trends"),
    ("POST", "/v1/funnels"),
    ("POST", "/v1/retention"),
    ("GET", "/v1/users/u1/events"),
    ("GET", "/v1/events/live"),
];

async fn call(stack: &TestStack, method: &str, path: &str, auth: Option<&str>) -> (StatusCode, serde_json::Value) {
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if let Some(auth) = auth {
        headers.push(("authorization", auth));
    }
    if method == "POST" {
        stack.post(path, &headers, json!({"sql": "SELECT count(*) AS n FROM events"}).to_string()).await
    } else {
        let (status, _, body) = stack.get(path, &headers).await;
        (status, body)
    }
}

#[tokio::test]
async fn every_endpoint_refuses_credentials_that_do_not_open_the_project() {
    let stack = TestStack::new();
    // Events for two projects, in the same raw/ prefix.
    let (status, _) = stack
        .post(
            "/v1/batch",
            &[("x-write-key", &stack.key(KeyKind::Write, "alpha")), ("content-type", "application/json")],
            json!({"batch": [track("a-1", "u1", "A", "2026-11-20T10:00:00Z")]}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = stack
        .post(
            "/v1/batch",
            &[("x-write-key", &stack.key(KeyKind::Write, "beta")), ("content-type", "application/json")],
            json!({"batch": [track("b-1", "u1", "B", "2026-11-20T10:00:00Z"), track("b-2", "u1", "B", "2026-11-20T10:00:01Z")]})
                .to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    stack.flush().await;

    let alpha = format!("Bearer {}", stack.query_key("alpha"));
    let alpha_write = format!("Bearer {}", stack.key(KeyKind::Write, "alpha"));
    let admin = format!("Bearer {}", stack.stack.keyring().admin_token());
    let forged = format!("Bearer {}x", stack.query_key("beta"));
    for (method, path) in ENDPOINTS {
        let with = |q: &str| format!("{path}{q}");
        let cases: Vec<(String, Option<&str>, StatusCode)> = vec![
            (with(""), None, StatusCode::UNAUTHORIZED),
            (with(""), Some("Basic Zm9vOg=="), StatusCode::UNAUTHORIZED),
            (with(""), Some("Bearer cq_beta_AAAAAAAAAAAAAAAAAAAAAA"), StatusCode::UNAUTHORIZED),
            (with(""), Some(&forged), StatusCode::UNAUTHORIZED),
            (with(""), Some(&alpha_write), StatusCode::FORBIDDEN),
            (with("?project=beta"), Some(&alpha), StatusCode::FORBIDDEN),
            (with(""), Some(&admin), StatusCode::BAD_REQUEST),
            (with("?project=Not_A_Name"), Some(&admin), StatusCode::BAD_REQUEST),
        ];
        for (uri, auth, expected) in cases {
            let (status, body) = call(&stack, method, &uri, auth).await;
            assert_eq!(status, expected, "{method} {uri} with {auth:?}: {body}");
            assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{method} {uri}: {body}");
        }
    }

    // What each credential sees through SQL.
    let count = |auth: String, query: &'static str| {
        let stack = &stack;
        async move {
            let (status, body) = call(stack, "POST", &format!("/v1/sql{query}"), Some(&auth)).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["rows"][0]["n"].as_i64().unwrap()
        }
    };
    assert_eq!(count(alpha.clone(), "").await, 1);
    assert_eq!(count(alpha.clone(), "?project=alpha").await, 1);
    assert_eq!(count(admin.clone(), "?project=beta").await, 2);
    assert_eq!(count(admin.clone(), "?project=gamma").await, 0);

    // The timeline of a user both projects know shows only the caller's events.
    let (status, _, body) = stack.get("/v1/users/u1/events", &[("authorization", &alpha)]).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = body["events"].as_array().unwrap().iter().map(|e| e["event_id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["a-1"]);
    // Naming the other project's table is not possible.
    let (status, body) = stack.sql_as(&stack.query_key("alpha"), "SELECT * FROM beta.events").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn a_query_for_one_project_never_lists_or_opens_another_projects_raw_batches() {
    let dir = tempfile::tempdir().unwrap();
    let local = contrail::serve::local_location(dir.path()).unwrap().store;
    let store = Arc::new(FaultyStore::new(local, |_, _| Fault::None));
    let mut config = contrail::config::Config::default();
    config.server.data = dir.path().to_path_buf();
    config.keys.secrets = vec![crate::harness::SECRET.into()];
    let stack = contrail::serve::Stack::open_with_store(&config, Arc::new(contrail_ingest::SystemClock), store.clone())
        .unwrap();
    let router = contrail::router::serve(&stack);
    let stack = TestStack { _dir: dir, stack, router };

    async fn send(stack: &TestStack, project: &str, id: String) {
        let key = stack.key(KeyKind::Write, project);
        let body = json!({"batch": [track(&id, "u1", "A", "2026-11-20T10:00:00Z")]}).to_string();
        let (status, _) =
            stack.post("/v1/batch", &[("x-write-key", &key), ("content-type", "application/json")], body).await;
        assert_eq!(status, StatusCode::OK);
    }
    // Round 1 is compacted, round 2 stays raw: both kinds of read are covered.
    for round in 0..2 {
        for i in 0..3 {
            send(&stack, "alpha", format!("a-{round}-{i}")).await;
            send(&stack, "beta", format!("b-{round}-{i}")).await;
        }
        stack.flush().await;
        if round == 0 {
            stack.compact().await;
        }
    }
    store.take_reads();
    store.take_lists();

    let (status, answer) = stack.sql_as(&stack.query_key("alpha"), "SELECT count(*) AS n FROM events").await;
    assert_eq!((status, answer["rows"][0]["n"].as_i64()), (StatusCode::OK, Some(6)), "{answer}");
    let (status, answer) = stack.sql_as(&stack.query_key("alpha"), "SELECT count(*) AS n FROM rejected").await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let reads = store.take_reads();
    let lists = store.take_lists();
    assert!(
        reads.iter().any(|r| r.starts_with("raw/project=alpha/")),
        "the query reads alpha's raw batch (else this test proves nothing): {reads:?}"
    );
    let foreign: Vec<&String> = reads
        .iter()
        .chain(&lists)
        .filter(|p| p.contains("beta") || *p == "raw" || *p == "rejected" || p.is_empty())
        .collect();
    assert!(foreign.is_empty(), "alpha's query listed or read outside its own prefixes: {foreign:?}");
}
