#!/usr/bin/env bash
# The Node.js/TypeScript binding (ingest/node, built by napi-rs): its tests against the engine's
# known answers and a real `poe serve`, then the README's first-batch.ts exactly as written, from
# a fresh project that installs the package by path, against a fresh server.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d)
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
(cd ingest/node && npm ci --no-audit --no-fund --loglevel=error &&
  CARGO_TARGET_DIR=../../target/node npx napi build --platform --release)
cargo test --workspace --locked --no-run
./target/debug/poe sample-batches --dir "$work/sample" --batches 1 >/dev/null
source .ci/lib.sh

start_serve "$work/serve" --config "$work/sample/poe.toml" --data "$work/data" --init \
  --archive "$work/archive" --no-pipeline
(cd ingest/node && POE_URL="http://$addr" POE_REGISTRY="$work/sample/poe.toml" \
  POE_KEY=0x5a4d504c455f4b45 POE_ROLLUP=sample-options npm test)
kill "$pid"

echo "-- ingest/node/README.md's first-batch.ts, from a fresh project"
mkdir "$work/project"
python3 .ci/readme_block.py ingest/node/README.md ts >"$work/project/first-batch.ts"
(cd "$work/project" && npm init -y >/dev/null &&
  npm install --no-audit --no-fund --loglevel=error \
    typescript@5.9.3 @types/node@20.19.43 "$root/ingest/node" &&
  npx tsc --target es2022 --module commonjs --types node first-batch.ts)
start_serve "$work/serve2" --config "$work/sample/poe.toml" --data "$work/data2" --init \
  --archive "$work/archive2" --no-pipeline
out=$(cd "$work/project" && POE_URL="http://$addr" POE_SAMPLE="$work/sample" node first-batch.js)
echo "$out"
grep -q '^dry run: 200 true$' <<<"$out"
grep -q "^202 accepted http://$addr/v1/batches/[0-9a-f]\{64\}$" <<<"$out"
