// Hostile clients on the TLS listener: whatever arrives instead of a proper handshake (nothing,
// half a ClientHello, plain HTTP, an old protocol, garbage) ends in a closed connection: at once
// when the bytes cannot be a TLS 1.2+ handshake, after timeouts.client_header when the client
// just stalls. The listener keeps serving the next client.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startMock } from '../../tools/mock-provider/server.js';
import { startGateway, freePort } from './lib/gateway.mjs';
import { request, waitFor } from './lib/http.mjs';
import { makeTestCA } from './lib/tls.mjs';
import { CLIENT_TOKEN } from './lib/common.mjs';

const HEADER_MS = 1000; // timeouts.client_header
const QUICK_MS = 700; // "at once": well under the header timeout, with room for a busy machine

// A TLS record header (type 22, handshake) announcing `len` bytes, with `version`.
const record = (version, body) => Buffer.concat([Buffer.from([22, version >> 8, version & 255, body.length >> 8, body.length & 255]), body]);
// A ClientHello offering only `version` (legacy field), no extensions: TLS 1.0/1.1 only.
function oldHello(version) {
  const body = Buffer.concat([
    Buffer.from([version >> 8, version & 255]), Buffer.alloc(32, 7), Buffer.from([0]), // random, no session id
    Buffer.from([0, 2, 0x00, 0x2f]), Buffer.from([1, 0]), // AES128-SHA, null compression
  ]);
  const hs = Buffer.concat([Buffer.from([1, 0, body.length >> 8, body.length & 255]), body]);
  return record(0x0301, hs);
}

const cases = [
  { name: 'nothing sent', bytes: Buffer.alloc(0), closes: 'after_header_timeout' },
  { name: 'half a ClientHello (record announces 200 bytes, 6 come)', bytes: Buffer.from('16030100c8010000c40303', 'hex'), closes: 'after_header_timeout' },
  { name: 'a plain HTTP request on the TLS port', bytes: Buffer.from(`GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${CLIENT_TOKEN}\r\n\r\n`), closes: 'at_once' },
  { name: 'a TLS 1.1 ClientHello', bytes: oldHello(0x0302), closes: 'at_once' },
  { name: 'a TLS 1.0 ClientHello', bytes: oldHello(0x0301), closes: 'at_once' },
  // 2-byte length header 0x801c, then CLIENT-HELLO: version 2, one 3-byte cipher spec, no session id, 16-byte challenge.
  { name: 'an SSLv2-style hello', bytes: Buffer.from('801c01000200030000001001008000112233445566778899aabbccddeeff', 'hex'), closes: 'at_once' },
  { name: '1 KB of garbage', bytes: Buffer.alloc(1024, 0xab), closes: 'at_once' },
  { name: 'an alert record instead of a hello', bytes: Buffer.from('15030300020228', 'hex'), closes: 'at_once' },
];

describe('hostile clients on the TLS listener', { timeout: 120000 }, () => {
  let ca, M, gw, tlsPort;
  before(async () => {
    ca = makeTestCA();
    M = await startMock();
    tlsPort = await freePort();
    gw = await startGateway({
      workers: 1,
      config: {
        providers: [{ group: 'g', name: 'm', base: M.url, key: 'sk-up' }],
        security: [CLIENT_TOKEN],
        timeouts: { client_header: HEADER_MS / 1000 },
        tls: { listen: `127.0.0.1:${tlsPort}`, cert: ca.cert, key: ca.key },
      },
    });
    await waitFor(() => /listening with TLS on/.test(gw.stderr()), { what: 'the TLS listener', timeout: 5000 });
  });
  after(async () => {
    if (gw) {
      const r = await gw.stop();
      gw.cleanup();
      assert.deepEqual(r, { code: 0, signal: null });
    }
    await M?.close();
    ca?.cleanup();
  });

  for (const c of cases) {
    test(`${c.name}: closed ${c.closes.replace(/_/g, ' ')}, nothing served`, { timeout: 15000 }, async () => {
      const t0 = performance.now();
      const { ms, got } = await new Promise((resolve, reject) => {
        let got = Buffer.alloc(0);
        const s = net.connect({ port: tlsPort, host: '127.0.0.1' }, () => s.write(c.bytes));
        s.on('data', (d) => (got = Buffer.concat([got, d])));
        s.on('error', () => {});
        s.on('close', () => resolve({ ms: performance.now() - t0, got }));
        setTimeout(() => {
          s.destroy();
          reject(new Error('still open after 6 s'));
        }, 6000);
      });
      if (c.closes === 'at_once') assert.ok(ms < QUICK_MS, `closed after ${ms.toFixed(0)} ms`);
      else assert.ok(ms >= HEADER_MS - 100 && ms < HEADER_MS + 2000, `closed after ${ms.toFixed(0)} ms`);
      // At most a TLS alert comes back, never an HTTP answer.
      assert.ok(!got.toString('latin1').includes('HTTP/1.1'), `answered: ${got.toString('latin1').slice(0, 80)}`);
      if (got.length) assert.equal(got[0], 21, `not an alert record: ${got.subarray(0, 8).toString('hex')}`);
      // The listener still serves a proper client.
      const r = await request({ url: `https://127.0.0.1:${tlsPort}/healthz`, ca: ca.caCertPem });
      assert.equal(r.status, 200);
    });
  }
});
