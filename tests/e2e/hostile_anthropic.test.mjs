// Broken and hostile answers from an api "anthropic" target, as a table. A one-off HTTP server
// plays Anthropic: the case is chosen by the provider's base path (/h/<case>). Each case states
// what the OpenAI client must get: an exact status and OpenAI error shape, or a stream that ends
// with an error event and no [DONE]. The gateway must stay up.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startGateway } from './lib/gateway.mjs';
import { chatBody, gwPost } from './lib/common.mjs';

const T = { timeout: 30000 };
const sse = (type, data) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
const START = sse('message_start', {
  message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-x', content: [], stop_reason: null, usage: { input_tokens: 5, output_tokens: 1 } },
});
const TEXT = sse('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }) + sse('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'Hello' } });

const END = sse('content_block_stop', { index: 0 }) + sse('message_delta', { delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 2 } }) + sse('message_stop', {});
const SSE_HEAD = { 'content-type': 'text/event-stream' };
const MESSAGE = {
  id: 'msg_2', type: 'message', role: 'assistant', model: 'claude-x', content: [{ type: 'text', text: 'Hello' }],
  stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: 5, output_tokens: 2 },
};
const hitsOf = new Map(); // case name -> base paths of the requests it got

const CASES = [
  {
    name: '200 JSON that is not an Anthropic message',
    answer: (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"hello":"world"}'),
    expect: { status: 502 },
  },
  {
    name: '200 body that is not JSON',
    answer: (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('<html>oops</html>'),
    expect: { status: 502 },
  },
  {
    name: '529 with an HTML body',
    answer: (res) => res.writeHead(529, { 'content-type': 'text/html' }).end('<html>overloaded</html>'),
    expect: { status: 503 },
  },
  {
    // Kept while the group's second target is tried, then answered (write_kept_answer).
    name: '529 with an HTML body from both targets of a group',
    targets: 2,
    answer: (res) => res.writeHead(529, { 'content-type': 'text/html; charset=utf-8' }).end('<html>overloaded</html>'),
    expect: { status: 503 },
  },
  {
    name: '500 text/plain body with a Content-Encoding the gateway does not decode',
    answer: (res) => res.writeHead(500, { 'content-type': 'text/plain', 'content-encoding': 'br' }).end('internal error'),
    expect: { status: 500 },
  },
  {
    name: '400 Anthropic error sent as text/plain',
    answer: (res) =>
      res.writeHead(400, { 'content-type': 'text/plain' }).end(JSON.stringify({ type: 'error', error: { type: 'invalid_request_error', message: 'messages: bad' } })),
    expect: { status: 400, message: /messages: bad/ },
  },
  {
    name: '400 Anthropic error: passed through in OpenAI shape',
    answer: (res) =>
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ type: 'error', error: { type: 'invalid_request_error', message: 'messages: bad' } })),
    expect: { status: 400, message: /messages: bad/ },
  },
  {
    name: 'stream cut before message_stop',
    stream: true,
    answer: (res) => res.writeHead(200, { 'content-type': 'text/event-stream' }).end(START + TEXT),
    expect: { streamError: true, text: 'Hello' },
  },
  {
    name: 'stream with a broken event',
    stream: true,
    answer: (res) => res.writeHead(200, { 'content-type': 'text/event-stream' }).end(START + TEXT + 'event: content_block_delta\ndata: {not json\n\n'),
    expect: { streamError: true },
  },
  {
    name: 'stream whose first event is an error',
    stream: true,
    answer: (res) =>
      res.writeHead(200, { 'content-type': 'text/event-stream' }).end(sse('error', { error: { type: 'overloaded_error', message: 'Overloaded' } })),
    expect: { streamError: true },
  },
  {
    // The broken event is the answer's first client event (an error event): the exchange fails
    // over as for an OpenAI stream opening with an error. Each request must be whole, whichever
    // target round robin tried first; the broken one must have been tried.
    name: 'stream whose first event is broken, then a good target',
    stream: true,
    targets: 2,
    requests: 4,
    answer: (res, req) =>
      req.url.includes('/t0/')
        ? res.writeHead(200, SSE_HEAD).end('event: message_start\ndata: {nope\n\n' + START + TEXT + END)
        : res.writeHead(200, SSE_HEAD).end(START + TEXT + END),
    expect: { done: true, text: 'Hello', tried: /\/t0\// },
  },
  {
    // An error (overloaded_error) as the stream's first event: nothing reached the client yet,
    // so the exchange fails over.
    name: 'stream whose first event is an error, then a good target',
    stream: true,
    targets: 2,
    requests: 4,
    answer: (res, req) =>
      req.url.includes('/t0/')
        ? res.writeHead(200, SSE_HEAD).end(sse('error', { error: { type: 'overloaded_error', message: 'Overloaded' } }))
        : res.writeHead(200, SSE_HEAD).end(START + TEXT + END),
    expect: { done: true, text: 'Hello', tried: /\/t0\// },
  },
  {
    // message_start writes nothing to the client (the role chunk waits for the next event), so
    // a broken event after it is still the first client event: failover.
    name: 'stream broken right after message_start, then a good target',
    stream: true,
    targets: 2,
    requests: 4,
    answer: (res, req) =>
      req.url.includes('/t0/')
        ? res.writeHead(200, SSE_HEAD).end(START + 'event: content_block_start\ndata: {nope\n\n')
        : res.writeHead(200, SSE_HEAD).end(START + TEXT + END),
    expect: { done: true, text: 'Hello', tried: /\/t0\// },
  },
  {
    // Nothing of a JSON answer reaches the client before it is read and translated whole.
    name: '200 JSON that is not an Anthropic message, then a good target',
    json: true,
    targets: 2,
    requests: 4,
    answer: (res, req) =>
      req.url.includes('/t0/')
        ? res.writeHead(200, { 'content-type': 'application/json' }).end('{"hello":"world"}')
        : res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(MESSAGE)),
    expect: { tried: /\/t0\//, done: true },
  },
  {
    // Not the first client event (the role chunk and a text delta went first): no failover.
    name: 'stream broken after its first text, then a good target',
    stream: true,
    targets: 2,
    requests: 4,
    answer: (res, req) =>
      req.url.includes('/t0/')
        ? res.writeHead(200, SSE_HEAD).end(START + TEXT + 'event: content_block_delta\ndata: {nope\n\n')
        : res.writeHead(200, SSE_HEAD).end(START + TEXT + END),
    expect: { tried: /\/t0\// },
  },
];

describe('hostile anthropic answers', () => {
  let server, gw;
  before(async () => {
    server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const name = decodeURIComponent(req.url.split('/')[2] ?? '');
        const c = CASES.find((x) => x.name.replace(/\W+/g, '_') === name);
        if (!c) return res.writeHead(404).end();
        hitsOf.set(c.name, [...(hitsOf.get(c.name) ?? []), req.url]);
        c.answer(res, req);
      });
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const u = `http://127.0.0.1:${server.address().port}`;
    gw = await startGateway({
      config: {
        providers: CASES.flatMap((c, i) =>
          Array.from({ length: c.targets ?? 1 }, (_, k) => ({
            group: `g${i}`,
            name: 'claude-x',
            base: `${u}/h/${c.name.replace(/\W+/g, '_')}/t${k}`,
            key: 'k',
            api: 'anthropic',
          })),
        ),
        security: ['sk-client'],
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await new Promise((r) => server.close(r));
  });

  CASES.forEach((c, i) => {
    test(c.name, T, async () => {
      if (c.requests) {
        // Bounded: requests until one started on the broken target (round robin alternates).
        let tried = false;
        for (let k = 0; k < c.requests && !tried; k++) {
          const before = (hitsOf.get(c.name) ?? []).length;
          const r = await gwPost(gw, '/v1/chat/completions', chatBody(`g${i}`, { stream: !c.json }));
          const hits = (hitsOf.get(c.name) ?? []).slice(before);
          tried = c.expect.tried.test(hits[0] ?? '');
          assert.equal(r.status, 200, r.text);
          if (c.json) {
            assert.equal(r.json().choices[0].message.content, 'Hello', r.text);
            assert.equal(r.json().model, `g${i}`, r.text);
            assert.equal(hits.length, tried ? 2 : 1, JSON.stringify(hits)); // failed over once
            continue;
          }
          const ev = r.text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
          if (c.expect.done || !tried) {
            assert.equal(ev.at(-1), '[DONE]', r.text);
            assert.match(r.text, /"content":"Hello"/);
            for (const e of ev.slice(0, -1)) assert.equal(JSON.parse(e).model, `g${i}`, r.text);
            assert.equal(hits.length, tried ? 2 : 1, JSON.stringify(hits)); // failed over once
          } else {
            assert.ok(!ev.includes('[DONE]'), r.text);
            assert.equal(typeof JSON.parse(ev.at(-1)).error, 'object', r.text);
            assert.match(ev[0], /"role":"assistant"/, r.text);
            assert.equal(hits.length, 1, JSON.stringify(hits)); // no failover
          }
        }
        assert.ok(tried, `no request started on the broken target: ${JSON.stringify(hitsOf.get(c.name))}`);
        return;
      }
      const r = await gwPost(gw, '/v1/chat/completions', chatBody(`g${i}`, c.stream ? { stream: true } : {}));
      if (c.expect.streamError) {
        assert.equal(r.status, 200, r.text);
        const ev = r.text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
        assert.ok(!ev.includes('[DONE]'), r.text);
        assert.equal(typeof JSON.parse(ev.at(-1)).error, 'object', r.text);
        if (c.expect.text) assert.match(r.text, new RegExp(c.expect.text));
        return;
      }
      assert.equal(r.status, c.expect.status, r.text);
      // The gateway wrote this body (OpenAI JSON), whatever the provider's Content-Type was.
      assert.match(String(r.headers['content-type']), /^application\/json/, `content-type of ${r.text}`);
      assert.equal(r.headers['content-encoding'], undefined, 'the JSON body is not encoded');
      const j = JSON.parse(r.text);
      assert.equal(typeof j.error, 'object', r.text);
      assert.equal(typeof j.error.message, 'string', r.text);
      assert.equal(j.type, undefined, 'OpenAI shape, not Anthropic');
      if (c.expect.message) assert.match(j.error.message, c.expect.message);
    });
  });

  test('the gateway is still up', T, async () => {
    const r = await gwPost(gw, '/v1/chat/completions', chatBody('g0'));
    assert.equal(r.status, 502);
  });
});
