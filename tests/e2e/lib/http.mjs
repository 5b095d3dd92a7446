// Small raw HTTP client for tests: exact bytes in and out, no retries, bounded by a timeout.
import http from 'node:http';
import https from 'node:https';
import crypto from 'node:crypto';

export const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');

// request({url, method, headers, body, timeout, ca, agent, onChunk}) ->
//   {status, headers, rawHeaders, body: Buffer, text, json(), chunks: [{t, bytes}], error?}
// Network errors and premature closes reject unless `allowError` is set, in which case they are
// reported as `error` beside whatever was received.
export function request(opts) {
  const u = new URL(opts.url);
  const mod = u.protocol === 'https:' ? https : http;
  const body = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body));
  const headers = { ...(opts.headers || {}) };
  if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-length') && !opts.chunked) {
    headers['content-length'] = String(body.length);
  }
  const timeout = opts.timeout ?? 15000;
  return new Promise((resolve, reject) => {
    const chunks = [];
    const t0 = performance.now();
    let settled = false;
    const done = (err, res) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const buf = Buffer.concat(chunks.map((c) => c.bytes));
      const out = res
        ? {
            status: res.statusCode,
            headers: res.headers,
            rawHeaders: res.rawHeaders,
            body: buf,
            text: buf.toString('utf8'),
            json: () => JSON.parse(buf.toString('utf8')),
            chunks,
            error: err,
          }
        : undefined;
      if (err && !(opts.allowError && out)) {
        if (out) err.partial = out;
        reject(err);
      } else resolve(out);
    };
    const req = mod.request(
      {
        method: opts.method ?? 'GET',
        hostname: u.hostname.replace(/^\[|\]$/g, ''),
        port: u.port,
        path: u.pathname + u.search,
        headers,
        agent: opts.agent ?? false,
        ca: opts.ca,
        signal: opts.signal,
      },
      (res) => {
        res.on('data', (c) => {
          chunks.push({ t: performance.now() - t0, bytes: c });
          opts.onChunk?.(c, res, req);
        });
        res.on('end', () => done(undefined, res));
        res.on('error', (e) => done(e, res));
        res.on('aborted', () => done(new Error('response aborted'), res));
        res.on('close', () => {
          if (!res.complete) done(new Error('response closed before it was complete'), res);
        });
        opts.onResponse?.(res, req);
      },
    );
    const timer = setTimeout(() => {
      const e = new Error(`request timed out after ${timeout} ms: ${opts.method ?? 'GET'} ${opts.url}`);
      e.code = 'TEST_TIMEOUT';
      req.destroy(e);
    }, timeout);
    req.on('error', (e) => done(e, req.res));
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

// Parses a text/event-stream body into events [{event, data, id, comments}] (LF, CRLF or CR endings).
export function parseSSE(text) {
  const events = [];
  const lines = text.split(/\r\n|\r|\n/);
  let cur = null;
  const comments = [];
  for (const line of lines) {
    if (line === '') {
      if (cur) events.push(cur);
      cur = null;
      continue;
    }
    if (line.startsWith(':')) {
      comments.push(line);
      continue;
    }
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? '' : line.slice(i + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    cur = cur || { event: undefined, data: undefined };
    if (field === 'data') cur.data = cur.data === undefined ? value : `${cur.data}\n${value}`;
    else if (field === 'event') cur.event = value;
    else if (field === 'id') cur.id = value;
  }
  const trailing = cur; // an event not terminated by a blank line
  return { events, comments, trailing };
}

// Waits until fn() is truthy, polling every `every` ms, at most `timeout` ms. Returns fn()'s value.
export async function waitFor(fn, { timeout = 5000, every = 20, what = 'condition' } = {}) {
  const end = performance.now() + timeout;
  for (let i = 0; i < 100000; i++) {
    const v = await fn();
    if (v) return v;
    if (performance.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
  throw new Error(`gave up waiting for ${what}`);
}

// Sends a request over a raw TCP socket the way a careful client does with a large body: the
// body goes out in pieces and sending stops as soon as the server answers (an early 413, say).
// Resolves {status, headers, text, json(), sentBytes, error} from whatever the server sent.
export async function rawEarlyAnswer({ url, method = 'POST', headers = {}, body, pieceBytes = 65536, timeout = 15000 }) {
  const net = await import('node:net');
  const u = new URL(url);
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body ?? '');
  let head = `${method} ${u.pathname}${u.search} HTTP/1.1\r\nhost: ${u.host}\r\nconnection: close\r\n`;
  const hasLen = Object.keys(headers).some((h) => h.toLowerCase() === 'content-length');
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) head += `${k}: ${v}\r\n`;
  if (!hasLen) head += `content-length: ${buf.length}\r\n`;
  head += '\r\n';
  return new Promise((resolve) => {
    const sock = net.connect({ host: u.hostname, port: Number(u.port) });
    const got = [];
    let answered = false;
    let sent = 0;
    let error;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sock.destroy();
      const all = Buffer.concat(got);
      const sep = all.indexOf('\r\n\r\n');
      const headText = sep >= 0 ? all.subarray(0, sep).toString('latin1') : all.toString('latin1');
      const lines = headText.split('\r\n');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] || '');
      const hs = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) hs[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      let bodyBytes = sep >= 0 ? all.subarray(sep + 4) : Buffer.alloc(0);
      if (hs['content-length'] !== undefined) bodyBytes = bodyBytes.subarray(0, Number(hs['content-length']));
      const text = bodyBytes.toString('utf8');
      resolve({ status: m ? Number(m[1]) : null, headers: hs, text, json: () => JSON.parse(text), sentBytes: sent, error, raw: all });
    };
    const timer = setTimeout(() => {
      error = error || new Error('timed out');
      finish();
    }, timeout);
    sock.on('data', (d) => {
      answered = true;
      got.push(d);
    });
    sock.on('end', finish);
    sock.on('close', finish);
    sock.on('error', (e) => {
      error = error || e;
    });
    sock.on('connect', async () => {
      sock.write(head);
      for (let i = 0; i < buf.length && !answered && !sock.destroyed; i += pieceBytes) {
        const piece = buf.subarray(i, i + pieceBytes);
        const ok = sock.write(piece);
        sent += piece.length;
        if (!ok) await new Promise((r) => { sock.once('drain', r); sock.once('close', r); });
      }
    });
  });
}
