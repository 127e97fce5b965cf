// Known-answer vectors for the field-based native commitments and Stark ECDSA, from
// circomlibjs (BN254 Poseidon) and starknet.js (felt252 Poseidon, Pedersen, ECDSA).
//
// Regenerate: npm install circomlibjs@0.1.7 starknet@6.24.1 && node gen_fields.mjs > field_vectors.json
// (run in ingest/tests/kat/; specs/commitments.md defines the trees).
import fs from "node:fs";
import { buildPoseidon } from "circomlibjs";
import { ec, hash, num } from "starknet";

const data = JSON.parse(fs.readFileSync("ops.json", "utf8"));
const poseidon = await buildPoseidon();
const F = poseidon.F;

const shortString = (s) => BigInt("0x" + Buffer.from(s, "ascii").toString("hex"));
const fieldsOf = (op) => [...op.fields.map((x) => BigInt(x)), shortString(op.trade_id)];
const hex = (x) => "0x" + BigInt(x).toString(16).padStart(64, "0");

function merkle(leaves, node) {
  let n = 1;
  while (n < leaves.length) n *= 2;
  let level = [...leaves, ...Array(n - leaves.length).fill(0n)];
  while (level.length > 1) {
    const next = [];
    for (let i = 0; i < level.length; i += 2) next.push(node(level[i], level[i + 1]));
    level = next;
  }
  return level[0];
}

const bn254 = (xs) => F.toObject(poseidon(xs));
const out = {
  generator: "circomlibjs 0.1.7, starknet.js 6.24.1",
  "poseidon-bn254": data.batches.map((b) => hex(merkle(b.map((op) => bn254(fieldsOf(op))), (l, r) => bn254([l, r])))),
  "poseidon-felt252": data.batches.map((b) =>
    hex(merkle(b.map((op) => BigInt(ec.starkCurve.poseidonHashMany(fieldsOf(op)))), (l, r) => BigInt(ec.starkCurve.poseidonHash(l, r))))),
  "pedersen-felt252": data.batches.map((b) =>
    hex(merkle(b.map((op) => BigInt(hash.computeHashOnElements(fieldsOf(op).map((x) => num.toHex(x))))), (l, r) => BigInt(ec.starkCurve.pedersen(l, r))))),
};
const { private_key, message_hash } = data.signing;
const sig = ec.starkCurve.sign(message_hash, private_key);
out.signing = {
  public_key: hex(BigInt(ec.starkCurve.getStarkKey(private_key))),
  message_hash: hex(BigInt(message_hash)),
  r: hex(sig.r),
  s: hex(sig.s),
};
console.log(JSON.stringify(out, null, 2));
