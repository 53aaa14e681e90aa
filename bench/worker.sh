#!/usr/bin/env bash
# Edge Worker benchmark:
#  1. size: what `wrangler deploy` uploads (its own "Total Upload … / gzip …"
#     line) and the wasm module alone, raw and gzip -9; goal ≤ 300 KB gzipped;
#  2. CPU per 100-event batch inside workerd, started through Miniflare's API
#     (bench/worker_miniflare.mjs: the runtime of `wrangler dev` without its
#     proxy worker and inspector), with local Durable Objects on SQLite and
#     local R2, by bench/worker_cpu.py: workerd's user+system CPU over
#     sequential requests, divided by the requests. That counts the Worker,
#     the Durable Object (store and, amortised, its flushes to R2) and
#     workerd's HTTP handling together, so a health check is measured too and
#     subtracted for the ingest work alone; goal ≤ 1 ms. The same probe
#     against `contrail serve` (release build) runs in the same invocation.
# Usage: bench/worker.sh [requests per case, default 400]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/setup-worker-toolchain >/dev/null
scripts/build-worker
cargo build --release --locked -p contrail -p contrail-bench
bin="$CARGO_TARGET_DIR/release"
requests=${1:-400}

work=$(mktemp -d)
cleanup() {
  [ -n "${workerd_group:-}" ] && kill -KILL -- "-$workerd_group" 2>/dev/null || true
  [ -n "${serve_pid:-}" ] && kill "$serve_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
secret="bench-secret-$(date +%s%N)"
key=$(CONTRAIL_KEYS_SECRETS="$secret" "$bin/contrail" keys write --project bench)

echo "== size"
upload=$("$WRANGLER_BIN" deploy --dry-run --outdir "$work/dist" 2>&1 | grep -o 'Total Upload: .*')
wasm=edge/build/index_bg.wasm
wasm_raw=$(wc -c < "$wasm"); wasm_gz=$(gzip -9c "$wasm" | wc -c)
echo "  wrangler deploy      $upload"
echo "  wasm module          $wasm_raw bytes, $wasm_gz gzipped (goal ≤ 300 KB = 307200 bytes gzipped)"

echo "== CPU per request: the Worker in workerd"
port=$(free_port)
setsid node bench/worker_miniflare.mjs "$port" "$secret" "$work/state" >"$work/workerd.log" 2>&1 &
workerd_group=$!
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
pids=$(pgrep -g "$workerd_group" -x workerd | paste -sd, || true)
[ -n "$pids" ] || { echo "no workerd process found"; tail -20 "$work/workerd.log"; exit 1; }
worker_out=$(python3 bench/worker_cpu.py "$port" "$key" "$pids" "$requests")
echo "$worker_out"
kill -KILL -- "-$workerd_group" 2>/dev/null || true; workerd_group=

echo "== CPU per request: contrail serve, same probe"
port=$(free_port)
CONTRAIL_KEYS_SECRETS="$secret" RUST_LOG=warn "$bin/contrail" serve --listen "127.0.0.1:$port" --data "$work/serve" >"$work/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
serve_out=$(python3 bench/worker_cpu.py "$port" "$key" "$serve_pid" "$requests")
echo "$serve_out"

cpu() { python3 -c 'import json,sys; print(next(json.loads(l)["cpu_ms"] for l in sys.stdin if json.loads(l)["case"]==sys.argv[1]))' "$2" <<<"$1"; }
w_new=$(cpu "$worker_out" batch_100_new); w_base=$(cpu "$worker_out" healthz); w_dup=$(cpu "$worker_out" batch_100_duplicates)
s_new=$(cpu "$serve_out" batch_100_new); s_base=$(cpu "$serve_out" healthz)
echo "== summary"
echo "  wasm gzipped                     $wasm_gz bytes ($(awk -v b="$wasm_gz" 'BEGIN{printf "%.1f", b/1024}') KiB; goal ≤ 300 KB)"
echo "  workerd CPU, 100 new events      $w_new ms per batch (all of workerd, health check $w_base ms)"
awk -v n="$w_new" -v b="$w_base" -v d="$w_dup" 'BEGIN{printf "  … minus a health check          %.3f ms (goal ≤ 1 ms); 100 duplicates: %.3f ms\n", n-b, d-b}'
echo "  serve CPU, 100 new events        $s_new ms per batch (health check $s_base ms)"
awk -v w="$w_new" -v s="$s_new" -v wb="$w_base" -v sb="$s_base" 'BEGIN{ if (w-wb > 0) printf "  serve / workerd (ingest work)    %.2fx (> 1: workerd spends less CPU per batch)\n", (s-sb)/(w-wb) }'
