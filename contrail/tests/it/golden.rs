//! The golden corpus (`fixtures/ingest/golden.jsonl`, written by
//! `make_golden.py`, an independent Python reference): each request goes
//! through the HTTP app with a fixed clock; the answer, the raw Arrow rows and
//! the quarantine must match exactly.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use base64::Engine as _;
use contrail_edge::KeyKind;
use contrail_edge::validate::parse_time;
use contrail_ingest::FixedClock;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Map, Value, json};

use crate::harness::TestStack;

const CORPUS: &str = include_str!("../../../fixtures/ingest/golden.jsonl");

#[tokio::test]
async fn golden_corpus_requests_produce_exactly_the_expected_rows() {
    let mut failures = Vec::new();
    let mut count = 0;
    for case in cases() {
        count += 1;
        if let Err(e) = run_case(&case).await {
            failures.push(format!("{}: {e}", case["name"].as_str().unwrap_or("?")));
        }
    }
    assert!(count >= 40, "the corpus has {count} cases");
    assert!(failures.is_empty(), "{} of {count} golden cases failed:\n{}", failures.len(), failures.join("\n"));
}

async fn run_case(case: &Value) -> Result<(), String> {
    let received = parse_time(case["received_at"].as_str().unwrap()).unwrap();
    let revoked_project = "revoked";
    let mut denied = None;
    let t = TestStack::with(Arc::new(FixedClock(received)), |c| {
        // The deny list needs the revoked key, minted under the same secret.
        let ring = contrail_edge::Keyring::new(vec![crate::harness::SECRET.as_bytes().to_vec()], []).unwrap();
        let key = ring.mint(KeyKind::Write, &contrail_edge::ProjectId::parse(revoked_project).unwrap());
        c.keys.denied = vec![key.clone()];
        denied = Some(key);
    });
    let write_key = t.write_key();
    let substitutions = [
        ("{write_key_basic}", base64::engine::general_purpose::STANDARD.encode(format!("{write_key}:"))),
        ("{write_key}", write_key.clone()),
        ("{query_key}", t.key(KeyKind::Query, "demo")),
        ("{revoked_key}", denied.unwrap()),
    ];
    let substitute = |text: &str| substitutions.iter().fold(text.to_owned(), |acc, (from, to)| acc.replace(from, to));

    let request = golden_request(case, &substitute);
    let mut builder = Request::post(&request.uri);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let mut http_request = builder.body(Body::from(request.body)).unwrap();
    if let Some(ip) = request.client_ip {
        let addr = SocketAddr::new(ip.parse().unwrap(), 40000);
        http_request.extensions_mut().insert(ConnectInfo(addr));
    }
    let (status, _, answer) = t.send(http_request).await;
    check_answer(case, status.as_u16(), &answer)?;

    let expect = &case["expect"];
    t.flush().await;
    let rows: Vec<Value> = t.raw_events().await.iter().map(row_json).collect();
    let expected_rows: Vec<Value> = expect["rows"].as_array().unwrap().iter().map(full_row).collect();
    if rows.len() != expected_rows.len() {
        return Err(format!("{} raw rows, expected {}", rows.len(), expected_rows.len()));
    }
    for (i, (got, want)) in rows.iter().zip(&expected_rows).enumerate() {
        if got != want {
            return Err(format!("row {i} differs:\n  got  {got}\n  want {want}"));
        }
    }
    let quarantined: Vec<Value> = t
        .quarantined()
        .await
        .iter()
        .map(|r| {
            assert_eq!(r.project_id, "demo");
            assert!(!r.message.is_empty() && !r.error.is_empty());
            json!({"index": r.index, "code": r.code})
        })
        .collect();
    if quarantined != expect["quarantined"].as_array().unwrap().clone() {
        return Err(format!("quarantine {quarantined:?}, expected {}", expect["quarantined"]));
    }
    Ok(())
}

/// The corpus cases, parsed.
pub fn cases() -> Vec<Value> {
    CORPUS
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("corpus line is JSON"))
        .collect()
}

/// A corpus request, keys substituted and body encoded as the case says.
pub struct GoldenRequest {
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub client_ip: Option<String>,
}

pub fn golden_request(case: &Value, substitute: &dyn Fn(&str) -> String) -> GoldenRequest {
    let request = &case["request"];
    let mut body = match (&request["body_text"], &request["body"]) {
        (Value::String(text), _) => substitute(text).into_bytes(),
        (_, body) => substitute(&body.to_string()).into_bytes(),
    };
    if let Some(pad_to) = request["pad_to"].as_u64() {
        body.resize(pad_to as usize, b' ');
    }
    if request["gzip"].as_bool() == Some(true) {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(&body).unwrap();
        body = encoder.finish().unwrap();
    }
    let mut uri = request["path"].as_str().unwrap().to_owned();
    if let Some(query) = request["query"].as_str() {
        uri = format!("{uri}?{}", substitute(query));
    }
    let headers = request["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, value)| (name.clone(), substitute(value.as_str().unwrap())))
        .collect();
    GoldenRequest { uri, headers, body, client_ip: request["client_ip"].as_str().map(str::to_owned) }
}

/// Checks a case's status, error code and answer (accepted, duplicates, and
/// the index and code of each rejection, each with a message).
pub fn check_answer(case: &Value, status: u16, answer: &Value) -> Result<(), String> {
    let expect = &case["expect"];
    if status as u64 != expect["status"].as_u64().unwrap() {
        return Err(format!("status {status}, expected {}; body {answer}", expect["status"]));
    }
    if let Some(code) = expect["error_code"].as_str() {
        let message = answer["error"]["message"].as_str().unwrap_or("");
        if answer["error"]["code"] != code || message.len() < 10 {
            return Err(format!("error body {answer}, expected code {code} with a message"));
        }
    }
    if let Some(expected) = expect.get("answer") {
        let rejected: Vec<Value> = answer["rejected"]
            .as_array()
            .ok_or("answer has no rejected list")?
            .iter()
            .map(|r| {
                assert!(r["error"].as_str().is_some_and(|e| e.len() > 10), "rejection without a message: {r}");
                json!({"index": r["index"], "code": r["code"]})
            })
            .collect();
        let got = json!({"accepted": answer["accepted"], "duplicates": answer["duplicates"], "rejected": rejected});
        if &got != expected {
            return Err(format!("answer {got}, expected {expected}"));
        }
    }
    Ok(())
}

/// An event as JSON, with its JSON-text columns parsed.
fn row_json(event: &contrail_edge::Event) -> Value {
    let mut v = serde_json::to_value(event).unwrap();
    for column in ["properties", "context", "traits"] {
        if let Some(text) = v[column].as_str() {
            v[column] = serde_json::from_str(text).unwrap();
        }
    }
    v
}

/// An expected row with every unlisted column at its default.
fn full_row(expected: &Value) -> Value {
    let mut row = Map::new();
    for field in contrail_edge::schema::event_schema().fields().iter().filter(|f| f.is_nullable()) {
        row.insert(field.name().clone(), Value::Null);
    }
    row.insert("properties".into(), json!({}));
    row.insert("context".into(), json!({}));
    for (k, v) in expected.as_object().unwrap() {
        row.insert(k.clone(), v.clone());
    }
    Value::Object(row)
}
