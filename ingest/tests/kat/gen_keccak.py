#!/usr/bin/env python3
"""Known-answer vectors for the keccak256 native commitment, from pycryptodome.

Regenerate: pip install pycryptodome==4.4.0 && python3 gen_keccak.py > keccak_vectors.json
(run in ingest/tests/kat/; specs/commitments.md §2 defines the tree).
"""
import json
from Crypto.Hash import keccak

def k256(b: bytes) -> bytes:
    h = keccak.new(digest_bits=256)
    h.update(b)
    return h.digest()

def leaf(op) -> bytes:
    f = [int(x) for x in op["fields"]]
    out = f[0].to_bytes(1, "big")
    for v in f[1:4]:
        out += v.to_bytes(4, "big")
    for v in f[4:]:
        out += v.to_bytes(8, "big")
    tid = op["trade_id"].encode("ascii")
    out += tid + b"\x00" * (32 - len(tid))
    return k256(out)

def root(leaves):
    n = 1
    while n < len(leaves):
        n *= 2
    level = leaves + [b"\x00" * 32] * (n - len(leaves))
    while len(level) > 1:
        level = [k256(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]

data = json.load(open("ops.json"))
print(json.dumps({
    "generator": "pycryptodome 4.4.0 (Crypto.Hash.keccak)",
    "keccak256": ["0x" + root([leaf(op) for op in batch]).hex() for batch in data["batches"]],
}, indent=2))
