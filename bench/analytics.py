#!/usr/bin/env python3
"""Analytics timings: Contrail against chDB and DuckDB on the very same
Parquet files (one project's Delta table written by the compactor).

Each engine runs its best form of each question: Contrail its SQL functions
(`window_funnel`, `percentile_cont` over `json_get_float`) through HTTP
/v1/sql, and its endpoints (/v1/funnels, /v1/retention, /v1/trends); chDB
`windowFunnel`, `uniqExact`, `quantileExactInclusive` over `JSONExtractFloat`;
DuckDB plain SQL (a funnel as self-joins, `quantile_cont` over
`json_extract`). Each query runs once to warm caches, then the best of --runs
is kept. Answers are compared before any time is printed: the script stops
when two engines disagree.

Usage: analytics.py --table DIR --url BASE_URL --token TOKEN [--project P] [--runs 5]
"""
import argparse
import calendar
import json
import math
import time

from peers import best, contrail_rows, open_peers, post

STEPS = ["Signed Up", "Added to Cart", "Checkout"]
IN_STEPS = ", ".join(f"'{s}'" for s in STEPS)
CONDITIONS = ", ".join(f"event = '{s}'" for s in STEPS)
WINDOW_S = 3600
# Weeks as integers, Monday-aligned (the Unix epoch is a Thursday).
MONDAY_OFFSET_S = 4 * 86400

FUNNEL = {
    "contrail": f"""SELECT level, count(*) AS persons FROM (
        SELECT distinct_id, window_funnel({WINDOW_S}, timestamp, {CONDITIONS}) AS level
        FROM events WHERE event IN ({IN_STEPS}) GROUP BY distinct_id) GROUP BY level ORDER BY level""",
    "chdb": f"""SELECT level, count() AS persons FROM (
        SELECT distinct_id, windowFunnel({WINDOW_S * 1000})(toUInt64(toUnixTimestamp64Milli(timestamp)), {CONDITIONS}) AS level
        FROM events WHERE event IN ({IN_STEPS}) GROUP BY distinct_id) GROUP BY level ORDER BY level""",
    # The furthest step of a chain anchored on a first step: the earliest
    # second step after it leaves the most room for the third.
    "duckdb": f"""WITH s AS (SELECT distinct_id, timestamp AS t, event FROM events WHERE event IN ({IN_STEPS})),
        a AS (SELECT distinct_id, t AS t0 FROM s WHERE event = '{STEPS[0]}'),
        b AS (SELECT a.distinct_id, a.t0, min(s.t) AS t1 FROM a JOIN s ON s.distinct_id = a.distinct_id
              AND s.event = '{STEPS[1]}' AND s.t >= a.t0 AND s.t <= a.t0 + INTERVAL {WINDOW_S} SECOND GROUP BY 1, 2),
        c AS (SELECT DISTINCT b.distinct_id FROM b JOIN s ON s.distinct_id = b.distinct_id
              AND s.event = '{STEPS[2]}' AND s.t >= b.t1 AND s.t <= b.t0 + INTERVAL {WINDOW_S} SECOND),
        persons AS (SELECT DISTINCT distinct_id FROM s),
        levels AS (SELECT CASE WHEN distinct_id IN (SELECT distinct_id FROM c) THEN 3
                               WHEN distinct_id IN (SELECT distinct_id FROM b) THEN 2
                               WHEN distinct_id IN (SELECT distinct_id FROM a) THEN 1 ELSE 0 END AS level FROM persons)
        SELECT level, count(*) AS persons FROM levels GROUP BY level ORDER BY level""",
}


def retention(week):
    return f"""WITH firsts AS (SELECT distinct_id, min({week}) AS cohort FROM events WHERE event = 'Signed Up' GROUP BY distinct_id),
        active AS (SELECT DISTINCT distinct_id, {week} AS week FROM events)
        SELECT f.cohort AS cohort, a.week - f.cohort AS k, count(*) AS persons
        FROM firsts f JOIN active a ON a.distinct_id = f.distinct_id
        WHERE a.week >= f.cohort AND a.week < f.cohort + 8 GROUP BY 1, 2 ORDER BY 1, 2"""


RETENTION = {
    "contrail": retention(f"CAST(floor((extract(epoch FROM timestamp) - {MONDAY_OFFSET_S}) / 604800) AS BIGINT)"),
    "chdb": retention(f"toInt64(intDiv(toUnixTimestamp(timestamp) - {MONDAY_OFFSET_S}, 604800))"),
    "duckdb": retention(f"CAST(floor((epoch(timestamp) - {MONDAY_OFFSET_S}) / 604800) AS BIGINT)"),
}

DAU = {
    "contrail": "SELECT CAST(CAST(timestamp AS DATE) AS VARCHAR) AS day, count(DISTINCT distinct_id) AS users FROM events GROUP BY 1 ORDER BY 1",
    "chdb": "SELECT toString(toDate(timestamp)) AS day, uniqExact(distinct_id) AS users FROM events GROUP BY 1 ORDER BY 1",
    "duckdb": "SELECT CAST(CAST(timestamp AS DATE) AS VARCHAR) AS day, count(DISTINCT distinct_id) AS users FROM events GROUP BY 1 ORDER BY 1",
}

P95 = {
    "contrail": "SELECT event, percentile_cont(0.95) WITHIN GROUP (ORDER BY json_get_float(properties, 'price')) AS p95 FROM events GROUP BY event ORDER BY event",
    "chdb": "SELECT event, quantileExactInclusive(0.95)(JSONExtractFloat(properties, 'price')) AS p95 FROM events GROUP BY event ORDER BY event",
    "duckdb": "SELECT event, quantile_cont(CAST(json_extract(properties, '$.price') AS DOUBLE), 0.95) AS p95 FROM events GROUP BY event ORDER BY event",
}


def same(a, b):
    """Rows equal, numbers to 1e-9 relative."""
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b):
        for x, y in zip(ra, rb):
            if isinstance(x, (int, float)) and isinstance(y, (int, float)):
                if not math.isclose(float(x), float(y), rel_tol=1e-9, abs_tol=1e-9):
                    return False
            elif str(x) != str(y):
                return False
    return True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--table", required=True)
    p.add_argument("--url", required=True, help="base URL of `contrail query`")
    p.add_argument("--token", required=True)
    p.add_argument("--project", default="bench")
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args()

    files, duck, ch = open_peers(a.table)
    engines = {
        "contrail": lambda sql: contrail_rows(f"{a.url}/v1/sql?project={a.project}", a.token, sql),
        "chdb": lambda sql: [tuple(r) for r in json.loads(ch.query(sql, "JSONCompact").bytes())["data"]],
        "duckdb": lambda sql: [tuple(r) for r in duck.execute(sql).fetchall()],
    }

    print(f"analytics-bench: {files} Parquet files under {a.table}, best of {a.runs} after a warm-up")
    print(f"  {'question':<34}{'contrail':>11}{'chdb':>11}{'duckdb':>11}{'contrail/chdb':>15}{'contrail/best':>15}")
    answers = {}
    for name, forms in [("3-step funnel, 1 h window", FUNNEL), ("weekly retention, 8 weeks", RETENTION),
                        ("exact daily users", DAU), ("p95 of a JSON number by event", P95)]:
        timings = {}
        for engine, sql in forms.items():
            timings[engine], rows = best(lambda: engines[engine](sql), a.runs)
            # chDB renders UInt8 levels and counts as strings in JSONCompact.
            rows = [tuple(float(x) if isinstance(x, str) and x.replace(".", "", 1).isdigit() else x for x in r) for r in rows]
            answers.setdefault(name, {})[engine] = rows
        reference = answers[name]["contrail"]
        for engine in ("chdb", "duckdb"):
            if not same(reference, answers[name][engine]):
                raise SystemExit(f"{name}: Contrail and {engine} disagree:\n  {reference[:6]}\n  {answers[name][engine][:6]}")
        peer = min(timings["chdb"], timings["duckdb"])
        print(f"  {name:<34}{timings['contrail']*1000:>9.1f}ms{timings['chdb']*1000:>9.1f}ms{timings['duckdb']*1000:>9.1f}ms"
              f"{timings['contrail']/timings['chdb']:>14.2f}x{timings['contrail']/peer:>14.2f}x")

    # The same questions through the endpoints (persons resolved, calendar
    # buckets, every answer field), checked against the SQL answers above.
    span = {"from": "2026-08-01", "to": "2026-12-01"}
    endpoints = [
        ("/v1/funnels", "3-step funnel", {"steps": [{"event": s} for s in STEPS], "window": WINDOW_S, **span}),
        ("/v1/retention", "weekly retention", {"start_event": {"event": "Signed Up"}, "period": "week", "periods": 8, **span}),
        ("/v1/trends", "daily users", {"series": [{"event": None, "math": "unique_users"}], "interval": "day", **span}),
        ("/v1/trends", "p95 by event", {"series": [{"event": None, "math": "p95", "property": "price"}],
                                        "interval": "month", "breakdown": "event", "breakdown_limit": 20, **span}),
    ]
    sql_times = {}
    print(f"  {'endpoint':<34}{'contrail':>11}")
    for path, name, body in endpoints:
        t, answer = best(lambda: post(f"{a.url}{path}?project={a.project}", a.token, body), a.runs)
        check_endpoint(name, answer, answers)
        sql_times[name] = t
        print(f"  {path + ' ' + name:<34}{t*1000:>9.1f}ms")
    print("  (contrail/peer < 1: Contrail is faster; Contrail's times include HTTP and JSON encoding)")


def check_endpoint(name, answer, answers):
    if name == "3-step funnel":
        levels = {int(level): int(n) for level, n in answers["3-step funnel, 1 h window"]["contrail"]}
        expected = [sum(n for level, n in levels.items() if level >= i + 1) for i in range(len(STEPS))]
        got = [s["count"] for s in answer["steps"]]
    elif name == "weekly retention":
        rows = answers["weekly retention, 8 weeks"]["contrail"]
        expected = {(int(c), int(k)): int(n) for c, k, n in rows}
        got = {}
        for cohort in answer["cohorts"]:
            start = calendar.timegm(time.strptime(cohort["start"][:10], "%Y-%m-%d"))
            week = int((start - MONDAY_OFFSET_S) // 604800)
            for k, n in enumerate(cohort["counts"]):
                if n:
                    got[(week, k)] = n
    elif name == "daily users":
        expected = [int(n) for _, n in answers["exact daily users"]["contrail"]]
        got = [n for n in answer["series"][0]["data"] if n]
    else:
        expected = {e: round(p, 6) for e, p in answers["p95 of a JSON number by event"]["contrail"] if p is not None}
        got = {s["breakdown_value"]: round(s["aggregated"], 6) for s in answer["series"] if s["aggregated"] is not None}
    if got != expected:
        raise SystemExit(f"endpoint {name} disagrees with SQL:\n  {str(got)[:300]}\n  {str(expected)[:300]}")


if __name__ == "__main__":
    main()
