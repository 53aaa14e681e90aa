//! Saved insights and dashboards (`/v1/insights`, `/v1/dashboards`) and
//! `/v1/projects`, through the router: CRUD, optimistic concurrency (409,
//! and exactly one winner of two concurrent edits), tenant isolation,
//! refused bodies, a damaged object in storage, and a second query replica
//! on the same store seeing the same documents.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use contrail_edge::KeyKind;
use contrail_query::{Engine, QueryState};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};
use serde_json::{Value, json};

use crate::harness::TestStack;

fn trend() -> Value {
    json!({"series": [{"event": "Signed Up", "math": "unique_users"}], "interval": "day"})
}

async fn call(router: &Router, method: &str, path: &str, key: &str, body: Option<Value>) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let response = tower::ServiceExt::oneshot(router.clone(), request).await.unwrap();
    let status = response.status();
    let bytes = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// A `contrail query` replica over the same store as `stack` (no shared memory).
fn replica(stack: &TestStack) -> Router {
    let location = contrail_warehouse::Location::local(&stack.stack.data.join(contrail::serve::STORE_DIR)).unwrap();
    let engine = Engine::new(location.clone(), Arc::default(), Default::default()).unwrap();
    let keyring = stack.stack.keyring().clone();
    contrail::router::query(
        Arc::new(QueryState::new(engine, keyring, Duration::from_millis(100), vec![])),
        location.store,
    )
}

#[tokio::test]
async fn insights_are_created_read_listed_replaced_and_deleted() {
    let t = TestStack::new();
    let r = &t.router;
    let key = t.query_key("demo");
    let (status, created) =
        call(r, "POST", "/v1/insights", &key, Some(json!({"name": "Signups", "kind": "trends", "query": trend()})))
            .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (&created["version"], &created["name"], &created["description"]),
        (&json!(1), &json!("Signups"), &json!(""))
    );
    assert_eq!(created["query"], trend());
    assert_eq!(created["created_at"], created["updated_at"]);
    let request = Request::post("/v1/insights")
        .header("authorization", format!("Bearer {key}"))
        .body(Body::from(json!({"name": "Located", "kind": "trends", "query": trend()}).to_string()))
        .unwrap();
    let (status, headers, located) = t.send(request).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(headers["location"].to_str().unwrap(), format!("/v1/insights/{}", located["id"].as_str().unwrap()));
    let (status, _) =
        call(r, "DELETE", &format!("/v1/insights/{}?version=1", located["id"].as_str().unwrap()), &key, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (status, read) = call(r, "GET", &format!("/v1/insights/{id}"), &key, None).await;
    assert_eq!((status, &read), (StatusCode::OK, &created));

    // A client may send back what it read, with its changes.
    let mut edited = read.clone();
    edited["name"] = json!("Daily signups");
    let (status, replaced) = call(r, "PUT", &format!("/v1/insights/{id}"), &key, Some(edited)).await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(
        (&replaced["version"], &replaced["name"], &replaced["created_at"]),
        (&json!(2), &json!("Daily signups"), &created["created_at"])
    );

    let (_, second) = call(
        r,
        "POST",
        "/v1/insights",
        &key,
        Some(json!({"name": "Funnel", "kind": "funnels", "query": {"steps": [{"event": "A"}, {"event": "B"}]}})),
    )
    .await;
    let (status, list) = call(r, "GET", "/v1/insights", &key, None).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = list["insights"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Funnel", "Daily signups"], "most recently updated first");

    // Deleting at a stale version is refused; at the current one it deletes.
    let (status, stale) = call(r, "DELETE", &format!("/v1/insights/{id}?version=1"), &key, None).await;
    assert_eq!((status, stale["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("conflict")));
    let (status, _) = call(r, "DELETE", &format!("/v1/insights/{id}?version=2"), &key, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, gone) = call(r, "GET", &format!("/v1/insights/{id}"), &key, None).await;
    assert_eq!((status, gone["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (status, _) = call(
        r,
        "PUT",
        &format!("/v1/insights/{id}"),
        &key,
        Some(json!({"name": "x", "kind": "trends", "query": trend(), "version": 3})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = call(r, "GET", "/v1/insights", &key, None).await;
    assert_eq!(list["insights"].as_array().unwrap().len(), 1);
    assert_eq!(list["insights"][0]["id"], second["id"]);
}

#[tokio::test]
async fn a_stale_update_answers_409_and_of_two_concurrent_edits_exactly_one_lands() {
    let t = TestStack::new();
    let key = t.query_key("demo");
    let (_, created) = call(&t.router, "POST", "/v1/dashboards", &key, Some(json!({"name": "Growth"}))).await;
    let path = format!("/v1/dashboards/{}", created["id"].as_str().unwrap());
    let (status, _) = call(&t.router, "PUT", &path, &key, Some(json!({"name": "Growth 2", "version": 1}))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, stale) = call(&t.router, "PUT", &path, &key, Some(json!({"name": "Lost", "version": 1}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{stale}");
    assert!(stale["error"]["message"].as_str().unwrap().contains("version 2"), "{stale}");
    let (status, missing) = call(&t.router, "PUT", &path, &key, Some(json!({"name": "No version"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{missing}");
    assert!(missing["error"]["message"].as_str().unwrap().starts_with("version"), "{missing}");

    // Many edits from version 2 at once, some through a second replica: one wins.
    let other = replica(&t);
    let edits = (0..8).map(|i| {
        let router = if i % 2 == 0 { t.router.clone() } else { other.clone() };
        let (path, key) = (path.clone(), key.clone());
        async move { call(&router, "PUT", &path, &key, Some(json!({"name": format!("edit {i}"), "version": 2}))).await }
    });
    let outcomes = futures::future::join_all(edits).await;
    let won: Vec<&Value> = outcomes.iter().filter(|(s, _)| *s == StatusCode::OK).map(|(_, b)| b).collect();
    let refused = outcomes.iter().filter(|(s, _)| *s == StatusCode::CONFLICT).count();
    assert_eq!((won.len(), refused), (1, 7), "{outcomes:?}");
    let (_, now) = call(&t.router, "GET", &path, &key, None).await;
    assert_eq!((&now["name"], &now["version"]), (&won[0]["name"], &json!(3)));
}

#[tokio::test]
async fn a_dashboard_pins_insights_and_another_replica_reads_the_same_documents() {
    let t = TestStack::new();
    let key = t.query_key("demo");
    let (_, insight) = call(
        &t.router,
        "POST",
        "/v1/insights",
        &key,
        Some(json!({"name": "Signups", "kind": "trends", "query": trend()})),
    )
    .await;
    let (status, dashboard) =
        call(&t.router, "POST", "/v1/dashboards", &key, Some(json!({"name": "Growth", "insights": [insight["id"]]})))
            .await;
    assert_eq!(status, StatusCode::CREATED, "{dashboard}");
    let other = replica(&t);
    let (status, read) =
        call(&other, "GET", &format!("/v1/dashboards/{}", dashboard["id"].as_str().unwrap()), &key, None).await;
    assert_eq!((status, &read["insights"]), (StatusCode::OK, &json!([insight["id"]])));
    let (_, insights) = call(&other, "GET", "/v1/insights", &key, None).await;
    assert_eq!(insights["insights"][0], insight);
}

#[tokio::test]
async fn saved_documents_belong_to_one_project() {
    let t = TestStack::new();
    let demo = t.query_key("demo");
    let other = t.query_key("other");
    let admin = t.stack.keyring().admin_token();
    let (_, insight) = call(
        &t.router,
        "POST",
        "/v1/insights",
        &demo,
        Some(json!({"name": "Mine", "kind": "trends", "query": trend()})),
    )
    .await;
    let path = format!("/v1/insights/{}", insight["id"].as_str().unwrap());

    let (_, list) = call(&t.router, "GET", "/v1/insights", &other, None).await;
    assert_eq!(list["insights"], json!([]));
    let (status, _) = call(&t.router, "GET", &path, &other, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&t.router, "DELETE", &format!("{path}?version=1"), &other, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&t.router, "GET", "/v1/insights?project=other", &demo, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, as_admin) = call(&t.router, "GET", "/v1/insights?project=other", &admin, None).await;
    assert_eq!(as_admin["insights"], json!([]));
    let (_, as_admin) = call(&t.router, "GET", "/v1/insights?project=demo", &admin, None).await;
    assert_eq!(as_admin["insights"][0]["id"], insight["id"]);
    let (status, _) = call(&t.router, "GET", "/v1/insights", "cq_nonsense", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(&t.router, "GET", "/v1/insights", &t.write_key(), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn malformed_bodies_and_ids_are_refused_with_a_message_naming_the_field() {
    let t = TestStack::new();
    let key = t.query_key("demo");
    let post = |body: &str| {
        let request = Request::post("/v1/insights")
            .header("authorization", format!("Bearer {key}"))
            .body(Body::from(body.to_owned()))
            .unwrap();
        t.send(request)
    };
    for (body, field) in [
        ("not json", "body"),
        ("[]", "body"),
        (r#"{"kind": "trends", "query": {}}"#, "name"),
        (r#"{"name": "", "kind": "trends", "query": {"series": [{"event": null}]}}"#, "name"),
        (r#"{"name": "x", "kind": "paths", "query": {}}"#, "kind"),
        (r#"{"name": "x", "kind": "trends", "query": {"series": []}}"#, "series"),
        (r#"{"name": "x", "kind": "trends", "query": {"series": [{"math": "most"}]}}"#, "query.series[0].math"),
        (r#"{"name": "x", "kind": "retention", "query": {"start_event": {}, "period": "year"}}"#, "period"),
        (r#"{"name": "x", "kind": "trends", "query": {"series": [{}]}, "colour": "red"}"#, "colour"),
        (r#"{"name": "x", "kind": "trends", "query": {"series": [{}]}, "version": "one"}"#, "version"),
    ] {
        let (status, _, answer) = post(body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_query", "{body}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{body}: {field} not in {message}");
    }
    let (status, answer) =
        call(&t.router, "POST", "/v1/dashboards", &key, Some(json!({"name": "x", "insights": ["../etc/passwd"]})))
            .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let too_many: Vec<String> = (0..101).map(|i| format!("{i:020x}")).collect();
    let (status, _) =
        call(&t.router, "POST", "/v1/dashboards", &key, Some(json!({"name": "x", "insights": too_many}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    for path in ["/v1/insights/nope", "/v1/insights/..%2F..%2Fsecret", "/v1/dashboards/00000000000000000000"] {
        let (status, answer) = call(&t.router, "GET", path, &key, None).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{path}");
    }
    let (status, answer) = call(&t.router, "PATCH", "/v1/insights", &key, None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("GET, POST"), "{answer}");
}

#[tokio::test]
async fn a_damaged_object_in_storage_hides_only_itself_and_can_be_replaced() {
    let t = TestStack::new();
    let key = t.query_key("demo");
    let (_, good) = call(
        &t.router,
        "POST",
        "/v1/insights",
        &key,
        Some(json!({"name": "Good", "kind": "trends", "query": trend()})),
    )
    .await;
    let (_, bad) =
        call(&t.router, "POST", "/v1/insights", &key, Some(json!({"name": "Bad", "kind": "trends", "query": trend()})))
            .await;
    let store = t.stack.store();
    let damaged =
        ObjectPath::from(format!("meta/project=demo/insights/{}/v00000001.json", bad["id"].as_str().unwrap()));
    store.put(&damaged, PutPayload::from_static(b"{\"name\": trunc")).await.unwrap();
    store.put(&ObjectPath::from("meta/project=demo/insights/stray.txt"), PutPayload::from_static(b"?")).await.unwrap();
    let (status, list) = call(&t.router, "GET", "/v1/insights", &key, None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["insights"], json!([good]));
    let path = format!("/v1/insights/{}", bad["id"].as_str().unwrap());
    let (status, answer) = call(&t.router, "GET", &path, &key, None).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, Some("document_damaged"))
    );
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("replace it") && message.contains("\"version\": 1"), "{message}");
    // It is not stuck: a replace at the damaged version writes a good one.
    let replacement = json!({"name": "Fixed", "kind": "trends", "query": trend(), "version": 1});
    let (status, fixed) = call(&t.router, "PUT", &path, &key, Some(replacement)).await;
    assert_eq!((status, &fixed["version"], &fixed["name"]), (StatusCode::OK, &json!(2), &json!("Fixed")), "{fixed}");
    let (_, list) = call(&t.router, "GET", "/v1/insights", &key, None).await;
    assert_eq!(list["insights"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn changes_name_their_version_in_the_body_the_query_or_if_match() {
    let t = TestStack::new();
    let key = t.query_key("demo");
    let (status, created) = call(&t.router, "POST", "/v1/dashboards", &key, Some(json!({"name": "Growth"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let path = format!("/v1/dashboards/{}", created["id"].as_str().unwrap());
    let with_if_match = |method: &str, tag: &str, body: Option<Value>| {
        let mut builder = Request::builder()
            .method(method)
            .uri(&path)
            .header("authorization", format!("Bearer {key}"))
            .header("if-match", tag);
        builder = builder.header("content-type", "application/json");
        builder.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).unwrap()
    };
    let (status, headers, read) = t.get(&path, &[("authorization", &format!("Bearer {key}"))]).await;
    assert_eq!((status, headers["etag"].to_str().unwrap()), (StatusCode::OK, "\"1\""));
    assert_eq!(read, created);

    let (status, _, renamed) = t.send(with_if_match("PUT", "\"1\"", Some(json!({"name": "Growth 2"})))).await;
    assert_eq!((status, &renamed["version"]), (StatusCode::OK, &json!(2)), "{renamed}");
    let (status, _, stale) = t.send(with_if_match("PUT", "\"1\"", Some(json!({"name": "Lost"})))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{stale}");
    let (status, _, disagree) = t.send(with_if_match("PUT", "\"2\"", Some(json!({"name": "x", "version": 1})))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{disagree}");
    assert!(disagree["error"]["message"].as_str().unwrap().contains("If-Match"), "{disagree}");
    let (status, _, garbage) = t.send(with_if_match("PUT", "soon", Some(json!({"name": "x"})))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{garbage}");

    let (status, unnamed) = call(&t.router, "DELETE", &path, &key, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a DELETE must say which version it deletes: {unnamed}");
    let (status, _, _) = t.send(with_if_match("DELETE", "\"2\"", None)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, again) = call(&t.router, "DELETE", &format!("{path}?version=3"), &key, None).await;
    assert_eq!((status, again["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
}

#[tokio::test]
async fn projects_lists_a_keys_own_project_or_every_project_for_the_admin() {
    let t = TestStack::new();
    let (status, answer) = call(&t.router, "GET", "/v1/projects", &t.query_key("demo"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer, json!({"projects": [{"name": "demo", "write_key": t.key(KeyKind::Write, "demo")}]}));
    // A project becomes known to the admin once it has data.
    let shop_key = t.key(KeyKind::Write, "shop");
    let (status, _) =
        t.post("/v1/track", &[("x-write-key", &shop_key)], json!({"userId": "u", "event": "E"}).to_string()).await;
    assert_eq!(status, StatusCode::OK);
    t.flush().await;
    let admin = t.stack.keyring().admin_token();
    let (status, answer) = call(&t.router, "GET", "/v1/projects", &admin, None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let names: Vec<&str> = answer["projects"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["demo", "shop"]);
    let (status, answer) = call(&t.router, "GET", "/v1/projects", "cq_demo_forged", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(answer["error"]["message"].as_str().unwrap().contains("query key refused"), "{answer}");
}

#[tokio::test]
async fn the_dashboard_is_embedded_and_served_compressed_with_an_etag() {
    assert!(
        contrail::dashboard::is_embedded(),
        "this binary was built without the dashboard: run scripts/build-dashboard before cargo build (scripts/test does)"
    );
    let t = TestStack::new();
    let request = Request::get("/").header("accept-encoding", "gzip").body(Body::empty()).unwrap();
    let response = tower::ServiceExt::oneshot(t.router.clone(), request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["content-encoding"], "gzip");
    assert_eq!(headers["cache-control"], "no-cache");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let bytes = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    let mut html = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut html).unwrap();
    assert!(html.contains("<script") && html.contains("/assets/"), "{html}");

    let again =
        Request::get("/").header("accept-encoding", "gzip").header("if-none-match", &etag).body(Body::empty()).unwrap();
    let response = tower::ServiceExt::oneshot(t.router.clone(), again).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);

    // Every script and style the page names is served, uncompressed when not accepted.
    let assets: Vec<&str> = html.split('"').filter(|s| s.starts_with("/assets/")).collect();
    assert!(!assets.is_empty(), "{html}");
    for asset in assets {
        let (status, headers, _) = t.get(asset, &[]).await;
        assert_eq!(status, StatusCode::OK, "{asset}");
        assert!(headers.get("content-encoding").is_none());
        assert!(headers["cache-control"].to_str().unwrap().contains("immutable"));
    }
    let (status, _, body) = t.get("/assets/missing.js", &[]).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
}

#[tokio::test]
async fn a_revoked_write_key_is_never_handed_out() {
    let probe = TestStack::new();
    let revoked = probe.key(KeyKind::Write, "demo");
    let t = TestStack::with(Arc::new(contrail_ingest::SystemClock), |c| c.keys.denied = vec![revoked]);
    let (status, answer) = call(&t.router, "GET", "/v1/projects", &t.query_key("demo"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer, json!({"projects": [{"name": "demo", "write_key": null}]}));
}
