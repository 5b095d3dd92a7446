// End-to-end: upstreams that break HTTP/1.1 framing on a keep-alive connection must never make
// the gateway hand one request's answer to another. A raw upstream (plain or TLS) answers a
// "poison" request and then writes a stray answer on the same connection (20 ms later, or in
// the same write); every later request must still get its own answer. Also: idle pooled
// connections to a provider that closed them, or that left the config, are closed.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startMock } from '../../tools/mock-provider/server.js';
import { startGateway } from './lib/gateway.mjs';
import { waitFor } from './lib/http.mjs';
import { listenRaw, startGatewayInFront } from './lib/raw.mjs';
import { makeTestCA } from './lib/tls.mjs';
import { CLIENT_TOKEN, chatBody, gwPost } from './lib/common.mjs';

const T = { timeout: 30000 };
const FOLLOW_UPS = 6;

const STRAY_BODY = JSON.stringify({ model: 'hostile-model', received_path: 'POISONED', marker: 'POISONED' });
const STRAY = `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(STRAY_BODY)}\r\n\r\n${STRAY_BODY}`;

function jsonAnswer(marker) {
  return jsonAnswerWith(marker, {});
}

function jsonAnswerWith(marker, extra) {
  const body = JSON.stringify({ id: `chatcmpl-${marker}`, object: 'chat.completion', model: 'hostile-model', marker, ...extra });
  return `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

function chunkedAnswer(marker) {
  const body = JSON.stringify({ id: `chatcmpl-${marker}`, object: 'chat.completion', model: 'hostile-model', marker });
  const half = Math.floor(body.length / 2);
  const chunk = (s) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;
  return `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(body.slice(0, half))}${chunk(body.slice(half))}0\r\n\r\n`;
}

// A JSON answer of exactly `size` bytes (head included), padded in its body.
function answerOfSize(marker, size) {
  for (let pad = 0; pad < size; pad++) {
    const a = jsonAnswerWith(marker, { pad: 'x'.repeat(pad) });
    if (Buffer.byteLength(a) === size) return a;
  }
  throw new Error(`no answer of ${size} bytes`);
}

const sseAnswer = (marker) => {
  const ev = `data: ${JSON.stringify({ id: marker, object: 'chat.completion.chunk', model: 'hostile-model', choices: [{ index: 0, delta: { content: marker } }] })}\n\ndata: [DONE]\n\n`;
  return `HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n${Buffer.byteLength(ev).toString(16)}\r\n${ev}\r\n0\r\n\r\n`;
};

// Each row: the answer to the poison request, what the client must get for it, and how the
// stray answer follows (`delay` ms later in its own write, or `same` write as the answer).
const CASES = [
  { name: '204 No Content, stray answer 20 ms later', answer: () => 'HTTP/1.1 204 No Content\r\n\r\n', status: 204, delay: 20 },
  { name: '304 Not Modified, stray answer 20 ms later', answer: () => 'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n', status: 304, delay: 20 },
  { name: '200 with Content-Length, stray answer 20 ms later', answer: jsonAnswer, status: 200, delay: 20 },
  { name: 'chunked 200, stray answer 20 ms later', answer: chunkedAnswer, status: 200, delay: 20 },
  { name: 'SSE stream, stray answer 20 ms later', answer: sseAnswer, status: 200, stream: true, delay: 20 },
  { name: '200 with Content-Length, stray bytes in the same segment', answer: jsonAnswer, status: 200, same: true },
  { name: 'chunked 200, stray bytes after the terminator in the same segment', answer: chunkedAnswer, status: 200, same: true },
  { name: '204 followed by body bytes in the same segment', answer: () => 'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n', status: 204, same: true },
  { name: 'TLS: 200 with Content-Length, stray answer 20 ms later', answer: jsonAnswer, status: 200, delay: 20, tls: true },
  // TLS records of at most 512 bytes and an answer of exactly 512: the stray answer is the
  // next record of the same write, left inside the TLS layer when the answer was read.
  { name: 'TLS: 200 with Content-Length, stray record in the same segment', answer: (m) => answerOfSize(m, 512), status: 200, same: true, tls: true },
];

// A raw HTTP/1.1 upstream: answers each request with a JSON answer echoing the request's
// `marker`; a marker "poison" gets `row.answer` plus the stray answer.
async function startHostile(row, ca) {
  let strays = 0;
  const onSocket = (sock) => {
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (let i = 0; i < 100; i++) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        const len = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + len) return;
        const body = JSON.parse(buf.subarray(end + 4, end + 4 + len).toString('utf8'));
        buf = buf.subarray(end + 4 + len);
        answer(sock, body.marker);
      }
    });
  };
  const answer = (sock, marker) => {
    if (marker !== 'poison') {
      sock.write(jsonAnswer(marker));
      return;
    }
    const first = row.answer(marker);
    if (row.same) {
      // One write: one TCP segment (on TLS, records of at most 512 bytes: see the row).
      if (row.tls) sock.setMaxSendFragment(512);
      sock.write(first + STRAY);
      strays++;
      return;
    }
    sock.write(first);
    setTimeout(() => {
      if (!sock.destroyed) sock.write(STRAY);
      strays++;
    }, row.delay);
  };
  const up = await listenRaw({ tls: row.tls, ca }, onSocket);
  return { ...up, strays: () => strays };
}

const body = (marker, extra = {}) => JSON.stringify({ model: 'hostile', marker, messages: [{ role: 'user', content: 'Hi' }], ...extra });

describe('hostile upstream: stray bytes after a complete answer never reach another request', { timeout: 600000 }, () => {
  let ca;
  before(() => {
    ca = makeTestCA();
  });
  after(() => ca?.cleanup());

  for (const row of CASES) {
    test(row.name, T, async () => {
      const up = await startHostile(row, ca);
      const gw = await startGatewayInFront(up, { group: 'hostile', name: 'hostile-model', ca });
      try {
        const first = await gwPost(gw, '/v1/chat/completions', body('poison', row.stream ? { stream: true } : {}));
        assert.equal(first.status, row.status, first.text);
        assert.ok(!first.text.includes('POISONED'), `the poison request got the stray answer: ${first.text}`);
        if (row.stream) assert.match(first.text, /data: \[DONE\]/);
        // Let the stray answer reach the gateway; a gateway that notices it closes the
        // connection, which ends the wait early (bounded either way).
        await waitFor(() => up.strays() > 0, { timeout: 2000, what: 'the stray answer was written' });
        await waitFor(() => up.state.closed > 0, { timeout: 300, what: 'close' }).catch(() => {});

        for (let i = 0; i < FOLLOW_UPS; i++) {
          const marker = `follow-up-${i}`;
          const r = await gwPost(gw, '/v1/chat/completions', body(marker));
          assert.equal(r.status, 200, `follow-up ${i}: ${r.text}`);
          assert.ok(!r.text.includes('POISONED'), `follow-up ${i} got the stray answer: ${r.text}`);
          const j = r.json();
          assert.equal(j.marker, marker, `follow-up ${i} got another request's answer: ${r.text}`);
          assert.equal(j.model, 'hostile');
        }
        assert.ok(up.state.closed >= 1, 'the poisoned connection was closed');
      } finally {
        await gw.stop();
        gw.cleanup();
        await up.close();
      }
    });
  }
});

// The gateway's TCP connections to 127.0.0.1:`port`, as TCP states (ESTABLISHED, CLOSE_WAIT...),
// from its own descriptors (/proc/PID/fd) joined with /proc/net/tcp{,6}.
const TCP_STATES = { '01': 'ESTABLISHED', '02': 'SYN_SENT', '04': 'FIN_WAIT1', '05': 'FIN_WAIT2', '06': 'TIME_WAIT', '07': 'CLOSE', '08': 'CLOSE_WAIT', '09': 'LAST_ACK', '0A': 'LISTEN', '0B': 'CLOSING' };
function connectionsTo(pid, port) {
  const inodes = new Set();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {}
  }
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const out = [];
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const c = line.trim().split(/\s+/);
      if (c.length < 10) continue;
      if (c[2].endsWith(`:${hexPort}`) && inodes.has(c[9])) out.push(TCP_STATES[c[3]] ?? c[3]);
    }
  }
  return out;
}

describe('idle pooled connections are closed when the provider closes them or leaves the config', { timeout: 120000 }, () => {
  test('the provider closes an idle keep-alive connection: the gateway closes its side at once', T, async () => {
    const M = await startMock({ keepAliveTimeout: 200, keepAliveHint: false });
    const config = { providers: [{ group: 'ka', name: 'ka-model', base: M.url, key: 'sk-ka' }], security: [CLIENT_TOKEN] };
    const gw = await startGateway({ config, workers: 1 });
    try {
      const r = await gwPost(gw, '/v1/chat/completions', chatBody('ka'));
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(connectionsTo(gw.proc.pid, M.port), ['ESTABLISHED'], 'one pooled connection');
      await waitFor(() => M.stats().open === 0, { timeout: 3000, what: 'the provider closed its side' });
      // The gateway's side must follow within a bound; it must not sit in CLOSE_WAIT.
      await waitFor(() => connectionsTo(gw.proc.pid, M.port).length === 0, { timeout: 1000, what: 'no connection left to the provider' }).catch(() => {});
      assert.deepEqual(connectionsTo(gw.proc.pid, M.port), []);
    } finally {
      await gw.stop();
      gw.cleanup();
      await M.close();
    }
  });

  test('a reload removes a provider: its idle pooled connections are closed', T, async () => {
    const A = await startMock({ keepAliveTimeout: 60000 });
    const B = await startMock({ keepAliveTimeout: 60000 });
    const cfg = (providers) => ({ providers, security: [CLIENT_TOKEN] });
    const pa = { group: 'gone', name: 'gone-model', base: A.url, key: 'sk-a' };
    const pb = { group: 'stay', name: 'stay-model', base: B.url, key: 'sk-b' };
    const gw = await startGateway({ config: cfg([pa, pb]), workers: 2 });
    try {
      // Concurrent requests leave several idle connections to A in the pools.
      const rs = await Promise.all(Array.from({ length: 6 }, () => gwPost(gw, '/v1/chat/completions', chatBody('gone'))));
      assert.deepEqual(rs.map((r) => r.status), Array(6).fill(200));
      assert.ok(A.stats().open >= 1, 'idle connections to A are pooled');
      gw.writeConfig(cfg([pb]));
      gw.sighup();
      await waitFor(async () => (await gwPost(gw, '/v1/chat/completions', chatBody('gone'))).status === 404, { timeout: 5000, every: 50, what: 'the reload removed "gone"' });
      await waitFor(() => A.stats().open === 0, { timeout: 2000, what: 'connections to the removed provider closed' }).catch(() => {});
      assert.equal(A.stats().open, 0, 'connections to the removed provider still open');
      assert.deepEqual(connectionsTo(gw.proc.pid, A.port), []);
      assert.equal((await gwPost(gw, '/v1/chat/completions', chatBody('stay'))).status, 200);
    } finally {
      await gw.stop();
      gw.cleanup();
      await A.close();
      await B.close();
    }
  });
});
