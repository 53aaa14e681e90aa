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

venv="$HOME/.cache/contrail/bench-venv"
stamp="$venv/.requirements"
if [[ ! -x "$venv/bin/python" ]] || ! cmp -s bench/requirements.txt "$stamp"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet -r bench/requirements.txt
  cp bench/requirements.txt "$stamp"
fi

cargo build --release --locked -p contrail-bench --bin compact-bench -p contrail --bin contrail
data="$HOME/.cache/contrail/bench-data/query-$events${row_groups:+-rg$row_groups}"
if [[ ! -d "$data/tables/bench/_delta_log" ]]; then
  rm -rf "$data"
  mkdir -p "$data"
  "$CARGO_TARGET_DIR/release/compact-bench" --events "$events" --dir "$data" ${row_groups:+--row-group-rows "$row_groups"}
fi

export CONTRAIL_KEYS_SECRETS="bench-secret-0123456789abcdef"
port=18787
"$CARGO_TARGET_DIR/release/contrail" query --store "file://$data" --listen "127.0.0.1:$port" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.2
done
token=$("$CARGO_TARGET_DIR/release/contrail" keys admin)
"$venv/bin/python" bench/query.py --table "$data/tables/bench" --url "http://127.0.0.1:$port/v1/sql?project=bench" \
  --token "$token" --runs "$runs"
