// Hostile HTTP from clients: request framing and smuggling (Host, Transfer-Encoding,
// Content-Length, chunk lines), request paths that try to leave /v1/ (dot segments in every
// encoding, under a base path prefix), HEAD answers on keep-alive connections, client
// credentials and other headers that must not reach a provider, and the x-openbridge-*
// answer headers. Every case is a row of a table; the first answer is asserted, bytes exact.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock } from '../../tools/mock-provider/server.js';
import { startGateway, closedPort } from './lib/gateway.mjs';
import { rawExchange, rawRequest } from './lib/raw.mjs';
import { CLIENT_TOKEN, chatBody, gwPost } from './lib/common.mjs';

const T = { timeout: 30000 };
const AUTH = `Bearer ${CLIENT_TOKEN}`;
const BODY = chatBody('pref');

// An answer must come well before the gateway's body/header timeouts (30 s and more).
const PROMPT_MS = 2500;

function chunked(body, sizeLine = (n) => `${n.toString(16)}\r\n`, eol = '\r\n') {
  return `${sizeLine(body.length)}${body}${eol}0${eol}${eol}`;
}

function head(lines, version = 'HTTP/1.1') {
  return `POST /v1/chat/completions ${version}\r\n${lines.join('\r\n')}\r\n\r\n`;
}

function assertJsonError(a, status, code, what) {
  assert.ok(a, `${what}: no answer`);
  assert.equal(a.status, status, `${what}: ${a.rawHead}\n${a.text}`);
  assert.match(String(a.headers['content-type']), /application\/json/, what);
  const j = JSON.parse(a.text);
  assert.equal(typeof j.error.message, 'string', what);
  assert.ok('type' in j.error && 'param' in j.error && 'code' in j.error, what);
  if (code) assert.equal(j.error.code, code, `${what}: ${a.text}`);
}

// Framing and smuggling: each row is the exact bytes of one request.
const framing = [
  { name: 'HTTP/1.1 without Host', bytes: head(['Authorization: ' + AUTH, `Content-Length: ${BODY.length}`]) + BODY, status: 400 },
  { name: 'two Host headers', bytes: head(['Host: a', 'Host: b', 'Authorization: ' + AUTH, `Content-Length: ${BODY.length}`]) + BODY, status: 400 },
  { name: 'two Host headers in HTTP/1.0', bytes: head(['Host: a', 'Host: b', 'Authorization: ' + AUTH, `Content-Length: ${BODY.length}`], 'HTTP/1.0') + BODY, status: 400 },
  { name: 'HTTP/1.0 without Host is served', bytes: head(['Authorization: ' + AUTH, `Content-Length: ${BODY.length}`], 'HTTP/1.0') + BODY, status: 200, reaches: true },
  { name: 'Transfer-Encoding: gzip, chunked', bytes: head(['Host: x', 'Authorization: ' + AUTH, 'Transfer-Encoding: gzip, chunked']) + chunked(BODY), status: 501 },
  { name: 'Transfer-Encoding gzip then chunked in two headers', bytes: head(['Host: x', 'Authorization: ' + AUTH, 'Transfer-Encoding: gzip', 'Transfer-Encoding: chunked']) + chunked(BODY), status: 501 },
  { name: 'Transfer-Encoding: chunked, gzip (chunked not last)', bytes: head(['Host: x', 'Authorization: ' + AUTH, 'Transfer-Encoding: chunked, gzip']) + chunked(BODY), status: 400 },
  { name: 'Transfer-Encoding: gzip with Content-Length', bytes: head(['Host: x', 'Authorization: ' + AUTH, 'Transfer-Encoding: gzip', `Content-Length: ${BODY.length}`]) + BODY, status: 400 },
  { name: 'Content-Length then Transfer-Encoding: identity', bytes: head(['Host: x', 'Authorization: ' + AUTH, `Content-Length: ${BODY.length}`, 'Transfer-Encoding: identity']) + BODY, status: 400 },
  { name: 'Transfer-Encoding: chunked with Content-Length', bytes: head(['Host: x', 'Authorization: ' + AUTH, 'Transfer-Encoding: chunked', `Content-Length: ${BODY.length}`]) + chunked(BODY), status: 400 },
  { name: 'Content-Length then Transfer-Encoding: chunked', bytes: head(['Host: x', 'Authorization: ' + AUTH, `Content-Length: ${BODY.length}`, 'Transfer-Encoding: chunked']) + chunked(BODY), status: 400 },
  { name: 'Transfer-Encoding: chunked, chunked', bytes: head(['Host: x', 'Authorization: ' + AUTH, 'Transfer-Encoding: chunked, chunked']) + chunked(chunked(BODY)), status: 400 },
  { name: 'Transfer-Encoding: gzip alone', bytes: head(['Host: x', 'Authorization: ' + AUTH, 'Transfer-Encoding: gzip']) + BODY, status: 400 },
  { name: 'empty Transfer-Encoding', bytes: head(['Host: x', 'Authorization: ' + AUTH, 'Transfer-Encoding: ']) + BODY, status: 400 },
  { name: 'Transfer-Encoding: chunked in HTTP/1.0', bytes: head(['Host: x', 'Authorization: ' + AUTH, 'Transfer-Encoding: chunked'], 'HTTP/1.0') + chunked(BODY), status: 400 },
  { name: 'two Content-Length values that differ', bytes: head(['Host: x', 'Authorization: ' + AUTH, `Content-Length: ${BODY.length}`, `Content-Length: ${BODY.length + 1}`]) + BODY + ' ', status: 400 },
  { name: 'Transfer-Encoding: CHUNKED (case-insensitive) is served', bytes: head(['Host: x', 'Authorization: ' + AUTH, 'Transfer-Encoding: CHUNKED']) + chunked(BODY), status: 200, reaches: true },
  { name: 'chunk-size line ending in a bare LF', bytes: head(['Host: x', 'Authorization: ' + AUTH, 'Transfer-Encoding: chunked']) + chunked(BODY, (n) => `${n.toString(16)}\n`, '\n'), status: 400 },
  { name: 'chunk-size line with a bare LF, rest CRLF', bytes: head(['Host: x', 'Authorization: ' + AUTH, 'Transfer-Encoding: chunked']) + chunked(BODY, (n) => `${n.toString(16)}\n`), status: 400 },
  { name: '2 MB chunk extension', bytes: head(['Host: x', 'Authorization: ' + AUTH, 'Transfer-Encoding: chunked']) + chunked(BODY, (n) => `${n.toString(16)};x=${'a'.repeat(2 * 1024 * 1024)}\r\n`), status: 400 },
  { name: '5 KiB chunk extension', bytes: head(['Host: x', 'Authorization: ' + AUTH, 'Transfer-Encoding: chunked']) + chunked(BODY, (n) => `${n.toString(16)};x=${'a'.repeat(5 * 1024)}\r\n`), status: 400 },
  { name: 'small chunk extension is served', bytes: head(['Host: x', 'Authorization: ' + AUTH, 'Transfer-Encoding: chunked']) + chunked(BODY, (n) => `${n.toString(16)};name=value\r\n`), status: 200, reaches: true },
];

// Paths that must never reach the provider (group "pref" has the base path prefix /openai).
const badPaths = [
  '/v1/../admin',
  '/v1/%2e%2e/admin',
  '/v1/%2E%2E/admin',
  '/v1/.%2e/admin',
  '/v1/..%2fadmin',
  '/v1/..%2Fadmin',
  '/v1/../../internal/admin',
  '/v1/chat/../../../internal/admin',
  '/v1/..',
  '/v1/chat/..',
  '/v1/./chat/completions',
  '/v1/%2e/chat/completions',
  '/v1/chat%2fcompletions',
  '/v1/chat%5c..%5cadmin',
  '/v1/chat%5C..%5Cadmin',
  '/v1/chat\\..\\admin',
  '/v1/chat/completions%00',
  '/v1/chat/completions%zz',
  '/v1/chat/completions%2',
  '/v1/chat/completions%',
  '/v1/%252e%252e/admin',
  '/v1/..?x=1',
  '/v1/%2e%2e?x=/v1/chat',
  '/v1/chat/completions?x=%zz',
  '/v1/chat/completions#/../../admin',
  '/v1/..;/admin',
  '/v1/%2e%2e%3b/admin',
  '/v1/..%3Fx/admin',
  '/v1/..%3fx',
  '/v1/..%23frag/admin',
];

describe('hostile HTTP from clients', { timeout: 300000 }, () => {
  let A, gw, hidden, gonePort;
  const recs = () => A.stats().requests;

  before(async () => {
    A = await startMock();
    gonePort = await closedPort();
    const providers = [
      { group: 'pref', name: 'pref-model', base: `${A.url}/openai`, key: 'sk-provider' },
      { group: 'solo', name: 'solo-model', base: A.url, key: 'sk-provider' },
      { group: 'gone', name: 'gone-model', base: `http://127.0.0.1:${gonePort}/secret/path`, key: 'sk-provider' },
    ];
    gw = await startGateway({ config: { providers, security: [CLIENT_TOKEN] }, workers: 1 });
    hidden = await startGateway({
      config: { providers, security: [CLIENT_TOKEN], headers: { expose_routing: false } },
      workers: 1,
    });
  });
  after(async () => {
    await gw?.stop();
    await hidden?.stop();
    gw?.cleanup();
    hidden?.cleanup();
    await A?.close();
  });

  for (const row of framing) {
    test(`framing: ${row.name} -> ${row.status}`, T, async () => {
      A.reset();
      // A refused message's framing cannot be trusted: one answer, then the gateway closes
      // (nothing of the body may be read as a next request).
      const ok = row.status === 200;
      const r = await rawExchange({ port: gw.port, pieces: row.bytes, timeout: 6000, closeAfterAnswers: ok ? 1 : undefined });
      assert.ok(r.answers.length >= 1 && r.answers[0].complete, `no complete answer (timedOut=${r.timedOut}, reset=${r.reset}): ${r.raw.toString('latin1').slice(0, 300)}`);
      assert.ok(r.firstByteMs < PROMPT_MS, `answer took ${r.firstByteMs} ms`);
      const a = r.answers[0];
      if (ok) {
        assert.equal(a.status, 200, a.text);
      } else {
        assertJsonError(a, row.status, undefined, row.name);
        assert.equal(a.headers.connection, 'close', 'the connection closes after a framing error');
        assert.ok(r.closed && !r.timedOut, 'closed by the gateway');
        assert.equal(r.answers.length, 1, `the body was read as a next request: ${r.raw.toString('latin1')}`);
        assert.doesNotMatch(a.text, /invalid_json|invalid_model/, 'refused for its framing, not its body');
        assert.equal(recs().length, 0, 'a refused request must not reach the provider');
      }
      if (row.reaches) assert.equal(recs().length, 1);
      assert.doesNotMatch(gw.stderr(), /flat_buffer|too long|exception/i, 'the gateway logged a failure');
    });
  }

  // RFC 9112 section 2.2: empty lines before a request line are ignored (a client may end a
  // body with an extra CRLF); they were answered 400 and the connection closed.
  test('empty lines before a request are ignored', T, async () => {
    A.reset();
    const req = rawRequest({ headers: [['Authorization', AUTH], ['Content-Type', 'application/json']], body: BODY });
    const r = await rawExchange({ port: gw.port, pieces: '\r\n' + req + '\r\n' + req + '\r\n\n', timeout: 5000, closeAfterAnswers: 2 });
    assert.deepEqual(r.answers.map((a) => a.status), [200, 200], r.raw.toString('latin1'));
    assert.equal(recs().length, 2);
  });

  for (const p of badPaths) {
    test(`path ${JSON.stringify(p)} -> 400, never forwarded`, T, async () => {
      A.reset();
      const bytes = rawRequest({ path: p, headers: [['Authorization', AUTH], ['Content-Type', 'application/json']], body: BODY });
      const r = await rawExchange({ port: gw.port, pieces: bytes, timeout: 5000, closeAfterAnswers: 1 });
      assertJsonError(r.answers[0], 400, undefined, p);
      assert.equal(recs().length, 0, `forwarded as ${recs()[0]?.path}`);
    });
  }

  test('path: a query that looks like a path does not change the path sent upstream', T, async () => {
    A.reset();
    const r = await gwPost(gw, '/v1/chat/completions?x=/../../admin&y=%2e%2e%2f', BODY);
    assert.equal(r.status, 200, r.text);
    assert.equal(recs()[0].path, '/openai/v1/chat/completions?x=/../../admin&y=%2e%2e%2f');
  });

  test('path: dots inside a segment are not dot segments', T, async () => {
    A.reset();
    const r = await gwPost(gw, '/v1/chat/completions...x/.y/..z', BODY);
    assert.equal(recs()[0]?.path, '/openai/v1/chat/completions...x/.y/..z', r.text);
  });

  // Absolute-form targets (RFC 9112 section 3.2.2: a server must accept them) are served as
  // their path and query; the authority is ignored for routing, as Host is.
  const absolute = [
    { target: 'http://gw.example:9/v1/chat/completions?x=1', path: '/openai/v1/chat/completions?x=1' },
    { target: 'HTTPS://[::1]/v1/chat/completions', path: '/openai/v1/chat/completions' },
  ];
  for (const c of absolute) {
    test(`absolute-form ${c.target} is served as its path`, T, async () => {
      A.reset();
      const bytes = rawRequest({ path: c.target, headers: [['Authorization', AUTH], ['Content-Type', 'application/json']], body: BODY });
      const r = await rawExchange({ port: gw.port, pieces: bytes, timeout: 5000, closeAfterAnswers: 1 });
      assert.equal(r.answers[0]?.status, 200, r.raw.toString('latin1'));
      assert.equal(recs().length, 1);
      assert.equal(recs()[0].path, c.path);
      assert.equal(recs()[0].headers.host, `127.0.0.1:${A.port}`, 'the provider gets its own host');
    });
  }

  test('absolute-form without a path is the route "/"; with userinfo or a bad port it is refused', T, async () => {
    A.reset();
    const ask = (target) => `GET ${target} HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH}\r\n\r\n`;
    const next = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
    const r = await rawExchange({
      port: gw.port,
      pieces: ask('http://gw.example') + ask('http://user:pw@gw.example/v1/models') + ask('http://gw.example:x/v1/models') + next,
      timeout: 5000,
      closeAfterAnswers: 4,
    });
    assertJsonError(r.answers[0], 404, undefined, 'no path');
    assert.match(r.answers[0].text, /Unknown route \//);
    assertJsonError(r.answers[1], 400, undefined, 'userinfo');
    assert.match(r.answers[1].text, /authority must be a host and optional port, without userinfo/);
    assertJsonError(r.answers[2], 400, undefined, 'bad port');
    assert.equal(r.answers[3]?.status, 200, 'the connection stays usable');
    assert.equal(recs().length, 0);
  });

  // A Host value that is not a host[:port] (RFC 9112 section 3.2: 400).
  for (const host of ['a b', 'evil.example/admin', 'user@gw.example', 'gw:80:81', 'gw:8o', '[::1']) {
    test(`Host ${JSON.stringify(host)} -> 400, never forwarded`, T, async () => {
      A.reset();
      // A request with a body the gateway has not read: the answer closes the connection.
      const bytes = rawRequest({ host, headers: [['Authorization', AUTH], ['Content-Type', 'application/json']], body: BODY });
      const r = await rawExchange({ port: gw.port, pieces: bytes, timeout: 5000 });
      assertJsonError(r.answers[0], 400, undefined, host);
      assert.match(r.answers[0].text, /Host header is not a valid/);
      assert.equal(r.answers[0].headers.connection, 'close');
      assert.ok(r.closed && !r.timedOut, 'closed by the gateway');
      assert.equal(r.answers.length, 1);
      // Without a body, the connection stays open for the next request.
      const next = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
      const g = await rawExchange({ port: gw.port, pieces: `GET /v1/models HTTP/1.1\r\nHost: ${host}\r\nAuthorization: ${AUTH}\r\n\r\n${next}`, timeout: 5000, closeAfterAnswers: 2 });
      assertJsonError(g.answers[0], 400, undefined, host);
      assert.equal(g.answers[1]?.status, 200, g.raw.toString('latin1'));
      assert.equal(recs().length, 0, `forwarded as ${recs()[0]?.path}`);
    });
  }

  // HEAD error answers: headers only, then a second request on the same connection must parse.
  const headCases = [
    { name: 'unknown route', req: 'HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n', status: 404 },
    { name: 'no token', req: 'HEAD /v1/chat/completions HTTP/1.1\r\nHost: x\r\n\r\n', status: 401 },
    { name: 'wrong method', req: `HEAD /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH}\r\n\r\n`, status: 405 },
    { name: 'unknown model', req: `HEAD /v1/models/nope HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH}\r\n\r\n`, status: 404 },
    { name: 'bad path', req: `HEAD /v1/../x HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH}\r\n\r\n`, status: 400 },
    { name: 'health', req: 'HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n', status: 200 },
    { name: 'models', req: `HEAD /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH}\r\n\r\n`, status: 200 },
  ];
  for (const c of headCases) {
    test(`HEAD ${c.name} -> ${c.status} without a body; the next request still parses`, T, async () => {
      const next = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
      const r = await rawExchange({ port: gw.port, pieces: c.req + next, timeout: 5000, closeAfterAnswers: 2, headRequests: [0] });
      assert.equal(r.answers[0]?.status, c.status, r.raw.toString('latin1'));
      assert.ok(r.answers[0].headers['content-length'] !== undefined, 'HEAD keeps the would-be length');
      assert.equal(r.answers[1]?.status, 200, `second answer unreadable: ${JSON.stringify(r.raw.toString('latin1'))}`);
      assert.equal(r.answers[1].text, '{"status":"ok"}');
      assert.equal(r.answers.length, 2, 'no stray bytes after the answers');
    });
  }

  test('HEAD in a request head that fails to parse: no body either', T, async () => {
    const r = await rawExchange({ port: gw.port, pieces: 'HEAD /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n', timeout: 5000 });
    assert.equal(r.answers.length, 1);
    assert.equal(r.answers[0].status, 400);
    const end = r.raw.indexOf('\r\n\r\n');
    assert.equal(r.raw.length, end + 4, `body bytes after a HEAD answer: ${r.raw.toString('latin1')}`);
  });

  // Credentials and client identity headers: a request full of them, then what reached the provider.
  test('trailers of a chunked request never reach the provider as headers', T, async () => {
    A.reset();
    const bytes =
      head(['Host: x', 'Authorization: ' + AUTH, 'Content-Type: application/json', 'Transfer-Encoding: chunked', 'Trailer: X-Evil']) +
      `${BODY.length.toString(16)}\r\n${BODY}\r\n0\r\nX-Evil: injected\r\nX-Api-Key: ${CLIENT_TOKEN}\r\n\r\n`;
    const r = await rawExchange({ port: gw.port, pieces: bytes, timeout: 5000, closeAfterAnswers: 1 });
    assert.equal(r.answers[0]?.status, 200, r.raw.toString('latin1'));
    const got = recs()[0].headers;
    assert.equal(got['x-evil'], undefined, 'a trailer became a header upstream');
    assert.equal(got['x-api-key'], undefined);
    assert.equal(got.trailer, undefined);
  });

  test('client credentials, cookies and client addresses never reach the provider', T, async () => {
    A.reset();
    const headers = [
      ['Authorization', AUTH],
      ['Content-Type', 'application/json'],
      ['x-goog-api-key', CLIENT_TOKEN],
      ['X-Auth-Token', CLIENT_TOKEN],
      ['api-key', CLIENT_TOKEN],
      ['x-api-key', CLIENT_TOKEN],
      ['X-Custom-Auth', `token=${CLIENT_TOKEN};v=1`],
      ['X-Other-Secret', CLIENT_TOKEN],
      ['Cookie', 'session=abc'],
      ['Proxy-Authorization', 'Basic dXNlcjpwYXNz'],
      ['X-Forwarded-For', '203.0.113.7'],
      ['Forwarded', 'for=203.0.113.7'],
      ['X-Real-IP', '203.0.113.7'],
      ['X-Keep-Me', 'kept'],
    ];
    const r = await rawExchange({ port: gw.port, pieces: rawRequest({ headers, body: BODY }), timeout: 5000, closeAfterAnswers: 1 });
    assert.equal(r.answers[0]?.status, 200, r.raw.toString('latin1'));
    const got = recs()[0].headers;
    for (const [k, v] of Object.entries(got)) assert.ok(!String(v).includes(CLIENT_TOKEN), `client token reached the provider in ${k}: ${v}`);
    for (const h of ['x-goog-api-key', 'x-auth-token', 'api-key', 'x-api-key', 'x-custom-auth', 'x-other-secret', 'cookie', 'proxy-authorization', 'x-forwarded-for', 'forwarded', 'x-real-ip']) {
      assert.equal(got[h], undefined, `${h} reached the provider: ${got[h]}`);
    }
    assert.equal(got.authorization, 'Bearer sk-provider');
    assert.equal(got['x-keep-me'], 'kept');
  });

  test('known credential header names are dropped whatever their value', T, async () => {
    A.reset();
    const headers = { 'x-goog-api-key': 'AIza-other', 'x-auth-token': 'other', 'api-key': 'other', 'x-api-key': 'other' };
    const r = await gwPost(gw, '/v1/chat/completions', BODY, { headers });
    assert.equal(r.status, 200, r.text);
    for (const h of Object.keys(headers)) assert.equal(recs()[0].headers[h], undefined, `${h} reached the provider`);
  });

  test('x-openbridge-provider names the provider host only', T, async () => {
    for (const g of ['pref', 'solo']) {
      const r = await gwPost(gw, '/v1/chat/completions', chatBody(g));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers['x-openbridge-provider'], `127.0.0.1:${A.port}`, g);
      assert.equal(r.headers['x-openbridge-model'], `${g}-model`);
      assert.equal(r.headers['x-openbridge-attempts'], '1');
    }
  });

  test('a gateway 502 names the last provider by host only', T, async () => {
    const r = await gwPost(gw, '/v1/chat/completions', chatBody('gone'));
    assert.equal(r.status, 502, r.text);
    assert.equal(r.headers['x-openbridge-provider'], `127.0.0.1:${gonePort}`);
    assert.equal(r.headers['x-openbridge-attempts'], '1');
  });

  test('headers.expose_routing=false hides every x-openbridge-* header (buffered, streamed, 502)', T, async () => {
    for (const [group, stream, status] of [['pref', false, 200], ['pref', true, 200], ['gone', false, 502]]) {
      const r = await gwPost(hidden, '/v1/chat/completions', chatBody(group, { stream }));
      assert.equal(r.status, status, r.text);
      const names = Object.keys(r.headers).filter((h) => h.startsWith('x-openbridge-'));
      assert.deepEqual(names, [], `stream=${stream}`);
    }
  });
});
