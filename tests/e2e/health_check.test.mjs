// Active health checks (providers[].health_check): a periodic GET <base><path> with the
// provider key takes a failing target out of rotation before any client request hits it, and
// a healthy one keeps serving.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock } from '../../tools/mock-provider/server.js';
import { startGateway, closedPort } from './lib/gateway.mjs';
import { CLIENT_TOKEN, chatBody, gwPost, accessLines, sleep } from './lib/common.mjs';

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
