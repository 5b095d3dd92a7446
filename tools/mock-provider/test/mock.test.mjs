// Tests of the mock provider itself (no gateway involved).
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { startMock, answerText, MOCK_DIR } from '../server.js';
import { request, parseSSE, sha256, waitFor } from '../../../tests/e2e/lib/http.mjs';
import { makeTestCA } from '../../../tests/e2e/lib/tls.mjs';

const T = { timeout: 20000 };
let mock;
before(async () => {
  mock = await startMock();
});
after(async () => {
  await mock.close();
});
beforeEach(() => mock.reset());

const post = (p, body, extra = {}) =>
  request({ url: mock.url + p, method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer sk-x' }, body, ...extra });

function chatBody(model, extra = {}) {
  return JSON.stringify({ model, messages: [{ role: 'user', content: 'Hi' }], ...extra });
}

function assembleChat(events) {
  let text = '';
  for (const e of events) {
    if (e.data === '[DONE]') continue;
    const o = JSON.parse(e.data);
    for (const c of o.choices || []) text += c.delta?.content ?? c.text ?? '';
  }
  return text;
}

test('chat completion non-stream echoes the model and records the request', T, async () => {
  const body = chatBody('real-a');
  const r = await post('/v1/chat/completions?x=1', body);
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-length'], String(r.body.length));
  const j = r.json();
  assert.equal(j.model, 'real-a');
  assert.equal(j.object, 'chat.completion');
  assert.equal(j.choices[0].message.content, answerText('real-a'));
  const s = mock.stats();
  assert.equal(s.requests.length, 1);
  const rec = s.requests[0];
  assert.equal(rec.path, '/v1/chat/completions?x=1');
  assert.equal(rec.model, 'real-a');
  assert.equal(rec.body_sha256, sha256(body));
  assert.equal(rec.body_bytes, Buffer.byteLength(body));
  assert.equal(rec.headers.authorization, 'Bearer sk-x');
  assert.equal(rec.response_body, r.text);
  assert.equal(rec.completed, true);
  assert.equal(rec.aborted, false);
});

test('chat stream with usage: ~10 chunks, usage chunk with choices [], [DONE]', T, async () => {
  const r = await post('/v1/chat/completions', chatBody('m1', { stream: true, stream_options: { include_usage: true } }));
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /^text\/event-stream/);
  assert.equal(r.headers['transfer-encoding'], 'chunked');
  const { events } = parseSSE(r.text);
  assert.equal(events.at(-1).data, '[DONE]');
  const objs = events.slice(0, -1).map((e) => JSON.parse(e.data));
  assert.ok(objs.length >= 8 && objs.length <= 14, `got ${objs.length} chunks`);
  for (const o of objs) {
    assert.equal(o.model, 'm1');
    assert.equal(o.object, 'chat.completion.chunk');
  }
  assert.deepEqual(objs.at(-1).choices, []);
  assert.equal(objs.at(-1).usage.total_tokens, 21);
  assert.equal(assembleChat(events), answerText('m1'));
});

test('completions, embeddings (float and base64), models', T, async () => {
  let r = await post('/v1/completions', JSON.stringify({ model: 'c1', prompt: 'x' }));
  assert.equal(r.json().choices[0].text, answerText('c1'));
  assert.equal(r.json().model, 'c1');
  r = await post('/v1/completions', JSON.stringify({ model: 'c1', prompt: 'x', stream: true }));
  assert.equal(assembleChat(parseSSE(r.text).events), answerText('c1'));
  const e1 = (await post('/v1/embeddings', JSON.stringify({ model: 'e', input: ['a', 'b'] }))).json();
  const e2 = (await post('/v1/embeddings', JSON.stringify({ model: 'e', input: ['a', 'b'] }))).json();
  assert.deepEqual(e1, e2);
  assert.equal(e1.data.length, 2);
  assert.equal(e1.data[0].embedding.length, 8);
  assert.notDeepEqual(e1.data[0].embedding, e1.data[1].embedding);
  const b = (await post('/v1/embeddings', JSON.stringify({ model: 'e', input: 'a', encoding_format: 'base64' }))).json();
  const raw = Buffer.from(b.data[0].embedding, 'base64');
  const f = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
  assert.equal(f.length, 8);
  assert.ok(Math.abs(f[0] - e1.data[0].embedding[0]) < 1e-6);
  r = await request({ url: mock.url + '/v1/models' });
  assert.equal(r.json().object, 'list');
});

test('responses non-stream and stream (model nested in response.model, no [DONE])', T, async () => {
  let r = await post('/v1/responses', JSON.stringify({ model: 'r1', input: 'hi' }));
  const j = r.json();
  assert.equal(j.model, 'r1');
  assert.equal(j.output[0].content[0].text, answerText('r1'));
  r = await post('/v1/responses', JSON.stringify({ model: 'r1', input: 'hi', stream: true }));
  const { events } = parseSSE(r.text);
  const types = events.map((e) => e.event);
  assert.equal(types[0], 'response.created');
  assert.equal(types[1], 'response.in_progress');
  assert.equal(types.at(-1), 'response.completed');
  assert.ok(types.includes('response.output_text.done'));
  assert.ok(!events.some((e) => e.data === '[DONE]'));
  let text = '';
  for (const e of events) {
    const o = JSON.parse(e.data);
    assert.equal(o.type, e.event);
    if (o.response) assert.equal(o.response.model, 'r1');
    if (o.type === 'response.output_text.delta') text += o.delta;
  }
  assert.equal(text, answerText('r1'));
});

test('mode tiny: many small reads, same bytes as normal', T, async () => {
  const normal = await post('/v1/chat/completions', chatBody('tiny-model-name'));
  const tiny = await post('/mode/tiny/v1/chat/completions', chatBody('tiny-model-name'));
  // ids differ by request number; compare with the id normalised
  const norm = (t) => t.replace(/"id":"[^"]*"/, '"id":"X"');
  assert.equal(norm(tiny.text), norm(normal.text));
  assert.ok(tiny.chunks.length > 20, `only ${tiny.chunks.length} reads`);
  const s = await post('/mode/tiny/v1/chat/completions', chatBody('tm', { stream: true }));
  assert.equal(assembleChat(parseSSE(s.text).events), answerText('tm'));
  assert.ok(s.chunks.length > 50);
});

test('mode status-N: OpenAI error body; 429 has Retry-After', T, async () => {
  let r = await post('/mode/status-500/v1/chat/completions', chatBody('m'));
  assert.equal(r.status, 500);
  assert.equal(r.json().error.type, 'server_error');
  r = await post('/mode/status-429/v1/chat/completions', chatBody('m', { stream: true }));
  assert.equal(r.status, 429);
  assert.equal(r.headers['retry-after'], '2');
  assert.equal(r.json().error.code, 'rate_limit_exceeded');
  r = await post('/mode/status-418,error-model/v1/chat/completions', chatBody('m'));
  assert.equal(r.status, 418);
  assert.equal(r.json().model, 'm');
  assert.equal(mock.stats().requests[2].modes.join(), 'status-418,error-model');
});

test('mode via x-mock-mode header', T, async () => {
  const r = await post('/v1/chat/completions', chatBody('m'), { headers: { 'x-mock-mode': 'status-503', 'content-type': 'application/json' } });
  assert.equal(r.status, 503);
});

test('mode hang: no answer; hang-after-head: head only', T, async () => {
  await assert.rejects(post('/mode/hang/v1/chat/completions', chatBody('m'), { timeout: 300 }), /timed out/);
  let head;
  await assert.rejects(
    post('/mode/hang-after-head/v1/chat/completions', chatBody('m'), { timeout: 300, onResponse: (res) => (head = res.statusCode) }),
    /timed out/,
  );
  assert.equal(head, 200);
  await waitFor(() => mock.stats().requests.every((r) => r.aborted), { what: 'aborts recorded' });
});

test('mode drop: socket destroyed without answer', T, async () => {
  await assert.rejects(post('/mode/drop/v1/chat/completions', chatBody('m')), /socket hang up|ECONNRESET/);
});

test('mode drop-mid-stream: a few events then the socket dies', T, async () => {
  const err = await post('/mode/drop-mid-stream/v1/chat/completions', chatBody('m', { stream: true })).catch((e) => e);
  assert.ok(err instanceof Error, 'expected an error');
  const text = err.partial ? err.partial.text : '';
  assert.equal(parseSSE(text).events.length, 3);
  // non-stream: half the JSON then drop
  const e2 = await post('/mode/drop-mid-stream/v1/chat/completions', chatBody('m')).catch((e) => e);
  assert.ok(e2 instanceof Error);
});

test('mode end-without-done: clean end, no [DONE]', T, async () => {
  const r = await post('/mode/end-without-done/v1/chat/completions', chatBody('m', { stream: true }));
  const { events } = parseSSE(r.text);
  assert.ok(events.length >= 8);
  assert.ok(!events.some((e) => e.data === '[DONE]'));
  assert.equal(assembleChat(events), answerText('m'));
});

test('mode sse-content-length: stream with Content-Length, not chunked', T, async () => {
  const r = await post('/mode/sse-content-length/v1/chat/completions', chatBody('m', { stream: true }));
  assert.equal(r.headers['transfer-encoding'], undefined);
  assert.equal(r.headers['content-length'], String(r.body.length));
  assert.equal(parseSSE(r.text).events.at(-1).data, '[DONE]');
});

test('mode slow-stream-<ms>: events spaced out', T, async () => {
  const t0 = performance.now();
  const r = await post('/mode/slow-stream-50/v1/chat/completions', chatBody('m', { stream: true }));
  assert.ok(performance.now() - t0 >= 9 * 50 - 20);
  assert.equal(assembleChat(parseSSE(r.text).events), answerText('m'));
});

test('modes crlf and comments', T, async () => {
  const r = await post('/mode/crlf,comments/v1/chat/completions', chatBody('m', { stream: true }));
  assert.ok(r.text.includes('\r\n\r\n'));
  assert.ok(!/[^\r]\n/.test(r.text), 'bare LF found');
  const p = parseSSE(r.text);
  assert.ok(p.comments.length >= 10);
  assert.ok(r.text.startsWith(': ping\r\n\r\n'));
  assert.equal(assembleChat(p.events), answerText('m'));
});

test('mode prefill-<ms>-<every>: keep-alive comments before the first event, then the stream', T, async () => {
  const t0 = performance.now();
  const r = await post('/mode/prefill-300-100/v1/chat/completions', chatBody('m', { stream: true }));
  assert.ok(performance.now() - t0 >= 290);
  assert.ok(r.text.startsWith(': PROCESSING\n\n: PROCESSING\n\n: PROCESSING\n\ndata: '), r.text.slice(0, 80));
  const p = parseSSE(r.text);
  assert.equal(p.comments.length, 3);
  assert.equal(assembleChat(p.events), answerText('m'));
});

test('mode split-first-<ms>: the first event in two writes, the first led by a comment', T, async () => {
  const r = await post('/mode/split-first-200/v1/chat/completions', chatBody('m', { stream: true }));
  assert.ok(r.chunks.length >= 2);
  const first = r.chunks[0].bytes.toString();
  assert.ok(first.startsWith(': PROCESSING\n\ndata: {'), first);
  assert.ok(!first.includes('\n\ndata: {', 14) && !first.endsWith('\n\n'), first);
  const second = r.chunks.find((c) => c.t - r.chunks[0].t >= 150);
  assert.ok(second, 'the rest came ~200 ms later');
  const p = parseSSE(r.text);
  assert.equal(p.comments.length, 1);
  assert.equal(assembleChat(p.events), answerText('m'));
});

test('mode reasoning-<n>: reasoning-only deltas after the role chunk, then the text', T, async () => {
  const r = await post('/mode/reasoning-3/v1/chat/completions', chatBody('m', { stream: true }));
  const { events } = parseSSE(r.text);
  const deltas = events.slice(0, -1).map((e) => JSON.parse(e.data).choices[0].delta);
  assert.equal(deltas[0].role, 'assistant');
  assert.deepEqual(deltas.slice(1, 4).map((d) => d.reasoning_content), ['step 0. ', 'step 1. ', 'step 2. ']);
  assert.ok(deltas.slice(1, 4).every((d) => d.content === null));
  assert.ok(deltas.slice(4).every((d) => d.reasoning_content === undefined));
  assert.equal(assembleChat(events), answerText('m'));
});

test('mode stream-error-event: error event first', T, async () => {
  const r = await post('/mode/stream-error-event/v1/chat/completions', chatBody('m', { stream: true }));
  const { events } = parseSSE(r.text);
  assert.equal(JSON.parse(events[0].data).error.type, 'server_error');
});

test('mode big-<bytes> and close', T, async () => {
  const r = await post('/mode/big-1000000,close/v1/chat/completions', chatBody('m'));
  assert.ok(r.body.length > 1000000);
  assert.equal(r.headers.connection, 'close');
  assert.ok(r.json().choices[0].message.content.startsWith(answerText('m')));
});

test('keep-alive connections are counted; stats over HTTP; reset', T, async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = 0; i < 5; i++) await post('/v1/chat/completions', chatBody('m'), { agent });
  agent.destroy();
  let s = mock.stats();
  assert.equal(s.connections, 1);
  assert.equal(s.requests.length, 5);
  assert.deepEqual(s.requests.map((r) => r.conn_request_index), [1, 2, 3, 4, 5]);
  const h = (await request({ url: mock.url + '/_mock/stats' })).json();
  assert.equal(h.requests.length, 5);
  assert.equal(h.control_connections, 1);
  const rr = await request({ url: mock.url + '/_mock/reset', method: 'POST' });
  assert.equal(rr.status, 200);
  s = mock.stats();
  assert.equal(s.requests.length, 0);
  assert.equal(s.connections, 0);
});

test('client abort mid-stream is recorded with a timestamp', T, async () => {
  let abortedAt;
  const p = post('/mode/slow-stream-100/v1/chat/completions', chatBody('m', { stream: true }), {
    onChunk: (c, res, req) => {
      if (!abortedAt) {
        abortedAt = performance.timeOrigin + performance.now();
        req.destroy();
      }
    },
  }).catch((e) => e);
  await p;
  const rec = await waitFor(() => mock.stats().requests.find((r) => r.aborted), { what: 'abort' });
  assert.ok(rec.t_abort - abortedAt < 100, `abort seen after ${rec.t_abort - abortedAt} ms`);
  assert.ok(rec.t_abort >= abortedAt - 1);
});

test('TLS mock with a throwaway CA', T, async () => {
  const ca = makeTestCA();
  const m = await startMock({ tls: { cert: ca.certPem, key: ca.keyPem } });
  try {
    assert.match(m.url, /^https:/);
    const r = await request({ url: m.url + '/v1/chat/completions', method: 'POST', body: chatBody('t'), ca: ca.caCertPem });
    assert.equal(r.json().model, 't');
    await assert.rejects(request({ url: m.url + '/v1/models' }), /self-signed|unable to verify|certificate/);
    const r2 = await request({ url: `https://localhost:${m.port}/v1/models`, ca: ca.caCertPem });
    assert.equal(r2.status, 200);
    assert.equal(m.stats().connections, 3);
    assert.ok(m.stats().requests[0].conn >= 1);
  } finally {
    await m.close();
    ca.cleanup();
  }
});

test('CLI prints {"port":N} and writes the ready file', T, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mock-cli-'));
  const ready = path.join(dir, 'ready.json');
  const child = spawn(process.execPath, [path.join(MOCK_DIR, 'server.js'), '--port', '0', '--ready-file', ready], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const line = await new Promise((resolve, reject) => {
      let buf = '';
      const t = setTimeout(() => reject(new Error('no ready line')), 5000);
      child.stdout.on('data', (d) => {
        buf += d;
        if (buf.includes('\n')) {
          clearTimeout(t);
          resolve(buf.split('\n')[0]);
        }
      });
    });
    const { port } = JSON.parse(line);
    assert.ok(port > 0);
    assert.deepEqual(JSON.parse(fs.readFileSync(ready, 'utf8')), { port });
    const r = await request({ url: `http://127.0.0.1:${port}/mode/x/v1/chat/completions`, method: 'POST', body: chatBody('cli') });
    assert.equal(r.json().model, 'cli');
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
