"""Schemathesis hooks for poe: every other POST /v1/batches carries, in place of the generated
body, the next of a chain of validly signed batches (`poe sample-batches`, path in
$POE_SAMPLE_BATCHES), so that the run reaches acceptance (202), idempotent retries (200) and the
receipt routes, not only the refusals that random bodies get."""

import itertools
import json
import os

import schemathesis

with open(os.environ["POE_SAMPLE_BATCHES"], encoding="utf-8") as f:
    BATCHES = [json.loads(line) for line in f if line.strip()]
CALLS = itertools.count()


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.operation.method.upper() != "POST" or case.operation.path != "/v1/batches":
        return
    n = next(CALLS)
    if n % 2 == 0:
        # In order: the first pass is accepted batch by batch, later ones are retries.
        case.body = BATCHES[(n // 2) % len(BATCHES)]
        case.media_type = "application/json"
