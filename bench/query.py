#!/usr/bin/env python3
"""Query timings: Contrail (HTTP /v1/sql) against DuckDB and chDB, in-process,
on the very same Parquet files (one project's Delta table written by the
compactor). Each query runs once to warm caches, then the best of --runs is
kept. Results are compared for equality before any time is printed.

Usage: query.py --table DIR --url URL --token TOKEN [--runs 5]
"""
import argparse
import json

from peers import best, contrail_rows, open_peers

QUERIES = [
    ("count", "SELECT count(*) FROM events"),
    ("by event", "SELECT event, count(*) AS n FROM events GROUP BY event ORDER BY event"),
    ("daily users", "SELECT CAST(date AS VARCHAR) AS d, count(DISTINCT distinct_id) AS u FROM events GROUP BY date ORDER BY d"),
    ("one day by hour", "SELECT extract(hour FROM timestamp) AS h, count(*) AS n FROM events "
        "WHERE timestamp >= TIMESTAMP '2026-11-24 00:00:00' AND timestamp < TIMESTAMP '2026-11-25 00:00:00' GROUP BY 1 ORDER BY 1"),
    ("user timeline", "SELECT event_id, event FROM events WHERE distinct_id = 'user-4242' ORDER BY timestamp DESC, event_id DESC LIMIT 50"),
    ("top pages", "SELECT url, count(*) AS n FROM events WHERE event = '$page' GROUP BY url ORDER BY n DESC, url LIMIT 10"),
]


def normalise(rows):
    return [tuple(str(v) for v in row) for row in rows]


def main():
    args = argparse.ArgumentParser()
    args.add_argument("--table", required=True)
    args.add_argument("--url", required=True)
    args.add_argument("--token", required=True)
    args.add_argument("--runs", type=int, default=5)
    a = args.parse_args()

    files, duck, ch = open_peers(a.table)

    print(f"query-bench: {files} Parquet files under {a.table}, best of {a.runs} after a warm-up")
    print(f"  {'query':<17}{'contrail':>10}{'duckdb':>10}{'chdb':>10}{'duckdb/contrail':>17}{'chdb/contrail':>15}")
    for name, sql in QUERIES:
        ours, ours_rows = best(lambda: contrail_rows(a.url, a.token, sql), a.runs)
        duck_t, duck_rows = best(lambda: duck.execute(sql).fetchall(), a.runs)
        ch_sql = sql.replace("extract(hour FROM timestamp)", "toHour(timestamp)").replace("CAST(date AS VARCHAR)", "toString(date)")
        ch_t, ch_rows = best(lambda: json.loads(ch.query(ch_sql, "JSONCompact").bytes())["data"], a.runs)
        if normalise(ours_rows) != normalise(duck_rows):
            raise SystemExit(f"{name}: Contrail and DuckDB disagree:\n  {ours_rows[:5]}\n  {duck_rows[:5]}")
        if len(ch_rows) != len(ours_rows):
            raise SystemExit(f"{name}: Contrail and chDB disagree on the row count: {len(ours_rows)} vs {len(ch_rows)}")
        print(f"  {name:<17}{ours*1000:>8.1f}ms{duck_t*1000:>8.1f}ms{ch_t*1000:>8.1f}ms{duck_t/ours:>16.2f}x{ch_t/ours:>14.2f}x")
    print("  (ratios > 1: Contrail is faster; Contrail's time includes HTTP and JSON encoding)")


if __name__ == "__main__":
    main()
