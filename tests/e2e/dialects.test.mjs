// End-to-end: providers beyond OpenAI's exact layout, against the real binary and the mock
// provider (which records the path, query and headers it received: tools/mock-provider/README.md).
//
// The contract under test (docs/PROVIDERS.md, docs/CONFIGURATION.md "Upstream path"):
//   - api "azure": /openai/deployments/{name}/{op}?api-version=... (or /openai/v1/{op} with
//     api_version "v1"), key in api-key, answers' model rewritten to the group name;
//   - a base whose path holds a version segment (/v1, /openai/v1, /v1beta/openai) is the API
//     root: the client's leading /v1 is not sent twice;
//   - auth modes and configured headers: the provider gets exactly the configured credential
//     header and extra headers, never the client's Authorization;
//   - a group mixing azure and openai targets fails over between them.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import OpenAI, { toFile } from 'openai';
import { startMock, answerText, speechBytes } from '../../tools/mock-provider/server.js';
import { startGateway, runBin } from './lib/gateway.mjs';
import { request, waitFor } from './lib/http.mjs';
import { CLIENT_TOKEN, chatBody, gwPost, accessLines, assertError } from './lib/common.mjs';

const T = { timeout: 60000 };
const messages = [{ role: 'user', content: 'Hi' }];
const now = () => performance.timeOrigin + performance.now(); // the mock's t_* clock

// The mock's requests since the last reset, minus health checks.
function hits(m) {
  return m.stats().requests.filter((r) => r.method === 'POST');
}

// The auth-ish headers a provider received (lower-cased names).
function credentialHeaders(rec) {
  const out = {};
  for (const n of ['authorization', 'api-key', 'x-api-key']) if (n in rec.headers) out[n] = rec.headers[n];
  return out;
}

describe('provider dialects', () => {
  let mock, gw, sdk;

  before(async () => {
    mock = await startMock();
    const u = mock.url;
    gw = await startGateway({
      env: { OB_E2E_TITLE: 'Title From Env' },
      config: {
        providers: [
          { group: 'azure', name: 'dep-1', base: u, key: 'az-key', api: 'azure' },
          { group: 'azure-v1', name: 'dep-2', base: u, key: 'az-key', api: 'azure', api_version: 'v1' },
          { group: 'azure-preview', name: 'dep-3', base: u, key: 'az-key', api: 'azure', api_version: '2025-01-01-preview' },
          { group: 'gemini', name: 'gemini-2.0-flash', base: `${u}/v1beta/openai`, key: 'gm-key' },
          { group: 'groq', name: 'llama-3.3-70b', base: `${u}/openai/v1`, key: 'gq-key' },
          { group: 'ollama', name: 'llama3.2', base: `${u}/v1`, key: '' },
          { group: 'ollama-slash', name: 'llama3.2', base: `${u}/v1/`, key: '' },
          {
            group: 'router',
            name: 'openai/gpt-4o',
            base: `${u}/api/v1`,
            key: 'or-key',
            headers: { 'HTTP-Referer': 'https://app.example', 'X-Title': '${OB_E2E_TITLE}' },
          },
          { group: 'xkey', name: 'x-model', base: u, key: 'x-secret', auth: 'x-api-key', headers: { 'anthropic-version': '2023-06-01' } },
          { group: 'noauth', name: 'n-model', base: u, key: 'unused', auth: 'none' },
        ],
        security: [CLIENT_TOKEN],
      },
    });
    sdk = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: CLIENT_TOKEN, maxRetries: 0, timeout: 10000 });
  });

  after(async () => {
    await gw?.stop();
    await mock?.close();
  });

  test('azure deployment: SDK chat, path + api-version, api-key, model rewritten', T, async () => {
    mock.reset();
    const c = await sdk.chat.completions.create({ model: 'azure', messages });
    assert.equal(c.model, 'azure');
    assert.equal(c.choices[0].message.content, answerText('dep-1'));
    const [h] = hits(mock);
    assert.equal(h.path, '/openai/deployments/dep-1/chat/completions?api-version=2024-10-21');
    assert.equal(h.layout, 'azure');
    assert.equal(h.deployment, 'dep-1');
    assert.deepEqual(credentialHeaders(h), { 'api-key': 'az-key' });
    assert.equal(h.model, 'dep-1');
  });

  test('azure deployment: SDK stream and embeddings', T, async () => {
    mock.reset();
    const stream = await sdk.chat.completions.create({ model: 'azure', messages, stream: true });
    let text = '';
    for await (const chunk of stream) {
      assert.equal(chunk.model, 'azure');
      text += chunk.choices[0]?.delta?.content ?? '';
    }
    assert.equal(text, answerText('dep-1'));
    const e = await sdk.embeddings.create({ model: 'azure', input: 'hello' });
    assert.equal(e.model, 'azure');
    const paths = hits(mock).map((h) => h.path);
    assert.deepEqual(paths, [
      '/openai/deployments/dep-1/chat/completions?api-version=2024-10-21',
      '/openai/deployments/dep-1/embeddings?api-version=2024-10-21',
    ]);
  });

  test('azure v1 API and a configured api_version; the client query is kept', T, async () => {
    mock.reset();
    const c = await sdk.chat.completions.create({ model: 'azure-v1', messages });
    assert.equal(c.model, 'azure-v1');
    const r = await gwPost(gw, '/v1/chat/completions?trace=1', chatBody('azure-preview'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json().model, 'azure-preview');
    const [v1, preview] = hits(mock);
    assert.equal(v1.path, '/openai/v1/chat/completions');
    assert.equal(v1.model, 'dep-2'); // the v1 API takes the deployment in the body
    assert.deepEqual(credentialHeaders(v1), { 'api-key': 'az-key' });
    assert.equal(preview.path, '/openai/deployments/dep-3/chat/completions?trace=1&api-version=2025-01-01-preview');
  });

  test('azure: a client api-version is replaced by the configured one, exactly one reaches the provider', T, async () => {
    mock.reset();
    // An OpenAI SDK set up for Azure puts its own api-version on every request.
    const azureSdk = new OpenAI({
      baseURL: `${gw.url}/v1`,
      apiKey: CLIENT_TOKEN,
      defaultQuery: { 'api-version': '2023-05-15' },
      maxRetries: 0,
      timeout: 10000,
    });
    const c = await azureSdk.chat.completions.create({ model: 'azure-preview', messages });
    assert.equal(c.model, 'azure-preview');
    const r = await gwPost(gw, '/v1/embeddings?trace=1&API-Version=2022-12-01&api-version=2023-05-15&x=a%20b', JSON.stringify({ model: 'azure', input: 'hi' }));
    assert.equal(r.status, 200, r.text);
    // The v1 API gets no configured version: the client's passes, once.
    const v1 = await gwPost(gw, '/v1/chat/completions?api-version=preview', chatBody('azure-v1'));
    assert.equal(v1.status, 200, v1.text);
    const [chat, emb, v1Hit] = hits(mock);
    const versions = (h) => [...new URLSearchParams(h.query).entries()].filter(([k]) => k.toLowerCase() === 'api-version').map(([, v]) => v);
    assert.deepEqual(versions(chat), ['2025-01-01-preview'], chat.path);
    assert.equal(chat.path, '/openai/deployments/dep-3/chat/completions?api-version=2025-01-01-preview');
    assert.deepEqual(versions(emb), ['2024-10-21'], emb.path);
    assert.equal(emb.path, '/openai/deployments/dep-1/embeddings?trace=1&x=a%20b&api-version=2024-10-21');
    assert.deepEqual(versions(v1Hit), ['preview'], v1Hit.path);
    assert.equal(v1Hit.path, '/openai/v1/chat/completions?api-version=preview');
  });

  test('Gemini and Groq style bases: the API root in the base, no doubled /v1', T, async () => {
    mock.reset();
    const g = await sdk.chat.completions.create({ model: 'gemini', messages });
    assert.equal(g.model, 'gemini');
    assert.equal(g.choices[0].message.content, answerText('gemini-2.0-flash'));
    const q = await sdk.chat.completions.create({ model: 'groq', messages });
    assert.equal(q.model, 'groq');
    const [gh, qh] = hits(mock);
    assert.equal(gh.path, '/v1beta/openai/chat/completions');
    assert.equal(gh.layout, 'gemini');
    assert.deepEqual(credentialHeaders(gh), { authorization: 'Bearer gm-key' });
    assert.equal(qh.path, '/openai/v1/chat/completions');
    assert.deepEqual(credentialHeaders(qh), { authorization: 'Bearer gq-key' });
  });

  // The old gateway sent /v1/v1/chat/completions for such a base: every request was a 404.
  test('a base ending in /v1 (the SDK convention, e.g. Ollama) works on the first request', T, async () => {
    mock.reset();
    const r = await gwPost(gw, '/v1/chat/completions', chatBody('ollama'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json().choices[0].message.content, answerText('llama3.2'));
    const s = await gwPost(gw, '/v1/chat/completions', chatBody('ollama-slash'));
    assert.equal(s.status, 200, s.text);
    const paths = hits(mock).map((h) => h.path);
    assert.deepEqual(paths, ['/v1/chat/completions', '/v1/chat/completions']);
    assert.deepEqual(credentialHeaders(hits(mock)[0]), {}); // empty key: no credential
  });

  test('configured headers reach the provider, replace the client\'s, ${ENV} expanded', T, async () => {
    mock.reset();
    const r = await gwPost(gw, '/v1/chat/completions', chatBody('router'), {
      headers: { 'x-title': 'from the client', 'x-other': 'kept' },
    });
    assert.equal(r.status, 200, r.text);
    const [h] = hits(mock);
    assert.equal(h.path, '/api/v1/chat/completions');
    assert.deepEqual(credentialHeaders(h), { authorization: 'Bearer or-key' });
    assert.equal(h.headers['http-referer'], 'https://app.example');
    assert.equal(h.headers['x-title'], 'Title From Env');
    const titles = [];
    for (let i = 0; i < h.raw_headers.length; i += 2) if (h.raw_headers[i].toLowerCase() === 'x-title') titles.push(h.raw_headers[i + 1]);
    assert.deepEqual(titles, ['Title From Env']);
    assert.equal(h.headers['x-other'], 'kept');
  });

  test('auth x-api-key and none: exactly the configured credential, never the client token', T, async () => {
    mock.reset();
    const r = await gwPost(gw, '/v1/chat/completions', chatBody('xkey'));
    assert.equal(r.status, 200, r.text);
    const n = await gwPost(gw, '/v1/chat/completions', chatBody('noauth'));
    assert.equal(n.status, 200, n.text);
    const [x, none] = hits(mock);
    assert.deepEqual(credentialHeaders(x), { 'x-api-key': 'x-secret' });
    assert.equal(x.headers['anthropic-version'], '2023-06-01');
    assert.deepEqual(credentialHeaders(none), {});
    for (const h of [x, none]) assert.ok(!JSON.stringify(h.raw_headers).includes(CLIENT_TOKEN), 'client token leaked');
  });
});

describe('mixed groups', () => {
  let okMock, badMock, gw;
  before(async () => {
    okMock = await startMock();
    badMock = await startMock();
    gw = await startGateway({
      config: {
        providers: [
          // The azure target answers 503 (mock mode in the base path, which azure allows).
          { group: 'mixed', name: 'dep-bad', base: `${badMock.url}/mode/status-503`, key: 'az-key', api: 'azure' },
          { group: 'mixed', name: 'gpt-4o', base: `${okMock.url}/v1`, key: 'oa-key' },
        ],
        groups: { mixed: { policy: 'round_robin' } },
        security: [CLIENT_TOKEN],
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await okMock?.close();
    await badMock?.close();
  });

  test('failover from an azure target to an openai one', T, async () => {
    // Round robin over two targets: within two requests one starts on the azure target.
    for (let i = 0; i < 2; i++) {
      const r = await gwPost(gw, '/v1/chat/completions', chatBody('mixed'));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json().model, 'mixed');
      assert.equal(r.json().choices[0].message.content, answerText('gpt-4o'));
      assert.equal(r.headers['x-openbridge-model'], 'gpt-4o');
    }
    const bad = hits(badMock);
    assert.equal(bad.length, 1);
    assert.equal(bad[0].path, '/mode/status-503/openai/deployments/dep-bad/chat/completions?api-version=2024-10-21');
    assert.deepEqual(credentialHeaders(bad[0]), { 'api-key': 'az-key' });
    assert.equal(bad[0].response_status, 503);
    const good = hits(okMock);
    assert.equal(good.length, 2);
    for (const h of good) {
      assert.equal(h.path, '/v1/chat/completions');
      assert.deepEqual(credentialHeaders(h), { authorization: 'Bearer oa-key' });
    }
    const get = () => accessLines(gw).filter((l) => l.group === 'mixed');
    await waitFor(() => get().length >= 2, { timeout: 5000, what: '2 access lines' });
    const lines = get();
    assert.deepEqual(lines.map((l) => l.attempts).sort(), ['1', '2']);
    assert.ok(lines.some((l) => l.tried === 'dep-bad:503'), lines.map((l) => l._line).join('\n'));
  });
});

describe('config check refuses what cannot work', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ob-dialects-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const table = [
    { name: 'azure base naming /openai', provider: { api: 'azure', base: 'https://r.openai.azure.com/openai' }, expect: /providers\[0\]\.base: .*resource endpoint/ },
    { name: 'Host header', provider: { headers: { Host: 'x' } }, expect: /providers\[0\]\.headers\.Host: cannot be configured/ },
    { name: 'Content-Length header', provider: { headers: { 'Content-Length': '1' } }, expect: /providers\[0\]\.headers\.Content-Length/ },
    { name: 'Transfer-Encoding header', provider: { headers: { 'Transfer-Encoding': 'chunked' } }, expect: /providers\[0\]\.headers\.Transfer-Encoding/ },
    { name: 'Connection header', provider: { headers: { Connection: 'close' } }, expect: /providers\[0\]\.headers\.Connection/ },
    { name: 'api_version without azure', provider: { api_version: 'v1' }, expect: /providers\[0\]\.api_version: only applies/ },
    { name: 'unknown auth', provider: { auth: 'basic' }, expect: /providers\[0\]\.auth: / },
  ];
  for (const c of table) {
    test(`--check-config: ${c.name}`, T, () => {
      const cfg = { providers: [{ group: 'g', name: 'm', base: 'https://api.example.com', key: 'k', ...c.provider }], security: ['t'] };
      const p = path.join(dir, `${c.name.replace(/\W+/g, '_')}.json`);
      fs.writeFileSync(p, JSON.stringify(cfg));
      const r = runBin(['--check-config', p]);
      assert.notEqual(r.code, 0, `accepted: ${r.stderr}`);
      assert.match(r.stderr + r.stdout, c.expect);
    });
  }
});

describe('health checks use the same path mapping', () => {
  let mock, gw;
  before(async () => {
    mock = await startMock();
    gw = await startGateway({
      config: {
        providers: [
          { group: 'az', name: 'dep-1', base: mock.url, key: 'az-key', api: 'azure', health_check: { interval: 1 } },
          { group: 'ollama', name: 'llama3.2', base: `${mock.url}/v1`, key: '', health_check: { interval: 1 } },
        ],
        security: [CLIENT_TOKEN],
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await mock?.close();
  });

  test('azure: the resource model list with api-version and api-key; a /v1 base: /v1/models', T, async () => {
    const checks = () => mock.stats().requests.filter((r) => r.method === 'GET');
    await waitFor(() => new Set(checks().map((r) => r.path)).size >= 2, { timeout: 10000, what: 'a check of each target' });
    const first = new Map();
    for (const r of checks()) if (!first.has(r.headers['api-key'] ?? '')) first.set(r.headers['api-key'] ?? '', r);
    const az = first.get('az-key');
    assert.equal(az.path, '/openai/models?api-version=2024-10-21');
    assert.equal(az.response_status, 200);
    const ol = first.get('');
    assert.equal(ol.path, '/v1/models');
    assert.equal(ol.response_status, 200);
    assert.ok(!gw.stderrLines.some((l) => /health check of .* failed/.test(l)), gw.stderr());
  });
});

describe('endpoints that cannot be routed by model', () => {
  let mock, gw;
  before(async () => {
    mock = await startMock();
    gw = await startGateway({
      config: { providers: [{ group: 'g', name: 'm', base: mock.url, key: 'k' }], security: [CLIENT_TOKEN] },
    });
  });
  after(async () => {
    await gw?.stop();
    await mock?.close();
  });

  const table = [
    { name: 'file upload', method: 'POST', path: '/v1/files', type: 'multipart/form-data; boundary=b', body: '--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--b--\r\n', status: 404, code: 'unsupported_endpoint', message: /files are stored per provider account/ },
    { name: 'file list', method: 'GET', path: '/v1/files', status: 404, code: 'unsupported_endpoint', message: /\/v1\/files is not supported/ },
    { name: 'a stored response', method: 'GET', path: '/v1/responses/resp_1', status: 404, code: 'unsupported_endpoint', message: /resp_1 is not supported by this gateway: responses are stored per provider account/ },
    { name: 'a stored response cancelled', method: 'POST', path: '/v1/responses/resp_1/cancel', status: 404, code: 'unsupported_endpoint', message: /responses are stored/ },
    { name: 'a stored chat completion deleted', method: 'DELETE', path: '/v1/chat/completions/chatcmpl-1', status: 404, code: 'unsupported_endpoint', message: /chat completions are stored/ },
    { name: 'batch create', method: 'POST', path: '/v1/batches', body: '{"input_file_id":"file-1","endpoint":"/v1/chat/completions","completion_window":"24h"}', status: 404, code: 'unsupported_endpoint', message: /batches/ },
    { name: 'fine-tuning with a model', method: 'POST', path: '/v1/fine_tuning/jobs', body: '{"model":"g","training_file":"file-1"}', status: 404, code: 'unsupported_endpoint', message: /fine_tuning/ },
    { name: 'assistant with a model', method: 'POST', path: '/v1/assistants', body: '{"model":"g"}', status: 404, code: 'unsupported_endpoint', message: /assistants/ },
    { name: 'thread run', method: 'GET', path: '/v1/threads/t1/runs/r1', status: 404, code: 'unsupported_endpoint', message: /threads/ },
    { name: 'multipart without model', method: 'POST', path: '/v1/audio/transcriptions', type: 'multipart/form-data; boundary=b', body: '--b\r\nContent-Disposition: form-data; name="language"\r\n\r\nen\r\n--b--\r\n', status: 400, code: 'invalid_model', message: /no "model" field/ },
    { name: 'multipart without boundary', method: 'POST', path: '/v1/audio/transcriptions', type: 'multipart/form-data', body: '--b\r\nContent-Disposition: form-data; name="model"\r\n\r\ng\r\n--b--\r\n', status: 400, code: 'bad_request', message: /no boundary/ },
    { name: 'multipart cut short', method: 'POST', path: '/v1/audio/transcriptions', type: 'multipart/form-data; boundary=b', body: '--b\r\nContent-Disposition: form-data; name="model"\r\n\r\ng', status: 400, code: 'bad_request', message: /malformed/ },
    { name: 'multipart model twice', method: 'POST', path: '/v1/audio/transcriptions', type: 'multipart/form-data; boundary=b', body: '--b\r\nContent-Disposition: form-data; name="model"\r\n\r\ng\r\n--b\r\nContent-Disposition: form-data; name="model"\r\n\r\ng\r\n--b--\r\n', status: 400, code: 'invalid_model', message: /more than one/ },
  ];
  for (const c of table) {
    test(`${c.name}: ${c.status} ${c.code}, the provider is not contacted`, T, async () => {
      mock.reset();
      const headers = { authorization: `Bearer ${CLIENT_TOKEN}` };
      if (c.body) headers['content-type'] = c.type ?? 'application/json';
      const r = await request({ url: gw.url + c.path, method: c.method, headers, body: c.body });
      const j = assertError(r, c.status, { code: c.code }, c.name);
      assert.match(j.error.message, c.message);
      assert.equal(hits(mock).length, 0);
    });
  }
});

describe('multipart requests are routed by their model field', () => {
  let mock, gw, sdk;
  before(async () => {
    mock = await startMock();
    gw = await startGateway({
      config: {
        providers: [
          { group: 'whisper', name: 'whisper-1', base: `${mock.url}/v1`, key: 'k' },
          { group: 'whisper-az', name: 'whisper-dep', base: mock.url, key: 'az', api: 'azure' },
        ],
        security: [CLIENT_TOKEN],
      },
    });
    sdk = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: CLIENT_TOKEN, maxRetries: 0, timeout: 10000 });
  });
  after(async () => {
    await gw?.stop();
    await mock?.close();
  });

  test('SDK transcription and translation: model field rewritten, file bytes intact', T, async () => {
    mock.reset();
    const audio = speechBytes('x', 'y'); // binary, every byte value
    const t = await sdk.audio.transcriptions.create({ model: 'whisper', file: await toFile(audio, 'a.mp3') });
    assert.equal(t.text, answerText('whisper-1'));
    const a = await sdk.audio.translations.create({ model: 'whisper-az', file: await toFile(audio, 'b.mp3') });
    assert.equal(a.text, answerText('whisper-dep'));
    const [th, ah] = hits(mock);
    assert.equal(th.path, '/v1/audio/transcriptions');
    assert.equal(th.model, 'whisper-1');
    assert.equal(ah.path, '/openai/deployments/whisper-dep/audio/translations?api-version=2024-10-21');
    assert.equal(ah.model, 'whisper-dep');
    assert.deepEqual(credentialHeaders(ah), { 'api-key': 'az' });
  });

  test('the provider gets the client body byte for byte, only the model value changed', T, async () => {
    mock.reset();
    const audio = speechBytes('x', 'y');
    const form = (model) =>
      Buffer.concat([
        Buffer.from('--BoUnD\r\nContent-Disposition: form-data; name="file"; filename="a.mp3"\r\nContent-Type: audio/mpeg\r\n\r\n'),
        audio,
        Buffer.from(`\r\n--BoUnD\r\nContent-Disposition: form-data; name="model"\r\n\r\n${model}\r\n--BoUnD--\r\n`),
      ]);
    const r = await request({
      url: `${gw.url}/v1/audio/transcriptions`,
      method: 'POST',
      headers: { authorization: `Bearer ${CLIENT_TOKEN}`, 'content-type': 'multipart/form-data; boundary=BoUnD' },
      body: form('whisper'),
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json().text, answerText('whisper-1'));
    const [h] = hits(mock);
    assert.equal(h.body_sha256, crypto.createHash('sha256').update(form('whisper-1')).digest('hex'));
  });

  test('an unknown model in the form field: 404 model_not_found', T, async () => {
    mock.reset();
    await assert.rejects(
      sdk.audio.transcriptions.create({ model: 'nope', file: await toFile(Buffer.from('abc'), 'a.mp3') }),
      (e) => e.status === 404 && e.code === 'model_not_found',
    );
    assert.equal(hits(mock).length, 0);
  });
});

describe('binary answers are streamed through', () => {
  let mock, gw;
  before(async () => {
    mock = await startMock();
    gw = await startGateway({
      config: { providers: [{ group: 'tts', name: 'tts-1', base: mock.url, key: 'k' }], security: [CLIENT_TOKEN] },
    });
  });
  after(async () => {
    await gw?.stop();
    await mock?.close();
  });

  // Reads an answer piece by piece, noting when the first body bytes arrived.
  function speech(headers = {}) {
    return new Promise((resolve, reject) => {
      const req = http.request(`${gw.url}/v1/audio/speech`, {
        method: 'POST',
        headers: { authorization: `Bearer ${CLIENT_TOKEN}`, 'content-type': 'application/json', ...headers },
        timeout: 20000,
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.on('response', (res) => {
        const chunks = [];
        let firstAt = null;
        res.on('data', (c) => {
          firstAt ??= now();
          chunks.push(c);
        });
        res.on('error', reject);
        res.on('aborted', () => resolve({ res, body: Buffer.concat(chunks), firstAt, aborted: true }));
        res.on('end', () => resolve({ res, body: Buffer.concat(chunks), firstAt, aborted: false }));
      });
      req.end(JSON.stringify({ model: 'tts', input: 'Hello there', voice: 'alloy' }));
    });
  }

  test('audio/speech: first bytes reach the client before the provider finished, bytes exact', T, async () => {
    mock.reset();
    // 8 pieces 150 ms apart: the provider needs > 1 s for the whole answer.
    const r = await speech({ 'x-mock-mode': 'slow-stream-150' });
    assert.equal(r.res.statusCode, 200);
    assert.equal(r.res.headers['content-type'], 'audio/mpeg');
    assert.ok(r.body.equals(speechBytes('tts-1', 'Hello there')), 'body differs');
    const [h] = hits(mock);
    assert.equal(h.path, '/v1/audio/speech');
    assert.ok(r.firstAt < h.t_end - 500, `first bytes ${Math.round(h.t_end - r.firstAt)} ms before the provider's end`);
  });

  test('audio/speech cut by the provider: the client sees the body cut, not a complete one', T, async () => {
    mock.reset();
    const r = await speech({ 'x-mock-mode': 'drop-mid-stream,chunked' });
    assert.equal(r.res.statusCode, 200);
    assert.ok(r.aborted || r.body.length < 32 * 1024, `complete-looking answer of ${r.body.length} bytes`);
    assert.ok(r.body.length < 32 * 1024);
  });
});
