// Broken and hostile upstream answers, as a table. A one-off `net` server plays the provider:
// the case is chosen by the provider's base path (/h/<case>), and its answer is written as raw
// bytes. Each case states what the client must get (exact status and error code, or a stream
// error event), whether a second target of the group takes over, and the gateway must stay up
// and exit 0 at the end.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { startMock } from '../../tools/mock-provider/server.js';
import { startGateway } from './lib/gateway.mjs';
import { request, parseSSE, waitFor } from './lib/http.mjs';
import { listenRaw, rawExchange, rawRequest } from './lib/raw.mjs';
import { makeTestCA } from './lib/tls.mjs';
import { CLIENT_TOKEN, chatBody, gwPost, sleep, accessLines } from './lib/common.mjs';

const json = (model) => JSON.stringify({ id: 'x', object: 'chat.completion', model, choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }] });
const chunk = (model, text) => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', model, choices: [{ index: 0, delta: { content: text } }] })}\n\n`;
const head = (status, headers) => `HTTP/1.1 ${status}\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`;
const SSE_HEAD = head('200 OK', ['Content-Type: text/event-stream', 'Transfer-Encoding: chunked']);
const TOO_BIG = JSON.stringify({ error: { message: 'request too large', type: 'invalid_request_error', param: null, code: 'request_too_large' } });
const NO_KEY = JSON.stringify({ error: { message: 'invalid api key', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } });
const chunked = (s) => {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]);
};

// answer(sock, req): writes the hostile answer. req = {model, stream, bodyBytes}.
// bodyFirst false: answer as soon as the head arrived, without reading the body.
const EARLY_GIVE_UP_MS = 20000;
const EARLY_WITHIN_MS = 15000;

const CASES = [
  {
    name: 'garbage status line',
    answer: (s) => s.end('HELLO WORLD\r\n\r\n'),
    expect: { status: 502, code: 'upstream_bad_response' },
    failover: true,
  },
  {
    name: 'a 1 MB response header',
    answer: (s) => s.end(head('200 OK', [`X-Big: ${'a'.repeat(1024 * 1024)}`, 'Content-Length: 2']) + '{}'),
    expect: { status: 502, code: 'upstream_bad_response' },
    failover: true,
  },
  {
    name: 'invalid chunked encoding',
    answer: (s) => s.end(head('200 OK', ['Content-Type: application/json', 'Transfer-Encoding: chunked']) + 'zz\r\n{}\r\n0\r\n\r\n'),
    expect: { status: 502, code: 'upstream_bad_response' },
  },
  {
    name: 'Content-Length larger than the body, then close',
    answer: (s, r) => s.end(head('200 OK', ['Content-Type: application/json', 'Content-Length: 5000']) + json(r.model)),
    expect: { status: 502, code: 'upstream_bad_response' },
  },
  {
    name: 'Content-Length smaller than the body',
    // HTTP says the answer is the first 20 bytes: they are relayed as they are (not JSON, so
    // nothing to rewrite); the rest is stray bytes on the connection, which stays open.
    answer: (s, r) => s.write(head('200 OK', ['Content-Type: application/json', 'Content-Length: 20']) + json(r.model)),
    expect: { status: 200, body: json('real-hostile').slice(0, 20) },
  },
  {
    name: 'Content-Length smaller than the body, then a smuggled answer: the next request',
    // After the 20 announced bytes, the provider sends a whole second answer 50 ms later. A
    // connection with bytes nobody asked for must not be reused: the next request must get a
    // fresh answer (the same 20 bytes), never the smuggled one.
    answer: (s, r) => {
      s.write(head('200 OK', ['Content-Type: application/json', 'Content-Length: 20']) + json(r.model).slice(0, 20));
      const smuggled = '{"smuggled":true}';
      setTimeout(() => s.destroyed || s.write(head('200 OK', ['Content-Type: application/json', `Content-Length: ${smuggled.length}`]) + smuggled), 50);
    },
    expect: { status: 200, body: json('real-hostile').slice(0, 20) },
    followUp: { status: 200, body: json('real-hostile').slice(0, 20) },
  },
  {
    name: 'a non-JSON 200 body for a JSON request',
    // Relayed unchanged: the gateway rewrites only what parses (text answers, e.g. a
    // transcription with response_format=text, are legitimate).
    answer: (s) => {
      const b = '<html>oops</html>';
      s.end(head('200 OK', ['Content-Type: application/json', `Content-Length: ${b.length}`]) + b);
    },
    expect: { status: 200, body: '<html>oops</html>' },
  },
  {
    name: 'an HTTP/1.0 answer without length, ended by close',
    answer: (s, r) => s.end(`HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n${json(r.model)}`),
    expect: { status: 200 },
  },
  {
    name: 'an HTTP/1.0 event stream without length, ended by close',
    stream: true,
    answer: (s, r) => s.end(`HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\n${chunk(r.model, 'a')}${chunk(r.model, 'b')}data: [DONE]\n\n`),
    expect: { stream: 'done', text: 'ab' },
  },
  {
    name: 'both Content-Length and Transfer-Encoding: chunked',
    answer: (s, r) => {
      const b = json(r.model);
      s.end(head('200 OK', ['Content-Type: application/json', 'Content-Length: 3', 'Transfer-Encoding: chunked']) + chunked(b).toString() + '0\r\n\r\n');
    },
    expect: { status: 502, code: 'upstream_bad_response' },
    failover: true,
  },
  {
    name: '1,000 interim 100 Continue answers, then the answer',
    answer: (s, r) => {
      const b = json(r.model);
      s.end('HTTP/1.1 100 Continue\r\n\r\n'.repeat(1000) + head('200 OK', ['Content-Type: application/json', `Content-Length: ${b.length}`]) + b);
    },
    expect: { status: 200 },
  },
  {
    name: '101 Switching Protocols',
    answer: (s) => s.end(head('101 Switching Protocols', ['Upgrade: websocket', 'Connection: Upgrade']) + 'garbage-after-upgrade'),
    expect: { status: 502, code: 'upstream_bad_response' },
    failover: true,
  },
  {
    name: '101 Switching Protocols, then an answer',
    // Never asked for: not an interim answer to skip, but a broken one.
    answer: (s, r) => {
      const b = json(r.model);
      s.end(head('101 Switching Protocols', []) + head('200 OK', ['Content-Type: application/json', `Content-Length: ${b.length}`]) + b);
    },
    expect: { status: 502, code: 'upstream_bad_response' },
    failover: true,
  },
  {
    name: '204 No Content with an event-stream type: no body, and the next request on the connection is answered',
    // A 204 has no content: before, the gateway relayed it as a stream and wrote a chunked
    // body (an error event, the last chunk) after it on the client's kept-alive connection,
    // which the client then read as the start of its next answer.
    answer: (s) => s.end(head('204 No Content', ['Content-Type: text/event-stream'])),
    expect: { status: 204, body: '', headers: { 'content-length': undefined, 'transfer-encoding': undefined } },
    followUp: { status: 204, body: '' },
  },
  {
    name: '204 No Content with a binary type',
    answer: (s) => s.end(head('204 No Content', ['Content-Type: audio/mpeg'])),
    expect: { status: 204, body: '', headers: { 'content-length': undefined, 'transfer-encoding': undefined } },
    followUp: { status: 204, body: '' },
  },
  {
    name: 'a chunk size line that never ends (2 MB)',
    answer: (s) => s.end(head('200 OK', ['Content-Type: application/json', 'Transfer-Encoding: chunked']) + '5;x=' + 'a'.repeat(2 * 1024 * 1024)),
    expect: { status: 502, code: 'upstream_bad_response' },
  },
  {
    name: 'a trailer section that never ends (2 MB)',
    answer: (s, r) => s.end(head('200 OK', ['Content-Type: application/json', 'Transfer-Encoding: chunked']) + chunked(json(r.model)).toString() + '0\r\nX-Trailer: ' + 'a'.repeat(2 * 1024 * 1024)),
    expect: { status: 502, code: 'upstream_bad_response' },
  },
  {
    name: 'Transfer-Encoding gzip before a Content-Length',
    // The framing is in doubt (RFC 9112 section 6.3: the body would run to the close): refused,
    // never read by its Content-Length on a connection the pool would reuse.
    answer: (s, r) => {
      const b = json(r.model);
      s.end(head('200 OK', ['Content-Type: application/json', 'Transfer-Encoding: gzip', `Content-Length: ${b.length}`]) + b);
    },
    expect: { status: 502, code: 'upstream_bad_response' },
    failover: true,
  },
  {
    name: 'Transfer-Encoding: gzip, chunked',
    // Chunked last, so the framing holds, but a gzip body would reach the client as plain.
    answer: (s, r) => s.end(head('200 OK', ['Content-Type: application/json', 'Transfer-Encoding: gzip, chunked']) + chunked(json(r.model)).toString() + '0\r\n\r\n'),
    expect: { status: 502, code: 'upstream_bad_response' },
    failover: true,
  },
  {
    name: 'an HTTP/1.0 answer with Transfer-Encoding: chunked',
    answer: (s, r) => s.end(`HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n${chunked(json(r.model)).toString()}0\r\n\r\n`),
    expect: { status: 502, code: 'upstream_bad_response' },
    failover: true,
  },
  {
    name: 'a stream closed after its [DONE] without its last chunk: whole, no error event after it',
    // The provider's answer is incomplete as HTTP, not as a stream: the client already has
    // every event and [DONE]; an error event after them would make SDKs raise.
    stream: true,
    answer: (s, r) => s.end(SSE_HEAD + chunked(chunk(r.model, 'a')).toString() + chunked(chunk(r.model, 'b')).toString() + chunked('data: [DONE]\n\n').toString()),
    expect: { stream: 'done', text: 'ab' },
  },
  {
    name: 'a status line with a 3-digit status out of range (999)',
    answer: (s) => s.end(head('999 Whatever', ['Content-Length: 2']) + '{}'),
    expect: { status: 502, code: 'upstream_bad_response' },
    failover: true,
  },
  {
    name: 'a status line with status 000',
    answer: (s) => s.end(head('000 Zero', ['Content-Length: 2']) + '{}'),
    expect: { status: 502, code: 'upstream_bad_response' },
    failover: true,
  },
  {
    name: 'an SSE event of 10 MB after a normal one',
    stream: true,
    answer: (s, r) => {
      s.write(SSE_HEAD + chunked(chunk(r.model, 'a')));
      s.write(chunked(`data: {"x":"${'z'.repeat(10 * 1024 * 1024)}"}\n\n`));
      s.end(chunked('data: [DONE]\n\n') + '0\r\n\r\n');
    },
    expect: { stream: 'error', code: 'upstream_broken' },
  },
  {
    name: 'an SSE event of 10 MB first',
    stream: true,
    answer: (s) => {
      s.write(SSE_HEAD);
      s.end(chunked(`data: {"x":"${'z'.repeat(10 * 1024 * 1024)}"}\n\n`) + '0\r\n\r\n');
    },
    expect: { status: 502, code: 'upstream_bad_response' },
    failover: true,
  },
  {
    name: 'a stream that never ends, sending comments (timeouts.total 2 s)',
    stream: true,
    total: true,
    answer: (s, r) => {
      s.write(SSE_HEAD + chunked(chunk(r.model, 'a')));
      let n = 0;
      const t = setInterval(() => {
        if (s.destroyed || ++n > 100) {
          clearInterval(t);
          s.destroy();
          return;
        }
        s.write(chunked(': ping\n\n'));
      }, 100);
      s.on('close', () => clearInterval(t));
    },
    expect: { stream: 'error', code: 'upstream_timeout', withinMs: [1500, 4500] },
  },
  {
    name: 'an answer at once, then the body read and discarded (32 MB body)',
    bodyFirst: false,
    bigBody: 32 * 1024 * 1024,
    answer: (s, r) => {
      const b = json(r.model);
      s.write(head('200 OK', ['Content-Type: application/json', `Content-Length: ${b.length}`, 'Connection: close']) + b);
      setTimeout(() => s.destroy(), 4000);
    },
    expect: { status: 200 },
  },
  {
    name: 'an answer at once, the body never read (32 MB body)',
    bodyFirst: false,
    bigBody: 32 * 1024 * 1024,
    answer: (s, r) => {
      s.pause(); // the rest of the body is never read
      const b = json(r.model);
      s.write(head('200 OK', ['Content-Type: application/json', `Content-Length: ${b.length}`, 'Connection: close']) + b);
      setTimeout(() => s.destroy(), 4000);
    },
    expect: { status: 200 },
  },
  // Early answers to a body the provider never reads (a 413 or 401 before the body, a proxy
  // in front of the provider that answers and closes): the gateway reads while it writes, so
  // the answer reaches the client rather than a 502 once the provider gives up. The time bound
  // only has to tell "before the provider gives up" (EARLY_GIVE_UP_MS) from after it: wide, as
  // the client's 32 MB upload to the gateway counts in it (slow under ASan on a busy machine).
  {
    name: 'an early 413 with Connection: close, the body never read (32 MB body)',
    bodyFirst: false,
    bigBody: 32 * 1024 * 1024,
    answer: (s) => {
      s.pause();
      s.write(head('413 Payload Too Large', ['Content-Type: application/json', `Content-Length: ${TOO_BIG.length}`, 'Connection: close']) + TOO_BIG);
      setTimeout(() => s.destroy(), EARLY_GIVE_UP_MS).unref();
    },
    expect: { status: 413, body: TOO_BIG, withinMs: [0, EARLY_WITHIN_MS] },
  },
  {
    // A keep-alive answer to a request whose body was cut: the connection must not be pooled
    // (the provider would read the rest of the old body as the next request). The follow-up
    // gets its own answer on a fresh connection, not a hang on the stalled one.
    name: 'an early 401 with keep-alive headers, the body never read (32 MB body): not pooled',
    bodyFirst: false,
    bigBody: 32 * 1024 * 1024,
    answer: (s) => {
      s.pause();
      s.write(head('401 Unauthorized', ['Content-Type: application/json', `Content-Length: ${NO_KEY.length}`, 'Connection: keep-alive', 'Keep-Alive: timeout=60']) + NO_KEY);
    },
    expect: { status: 401, body: NO_KEY, withinMs: [0, EARLY_WITHIN_MS] },
    followUp: { status: 401, body: NO_KEY },
  },
  {
    // Providers send one chunk per event, and one read holds several; a chunk may also end
    // inside an event. The events relay whole and rewritten however the chunks cut them.
    name: 'a stream in 7-byte chunks, all in one write',
    stream: true,
    answer: (s, r) => {
      const text = chunk(r.model, 'a') + chunk(r.model, 'b') + chunk(r.model, 'c') + 'data: [DONE]\n\n';
      const parts = [];
      for (let i = 0; i < text.length; i += 7) parts.push(chunked(text.slice(i, i + 7)));
      s.end(Buffer.concat([Buffer.from(SSE_HEAD), ...parts, Buffer.from('0\r\n\r\n')]));
    },
    expect: { stream: 'done', text: 'abc' },
  },
  {
    name: 'a stream whose chunks hold an event and a half, across two writes',
    stream: true,
    answer: (s, r) => {
      const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((t) => chunk(r.model, t));
      const mid = (e) => e.length >> 1;
      s.write(Buffer.concat([Buffer.from(SSE_HEAD), chunked(a + b.slice(0, mid(b))), chunked(b.slice(mid(b)) + c + d.slice(0, mid(d)))]));
      setTimeout(() => s.end(Buffer.concat([chunked(d.slice(mid(d)) + 'data: [DONE]\n\n'), Buffer.from('0\r\n\r\n')])), 30);
    },
    expect: { stream: 'done', text: 'abcd' },
  },
  {
    name: 'an early answer as SSE, the body never read (32 MB body)',
    bodyFirst: false,
    bigBody: 32 * 1024 * 1024,
    stream: true,
    answer: (s, r) => {
      s.pause();
      s.write(SSE_HEAD + chunked(chunk(r.model, 'a')) + chunked(chunk(r.model, 'b')) + chunked('data: [DONE]\n\n') + '0\r\n\r\n');
      setTimeout(() => s.destroy(), EARLY_GIVE_UP_MS).unref();
    },
    expect: { stream: 'done', text: 'ab', withinMs: [0, EARLY_WITHIN_MS] },
  },
  {
    // Over TLS the write and the read beside it share one TLS stream: the write is cancelled
    // mid-record, the answer still reads whole.
    name: 'an early 413 over TLS, the body never read (32 MB body)',
    tls: true,
    bodyFirst: false,
    bigBody: 32 * 1024 * 1024,
    answer: (s) => {
      s.pause();
      s.write(head('413 Payload Too Large', ['Content-Type: application/json', `Content-Length: ${TOO_BIG.length}`]) + TOO_BIG);
      setTimeout(() => s.destroy(), EARLY_GIVE_UP_MS).unref();
    },
    expect: { status: 413, body: TOO_BIG, withinMs: [0, EARLY_WITHIN_MS] },
  },
];

const slug = (i) => `c${i}`;

// The hostile provider: reads the head (and the body unless the case says not to), then lets
// the case answer. Case i answers for base path /h/c<i>; each case has its own server (its own
// pooled upstream connections), so that one case's leftovers cannot reach another.
async function startHostile(c, ca) {
  const seen = {};
  const onSocket = (s) => {
    let buf = Buffer.alloc(0);
    let answered = false;
    s.on('data', (d) => {
      if (answered) return;
      buf = Buffer.concat([buf, d]);
      const sep = buf.indexOf('\r\n\r\n');
      if (sep < 0) return;
      const headText = buf.subarray(0, sep).toString('latin1');
      const m = /^\w+ \/h\/c(\d+)\//.exec(headText);
      const c = m && CASES[Number(m[1])];
      if (!c) return s.destroy();
      const len = Number(/\r\ncontent-length:\s*(\d+)/i.exec(headText)?.[1] ?? 0);
      if (c.bodyFirst !== false && buf.length - sep - 4 < len) return;
      answered = true;
      seen[m[1]] = (seen[m[1]] ?? 0) + 1;
      let model = 'real-hostile';
      try {
        model = JSON.parse(buf.subarray(sep + 4).toString()).model;
      } catch {}
      c.answer(s, { model });
    });
  };
  const up = await listenRaw({ tls: c.tls, ca }, onSocket);
  return { ...up, seen };
}

describe('hostile upstream answers', { timeout: 180000 }, () => {
  let hostile, mock, gw, ca;
  before(async () => {
    ca = makeTestCA();
    hostile = await Promise.all(CASES.map((c) => startHostile(c, ca)));
    mock = await startMock();
    const providers = [];
    CASES.forEach((c, i) => {
      const base = `${hostile[i].url}/h/${slug(i)}`;
      const timeouts = c.total ? { total: 2, idle: 10, first_byte: 5 } : { first_byte: 5, idle: 5 };
      providers.push({ group: `solo-${slug(i)}`, name: `real-hostile-${slug(i)}`, base, key: 'sk-up', timeouts });
      providers.push({ group: `pair-${slug(i)}`, name: `real-hostile-${slug(i)}`, base, key: 'sk-up', timeouts });
      providers.push({ group: `pair-${slug(i)}`, name: `real-healthy-${slug(i)}`, base: mock.url, key: 'sk-up' });
    });
    // Health off for the purpose: a hostile target must be tried by every request.
    gw = await startGateway({
      env: { SSL_CERT_FILE: ca.caCert, SSL_CERT_DIR: undefined },
      config: { providers, security: [CLIENT_TOKEN], health: { consecutive_failures: 1000, error_ratio: 1, min_requests: 1000000 }, retry: { budget_ratio: 10, budget_min_per_second: 1000 } },
    });
  });
  after(async () => {
    const r = await gw?.stop();
    for (const h of hostile ?? []) await h.close();
    await mock?.close();
    ca?.cleanup();
    assert.equal(r?.code, 0, `the gateway exits 0 after the hostile answers: ${JSON.stringify(r)}`);
  });

  CASES.forEach((c, i) => {
    // A follow-up goes on the same client connection, hence to the same worker and its pool.
    const agent = c.followUp ? new http.Agent({ keepAlive: true, maxSockets: 1 }) : undefined;
    const send = (group) => {
      const extra = c.stream ? { stream: true } : {};
      const body = c.bigBody ? JSON.stringify({ model: group, messages: [{ role: 'user', content: 'x'.repeat(c.bigBody) }], ...extra }) : chatBody(group, extra);
      return gwPost(gw, '/v1/chat/completions', body, { timeout: 15000, allowError: true, agent });
    };
    const check = async () => {
      const t0 = performance.now();
      const r = await send(`solo-${slug(i)}`);
      const ms = performance.now() - t0;
      const what = `${c.name}: ${r.status} ${r.text.slice(0, 300)}`;
      assert.ok(!r.error || c.expect.stream === 'error', `no transport error: ${r.error} ${what}`);
      assert.doesNotMatch(r.text.slice(0, 100000), /real-hostile/, `the real model name does not leak: ${what}`);
      if (c.expect.stream) {
        assert.equal(r.status, 200, what);
        const { events } = parseSSE(r.text);
        const last = events[events.length - 1];
        if (c.expect.stream === 'done') {
          assert.equal(last?.data, '[DONE]', what);
          const text = events.slice(0, -1).map((e) => JSON.parse(e.data).choices[0].delta.content).join('');
          assert.equal(text, c.expect.text, what);
        } else {
          assert.notEqual(last?.data, '[DONE]', `no fake clean end: ${what}`);
          const err = JSON.parse(last.data).error;
          assert.equal(err?.code, c.expect.code, what);
        }
      } else {
        assert.equal(r.status, c.expect.status, what);
        if (c.expect.code) {
          assert.match(String(r.headers['content-type']), /application\/json/, what);
          const j = r.json();
          assert.equal(j.error?.type, 'upstream_error', what);
          assert.equal(j.error?.code, c.expect.code, what);
        } else if (c.expect.body !== undefined) {
          assert.equal(r.text, c.expect.body, what);
        } else {
          assert.equal(r.json().model, `solo-${slug(i)}`, what);
        }
      }
      for (const [k, v] of Object.entries(c.expect.headers ?? {})) assert.equal(r.headers[k], v, `${k}: ${what}`);
      if (c.followUp) {
        await sleep(250); // let the stray bytes arrive first: ordering, not an assertion
        const f = await send(`solo-${slug(i)}`);
        assert.equal(f.status, c.followUp.status, `the next request: ${f.status} ${f.text.slice(0, 200)}`);
        if (c.followUp.body !== undefined) assert.equal(f.text, c.followUp.body, 'the next request gets its own answer');
      }
      if (c.expect.withinMs) assert.ok(ms >= c.expect.withinMs[0] && ms <= c.expect.withinMs[1], `ended after ${Math.round(ms)} ms: ${what}`);
      if (c.failover) {
        // Two requests: whichever target the group picks first, both must be served, and the
        // hostile one must have been tried.
        const before = hostile[i].seen[String(i)] ?? 0;
        for (let k = 0; k < 2; k++) {
          const p = await send(`pair-${slug(i)}`);
          assert.equal(p.status, 200, `failover to the healthy target: ${p.text.slice(0, 200)}`);
          assert.equal(p.headers['x-openbridge-model'], `real-healthy-${slug(i)}`);
        }
        assert.ok((hostile[i].seen[String(i)] ?? 0) > before, 'the hostile target was tried');
      }
      const h = await request({ url: `${gw.url}/healthz`, timeout: 3000 });
      assert.equal(h.status, 200, 'the gateway is still up');
    };
    const run = () => check().finally(() => agent?.destroy());
    if (c.owner) test(`${c.name} [owner: ${c.owner}: ${c.reason}]`, { todo: `${c.owner}: ${c.reason}`, timeout: 30000 }, run);
    else test(c.name, { timeout: 30000 }, run);
  });
});

// Binary answers (audio, images, octet-stream) are relayed as they arrive, so a provider that
// cuts one mid-body cannot be answered with an error any more. The client must still be able to
// tell: a chunked answer lacks its terminating 0-chunk, a Content-Length answer ends before its
// length, and the connection closes; the access log and the attempt metrics record the failure.
// A raw client reads the exact bytes (an HTTP library could hide a clean-looking short body).
const AUDIO = Buffer.from(Array.from({ length: 6000 }, (_, i) => (i * 7 + 3) & 0xff));
const BINARY_CASES = [
  {
    name: 'chunked audio cut after two chunks (HTTP/1.1 client)',
    answer: (s) => s.end(Buffer.concat([Buffer.from(head('200 OK', ['Content-Type: audio/mpeg', 'Transfer-Encoding: chunked'])), chunked(AUDIO.subarray(0, 1000)), chunked(AUDIO.subarray(1000, 2500))])),
    version: 'HTTP/1.1',
    expect: { complete: false, body: AUDIO.subarray(0, 2500) },
  },
  {
    name: 'Content-Length audio cut before its length (HTTP/1.1 client)',
    answer: (s) => s.end(Buffer.concat([Buffer.from(head('200 OK', ['Content-Type: audio/mpeg', `Content-Length: ${AUDIO.length}`])), AUDIO.subarray(0, 3000)])),
    version: 'HTTP/1.1',
    expect: { complete: false, body: AUDIO.subarray(0, 3000) },
  },
  {
    // HTTP/1.0 has no chunked framing: without the provider's length the answer would end by
    // close, and a cut one would look complete.
    name: 'Content-Length audio cut before its length (HTTP/1.0 client)',
    answer: (s) => s.end(Buffer.concat([Buffer.from(head('200 OK', ['Content-Type: audio/mpeg', `Content-Length: ${AUDIO.length}`])), AUDIO.subarray(0, 3000)])),
    version: 'HTTP/1.0',
    expect: { complete: false, body: AUDIO.subarray(0, 3000) },
  },
  {
    name: 'octet-stream head only, then close (HTTP/1.1 client)',
    answer: (s) => s.end(head('200 OK', ['Content-Type: application/octet-stream', 'Transfer-Encoding: chunked'])),
    version: 'HTTP/1.1',
    expect: { complete: false, body: Buffer.alloc(0) },
  },
  {
    name: 'complete Content-Length image: whole, and the connection stays open',
    answer: (s) => s.write(Buffer.concat([Buffer.from(head('200 OK', ['Content-Type: image/png', `Content-Length: ${AUDIO.length}`])), AUDIO])),
    version: 'HTTP/1.1',
    expect: { complete: true, body: AUDIO },
  },
  {
    name: 'complete chunked audio: whole, with its terminating chunk',
    answer: (s) => s.write(Buffer.concat([Buffer.from(head('200 OK', ['Content-Type: audio/mpeg', 'Transfer-Encoding: chunked'])), chunked(AUDIO), Buffer.from('0\r\n\r\n')])),
    version: 'HTTP/1.1',
    expect: { complete: true, body: AUDIO },
  },
];

describe('binary answers cut by the provider', { timeout: 60000 }, () => {
  let server, gw;
  const sockets = new Set();
  before(async () => {
    server = net.createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
      let buf = Buffer.alloc(0);
      s.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        const sep = buf.indexOf('\r\n\r\n');
        if (sep < 0) return;
        const headText = buf.subarray(0, sep).toString('latin1');
        const len = Number(/\r\ncontent-length:\s*(\d+)/i.exec(headText)?.[1] ?? 0);
        if (buf.length - sep - 4 < len) return;
        buf = Buffer.alloc(0);
        const c = BINARY_CASES[Number(/^\w+ \/b(\d+)\//.exec(headText)?.[1])];
        if (!c) return s.destroy();
        c.answer(s);
      });
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const base = (i) => `http://127.0.0.1:${server.address().port}/b${i}`;
    gw = await startGateway({
      config: {
        providers: BINARY_CASES.map((c, i) => ({ group: `bin${i}`, name: `tts-${i}`, base: base(i), key: 'sk-up' })),
        security: [CLIENT_TOKEN],
        health: { consecutive_failures: 1000, error_ratio: 1, min_requests: 1000000 },
      },
    });
  });
  after(async () => {
    const r = await gw?.stop();
    for (const s of sockets) s.destroy();
    await new Promise((r2) => server?.close(r2) ?? r2());
    assert.equal(r?.code, 0, `the gateway exits 0: ${JSON.stringify(r)}`);
  });

  BINARY_CASES.forEach((c, i) => {
    test(c.name, { timeout: 20000 }, async () => {
      const body = JSON.stringify({ model: `bin${i}`, input: 'Hello', voice: 'alloy' });
      const r = await rawExchange({
        port: gw.port,
        pieces: rawRequest({ path: '/v1/audio/speech', version: c.version, headers: { authorization: `Bearer ${CLIENT_TOKEN}`, 'content-type': 'application/json' }, body }),
        closeAfterAnswers: c.expect.complete ? 1 : undefined,
        timeout: 10000,
      });
      const what = `${c.name}: ${r.raw.subarray(0, 400).toString('latin1')}`;
      assert.equal(r.timedOut, false, `the answer ended in time: ${what}`);
      assert.equal(r.answers.length, 1, what);
      const [a] = r.answers;
      assert.equal(a.status, 200, what);
      assert.ok(a.body.equals(c.expect.body), `the provider's bytes, unchanged (${a.body.length} bytes): ${what}`);
      if (!c.expect.complete) {
        // A cut answer has a framing that says so (no 0-chunk, or fewer bytes than its length),
        // never one that ends by close alone, and the connection is closed.
        assert.ok(a.headers['content-length'] !== undefined || /chunked/i.test(a.headers['transfer-encoding'] ?? ''), `framed: ${what}`);
        assert.equal(a.complete, false, `the client can tell the answer is incomplete: ${what}`);
        assert.equal(r.closed, true, what);
        await waitFor(() => accessLines(gw).some((l) => l.group === `bin${i}`), { timeout: 5000, what: 'access line' });
        const line = accessLines(gw).find((l) => l.group === `bin${i}`);
        assert.equal(line.outcome, 'upstream_error', line._line);
        const reset = new RegExp(`^openbridge_upstream_attempts_total\\{[^}]*group="bin${i}"[^}]*outcome="reset"[^}]*\\} 1$`, 'm');
        await waitFor(async () => reset.test((await request({ url: `${gw.adminUrl}/metrics` })).text), { timeout: 3000, what: 'the attempt counted as broken (outcome="reset")' });
      } else {
        assert.equal(a.complete, true, what);
        assert.equal(r.closed, false, `keep-alive after a complete answer: ${what}`);
      }
    });
  });
});
