// Auth on keep-alive connections: the gateway remembers the token it accepted on a connection
// (so it hashes it once per connection, not per request); that memory must never let another
// token through, nor outlive a config reload that removes the token.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startMock } from '../../tools/mock-provider/server.js';
import { startGateway } from './lib/gateway.mjs';
import { request, waitFor } from './lib/http.mjs';
import { rawConnection, rawRequest } from './lib/raw.mjs';

const T = { timeout: 30000 };
const BODY = JSON.stringify({ model: 'g', messages: [{ role: 'user', content: 'hi' }] });
const post = (token) => rawRequest({ headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: BODY });

// All requests of one test go over ONE client connection (maxSockets 1, keep-alive).
function oneConnectionClient(url) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const sockets = new Set();
  let nextId = 0;
  const post = (token) =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({ model: 'g', messages: [{ role: 'user', content: 'hi' }] });
      const req = http.request(
        `${url}/v1/chat/completions`,
        {
          method: 'POST',
          agent,
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        },
        (res) => {
          sockets.add(res.socket);
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode, text, socket: socketId }));
        },
      );
      let socketId = 0;
      req.on('socket', (sock) => {
        sock.obId ??= ++nextId;
        socketId = sock.obId;
      });
      req.on('error', reject);
      req.setTimeout(10000, () => req.destroy(new Error('timeout')));
      req.end(body);
    });
  return { post, sockets, close: () => agent.destroy() };
}

describe('auth on keep-alive connections', () => {
  let mock, gw;
  const config = (tokens) => ({
    providers: [{ group: 'g', name: 'm', base: mock.url, key: 'sk-up' }],
    security: tokens,
  });

  before(async () => {
    mock = await startMock();
    gw = await startGateway({ config: config(['sk-one', 'sk-two']), workers: 1 });
  });
  after(async () => {
    await gw?.stop();
    await mock?.close();
  });

  test('a different token on the same connection is checked on its own', T, async () => {
    const c = oneConnectionClient(gw.url);
    try {
      assert.equal((await c.post('sk-one')).status, 200);
      assert.equal((await c.post('sk-wrong')).status, 401);
      assert.equal((await c.post('sk-one-')).status, 401);
      assert.equal((await c.post('sk-two')).status, 200);
      assert.equal((await c.post('sk-one')).status, 200);
    } finally {
      c.close();
    }
  });

  // The FIRST request on each connection that sat idle through the reload must be judged by
  // the new config: polling until a 401 shows up would hide a wrong first answer.
  test('a reload that removes the token rejects it on the first request of every idle connection that used it', T, async () => {
    const N = 20;
    const conns = await Promise.all(Array.from({ length: N }, () => rawConnection({ port: gw.port })));
    try {
      const first = await Promise.all(conns.map((c) => c.ask(post('sk-one'))));
      assert.deepEqual(first.map((r) => r.status), Array(N).fill(200));
      const fresh = async (token) =>
        (await request({ url: `${gw.url}/v1/chat/completions`, method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: BODY })).status;
      gw.writeConfig(config(['sk-two']), { mode: 'rename' });
      // Applied: a fresh connection (never the idle ones) is refused.
      await waitFor(async () => (await fresh('sk-one')) === 401, { timeout: 5000, what: 'sk-one refused on a fresh connection' });
      const after = await Promise.all(conns.map((c) => c.ask(post('sk-one'))));
      // ...each on the very connection that had been accepted with sk-one.
      assert.deepEqual(after.map((r) => r.status), Array(N).fill(401), 'first request after the reload on each idle connection');
      assert.ok(after.every((r) => JSON.parse(r.text).error.code === 'invalid_api_key'));
    } finally {
      for (const c of conns) c.close();
      gw.writeConfig(config(['sk-one', 'sk-two']), { mode: 'rename' });
    }
  });
});
