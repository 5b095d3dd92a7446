// End-to-end: Server-Sent-Events through the gateway with the openai SDK, the Vercel AI SDK
// and raw HTTP; upstream stream faults; client aborts; many concurrent streams.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { streamText } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { startMock, answerText } from '../../tools/mock-provider/server.js';
import { startGateway } from './lib/gateway.mjs';
import { parseSSE, waitFor } from './lib/http.mjs';
import { CLIENT_TOKEN, chatBody, gwPost, sleep, rewriteAll, withoutUsageChunk } from './lib/common.mjs';

const T = { timeout: 30000 };
const IDLE_S = 3;
const streamBody = (model, extra = {}) => chatBody(model, { stream: true, ...extra });
const withUsage = (model) => streamBody(model, { stream_options: { include_usage: true } });


function chatText(events) {
  let text = '';
  for (const e of events) {
    if (e.data === '[DONE]') continue;
    const o = JSON.parse(e.data);
    for (const c of o.choices || []) text += c.delta?.content ?? c.text ?? '';
  }
  return text;
}

describe('streaming', { timeout: 400000 }, () => {
  let A, gw, client, aiProvider;

  before(async () => {
    A = await startMock();
    const P = (group, name, mode) => ({ group, name, base: mode ? `${A.url}/mode/${mode}` : A.url, key: 'sk-provider-a' });
    const config = {
      providers: [
        P('chat', 'real-model-a'),
        P('tiny', 'tiny-real-model-name', 'tiny'),
        P('dropmid', 'dropmid-model', 'drop-mid-stream'),
        P('nodone', 'nodone-model', 'end-without-done'),
        P('sselen', 'sselen-model', 'sse-content-length'),
        P('crlf', 'crlf-model', 'crlf'),
        P('comments', 'comments-model', 'comments'),
        P('crlfcomments', 'crlfc-model', 'crlf,comments'),
        P('slow', 'slow-model', 'slow-stream-200'),
        P('stall', 'stall-model', `slow-stream-${(IDLE_S + 2) * 1000}`),
        P('e429', 'e429-model', 'status-429'),
        P('errevent', 'errevent-model', 'stream-error-event'),
        P('bigstream', 'bigstream-model', 'big-300000'),
      ],
      security: [CLIENT_TOKEN],
      timeouts: { connect: 2, first_byte: 5, idle: IDLE_S, total: 120 },
    };
    gw = await startGateway({ config });
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: CLIENT_TOKEN, maxRetries: 0, timeout: 20000 });
    aiProvider = createOpenAI({ baseURL: `${gw.url}/v1`, apiKey: CLIENT_TOKEN });
  });

  after(async () => {
    if (gw && !gw.exited()) await gw.stop();
    gw?.cleanup();
    await A?.close();
  });

  test('openai SDK chat stream with include_usage: every chunk has the group name, text exact, usage chunk', T, async () => {
    const stream = await client.chat.completions.create({
      model: 'chat',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    const chunks = [];
    for await (const ch of stream) {
      chunks.push(ch);
      assert.equal(ch.model, 'chat');
      text += ch.choices[0]?.delta?.content ?? '';
    }
    assert.equal(text, answerText('real-model-a'));
    assert.ok(chunks.length >= 8);
    const last = chunks.at(-1);
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage.total_tokens, 21);
  });

  test('raw chat stream: bytes are the provider\'s with only model values replaced; [DONE] last', T, async () => {
    A.reset();
    const r = await gwPost(gw, '/v1/chat/completions', withUsage('chat'));
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^text\/event-stream/);
    const rec = A.stats().requests.at(-1);
    assert.equal(r.text, rewriteAll(rec.response_body, 'real-model-a', 'chat'));
    assert.equal(parseSSE(r.text).events.at(-1).data, '[DONE]');
    assert.ok(r.chunks.length > 1, 'streamed in several pieces, not buffered');
  });

  test('openai SDK responses stream: every response.model is the group name; ends cleanly without [DONE]', T, async () => {
    const stream = await client.responses.create({ model: 'chat', input: 'hi', stream: true });
    let text = '';
    const types = [];
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.response) assert.equal(ev.response.model, 'chat', `${ev.type} response.model`);
      if (ev.type === 'response.output_text.delta') text += ev.delta;
    }
    assert.equal(text, answerText('real-model-a'));
    assert.equal(types[0], 'response.created');
    assert.equal(types.at(-1), 'response.completed');
    // raw: nothing added by the gateway
    A.reset();
    const r = await gwPost(gw, '/v1/responses', JSON.stringify({ model: 'chat', input: 'hi', stream: true }));
    const rec = A.stats().requests.at(-1);
    assert.equal(r.text, rewriteAll(rec.response_body, 'real-model-a', 'chat'));
  });

  test('completions stream through the openai SDK', T, async () => {
    const stream = await client.completions.create({ model: 'chat', prompt: 'hi', stream: true });
    let text = '';
    for await (const ch of stream) {
      assert.equal(ch.model, 'chat');
      text += ch.choices[0]?.text ?? '';
    }
    assert.equal(text, answerText('real-model-a'));
  });

  test('Vercel AI SDK streamText (chat and responses models): text exact', T, async () => {
    for (const model of [aiProvider.chat('chat'), aiProvider.responses('chat')]) {
      const errors = [];
      const result = streamText({ model, prompt: 'hi', maxRetries: 0, onError: ({ error }) => errors.push(error) });
      let text = '';
      for await (const d of result.textStream) text += d;
      assert.deepEqual(errors, []);
      assert.equal(text, answerText('real-model-a'));
      const resp = await result.response;
      assert.equal(resp.modelId, 'chat');
    }
  });

  test('tiny reads: model split across reads is still rewritten in every event', T, async () => {
    A.reset();
    const r = await gwPost(gw, '/v1/chat/completions', withUsage('tiny'));
    assert.equal(r.status, 200);
    const { events } = parseSSE(r.text);
    for (const e of events.slice(0, -1)) assert.equal(JSON.parse(e.data).model, 'tiny', e.data);
    assert.equal(chatText(events), answerText('tiny-real-model-name'));
    assert.equal(events.at(-1).data, '[DONE]');
    assert.equal(r.text, rewriteAll(A.stats().requests.at(-1).response_body, 'tiny-real-model-name', 'tiny'));
    // and the responses API, whose model is nested in "response"
    const rs = await gwPost(gw, '/v1/responses', JSON.stringify({ model: 'tiny', input: 'x', stream: true }));
    const evs = parseSSE(rs.text).events;
    assert.equal(evs.at(-1).event, 'response.completed');
    for (const e of evs) {
      const o = JSON.parse(e.data);
      if (o.response) assert.equal(o.response.model, 'tiny');
    }
  });

  for (const [group, what, wantEvents] of [
    ['dropmid', 'upstream drops mid-stream', 3],
    ['nodone', 'upstream ends without [DONE]', null],
  ]) {
    test(`${what}: client gets an upstream_error event and no [DONE]`, T, async () => {
      A.reset();
      const r = await gwPost(gw, '/v1/chat/completions', streamBody(group), { timeout: 15000, allowError: true });
      assert.equal(r.status, 200);
      const { events, trailing } = parseSSE(r.text);
      assert.equal(trailing, null, `unterminated event at the end: ${JSON.stringify(trailing)}`);
      assert.ok(!events.some((e) => e.data === '[DONE]'), 'no [DONE] after a broken upstream stream');
      const last = JSON.parse(events.at(-1).data);
      assert.ok(last.error, `last event is not an error: ${events.at(-1).data}`);
      assert.equal(last.error.type, 'upstream_error');
      assert.equal(typeof last.error.message, 'string');
      const normal = events.slice(0, -1);
      if (wantEvents !== null) assert.equal(normal.length, wantEvents);
      else assert.equal(normal.length, A.stats().requests.at(-1).response_events_sent - 1);  // minus the usage chunk
      for (const e of normal) assert.equal(JSON.parse(e.data).model, group);
      // the SDK surfaces it as an error
      await assert.rejects(async () => {
        const s = await client.chat.completions.create({ model: group, messages: [{ role: 'user', content: 'x' }], stream: true });
        for await (const _ of s);
      }, (e) => e instanceof Error);
    });
  }

  test('upstream stream sent with Content-Length (not chunked) works', T, async () => {
    A.reset();
    const r = await gwPost(gw, '/v1/chat/completions', withUsage('sselen'));
    assert.equal(r.status, 200);
    assert.equal(r.text, rewriteAll(A.stats().requests.at(-1).response_body, 'sselen-model', 'sselen'));
    const s = await client.chat.completions.create({ model: 'sselen', messages: [{ role: 'user', content: 'x' }], stream: true });
    let text = '';
    for await (const ch of s) text += ch.choices[0]?.delta?.content ?? '';
    assert.equal(text, answerText('sselen-model'));
  });

  for (const group of ['crlf', 'comments', 'crlfcomments']) {
    test(`upstream SSE variant "${group}" passes: events equal, SDK reads it`, T, async () => {
      A.reset();
      const r = await gwPost(gw, '/v1/chat/completions', withUsage(group));
      assert.equal(r.status, 200);
      const got = parseSSE(r.text).events;
      const rec = A.stats().requests.at(-1);
      const name = rec.model;
      const want = parseSSE(rewriteAll(rec.response_body, name, group)).events;
      assert.deepEqual(got, want);
      const s = await client.chat.completions.create({ model: group, messages: [{ role: 'user', content: 'x' }], stream: true });
      let text = '';
      for await (const ch of s) {
        assert.equal(ch.model, group);
        text += ch.choices[0]?.delta?.content ?? '';
      }
      assert.equal(text, answerText(name));
    });
  }

  test('an error event from the provider passes through; later events still rewritten', T, async () => {
    A.reset();
    const r = await gwPost(gw, '/v1/chat/completions', streamBody('errevent'));
    assert.equal(r.status, 200);
    const sent = A.stats().requests.at(-1).response_body;
    assert.ok(sent.includes('"choices":[],"usage":{'), 'the provider was asked for usage');
    assert.equal(r.text, rewriteAll(withoutUsageChunk(sent), 'errevent-model', 'errevent'));
  });

  test('large events (300 KB delta) are rewritten and complete', T, async () => {
    A.reset();
    const r = await gwPost(gw, '/v1/chat/completions', streamBody('bigstream'), { timeout: 20000 });
    assert.equal(r.status, 200);
    const { events } = parseSSE(r.text);
    for (const e of events.slice(0, -1)) assert.equal(JSON.parse(e.data).model, 'bigstream');
    assert.equal(chatText(events).length, answerText('bigstream-model').length + 300000);
    assert.equal(events.at(-1).data, '[DONE]');
  });

  test('client abort mid-stream: the provider connection is closed within 100 ms', T, async () => {
    A.reset();
    const ac = new AbortController();
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${CLIENT_TOKEN}`, 'content-type': 'application/json' },
      body: streamBody('slow'),
      signal: ac.signal,
    });
    assert.equal(res.status, 200);
    const reader = res.body.getReader();
    const first = await reader.read();
    assert.ok(!first.done && first.value.length > 0);
    const rec = A.requests().at(-1); // the live record
    assert.equal(rec.model, 'slow-model');
    assert.equal(rec.aborted, false);
    const abortedAt = performance.timeOrigin + performance.now();
    ac.abort();
    await reader.read().catch(() => {});
    await waitFor(() => rec.aborted, { timeout: 2000, every: 5, what: 'the provider connection closed' });
    const lag = rec.t_abort - abortedAt;
    assert.ok(lag < 100, `provider connection closed ${lag.toFixed(1)} ms after the client left`);
    assert.ok(rec.response_events_sent < 12, 'the provider was still streaming');
  });

  test('client abort: the gateway keeps serving and the upstream pool is healthy', T, async () => {
    for (let i = 0; i < 5; i++) {
      const r = await gwPost(gw, '/v1/chat/completions', streamBody('chat'));
      assert.equal(r.status, 200);
      assert.equal(chatText(parseSSE(r.text).events), answerText('real-model-a'));
    }
  });

  test('upstream 429 before the stream: client gets 429 with the body', T, async () => {
    A.reset();
    const r = await gwPost(gw, '/v1/chat/completions', streamBody('e429'));
    assert.equal(r.status, 429);
    assert.equal(r.text, A.stats().requests.at(-1).response_body);
    assert.equal(r.headers['retry-after'], '2');
    await assert.rejects(
      client.chat.completions.create({ model: 'e429', messages: [{ role: 'user', content: 'x' }], stream: true }),
      (e) => e.status === 429,
    );
  });

  test('upstream silent longer than timeouts.idle mid-stream: error event, no [DONE], provider closed', T, async () => {
    A.reset();
    const t0 = performance.now();
    const r = await gwPost(gw, '/v1/chat/completions', streamBody('stall'), { timeout: 20000, allowError: true });
    const took = performance.now() - t0;
    assert.equal(r.status, 200);
    const { events } = parseSSE(r.text);
    assert.ok(!events.some((e) => e.data === '[DONE]'));
    const last = JSON.parse(events.at(-1).data);
    assert.ok(last.error, `last event: ${events.at(-1).data}`);
    assert.ok(took < (IDLE_S + 2) * 1000 + 1500, `took ${took} ms`);
    await waitFor(() => A.stats().requests.at(-1).aborted, { timeout: 2000, what: 'provider connection closed' });
  });

  test('200 concurrent streams all complete with exact text', { timeout: 90000 }, async () => {
    A.reset();
    const N = 200;
    const t0 = performance.now();
    const rs = await Promise.all(
      Array.from({ length: N }, () => gwPost(gw, '/v1/chat/completions', withUsage('chat'), { timeout: 60000 }).catch((e) => e)),
    );
    const bad = [];
    rs.forEach((r, i) => {
      if (r instanceof Error) return bad.push(`#${i}: ${r.message}`);
      if (r.status !== 200) return bad.push(`#${i}: status ${r.status} ${r.text.slice(0, 200)}`);
      const { events } = parseSSE(r.text);
      if (events.at(-1)?.data !== '[DONE]') return bad.push(`#${i}: no [DONE]`);
      if (chatText(events) !== answerText('real-model-a')) return bad.push(`#${i}: text ${chatText(events)}`);
      if (!events.slice(0, -1).every((e) => JSON.parse(e.data).model === 'chat')) bad.push(`#${i}: model not rewritten`);
    });
    assert.deepEqual(bad.slice(0, 10), [], `${bad.length} of ${N} failed`);
    assert.equal(A.stats().requests.length, N);
    process.stderr.write(`# 200 concurrent streams took ${(performance.now() - t0).toFixed(0)} ms\n`);
  });

  test('SIGTERM with a stream in flight: the stream finishes, then the gateway exits 0', T, async () => {
    A.reset();
    let signalled = false;
    const p = gwPost(gw, '/v1/chat/completions', streamBody('slow'), {
      timeout: 20000,
      allowError: true,
      onChunk: () => {
        if (!signalled) {
          signalled = true;
          gw.proc.kill('SIGTERM');
        }
      },
    });
    const r = await p;
    assert.ok(signalled);
    assert.equal(r.status, 200);
    const { events } = parseSSE(r.text);
    assert.equal(events.at(-1)?.data, '[DONE]', `stream cut by shutdown: ${r.error?.message ?? ''}`);
    assert.equal(chatText(events), answerText('slow-model'));
    const exit = await gw.stop({ timeout: 10000 });
    assert.deepEqual(exit, { code: 0, signal: null });
  });
});
