// Active health checks (providers[].health_check): a periodic GET <base><path> with the
// provider key takes a failing target out of rotation before any client request hits it, and
// a healthy one keeps serving.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startMock } from '../../tools/mock-provider/server.js';
import { startGateway, closedPort } from './lib/gateway.mjs';
import { CLIENT_TOKEN, chatBody, gwPost, accessLines, sleep } from './lib/common.mjs';
import { waitFor } from './lib/http.mjs';

const T = { timeout: 30000 };

describe('active health checks', () => {
  let mock, gw, deadPort;

  before(async () => {
    mock = await startMock();
    deadPort = await closedPort();
    const check = { interval: 1, timeout: 0.5 };
    gw = await startGateway({
      workers: 2,
      config: {
        providers: [
          { group: 'g', name: 'dead', base: `http://127.0.0.1:${deadPort}`, key: 'sk-dead', health_check: check },
          { group: 'g', name: 'broken', base: `${mock.url}/mode/status-500`, key: 'sk-broken', health_check: check },
          { group: 'g', name: 'good', base: mock.url, key: 'sk-good', health_check: check },
        ],
        health: { consecutive_failures: 2, base_ejection: 30 },
        security: [CLIENT_TOKEN],
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await mock?.close();
  });

  test('checks run with the provider key and eject failing targets before any request', T, async () => {
    await sleep(3500);  // >= 2 checks of each target at 1 s intervals
    const checks = mock.stats().requests.filter((r) => r.method === 'GET' && r.path.endsWith('/v1/models'));
    const good = checks.filter((r) => !r.path.includes('/mode/'));
    const broken = checks.filter((r) => r.path.includes('/mode/status-500'));
    assert.ok(good.length >= 2, `good target checked ${good.length} times`);
    assert.ok(broken.length >= 2, `broken target checked ${broken.length} times`);
    assert.equal(good[0].headers.authorization, 'Bearer sk-good');
    assert.equal(broken[0].headers.authorization, 'Bearer sk-broken');
    assert.ok(gw.stderrLines.some((l) => /health check of dead .* failed/.test(l)), 'dead target check failure logged');

    mock.reset();
    const before = accessLines(gw).length;
    for (let i = 0; i < 12; i++) {
      const r = await gwPost(gw, '/v1/chat/completions', chatBody('g'));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers['x-openbridge-model'], 'good');
      assert.equal(r.headers['x-openbridge-attempts'], '1');
    }
    await sleep(200);
    const lines = accessLines(gw).slice(before);
    assert.equal(lines.length, 12);
    for (const l of lines) assert.equal(l.tried, undefined, `a request tried an ejected target: ${l._line}`);
    const posts = mock.stats().requests.filter((r) => r.method === 'POST');
    assert.equal(posts.length, 12);
    assert.ok(posts.every((r) => !r.path.includes('/mode/')), 'the broken target got client traffic');
  });
});

// An upstream whose targets (one per base path, `/<name>/v1/...`) fail, recover or answer
// checks with Retry-After on command. Every request is recorded with the time it arrived.
async function startSwitchable() {
  const behaviour = new Map(); // name -> {check: {status, headers}, post: {status}}
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const [, name, ...rest] = req.url.split('/');
      const kind = req.method === 'GET' ? 'check' : 'post';
      const b = behaviour.get(name) ?? {};
      const answer = (kind === 'check' ? b.check : b.post) ?? { status: 200 };
      requests.push({ name, kind, path: '/' + rest.join('/'), t: performance.now(), status: answer.status });
      let body;
      if (answer.status !== 200) {
        body = JSON.stringify({ error: { message: `failing on command (${answer.status})`, type: 'server_error', param: null, code: null } });
      } else if (kind === 'check') {
        body = JSON.stringify({ object: 'list', data: [{ id: name, object: 'model' }] });
      } else {
        const model = JSON.parse(Buffer.concat(chunks).toString() || '{}').model ?? name;
        body = JSON.stringify({
          id: 'chatcmpl-1', object: 'chat.completion', created: 1, model,
          choices: [{ index: 0, message: { role: 'assistant', content: `Hello from ${name}!` }, finish_reason: 'stop' }],
        });
      }
      res.writeHead(answer.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...(answer.headers ?? {}) });
      res.end(body);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    base: (name) => `${url}/${name}`,
    set: (name, b) => behaviour.set(name, b),
    requests: (filter = {}) => requests.filter((r) => Object.entries(filter).every(([k, v]) => r[k] === v)),
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

const FAIL = { check: { status: 500 }, post: { status: 500 } };
const HEALTHY = {};

// Sends one chat request to group g; returns who served it and how.
async function served(gw) {
  const r = await gwPost(gw, '/v1/chat/completions', chatBody('g'));
  return { status: r.status, model: r.headers['x-openbridge-model'], attempts: r.headers['x-openbridge-attempts'], text: r.text };
}

describe('active health checks bring an ejected target back', () => {
  let up, gw;
  after(async () => {
    await gw?.stop();
    gw?.cleanup();
    await up?.close();
  });

  // flaky is ejected by failing client requests for a minute (base_ejection), so no client
  // request probes it during the test; once it answers again, only its check can bring it back.
  test('a successful check ends the ejection before any client request probes', { timeout: 30000 }, async () => {
    up = await startSwitchable();
    gw = await startGateway({
      config: {
        providers: [
          { group: 'g', name: 'flaky', base: up.base('flaky'), key: 'k', health_check: { interval: 1, timeout: 0.5 } },
          { group: 'g', name: 'steady', base: up.base('steady'), key: 'k' },
        ],
        health: { consecutive_failures: 2, base_ejection: 60 },
        security: [CLIENT_TOKEN],
      },
    });
    await waitFor(() => up.requests({ name: 'flaky', kind: 'check' }).length >= 1, { timeout: 5000, what: 'the first check of flaky' });

    // flaky fails: client requests that reach it fail over to steady until it is ejected.
    up.set('flaky', FAIL);
    for (let i = 0; i < 20 && up.requests({ name: 'flaky', kind: 'post', status: 500 }).length < 2; i++) {
      const s = await served(gw);
      assert.equal(s.status, 200, s.text);
      assert.equal(s.model, 'steady');
    }
    assert.equal(up.requests({ name: 'flaky', kind: 'post', status: 500 }).length, 2, 'two client failures on flaky');
    const postsBefore = up.requests({ name: 'flaky', kind: 'post' }).length;
    for (let i = 0; i < 4; i++) {
      const s = await served(gw);
      assert.deepEqual([s.status, s.model, s.attempts], [200, 'steady', '1'], 'flaky is ejected');
    }
    assert.equal(up.requests({ name: 'flaky', kind: 'post' }).length, postsBefore, 'an ejected target got client traffic');

    // flaky recovers at the provider. Two checks answered 200 since: the first one's report is
    // in (a target's next check starts only after the previous one has reported).
    up.set('flaky', HEALTHY);
    const recovered = performance.now();
    await waitFor(() => up.requests({ name: 'flaky', kind: 'check' }).filter((r) => r.t > recovered).length >= 2, {
      timeout: 5000,
      what: 'two checks of flaky after its recovery',
    });
    const got = [];
    for (let i = 0; i < 4; i++) got.push(await served(gw));
    for (const s of got) assert.deepEqual([s.status, s.attempts], [200, '1'], `failed or retried after the recovery: ${JSON.stringify(s)}`);
    assert.deepEqual(got.map((s) => s.model).sort(), ['flaky', 'flaky', 'steady', 'steady'], 'round robin over both targets again');
    assert.equal(up.requests({ name: 'flaky', kind: 'post' }).filter((r) => r.t > recovered).length, 2);
  });
});

// A check answered 429/503 with retry-after-ms or Retry-After ejects the target for exactly
// that long. The failure streak and ratio are out of reach here, so only the header can eject.
describe('active health checks honour Retry-After', () => {
  const cases = [
    { name: 'retry-after-ms on a 503', status: 503, headers: { 'retry-after-ms': '2500' }, ms: 2500 },
    { name: 'Retry-After seconds on a 429', status: 429, headers: { 'retry-after': '2' }, ms: 2000 },
  ];
  for (const c of cases) {
    test(c.name, { timeout: 30000 }, async () => {
      const up = await startSwitchable();
      let gw;
      try {
        up.set('flaky', { check: { status: c.status, headers: c.headers } }); // client requests succeed
        gw = await startGateway({
          config: {
            providers: [
              { group: 'g', name: 'flaky', base: up.base('flaky'), key: 'k', health_check: { interval: 1, timeout: 0.5 } },
              { group: 'g', name: 'steady', base: up.base('steady'), key: 'k' },
            ],
            health: { consecutive_failures: 1000, error_ratio: 1, min_requests: 1000000, base_ejection: 60 },
            security: [CLIENT_TOKEN],
          },
        });
        // The warning is logged right after the check's outcome is reported.
        const logged = await waitFor(
          () => gw.stderrLines.some((l) => /health check of flaky .* failed: status/.test(l)) && performance.now(),
          { timeout: 5000, what: 'the first failed check of flaky' },
        );
        for (let i = 0; i < 4; i++) {
          const s = await served(gw);
          assert.deepEqual([s.status, s.model, s.attempts], [200, 'steady', '1'], `request ${i} right after the check`);
        }
        let back;
        for (let i = 0; i < 200 && !back; i++) {
          const s = await served(gw);
          assert.equal(s.status, 200, s.text);
          if (s.model === 'flaky') back = performance.now();
          else await sleep(25);
          if (performance.now() - logged > c.ms + 3000) break;
        }
        assert.ok(back, `flaky never served again within ${c.ms + 3000} ms`);
        const ejected = back - logged;
        assert.ok(ejected >= c.ms - 250, `ejected for ${Math.round(ejected)} ms, asked for ${c.ms}`);
        assert.ok(ejected <= c.ms + 1000, `ejected for ${Math.round(ejected)} ms, asked for ${c.ms}`);
      } finally {
        await gw?.stop();
        gw?.cleanup();
        await up.close();
      }
    });
  }
});

// The checker keeps a schedule per target; a reload that drops a target's check must drop its
// entry too. Seen from outside: when the check comes back, it runs at once, as for a new target,
// instead of waiting out the interval of the schedule left from before.
describe('active health checks after reloads', () => {
  test('a check removed by a reload and added back runs at once', { timeout: 30000 }, async () => {
    const up = await startSwitchable();
    let gw;
    try {
      // slow: checked once a minute; beat: every second, shows that the checker passed over the config.
      const slow = { group: 'g', name: 'slow', base: up.base('slow'), key: 'k', health_check: { interval: 60, timeout: 1 } };
      const beat = { group: 'g', name: 'beat', base: up.base('beat'), key: 'k', health_check: { interval: 1, timeout: 0.5 } };
      const withCheck = { providers: [slow, beat], security: [CLIENT_TOKEN] };
      const { health_check, ...slowUnchecked } = slow;
      const withoutCheck = { providers: [slowUnchecked, beat], security: [CLIENT_TOKEN] };
      gw = await startGateway({ config: withCheck });
      await waitFor(() => up.requests({ name: 'slow', kind: 'check' }).length === 1, { timeout: 5000, what: 'the first check of slow' });

      const reloads = () => gw.stderrLines.filter((l) => /config reloaded/.test(l)).length;
      const reload = async (cfg) => {
        const n = reloads();
        gw.writeConfig(cfg, { mode: 'rename' });
        await waitFor(() => reloads() > n, { timeout: 5000, what: 'the reload' });
        return performance.now();
      };
      const off = await reload(withoutCheck);
      // Two checks of beat started after the reload: the second was started by a pass over the
      // new config (a target's next check starts only after the previous one ended).
      await waitFor(() => up.requests({ name: 'beat', kind: 'check' }).filter((r) => r.t > off).length >= 2, {
        timeout: 5000,
        what: 'two checks of beat after the reload',
      });
      assert.equal(up.requests({ name: 'slow', kind: 'check' }).length, 1);

      const on = await reload(withCheck);
      await waitFor(() => up.requests({ name: 'slow', kind: 'check' }).length === 2, {
        timeout: 3000,
        what: 'slow checked again within 3 s of getting its check back (not after its old 60 s interval)',
      });
      const late = up.requests({ name: 'slow', kind: 'check' })[1].t - on;
      assert.ok(late < 1500, `slow checked ${Math.round(late)} ms after the reload`);
    } finally {
      await gw?.stop();
      gw?.cleanup();
      await up.close();
    }
  });

  test('an interval shortened by a reload applies from the last check, not after the old interval', { timeout: 30000 }, async () => {
    const up = await startSwitchable();
    let gw;
    try {
      const target = (interval) => ({ group: 'g', name: 'slow', base: up.base('slow'), key: 'k', health_check: { interval, timeout: 0.5 } });
      gw = await startGateway({ config: { providers: [target(60)], security: [CLIENT_TOKEN] } });
      await waitFor(() => up.requests({ name: 'slow', kind: 'check' }).length === 1, { timeout: 5000, what: 'the first check' });
      const first = up.requests({ name: 'slow', kind: 'check' })[0].t;
      const n = gw.stderrLines.filter((l) => /config reloaded/.test(l)).length;
      gw.writeConfig({ providers: [target(2)], security: [CLIENT_TOKEN] }, { mode: 'rename' });
      await waitFor(() => gw.stderrLines.filter((l) => /config reloaded/.test(l)).length > n, { timeout: 5000, what: 'the reload' });
      // Due 2 s after the first check (or at once if that is past): well within 5 s.
      await waitFor(() => up.requests({ name: 'slow', kind: 'check' }).length >= 2, {
        timeout: 5000,
        what: 'a second check under the new 2 s interval (the old one was 60 s)',
      });
      const gap = up.requests({ name: 'slow', kind: 'check' })[1].t - first;
      assert.ok(gap >= 1900, `not before the new interval: ${Math.round(gap)} ms after the first check`);
    } finally {
      await gw?.stop();
      gw?.cleanup();
      await up.close();
    }
  });
});
