//! Answer formats, the user timeline and the live stream.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures::StreamExt;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::harness::TestStack;
use crate::sql::track;

const QUERY: &str =
    "SELECT event_id, timestamp, date, count(*) OVER () AS n, 1.5 AS x, NULL AS nothing FROM events ORDER BY event_id";

async fn raw_answer(stack: &TestStack, accept: &str) -> (StatusCode, http::HeaderMap, bytes::Bytes) {
    let request = Request::post("/v1/sql")
        .header("authorization", format!("Bearer {}", stack.query_key("demo")))
        .header("accept", accept)
        .body(Body::from(json!({ "sql": QUERY }).to_string()))
        .unwrap();
    let response = stack.router.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    (parts.status, parts.headers, body.collect().await.unwrap().to_bytes())
}

async fn stack_with_two_events() -> TestStack {
    let stack = TestStack::new();
    let (status, _) = stack
        .post_json(
            "/v1/batch",
            &json!({"batch": [track("x-1", "u1", "A", "2026-11-20T10:00:00.123Z"), track("x-2", "u1", "B", "2026-11-21T00:00:00Z")]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    stack.flush().await;
    stack
}

#[tokio::test]
async fn json_csv_and_arrow_answers_carry_the_same_rows() {
    let stack = stack_with_two_events().await;

    let (status, headers, body) = raw_answer(&stack, "application/json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    let text = std::str::from_utf8(&body).unwrap();
    assert!(text.contains(r#""rows":[{"event_id":"x-1","timestamp":"#), "row keys follow the column order: {text}");
    let answer: Value = serde_json::from_slice(&body).unwrap();
    let names: Vec<&str> = answer["columns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["event_id", "timestamp", "date", "n", "x", "nothing"]);
    assert_eq!(answer["columns"][3]["type"], "Int64");
    let first = &answer["rows"][0];
    assert_eq!(first["event_id"], "x-1");
    let ts = first["timestamp"].as_str().unwrap();
    let parsed = chrono::DateTime::parse_from_rfc3339(ts).unwrap_or_else(|e| panic!("{ts} is not ISO-8601: {e}"));
    assert_eq!(parsed.timestamp_millis(), 1_795_168_800_123);
    assert_eq!(first["date"], "2026-11-20");
    assert_eq!(first["n"], 2, "numbers are JSON numbers");
    assert_eq!(first["x"], 1.5);
    assert_eq!(first["nothing"], Value::Null);
    assert_eq!(answer["truncated"], false);

    let (status, headers, body) = raw_answer(&stack, "text/csv").await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert_eq!(headers["contrail-truncated"], "false");
    let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new("event_id", arrow::datatypes::DataType::Utf8, false),
        arrow::datatypes::Field::new("timestamp", arrow::datatypes::DataType::Utf8, false),
        arrow::datatypes::Field::new("date", arrow::datatypes::DataType::Utf8, false),
        arrow::datatypes::Field::new("n", arrow::datatypes::DataType::Int64, false),
        arrow::datatypes::Field::new("x", arrow::datatypes::DataType::Float64, false),
        arrow::datatypes::Field::new("nothing", arrow::datatypes::DataType::Utf8, true),
    ]));
    let mut reader =
        arrow::csv::ReaderBuilder::new(schema).with_header(true).build(std::io::Cursor::new(body.to_vec())).unwrap();
    let batch = reader.next().unwrap().unwrap();
    assert_eq!(batch.num_rows(), 2);
    let ids = arrow::array::AsArray::as_string::<i32>(batch.column(0));
    assert_eq!(ids.value(1), "x-2");
    let header = std::str::from_utf8(&body).unwrap().lines().next().unwrap().to_owned();
    assert_eq!(header, "event_id,timestamp,date,n,x,nothing");

    let (status, headers, body) = raw_answer(&stack, "application/vnd.apache.arrow.stream").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/vnd.apache.arrow.stream");
    let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(body.to_vec()), None).unwrap();
    let batches: Vec<_> = reader.map(Result::unwrap).collect();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 2);
    assert_eq!(batches[0].schema().field(1).data_type().to_string(), "Timestamp(µs, \"UTC\")");

    let (status, _, body) = raw_answer(&stack, "image/png").await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE, "{body:?}");
    let (status, _, _) = raw_answer(&stack, "image/png, text/csv;q=0.5").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_timeline_pages_newest_first_without_overlap() {
    let stack = TestStack::new();
    let mut batch: Vec<Value> =
        (0..7).map(|i| track(&format!("tl-{i}"), "ada", "Step", &format!("2026-11-2{}T10:00:0{i}Z", i % 3))).collect();
    batch.push(track("tl-other", "bob", "Step", "2026-11-20T10:00:00Z"));
    let (status, _) = stack.post_json("/v1/batch", &json!({ "batch": batch })).await;
    assert_eq!(status, StatusCode::OK);
    stack.flush().await;
    // Half of them compacted, half raw: the timeline reads both.
    stack.compact().await;
    let (status, _) = stack
        .post_json("/v1/batch", &json!({"batch": [track("tl-late", "ada", "Late", "2026-11-19T08:00:00Z")]}))
        .await;
    assert_eq!(status, StatusCode::OK);
    stack.flush().await;

    let auth = format!("Bearer {}", stack.query_key("demo"));
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/users/ada/events?limit=3&cursor={c}"),
            None => "/v1/users/ada/events?limit=3".to_owned(),
        };
        let (status, _, body) = stack.get(&path, &[("authorization", &auth)]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        pages += 1;
        for event in body["events"].as_array().unwrap() {
            assert!(event["properties"].is_object(), "properties come back as JSON: {event}");
            assert!(event.get("project_id").is_none());
            seen.push((
                event["timestamp"].as_str().unwrap().to_owned(),
                event["event_id"].as_str().unwrap().to_owned(),
            ));
        }
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 8, "{seen:?}");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first");
    assert_eq!(seen.last().unwrap().1, "tl-late");

    let (status, _, body) = stack.get("/v1/users/ada/events?cursor=bm9wZQ", &[("authorization", &auth)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _, _) = stack.get("/v1/users/ada/events?limit=0", &[("authorization", &auth)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, body) = stack.get("/v1/users/nobody/events", &[("authorization", &auth)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"events": [], "next_cursor": null}));
}

/// Reads SSE frames from a live response until `want` events arrived.
async fn read_events(body: Body, want: usize) -> Vec<(String, Value)> {
    let mut stream = body.into_data_stream();
    let mut text = String::new();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while out.len() < want {
        let chunk = tokio::time::timeout_at(deadline, stream.next()).await.expect("live events arrive in time");
        text.push_str(std::str::from_utf8(&chunk.unwrap().unwrap()).unwrap());
        while let Some(end) = text.find("\n\n") {
            let frame: String = text.drain(..end + 2).collect();
            let mut id = None;
            let mut data = None;
            let mut kind = None;
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("event:") {
                    kind = Some(v.trim().to_owned());
                }
            }
            if kind.as_deref() == Some("event") {
                out.push((id.unwrap(), serde_json::from_str(&data.unwrap()).unwrap()));
            }
        }
    }
    out
}

#[tokio::test]
async fn live_events_stream_new_events_and_resume_after_last_event_id() {
    let stack = TestStack::new();
    let (status, _) =
        stack.post_json("/v1/batch", &json!({"batch": [track("old-1", "u1", "Old", "2026-11-20T10:00:00Z")]})).await;
    assert_eq!(status, StatusCode::OK);
    stack.flush().await;
    let open = |last: Option<String>| {
        let mut request =
            Request::get("/v1/events/live").header("authorization", format!("Bearer {}", stack.query_key("demo")));
        if let Some(last) = last {
            request = request.header("last-event-id", last);
        }
        stack.router.clone().oneshot(request.body(Body::empty()).unwrap())
    };
    let response = open(None).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    // Let the stream take its starting position before sending.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = stack
        .post_json("/v1/batch", &json!({"batch": [track("new-1", "u1", "New", "2026-11-20T10:00:00Z"), track("new-2", "u2", "New", "2026-11-20T10:00:00Z")]}))
        .await;
    assert_eq!(status, StatusCode::OK);
    stack.flush().await;
    let events = read_events(response.into_body(), 2).await;
    let ids: Vec<&str> = events.iter().map(|(_, e)| e["event_id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, ["new-1", "new-2"], "only events received after the stream opened");

    // Resume after the first: the second (and anything newer) comes again, nothing before.
    let (status, _) =
        stack.post_json("/v1/batch", &json!({"batch": [track("new-3", "u3", "New", "2026-11-20T10:00:00Z")]})).await;
    assert_eq!(status, StatusCode::OK);
    stack.flush().await;
    let resumed = open(Some(events[0].0.clone())).await.unwrap();
    let again = read_events(resumed.into_body(), 2).await;
    let again_ids: Vec<&str> = again.iter().map(|(_, e)| e["event_id"].as_str().unwrap()).collect();
    assert_eq!(again_ids, [ids[1], "new-3"]);
}

#[tokio::test]
async fn malformed_query_strings_paths_and_bodies_get_the_json_error_shape() {
    let stack = TestStack::new();
    let auth = format!("Bearer {}", stack.query_key("demo"));
    for path in [
        "/v1/users/u1/events?limit=null",
        "/v1/users/u1/events?limit=-3",
        "/v1/users/%FF%FE/events",
        "/v1/events/live?event=a&event=b",
    ] {
        let (status, headers, body) = stack.get(path, &[("authorization", &auth)]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(headers["content-type"], "application/json", "{path}");
        assert_eq!(body["error"]["code"], "invalid_query", "{path}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| m.len() > 20), "{path}: {body}");
    }
    // The credential is checked before anything else is parsed.
    let (status, _, body) = stack.get("/v1/users/u1/events?limit=null", &[]).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
}
