#!/usr/bin/env bash
# Analytics benchmark: Contrail's funnels, retention, daily users and JSON
# percentiles against chDB and DuckDB (PyPI) on the same Parquet files.
# Generates and compacts --events N events spread over 90 days once (default
# 5 M; kept in $HOME/.cache/contrail/bench-data), starts `contrail query` on
# them, and prints per-question times and ratios (bench/analytics.py).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
events=5000000
runs=5
while [[ $# -gt 0 ]]; do
  case "$1" in
    --events) events="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    *) echo "usage: bench/analytics.sh [--events N] [--runs N]" >&2; exit 2 ;;
  esac
done

source bench/serve-query.sh
data="$HOME/.cache/contrail/bench-data/analytics-$events-d90"
if [[ ! -d "$data/tables/bench/_delta_log" ]]; then
  rm -rf "$data"
  mkdir -p "$data"
  "$CARGO_TARGET_DIR/release/compact-bench" --events "$events" --days 90 --dir "$data"
fi

port=18788
start_query_server
"$venv/bin/python" bench/analytics.py --table "$data/tables/bench" --url "http://127.0.0.1:$port" \
  --token "$token" --project bench --runs "$runs"
