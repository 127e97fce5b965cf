"""Schemathesis hooks for poe: every other POST /v1/batches (and /v1/batches/dry-run) carries, in place of the generated
body, the next of a chain of validly signed batches (`poe sample-batches`, path in
$POE_SAMPLE_BATCHES), so that the run reaches acceptance (202), idempotent retries (200) and the
receipt routes, not only the refusals that random bodies get."""

import itertools
import json
import os

import schemathesis

with open(os.environ["POE_SAMPLE_BATCHES"], encoding="utf-8") as f:
    BATCHES = [json.loads(line) for line in f if line.strip()]
CALLS = {"/v1/batches": itertools.count(), "/v1/batches/dry-run": itertools.count()}
SUBMITTED = [0]


@schemathesis.hook
def before_call(context, case, kwargs):
    path = case.operation.path
    if case.operation.method.upper() != "POST" or path not in CALLS:
        return
    if next(CALLS[path]) % 2:
        return
    if path == "/v1/batches":
        # In order: the first pass is accepted batch by batch, later ones are retries. The
        # chain's last batch is never submitted: it is the dry runs'.
        case.body = BATCHES[SUBMITTED[0] % (len(BATCHES) - 1)]
        SUBMITTED[0] += 1
    else:
        # The batch after the head: a dry run answers with its root (200).
        case.body = BATCHES[min(SUBMITTED[0], len(BATCHES) - 1)]
    case.media_type = "application/json"
