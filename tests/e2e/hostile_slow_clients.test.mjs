// Slow and non-reading clients, as a table: each case opens raw connections, misbehaves, and
// checks what the gateway does with its memory, its descriptors and the provider connection.
//
// Documented behaviour checked here:
// - a client that stops reading a stream holds at most the socket buffers: the gateway stops
//   reading the provider (backpressure, no unbounded buffering) and gives up after
//   timeouts.idle, closing both sides;
// - a client that half-closes (FIN) after its request is treated as gone once the request is
//   with the provider for more than ~20 ms: the provider connection is closed and nothing is
//   written back (the same as an abort; a faster answer may still be delivered);
// - connections that send nothing are closed quietly after timeouts.keepalive.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { startMock } from '../../tools/mock-provider/server.js';
import { startGateway } from './lib/gateway.mjs';
import { request, waitFor } from './lib/http.mjs';
import { rawExchange, rawRequest } from './lib/raw.mjs';
import { CLIENT_TOKEN, accessLines } from './lib/common.mjs';

const IDLE_S = 2;
const KEEPALIVE_S = 1.5;
const AUTH = [
  ['Authorization', `Bearer ${CLIENT_TOKEN}`],
  ['Content-Type', 'application/json'],
];

const rssKb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const fdCount = (pid) => fs.readdirSync(`/proc/${pid}/fd`).length;

// An endless SSE provider that honours backpressure; counts what it managed to write.
function startFirehose() {
  const state = { written: 0, closedAt: null, blockedAt: null, sockets: new Set() };
  const event = `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', model: 'real-firehose', choices: [{ index: 0, delta: { content: 'x'.repeat(900) } }] })}\n\n`;
  const piece = Buffer.from(`${Buffer.byteLength(event).toString(16)}\r\n${event}\r\n`.repeat(64));
  const server = net.createServer((s) => {
    state.sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => {
      state.closedAt = performance.now();
      state.sockets.delete(s);
    });
    s.once('data', () => {
      s.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n');
      const pump = () => {
        // Bounded: at most 512 MB offered.
        while (!s.destroyed && state.written < 512 * 1024 * 1024) {
          state.written += piece.length;
          if (!s.write(piece)) {
            state.blockedAt = performance.now();
            s.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        state,
        port: server.address().port,
        close: () => {
          for (const s of state.sockets) s.destroy();
          return new Promise((r) => server.close(r));
        },
      }),
    ),
  );
}

const CASES = [
  {
    name: 'a client that asks for an endless stream and never reads',
    async run({ gw, firehose }) {
      const pid = gw.proc.pid;
      const rss0 = rssKb(pid);
      const sock = net.connect({ port: gw.port, host: '127.0.0.1' });
      sock.on('error', () => {});
      await new Promise((r) => sock.once('connect', r));
      sock.pause(); // never read
      sock.write(rawRequest({ headers: AUTH, body: '{"model":"firehose","stream":true}' }));
      const t0 = performance.now();
      let maxRss = rss0;
      // Until the provider connection is closed (bounded by 20 s), sample the gateway's RSS.
      await waitFor(
        () => {
          maxRss = Math.max(maxRss, rssKb(pid));
          return firehose.state.closedAt !== null;
        },
        { timeout: 20000, every: 50, what: 'the gateway to close the provider connection' },
      );
      sock.destroy();
      const closedAfterBlockMs = firehose.state.closedAt - (firehose.state.blockedAt ?? t0);
      assert.ok(firehose.state.blockedAt !== null, 'the provider was held back (backpressure)');
      assert.ok(firehose.state.written < 64 * 1024 * 1024, `the gateway stopped reading: ${firehose.state.written} bytes taken`);
      assert.ok(maxRss - rss0 < 32 * 1024, `gateway RSS grew by ${maxRss - rss0} KB`);
      // Gives up after the idle timeout (the client write stalls for timeouts.idle).
      assert.ok(closedAfterBlockMs >= IDLE_S * 1000 - 500 && closedAfterBlockMs < IDLE_S * 1000 + 4000, `closed ${Math.round(closedAfterBlockMs)} ms after the provider was blocked`);
      const line = await waitFor(() => accessLines(gw).find((l) => l.group === 'firehose'), { timeout: 3000, what: 'access line' });
      assert.match(line.outcome, /client_cancelled|client_timeout/, line._line);
    },
  },
  {
    name: 'a client that half-closes after its request (slow provider): closed, provider released',
    async run({ gw, mock }) {
      mock.reset();
      const r = await rawExchange({ port: gw.port, pieces: rawRequest({ headers: AUTH, body: '{"model":"slow","messages":[]}' }), halfClose: true, timeout: 5000 });
      assert.equal(r.timedOut, false, 'the gateway closed the connection');
      assert.equal(r.raw.length, 0, `nothing is written back: ${r.raw.toString('latin1').slice(0, 200)}`);
      await waitFor(() => mock.stats().requests[0]?.aborted, { timeout: 2000, what: 'the provider to see the abort' });
      assert.ok(r.elapsedMs < 1000, `closed after ${Math.round(r.elapsedMs)} ms, before the provider's answer (800 ms)`);
    },
  },
  {
    name: '50 connections that send nothing are closed after timeouts.keepalive',
    async run({ gw }) {
      const pid = gw.proc.pid;
      const fd0 = fdCount(pid);
      const t0 = performance.now();
      const results = await Promise.all(Array.from({ length: 50 }, () => rawExchange({ port: gw.port, pieces: [], timeout: 10000 })));
      for (const r of results) {
        assert.equal(r.timedOut, false, 'closed by the gateway');
        assert.equal(r.raw.length, 0, 'closed quietly');
        assert.ok(r.elapsedMs >= KEEPALIVE_S * 1000 - 100 && r.elapsedMs < KEEPALIVE_S * 1000 + 3000, `closed after ${Math.round(r.elapsedMs)} ms`);
      }
      assert.ok(performance.now() - t0 < 10000);
      await waitFor(() => fdCount(pid) <= fd0, { timeout: 3000, what: `descriptors back to ${fd0}` });
    },
  },
];

describe('slow and non-reading clients', { timeout: 120000 }, () => {
  let mock, firehose, gw;
  before(async () => {
    mock = await startMock();
    firehose = await startFirehose();
    gw = await startGateway({
      config: {
        providers: [
          { group: 'firehose', name: 'real-firehose', base: `http://127.0.0.1:${firehose.port}`, key: 'sk-up' },
          { group: 'slow', name: 'real-slow', base: `${mock.url}/mode/delay-800`, key: 'sk-up' },
        ],
        security: [CLIENT_TOKEN],
        timeouts: { idle: IDLE_S, keepalive: KEEPALIVE_S, client_header: KEEPALIVE_S },
      },
    });
  });
  after(async () => {
    const r = await gw?.stop();
    await firehose?.close();
    await mock?.close();
    assert.equal(r?.code, 0);
  });

  for (const c of CASES) {
    const run = async () => {
      await c.run({ gw, mock, firehose });
      const h = await request({ url: `${gw.url}/healthz`, timeout: 3000 });
      assert.equal(h.status, 200, 'the gateway is still up');
    };
    if (c.owner) test(`${c.name} [owner: ${c.owner}: ${c.reason}]`, { todo: `${c.owner}: ${c.reason}`, timeout: 30000 }, run);
    else test(c.name, { timeout: 30000 }, run);
  }
});
