#!/usr/bin/env bash
# Property-based check of the running service against specs/api/openapi.yaml: no 5xx on any
# generated input, and every response conforms to the schema (schemathesis' default checks are
# narrowed to the server-error check; conformance is exercised by the Rust tests).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check 'schemathesis==4.32.5'
work=$(mktemp -d)
# `cargo test --no-run` builds target/debug/poe with the features the whole workspace's tests
# unify (rand, hyper, parquet differ from a lone `-p poe-aggregator` build), so the README's
# `cargo test` afterwards reuses every artifact instead of compiling stwo and the rest again.
cargo test --workspace --locked --no-run
./target/debug/poe serve --config aggregator/poe.example.toml --data "$work/data" \
  --archive tests/fixtures/bundle_v1 --listen 127.0.0.1:0 --init \
  >"$work/serve.out" 2>"$work/serve.err" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 50); do
  addr=$(grep -o '127\.0\.0\.1:[0-9]*' "$work/serve.out" | head -n 1 || true)
  [ -n "$addr" ] && break
  sleep 0.2
done
[ -n "$addr" ] || { echo "poe serve did not start"; cat "$work/serve.err"; exit 1; }
python3 -m schemathesis.cli run specs/api/openapi.yaml --url "http://$addr" \
  --checks not_a_server_error --max-examples 50 --seed 1 --no-color
