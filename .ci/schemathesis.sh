#!/usr/bin/env bash
# Property-based and stateful check of the running service against specs/api/openapi.yaml:
# every response conforms to the spec (status code, content type, headers, body schema) and
# none is a 5xx. Half of the submissions are validly signed batches of a sample rollup
# (`poe sample-batches`, .ci/schemathesis_hooks.py), so acceptance, retries and receipts are
# exercised too; the run must have had some accepted. The event stream is left out (it never
# ends: its test is api/tests/http.rs and the pipeline test).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check 'schemathesis==4.32.5'
work=$(mktemp -d)
# `cargo test --no-run` builds target/debug/poe with the features the whole workspace's tests
# unify (rand, hyper, parquet differ from a lone `-p poe-aggregator` build), so the README's
# `cargo test` afterwards reuses every artifact instead of compiling stwo and the rest again.
cargo test --workspace --locked --no-run
./target/debug/poe sample-batches --dir "$work/sample" --batches 40
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
source .ci/lib.sh
start_serve "$work/serve" --config "$work/sample/poe.toml" --data "$work/data" \
  --archive tests/fixtures/bundle_v5 --init --no-pipeline
POE_SAMPLE_BATCHES="$work/sample/batches.jsonl" SCHEMATHESIS_HOOKS=schemathesis_hooks \
PYTHONPATH=.ci python3 -m schemathesis.cli run specs/api/openapi.yaml --url "http://$addr" \
  --phases examples,coverage,fuzzing,stateful \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,unsupported_method,allow_header_conformance \
  --exclude-operation-id rollupEvents \
  --max-examples 50 --seed 1 --no-color --workers 1
accepted=$(python3 -c 'import sys, urllib.request
for line in urllib.request.urlopen(sys.argv[1]).read().decode().splitlines():
    if line.startswith("poe_batches_accepted_total{rollup=\"sample-options\"}"):
        print(line.split()[1])' "http://$addr/metrics")
echo "validly signed batches accepted during the run: ${accepted:-0}"
[ "${accepted:-0}" -ge 5 ] || { echo "too few signed batches were accepted"; exit 1; }
dry_ok=$(grep '"target":"poe::dry_run"' "$work/serve.err" | grep -c '"status":200' || true)
echo "dry runs answered with a root during the run: $dry_ok"
[ "$dry_ok" -ge 1 ] || { echo "no dry run of a signed batch was answered"; exit 1; }
