// End-to-end: the admin listener, /metrics checked by promtool and scraped by a real
// Prometheus, token accounting for every stream (usage injection that clients never see),
// request ids, Server-Timing, JSON access logs with SIGUSR1 rotation, readiness on SIGTERM,
// the live event stream, and that no configured secret ever shows.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { startMock } from '../../tools/mock-provider/server.js';
import { startGateway, freePort, BIN } from './lib/gateway.mjs';
import { request, parseSSE, waitFor } from './lib/http.mjs';
import { accessLines, chatBody, gwPost, gwGet, assertError, sleep } from './lib/common.mjs';
import { promtoolCheck, startPrometheus, prometheusAvailable } from './lib/prometheus.mjs';

const CLIENT = 'sk-client-secret-0b5e';
const PROVIDER_KEY = 'sk-provider-secret-77aa';
const ADMIN_TOKEN = 'adm-secret-c0ffee';
const SECRETS = [CLIENT, PROVIDER_KEY, ADMIN_TOKEN];

// Requests with this suite's client token.
const post = (g, p, body, opts = {}) => gwPost(g, p, body, { token: CLIENT, ...opts });

const adminGet = (gw, p, token = ADMIN_TOKEN) =>
  request({ url: gw.adminUrl + p, headers: token ? { authorization: `Bearer ${token}` } : {} });

// Samples of one metric family from the exposition text: [{labels, value}]
function samples(text, name) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels = {};
    for (const l of (m[3] || '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ labels, value: Number(m[4]) });
  }
  return out;
}
const sum = (list, pred = () => true) => list.filter((s) => pred(s.labels)).reduce((a, s) => a + s.value, 0);

describe('observability', { timeout: 300000 }, () => {
  let A, gw, dir, outputs, adminCfg;
  const config = (mockUrl, extra = {}) => ({
    providers: [
      { group: 'fast', name: 'real-fast', base: mockUrl, key: PROVIDER_KEY },
      { group: 'flaky', name: 'flaky-broken', base: `${mockUrl}/mode/status-500`, key: PROVIDER_KEY },
      { group: 'flaky', name: 'flaky-good', base: mockUrl, key: PROVIDER_KEY },
      { group: 'dead', name: 'dead-model', base: `${mockUrl}/mode/status-503`, key: PROVIDER_KEY },
      { group: 'slow', name: 'slow-model', base: `${mockUrl}/mode/slow-stream-300`, key: PROVIDER_KEY },
    ],
    security: [CLIENT],
    groups: { flaky: { policy: 'round_robin' } },
    health: { consecutive_failures: 3, base_ejection: 60 },
    retry: { budget_ratio: 1, budget_min_per_second: 1000 },
    ...extra,
  });

  before(async () => {
    A = await startMock();
    const adminPort = await freePort();
    adminCfg = { listen: `127.0.0.1:${adminPort}`, token: ADMIN_TOKEN };
    gw = await startGateway({ config: config(A.url, { admin: adminCfg }) });
    gw.adminUrl = `http://127.0.0.1:${adminPort}`;
    dir = gw.dir;
    outputs = [];
  });
  after(async () => {
    await gw?.stop();
    // Nothing the gateway printed or served holds a secret.
    const all = gw.stderr() + '\n' + outputs.join('\n');
    for (const s of SECRETS) assert.ok(!all.includes(s), `secret ${s} appears in an output`);
    gw?.cleanup();
    await A?.close();
  });

  test('the admin API needs its token, except /healthz and /readyz; none of it is on the proxy listener', async () => {
    for (const p of ['/metrics', '/admin/v1/targets', '/admin/v1/config', '/admin/v1/events']) {
      const none = await adminGet(gw, p, null);
      assertError(none, 401, { code: 'invalid_api_key' }, p);
      const wrong = await adminGet(gw, p, 'nope');
      assert.equal(wrong.status, 401, p);
    }
    assert.equal((await adminGet(gw, '/healthz', null)).status, 200);
    const ready = await adminGet(gw, '/readyz', null);
    assert.equal(ready.status, 200, ready.text);
    const m = await adminGet(gw, '/metrics');
    assert.equal(m.status, 200);
    assert.equal(m.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    for (const p of ['/metrics', '/admin/v1/targets', '/admin/v1/config', '/readyz']) {
      const r = await gwGet(gw, p, { token: CLIENT });
      assert.equal(r.status, 404, `${p} on the proxy listener`);
    }
    const cfg = await adminGet(gw, '/admin/v1/config');
    outputs.push(cfg.text);
    assert.equal(cfg.json().providers[0].key, '[redacted]');
    assert.equal(cfg.json().security[0], '[redacted]');
    assert.equal(cfg.json().admin.token, '[redacted]');
  });

  test('request ids: a safe client id is kept and sent upstream, anything else replaced; errors carry one too', async () => {
    A.reset();
    const mine = await post(gw, '/v1/chat/completions', chatBody('fast'), { headers: { 'x-request-id': 'trace-42:abc' } });
    assert.equal(mine.status, 200);
    assert.equal(mine.headers['x-request-id'], 'trace-42:abc');
    assert.equal(A.stats().requests.at(-1).headers['x-request-id'], 'trace-42:abc');
    const unsafe = await post(gw, '/v1/chat/completions', chatBody('fast'), { headers: { 'x-request-id': 'has space"quote' } });
    assert.match(unsafe.headers['x-request-id'], /^[0-9a-f]{32}$/);
    assert.equal(A.stats().requests.at(-1).headers['x-request-id'], unsafe.headers['x-request-id']);
    const none = await post(gw, '/v1/chat/completions', chatBody('fast'));
    assert.match(none.headers['x-request-id'], /^[0-9a-f]{32}$/);
    assert.notEqual(none.headers['x-request-id'], unsafe.headers['x-request-id']);
    const denied = await post(gw, '/v1/chat/completions', chatBody('fast'), { token: 'wrong', headers: { 'x-request-id': 'denied-1' } });
    assert.equal(denied.status, 401);
    assert.equal(denied.headers['x-request-id'], 'denied-1');
    const health = await request({ url: `${gw.url}/healthz` });
    assert.match(health.headers['x-request-id'], /^[0-9a-f]{32}$/);
    await waitFor(() => accessLines(gw).some((l) => l.request_id === 'denied-1'), { what: 'access line with the request id' });
  });

  test('Server-Timing tells the gateway and upstream time of every proxied answer', async () => {
    const r = await post(gw, '/v1/chat/completions', chatBody('fast'));
    const m = /^gateway;dur=(\d+\.\d{3}), upstream;dur=(\d+\.\d{3})$/.exec(r.headers['server-timing'] || '');
    assert.ok(m, `Server-Timing: ${r.headers['server-timing']}`);
    assert.ok(Number(m[1]) >= 0 && Number(m[1]) < 1000);
    assert.ok(Number(m[2]) > 0);
    const s = await post(gw, '/v1/chat/completions', chatBody('fast', { stream: true }));
    assert.match(s.headers['server-timing'] || '', /^gateway;dur=\d+\.\d{3}, upstream;dur=\d+\.\d{3}$/);
  });

  test('a stream whose client did not ask for usage is byte-for-byte what it would be without the injection, and its tokens are counted', async () => {
    // Two fresh mocks (same ids and answers), one gateway that injects and one that does not.
    const M1 = await startMock();
    const M2 = await startMock();
    const on = await startGateway({ config: { providers: [{ group: 'g', name: 'm', base: M1.url, key: PROVIDER_KEY }], security: [CLIENT] } });
    const off = await startGateway({
      config: { providers: [{ group: 'g', name: 'm', base: M2.url, key: PROVIDER_KEY }], security: [CLIENT], metrics: { stream_usage: false } },
    });
    try {
      for (const extra of [{}, { stream_options: {} }, { stream_options: { include_usage: false } }]) {
        const body = chatBody('g', { stream: true, ...extra });
        const a = await post(on, '/v1/chat/completions', body);
        const b = await post(off, '/v1/chat/completions', body);
        assert.equal(a.status, 200);
        // The provider adds "usage": null to every chunk once asked (OpenAI does too); that field
        // may stay. Apart from it: the same bytes, nothing missing, nothing added.
        assert.ok(a.text.includes(',"usage":null'), 'the provider was asked');
        assert.equal(a.text.split(',"usage":null').join(''), b.text, `same bytes for ${JSON.stringify(extra)}`);
        assert.ok(!a.text.includes('"choices":[]'), 'no usage-only chunk reached the client');
        assert.ok(a.text.includes('data: [DONE]'));
        // The provider was asked for usage by one gateway only.
        assert.equal(JSON.parse(M1.stats().requests.at(-1).body).stream_options.include_usage, true);
        assert.notEqual(JSON.parse(M2.stats().requests.at(-1).body).stream_options?.include_usage, true);
      }
      // Counted although the client never saw it: the access line has the usage.
      await waitFor(() => accessLines(on).filter((l) => l.stream === 'true' && l.prompt_tokens === '9').length === 3, {
        what: 'three streams with usage in the access log',
      });
      assert.equal(accessLines(off).filter((l) => l.prompt_tokens).length, 0);
      // A client that asked gets the provider's usage chunk unchanged.
      const asked = await post(on, '/v1/chat/completions', chatBody('g', { stream: true, stream_options: { include_usage: true } }));
      const events = parseSSE(asked.text).events.filter((e) => e.data !== '[DONE]').map((e) => JSON.parse(e.data));
      const usage = events.filter((e) => e.usage && e.choices.length === 0);
      assert.equal(usage.length, 1);
      assert.deepEqual(usage[0].usage, { prompt_tokens: 9, completion_tokens: 12, total_tokens: 21 });
    } finally {
      await on.stop();
      await off.stop();
      on.cleanup();
      off.cleanup();
      await M1.close();
      await M2.close();
    }
  });

  test('/metrics passes promtool, and a real Prometheus scrapes exactly the requests and tokens sent', { skip: !prometheusAvailable() && 'prometheus is not installed' }, async () => {
    const prom = await startPrometheus({ target: gw.adminUrl.replace('http://', ''), bearer: ADMIN_TOKEN });
    try {
      const base = await adminGet(gw, '/metrics');
      const before = {
        requests: sum(samples(base.text, 'openbridge_requests_total')),
        ok: sum(samples(base.text, 'openbridge_requests_total'), (l) => l.code === '200'),
        input: sum(samples(base.text, 'openbridge_tokens_total'), (l) => l.type === 'input'),
        output: sum(samples(base.text, 'openbridge_tokens_total'), (l) => l.type === 'output'),
      };
      let sent = 0;
      let ok = 0;
      const count = (r) => {
        sent++;
        if (r.status === 200) ok++;
        return r;
      };
      // Successes: JSON and streams with and without include_usage (9 in, 12 out each).
      for (let i = 0; i < 6; i++) assert.equal(count(await post(gw, '/v1/chat/completions', chatBody('fast'))).status, 200);
      for (let i = 0; i < 3; i++) count(await post(gw, '/v1/chat/completions', chatBody('fast', { stream: true })));
      for (let i = 0; i < 3; i++)
        count(await post(gw, '/v1/chat/completions', chatBody('fast', { stream: true, stream_options: { include_usage: true } })));
      // Failover: the broken target answers 500, the good one serves (no token from the 500).
      let failovers = 0;
      for (let i = 0; i < 4; i++) {
        const r = count(await post(gw, '/v1/chat/completions', chatBody('flaky')));
        assert.equal(r.status, 200);
        if (r.headers['x-openbridge-attempts'] === '2') failovers++;
      }
      assert.ok(failovers >= 1, 'round robin put the broken target first at least once');
      // Client errors.
      assertError(count(await post(gw, '/v1/chat/completions', chatBody('no-such-group'))), 404);
      assertError(count(await post(gw, '/v1/chat/completions', chatBody('fast'), { token: 'bad' })), 401);
      // A target that always fails: ejected after 3 failures.
      for (let i = 0; i < 3; i++) assert.equal(count(await post(gw, '/v1/chat/completions', chatBody('dead'))).status, 503);
      const tokensSent = ok;  // every 200 answer reports 9 tokens in, 12 out
      // A client that leaves mid-stream.
      const ac = new AbortController();
      const aborted = post(gw, '/v1/chat/completions', chatBody('slow', { stream: true }), { signal: ac.signal, allowError: true }).catch(() => {});
      await sleep(400);
      ac.abort();
      await aborted;
      sent++;
      await waitFor(async () => (await adminGet(gw, '/metrics')).text.includes('openbridge_inflight_requests 0'), { what: 'no request in flight' });

      const now = await adminGet(gw, '/metrics');
      outputs.push(now.text);
      const lint = promtoolCheck(now.text);
      assert.ok(lint.ok, `promtool check metrics: ${lint.output}`);
      const total = sum(samples(now.text, 'openbridge_requests_total')) - before.requests;
      assert.equal(total, sent, 'every request counted once');
      assert.equal(sum(samples(now.text, 'openbridge_requests_total'), (l) => l.code === '200') - before.ok, ok + (/* the aborted stream had answered 200 */ 1));
      const input = sum(samples(now.text, 'openbridge_tokens_total'), (l) => l.type === 'input') - before.input;
      const output = sum(samples(now.text, 'openbridge_tokens_total'), (l) => l.type === 'output') - before.output;
      assert.equal(input, 9 * tokensSent, 'input tokens of every answered request, streams included');
      assert.equal(output, 12 * tokensSent);
      assert.equal(sum(samples(now.text, 'openbridge_failovers_total'), (l) => l.group === 'flaky'), failovers);
      assert.equal(sum(samples(now.text, 'openbridge_upstream_attempts_total'), (l) => l.group === 'flaky' && l.outcome === 'status_5xx'), failovers);
      assert.equal(sum(samples(now.text, 'openbridge_target_up'), (l) => l.group === 'dead'), 0, 'the dead target is down');
      assert.ok(sum(samples(now.text, 'openbridge_target_ejections_total'), (l) => l.group === 'dead' && l.reason === 'consecutive_failures') >= 1);
      assert.ok(sum(samples(now.text, 'gen_ai_server_time_to_first_token_seconds_count'), (l) => l.gen_ai_request_model === 'fast') >= 12);
      assert.ok(sum(samples(now.text, 'gen_ai_server_time_per_output_token_seconds_count')) >= 6);

      // What Prometheus itself stored, after its next scrape.
      await waitFor(
        async () => {
          const r = await prom.query('sum(openbridge_requests_total)');
          return r.length === 1 && r[0].value === before.requests + sent;
        },
        { timeout: 20000, every: 250, what: 'Prometheus to scrape the final counts' },
      );
      const promIn = await prom.query('sum(openbridge_tokens_total{type="input"})');
      assert.equal(promIn[0].value, before.input + input);
      const promOut = await prom.query('sum(gen_ai_client_token_usage_sum{gen_ai_token_type="output"})');
      assert.equal(promOut[0].value, before.output + output);
      const up = await prom.query('openbridge_target_up{group="dead"}');
      assert.equal(up[0].value, 0);
      const targets = await prom.targets();
      assert.equal(targets[0].health, 'up');

      // /readyz names the group with nothing left.
      const ready = await adminGet(gw, '/readyz', null);
      assert.equal(ready.status, 503);
      assert.match(ready.json().reason, /dead/);
    } finally {
      await prom.stop();
    }
  });

  test('targets, reloads and a removed target leaving /metrics', async () => {
    const t = await adminGet(gw, '/admin/v1/targets');
    outputs.push(t.text);
    const list = t.json().targets;
    const dead = list.find((x) => x.group === 'dead');
    assert.equal(dead.state, 'ejected');
    assert.equal(dead.last_ejection_reason, 'consecutive_failures');
    assert.ok(Date.parse(dead.ejected_until) > Date.now());
    assert.equal(list.find((x) => x.model === 'real-fast').state, 'healthy');

    // A refused reload answers 422 with the errors and changes nothing.
    fs.writeFileSync(gw.configPath, '{"providers": 3}');
    const refused = await request({ url: `${gw.adminUrl}/admin/v1/reload`, method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    assert.equal(refused.status, 422, refused.text);
    assert.equal(refused.json().applied, false);
    assert.ok(refused.json().diagnostics.some((d) => d.path === 'providers'));
    // An applied one without the dead group: its target leaves /metrics.
    const cfg = config(A.url, { admin: adminCfg });
    cfg.providers = cfg.providers.filter((p) => p.group !== 'dead');
    fs.writeFileSync(gw.configPath, JSON.stringify(cfg));
    const applied = await request({ url: `${gw.adminUrl}/admin/v1/reload`, method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    assert.equal(applied.status, 200, applied.text);
    const m = await adminGet(gw, '/metrics');
    outputs.push(m.text);
    assert.ok(!m.text.includes('dead-model'), 'the removed target is gone from /metrics');
    assert.ok(sum(samples(m.text, 'openbridge_config_reloads_total'), (l) => l.result === 'applied') >= 1);
    assert.ok(sum(samples(m.text, 'openbridge_config_reloads_total'), (l) => l.result === 'refused') >= 1);
    assert.equal((await adminGet(gw, '/readyz', null)).status, 200);
  });

  test('targets with the same model, host and key, told apart by their base path, and an entry listed twice: no series repeats in /metrics', async () => {
    const adminPort = await freePort();
    const twin = (p) => ({ group: 'twin', name: 'twin-model', base: `${A.url}${p}`, key: PROVIDER_KEY });
    const g2 = await startGateway({
      config: {
        providers: [twin('/east'), twin('/west'), twin('/east')],
        security: [CLIENT],
        admin: { listen: `127.0.0.1:${adminPort}`, token: ADMIN_TOKEN },
      },
    });
    g2.adminUrl = `http://127.0.0.1:${adminPort}`;
    try {
      // Round robin over the three entries: /east (listed twice) serves 4, /west 2.
      for (let i = 0; i < 6; i++) assert.equal((await post(g2, '/v1/chat/completions', chatBody('twin'))).status, 200);
      const m = await adminGet(g2, '/metrics');
      outputs.push(m.text);
      // A scrape with a series twice is refused by Prometheus (promtool does not check it).
      const seen = new Set();
      const repeated = [];
      for (const line of m.text.split('\n')) {
        if (!line || line.startsWith('#')) continue;
        const series = line.slice(0, line.lastIndexOf(' '));
        if (seen.has(series)) repeated.push(series);
        seen.add(series);
      }
      assert.deepEqual(repeated, [], 'every series once');
      const up = samples(m.text, 'openbridge_target_up').filter((x) => x.labels.group === 'twin');
      assert.equal(up.length, 2, `one series per target (the entry listed twice is one): ${JSON.stringify(up)}`);
      assert.ok(up.every((x) => x.labels.target.startsWith('twin-model@127.0.0.1:')), JSON.stringify(up));
      const served = samples(m.text, 'openbridge_requests_total').filter((x) => x.labels.group === 'twin');
      assert.deepEqual(served.map((x) => x.value).sort(), [2, 4], `requests by target: ${JSON.stringify(served)}`);
      assert.equal(new Set(served.map((x) => x.labels.target)).size, 2);
      assert.ok(promtoolCheck(m.text).ok, promtoolCheck(m.text).output);
    } finally {
      await g2.stop();
      g2.cleanup();
    }
  });

  test('the live event stream shows access and reload records as they happen', async () => {
    const got = [];
    const ac = new AbortController();
    const done = request({
      url: `${gw.adminUrl}/admin/v1/events`,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      signal: ac.signal,
      allowError: true,
      timeout: 15000,
      onChunk: (c) => got.push(c.toString('utf8')),
    }).catch(() => {});
    await sleep(300);
    const r = await post(gw, '/v1/chat/completions', chatBody('fast'), { headers: { 'x-request-id': 'event-probe-1' } });
    assert.equal(r.status, 200);
    await waitFor(() => got.join('').includes('"request_id":"event-probe-1"'), { timeout: 3000, what: 'the access record on the event stream' });
    ac.abort();
    await done;
    const text = got.join('');
    outputs.push(text);
    const rec = parseSSE(text).events.map((e) => JSON.parse(e.data)).find((e) => e.request_id === 'event-probe-1');
    assert.equal(rec.type, 'access');
    assert.equal(rec.group, 'fast');
    assert.equal(rec.status, 200);
    assert.ok(parseSSE(text).events.some((e) => JSON.parse(e.data).type === 'reload'), 'the reloads are there too');
  });
});

describe('observability: process', { timeout: 120000 }, () => {
  test('/readyz turns 503 at SIGTERM while requests drain, before the listener closes', async () => {
    const A = await startMock();
    const gw = await startGateway({ config: { providers: [{ group: 'g', name: 'm', base: `${A.url}/mode/delay-1500`, key: 'k' }], security: [CLIENT] } });
    try {
      assert.equal((await request({ url: `${gw.adminUrl}/readyz` })).status, 200);
      const slow = post(gw, '/v1/chat/completions', chatBody('g'));
      await sleep(200);
      gw.proc.kill('SIGTERM');
      const r = await waitFor(async () => {
        const x = await request({ url: `${gw.adminUrl}/readyz`, allowError: true, timeout: 1000 }).catch(() => null);
        return x && x.status === 503 ? x : null;
      }, { timeout: 1000, every: 20, what: '/readyz 503' });
      assert.equal(r.json().reason, 'shutting down');
      assert.equal((await slow).status, 200, 'the request in flight still finishes');
      const exit = await gw.stop();
      assert.equal(exit.code, 0);
    } finally {
      gw.cleanup();
      await A.close();
    }
  });

  test('admin without a token: a foreign Host or Origin gets 403 (DNS rebinding, cross-site); a rotated token ends its event stream', async () => {
    const A = await startMock();
    const config = { providers: [{ group: 'g', name: 'm', base: A.url, key: 'k' }], security: [CLIENT] };
    const gw = await startGateway({ config });
    try {
      const get = (headers) => request({ url: `${gw.adminUrl}/admin/v1/config`, headers, allowError: true });
      assert.equal((await get({})).status, 200);
      assert.equal((await get({ host: `localhost:${gw.adminPort}` })).status, 200);
      const rebound = await get({ host: `attacker.example:${gw.adminPort}` });
      assert.equal(rebound.status, 403, rebound.text);
      assert.equal(rebound.json().error.code, 'forbidden');
      const post = await request({ url: `${gw.adminUrl}/admin/v1/reload`, method: 'POST', headers: { origin: 'https://attacker.example' }, allowError: true });
      assert.equal(post.status, 403, post.text);
      assert.equal((await request({ url: `${gw.adminUrl}/healthz`, headers: { host: '10.1.2.3' } })).status, 200);

      // With a token: an events stream opened with it ends once a reload changes it.
      gw.writeConfig({ ...config, admin: { listen: `127.0.0.1:${gw.adminPort}`, token: 'adm-old' } });
      let applied = await request({ url: `${gw.adminUrl}/admin/v1/reload`, method: 'POST', allowError: true });
      assert.equal(applied.status, 200, applied.text);
      let ended = null;
      const t0 = performance.now();
      const stream = request({ url: `${gw.adminUrl}/admin/v1/events`, headers: { authorization: 'Bearer adm-old' }, allowError: true, timeout: 8000 })
        .then((r) => (ended = { status: r.status, ms: performance.now() - t0 }))
        .catch((e) => (ended = { error: e.message }));
      await sleep(300);
      assert.equal(ended, null, 'the stream is open');
      gw.writeConfig({ ...config, admin: { listen: `127.0.0.1:${gw.adminPort}`, token: 'adm-new' } });
      applied = await request({ url: `${gw.adminUrl}/admin/v1/reload`, method: 'POST', headers: { authorization: 'Bearer adm-old' }, allowError: true });
      assert.equal(applied.status, 200, applied.text);
      const reloadedAt = performance.now() - t0;
      await stream;
      assert.equal(ended.status, 200, JSON.stringify(ended));
      assert.ok(ended.ms - reloadedAt < 1500, `the stream ended ${Math.round(ended.ms - reloadedAt)} ms after the reload`);
      assert.equal((await request({ url: `${gw.adminUrl}/admin/v1/config`, headers: { authorization: 'Bearer adm-old' }, allowError: true })).status, 401);
    } finally {
      await gw.stop();
      gw.cleanup();
      await A.close();
    }
  });

  test('a second instance with the same admin port stops with an error naming --admin-listen', async () => {
    const A = await startMock();
    const gw = await startGateway({ config: { providers: [{ group: 'g', name: 'm', base: A.url, key: 'k' }], security: [CLIENT] } });
    try {
      const port = await freePort();
      const cfg = path.join(gw.dir, 'second.json');
      fs.writeFileSync(cfg, JSON.stringify({ providers: [{ group: 'g', name: 'm', base: A.url, key: 'k' }], security: [CLIENT] }));
      const second = spawn(BIN, ['--config', cfg, '--listen', `127.0.0.1:${port}`, '--admin-listen', `127.0.0.1:${gw.adminPort}`], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      second.stderr.on('data', (d) => (err += d));
      const code = await new Promise((r) => {
        const t = setTimeout(() => {
          second.kill('SIGKILL');
          r('timeout');
        }, 10000);
        second.once('exit', (c) => {
          clearTimeout(t);
          r(c);
        });
      });
      assert.equal(code, 1, err);
      assert.match(err, /admin listener 127\.0\.0\.1:\d+: Address already in use; choose another address with --admin-listen/);
      assert.equal((await post(gw, '/v1/chat/completions', chatBody('g'))).status, 200, 'the first one still serves');
    } finally {
      await gw.stop();
      gw.cleanup();
      await A.close();
    }
  });

  test('a reload that drops the admin token does not open a non-loopback admin listener', async () => {
    const A = await startMock();
    const adminPort = await freePort();
    const base = { providers: [{ group: 'g', name: 'm', base: A.url, key: 'k' }], security: [CLIENT] };
    // Bound on every interface (the test talks to it on 127.0.0.1 only).
    const gw = await startGateway({ config: { ...base, admin: { listen: `0.0.0.0:${adminPort}`, token: ADMIN_TOKEN } } });
    try {
      const url = `http://127.0.0.1:${adminPort}/metrics`;
      assert.equal((await request({ url })).status, 401);
      // The reload's own address is loopback and has no token: it is valid, and applied...
      gw.writeConfig({ ...base, admin: { listen: `127.0.0.1:${adminPort}` } });
      gw.sighup();
      await waitFor(() => /config reloaded/.test(gw.stderr()), { what: 'the reload' });
      // ...but the listener bound at start is still on every interface: still closed.
      assert.equal((await request({ url })).status, 401);
      gw.writeConfig({ ...base, admin: false });
      gw.sighup();
      await waitFor(() => (gw.stderr().match(/config reloaded/g) || []).length >= 2, { what: 'the second reload' });
      assert.equal((await request({ url })).status, 401);
      assert.equal((await request({ url: `http://127.0.0.1:${adminPort}/healthz` })).status, 200);
    } finally {
      await gw.stop();
      gw.cleanup();
      await A.close();
    }
  });

  test('a non-loopback admin address without a token is refused at config check', async () => {
    const { runBin } = await import('./lib/gateway.mjs');
    const dir = fs.mkdtempSync(path.join((await import('node:os')).tmpdir(), 'ob-adm-'));
    const p = path.join(dir, 'c.json');
    fs.writeFileSync(p, JSON.stringify({ providers: [{ group: 'g', name: 'm', base: 'http://127.0.0.1:9', key: 'k' }], security: ['t'], admin: { listen: '0.0.0.0:9901' } }));
    const r = runBin(['--check-config', p]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /admin\.listen: "0\.0\.0\.0:9901" is not a loopback address: set admin\.token/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  // log.access "errors" and "off", headers.server_timing false, each applied by a reload.
  test('access lines of failed requests only, then none, then all again; Server-Timing off and on', async () => {
    const A = await startMock();
    const dirLog = fs.mkdtempSync(path.join((await import('node:os')).tmpdir(), 'ob-log-'));
    const file = path.join(dirLog, 'access.log');
    const cfg = (access, serverTiming, requestId = true) => ({
      providers: [{ group: 'g', name: 'm', base: A.url, key: PROVIDER_KEY }],
      security: [CLIENT],
      log: { format: 'json', file, access },
      headers: { server_timing: serverTiming, request_id: requestId },
    });
    const gw = await startGateway({ config: cfg('errors', false, false) });
    const ask = (id, { group = 'g', ...opts } = {}) => post(gw, '/v1/chat/completions', chatBody(group), { headers: { 'x-request-id': id }, ...opts });
    const logged = () => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
      .filter((o) => o.type === 'access').map((o) => o.request_id);
    // Waits until the answer's Server-Timing says the reload is in (a request the old config answered may be logged).
    const until = (want) => waitFor(async () => ('server-timing' in (await ask('probe')).headers) === want, { timeout: 5000, every: 50, what: `server-timing ${want}` });
    try {
      const ok = await ask('ok-1');
      assert.equal(ok.status, 200);
      assert.ok(!('server-timing' in ok.headers), 'server_timing false: no Server-Timing');
      const bad = await ask('bad-1', { token: 'sk-wrong' });
      assert.equal(bad.status, 401);
      const nf = await ask('nf-1', { group: 'nope' });
      assert.equal(nf.status, 404);
      const health = await gwGet(gw, '/healthz');
      assert.equal(health.status, 200);
      for (const r of [ok, bad, nf, health]) assert.ok(!('x-request-id' in r.headers), `request_id false: no x-request-id (${r.status})`);
      assert.equal(A.stats().requests.at(-1).headers['x-request-id'], 'ok-1', 'the provider still gets the id');
      await sleep(200);  // lines are written within 20 ms
      // Sorted: each worker thread writes its own batches, so lines of two connections may come in either order.
      assert.deepEqual(logged().sort(), ['bad-1', 'nf-1'], 'errors: only the failed requests (with their ids)');

      gw.writeConfig(cfg('off', true), { mode: 'rename' });
      await until(true);
      await sleep(100);  // the log settings are applied just after the new config is in place
      const before = logged().length;
      const ok2 = await ask('ok-2');
      assert.equal(ok2.status, 200);
      assert.equal(ok2.headers['x-request-id'], 'ok-2');
      assert.equal((await ask('bad-2', { token: 'sk-wrong' })).status, 401);
      await sleep(200);
      assert.equal(logged().length, before, 'off: no line');
      assert.ok(!logged().includes('bad-2'));

      gw.writeConfig(cfg('all', false), { mode: 'rename' });
      await until(false);
      await sleep(100);
      assert.equal((await ask('ok-3')).status, 200);
      await sleep(200);
      const ids = logged();
      assert.ok(ids.includes('ok-3'), 'all: every request again');
      assert.ok(!ids.includes('ok-1') && !ids.includes('ok-2') && !ids.includes('bad-2'));
    } finally {
      await gw.stop();
      gw.cleanup();
      fs.rmSync(dirLog, { recursive: true, force: true });
      await A.close();
    }
  });

  test('JSON access lines go to the log file, SIGUSR1 reopens it and no line is lost', async () => {
    const A = await startMock();
    const dirLog = fs.mkdtempSync(path.join((await import('node:os')).tmpdir(), 'ob-log-'));
    const file = path.join(dirLog, 'access.log');
    const gw = await startGateway({
      config: { providers: [{ group: 'g', name: 'm', base: A.url, key: PROVIDER_KEY }], security: [CLIENT], log: { format: 'json', file } },
    });
    try {
      const total = 300;
      let sentN = 0;
      const load = (async () => {
        for (let i = 0; i < total; i++) {
          const r = await post(gw, '/v1/chat/completions', chatBody('g'), { headers: { 'x-request-id': `rot-${i}` } });
          assert.equal(r.status, 200);
          sentN++;
        }
      })();
      const rotated = [];
      for (let k = 0; k < 3; k++) {
        await sleep(150);
        const to = `${file}.${k}`;
        fs.renameSync(file, to);
        rotated.push(to);
        gw.proc.kill('SIGUSR1');
      }
      await load;
      await sleep(200);  // the last batch is written within 20 ms
      const lines = [...rotated, file].flatMap((f) => fs.readFileSync(f, 'utf8').split('\n').filter(Boolean));
      const ids = lines.map((l) => JSON.parse(l)).filter((o) => o.type === 'access').map((o) => o.request_id);
      assert.equal(sentN, total);
      assert.equal(ids.length, total, 'every access line exactly once');
      assert.equal(new Set(ids).size, total);
      assert.ok(rotated.some((f) => fs.statSync(f).size > 0), 'lines went to the rotated files too');
      const text = lines.join('\n');
      for (const s of SECRETS) assert.ok(!text.includes(s), `secret ${s} in the access log`);
      const one = JSON.parse(lines.at(-1));
      for (const k of ['time', 'request_id', 'client', 'method', 'path', 'group', 'target', 'status', 'duration_ms', 'upstream_ms', 'overhead_ms', 'prompt_tokens', 'outcome'])
        assert.ok(k in one, `field ${k}`);
    } finally {
      await gw.stop();
      gw.cleanup();
      fs.rmSync(dirLog, { recursive: true, force: true });
      await A.close();
    }
  });
});
