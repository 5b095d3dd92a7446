// Slow, stalled, oversized and late clients on the client connection:
//   - a request head must arrive whole within timeouts.client_header of its first byte, a body
//     within timeouts.client_body per read and timeouts.client_body_total in all; the client
//     then gets a 408 JSON error (delivered, not a bare close);
//   - limits.max_header_bytes holds at any allowed value (1 MiB included): 431, never a throw;
//   - once shutdown starts every answer says Connection: close;
//   - requests still running when timeouts.shutdown_grace ends get an error (503, or an SSE
//     error event) and an access line with outcome=shutdown.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock } from '../../tools/mock-provider/server.js';
import { startGateway } from './lib/gateway.mjs';
import { parseSSE, waitFor } from './lib/http.mjs';
import { rawExchange, rawRequest, parseAnswers } from './lib/raw.mjs';
import { CLIENT_TOKEN, accessLines, chatBody, gwPost } from './lib/common.mjs';
import net from 'node:net';

const T = { timeout: 30000 };
const SLACK_MS = 600; // scheduling and the gateway's 4 ms clock tick, with room for a busy machine
const MAX_HEAD = 1 << 20; // the largest limits.max_header_bytes allowed
const TIMEOUTS = { client_header: 1, client_body: 1, client_body_total: 2, keepalive: 5, shutdown_grace: 20 };
const AUTH = { authorization: `Bearer ${CLIENT_TOKEN}`, 'content-type': 'application/json' };

// A GET /healthz head of exactly `size` bytes (one padding header), or without its end.
function headOf(size, { complete = true } = {}) {
  const start = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ';
  const end = complete ? '\r\n\r\n' : '';
  return Buffer.from(start + 'a'.repeat(size - start.length - end.length) + end, 'latin1');
}

// One byte per piece, `ms` apart.
const trickle = (bytes, ms) => [...Buffer.from(bytes, 'latin1')].map((b, i) => ({ bytes: Buffer.from([b]), pauseMs: i ? ms : 0 }));

const postHead = (contentLength) =>
  `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${CLIENT_TOKEN}\r\n` +
  `Content-Type: application/json\r\nContent-Length: ${contentLength}\r\n\r\n`;

const BODY = chatBody('g');

const cases = [
  {
    name: 'slowloris head (1 byte / 300 ms): 408 once client_header has passed since its first byte',
    pieces: trickle(rawRequest({ method: 'GET', path: '/healthz' }).toString('latin1'), 300),
    expect: { status: 408, code: 'request_timeout', atMs: 1000 },
  },
  {
    name: 'a head that stalls after its first line: 408 delivered',
    pieces: 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n',
    expect: { status: 408, code: 'request_timeout', atMs: 1000 },
  },
  {
    name: 'a body that stalls: 408 delivered after client_body',
    pieces: postHead(BODY.length) + BODY.slice(0, 10),
    expect: { status: 408, code: 'request_timeout', atMs: 1000 },
  },
  {
    name: 'a body trickled 1 byte / 300 ms: 408 once client_body_total has passed',
    pieces: [{ bytes: postHead(BODY.length), pauseMs: 0 }, ...trickle(BODY, 300).map((p, i) => ({ ...p, pauseMs: i ? 300 : 100 }))],
    expect: { status: 408, code: 'request_timeout', atMs: 2000 },
  },
  {
    name: 'a head of exactly max_header_bytes (1 MiB) is served',
    pieces: headOf(MAX_HEAD),
    expect: { status: 200 },
  },
  {
    name: 'a head one byte over max_header_bytes (1 MiB + 1): 431',
    pieces: headOf(MAX_HEAD + 1),
    expect: { status: 431, code: 'headers_too_large' },
  },
  {
    name: 'a 2 MiB head: 431',
    pieces: headOf(2 * MAX_HEAD),
    expect: { status: 431, code: 'headers_too_large' },
  },
  {
    name: '2 MiB of head that never ends: 431',
    pieces: headOf(2 * MAX_HEAD, { complete: false }),
    expect: { status: 431, code: 'headers_too_large' },
  },
];

function assertJsonError(a, status, code, what) {
  assert.equal(a?.status, status, `${what}: ${a?.rawHead ?? 'no answer'}`);
  assert.match(a.headers['content-type'] ?? '', /application\/json/, what);
  const j = JSON.parse(a.text);
  assert.equal(typeof j.error?.message, 'string', what);
  assert.equal(j.error.code, code, what);
}

describe('hostile clients: slow heads and bodies, oversized heads', { timeout: 120000 }, () => {
  let mock, gw;
  before(async () => {
    mock = await startMock();
    gw = await startGateway({
      config: {
        providers: [{ group: 'g', name: 'm', base: mock.url, key: 'sk-up' }],
        security: [CLIENT_TOKEN],
        limits: { max_header_bytes: MAX_HEAD },
        timeouts: TIMEOUTS,
      },
      workers: 1,
    });
  });
  after(async () => {
    if (gw && !gw.exited()) await gw.stop();
    gw?.cleanup();
    await mock?.close();
  });

  for (const c of cases) {
    test(c.name, T, async () => {
      const r = await rawExchange({ port: gw.port, pieces: c.pieces, timeout: (c.expect.atMs ?? 0) + 4000, closeAfterAnswers: 1 });
      const a = r.answers[0];
      if (c.expect.code) assertJsonError(a, c.expect.status, c.expect.code, c.name);
      else assert.equal(a?.status, c.expect.status, `${c.name}: ${a?.rawHead ?? 'no answer'}`);
      if (c.expect.status >= 400) assert.match(a.headers.connection ?? '', /close/i, c.name);
      if (c.expect.atMs !== undefined) {
        assert.ok(r.firstByteMs >= c.expect.atMs - 50, `${c.name}: answered after ${r.firstByteMs} ms, before the limit`);
        assert.ok(r.firstByteMs <= c.expect.atMs + SLACK_MS, `${c.name}: answered after ${r.firstByteMs} ms`);
      }
    });
  }

  test('nothing threw, and SIGTERM exits at once (no connection left behind)', T, async () => {
    assert.doesNotMatch(gw.stderr(), /connection failed|exception|length_error/i);
    const t0 = performance.now();
    const exit = await gw.stop({ timeout: 15000 });
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.ok(performance.now() - t0 < 3000, `shutdown took ${performance.now() - t0} ms`);
  });
});

// Opens a raw connection, sends `first`, and returns {rest(bytes), answer: Promise<answers>}.
function openRaw(port, first) {
  const sock = net.connect({ host: '127.0.0.1', port });
  const got = [];
  const answer = new Promise((resolve) => {
    const timer = setTimeout(() => sock.destroy(), 10000);
    const done = () => {
      clearTimeout(timer);
      resolve(parseAnswers(Buffer.concat(got)));
    };
    sock.on('data', (d) => got.push(d));
    sock.on('close', done);
    sock.on('error', () => {});
  });
  sock.on('connect', () => sock.write(first));
  return { rest: (b) => sock.write(b), answer };
}

const drainCases = [
  {
    name: 'a proxied answer in flight',
    first: rawRequest({ headers: AUTH, body: chatBody('slow') }),
    expect: { status: 200 },
  },
  {
    name: 'a proxied stream in flight',
    first: rawRequest({ headers: AUTH, body: chatBody('slow', { stream: true }) }),
    expect: { status: 200, stream: true },
  },
  {
    name: "a gateway route whose head ends after shutdown began",
    first: 'GET /healthz HTTP/1.1\r\n',
    rest: 'Host: 127.0.0.1\r\n\r\n',
    expect: { status: 200 },
  },
  {
    name: 'a gateway error whose body arrives after shutdown began',
    first: postHead(chatBody('nope').length),
    rest: chatBody('nope'),
    expect: { status: 404 },
  },
];

describe('shutdown: draining answers say Connection: close', { timeout: 60000 }, () => {
  let mock, gw;
  before(async () => {
    mock = await startMock();
    gw = await startGateway({
      config: {
        providers: [{ group: 'slow', name: 'm', base: `${mock.url}/mode/delay-1500`, key: 'sk-up' }],
        security: [CLIENT_TOKEN],
        timeouts: { ...TIMEOUTS, client_header: 10, client_body: 10, client_body_total: 10, shutdown_grace: 10 },
      },
      workers: 1,
    });
  });
  after(async () => {
    if (gw && !gw.exited()) await gw.stop();
    gw?.cleanup();
    await mock?.close();
  });

  test('every answer given while draining carries Connection: close', T, async () => {
    const conns = drainCases.map((c) => ({ c, conn: openRaw(gw.port, c.first) }));
    await waitFor(() => mock.stats().requests.length >= 2, { timeout: 3000, what: 'both proxied requests at the provider' });
    gw.proc.kill('SIGTERM');
    await waitFor(() => /shutting down/.test(gw.stderr()), { timeout: 3000, what: 'shutdown to begin' });
    for (const { c, conn } of conns) if (c.rest) conn.rest(c.rest);
    for (const { c, conn } of conns) {
      const [a] = await conn.answer;
      assert.equal(a?.status, c.expect.status, `${c.name}: ${a?.rawHead ?? 'no answer'}`);
      assert.ok(a.complete, `${c.name}: answer incomplete`);
      assert.match(a.headers.connection ?? '', /^close$/i, `${c.name}: ${a.rawHead}`);
      if (c.expect.stream) assert.equal(parseSSE(a.text).events.at(-1)?.data, '[DONE]', c.name);
    }
    assert.deepEqual(await gw.stop(), { code: 0, signal: null });
  });
});

describe('shutdown: requests still running when shutdown_grace ends', { timeout: 60000 }, () => {
  let mock, gw;
  before(async () => {
    mock = await startMock();
    gw = await startGateway({
      config: {
        providers: [
          { group: 'stream', name: 'slow-stream', base: `${mock.url}/mode/slow-stream-400`, key: 'sk-up' },
          { group: 'slow', name: 'slow-answer', base: `${mock.url}/mode/delay-8000`, key: 'sk-up' },
        ],
        security: [CLIENT_TOKEN],
        timeouts: { ...TIMEOUTS, shutdown_grace: 1 },
      },
      workers: 1,
    });
  });
  after(async () => {
    if (gw && !gw.exited()) await gw.stop();
    gw?.cleanup();
    await mock?.close();
  });

  test('a stream ends with an error event, an answer not started gets 503; both are logged', T, async () => {
    let started;
    const streaming = new Promise((r) => (started = r));
    const s = gwPost(gw, '/v1/chat/completions', chatBody('stream', { stream: true }), { timeout: 10000, allowError: true, onChunk: () => started() });
    const b = gwPost(gw, '/v1/chat/completions', chatBody('slow'), { timeout: 10000, allowError: true });
    await streaming;
    await waitFor(() => mock.stats().requests.length >= 2, { timeout: 3000, what: 'both requests at the provider' });
    const t0 = performance.now();
    gw.proc.kill('SIGTERM');
    const [sr, br] = await Promise.all([s, b]);
    assert.equal(sr.status, 200);
    assert.equal(sr.error, undefined, `stream cut without its end: ${sr.error?.message}`);
    const { events } = parseSSE(sr.text);
    const last = JSON.parse(events.at(-1)?.data ?? 'null');
    assert.equal(last?.error?.code, 'shutting_down', `last event: ${events.at(-1)?.data}`);
    assert.ok(events.length < 12, 'the stream was ended early');
    assert.equal(br.error, undefined, `answer cut: ${br.error?.message}`);
    assert.equal(br.status, 503, br.text);
    assert.equal(br.json().error.code, 'shutting_down');
    assert.match(String(br.headers.connection), /close/i);
    const exit = await gw.stop({ timeout: 10000 });
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.ok(performance.now() - t0 < 1000 + 2000, `exit took ${performance.now() - t0} ms`);
    const lines = await waitFor(
      () => {
        const l = accessLines(gw).filter((x) => x.outcome === 'shutdown');
        return l.length >= 2 && l;
      },
      { timeout: 2000, what: 'two access lines with outcome=shutdown' },
    );
    assert.deepEqual(lines.map((l) => `${l.group} ${l.status}`).sort(), ['slow 503', 'stream 200']);
  });
});
