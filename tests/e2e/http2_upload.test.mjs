// End-to-end: HTTP/2 request bodies are streamed to the provider as their DATA arrive, not read
// whole first (docs/ARCHITECTURE.md "HTTP/2"), against the real binary and the mock provider
// (which records when a request starts, the body bytes it has read so far, and its SHA-256).
//
// The contract under test:
//   - a multipart upload is routed by its `model` field and reaches the provider before the
//     client has sent the rest of its body (with and without content-length);
//   - a large upload to a slow provider is held by the HTTP/2 flow-control windows: the
//     gateway's memory stays far below the body's size, and every byte arrives intact;
//   - JSON bodies in many small DATA frames, with or without content-length, are served;
//   - DATA the gateway drops (streams answered before their body's end) are given back to the
//     connection's window: another stream on the connection still uploads megabytes;
//   - a client that resets its stream mid-upload closes the upstream request.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http2 from 'node:http2';
import { startMock } from '../../tools/mock-provider/server.js';
import { makeTestCA } from './lib/tls.mjs';
import { chatBody, sleep } from './lib/common.mjs';
import { startH2Gateway, h2connect, rssKiB, rawH2, frame, settings, hpack, requestFields, PREFACE, T, F } from './lib/h2.mjs';
import { closedPort } from './lib/gateway.mjs';
import { CLIENT_TOKEN, accessLines } from './lib/common.mjs';
import { waitFor } from './lib/http.mjs';

const TO = { timeout: 120000 };
const MB = 1024 * 1024;
const B = 'H2upLoad77';
const CT = `multipart/form-data; boundary=${B}`;
const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');

// A form: [name, value (string or Buffer), filename?] in order, then the close delimiter.
function form(fields) {
  const parts = [];
  for (const [name, value, filename] of fields) {
    const file = filename ? `; filename="${filename}"\r\nContent-Type: audio/mpeg` : '';
    parts.push(Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="${name}"${file}\r\n\r\n`));
    parts.push(Buffer.isBuffer(value) ? value : Buffer.from(value));
    parts.push(Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${B}--\r\n`));
  return Buffer.concat(parts);
}

// A request whose body the test writes itself: {req, answer} (answer resolves on close with
// {status, text, rst}).
function open(session, { path = '/v1/audio/transcriptions', headers = {}, timeout = 60000 } = {}) {
  const req = session.request({ ':method': 'POST', ':path': path, authorization: `Bearer ${CLIENT_TOKEN}`, 'content-type': CT, ...headers }, { endStream: false });
  const answer = new Promise((resolve, reject) => {
    const chunks = [];
    let status = 0;
    const timer = setTimeout(() => {
      req.close(http2.constants.NGHTTP2_CANCEL);
      reject(new Error(`HTTP/2 request ${path} timed out`));
    }, timeout);
    req.on('response', (h) => (status = h[':status']));
    req.on('data', (d) => chunks.push(d));
    req.on('error', () => {});
    req.on('close', () => {
      clearTimeout(timer);
      resolve({ status, text: Buffer.concat(chunks).toString('utf8'), rst: req.rstCode });
    });
  });
  return { req, answer };
}

// Writes `buf` in `piece`-sized writes, waiting for 'drain' when the stream is full.
async function write(req, buf, piece = 64 * 1024) {
  for (let i = 0; i < buf.length && !req.destroyed; i += piece) {
    if (!req.write(buf.subarray(i, i + piece)))
      await new Promise((resolve) => {
        const done = () => {
          req.off('drain', done);
          req.off('close', done);
          resolve();
        };
        req.on('drain', done);
        req.on('close', done);
      });
  }
}

// The mock's record of the one upload request, once it has `min` body bytes (bounded poll).
async function upstreamGot(M, min = 1, { route = '/v1/audio/transcriptions', tries = 100 } = {}) {
  for (let i = 0; i < tries; i++) {
    const rec = M.stats().requests.find((r) => r.route === route);
    if (rec && rec.body_received >= min) return rec;
    await sleep(50);
  }
  return null;
}

describe('HTTP/2 request bodies streamed', { timeout: 300000 }, () => {
  let ca, M, gw;
  before(async () => {
    ca = makeTestCA();
    M = await startMock();
    const dead = await closedPort();
    gw = await startH2Gateway({
      ca,
      workers: 1,
      providers: [
        { group: 'g', name: 'm', base: M.url, key: 'sk-up' },
        { group: 's', name: 'm', base: `${M.url}/mode/slow-read-5`, key: 'sk-up' },
        { group: 'f', name: 'd', base: `http://127.0.0.1:${dead}`, key: 'sk-up' },
        { group: 'f', name: 'u', base: M.url, key: 'sk-up' },
      ],
    });
  });
  after(async () => {
    const r = await gw?.stop();
    gw?.cleanup();
    await M?.close();
    ca?.cleanup();
    assert.deepEqual(r, { code: 0, signal: null });
  });

  for (const withLength of [true, false]) {
    test(`a multipart upload reaches the provider before its body's end (${withLength ? 'content-length' : 'no content-length'}), routed by its model field`, TO, async () => {
      M.reset();
      const file = crypto.randomBytes(512 * 1024);
      const body = form([['model', 'g'], ['file', file, 'a.mp3']]);
      const first = body.length - 300 * 1024;  // the model part and the file's start
      const s = await h2connect(gw, ca);
      try {
        const { req, answer } = open(s, { headers: withLength ? { 'content-length': body.length } : {} });
        await write(req, body.subarray(0, first));
        // The client WAITS here: the upstream must have the request (and some of its body)
        // while the rest is still with the client.
        const rec = await upstreamGot(M, 1);
        assert.ok(rec, 'the provider got the request before the client sent the rest of its body');
        assert.ok(rec.body_received <= first, `${rec.body_received} bytes upstream, ${first} sent`);
        await write(req, body.subarray(first));
        req.end();
        const a = await answer;
        assert.equal(a.status, 200, a.text);
        assert.equal(JSON.parse(a.text).text, 'Hello from m!');
        const upstream = () => M.stats().requests.find((r) => r.route === '/v1/audio/transcriptions');
        await waitFor(() => upstream().t_body !== null, { what: 'the upstream body end', timeout: 5000 });
        const done = upstream();
        assert.equal(done.model, 'm', 'the model field is rewritten');
        assert.equal(done.body_sha256, sha256(form([['model', 'm'], ['file', file, 'a.mp3']])), 'every other byte intact');
      } finally {
        s.destroy();
      }
    });
  }

  test('a 16 MiB upload to a slow-reading provider: held by flow control (memory bounded), every byte intact', TO, async () => {
    M.reset();
    // A gateway of its own. Under AddressSanitizer without its quarantine: OpenSSL takes and
    // gives back a 16 KiB buffer for every TLS record it reads (SSL_MODE_RELEASE_BUFFERS on the
    // listener), and ASan's quarantine keeps each freed block, so the process's RSS would grow
    // by the upload's size with no live memory growing. This test bounds live memory.
    const asan = process.env.ASAN_OPTIONS;
    const gw = await startH2Gateway({
      ca,
      workers: 1,
      providers: [{ group: 's', name: 'm', base: `${M.url}/mode/slow-read-5`, key: 'sk-up' }],
      env: asan ? { ASAN_OPTIONS: `${asan}:quarantine_size_mb=0` } : undefined,
    });
    const file = crypto.randomBytes(16 * MB);
    const body = form([['model', 's'], ['file', file, 'big.mp3']]);
    const rss0 = rssKiB(gw.proc.pid);
    let peak = rss0;
    const sampler = setInterval(() => {
      try {
        peak = Math.max(peak, rssKiB(gw.proc.pid));
      } catch {}
    }, 20);
    const s = await h2connect(gw, ca);
    try {
      const { req, answer } = open(s, { headers: { 'content-length': body.length }, timeout: 100000 });
      await write(req, body, 256 * 1024);
      req.end();
      const a = await answer;
      clearInterval(sampler);
      assert.equal(a.status, 200, a.text);
      const rec = M.stats().requests.find((r) => r.route === '/v1/audio/transcriptions');
      assert.equal(rec.body_bytes, body.length);
      assert.equal(rec.body_sha256, sha256(form([['model', 'm'], ['file', file, 'big.mp3']])));
      const grown = peak - rss0;
      assert.ok(grown < 8 * 1024, `RSS grew by ${grown} KiB for a ${body.length >> 10} KiB upload`);
    } finally {
      clearInterval(sampler);
      s.destroy();
      await gw.stop();
      gw.cleanup();
    }
  });

  for (const withLength of [true, false]) {
    test(`a JSON chat request in many small DATA frames (${withLength ? 'content-length' : 'no content-length'})`, TO, async () => {
      const body = Buffer.from(chatBody('g', { messages: [{ role: 'user', content: 'small pieces '.repeat(40) }] }));
      const s = await h2connect(gw, ca);
      try {
        const { req, answer } = open(s, { path: '/v1/chat/completions', headers: { 'content-type': 'application/json', ...(withLength ? { 'content-length': body.length } : {}) } });
        for (let i = 0; i < body.length; i += 7) {
          req.write(body.subarray(i, i + 7));
          await new Promise((r) => setImmediate(r));  // each piece its own DATA frame
        }
        req.end();
        const a = await answer;
        assert.equal(a.status, 200, a.text);
        assert.equal(JSON.parse(a.text).model, 'g');
      } finally {
        s.destroy();
      }
    });
  }

  test('failover of a streamed upload while nothing of its rest was relayed (a target that cannot be reached), as over HTTP/1.1', TO, async () => {
    M.reset();
    const file = crypto.randomBytes(2 * MB);
    const body = form([['model', 'f'], ['file', file, 'a.mp3']]);
    const s = await h2connect(gw, ca);
    try {
      // Round robin may start on either target: two uploads, both must reach 'u' whole.
      for (let i = 0; i < 2; i++) {
        const { req, answer } = open(s, { headers: { 'x-request-id': `fo-${i}` } });
        await write(req, body);
        req.end();
        const a = await answer;
        assert.equal(a.status, 200, a.text);
        const rec = M.stats().requests.filter((r) => r.route === '/v1/audio/transcriptions').at(-1);
        assert.equal(rec.model, 'u');
        assert.equal(rec.body_sha256, sha256(form([['model', 'u'], ['file', file, 'a.mp3']])));
      }
      await waitFor(() => accessLines(gw).filter((l) => /^fo-/.test(l.request_id)).length === 2, { what: 'the access lines', timeout: 3000 });
      assert.ok(accessLines(gw).some((l) => /^fo-/.test(l.request_id) && l.attempts === '2' && l.protocol === 'h2'), 'one met the unreachable target first and was sent again, whole');
    } finally {
      s.destroy();
    }
  });

  test('a client that resets its stream mid-upload: the upstream request is closed', TO, async () => {
    M.reset();
    const body = form([['model', 'g'], ['file', crypto.randomBytes(2 * MB), 'a.mp3']]);
    const s = await h2connect(gw, ca);
    try {
      const { req, answer } = open(s, { headers: { 'content-length': body.length } });
      await write(req, body.subarray(0, 256 * 1024));
      const rec = await upstreamGot(M, 1);
      assert.ok(rec, 'the upstream got the request');
      req.close(http2.constants.NGHTTP2_CANCEL);
      await answer;
      const now = () => M.stats().requests.find((r) => r.id === rec.id);
      await waitFor(() => now().aborted, { what: 'the upstream request aborted', timeout: 5000 });
      assert.equal(now().completed, false);
    } finally {
      s.destroy();
    }
  });

  // A gateway whose connection window is its body budget, 2 MiB, and whose limits.max_body_bytes
  // (4 MiB) lets a content-length refuse a stream at once.
  const budgetGateway = () =>
    startH2Gateway({
      ca,
      workers: 1,
      providers: [{ group: 'g', name: 'm', base: M.url, key: 'sk-up' }],
      tlsExtra: { http2_connection_body_bytes: 2 * MB },
      extra: { limits: { max_body_bytes: 4 * MB } },
    });

  test('DATA dropped by the gateway are given back to the connection window (raw frames: the window filled by two streams answered 413)', TO, async () => {
    const gw2 = await budgetGateway();
    try {
      const c = await rawH2(gw2, ca);
      // Our receive window 0: the 413s' bodies cannot be sent, so streams 1 and 3 stay open
      // (answered, not ended) while their DATA arrive and are dropped.
      await c.write(Buffer.concat([PREFACE, settings([[4, 0]])]));
      // The connection window the gateway opens: 2 MiB here (the body budget).
      const credit = () => c.frames.filter((f) => f.type === T.WINDOW_UPDATE && f.stream === 0).reduce((n, f) => n + f.payload.readUInt32BE(0), 0);
      await waitFor(() => credit() > 0, { what: "the gateway's connection window", timeout: 5000 });
      await c.write(frame(T.SETTINGS, F.ACK, 0));  // its 1 MiB stream windows apply from here
      const window = 65535 + credit();
      assert.equal(window, 2 * MB);
      // Streams 1 and 3: content-length over limits.max_body_bytes (413 at once), then 1 MiB of
      // DATA each: the whole connection window, all dropped by the gateway.
      const headers = (len) => hpack(requestFields(gw2, { method: 'POST', path: '/v1/audio/transcriptions', headers: [['authorization', `Bearer ${CLIENT_TOKEN}`], ['content-type', CT], ['content-length', String(len)]] }));
      const parts = [];
      for (const id of [1, 3]) {
        parts.push(frame(T.HEADERS, F.END_HEADERS, id, headers(8 * MB)));
        for (let i = 0; i < MB / 16384; i++) parts.push(frame(T.DATA, 0, id, Buffer.alloc(16384, 0x61)));
      }
      await c.write(Buffer.concat(parts));
      await waitFor(() => credit() + 65535 >= window + MB, { what: 'the dropped DATA given back to the connection window', timeout: 5000 });
      const status = (id) => {
        const h = c.frames.find((f) => f.type === T.HEADERS && f.stream === id);
        return h ? h.payload.toString('latin1') : '';
      };
      // Stream 1's DATA given back can come before stream 3's answer is read: wait for both.
      await waitFor(() => status(1) && status(3), { what: 'both streams answered', timeout: 5000 });
      // A request on the same connection still has window for its body.
      const body = Buffer.from(chatBody('g'));
      const win = Buffer.alloc(4);
      win.writeUInt32BE(MB);
      await c.write(Buffer.concat([frame(T.HEADERS, F.END_HEADERS, 5, hpack(requestFields(gw2, { method: 'POST', path: '/v1/chat/completions', headers: [['authorization', `Bearer ${CLIENT_TOKEN}`], ['content-type', 'application/json']] }))), frame(T.DATA, F.END_STREAM, 5, body), frame(T.WINDOW_UPDATE, 0, 5, win)]));
      await waitFor(() => c.frames.some((f) => f.type === T.DATA && f.stream === 5 && f.flags & F.END_STREAM), { what: 'the answer to stream 5', timeout: 5000 });
      const text = Buffer.concat(c.frames.filter((f) => f.type === T.DATA && f.stream === 5).map((f) => f.payload)).toString();
      assert.equal(JSON.parse(text).model, 'g');
      assert.equal(c.goaway(), undefined);
      c.sock.destroy();
    } finally {
      await gw2.stop();
      gw2.cleanup();
    }
  });

  test('DATA of streams answered before their end go back to the connection window: another stream uploads 3 MiB', TO, async () => {
    // The connection window is the body budget here (2 MiB): two streams answered 413 at once
    // (content-length over limits.max_body_bytes) whose 1 MiB each were not given back would
    // stall every other stream of the connection.
    const gw2 = await budgetGateway();
    const s = await h2connect(gw2, ca);
    try {
      const early = [];
      for (let i = 0; i < 2; i++) {
        const { req, answer } = open(s, { headers: { 'content-length': 8 * MB } });
        const status = new Promise((r) => req.once('response', (h) => r(h[':status'])));
        req.write(Buffer.alloc(MB, 0x61));  // sent at once (their stream windows), never ended
        early.push({ req, answer, status });
      }
      for (const e of early) assert.equal(await e.status, 413);
      // Answered, then reset (NO_ERROR: stop sending); what was in flight is dropped.
      await Promise.all(early.map((e) => e.answer));
      const file = crypto.randomBytes(3 * MB);
      const body = form([['model', 'g'], ['file', file, 'a.mp3']]);
      const { req, answer } = open(s, { headers: { 'content-length': body.length }, timeout: 20000 });
      await write(req, body);
      req.end();
      const a = await answer;
      assert.equal(a.status, 200, a.text);
      assert.equal(JSON.parse(a.text).text, 'Hello from m!');
    } finally {
      s.destroy();
      await gw2.stop();
      gw2.cleanup();
    }
  });
});
