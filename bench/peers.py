"""What the query benchmarks share: the peers (DuckDB and chDB, in-process)
opened on one Delta table's Parquet files as a view `events`, Contrail's
HTTP API, and best-of-N timing."""
import glob
import json
import time
import urllib.request

import chdb
import duckdb


def open_peers(table):
    """(number of files, DuckDB connection, chDB session), each with a view `events`."""
    files = sorted(glob.glob(f"{table}/date=*/*.parquet"))
    duck = duckdb.connect()
    duck.execute("SET TimeZone = 'UTC'")
    duck.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet({files!r}, hive_partitioning = true)")
    ch = chdb.session.Session()
    ch.query("SET session_timezone = 'UTC'")
    # Hive partitioning supplies `date`.
    ch.query(f"CREATE VIEW events AS SELECT * FROM file('{table}/date=*/*.parquet', Parquet)")
    return len(files), duck, ch


def post(url, token, body):
    """POSTs JSON with a Bearer token; the JSON answer."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def contrail_rows(url, token, sql):
    """Rows of `sql` through /v1/sql, as tuples."""
    answer = post(url, token, {"sql": sql})
    names = [c["name"] for c in answer["columns"]]
    return [tuple(row[n] for n in names) for row in answer["rows"]]


def best(fn, runs):
    """(best time of `runs` after one warm-up, the last result)."""
    fn()
    times = []
    result = None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result
