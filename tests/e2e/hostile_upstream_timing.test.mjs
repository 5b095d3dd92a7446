// End-to-end: how a provider's bytes are spread in time on a pooled keep-alive connection must
// not change what the client gets. Guards the way the gateway reads upstream sockets (Asio's
// reads try a recv before waiting; see upstream/pool.cpp): an answer split over writes some
// milliseconds apart is read whole on a reused connection, and a provider that closes the
// connection right after its answer (FIN behind the answer's bytes, no "Connection: close") is
// noticed by the pool, so the next request goes out on a fresh connection instead of failing.
// Each row: a raw upstream (plain or TLS) answering every request of a sequence; every answer
// must be the request's own, first time.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { listenRaw, startGatewayInFront } from './lib/raw.mjs';
import { makeTestCA } from './lib/tls.mjs';
import { gwPost, sleep, CLIENT_TOKEN } from './lib/common.mjs';
import { startGateway } from './lib/gateway.mjs';

const T = { timeout: 30000 };
const REQUESTS = 4;
const GAP_MS = 30;

function answerParts(marker) {
  const body = JSON.stringify({ id: `chatcmpl-${marker}`, object: 'chat.completion', model: 'timing-model', marker });
  const head = `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
  return { head, body };
}

function chunkedParts(marker) {
  const body = JSON.stringify({ id: `chatcmpl-${marker}`, object: 'chat.completion', model: 'timing-model', marker });
  const head = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';
  return { head: head + `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n`, body: '0\r\n\r\n' };
}

// pieces(marker): the writes of one answer, GAP_MS apart. close: end the connection with the
// answer's last write. reused: whether all requests must share one upstream connection.
const CASES = [
  { name: 'head and body in two writes 30 ms apart', pieces: (m) => Object.values(answerParts(m)), reused: true },
  {
    name: 'split inside the head, the rest 30 ms later',
    pieces: (m) => {
      const a = Object.values(answerParts(m)).join('');
      return [a.slice(0, 10), a.slice(10)];
    },
    reused: true,
  },
  { name: 'chunked: the terminating chunk 30 ms after the data', pieces: (m) => Object.values(chunkedParts(m)), reused: true },
  { name: 'one write, then the provider closes the connection at once', pieces: (m) => [Object.values(answerParts(m)).join('')], close: true },
  { name: 'two writes 30 ms apart, the provider closing with the second', pieces: (m) => Object.values(answerParts(m)), close: true },
  { name: 'TLS: head and body in two records 30 ms apart', pieces: (m) => Object.values(answerParts(m)), reused: true, tls: true },
  { name: 'TLS: one write, then close_notify and the close at once', pieces: (m) => [Object.values(answerParts(m)).join('')], close: true, tls: true },
];

// Calls onRequest(marker) for each whole request (head and Content-Length body) on `sock`,
// with the `marker` of its JSON body.
function onRequests(sock, onRequest) {
  let buf = Buffer.alloc(0);
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = buf.subarray(0, end).toString('latin1');
    const len = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
    if (buf.length < end + 4 + len) return;
    const marker = JSON.parse(buf.subarray(end + 4, end + 4 + len).toString('utf8')).marker;
    buf = buf.subarray(end + 4 + len);
    onRequest(marker);
  });
}

async function startUpstream(row, ca) {
  let answered = 0;
  const onSocket = (sock) => {
    onRequests(sock, (marker) => {
      const pieces = row.pieces(marker);
      pieces.forEach((p, i) => {
        setTimeout(() => {
          if (sock.destroyed) return;
          const last = i === pieces.length - 1;
          if (last) answered++;
          if (last && row.close) sock.end(p);
          else sock.write(p);
        }, i * GAP_MS);
      });
    });
  };
  const up = await listenRaw({ tls: row.tls, ca }, onSocket);
  return { ...up, answered: () => answered };
}

const body = (marker) => JSON.stringify({ model: 'timing', marker, messages: [{ role: 'user', content: 'Hi' }] });

describe('hostile upstream timing: split answers and closes right after an answer', { timeout: 300000 }, () => {
  let ca;
  before(() => {
    ca = makeTestCA();
  });
  after(() => ca?.cleanup());

  for (const row of CASES) {
    test(row.name, T, async () => {
      const up = await startUpstream(row, ca);
      const gw = await startGatewayInFront(up, { group: 'timing', name: 'timing-model', ca });
      try {
        for (let i = 0; i < REQUESTS; i++) {
          const marker = `req-${i}`;
          const r = await gwPost(gw, '/v1/chat/completions', body(marker));
          assert.equal(r.status, 200, `request ${i}: ${r.text}`);
          const j = r.json();
          assert.equal(j.marker, marker, `request ${i} got another answer: ${r.text}`);
          assert.equal(j.model, 'timing');
        }
        assert.equal(up.answered(), REQUESTS);
        if (row.reused) assert.equal(up.state.connections, 1, 'every request on the one pooled connection');
        if (row.close) assert.equal(up.state.connections, REQUESTS, 'a fresh connection for each request');
      } finally {
        await gw.stop();
        gw.cleanup();
        await up.close();
      }
    });
  }
});

// A provider that closes idle connections after `timeoutS` seconds, saying so or not
// ("Keep-Alive: timeout=N", as Node.js servers do with their 5 s default; uvicorn, and so vLLM,
// closes after 5 s and says nothing), and resets a request that comes later: its timer has
// closed the connection as the request arrived, the worst case of that race, which a gateway
// that keeps the connection past the provider's timeout loses now and then (a POST sent is not
// sent twice: the client would get a 502).
async function forgetfulUpstream({ timeoutS, hint }) {
  const resets = { count: 0 };
  const up = await listenRaw({}, (sock) => {
    let idleSince = null;
    onRequests(sock, (marker) => {
      if (idleSince !== null && performance.now() - idleSince > timeoutS * 1000) {
        resets.count++;
        sock.resetAndDestroy();
        return;
      }
      const a = answerParts(marker);
      const extra = hint ? `\r\nConnection: keep-alive\r\nKeep-Alive: timeout=${timeoutS}` : '';
      sock.write(a.head.replace('\r\n\r\n', `${extra}\r\n\r\n`) + a.body);
      idleSince = performance.now();
    });
  });
  return { up, resets };
}

// Two requests 300 ms apart share a connection; one after `pauseMs` goes on a fresh one.
async function reusedWithinNotAfter(gw, up, resets, pauseMs) {
  const send = async (marker) => {
    const r = await gwPost(gw, '/v1/chat/completions', body(marker));
    assert.equal(r.status, 200, `${marker}: ${r.text}`);
    assert.equal(r.json().marker, marker);
  };
  await send('first');
  await sleep(300);
  await send('within-the-timeout');
  assert.equal(up.state.connections, 1, 'reused 300 ms later');
  await sleep(pauseMs);
  await send('after-the-timeout');
  assert.equal(resets.count, 0, 'no request was sent on a connection the provider had given up');
  assert.equal(up.state.connections, 2, "a fresh connection after the provider's timeout");
}

// A forgetful upstream and a gateway (one worker) in front of it, given to `fn`; `providers`:
// the gateway's providers for the upstream's URL, or none for startGatewayInFront's one group.
async function withForgetful(upstream, providers, fn) {
  const { up, resets } = await forgetfulUpstream(upstream);
  const gw = providers
    ? await startGateway({ config: { providers: providers(up.url), security: [CLIENT_TOKEN] }, workers: 1 })
    : await startGatewayInFront(up, { group: 'timing', name: 'timing-model' });
  try {
    assert.doesNotMatch(gw.stderr(), /unknown key/);
    await fn({ gw, up, resets });
  } finally {
    await gw.stop();
    gw.cleanup();
    await up.close();
  }
}

describe("a provider's keep-alive timeout", { timeout: 60000 }, () => {
  test('Keep-Alive: timeout=2: the connection is reused within it, and not after (a fresh one, no 502)', T, () =>
    withForgetful({ timeoutS: 2, hint: true }, null, ({ gw, up, resets }) => reusedWithinNotAfter(gw, up, resets, 2300)));

  test('a provider that closes after 1.5 s without saying so, timeouts.pool_idle 1 for it: no 502', T, () =>
    withForgetful(
      { timeoutS: 1.5, hint: false },
      (base) => [{ group: 'timing', name: 'timing-model', base, key: 'sk-up', timeouts: { pool_idle: 1 } }],
      ({ gw, up, resets }) => reusedWithinNotAfter(gw, up, resets, 1800),
    ));

  test('two providers on one host, pool_idle 1 for one: it never gets a connection the other left idle longer', T, () =>
    withForgetful(
      { timeoutS: 1.5, hint: false },
      (base) => [
        { group: 'patient', name: 'timing-model', base, key: 'sk-up' },
        { group: 'careful', name: 'timing-model', base, key: 'sk-up', timeouts: { pool_idle: 1 } },
      ],
      async ({ gw, up, resets }) => {
        const send = async (group, marker) => {
          const r = await gwPost(gw, '/v1/chat/completions', JSON.stringify({ model: group, marker, messages: [{ role: 'user', content: 'Hi' }] }));
          assert.equal(r.status, 200, `${group} ${marker}: ${r.text}`);
        };
        await send('patient', 'first');
        await sleep(1800);
        await send('careful', 'after-1.8-s');
        assert.equal(resets.count, 0, 'the connection patient left idle 1.8 s was not leased by careful');
        assert.equal(up.state.connections, 2);
      },
    ));
});
