// poe explorer: a page over the service's own JSON routes (specs/api/openapi.yaml). No build
// step and no dependency: what the server serves is what runs.
"use strict";

const $ = (id) => document.getElementById(id);

async function api(path) {
  const resp = await fetch(path, { headers: { accept: "application/json" } });
  const body = await resp.json().catch(() => null);
  if (!resp.ok) {
    const err = new Error(body && body.detail ? `${body.title}: ${body.detail}` : `HTTP ${resp.status}`);
    err.status = resp.status;
    err.problem = body;
    throw err;
  }
  return body;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function link(href, text) {
  return el("a", { href, text });
}

function showError(e) {
  $("error").textContent = String(e.message || e);
  $("error").hidden = false;
}

const fmt = {
  int: (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US")),
  bytes: (n) => (n === null || n === undefined ? "–"
    : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(2)} MB` : `${(n / 1024).toFixed(1)} KB`),
  secs: (s) => (typeof s === "number" ? `${s.toFixed(1)} s` : "–"),
  short: (h) => (h ? `${h.slice(0, 10)}…` : "–"),
  time: (us) => new Date(Number(us) / 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, ""),
};

// A file of a day's bundle, each path component percent-encoded (`rollup=name` directories).
function fileUrl(day, path) {
  return `/v1/days/${day}/files/${path.split("/").map(encodeURIComponent).join("/")}`;
}

function route() {
  return new URLSearchParams(location.hash.slice(1));
}

function go(params) {
  location.hash = new URLSearchParams(params).toString();
}

let days = [];

async function loadDays() {
  days = (await api("/v1/days")).days;
  const body = $("days").tBodies[0];
  body.replaceChildren();
  $("no-days").hidden = days.length > 0;
  for (const d of days) {
    const tree = d.tree || {};
    const row = el("tr", { class: "link", "data-day": d.day },
      el("td", { text: d.day }),
      el("td", { class: "num", text: fmt.int(d.n_batches) }),
      el("td", { class: "num", text: fmt.int(d.n_ops) }),
      el("td", { text: d.root_air }),
      el("td", { class: "num", text: fmt.bytes(d.root_proof_bytes) }),
      el("td", { class: "num", text: fmt.int(d.segments) }),
      el("td", { class: "num", text: tree.security_bits ? `${tree.security_bits} bits` : "–" }),
      el("td", { class: "num", text: fmt.secs(d.close && d.close.total_s) }),
      el("td", {}, link(`/v1/days/${d.day}/proof`, "proof"), " ",
        link(`/v1/days/${d.day}/manifest`, "manifest")));
    row.addEventListener("click", (ev) => {
      if (ev.target.tagName !== "A") go({ day: d.day });
    });
    body.append(row);
  }
  plot(days);
}

// Bars: operations per day (left axis); line: seconds the day's close took (right axis).
function plot(days) {
  const NS = "http://www.w3.org/2000/svg";
  const svgEl = (tag, attrs, text) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const sorted = [...days].sort((a, b) => (a.day < b.day ? -1 : 1));
  const W = 760, H = 260, L = 70, R = 60, T = 20, B = 40;
  const svg = svgEl("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": "operations and close time per day" });
  const maxOps = Math.max(1, ...sorted.map((d) => d.n_ops || 0));
  const times = sorted.map((d) => (d.close ? d.close.total_s : null));
  const maxT = Math.max(1, ...times.filter((t) => t !== null));
  const n = Math.max(1, sorted.length);
  const slot = (W - L - R) / n;
  const y = (v, max) => T + (H - T - B) * (1 - v / max);
  svg.append(svgEl("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#8c959f" }));
  svg.append(svgEl("text", { class: "axis", x: 4, y: T + 4 }, fmt.int(maxOps)));
  svg.append(svgEl("text", { class: "axis", x: 4, y: H - B }, "0 ops"));
  svg.append(svgEl("text", { class: "axis", x: W - R + 6, y: T + 4 }, fmt.secs(maxT)));
  svg.append(svgEl("text", { class: "axis", x: W - R + 6, y: H - B }, "0 s"));
  const points = [];
  sorted.forEach((d, i) => {
    const x = L + i * slot;
    const top = y(d.n_ops || 0, maxOps);
    const width = Math.min(slot * 0.7, 48);
    const bar = svgEl("rect", { class: "bar", "data-day": d.day, x: x + (slot - width) / 2, y: top,
      width, height: H - B - top });
    bar.append(svgEl("title", {}, `${d.day}: ${fmt.int(d.n_ops)} operations`));
    svg.append(bar);
    svg.append(svgEl("text", { class: "axis", x: x + slot / 2, y: H - B + 16,
      "text-anchor": "middle" }, d.day));
    if (times[i] !== null) {
      const p = [x + slot / 2, y(times[i], maxT)];
      points.push(p);
      const dot = svgEl("circle", { class: "dot", "data-day": d.day, cx: p[0], cy: p[1], r: 4 });
      dot.append(svgEl("title", {}, `${d.day}: closed in ${fmt.secs(times[i])}`));
      svg.append(dot);
    }
  });
  if (points.length > 1) {
    svg.append(svgEl("polyline", { class: "line", points: points.map((p) => p.join(",")).join(" ") }));
  }
  svg.append(svgEl("text", { class: "axis", x: L, y: H - 6 },
    "bars: operations · dots: close time (proof and bundle), as measured by this server"));
  $("plot").replaceChildren(svg);
}

async function showDay(day) {
  for (const r of $("days").tBodies[0].rows) r.classList.toggle("selected", r.dataset.day === day);
  const [st, manifest] = await Promise.all([api(`/v1/days/${day}`), api(`/v1/days/${day}/manifest`)]);
  const s = st.statement;
  const v = manifest.verifier || {};
  $("day-title").textContent = `Day ${day}`;
  const facts = [
    ["day root", el("span", { class: "hash", text: s.day_root })],
    ["root proof", `${s.air}, ${fmt.bytes(s.root_proof_bytes)}`],
    ["security", v.security_bits ? `${v.security_bits} bits (log blowup ${v.log_blowup}, ${v.n_queries} queries, ${v.pow_bits} PoW bits)` : "–"],
    ["batches", fmt.int(s.n_batches)],
    ["operations", fmt.int(s.n_ops)],
    ["rollups", s.rollups.map((r) => `#${r.rollup_id} seq ${r.first_seq}–${r.last_seq}`).join(", ")],
    ["audit", el("code", { text: `poe audit --from ${location.origin} ${day}` })],
  ];
  $("day-facts").replaceChildren(...facts.flatMap(([k, val]) => [el("dt", { text: k }), el("dd", {}, val)]));
  const files = [
    link(`/v1/days/${day}/proof`, "root.proof"),
    link(`/v1/days/${day}/manifest`, "manifest.json"),
    link(fileUrl(day, "statement.json"), "statement.json"),
  ];
  if (s.root_samples_bytes) files.push(link(fileUrl(day, "root.samples"), "root.samples"));
  for (const f of manifest.files) files.push(link(fileUrl(day, f.path), f.path));
  $("day-files").replaceChildren(...files.map((a) => el("li", {}, a)));
  $("day-section").hidden = false;
}

async function loadRollups() {
  const { rollups } = await api("/v1/rollups");
  const body = $("rollups").tBodies[0];
  body.replaceChildren();
  for (const r of rollups) {
    const row = el("tr", { class: "link", "data-rollup": r.name },
      el("td", { class: "num", text: r.id }),
      el("td", { text: r.name }),
      el("td", { text: r.native_scheme }),
      el("td", { class: "num", text: r.instruments }),
      el("td", { class: "num", text: fmt.int(r.head_seq) }),
      el("td", { class: "hash", text: fmt.short(r.post_state_root) }));
    row.addEventListener("click", () => go({ rollup: r.name }));
    body.append(row);
  }
}

async function showBatches(rollup, fromSeq, append) {
  for (const r of $("rollups").tBodies[0].rows) r.classList.toggle("selected", r.dataset.rollup === rollup);
  const page = await api(`/v1/rollups/${encodeURIComponent(rollup)}/batches?from_seq=${fromSeq}&limit=100`);
  $("batches-title").textContent = `Batches of ${rollup}`;
  const body = $("batches").tBodies[0];
  if (!append) body.replaceChildren();
  for (const b of page.batches) {
    const row = el("tr", { class: "link", "data-batch": b.batch_id },
      el("td", { class: "num", text: b.seq }),
      el("td", { class: "hash", text: fmt.short(b.batch_id) }),
      el("td", { text: b.day }),
      el("td", { class: "num", text: fmt.int(b.n_ops) }),
      el("td", { class: `status-${b.status}`, text: b.status }),
      el("td", { text: fmt.time(b.accepted_us) }),
      el("td", { text: `${b.rollup_proof.system}${b.rollup_proof.verified ? " (verified)" : ""}` }));
    row.addEventListener("click", () => go({ rollup, batch: b.batch_id }));
    body.append(row);
  }
  const more = $("more-batches");
  more.hidden = page.batches.length < 100;
  more.onclick = () => showBatches(rollup, page.next_from_seq, true).catch(showError);
  $("batches-section").hidden = false;
}

async function showInclusion(id) {
  for (const r of $("batches").tBodies[0].rows) r.classList.toggle("selected", r.dataset.batch === id);
  $("inclusion-section").hidden = false;
  let inc;
  try {
    inc = await api(`/v1/batches/${id}/inclusion`);
  } catch (e) {
    if (e.status !== 404 || !e.problem) throw e;
    $("inclusion-facts").replaceChildren(el("dt", { text: "batch" }), el("dd", { class: "hash", text: id }),
      el("dt", { text: "status" }), el("dd", { text: e.problem.detail }));
    $("inclusion-path").replaceChildren();
    return;
  }
  const facts = [
    ["batch", inc.batch_id],
    ["day", inc.day],
    ["leaf", inc.leaf],
    ["leaf index", String(inc.leaf_index)],
    ["day root", inc.day_root],
    ["pre-state root", inc.statement.pre_state_root],
    ["post-state root", inc.statement.post_state_root],
  ];
  $("inclusion-facts").replaceChildren(...facts.flatMap(([k, v]) =>
    [el("dt", { text: k }), el("dd", { class: "hash", text: v })]));
  $("inclusion-path").replaceChildren(...inc.siblings.map((s, level) =>
    el("li", { class: "hash", text: `${(inc.leaf_index >> level) & 1 ? "left" : "right"} sibling ${s}` })));
}

async function render() {
  const r = route();
  if (r.get("day")) await showDay(r.get("day"));
  if (r.get("rollup")) await showBatches(r.get("rollup"), 1, false);
  if (r.get("batch")) await showInclusion(r.get("batch"));
}

async function main() {
  await Promise.all([loadDays(), loadRollups()]);
  await render();
  document.body.dataset.ready = "true";
}

window.addEventListener("hashchange", () => render().catch(showError));
main().catch((e) => {
  showError(e);
  document.body.dataset.ready = "error";
});
