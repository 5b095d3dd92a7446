// End-to-end: GET /admin/v1/keys with the Redis state backend (docs/SCALING.md). Two gateways
// share one Redis: what one spends, the other's admin endpoint shows (rpm, rpd, tpm remainders,
// leases in flight, budget used / reserved / remaining), read from Redis on every call. Redis
// stopped (SIGSTOP): the answer still comes within state.timeout, from the local counters, and
// says so ("source": "local", "redis_error").
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock } from '../../tools/mock-provider/server.js';
import { startGateway } from './lib/gateway.mjs';
import { redisAvailable, startRedis } from './lib/redis.mjs';
import { request } from './lib/http.mjs';
import { sleep } from './lib/common.mjs';

const T = { timeout: 60000 };
const SPEND = 'sk-adminredis-spend-secret';
const HOLD = 'sk-adminredis-hold-secret';
const PREFIX = 'adm:';
const DAY = 86400000;
// The mock's usage of every chat completion: 9 prompt + 12 completion tokens.
const USAGE = 21;

describe('GET /admin/v1/keys with Redis: the shared counters', { timeout: 120000, skip: !redisAvailable() && 'no redis-server' }, () => {
  let mock, redis, a, b;
  const config = () => ({
    providers: [
      { group: 'g', name: 'm', base: mock.url, key: 'sk-up' },
      { group: 'slow', name: 's', base: `${mock.url}/mode/delay-60000`, key: 'sk-up' },
    ],
    keys: [
      {
        name: 'spend-key',
        token: SPEND,
        limits: { rpm: 10, rpd: 10, tpm: 600, concurrency: 4 },
        budget: { tokens: 1000, period: 'day' },
        labels: { team: 'a' },
      },
      { name: 'hold-key', token: HOLD, limits: { concurrency: 2 }, budget: { tokens: 5000, period: 'day' } },
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

  const chat = (gw, token, model = 'g', extra = {}) =>
    request({
      url: `${gw.url}/v1/chat/completions`,
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 10 }),
      ...extra,
    });
  const keysOf = async (gw) => {
    const t0 = performance.now();
    const r = await request({ url: `${gw.adminUrl}/admin/v1/keys` });
    const ms = performance.now() - t0;
    assert.equal(r.status, 200, r.text);
    return { json: r.json(), byName: Object.fromEntries(r.json().keys.map((k) => [k.name, k])), ms, text: r.text };
  };
  const hget = async (key, field) => {
    const t = await redis.command('HGET', key, field);
    return t.startsWith('$-1') ? null : t.split('\r\n')[1];
  };
  const budgetKey = (name) => `${PREFIX}{k:${name}}:budget:${Math.floor(Date.now() / DAY) * DAY}`;

  test('what instance A spent, instance B shows exactly (read from Redis)', T, async () => {
    const t0 = performance.now();
    for (let i = 0; i < 3; i++) {
      const r = await chat(a, SPEND);
      assert.equal(r.status, 200, r.text);
    }
    // A's settlements are fire-and-forget: wait (bounded) until Redis holds them, then ask B once.
    for (let i = 0; i < 200 && (await hget(budgetKey('spend-key'), 'used')) !== String(3 * USAGE); i++) await sleep(10);
    assert.equal(await hget(budgetKey('spend-key'), 'used'), String(3 * USAGE));
    assert.equal(await hget(budgetKey('spend-key'), 'reserved'), '0');
    const { json, byName, text } = await keysOf(b);
    const elapsed = performance.now() - t0;
    const k = byName['spend-key'];
    assert.deepEqual(k.labels, { team: 'a' });
    assert.deepEqual(k.limits, { rpm: 10, rpd: 10, tpm: 600, concurrency: 4, default_output_tokens: k.limits.default_output_tokens });
    // rpd 10: one request per 8,640 s; three taken, nothing back within the test: exactly 7.
    assert.deepEqual(k.usage.rpd, { limit: 10, remaining: 7 });
    // rpm 10: one request back every 6 s.
    if (elapsed < 5500) assert.deepEqual(k.usage.rpm, { limit: 10, remaining: 7 });
    // tpm 600: the actual usage (3 x 21) taken, refilled at one token per 100 ms since.
    assert.ok(
      k.usage.tpm.remaining >= 600 - 3 * USAGE && k.usage.tpm.remaining <= 600 - 3 * USAGE + Math.ceil(elapsed / 100) + 1,
      `tpm remaining ${k.usage.tpm.remaining} after ${elapsed.toFixed(0)} ms`,
    );
    assert.deepEqual(k.usage.concurrency, { limit: 4, in_flight: 0 });
    const bud = k.budget;
    assert.equal(bud.unit, 'tokens');
    assert.equal(bud.period, 'day');
    assert.equal(bud.amount, 1000);
    assert.equal(bud.used, 3 * USAGE);
    assert.equal(bud.reserved, 0);
    assert.equal(bud.remaining, 1000 - 3 * USAGE);
    assert.equal(bud.period_start_ms, Math.floor(Date.now() / DAY) * DAY);
    assert.equal(bud.period_end_ms, bud.period_start_ms + DAY);
    assert.equal(json.source, 'redis', text);
    assert.equal(json.redis_error, undefined);
    assert.ok(!text.includes(SPEND) && !text.includes(HOLD), 'no token shown');
    // A agrees: both read the same counters.
    const fromA = (await keysOf(a)).byName['spend-key'];
    assert.deepEqual(fromA.budget, bud);
    assert.deepEqual(fromA.usage.rpd, k.usage.rpd);
  });

  test('a request in flight on A: B shows its lease and its budget reservation apart from the usage', T, async () => {
    const ac = new AbortController();
    const body = JSON.stringify({ model: 'slow', messages: [{ role: 'user', content: 'hold on' }], max_tokens: 100 });
    const held = request({
      url: `${a.url}/v1/chat/completions`,
      method: 'POST',
      headers: { authorization: `Bearer ${HOLD}`, 'content-type': 'application/json' },
      body,
      signal: ac.signal,
      timeout: 30000,
    }).catch(() => null);
    try {
      const conc = `${PREFIX}{k:hold-key}:conc`;
      const zcard = async () => Number((await redis.command('ZCARD', conc)).slice(1));
      for (let i = 0; i < 300 && (await zcard()) < 1; i++) await sleep(10);
      assert.equal(await zcard(), 1, 'A admitted the request');
      const k = (await keysOf(b)).byName['hold-key'];
      assert.deepEqual(k.usage.concurrency, { limit: 2, in_flight: 1 });
      // The estimate admit reserved: ceil(body bytes / 4) + max_tokens.
      const reserved = Math.ceil(Buffer.byteLength(body) / 4) + 100;
      assert.equal(await hget(budgetKey('hold-key'), 'reserved'), String(reserved));
      assert.equal(k.budget.used, 0);
      assert.equal(k.budget.reserved, reserved);
      assert.equal(k.budget.remaining, 5000 - reserved);
    } finally {
      ac.abort();
      await held;
    }
  });

  test('Redis stopped: the answer comes within state.timeout, from the local counters, and says so', T, async () => {
    assert.equal((await keysOf(b)).json.source, 'redis');
    redis.pause(); // SIGSTOP: the connection stays open, nothing answers
    try {
      const first = await keysOf(b);
      console.log(`redis paused: /admin/v1/keys answered in ${first.ms.toFixed(0)} ms (timeout 100 ms)`);
      assert.equal(first.json.source, 'local', first.text);
      assert.equal(first.json.redis_error, 'timeout');
      assert.ok(first.ms < 100 + 400, `answered after ${first.ms} ms`);
      // B counted nothing itself: its local view is full.
      assert.equal(first.byName['spend-key'].usage.rpd.remaining, 10);
      // Later (the connection given up as stuck, reconnecting): still bounded, still local.
      await sleep(1200);
      const later = await keysOf(b);
      assert.equal(later.json.source, 'local', later.text);
      assert.ok(['timeout', 'not_connected', 'connection_lost'].includes(later.json.redis_error), later.json.redis_error);
      assert.ok(later.ms < 100 + 400, `answered after ${later.ms} ms`);
    } finally {
      redis.resume();
    }
    // Back: the shared counters again (bounded wait for the reconnection).
    let back;
    for (let i = 0; i < 100; i++) {
      back = await keysOf(b);
      if (back.json.source === 'redis') break;
      await sleep(100);
    }
    assert.equal(back.json.source, 'redis');
    assert.equal(back.byName['spend-key'].usage.rpd.remaining, 7);
  });
});
