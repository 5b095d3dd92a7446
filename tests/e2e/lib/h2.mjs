// HTTP/2 helpers for the e2e tests: a gateway with the TLS listener, requests with Node's
// http2 client, and raw frames (for what a well-behaved client never sends).
import fs from 'node:fs';
import http2 from 'node:http2';
import path from 'node:path';
import tls from 'node:tls';
import { execFile } from 'node:child_process';
import { startGateway, freePort } from './gateway.mjs';
import { waitFor } from './http.mjs';
import { CLIENT_TOKEN } from './common.mjs';

// A gateway with `tls` on a free port (tls.* extra keys from `tlsExtra`); gw.tlsPort, gw.tlsUrl.
export async function startH2Gateway({ ca, providers, tlsExtra = {}, extra = {}, workers = 2, env }) {
  const tlsPort = await freePort();
  const gw = await startGateway({
    workers,
    env,
    config: {
      providers,
      security: [CLIENT_TOKEN],
      tls: { listen: `127.0.0.1:${tlsPort}`, cert: ca.cert, key: ca.key, ...tlsExtra },
      ...extra,
    },
  });
  await waitFor(() => /listening with TLS on/.test(gw.stderr()), { what: 'the TLS listener', timeout: 5000 }).catch((e) => {
    throw new Error(`${e.message}\n${gw.stderr()}`);
  });
  gw.tlsPort = tlsPort;
  gw.tlsUrl = `https://127.0.0.1:${tlsPort}`;
  return gw;
}

export function h2connect(gw, ca, opts = {}) {
  return new Promise((resolve, reject) => {
    const s = http2.connect(gw.tlsUrl, { ca: ca.caCertPem, servername: 'localhost', ...opts });
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error('HTTP/2 connect timed out'));
    }, 5000);
    s.once('connect', () => {
      clearTimeout(t);
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

// One request on `session`: {status, headers, body: Buffer, text, json(), chunks: [{t, bytes}], rst}
export function h2request(session, { method = 'POST', path: p = '/v1/chat/completions', headers = {}, body, token = CLIENT_TOKEN, timeout = 15000, onResponse, onChunk } = {}) {
  return new Promise((resolve, reject) => {
    const h = { ':method': method, ':path': p, ...headers };
    if (token) h.authorization = `Bearer ${token}`;
    if (body !== undefined && !h['content-type']) h['content-type'] = 'application/json';
    const req = session.request(h, { endStream: body === undefined });
    const chunks = [];
    const t0 = performance.now();
    let resHeaders = null;
    const timer = setTimeout(() => {
      req.close(http2.constants.NGHTTP2_CANCEL);
      reject(new Error(`HTTP/2 request ${p} timed out`));
    }, timeout);
    req.on('response', (hs) => {
      resHeaders = hs;
      onResponse?.(req, hs);
    });
    req.on('data', (d) => {
      chunks.push({ t: performance.now() - t0, bytes: d });
      onChunk?.(req, d);
    });
    const finish = () => {
      clearTimeout(timer);
      const buf = Buffer.concat(chunks.map((c) => c.bytes));
      resolve({
        status: resHeaders ? resHeaders[':status'] : 0,
        headers: resHeaders ?? {},
        body: buf,
        text: buf.toString('utf8'),
        json: () => JSON.parse(buf.toString('utf8')),
        chunks,
        rst: req.rstCode,
      });
    };
    req.on('close', finish);
    req.on('error', () => {});
    if (body !== undefined) req.end(typeof body === 'string' ? body : JSON.stringify(body));
  });
}

export function run(cmd, args, { timeout = 30000 } = {}) {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout, encoding: 'utf8', maxBuffer: 64 << 20 }, (error, stdout, stderr) =>
      resolve({ code: error ? (error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

export function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}

// ---- raw frames -------------------------------------------------------------------------

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
export const T = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 };
export const F = { END_STREAM: 1, ACK: 1, END_HEADERS: 4 };

export function frame(type, flags, stream, payload = Buffer.alloc(0)) {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

export function settings(pairs = []) {
  const b = Buffer.alloc(6 * pairs.length);
  pairs.forEach(([id, v], i) => {
    b.writeUInt16BE(id, 6 * i);
    b.writeUInt32BE(v, 6 * i + 2);
  });
  return frame(T.SETTINGS, 0, 0, b);
}

// HPACK integer with an n-bit prefix.
export function hpackInt(v, bits, first) {
  const max = (1 << bits) - 1;
  if (v < max) return [first | v];
  const out = [first | max];
  v -= max;
  while (v >= 128) {
    out.push((v & 127) | 128);
    v >>= 7;
  }
  out.push(v);
  return out;
}

// Header fields as HPACK literals without indexing (no Huffman): exact and stateless.
export function hpack(fields) {
  const parts = [];
  for (const [n, v] of fields) {
    const nb = Buffer.from(n);
    const vb = Buffer.from(v);
    parts.push(Buffer.from([0x00, ...hpackInt(nb.length, 7, 0)]), nb, Buffer.from(hpackInt(vb.length, 7, 0)), vb);
  }
  return Buffer.concat(parts);
}

export function requestFields(gw, { method = 'GET', path: p = '/healthz', headers = [] } = {}) {
  return [[':method', method], [':scheme', 'https'], [':authority', `127.0.0.1:${gw.tlsPort}`], [':path', p], ...headers];
}

// A TLS connection offering only h2, with a parser of the frames the server sends:
// { sock, frames: [{type, flags, stream, payload}], closed: Promise, write(buf) }
export function rawH2(gw, ca) {
  return new Promise((resolve, reject) => {
    const sock = tls.connect({ port: gw.tlsPort, host: '127.0.0.1', ca: ca.caCertPem, servername: 'localhost', ALPNProtocols: ['h2'] }, () => {
      if (sock.alpnProtocol !== 'h2') return reject(new Error(`ALPN chose ${sock.alpnProtocol}`));
      resolve(conn);
    });
    const conn = { sock, frames: [], bytesIn: 0 };
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      conn.bytesIn += d.length;
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        conn.frames.push({ type: buf[3], flags: buf[4], stream: buf.readUInt32BE(5) & 0x7fffffff, payload: buf.subarray(9, 9 + len) });
        buf = buf.subarray(9 + len);
      }
    });
    conn.closed = new Promise((r) => sock.on('close', r));
    sock.on('error', () => {});
    conn.write = (b) => new Promise((r) => (sock.destroyed ? r(false) : sock.write(b, () => r(true))));
    conn.goaway = () => conn.frames.find((f) => f.type === T.GOAWAY);
  });
}

export function goawayCode(f) {
  return f ? f.payload.readUInt32BE(4) : null;
}

// The highest stream id the sender of a GOAWAY says it processed.
export function goawayLastStream(f) {
  return f ? f.payload.readUInt32BE(0) & 0x7fffffff : null;
}

export function tempFile(dir, name, text) {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
}
