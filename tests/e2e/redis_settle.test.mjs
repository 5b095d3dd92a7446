// End-to-end: settlements sent to Redis on their own (fire-and-forget, docs/SCALING.md) are not
// lost when Redis forgot its scripts (SCRIPT FLUSH: NOSCRIPT), nor when the gateway stops right
// after a burst of answers (SIGTERM: what is queued is sent before the connection closes).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock } from '../../tools/mock-provider/server.js';
import { startGateway } from './lib/gateway.mjs';
import { redisAvailable, startRedis } from './lib/redis.mjs';
import { accessLines, chatBody, gwPost, sleep } from './lib/common.mjs';

const T = { timeout: 60000 };

// "*4\r\n$4\r\nused\r\n$2\r\n42\r\n..." -> {used: 42, ...}
function hash(reply) {
  const parts = reply.split('\r\n').filter((l) => l && !/^[*$]/.test(l));
  const out = {};
  for (let i = 0; i + 1 < parts.length; i += 2) out[parts[i]] = Number(parts[i + 1]);
  return out;
}

describe('settlements sent on their own', { timeout: 120000, skip: !redisAvailable() && 'no redis-server' }, () => {
  let mock, redis;
  before(async () => {
    mock = await startMock();
    redis = await startRedis();
  });
  after(async () => {
    await mock?.close?.();
    await redis?.stop();
  });

  const config = (prefix, keys) => ({
    providers: [{ group: 'g', name: 'm', base: mock.url, key: 'sk-up' }],
    keys,
    state: { path: '', redis: redis.url, timeout: '500ms', on_failure: 'deny', prefix },
  });

  // The budget hash of `key` under `prefix` (one period: today's).
  async function budget(prefix, key) {
    const names = await redis.command('KEYS', `${prefix}{k:${key}}:budget:*`);
    const m = names.match(/\S+:budget:\d+/);
    return m ? hash(await redis.command('HGETALL', m[0])) : null;
  }

  test('a settlement answered NOSCRIPT (SCRIPT FLUSH between requests) is applied exactly once', T, async () => {
    const token = 'sk-noscript-secret';
    const gw = await startGateway({
      config: config('ns:', [{ name: 'bk', token, budget: { tokens: 100000, period: 'day' } }]),
      workers: 1,
    });
    try {
      const ask = () => gwPost(gw, '/v1/chat/completions', chatBody('g'), { token });
      const r1 = await ask();
      assert.equal(r1.status, 200, r1.text);
      const per = r1.json().usage.total_tokens;
      assert.ok(per > 0);
      // The first settlement went with the scripts loaded.
      let b;
      for (let i = 0; i < 100; i++) {
        b = await budget('ns:', 'bk');
        if (b && b.reserved === 0) break;
        await sleep(20);
      }
      assert.deepEqual(b, { used: per, reserved: 0 }, 'first request settled');
      // Redis forgets its scripts: the next admission is retried as EVAL (which caches the
      // admission script again); its settlement, sent on its own, meets NOSCRIPT.
      assert.match(await redis.command('SCRIPT', 'FLUSH'), /^\+OK/);
      const r2 = await ask();
      assert.equal(r2.status, 200, r2.text);
      assert.equal(r2.json().usage.total_tokens, per);
      for (let i = 0; i < 200 && accessLines(gw).length < 2; i++) await sleep(10);
      // Applied once: used is both requests', nothing stays reserved (lost: reserved > 0 and
      // used = one request's; twice: used = three requests').
      for (let i = 0; i < 100; i++) {
        b = await budget('ns:', 'bk');
        if (b && b.reserved === 0) break;
        await sleep(20);
      }
      assert.deepEqual(b, { used: 2 * per, reserved: 0 }, 'second request settled exactly once');
      await sleep(100);
      assert.deepEqual(await budget('ns:', 'bk'), { used: 2 * per, reserved: 0 }, 'and only once');
    } finally {
      await gw.stop();
    }
  });

  test('an admission answered after state.timeout gives back what its script took in Redis', T, async () => {
    // Redis is stopped (SIGSTOP) while one request is admitted: its admission times out (100 ms)
    // and falls back to local limits, but admit.lua runs once Redis resumes and takes the
    // key's only concurrency slot and reserves its tokens. The late reply gives them back.
    const token = 'sk-late-secret';
    const other = 'sk-late-other-secret';
    const gw = await startGateway({
      config: {
        providers: [{ group: 'g', name: 'm', base: mock.url, key: 'sk-up' }],
        keys: [
          { name: 'late', token, limits: { concurrency: 1 }, budget: { tokens: 100000, period: 'day' } },
          { name: 'warm', token: other, limits: { concurrency: 5 } },
        ],
        state: { path: '', redis: redis.url, timeout: '100ms', prefix: 'lr:' },
      },
      workers: 1,
    });
    let paused = false;
    try {
      const ask = (t) => gwPost(gw, '/v1/chat/completions', chatBody('g'), { token: t });
      // Another key's request: the connection is up and the scripts loaded; nothing of 'late'.
      const w = await ask(other);
      assert.equal(w.status, 200, w.text);
      assert.equal(await budget('lr:', 'late'), null);
      redis.pause();
      paused = true;
      const r1 = await ask(token);
      assert.equal(r1.status, 200, `served by the local fallback: ${r1.text}`);
      redis.resume();
      paused = false;
      // The late admission ran (its budget hash appears) and what it took is given back.
      let b = null;
      for (let i = 0; i < 150; i++) {
        b = await budget('lr:', 'late');
        if (b && b.reserved === 0) break;
        await sleep(20);
      }
      assert.ok(b, 'the late admission ran in Redis');
      assert.equal(b.reserved, 0, `budget reservation given back: ${JSON.stringify(b)}`);
      assert.equal(await redis.command('ZCARD', 'lr:{k:late}:conc'), ':0\r\n', 'lease given back');
      // The next request is admitted at once (before: 429 until the lease's 30 s ttl).
      const r2 = await ask(token);
      assert.equal(r2.status, 200, r2.text);
      const per = r2.json().usage.total_tokens;
      for (let i = 0; i < 100; i++) {
        b = await budget('lr:', 'late');
        if (b && b.reserved === 0 && b.used >= 2 * per) break;
        await sleep(20);
      }
      // Counted once each: the second request's settlement, and the fallback's usage added back
      // once Redis answered again (never the late admission's reservation).
      assert.deepEqual(b, { used: 2 * per, reserved: 0 });
      assert.equal(await redis.command('ZCARD', 'lr:{k:late}:conc'), ':0\r\n');
    } finally {
      if (paused) redis.resume();
      await gw.stop();
    }
  });

  test('a settlement that meets a read-only replica is kept and applied once it takes writes again', T, async () => {
    // The request is admitted on the master; while its upstream answers (delay-600), Redis
    // becomes a replica (of a master that is not there: it keeps its data, serves reads and
    // refuses writes). The settlement, sent on its own when the answer ends, meets READONLY
    // (before: swallowed by the settlement's pcall, the usage lost and the reservation kept).
    const token = 'sk-readonly-secret';
    const other = 'sk-readonly-warm-secret';
    const gw = await startGateway({
      config: {
        providers: [
          { group: 'g', name: 'm', base: mock.url, key: 'sk-up' },
          { group: 'slow', name: 's', base: `${mock.url}/mode/delay-600`, key: 'sk-up' },
        ],
        keys: [
          { name: 'ro', token, budget: { tokens: 100000, period: 'day' } },
          { name: 'warm', token: other, limits: { concurrency: 5 } },
        ],
        state: { path: '', redis: redis.url, timeout: '500ms', prefix: 'ro:' },
      },
      workers: 1,
    });
    let replica = false;
    try {
      const w = await gwPost(gw, '/v1/chat/completions', chatBody('g'), { token: other });
      assert.equal(w.status, 200, w.text);
      const pending = gwPost(gw, '/v1/chat/completions', chatBody('slow'), { token });
      let b = null;
      for (let i = 0; i < 100 && !(b && b.reserved > 0); i++) {
        await sleep(10);
        b = await budget('ro:', 'ro');
      }
      assert.ok(b && b.reserved > 0, `admitted in Redis: ${JSON.stringify(b)}`);
      assert.match(await redis.command('REPLICAOF', '127.0.0.1', '1'), /^\+OK/);
      replica = true;
      const r = await pending;
      assert.equal(r.status, 200, r.text);
      const per = r.json().usage.total_tokens;
      for (let i = 0; i < 200 && accessLines(gw).length < 2; i++) await sleep(10);
      await sleep(300); // the settlement and a re-send or two met the replica
      assert.deepEqual(await budget('ro:', 'ro'), { reserved: b.reserved }, 'nothing applied on the replica');
      assert.match(await redis.command('REPLICAOF', 'NO', 'ONE'), /^\+OK/);
      replica = false;
      for (let i = 0; i < 150; i++) {
        b = await budget('ro:', 'ro');
        if (b && b.reserved === 0) break;
        await sleep(20);
      }
      assert.deepEqual(b, { used: per, reserved: 0 }, 'settled once Redis takes writes again');
      await sleep(300);
      assert.deepEqual(await budget('ro:', 'ro'), { used: per, reserved: 0 }, 'and only once');
    } finally {
      if (replica) await redis.command('REPLICAOF', 'NO', 'ONE');
      await gw.stop();
    }
  });

  // Not deterministic against the loss it guards (commands not yet written when the worker's
  // connection stopped were dropped): here the settlements have usually been written before the
  // stop. RedisClient.StopSendsWhatIsQueuedBeforeClosing (tests/state/redis/client_test.cpp)
  // is the deterministic check.
  test('SIGTERM right after a burst of streamed answers: every settlement reaches Redis', T, async () => {
    const token = 'sk-stopflush-secret';
    const n = 40;
    const gw = await startGateway({
      config: config('sf:', [
        { name: 'sk', token, limits: { concurrency: 1000, tpm: 10000000 }, budget: { tokens: 10000000, period: 'day' } },
      ]),
      workers: 1,
    });
    let stopped;
    try {
      const all = await Promise.all(
        Array.from({ length: n }, () =>
          gwPost(gw, '/v1/chat/completions', chatBody('g', { stream: true, stream_options: { include_usage: true } }), { token }),
        ),
      );
      for (const r of all) assert.equal(r.status, 200, r.text);
      stopped = await gw.stop();
    } finally {
      if (!stopped) await gw.stop();
    }
    assert.equal(stopped.code, 0, JSON.stringify(stopped));
    // After the exit: no lease left, nothing reserved, every request's usage counted.
    assert.equal(await redis.command('ZCARD', 'sf:{k:sk}:conc'), ':0\r\n', 'every lease given back');
    const b = await budget('sf:', 'sk');
    assert.ok(b, 'budget hash');
    assert.equal(b.reserved, 0, JSON.stringify(b));
    assert.equal(b.used % n, 0, JSON.stringify(b));
    assert.ok(b.used > 0);
  });
});
