//! The OpenAPI 3.1 document of every endpoint, and `/docs`, a self-contained
//! page that renders it (no CDN: the dashboard host may be offline).

use contrail_edge::Endpoint;
use contrail_edge::ingest::TELEMETRY_PATH;
use serde_json::{Value, json};

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn ingest_operation(summary: &str, body_ref: &str) -> Value {
    json!({
        "post": {
            "tags": ["ingest"],
            "summary": summary,
            "security": [{"writeKeyBasic": []}, {"writeKeyBearer": []}, {"writeKeyHeader": []}, {"writeKeyQuery": []}],
            "requestBody": {"required": true, "content": {
                "application/json": {"schema": {"$ref": body_ref}},
                "text/plain": {"schema": {"$ref": body_ref}, "description": "navigator.sendBeacon bodies"}
            }},
            "responses": {
                "200": {"description": "Accepted events are durable; rejected messages are listed (and quarantined).",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IngestAnswer"}}}},
                "400": error_response("The request as a whole is malformed (not JSON, too deep, bad header)."),
                "401": error_response("No write key, or an unknown one."),
                "403": error_response("Revoked key, or an origin the project does not allow."),
                "413": error_response("Body, batch or message over its limit."),
                "415": error_response("Unsupported Content-Type or Content-Encoding."),
                "429": error_response("Rate limited; see Retry-After."),
                "503": error_response("The buffer cannot store events right now; retry.")
            }
        },
        "options": {"tags": ["ingest"], "summary": "CORS preflight", "responses": {"204": {"description": "Allowed"}}}
    })
}

fn query_errors() -> Value {
    json!({
        "400": error_response("Bad SQL, a refused statement or function, a bad parameter."),
        "401": error_response("No query key, or an unknown one."),
        "403": error_response("The key is for another project (or is a write key)."),
        "406": error_response("No acceptable answer format."),
        "503": error_response("The query ran past its time or memory limit.")
    })
}

/// The document served at `/openapi.json`.
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    // Every ingest path the contract routes: `/v1/<name>`, the bare `/<name>`
    // some SDKs use, and analytics.js's one-letter `/v1/<letter>`.
    for path in Endpoint::paths() {
        let operation = match Endpoint::from_path(&path) {
            Some(Endpoint::Single(kind)) => {
                ingest_operation(&format!("Send one {} message", kind.as_str()), "#/components/schemas/Message")
            }
            _ => ingest_operation("Send a batch of Segment messages", "#/components/schemas/Batch"),
        };
        paths.insert(path, operation);
    }
    paths.insert(
        TELEMETRY_PATH.into(),
        json!({
            "post": {"tags": ["ingest"], "summary": "analytics.js's own telemetry: accepted and discarded",
                     "responses": {"200": {"description": "Discarded", "content": {"application/json": {}}}}},
            "options": {"tags": ["ingest"], "summary": "CORS preflight", "responses": {"204": {"description": "Allowed"}}}
        }),
    );
    let project_param = json!({"name": "project", "in": "query", "required": false, "schema": {"type": "string"},
        "description": "The project to read; required with the admin token, and must match a query key's project."});
    let mut sql_responses = query_errors();
    sql_responses["200"] = json!({
        "description": "Rows. Header Contrail-Truncated says whether the row limit cut the answer.",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/SqlAnswer"}},
            "text/csv": {"schema": {"type": "string"}},
            "application/vnd.apache.arrow.stream": {"schema": {"type": "string", "format": "binary"}}
        }
    });
    paths.insert(
        "/v1/sql".into(),
        json!({"post": {
            "tags": ["query"],
            "summary": "Run one read-only SQL query (SELECT, WITH or EXPLAIN) over `events`, `rejected` and `persons`",
            "security": [{"queryKey": []}],
            "parameters": [project_param],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {
                "type": "object", "required": ["sql"],
                "properties": {"sql": {"type": "string"}, "max_rows": {"type": "integer", "minimum": 0}}
            }}}},
            "responses": sql_responses
        }}),
    );
    let mut timeline_responses = query_errors();
    timeline_responses["200"] = json!({"description": "A page of events, newest first.", "content": {"application/json": {"schema": {
        "type": "object",
        "properties": {"events": {"type": "array", "items": {"type": "object"}}, "next_cursor": {"type": ["string", "null"]}}
    }}}});
    paths.insert("/v1/users/{distinct_id}/events".into(), json!({"get": {
        "tags": ["query"],
        "summary": "A user's timeline, newest first, paginated with next_cursor",
        "security": [{"queryKey": []}],
        "parameters": [
            {"name": "distinct_id", "in": "path", "required": true, "schema": {"type": "string"}},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}},
            {"name": "cursor", "in": "query", "schema": {"type": "string"}, "description": "next_cursor of the previous page"},
            project_param
        ],
        "responses": timeline_responses
    }}));
    let mut live_responses = query_errors();
    live_responses["200"] = json!({"description": "Server-sent events: `event: event`, `id: <cursor>`, `data: <event JSON>`.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}}});
    paths.insert("/v1/events/live".into(), json!({"get": {
        "tags": ["query"],
        "summary": "New events as server-sent events; reconnect with Last-Event-ID to resume",
        "security": [{"queryKey": []}],
        "parameters": [
            {"name": "event", "in": "query", "schema": {"type": "string"}, "description": "Only events with this name"},
            {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"}},
            project_param
        ],
        "responses": live_responses
    }}));
    for (path, summary, kind) in [
        ("/healthz", "Liveness", "application/json"),
        ("/readyz", "Readiness: storage (and the buffer, in serve) answers", "application/json"),
        ("/metrics", "Prometheus metrics", "text/plain"),
        ("/openapi.json", "This document", "application/json"),
        ("/docs", "This document, rendered", "text/html"),
    ] {
        paths.insert(
            path.into(),
            json!({"get": {"tags": ["operations"], "summary": summary,
            "responses": {"200": {"description": "OK", "content": {kind: {}}}}}}),
        );
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Contrail",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Segment-compatible ingest and SQL over each project's events. Examples: docs/ingest.md and docs/query.md in the repository."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "writeKeyBasic": {"type": "http", "scheme": "basic", "description": "Write key ck_… as the user name (Segment's way)"},
                "writeKeyBearer": {"type": "http", "scheme": "bearer", "description": "Write key ck_…"},
                "writeKeyHeader": {"type": "apiKey", "in": "header", "name": "X-Write-Key"},
                "writeKeyQuery": {"type": "apiKey", "in": "query", "name": "writeKey"},
                "queryKey": {"type": "http", "scheme": "bearer", "description": "Query key cq_…, or the admin token ca_… with ?project="}
            },
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "object",
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
                "Message": {"type": "object", "description": "A Segment message", "properties": {
                    "type": {"type": "string"}, "event": {"type": "string"}, "userId": {"type": "string"},
                    "anonymousId": {"type": "string"}, "messageId": {"type": "string"}, "timestamp": {"type": "string", "format": "date-time"},
                    "properties": {"type": "object"}, "traits": {"type": "object"}, "context": {"type": "object"}}},
                "Batch": {"type": "object", "required": ["batch"], "properties": {
                    "batch": {"type": "array", "maxItems": 1000, "items": {"$ref": "#/components/schemas/Message"}},
                    "sentAt": {"type": "string", "format": "date-time"}, "writeKey": {"type": "string"}}},
                "IngestAnswer": {"type": "object", "properties": {
                    "accepted": {"type": "integer"}, "duplicates": {"type": "integer"},
                    "rejected": {"type": "array", "items": {"type": "object", "properties": {
                        "index": {"type": "integer"}, "code": {"type": "string"}, "error": {"type": "string"}}}}}},
                "SqlAnswer": {"type": "object", "properties": {
                    "columns": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}, "type": {"type": "string"}}}},
                    "rows": {"type": "array", "items": {"type": "object"}},
                    "truncated": {"type": "boolean"}}}
            }
        }
    })
}

/// `/docs`: fetches `/openapi.json` and lists every operation with its
/// parameters, body and answers.
pub const DOCS_HTML: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Contrail API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d2330}
h1{margin-bottom:0}.op{border:1px solid #d5dae3;border-radius:6px;margin:.8rem 0;padding:.6rem 1rem}
.m{display:inline-block;min-width:4.5rem;font-weight:700;text-transform:uppercase}.get{color:#17803d}.post{color:#1f5fbf}.options{color:#777}
code,pre{font-family:ui-monospace,monospace;font-size:13px}pre{background:#f5f7fa;padding:.5rem;overflow:auto}
.tag{color:#6b7385;font-size:13px}
</style></head><body>
<h1>Contrail API</h1><p id="about">Loading <a href="/openapi.json">/openapi.json</a>…</p><main id="ops"></main>
<script>
fetch('/openapi.json').then(r => r.json()).then(doc => {
  document.getElementById('about').textContent = doc.info.description + ' (version ' + doc.info.version + ')';
  const ops = document.getElementById('ops');
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const div = document.createElement('section'); div.className = 'op';
      const head = document.createElement('div');
      head.innerHTML = '<span class="m ' + method + '"></span> <code></code> <span class="tag"></span>';
      head.children[0].textContent = method; head.children[1].textContent = path;
      head.children[2].textContent = (op.tags || []).join(', ');
      div.appendChild(head);
      const p = document.createElement('p'); p.textContent = op.summary || ''; div.appendChild(p);
      if (op.parameters) {
        const ul = document.createElement('ul');
        for (const prm of op.parameters) { const li = document.createElement('li');
          li.textContent = prm.name + ' (' + prm.in + ')' + (prm.required ? ', required' : '') + (prm.description ? ': ' + prm.description : '');
          ul.appendChild(li); }
        div.appendChild(ul);
      }
      if (op.requestBody) { const pre = document.createElement('pre');
        pre.textContent = 'body: ' + JSON.stringify(op.requestBody.content, null, 1).slice(0, 600); div.appendChild(pre); }
      const codes = document.createElement('p'); codes.className = 'tag';
      codes.textContent = 'answers: ' + Object.entries(op.responses || {}).map(([c, r]) => c + ' ' + r.description).join(' · ');
      div.appendChild(codes); ops.appendChild(div);
    }
  }
}).catch(e => { document.getElementById('about').textContent = 'Could not load /openapi.json: ' + e; });
</script></body></html>
"#;
