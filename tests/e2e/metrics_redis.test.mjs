// End-to-end: /metrics with the Redis state backend (docs/SCALING.md, docs/OPERATIONS.md
// "Metrics"). Two gateways share one Redis: what one spends, the other's
// openbridge_budget_remaining shows, read from Redis on every scrape. Redis stopped (SIGSTOP):
// the scrape still answers within state.timeout, leaves openbridge_budget_remaining out (this
// instance's own counters hold nothing with Redis: a full budget would be wrong) and says so
// with openbridge_state_read_ok 0.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock } from '../../tools/mock-provider/server.js';
import { startGateway } from './lib/gateway.mjs';
import { redisAvailable, startRedis } from './lib/redis.mjs';
import { request } from './lib/http.mjs';
import { sleep } from './lib/common.mjs';

const T = { timeout: 60000 };
const SPEND = 'sk-metricsredis-spend-secret';
const USD = 'sk-metricsredis-usd-secret';
const PLAIN = 'sk-metricsredis-plain-secret';
const RPM_ONLY = 'sk-metricsredis-rpm-only-secret';
const PREFIX = 'mr:';
const DAY = 86400000;
// The mock's usage of every chat completion: 9 prompt + 12 completion tokens.
const USAGE = 21;
// Priced at 1,000 USD per million tokens both ways: 21 tokens cost 0.021 USD (21,000 micros).
const COST_MICROS = 21000;

describe('/metrics with Redis: budgets from the shared counters', { timeout: 120000, skip: !redisAvailable() && 'no redis-server' }, () => {
  let mock, redis, a, b;
  const config = () => ({
    providers: [
      { group: 'g', name: 'm', base: mock.url, key: 'sk-up' },
      { group: 'priced', name: 'p', base: mock.url, key: 'sk-up', price: { input: 1000, output: 1000 } },
    ],
    keys: [
      { name: 'spend-key', token: SPEND, limits: { rpm: 100 }, budget: { tokens: 1000, period: 'day' } },
      { name: 'usd-key', token: USD, groups: ['priced'], budget: { usd: 3, period: 'day' } },
      { name: 'plain-key', token: PLAIN },
      { name: 'rpm-only', token: RPM_ONLY, limits: { rpm: 100 } },
    ],
    state: { path: '', redis: redis.url, timeout: '100ms', instances: 2, prefix: PREFIX },
  });
  before(async () => {
    mock = await startMock();
    redis = await startRedis();
    a = await startGateway({ config: config(), workers: 2 });
    b = await startGateway({ config: config(), workers: 1 });
  });
  after(async () => {
    redis?.resume();
    for (const g of [a, b]) await g?.stop().catch(() => {});
    await mock?.close?.();
    await redis?.stop();
  });

  const chat = (gw, token, model = 'g') =>
    request({
      url: `${gw.url}/v1/chat/completions`,
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 10 }),
    });
  // One scrape: its time, the samples by series ("name{labels}" -> value).
  const scrape = async (gw) => {
    const t0 = performance.now();
    const r = await request({ url: `${gw.adminUrl}/metrics` });
    const ms = performance.now() - t0;
    assert.equal(r.status, 200, r.text);
    const samples = new Map();
    for (const line of r.text.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const i = line.lastIndexOf(' ');
      samples.set(line.slice(0, i), Number(line.slice(i + 1)));
    }
    return { text: r.text, samples, ms };
  };
  const TOKENS = 'openbridge_budget_remaining{client="spend-key",unit="tokens"}';
  const DOLLARS = 'openbridge_budget_remaining{client="usd-key",unit="usd"}';
  const hget = async (key, field) => {
    const t = await redis.command('HGET', key, field);
    return t.startsWith('$-1') ? null : t.split('\r\n')[1];
  };
  const budgetKey = (name) => `${PREFIX}{k:${name}}:budget:${Math.floor(Date.now() / DAY) * DAY}`;

  test('what instance A spent, instance B\'s /metrics shows (tokens and USD)', T, async () => {
    for (let i = 0; i < 3; i++) assert.equal((await chat(a, SPEND)).status, 200);
    for (let i = 0; i < 2; i++) assert.equal((await chat(a, USD, 'priced')).status, 200);
    // A's settlements are fire-and-forget: wait (bounded) until Redis holds them, then scrape B once.
    const settled = async () =>
      (await hget(budgetKey('spend-key'), 'used')) === String(3 * USAGE) &&
      (await hget(budgetKey('usd-key'), 'used')) === String(2 * COST_MICROS);
    for (let i = 0; i < 200 && !(await settled()); i++) await sleep(10);
    assert.ok(await settled(), 'Redis holds A\'s settlements');
    const m = await scrape(b);
    assert.equal(m.samples.get(TOKENS), 1000 - 3 * USAGE, m.text);
    assert.ok(Math.abs(m.samples.get(DOLLARS) - (3 - (2 * COST_MICROS) / 1e6)) < 1e-9, `usd left ${m.samples.get(DOLLARS)}`);
    assert.equal(m.samples.get('openbridge_state_read_ok'), 1);
    // A key without a budget has no series; exactly the two budgeted keys have one.
    assert.deepEqual([...m.samples.keys()].filter((k) => k.startsWith('openbridge_budget_remaining{')).sort(), [TOKENS, DOLLARS].sort());
    // A reads the same counters.
    const fromA = await scrape(a);
    assert.equal(fromA.samples.get(TOKENS), m.samples.get(TOKENS));
    assert.equal(fromA.samples.get(DOLLARS), m.samples.get(DOLLARS));
  });

  test('a scrape costs Redis one script call per key with a budget, none for the others', T, async () => {
    const scripts = async () => {
      const info = await redis.command('INFO', 'commandstats');
      let n = 0;
      for (const m of info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)) n += Number(m[1]);
      return n;
    };
    await scrape(b); // the script is loaded
    const before = await scripts();
    const m = await scrape(b);
    assert.equal(m.samples.get('openbridge_state_read_ok'), 1);
    // spend-key and usd-key; plain-key and rpm-only (a limit, no budget) are not read.
    assert.equal((await scripts()) - before, 2);
  });

  test('Redis stopped: the scrape answers within state.timeout, without the budgets, and says so', T, async () => {
    assert.equal((await scrape(b)).samples.get('openbridge_state_read_ok'), 1);
    redis.pause(); // SIGSTOP: the connection stays open, nothing answers
    try {
      const first = await scrape(b);
      console.log(`redis paused: /metrics answered in ${first.ms.toFixed(0)} ms (timeout 100 ms)`);
      assert.ok(first.ms < 100 + 400, `answered after ${first.ms} ms`);
      assert.equal(first.samples.get('openbridge_state_read_ok'), 0, first.text);
      // No wrong figure: B counted nothing itself, so its own view would be a full budget.
      assert.ok(![...first.samples.keys()].some((k) => k.startsWith('openbridge_budget_remaining{')), first.text);
      assert.match(first.text, /^# TYPE openbridge_budget_remaining gauge$/m);
      // The rest of the scrape is whole.
      assert.ok(first.samples.has('openbridge_config_reloads_total{result="applied"}'), first.text);
      assert.match(first.text, /^openbridge_build_info\{version="[^"]*"\} 1$/m);
      // Later (the connection given up as stuck, reconnecting): still bounded, still left out.
      await sleep(1200);
      const later = await scrape(b);
      assert.ok(later.ms < 100 + 400, `answered after ${later.ms} ms`);
      assert.equal(later.samples.get('openbridge_state_read_ok'), 0);
      assert.equal(later.samples.get(TOKENS), undefined);
      assert.match(b.stderr(), /cannot read the keys' shared counters: redis timeout/);
    } finally {
      redis.resume();
    }
    // Back: the shared figures again (bounded wait for the reconnection).
    let back;
    for (let i = 0; i < 100; i++) {
      back = await scrape(b);
      if (back.samples.get('openbridge_state_read_ok') === 1) break;
      await sleep(100);
    }
    assert.equal(back.samples.get('openbridge_state_read_ok'), 1);
    assert.equal(back.samples.get(TOKENS), 1000 - 3 * USAGE);
  });
});
