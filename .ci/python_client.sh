#!/usr/bin/env bash
# The Python binding (ingest/python, built by maturin) against the engine's known answers and a
# real `poe serve`: dry run, 202, retry, receipt, a refusal before sending, replay.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check 'maturin==1.16.0'
(cd ingest/python && VIRTUAL_ENV="$work/venv" CARGO_TARGET_DIR=../../target/python \
  "$work/venv/bin/maturin" develop --release --locked --quiet)
cargo test --workspace --locked --no-run
./target/debug/poe sample-batches --dir "$work/sample" --batches 1 >/dev/null
./target/debug/poe serve --config "$work/sample/poe.toml" --data "$work/data" --init \
  --archive "$work/archive" --no-pipeline --listen 127.0.0.1:0 \
  >"$work/serve.out" 2>"$work/serve.err" &
pid=$!
addr=
for _ in $(seq 50); do
  addr=$(grep -o '127\.0\.0\.1:[0-9]*' "$work/serve.out" | head -n 1 || true)
  [ -n "$addr" ] && break
  sleep 0.2
done
[ -n "$addr" ] || { echo "poe serve did not start"; cat "$work/serve.err"; exit 1; }
"$work/venv/bin/python" ingest/python/tests/test_client.py "http://$addr" \
  "$work/sample/poe.toml" 0x5a4d504c455f4b45 sample-options
