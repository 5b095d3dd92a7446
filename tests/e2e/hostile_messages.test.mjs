// Hostile input and failures on the Anthropic Messages API (POST /v1/messages): every gateway
// error and every translated upstream error reaches the client in Anthropic's shape,
// {"type":"error","error":{"type","message"}}, with the right status; a stream that breaks after
// it started ends with an Anthropic `event: error` and no message_stop; a client that leaves
// mid-stream is logged as such and the gateway keeps serving.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock } from '../../tools/mock-provider/server.js';
import { startGateway, closedPort } from './lib/gateway.mjs';
import { request, waitFor } from './lib/http.mjs';
import { CLIENT_TOKEN, accessLines } from './lib/common.mjs';

const T = { timeout: 30000 };
const TOKENS = { main: CLIENT_TOKEN, onlyOa: 'sk-only-oa', rpm1: 'sk-rpm-one' };
const MAX_BODY = 64 * 1024;

const msg = (model, extra = {}) => JSON.stringify({ model, max_tokens: 16, messages: [{ role: 'user', content: 'Hi' }], ...extra });

// auth: 'x-api-key' (default) | 'bearer' | 'none' | {header, value}
const CASES = [
  { name: 'bad JSON', body: '{"model": "oa", "messages": [', status: 400, type: 'invalid_request_error' },
  { name: 'body not an object', body: '[1,2]', status: 400, type: 'invalid_request_error' },
  { name: 'missing model', body: JSON.stringify({ max_tokens: 16, messages: [] }), status: 400, type: 'invalid_request_error' },
  { name: 'unknown group', body: msg('no-such-group'), status: 404, type: 'not_found_error' },
  { name: 'no key', body: msg('oa'), auth: 'none', status: 401, type: 'authentication_error', message: /x-api-key/ },
  { name: 'wrong x-api-key', body: msg('oa'), auth: { header: 'x-api-key', value: 'sk-wrong' }, status: 401, type: 'authentication_error' },
  { name: 'wrong Bearer', body: msg('oa'), auth: { header: 'authorization', value: 'Bearer sk-wrong' }, status: 401, type: 'authentication_error' },
  { name: 'key not allowed the group', body: msg('ant'), token: TOKENS.onlyOa, status: 403, type: 'permission_error' },
  { name: 'body too large', body: msg('oa', { pad: 'x'.repeat(MAX_BODY) }), status: 413, type: 'invalid_request_error' },
  { name: 'key rate limited: 429 with Retry-After', body: msg('oa'), token: TOKENS.rpm1, warmup: 1, status: 429, type: 'rate_limit_error', retryAfter: true },
  { name: 'parameter with no chat completions form (top_k) to an OpenAI target', body: msg('oa', { top_k: 5 }), status: 400, type: 'invalid_request_error', upstreamCalls: 0 },
  { name: 'upstream 500 before the stream (OpenAI target)', body: msg('oa-500', { stream: true }), status: 500, type: 'api_error' },
  { name: 'upstream 529 before the stream (Anthropic target)', body: msg('ant-529', { stream: true }), status: 529, type: 'overloaded_error' },
  { name: 'upstream 429 (OpenAI target) keeps its status', body: msg('oa-429'), status: 429, type: 'rate_limit_error' },
  { name: 'upstream unreachable: 502', body: msg('down'), status: 502, type: 'api_error' },
  { name: 'upstream silent past first_byte: 504', body: msg('hang', { stream: true }), status: 504, type: 'api_error' },
  { name: 'mid-stream upstream failure (OpenAI target)', body: msg('oa-drop', { stream: true }), midStream: 'api_error' },
  { name: 'mid-stream upstream error event (Anthropic target)', body: msg('ant-midfail', { stream: true }), midStream: 'overloaded_error' },
  { name: 'client abort mid-stream', body: msg('oa-slow', { stream: true }), abort: true },
];

function headersFor(c) {
  const h = { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' };
  const auth = c.auth ?? 'x-api-key';
  const token = c.token ?? TOKENS.main;
  if (auth === 'x-api-key') h['x-api-key'] = token;
  else if (auth === 'bearer') h.authorization = `Bearer ${token}`;
  else if (typeof auth === 'object') h[auth.header] = auth.value;
  return h;
}

function assertAnthropicError(r, status, type, what) {
  const ctx = `${what} -> ${r.status} ${r.text.slice(0, 300)}`;
  assert.equal(r.status, status, ctx);
  assert.match(String(r.headers['content-type']), /application\/json/, ctx);
  const j = JSON.parse(r.text);
  assert.deepEqual(Object.keys(j).sort(), ['error', 'type'], ctx);
  assert.equal(j.type, 'error', ctx);
  assert.equal(j.error.type, type, ctx);
  assert.equal(typeof j.error.message, 'string', ctx);
  assert.ok(j.error.message.length > 0, ctx);
}

function lastEvents(text) {
  return text
    .split('\n\n')
    .filter((b) => b.trim())
    .map((b) => {
      const ev = /^event: (.*)$/m.exec(b);
      const data = /^data: (.*)$/m.exec(b);
      return { event: ev ? ev[1] : null, data: data ? JSON.parse(data[1]) : null };
    });
}

describe('hostile input: Anthropic Messages API', { timeout: 120000 }, () => {
  let mock, gw;
  before(async () => {
    mock = await startMock({ anthropicKey: 'ant-key' });
    const u = mock.url;
    const down = await closedPort();
    gw = await startGateway({
      config: {
        providers: [
          { group: 'oa', name: 'gpt-4o', base: u, key: 'oa-key' },
          { group: 'ant', name: 'claude-sonnet-4', base: u, key: 'ant-key', api: 'anthropic' },
          { group: 'oa-500', name: 'gpt-4o', base: `${u}/mode/status-500`, key: 'oa-key' },
          { group: 'oa-429', name: 'gpt-4o', base: `${u}/mode/status-429`, key: 'oa-key' },
          { group: 'ant-529', name: 'claude-sonnet-4', base: `${u}/mode/status-529`, key: 'ant-key', api: 'anthropic' },
          { group: 'oa-drop', name: 'gpt-4o', base: `${u}/mode/drop-mid-stream`, key: 'oa-key' },
          { group: 'ant-midfail', name: 'claude-sonnet-4', base: `${u}/mode/overloaded-mid-stream`, key: 'ant-key', api: 'anthropic' },
          { group: 'oa-slow', name: 'gpt-4o', base: `${u}/mode/slow-stream-300`, key: 'oa-key' },
          { group: 'down', name: 'gpt-4o', base: `http://127.0.0.1:${down}`, key: 'oa-key' },
          { group: 'hang', name: 'gpt-4o', base: `${u}/mode/hang`, key: 'oa-key', timeouts: { first_byte: 1 } },
        ],
        keys: [
          { name: 'main', token: TOKENS.main },
          { name: 'only-oa', token: TOKENS.onlyOa, groups: ['oa'] },
          { name: 'rpm-one', token: TOKENS.rpm1, limits: { rpm: 1 } },
        ],
        limits: { max_body_bytes: MAX_BODY },
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await mock?.close();
  });

  for (const c of CASES) {
    test(c.name, T, async () => {
      mock.reset();
      const url = `${gw.url}/v1/messages`;
      const headers = headersFor(c);
      for (let i = 0; i < (c.warmup ?? 0); i++) {
        const w = await request({ url, method: 'POST', headers, body: c.body });
        assert.equal(w.status, 200, `warm-up: ${w.text.slice(0, 200)}`);
      }
      if (c.abort) {
        let got = '';
        const r = await request({
          url,
          method: 'POST',
          headers,
          body: c.body,
          allowError: true,
          onChunk: (b, res, req) => {
            got += b.toString();
            if (got.includes('message_start')) req.destroy();
          },
        }).catch((e) => ({ error: e }));
        assert.ok(r.error, 'the request was aborted');
        assert.match(got, /event: message_start/);
        await waitFor(() => accessLines(gw).some((l) => l.group === 'oa-slow' && l.outcome === 'client_cancelled'), {
          timeout: 5000,
          what: 'access line of the aborted stream',
        });
        // The gateway serves the next request.
        const next = await request({ url, method: 'POST', headers, body: msg('oa') });
        assert.equal(next.status, 200, next.text.slice(0, 200));
        assert.equal(JSON.parse(next.text).type, 'message');
        return;
      }
      const r = await request({ url, method: 'POST', headers, body: c.body, allowError: true });
      if (c.midStream) {
        assert.equal(r.status, 200, r.text.slice(0, 300));
        assert.match(String(r.headers['content-type']), /text\/event-stream/);
        const ev = lastEvents(r.text);
        assert.equal(ev[0].event, 'message_start', r.text.slice(0, 300));
        const last = ev.at(-1);
        assert.equal(last.event, 'error', r.text.slice(-300));
        assert.equal(last.data.type, 'error');
        assert.equal(last.data.error.type, c.midStream);
        assert.equal(typeof last.data.error.message, 'string');
        assert.ok(!ev.some((e) => e.event === 'message_stop'), 'no message_stop after an error');
        assert.ok(!r.text.includes('[DONE]') && !r.text.includes('"upstream_error"'), 'nothing of the OpenAI stream shape');
        return;
      }
      assertAnthropicError(r, c.status, c.type, c.name);
      if (c.message) assert.match(JSON.parse(r.text).error.message, c.message);
      if (c.retryAfter) assert.match(String(r.headers['retry-after']), /^\d+$/, 'Retry-After');
      if (c.upstreamCalls !== undefined) assert.equal(mock.stats().requests.length, c.upstreamCalls);
    });
  }
});
