#!/usr/bin/env bash
# Auditors' own tools on poe's Parquet: pyarrow and DuckDB read the golden bundle with the
# documented types, and DuckDB's per-rollup notional equals `poe audit --json`'s.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check 'pyarrow==26.0.1' 'duckdb==2.0.1'
cargo build --locked -p poe-aggregator --bin poe
day=tests/fixtures/bundle_v1/days/2026-11-18
out=$(mktemp)
trap 'rm -f "$out"' EXIT
./target/debug/poe audit "$day" --json >"$out"
python3 .ci/parquet_readers.py "$day" "$out"
