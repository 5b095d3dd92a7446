// End-to-end: OpenAI clients (the official `openai` SDK) served by api "anthropic" targets, against
// the real binary and the mock provider's Anthropic Messages mode (tools/mock-provider/anthropic.js).
//
// The contract under test (docs/ANTHROPIC.md, docs/PROVIDERS.md "Anthropic"):
//   - the request reaches POST /v1/messages translated, with x-api-key and anthropic-version
//     (once) and never the client's Authorization;
//   - answers come back as OpenAI chat completions (model = group), streams as chunks ending in
//     [DONE], a tool call whose arguments arrived in many deltas whole and valid, stop reasons
//     mapped, usage counted by the gateway (and sent to the client only when it asked);
//   - 529 before the answer fails over to the group's next target; a mid-stream Anthropic
//     `error` ends the stream with an error event and no [DONE];
//   - a parameter with no Anthropic form is refused with 400 naming it, before any upstream call.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startMock } from '../../tools/mock-provider/server.js';
import { startGateway } from './lib/gateway.mjs';
import { waitFor } from './lib/http.mjs';
import { rawConnection, rawRequest } from './lib/raw.mjs';
import { CLIENT_TOKEN, chatBody, gwPost, accessLines, assertError } from './lib/common.mjs';

const T = { timeout: 60000 };
const messages = [{ role: 'user', content: 'Hi' }];
const tools = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Weather of a place',
      parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
    },
  },
];

// The mock's POST requests since the last reset.
function hits(m) {
  return m.stats().requests.filter((r) => r.method === 'POST');
}

// The SSE data payloads of a raw stream body.
function dataEvents(text) {
  return text
    .split('\n')
    .filter((l) => l.startsWith('data: '))
    .map((l) => l.slice(6));
}

describe('anthropic targets for OpenAI clients', () => {
  let mock, gw, sdk;

  before(async () => {
    mock = await startMock({ anthropicKey: 'ant-key' });
    const u = mock.url;
    gw = await startGateway({
      config: {
        providers: [
          { group: 'claude', name: 'claude-sonnet-4', base: u, key: 'ant-key', api: 'anthropic' },
          { group: 'claude-tool', name: 'claude-sonnet-4', base: `${u}/mode/tool`, key: 'ant-key', api: 'anthropic' },
          {
            group: 'claude-midfail',
            name: 'claude-sonnet-4',
            base: `${u}/mode/overloaded-mid-stream`,
            key: 'ant-key',
            api: 'anthropic',
          },
          {
            group: 'claude-own-version',
            name: 'claude-sonnet-4',
            base: u,
            key: 'ant-key',
            api: 'anthropic',
            headers: { 'anthropic-version': '2023-06-01' },
          },
          // Mixed groups: an overloaded Anthropic target first, an OpenAI one next; and back.
          { group: 'mixed', name: 'claude-sonnet-4', base: `${u}/mode/status-529`, key: 'ant-key', api: 'anthropic' },
          { group: 'mixed', name: 'gpt-4o', base: u, key: 'oa-key' },
          { group: 'mixed-stream', name: 'claude-sonnet-4', base: `${u}/mode/status-529`, key: 'ant-key', api: 'anthropic' },
          { group: 'mixed-stream', name: 'gpt-4o', base: u, key: 'oa-key' },
          { group: 'mixed-back', name: 'gpt-4o', base: `${u}/mode/status-503`, key: 'oa-key' },
          { group: 'mixed-back', name: 'claude-sonnet-4', base: u, key: 'ant-key', api: 'anthropic' },
          { group: 'over', name: 'claude-sonnet-4', base: `${u}/mode/status-529`, key: 'ant-key', api: 'anthropic' },
          // Overloaded after accepting the stream (message_start, ping, error), then an OpenAI target.
          { group: 'starts-overloaded', name: 'claude-sonnet-4', base: `${u}/mode/overloaded-at-start`, key: 'ant-key', api: 'anthropic' },
          { group: 'starts-overloaded', name: 'gpt-4o', base: u, key: 'oa-key' },
        ],
        security: [CLIENT_TOKEN],
      },
    });
    sdk = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: CLIENT_TOKEN, maxRetries: 0, timeout: 10000 });
  });

  after(async () => {
    await gw?.stop();
    await mock?.close();
  });

  test('plain chat: /v1/messages, x-api-key + anthropic-version, OpenAI answer with model = group', T, async () => {
    mock.reset();
    const r = await sdk.chat.completions.create({ model: 'claude', messages, max_tokens: 64 });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, 'claude');
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(typeof r.choices[0].message.content, 'string');
    assert.ok(r.choices[0].message.content.length > 0);
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.ok(r.usage.prompt_tokens > 0 && r.usage.completion_tokens > 0, JSON.stringify(r.usage));
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);

    const h = hits(mock);
    assert.equal(h.length, 1);
    assert.match(h[0].path, /^\/v1\/messages$/);
    assert.equal(h[0].response_status, 200);
    assert.equal(h[0].headers['x-api-key'], 'ant-key');
    assert.equal(h[0].headers['anthropic-version'], '2023-06-01');
    assert.equal(h[0].headers.authorization, undefined, 'the client credential must not reach the provider');
    const sent = JSON.parse(h[0].body);
    assert.equal(sent.model, 'claude-sonnet-4');
    assert.equal(sent.max_tokens, 64);
    assert.deepEqual(sent.messages, [{ role: 'user', content: 'Hi' }]);

    // The gateway counted the same tokens (access log, which key settlement and metrics share).
    await waitFor(() => accessLines(gw).some((l) => l.group === 'claude'), { timeout: 5000 });
    const line = accessLines(gw).find((l) => l.group === 'claude');
    assert.equal(Number(line.prompt_tokens), r.usage.prompt_tokens, JSON.stringify(line));
    assert.equal(Number(line.completion_tokens), r.usage.completion_tokens);
  });

  test('configured anthropic-version is sent once', T, async () => {
    mock.reset();
    await sdk.chat.completions.create({ model: 'claude-own-version', messages });
    const h = hits(mock);
    assert.equal(h.length, 1);
    const raw = h[0].raw_headers;
    const versions = raw.filter((_, i) => i % 2 === 0 && raw[i].toLowerCase() === 'anthropic-version');
    assert.equal(versions.length, 1, JSON.stringify(raw));
  });

  test('stream: chunks with model = group, [DONE], usage chunk only when asked', T, async () => {
    mock.reset();
    const stream = await sdk.chat.completions.create({ model: 'claude', messages, stream: true });
    let text = '';
    let finish = null;
    let usageChunks = 0;
    for await (const c of stream) {
      assert.equal(c.object, 'chat.completion.chunk');
      assert.equal(c.model, 'claude');
      if (c.usage) usageChunks++;
      for (const ch of c.choices) {
        text += ch.delta?.content ?? '';
        if (ch.finish_reason) finish = ch.finish_reason;
      }
    }
    assert.ok(text.length > 0);
    assert.equal(finish, 'stop');
    assert.equal(usageChunks, 0, 'no usage chunk unless the client asked for it');
    assert.match(hits(mock)[0].path, /^\/v1\/messages$/);
    assert.equal(JSON.parse(hits(mock)[0].body).stream, true);

    const withUsage = await sdk.chat.completions.create({
      model: 'claude',
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    let usage = null;
    for await (const c of withUsage) if (c.usage) usage = c.usage;
    assert.ok(usage && usage.prompt_tokens > 0 && usage.completion_tokens > 0, JSON.stringify(usage));

    // The raw stream ends in [DONE].
    const raw = await gwPost(gw, '/v1/chat/completions', chatBody('claude', { stream: true }));
    assert.equal(raw.status, 200);
    const ev = dataEvents(raw.text);
    assert.equal(ev.at(-1), '[DONE]');

    // Streams without the client's usage ask still feed the gateway's token accounting.
    await waitFor(
      () =>
        accessLines(gw).filter((l) => l.group === 'claude' && l.stream === 'true' && Number(l.prompt_tokens) > 0)
          .length >= 3,
      { timeout: 5000 },
    );
  });

  test('tool call: arguments arriving in many deltas reach the client whole and valid', T, async () => {
    mock.reset();
    const r = await sdk.chat.completions.create({ model: 'claude-tool', messages, tools });
    assert.equal(r.choices[0].finish_reason, 'tool_calls');
    const call = r.choices[0].message.tool_calls[0];
    assert.equal(call.type, 'function');
    assert.equal(call.function.name, 'get_weather');
    assert.equal(JSON.parse(call.function.arguments).location, 'San Francisco, CA');

    const stream = await sdk.chat.completions.create({ model: 'claude-tool', messages, tools, stream: true });
    const args = new Map();
    let name = null;
    let finish = null;
    let argDeltas = 0;
    for await (const c of stream) {
      for (const ch of c.choices) {
        for (const tc of ch.delta?.tool_calls ?? []) {
          if (tc.function?.name) name = tc.function.name;
          if (tc.function?.arguments) {
            argDeltas++;
            args.set(tc.index, (args.get(tc.index) ?? '') + tc.function.arguments);
          }
        }
        if (ch.finish_reason) finish = ch.finish_reason;
      }
    }
    assert.equal(name, 'get_weather');
    assert.equal(finish, 'tool_calls');
    assert.ok(argDeltas >= 10, `arguments came in ${argDeltas} deltas`);
    const parsed = JSON.parse(args.get(0));
    assert.equal(parsed.location, 'San Francisco, CA');
    assert.equal(parsed.unit, 'celsius');
  });

  // Round robin decides which target of a group comes first: a few requests (bounded) until one
  // starts on `firstPath`; that one must have failed over to the other target.
  async function failedOver(group, firstPath, secondPath, body) {
    for (let i = 0; i < 4; i++) {
      mock.reset();
      const r = await gwPost(gw, '/v1/chat/completions', body);
      const h = hits(mock);
      if (!firstPath.test(h[0].path)) continue;
      assert.equal(h.length, 2, JSON.stringify(h.map((x) => [x.path, x.response_status])));
      assert.match(h[1].path, secondPath);
      return { r, h };
    }
    assert.fail(`no request of ${group} started on ${firstPath}`);
  }

  test('one connection, one request after another: each stream starts afresh (translator reused)', T, async () => {
    // The exchange keeps its translator from one attempt and request to the next on a
    // connection and resets it: nothing of a tool call, a usage ask or a pass-through attempt
    // in between may show in the next stream.
    const c = await rawConnection({ port: gw.port });
    const ask = async (body) => {
      const a = await c.ask(
        rawRequest({
          headers: { Authorization: `Bearer ${CLIENT_TOKEN}`, 'Content-Type': 'application/json' },
          body: JSON.stringify(body),
        }),
        { timeout: 10000 },
      );
      assert.equal(a.status, 200, a.text);
      const ev = dataEvents(a.text);
      assert.equal(ev.at(-1), '[DONE]', a.text);
      const chunks = ev.slice(0, -1).map((d) => JSON.parse(d));
      return {
        chunks,
        models: new Set(chunks.map((x) => x.model)),
        usage: chunks.filter((x) => x.usage).length,
        toolDeltas: chunks.filter((x) => x.choices?.[0]?.delta?.tool_calls).length,
        text: chunks.map((x) => x.choices?.[0]?.delta?.content ?? '').join(''),
        finish: chunks.map((x) => x.choices?.[0]?.finish_reason).filter(Boolean),
      };
    };
    try {
      const usageAsk = { stream: true, stream_options: { include_usage: true } };
      const tool = await ask({ model: 'claude-tool', messages, tools, ...usageAsk });
      assert.ok(tool.toolDeltas > 0);
      assert.equal(tool.usage, 1);
      assert.deepEqual(tool.finish, ['tool_calls']);

      const plain = await ask({ model: 'claude', messages, stream: true });
      assert.deepEqual([...plain.models], ['claude']);
      assert.equal(plain.usage, 0, 'no usage chunk: this request did not ask');
      assert.equal(plain.toolDeltas, 0);
      assert.ok(plain.text.length > 0);
      assert.deepEqual(plain.finish, ['stop']);

      // An Anthropic attempt (529) then an OpenAI one in the same request, then Anthropic again.
      const mixed = await ask({ model: 'mixed-stream', messages, stream: true });
      assert.deepEqual([...mixed.models], ['mixed-stream']);
      const again = await ask({ model: 'claude', messages, ...usageAsk });
      assert.deepEqual([...again.models], ['claude']);
      assert.equal(again.usage, 1);
      assert.equal(again.toolDeltas, 0);
      assert.equal(again.text, plain.text);
      assert.deepEqual(again.finish, ['stop']);
    } finally {
      c.close();
    }
  });

  test('529 before the answer fails over to the next target (anthropic -> openai)', T, async () => {
    const { r, h } = await failedOver('mixed', /\/v1\/messages$/, /\/v1\/chat\/completions$/, chatBody('mixed'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json().model, 'mixed');
    assert.equal(h[0].response_status, 529);
    assert.equal(h[1].headers.authorization, 'Bearer oa-key');
    assert.equal(h[1].headers['x-api-key'], undefined);

    const s = await failedOver(
      'mixed-stream',
      /\/v1\/messages$/,
      /\/v1\/chat\/completions$/,
      chatBody('mixed-stream', { stream: true }),
    );
    assert.equal(s.r.status, 200);
    assert.equal(s.h[0].response_status, 529);
    assert.equal(dataEvents(s.r.text).at(-1), '[DONE]');
  });

  // Anthropic may accept a stream and then report overloaded_error right after message_start:
  // nothing has reached the client yet (the role chunk waits for the first event after
  // message_start), so the exchange fails over as for a first error event.
  test('a stream that opens with message_start then overloaded_error fails over (the official SDK sees one whole stream)', T, async () => {
    mock.reset();
    const stream = await sdk.chat.completions.create({ model: 'starts-overloaded', messages, max_tokens: 64, stream: true });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    assert.ok(chunks.length > 1, JSON.stringify(chunks));
    assert.ok(chunks.every((c) => c.model === 'starts-overloaded'), JSON.stringify(chunks[0]));
    assert.equal(chunks.filter((c) => c.choices[0]?.delta?.role === 'assistant').length, 1, 'one role chunk');
    assert.ok(chunks.some((c) => c.choices[0]?.finish_reason === 'stop'), 'the OpenAI target\'s stream, whole');
    const h = hits(mock);
    assert.equal(h.length, 2);
    assert.match(h[0].path, /\/v1\/messages$/);
    assert.match(h[1].path, /\/v1\/chat\/completions$/);
  });

  test('openai -> anthropic failover in one group', T, async () => {
    const { r, h } = await failedOver('mixed-back', /\/v1\/chat\/completions$/, /\/v1\/messages$/, chatBody('mixed-back'));
    assert.equal(r.status, 200, r.text);
    const j = r.json();
    assert.equal(j.model, 'mixed-back');
    assert.equal(j.object, 'chat.completion');
    assert.equal(h[1].headers.authorization, undefined);
    assert.equal(h[1].headers['x-api-key'], 'ant-key');
  });

  test('529 with no target left: the client gets 503 in OpenAI error shape', T, async () => {
    mock.reset();
    const r = await gwPost(gw, '/v1/chat/completions', chatBody('over'));
    assert.equal(hits(mock)[0].response_status, 529);
    assert.equal(r.status, 503, r.text);
    const j = r.json();
    assert.equal(typeof j.error, 'object', r.text);
    assert.equal(typeof j.error.message, 'string');
    assert.equal(j.type, undefined, 'not the Anthropic error shape');
    assert.equal(j.error.code, 'overloaded_error');
  });

  test('mid-stream overloaded error: an error event, no [DONE]', T, async () => {
    mock.reset();
    const r = await gwPost(gw, '/v1/chat/completions', chatBody('claude-midfail', { stream: true }));
    assert.equal(r.status, 200);
    const ev = dataEvents(r.text);
    assert.ok(!ev.includes('[DONE]'), r.text);
    const last = JSON.parse(ev.at(-1));
    assert.equal(typeof last.error, 'object', r.text);
    assert.ok(ev.length >= 2, 'some content came before the error');
  });

  test('another endpoint: the group\'s OpenAI target serves it, a lone Anthropic target 404s', T, async () => {
    mock.reset();
    const e = await gwPost(gw, '/v1/embeddings', JSON.stringify({ model: 'mixed', input: 'hi' }));
    assert.equal(e.status, 200, e.text);
    const h = hits(mock);
    assert.equal(h.length, 1);
    assert.match(h[0].path, /\/v1\/embeddings$/);

    mock.reset();
    const r = await gwPost(gw, '/v1/embeddings', JSON.stringify({ model: 'claude', input: 'hi' }));
    assertError(r, 404, {}, 'embeddings on an anthropic target');
    assert.equal(hits(mock).length, 0);
  });

  test('a parameter with no Anthropic form: 400 naming it, nothing sent upstream', T, async () => {
    mock.reset();
    for (const [extra, param, code] of [
      [{ logprobs: true }, 'logprobs', 'unsupported_parameter'],
      [{ n: 2 }, 'n', 'unsupported_parameter'],
      [{ temperature: 1.5 }, 'temperature', undefined],
      [{ stream: true, seed: 7 }, 'seed', 'unsupported_parameter'],
    ]) {
      const r = await gwPost(gw, '/v1/chat/completions', chatBody('claude', extra));
      const j = assertError(r, 400, { type: 'invalid_request_error', code }, JSON.stringify(extra));
      assert.equal(j.error.param, param);
      assert.match(j.error.message, /\S/);
    }
    assert.equal(hits(mock).length, 0);
  });

  test('a system prompt alone: 400 naming messages from the gateway (Anthropic needs a turn); a mixed group answers it', T, async () => {
    for (const [what, msgs] of [
      ['a system prompt alone', [{ role: 'system', content: 'Write a haiku about the sea.' }]],
      ['no message', []],
      ['system and an empty assistant turn', [{ role: 'developer', content: 'Be brief.' }, { role: 'assistant', content: '' }]],
    ]) {
      mock.reset();
      const r = await gwPost(gw, '/v1/chat/completions', JSON.stringify({ model: 'claude', messages: msgs }));
      const j = assertError(r, 400, { type: 'invalid_request_error' }, what);
      assert.equal(j.error.param, 'messages', what);
      assert.match(j.error.message, /user, assistant or tool message/, what);
      assert.equal(hits(mock).length, 0, `${what}: nothing sent upstream`);
    }
    for (let i = 0; i < 2; i++) {
      mock.reset();
      const body = JSON.stringify({ model: 'mixed', messages: [{ role: 'system', content: 'Write a haiku.' }] });
      const r = await gwPost(gw, '/v1/chat/completions', body);
      assert.equal(r.status, 200, r.text);
      const h = hits(mock);
      assert.equal(h.length, 1);
      assert.match(h[0].path, /\/v1\/chat\/completions$/);
    }
  });

  test('in a mixed group, a parameter the Anthropic target refuses goes to the OpenAI target', T, async () => {
    for (let i = 0; i < 2; i++) {
      // Round robin: one of two requests starts on each target; both must be served.
      mock.reset();
      const r = await gwPost(gw, '/v1/chat/completions', chatBody('mixed', { seed: 7 }));
      assert.equal(r.status, 200, r.text);
      const h = hits(mock);
      assert.equal(h.length, 1);
      assert.match(h[0].path, /\/v1\/chat\/completions$/);
      assert.equal(JSON.parse(h[0].body).seed, 7);
    }
  });
});
