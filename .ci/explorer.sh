#!/usr/bin/env bash
# The explorer in a real headless browser: a small demo day is replayed and closed, the golden
# v5 bundle's day is published beside it (a day with no close report), `poe serve` serves both,
# and Playwright drives Debian's Chromium through days, plot, files, batches and an inclusion
# path (.ci/node/explorer.mjs), writing screenshots to $SHOTS (default: a temporary folder).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null; then
  # Debian's Chromium: a test tool's own browser download is not reachable from CI.
  apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null; }
fi
(cd .ci/node && npm ci --no-audit --no-fund --loglevel=error)
cargo test --workspace --locked --no-run
work=$(mktemp -d)
shots=${SHOTS:-$work/shots}
mkdir -p "$shots"
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
./target/debug/poe demo --ops 300 --batch-ops 50 --preset testing --dir "$work/demo" >"$work/demo.out"
day=$(grep -o 'poe audit [^ ]*/days/[0-9-]*' "$work/demo.out" | grep -o '[0-9-]*$')
cp -r tests/fixtures/bundle_v5/days/2026-11-18 "$work/demo/archive/days/"
source .ci/lib.sh
start_serve "$work/serve" --config "$work/demo/poe.toml" --data "$work/demo" \
  --archive "$work/demo/archive" --no-pipeline
SHOTS="$shots" node .ci/node/explorer.mjs "http://$addr" "$day" 2026-11-18
