// End-to-end: waiting for the next bytes costs no read that finds nothing. A read that took
// every byte the kernel held, with no FIN behind them (the kernel's TCP_INQ hint,
// src/net/recv_buffer.hpp), marks its socket drained, so the next read waits for the next epoll
// edge instead of trying a recv first: the client's next request on a keep-alive connection,
// the provider's answer, a stream's next event, the pool's watch of an idle provider
// connection. Counted with strace: recvfrom/recvmsg calls that failed with EAGAIN (before, at
// least two per request and one per streamed event). The ends those reads exist for still
// arrive: hostile_upstream_timing.test.mjs (a provider that closes right after its answer) and
// hostile_slow_clients.test.mjs (a client that half-closes after its request) cover them, and
// the last case here.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startMock } from '../../tools/mock-provider/server.js';
import { startGateway, freePort } from './lib/gateway.mjs';
import { request, waitFor } from './lib/http.mjs';
import { makeTestCA } from './lib/tls.mjs';
import { attachStrace } from './lib/strace.mjs';
import { CLIENT_TOKEN, chatBody, sleep } from './lib/common.mjs';

const T = { timeout: 60000 };
const AUTH = { 'content-type': 'application/json', authorization: `Bearer ${CLIENT_TOKEN}` };

// The recv calls of the gateway's threads in strace's trace that found nothing, and all of them.
function recvCounts(file) {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const recv = lines.filter((l) => /\b(recvfrom|recvmsg)(\(| resumed>)/.test(l) && /= /.test(l));
  return { all: recv.length, empty: recv.filter((l) => /= -1 EAGAIN/.test(l)).length, sample: recv.slice(0, 12).join('\n') };
}

// Runs `work` with strace counting the gateway's recv calls; skips when strace cannot attach.
async function countedRecvs(t, gw, work) {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ob-strace-')), 'trace');
  const strace = await attachStrace(gw.proc.pid, ['-e', 'trace=recvfrom,recvmsg'], { output: file });
  if (strace.error) {
    t.skip(`strace cannot attach here (${strace.error})`);
    return null;
  }
  try {
    await work();
  } finally {
    await strace.stop();
  }
  const counts = recvCounts(file);
  fs.rmSync(path.dirname(file), { recursive: true, force: true });
  return counts;
}

describe('socket reads: no recv that finds nothing', { timeout: 180000 }, () => {
  let M;
  before(async () => {
    M = await startMock();
  });
  after(async () => {
    await M?.close();
  });

  test('keep-alive requests with pauses between them: the client side and the provider side', T, async (t) => {
    const gw = await startGateway({
      workers: 1,
      config: { providers: [{ group: 'g', name: 'm', base: M.url, key: 'sk-up' }], security: [CLIENT_TOKEN] },
    });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      // The upstream connection exists before counting (its first read has nothing to go by).
      const warm = await request({ url: `${gw.url}/v1/chat/completions`, method: 'POST', headers: AUTH, body: chatBody('g'), agent });
      assert.equal(warm.status, 200, warm.text);
      const N = 15;
      const counts = await countedRecvs(t, gw, async () => {
        for (let i = 0; i < N; i++) {
          const r = await request({ url: `${gw.url}/v1/chat/completions`, method: 'POST', headers: AUTH, body: chatBody('g'), agent });
          assert.equal(r.status, 200, r.text);
          assert.equal(r.json().model, 'g');
          await sleep(30); // the gateway waits for the next request, the pool watches the provider
        }
      });
      if (!counts) return;
      // Two reads per request that take bytes: the request, the answer.
      assert.ok(counts.all >= 2 * N, `too few recv calls traced (${counts.all}): ${counts.sample}`);
      assert.ok(counts.empty <= 2, `${counts.empty} recv calls found nothing over ${N} requests:\n${counts.sample}`);
    } finally {
      agent.destroy();
      await gw.stop();
    }
  });

  test('a stream whose events come 20 ms apart: no recv between them', T, async (t) => {
    const gw = await startGateway({
      workers: 1,
      config: { providers: [{ group: 'g', name: 'm', base: `${M.url}/mode/slow-stream-20`, key: 'sk-up' }], security: [CLIENT_TOKEN] },
    });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const warm = await request({ url: `${gw.url}/v1/chat/completions`, method: 'POST', headers: AUTH, body: chatBody('g'), agent });
      assert.equal(warm.status, 200, warm.text);
      let events = 0;
      const counts = await countedRecvs(t, gw, async () => {
        for (let i = 0; i < 2; i++) {
          const r = await request({ url: `${gw.url}/v1/chat/completions`, method: 'POST', headers: AUTH, body: chatBody('g', { stream: true }), agent });
          assert.equal(r.status, 200, r.text);
          assert.match(r.text, /data: \[DONE\]/);
          assert.doesNotMatch(r.text, /"model":"(?!g")/, 'a model name not rewritten');
          events += (r.text.match(/^data: /gm) || []).length;
        }
      });
      if (!counts) return;
      assert.ok(events >= 20, `only ${events} events`);
      assert.ok(counts.empty <= 2, `${counts.empty} recv calls found nothing over 2 streams of ${events} events in all:\n${counts.sample}`);
    } finally {
      agent.destroy();
      await gw.stop();
    }
  });

  test('keep-alive requests over the TLS listener', T, async (t) => {
    const ca = makeTestCA();
    const tlsPort = await freePort();
    const gw = await startGateway({
      workers: 1,
      config: {
        providers: [{ group: 'g', name: 'm', base: M.url, key: 'sk-up' }],
        security: [CLIENT_TOKEN],
        tls: { listen: `127.0.0.1:${tlsPort}`, cert: ca.cert, key: ca.key },
      },
    });
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: ca.caCertPem });
    const url = `https://localhost:${tlsPort}/v1/chat/completions`;
    try {
      await waitFor(() => /listening with TLS on/.test(gw.stderr()), { what: 'the TLS listener', timeout: 5000 });
      const warm = await request({ url, method: 'POST', headers: AUTH, body: chatBody('g'), agent });
      assert.equal(warm.status, 200, warm.text);
      const N = 10;
      const counts = await countedRecvs(t, gw, async () => {
        for (let i = 0; i < N; i++) {
          const r = await request({ url, method: 'POST', headers: AUTH, body: chatBody('g'), agent });
          assert.equal(r.status, 200, r.text);
          await sleep(30);
        }
      });
      if (!counts) return;
      assert.ok(counts.empty <= 2, `${counts.empty} recv calls found nothing over ${N} requests:\n${counts.sample}`);
    } finally {
      agent.destroy();
      await gw.stop();
      ca.cleanup();
    }
  });

  // The end that comes with the last bytes: a client that sends its request and its FIN at
  // once still gets the answer, then the close at once (not at timeouts.keepalive).
  test('a request and the FIN in one write: answered, then closed at once', T, async () => {
    const gw = await startGateway({
      workers: 1,
      config: { providers: [{ group: 'g', name: 'm', base: M.url, key: 'sk-up' }], security: [CLIENT_TOKEN], timeouts: { keepalive: 30 } },
    });
    try {
      const body = chatBody('g');
      const head = `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer ${CLIENT_TOKEN}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
      const got = await new Promise((resolve, reject) => {
        const s = net.connect({ port: gw.port, host: '127.0.0.1', allowHalfOpen: true }, () => s.end(head + body));
        const chunks = [];
        const t0 = Date.now();
        const timer = setTimeout(() => {
          s.destroy();
          reject(new Error(`the gateway did not close within 5 s; got: ${Buffer.concat(chunks).toString().slice(0, 200)}`));
        }, 5000);
        s.on('data', (d) => chunks.push(d));
        s.on('error', reject);
        s.on('end', () => {
          clearTimeout(timer);
          resolve({ text: Buffer.concat(chunks).toString(), ms: Date.now() - t0 });
        });
      });
      assert.match(got.text, /^HTTP\/1\.1 200 /);
      assert.match(got.text, /"model":"g"/);
      assert.ok(got.ms < 3000, `closed after ${got.ms} ms`);
    } finally {
      await gw.stop();
    }
  });
});
