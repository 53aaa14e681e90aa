#!/usr/bin/env bash
# Ingest benchmark: builds release binaries, starts `contrail serve` on a fresh
# temporary data directory, and drives it with bench/ingest-load on loopback.
# Usage: bench/ingest.sh [ingest-load options, e.g. --concurrency 64 --seconds 20]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

cargo build --release --locked -p contrail -p contrail-bench
bin="$CARGO_TARGET_DIR/release"
data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
secret="bench-secret-$(date +%s%N)"
CONTRAIL_KEYS_SECRETS="$secret" RUST_LOG=warn "$bin/contrail" serve --listen "127.0.0.1:$port" --data "$data" >"$data/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
key=$(CONTRAIL_KEYS_SECRETS="$secret" "$bin/contrail" keys write --project bench)
echo "machine: $(nproc) cores; server pid $pid; data $data (durable acks: SQLite WAL, synchronous=FULL)"
"$bin/ingest-load" --url "http://127.0.0.1:$port" --key "$key" --server-pid "$pid" "$@"
sleep 2; echo "--- serve.log (tail)"; tail -5 "$data/serve.log"
raw=$(find "$data/store/raw" -name "*.arrow" 2>/dev/null | wc -l)
echo "  raw batches written  $raw ($(du -sh "$data/store/raw" | cut -f1))"
