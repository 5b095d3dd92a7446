// Hostile HTTP/2 clients on the TLS listener, as a table: each case sends what a client should
// not (raw frames, or Node's http2 client misused) and states what the gateway must do. After
// every case the gateway still answers another client.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { startMock } from '../../tools/mock-provider/server.js';
import { waitFor } from './lib/http.mjs';
import { makeTestCA } from './lib/tls.mjs';
import { CLIENT_TOKEN, chatBody, sleep, accessLines } from './lib/common.mjs';
import {
  startH2Gateway, h2connect, h2request, rssKiB, rawH2, frame, settings, hpack, requestFields,
  goawayCode, goawayLastStream, hpackInt, PREFACE, T, F,
} from './lib/h2.mjs';

const ENHANCE_YOUR_CALM = 0xb;
const REFUSED_STREAM = 0x7;
const PROTOCOL_ERROR = 0x1;
const CANCEL = 0x8;

// A gateway of its own for one case (config `extra`), stopped after `fn`.
async function withGateway({ ca, M, extra = {}, tlsExtra = {} }, fn) {
  const gw = await startH2Gateway({ ca, workers: 1, providers: [{ group: 'g', name: 'm', base: M.url, key: 'sk-up' }], tlsExtra, extra });
  try {
    await fn(gw);
  } finally {
    await gw.stop();
    gw.cleanup();
  }
}

// An upstream that streams SSE events of 64 KiB for as long as its client reads them, and
// counts what it got written.
function startFloodUpstream() {
  const state = { written: 0, closedAt: null, open: 0 };
  const event = `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', model: 'm', choices: [{ index: 0, delta: { content: 'x'.repeat(64 * 1024) } }] })}\n\n`;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      state.open++;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let stop = false;
      res.on('close', () => {
        stop = true;
        state.open--;
        state.closedAt = performance.now();
      });
      const pump = () => {
        while (!stop && state.written < 512 * 1024 * 1024) {
          state.written += event.length;
          if (!res.write(event)) return res.once('drain', pump);
        }
      };
      pump();
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${server.address().port}`, state, close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) })),
  );
}

const cases = [
  {
    name: 'rapid reset flood -> GOAWAY ENHANCE_YOUR_CALM and closed; another client is served meanwhile',
    async run({ gw, ca }) {
      const c = await rawH2(gw, ca);
      await c.write(Buffer.concat([PREFACE, settings()]));
      const other = await h2connect(gw, ca);
      const served = h2request(other, { body: chatBody('g') });
      const block = hpack(requestFields(gw));
      let id = 1;
      for (let round = 0; round < 50 && !c.sock.destroyed; round++) {
        const burst = [];
        for (let i = 0; i < 100; i++, id += 2)
          burst.push(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, id, block), frame(T.RST_STREAM, 0, id, Buffer.from([0, 0, 0, 8])));
        await c.write(Buffer.concat(burst));
      }
      await Promise.race([c.closed, sleep(5000)]);
      assert.ok(c.sock.destroyed || c.sock.readableEnded, 'the flooding connection is closed');
      assert.equal(goawayCode(c.goaway()), ENHANCE_YOUR_CALM);
      // How much of the flood the client got into its socket depends on the kernel's buffers;
      // what the gateway took is what its GOAWAY names: the budget is a 200-reset burst plus
      // 100/s, so a cut within the first 1,500 of the 5,000 streams leaves room for a slow run.
      const last = goawayLastStream(c.goaway());
      assert.ok(last > 0 && last < 2 * 1500, `the gateway processed streams up to ${last} of ${id - 2}`);
      const r = await served;
      assert.equal(r.status, 200);
      other.close();
    },
  },
  {
    name: 'CONTINUATION flood -> connection closed',
    async run({ gw, ca }) {
      const c = await rawH2(gw, ca);
      await c.write(Buffer.concat([PREFACE, settings()]));
      await c.write(frame(T.HEADERS, 0, 1, hpack(requestFields(gw))));
      const filler = hpack(Array.from({ length: 140 }, (_, i) => [`x-f${i}`, 'a'.repeat(100)]));
      let sent = 0;
      for (; sent < 2000 && !c.sock.destroyed; sent++) {
        await c.write(frame(T.CONTINUATION, 0, 1, filler));
      }
      await Promise.race([c.closed, sleep(5000)]);
      assert.ok(c.sock.destroyed || c.sock.readableEnded, 'closed');
      assert.ok(sent < 2000, `all ${sent} CONTINUATION frames were taken`);
    },
  },
  {
    name: 'oversized header list -> 431 JSON on that stream, the connection goes on',
    async run({ gw, ca }) {
      const s = await h2connect(gw, ca);
      const headers = {};
      // Over limits.max_header_bytes (16 KiB here), under what Node's client sends in one block.
      for (let i = 0; i < 5; i++) headers[`x-big-${i}`] = 'b'.repeat(6000);
      const r = await h2request(s, { body: chatBody('g'), headers });
      assert.equal(r.status, 431, r.text);
      assert.equal(r.json().error.type, 'invalid_request_error');
      await waitFor(() => accessLines(gw).some((l) => l.status === '431' && l.protocol === 'h2' && l.path === '/v1/chat/completions'), { what: 'the access line of the 431', timeout: 3000 });
      const ok = await h2request(s, { body: chatBody('g') });
      assert.equal(ok.status, 200);
      s.close();
    },
  },
  {
    name: 'a host field that differs from :authority, or an :authority that is not a host -> 400 JSON on that stream, the connection goes on',
    async run({ gw, ca }) {
      // Node's client does not send a host field beside :authority: raw frames.
      const c = await rawH2(gw, ca);
      await c.write(Buffer.concat([PREFACE, settings()]));
      const ask = (id, fields) => c.write(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, id, hpack(fields)));
      await ask(1, requestFields(gw, { headers: [['host', 'other.example']] }));
      await ask(3, [[':method', 'GET'], [':scheme', 'https'], [':authority', 'user@gw.example'], [':path', '/healthz']]);
      await ask(5, requestFields(gw, { headers: [['host', `127.0.0.1:${gw.tlsPort}`]] }));
      const answer = (id) => ({
        head: c.frames.find((f) => f.type === T.HEADERS && f.stream === id),
        body: Buffer.concat(c.frames.filter((f) => f.type === T.DATA && f.stream === id).map((f) => f.payload)).toString(),
      });
      await waitFor(() => [1, 3, 5].every((id) => c.frames.some((f) => f.type === T.DATA && f.stream === id && (f.flags & F.END_STREAM))), { what: 'three answers', timeout: 5000 });
      // nghttp2 sends :status from HPACK's static table: 0x8c is 400, 0x88 is 200.
      const [conflict, bad, same] = [1, 3, 5].map(answer);
      assert.equal(conflict.head.payload[0], 0x8c, conflict.body);
      assert.match(JSON.parse(conflict.body).error.message, /differs from its :authority/);
      assert.equal(bad.head.payload[0], 0x8c, bad.body);
      assert.match(JSON.parse(bad.body).error.message, /Host header is not a valid/);
      assert.equal(same.head.payload[0], 0x88, same.body);
      assert.equal(same.body, '{"status":"ok"}');
      assert.equal(c.goaway(), undefined, 'the connection goes on');
      c.sock.destroy();
    },
  },
  {
    name: 'HEAD answered by the HTTP/2 layer itself (400 host conflict, 431 header list) -> its head only, no DATA',
    async run({ gw, ca }) {
      // A HEAD answer has no content (RFC 9110 9.3.2); DATA on it is malformed (RFC 9113 8.1.1)
      // and nghttp2 clients reset the stream with PROTOCOL_ERROR. The host conflict needs raw
      // frames (Node's client sends no host field beside :authority).
      const c = await rawH2(gw, ca);
      await c.write(Buffer.concat([PREFACE, settings()]));
      await c.write(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, hpack(requestFields(gw, { method: 'HEAD', headers: [['host', 'other.example']] }))));
      // Its answer ends with the HEADERS' END_STREAM, or (wrongly) with a DATA frame's.
      await waitFor(() => c.frames.some((f) => f.stream === 1 && (f.type === T.HEADERS || f.type === T.DATA) && f.flags & F.END_STREAM), { what: 'the answer', timeout: 5000 });
      const head = c.frames.find((f) => f.type === T.HEADERS && f.stream === 1);
      assert.equal(head.payload[0], 0x8c, 'HPACK :status 400');
      const data = c.frames.filter((f) => f.type === T.DATA && f.stream === 1);
      assert.deepEqual(data.map((f) => f.payload.toString()), [], 'no DATA after a HEAD answer');
      assert.ok(head.flags & F.END_STREAM, 'the HEADERS end the stream');
      assert.equal(c.goaway(), undefined, 'the connection goes on');
      c.sock.destroy();
      // Node's client (nghttp2): the 431 with the would-be body's content-length, and no reset.
      const s = await h2connect(gw, ca);
      const headers = {};
      for (let i = 0; i < 5; i++) headers[`x-big-${i}`] = 'b'.repeat(6000);
      const r = await h2request(s, { method: 'HEAD', path: '/v1/models', headers });
      assert.equal(r.status, 431);
      assert.ok(Number(r.headers['content-length']) > 0, `content-length ${r.headers['content-length']}`);
      assert.equal(r.body.length, 0);
      assert.equal(r.rst, 0, `stream reset with code ${r.rst}`);
      await waitFor(() => accessLines(gw).some((l) => l.status === '431' && l.method === 'HEAD' && l.protocol === 'h2'), { what: 'the access line of the HEAD 431', timeout: 3000 });
      s.close();
    },
  },
  {
    name: 'HPACK bomb (one 4 KB dynamic-table entry referenced 2000 times) -> 431 on that stream, no decoding blow-up',
    async run({ gw, ca }) {
      const c = await rawH2(gw, ca);
      const value = Buffer.from('v'.repeat(4000));
      const entry = Buffer.concat([Buffer.from([0x40, 5]), Buffer.from('x-bmb'), Buffer.from(hpackInt(value.length, 7, 0)), value]);
      const block = Buffer.concat([hpack(requestFields(gw)), entry, Buffer.alloc(2000, 0x80 | 62)]);
      await c.write(Buffer.concat([PREFACE, settings(), frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, block)]));
      await waitFor(() => c.frames.some((f) => f.type === T.DATA && f.stream === 1 && f.flags & F.END_STREAM), { what: 'the answer', timeout: 5000 });
      const body = Buffer.concat(c.frames.filter((f) => f.type === T.DATA && f.stream === 1).map((f) => f.payload)).toString();
      const e = JSON.parse(body).error;
      assert.match(e.message, /header list is too large/);
      assert.equal(c.goaway(), undefined, 'the connection is not ended');
      c.sock.destroy();
    },
  },
  {
    name: 'bad preface (HTTP/1.1 after ALPN h2) -> connection closed',
    async run({ gw, ca }) {
      const c = await rawH2(gw, ca);
      await c.write(Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
      await Promise.race([c.closed, sleep(5000)]);
      assert.ok(c.sock.destroyed || c.sock.readableEnded, 'closed');
      assert.ok(!c.frames.some((f) => f.type === T.HEADERS), 'nothing answered');
    },
  },
  {
    name: 'more streams than SETTINGS_MAX_CONCURRENT_STREAMS -> the extra stream is refused',
    async run({ gw, ca }) {
      const c = await rawH2(gw, ca);
      // Sent before our SETTINGS is acknowledged: the limit (2 here) applies as REFUSED_STREAM.
      const block = hpack(requestFields(gw, { method: 'POST', path: '/v1/chat/completions', headers: [['authorization', `Bearer ${CLIENT_TOKEN}`], ['content-type', 'application/json'], ['x-mock-mode', 'delay-500']] }));
      const body = Buffer.from(chatBody('g'));
      const parts = [PREFACE, settings()];
      for (const id of [1, 3, 5]) parts.push(frame(T.HEADERS, F.END_HEADERS, id, block), frame(T.DATA, F.END_STREAM, id, body));
      await c.write(Buffer.concat(parts));
      await waitFor(() => c.frames.filter((f) => f.type === T.HEADERS).length >= 2, { what: 'two answers', timeout: 5000 });
      const rst = c.frames.find((f) => f.type === T.RST_STREAM && f.stream === 5);
      assert.ok(rst, 'stream 5 reset');
      assert.equal(rst.payload.readUInt32BE(0), REFUSED_STREAM);
      assert.deepEqual(c.frames.filter((f) => f.type === T.HEADERS).map((f) => f.stream).sort(), [1, 3]);
      c.sock.destroy();
    },
  },
  {
    name: 'a flood of streams over the limit, the SETTINGS never acknowledged -> GOAWAY ENHANCE_YOUR_CALM',
    async run({ gw, ca }) {
      const c = await rawH2(gw, ca);
      // Unacknowledged, the limit (2 here) makes nghttp2 refuse each stream past it rather than
      // end the connection, and nothing makes a client acknowledge: each refusal queues a
      // reset, so each spends the reset budget (200 at once).
      const slow = hpack(requestFields(gw, { method: 'POST', path: '/v1/chat/completions', headers: [['authorization', `Bearer ${CLIENT_TOKEN}`], ['content-type', 'application/json'], ['x-mock-mode', 'delay-500']] }));
      const body = Buffer.from(chatBody('g'));
      const get = hpack(requestFields(gw, { method: 'GET', path: '/healthz' }));
      const parts = [PREFACE, settings()];
      for (const id of [1, 3]) parts.push(frame(T.HEADERS, F.END_HEADERS, id, slow), frame(T.DATA, F.END_STREAM, id, body));
      for (let id = 5; id < 5 + 2 * 1000; id += 2) parts.push(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, id, get));
      await c.write(Buffer.concat(parts));
      await waitFor(() => c.goaway() || c.sock.destroyed, { what: 'a GOAWAY', timeout: 5000 }).catch(() => {});
      const refused = c.frames.filter((f) => f.type === T.RST_STREAM && f.payload.readUInt32BE(0) === REFUSED_STREAM).length;
      assert.equal(goawayCode(c.goaway()), ENHANCE_YOUR_CALM, `${refused} refused`);
      assert.ok(refused >= 150 && refused <= 400, `${refused} refused before the GOAWAY`);
      c.sock.destroy();
    },
  },
  {
    name: 'request bodies of concurrent streams over tls.http2_connection_body_bytes -> 413 JSON on the stream past it, the others served',
    async run({ ca, M }) {
      // A gateway of its own: a 32 KiB budget per connection (limits.max_body_bytes stays 64 MiB).
      const gw2 = await startH2Gateway({ ca, workers: 1, providers: [{ group: 'g', name: 'm', base: M.url, key: 'sk-up' }], tlsExtra: { http2_connection_body_bytes: 32768 } });
      try {
        const c = await rawH2(gw2, ca);
        const block = hpack(requestFields(gw2, { method: 'POST', path: '/v1/chat/completions', headers: [['authorization', `Bearer ${CLIENT_TOKEN}`], ['content-type', 'application/json']] }));
        const body1 = Buffer.from(JSON.stringify({ model: 'g', messages: [{ role: 'user', content: 'x'.repeat(20000) }] }));
        // Stream 1 holds 16 KiB, stream 3 another 16 KiB (the budget is full, not over), then
        // stream 3 sends 4000 bytes more: over the budget. Stream 1 then ends its body.
        await c.write(Buffer.concat([
          PREFACE, settings(),
          frame(T.HEADERS, F.END_HEADERS, 1, block), frame(T.DATA, 0, 1, body1.subarray(0, 16384)),
          frame(T.HEADERS, F.END_HEADERS, 3, block), frame(T.DATA, 0, 3, Buffer.alloc(16384, 0x20)),
          frame(T.DATA, 0, 3, Buffer.alloc(4000, 0x20)),
          frame(T.DATA, F.END_STREAM, 1, body1.subarray(16384)),
        ]));
        const ended = (id) => c.frames.some((f) => f.type === T.DATA && f.stream === id && f.flags & F.END_STREAM);
        await waitFor(() => ended(1), { what: 'the answer to stream 1', timeout: 5000 });
        const text = (id) => Buffer.concat(c.frames.filter((f) => f.type === T.DATA && f.stream === id).map((f) => f.payload)).toString();
        assert.equal(JSON.parse(text(1)).model, 'g', 'stream 1 is served');
        assert.ok(ended(3), 'stream 3 is answered (before stream 1 finished)');
        const e = JSON.parse(text(3)).error;
        assert.equal(e.code, 'request_too_large');
        assert.match(e.message, /http2_connection_body_bytes/);
        assert.equal(c.goaway(), undefined, 'the connection is not ended');
        await waitFor(() => accessLines(gw2).some((l) => l.status === '413' && l.protocol === 'h2' && l.outcome === 'body_too_large'), { what: 'the access line of the 413', timeout: 3000 });
        c.sock.destroy();
        // One request, one access line: stream 3's 413, not also a 499 from the request code
        // whose body was cut off (the log is whole once the gateway has stopped).
        await gw2.stop();
        const lines = accessLines(gw2).map((l) => `${l.status} ${l.outcome}`).sort();
        assert.deepEqual(lines, ['200 ok', '413 body_too_large'], 'one access line per stream');
      } finally {
        await gw2.stop();
        gw2.cleanup();
      }
    },
  },
  {
    name: 'a header block that never ends -> the connection is closed after timeouts.client_header',
    async run({ ca, M }) {
      await withGateway({ ca, M, extra: { timeouts: { client_header: 1, keepalive: 1 } } }, async (gw2) => {
        const c = await rawH2(gw2, ca);
        const t0 = performance.now();
        await c.write(Buffer.concat([PREFACE, settings(), frame(T.HEADERS, 0, 1, hpack(requestFields(gw2)))]));
        await Promise.race([c.closed, sleep(6000)]);
        const ms = performance.now() - t0;
        assert.ok(c.sock.destroyed || c.sock.readableEnded, 'closed');
        assert.ok(ms >= 900 && ms < 5000, `closed after ${Math.round(ms)} ms`);
      });
    },
  },
  {
    name: 'streams the gateway resets for the client\'s errors, provoked fast (MadeYouReset) -> GOAWAY ENHANCE_YOUR_CALM',
    async run({ ca, M }) {
      // A gateway with the default concurrency: with 2, most streams would be refused rather
      // than reset for their error, and this case is about the latter.
      await withGateway({ ca, M }, async (gw) => {
        const c = await rawH2(gw, ca);
        await c.write(Buffer.concat([PREFACE, settings()]));
        const block = hpack(requestFields(gw, { method: 'POST', path: '/v1/chat/completions', headers: [['content-type', 'application/json'], ['content-length', '2']] }));
        let id = 1;
        for (let round = 0; round < 20 && !c.goaway() && !c.sock.destroyed; round++) {
          const burst = [];
          // Three bytes of DATA against a content-length of 2: nghttp2 resets the stream.
          for (let i = 0; i < 50; i++, id += 2) burst.push(frame(T.HEADERS, F.END_HEADERS, id, block), frame(T.DATA, 0, id, Buffer.from('{}x')));
          await c.write(Buffer.concat(burst));
        }
        await waitFor(() => c.goaway() || c.sock.destroyed, { what: 'a GOAWAY', timeout: 5000 }).catch(() => {});
        // PROTOCOL_ERROR; REFUSED_STREAM too if bursts were read faster than the resets went
        // out (a stream is closed when its reset is written). Both spend the budget.
        const codes = c.frames.filter((f) => f.type === T.RST_STREAM).map((f) => f.payload.readUInt32BE(0));
        assert.ok(codes.every((k) => k === PROTOCOL_ERROR || k === REFUSED_STREAM), [...new Set(codes)].join());
        const resets = codes.length;
        assert.equal(goawayCode(c.goaway()), ENHANCE_YOUR_CALM, `${resets} streams reset, ${(id - 1) / 2} opened`);
        assert.ok(resets >= 150 && resets <= 400, `${resets} resets before the GOAWAY`);
        c.sock.destroy();
      });
    },
  },
  {
    name: 'DATA past the declared content-length -> RST_STREAM PROTOCOL_ERROR on that stream, the connection goes on',
    async run({ gw, ca }) {
      const c = await rawH2(gw, ca);
      const body = Buffer.from(chatBody('g'));
      const block = hpack(requestFields(gw, { method: 'POST', path: '/v1/chat/completions', headers: [['authorization', `Bearer ${CLIENT_TOKEN}`], ['content-type', 'application/json'], ['content-length', String(body.length)]] }));
      await c.write(Buffer.concat([PREFACE, settings(), frame(T.HEADERS, F.END_HEADERS, 1, block), frame(T.DATA, 0, 1, body), frame(T.DATA, F.END_STREAM, 1, Buffer.from('{"more":1}'))]));
      await waitFor(() => c.frames.some((f) => f.type === T.RST_STREAM && f.stream === 1), { what: 'the reset of stream 1', timeout: 5000 });
      assert.equal(c.frames.find((f) => f.type === T.RST_STREAM && f.stream === 1).payload.readUInt32BE(0), PROTOCOL_ERROR);
      assert.equal(c.goaway(), undefined, 'the connection is not ended');
      c.sock.destroy();
    },
  },
  {
    name: 'a request answered before its body ends (401) -> the answer, then RST_STREAM NO_ERROR (stop sending); the connection goes on',
    async run({ gw, ca }) {
      const c = await rawH2(gw, ca);
      const block = hpack(requestFields(gw, { method: 'POST', path: '/v1/chat/completions', headers: [['content-type', 'application/json'], ['content-length', '100000']] }));
      await c.write(Buffer.concat([PREFACE, settings(), frame(T.HEADERS, F.END_HEADERS, 1, block), frame(T.DATA, 0, 1, Buffer.alloc(1000, 0x20))]));
      await waitFor(() => c.frames.some((f) => f.type === T.RST_STREAM && f.stream === 1), { what: 'the reset of stream 1', timeout: 5000 });
      const ended = c.frames.findIndex((f) => f.type === T.DATA && f.stream === 1 && f.flags & F.END_STREAM);
      const rst = c.frames.findIndex((f) => f.type === T.RST_STREAM && f.stream === 1);
      assert.ok(ended >= 0 && ended < rst, 'the whole answer comes first');
      assert.equal(JSON.parse(Buffer.concat(c.frames.filter((f) => f.type === T.DATA && f.stream === 1).map((f) => f.payload)).toString()).error.code, 'invalid_api_key');
      assert.equal(c.frames[rst].payload.readUInt32BE(0), 0, 'NO_ERROR');
      // More DATA in flight on the reset stream are ignored; the connection goes on.
      await c.write(frame(T.DATA, 0, 1, Buffer.alloc(1000, 0x20)));
      assert.equal(c.goaway(), undefined, 'the connection is not ended');
      c.sock.destroy();
    },
  },
  {
    name: 'a body past limits.max_body_bytes without content-length -> 413 JSON (the HTTP/1.1 side counts the chunked body), the connection goes on',
    async run({ ca, M }) {
      await withGateway({ ca, M, extra: { limits: { max_body_bytes: 65536 } } }, async (gw2) => {
        const s = await h2connect(gw2, ca);
        const r = await h2request(s, { body: chatBody('g', { messages: [{ role: 'user', content: 'x'.repeat(100000) }] }) });
        assert.equal(r.status, 413, r.text);
        assert.equal(r.json().error.code, 'request_too_large');
        const ok = await h2request(s, { body: chatBody('g') });
        assert.equal(ok.status, 200, 'the connection still serves');
        s.close();
      });
    },
  },
  ...[
    { what: 'a JSON body with content-length', path: '/v1/chat/completions', type: 'application/json', length: true, first: Buffer.from('{"model":"g","messages":') },
    { what: 'a multipart body without content-length, its model part in', path: '/v1/audio/transcriptions', type: 'multipart/form-data; boundary=XyZ', length: false, first: Buffer.from('--XyZ\r\nContent-Disposition: form-data; name="model"\r\n\r\ng\r\n--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.mp3"\r\n\r\n' + 'a'.repeat(1000)) },
  ].map((k) => ({
    name: `a client that never sends the rest of ${k.what} -> 408 after timeouts.client_body, as over HTTP/1.1`,
    async run({ ca, M }) {
      await withGateway({ ca, M, extra: { timeouts: { client_body: 1 } } }, async (gw2) => {
        const s = await h2connect(gw2, ca);
        const headers = { ':method': 'POST', ':path': k.path, authorization: `Bearer ${CLIENT_TOKEN}`, 'content-type': k.type };
        if (k.length) headers['content-length'] = String(k.first.length + 1000);
        const req = s.request(headers, { endStream: false });
        req.on('error', () => {});
        const chunks = [];
        req.on('data', (d) => chunks.push(d));
        const status = new Promise((resolve) => req.once('response', (h) => resolve(h[':status'])));
        const t0 = performance.now();
        req.write(k.first);
        const got = await Promise.race([status, sleep(8000).then(() => 'no answer')]);
        assert.equal(got, 408);
        assert.ok(performance.now() - t0 >= 900, 'not before timeouts.client_body');
        await Promise.race([new Promise((r) => req.once('end', r)), sleep(3000)]);
        assert.equal(JSON.parse(Buffer.concat(chunks).toString()).error.code, 'request_timeout');
        s.destroy();
      });
    },
  })),
  ...[
    { what: 'a JSON answer', body: { model: 'g', messages: [{ role: 'user', content: 'hi' }] } },
    { what: 'an SSE stream', body: { model: 'g', stream: true, messages: [{ role: 'user', content: 'hi' }] } },
  ].map((k) => ({
    name: `a client that never opens its window for ${k.what} -> the stream is reset after timeouts.idle, then the idle connection gets its GOAWAY`,
    async run({ ca, M }) {
      // idle 1 s bounds a client write that makes no progress (as over HTTP/1.1); keepalive 1 s
      // ends the connection once it holds no stream.
      await withGateway({ ca, M, extra: { timeouts: { idle: 1, keepalive: 1 } } }, async (gw2) => {
        const c = await rawH2(gw2, ca);
        const block = hpack(requestFields(gw2, { method: 'POST', path: '/v1/chat/completions', headers: [['authorization', `Bearer ${CLIENT_TOKEN}`], ['content-type', 'application/json']] }));
        const t0 = performance.now();
        // INITIAL_WINDOW_SIZE 0, and never a WINDOW_UPDATE: no DATA can ever be sent.
        await c.write(Buffer.concat([PREFACE, settings([[4, 0]]), frame(T.HEADERS, F.END_HEADERS, 1, block), frame(T.DATA, F.END_STREAM, 1, Buffer.from(JSON.stringify(k.body)))]));
        await waitFor(() => c.frames.some((f) => f.type === T.HEADERS && f.stream === 1), { what: 'the answer head', timeout: 5000 });
        await waitFor(() => c.frames.some((f) => f.type === T.RST_STREAM && f.stream === 1), { what: 'RST_STREAM on the stalled stream', timeout: 6000 });
        const rstAt = performance.now() - t0;
        assert.ok(rstAt >= 900, `reset after ${rstAt} ms: not before timeouts.idle`);
        const rst = c.frames.find((f) => f.type === T.RST_STREAM && f.stream === 1);
        assert.equal(rst.payload.readUInt32BE(0), CANCEL);
        assert.ok(!c.frames.some((f) => f.type === T.DATA && f.stream === 1 && f.payload.length > 0), 'no DATA past a zero window');
        // No stream left: the keep-alive limit ends the connection.
        await waitFor(() => c.goaway(), { what: 'GOAWAY on the idle connection', timeout: 4000 });
        assert.equal(goawayCode(c.goaway()), 0);
        await Promise.race([c.closed, sleep(4000).then(() => assert.fail('the connection was not closed'))]);
      });
    },
  })),
  {
    name: 'a client whose window takes a stream\'s last byte but not its end -> the stream is reset after timeouts.idle',
    async run({ ca }) {
      // The provider sends every event at once and ends its answer 400 ms later: the stream's
      // bytes go out, and its end (END_STREAM) comes once the window they filled is shut.
      const events = ['hello', ' world'].map((c) => `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', model: 'm', choices: [{ index: 0, delta: { content: c } }] })}\n\n`);
      events.push('data: [DONE]\n\n');
      const up = http.createServer((req, res) => {
        req.resume();
        req.on('end', () => {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write(events.join(''));
          setTimeout(() => res.end(), 400);
        });
      });
      await new Promise((r) => up.listen(0, '127.0.0.1', r));
      // "model":"m" comes back as "model":"g": the same length.
      const length = Buffer.byteLength(events.join(''));
      const gw2 = await startH2Gateway({ ca, workers: 1, providers: [{ group: 'g', name: 'm', base: `http://127.0.0.1:${up.address().port}`, key: 'sk-up' }], extra: { timeouts: { idle: 1, keepalive: 1 } } });
      try {
        const c = await rawH2(gw2, ca);
        const block = hpack(requestFields(gw2, { method: 'POST', path: '/v1/chat/completions', headers: [['authorization', `Bearer ${CLIENT_TOKEN}`], ['content-type', 'application/json']] }));
        await c.write(Buffer.concat([PREFACE, settings([[4, length]]), frame(T.HEADERS, F.END_HEADERS, 1, block), frame(T.DATA, F.END_STREAM, 1, Buffer.from(chatBody('g', { stream: true })))]));
        const data = () => Buffer.concat(c.frames.filter((f) => f.type === T.DATA && f.stream === 1).map((f) => f.payload)).toString();
        await waitFor(() => data().includes('data: [DONE]'), { what: 'the whole stream', timeout: 5000 });
        assert.equal(data(), events.join('').replaceAll('"model":"m"', '"model":"g"'));
        await waitFor(() => c.frames.some((f) => f.type === T.RST_STREAM && f.stream === 1), { what: 'RST_STREAM on the stream whose end waits', timeout: 6000 });
        assert.ok(!c.frames.some((f) => f.stream === 1 && f.flags & F.END_STREAM && f.type !== T.HEADERS), 'no END_STREAM past a shut window');
        await waitFor(() => c.goaway(), { what: 'GOAWAY on the idle connection', timeout: 4000 });
        c.sock.destroy();
      } finally {
        await gw2.stop();
        gw2.cleanup();
        await new Promise((r) => up.close(r));
      }
    },
  },
  {
    name: 'a client that stops reading its socket -> the connection is closed once a write has waited timeouts.idle',
    async run({ ca, M }) {
      await withGateway({ ca, M, extra: { timeouts: { idle: 1 } } }, async (gw2) => {
        const metric = async () => {
          const text = await (await fetch(`${gw2.adminUrl}/metrics`)).text();
          return Number(/^openbridge_client_connections (\S+)$/m.exec(text)[1]);
        };
        const c = await rawH2(gw2, ca);
        const block = hpack(requestFields(gw2, { method: 'POST', path: '/v1/chat/completions', headers: [['authorization', `Bearer ${CLIENT_TOKEN}`], ['content-type', 'application/json'], ['x-mock-mode', 'big-48000000']] }));
        // Windows wide open, so that only the socket holds the answer back.
        const maxWindow = 0x7fffffff;
        const update = Buffer.alloc(4);
        update.writeUInt32BE(maxWindow - 65535);
        await c.write(Buffer.concat([PREFACE, settings([[4, maxWindow]]), frame(T.WINDOW_UPDATE, 0, 0, update), frame(T.HEADERS, F.END_HEADERS, 1, block), frame(T.DATA, F.END_STREAM, 1, Buffer.from(chatBody('g')))]));
        await waitFor(() => c.frames.some((f) => f.type === T.DATA && f.stream === 1), { what: 'the answer flowing', timeout: 10000 });
        assert.equal(await metric(), 1);
        c.sock.pause();
        // The socket buffers fill, the gateway's write waits, and timeouts.idle after that write
        // began the connection is closed. (No lower bound here: the write that stalls may have
        // begun before the pause.)
        await waitFor(async () => (await metric()) === 0, { what: 'the connection closed', timeout: 8000, every: 100 });
        c.sock.destroy();
      });
    },
  },
  {
    name: 'window-zero client on an SSE stream -> bounded memory, the upstream stops, and closes when the client goes',
    flood: true,
    async run({ gw, ca, flood }) {
      const c = await rawH2(gw, ca);
      const block = hpack(requestFields(gw, { method: 'POST', path: '/v1/chat/completions', headers: [['authorization', `Bearer ${CLIENT_TOKEN}`], ['content-type', 'application/json']] }));
      const rss0 = rssKiB(gw.proc.pid);
      // INITIAL_WINDOW_SIZE 0: the gateway may send no DATA at all.
      await c.write(Buffer.concat([PREFACE, settings([[4, 0]]), frame(T.HEADERS, F.END_HEADERS, 1, block), frame(T.DATA, F.END_STREAM, 1, Buffer.from(chatBody('flood', { stream: true })))]));
      await waitFor(() => c.frames.some((f) => f.type === T.HEADERS && f.stream === 1), { what: 'the answer head', timeout: 5000 });
      await waitFor(() => flood.state.written > 0, { what: 'the upstream writing' });
      // The upstream writes as long as it is read: once the gateway stops reading, `written`
      // stops growing well below what an unbounded buffer would take.
      let last = -1;
      for (let i = 0; i < 50 && flood.state.written !== last; i++) {
        last = flood.state.written;
        await sleep(200);
      }
      assert.equal(flood.state.written, last, 'the upstream is no longer read');
      assert.ok(flood.state.written < 32 * 1024 * 1024, `${flood.state.written} bytes taken from the upstream`);
      const grown = rssKiB(gw.proc.pid) - rss0;
      assert.ok(grown < 32 * 1024, `RSS grew by ${grown} KiB`);
      assert.ok(!c.frames.some((f) => f.type === T.DATA && f.stream === 1 && f.payload.length > 0), 'no DATA past a zero window');
      const gone = performance.now();
      c.sock.destroy();
      await waitFor(() => flood.state.open === 0, { what: 'the upstream connection closed', timeout: 5000 });
      assert.ok(flood.state.closedAt >= gone);
    },
  },
];

describe('hostile HTTP/2 clients', { timeout: 300000 }, () => {
  let ca, M, flood, gw;
  before(async () => {
    ca = makeTestCA();
    M = await startMock();
    flood = await startFloodUpstream();
    gw = await startH2Gateway({
      ca,
      workers: 1,
      providers: [
        { group: 'g', name: 'm', base: M.url, key: 'sk-up' },
        { group: 'flood', name: 'm', base: flood.url, key: 'sk-up' },
      ],
      tlsExtra: { http2_max_concurrent_streams: 2 },
      extra: { limits: { max_header_bytes: 16384 } },
    });
  });
  after(async () => {
    const r = await gw?.stop();
    gw?.cleanup();
    await M?.close();
    await flood?.close();
    ca?.cleanup();
    assert.deepEqual(r, { code: 0, signal: null });
  });

  for (const c of cases) {
    test(c.name, { timeout: 60000 }, async () => {
      await c.run({ gw, ca, flood, M });
      // The gateway lives on and serves a fresh connection.
      const s = await h2connect(gw, ca);
      const r = await h2request(s, { method: 'GET', path: '/healthz', token: null });
      assert.equal(r.status, 200);
      s.close();
    });
  }
});
