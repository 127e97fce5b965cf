#!/usr/bin/env bash
# Auditors' own tools on poe's Parquet: pyarrow and DuckDB read the golden bundle with the
# documented types, and DuckDB's per-rollup notional equals `poe audit --json`'s; then DuckDB
# reads the same files over HTTP from `poe serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check 'pyarrow==26.0.1' 'duckdb==2.0.1'
# `cargo test --no-run` builds target/debug/poe with the features the whole workspace's tests
# unify (rand, hyper, parquet differ from a lone `-p poe-aggregator` build), so the README's
# `cargo test` afterwards reuses every artifact instead of compiling stwo and the rest again.
cargo test --workspace --locked --no-run
day=tests/fixtures/bundle_v1/days/2026-11-18
out=$(mktemp)
trap 'rm -f "$out"' EXIT
./target/debug/poe audit "$day" --json >"$out"
python3 .ci/parquet_readers.py "$day" "$out"

# DuckDB over HTTP, in its own virtualenv (DuckDB 1.5.5 with its packaged httpfs).
work=$(mktemp -d)
trap 'rm -f "$out"; kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check 'duckdb==1.5.5' 'duckdb-extension-httpfs==1.5.5'
source .ci/lib.sh
start_serve "$work/serve" --config aggregator/poe.example.toml --data "$work/data" \
  --archive tests/fixtures/bundle_v1 --init
"$work/venv/bin/python" .ci/duckdb_http.py "$addr" "$day"
