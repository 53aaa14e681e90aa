# Sourced by the project's scripts: where caches live, so that repeated runs
# (and CI runs on a machine that ran before) reuse them. Nothing here installs.

# Cargo's tools (worker-build, wasm-bindgen-cli, …) are installed here.
export PATH="$HOME/.cargo/bin:$PATH"
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
