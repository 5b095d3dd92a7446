// End-to-end: multipart/form-data uploads are relayed to the provider as they arrive once
// their `model` part is in (docs/PROVIDERS.md "Uploads"), against the real binary and the mock
// provider (which records the model field, the body's size and SHA-256).
//
// The contract under test:
//   - a large upload whose model part comes first reaches the provider with the model field
//     rewritten and every other byte intact, while the gateway's memory stays far below the
//     body's size (Content-Length and chunked alike);
//   - the client sends only as fast as the provider takes the body (back-pressure);
//   - the openai SDK's audio.transcriptions.create and curl -F with the model field last (read
//     up to the model part first) still work;
//   - failover while nothing of the rest was relayed (a target that cannot be reached); after
//     that, the provider's answer (a 500 say) goes to the client as it is;
//   - keys: groups checks and limits apply before anything goes upstream; the connection
//     stays usable after a streamed upload.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import OpenAI, { toFile } from 'openai';
import { startMock, answerText } from '../../tools/mock-provider/server.js';
import { startGateway, closedPort } from './lib/gateway.mjs';
import { run } from './lib/h2.mjs';
import { CLIENT_TOKEN, accessLines } from './lib/common.mjs';
import { request, waitFor } from './lib/http.mjs';

const T = { timeout: 120000 };
const MB = 1024 * 1024;
const B = 'StReAm42xyz';
const CT = `multipart/form-data; boundary=${B}`;
const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');

// A form: [name, value (string or Buffer), filename?] in order, then the close delimiter.
export function form(fields, boundary = B) {
  const parts = [];
  for (const [name, value, filename] of fields) {
    const file = filename ? `; filename="${filename}"\r\nContent-Type: audio/mpeg` : '';
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"${file}\r\n\r\n`));
    parts.push(Buffer.isBuffer(value) ? value : Buffer.from(value));
    parts.push(Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(parts);
}

function vmHWMKiB(pid) {
  const m = /VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}

// The access line of an answer (by its x-request-id) once it is written (stderr is read apart).
async function lineFor(gw, answer) {
  const id = typeof answer === 'string' ? answer : answer.headers['x-request-id'];
  const find = () => accessLines(gw).find((l) => l.request_id === id);
  await waitFor(find, { what: `access line ${id}` });
  return find();
}

// POSTs `body` in `piece`-sized writes, waiting for 'drain' (Content-Length, or chunked when
// `chunked`). Resolves with the answer; bounded by `timeout`.
function upload(url, body, { token = CLIENT_TOKEN, chunked = false, piece = 256 * 1024, agent, timeout = 60000 } = {}) {
  return new Promise((resolve, reject) => {
    const headers = { authorization: `Bearer ${token}`, 'content-type': CT };
    if (!chunked) headers['content-length'] = body.length;
    const req = http.request(url, { method: 'POST', headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8'), socket: req.socket }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(timeout, () => req.destroy(new Error('upload timed out')));
    (async () => {
      for (let i = 0; i < body.length && !req.destroyed; i += piece) {
        if (!req.write(body.subarray(i, i + piece))) await Promise.race([once(req, 'drain'), once(req, 'close')]);
      }
      req.end();
    })().catch(reject);
  });
}

const hits = (m) => m.stats().requests.filter((r) => r.method === 'POST');

describe('multipart uploads are relayed as they arrive', () => {
  let mock, gw, big;
  before(async () => {
    mock = await startMock();
    gw = await startGateway({
      workers: 1,
      config: {
        providers: [
          { group: 'whisper', name: 'whisper-1', base: `${mock.url}/v1`, key: 'k' },
          { group: 'failing', name: 'fails-500', base: `${mock.url}/mode/status-500/v1`, key: 'k' },
          { group: 'failing', name: 'second-ok', base: `${mock.url}/v1`, key: 'k' },
        ],
        security: [CLIENT_TOKEN],
      },
    });
    big = crypto.randomBytes(40 * MB);
  });
  after(async () => {
    await gw?.stop();
    await mock?.close();
  });

  for (const chunked of [false, true]) {
    test(`40 MB with the model first (${chunked ? 'chunked' : 'Content-Length'}): right model, exact bytes, gateway memory far below the body`, T, async (t) => {
      mock.reset();
      // A first small upload warms the gateway up (buffers, TLS-free pools): the high-water
      // mark then moves only by what the big one costs.
      const warm = await upload(`${gw.url}/v1/audio/transcriptions`, form([['model', 'whisper'], ['file', Buffer.alloc(300 * 1024, 1), 'w.mp3']]), { chunked });
      assert.equal(warm.status, 200, warm.text);
      const before = vmHWMKiB(gw.proc.pid);
      const fields = (model) => [['model', model], ['language', 'en'], ['file', big, 'big.mp3']];
      const r = await upload(`${gw.url}/v1/audio/transcriptions`, form(fields('whisper')), { chunked });
      const grew = vmHWMKiB(gw.proc.pid) - before;
      assert.equal(r.status, 200, r.text);
      assert.equal(JSON.parse(r.text).text, answerText('whisper-1'));
      const h = hits(mock).at(-1);
      assert.equal(h.model, 'whisper-1');
      const sent = form(fields('whisper-1'));
      assert.equal(h.body_bytes, sent.length);
      assert.equal(h.body_sha256, sha256(sent));
      assert.equal(h.headers['content-length'], chunked ? undefined : String(sent.length));
      assert.equal(h.headers['transfer-encoding'], chunked ? 'chunked' : undefined);
      t.diagnostic(`gateway VmHWM grew by ${grew} KiB`);
      // Read whole, the body alone would be 40 MiB (more when chunked): relayed, a few MiB.
      assert.ok(grew < 8 * 1024, `gateway VmHWM grew by ${grew} KiB for a 40 MiB upload`);
      const line = await lineFor(gw, r);
      assert.equal(line.status, '200');
      assert.equal(Number(line.bytes_in), form(fields('whisper')).length);
    });
  }

  test('back-pressure: a provider that does not read holds the client back, not the gateway memory', T, async () => {
    // A provider that accepts and never reads: the gateway must stop reading the client too.
    const sockets = [];
    const stall = net.createServer((s) => sockets.push(s));
    await new Promise((r) => stall.listen(0, '127.0.0.1', r));
    const g2 = await startGateway({
      workers: 1,
      config: {
        providers: [{ group: 'whisper', name: 'w', base: `http://127.0.0.1:${stall.address().port}/v1`, key: 'k' }],
        security: [CLIENT_TOKEN],
        timeouts: { first_byte: 3, idle: 3 },
      },
    });
    try {
      const before = vmHWMKiB(g2.proc.pid);
      let written = 0;
      const body = form([['model', 'whisper'], ['file', big, 'big.mp3']]);
      const headers = { authorization: `Bearer ${CLIENT_TOKEN}`, 'content-type': CT, 'content-length': body.length };
      const req = http.request(`${g2.url}/v1/audio/transcriptions`, { method: 'POST', headers });
      const answered = new Promise((resolve) => {
        req.on('response', (res) => {
          const c = [];
          res.on('data', (d) => c.push(d));
          res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(c).toString() }));
        });
        req.on('error', (e) => resolve({ error: e }));
      });
      // Writes until the socket stays blocked for 500 ms (bounded: 2 s, or the whole body).
      const until = performance.now() + 2000;
      while (written < body.length && performance.now() < until) {
        const more = req.write(body.subarray(written, written + 256 * 1024));
        written = Math.min(body.length, written + 256 * 1024);
        if (!more) {
          const drained = await Promise.race([once(req, 'drain').then(() => true), new Promise((r) => setTimeout(() => r(false), 500))]);
          if (!drained) break;
        }
      }
      const grew = vmHWMKiB(g2.proc.pid) - before;
      assert.ok(written < body.length / 2, `the client wrote ${written} of ${body.length} bytes to a gateway whose provider reads nothing`);
      assert.ok(grew < 8 * 1024, `gateway VmHWM grew by ${grew} KiB`);
      // The provider never answers: the send times out (timeouts.idle) with a clear error.
      const a = await answered;
      if (!a.error) {
        assert.equal(a.status, 504, a.text);
        assert.match(JSON.parse(a.text).error.message, /did not take the upload in time/);
      }
      req.destroy();
    } finally {
      await g2.stop();
      for (const s of sockets) s.destroy();
      stall.close();
    }
  });

  test('openai SDK audio.transcriptions.create with a file: model rewritten, file bytes intact', T, async () => {
    // A provider that parses the form it gets: the model field and the file part's hash.
    let seen = null;
    const provider = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const boundary = /boundary=([^;]+)/.exec(req.headers['content-type'])[1];
        const fields = {};
        for (const p of body.toString('latin1').split(`--${boundary}`).slice(1, -1)) {
          const sep = p.indexOf('\r\n\r\n');
          const name = /name="([^"]+)"/.exec(p.slice(0, sep))[1];
          fields[name] = Buffer.from(p.slice(sep + 4, p.length - 2), 'latin1');
        }
        seen = { order: Object.keys(fields), model: fields.model?.toString(), fileSha: fields.file && sha256(fields.file) };
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ text: 'ok' }));
      });
    });
    await new Promise((r) => provider.listen(0, '127.0.0.1', r));
    const g4 = await startGateway({
      workers: 1,
      config: { providers: [{ group: 'whisper', name: 'whisper-1', base: `http://127.0.0.1:${provider.address().port}/v1`, key: 'k' }], security: [CLIENT_TOKEN] },
    });
    try {
      const sdk = new OpenAI({ baseURL: `${g4.url}/v1`, apiKey: CLIENT_TOKEN, maxRetries: 0, timeout: 30000 });
      const audio = crypto.randomBytes(3 * MB);
      // The Node SDK writes the fields in the caller's order: model first here (relayed as it
      // arrives), after the file in the second call (read up to the model part).
      for (const order of [['model', 'file', 'language'], ['file', 'model', 'language']]) {
        const params = {};
        for (const k of order) params[k] = k === 'model' ? 'whisper' : k === 'file' ? await toFile(audio, 'a.mp3') : 'en';
        seen = null;
        const t = await sdk.audio.transcriptions.create(params);
        assert.equal(t.text, 'ok');
        assert.deepEqual(seen, { order, model: 'whisper-1', fileSha: sha256(audio) });
      }
    } finally {
      await g4.stop();
      provider.close();
    }
  });

  test('curl -F with the model field last: read up to it, then routed, bytes intact', T, async () => {
    mock.reset();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ob-mp-'));
    try {
      const file = path.join(dir, 'a.mp3');
      const audio = crypto.randomBytes(5 * MB);
      fs.writeFileSync(file, audio);
      const out = path.join(dir, 'out.json');
      const r = await run('curl', ['-sS', '-o', out, '-w', '%{http_code} %header{x-request-id}', '-H', `Authorization: Bearer ${CLIENT_TOKEN}`, '-F', `file=@${file}`, '-F', 'model=whisper', `${gw.url}/v1/audio/transcriptions`]);
      const [code, id] = r.stdout.split(' ');
      assert.equal(code, '200', r.stderr);
      assert.equal(JSON.parse(fs.readFileSync(out, 'utf8')).text, answerText('whisper-1'));
      const h = hits(mock).at(-1);
      assert.equal(h.model, 'whisper-1');
      // The body minus the model value's change: 'whisper' -> 'whisper-1' adds 2 bytes.
      assert.equal(h.body_bytes, Number((await lineFor(gw, id)).bytes_in) + 2);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('failover while nothing of the rest was relayed; after, the answer as it is (500)', T, async () => {
    const dead = await closedPort();
    const g3 = await startGateway({
      workers: 1,
      config: {
        providers: [
          { group: 'whisper', name: 'down', base: `http://127.0.0.1:${dead}/v1`, key: 'k' },
          { group: 'whisper', name: 'up', base: `${mock.url}/v1`, key: 'k' },
        ],
        security: [CLIENT_TOKEN],
      },
    });
    try {
      mock.reset();
      const body = form([['model', 'whisper'], ['file', big.subarray(0, 4 * MB), 'a.mp3']]);
      // Round robin may start on either: two uploads, both must reach 'up' whole.
      for (let i = 0; i < 2; i++) {
        const r = await upload(`${g3.url}/v1/audio/transcriptions`, body);
        assert.equal(r.status, 200, r.text);
        const h = hits(mock).at(-1);
        assert.equal(h.model, 'up');
        assert.equal(h.body_sha256, sha256(form([['model', 'up'], ['file', big.subarray(0, 4 * MB), 'a.mp3']])));
      }
      // One of them met 'down' first (round robin) and was sent again, whole, to 'up'.
      assert.ok(accessLines(g3).some((l) => l.attempts === '2'), accessLines(g3).map((l) => l._line).join('\n'));
    } finally {
      await g3.stop();
    }
    // 'failing' = [fails-500, second-ok]: the 500 comes after the whole body was relayed, so it
    // is the answer (a relayed body is not sent again). Round robin: whichever comes first.
    mock.reset();
    const statuses = [];
    for (let i = 0; i < 2; i++) {
      const body = form([['model', 'failing'], ['file', big.subarray(0, 2 * MB), 'a.mp3']]);
      const r = await upload(`${gw.url}/v1/audio/transcriptions`, body);
      statuses.push(r.status);
      assert.equal(hits(mock).length, i + 1, 'one provider request per upload: no failover');
    }
    assert.deepEqual(statuses.sort(), [200, 500]);
  });

  test('a provider that answers before the upload ended (and drains the rest): its answer reaches the client', T, async () => {
    // Answers 413 as soon as the head is in, then reads (and drops) whatever follows.
    const provider = net.createServer((s) => {
      let head = '';
      let answered = false;
      s.on('data', (d) => {
        if (answered) return;
        head += d.toString('latin1');
        if (!head.includes('\r\n\r\n')) return;
        answered = true;
        const body = JSON.stringify({ error: { message: 'too big for me', type: 'invalid_request_error', param: null, code: 'too_big' } });
        s.write(`HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
      });
      s.on('error', () => {});
    });
    await new Promise((r) => provider.listen(0, '127.0.0.1', r));
    const g5 = await startGateway({
      workers: 1,
      config: { providers: [{ group: 'whisper', name: 'w', base: `http://127.0.0.1:${provider.address().port}/v1`, key: 'k' }], security: [CLIENT_TOKEN] },
    });
    try {
      const r = await upload(`${g5.url}/v1/audio/transcriptions`, form([['model', 'whisper'], ['file', big.subarray(0, 8 * MB), 'a.mp3']]));
      assert.equal(r.status, 413, r.text);
      assert.equal(JSON.parse(r.text).error.code, 'too_big');
    } finally {
      await g5.stop();
      provider.close();
    }
  });

  test('a provider that answers at once and never reads the upload: its answer, not a timeout', T, async () => {
    // Answers 413 as soon as the head is in and reads nothing more: the gateway's writes of the
    // rest stall, so it must read the answer while it writes.
    const sockets = [];
    const provider = net.createServer((s) => {
      sockets.push(s);
      s.on('error', () => {});
      let head = '';
      s.on('data', (d) => {
        head += d.toString('latin1');
        if (!head.includes('\r\n\r\n')) return;
        s.pause();
        const body = JSON.stringify({ error: { message: 'too big for me', type: 'invalid_request_error', param: null, code: 'too_big' } });
        s.write(`HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      });
    });
    await new Promise((r) => provider.listen(0, '127.0.0.1', r));
    const g6 = await startGateway({
      workers: 1,
      config: {
        providers: [{ group: 'whisper', name: 'w', base: `http://127.0.0.1:${provider.address().port}/v1`, key: 'k' }],
        security: [CLIENT_TOKEN],
        timeouts: { first_byte: 4, idle: 4 },
      },
    });
    try {
      const t0 = performance.now();
      const r = await upload(`${g6.url}/v1/audio/transcriptions`, form([['model', 'whisper'], ['file', big, 'a.mp3']]), { timeout: 15000 }).catch((e) => ({ error: e }));
      const ms = performance.now() - t0;
      assert.equal(r.status, 413, r.text ?? String(r.error));
      assert.equal(JSON.parse(r.text).error.code, 'too_big');
      assert.ok(ms < 3000, `answered after ${Math.round(ms)} ms, before the gateway's 4 s timeouts`);
      const line = await lineFor(g6, r);
      assert.equal(line.status, '413');
    } finally {
      await g6.stop();
      for (const s of sockets) s.destroy();
      provider.close();
    }
  });

  test("a slow upload is not the provider's latency (ttfb_ms, the target's EWMA)", T, async () => {
    const g7 = await startGateway({
      workers: 1,
      config: { providers: [{ group: 'whisper', name: 'whisper-1', base: `${mock.url}/v1`, key: 'k' }], security: [CLIENT_TOKEN] },
    });
    try {
      // The model part first, then the file in 5 pieces 250 ms apart: over a second of upload
      // relayed as it arrives, and a provider that answers at once once the body is in.
      const body = form([['model', 'whisper'], ['file', crypto.randomBytes(2 * MB), 'a.mp3']]);
      // A raw socket: each piece leaves when written (no client library buffering).
      const sock = net.connect(g7.port, '127.0.0.1');
      await once(sock, 'connect');
      const chunks = [];
      sock.on('data', (d) => chunks.push(d));
      const closed = once(sock, 'close');
      const head = `POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${CLIENT_TOKEN}\r\nContent-Type: ${CT}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
      const t0 = performance.now();
      sock.write(head);
      const step = Math.ceil(body.length / 5);
      for (let i = 0; i < body.length; i += step) {
        if (i > 0) await new Promise((r) => setTimeout(r, 250));
        sock.write(body.subarray(i, i + step));
      }
      await Promise.race([closed, new Promise((r) => setTimeout(r, 10000))]);
      sock.destroy();
      const took = performance.now() - t0;
      const text = Buffer.concat(chunks).toString();
      assert.match(text, /^HTTP\/1\.1 200 /, text.slice(0, 300));
      assert.ok(took >= 1000, `the upload took ${Math.round(took)} ms`);
      const line = await lineFor(g7, /\r\nx-request-id: (\w+)/i.exec(text)[1]);
      const t = await request({ url: `${g7.adminUrl}/admin/v1/targets` });
      assert.equal(t.status, 200, t.text);
      const ewma = JSON.parse(t.text).targets.find((x) => x.group === 'whisper')?.ewma_ttfb_ms;
      const what = `upload ${Math.round(took)} ms, ttfb_ms ${line.ttfb_ms}, the latency policy's EWMA ${ewma} ms: ${line._line}`;
      assert.ok(Number(line.ttfb_ms) < 500, `the access line's ttfb_ms counts the provider only: ${what}`);
      assert.ok(typeof ewma === 'number' && ewma < 500, `the target's latency EWMA counts the provider only: ${what}`);
    } finally {
      await g7.stop();
    }
  });

  test('a second request on the same connection after a streamed upload', T, async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const body = form([['model', 'whisper'], ['file', big.subarray(0, 2 * MB), 'a.mp3']]);
      const a = await upload(`${gw.url}/v1/audio/transcriptions`, body, { agent });
      const b = await upload(`${gw.url}/v1/audio/transcriptions`, body, { agent, chunked: true });
      assert.equal(a.status, 200, a.text);
      assert.equal(b.status, 200, b.text);
      assert.equal(a.headers.connection, undefined, 'no Connection: close');
      const [la, lb] = [await lineFor(gw, a), await lineFor(gw, b)];
      assert.equal(la.client, lb.client, 'both on one connection');
    } finally {
      agent.destroy();
    }
  });
});

describe('keys: a streamed upload is checked before anything goes upstream', () => {
  let mock, gw;
  before(async () => {
    mock = await startMock();
    gw = await startGateway({
      workers: 1,
      config: {
        providers: [
          { group: 'whisper', name: 'whisper-1', base: `${mock.url}/v1`, key: 'k' },
          { group: 'other', name: 'o', base: `${mock.url}/v1`, key: 'k' },
        ],
        keys: [
          { name: 'only-other', token: 'sk-other', groups: ['other'] },
          { name: 'rpm-one', token: 'sk-rpm', limits: { rpm: 1 } },
        ],
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await mock?.close();
  });

  test('a group the key may not use: 403 before the provider hears of it', T, async () => {
    mock.reset();
    const body = form([['model', 'whisper'], ['file', crypto.randomBytes(8 * MB), 'a.mp3']]);
    const r = await upload(`${gw.url}/v1/audio/transcriptions`, body, { token: 'sk-other' }).catch((e) => ({ error: e }));
    assert.equal(r.status, 403, r.text ?? String(r.error));
    assert.equal(JSON.parse(r.text).error.code, 'model_not_allowed');
    assert.equal(hits(mock).length, 0);
  });

  test('a limited key: the first upload goes, the second is 429 (never a hang)', T, async () => {
    mock.reset();
    const body = form([['model', 'whisper'], ['file', crypto.randomBytes(4 * MB), 'a.mp3']]);
    const a = await upload(`${gw.url}/v1/audio/transcriptions`, body, { token: 'sk-rpm' });
    assert.equal(a.status, 200, a.text);
    const b = await upload(`${gw.url}/v1/audio/transcriptions`, body, { token: 'sk-rpm' }).catch((e) => ({ error: e }));
    assert.equal(b.status, 429, b.text ?? String(b.error));
    assert.equal(hits(mock).length, 1);
  });
});
