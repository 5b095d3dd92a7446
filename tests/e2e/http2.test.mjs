// End-to-end: HTTP/2 on the TLS listener (ALPN h2, tls.http2) with real clients: curl --http2,
// Node's http2 module, h2load. Every gateway feature per stream: auth, routing, model rewrite,
// SSE relay, client resets closing the upstream, access log.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { startMock, answerText } from '../../tools/mock-provider/server.js';
import { request, waitFor, parseSSE } from './lib/http.mjs';
import { makeTestCA } from './lib/tls.mjs';
import { CLIENT_TOKEN, chatBody, accessLines, sleep } from './lib/common.mjs';
import { startH2Gateway, h2connect, h2request, run, tempFile } from './lib/h2.mjs';
import { freePort } from './lib/gateway.mjs';

const T = { timeout: 60000 };

async function stopGateway(gw) {
  if (!gw) return;
  const r = await gw.stop();
  gw.cleanup();
  assert.deepEqual(r, { code: 0, signal: null });
}

describe('HTTP/2 listener', { timeout: 300000 }, () => {
  let ca, M, gw;
  before(async () => {
    ca = makeTestCA();
    M = await startMock();
    gw = await startH2Gateway({
      ca,
      providers: [
        { group: 'g', name: 'm', base: M.url, key: 'sk-up' },
        { group: 'f', name: 'broken', base: `${M.url}/mode/status-500`, key: 'sk-up' },
        { group: 'f', name: 'good', base: M.url, key: 'sk-up' },
      ],
      extra: {
        keys: [
          { name: 'rpm-three', token: 'sk-h2-rpm-3-secret', limits: { rpm: 3 } },
          // one request every 2 s, a refused one waits up to 6 s
          { name: 'h2-leaves', token: 'sk-h2-leaves-secret', limits: { rpm: 30, burst: 1, max_wait: 6 } },
          { name: 'tls-leaves', token: 'sk-tls-leaves-secret', limits: { rpm: 30, burst: 1, max_wait: 6 } },
        ],
      },
    });
  });
  after(async () => {
    await stopGateway(gw);
    await M?.close();
    ca?.cleanup();
  });

  const curlBase = () => ['-sS', '--http2', '--cacert', ca.caCert, '-H', `authorization: Bearer ${CLIENT_TOKEN}`, '-H', 'content-type: application/json', '--max-time', '15', '-i'];

  test('curl --http2: JSON answer over HTTP/2 with the group name as model', T, async () => {
    M.reset();
    const r = await run('curl', [...curlBase(), '-d', chatBody('g'), `https://localhost:${gw.tlsPort}/v1/chat/completions`]);
    assert.equal(r.code, 0, r.stderr);
    const [head, body] = r.stdout.split('\r\n\r\n');
    assert.match(head, /^HTTP\/2 200 ?\r\n/);
    assert.doesNotMatch(head, /^(connection|transfer-encoding|keep-alive):/im);
    const j = JSON.parse(body);
    assert.equal(j.model, 'g');
    assert.equal(j.choices[0].message.content, answerText('m'));
    assert.equal(M.stats().requests.at(-1).model, 'm', 'the provider gets its own model name');
    assert.equal(M.stats().requests.at(-1).http_version, '1.1', 'upstreams stay HTTP/1.1');
  });

  test('curl --http2: SSE relayed with each event rewritten, ends with [DONE]', T, async () => {
    const r = await run('curl', [...curlBase(), '-N', '-d', chatBody('g', { stream: true }), `https://localhost:${gw.tlsPort}/v1/chat/completions`]);
    assert.equal(r.code, 0, r.stderr);
    const i = r.stdout.indexOf('\r\n\r\n');
    assert.match(r.stdout.slice(0, i), /^HTTP\/2 200 ?\r\n/);
    assert.match(r.stdout.slice(0, i), /content-type: text\/event-stream/i);
    const { events } = parseSSE(r.stdout.slice(i + 4));
    assert.equal(events.at(-1).data, '[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data));
    assert.ok(chunks.length >= 3);
    for (const c of chunks) assert.equal(c.model, 'g');
    assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), answerText('m'));
  });

  test('Node http2: 100 concurrent streams on one connection, all answered right; access log says h2', T, async () => {
    const s = await h2connect(gw, ca);
    try {
      const rs = await Promise.all(
        Array.from({ length: 100 }, (_, i) => h2request(s, { body: chatBody('g', { messages: [{ role: 'user', content: `n${i}` }] }), headers: { 'x-request-id': `h2-${i}` } })),
      );
      rs.forEach((r, i) => {
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json().model, 'g');
        assert.equal(r.json().choices[0].message.content, answerText('m'));
        assert.equal(r.headers['x-request-id'], `h2-${i}`);
      });
    } finally {
      s.close();
    }
    await waitFor(() => accessLines(gw).filter((l) => /^h2-\d+$/.test(l.request_id ?? '')).length === 100, { what: '100 access lines', timeout: 5000 });
    const lines = accessLines(gw).filter((l) => /^h2-\d+$/.test(l.request_id ?? ''));
    for (const l of lines) {
      assert.equal(l.protocol, 'h2', l._line);
      assert.equal(l.status, '200');
      assert.match(l.client, /^127\.0\.0\.1:\d+$/);
    }
  });

  test('Node http2: SSE arrives event by event, not at the end', T, async () => {
    const s = await h2connect(gw, ca);
    try {
      const r = await h2request(s, { body: chatBody('g', { stream: true }), headers: { 'x-mock-mode': 'slow-stream-100' } });
      assert.equal(r.status, 200);
      assert.ok(r.chunks.length >= 5, `${r.chunks.length} DATA chunks`);
      const first = r.chunks[0].t, last = r.chunks.at(-1).t;
      assert.ok(last - first >= 500, `events spread over ${last - first} ms`);
      const { events } = parseSSE(r.text);
      assert.equal(events.at(-1).data, '[DONE]');
      assert.equal(JSON.parse(events[0].data).model, 'g');
    } finally {
      s.close();
    }
  });

  test('a stream reset by the client closes its upstream connection; the connection goes on', T, async () => {
    M.reset();
    const s = await h2connect(gw, ca);
    try {
      const r = await h2request(s, {
        body: chatBody('g', { stream: true }),
        headers: { 'x-mock-mode': 'slow-stream-300' },
        onChunk: (req) => req.close(http2.constants.NGHTTP2_CANCEL),
      });
      assert.equal(r.rst, http2.constants.NGHTTP2_CANCEL);
      // 10+ events 300 ms apart: an upstream still open after 1.5 s was not closed.
      await waitFor(() => M.stats().requests.some((q) => q.aborted), { what: 'the upstream request aborted', timeout: 1500 });
      const q = M.stats().requests.find((x) => x.aborted);
      assert.equal(q.completed, false);
      const again = await h2request(s, { body: chatBody('g') });
      assert.equal(again.status, 200, 'the connection still serves');
    } finally {
      s.close();
    }
  });

  test('auth is per stream: a bad token gets its 401 JSON, the good one its answer, same connection', T, async () => {
    const s = await h2connect(gw, ca);
    try {
      const [bad, none, good] = await Promise.all([
        h2request(s, { body: chatBody('g'), token: 'sk-wrong' }),
        h2request(s, { body: chatBody('g'), token: null }),
        h2request(s, { body: chatBody('g') }),
      ]);
      for (const r of [bad, none]) {
        assert.equal(r.status, 401);
        const e = r.json().error;
        assert.ok(e && 'message' in e && 'type' in e && 'param' in e && 'code' in e, r.text);
      }
      assert.equal(good.status, 200);
      const unknown = await h2request(s, { body: chatBody('nope') });
      assert.equal(unknown.status, 404);
      assert.equal(unknown.json().error.code, 'model_not_found');
      const health = await h2request(s, { method: 'GET', path: '/healthz', token: null });
      assert.equal(health.status, 200);
    } finally {
      s.close();
    }
  });

  test('failover per stream: the first target answers 500, the next one serves the stream', T, async () => {
    const s = await h2connect(gw, ca);
    try {
      const rs = await Promise.all([1, 2, 3, 4].map(() => h2request(s, { body: chatBody('f') })));
      for (const r of rs) {
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json().model, 'f');
        assert.equal(r.json().choices[0].message.content, answerText('good'));
      }
    } finally {
      s.close();
    }
  });

  test('keys and limits per stream: rpm 3 on one connection -> three answers, one 429', T, async () => {
    const s = await h2connect(gw, ca);
    try {
      const rs = await Promise.all([1, 2, 3, 4].map(() => h2request(s, { body: chatBody('g'), token: 'sk-h2-rpm-3-secret' })));
      const statuses = rs.map((r) => r.status).sort();
      assert.deepEqual(statuses, [200, 200, 200, 429]);
      const limited = rs.find((r) => r.status === 429);
      assert.equal(limited.json().error.code, 'rate_limit_exceeded');
      assert.ok(limited.headers['retry-after'], 'Retry-After on the refused stream');
    } finally {
      s.close();
    }
  });

  // A request waiting for its key's room (limits.max_wait) whose client leaves: `send(content,
  // leaveAfterMs)` sends one and, given a delay, leaves then (resolving without an answer).
  const leaveWhileWaiting = async (key, prefix, send) => {
    const upstream = () =>
      M.stats()
        .requests.map((q) => (q.body ? JSON.parse(q.body).messages[0].content : '(no body)'))
        .filter((c) => c.startsWith(prefix));
    const t0 = performance.now();
    assert.equal((await send(`${prefix}0`)).status, 200); // the key's next room: in 2 s
    await send(`${prefix}1`, 300);
    await sleep(200);
    const next = await send(`${prefix}2`);
    const took = performance.now() - t0;
    assert.equal(next.status, 200, next.text);
    assert.ok(took < 3200, `the next client got the first free slot (~2 s, not ~4 s): ${Math.round(took)} ms`);
    await sleep(300);
    assert.deepEqual(upstream(), [`${prefix}0`, `${prefix}2`], 'the provider never saw the request that left');
    const line = await waitFor(() => accessLines(gw).find((l) => l.client_name === key && l.outcome !== 'ok'), {
      timeout: 3000,
      what: 'the access line of the request that left',
    });
    assert.equal(line.outcome, 'client_cancelled', line._line);
  };
  const chat = (content) => chatBody('g', { messages: [{ role: 'user', content }] });

  test('a stream reset while it waits for its key (max_wait) leaves the queue, never sent', T, async () => {
    const s = await h2connect(gw, ca);
    try {
      await leaveWhileWaiting('h2-leaves', 'h2-leaves-', (content, leaveAfter) =>
        h2request(s, {
          body: chat(content),
          token: 'sk-h2-leaves-secret',
          ...(leaveAfter ? { timeout: leaveAfter } : {}), // then reset (NGHTTP2_CANCEL)
        }).catch((e) => ({ status: 0, text: String(e) })),
      );
    } finally {
      s.close();
    }
  });

  test('an HTTP/1.1 client over TLS that leaves while it waits for its key leaves the queue', T, async () => {
    await leaveWhileWaiting('tls-leaves', 'tls-leaves-', (content, leaveAfter) => {
      const gone = new AbortController();
      if (leaveAfter) setTimeout(() => gone.abort(), leaveAfter);
      return request({
        url: `${gw.tlsUrl}/v1/chat/completions`,
        method: 'POST',
        ca: ca.caCertPem,
        headers: { authorization: 'Bearer sk-tls-leaves-secret', 'content-type': 'application/json' },
        body: chat(content),
        signal: gone.signal,
      }).catch((e) => ({ status: 0, text: String(e) }));
    });
  });

  test('h2load -n 2000 -c 4 -m 50: all 2xx', T, async () => {
    const body = tempFile(ca.dir, 'h2load-body.json', chatBody('g'));
    const before = accessLines(gw).length;
    const r = await run('h2load', ['-n', '2000', '-c', '4', '-m', '50', '-d', body, '-H', `authorization: Bearer ${CLIENT_TOKEN}`, '-H', 'content-type: application/json', `${gw.tlsUrl}/v1/chat/completions`], { timeout: 60000 });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /Application protocol: h2/);
    // On failure, the access lines of the answers that were not 2xx say which and why.
    const failed = accessLines(gw).slice(before).filter((l) => !(Number(l.status) >= 200 && Number(l.status) < 300)).slice(0, 10);
    assert.match(r.stdout, /requests: 2000 total, 2000 started, 2000 done, 2000 succeeded/, `${r.stdout}\nnot 2xx: ${failed.map((l) => l._line).join('\n')}`);
    assert.match(r.stdout, /status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx/);
  });
});

describe('tls.http2: false', { timeout: 60000 }, () => {
  test('ALPN offers only http/1.1: curl --http2 falls back to HTTP/1.1', T, async () => {
    const ca = makeTestCA();
    const M = await startMock();
    const gw = await startH2Gateway({ ca, providers: [{ group: 'g', name: 'm', base: M.url, key: 'sk-up' }], tlsExtra: { http2: false } });
    try {
      const r = await run('curl', ['-sS', '--http2', '--cacert', ca.caCert, '-o', '/dev/null', '-w', '%{http_version}', `https://localhost:${gw.tlsPort}/healthz`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '1.1');
    } finally {
      await stopGateway(gw);
      await M.close();
      ca.cleanup();
    }
  });
});

// A gateway of its own (the test stops it), with its mock and CA, all cleaned up after `fn`.
async function withOwnGateway(fn) {
  const ca = makeTestCA();
  const M = await startMock();
  const gw = await startH2Gateway({ ca, providers: [{ group: 'g', name: 'm', base: M.url, key: 'sk-up' }] });
  try {
    await fn({ ca, gw });
  } finally {
    if (!gw.exited()) await gw.stop();
    gw.cleanup();
    await M.close();
    ca.cleanup();
  }
}

describe('HTTP/2 drain', { timeout: 60000 }, () => {
  test('SIGTERM: GOAWAY (NO_ERROR) to an HTTP/2 client, its open stream still finishes', T, () =>
    withOwnGateway(async ({ ca, gw }) => {
      const s = await h2connect(gw, ca);
      const goaway = new Promise((resolve) => s.once('goaway', (code) => resolve(code)));
      let stopping = null;
      const r = await h2request(s, {
        body: chatBody('g', { stream: true }),
        headers: { 'x-mock-mode': 'slow-stream-100' },
        onResponse: () => {
          stopping ??= gw.stop();
        },
      });
      assert.equal(await goaway, http2.constants.NGHTTP2_NO_ERROR);
      assert.equal(r.status, 200);
      const { events } = parseSSE(r.text);
      assert.equal(events.at(-1).data, '[DONE]', 'the stream in flight finished');
      assert.deepEqual(await stopping, { code: 0, signal: null });
      s.destroy();
    }));

  test('SIGTERM: every stream a client opens until it reads the GOAWAY is answered or refused, none reset', T, () =>
    withOwnGateway(async ({ ca, gw }) => {
      const s = await h2connect(gw, ca);
      let goaway = false;
      s.on('goaway', () => (goaway = true));
      s.on('error', () => {});
      // A stream in flight keeps the gateway draining (not exited) while new streams come.
      let head;
      const started = new Promise((r) => (head = r));
      const slow = h2request(s, { body: chatBody('g', { stream: true }), headers: { 'x-mock-mode': 'slow-stream-150' }, onResponse: () => head() });
      await started;
      const stopping = gw.stop();
      const opened = [];
      for (let i = 0; i < 200 && !goaway && !s.destroyed; i++) {
        try {
          opened.push(h2request(s, { method: 'GET', path: '/healthz', timeout: 10000 }));
        } catch {
          break;  // the session took the GOAWAY meanwhile
        }
        await sleep(5);
      }
      const results = await Promise.all(opened);
      assert.ok(goaway, 'a GOAWAY came');
      // (The GOAWAY goes at once: how many get in before it depends on the loopback's timing.)
      assert.ok(opened.length >= 1, `${opened.length} streams opened before the GOAWAY`);
      const reset = results.filter((r) => r.status === 0 && r.rst === http2.constants.NGHTTP2_INTERNAL_ERROR);
      assert.equal(reset.length, 0, `${reset.length} of ${results.length} streams reset with INTERNAL_ERROR`);
      // Each is answered, or was opened past the GOAWAY's last stream id: refused, never
      // processed (the client may send it again elsewhere), as RFC 9113 section 6.8 allows.
      for (const r of results) assert.ok(r.status > 0 || r.rst === http2.constants.NGHTTP2_REFUSED_STREAM, JSON.stringify({ status: r.status, rst: r.rst }));
      const r = await slow;
      assert.equal(parseSSE(r.text).events.at(-1).data, '[DONE]', 'the stream in flight finished');
      assert.deepEqual(await stopping, { code: 0, signal: null });
      s.destroy();
    }));
});

describe('HTTP/2 drain: idle connections and answers still queued', { timeout: 60000 }, () => {
  test('SIGTERM: an idle HTTP/2 connection gets its GOAWAY (NO_ERROR) before it is closed', T, () =>
    withOwnGateway(async ({ ca, gw }) => {
      const s = await h2connect(gw, ca);
      s.on('error', () => {});
      const r = await h2request(s, { method: 'GET', path: '/healthz' });
      assert.equal(r.status, 200);
      let goaway = null;
      s.on('goaway', (code) => (goaway = code));
      const closed = new Promise((resolve) => s.once('close', resolve));
      assert.deepEqual(await gw.stop(), { code: 0, signal: null });
      await Promise.race([closed, sleep(5000)]);
      assert.equal(goaway, http2.constants.NGHTTP2_NO_ERROR, 'closed without a GOAWAY');
    }));

  // A drained connection with nothing left to send waits (a little) for its client to close
  // it: a client still reading its answer may throw away what it holds when the connection
  // ends under it (Node's http2 does), and the process waits for the connection.
  test('SIGTERM: an answer still queued for a paused reader arrives whole', T, () =>
    withOwnGateway(async ({ ca, gw }) => {
      const BIG = 2000000;
      const s = await h2connect(gw, ca);
      s.on('error', () => {});
      const req = s.request({
        ':method': 'POST', ':path': '/v1/chat/completions', authorization: `Bearer ${CLIENT_TOKEN}`,
        'content-type': 'application/json', 'x-mock-mode': `big-${BIG}`,
      });
      let bytes = 0, paused = false, stopping = null;
      const done = new Promise((resolve) => {
        req.on('data', (d) => {
          bytes += d.length;
          // Near the end (less left than the stream's window: the gateway sends it all while
          // the client pauses): SIGTERM, then a pause.
          if (!paused && bytes >= BIG - 30000) {
            paused = true;
            req.pause();
            stopping = gw.stop();
            setTimeout(() => req.resume(), 800);
          }
        });
        req.on('end', () => resolve('end'));
        req.on('close', () => resolve('close'));
      });
      req.end(chatBody('g'));
      assert.equal(await done, 'end', `${bytes} bytes, then the stream closed`);
      assert.ok(bytes >= BIG, `${bytes} bytes`);
      s.destroy();
      assert.deepEqual(await stopping, { code: 0, signal: null });
    }));
});

describe('HTTP/2 in the metrics', { timeout: 120000 }, () => {
  const ADMIN_TOKEN = 'admin-h2-metrics-token';
  let ca, M, gw;
  const metrics = async () => {
    const r = await fetch(`${gw.adminUrl}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    assert.equal(r.status, 200);
    return r.text();
  };
  // The value of one sample (labels as rendered), or 0 when the series is absent.
  const sample = (text, name, labels = '') => {
    const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
    return line ? Number(line.split(' ').at(-1)) : 0;
  };
  const sum = (text, name, match) =>
    text.split('\n').filter((l) => l.startsWith(name) && match.test(l)).reduce((a, l) => a + Number(l.split(' ').at(-1)), 0);

  before(async () => {
    ca = makeTestCA();
    M = await startMock();
    const adminPort = await freePort();
    gw = await startH2Gateway({
      ca,
      workers: 1,
      providers: [{ group: 'g', name: 'm', base: M.url, key: 'sk-up' }],
      extra: { admin: { listen: `127.0.0.1:${adminPort}`, token: ADMIN_TOKEN }, limits: { max_header_bytes: 16384 } },
    });
    gw.adminUrl = `http://127.0.0.1:${adminPort}`;
  });
  after(async () => {
    await stopGateway(gw);
    await M?.close();
    ca?.cleanup();
  });

  test('openbridge_client_connections counts an HTTP/2 connection once, whatever its streams; openbridge_http2_streams counts them', T, async () => {
    const s = await h2connect(gw, ca);
    const before = M.stats().requests.length;
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(h2request(s, { body: chatBody('g'), headers: { 'x-mock-mode': 'delay-1500' } }));
    await waitFor(() => M.stats().requests.length - before >= 5, { what: 'five streams at the provider', timeout: 5000 });
    const during = await metrics();
    assert.equal(sample(during, 'openbridge_client_connections'), 1, 'one connection, five streams');
    assert.equal(sample(during, 'openbridge_http2_streams'), 5);
    for (const r of await Promise.all(answers)) assert.equal(r.status, 200);
    const afterwards = await metrics();
    assert.equal(sample(afterwards, 'openbridge_client_connections'), 1, 'the connection is still open');
    assert.equal(sample(afterwards, 'openbridge_http2_streams'), 0);
    s.close();
  });

  test('a stream answered before routing (431) reaches openbridge_requests_total like an HTTP/1.1 431', T, async () => {
    const base = sum(await metrics(), 'openbridge_requests_total', /code="431"/);
    const s = await h2connect(gw, ca);
    const headers = {};
    for (let i = 0; i < 5; i++) headers[`x-big-${i}`] = 'b'.repeat(6000);
    const r = await h2request(s, { body: chatBody('g'), headers });
    assert.equal(r.status, 431, r.text);
    assert.equal(sum(await metrics(), 'openbridge_requests_total', /code="431"/), base + 1);
    s.close();
  });
});
