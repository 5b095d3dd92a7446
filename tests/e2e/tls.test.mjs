// End-to-end: HTTPS providers, verified against SSL_CERT_FILE (a throwaway CA), with upstream
// session resumption; and the gateway's own TLS listener ("tls") with real clients: curl, the
// openai SDK, openssl s_client, certificate reload under load, client certificates.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import tls from 'node:tls';
import OpenAI from 'openai';
import { startMock, answerText } from '../../tools/mock-provider/server.js';
import { startGateway, freePort, runBin } from './lib/gateway.mjs';
import { request, waitFor, parseSSE } from './lib/http.mjs';
import { makeTestCA } from './lib/tls.mjs';
import { attachStrace } from './lib/strace.mjs';
import { CLIENT_TOKEN, chatBody, gwPost, assertError, accessLines } from './lib/common.mjs';

const T = { timeout: 30000 };

describe('HTTPS providers', { timeout: 120000 }, () => {
  let ca, M, config;
  before(async () => {
    ca = makeTestCA();
    M = await startMock({ tls: { cert: ca.certPem, key: ca.keyPem } });
    config = {
      providers: [
        { group: 'secure', name: 'secure-model', base: `https://127.0.0.1:${M.port}`, key: 'sk-tls' },
        { group: 'named', name: 'named-model', base: `https://localhost:${M.port}`, key: 'sk-tls' },
        { group: 'tinytls', name: 'tiny-tls-model', base: `https://127.0.0.1:${M.port}/mode/tiny`, key: 'sk-tls' },
      ],
      security: [CLIENT_TOKEN],
      timeouts: { connect: 3, first_byte: 5 },
    };
  });
  after(async () => {
    await M?.close();
    ca?.cleanup();
  });

  test('with SSL_CERT_FILE=<test CA>: requests work (IP and host name), keep-alive reuses TLS connections', T, async () => {
    const gw = await startGateway({ config, env: { SSL_CERT_FILE: ca.caCert, SSL_CERT_DIR: undefined } });
    try {
      M.reset();
      for (let i = 0; i < 5; i++) {
        const r = await gwPost(gw, '/v1/chat/completions', chatBody('secure'));
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json().model, 'secure');
        assert.equal(r.json().choices[0].message.content, answerText('secure-model'));
      }
      const s = M.stats();
      assert.equal(s.requests.length, 5);
      assert.equal(s.requests[0].headers.authorization, 'Bearer sk-tls');
      assert.ok(s.connections <= 2, `5 requests opened ${s.connections} TLS connections`);
      const n = await gwPost(gw, '/v1/chat/completions', chatBody('named'));
      assert.equal(n.status, 200, `https://localhost base: ${n.text}`);
      assert.equal(n.json().model, 'named');
      const t = await gwPost(gw, '/v1/chat/completions', chatBody('tinytls'));
      assert.equal(t.status, 200, t.text);
      assert.equal(t.text, M.stats().requests.at(-1).response_body.replace('"model":"tiny-tls-model"', '"model":"tinytls"'));
    } finally {
      const r = await gw.stop();
      gw.cleanup();
      assert.deepEqual(r, { code: 0, signal: null });
    }
  });

  test('without the CA: the certificate is not trusted -> 502, nothing sent', T, async () => {
    const gw = await startGateway({ config, env: { SSL_CERT_FILE: undefined, SSL_CERT_DIR: undefined } });
    try {
      M.reset();
      const r = await gwPost(gw, '/v1/chat/completions', chatBody('secure'), { timeout: 15000 });
      assertError(r, 502, {}, 'untrusted upstream certificate');
      assert.equal(M.stats().requests.length, 0, 'no request may be sent over an unverified connection');
    } finally {
      const r = await gw.stop();
      gw.cleanup();
      assert.deepEqual(r, { code: 0, signal: null });
    }
  });
});

// The provider's certificate must name the host of the base URL (a DNS name, or an address
// literal against the IP entries), whatever the CA: each case is a mock with a certificate from
// the trusted test CA for other names. A refused one gets a 502 and no request goes out.
const HOST_CHECK_CASES = [
  { name: 'address base, certificate for a DNS name only', san: 'DNS:other.example', cn: 'other.example', host: '127.0.0.1', status: 502 },
  { name: 'address base, certificate for another address', san: 'IP:127.0.0.2', cn: 'other.example', host: '127.0.0.1', status: 502 },
  { name: 'name base, certificate for another name', san: 'DNS:other.example,IP:127.0.0.1', cn: 'other.example', host: 'localhost', status: 502 },
  { name: 'name base, wildcard for another domain', san: 'DNS:*.example.com', cn: 'other.example', host: 'localhost', status: 502 },
  { name: 'address base, certificate for that address only', san: 'IP:127.0.0.1', cn: 'other.example', host: '127.0.0.1', status: 200 },
  { name: 'name base, certificate for that name only', san: 'DNS:localhost', cn: 'other.example', host: 'localhost', status: 200 },
];

describe('HTTPS providers: the certificate must name the host', { timeout: 120000 }, () => {
  let ca;
  before(() => {
    ca = makeTestCA();
  });
  after(() => ca?.cleanup());

  for (const [i, c] of HOST_CHECK_CASES.entries()) {
    test(`${c.name} -> ${c.status}`, T, async () => {
      const leaf = ca.issue(`host-check-${i}`, { san: c.san, cn: c.cn });
      const M = await startMock({ tls: { cert: leaf.certPem, key: leaf.keyPem } });
      const gw = await startGateway({
        config: {
          providers: [{ group: 'g', name: 'm', base: `https://${c.host}:${M.port}`, key: 'sk-tls' }],
          security: [CLIENT_TOKEN],
          timeouts: { connect: 3, first_byte: 5 },
        },
        env: { SSL_CERT_FILE: ca.caCert, SSL_CERT_DIR: undefined },
      });
      try {
        const r = await gwPost(gw, '/v1/chat/completions', chatBody('g'), { timeout: 15000 });
        if (c.status === 200) {
          assert.equal(r.status, 200, r.text);
          assert.equal(r.json().choices[0].message.content, answerText('m'));
          assert.equal(M.stats().requests.length, 1);
        } else {
          assertError(r, c.status, {}, c.name);
          assert.equal(M.stats().requests.length, 0, 'no request may be sent to a provider whose certificate names another host');
        }
      } finally {
        const r = await gw.stop();
        gw.cleanup();
        await M.close();
        assert.deepEqual(r, { code: 0, signal: null });
      }
    });
  }
});

// openai SDK over HTTPS: its fetch goes through an https.Agent that trusts the test CA.
function fetchWithCA(ca) {
  const agent = new https.Agent({ ca, keepAlive: true });
  return (url, init = {}) =>
    new Promise((resolve, reject) => {
      const req = https.request(String(url), { method: init.method ?? 'GET', headers: Object.fromEntries(new Headers(init.headers)), agent, signal: init.signal }, (res) => {
        const headers = new Headers();
        for (const [k, v] of Object.entries(res.headers)) headers.set(k, Array.isArray(v) ? v.join(', ') : String(v));
        resolve(new Response(Readable.toWeb(res), { status: res.statusCode, headers }));
      });
      req.on('error', reject);
      req.end(init.body ?? undefined);
    });
}

function run(cmd, args, { input = '', timeout = 10000 } = {}) {
  return new Promise((resolve) => {
    const p = execFile(cmd, args, { timeout, encoding: 'utf8' }, (error, stdout, stderr) => resolve({ code: error ? (error.code ?? 1) : 0, stdout, stderr }));
    p.stdin.end(input);
  });
}

// The serial of the certificate a new TLS handshake with the listener presents.
function peerSerial(port, ca) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', ca, servername: 'localhost' }, () => {
      const serial = s.getPeerCertificate().serialNumber.toUpperCase();
      s.destroy();
      resolve(serial);
    });
    s.setTimeout(5000, () => s.destroy(new Error('handshake timed out')));
    s.on('error', reject);
  });
}

// Replaces a file by rename, as deployment tools do.
function replaceFile(file, text) {
  const tmp = `${file}.${process.hrtime.bigint()}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

async function startTlsGateway({ ca, files, upstream, extraTls = {}, timeouts = {}, workers = 2 }) {
  const tlsPort = await freePort();
  const gw = await startGateway({
    workers,
    config: {
      providers: [{ group: 'g', name: 'm', base: upstream, key: 'sk-up' }],
      security: [CLIENT_TOKEN],
      timeouts,
      tls: { listen: `127.0.0.1:${tlsPort}`, cert: files.cert, key: files.key, ...extraTls },
    },
  });
  await waitFor(() => /listening with TLS on/.test(gw.stderr()), { what: 'the TLS listener', timeout: 5000 }).catch((e) => {
    throw new Error(`${e.message}\n${gw.stderr()}`);
  });
  gw.tlsPort = tlsPort;
  gw.tlsUrl = `https://127.0.0.1:${tlsPort}`;
  return gw;
}

async function stopGateway(gw) {
  if (!gw) return;
  const r = await gw.stop();
  gw.cleanup();
  assert.deepEqual(r, { code: 0, signal: null });
}

describe('TLS listener', { timeout: 180000 }, () => {
  let ca, M, gw, files;
  const tgw = () => ({ url: gw.tlsUrl });
  before(async () => {
    ca = makeTestCA();
    M = await startMock();
    // The gateway's files are copies, so the tests can replace them.
    files = { cert: path.join(ca.dir, 'gw-cert.pem'), key: path.join(ca.dir, 'gw-key.pem') };
    fs.writeFileSync(files.cert, ca.certPem);
    fs.writeFileSync(files.key, ca.keyPem);
    gw = await startTlsGateway({ ca, files, upstream: M.url });
  });
  after(async () => {
    await stopGateway(gw);
    await M?.close();
    ca?.cleanup();
  });

  test('curl --http1.1 over HTTPS with the test CA: ALPN http/1.1, models, chat, errors as over plain HTTP', T, async () => {
    // --http1.1: curl offers h2 first otherwise, which the listener takes (http2.test.mjs).
    const base = ['-sS', '--http1.1', '--cacert', ca.caCert, '-H', `authorization: Bearer ${CLIENT_TOKEN}`, '--max-time', '10'];
    const chat = await run('curl', [...base, '-v', '-H', 'content-type: application/json', '-d', chatBody('g'), '-w', '\n%{http_code} %{http_version} %{ssl_verify_result}', `${gw.tlsUrl}/v1/chat/completions`]);
    assert.equal(chat.code, 0, chat.stderr);
    const [body, tail] = chat.stdout.split('\n');
    assert.equal(tail, '200 1.1 0');
    assert.equal(JSON.parse(body).model, 'g');
    assert.equal(JSON.parse(body).choices[0].message.content, answerText('m'));
    assert.match(chat.stderr, /ALPN.*accepted.*http\/1\.1/i);
    const models = await run('curl', [...base, `https://localhost:${gw.tlsPort}/v1/models`]);
    assert.equal(JSON.parse(models.stdout).data[0].id, 'g');
    // Errors keep their OpenAI shape over TLS.
    const bad = await request({ url: `${gw.tlsUrl}/v1/chat/completions`, method: 'POST', ca: ca.caCertPem, headers: { authorization: `Bearer ${CLIENT_TOKEN}`, 'content-type': 'application/json' }, body: '{"model":' });
    assertError(bad, 400, { code: 'invalid_json' }, 'broken JSON over TLS');
    const anon = await request({ url: `${gw.tlsUrl}/v1/models`, ca: ca.caCertPem });
    assertError(anon, 401, {}, 'no token over TLS');
    // The access log names the request like any other.
    await waitFor(() => accessLines(gw).some((l) => l.path === '/v1/chat/completions' && l.status === '200' && l.group === 'g'), { what: 'access line' }).catch((e) => {
      throw new Error(`${e.message}\n${gw.stderr()}`);
    });
  });

  test('openai SDK over HTTPS: chat, and a stream whose events all arrive', T, async () => {
    const client = new OpenAI({ baseURL: `${gw.tlsUrl}/v1`, apiKey: CLIENT_TOKEN, maxRetries: 0, timeout: 10000, fetch: fetchWithCA(ca.caCertPem) });
    const c = await client.chat.completions.create({ model: 'g', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(c.model, 'g');
    assert.equal(c.choices[0].message.content, answerText('m'));
    const stream = await client.chat.completions.create({ model: 'g', messages: [{ role: 'user', content: 'hi' }], stream: true });
    let text = '';
    let n = 0;
    for await (const chunk of stream) {
      n++;
      assert.equal(chunk.model, 'g');
      text += chunk.choices[0]?.delta?.content ?? '';
    }
    assert.ok(n > 2, `only ${n} chunks`);
    assert.equal(text, answerText('m'));
  });

  test('streaming over TLS: SSE framing and [DONE] as over plain HTTP', T, async () => {
    const opts = { method: 'POST', headers: { authorization: `Bearer ${CLIENT_TOKEN}`, 'content-type': 'application/json' }, body: chatBody('g', { stream: true }) };
    const plain = await request({ url: `${gw.url}/v1/chat/completions`, ...opts });
    const secure = await request({ url: `${gw.tlsUrl}/v1/chat/completions`, ca: ca.caCertPem, ...opts });
    assert.equal(secure.status, 200);
    assert.match(secure.headers['content-type'], /text\/event-stream/);
    const a = parseSSE(plain.text).events.map((e) => e.data.replace(/"id":"[^"]*"|"created":\d+/g, ''));
    const b = parseSSE(secure.text).events.map((e) => e.data.replace(/"id":"[^"]*"|"created":\d+/g, ''));
    assert.deepEqual(b, a);
    assert.equal(b.at(-1), '[DONE]');
  });

  test('protocol versions: TLS 1.1 and weak suites are refused, TLS 1.2 and 1.3 succeed', T, async () => {
    const connect = ['s_client', '-connect', `127.0.0.1:${gw.tlsPort}`, '-CAfile', ca.caCert, '-servername', 'localhost'];
    const old = await run('openssl', [...connect, '-tls1_1']);
    assert.doesNotMatch(old.stdout, /^New, TLSv1\.1/m, 'TLS 1.1 must not be negotiated');
    assert.notEqual(old.code, 0);
    for (const v of ['1_2', '1_3']) {
      const r = await run('openssl', [...connect, `-tls${v}`, '-alpn', 'http/1.1']);
      assert.match(r.stdout, new RegExp(`^New, TLSv${v.replace('_', '\\.')}`, 'm'), r.stdout + r.stderr);
      assert.match(r.stdout, /ALPN protocol: http\/1\.1/);
      assert.match(r.stdout, /Verify return code: 0 \(ok\)/);
    }
    const weak = await run('openssl', [...connect, '-tls1_2', '-cipher', 'AES128-SHA']);
    assert.doesNotMatch(weak.stdout, /^New, TLSv1\.2/m, 'a suite without forward secrecy must be refused');
  });

  test('a head that stalls after the handshake gets its 408 (stalled handshakes: hostile_tls.test.mjs)', T, async () => {
    const g2 = await startTlsGateway({ ca, files, upstream: M.url, timeouts: { client_header: 1 }, workers: 1 });
    try {
      // After the handshake, a head that stalls gets its 408 over TLS, as over plain HTTP.
      const answer = await new Promise((resolve, reject) => {
        const s = tls.connect({ port: g2.tlsPort, host: '127.0.0.1', ca: ca.caCertPem, servername: 'localhost' }, () => s.write('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n'));
        let got = '';
        s.on('data', (d) => (got += d));
        s.on('error', () => {});
        s.on('close', () => resolve(got));
        setTimeout(() => {
          s.destroy();
          reject(new Error(`no answer within 6 s: ${got}`));
        }, 6000);
      });
      assert.match(answer, /^HTTP\/1\.1 408 /);
      assert.match(answer, /"The request head did not arrive in time\."/);
      // The listener still serves.
      const r = await request({ url: `${g2.tlsUrl}/healthz`, ca: ca.caCertPem });
      assert.equal(r.status, 200);
    } finally {
      await stopGateway(g2);
    }
  });

  test('certificate swap under load: no request fails, new handshakes show the new serial', { timeout: 60000 }, async () => {
    assert.equal(await peerSerial(gw.tlsPort, ca.caCertPem), ca.serial, 'before the swap');
    const next = ca.issue('swap');
    assert.notEqual(next.serial, ca.serial);
    // One keep-alive connection established before the swap keeps working after it.
    const agent = new https.Agent({ ca: ca.caCertPem, keepAlive: true, maxSockets: 1 });
    const held = await request({ url: `${gw.tlsUrl}/healthz`, ca: ca.caCertPem, agent });
    assert.equal(held.status, 200);
    let ok = 0;
    const failures = [];
    let stop = false;
    const deadline = Date.now() + 20000;
    const loop = async () => {
      // A new connection (and handshake) per request: agent false.
      for (let i = 0; i < 2000 && !stop && Date.now() < deadline; i++) {
        try {
          const r = await request({ url: `${gw.tlsUrl}/v1/chat/completions`, method: 'POST', ca: ca.caCertPem, timeout: 5000, headers: { authorization: `Bearer ${CLIENT_TOKEN}`, 'content-type': 'application/json' }, body: chatBody('g') });
          if (r.status === 200) ok++;
          else failures.push(`${r.status} ${r.text.slice(0, 100)}`);
        } catch (e) {
          failures.push(e.message);
        }
      }
    };
    const loops = [loop(), loop(), loop()];
    await waitFor(() => ok >= 30, { what: '30 requests before the swap', timeout: 10000 });
    const before = ok;
    replaceFile(files.key, next.keyPem);
    replaceFile(files.cert, next.certPem);
    gw.sighup();
    await waitFor(() => new RegExp(`TLS certificate reloaded \\(SIGHUP\\): serial ${next.serial}`).test(gw.stderr()), { what: 'the reload log line', timeout: 10000 });
    const afterReload = ok;
    await waitFor(() => ok >= afterReload + 30, { what: '30 requests after the swap', timeout: 10000 });
    stop = true;
    await Promise.all(loops);
    assert.deepEqual(failures, [], `${failures.length} failed requests`);
    assert.ok(before >= 30 && ok >= before + 30, `requests: ${before} before, ${ok} in all`);
    assert.equal(await peerSerial(gw.tlsPort, ca.caCertPem), next.serial, 'a new handshake presents the new certificate');
    const again = await request({ url: `${gw.tlsUrl}/healthz`, ca: ca.caCertPem, agent });
    assert.equal(again.status, 200, 'the connection opened before the swap still serves');
    agent.destroy();
    // Restore the first pair for the next tests.
    replaceFile(files.key, ca.keyPem);
    replaceFile(files.cert, ca.certPem);
    gw.sighup();
    await waitFor(async () => (await peerSerial(gw.tlsPort, ca.caCertPem)) === ca.serial, { what: 'the first certificate back', timeout: 10000 });
  });

  test('a broken pair is refused with a clear log line and the old one keeps serving', { timeout: 60000 }, async () => {
    const other = ca.issue('other');
    const cases = [
      { name: 'mismatched key', write: () => replaceFile(files.key, other.keyPem), log: /TLS certificate reload refused \(SIGHUP\): tls\.key: .*(does not match|not a PEM private key)/, restore: () => replaceFile(files.key, ca.keyPem) },
      { name: 'unreadable certificate', write: () => fs.rmSync(files.cert), log: /TLS certificate reload refused \(SIGHUP\): tls\.cert: cannot read ".*gw-cert\.pem": No such file/, restore: () => fs.writeFileSync(files.cert, ca.certPem) },
      { name: 'not a certificate', write: () => replaceFile(files.cert, 'hello\n'), log: /TLS certificate reload refused \(SIGHUP\): tls\.cert: ".*" is not a PEM certificate/, restore: () => replaceFile(files.cert, ca.certPem) },
    ];
    for (const c of cases) {
      const mark = gw.stderrLines.length;
      c.write();
      gw.sighup();
      await waitFor(() => gw.stderrLines.slice(mark).some((l) => c.log.test(l)), { what: `${c.name}: refusal line`, timeout: 10000 }).catch((e) => {
        throw new Error(`${e.message}\n${gw.stderrLines.slice(mark).join('\n')}`);
      });
      const line = gw.stderrLines.slice(mark).find((l) => c.log.test(l));
      assert.match(line, new RegExp(`keeping the certificate in use \\(serial ${ca.serial}`), line);
      assert.equal(await peerSerial(gw.tlsPort, ca.caCertPem), ca.serial, `${c.name}: the old certificate still serves`);
      const r = await request({ url: `${gw.tlsUrl}/v1/models`, ca: ca.caCertPem, headers: { authorization: `Bearer ${CLIENT_TOKEN}` } });
      assert.equal(r.status, 200, c.name);
      c.restore();
    }
    gw.sighup();
    await waitFor(() => /TLS certificate reloaded \(SIGHUP\)/.test(gw.stderrLines.at(-1) ?? '') || gw.stderrLines.slice(-5).some((l) => /TLS certificate reloaded/.test(l)), { what: 'restored', timeout: 10000 });
  });

  test('a certificate file replaced on disk is picked up without a signal', { timeout: 30000 }, async () => {
    const next = ca.issue('watched');
    replaceFile(files.key, next.keyPem);
    replaceFile(files.cert, next.certPem);
    await waitFor(async () => (await peerSerial(gw.tlsPort, ca.caCertPem)) === next.serial, { what: 'the new certificate', timeout: 10000 });
    replaceFile(files.key, ca.keyPem);
    replaceFile(files.cert, ca.certPem);
    await waitFor(async () => (await peerSerial(gw.tlsPort, ca.caCertPem)) === ca.serial, { what: 'the first certificate back', timeout: 10000 });
  });

  test('client_ca: a client without a certificate fails the handshake, one with a certificate is served', T, async () => {
    const client = ca.issue('client', { client: true });
    const g2 = await startTlsGateway({ ca, files, upstream: M.url, extraTls: { client_ca: ca.caCert }, workers: 1 });
    try {
      const opts = { url: `${g2.tlsUrl}/v1/models`, ca: ca.caCertPem, headers: { authorization: `Bearer ${CLIENT_TOKEN}` }, timeout: 5000 };
      await assert.rejects(request(opts), (e) => /certificate|alert|ECONNRESET|socket hang up/i.test(`${e.code} ${e.message}`));
      const curl = await run('curl', ['-sS', '--cacert', ca.caCert, '--max-time', '5', `${g2.tlsUrl}/healthz`]);
      assert.notEqual(curl.code, 0, 'curl without a client certificate must fail');
      const ok = await request({ ...opts, agent: new https.Agent({ ca: ca.caCertPem, cert: client.certPem, key: client.keyPem }) });
      assert.equal(ok.status, 200);
      assert.equal(ok.json().data[0].id, 'g');
      const withCurl = await run('curl', ['-sS', '--cacert', ca.caCert, '--cert', client.cert, '--key', client.key, '--max-time', '5', `${g2.tlsUrl}/healthz`]);
      assert.equal(withCurl.stdout, '{"status":"ok"}');
    } finally {
      await stopGateway(g2);
    }
  });

  test('client_ca: a session resumes across a reload that keeps the client CA, not across one that replaces it (TLS 1.2 and 1.3)', { timeout: 60000 }, async () => {
    // A resumption does not ask for the client certificate again: a session made under the old
    // client CA must not be resumed once another one is in force, or revoking a CA would leave
    // every client holding a ticket in. Files of its own: the server certificate is renewed.
    const other = makeTestCA();
    const client = ca.issue('resumer', { client: true });
    const own = { cert: path.join(ca.dir, 'resume-cert.pem'), key: path.join(ca.dir, 'resume-key.pem') };
    fs.writeFileSync(own.cert, ca.certPem);
    fs.writeFileSync(own.key, ca.keyPem);
    const clientCa = path.join(ca.dir, 'resume-client-ca.pem');
    fs.writeFileSync(clientCa, ca.caCertPem);
    const g2 = await startTlsGateway({ ca, files: own, upstream: M.url, extraTls: { client_ca: clientCa }, workers: 1 });
    const head = `GET /v1/models HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${CLIENT_TOKEN}\r\nConnection: close\r\n\r\n`;
    const sclient = async (version, args) => {
      const r = await run('openssl', ['s_client', '-connect', `127.0.0.1:${g2.tlsPort}`, '-CAfile', ca.caCert, '-servername', 'localhost', '-alpn', 'http/1.1', `-tls${version}`, '-ign_eof', ...args], { input: head });
      const out = r.stdout + r.stderr;
      // Not anchored: s_client's session print-out and the answer share stdout, interleaved.
      return { reused: /Reused, TLSv/.test(out), status: /HTTP\/1\.1 (\d{3}) /.exec(out)?.[1] ?? 'none', out };
    };
    const reloaded = async (serial) => {
      const mark = g2.stderrLines.length;
      g2.sighup();
      await waitFor(() => g2.stderrLines.slice(mark).some((l) => new RegExp(`TLS certificate reloaded \\(SIGHUP\\): serial ${serial}`).test(l)), { what: 'the reload line', timeout: 10000 });
    };
    const versions = ['1_2', '1_3'];
    const sess = Object.fromEntries(versions.map((v) => [v, path.join(ca.dir, `resume-${v}.sess`)]));
    try {
      for (const v of versions) {
        const first = await sclient(v, ['-cert', client.cert, '-key', client.key, '-sess_out', sess[v]]);
        assert.deepEqual([first.reused, first.status], [false, '200'], `TLS ${v}, with the client certificate: ${first.out}`);
      }
      // A server certificate renewal, the client CA unchanged: the sessions still resume.
      const renewed = ca.issue('renewed');
      replaceFile(own.key, renewed.keyPem);
      replaceFile(own.cert, renewed.certPem);
      await reloaded(renewed.serial);
      for (const v of versions) {
        const again = await sclient(v, ['-sess_in', sess[v]]);
        assert.deepEqual([again.reused, again.status], [true, '200'], `TLS ${v}, resumed after a renewal: ${again.out}`);
      }
      // The client CA replaced by another (the first revoked): no session from before resumes,
      // and a client without a certificate from the new CA is not served.
      replaceFile(clientCa, other.caCertPem);
      await reloaded(renewed.serial);
      for (const v of versions) {
        const revoked = await sclient(v, ['-sess_in', sess[v]]);
        assert.deepEqual([revoked.reused, revoked.status], [false, 'none'], `TLS ${v}, old session after the client CA changed: ${revoked.out}`);
      }
    } finally {
      await stopGateway(g2);
      other.cleanup();
    }
  });
});

describe('TLS listener start-up refusals', { timeout: 60000 }, () => {
  test('an unusable pair or a port shared with the plain listener stops the start with a clear line', T, async () => {
    const ca = makeTestCA();
    const other = ca.issue('other');
    const port = await freePort();
    const other443 = `127.0.0.1:${await freePort()}`;
    const cfgFile = path.join(ca.dir, 'gw.json');
    const cases = [
      { name: 'missing certificate', tls: { listen: other443, cert: path.join(ca.dir, 'nope.pem'), key: ca.key }, expect: /cannot start: tls\.cert: cannot read ".*nope\.pem": No such file/ },
      { name: 'mismatched key', tls: { listen: other443, cert: ca.cert, key: other.key }, expect: /cannot start: tls\.key: / },
      { name: 'key file is a certificate', tls: { listen: other443, cert: ca.cert, key: ca.cert }, expect: /cannot start: tls\.key: ".*" is not a PEM private key/ },
      { name: 'same port as --listen', tls: { listen: `127.0.0.1:${port}`, cert: ca.cert, key: ca.key }, expect: /cannot start: tls\.listen 127\.0\.0\.1:\d+ is the plain listener's address too/ },
    ];
    try {
      for (const c of cases) {
        fs.writeFileSync(cfgFile, JSON.stringify({ providers: [{ group: 'g', name: 'm', base: 'http://127.0.0.1:1', key: 'k' }], security: [CLIENT_TOKEN], admin: false, tls: c.tls }));
        const r = runBin(['--config', cfgFile, '--listen', `127.0.0.1:${port}`, '--workers', '1'], { timeout: 10000 });
        assert.equal(r.code, 1, `${c.name}: exit ${r.code} ${r.signal}\n${r.stderr}`);
        assert.match(r.stderr, c.expect, c.name);
        assert.doesNotMatch(r.stderr, /listening/, c.name);
      }
    } finally {
      ca.cleanup();
    }
  });
});

describe('upstream TLS session resumption', { timeout: 60000 }, () => {
  test('the second new connection to the same TLS origin resumes the session', T, async () => {
    const ca = makeTestCA();
    const M = await startMock({ tls: { cert: ca.certPem, key: ca.keyPem } });
    // Connection: close on every answer: each request needs a new provider connection.
    const gw = await startGateway({
      workers: 1,
      config: { providers: [{ group: 'g', name: 'm', base: `https://127.0.0.1:${M.port}/mode/close`, key: 'k' }], security: [CLIENT_TOKEN] },
      env: { SSL_CERT_FILE: ca.caCert, SSL_CERT_DIR: undefined },
    });
    try {
      for (let i = 0; i < 4; i++) {
        const r = await gwPost(gw, '/v1/chat/completions', chatBody('g'));
        assert.equal(r.status, 200, r.text);
      }
      const hs = M.stats().tls_handshakes;
      assert.equal(hs.length, 4, 'one handshake per request');
      assert.deepEqual(hs.map((h) => h.resumed), [false, true, true, true]);
      const m = await request({ url: `${gw.adminUrl}/metrics` });
      assert.match(m.text, /^openbridge_upstream_tls_handshakes_total\{resumed="false"\} 1$/m);
      assert.match(m.text, /^openbridge_upstream_tls_handshakes_total\{resumed="true"\} 3$/m);
    } finally {
      await stopGateway(gw);
      await M.close();
      ca.cleanup();
    }
  });
});

// How the gateway ends TLS connections it decides to close: with a close_notify alert, then
// the TCP FIN (a client then sees an orderly end, not a truncation, and a proxy in front an
// orderly end, not a reset). Checked on the wire: a relay between client and gateway records
// the server's bytes and how its side of the relay ended; over TLS 1.2 an alert is a record of
// content type 21 (TLS 1.3 hides record types).
function tlsRecordTypes(bytes) {
  const types = [];
  for (let i = 0; i + 5 <= bytes.length; ) {
    types.push(bytes[i]);
    i += 5 + bytes.readUInt16BE(i + 3);
  }
  return types;
}

// A TCP relay to `port` that keeps, per connection (relay.seen[i]), what the server sent
// (bytes), whether its FIN came (serverEnded) and any error before it (serverError: a reset),
// and `gone`, a promise of the server side's close. The server side is watched until the
// server ends it: the client's close does not cut it (the client closes as soon as it reads the
// alert, and the FIN behind it may still be on its way). A server that never ends it is cut
// by close().
async function startRelay(port) {
  const seen = [];
  const ups = new Set();
  const server = net.createServer((c) => {
    const rec = { bytes: Buffer.alloc(0), serverEnded: false, serverError: null };
    const up = net.connect({ port, host: '127.0.0.1' });
    ups.add(up);
    rec.gone = new Promise((resolve) => up.on('close', resolve));
    seen.push(rec);
    c.on('data', (d) => up.write(d));
    up.on('data', (d) => {
      rec.bytes = Buffer.concat([rec.bytes, d]);
      c.write(d);
    });
    up.on('end', () => {
      rec.serverEnded = true;
      c.end();
    });
    c.on('end', () => up.end());
    c.on('error', () => c.destroy());
    up.on('error', (e) => {
      if (!rec.serverEnded) rec.serverError = e.code ?? e.message;
      c.destroy();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    seen,
    close: () => {
      for (const up of ups) up.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

// Resolves with what `p` resolves to, or rejects with `what` after `ms`.
function within(p, ms, what) {
  let timer;
  const late = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(what())), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

// One request through the relay over TLS 1.2, then the client reads until the connection
// ends: its text and its error, and the relay's record of the gateway's side once that is
// closed too (within `ms` in all).
async function exchangeThenEnd(relay, ca, request, { ms = 8000, onData = () => {} } = {}) {
  const t0 = performance.now();
  let s;
  const out = await within(
    new Promise((resolve) => {
      s = tls.connect({ port: relay.port, host: '127.0.0.1', ca: ca.caCertPem, servername: 'localhost', maxVersion: 'TLSv1.2' }, () => s.write(request));
      let text = '';
      let errored = null;
      s.setEncoding('latin1');
      s.on('data', (d) => {
        text += d;
        onData(text);
      });
      s.on('error', (e) => (errored = e));
      s.on('close', () => resolve({ text, errored }));
    }),
    ms,
    () => `the client's connection still open after ${ms} ms`,
  ).finally(() => s?.destroy());
  const rec = relay.seen[0];
  await within(rec.gone, Math.max(0, ms - (performance.now() - t0)), () => `the gateway's side of the relay still open after ${ms} ms`);
  return { ...out, rec };
}

// The gateway ended the connection as it should: a 200, no client error, a FIN (not a reset)
// behind an alert.
function assertOrderlyEnd({ text, errored, rec }) {
  assert.match(text, /^HTTP\/1\.1 200 /);
  assert.equal(errored, null, `client error: ${errored?.code} ${errored?.message}`);
  assert.equal(rec.serverError, null, 'the gateway reset the connection instead of ending it with a FIN');
  assert.ok(rec.serverEnded, 'the gateway ended the connection');
  const types = tlsRecordTypes(rec.bytes);
  assert.equal(types.at(-1), 21, `the last record the gateway sent is not an alert: types ${types.join(',')}`);
}

const closeCases = [
  { name: 'idle past timeouts.keepalive', request: 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', ends: 'by_itself' },
  { name: 'the answer to a Connection: close request', request: 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', ends: 'by_itself' },
  { name: 'an idle keep-alive connection at shutdown (drain)', request: 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', ends: 'drain' },
];

describe('TLS listener: closing', { timeout: 120000 }, () => {
  let ca, M;
  before(async () => {
    ca = makeTestCA();
    M = await startMock();
  });
  after(async () => {
    await M?.close();
    ca?.cleanup();
  });

  test('an idle HTTP/2 connection past timeouts.keepalive: GOAWAY, then close_notify before the FIN', T, async () => {
    const gw = await startTlsGateway({ ca, files: ca, upstream: M.url, timeouts: { keepalive: 1 }, workers: 1 });
    const relay = await startRelay(gw.tlsPort);
    let session;
    try {
      const t0 = performance.now();
      session = http2.connect(`https://localhost:${relay.port}`, {
        createConnection: () => tls.connect({ port: relay.port, host: '127.0.0.1', ca: ca.caCertPem, servername: 'localhost', maxVersion: 'TLSv1.2', ALPNProtocols: ['h2'] }),
      });
      let errored = null;
      session.on('error', (e) => (errored = e));
      const goaway = new Promise((resolve) => session.once('goaway', (code) => resolve(code)));
      const closed = new Promise((resolve) => session.once('close', resolve));
      const status = await within(
        new Promise((resolve, reject) => {
          const req = session.request({ ':path': '/healthz' });
          req.on('response', (h) => resolve(h[':status']));
          req.on('error', reject);
          req.resume();
          req.end();
        }),
        5000,
        () => 'no answer to GET /healthz over HTTP/2',
      );
      assert.equal(status, 200);
      assert.equal(await within(goaway, 8000, () => 'no GOAWAY within 8 s'), http2.constants.NGHTTP2_NO_ERROR);
      await within(closed, 8000, () => 'the HTTP/2 session still open 8 s after its GOAWAY');
      const rec = relay.seen[0];
      await within(rec.gone, Math.max(0, 16000 - (performance.now() - t0)), () => "the gateway's side of the relay still open");
      assert.equal(errored, null, `client error: ${errored?.code} ${errored?.message}`);
      assert.equal(rec.serverError, null, 'the gateway reset the connection instead of ending it with a FIN');
      assert.ok(rec.serverEnded, 'the gateway ended the connection');
      const types = tlsRecordTypes(rec.bytes);
      assert.equal(types.at(-1), 21, `the last record the gateway sent is not an alert (close_notify): types ${types.join(',')}`);
    } finally {
      session?.destroy();
      await relay.close();
      await stopGateway(gw);
    }
  });

  for (const c of closeCases) {
    test(`${c.name}: close_notify before the FIN, the client sees a clean end`, T, async () => {
      const gw = await startTlsGateway({ ca, files: ca, upstream: M.url, timeouts: { keepalive: 1 }, workers: 1 });
      const relay = await startRelay(gw.tlsPort);
      let stopped = null;
      try {
        const out = await exchangeThenEnd(relay, ca, c.request, {
          onData: (text) => {
            if (c.ends === 'drain' && !stopped && /\r\n\r\n\{"status":"ok"\}$/.test(text)) stopped = gw.stop();
          },
        });
        assertOrderlyEnd(out);
      } finally {
        await relay.close();
        if (stopped) {
          assert.deepEqual(await stopped, { code: 0, signal: null });
          gw.cleanup();
        } else await stopGateway(gw);
      }
    });
  }

  // The client answers the alert with its own close_notify at once. When that answer is in
  // before the gateway closes the socket (its thread lost the CPU in between: on a loaded
  // machine, now and then), a close with unread bytes resets the connection instead of ending
  // it with a FIN. strace makes that moment long every time: each send of a TLS record (the
  // handshake's, the answer's, the alert's) returns only 500 ms after the bytes left.
  test('idle past timeouts.keepalive, the gateway slow to close after the alert: still the FIN, not a reset', T, async (t) => {
    const gw = await startTlsGateway({ ca, files: ca, upstream: M.url, timeouts: { keepalive: 1 }, workers: 1 });
    const relay = await startRelay(gw.tlsPort);
    const strace = await attachStrace(gw.proc.pid, ['-e', 'trace=sendto', '-e', 'inject=sendto:delay_exit=500000']);
    try {
      if (strace.error) return t.skip(`cannot stretch the close with strace here (${strace.error})`);
      assertOrderlyEnd(await exchangeThenEnd(relay, ca, closeCases[0].request, { ms: 15000 }));
    } finally {
      await strace.stop?.();
      await relay.close();
      await stopGateway(gw);
    }
  });

  test('a drain closes a stalled handshake at once, while a busy request finishes', T, async () => {
    M.reset();
    const gw = await startTlsGateway({ ca, files: ca, upstream: `${M.url}/mode/delay-3000`, timeouts: { client_header: 30 }, workers: 1 });
    let stopping = null;
    try {
      const busy = gwPost(gw, '/v1/chat/completions', chatBody('g'), { timeout: 15000 });
      // A TCP connection to the TLS port that never sends its ClientHello.
      const stalled = net.connect({ port: gw.tlsPort, host: '127.0.0.1' });
      stalled.on('error', () => {});
      await new Promise((resolve) => stalled.once('connect', resolve));
      const closed = new Promise((resolve) => stalled.once('close', () => resolve(performance.now())));
      await waitFor(() => M.stats().requests.length > 0, { what: 'the busy request at the provider', timeout: 5000 });
      const t0 = performance.now();
      stopping = gw.stop({ timeout: 15000 });
      const at = await Promise.race([closed, new Promise((resolve) => setTimeout(() => resolve(null), 2000))]);
      stalled.destroy();
      assert.ok(at !== null, 'the stalled handshake was still open 2 s into the drain');
      assert.ok(at - t0 < 1500, `closed ${(at - t0).toFixed(0)} ms into the drain`);
      const r = await busy;
      assert.equal(r.status, 200, 'the request in flight finishes during the drain');
      assert.deepEqual(await stopping, { code: 0, signal: null });
    } finally {
      if (!stopping) await stopGateway(gw);
      else gw.cleanup();
    }
  });
});
