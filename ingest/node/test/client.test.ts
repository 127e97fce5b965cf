// poe-client against the engine's known answers and, where POE_URL names one, a running
// `poe serve` whose registry (POE_REGISTRY) holds rollup POE_ROLLUP with key POE_KEY
// (`poe sample-batches` writes one). Run by `npm test` and in CI (`.ci/node_client.sh`).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Rollup, dryRun, listInstruments, publicKey, submit } from "../index";

const VECTORS = join(__dirname, "..", "..", "..", "specs", "vectors", "state-roots.json");

interface Instrument {
  name: string;
  underlying: number;
  expiry_us: string;
  strike: number;
  kind: string;
  collateral: number;
}
interface Step {
  what: string;
  operation: unknown;
  pre_state_root: string;
  post_state_root: string;
}

test("state roots equal specs/vectors/state-roots.json", () => {
  const v = JSON.parse(readFileSync(VECTORS, "utf8")) as {
    instruments: Instrument[];
    empty_state_root: string;
    steps: Step[];
  };
  const key = "0x1234";
  let toml = `[[rollups]]\nid = 1\nname = "kat"\npublic_key = "${publicKey(key)}"\ncommitment = "keccak256"\n`;
  for (const i of v.instruments) {
    toml +=
      `[[rollups.instruments]]\nname = "${i.name}"\nunderlying = ${i.underlying}\nexpiry_us = ${i.expiry_us}\n` +
      `strike = ${i.strike}\nkind = "${i.kind}"\ncollateral = ${i.collateral}\n`;
  }
  const r = new Rollup(toml, "kat", key);
  assert.equal(r.stateRoot, v.empty_state_root);
  for (const step of v.steps) {
    const header = JSON.parse(r.batch(JSON.stringify([step.operation])).toString()).header;
    assert.equal(header.pre_state_root, step.pre_state_root, step.what);
    assert.equal(header.post_state_root, step.post_state_root, step.what);
    assert.equal(r.stateRoot, step.post_state_root, step.what);
  }
  assert.equal(r.seq, v.steps.length);
});

test("a key that is not the registry's is refused", () => {
  const toml = `[[rollups]]\nid = 1\nname = "kat"\npublic_key = "${publicKey("0x1234")}"\ncommitment = "keccak256"\n`;
  assert.throws(() => new Rollup(toml, "kat", "0x1235"), /key/);
  assert.throws(() => new Rollup(toml, "other", "0x1234"), /not in the registry/);
});

const base = process.env.POE_URL;
test("against a running poe serve", { skip: base ? false : "POE_URL is not set" }, async () => {
  const toml = readFileSync(process.env.POE_REGISTRY!, "utf8");
  const key = process.env.POE_KEY!;
  const name = process.env.POE_ROLLUP!;
  const instrument = /name = "(BTC[^"]*)"/.exec(toml)![1];
  const r = new Rollup(toml, name, key);
  const now = BigInt(Date.now()) * 1000n;
  const at = (k: number) => String(now + BigInt(k));
  const ops = [
    { type: "deposit", id: "ts-D-1", account: 1, amount: "1000000", timestamp_us: at(0) },
    { type: "deposit", id: "ts-D-2", account: 2, amount: "1000000", timestamp_us: at(1) },
    {
      type: "trade", id: "ts-T-1", buyer: 1, seller: 2, instrument,
      qty: "3", price: "40", buyer_fee: "1", seller_fee: "1", timestamp_us: at(2),
    },
  ];
  const body = r.batch(JSON.stringify(ops));
  const header = JSON.parse(body.toString()).header;
  assert.equal(header.seq, 1);
  assert.equal(r.seq, 1);

  const dry = await dryRun(base!, body);
  assert.equal(dry.status, 200, dry.body);
  const facts = JSON.parse(dry.body);
  assert.equal(facts.would_be_accepted, true);
  assert.equal(facts.post_state_root, header.post_state_root);
  assert.equal(facts.post_state_root, r.stateRoot);

  const first = await submit(base!, body);
  assert.equal(first.status, 202, first.body);
  const receipt = JSON.parse(first.body);
  assert.ok(["accepted", "proven"].includes(receipt.status), first.body);
  const again = await submit(base!, body);
  assert.equal(again.status, 200, "a retry is a 200");
  assert.equal(JSON.parse(again.body).batch_id, receipt.batch_id);
  const status = await fetch(base + receipt.status_url);
  assert.equal(((await status.json()) as { seq: number }).seq, 1);

  // A broken rule is refused here, before anything is sent, and moves nothing.
  const root = r.stateRoot;
  const overdraw = [{ type: "withdraw", id: "ts-W-1", account: 3, amount: "5", timestamp_us: at(3) }];
  assert.throws(() => r.batch(JSON.stringify(overdraw)), /operations\[0\]/);
  assert.equal(r.stateRoot, root);
  assert.equal(r.seq, 1);

  // A client restarted mid-chain replays its own batches, then signs the next one right.
  const restarted = new Rollup(toml, name, key);
  restarted.replay(JSON.stringify(ops));
  assert.equal(restarted.stateRoot, r.stateRoot);
  assert.equal(restarted.seq, 1);
  const withdraw = [{ type: "withdraw", id: "ts-W-2", account: 1, amount: "10", timestamp_us: at(4) }];
  const next = await submit(base!, restarted.batch(JSON.stringify(withdraw)));
  assert.equal(next.status, 202, next.body);

  // A strike listed through the API: signed, 202, a retry is a 200, in the server's table
  // from the next UTC day; bad terms throw here, before anything is sent.
  const listing = [{
    name: "BTC-TS-130-C", underlying: 1, expiry_us: String(now + 30n * 86_400_000_000n),
    strike: "130", kind: "call", collateral: "60",
  }];
  const listingBody = restarted.listInstruments(JSON.stringify(listing));
  const listed = await listInstruments(base!, name, listingBody);
  assert.equal(listed.status, 202, listed.body);
  const answer = JSON.parse(listed.body);
  const retry = await listInstruments(base!, name, listingBody);
  assert.equal(retry.status, 200, retry.body);
  assert.deepEqual(JSON.parse(retry.body), answer);
  const table = (await (await fetch(base + answer.instruments_url)).json()) as {
    instruments: { name: string; effective_from_us: string }[];
  };
  assert.equal(table.instruments[answer.first_index].name, "BTC-TS-130-C");
  assert.equal(table.instruments[answer.first_index].effective_from_us, answer.effective_from_us);
  const badPut = [{ ...listing[0], name: "BTC-TS-130-P", kind: "put" }];
  assert.throws(() => restarted.listInstruments(JSON.stringify(badPut)), /instruments\[0\]\.collateral/);

  // A server that is not there rejects the promise; it does not hang or resolve.
  await assert.rejects(submit("http://127.0.0.1:9", body), /POST http:\/\/127\.0\.0\.1:9\/v1\/batches/);
});
