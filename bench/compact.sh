#!/usr/bin/env bash
# Compaction benchmark: 5 M generated events (override with --events N) in raw
# batches of 10,000, compacted by the real compactor into a Delta table on a
# local directory. Prints events/s, events/s per core, bytes in and out.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --release --locked -p contrail-bench --bin compact-bench
"$CARGO_TARGET_DIR/release/compact-bench" "$@"
