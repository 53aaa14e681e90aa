#!/usr/bin/env bash
# Dashboard benchmark: how fast the overview paints and fills in on a project
# with --events N events (default 1 M) over the last two days, in headless
# Chromium against `contrail query` (release), and the front end's size.
# Generates and compacts the events each run (they end at the current hour).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
events=1000000
runs=5
while [[ $# -gt 0 ]]; do
  case "$1" in
    --events) events="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    *) echo "usage: bench/dashboard.sh [--events N] [--runs N]" >&2; exit 2 ;;
  esac
done

scripts/build-dashboard
scripts/setup-browser
source bench/serve-query.sh
data="$HOME/.cache/contrail/bench-data/dashboard-$events"
rm -rf "$data"
mkdir -p "$data"
"$CARGO_TARGET_DIR/release/compact-bench" --events "$events" --days 2 --end-now --dir "$data" >/dev/null

port=18788
start_query_server
key=$("$CARGO_TARGET_DIR/release/contrail" keys query --project bench)
raw=$(cat dashboard/dist/index.html dashboard/dist/assets/* | wc -c)
gzip_total=0
for f in dashboard/dist/index.html dashboard/dist/assets/*; do
  gzip_total=$(( gzip_total + $(gzip -9 -c "$f" | wc -c) ))
done
echo "front end: $(( raw / 1024 )) kB raw, $(( gzip_total / 1024 )) kB gzipped (index.html + assets)"
node bench/dashboard.mjs "http://127.0.0.1:$port" "$key" "$runs" "$events"
