//! `POST /v1/trends`, `/v1/funnels`, `/v1/retention`, persons and JSON in
//! SQL, end to end through ingest, with the data half compacted and half in
//! raw batches. The small shop below has answers worked out by hand in the
//! comments; the random data of the last tests is checked against
//! ClickHouse (chDB) itself.

use axum::http::StatusCode;
use contrail_testkit::clickhouse::{STEPS, funnel_events, levels, oracle, write_csv};
use serde_json::{Value, json};

use crate::harness::TestStack;

fn message(
    kind: &str,
    id: &str,
    user: Option<&str>,
    anonymous: Option<&str>,
    event: &str,
    at: &str,
    properties: Value,
) -> Value {
    let mut m = json!({"type": kind, "messageId": id, "timestamp": at, "properties": properties});
    if let Some(u) = user {
        m["userId"] = json!(u);
    }
    if let Some(a) = anonymous {
        m["anonymousId"] = json!(a);
    }
    if kind == "track" {
        m["event"] = json!(event);
    }
    m
}

fn track(id: &str, user: &str, event: &str, at: &str, properties: Value) -> Value {
    let (user, anonymous) = if user.starts_with('a') { (None, Some(user)) } else { (Some(user), None) };
    message("track", id, user, anonymous, event, at, properties)
}

/// The shop. Persons: u1 (ids a1, u1, a4: identify links a1, alias links
/// a4), u2, u3, u5.
fn shop() -> Vec<Value> {
    let mut alias = message("alias", "m-alias", Some("u1"), None, "", "2026-03-30T12:01:00Z", json!({}));
    alias["previousId"] = json!("a4");
    vec![
        track("m-01", "a1", "Viewed", "2026-03-28T09:00:00Z", json!({"plan": "free", "price": 10})),
        message("identify", "m-02", Some("u1"), Some("a1"), "", "2026-03-28T09:05:00Z", json!({})),
        track("m-03", "u1", "Added", "2026-03-28T09:10:00Z", json!({})),
        track("m-04", "u1", "Purchased", "2026-03-28T09:20:00Z", json!({"price": 30})),
        // 23:30 UTC is 00:30 on the 29th in Paris.
        track("m-05", "u2", "Viewed", "2026-03-28T23:30:00Z", json!({})),
        track("m-06", "u2", "Added", "2026-03-29T08:00:00Z", json!({})),
        track("m-07", "u2", "Purchased", "2026-03-31T08:00:00Z", json!({"price": 50})),
        track("m-08", "u3", "Viewed", "2026-03-25T10:00:00Z", json!({"plan": "pro"})),
        track("m-09", "u3", "Viewed", "2026-03-29T10:00:00Z", json!({"plan": "pro", "price": 20})),
        track("m-10", "u3", "Canceled", "2026-03-29T10:05:00Z", json!({})),
        track("m-11", "u3", "Added", "2026-03-29T10:10:00Z", json!({})),
        track("m-12", "u3", "Purchased", "2026-03-29T10:20:00Z", json!({"price": 20, "cart": {"total": 20.5}})),
        track("m-13", "a4", "Viewed", "2026-03-30T12:00:00Z", json!({"plan": "pro"})),
        alias,
        track("m-14", "u5", "Viewed", "2026-03-30T13:00:00Z", json!({"plan": "team"})),
        track("m-15", "u5", "Added", "2026-03-30T13:00:00Z", json!({})),
    ]
}

/// A stack holding `messages`, the first half compacted, the rest in raw batches.
async fn stack_with(messages: &[Value]) -> TestStack {
    stack_partitioned(messages, 0).await
}

/// [`stack_with`], planning queries for `partitions` partitions (0: one per core).
async fn stack_partitioned(messages: &[Value], partitions: usize) -> TestStack {
    let stack =
        TestStack::with(std::sync::Arc::new(contrail_ingest::SystemClock), |c| c.query.target_partitions = partitions);
    let (first, second) = messages.split_at(messages.len() / 2);
    for (i, half) in [first, second].into_iter().enumerate() {
        for chunk in half.chunks(500) {
            let (status, answer) = stack.post_json("/v1/batch", &json!({ "batch": chunk })).await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            assert_eq!(answer["accepted"], chunk.len(), "{answer}");
        }
        stack.flush().await;
        if i == 0 {
            stack.compact().await;
        }
    }
    stack
}

async fn ask(stack: &TestStack, path: &str, body: Value) -> (StatusCode, Value) {
    let auth = format!("Bearer {}", stack.query_key("demo"));
    stack.post(path, &[("authorization", &auth), ("content-type", "application/json")], body.to_string()).await
}

async fn answer(stack: &TestStack, path: &str, body: Value) -> Value {
    let (status, answer) = ask(stack, path, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{path} {body}: {answer}");
    assert!(answer["computed_at"].is_string(), "{answer}");
    assert!(answer.get("table_version").is_some(), "{answer}");
    answer
}

fn data(answer: &Value) -> Vec<Value> {
    answer["series"].as_array().unwrap().iter().map(|s| s["data"].clone()).collect()
}

#[tokio::test]
async fn persons_resolve_identify_and_alias_links_at_query_time() {
    let stack = stack_with(&shop()).await;
    let rows = stack.rows("SELECT distinct_id, person_id FROM persons ORDER BY distinct_id").await;
    let pairs: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r["distinct_id"].as_str().unwrap().into(), r["person_id"].as_str().unwrap().into()))
        .collect();
    let expected = [("a1", "u1"), ("a4", "u1"), ("u1", "u1"), ("u2", "u2"), ("u3", "u3"), ("u5", "u5")];
    assert_eq!(pairs, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
    // Stored events are never rewritten.
    assert_eq!(stack.number("SELECT count(*) FROM events WHERE distinct_id = 'a1'").await, 1);
    // The timeline of any of u1's ids shows all of u1's events.
    let auth = format!("Bearer {}", stack.query_key("demo"));
    let (status, _, body) = stack.get("/v1/users/a4/events", &[("authorization", &auth)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ids: Vec<&str> = body["events"].as_array().unwrap().iter().map(|e| e["event_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["m-alias", "m-13", "m-04", "m-03", "m-02", "m-01"]);
}

#[tokio::test]
async fn json_functions_and_operators_reach_into_properties() {
    let stack = stack_with(&shop()).await;
    let rows = stack
        .rows(
            "SELECT properties->>'plan' AS plan, count(*) AS n, sum(json_get_float(properties, 'price')) AS price \
             FROM events WHERE event = 'Viewed' GROUP BY 1 ORDER BY 1 NULLS FIRST",
        )
        .await;
    assert_eq!(
        rows,
        vec![
            json!({"plan": null, "n": 1, "price": null}),
            json!({"plan": "free", "n": 1, "price": 10.0}),
            json!({"plan": "pro", "n": 3, "price": 20.0}),
            json!({"plan": "team", "n": 1, "price": null}),
        ]
    );
    assert_eq!(stack.number("SELECT count(*) FROM events WHERE json_contains(properties, 'cart')").await, 1);
    let rows = stack
        .rows("SELECT json_get_float(properties, 'cart', 'total') AS total FROM events WHERE event_id = 'm-12'")
        .await;
    assert_eq!(rows, vec![json!({"total": 20.5})]);
}

#[tokio::test]
async fn trends_count_events_and_persons_per_local_bucket() {
    let stack = stack_with(&shop()).await;
    let viewed = |math: &str| json!({"event": "Viewed", "math": math});
    let body = json!({"series": [viewed("total"), viewed("unique_users"), viewed("dau"), viewed("wau")],
                      "interval": "day", "from": "2026-03-28", "to": "2026-03-31"});
    let utc = answer(&stack, "/v1/trends", body.clone()).await;
    assert_eq!(
        utc["buckets"],
        json!(["2026-03-28T00:00:00+00:00", "2026-03-29T00:00:00+00:00", "2026-03-30T00:00:00+00:00"])
    );
    // total: a1+u2 | u3 | a4+u5. unique users: a1 and a4 are both u1.
    // wau looks back before `from`: u3 viewed on the 25th.
    assert_eq!(data(&utc), vec![json!([2, 1, 2]), json!([2, 1, 2]), json!([2, 1, 2]), json!([3, 3, 4])]);
    let aggregated: Vec<&Value> = utc["series"].as_array().unwrap().iter().map(|s| &s["aggregated"]).collect();
    assert_eq!(aggregated, vec![&json!(5), &json!(4), &Value::Null, &Value::Null]);

    // Paris: the 29th lasts 23 hours and holds u2's view (00:30 local).
    let mut paris = body.clone();
    paris["timezone"] = json!("Europe/Paris");
    let paris = answer(&stack, "/v1/trends", paris).await;
    assert_eq!(
        paris["buckets"],
        json!(["2026-03-28T00:00:00+01:00", "2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"])
    );
    assert_eq!(data(&paris)[0], json!([1, 2, 2]));

    // Numeric math over a JSON property; empty buckets are null.
    let purchased = |math: &str| json!({"event": "Purchased", "math": math, "property": "price"});
    let body = json!({"series": [purchased("sum"), purchased("median"), purchased("p95")],
                      "interval": "day", "from": "2026-03-28", "to": "2026-03-31"});
    let sums = answer(&stack, "/v1/trends", body).await;
    assert_eq!(data(&sums), vec![json!([30.0, 20.0, null]), json!([30.0, 20.0, null]), json!([30.0, 20.0, null])]);
    let aggregated: Vec<&Value> = sums["series"].as_array().unwrap().iter().map(|s| &s["aggregated"]).collect();
    // percentile_cont over [20, 30]: median 25, p95 20 + 0.95 × 10.
    assert_eq!(aggregated, vec![&json!(50.0), &json!(25.0), &json!(29.5)]);

    // Breakdown: pro has two views in range, then `$other` for free, null and team.
    let body = json!({"series": [viewed("total")], "interval": "day", "from": "2026-03-28", "to": "2026-03-31",
                      "breakdown": "plan", "breakdown_limit": 1});
    let broken = answer(&stack, "/v1/trends", body).await;
    let series = broken["series"].as_array().unwrap();
    assert_eq!(series.len(), 2, "{broken}");
    assert_eq!(
        (&series[0]["breakdown_value"], &series[0]["data"], &series[0]["aggregated"]),
        (&json!("pro"), &json!([0, 1, 1]), &json!(2))
    );
    assert_eq!(
        (&series[1]["breakdown_value"], &series[1]["data"], &series[1]["aggregated"]),
        (&json!("$other"), &json!([2, 0, 1]), &json!(3))
    );

    // Filters: numbers compare numerically; a missing property matches neq.
    let body = json!({"series": [{"event": "Viewed", "filters": [{"property": "properties.price", "op": "gte", "value": 15}]},
                                 {"event": "Viewed", "filters": [{"property": "plan", "op": "neq", "value": "pro"}]},
                                 {"event": null, "filters": [{"property": "plan", "op": "in", "value": ["team", "free"]}]}],
                      "interval": "week", "from": "2026-03-23", "to": "2026-04-06"});
    let filtered = answer(&stack, "/v1/trends", body).await;
    // price ≥ 15: u3's view. Not pro (missing included): a1, u2 | u5. Free or team: a1 | u5.
    assert_eq!(data(&filtered), vec![json!([1, 0]), json!([2, 1]), json!([1, 1])]);
}

#[tokio::test]
async fn funnels_count_persons_per_step_with_times_to_convert() {
    let stack = stack_with(&shop()).await;
    let steps = json!([{"event": "Viewed"}, {"event": "Added"}, {"event": "Purchased"}]);
    let funnel = |extra: Value| {
        let mut body = json!({"steps": steps, "window": "1h", "from": "2026-03-28", "to": "2026-04-01"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let counts =
        |a: &Value| a["steps"].as_array().unwrap().iter().map(|s| s["count"].as_u64().unwrap()).collect::<Vec<_>>();

    // u1 and u3 convert in 10 + 10 minutes; u5 adds at the instant it views; u2 adds 8.5 h later.
    let ordered = answer(&stack, "/v1/funnels", funnel(json!({}))).await;
    assert_eq!(counts(&ordered), [4, 3, 2]);
    let s = &ordered["steps"];
    assert_eq!((&s[1]["conversion_from_first"], &s[2]["conversion_from_previous"]), (&json!(0.75), &json!(2.0 / 3.0)));
    assert_eq!(
        (&s[1]["median_seconds_to_convert"], &s[1]["average_seconds_to_convert"]),
        (&json!(600.0), &json!(400.0))
    );
    assert_eq!((&s[0]["median_seconds_to_convert"], &s[2]["median_seconds_to_convert"]), (&Value::Null, &json!(600.0)));

    let day = answer(&stack, "/v1/funnels", funnel(json!({"window": 86_400}))).await;
    assert_eq!(counts(&day), [4, 4, 2]);
    // Strict: u1's identify call and u3's cancel come between their steps.
    let strict = answer(&stack, "/v1/funnels", funnel(json!({"order": "strict"}))).await;
    assert_eq!(counts(&strict), [4, 1, 0]);
    // Excluding a cancel between viewing and adding drops u3's only chain.
    let excluded = answer(
        &stack,
        "/v1/funnels",
        funnel(json!({"exclusions": [{"event": "Canceled", "from_step": 0, "to_step": 1}]})),
    )
    .await;
    assert_eq!(counts(&excluded), [4, 2, 1]);
    let unordered = answer(
        &stack,
        "/v1/funnels",
        json!({"steps": [{"event": "Purchased"}, {"event": "Viewed"}], "window": "1h", "order": "unordered",
               "from": "2026-03-28", "to": "2026-04-01"}),
    )
    .await;
    assert_eq!(counts(&unordered), [4, 2]);
    assert_eq!(unordered["steps"][1]["median_seconds_to_convert"], Value::Null);

    // Breakdown by the plan on each person's first step: ties rank by value, missing first.
    let broken = answer(&stack, "/v1/funnels", funnel(json!({"breakdown": "plan", "breakdown_limit": 2}))).await;
    let rows: Vec<(Value, Vec<u64>)> =
        broken["breakdowns"].as_array().unwrap().iter().map(|b| (b["value"].clone(), counts(b))).collect();
    assert_eq!(
        rows,
        vec![(Value::Null, vec![1, 0, 0]), (json!("free"), vec![1, 1, 1]), (json!("$other"), vec![2, 2, 1])]
    );
}

#[tokio::test]
async fn funnel_persons_name_who_reached_a_step_and_who_dropped_after_it() {
    let stack = stack_with(&shop()).await;
    let funnel = json!({"steps": [{"event": "Viewed"}, {"event": "Added"}, {"event": "Purchased"}], "window": "1h",
                        "from": "2026-03-28", "to": "2026-04-01"});
    let persons = |step: usize, dropped: bool, limit: Option<usize>| {
        let mut body = json!({"funnel": funnel, "step": step, "dropped": dropped});
        if let Some(limit) = limit {
            body["limit"] = json!(limit);
        }
        body
    };
    let names =
        |a: &Value| a["persons"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_owned()).collect::<Vec<_>>();
    // As in the funnel above: u2 adds 8.5 h after viewing, u5 never purchases;
    // a1 and a4 are u1's ids, so u1 is one person.
    for (step, dropped, expected) in [
        (0, false, vec!["u1", "u2", "u3", "u5"]),
        (0, true, vec!["u2"]),
        (1, true, vec!["u5"]),
        (2, false, vec!["u1", "u3"]),
    ] {
        let answer = answer(&stack, "/v1/funnels/persons", persons(step, dropped, None)).await;
        assert_eq!(names(&answer), expected, "step {step} dropped {dropped}: {answer}");
        assert_eq!(answer["truncated"], false);
    }
    // The lists agree with the funnel's counts.
    let counts = answer(&stack, "/v1/funnels", funnel.clone()).await;
    let reached = answer(&stack, "/v1/funnels/persons", persons(1, false, None)).await;
    assert_eq!(names(&reached).len() as u64, counts["steps"][1]["count"].as_u64().unwrap());

    let cut = answer(&stack, "/v1/funnels/persons", persons(0, false, Some(2))).await;
    assert_eq!((names(&cut), &cut["truncated"]), (vec!["u1".to_owned(), "u2".to_owned()], &json!(true)));
    for (body, field) in [
        (persons(2, true, None), "step"),
        (persons(3, false, None), "step"),
        (persons(0, false, Some(0)), "limit"),
        (json!({"funnel": {"steps": [{"event": "Viewed"}]}, "step": 0}), "funnel.steps"),
        (json!({"funnel": funnel, "step": 0, "who": "me"}), "who"),
    ] {
        let (status, answer) = ask(&stack, "/v1/funnels/persons", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{field}: {message}");
    }
}

#[tokio::test]
async fn retention_builds_first_time_and_recurring_cohorts() {
    let stack = stack_with(&shop()).await;
    let body = |cohort: &str| {
        json!({"start_event": {"event": "Viewed"}, "return_event": null, "period": "day", "periods": 3,
               "cohort": cohort, "from": "2026-03-28", "to": "2026-03-31"})
    };
    let first = answer(&stack, "/v1/retention", body("first_time")).await;
    // u3's first view was on the 25th: no first-time cohort in range holds them.
    assert_eq!(
        first["cohorts"],
        json!([
            {"start": "2026-03-28T00:00:00+00:00", "size": 2, "counts": [2, 1, 1], "rates": [1.0, 0.5, 0.5]},
            {"start": "2026-03-29T00:00:00+00:00", "size": 0, "counts": [0, 0], "rates": [null, null]},
            {"start": "2026-03-30T00:00:00+00:00", "size": 1, "counts": [1], "rates": [1.0]},
        ])
    );
    let recurring = answer(&stack, "/v1/retention", body("recurring")).await;
    let sizes: Vec<&Value> = recurring["cohorts"].as_array().unwrap().iter().map(|c| &c["counts"]).collect();
    assert_eq!(sizes, vec![&json!([2, 1, 1]), &json!([1, 0]), &json!([2])]);
}

#[tokio::test]
async fn invalid_requests_answer_400_naming_the_field() {
    let stack = stack_with(&shop()[..2]).await;
    let series = json!([{"event": "Viewed"}]);
    let steps = json!([{"event": "A"}, {"event": "B"}]);
    let cases = [
        ("/v1/trends", json!({"series": series, "from": "2026-03-02", "to": "2026-03-01"}), "from"),
        ("/v1/trends", json!({"series": series, "from": "yesterday"}), "from"),
        ("/v1/trends", json!({"series": series, "timezone": "Mars/Olympus"}), "timezone"),
        ("/v1/trends", json!({"series": series, "interval": "fortnight"}), "interval"),
        ("/v1/trends", json!({"series": [{"event": "A", "math": "mode"}]}), "series[0].math"),
        ("/v1/trends", json!({"series": [{"event": "A", "math": "sum"}]}), "series[0].property"),
        ("/v1/trends", json!({"series": [{"event": "A", "math": "dau"}], "interval": "hour"}), "series[0].math"),
        ("/v1/trends", json!({"series": []}), "series"),
        ("/v1/trends", json!({"series": vec![json!({"event": "A"}); 33]}), "series"),
        ("/v1/trends", json!({"series": series, "colour": "red"}), "colour"),
        (
            "/v1/trends",
            json!({"series": series, "interval": "minute", "from": "2025-01-01", "to": "2026-01-01"}),
            "interval",
        ),
        (
            "/v1/trends",
            json!({"series": series, "filters": [{"property": "plan", "op": "like", "value": "x"}]}),
            "filters[0].op",
        ),
        (
            "/v1/trends",
            json!({"series": series, "filters": [{"property": "plan", "op": "eq", "value": "x"},
                                                            {"property": "plan", "op": "in", "value": "x"}]}),
            "filters[1].value",
        ),
        (
            "/v1/trends",
            json!({"series": series, "filters": [{"property": "plan", "op": "regex", "value": "(("}]}),
            "filters[0].value",
        ),
        (
            "/v1/trends",
            json!({"series": series, "filters": [{"property": "plan", "op": "gt", "value": {"a": 1}}]}),
            "filters[0].value",
        ),
        ("/v1/trends", json!({"series": series, "breakdown": "properties."}), "breakdown"),
        ("/v1/funnels", json!({"steps": []}), "steps"),
        ("/v1/funnels", json!({"steps": [{"event": "A"}]}), "steps"),
        ("/v1/funnels", json!({"steps": vec![json!({"event": "A"}); 33]}), "steps"),
        ("/v1/funnels", json!({"steps": steps, "window": 0}), "window"),
        ("/v1/funnels", json!({"steps": steps, "window": "367d"}), "window"),
        ("/v1/funnels", json!({"steps": steps, "window": "1 fortnight"}), "window"),
        ("/v1/funnels", json!({"steps": steps, "order": "sideways"}), "order"),
        (
            "/v1/funnels",
            json!({"steps": steps, "exclusions": [{"event": "X", "from_step": 1, "to_step": 1}]}),
            "exclusions[0]",
        ),
        ("/v1/funnels", json!({"steps": steps, "breakdown_attribution": "middle"}), "breakdown_attribution"),
        (
            "/v1/funnels",
            json!({"steps": [{"event": "A", "filters": [{"property": "", "op": "eq", "value": 1}]}, {"event": "B"}]}),
            "steps[0].filters[0].property",
        ),
        ("/v1/retention", json!({"start_event": {"event": "A"}, "period": "year"}), "period"),
        ("/v1/retention", json!({"start_event": {"event": "A"}, "periods": 0}), "periods"),
        ("/v1/retention", json!({"start_event": {"event": "A"}, "periods": 101}), "periods"),
        ("/v1/retention", json!({"start_event": {"event": "A"}, "cohort": "sometimes"}), "cohort"),
        ("/v1/retention", json!({"return_event": {"event": "A"}}), "start_event"),
        // A value of the wrong type is named by its path, not only by a column.
        ("/v1/retention", json!({"start_event": {"event": "A"}, "periods": "8"}), "periods: invalid type"),
        (
            "/v1/funnels",
            json!({"steps": steps, "exclusions": [{"event": "X", "from_step": -1, "to_step": 1}]}),
            "exclusions[0].from_step",
        ),
        ("/v1/trends", json!({"series": series, "from": "+262143-12-30"}), "from"),
        (
            "/v1/trends",
            json!({"series": series, "filters": [{"property": "plan", "op": "is_set", "value": 1}]}),
            "filters[0].value",
        ),
    ];
    for (path, body, field) in cases {
        let (status, answer) = ask(&stack, path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_query", "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{path} {body}: '{message}' does not name {field}");
    }
    // A body over the limit is a 413, and a nesting bomb a 400.
    let auth = format!("Bearer {}", stack.query_key("demo"));
    let huge = json!({"series": [{"event": "x".repeat(3 << 20)}]}).to_string();
    let (status, answer) = stack.post("/v1/trends", &[("authorization", &auth)], huge).await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (StatusCode::PAYLOAD_TOO_LARGE, &json!("payload_too_large")),
        "{answer}"
    );
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let (status, answer) = stack.post("/v1/funnels", &[("authorization", &auth)], deep).await;
    assert_eq!((status, &answer["error"]["code"]), (StatusCode::BAD_REQUEST, &json!("invalid_query")), "{answer}");
    // A body that is not JSON at all.
    let (status, answer) = stack.post("/v1/funnels", &[("authorization", &auth)], "steps=A,B").await;
    assert_eq!((status, &answer["error"]["code"]), (StatusCode::BAD_REQUEST, &json!("invalid_query")), "{answer}");
}

#[tokio::test]
async fn an_analytics_request_over_its_memory_limit_answers_503_and_the_server_keeps_serving() {
    let stack = TestStack::with(std::sync::Arc::new(contrail_ingest::SystemClock), |c| c.query.memory_mb = 1);
    let events = funnel_events(7, 2_000, 1_764_547_200_000, 3_600_000);
    let batch: Vec<Value> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            track(&format!("m{i}"), &format!("u{}", e.person), e.event, &at(e.at_ms), json!({"pad": "x".repeat(200)}))
        })
        .collect();
    for chunk in batch.chunks(500) {
        let (status, answer) = stack.post_json("/v1/batch", &json!({ "batch": chunk })).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    stack.flush().await;
    let body = json!({"steps": [{"event": "A"}, {"event": "B"}], "breakdown": "pad", "from": "2025-11-01", "to": "2026-01-01"});
    let (status, answer) = ask(&stack, "/v1/funnels", body).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(answer["error"]["code"], "query_memory_limit", "{answer}");
    let (status, answer) =
        ask(&stack, "/v1/trends", json!({"series": [{"event": "nothing"}], "from": "2026-01-01", "to": "2026-01-02"}))
            .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

/// RFC 3339 with milliseconds.
fn at(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The endpoint's step counts are ClickHouse's: `ordered` is
/// `windowFunnel(window)` and `strict` is `windowFunnel(window,
/// 'strict_order')`, over the same rows (half compacted, half raw, so a
/// person's events are split between the table and raw batches), planned
/// for 1, 2 and 8 partitions.
#[tokio::test(flavor = "multi_thread")]
async fn funnel_step_counts_equal_clickhouse_counts() {
    const WINDOW_MS: i64 = 3_600_000;
    let events = funnel_events(42, 600, 1_764_547_200_000, WINDOW_MS);
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("events.csv");
    write_csv(&events, &csv);
    let clickhouse = oracle(&csv, WINDOW_MS, &STEPS);

    let messages: Vec<Value> = events
        .iter()
        .enumerate()
        .map(|(i, e)| track(&format!("m{i}"), &format!("u{}", e.person), e.event, &at(e.at_ms), json!({})))
        .collect();
    let steps: Vec<Value> = STEPS.iter().map(|s| json!({"event": s})).collect();
    for partitions in [1, 2, 8] {
        let stack = stack_partitioned(&messages, partitions).await;
        for (order, mode) in [("ordered", "default"), ("strict", "strict_order")] {
            let levels = levels(&clickhouse, mode);
            let expected: Vec<u64> =
                (1..=STEPS.len() as u64).map(|step| levels.values().filter(|l| **l >= step).count() as u64).collect();
            let body = json!({"steps": steps, "window": WINDOW_MS / 1000, "order": order, "from": "2025-11-01", "to": "2026-01-01"});
            let ours = answer(&stack, "/v1/funnels", body).await;
            let counts: Vec<u64> =
                ours["steps"].as_array().unwrap().iter().map(|s| s["count"].as_u64().unwrap()).collect();
            assert_eq!(counts, expected, "{order}, {partitions} partitions");
        }
    }
}
