// End-to-end: HTTPS providers, verified against SSL_CERT_FILE (a throwaway CA).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, answerText } from '../../tools/mock-provider/server.js';
import { startGateway } from './lib/gateway.mjs';
import { makeTestCA } from './lib/tls.mjs';
import { CLIENT_TOKEN, chatBody, gwPost, assertError } from './lib/common.mjs';

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
