// End-to-end: the built-in dashboard in a real browser (Debian's chromium driven by
// puppeteer-core) against the real binary, the mock provider and a provider the test can make
// fail. Login with the admin token, charts that move under traffic, a target ejected and
// recovered, the request tail and its filters, a hostile group name that stays text, the CSP.
// DASHBOARD_SCREENSHOTS=<dir> also saves desktop and phone screenshots, light and dark.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startMock } from '../../tools/mock-provider/server.js';
import { startGateway, freePort } from './lib/gateway.mjs';
import { request } from './lib/http.mjs';
import { chatBody, gwPost, sleep } from './lib/common.mjs';

// Clicks the first element matching `sel` inside the page in one step: the live tail re-renders
// its rows under traffic, so a node found by one protocol call may be gone by the next (page.click
// then fails with "Node is detached from document").
const clickNow = (page, sel) => page.$eval(sel, (e) => e.click());

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const haveChromium = fs.existsSync(CHROMIUM);
const ADMIN_TOKEN = 'adm-dash-7f3e';
const CLIENT = 'sk-client';
const XSS = '<img src=x onerror=alert(1)>';
const SHOTS = process.env.DASHBOARD_SCREENSHOTS;
// Sanitizer builds (scripts/test) run slower: their waits are stretched by E2E_SLOW.
const SLOW = Number(process.env.E2E_SLOW || 1);

// A provider the test switches between answering and failing with 500 (the mock's fault modes
// are fixed by the provider's base path; this one fails and recovers under the same target).
function startSwitchable() {
  const s = { failing: false, served: 0 };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      s.served++;
      if (s.failing) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'switched off', type: 'server_error', param: null, code: null } }));
        return;
      }
      let model = 'x';
      try {
        model = JSON.parse(body).model;
      } catch {}
      res.writeHead(200, { 'content-type': 'application/json', 'x-ratelimit-remaining-requests': '4321' });
      res.end(
        JSON.stringify({
          id: 'chatcmpl-1',
          object: 'chat.completion',
          created: 1,
          model,
          choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 },
        }),
      );
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      s.url = `http://127.0.0.1:${server.address().port}`;
      s.close = () => new Promise((r) => server.close(r));
      server.keepAliveTimeout = 1000;
      resolve(s);
    }),
  );
}

describe('dashboard', { timeout: 120000 * SLOW, skip: haveChromium ? false : `chromium not found at ${CHROMIUM} (apt-get install chromium; scripts/setup --test does)` }, () => {
  let A, S, gw, browser, puppeteer, userDir, adminUrl, config;
  let traffic = null;

  before(async () => {
    puppeteer = (await import('puppeteer-core')).default;
    A = await startMock();
    S = await startSwitchable();
    const adminPort = await freePort();
    adminUrl = `http://127.0.0.1:${adminPort}`;
    config = {
      providers: [
        { group: 'chat', name: 'steady', base: A.url, key: 'sk-up' },
        { group: 'chat', name: 'switchable', base: S.url, key: 'sk-up' },
        { group: XSS, name: XSS, base: A.url, key: 'sk-up' },
      ],
      security: [CLIENT],
      groups: { chat: { policy: 'round_robin' } },
      health: { consecutive_failures: 2, base_ejection: 1, max_ejection: 2 },
      retry: { budget_ratio: 1, budget_min_per_second: 1000 },
      admin: { listen: `127.0.0.1:${adminPort}`, token: ADMIN_TOKEN },
    };
    gw = await startGateway({ config });
    userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ob-chromium-'));
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--user-data-dir=${userDir}`,
      ],
    });
  });

  after(async () => {
    traffic?.stop();
    await browser?.close();
    await gw?.stop();
    gw?.cleanup();
    await A?.close();
    await S?.close();
    if (userDir) fs.rmSync(userDir, { recursive: true, force: true });
  });

  // A page with every console error, page error, failed request, answer >= 400, CSP violation
  // and dialog recorded.
  async function openPage({ width = 1280, height = 800 } = {}) {
    const page = await browser.newPage();
    await page.setViewport({ width, height });
    const seen = { console: [], errors: [], failed: [], bad: [], dialogs: [], violations: [], requests: [] };
    page.on('console', (m) => {
      if (m.type() === 'error') seen.console.push({ text: m.text(), url: m.location()?.url || '' });
    });
    page.on('pageerror', (e) => seen.errors.push(String(e)));
    page.on('requestfailed', (r) => {
      // The event stream is aborted on purpose when the page closes or signs out.
      if (!r.url().includes('/admin/v1/events')) seen.failed.push(`${r.url()} ${r.failure()?.errorText}`);
    });
    page.on('request', (r) => seen.requests.push({ url: r.url(), auth: r.headers().authorization || '' }));
    page.on('response', (r) => {
      if (r.status() >= 400) seen.bad.push(`${r.status()} ${r.url()}`);
    });
    page.on('dialog', async (d) => {
      seen.dialogs.push(d.message());
      await d.dismiss();
    });
    await page.exposeFunction('__cspViolation', (v) => seen.violations.push(v));
    await page.evaluateOnNewDocument(() => {
      document.addEventListener('securitypolicyviolation', (e) => window.__cspViolation(`${e.violatedDirective} ${e.blockedURI}`));
    });
    return { page, seen };
  }

  // Before the keys engineer's /admin/v1/keys exists, the page's probe of it answers 404 (the
  // panel stays hidden): that one answer, and the browser's line about it, are expected.
  const expectedBad = (s) => /\/admin\/v1\/keys$/.test(s);
  function assertClean(seen, what) {
    assert.deepEqual(seen.errors, [], `${what}: page errors`);
    assert.deepEqual(seen.dialogs, [], `${what}: dialogs`);
    assert.deepEqual(seen.violations, [], `${what}: CSP violations`);
    assert.deepEqual(seen.failed, [], `${what}: failed requests`);
    assert.deepEqual(seen.bad.filter((b) => !expectedBad(b)), [], `${what}: answers >= 400`);
    const consoleErrors = seen.console.filter((c) => !(expectedBad(c.url) && /404/.test(c.text)));
    assert.deepEqual(consoleErrors, [], `${what}: console errors`);
  }

  async function signIn(page, token = ADMIN_TOKEN) {
    await page.goto(`${adminUrl}/`, { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('#login:not([hidden])', { timeout: 5000 * SLOW });
    await page.type('#token', token);
    await page.click('#login-form button[type=submit]');
  }

  // Steady traffic through the gateway: `rate` requests every 100 ms, bounded in time.
  function startTraffic(group = 'chat', rate = 3) {
    let stopped = false;
    const until = Date.now() + 60000;
    const run = (async () => {
      while (!stopped && Date.now() < until) {
        await Promise.all(Array.from({ length: rate }, () => gwPost(gw, '/v1/chat/completions', chatBody(group), { token: CLIENT }).catch(() => null)));
        await sleep(100);
      }
    })();
    return {
      stop() {
        stopped = true;
        return run;
      },
    };
  }

  test('the page and its files carry a strict CSP and need no token; the data routes do', async () => {
    const r = await request({ url: `${adminUrl}/` });
    assert.equal(r.status, 200);
    const csp = r.headers['content-security-policy'] || '';
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.doesNotMatch(r.text, /<script>|\sstyle=|\son\w+=/i, 'no inline script, style or handler in the page');
    assert.doesNotMatch(r.text, /https?:\/\//, 'nothing from another origin');
    for (const p of ['/admin/v1/timeseries', '/admin/v1/reloads', '/admin/v1/targets']) assert.equal((await request({ url: adminUrl + p })).status, 401, p);
    const s = await request({ url: `${adminUrl}/admin/v1/session` });
    assert.deepEqual(s.json(), { token_required: true, authorized: false });
  });

  test('a wrong token gets the login form and no data; before login the page calls nothing that fails', async () => {
    const { page, seen } = await openPage();
    try {
      await page.goto(`${adminUrl}/`, { waitUntil: 'networkidle0' });
      assert.equal(await page.$eval('#login', (e) => e.hidden), false);
      assert.equal(await page.$eval('#app', (e) => e.hidden), true);
      assert.equal(await page.$eval('#token', (e) => e.type), 'password');
      assertClean(seen, 'before login');
      assert.deepEqual(
        seen.requests.map((r) => new URL(r.url).pathname).filter((p) => p.startsWith('/admin/')),
        ['/admin/v1/session'],
      );
      await page.type('#token', 'not-the-token');
      await page.click('#login-form button[type=submit]');
      await page.waitForFunction(() => document.getElementById('login-error').textContent.length > 0, { timeout: 5000 * SLOW });
      assert.match(await page.$eval('#login-error', (e) => e.textContent), /Wrong token/);
      assert.equal(await page.$eval('#app', (e) => e.hidden), true);
      const dataCalls = seen.requests.filter((r) => /\/admin\/v1\/(targets|timeseries|events|config|reloads|keys)/.test(r.url));
      assert.deepEqual(dataCalls, [], 'no data route was called with a wrong token');
      assert.equal(await page.evaluate(() => sessionStorage.length), 0);
      for (const r of seen.requests) assert.ok(!r.url.includes('not-the-token') && !r.url.includes(ADMIN_TOKEN), `token in a URL: ${r.url}`);
      assertClean(seen, 'wrong token');
    } finally {
      await page.close();
    }
  });

  test('signed in: charts, targets and the tail move under traffic; no console error, failed request or CSP violation', async () => {
    const { page, seen } = await openPage();
    traffic = startTraffic();
    try {
      await signIn(page);
      await page.waitForSelector('#app:not([hidden])', { timeout: 5000 * SLOW });
      // Tokens are sent in the Authorization header, never in a URL.
      const dataCalls = seen.requests.filter((r) => r.url.includes('/admin/v1/targets'));
      assert.ok(dataCalls.length > 0);
      for (const r of dataCalls) assert.equal(r.auth, `Bearer ${ADMIN_TOKEN}`);
      for (const r of seen.requests) assert.ok(!r.url.includes(ADMIN_TOKEN), `token in a URL: ${r.url}`);
      // Requests/s above zero, and the chart redrawn with new points within 2 s.
      await page.waitForFunction(() => parseFloat(document.querySelector('#chart-rps .chart-value').textContent) > 0, { timeout: 5000 * SLOW });
      const pathNow = () => page.$eval('#chart-rps path.s1', (p) => p.getAttribute('d'));
      const d1 = await pathNow();
      await page.waitForFunction((d) => document.querySelector('#chart-rps path.s1').getAttribute('d') !== d, { timeout: 2500 * SLOW }, d1);
      await page.waitForFunction(() => /ms/.test(document.querySelector('#chart-lat .chart-value').textContent), { timeout: 5000 * SLOW });
      await page.waitForFunction(() => parseFloat(document.querySelector('#chart-tok .chart-value').textContent) > 0, { timeout: 5000 * SLOW });
      // Every target listed with its state in words, a sparkline that has a line.
      const rows = await page.$$eval('#targets tbody tr', (trs) => trs.map((tr) => ({ group: tr.dataset.group, target: tr.dataset.model, state: tr.querySelector('.state')?.textContent })));
      assert.deepEqual(rows.map((r) => r.target).sort(), ['steady', 'switchable', XSS].sort());
      for (const r of rows) assert.equal(r.state, 'healthy');
      await page.waitForFunction(() => document.querySelector('#targets tr[data-model="steady"] svg.spark path') !== null, { timeout: 5000 * SLOW });
      await page.waitForFunction(() => /4321/.test(document.querySelector('#targets tr[data-model="switchable"]').textContent), { timeout: 5000 * SLOW });
      // The tail fills.
      await page.waitForFunction(() => document.querySelectorAll('#tail tbody tr[data-status]').length >= 5, { timeout: 5000 * SLOW });
      // The reloads panel shows the start, the config is redacted.
      await page.waitForFunction(() => /start/.test(document.getElementById('reloads').textContent), { timeout: 5000 * SLOW });
      const cfg = await page.$eval('#config', (e) => e.textContent);
      assert.ok(cfg.includes('[redacted]') && !cfg.includes(ADMIN_TOKEN) && !cfg.includes('sk-up'));
      // The gateway has /admin/v1/keys (its `security` tokens are keys too): the panel shows
      // them, with no usage or 429 misread from the windows' remainders.
      await page.waitForSelector('#keys-panel:not([hidden])', { timeout: 5000 * SLOW });
      const keyCells = await page.$$eval('#keys tbody tr:first-child td', (tds) => tds.map((t) => t.textContent));
      assert.equal(keyCells[1], '–', 'no ledger: no usage today');
      assert.equal(keyCells[4], '0', 'no 429 yet');
      assert.equal(await page.$eval('#keys-source', (e) => e.hidden), true, 'in memory: no Redis note');
      assertClean(seen, 'signed in');
    } finally {
      await traffic.stop();
      traffic = null;
      await page.close();
    }
  });

  test('a failing target shows as ejected within 2 s, with why, then recovers; the tail filters and shows the attempts', async () => {
    const { page, seen } = await openPage();
    traffic = startTraffic();
    try {
      await signIn(page);
      await page.waitForSelector('#targets tr[data-model="switchable"]', { timeout: 5000 * SLOW });
      S.failing = true;
      // When the gateway itself says "ejected", the page must show it within 2 s.
      const t0 = Date.now();
      let ejectedAt = 0;
      for (let i = 0; i < 100 && !ejectedAt; i++) {
        const r = await request({ url: `${adminUrl}/admin/v1/targets`, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
        if (r.json().targets.some((t) => t.model === 'switchable' && t.state === 'ejected')) ejectedAt = Date.now();
        else await sleep(50);
      }
      assert.ok(ejectedAt, `the gateway never ejected the failing target (${Date.now() - t0} ms)`);
      await page.waitForFunction(() => document.querySelector('#targets tr[data-model="switchable"]')?.dataset.state === 'ejected', { timeout: 2000 * SLOW });
      const cell = await page.$eval('#targets tr[data-model="switchable"] td[data-label="State"]', (e) => e.textContent);
      assert.match(cell, /^ejected/);
      assert.match(cell, /until \d\d:\d\d:\d\d/);
      assert.match(cell, /fail/i, `the reason is shown: ${cell}`);
      // Its sparkline draws the failed attempts.
      await page.waitForFunction(() => document.querySelector('#targets tr[data-model="switchable"] svg.spark path.s-err') !== null, { timeout: 3000 * SLOW });
      // Failed-over requests: 200 from "steady" after a 500 from "switchable".
      await page.select('#f-status', 'retried');
      await page.waitForFunction(() => document.querySelectorAll('#tail tbody tr[data-status]').length > 0, { timeout: 5000 * SLOW });
      await clickNow(page, '#tail tbody tr[data-status]');
      await page.waitForSelector('#detail:not([hidden])', { timeout: 2000 * SLOW });
      const attempts = await page.$$eval('#detail-attempts li', (lis) => lis.map((l) => l.textContent));
      assert.ok(attempts.some((a) => /^switchable: failed \(500\)/.test(a)), attempts.join(' | '));
      assert.ok(attempts.some((a) => /^steady: answered 200/.test(a)), attempts.join(' | '));
      await page.click('#detail-close');
      // Filters: by status, then by group; every row shown matches.
      await page.select('#f-status', '2');
      const statuses = await page.$$eval('#tail tbody tr[data-status]', (trs) => trs.map((t) => t.dataset.status));
      assert.ok(statuses.length > 0 && statuses.every((s) => s.startsWith('2')), statuses.join(','));
      await page.select('#f-status', '');
      await page.select('#f-group', 'chat');
      const groups = await page.$$eval('#tail tbody tr[data-status] td[data-label="Group"]', (tds) => tds.map((t) => t.textContent));
      assert.ok(groups.length > 0 && groups.every((g) => g === 'chat'), groups.join(','));
      await page.select('#f-group', '');
      // Recovery: the provider answers again; the probe after the ejection succeeds.
      S.failing = false;
      await page.waitForFunction(() => document.querySelector('#targets tr[data-model="switchable"]')?.dataset.state === 'healthy', { timeout: 8000 * SLOW });
      assertClean(seen, 'ejection');
    } finally {
      S.failing = false;
      await traffic.stop();
      traffic = null;
      await page.close();
    }
  });

  test('a group and model named <img src=x onerror=alert(1)> stay text', async () => {
    const { page, seen } = await openPage();
    try {
      for (let i = 0; i < 3; i++) assert.equal((await gwPost(gw, '/v1/chat/completions', chatBody(XSS), { token: CLIENT })).status, 200);
      await signIn(page);
      await page.waitForFunction((x) => [...document.querySelectorAll('#targets td[data-label="Group"]')].some((t) => t.textContent === x), { timeout: 5000 * SLOW }, XSS);
      await page.waitForFunction((x) => [...document.querySelectorAll('#tail td[data-label="Group"]')].some((t) => t.textContent === x), { timeout: 5000 * SLOW }, XSS);
      await page.select('#f-group', XSS);
      await clickNow(page, '#tail tbody tr[data-status]');
      await page.waitForSelector('#detail:not([hidden])', { timeout: 2000 * SLOW });
      await sleep(300); // an injected handler would have run by now
      assert.equal(await page.$$eval('img', (i) => i.length), 0, 'no img element was created');
      assert.deepEqual(seen.dialogs, []);
      assertClean(seen, 'xss');
    } finally {
      await page.close();
    }
  });

  test('a refused reload shows with its validation errors; the running config stays', async () => {
    const { page, seen } = await openPage();
    try {
      await signIn(page);
      await page.waitForFunction(() => /start/.test(document.getElementById('reloads').textContent), { timeout: 5000 * SLOW });
      const broken = structuredClone(config);
      broken.providers[1].base = 'htp://nowhere';
      broken.health.consecutive_failures = 0;
      gw.writeConfig(broken, { mode: 'rename' });
      const r = await request({ url: `${adminUrl}/admin/v1/reload`, method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      assert.equal(r.status, 422, r.text);
      await page.waitForFunction(() => document.querySelector('#reloads li.refused') !== null, { timeout: 3000 * SLOW });
      const refused = await page.$eval('#reloads li.refused', (li) => li.textContent);
      assert.match(refused, /Refused/);
      assert.match(refused, /providers\[1\]\.base/);
      assert.match(refused, /health\.consecutive_failures/);
      const errors = await page.$$eval('#reloads li.refused .diag li', (lis) => lis.length);
      assert.ok(errors >= 2, `every validation error listed (${errors})`);
      // The running config is still the old one.
      assert.match(await page.$eval('#config', (e) => e.textContent), /"consecutive_failures": 2/);
      assertClean(seen, 'refused reload');
    } finally {
      gw.writeConfig(config, { mode: 'rename' });
      await page.close();
    }
  });

  // /admin/v1/keys comes with named keys (another branch): until then the browser answers it
  // here, in the shape the page reads (docs/OPERATIONS.md "Dashboard").
  test('the keys panel appears when /admin/v1/keys answers 200, names stay text', async () => {
    const { page, seen } = await openPage();
    try {
      await page.setRequestInterception(true);
      page.on('request', (r) => {
        if (new URL(r.url()).pathname !== '/admin/v1/keys') return r.continue();
        assert.equal(r.headers().authorization, `Bearer ${ADMIN_TOKEN}`);
        r.respond({
          status: 200,
          contentType: 'application/json',
          body: JSON.stringify({
            keys: [
              {
                name: XSS,
                // The windows' remainders: not today's or this month's totals.
                usage: { rpm: { limit: 60, remaining: 7 }, tpm: { limit: 1000, remaining: 900 } },
                usage_today: { requests: 12, input_tokens: 3000, output_tokens: 400, usd: 0 },
                usage_month: { requests: 340, input_tokens: 100000, output_tokens: 20000, usd: 1.5 },
                budget: { unit: 'tokens', period: 'month', amount: 200000, used: 120000, reserved: 1500, remaining: 78500 },
                rate_limited: { rpm: 3, budget: 1 },
              },
            ],
            // Redis (state.redis) did not answer within state.timeout: the local view, marked.
            source: 'local',
            redis_error: 'timeout',
          }),
        });
      });
      await signIn(page);
      await page.waitForSelector('#keys-panel:not([hidden])', { timeout: 5000 * SLOW });
      const cells = await page.$$eval('#keys tbody td', (tds) => tds.map((t) => t.textContent));
      assert.equal(cells[0], XSS);
      assert.match(cells[1], /12 req · 3400 tok · \$0\.00/);
      assert.match(cells[2], /340 req · 120\.0k tok · \$1\.50/);
      assert.match(cells[3], /120\.0k of 200\.0k tokens per month \(60\.0 %\) · 1500 reserved/);
      assert.equal(
        await page.$eval('#keys-source', (e) => (e.hidden ? '' : e.textContent)),
        "Redis did not answer (timeout): this instance's own counters, not the shared ones.",
      );
      assert.equal(cells[4], 'rpm 3 · budget 1');
      assert.equal(await page.$$eval('img', (i) => i.length), 0);
      assertClean(seen, 'keys');
    } finally {
      await page.close();
    }
  });

  test('without an admin token (loopback), the page works without login', async () => {
    const open = await startGateway({ config: { providers: [{ group: 'g', name: 'm', base: A.url, key: 'k' }], security: [CLIENT] } });
    const { page, seen } = await openPage();
    try {
      await page.goto(`${open.adminUrl}/`, { waitUntil: 'domcontentloaded' });
      await page.waitForSelector('#app:not([hidden])', { timeout: 5000 * SLOW });
      assert.equal(await page.$eval('#login', (e) => e.hidden), true);
      assert.equal(await page.$eval('#signout', (e) => e.hidden), true);
      await page.waitForFunction(() => document.querySelector('#targets tr[data-model="m"]') !== null, { timeout: 5000 * SLOW });
      assertClean(seen, 'no token');
    } finally {
      await page.close();
      await open.stop();
      open.cleanup();
    }
  });

  test('screenshots (DASHBOARD_SCREENSHOTS=dir)', { skip: SHOTS ? false : 'DASHBOARD_SCREENSHOTS not set' }, async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    const { page } = await openPage();
    try {
      await signIn(page);
      await page.waitForSelector('#app:not([hidden])');
      // Half a minute of traffic that rises and falls, a few errors, then a target that fails.
      for (const rate of [2, 4, 6, 8, 6, 3]) {
        traffic = startTraffic('chat', rate);
        await sleep(4000);
        await traffic.stop();
      }
      traffic = startTraffic('chat', 5);
      S.failing = true;
      await page.waitForFunction(() => document.querySelector('#targets tr[data-model="switchable"]')?.dataset.state !== 'healthy', { timeout: 5000 * SLOW });
      for (const scheme of ['light', 'dark']) {
        await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: scheme }]);
        await page.setViewport({ width: 1280, height: 800 });
        await page.evaluate(() => window.scrollTo(0, 0));
        await sleep(300);
        await page.screenshot({ path: path.join(SHOTS, `dashboard-desktop-${scheme}.png`) });
        await page.setViewport({ width: 390, height: 844, deviceScaleFactor: 1 });
        await page.evaluate(() => document.getElementById('h-targets').scrollIntoView());
        await sleep(300);
        await page.screenshot({ path: path.join(SHOTS, `dashboard-phone-${scheme}.png`) });
      }
    } finally {
      S.failing = false;
      await traffic?.stop();
      traffic = null;
      await page.close();
    }
  });
});
