// End-to-end: config hot reload (file watch, rename-over, SIGHUP), invalid files refused.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock } from '../../tools/mock-provider/server.js';
import { startGateway } from './lib/gateway.mjs';
import { waitFor } from './lib/http.mjs';
import { rawConnection, rawRequest } from './lib/raw.mjs';
import { CLIENT_TOKEN, chatBody, gwPost, gwGet, sleep } from './lib/common.mjs';

const T = { timeout: 30000 };
const APPLY_MS = 2000; // contract: a change applies within 2 s
const SLACK_MS = 500; // request round trips while polling

describe('config hot reload', { timeout: 180000 }, () => {
  let A, gw;
  const prov = (group, name) => ({ group, name, base: A.url, key: `sk-${name}` });
  let cfg;

  before(async () => {
    A = await startMock();
    cfg = { providers: [prov('one', 'model-one')], security: [CLIENT_TOKEN] };
    gw = await startGateway({ config: cfg });
  });
  after(async () => {
    if (gw && !gw.exited()) await gw.stop();
    gw?.cleanup();
    await A?.close();
  });

  const status = async (group) => (await gwPost(gw, '/v1/chat/completions', chatBody(group))).status;

  // Polls until `group` answers `want`; returns the ms it took from `t0`.
  async function until(group, want, t0, what) {
    await waitFor(async () => (await status(group)) === want, { timeout: APPLY_MS + SLACK_MS, every: 50, what });
    return performance.now() - t0;
  }

  test('in-place rewrite adding a group: the new model works within 2 s', T, async () => {
    assert.equal(await status('one'), 200);
    assert.equal(await status('two'), 404);
    await sleep(1100); // a different mtime second than the file's creation
    cfg = { ...cfg, providers: [...cfg.providers, prov('two', 'model-two')] };
    const t0 = performance.now();
    gw.writeConfig(cfg, { mode: 'inplace' });
    await until('two', 200, t0, 'group "two" after an in-place rewrite');
    const r = await gwPost(gw, '/v1/chat/completions', chatBody('two'));
    assert.equal(r.json().model, 'two');
    assert.equal(A.stats().requests.at(-1).headers.authorization, 'Bearer sk-model-two');
    const models = (await gwGet(gw, '/v1/models')).json().data.map((m) => m.id).sort();
    assert.deepEqual(models, ['one', 'two']);
  });

  test('rename-over removing a group: 404 within 2 s, the others keep working', T, async () => {
    cfg = { ...cfg, providers: cfg.providers.filter((p) => p.group !== 'one') };
    const t0 = performance.now();
    gw.writeConfig(cfg, { mode: 'rename' });
    await until('one', 404, t0, 'group "one" gone after a rename-over');
    assert.equal(await status('two'), 200);
    const models = (await gwGet(gw, '/v1/models')).json().data.map((m) => m.id);
    assert.deepEqual(models, ['two']);
  });

  test('a second rename-over is detected too (the watch follows the new file)', T, async () => {
    cfg = { ...cfg, providers: [...cfg.providers, prov('three', 'model-three')] };
    const t0 = performance.now();
    gw.writeConfig(cfg, { mode: 'rename' });
    await until('three', 200, t0, 'group "three" after a second rename-over');
  });

  test('an invalid file is refused (stderr says so) and the old config keeps serving', T, async () => {
    const before = gw.stderrLines.length;
    gw.writeConfig('{"providers": [ {"group": "broken"', { mode: 'inplace' });
    await sleep(APPLY_MS + SLACK_MS);
    assert.equal(await status('two'), 200, 'old config still serves');
    assert.equal(await status('three'), 200, 'old config still serves');
    const said = gw.stderrLines.slice(before).join('\n');
    assert.match(said, /config/i, `stderr after the broken write:\n${said}`);
    assert.match(said, /invalid|refus|reject|error|fail/i, `stderr after the broken write:\n${said}`);
    // a semantically invalid file (valid JSON) is refused the same way
    const before2 = gw.stderrLines.length;
    gw.writeConfig({ providers: [{ group: 'x', name: 'y', base: 'ftp://nope', key: 'k' }], security: [CLIENT_TOKEN] }, { mode: 'rename' });
    await sleep(APPLY_MS + SLACK_MS);
    assert.equal(await status('two'), 200, 'old config still serves after an invalid one');
    assert.equal(await status('x'), 404);
    assert.match(gw.stderrLines.slice(before2).join('\n'), /providers\[0\]\.base/);
    // fixing the file applies it
    cfg = { ...cfg, providers: [...cfg.providers, prov('four', 'model-four')] };
    const t0 = performance.now();
    gw.writeConfig(cfg, { mode: 'inplace' });
    await until('four', 200, t0, 'group "four" after fixing the file');
  });

  test('security tokens reload too', T, async () => {
    cfg = { ...cfg, security: ['sk-new-client'] };
    const t0 = performance.now();
    gw.writeConfig(cfg, { mode: 'rename' });
    await waitFor(async () => (await gwPost(gw, '/v1/chat/completions', chatBody('two'))).status === 401, {
      timeout: APPLY_MS + SLACK_MS, every: 50, what: 'old token refused',
    });
    const r = await gwPost(gw, '/v1/chat/completions', chatBody('two'), { token: 'sk-new-client' });
    assert.equal(r.status, 200, r.text);
    cfg = { ...cfg, security: [CLIENT_TOKEN] };
    gw.writeConfig(cfg, { mode: 'rename' });
    await until('two', 200, performance.now(), 'token restored');
    assert.ok(performance.now() - t0 < 2 * (APPLY_MS + SLACK_MS));
  });

  test('SIGHUP reloads; the process keeps running', T, async () => {
    cfg = { ...cfg, providers: [...cfg.providers, prov('five', 'model-five')] };
    gw.writeConfig(cfg, { mode: 'rename' });
    gw.sighup();
    const t0 = performance.now();
    await until('five', 200, t0, 'group "five" after SIGHUP');
    gw.sighup();
    gw.sighup();
    await sleep(300);
    assert.equal(gw.exited(), null, 'still running after SIGHUPs');
    assert.equal(await status('five'), 200);
  });

  test('round-robin and requests in flight survive reloads', T, async () => {
    cfg = { ...cfg, providers: [...cfg.providers, prov('pair', 'pair-a'), prov('pair', 'pair-b')] };
    gw.writeConfig(cfg, { mode: 'rename' });
    await until('pair', 200, performance.now(), 'group "pair"');
    A.reset();
    const inflight = [];
    for (let i = 0; i < 20; i++) {
      inflight.push(gwPost(gw, '/v1/chat/completions', chatBody('pair')));
      if (i === 10) gw.writeConfig(cfg, { mode: 'inplace' }); // same content, a reload
    }
    const rs = await Promise.all(inflight);
    assert.ok(rs.every((r) => r.status === 200), rs.map((r) => r.status).join(','));
    const names = A.stats().requests.map((r) => r.model);
    const a = names.filter((n) => n === 'pair-a').length;
    assert.ok(a >= 8 && a <= 12, `pair-a got ${a} of 20`);
  });

  test('SIGTERM: exits 0', T, async () => {
    const r = await gw.stop();
    assert.deepEqual(r, { code: 0, signal: null });
  });
});

// A connection idle through a reload: its FIRST request afterwards follows the new config.
describe('config hot reload on idle keep-alive connections', { timeout: 60000 }, () => {
  let A, gw;
  const cfgTo = (name) => ({ providers: [{ group: 'rt', name, base: A.url, key: 'sk-up' }], security: [CLIENT_TOKEN] });
  const ask = () =>
    rawRequest({ headers: { authorization: `Bearer ${CLIENT_TOKEN}`, 'content-type': 'application/json' }, body: chatBody('rt') });

  before(async () => {
    A = await startMock();
    gw = await startGateway({ config: cfgTo('rt-old') });
  });
  after(async () => {
    if (gw && !gw.exited()) await gw.stop();
    gw?.cleanup();
    await A?.close();
  });

  test('a retargeted group: the first request on every idle connection goes to the new provider', T, async () => {
    const N = 20;
    const conns = await Promise.all(Array.from({ length: N }, () => rawConnection({ port: gw.port })));
    try {
      const first = await Promise.all(conns.map((c) => c.ask(ask())));
      assert.deepEqual(first.map((r) => r.status), Array(N).fill(200));
      assert.ok(A.stats().requests.every((r) => r.model === 'rt-old'));
      gw.writeConfig(cfgTo('rt-new'), { mode: 'rename' });
      // Applied: a fresh connection (never the idle ones) reaches the new provider.
      await waitFor(
        async () => {
          await gwPost(gw, '/v1/chat/completions', chatBody('rt'));
          return A.stats().requests.at(-1).model === 'rt-new';
        },
        { timeout: APPLY_MS + SLACK_MS, every: 50, what: 'rt-new on a fresh connection' },
      );
      A.reset();
      const after = await Promise.all(conns.map((c) => c.ask(ask())));
      assert.deepEqual(after.map((r) => r.status), Array(N).fill(200));
      const models = A.stats().requests.map((r) => r.model);
      assert.deepEqual(models, Array(N).fill('rt-new'), 'first request after the reload on each idle connection');
    } finally {
      for (const c of conns) c.close();
    }
  });
});
