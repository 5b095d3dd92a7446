// Auth on keep-alive connections: the gateway remembers the token it accepted on a connection
// (so it hashes it once per connection, not per request); that memory must never let another
// token through, nor outlive a config reload that removes the token.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startMock } from '../../tools/mock-provider/server.js';
import { startGateway } from './lib/gateway.mjs';
import { waitFor } from './lib/http.mjs';

const T = { timeout: 30000 };

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

  test('a reload that removes the token rejects it on a connection that used it', T, async () => {
    const c = oneConnectionClient(gw.url);
    try {
      let last = await c.post('sk-one');
      assert.equal(last.status, 200);
      gw.writeConfig(config(['sk-two']));
      let refused = null;
      await waitFor(
        async () => {
          const r = await c.post('sk-one');
          if (r.status === 401) refused = r;
          else last = r;
          return r.status === 401;
        },
        { timeout: 5000, what: 'sk-one refused after the reload' },
      );
      // The refusal came on the very connection that had been accepted with sk-one.
      assert.equal(refused.socket, last.socket);
      assert.equal((await c.post('sk-two')).status, 200);
    } finally {
      c.close();
    }
  });
});
