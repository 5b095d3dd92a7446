// Raw TCP conversations with the gateway (or any HTTP/1.1 server) for hostile-input tests:
// exact bytes out, in pieces with pauses if asked, and every byte that comes back, parsed into
// the sequence of answers the peer sent. Always bounded by a timeout; never retries.
import net from 'node:net';
import tls from 'node:tls';
import { CLIENT_TOKEN } from './common.mjs';
import { startGateway } from './gateway.mjs';

// rawExchange({port, host, pieces, pauseMs, timeout, halfClose, closeAfterAnswers})
//   pieces: a string/Buffer, or an array of them sent one after another with `pauseMs` between
//   (or an array of {bytes, pauseMs} for per-piece pauses).
//   halfClose: end our side after the last piece (default false).
//   closeAfterAnswers: stop as soon as this many complete answers were parsed.
// -> {raw: Buffer, answers: [{status, headers, rawHead, body: Buffer, text}], closed, reset,
//     timedOut, elapsedMs, firstByteMs}
export function rawExchange({ port, host = '127.0.0.1', pieces, pauseMs = 0, timeout = 5000, halfClose = false, closeAfterAnswers, headRequests = [] }) {
  const list = (Array.isArray(pieces) ? pieces : [pieces]).map((p) =>
    p && typeof p === 'object' && !Buffer.isBuffer(p) && 'bytes' in p ? p : { bytes: p, pauseMs },
  );
  return new Promise((resolve) => {
    const t0 = performance.now();
    const sock = net.connect({ host, port });
    const got = [];
    let done = false;
    let closed = false;
    let reset = false;
    let timedOut = false;
    let firstByteMs;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const raw = Buffer.concat(got);
      resolve({ raw, answers: parseAnswers(raw, headRequests), closed, reset, timedOut, elapsedMs: performance.now() - t0, firstByteMs });
    };
    const timer = setTimeout(() => {
      timedOut = true;
      finish();
    }, timeout);
    sock.on('data', (d) => {
      if (firstByteMs === undefined) firstByteMs = performance.now() - t0;
      got.push(d);
      if (closeAfterAnswers && parseAnswers(Buffer.concat(got), headRequests).filter((a) => a.complete).length >= closeAfterAnswers) finish();
    });
    sock.on('end', () => {
      closed = true;
      finish();
    });
    sock.on('close', () => {
      closed = true;
      finish();
    });
    sock.on('error', (e) => {
      if (e.code === 'ECONNRESET') reset = true;
    });
    sock.on('connect', async () => {
      for (let i = 0; i < list.length && !done; i++) {
        if (i > 0 && list[i].pauseMs) await new Promise((r) => setTimeout(r, list[i].pauseMs));
        if (done || sock.destroyed) break;
        sock.write(typeof list[i].bytes === 'string' ? Buffer.from(list[i].bytes, 'latin1') : list[i].bytes);
      }
      if (halfClose && !sock.destroyed) sock.end();
    });
  });
}

// Splits bytes into the HTTP/1.1 answers they hold (Content-Length, chunked, or to EOF).
// headRequests: indexes of answers that reply to HEAD (no body whatever the headers say).
export function parseAnswers(raw, headRequests = []) {
  const out = [];
  let pos = 0;
  for (let n = 0; pos < raw.length && n < 1000; n++) {
    const sep = raw.indexOf('\r\n\r\n', pos);
    if (sep < 0) {
      out.push({ status: null, headers: {}, rawHead: raw.subarray(pos).toString('latin1'), body: Buffer.alloc(0), text: '', complete: false });
      break;
    }
    const rawHead = raw.subarray(pos, sep).toString('latin1');
    const lines = rawHead.split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
    const headers = {};
    const headerList = [];
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      if (i <= 0) continue;
      const k = l.slice(0, i).trim().toLowerCase();
      const v = l.slice(i + 1).trim();
      headerList.push([k, v]);
      headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
    }
    const status = m ? Number(m[1]) : null;
    let p = sep + 4;
    let body = Buffer.alloc(0);
    let complete = true;
    const noBody = headRequests.includes(out.length) || status === 204 || status === 304 || (status >= 100 && status < 200);
    if (noBody) {
      // nothing
    } else if (/chunked/i.test(headers['transfer-encoding'] || '')) {
      const parts = [];
      complete = false;
      for (let k = 0; k < 100000; k++) {
        const le = raw.indexOf('\r\n', p);
        if (le < 0) break;
        const size = parseInt(raw.subarray(p, le).toString('latin1'), 16);
        if (Number.isNaN(size)) break;
        if (size === 0) {
          const end = raw.indexOf('\r\n\r\n', le);
          p = end < 0 ? raw.length : end + 4;
          complete = end >= 0;
          break;
        }
        parts.push(raw.subarray(le + 2, le + 2 + size));
        p = le + 2 + size + 2;
        if (p > raw.length) break;
      }
      body = Buffer.concat(parts);
    } else if (headers['content-length'] !== undefined) {
      const len = Number(headers['content-length']);
      body = raw.subarray(p, p + len);
      complete = body.length === len;
      p += len;
    } else {
      body = raw.subarray(p);
      p = raw.length;
    }
    out.push({ status, headers, headerList, rawHead, body, text: body.toString('utf8'), complete, end: p });
    pos = p;
    if (status >= 100 && status < 200) out.pop(); // interim answers are not answers
  }
  return out;
}

// A raw HTTP/1.1 request's bytes. headers: object or array of [name, value] (duplicates allowed).
export function rawRequest({ method = 'POST', path = '/v1/chat/completions', host = '127.0.0.1', headers = [], body, contentLength = true, version = 'HTTP/1.1' }) {
  const list = Array.isArray(headers) ? headers : Object.entries(headers);
  const b = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  let head = `${method} ${path} ${version}\r\n`;
  if (host !== null) head += `Host: ${host}\r\n`;
  for (const [k, v] of list) head += `${k}: ${v}\r\n`;
  if (b !== undefined && contentLength && !list.some(([k]) => k.toLowerCase() === 'content-length' || k.toLowerCase() === 'transfer-encoding')) head += `Content-Length: ${b.length}\r\n`;
  head += '\r\n';
  return b === undefined ? Buffer.from(head, 'latin1') : Buffer.concat([Buffer.from(head, 'latin1'), b]);
}

// rawConnection({port, host}) -> a kept-open TCP connection for keep-alive tests:
//   await c.ask(bytes, {timeout}) sends `bytes` and resolves the next complete answer
//   ({status, headers, text, ...} as parseAnswers), or {status: null, closed, timedOut} when the
//   peer closed or nothing complete came in time. One question at a time; never retries.
//   c.closed() says whether the peer closed; c.close() ends it.
export function rawConnection({ port, host = '127.0.0.1', connectTimeout = 5000 }) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    let buf = Buffer.alloc(0);
    let closed = false;
    let waiter = null;
    const check = () => {
      if (!waiter) return;
      const answers = parseAnswers(buf);
      if (answers.length > 0 && answers[0].complete) {
        const first = answers[0];
        buf = buf.subarray(first.end);
        const w = waiter;
        waiter = null;
        clearTimeout(w.timer);
        w.resolve({ ...first, closed: false, timedOut: false });
      } else if (closed) {
        const w = waiter;
        waiter = null;
        clearTimeout(w.timer);
        w.resolve({ status: null, closed: true, timedOut: false, raw: buf });
      }
    };
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no connection to ${host}:${port} within ${connectTimeout} ms`));
    }, connectTimeout);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      check();
    });
    const onClose = () => {
      closed = true;
      check();
    };
    sock.on('end', onClose);
    sock.on('close', onClose);
    sock.on('error', () => {});
    sock.on('connect', () => {
      clearTimeout(timer);
      resolve({
        ask(bytes, { timeout = 5000 } = {}) {
          if (waiter) throw new Error('one question at a time');
          return new Promise((res) => {
            waiter = {
              resolve: res,
              timer: setTimeout(() => {
                waiter = null;
                res({ status: null, closed, timedOut: true, raw: buf });
              }, timeout),
            };
            sock.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
            check();
          });
        },
        closed: () => closed,
        close: () => sock.destroy(),
      });
    });
  });
}

// A one-off upstream for hostile-provider tests: a plain TCP server, or TLS with `ca`'s
// certificate, on 127.0.0.1 and a free port; `onSocket(sock)` takes each connection (an
// 'error' listener is added, so a reset never throws). close() destroys the open connections,
// then stops listening.
// -> {port, url: 'http[s]://127.0.0.1:PORT', state: {connections, closed}, close()}
export async function listenRaw({ tls: useTls = false, ca } = {}, onSocket) {
  const sockets = new Set();
  const state = { connections: 0, closed: 0 };
  const accept = (sock) => {
    state.connections++;
    sockets.add(sock);
    sock.on('error', () => {});
    sock.on('close', () => {
      state.closed++;
      sockets.delete(sock);
    });
    onSocket(sock);
  };
  const server = useTls ? tls.createServer({ cert: ca.certPem, key: ca.keyPem }, accept) : net.createServer(accept);
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  return {
    port,
    url: `${useTls ? 'https' : 'http'}://127.0.0.1:${port}`,
    state,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

// A gateway (one worker) whose one group `group` is the raw upstream `up` (a listenRaw result;
// its certificate trusted through `ca` when it is TLS), with short timeouts: a request the
// upstream never answers fails within seconds.
export function startGatewayInFront(up, { group, name, ca }) {
  const config = {
    providers: [{ group, name, base: up.url, key: 'sk-up' }],
    security: [CLIENT_TOKEN],
    timeouts: { connect: 2, first_byte: 3, idle: 3, total: 10 },
  };
  const env = up.url.startsWith('https:') ? { SSL_CERT_FILE: ca.caCert, SSL_CERT_DIR: undefined } : {};
  return startGateway({ config, env, workers: 1 });
}
