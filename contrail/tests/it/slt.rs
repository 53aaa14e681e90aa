//! SQL behaviour as sqllogictest files (`contrail/tests/slt/*.slt`), run through
//! `POST /v1/sql` over the fixture events, half compacted and half raw.

use std::path::PathBuf;
use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::Value;
use sqllogictest::{DBOutput, DefaultColumnType};

use crate::harness::TestStack;

/// The SQL API as a sqllogictest database.
struct SqlApi {
    stack: Arc<TestStack>,
    key: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{status}: {message}")]
struct ApiError {
    status: StatusCode,
    message: String,
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => "NULL".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for SqlApi {
    type Error = ApiError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, ApiError> {
        let (status, answer) = self.stack.sql_as(&self.key, sql).await;
        if status != StatusCode::OK {
            let message = answer["error"]["message"].as_str().unwrap_or_default().to_owned();
            return Err(ApiError { status, message });
        }
        let names: Vec<String> =
            answer["columns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect();
        let rows = answer["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| names.iter().map(|n| cell(&row[n])).collect())
            .collect();
        Ok(DBOutput::Rows { types: vec![DefaultColumnType::Any; names.len()], rows })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "contrail"
    }

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await;
    }
}

/// Loads the fixture: the first half compacted, the second flushed only.
async fn fixture_stack() -> TestStack {
    let stack = TestStack::new();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/query/events.jsonl");
    let messages: Vec<Value> =
        std::fs::read_to_string(&root).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let (first, second) = messages.split_at(messages.len() / 2);
    for (i, half) in [first, second].into_iter().enumerate() {
        for chunk in half.chunks(50) {
            let (status, answer) = stack.post_json("/v1/batch", &serde_json::json!({ "batch": chunk })).await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            assert_eq!(answer["accepted"], chunk.len(), "{answer}");
        }
        stack.flush().await;
        if i == 0 {
            assert_eq!(stack.compact().await.events_out, first.len());
        }
    }
    stack
}

#[tokio::test]
async fn sql_logic_tests() {
    let stack = Arc::new(fixture_stack().await);
    let key = stack.query_key("demo");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        let (stack, key) = (stack.clone(), key.clone());
        let mut runner = sqllogictest::Runner::new(move || {
            let (stack, key) = (stack.clone(), key.clone());
            async move { Ok(SqlApi { stack, key }) }
        });
        runner.with_column_validator(|_, _| true);
        runner.run_file_async(&file).await.unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
}
