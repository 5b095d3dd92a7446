#!/usr/bin/env node
// A deliberately small, slow reference implementation of the gateway contract, in Node.
// It exists only to check the e2e tests themselves (OPENBRIDGE_BIN=tests/e2e/lib/reference-gateway.mjs):
// a test that fails against it is suspect. It is not the product and is not tuned.
import http from 'node:http';
import https from 'node:https';
import fs from 'node:fs';

const argv = process.argv.slice(2);
const opt = {};
for (let i = 0; i < argv.length; i++) {
  const k = argv[i];
  if (k === '--version' || k === '-V') opt.version = true;
  else if (k === '--help' || k === '-h') opt.help = true;
  else opt[k.replace(/^--/, '')] = argv[++i];
}
if (opt.version) {
  console.log('openbridge-reference 0.0.1');
  process.exit(0);
}
if (opt.help) {
  console.log('usage: reference-gateway --config FILE [--listen HOST:PORT] [--workers N] | --check-config FILE');
  process.exit(0);
}

function loadConfig(path) {
  const errs = [];
  let j;
  try {
    j = JSON.parse(fs.readFileSync(path, 'utf8'));
  } catch (e) {
    return { errs: [`${path}: ${e.message}`] };
  }
  if (!j || typeof j !== 'object' || Array.isArray(j)) return { errs: ['config: not an object'] };
  if (!Array.isArray(j.providers)) errs.push('providers: must be a list');
  if (!Array.isArray(j.security) || j.security.some((s) => typeof s !== 'string')) errs.push('security: must be a list of strings');
  const providers = [];
  (Array.isArray(j.providers) ? j.providers : []).forEach((p, i) => {
    for (const f of ['group', 'name']) if (typeof p[f] !== 'string' || !p[f]) errs.push(`providers[${i}].${f}: required string`);
    let url;
    try {
      url = new URL(p.base);
      if (!/^https?:$/.test(url.protocol) || !url.hostname) throw new Error('x');
    } catch {
      errs.push(`providers[${i}].base: must be an http:// or https:// URL`);
    }
    let key = typeof p.key === 'string' ? p.key : '';
    const m = /^\$\{(\w+)\}$/.exec(key);
    if (m) {
      if (process.env[m[1]] === undefined) errs.push(`providers[${i}].key: environment variable ${m[1]} is not set`);
      key = process.env[m[1]] ?? '';
    }
    providers.push({ ...p, key, url });
  });
  if (errs.length) return { errs };
  const groups = new Map();
  for (const p of providers) {
    if (!groups.has(p.group)) groups.set(p.group, []);
    groups.get(p.group).push(p);
  }
  const t = j.timeouts || {};
  return {
    cfg: {
      groups,
      security: j.security,
      maxBody: j.limits?.max_body_bytes ?? 64 * 1024 * 1024,
      firstByte: (t.first_byte ?? 300) * 1000,
      idle: (t.idle ?? 120) * 1000,
    },
  };
}

if (opt['check-config']) {
  const r = loadConfig(opt['check-config']);
  if (r.errs) {
    for (const e of r.errs) console.error(e);
    process.exit(1);
  }
  console.log('ok');
  process.exit(0);
}

let { cfg, errs } = loadConfig(opt.config);
if (errs) {
  for (const e of errs) console.error(e);
  process.exit(1);
}
const rr = new Map();
function reload(why) {
  const r = loadConfig(opt.config);
  if (r.errs) {
    console.error(`config reload (${why}) refused, invalid: ${r.errs.join('; ')}`);
    return;
  }
  cfg = r.cfg;
  console.error(`config reloaded (${why})`);
}
let lastStat = '';
const statKey = () => {
  try {
    const s = fs.statSync(opt.config);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return '';
  }
};
lastStat = statKey();
setInterval(() => {
  const k = statKey();
  if (k && k !== lastStat) {
    lastStat = k;
    reload('file changed');
  }
}, 200).unref();
process.on('SIGHUP', () => reload('SIGHUP'));

const ca = process.env.SSL_CERT_FILE ? fs.readFileSync(process.env.SSL_CERT_FILE) : undefined;
const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true, ca }) };

function sendError(res, status, message, type, code = null) {
  const body = JSON.stringify({ error: { message, type, param: null, code } });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

// Position [start, end) of the top-level "model" value in a JSON text, or null.
function findModel(text, wanted = 'model') {
  let i = 0;
  let depth = 0;
  const n = text.length;
  const skipString = (j) => {
    j++;
    while (j < n && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
    return j + 1;
  };
  while (i < n) {
    const c = text[i];
    if (c === '"') {
      const end = skipString(i);
      if (depth === 1) {
        let k = end;
        while (/\s/.test(text[k])) k++;
        if (text[k] === ':') {
          const key = JSON.parse(text.slice(i, end));
          k++;
          while (/\s/.test(text[k])) k++;
          if (key === wanted) {
            let e = k;
            if (text[k] === '"') e = skipString(k);
            else {
              let d = 0;
              while (e < n) {
                const ch = text[e];
                if (ch === '"') {
                  e = skipString(e);
                  continue;
                }
                if (ch === '{' || ch === '[') d++;
                else if (ch === '}' || ch === ']') {
                  if (d === 0) break;
                  d--;
                } else if (ch === ',' && d === 0) break;
                e++;
              }
              while (/\s/.test(text[e - 1])) e--;
            }
            return [k, e];
          }
          i = k;
          continue;
        }
      }
      i = end;
      continue;
    }
    if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
    i++;
  }
  return null;
}

function rewriteJson(text, to) {
  let j;
  try {
    j = JSON.parse(text);
  } catch {
    return text;
  }
  if (!j || typeof j !== 'object' || Array.isArray(j)) return text;
  if (typeof j.model === 'string') {
    const [s, e] = findModel(text);
    return text.slice(0, s) + JSON.stringify(to) + text.slice(e);
  }
  if (j.response && typeof j.response.model === 'string') {
    const ri = findKey(text, 'response');
    if (ri) {
      const inner = text.slice(ri[0], ri[1]);
      return text.slice(0, ri[0]) + rewriteJson(inner, to) + text.slice(ri[1]);
    }
  }
  return text;
}
function findKey(text, key) {
  return findModel(text, key);
}

function onRequest(req, res) {
  const url = req.url;
  const path = url.split('?')[0];
  const c = cfg;
  if (path === '/healthz') {
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end('{"status":"ok"}');
  }
  const auth = () => {
    const m = /^bearer\s+(\S+)\s*$/i.exec(req.headers.authorization || '');
    return m && c.security.includes(m[1]);
  };
  if (path === '/v1/models') {
    if (req.method !== 'GET') return sendError(res, 405, 'method not allowed', 'invalid_request_error');
    if (!auth()) return sendError(res, 401, 'invalid token', 'invalid_request_error', 'invalid_api_key');
    const data = [...c.groups.keys()].map((id) => ({ id, object: 'model', created: 0, owned_by: 'openbridge' }));
    const body = JSON.stringify({ object: 'list', data });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    return res.end(body);
  }
  if (!path.startsWith('/v1/')) return sendError(res, 404, 'no such route', 'invalid_request_error', 'not_found');
  if (req.method !== 'POST') return sendError(res, 405, 'method not allowed', 'invalid_request_error');
  if (!auth()) {
    req.resume();
    return sendError(res, 401, 'invalid token', 'invalid_request_error', 'invalid_api_key');
  }
  // 413: answer, half-close, and keep draining what the client still sends (lingering close),
  // so the client reads the answer instead of a reset.
  const tooLarge = () => {
    const body = JSON.stringify({ error: { message: 'body too large', type: 'invalid_request_error', param: null, code: null } });
    const sock = req.socket;
    sock.write(`HTTP/1.1 413 Payload Too Large\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    sock.end();
    req.resume();
    setTimeout(() => sock.destroy(), 5000).unref();
  };
  if (Number(req.headers['content-length'] || 0) > c.maxBody) return tooLarge();
  const chunks = [];
  let total = 0;
  let over = false;
  req.on('data', (d) => {
    total += d.length;
    if (total > c.maxBody && !over) {
      over = true;
      tooLarge();
    } else if (!over) chunks.push(d);
  });
  req.on('end', () => {
    if (over) return;
    const text = Buffer.concat(chunks).toString('utf8');
    let j;
    try {
      j = JSON.parse(text);
    } catch {
      return sendError(res, 400, 'body is not JSON', 'invalid_request_error');
    }
    if (!j || typeof j !== 'object' || Array.isArray(j) || typeof j.model !== 'string') {
      return sendError(res, 400, 'model must be a string', 'invalid_request_error');
    }
    const targets = c.groups.get(j.model);
    if (!targets) return sendError(res, 404, `model ${j.model} not found`, 'invalid_request_error', 'model_not_found');
    const n = rr.get(j.model) ?? 0;
    rr.set(j.model, n + 1);
    const t = targets[n % targets.length];
    const group = j.model;
    const [s, e] = findModel(text);
    const out = Buffer.from(text.slice(0, s) + JSON.stringify(t.name) + text.slice(e));
    forward(req, res, c, t, group, out);
  });
}

const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authenticate', 'proxy-authorization', 'host', 'authorization', 'content-length', 'accept-encoding', 'expect']);

function forward(req, res, c, t, group, body) {
  const conn = (req.headers.connection || '').toLowerCase().split(',').map((s) => s.trim());
  const headers = {};
  for (const [k, v] of Object.entries(req.headers)) if (!HOP.has(k) && !conn.includes(k)) headers[k] = v;
  headers.authorization = `Bearer ${t.key}`;
  headers['content-length'] = String(body.length);
  const tls = t.url.protocol === 'https:';
  const prefix = t.url.pathname.replace(/\/$/, '');
  const up = (tls ? https : http).request({
    hostname: t.url.hostname,
    port: t.url.port || (tls ? 443 : 80),
    path: prefix + req.url,
    method: 'POST',
    headers,
    agent: tls ? agents.https : agents.http,
  });
  let done = false;
  const fb = setTimeout(() => {
    if (!done) {
      done = true;
      up.destroy();
      sendError(res, 504, 'upstream timed out', 'upstream_error', 'upstream_timeout');
    }
  }, c.firstByte);
  res.on('close', () => {
    if (!res.writableFinished) up.destroy();
  });
  up.on('error', (e) => {
    clearTimeout(fb);
    if (done) return;
    done = true;
    sendError(res, 502, `upstream failed: ${e.message}`, 'upstream_error', 'bad_gateway');
  });
  up.on('response', (ur) => {
    clearTimeout(fb);
    const stream = /text\/event-stream/.test(ur.headers['content-type'] || '');
    const h = {};
    for (const [k, v] of Object.entries(ur.headers)) if (!HOP.has(k) && k !== 'content-length') h[k] = v;
    let idle;
    let idleFired = false;
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(() => {
        idleFired = true;
        ur.destroy(new Error('idle timeout'));
      }, c.idle);
    };
    arm();
    if (!stream || ur.statusCode >= 300) {
      const parts = [];
      ur.on('data', (d) => {
        arm();
        parts.push(d);
      });
      ur.on('end', () => {
        clearTimeout(idle);
        if (done) return;
        done = true;
        const b = Buffer.from(rewriteJson(Buffer.concat(parts).toString('utf8'), group));
        h['content-length'] = String(b.length);
        res.writeHead(ur.statusCode, h);
        res.end(b);
      });
      ur.on('error', (e) => {
        clearTimeout(idle);
        if (done) return;
        done = true;
        const timeout = idleFired;
        sendError(res, timeout ? 504 : 502, `upstream failed: ${e.message}`, 'upstream_error');
      });
      ur.on('aborted', () => ur.emit('error', new Error('aborted')));
      return;
    }
    done = true;
    res.writeHead(ur.statusCode, h);
    let buf = '';
    let sawDone = false;
    let sawEventField = false;
    const emit = (ev) => {
      const lines = ev.split(/\r\n|\r|\n/);
      const out = lines.map((l) => {
        if (l.startsWith('event:')) sawEventField = true;
        if (!l.startsWith('data:')) return l;
        const v = l.slice(5).replace(/^ /, '');
        if (v === '[DONE]') sawDone = true;
        return `data: ${rewriteJson(v, group)}`.replace(/^data: /, l.startsWith('data: ') ? 'data: ' : 'data:');
      });
      return out.join(ev.includes('\r\n') ? '\r\n' : '\n');
    };
    ur.setEncoding('utf8');
    ur.on('data', (d) => {
      arm();
      buf += d;
      let m;
      let outText = '';
      while ((m = /\r\n\r\n|\n\n|\r\r/.exec(buf))) {
        outText += emit(buf.slice(0, m.index)) + m[0];
        buf = buf.slice(m.index + m[0].length);
      }
      if (outText) res.write(outText);
    });
    const fail = (msg) => {
      clearTimeout(idle);
      if (res.writableEnded) return;
      res.end(`data: ${JSON.stringify({ error: { message: msg, type: 'upstream_error', code: null } })}\n\n`);
    };
    ur.on('end', () => {
      clearTimeout(idle);
      if (!sawDone && !sawEventField) return fail('upstream stream ended without [DONE]');
      res.end();
    });
    ur.on('error', (e) => fail(`upstream stream failed: ${e.message}`));
    ur.on('aborted', () => fail('upstream stream aborted'));
  });
  up.end(body);
}

const [host, port] = (opt.listen || '127.0.0.1:8080').split(/:(?=\d+$)/);
const server = http.createServer({ keepAliveTimeout: 75000 }, onRequest);
server.listen(Number(port), host);
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 10000).unref();
});
