// End-to-end: several gateways sharing one Redis for keys' limits and budgets (docs/SCALING.md):
// exact counting across instances, tpm settled with stream usage, budgets that survive a
// restart (SQLite ledger, and Redis), a Redis outage (on_failure local / deny, bounded
// latency), leases of a killed instance expiring, and Redis round trips per request.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { startMock } from '../../tools/mock-provider/server.js';
import { startGateway } from './lib/gateway.mjs';
import { redisAvailable, startRedis } from './lib/redis.mjs';
import { sleep } from './lib/common.mjs';

const T = { timeout: 60000 };
const TOK = {
  rpm: 'sk-scale-rpm-secret',
  tpm: 'sk-scale-tpm-secret',
  budget: 'sk-scale-budget-secret',
  conc: 'sk-scale-conc-secret',
  deny: 'sk-scale-deny-secret',
  plain: 'sk-scale-plain-secret',
};

const sdk = (gw, token) => new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: token, maxRetries: 0, timeout: 10000 });

// One chat completion: {status, headers, ms} (an SDK error is an answer too).
async function ask(gw, token, extra = {}) {
  const t0 = performance.now();
  try {
    const { response } = await sdk(gw, token)
      .chat.completions.create({ model: 'g', messages: [{ role: 'user', content: 'hi' }], max_tokens: 10, ...extra })
      .withResponse();
    return { status: response.status, headers: response.headers, ms: performance.now() - t0 };
  } catch (e) {
    if (e instanceof OpenAI.APIError && e.status)
      return { status: e.status, headers: e.headers, code: e.code, type: e.type, ms: performance.now() - t0 };
    throw e;
  }
}

// Redis's count of calls of the admission and settlement scripts (INFO commandstats).
async function evalCalls(redis) {
  const info = await redis.command('INFO', 'commandstats');
  let n = 0;
  for (const m of info.matchAll(/cmdstat_(evalsha|eval|fcall):calls=(\d+)/g)) n += Number(m[2]);
  return n;
}

describe('gateways sharing one Redis', { timeout: 300000, skip: !redisAvailable() && 'no redis-server' }, () => {
  let mock, redis, dir;
  const gws = [];
  before(async () => {
    mock = await startMock();
    redis = await startRedis();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ob-scaling-'));
  });
  after(async () => {
    for (const g of gws) await g.stop().catch(() => {});
    await mock?.close?.();
    await redis?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const keys = [
    { name: 'rpm-key', token: TOK.rpm, limits: { rpm: 60 } },
    { name: 'tpm-key', token: TOK.tpm, limits: { tpm: 100 } },
    { name: 'budget-key', token: TOK.budget, budget: { tokens: 50, period: 'day' } },
    { name: 'conc-key', token: TOK.conc, limits: { concurrency: 2 } },
    { name: 'plain-key', token: TOK.plain },
  ];
  const config = (state, extra = {}) => ({
    providers: [
      { group: 'g', name: 'm', base: mock.url, key: 'sk-up' },
      { group: 'slow', name: 's', base: `${mock.url}/mode/delay-60000`, key: 'sk-up' },
    ],
    keys,
    state: { path: '', redis: redis.url, timeout: '50ms', instances: 2, ...state },
    ...extra,
  });
  const start = async (state, extra) => {
    const g = await startGateway({ config: config(state, extra), workers: 2 });
    gws.push(g);
    return g;
  };
  const stop = async (g) => {
    await g.stop();
    gws.splice(gws.indexOf(g), 1);
  };

  test('rpm 60 across two instances: a burst of 200 admits exactly 60', T, async () => {
    const a = await start({ prefix: 'rpm:' });
    const b = await start({ prefix: 'rpm:' });
    // Warm both: connections to Redis are up (a request on a plain key touches no state).
    for (const g of [a, b]) assert.equal((await ask(g, TOK.plain)).status, 200);
    const t0 = performance.now();
    const all = await Promise.all(Array.from({ length: 200 }, (_, i) => ask(i % 2 ? b : a, TOK.rpm)));
    const took = performance.now() - t0;
    const ok = all.filter((r) => r.status === 200);
    const refused = all.filter((r) => r.status === 429);
    console.log(`rpm: admitted ${ok.length} of 200 (a ${all.filter((r, i) => i % 2 === 0 && r.status === 200).length}, b ${all.filter((r, i) => i % 2 === 1 && r.status === 200).length}), burst took ${took.toFixed(0)} ms`);
    // GCRA at 1 request/s: the burst must end within a second of the first admission for the
    // count to be exactly the limit; it is much shorter on loopback.
    assert.ok(took < 1000, `burst took ${took} ms`);
    assert.equal(ok.length, 60);
    assert.equal(refused.length, 140);
    for (const r of refused) {
      assert.equal(r.code, 'rate_limit_exceeded');
      assert.ok(Number(r.headers.get('retry-after')) >= 1, 'Retry-After');
      assert.equal(r.headers.get('x-ratelimit-limit-requests'), '60');
    }
    await stop(a);
    await stop(b);
  });
});
