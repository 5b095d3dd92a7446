// End-to-end: a stream's head is held for its first data event (an opening error event fails
// over), but not through a long prefill: keep-alive comments (an Anthropic stream's
// message_start and pings) the provider sends from timeouts.stream_hold on reach the client.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startMock, answerText } from '../../tools/mock-provider/server.js';
import { request, parseSSE } from './lib/http.mjs';
import { CLIENT_TOKEN, chatBody, rewriteAll, withoutUsageChunk } from './lib/common.mjs';
import { makeTestCA } from './lib/tls.mjs';
import { startH2Gateway, h2connect, h2request } from './lib/h2.mjs';

const T = { timeout: 30000 };
const HOLD_S = 0.6;
// Keep-alives 2 s apart for 4 s: the one at 0 s is inside the hold, the one at 2 s releases
// the head; the gap after it is longer than timeouts.idle (1 s), so until the first data event
// the reads must keep first_byte's limit.
const PREFILL = 'prefill-4000-2000';
// Anthropic: message_start, pings at 0, 2 (the release) and 4 s, content at 6 s: the ping
// after the release must not count as the first event (reads would then get idle's 1 s).
const ANT_PREFILL = 'prefill-6000-2000';
// The head is released at ~2 s (held for the first data event, it would come at ~4 s).
const released = (ms) => ms >= 1000 && ms < 3600;

// POST with the arrival time of the answer head and of each body piece, in ms from the send.
async function timedPost(gw, path, body, headers = {}) {
  let headAt = -1;
  const t0 = performance.now();
  const r = await request({
    url: `${gw.url}${path}`,
    method: 'POST',
    headers: { authorization: `Bearer ${CLIENT_TOKEN}`, 'content-type': 'application/json', ...headers },
    body,
    timeout: 20000,
    onResponse: () => (headAt = performance.now() - t0),
  });
  return { ...r, headAt };
}

// The value of a Prometheus sample `name{labels} value` whose labels include every `want` pair.
function sample(text, name, want) {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const labels = line.slice(name.length + 1, line.lastIndexOf('}'));
    if (Object.entries(want).every(([k, v]) => labels.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('stream hold', { timeout: 120000 }, () => {
  let A, gw, ca;

  before(async () => {
    A = await startMock({ anthropicKey: 'ant-key' });
    ca = makeTestCA();
    const P = (group, name, mode, extra = {}) => ({ group, name, base: `${A.url}/mode/${mode}`, key: 'sk-provider-a', ...extra });
    // The plain listener, and the TLS one for HTTP/2.
    gw = await startH2Gateway({
      ca,
      providers: [
        P('prefill', 'prefill-model', PREFILL),
        P('holdfail', 'bad-model', 'comments,stream-error-event'),
        P('holdfail', 'good-model', 'comments'),
        P('antprefill', 'claude-prefill', ANT_PREFILL, { key: 'ant-key', api: 'anthropic' }),
        // An error event after the release: relayed, never failed over (both would fail).
        P('holdlate', 'late-a', `${PREFILL},stream-error-event`),
        P('holdlate', 'late-b', `${PREFILL},stream-error-event`),
        // An error event trickling in (1-3 bytes a write) after a comment that came inside the
        // hold: its first bytes are nothing for the client, so they release nothing.
        P('splitfail', 'split-a', 'tiny,prefill-1500-1500,stream-error-event'),
        P('splitfail', 'split-b', 'tiny,prefill-1500-1500,stream-error-event'),
        // ... and one whose first part comes in one read with a comment (client bytes, but not
        // whole: the event is still incomplete).
        P('splitlead', 'lead-a', 'prefill-1500-1500,split-first-300,stream-error-event'),
        P('splitlead', 'lead-b', 'prefill-1500-1500,split-first-300,stream-error-event'),
        // Anthropic: comments between message_start, its pings and an opening error.
        P('antcomm', 'claude-a', 'comments,overloaded-at-start', { key: 'ant-key', api: 'anthropic' }),
        P('antcomm', 'claude-b', 'comments,overloaded-at-start', { key: 'ant-key', api: 'anthropic' }),
        // A reasoning model's thinking (40 deltas 50 ms apart) before its text.
        P('reasoning', 'r-model', 'reasoning-40,slow-stream-50'),
        // Events every 300 ms for ~4 s, under this provider's total of 1 s.
        P('totalcap', 'tc-model', 'slow-stream-300', { timeouts: { total: 1 } }),
      ],
      extra: {
        groups: Object.fromEntries(['holdfail', 'holdlate', 'splitfail', 'splitlead', 'antcomm'].map((g) => [g, { attempts: 2 }])),
        timeouts: { connect: 2, first_byte: 5, idle: 1, total: 60, stream_hold: HOLD_S },
      },
    });
  });

  after(async () => {
    if (gw && !gw.exited()) await gw.stop();
    gw?.cleanup();
    await A?.close();
    ca?.cleanup();
  });

  test('keep-alive comments through a long prefill release the head after stream_hold; the stream stays whole', T, async () => {
    A.reset();
    const r = await timedPost(gw, '/v1/chat/completions', chatBody('prefill', { stream: true }));
    assert.equal(r.status, 200, r.text);
    // Released by the comment at ~2 s, not at the first data event (~4 s); the comment at 0 s
    // was inside the hold.
    assert.ok(released(r.headAt), `head after ${Math.round(r.headAt)} ms`);
    const first = r.chunks[0];
    assert.ok(released(first.t), `first body bytes after ${Math.round(first.t)} ms`);
    assert.match(first.bytes.toString(), /^: PROCESSING\n\n: PROCESSING\n\n/);
    const sent = A.stats().requests.at(-1).response_body;
    assert.equal(r.text, rewriteAll(withoutUsageChunk(sent), 'prefill-model', 'prefill'));
    const { events, comments } = parseSSE(r.text);
    assert.equal(comments.length, 2);
    assert.equal(events.at(-1).data, '[DONE]');
    for (const e of events.slice(0, -1)) assert.equal(JSON.parse(e.data).model, 'prefill');
    // The time to the first token is the first data event's, not the head's.
    const m = await request({ url: `${gw.adminUrl}/metrics` });
    const labels = { gen_ai_request_model: 'prefill' };
    assert.equal(sample(m.text, 'gen_ai_server_time_to_first_token_seconds_count', labels), 1);
    assert.equal(sample(m.text, 'gen_ai_server_time_to_first_token_seconds_bucket', { ...labels, le: '2.5' }), 0);
  });

  test('a comment inside the hold releases nothing: an opening error event behind it fails over', T, async () => {
    A.reset();
    for (let i = 0; i < 2; i++) {
      const r = await timedPost(gw, '/v1/chat/completions', chatBody('holdfail', { stream: true }));
      assert.equal(r.status, 200, r.text);
      const { events } = parseSSE(r.text);
      assert.ok(events.every((e) => !e.data.includes('"error"')), r.text);
      assert.equal(events.at(-1).data, '[DONE]');
    }
    const models = A.stats().requests.map((q) => q.model);
    assert.deepEqual(models.filter((m) => m === 'good-model').length, 2, models.join());
    assert.ok(models.includes('bad-model'), models.join());
  });

  test('Anthropic pass-through: message_start and pings through a long prefill go out after stream_hold', T, async () => {
    A.reset();
    const r = await timedPost(
      gw,
      '/v1/messages',
      { model: 'antprefill', max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'Hi' }] },
      { 'anthropic-version': '2023-06-01' },
    );
    assert.equal(r.status, 200, r.text);
    assert.ok(released(r.headAt), `head after ${Math.round(r.headAt)} ms`);
    const first = r.chunks[0].bytes.toString();
    assert.ok(released(r.chunks[0].t), `first body bytes after ${Math.round(r.chunks[0].t)} ms`);
    assert.match(first, /^event: message_start\n/);
    assert.match(first, /"model":"antprefill"/);
    assert.match(first, /event: ping\n/);
    const types = parseSSE(r.text).events.map((e) => e.event);
    assert.equal(types[0], 'message_start');
    assert.equal(types.filter((t) => t === 'ping').length, 4);
    assert.equal(types.at(-1), 'message_stop');
    assert.ok(!types.includes('error'), r.text);
    const m = await request({ url: `${gw.adminUrl}/metrics` });
    const labels = { gen_ai_request_model: 'antprefill' };
    assert.equal(sample(m.text, 'gen_ai_server_time_to_first_token_seconds_count', labels), 1);
    assert.equal(sample(m.text, 'gen_ai_server_time_to_first_token_seconds_bucket', { ...labels, le: '2.5' }), 0);
  });

  test('an error event after the release is relayed to the client, not failed over', T, async () => {
    A.reset();
    const r = await timedPost(gw, '/v1/chat/completions', chatBody('holdlate', { stream: true }));
    assert.equal(r.status, 200, r.text);
    assert.ok(released(r.headAt), `head after ${Math.round(r.headAt)} ms`);
    const { events, comments } = parseSSE(r.text);
    assert.equal(comments.length, 2);
    assert.equal(JSON.parse(events[0].data).error.message, 'mock stream error event');
    assert.equal(A.stats().requests.length, 1, 'one attempt');
    assert.equal(r.headers['x-openbridge-attempts'], '1');
  });

  test('an opening error event arriving in pieces after the hold still fails over', T, async () => {
    A.reset();
    const r = await timedPost(gw, '/v1/chat/completions', chatBody('splitfail', { stream: true }));
    assert.equal(A.stats().requests.length, 2, 'the second target was tried');
    assert.equal(r.headers['x-openbridge-attempts'], '2');
    assert.ok(r.headAt >= 2800, `head after ${Math.round(r.headAt)} ms: held through the first attempt`);
  });

  test('an opening error event whose first part comes with a comment after the hold still fails over', T, async () => {
    A.reset();
    const r = await timedPost(gw, '/v1/chat/completions', chatBody('splitlead', { stream: true }));
    assert.equal(A.stats().requests.length, 2, 'the second target was tried');
    assert.equal(r.headers['x-openbridge-attempts'], '2');
  });

  test('Anthropic pass-through: comments after message_start do not make its pings count; an opening error fails over', T, async () => {
    A.reset();
    const r = await timedPost(
      gw,
      '/v1/messages',
      { model: 'antcomm', max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'Hi' }] },
      { 'anthropic-version': '2023-06-01' },
    );
    assert.equal(A.stats().requests.length, 2, `the second target was tried: ${r.text}`);
    assert.equal(r.headers['x-openbridge-attempts'], '2');
  });

  test('an OpenAI client on an Anthropic target: pings through a long prefill become comments and release the head', T, async () => {
    A.reset();
    const r = await timedPost(gw, '/v1/chat/completions', chatBody('antprefill', { stream: true }));
    assert.equal(r.status, 200, r.text);
    assert.ok(released(r.headAt), `head after ${Math.round(r.headAt)} ms`);
    assert.ok(released(r.chunks[0].t), `first body bytes after ${Math.round(r.chunks[0].t)} ms`);
    // The pings at 0 and 2 s; the one at 4 s comes on its own; the text at 6 s.
    assert.match(r.chunks[0].bytes.toString(), /^: ping\n\n: ping\n\n/);
    const { events, comments } = parseSSE(r.text);
    assert.ok(r.text.startsWith(': ping\n\n: ping\n\n: ping\n\ndata: '), r.text.slice(0, 300));
    assert.equal(comments.length, 4, 'and the ping inside the text block');
    assert.equal(events.at(-1).data, '[DONE]');
    const text = events.slice(0, -1).map((e) => JSON.parse(e.data)).map((c) => c.choices[0]?.delta?.content ?? '').join('');
    assert.equal(text, answerText('claude-prefill'));
    // The SDK reads the same stream (comments skipped).
    A.reset();
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: CLIENT_TOKEN, maxRetries: 0, timeout: 20000 });
    const stream = await client.chat.completions.create({ model: 'antprefill', stream: true, messages: [{ role: 'user', content: 'Hi' }] });
    let sdkText = '';
    for await (const ch of stream) {
      assert.equal(ch.model, 'antprefill');
      sdkText += ch.choices[0]?.delta?.content ?? '';
    }
    assert.equal(sdkText, answerText('claude-prefill'));
  });

  test('an Anthropic client on an OpenAI target: the provider\'s keep-alive comments release the head', T, async () => {
    A.reset();
    const r = await timedPost(
      gw,
      '/v1/messages',
      { model: 'prefill', max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'Hi' }] },
      { 'anthropic-version': '2023-06-01' },
    );
    assert.equal(r.status, 200, r.text);
    assert.ok(released(r.headAt), `head after ${Math.round(r.headAt)} ms`);
    assert.ok(released(r.chunks[0].t), `first body bytes after ${Math.round(r.chunks[0].t)} ms`);
    // Before message_start a comment is all an Anthropic stream may carry.
    assert.match(r.chunks[0].bytes.toString(), /^: ping\n\n: ping\n\n/);
    const types = parseSSE(r.text).events.map((e) => e.event);
    assert.equal(types[0], 'message_start');
    assert.equal(types.at(-1), 'message_stop');
    assert.ok(!types.includes('error'), r.text);
  });

  test('an Anthropic client on a reasoning model: pings while it thinks, then the text (Anthropic SDK)', T, async () => {
    A.reset();
    const r = await timedPost(
      gw,
      '/v1/messages',
      { model: 'reasoning', max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'Hi' }] },
      { 'anthropic-version': '2023-06-01' },
    );
    assert.equal(r.status, 200, r.text);
    const { events } = parseSSE(r.text);
    const types = events.map((e) => e.event);
    // Reasoning deltas 1, 17 and 33 (of 40, 50 ms apart) each send a ping.
    assert.equal(types.filter((t) => t === 'ping').length, 3, types.join());
    assert.ok(types.indexOf('ping') < types.indexOf('content_block_start'), types.join());
    assert.ok(!r.text.includes('step '), 'no reasoning text');
    const at = (needle) => r.chunks.find((c) => c.bytes.toString().includes(needle))?.t;
    assert.ok(at('event: ping') < at('content_block_start') - 1000, `first ping at ${at('event: ping')} ms, text at ${at('content_block_start')} ms`);
    A.reset();
    const client = new Anthropic({ baseURL: gw.url, apiKey: CLIENT_TOKEN, maxRetries: 0, timeout: 20000 });
    const stream = client.messages.stream({ model: 'reasoning', max_tokens: 64, messages: [{ role: 'user', content: 'Hi' }] });
    const msg = await stream.finalMessage();
    assert.equal(msg.model, 'reasoning');
    assert.equal(msg.content.map((b) => b.text).join(''), answerText('r-model'));
  });

  test('a stream cut by timeouts.total says so', T, async () => {
    A.reset();
    const r = await timedPost(gw, '/v1/chat/completions', chatBody('totalcap', { stream: true }));
    assert.equal(r.status, 200, r.text);
    const { events } = parseSSE(r.text);
    const last = JSON.parse(events.at(-1).data);
    assert.equal(last.error?.code, 'upstream_timeout', r.text.slice(-300));
    assert.match(last.error.message, /timeouts\.total/);
  });

  test('HTTP/2: the released head and comments reach the stream before its first data event', T, async () => {
    A.reset();
    const session = await h2connect(gw, ca);
    try {
      let headAt = -1;
      const t0 = performance.now();
      const r = await h2request(session, { body: chatBody('prefill', { stream: true }), onResponse: () => (headAt = performance.now() - t0) });
      assert.equal(r.status, 200, r.text);
      assert.ok(released(headAt), `head after ${Math.round(headAt)} ms`);
      assert.ok(released(r.chunks[0].t), `first DATA after ${Math.round(r.chunks[0].t)} ms`);
      assert.match(r.chunks[0].bytes.toString(), /^: PROCESSING\n\n/);
      const sent = A.stats().requests.at(-1).response_body;
      assert.equal(r.text, rewriteAll(withoutUsageChunk(sent), 'prefill-model', 'prefill'));
    } finally {
      session.close();
    }
  });
});
