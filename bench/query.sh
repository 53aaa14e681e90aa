#!/usr/bin/env bash
# Query benchmark: Contrail against DuckDB and chDB (PyPI) on the same Parquet
# files. Generates and compacts --events N events once (default 5 M; kept in
# $HOME/.cache/contrail/bench-data), starts `contrail query` on it, and prints
# per-query times and ratios. Peers are installed into a venv by this script.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
events=5000000
runs=5
row_groups=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --events) events="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --row-group-rows) row_groups="$2"; shift 2 ;;
    *) echo "usage: bench/query.sh [--events N] [--runs N] [--row-group-rows N]" >&2; exit 2 ;;
  esac
done

source bench/serve-query.sh
data="$HOME/.cache/contrail/bench-data/query-$events${row_groups:+-rg$row_groups}"
if [[ ! -d "$data/tables/bench/_delta_log" ]]; then
  rm -rf "$data"
  mkdir -p "$data"
  "$CARGO_TARGET_DIR/release/compact-bench" --events "$events" --dir "$data" ${row_groups:+--row-group-rows "$row_groups"}
fi

port=18787
start_query_server
"$venv/bin/python" bench/query.py --table "$data/tables/bench" --url "http://127.0.0.1:$port/v1/sql?project=bench" \
  --token "$token" --runs "$runs"
