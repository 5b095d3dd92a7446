// End-to-end: the real gateway binary between raw HTTP / the openai SDK and mock providers.
// Non-streaming behaviour: routing, rewrite, auth, errors, limits, keep-alive, upstream faults.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import OpenAI from 'openai';
import { startMock, answerText } from '../../tools/mock-provider/server.js';
import { startGateway, freePort, closedPort } from './lib/gateway.mjs';
import { request, sha256, waitFor, rawEarlyAnswer } from './lib/http.mjs';
import { CLIENT_TOKEN, CLIENT_TOKEN_2, chatBody, gwPost, gwGet, assertError, accessLines, sleep } from './lib/common.mjs';

const T = { timeout: 30000 };
const FIRST_BYTE_S = 2;
const IDLE_S = 3;
const MAX_BODY = 12_000_000;

function chunkedEncode(text, size) {
  const b = Buffer.from(text);
  const parts = [];
  for (let i = 0; i < b.length; i += size) {
    const p = b.subarray(i, i + size);
    parts.push(Buffer.from(`${p.length.toString(16)}\r\n`), p, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

describe('core (non-streaming)', { timeout: 300000 }, () => {
  let A, B, gw, refusedPort;
  const groups = [];

  before(async () => {
    A = await startMock();
    B = await startMock();
    refusedPort = await closedPort();
    const P = (group, name, base, key = 'sk-provider-a') => {
      groups.includes(group) || groups.push(group);
      return { group, name, base, key };
    };
    const config = {
      providers: [
        P('fast', 'real-model-a', A.url, 'sk-provider-a'),
        P('fast', 'real-model-b', B.url, 'sk-provider-b'),
        P('solo', 'solo-model', A.url),
        P('prefixed', 'prefixed-model', `${A.url}/openai`),
        P('slashed', 'slashed-model', `${A.url}/openai/`),
        P('envkey', 'env-model', A.url, '${OB_E2E_PROVIDER_KEY}'),
        P('tiny', 'tiny-real-model-name', `${A.url}/mode/tiny`),
        P('e500', 'e500-model', `${A.url}/mode/status-500`),
        P('e429', 'e429-model', `${A.url}/mode/status-429`),
        P('e418m', 'e418m-model', `${A.url}/mode/status-418,error-model`),
        P('hang', 'hang-model', `${A.url}/mode/hang`),
        P('hanghead', 'hanghead-model', `${A.url}/mode/hang-after-head`),
        P('drop', 'drop-model', `${A.url}/mode/drop`),
        P('dropmid', 'dropmid-model', `${A.url}/mode/drop-mid-stream`),
        P('refused', 'refused-model', `http://127.0.0.1:${refusedPort}`),
        P('big', 'big-model', `${A.url}/mode/big-3000000`),
        P('chunked', 'chunked-model', `${A.url}/mode/chunked`),
        P('close', 'close-model', `${A.url}/mode/close`),
        P('delay', 'delay-model', `${A.url}/mode/delay-300`),
      ],
      security: [CLIENT_TOKEN, CLIENT_TOKEN_2],
      limits: { max_body_bytes: MAX_BODY },
      timeouts: { connect: 2, first_byte: FIRST_BYTE_S, idle: IDLE_S, total: 60 },
    };
    gw = await startGateway({ config, env: { OB_E2E_PROVIDER_KEY: 'sk-from-env' } });
  });

  after(async () => {
    if (gw && !gw.exited()) await gw.stop();
    await A?.close();
    await B?.close();
    gw?.cleanup();
  });

  const reset = () => {
    A.reset();
    B.reset();
  };
  const allRequests = () => [...A.stats().requests, ...B.stats().requests];

  test('GET /healthz answers 200 without auth', T, async () => {
    const r = await gwGet(gw, '/healthz', { token: null });
    assert.equal(r.status, 200, r.text);
  });

  test('GET /v1/models lists each group once (auth required)', T, async () => {
    const r = await gwGet(gw, '/v1/models');
    assert.equal(r.status, 200, r.text);
    const j = r.json();
    assert.equal(j.object, 'list');
    const ids = j.data.map((m) => m.id);
    assert.deepEqual([...ids].sort(), [...groups].sort(), 'each group exactly once');
    for (const m of j.data) assert.equal(m.object, 'model');
    assertError(await gwGet(gw, '/v1/models', { token: null }), 401, {}, 'GET /v1/models without token');
  });

  test('auth: missing or wrong token -> 401; lowercase "bearer" and a second token accepted', T, async () => {
    reset();
    const body = chatBody('solo');
    assertError(await gwPost(gw, '/v1/chat/completions', body, { token: null }), 401, {}, 'no Authorization');
    assertError(await gwPost(gw, '/v1/chat/completions', body, { token: 'sk-wrong' }), 401, {}, 'wrong token');
    assertError(await gwPost(gw, '/v1/chat/completions', body, { token: `${CLIENT_TOKEN}x` }), 401, {}, 'token with suffix');
    assertError(await gwPost(gw, '/v1/chat/completions', body, { token: CLIENT_TOKEN.slice(0, -1) }), 401, {}, 'token prefix');
    assertError(
      await gwPost(gw, '/v1/chat/completions', body, { token: null, headers: { authorization: `Basic ${CLIENT_TOKEN}` } }),
      401, {}, 'Basic scheme',
    );
    assertError(
      await gwPost(gw, '/v1/chat/completions', body, { token: null, headers: { authorization: CLIENT_TOKEN } }),
      401, {}, 'no scheme',
    );
    assert.equal(allRequests().length, 0, 'unauthenticated requests must not reach a provider');
    const lower = await gwPost(gw, '/v1/chat/completions', body, { token: null, headers: { authorization: `bearer ${CLIENT_TOKEN}` } });
    assert.equal(lower.status, 200, `lowercase bearer: ${lower.text}`);
    const second = await gwPost(gw, '/v1/chat/completions', body, { token: CLIENT_TOKEN_2 });
    assert.equal(second.status, 200, `second token: ${second.text}`);
  });

  test('client errors: 400 broken JSON / missing or non-string model, 404 unknown group', T, async () => {
    reset();
    const cases = [
      ['{"model": "solo", "messages": [', 400, 'broken JSON'],
      ['', 400, 'empty body'],
      ['[1,2,3]', 400, 'JSON array'],
      ['{"messages":[]}', 400, 'missing model'],
      ['{"model": 5, "messages":[]}', 400, 'numeric model'],
      ['{"model": null}', 400, 'null model'],
      ['{"model": ["solo"]}', 400, 'array model'],
      ['{"model": {"name":"solo"}}', 400, 'object model'],
    ];
    for (const [body, status, what] of cases) {
      assertError(await gwPost(gw, '/v1/chat/completions', body), status, {}, what);
    }
    assertError(await gwPost(gw, '/v1/chat/completions', chatBody('no-such-group')), 404, { code: 'model_not_found' }, 'unknown group');
    assertError(await gwPost(gw, '/v1/chat/completions', chatBody('real-model-a')), 404, { code: 'model_not_found' }, 'a target name is not a group');
    assert.equal(allRequests().length, 0, 'refused requests must not reach a provider');
  });

  test('routes: 404 unknown route, 405 wrong method on a /v1/ route', T, async () => {
    assertError(await gwGet(gw, '/no/such/route'), 404, {}, 'GET /no/such/route');
    assertError(await gwPost(gw, '/no/such/route', chatBody('solo')), 404, {}, 'POST /no/such/route');
    assertError(await gwGet(gw, '/v1/chat/completions'), 405, {}, 'GET /v1/chat/completions');
    assertError(await request({ url: `${gw.url}/v1/chat/completions`, method: 'DELETE', headers: { authorization: `Bearer ${CLIENT_TOKEN}` } }), 405, {}, 'DELETE /v1/chat/completions');
  });

  test('round robin: 10 requests to a 2-target group -> 5 and 5', T, async () => {
    reset();
    for (let i = 0; i < 10; i++) {
      const r = await gwPost(gw, '/v1/chat/completions', chatBody('fast'));
      assert.equal(r.status, 200, r.text);
      const j = r.json();
      assert.equal(j.model, 'fast');
      assert.match(j.choices[0].message.content, /^Hello from real-model-[ab]!$/);
    }
    const a = A.stats().requests;
    const b = B.stats().requests;
    assert.equal(a.length, 5, `target a got ${a.length}`);
    assert.equal(b.length, 5, `target b got ${b.length}`);
    assert.ok(a.every((r) => r.model === 'real-model-a'));
    assert.ok(b.every((r) => r.model === 'real-model-b'));
  });

  test('request: only the model value changes; provider key sent, client token not; hop-by-hop dropped', T, async () => {
    reset();
    // Odd spacing, a nested "model", "model" inside a string, escapes and non-ASCII: only the
    // top-level value may change.
    const body =
      '{ "messages" : [ {"role":"user","content":"say \\"model\\": \\"fast\\" — ünïcödé 😀 \\u00e9 \\n"} ],\n' +
      '  "metadata": {"model": "fast", "x": [1, 2.50, -0e0, true, null]},\n' +
      '  "model" :   "fast" ,  "temperature": 0.50,"user":"model"}';
    const headers = {
      'x-custom-header': 'kept',
      connection: 'keep-alive, x-hop-only',
      'x-hop-only': 'must-go',
      'keep-alive': 'timeout=5',
      'proxy-authorization': `Bearer ${CLIENT_TOKEN}`,
      te: 'trailers',
      'accept-encoding': 'gzip, br',
      'user-agent': 'e2e-test/1.0',
    };
    const r = await gwPost(gw, '/v1/chat/completions?api-version=2024-01-01&x=a%20b', body, { headers });
    assert.equal(r.status, 200, r.text);
    const [rec] = allRequests();
    assert.ok(rec, 'the provider got the request');
    const target = rec.model;
    assert.ok(target === 'real-model-a' || target === 'real-model-b', `model sent upstream: ${target}`);
    const expected = body.replace('"model" :   "fast"', `"model" :   "${target}"`);
    assert.equal(rec.body_bytes, Buffer.byteLength(expected), 'upstream body length');
    assert.equal(rec.body_sha256, sha256(expected), `upstream body differs:\n got: ${rec.body}\nwant: ${expected}`);
    assert.equal(rec.path, '/v1/chat/completions?api-version=2024-01-01&x=a%20b');
    const key = target === 'real-model-a' ? 'sk-provider-a' : 'sk-provider-b';
    assert.equal(rec.headers.authorization, `Bearer ${key}`);
    for (const [k, v] of Object.entries(rec.headers)) {
      assert.ok(!String(v).includes(CLIENT_TOKEN), `client token forwarded in header ${k}: ${v}`);
    }
    for (const h of ['x-hop-only', 'keep-alive', 'proxy-authorization', 'te']) {
      assert.equal(rec.headers[h], undefined, `hop-by-hop header ${h} forwarded: ${rec.headers[h]}`);
    }
    assert.ok(
      rec.headers['accept-encoding'] === undefined || rec.headers['accept-encoding'] === 'identity',
      `accept-encoding sent upstream: ${rec.headers['accept-encoding']} (the answer must stay rewritable)`,
    );
    assert.equal(rec.headers['x-custom-header'], 'kept');
    assert.equal(rec.headers['user-agent'], 'e2e-test/1.0');
    assert.equal(rec.headers.host, `127.0.0.1:${target === 'real-model-a' ? A.port : B.port}`);
    // answer: exactly the provider's bytes with the model value replaced by the group name
    const want = rec.response_body.replace(`"model":"${target}"`, '"model":"fast"');
    assert.equal(r.text, want);
    assert.equal(r.headers['content-length'], String(r.body.length));
    assert.match(r.headers['content-type'], /application\/json/);
    assert.equal(r.headers['x-mock-request-id'], String(rec.id), 'end-to-end answer headers pass through');
  });

  test('request model written with a JSON escape is matched and replaced as a whole value', T, async () => {
    reset();
    const body = '{"model":"s\\u006flo","messages":[{"role":"user","content":"x"}]}';
    const r = await gwPost(gw, '/v1/chat/completions', body);
    assert.equal(r.status, 200, r.text);
    const [rec] = A.stats().requests;
    assert.equal(rec.body, '{"model":"solo-model","messages":[{"role":"user","content":"x"}]}');
    assert.equal(r.json().model, 'solo');
  });

  test('base URL path prefix (with and without trailing slash) is kept; ${ENV} provider key', T, async () => {
    reset();
    for (const g of ['prefixed', 'slashed']) {
      const r = await gwPost(gw, '/v1/chat/completions?q=1', chatBody(g));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json().model, g);
    }
    const recs = A.stats().requests;
    assert.equal(recs[0].path, '/openai/v1/chat/completions?q=1');
    assert.equal(recs[1].path, '/openai/v1/chat/completions?q=1');
    const e = await gwPost(gw, '/v1/chat/completions', chatBody('envkey'));
    assert.equal(e.status, 200, e.text);
    assert.equal(A.stats().requests[2].headers.authorization, 'Bearer sk-from-env');
  });

  test('any POST under /v1/ with a group model is proxied, path and upstream status kept', T, async () => {
    reset();
    const r = await gwPost(gw, '/v1/some/new/endpoint?k=v', chatBody('solo'));
    const [rec] = A.stats().requests;
    assert.ok(rec, 'proxied to the provider');
    assert.equal(rec.path, '/v1/some/new/endpoint?k=v');
    assert.equal(rec.model, 'solo-model');
    assert.equal(r.status, 404, 'the provider answered 404 and it passes through');
    assert.equal(r.text, rec.response_body);
  });

  test('openai SDK: chat, completions, embeddings, responses (non-stream)', T, async () => {
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: CLIENT_TOKEN, maxRetries: 0, timeout: 10000 });
    const c = await client.chat.completions.create({ model: 'solo', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(c.model, 'solo');
    assert.equal(c.choices[0].message.content, answerText('solo-model'));
    const t = await client.completions.create({ model: 'solo', prompt: 'hi' });
    assert.equal(t.model, 'solo');
    assert.equal(t.choices[0].text, answerText('solo-model'));
    const e = await client.embeddings.create({ model: 'solo', input: ['a', 'b'] });
    assert.equal(e.model, 'solo');
    assert.equal(e.data.length, 2);
    assert.equal(e.data[0].embedding.length, 8);
    const resp = await client.responses.create({ model: 'solo', input: 'hi' });
    assert.equal(resp.model, 'solo');
    assert.equal(resp.output_text, answerText('solo-model'));
    const models = await client.models.list();
    assert.ok(models.data.some((m) => m.id === 'solo'));
  });

  test('10 MB request body arrives intact except the model value', T, async () => {
    reset();
    const blob = crypto.randomBytes(7_500_000).toString('base64'); // ~10 MB of base64
    const body = `{"model":"solo","messages":[{"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"data:image/png;base64,${blob}"}}]}]}`;
    assert.ok(body.length >= 10_000_000);
    const r = await gwPost(gw, '/v1/chat/completions', body, { timeout: 20000 });
    assert.equal(r.status, 200, r.text.slice(0, 300));
    const [rec] = A.stats().requests;
    const expected = body.replace('"model":"solo"', '"model":"solo-model"');
    assert.equal(rec.body_bytes, Buffer.byteLength(expected));
    assert.equal(rec.body_sha256, sha256(expected));
  });

  test('413 for a body over limits.max_body_bytes', T, async () => {
    reset();
    const pad = 'x'.repeat(MAX_BODY + 1000);
    const body = `{"model":"solo","messages":[{"role":"user","content":"${pad}"}]}`;
    const auth = { authorization: `Bearer ${CLIENT_TOKEN}`, 'content-type': 'application/json' };
    // the client sends the body in pieces and stops when the gateway answers early
    const r = await rawEarlyAnswer({ url: `${gw.url}/v1/chat/completions`, headers: auth, body, timeout: 20000 });
    assert.equal(r.status, 413, `oversized body: status ${r.status}, error ${r.error?.message}, sent ${r.sentBytes} bytes, got ${r.raw.toString().slice(0, 200)}`);
    assertError(r, 413, {}, 'oversized body');
    assert.equal(A.stats().requests.length, 0);
  });

  test('413 for a declared Content-Length over the limit, before the body is sent', T, async () => {
    reset();
    const auth = { authorization: `Bearer ${CLIENT_TOKEN}`, 'content-type': 'application/json' };
    const r2 = await rawEarlyAnswer({
      url: `${gw.url}/v1/chat/completions`,
      headers: { ...auth, 'content-length': String(MAX_BODY + 1) },
      body: '{"model":"solo"',
      timeout: 5000,
    });
    assert.equal(r2.status, 413, `declared oversize: status ${r2.status}, error ${r2.error?.message}`);
    assertError(r2, 413, {}, 'declared oversize Content-Length');
    assert.equal(A.stats().requests.length, 0);
  });

  test('413 for a chunked request body growing past the limit', T, async () => {
    reset();
    const body = `{"model":"solo","messages":[{"role":"user","content":"${'x'.repeat(MAX_BODY + 1000)}"}]}`;
    const auth = { authorization: `Bearer ${CLIENT_TOKEN}`, 'content-type': 'application/json' };
    const r3 = await rawEarlyAnswer({
      url: `${gw.url}/v1/chat/completions`,
      headers: { ...auth, 'transfer-encoding': 'chunked', 'content-length': undefined },
      body: chunkedEncode(body, 65536),
      timeout: 20000,
    });
    assert.equal(r3.status, 413, `oversized chunked body: status ${r3.status}, error ${r3.error?.message}, got ${r3.raw.toString().slice(0, 200)}`);
    assertError(r3, 413, {}, 'oversized chunked body');
    assert.equal(A.stats().requests.length, 0);
  });

  test('keep-alive: 20 sequential requests use far fewer upstream connections', T, async () => {
    reset();
    for (let i = 0; i < 20; i++) {
      const r = await gwPost(gw, '/v1/chat/completions', chatBody('solo'));
      assert.equal(r.status, 200, r.text);
    }
    const s = A.stats();
    assert.equal(s.requests.length, 20);
    assert.ok(s.connections <= 4, `20 requests opened ${s.connections} upstream connections`);
  });

  test('upstream 4xx/5xx pass through with status and body (model rewritten when present)', T, async () => {
    reset();
    let r = await gwPost(gw, '/v1/chat/completions', chatBody('e500'));
    assert.equal(r.status, 500);
    let rec = A.stats().requests.at(-1);
    assert.equal(r.text, rec.response_body);
    r = await gwPost(gw, '/v1/chat/completions', chatBody('e429'));
    assert.equal(r.status, 429);
    rec = A.stats().requests.at(-1);
    assert.equal(r.text, rec.response_body);
    assert.equal(r.headers['retry-after'], '2');
    r = await gwPost(gw, '/v1/chat/completions', chatBody('e418m'));
    assert.equal(r.status, 418);
    rec = A.stats().requests.at(-1);
    assert.equal(r.text, rec.response_body.replace('"model":"e418m-model"', '"model":"e418m"'));
  });

  test('502: upstream refusing connections, dropping, or cut mid-answer', T, async () => {
    for (const g of ['refused', 'drop', 'dropmid']) {
      const t0 = performance.now();
      const r = await gwPost(gw, '/v1/chat/completions', chatBody(g), { timeout: 15000 });
      assertError(r, 502, {}, g);
      assert.ok(performance.now() - t0 < 5000, `${g}: 502 took ${performance.now() - t0} ms`);
    }
  });

  test('504: upstream slower than timeouts.first_byte; the upstream connection is closed', T, async () => {
    reset();
    const t0 = performance.now();
    const r = await gwPost(gw, '/v1/chat/completions', chatBody('hang'), { timeout: 15000 });
    const took = performance.now() - t0;
    assertError(r, 504, {}, 'hang');
    assert.ok(took >= FIRST_BYTE_S * 1000 - 100, `504 after ${took} ms, first_byte is ${FIRST_BYTE_S} s`);
    assert.ok(took < FIRST_BYTE_S * 1000 + 2000, `504 after ${took} ms, first_byte is ${FIRST_BYTE_S} s`);
    const rec = await waitFor(() => A.stats().requests.find((x) => x.aborted), { timeout: 2000, what: 'upstream connection closed' });
    assert.equal(rec.model, 'hang-model');
  });

  test('504: upstream sends the head then stalls longer than timeouts.idle', T, async () => {
    const t0 = performance.now();
    const r = await gwPost(gw, '/v1/chat/completions', chatBody('hanghead'), { timeout: 20000 });
    const took = performance.now() - t0;
    assertError(r, 504, {}, 'hang-after-head');
    assert.ok(took < IDLE_S * 1000 + FIRST_BYTE_S * 1000 + 2000, `took ${took} ms`);
  });

  test('tiny reads: a JSON answer arriving 1-3 bytes at a time is complete and rewritten', T, async () => {
    reset();
    const r = await gwPost(gw, '/v1/chat/completions', chatBody('tiny'));
    assert.equal(r.status, 200, r.text);
    const rec = A.stats().requests.at(-1);
    assert.equal(r.text, rec.response_body.replace('"model":"tiny-real-model-name"', '"model":"tiny"'));
    assert.equal(r.json().choices[0].message.content, answerText('tiny-real-model-name'));
  });

  test('large (3 MB) and chunked-encoded JSON answers are complete and rewritten', T, async () => {
    reset();
    const big = await gwPost(gw, '/v1/chat/completions', chatBody('big'), { timeout: 20000 });
    assert.equal(big.status, 200);
    const bj = big.json();
    assert.equal(bj.model, 'big');
    assert.equal(bj.choices[0].message.content.length, answerText('big-model').length + 3000000);
    assert.equal(big.body.length, A.stats().requests.at(-1).response_bytes - 'big-model'.length + 'big'.length);
    const ch = await gwPost(gw, '/v1/chat/completions', chatBody('chunked'));
    assert.equal(ch.status, 200);
    assert.equal(ch.text, A.stats().requests.at(-1).response_body.replace('"model":"chunked-model"', '"model":"chunked"'));
  });

  test('upstream Connection: close and a slow first byte are handled', T, async () => {
    for (let i = 0; i < 5; i++) {
      const r = await gwPost(gw, '/v1/chat/completions', chatBody('close'));
      assert.equal(r.status, 200, `request ${i}: ${r.text}`);
      assert.equal(r.json().model, 'close');
    }
    const d = await gwPost(gw, '/v1/chat/completions', chatBody('delay'));
    assert.equal(d.status, 200, d.text);
    assert.equal(d.json().model, 'delay');
  });

  test('client keep-alive: many requests on one client connection', T, async () => {
    const http = await import('node:http');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 10; i++) {
        const r = await gwPost(gw, '/v1/chat/completions', chatBody(i % 2 ? 'solo' : 'fast'), { agent });
        assert.equal(r.status, 200, r.text);
      }
      const e = await gwPost(gw, '/v1/chat/completions', chatBody('no-such'), { agent });
      assert.equal(e.status, 404);
      const ok = await gwPost(gw, '/v1/chat/completions', chatBody('solo'), { agent });
      assert.equal(ok.status, 200, 'connection still usable after an error answer');
    } finally {
      agent.destroy();
    }
  });

  test('client request body sent with chunked transfer encoding is forwarded intact', T, async () => {
    reset();
    const http = await import('node:http');
    const body = chatBody('solo', { note: 'x'.repeat(5000) });
    const expected = body.replace('"model":"solo"', '"model":"solo-model"');
    // chunked transfer encoding, in several pieces
    const chunked = await new Promise((resolve, reject) => {
      const req = http.request(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${CLIENT_TOKEN}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
        agent: false,
        timeout: 10000,
      }, (res) => {
        const parts = [];
        res.on('data', (d) => parts.push(d));
        res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(parts).toString() }));
      });
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error('timeout')));
      for (let i = 0; i < body.length; i += 1000) req.write(body.slice(i, i + 1000));
      req.end();
    });
    assert.equal(chunked.status, 200, chunked.text);
    let rec = A.stats().requests.at(-1);
    assert.equal(rec.body_sha256, sha256(expected), 'chunked request body');
  });

  test('client request body after Expect: 100-continue is forwarded intact', T, async () => {
    reset();
    const http = await import('node:http');
    const body = chatBody('solo', { note: 'x'.repeat(5000) });
    const expected = body.replace('"model":"solo"', '"model":"solo-model"');
    let rec;
    const cont = await new Promise((resolve, reject) => {
      let continued = false;
      const req = http.request(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${CLIENT_TOKEN}`,
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(body)),
          expect: '100-continue',
        },
        agent: false,
        timeout: 10000,
      }, (res) => {
        const parts = [];
        res.on('data', (d) => parts.push(d));
        res.on('end', () => resolve({ status: res.statusCode, continued, text: Buffer.concat(parts).toString() }));
      });
      req.on('continue', () => {
        continued = true;
        req.end(body);
      });
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error('no 100 Continue and no answer within 10 s')));
      req.flushHeaders();
    });
    assert.equal(cont.continued, true, 'the gateway sent 100 Continue');
    assert.equal(cont.status, 200, cont.text);
    rec = A.stats().requests.at(-1);
    assert.equal(rec.body_sha256, sha256(expected), 'body after 100-continue');
    assert.equal(rec.headers.expect, undefined, 'Expect is not forwarded');
  });

  // RFC 9110 section 10.1.1: a server ignores 100-continue in an HTTP/1.0 request (such a
  // client may take the 1xx for its answer): it waits for the body, and the first bytes the
  // client gets are the answer.
  test('Expect: 100-continue from an HTTP/1.0 client: no 100 Continue, the answer first', T, async () => {
    reset();
    const net = await import('node:net');
    const body = chatBody('solo');
    const head = `POST /v1/chat/completions HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer ${CLIENT_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\n\r\n`;
    const text = await new Promise((resolve, reject) => {
      const s = net.connect({ port: gw.port, host: '127.0.0.1' }, () => {
        s.write(head);
        setTimeout(() => s.write(body), 300);  // the body after a pause, as a client that waits
      });
      const parts = [];
      s.on('data', (d) => parts.push(d));
      s.on('end', () => resolve(Buffer.concat(parts).toString()));
      s.on('error', reject);
      setTimeout(() => s.destroy(new Error('no answer within 10 s')), 10000);
    });
    assert.match(text, /^HTTP\/1\.1 200 /, text.slice(0, 200));
    assert.doesNotMatch(text, /100 Continue/);
  });

  test('pooled upstream connections closed by the provider while idle are not a client error', T, async () => {
    const C = await startMock({ keepAliveTimeout: 150, keepAliveHint: false });
    const cfg2 = {
      providers: [{ group: 'shortka', name: 'short-model', base: C.url, key: 'sk-c' }],
      security: [CLIENT_TOKEN],
    };
    const g2 = await startGateway({ config: cfg2, workers: 1 });
    try {
      const statuses = [];
      for (let i = 0; i < 8; i++) {
        const r = await gwPost(g2, '/v1/chat/completions', chatBody('shortka'));
        statuses.push(r.status);
        await sleep(i % 2 ? 200 : 140 + i * 3); // around the provider's 150 ms keep-alive timeout
      }
      assert.deepEqual(statuses, Array(8).fill(200));
    } finally {
      const r = await g2.stop();
      g2.cleanup();
      await C.close();
      assert.deepEqual(r, { code: 0, signal: null });
    }
  });

  test('access log: one line per request, no secrets in stderr', T, async () => {
    const before = accessLines(gw).length;
    await gwPost(gw, '/v1/chat/completions', chatBody('solo'));
    await gwPost(gw, '/v1/chat/completions', chatBody('nope'));
    await gwPost(gw, '/v1/chat/completions', chatBody('solo'), { token: 'sk-bad' });
    await sleep(200);
    const lines = accessLines(gw).slice(before);
    assert.equal(lines.length, 3, `lines:\n${lines.map((l) => l._line).join('\n')}`);
    // Workers buffer their access lines and write them every 20 ms (like nginx's buffer= and
    // Envoy's flush interval), so lines of different workers may interleave out of order.
    assert.deepEqual(lines.map((l) => l.status).sort(), ['200', '401', '404']);
    const err = gw.stderr();
    for (const secret of [CLIENT_TOKEN, 'sk-provider-a', 'sk-provider-b', 'sk-from-env', 'sk-bad']) {
      assert.ok(!err.includes(secret), `stderr contains the secret ${secret}`);
    }
  });

  test('SIGTERM: the gateway exits 0', T, async () => {
    const r = await gw.stop();
    assert.deepEqual(r, { code: 0, signal: null }, `exit: ${JSON.stringify(r)}; stderr tail:\n${gw.stderrLines.slice(-5).join('\n')}`);
  });
});
