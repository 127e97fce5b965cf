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
source .ci/lib.sh
start_serve "$work/serve" --config "$work/sample/poe.toml" --data "$work/data" --init \
  --archive "$work/archive" --no-pipeline
"$work/venv/bin/python" ingest/python/tests/test_client.py "http://$addr" \
  "$work/sample/poe.toml" 0x5a4d504c455f4b45 sample-options
kill "$pid"

echo "-- ingest/python/README.md's first-batch.py, against a fresh server"
python3 .ci/readme_block.py ingest/python/README.md python >"$work/first-batch.py"
start_serve "$work/serve2" --config "$work/sample/poe.toml" --data "$work/data2" --init \
  --archive "$work/archive2" --no-pipeline
out=$(POE_URL="http://$addr" POE_SAMPLE="$work/sample" "$work/venv/bin/python" "$work/first-batch.py")
echo "$out"
grep -q '^dry run: 200 True$' <<<"$out"
grep -q "^202 accepted http://$addr/v1/batches/[0-9a-f]\{64\}$" <<<"$out"
