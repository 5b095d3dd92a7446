// Helpers shared by the e2e test files.
import assert from 'node:assert/strict';
import { request } from './http.mjs';

export const CLIENT_TOKEN = 'sk-client';
export const CLIENT_TOKEN_2 = 'sk-client-2';

export function chatBody(model, extra = {}) {
  return JSON.stringify({ model, messages: [{ role: 'user', content: 'Hi' }], ...extra });
}

// POST through the gateway with the client token (or `token: null` for none).
export function gwPost(gw, p, body, { token = CLIENT_TOKEN, headers = {}, ...rest } = {}) {
  const h = { 'content-type': 'application/json', ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  return request({ url: gw.url + p, method: 'POST', headers: h, body, ...rest });
}

export function gwGet(gw, p, { token = CLIENT_TOKEN, headers = {}, ...rest } = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  return request({ url: gw.url + p, method: 'GET', headers: h, ...rest });
}

// Asserts an OpenAI-style error answer: status, JSON {"error":{"message","type","code"}}.
export function assertError(r, status, { code, type } = {}, what = '') {
  const ctx = `${what} -> ${r.status} ${r.text.slice(0, 300)}`;
  assert.equal(r.status, status, `expected status ${status}: ${ctx}`);
  assert.match(String(r.headers['content-type']), /application\/json/, `content-type: ${ctx}`);
  let j;
  try {
    j = r.json();
  } catch {
    assert.fail(`error body is not JSON: ${ctx}`);
  }
  assert.equal(typeof j.error, 'object', `no error object: ${ctx}`);
  assert.equal(typeof j.error.message, 'string', `error.message: ${ctx}`);
  assert.ok(j.error.message.length > 0, `empty error.message: ${ctx}`);
  assert.ok('type' in j.error, `error.type missing: ${ctx}`);
  assert.ok('code' in j.error, `error.code missing: ${ctx}`);
  if (code !== undefined) assert.equal(j.error.code, code, `error.code: ${ctx}`);
  if (type !== undefined) assert.equal(j.error.type, type, `error.type: ${ctx}`);
  return j;
}

// The access log lines (`... access key=value ...`) captured from the gateway's stderr.
export function accessLines(gw) {
  return gw.stderrLines.filter((l) => / access /.test(l)).map(parseKV);
}

export function parseKV(line) {
  const out = { _line: line };
  const re = /(\w+)=("(?:[^"\\]|\\.)*"|\S+)/g;
  let m;
  while ((m = re.exec(line))) {
    let v = m[2];
    if (v.startsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    out[m[1]] = v;
  }
  return out;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Replace every `"model":"<from>"` of an SSE text by the group name (what the gateway must do).
export const rewriteAll = (text, from, to) => text.split(`"model":"${from}"`).join(`"model":"${to}"`);
// The provider's stream without the usage-only chunk the gateway asked for on behalf of a client
// that did not (docs/OPERATIONS.md): what that client must receive.
export const withoutUsageChunk = (text) =>
  text
    .split('\n\n')
    .filter((ev) => !/^data: \{.*"choices":\[\],"usage":\{/.test(ev))
    .join('\n\n');
