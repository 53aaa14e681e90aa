# Sourced by the project's scripts: where caches live, so that repeated runs
# (and CI runs on a machine that ran before) reuse them. Nothing here installs.

# Cargo's tools (worker-build, wasm-bindgen-cli, …) are installed here.
export CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
export PATH="$CARGO_BIN:$PATH"
# The target directory lives outside the clone, so a fresh clone reuses the
# previous build instead of compiling DataFusion again.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/contrail/target}"
export npm_config_cache="${npm_config_cache:-$HOME/.cache/contrail/npm}"
export PIP_CACHE_DIR="${PIP_CACHE_DIR:-$HOME/.cache/contrail/pip}"
# Tests and CI: terse, no colour codes in logs, backtraces on failure.
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"
# Python packages for tests and benchmarks live in one venv outside the clone.
export CONTRAIL_VENV="${CONTRAIL_VENV:-$HOME/.cache/contrail/venv}"

# The edge Worker's toolchain (scripts/setup-worker-toolchain installs it).
# worker-build is pinned to the `worker` crate's version in edge/Cargo.toml.
export WORKER_BUILD_VERSION=0.8.7
# worker-build would download these from GitHub; use the pinned local ones.
export WASM_BINDGEN_BIN="$CARGO_BIN/wasm-bindgen"
CONTRAIL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export WASM_OPT_BIN="$CONTRAIL_ROOT/tests/worker/node_modules/.bin/wasm-opt"
export ESBUILD_BIN="$CONTRAIL_ROOT/tests/worker/node_modules/.bin/esbuild"
export WRANGLER_BIN="$CONTRAIL_ROOT/tests/worker/node_modules/.bin/wrangler"
# Quiet, offline wrangler: no metrics, no error reports, no cf fetch.
export CLOUDFLARE_CF_FETCH_ENABLED=false WRANGLER_SEND_METRICS=false WRANGLER_SEND_ERROR_REPORTS=false
