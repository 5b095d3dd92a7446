// Writes the seed corpora of tests/fuzz/corpus/<target>/ from real traffic: raw answers and
// streams of tools/mock-provider (the upstream the e2e tests use), the requests the e2e tests
// send, examples/config.json. Run from the repo: node tests/fuzz/make_corpus.mjs
// Inputs of split targets (sse, request_parser, response_parser) end in a byte that chooses the
// cuts (tests/fuzz/split.hpp): 0 = one read, 17 = one byte per read.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { startMock } from '../../tools/mock-provider/server.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), 'corpus');
const put = (target, name, data) => {
  fs.mkdirSync(path.join(root, target), { recursive: true });
  fs.writeFileSync(path.join(root, target, name), data);
};
const split = (target, name, data) => {
  const b = Buffer.from(data);
  put(target, `${name}-whole`, Buffer.concat([b, Buffer.from([0])]));
  // three cuts at about 1/4, 1/2, 3/4 (2-byte positions, read from the end before the count)
  const cut = (f) => { const v = Math.floor(b.length * f); return Buffer.from([v & 0xff, v >> 8]); };
  put(target, `${name}-cuts`, Buffer.concat([b, cut(0.75), cut(0.5), cut(0.25), Buffer.from([3])]));
};

function raw(port, bytes) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    const s = net.connect({ port, host: '127.0.0.1' }, () => s.end(bytes));
    s.on('data', (c) => chunks.push(c));
    s.on('end', () => resolve(Buffer.concat(chunks)));
    s.on('error', reject);
    setTimeout(() => { s.destroy(); resolve(Buffer.concat(chunks)); }, 3000);
  });
}

const chat = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }] });
const chatStream = JSON.stringify({ model: 'fast', messages: [{ role: 'user', content: 'Hi' }], stream: true, stream_options: { include_usage: true } });
const responses = JSON.stringify({ model: 'fast', input: 'Hi', stream: true });
const head = (p, body, extra = '') =>
  `POST ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer sk-client\r\nContent-Type: application/json\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
const chunked = (p, body) => {
  const h = `POST ${p} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`;
  const half = Math.floor(body.length / 2);
  const c = (s) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;
  return h + c(body.slice(0, half)) + c(body.slice(half)) + '0\r\n\r\n';
};

const M = await startMock();
try {
  const answers = {
    chat_json: await raw(M.port, head('/v1/chat/completions', chat)),
    chat_stream: await raw(M.port, head('/v1/chat/completions', chatStream)),
    responses_stream: await raw(M.port, head('/v1/responses', responses)),
    status_429: await raw(M.port, head('/mode/status-429/v1/chat/completions', chat)),
    chunked_json: await raw(M.port, head('/mode/chunked/v1/chat/completions', chat)),
    sse_content_length: await raw(M.port, head('/mode/sse-content-length/v1/chat/completions', chatStream)),
    error_event: await raw(M.port, head('/mode/stream-error-event/v1/chat/completions', chatStream)),
  };
  for (const [name, a] of Object.entries(answers)) {
    split('response_parser', name, a);
    const i = a.indexOf('\r\n\r\n');
    const body = a.subarray(i + 4).toString('latin1');
    if (/text\/event-stream/.test(a.subarray(0, i).toString())) {
      // de-chunk crudely: the mock's chunks are whole events
      const events = body.replace(/\r\n[0-9a-f]+\r\n/g, '').replace(/^[0-9a-f]+\r\n/, '').replace(/\r\n0\r\n\r\n$/, '');
      split('sse', name, events);
      for (const [k, line] of events.split('\n').filter((l) => l.startsWith('data: {')).slice(0, 4).entries())
        put('answer', `${name}-event${k}`, line.slice(6));
    } else if (!/Transfer-Encoding: chunked/i.test(a.subarray(0, i).toString())) {
      put('answer', name, body);
    }
  }
  split('response_parser', 'interim_100', `HTTP/1.1 100 Continue\r\n\r\n${answers.chat_json.toString('latin1')}`);
  split('sse', 'crlf', 'data: {"id":"c","model":"m"}\r\n\r\n: ping\r\n\r\ndata: [DONE]\r\n\r\n');
  split('sse', 'cr_multiline_bom', '\xEF\xBB\xBFevent: x\rid: 1\rdata: {"model":\rdata: "m","usage":{"prompt_tokens":0}}\r\r');
  split('sse', 'shape', `${'data: {"id":"a","model":"gpt-4o","choices":[{"delta":{"content":"x"}}]}\n\n'.repeat(4)}data: [DONE]\n\n`);
  put('answer', 'many_models', '{"model":"a","model":"b","response":{"model":"c","model":"d","model":"e"},"model":"f"}');
  put('answer', 'escaped', '{"mod\\u0065l":"a\\"b","usage":{"total_tokens":0},"error":null,"type":"x"}');

  for (const [name, b] of Object.entries({
    chat, chat_stream: chatStream, responses,
    escaped_key: '{"mod\\u0065l":"gpt-4o","messages":[]}',
    unicode: JSON.stringify({ model: 'm\u00e9\u{1F600}', messages: [{ role: 'user', content: '\u0000"\\' }] }),
    nested: '{"messages":[{"model":"not-me"}],"model":"top","metadata":{"model":"x"}}',
  })) put('model', name, b);

  const heads = {
    chat: head('/v1/chat/completions', chat),
    responses: head('/v1/responses', responses, 'X-Api-Key: k\r\nTE: trailers\r\n'),
    chunked: chunked('/v1/chat/completions', chat),
    get_models: 'GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-client\r\n\r\n',
    pipelined: `GET /health HTTP/1.1\r\nHost: x\r\n\r\n${head('/v1/chat/completions', chat)}`,
    http10: 'POST /v1/embeddings HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}',
  };
  for (const [name, h] of Object.entries(heads)) split('request_parser', name, h);
} finally {
  await M.close();
}

const configs = ['examples/config.json'];
for (const f of configs) put('config', path.basename(f), fs.readFileSync(path.resolve(root, '../../..', f)));
put('config', 'full.json', JSON.stringify({
  listen: '127.0.0.1:8080', workers: 2, security: ['${TOKEN}', 'sk-client'],
  providers: [
    { group: 'fast', name: 'gpt-4o-mini', base: 'https://api.openai.com/v1', key: '${OPENAI_KEY}', weight: 3, timeouts: { first_byte: 0.5 } },
    { group: 'fast', name: 'm2', base: 'http://[::1]:9000/openai', key: 'k' },
  ],
  limits: { max_header_bytes: 65536, max_body_bytes: 1048576 },
  timeouts: { connect: 2, first_byte: 5, idle: 5, total: 30, shutdown_grace: 2 },
  groups: { fast: { policy: 'least_inflight', attempts: 2 } },
  health: { consecutive_failures: 2, base_ejection: 1 },
  retry: { budget_ratio: 0.2, budget_min_per_second: 3 },
}, null, 2));
put('config', 'bad_base.json', '{"providers":[{"group":"g","name":"m","base":"htp://x","key":"k"}]}');

for (const [name, u] of Object.entries({
  https: 'https://api.openai.com/v1', http_port: 'http://127.0.0.1:8080', v6: 'http://[::1]:9000/openai/',
  userinfo: 'https://u:p@host/x', query: 'http://h/p?q=1#f', upper: 'HTTPS://Example.COM:443', bad: 'htp://x',
})) put('url', name, u);
for (const [name, v] of Object.entries({
  delta: '120', fraction: '1.5', imf: 'Wed, 01 May 2024 12:00:10 GMT', rfc850: 'Wednesday, 01-May-24 12:00:10 GMT',
  asctime: 'Wed May  1 12:00:10 2024', past: 'Mon, 01 Jan 2024 00:00:00 GMT', ms: '250.5', big: '99999999999999999999',
})) put('retry_after', name, v);
console.log(`corpus written under ${root}`);
