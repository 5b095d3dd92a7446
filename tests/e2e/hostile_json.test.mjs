// Hostile JSON request bodies, as a table. Each case is sent as raw bytes on a keep-alive
// connection, pipelined with a valid request after it: the hostile one must get its exact
// answer (a 400 JSON error with the gateway's error shape, or a correct route), and the
// connection must stay usable for the next request.
//
// Decided from the code (src/proxy/json/model.hpp): the gateway validates what it reads (the
// root object, its keys, the "model" value), UTF-8 and bracket balance of the whole document;
// values it skips are left to the provider (10,000 balanced levels of nesting included). So a huge number or a lone surrogate in
// "messages" is routed, while the same in "model" is refused. "model" is compared after
// unescaping, like every JSON reader would: "fa\u0073t" routes to "fast".
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock } from '../../tools/mock-provider/server.js';
import { startGateway } from './lib/gateway.mjs';
import { rawExchange, rawRequest } from './lib/raw.mjs';
import { CLIENT_TOKEN } from './lib/common.mjs';

const AUTH = [
  ['Authorization', `Bearer ${CLIENT_TOKEN}`],
  ['Content-Type', 'application/json'],
];
const deep = (n) => '['.repeat(n) + ']'.repeat(n);
const B = (s) => Buffer.from(s, 'latin1'); // exact bytes: "\xff" stays one byte

// expect: {status, code} for a gateway error; {route: true} for a request that reaches the
// provider (status 200, the client sees "model":"fast", the provider got the real name).
const CASES = [
  { name: 'nesting 10,000 levels deep in a skipped value', body: `{"model":"fast","x":${deep(10000)}}`, expect: { route: true } },
  { name: 'nesting 10,000 levels deep before "model"', body: `{"x":${deep(10000)},"model":"fast"}`, expect: { route: true } },
  { name: 'unbalanced nesting 10,000 levels deep', body: `{"model":"fast","x":${'['.repeat(10000)}}`, expect: { status: 400, code: 'invalid_json' } },
  { name: 'a root array 10,000 levels deep', body: deep(10000), expect: { status: 400, code: 'invalid_model' } },
  { name: 'huge numbers in skipped values', body: '{"model":"fast","temperature":1e999999,"seed":123456789012345678901234567890123,"messages":[]}', expect: { route: true } },
  { name: 'a huge number as model', body: '{"model":1e999999}', expect: { status: 400, code: 'invalid_model' } },
  { name: 'invalid UTF-8 in a skipped string', body: B('{"model":"fast","messages":[{"role":"user","content":"\xff\xfe\xc3"}]}'), expect: { status: 400, code: 'invalid_json' } },
  { name: 'invalid UTF-8 in model', body: B('{"model":"fa\xc3st"}'), expect: { status: 400, code: 'invalid_json' } },
  { name: 'overlong UTF-8 encoding of "/" in model', body: B('{"model":"\xc0\xaffast"}'), expect: { status: 400, code: 'invalid_json' } },
  { name: 'a lone surrogate escape in a skipped string', body: '{"model":"fast","messages":[{"role":"user","content":"\\ud800"}]}', expect: { route: true } },
  { name: 'a lone surrogate escape in model', body: '{"model":"fa\\udc00st"}', expect: { status: 400, code: 'invalid_json' } },
  { name: 'a lone surrogate escape in a key', body: '{"\\ud800":1,"model":"fast"}', expect: { status: 400, code: 'invalid_json' } },
  { name: 'a UTF-8 byte order mark before the object', body: B('\xef\xbb\xbf{"model":"fast"}'), expect: { status: 400, code: 'invalid_json' } },
  { name: 'a NUL byte after the object', body: B('{"model":"fast"}\x00'), expect: { status: 400, code: 'invalid_json' } },
  { name: 'a NUL byte inside model', body: B('{"model":"fa\x00st"}'), expect: { status: 400, code: 'invalid_json' } },
  { name: 'an escaped NUL in model', body: '{"model":"fast\\u0000"}', expect: { status: 404, code: 'model_not_found' } },
  { name: 'model is a number', body: '{"model":42}', expect: { status: 400, code: 'invalid_model' } },
  { name: 'model is null', body: '{"model":null}', expect: { status: 400, code: 'invalid_model' } },
  { name: 'model is an object', body: '{"model":{"name":"fast"}}', expect: { status: 400, code: 'invalid_model' } },
  { name: 'model is an array', body: '{"model":["fast"]}', expect: { status: 400, code: 'invalid_model' } },
  { name: 'model is true', body: '{"model":true}', expect: { status: 400, code: 'invalid_model' } },
  { name: 'model is empty', body: '{"model":""}', expect: { status: 404, code: 'model_not_found' } },
  { name: 'model is 100 KB long', body: `{"model":"${'m'.repeat(100 * 1024)}"}`, expect: { status: 404, code: 'model_not_found' } },
  { name: 'model with escapes that spell a group ("fa\\u0073t")', body: '{"model":"fa\\u0073t","messages":[]}', expect: { route: true } },
  { name: 'model key written with an escape ("mod\\u0065l")', body: '{"mod\\u0065l":"fast","messages":[]}', expect: { route: true } },
  { name: 'model given twice', body: '{"model":"fast","model":"fast"}', expect: { status: 400, code: 'invalid_model' } },
  { name: 'model given twice, once with an escaped key', body: '{"model":"fast","mod\\u0065l":"other"}', expect: { status: 400, code: 'invalid_model' } },
  { name: 'model only nested, not at the top level', body: '{"x":{"model":"fast"}}', expect: { status: 400, code: 'invalid_model' } },
  { name: 'trailing garbage after the object', body: '{"model":"fast"}xyz', expect: { status: 400, code: 'invalid_json' } },
  { name: 'a second object after the first', body: '{"model":"fast"}{"model":"fast"}', expect: { status: 400, code: 'invalid_json' } },
  { name: 'trailing whitespace after the object', body: '{"model":"fast","messages":[]} \r\n\t ', expect: { route: true } },
  { name: 'an unterminated object', body: '{"model":"fast"', expect: { status: 400, code: 'invalid_json' } },
  { name: 'an unterminated string', body: '{"model":"fast', expect: { status: 400, code: 'invalid_json' } },
  { name: 'an empty body', body: '', expect: { status: 400, code: 'invalid_json' } },
  { name: 'a body of whitespace only', body: '  \r\n ', expect: { status: 400, code: 'invalid_json' } },
  { name: 'a body that is an array', body: '[{"model":"fast"}]', expect: { status: 400, code: 'invalid_model' } },
  { name: 'a body that is a string', body: '"fast"', expect: { status: 400, code: 'invalid_model' } },
  { name: 'a body that is null', body: 'null', expect: { status: 400, code: 'invalid_model' } },
  { name: 'single quotes', body: "{'model':'fast'}", expect: { status: 400, code: 'invalid_json' } },
];

function assertErrorShape(a, what) {
  assert.match(String(a.headers['content-type']), /application\/json/, what);
  const j = JSON.parse(a.text);
  assert.equal(typeof j.error?.message, 'string', what);
  assert.ok(j.error.message.length > 0, what);
  assert.ok('type' in j.error && 'param' in j.error && 'code' in j.error, what);
  return j;
}

describe('hostile JSON request bodies', { timeout: 120000 }, () => {
  let mock, gw;
  before(async () => {
    mock = await startMock();
    gw = await startGateway({
      config: {
        providers: [{ group: 'fast', name: 'real-fast', base: mock.url, key: 'sk-up' }],
        security: [CLIENT_TOKEN],
      },
    });
  });
  after(async () => {
    const r = await gw?.stop();
    await mock?.close();
    assert.equal(r?.code, 0, 'the gateway exits 0 after the hostile bodies');
  });

  for (const c of CASES) {
    const run = async () => {
      mock.reset();
      const hostile = rawRequest({ headers: AUTH, body: Buffer.isBuffer(c.body) ? c.body : Buffer.from(c.body) });
      const next = rawRequest({ headers: AUTH, body: '{"model":"fast","messages":[]}' });
      const r = await rawExchange({ port: gw.port, pieces: [hostile, next], timeout: 10000, closeAfterAnswers: 2 });
      const what = `${c.name}: ${r.raw.toString('latin1').slice(0, 300)}`;
      assert.ok(r.answers.length >= 1, `an answer: ${what}`);
      const [a, b] = r.answers;
      if (c.expect.route) {
        assert.equal(a.status, 200, what);
        assert.equal(JSON.parse(a.text).model, 'fast', what);
        assert.equal(mock.stats().requests.length, 2, 'both requests reached the provider');
        assert.equal(mock.stats().requests[0].model, 'real-fast', 'the provider got the real model name');
      } else {
        assert.equal(a.status, c.expect.status, what);
        const j = assertErrorShape(a, what);
        assert.equal(j.error.code, c.expect.code, what);
        assert.equal(mock.stats().requests.length, 1, 'only the next request reached the provider');
      }
      assert.notEqual(a.headers.connection, 'close', `keep-alive kept: ${what}`);
      assert.equal(b?.status, 200, `the next request on the connection is served: ${what}`);
      assert.equal(JSON.parse(b.text).model, 'fast');
    };
    if (c.owner) test(`${c.name} [owner: ${c.owner}: ${c.reason}]`, { todo: `${c.owner}: ${c.reason}`, timeout: 15000 }, run);
    else test(c.name, { timeout: 15000 }, run);
  }
});
