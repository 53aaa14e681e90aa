#!/usr/bin/env python3
"""ClickHouse's own answers for windowFunnel and retention, via chDB.

The oracle of the window_funnel/retention differential tests: the Rust tests
write seeded events to a CSV, run this script as a subprocess, and compare
their results with ClickHouse's, person by person and mode by mode.

Usage:
    oracle.py EVENTS_CSV --window-ms W --steps A,B,C[,...]

EVENTS_CSV has the header `person,at_ms,event` (text, integer milliseconds
since the epoch, text). Step i is the condition `event = '<i-th step>'`.

Prints one JSON object:
    {"clickhouse_version": "...",
     "window_funnel": {"default": {person: level, ...},
                       "strict_order": {...}, "strict_deduplication": {...},
                       "strict_increase": {...}, "strict_once": {...}},
     "retention": {person: [0 or 1, ...], ...}}
Every person in the CSV appears in every map. A mode (or query) this
ClickHouse rejects is {"error": "..."} instead of a map: e.g. retention needs
at least two steps.

Timestamps are passed as UInt64 milliseconds (and the window in milliseconds):
windowFunnel and retention take DateTime or unsigned integers, not DateTime64.
The window is inclusive: an event at start + W still counts.
"""
import argparse
import json
import os

from chdb import session

MODES = ["default", "strict_order", "strict_deduplication", "strict_increase", "strict_once"]


def quote(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def per_person(sess, sql):
    rows = sess.query(sql, "JSONCompactEachRow").bytes().decode().splitlines()
    return dict(json.loads(row) for row in rows if row)


def per_person_or_error(sess, sql):
    """per_person, or {"error": ...} for what this ClickHouse rejects."""
    try:
        return per_person(sess, sql)
    except Exception as err:
        return {"error": str(err).strip()}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("events_csv")
    p.add_argument("--window-ms", type=int, required=True)
    p.add_argument("--steps", required=True, help="comma-separated event names")
    args = p.parse_args()
    steps = args.steps.split(",")
    conds = ", ".join(f"event = {quote(s)}" for s in steps)

    sess = session.Session()
    sess.query("CREATE TABLE e (person String, at UInt64, event String) ENGINE = Memory")
    sess.query(
        "INSERT INTO e SELECT person, at_ms, event FROM file("
        f"{quote(os.path.abspath(args.events_csv))}, CSVWithNames, "
        "'person String, at_ms UInt64, event String')"
    )

    out = {"clickhouse_version": per_person(sess, "SELECT 'v', version()")["v"], "window_funnel": {}}
    for mode in MODES:
        params = str(args.window_ms) + ("" if mode == "default" else ", " + quote(mode))
        out["window_funnel"][mode] = per_person_or_error(
            sess, f"SELECT person, windowFunnel({params})(at, {conds}) FROM e GROUP BY person ORDER BY person"
        )
    out["retention"] = per_person_or_error(
        sess, f"SELECT person, retention({conds}) FROM e GROUP BY person ORDER BY person"
    )
    sess.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
