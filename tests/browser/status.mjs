// The status page in Debian's Chromium (headless), driven by playwright-core: it shows
// the circuit closed, turns open within 2 s of the upstream breaking (no reload), and
// forces the breaker open and closed again from its buttons with the admin token.
// Run by scripts/browser-test, which starts the server and fake-llm and sets:
// BW_URL, FAKE_URL, API_TOKEN, ADMIN_TOKEN, BREAKER, THRESHOLD, SHOT.
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const [bw, fake, apiToken, adminToken, breaker, shot] =
  ["BW_URL", "FAKE_URL", "API_TOKEN", "ADMIN_TOKEN", "BREAKER", "SHOT"].map(env);
const threshold = Number(env("THRESHOLD"));

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  page.on("pageerror", (err) => { failed = true; console.error("page error:", err.message); });
  const card = page.locator(`[data-breaker="${breaker}"]`);
  const state = card.locator(".state");
  const seeState = async (want, timeout) => {
    await page.waitForFunction(
      ([name, want]) => document.querySelector(`[data-breaker="${name}"] .state`)?.textContent === want,
      [breaker, want], { timeout });
    console.log(`ok: the page shows ${breaker} ${want}`);
  };

  await page.goto(`${bw}/status`);
  // The API token is asked for, and never put in a URL.
  await page.locator("#ask-token").waitFor({ state: "visible", timeout: 5000 });
  await page.fill("#token", apiToken);
  await page.click("#token-form button");
  await seeState("closed", 5000);
  if (page.url().includes(apiToken)) throw new Error("the token ended up in the URL");

  // Break the upstream; the questions that fail open the circuit.
  const put = await fetch(`${fake}/admin/fault`, {
    method: "PUT", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ mode: "error", status: 503 }),
  });
  if (!put.ok) throw new Error(`fake-llm refused the fault: ${put.status}`);
  for (let i = 0; i < threshold; i++) {
    await fetch(`${bw}/api/assistant/query`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${apiToken}` },
      body: JSON.stringify({ query: `when does a breaker open ${i}`, user_id: "alice" }),
    });
  }
  const broke = Date.now();
  await seeState("open", 2000);
  console.log(`ok: open on the page ${Date.now() - broke} ms after the trip, without a reload`);

  // The controls, behind the admin token.
  if (await card.locator("button").count() !== 0) throw new Error("buttons shown without the admin token");
  await page.fill("#admin", adminToken);
  await page.click("#admin-form button");
  await card.locator('button[data-state="forced_open"]').click();
  await seeState("forced open", 3000);
  await card.locator('button[data-state="closed"]').click();
  await seeState("closed", 3000);
  // Healthy again, a few answers for the chart, then the picture.
  await fetch(`${fake}/admin/fault`, {
    method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ mode: "ok" }),
  });
  for (let i = 0; i < 6; i++) {
    await fetch(`${bw}/api/assistant/query`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${apiToken}` },
      body: JSON.stringify({ query: `retries with backoff ${i}`, user_id: "alice" }),
    });
  }
  await page.waitForTimeout(1200);
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`ok: screenshot in ${shot}`);
} finally {
  await browser.close();
}
if (failed) process.exit(1);
