# Sourced by the query benchmarks: the peers' venv, the release binaries, and
# `contrail query` serving $data on 127.0.0.1:$port until the script exits.
# Sets $venv and $token.

venv="$HOME/.cache/contrail/bench-venv"
stamp="$venv/.requirements"
if [[ ! -x "$venv/bin/python" ]] || ! cmp -s bench/requirements.txt "$stamp"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet -r bench/requirements.txt
  cp bench/requirements.txt "$stamp"
fi

cargo build --release --locked -p contrail-bench --bin compact-bench -p contrail --bin contrail

start_query_server() {
  export CONTRAIL_KEYS_SECRETS="bench-secret-0123456789abcdef"
  "$CARGO_TARGET_DIR/release/contrail" query --store "file://$data" --listen "127.0.0.1:$port" &
  server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  for _ in $(seq 50); do
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break
    sleep 0.2
  done
  token=$("$CARGO_TARGET_DIR/release/contrail" keys admin)
}
