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
        "413": error_response("The request body is over 2 MiB."),
        "503": error_response("The query ran past its time or memory limit.")
    })
}

/// The shared vocabulary of DESIGN §6.1, as schemas.
fn vocabulary() -> (Value, Value, Value) {
    let filter = json!({"type": "object", "required": ["property", "op"], "additionalProperties": false, "properties": {
        "property": {"type": "string", "description": "A column (event, url, browser, …) or properties.<key>, context.<key>, traits.<key>; a bare name that is not a column means properties.<name>"},
        "op": {"enum": ["eq", "neq", "in", "not_in", "contains", "not_contains", "regex", "gt", "gte", "lt", "lte", "is_set", "is_not_set"]},
        "value": {"description": "A string or number; an array for in/not_in; none for is_set/is_not_set"}
    }});
    let selector = json!({"type": "object", "additionalProperties": false, "properties": {
        "event": {"type": ["string", "null"], "description": "null or absent: any event"},
        "filters": {"type": "array", "items": filter}
    }});
    let range = json!({
        "from": {"type": "string", "description": "RFC 3339 instant or YYYY-MM-DD (local midnight); default to − 7 days"},
        "to": {"type": "string", "description": "exclusive; default now"},
        "timezone": {"type": "string", "default": "UTC", "description": "IANA zone: buckets are calendar units there"},
        "filters": {"type": "array", "items": filter, "description": "applied to every series or step"},
        "breakdown": {"type": "string", "description": "a property reference"},
        "breakdown_limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10}
    });
    (filter, selector, range)
}

/// (path, summary, request schema, example) of the analytics endpoints.
fn analytics_operations() -> [(&'static str, &'static str, Value, Value); 3] {
    let (_, selector, range) = vocabulary();
    let with_range = |mut properties: Value, required: &[&str]| {
        if let (Some(properties), Some(range)) = (properties.as_object_mut(), range.as_object()) {
            properties.extend(range.clone());
        }
        json!({"type": "object", "additionalProperties": false, "required": required, "properties": properties})
    };
    let trends = with_range(
        json!({
            "series": {"type": "array", "minItems": 1, "maxItems": 32, "items": {"type": "object", "additionalProperties": false, "properties": {
                "event": {"type": ["string", "null"]}, "filters": {"type": "array"},
                "math": {"enum": ["total", "unique_users", "unique_sessions", "dau", "wau", "mau", "sum", "avg", "min", "max", "median", "p90", "p95", "p99"], "default": "total"},
                "property": {"type": "string", "description": "numeric; required for sum … p99"},
                "label": {"type": "string"}
            }}},
            "interval": {"enum": ["minute", "hour", "day", "week", "month"], "default": "day"}
        }),
        &["series"],
    );
    let funnels = with_range(
        json!({
            "steps": {"type": "array", "minItems": 2, "maxItems": 32, "items": selector},
            "window": {"description": "\"30m\", \"1h\", \"7d\", \"2w\" or seconds; default 14d; at most 366 days"},
            "order": {"enum": ["ordered", "strict", "unordered"], "default": "ordered"},
            "exclusions": {"type": "array", "items": {"type": "object", "required": ["from_step", "to_step"], "properties": {
                "event": {"type": ["string", "null"]}, "filters": {"type": "array"},
                "from_step": {"type": "integer"}, "to_step": {"type": "integer"}
            }}},
            "breakdown_attribution": {"enum": ["first_touch", "last_touch"], "default": "first_touch"}
        }),
        &["steps"],
    );
    let retention = with_range(
        json!({
            "start_event": selector,
            "return_event": {"oneOf": [selector, {"type": "null"}], "description": "null: any event"},
            "period": {"enum": ["day", "week", "month"], "default": "day"},
            "periods": {"type": "integer", "minimum": 1, "maximum": 100, "default": 8},
            "cohort": {"enum": ["first_time", "recurring"], "default": "first_time"}
        }),
        &["start_event"],
    );
    [
        (
            "/v1/trends",
            "Counts, persons and measures per calendar bucket, by series, optionally broken down",
            trends,
            json!({"series": [{"event": "Signed Up", "math": "unique_users"}, {"event": "Purchased", "math": "p95", "property": "properties.price"}],
                "interval": "day", "from": "2026-03-23", "to": "2026-03-30", "timezone": "Europe/Paris", "breakdown": "country"}),
        ),
        (
            "/v1/funnels",
            "Persons through ordered steps within a window, with conversion and time to convert",
            funnels,
            json!({"steps": [{"event": "Viewed Product"}, {"event": "Added to Cart"}, {"event": "Checked Out"}], "window": "1h",
                "exclusions": [{"event": "Canceled", "from_step": 1, "to_step": 2}], "from": "2026-03-01", "to": "2026-04-01"}),
        ),
        (
            "/v1/retention",
            "Cohorts by the period of their start event, and how many came back in each later period",
            retention,
            json!({"start_event": {"event": "Signed Up"}, "return_event": null, "period": "week", "periods": 8, "cohort": "first_time",
                "from": "2026-01-05", "to": "2026-03-02"}),
        ),
    ]
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
    for (path, summary, schema, example) in analytics_operations() {
        let mut responses = query_errors();
        responses["200"] = json!({"description": "The answer, with table_version and computed_at.",
            "content": {"application/json": {"schema": {"type": "object"}}}});
        responses["400"] = error_response(
            "invalid_query: the message names the offending field (series[0].math, window, filters[2].value, …).",
        );
        paths.insert(path.into(), json!({"post": {
            "tags": ["analytics"],
            "summary": summary,
            "security": [{"queryKey": []}],
            "parameters": [project_param],
            "requestBody": {"required": true, "content": {"application/json": {"schema": schema, "example": example}}},
            "responses": responses
        }}));
    }
    let mut timeline_responses = query_errors();
    timeline_responses["200"] = json!({"description": "A page of events, newest first.", "content": {"application/json": {"schema": {
        "type": "object",
        "properties": {"events": {"type": "array", "items": {"type": "object"}}, "next_cursor": {"type": ["string", "null"]}}
    }}}});
    paths.insert("/v1/users/{distinct_id}/events".into(), json!({"get": {
        "tags": ["query"],
        "summary": "A person's timeline under all their ids, newest first, paginated with next_cursor",
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
    let mut persons_responses = query_errors();
    persons_responses["200"] = json!({"description": "The persons, sorted, at most `limit`.", "content": {"application/json": {"schema": {
        "type": "object", "properties": {"step": {"type": "integer"}, "dropped": {"type": "boolean"},
        "persons": {"type": "array", "items": {"type": "string"}}, "truncated": {"type": "boolean"},
        "table_version": {"type": ["integer", "null"]}, "computed_at": {"type": "string"}}
    }}}});
    paths.insert("/v1/funnels/persons".into(), json!({"post": {
        "tags": ["analytics"],
        "summary": "The persons behind one step of a funnel: who reached it, or who reached it and went no further",
        "security": [{"queryKey": []}],
        "parameters": [project_param],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {
            "type": "object", "additionalProperties": false, "required": ["funnel", "step"], "properties": {
                "funnel": {"type": "object", "description": "a POST /v1/funnels body"},
                "step": {"type": "integer", "minimum": 0, "description": "0-based"},
                "dropped": {"type": "boolean", "default": false, "description": "true: reached `step` but not the next one"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100}
            }},
            "example": {"funnel": {"steps": [{"event": "Viewed Pricing"}, {"event": "Signed Up"}], "window": "1d"}, "step": 0, "dropped": true}
        }}},
        "responses": persons_responses
    }}));
    let mut projects_responses = query_errors();
    projects_responses["200"] = json!({"description": "The projects this credential reads, with each one's write key.",
        "content": {"application/json": {"schema": {"type": "object", "properties": {"projects": {"type": "array", "items": {
            "type": "object", "properties": {"name": {"type": "string"}, "write_key": {"type": "string"}}}}}}}}});
    paths.insert("/v1/projects".into(), json!({"get": {
        "tags": ["query"],
        "summary": "The projects a credential reads: a query key's own, or every configured or stored one for the admin token",
        "security": [{"queryKey": []}],
        "responses": projects_responses
    }}));
    for (collection, noun, schema) in [("insights", "insight", "Insight"), ("dashboards", "dashboard", "Dashboard")] {
        saved_paths(&mut paths, collection, noun, schema, &project_param);
    }
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
            "description": "Segment-compatible ingest, SQL and product analytics (trends, funnels, retention) over each project's events. Examples: docs/ingest.md, docs/query.md and docs/analytics.md in the repository."
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
                "Insight": {"type": "object", "required": ["name", "kind", "query"], "additionalProperties": false, "properties": {
                    "id": {"type": "string", "readOnly": true}, "version": {"type": "integer", "description": "read: the current version; on PUT: the version you changed"},
                    "created_at": {"type": "string", "readOnly": true}, "updated_at": {"type": "string", "readOnly": true},
                    "name": {"type": "string", "maxLength": 200}, "description": {"type": "string", "maxLength": 2000},
                    "kind": {"enum": ["trends", "funnels", "retention"]},
                    "query": {"type": "object", "description": "a body of POST /v1/<kind>, validated as that endpoint would"}}},
                "Dashboard": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {
                    "id": {"type": "string", "readOnly": true}, "version": {"type": "integer", "description": "read: the current version; on PUT: the version you changed"},
                    "created_at": {"type": "string", "readOnly": true}, "updated_at": {"type": "string", "readOnly": true},
                    "name": {"type": "string", "maxLength": 200}, "description": {"type": "string", "maxLength": 2000},
                    "insights": {"type": "array", "maxItems": 100, "items": {"type": "string"}, "description": "pinned insight ids, in order"}}},
                "SqlAnswer": {"type": "object", "properties": {
                    "columns": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}, "type": {"type": "string"}}}},
                    "rows": {"type": "array", "items": {"type": "object"}},
                    "truncated": {"type": "boolean"}}}
            }
        }
    })
}

/// The five operations of a kind of saved document.
fn saved_paths(
    paths: &mut serde_json::Map<String, Value>,
    collection: &str,
    noun: &str,
    schema: &str,
    project: &Value,
) {
    let schema = json!({"$ref": format!("#/components/schemas/{schema}")});
    let one =
        |description: &str| json!({"description": description, "content": {"application/json": {"schema": schema}}});
    let mut errors = query_errors();
    errors["404"] = error_response(&format!("No such {noun} in this project, or it was deleted."));
    errors["409"] =
        error_response("conflict: it changed since the version you sent; read it again and reapply your change.");
    let with = |code: &str, answer: Value| {
        let mut responses = errors.clone();
        responses[code] = answer;
        responses
    };
    let body = json!({"required": true, "content": {"application/json": {"schema": schema}}});
    let id = json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}});
    let version = json!({"name": "version", "in": "query", "schema": {"type": "integer"},
        "description": "The version you read (or send If-Match); required"});
    let if_match = json!({"name": "If-Match", "in": "header", "schema": {"type": "string"},
        "description": "\"<version>\" as in the ETag of a read: the version the change was made from"});
    let list = json!({"description": format!("Every {noun}, most recently updated first."), "content": {"application/json": {"schema": {
        "type": "object", "properties": {collection: {"type": "array", "items": schema}}}}}});
    paths.insert(format!("/v1/{collection}"), json!({
        "get": {"tags": ["saved"], "summary": format!("List {collection}"), "security": [{"queryKey": []}],
                "parameters": [project], "responses": with("200", list)},
        "post": {"tags": ["saved"], "summary": format!("Save a new {noun} (version 1)"), "security": [{"queryKey": []}],
                 "parameters": [project], "requestBody": body, "responses": with("201", one(&format!("The saved {noun}; ETag is its version.")))}
    }));
    paths.insert(format!("/v1/{collection}/{{id}}"), json!({
        "get": {"tags": ["saved"], "summary": format!("Read one {noun}"), "security": [{"queryKey": []}],
                "parameters": [id, project], "responses": with("200", one(&format!("The {noun}; ETag is its version.")))},
        "put": {"tags": ["saved"], "summary": format!("Replace a {noun}, naming the version changed (\"version\" or If-Match); 409 when stale"),
                "security": [{"queryKey": []}], "parameters": [id, if_match, project], "requestBody": body,
                "responses": with("200", one(&format!("The {noun} at its new version.")))},
        "delete": {"tags": ["saved"], "summary": format!("Delete a {noun} at the version you read; 409 when stale"), "security": [{"queryKey": []}],
                   "parameters": [id, version, if_match, project], "responses": with("204", json!({"description": "Deleted"}))}
    }));
}

/// `/docs`: fetches `/openapi.json` and lists every operation with its
/// parameters, body and answers.
pub const DOCS_HTML: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Contrail API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d2330}
h1{margin-bottom:0}.op{border:1px solid #d5dae3;border-radius:6px;margin:.8rem 0;padding:.6rem 1rem}
.m{display:inline-block;min-width:4.5rem;font-weight:700;text-transform:uppercase}.get{color:#17803d}.post{color:#1f5fbf}.put{color:#a05a00}.delete{color:#b3261e}.options{color:#777}
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
