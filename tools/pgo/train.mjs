#!/usr/bin/env node
// The training run of a profile-guided build (scripts/build-pgo): drives a gateway binary with
// the traffic a deployment serves, so the compiler learns which paths are hot. Every answer is
// checked (status, and `model` rewritten to the group), so a run that fails is reported, not
// turned into a profile of error paths.
//
//   node tools/pgo/train.mjs --bin build-pgo-gen/openbridge [--scale 1]
//
// Traffic (all against the bundled mock provider, on 127.0.0.1 only): chat completions, JSON and
// SSE (events 1 ms apart, as providers send them, and all at once), over plain HTTP/1.1, over
// TLS and over HTTP/2; a group whose provider is reached over HTTPS; a few percent of other
// routes (models, embeddings, responses, legacy completions, an Anthropic-dialect target) and of
// refusals (no token, unknown model, broken JSON); /metrics scraped once a second, as Prometheus
// does. JSON access log and admin listener on, as in the benchmark's "ours".
// --scale multiplies the request counts (default 1: ~16,000 requests, ~5 s on 2 cores with an
// instrumented binary). Exits 0 when every answer was right and the gateway exited cleanly
// (its profile is written at exit), 1 otherwise, and 1 after 10 minutes whatever happens.
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';

// Never a build that waits forever: whatever hangs, the run fails.
setTimeout(() => {
  console.error('pgo-train: gave up after 10 minutes');
  process.exit(1);
}, 600000).unref();

const { values: args } = parseArgs({
  options: { bin: { type: 'string' }, scale: { type: 'string', default: '1' } },
});
if (!args.bin) {
  console.error('usage: train.mjs --bin PATH [--scale N]');
  process.exit(2);
}
process.env.OPENBRIDGE_BIN = path.resolve(args.bin);
const scale = Number(args.scale);
if (!(scale > 0)) {
  console.error('--scale: a positive number');
  process.exit(2);
}
// Imported after OPENBRIDGE_BIN is set: the helper reads it when it loads.
const { startGateway, freePort } = await import('../../tests/e2e/lib/gateway.mjs');
const { makeTestCA } = await import('../../tests/e2e/lib/tls.mjs');
const { startMock } = await import('../mock-provider/server.js');

const TOKEN = 'sk-train-client';
const ADMIN_TOKEN = 'train-admin';
const n = (x) => Math.max(1, Math.round(x * scale));
const log = (s) => console.error(`pgo-train: ${s}`);

// A ~1 KB chat request, as the benchmark sends.
const prompt = 'Summarise the following text in one sentence. '.repeat(20);
const chat = (model, stream) =>
  JSON.stringify({
    model,
    messages: [
      { role: 'system', content: 'You are a helpful assistant.' },
      { role: 'user', content: prompt },
    ],
    temperature: 0.7,
    ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
  });

const failures = [];
const fail = (what, detail) => {
  if (failures.length < 20) failures.push(`${what}: ${detail}`);
  else failures.length++;
};

// Checks a finished answer: status, and for 200s the group name in every `model` field (each
// SSE event's too), at least one of them.
function check(what, group, status, body, want = 200) {
  if (status !== want) return fail(what, `status ${status}, want ${want}: ${body.slice(0, 200)}`);
  if (want !== 200 || !group) return;
  let models = 0;
  for (const m of body.matchAll(/"model":\s*"([^"]*)"/g)) {
    if (m[1] !== group) return fail(what, `"model":"${m[1]}" reached the client, not "${group}": ${body.slice(0, 200)}`);
    models++;
  }
  if (!models) fail(what, `no "model":"${group}" in ${body.slice(0, 200)}`);
}

function h1(agent, url, { method = 'POST', body, token = TOKEN, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const h = { ...headers };
    if (token) h.authorization = `Bearer ${token}`;
    if (body !== undefined) {
      h['content-type'] = 'application/json';
      h['content-length'] = Buffer.byteLength(body);
    }
    const req = (u.protocol === 'https:' ? https : http).request(
      { method, hostname: u.hostname, port: u.port, path: u.pathname, headers: h, agent },
      (res) => {
        const parts = [];
        res.on('data', (c) => parts.push(c));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(parts).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.setTimeout(30000, () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

function h2(session, p, { method = 'POST', body, token = TOKEN } = {}) {
  return new Promise((resolve, reject) => {
    const h = { ':method': method, ':path': p };
    if (token) h.authorization = `Bearer ${token}`;
    if (body !== undefined) h['content-type'] = 'application/json';
    const req = session.request(h, { endStream: body === undefined });
    let status = 0;
    let ended = false;
    const parts = [];
    req.on('response', (hd) => (status = hd[':status']));
    req.on('data', (c) => parts.push(c));
    req.on('end', () => {
      ended = true;
      resolve({ status, body: Buffer.concat(parts).toString('utf8') });
    });
    req.on('error', reject);
    // A stream closed without its end (reset, or the session gone) raises no error of its own.
    req.on('close', () => ended || reject(new Error(`stream closed before its end (code ${req.rstCode})`)));
    req.setTimeout(30000, () => {
      reject(new Error('timed out'));
      req.close(http2.constants.NGHTTP2_CANCEL);
    });
    if (body !== undefined) req.end(body);
  });
}

// Runs `count` calls of `one(i)` with `width` of them in flight.
async function lane(name, count, width, one) {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(width, count) }, async () => {
      while (next < count) {
        const i = next++;
        try {
          await one(i);
        } catch (e) {
          fail(name, e.message);
        }
      }
    }),
  );
  log(`${name}: ${count} requests in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

const ca = makeTestCA();
process.on('exit', () => ca.cleanup());
const mock = await startMock();
const mockTls = await startMock({ tls: { cert: ca.certPem, key: ca.keyPem } });
const tlsPort = await freePort();
const adminPort = await freePort();
const up = mock.url;
const config = {
  providers: [
    { group: 'fast', name: 'real-fast', base: up, key: 'sk-up' },
    { group: 'fast', name: 'real-fast-2', base: up, key: 'sk-up-2' },
    { group: 'stream', name: 'real-stream', base: `${up}/mode/slow-stream-0`, key: 'sk-up' },
    { group: 'paced', name: 'real-paced', base: up, key: 'sk-up' },
    { group: 'secure', name: 'real-secure', base: mockTls.url, key: 'sk-up' },
    { group: 'claude', name: 'real-claude', base: up, key: 'sk-up', api: 'anthropic' },
  ],
  security: [TOKEN],
  tls: { listen: `127.0.0.1:${tlsPort}`, cert: ca.cert, key: ca.key },
  log: { format: 'json', file: path.join(ca.dir, 'access.log') },
  admin: { listen: `127.0.0.1:${adminPort}`, token: ADMIN_TOKEN },
};
const gw = await startGateway({ config, workers: 2, env: { SSL_CERT_FILE: ca.caCert } });
// startGateway waits for the plain listener only; the TLS and admin ones open just after it.
const accepts = (port) =>
  new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
for (const port of [tlsPort, adminPort])
  for (let i = 0; !(await accepts(port)); i++) {
    if (i >= 200) throw new Error(`the gateway does not accept on ${port}:\n${gw.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
const plain = gw.url;
const secure = `https://127.0.0.1:${tlsPort}`;
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const tlsAgent = new https.Agent({ keepAlive: true, maxSockets: 64, ca: ca.caCertPem });
const adminAgent = new http.Agent({ keepAlive: true });

let scraping = true;
const scraper = (async () => {
  while (scraping) {
    const r = await h1(adminAgent, `http://127.0.0.1:${adminPort}/metrics`, { method: 'GET', token: ADMIN_TOKEN }).catch((e) => ({ status: 0, body: e.message }));
    if (r.status !== 200) fail('metrics', `status ${r.status}`);
    await new Promise((res) => setTimeout(res, 1000));
  }
})();

const post = (base, ag, group, stream) => async () => {
  const r = await h1(ag, `${base}/v1/chat/completions`, { body: chat(group, stream) });
  check(`${group}${stream ? ' stream' : ''} ${base}`, group, r.status, r.body);
  if (stream && !r.body.includes('data: [DONE]')) fail(`${group} stream`, 'no [DONE]');
};

const t0 = performance.now();
let sessions = [];
try {
  sessions = await Promise.all(
    [0, 1].map(
      () =>
        new Promise((resolve, reject) => {
          const s = http2.connect(secure, { ca: ca.caCertPem, servername: 'localhost' });
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        }),
    ),
  );
  const h2chat = (group, stream) => async (i) => {
    const r = await h2(sessions[i % 2], '/v1/chat/completions', { body: chat(group, stream) });
    check(`h2 ${group}${stream ? ' stream' : ''}`, group, r.status, r.body);
    if (stream && !r.body.includes('data: [DONE]')) fail(`h2 ${group} stream`, 'no [DONE]');
  };
  const misc = [
    async () => check('models', null, (await h1(agent, `${plain}/v1/models`, { method: 'GET' })).status, ''),
    async () => check('healthz', null, (await h1(agent, `${plain}/healthz`, { method: 'GET', token: null })).status, ''),
    async () => {
      const r = await h1(agent, `${plain}/v1/embeddings`, { body: JSON.stringify({ model: 'fast', input: 'hello' }) });
      check('embeddings', 'fast', r.status, r.body);
    },
    async () => {
      const r = await h1(agent, `${plain}/v1/responses`, { body: JSON.stringify({ model: 'fast', input: prompt, stream: true }) });
      check('responses stream', 'fast', r.status, r.body);
      if (!r.body.includes('response.completed')) fail('responses stream', 'no response.completed');
    },
    async () => {
      const r = await h1(agent, `${plain}/v1/completions`, { body: JSON.stringify({ model: 'fast', prompt }) });
      check('completions', 'fast', r.status, r.body);
    },
    post(plain, agent, 'claude', false),
    post(plain, agent, 'claude', true),
    async () => {
      const r = await h1(agent, `${plain}/v1/chat/completions`, { body: chat('fast', false), token: 'sk-wrong' });
      check('bad token', null, r.status, r.body, 401);
    },
    async () => {
      const r = await h1(agent, `${plain}/v1/chat/completions`, { body: chat('no-such-group', false) });
      check('unknown model', null, r.status, r.body, 404);
    },
    async () => {
      const r = await h1(agent, `${plain}/v1/chat/completions`, { body: '{"model": "fast", "messages": [' });
      check('broken JSON', null, r.status, r.body, 400);
    },
  ];
  await Promise.all([
    lane('HTTP/1.1 JSON', n(4000), 16, post(plain, agent, 'fast', false)),
    lane('HTTP/1.1 SSE', n(1500), 8, post(plain, agent, 'stream', true)),
    lane('HTTP/1.1 SSE, events 1 ms apart', n(500), 8, post(plain, agent, 'paced', true)),
    lane('TLS JSON', n(3000), 16, post(secure, tlsAgent, 'fast', false)),
    lane('TLS SSE', n(1500), 8, post(secure, tlsAgent, 'stream', true)),
    lane('HTTP/2 JSON', n(2000), 32, h2chat('fast', false)),
    lane('HTTP/2 SSE', n(1000), 16, h2chat('stream', true)),
    lane('upstream over HTTPS', n(1500), 8, post(plain, agent, 'secure', false)),
    lane('other routes and refusals', n(1000), 4, (i) => misc[i % misc.length]()),
  ]);
} catch (e) {
  fail('training', e.stack || e.message);
} finally {
  scraping = false;
  await scraper;
  for (const s of sessions) s.close();
  agent.destroy();
  tlsAgent.destroy();
  adminAgent.destroy();
}
const exit = await gw.stop({ timeout: 30000 });
await mock.close();
await mockTls.close();
if (exit.code !== 0) fail('gateway exit', `${JSON.stringify(exit)}; stderr:\n${gw.stderr().slice(-2000)}`);
gw.cleanup();
log(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
if (failures.length) {
  log(`${failures.length} failures:\n  ${failures.filter(Boolean).join('\n  ')}`);
  process.exit(1);
}
