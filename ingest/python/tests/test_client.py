"""poe_client against the engine's known answers and a running `poe serve`.

usage: python3 tests/test_client.py http://host:port REGISTRY_TOML PRIVATE_KEY ROLLUP
(the server serves REGISTRY_TOML, whose ROLLUP has PRIVATE_KEY: `poe sample-batches` writes one)
"""
import json
import os
import sys
import time
import urllib.request

import poe_client

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(HERE, "..", "..", "..", "specs", "vectors", "state-roots.json")


def known_answers():
    """The state roots of specs/vectors/state-roots.json, computed through the binding."""
    with open(VECTORS, encoding="utf-8") as f:
        v = json.load(f)
    key = "0x1234"
    toml = "[[rollups]]\nid = 1\nname = \"kat\"\npublic_key = \"%s\"\ncommitment = \"keccak256\"\n" % (
        poe_client.public_key(key)
    )
    for i in v["instruments"]:
        toml += (
            "[[rollups.instruments]]\nname = \"%s\"\nunderlying = %d\nexpiry_us = %s\nstrike = %d\n"
            "kind = \"%s\"\ncollateral = %d\n"
            % (i["name"], i["underlying"], i["expiry_us"], i["strike"], i["kind"], i["collateral"])
        )
    r = poe_client.Rollup(toml, "kat", key)
    assert r.state_root == v["empty_state_root"], (r.state_root, v["empty_state_root"])
    for step in v["steps"]:
        body = json.loads(r.batch(json.dumps([step["operation"]])))
        assert body["header"]["pre_state_root"] == step["pre_state_root"], step["what"]
        assert body["header"]["post_state_root"] == step["post_state_root"], step["what"]
        assert r.state_root == step["post_state_root"]
    print("known answers: %d steps equal to specs/vectors/state-roots.json" % len(v["steps"]))


def against(base, toml, key, name):
    r = poe_client.Rollup(toml, name, key)
    instruments = [line.split('"')[1] for line in toml.splitlines() if line.startswith("name = ") and "BTC" in line]
    now = int(time.time() * 1e6)
    ops = [
        {"type": "deposit", "id": "py-D-1", "account": 1, "amount": "1000000", "timestamp_us": str(now)},
        {"type": "deposit", "id": "py-D-2", "account": 2, "amount": "1000000", "timestamp_us": str(now + 1)},
        {"type": "trade", "id": "py-T-1", "buyer": 1, "seller": 2, "instrument": instruments[0],
         "qty": "3", "price": "40", "buyer_fee": "1", "seller_fee": "1", "timestamp_us": str(now + 2)},
    ]
    body = r.batch(json.dumps(ops))
    header = json.loads(body)["header"]
    assert header["seq"] == 1 and r.seq == 1

    status, text = poe_client.dry_run(base, body)
    dry = json.loads(text)
    assert status == 200, (status, text)
    assert dry["would_be_accepted"] is True
    assert dry["post_state_root"] == header["post_state_root"] == r.state_root

    status, text = poe_client.submit(base, body)
    receipt = json.loads(text)
    assert status == 202, (status, text)
    assert receipt["status"] in ("accepted", "proven"), receipt
    status, text = poe_client.submit(base, body)
    assert status == 200 and json.loads(text)["batch_id"] == receipt["batch_id"], "a retry is a 200"
    with urllib.request.urlopen(base + receipt["status_url"]) as resp:
        assert json.loads(resp.read())["seq"] == 1

    # A broken rule is refused here, before anything is sent, and moves nothing.
    overdraw = [{"type": "withdraw", "id": "py-W-1", "account": 3, "amount": "5", "timestamp_us": str(now + 3)}]
    root = r.state_root
    try:
        r.batch(json.dumps(overdraw))
        raise AssertionError("an overdraft was built")
    except ValueError as e:
        assert "operations[0]" in str(e), e
    assert r.state_root == root and r.seq == 1

    # A client restarted mid-chain replays its own batches, then signs the next one right.
    again = poe_client.Rollup(toml, name, key)
    again.replay(json.dumps(ops))
    assert again.state_root == r.state_root and again.seq == 1
    nxt = again.batch(json.dumps([{"type": "withdraw", "id": "py-W-2", "account": 1, "amount": "10", "timestamp_us": str(now + 4)}]))
    status, text = poe_client.submit(base, nxt)
    assert status == 202, (status, text)

    # A strike listed through the API: signed, 202, a retry is a 200, in the server's table
    # from the next UTC day; bad terms are refused here, before anything is sent.
    listing = [{"name": "BTC-PY-130-C", "underlying": 1, "expiry_us": str(now + 30 * 86_400_000_000),
                "strike": "130", "kind": "call", "collateral": "60"}]
    body = again.list_instruments(json.dumps(listing))
    status, text = poe_client.list_instruments(base, name, body)
    assert status == 202, (status, text)
    listed = json.loads(text)
    status, text = poe_client.list_instruments(base, name, body)
    assert status == 200 and json.loads(text) == listed, (status, text)
    with urllib.request.urlopen(base + listed["instruments_url"]) as resp:
        table = json.loads(resp.read())["instruments"]
    assert table[listed["first_index"]]["name"] == "BTC-PY-130-C"
    assert table[listed["first_index"]]["effective_from_us"] == listed["effective_from_us"]
    bad_put = [dict(listing[0], name="BTC-PY-130-P", kind="put")]
    try:
        again.list_instruments(json.dumps(bad_put))
        raise AssertionError("a put with collateral below its strike was listed")
    except ValueError as e:
        assert "instruments[0].collateral" in str(e), e
    # A client started from poe.toml takes the listed instruments from the server's table.
    later = poe_client.Rollup(toml, name, key)
    later.add_instruments(json.dumps([{k: t[k] for k in ("name", "underlying", "expiry_us", "strike", "kind", "collateral")}
                                      for t in table[listed["first_index"]:]]))
    try:
        later.add_instruments(json.dumps(listing))
        raise AssertionError("a name already in the table was added")
    except ValueError as e:
        assert "already in the table" in str(e), e
    print("against %s: dry run, 202, retry 200, receipt, refusal before sending, replay, a listing: all as expected" % base)


if __name__ == "__main__":
    known_answers()
    if len(sys.argv) == 5:
        base, toml_path, key, name = sys.argv[1:]
        with open(toml_path, encoding="utf-8") as f:
            against(base, f.read(), key, name)
