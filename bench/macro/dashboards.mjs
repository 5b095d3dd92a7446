// N headless dashboards on the gateway's admin listener, for bench/run --dashboards N:
// one chromium (Debian's, through tests/e2e's puppeteer-core; never downloaded), N tabs signed
// in with the admin token, each doing exactly what an operator's open dashboard does.
//   node bench/macro/dashboards.mjs ADMIN_URL TOKEN N
// Prints READY once every tab shows data; on SIGTERM prints what the tabs fetched and exits.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const [adminUrl, token, nText] = process.argv.slice(2);
const n = Number(nText);
// BENCH_DASHBOARDS=emulate: no browser, the same requests from plain fetch() loops (what the
// gateway serves to N dashboards, without N renderers competing for the machine's CPU).
if (process.env.BENCH_DASHBOARDS === 'emulate') await emulate();
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(path.join(root, 'tests/e2e/package.json'));
const puppeteer = require('puppeteer-core');
const chromium = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
if (!fs.existsSync(chromium)) {
  console.log(`FAILED no chromium at ${chromium}`);
  process.exit(1);
}
const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ob-bench-dash-'));
const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-renderer-backgrounding', '--disable-background-timer-throttling',
    `--user-data-dir=${userDir}`],
});
const stats = [];
let errors = 0;
for (let i = 0; i < n; i++) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 800 });
  const s = { timeseries: 0, targets: 0, events: 0 };
  stats.push(s);
  page.on('response', (r) => {
    const u = r.url();
    if (u.includes('/admin/v1/timeseries')) s.timeseries++;
    else if (u.includes('/admin/v1/targets')) s.targets++;
    else if (u.includes('/admin/v1/events')) s.events++;
  });
  page.on('pageerror', () => errors++);
  // Headless tabs behind the first are "hidden", and a hidden dashboard stops polling (as it
  // should): each tab here stands for an operator looking at their own window.
  await page.evaluateOnNewDocument(() => {
    Object.defineProperty(document, 'hidden', { get: () => false });
    Object.defineProperty(document, 'visibilityState', { get: () => 'visible' });
  });
  await page.goto(`${adminUrl}/`, { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('#login:not([hidden]), #app:not([hidden])', { timeout: 10000 });
  if (await page.$('#login:not([hidden])')) {
    await page.type('#token', token);
    await page.click('#login-form button[type=submit]');
  }
  await page.waitForSelector('#app:not([hidden])', { timeout: 10000 });
}
console.log(`READY ${n}`);
const t0 = Date.now();
let ending = false;
async function end() {
  if (ending) return;
  ending = true;
  const secs = (Date.now() - t0) / 1000;
  const polls = stats.map((s) => (s.timeseries / secs).toFixed(2)).join(',');
  console.log(`DONE dashboards=${n} seconds=${secs.toFixed(1)} timeseries_per_s_each=${polls} event_streams=${stats.map((s) => s.events).join(',')} page_errors=${errors}`);
  await browser.close().catch(() => {});
  fs.rmSync(userDir, { recursive: true, force: true });
  process.exit(0);
}
process.on('SIGTERM', end);
process.on('SIGINT', end);
setTimeout(end, 600000); // never outlives a bench run

async function emulate() {
  const auth = { Authorization: `Bearer ${token}` };
  const counts = Array.from({ length: n }, () => ({ timeseries: 0, bytes: 0 }));
  let stop = false;
  const loops = counts.map(async (c) => {
    const ac = new AbortController();
    (async () => {
      try {
        const r = await fetch(`${adminUrl}/admin/v1/events?tail=20`, { headers: auth, signal: ac.signal });
        for await (const chunk of r.body) c.bytes += chunk.length;
      } catch {}
    })();
    let last = 0;
    while (!stop) {
      const [ts] = await Promise.all([
        fetch(`${adminUrl}/admin/v1/timeseries?after=${last}`, { headers: auth }).then((r) => r.json()),
        fetch(`${adminUrl}/admin/v1/targets`, { headers: auth }).then((r) => r.text()),
      ]);
      const t = ts.points?.t || [];
      if (t.length) last = t[t.length - 1];
      c.timeseries++;
      await new Promise((r) => setTimeout(r, 1000));
    }
    ac.abort();
  });
  console.log(`READY ${n} (emulated)`);
  const t0 = Date.now();
  const end = () => {
    stop = true;
    const secs = (Date.now() - t0) / 1000;
    console.log(`DONE dashboards=${n} emulated seconds=${secs.toFixed(1)} timeseries_per_s_each=${counts.map((c) => (c.timeseries / secs).toFixed(2)).join(',')} event_bytes_per_s_each=${counts.map((c) => Math.round(c.bytes / secs)).join(',')}`);
    process.exit(0);
  };
  process.on('SIGTERM', end);
  process.on('SIGINT', end);
  setTimeout(end, 600000);
  await Promise.all(loops);
}
