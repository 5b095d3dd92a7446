// End-to-end: hostile multipart/form-data uploads that are not all in when the gateway routes
// them (the path that relays the rest as it arrives: docs/PROVIDERS.md "Uploads"). Each case
// gets a clear JSON error (or, for a client that left, nothing), never a hang; the provider
// never gets a body that looks whole when the client's was not.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import { startMock } from '../../tools/mock-provider/server.js';
import { startGateway } from './lib/gateway.mjs';
import { waitFor } from './lib/http.mjs';
import { CLIENT_TOKEN, accessLines } from './lib/common.mjs';

const MB = 1024 * 1024;
const B = 'HoStIlE';
const LIMIT = 4 * MB; // limits.max_body_bytes of the gateway under test

const part = (name, value, filename) =>
  Buffer.concat([
    Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="${name}"${filename ? `; filename="${filename}"` : ''}\r\n\r\n`),
    Buffer.isBuffer(value) ? value : Buffer.from(value),
    Buffer.from('\r\n'),
  ]);
const close = Buffer.from(`--${B}--\r\n`);
const file = (n) => part('file', crypto.randomBytes(n), 'a.mp3');
// A file part that never ends: no delimiter after it.
const openFile = (n) => Buffer.concat([Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="file"; filename="a.mp3"\r\n\r\n`), crypto.randomBytes(n)]);

// Sends a request head, then `body` in 64 KiB writes (chunked framing when `chunked`). `stopAt`:
// closes the socket once that many body bytes are written; `stallAt`: stops writing there and
// waits. Resolves with what came back when the gateway closed, or on `timeout` (a hang).
function exchange({ port, body, chunked = false, type = `multipart/form-data; boundary=${B}`, declared, stopAt, stallAt, extraHead = '', timeout = 8000 }) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const got = [];
    let done = false;
    const finish = (how) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ how, raw: Buffer.concat(got).toString('latin1') });
    };
    const timer = setTimeout(() => finish('timeout'), timeout);
    sock.on('data', (d) => {
      got.push(d);
      // A whole answer (Content-Length) ends the exchange too: a kept connection is no hang.
      const raw = Buffer.concat(got).toString('latin1');
      const head = raw.indexOf('\r\n\r\n');
      const len = /\r\nContent-Length: (\d+)/i.exec(raw.slice(0, head));
      if (head > 0 && len && raw.length >= head + 4 + Number(len[1])) finish('answered');
    });
    sock.on('close', () => finish('closed'));
    sock.on('error', () => {});
    sock.on('connect', async () => {
      const length = chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${declared ?? body.length}`;
      sock.write(`POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${CLIENT_TOKEN}\r\nContent-Type: ${type}\r\n${extraHead}${length}\r\n\r\n`);
      const end = Math.min(body.length, stopAt ?? stallAt ?? body.length);
      for (let i = 0; i < end && !done; i += 65536) {
        const piece = body.subarray(i, Math.min(end, i + 65536));
        const ok = sock.write(chunked ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]) : piece);
        if (!ok) await new Promise((r) => sock.once('drain', r));
      }
      if (done) return;
      if (stopAt !== undefined) return finish('client_closed');
      if (stallAt === undefined && chunked) sock.write('0\r\n\r\n');
    });
  });
}

const statusOf = (raw) => Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);
const jsonOf = (raw) => JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4));

// upstream: 'none' (the provider never heard of it) or 'cut' (it got a request whose body
// never ended, and never one that looks whole).
const CASES = [
  {
    name: 'no model part (a large form of files only)',
    body: () => Buffer.concat([file(2 * MB), close]),
    status: 400, code: 'invalid_model', message: /no "model" field/, upstream: 'none',
  },
  {
    name: 'no model part, chunked',
    body: () => Buffer.concat([file(2 * MB), close]), chunked: true,
    status: 400, code: 'invalid_model', message: /no "model" field/, upstream: 'none',
  },
  {
    name: 'boundary never closed, model first',
    body: () => Buffer.concat([part('model', 'whisper'), openFile(2 * MB)]),
    status: 400, code: 'bad_request', message: /malformed.*close delimiter/, upstream: 'cut',
  },
  {
    name: 'boundary never closed, model first, chunked',
    body: () => Buffer.concat([part('model', 'whisper'), openFile(2 * MB)]), chunked: true,
    status: 400, code: 'bad_request', message: /malformed.*close delimiter/, upstream: 'cut',
  },
  {
    name: 'client stops mid-body, model first: nothing to answer, the provider gets a cut request',
    body: () => Buffer.concat([part('model', 'whisper'), file(3 * MB), close]), stopAt: 1 * MB,
    status: null, outcome: 'client_cancelled', upstream: 'cut',
  },
  {
    name: 'client stalls mid-body, model first: 408 after timeouts.client_body',
    body: () => Buffer.concat([part('model', 'whisper'), file(3 * MB), close]), stallAt: 1 * MB,
    status: 408, code: 'request_timeout', message: /did not arrive in time/, upstream: 'cut',
  },
  {
    name: 'over the limit with model first (Content-Length): 413 before reading',
    body: () => Buffer.concat([part('model', 'whisper'), file(256 * 1024)]), declared: LIMIT + MB,
    status: 413, code: 'request_too_large', message: /exceeds 4194304 bytes/, upstream: 'none',
  },
  {
    name: 'over the limit with model first (chunked): 413 once it grows past it',
    body: () => Buffer.concat([part('model', 'whisper'), file(LIMIT + MB), close]), chunked: true,
    status: 413, code: 'request_too_large', message: /exceeds 4194304 bytes/, upstream: 'cut',
  },
  {
    name: 'the model part is a file',
    body: () => Buffer.concat([part('model', 'whisper', 'm.txt'), file(2 * MB), close]),
    status: 400, code: 'invalid_model', message: /non-empty text value/, upstream: 'none',
  },
  {
    name: 'an unknown model first',
    body: () => Buffer.concat([part('model', 'nope'), file(2 * MB), close]),
    status: 404, code: 'model_not_found', message: /'nope' does not exist/, upstream: 'none',
  },
  // A second model part after the routed one: a provider reading the last field would serve a
  // model the gateway neither routed nor checked against the key. The piece that shows it is
  // not sent (the first piece of the body when the second part is in the first read).
  {
    name: 'a second model part after a large file',
    body: () => Buffer.concat([part('model', 'whisper'), file(2 * MB), part('model', 'gpt-4o-transcribe'), close]),
    status: 400, code: 'invalid_model', message: /more than one "model" field/, upstream: 'cut',
  },
  {
    name: 'a second model part after a large file, chunked',
    body: () => Buffer.concat([part('model', 'whisper'), file(2 * MB), part('model', 'gpt-4o-transcribe'), close]), chunked: true,
    status: 400, code: 'invalid_model', message: /more than one "model" field/, upstream: 'cut',
  },
  {
    name: 'a second model part in the first read, before a large file',
    body: () => Buffer.concat([part('model', 'whisper'), part('model', 'gpt-4o-transcribe'), file(2 * MB), close]),
    status: 400, code: 'invalid_model', message: /more than one "model" field/, upstream: 'none',
  },
  {
    name: 'a part without its blank line after a large file',
    body: () => Buffer.concat([part('model', 'whisper'), file(2 * MB), Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="x"\r\n`), crypto.randomBytes(64 * 1024), Buffer.from('\r\n'), close]),
    status: 400, code: 'bad_request', message: /malformed/, upstream: 'cut',
  },
  {
    name: 'multipart without a boundary parameter',
    body: () => Buffer.concat([part('model', 'whisper'), file(2 * MB), close]), type: 'multipart/form-data',
    status: 400, code: 'bad_request', message: /no boundary/, upstream: 'none',
  },
];

describe('hostile multipart uploads', () => {
  let mock, gw;
  before(async () => {
    mock = await startMock();
    gw = await startGateway({
      workers: 1,
      config: {
        providers: [{ group: 'whisper', name: 'whisper-1', base: `${mock.url}/v1`, key: 'k' }],
        security: [CLIENT_TOKEN],
        limits: { max_body_bytes: LIMIT },
        timeouts: { client_body: 1, client_body_total: 5 },
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await mock?.close();
  });

  for (const c of CASES) {
    test(c.name, { timeout: 30000 }, async () => {
      mock.reset();
      const seen = accessLines(gw).length;
      const r = await exchange({ port: gw.port, body: c.body(), chunked: c.chunked, type: c.type, declared: c.declared, stopAt: c.stopAt, stallAt: c.stallAt });
      assert.notEqual(r.how, 'timeout', `no hang: ${r.raw.slice(0, 300)}`);
      if (c.status === null) {
        assert.equal(r.raw, '', 'nothing answered to a client that left');
      } else {
        assert.equal(statusOf(r.raw), c.status, r.raw.slice(0, 400));
        const j = jsonOf(r.raw);
        assert.equal(j.error.code, c.code);
        assert.match(j.error.message, c.message);
        if (c.upstream !== 'none' || c.declared)
          assert.match(r.raw, /\r\nConnection: close\r\n/i, 'the unread rest closes the connection');
      }
      await waitFor(() => accessLines(gw).length > seen, { what: 'access line' });
      const line = accessLines(gw)[seen];
      if (c.outcome) assert.equal(line.outcome, c.outcome);
      const posts = mock.stats().requests.filter((q) => q.method === 'POST');
      if (c.upstream === 'none') assert.equal(posts.length, 0, 'the provider was not contacted');
      else {
        assert.ok(posts.length <= 1, 'one provider request at most');
        for (const p of posts) assert.equal(p.t_body, null, 'the provider never got a whole body');
      }
    });
  }

  test('the gateway still serves after the hostile cases', { timeout: 30000 }, async () => {
    mock.reset();
    const body = Buffer.concat([part('model', 'whisper'), file(2 * MB), close]);
    const r = await exchange({ port: gw.port, body });
    assert.equal(r.how, 'answered');
    assert.equal(statusOf(r.raw), 200, r.raw.slice(0, 300));
    const posts = mock.stats().requests.filter((q) => q.method === 'POST');
    assert.equal(posts.length, 1);
    assert.equal(posts[0].model, 'whisper-1');
  });
});
