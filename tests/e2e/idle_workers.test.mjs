// End-to-end: an idle gateway's workers sleep. Each worker's sweep loop (worker::flush_loop:
// lazy client watches, the access log buffer, pooled connections) ticks every 20 ms only while
// a request is in flight or access lines wait, and once a second otherwise; a request that
// starts while it sleeps wakes it, so the first request after a quiet spell still gets its
// access line written promptly and its client watched for a disconnect.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { startMock, nowMs } from '../../tools/mock-provider/server.js';
import { startGateway } from './lib/gateway.mjs';
import { waitFor } from './lib/http.mjs';
import { CLIENT_TOKEN, accessLines, chatBody, gwPost, sleep } from './lib/common.mjs';

const T = { timeout: 60000 };
const WORKERS = 2;
const IDLE_MS = 2000;

// Voluntary context switches (the thread blocked: epoll_wait returned, then slept again) per
// thread of the process, by thread id.
function switches(pid) {
  const out = new Map();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const m = /^voluntary_ctxt_switches:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'));
      if (m) out.set(tid, Number(m[1]));
    } catch {} // a thread that ended meanwhile
  }
  return out;
}

describe('idle workers', { timeout: 120000 }, () => {
  let A;
  let gw;
  before(async () => {
    A = await startMock();
    const P = (group, name, mode) => ({ group, name, base: mode ? `${A.url}/mode/${mode}` : A.url, key: 'sk-up' });
    gw = await startGateway({
      config: { providers: [P('chat', 'chat-model'), P('hang', 'hang-model', 'hang')], security: [CLIENT_TOKEN] },
      workers: WORKERS,
    });
    await sleep(1000); // the start's own activity (the readiness probe's connection) settles
  });
  after(async () => {
    await gw?.stop();
    await A?.close();
  });

  test(`an idle gateway's threads wake fewer than 10 times in ${IDLE_MS} ms each (a 20 ms tick: 100)`, T, async () => {
    const pid = gw.proc.pid;
    const before = switches(pid);
    await sleep(IDLE_MS);
    const after = switches(pid);
    const woke = [];
    for (const [tid, n] of after) {
      // The main thread (tid = pid) only waits for signals and the shutdown; not a worker.
      if (Number(tid) === pid || !before.has(tid)) continue;
      woke.push(n - before.get(tid));
    }
    assert.ok(woke.length >= WORKERS, `threads seen: ${woke.length}`);
    for (const n of woke) assert.ok(n < 10, `a thread woke ${n} times in ${IDLE_MS} ms idle (all: ${woke.join(', ')})`);
  });

  test('the first request after an idle spell is answered and its access line is written within 300 ms', T, async () => {
    await sleep(1500); // the loops are back to their slow tick
    const id = `idle-first-${Date.now()}`;
    const r = await gwPost(gw, '/v1/chat/completions', chatBody('chat'), { headers: { 'x-request-id': id } });
    assert.equal(r.status, 200, r.text);
    const t0 = performance.now();
    // Bounded well under the slow tick (1 s): a line left for it would fail here.
    await waitFor(() => accessLines(gw).some((l) => l.request_id === id), { timeout: 300, every: 5, what: 'the access line' });
    assert.ok(performance.now() - t0 < 300);
  });

  test('a client that leaves a slow request made after an idle spell gets the upstream closed within 300 ms', T, async () => {
    await sleep(1500);
    A.reset();
    const req = http.request(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${CLIENT_TOKEN}`, 'content-type': 'application/json' },
    });
    req.on('error', () => {}); // the abort below
    req.end(chatBody('hang'));
    try {
      // As soon as the provider has the request (the gateway's lazy client watch starts 20 ms
      // into it: the client leaves before that).
      const rec = await waitFor(() => A.requests().find((x) => x.model === 'hang-model'), { timeout: 5000, every: 2, what: 'the provider got the request' });
      assert.equal(rec.aborted, false);
      const leftAt = nowMs();
      req.destroy();
      await waitFor(() => rec.aborted, { timeout: 2000, every: 5, what: 'the provider connection closed' });
      const lag = rec.t_abort - leftAt;
      assert.ok(lag < 300, `provider connection closed ${lag.toFixed(1)} ms after the client left`);
    } finally {
      req.destroy();
    }
  });
});
