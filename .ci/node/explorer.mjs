// The explorer in a real browser: every key element is present, filled from the server, and
// visible on the screenshots (written to $SHOTS).
// Usage: node explorer.mjs http://host:port DAY OTHER_DAY
//   DAY: closed by this server (its batches are in its intake, its close was reported);
//   OTHER_DAY: a bundle published without a close report.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";

const [base, day, other] = process.argv.slice(2);
const shots = process.env.SHOTS || ".";
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
page.on("response", (r) => { if (r.status() >= 400) errors.push(`HTTP ${r.status()} ${r.url()}`); });

async function shot(name, locator) {
  const png = await (locator || page).screenshot(locator ? {} : { fullPage: true });
  // A PNG, and more than a blank area's few hundred bytes.
  assert.equal(png.subarray(1, 4).toString(), "PNG");
  assert.ok(png.length > 2000, `${name}: ${png.length} bytes: blank?`);
  writeFileSync(`${shots}/${name}.png`, png);
  console.log(`screenshot ${name}.png (${png.length} bytes)`);
}

// A browser's navigation to `/` gets the explorer.
await page.goto(`${base}/`);
await page.waitForSelector("body[data-ready]");
assert.equal(await page.getAttribute("body", "data-ready"), "true", "the page reported an error");
assert.equal(await page.title(), "poe explorer");

// Days: the closed day, with its figures.
const dayRow = page.locator(`#days tbody tr[data-day="${day}"]`);
await dayRow.waitFor();
const cells = await dayRow.locator("td").allInnerTexts();
assert.equal(cells[0], day);
assert.match(cells[3], /^poe\/day-root\/v\d$/);
assert.match(cells[7], /^\d+\.\d s$/, `close time: ${cells[7]}`);

const otherCells = await page.locator(`#days tbody tr[data-day="${other}"] td`).allInnerTexts();
assert.equal(otherCells[0], other);
assert.equal(otherCells[7], "–", "a day without a close report has no close time");

// The plot: one bar per day, one close-time dot where the close was reported.
assert.equal(await page.locator("#plot svg rect.bar").count(), 2);
assert.equal(await page.locator(`#plot svg circle.dot[data-day="${day}"]`).count(), 1);
assert.equal(await page.locator(`#plot svg circle.dot[data-day="${other}"]`).count(), 0);
const bar = await page.locator(`#plot rect.bar[data-day="${day}"]`).boundingBox();
assert.ok(bar.height > 10, `bar height ${bar.height}`);
await shot("explorer-days");
await shot("explorer-plot", page.locator("#plot svg"));

// A day: its facts and a link to every archive file; each link is served.
await dayRow.click();
await page.waitForSelector("#day-section:not([hidden])");
assert.equal(await page.innerText("#day-title"), `Day ${day}`);
const hrefs = await page.locator("#day-files a").evaluateAll((as) => as.map((a) => a.getAttribute("href")));
for (const name of ["/proof", "/manifest", "statement.json", "statements.parquet", "trades/rollup%3D"]) {
  assert.ok(hrefs.some((h) => h.includes(name)), `no link to ${name} in ${hrefs}`);
}
for (const h of hrefs) {
  const r = await page.request.head(`${base}${h}`).catch(() => null) ;
  const g = r && r.status() === 200 ? r : await page.request.get(`${base}${h}`);
  assert.equal(g.status(), 200, `${h}: HTTP ${g.status()}`);
}
await shot("explorer-day", page.locator("#day-section"));

// A rollup's batches and receipts, then a batch's inclusion path.
const rollupRow = page.locator("#rollups tbody tr").first();
const rollup = await rollupRow.getAttribute("data-rollup");
await rollupRow.click();
await page.waitForSelector("#batches-section:not([hidden])");
const batchRow = page.locator("#batches tbody tr").first();
await batchRow.waitFor();
const b = await batchRow.locator("td").allInnerTexts();
assert.equal(b[0], "1");
assert.equal(b[2], day);
assert.equal(b[4], "included");
await batchRow.click();
await page.waitForSelector("#inclusion-path li");
const facts = await page.locator("#inclusion-facts dd").allInnerTexts();
const batchId = await batchRow.getAttribute("data-batch");
assert.equal(facts[0], batchId);
assert.equal(facts[1], day);
const inc = await (await page.request.get(`${base}/v1/batches/${batchId}/inclusion`)).json();
assert.equal(facts[4], inc.day_root);
assert.equal(await page.locator("#inclusion-path li").count(), inc.siblings.length);
assert.ok(page.url().endsWith(`#rollup=${rollup}&batch=${batchId}`), page.url());
await shot("explorer-batch", page.locator("main"));

// The state is in the address: a reload shows the same inclusion path.
await page.reload();
await page.waitForSelector("#inclusion-path li");
assert.equal(await page.locator("#inclusion-path li").count(), inc.siblings.length);

assert.deepEqual(errors, [], "console errors");
await browser.close();
console.log(`explorer: PASS (${day}, rollup ${rollup}, batch ${batchId.slice(0, 10)}…, ${hrefs.length} files)`);
