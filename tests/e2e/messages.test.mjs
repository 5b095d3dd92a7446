// End-to-end: Anthropic Messages API clients (the official `@anthropic-ai/sdk`, the Vercel AI SDK's
// `@ai-sdk/anthropic`, a Claude-Code-like raw request) calling the gateway's POST /v1/messages and
// /v1/messages/count_tokens, served by an OpenAI-dialect target (translated) and by an
// api "anthropic" target (pass-through), against the real binary and the mock provider.
//
// The contract under test (docs/ANTHROPIC.md "Inbound", docs/PROVIDERS.md "Claude Code"):
//   - x-api-key or Authorization: Bearer with a gateway key; routed by `model` = group name;
//   - OpenAI target: the Messages request reaches /v1/chat/completions translated (system first,
//     stream_options.include_usage for streams); the answer comes back as a Messages answer or
//     event stream with model = group, usage as the mock sent it (message_start: zeros, the real
//     counts in message_delta), a tool call's 20 argument deltas whole and valid;
//   - Anthropic target: the body passes through with the model spliced, the client's
//     anthropic-version / anthropic-beta forwarded, model rewritten to the group in the answer
//     and in message_start;
//   - count_tokens: passed through to an Anthropic target, estimated (body bytes / 4) otherwise;
//   - a mixed group fails over across dialects.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { createAnthropic } from '@ai-sdk/anthropic';
import { generateText, streamText } from 'ai';
import { startMock, NO_INDEX_CALLS } from '../../tools/mock-provider/server.js';
import { ANTHROPIC_USAGE, COUNT_TOKENS, toolInput } from '../../tools/mock-provider/anthropic.js';
import { startGateway } from './lib/gateway.mjs';
import { waitFor } from './lib/http.mjs';
import { CLIENT_TOKEN, accessLines } from './lib/common.mjs';

const T = { timeout: 60000 };
const messages = [{ role: 'user', content: 'Hi' }];
const weatherTool = {
  name: 'get_weather',
  description: 'Weather of a place',
  input_schema: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
};
// The chat completion usage the mock sends (tools/mock-provider/server.js usageChat).
const CHAT_USAGE = { prompt_tokens: 9, completion_tokens: 12 };
const COUNTED_TOKEN = 'sk-counted-key-secret';

function hits(m) {
  return m.stats().requests.filter((r) => r.method === 'POST');
}

// Raw SSE of an answer body: [{event, data}] with data parsed.
function sseEvents(text) {
  const out = [];
  for (const block of text.split('\n\n')) {
    let event = null;
    let data = null;
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data = line.slice(6);
    }
    if (event || data) out.push({ event, data: data === null ? null : JSON.parse(data) });
  }
  return out;
}

describe('Anthropic Messages API clients', () => {
  let mock, gw, sdk, sdkBearer;

  before(async () => {
    mock = await startMock({ anthropicKey: 'ant-key' });
    const u = mock.url;
    gw = await startGateway({
      config: {
        providers: [
          { group: 'oa', name: 'gpt-4o', base: u, key: 'oa-key' },
          // A reasoning model: OpenAI refuses max_tokens for it, max_completion_tokens only.
          { group: 'oa-reasoning', name: 'o3', base: u, key: 'oa-key', max_tokens_field: 'max_completion_tokens' },
          { group: 'ant', name: 'claude-sonnet-4', base: u, key: 'ant-key', api: 'anthropic' },
          {
            group: 'ant-own-version',
            name: 'claude-sonnet-4',
            base: u,
            key: 'ant-key',
            api: 'anthropic',
            headers: { 'anthropic-version': '2023-06-01' },
          },
          // Mixed groups: an overloaded Anthropic target first, an OpenAI one next; and back.
          { group: 'mixed', name: 'claude-sonnet-4', base: `${u}/mode/status-529`, key: 'ant-key', api: 'anthropic' },
          { group: 'mixed', name: 'gpt-4o', base: u, key: 'oa-key' },
          { group: 'mixed-back', name: 'gpt-4o', base: `${u}/mode/status-503`, key: 'oa-key' },
          { group: 'mixed-back', name: 'claude-sonnet-4', base: u, key: 'ant-key', api: 'anthropic' },
          // An OpenAI-compatible provider that sends parallel tool calls as Gemini's does.
          { group: 'gemini-like', name: 'gemini-2.5-flash', base: `${u}/mode/tools-no-index`, key: 'oa-key' },
          // Two Anthropic accounts; the first accepts streams and then reports overloaded_error.
          { group: 'ant-accounts', name: 'claude-sonnet-4', base: `${u}/mode/overloaded-at-start`, key: 'ant-key', api: 'anthropic' },
          { group: 'ant-accounts', name: 'claude-sonnet-4', base: u, key: 'ant-key', api: 'anthropic' },
        ],
        security: [CLIENT_TOKEN],
        // A key whose token limits and budget would show any token charged (tpd refills
        // slowly: 1,000 tokens take ~90 s to come back).
        keys: [{ name: 'counted', token: COUNTED_TOKEN, limits: { rpm: 100, tpd: 1000000 }, budget: { tokens: 1000000, period: 'day' } }],
      },
    });
    sdk = new Anthropic({ baseURL: gw.url, apiKey: CLIENT_TOKEN, maxRetries: 0, timeout: 10000 });
    sdkBearer = new Anthropic({ baseURL: gw.url, authToken: CLIENT_TOKEN, apiKey: null, maxRetries: 0, timeout: 10000 });
  });

  after(async () => {
    await gw?.stop();
    await mock?.close();
  });

  test('OpenAI target with max_tokens_field "max_completion_tokens": the limit goes by that name', T, async () => {
    mock.reset();
    const r = await sdk.messages.create({ model: 'oa-reasoning', max_tokens: 64, messages });
    assert.equal(r.model, 'oa-reasoning');
    const s = sdk.messages.stream({ model: 'oa-reasoning', max_tokens: 32, messages });
    for await (const _ of s);
    const h = hits(mock);
    assert.equal(h.length, 2);
    for (const [i, want] of [[0, 64], [1, 32]]) {
      const sent = JSON.parse(h[i].body);
      assert.equal(sent.model, 'o3');
      assert.equal(sent.max_completion_tokens, want, h[i].body);
      assert.equal('max_tokens' in sent, false, `no max_tokens beside it: ${h[i].body}`);
    }
  });

  test('OpenAI target: plain message, system prompt, usage, model = group (x-api-key)', T, async () => {
    mock.reset();
    const r = await sdk.messages.create({ model: 'oa', max_tokens: 64, system: 'Be brief.', messages });
    assert.equal(r.type, 'message');
    assert.equal(r.role, 'assistant');
    assert.equal(r.model, 'oa');
    assert.deepEqual(r.content, [{ type: 'text', text: 'Hello from gpt-4o!' }]);
    assert.equal(r.stop_reason, 'end_turn');
    assert.equal(r.usage.input_tokens, CHAT_USAGE.prompt_tokens);
    assert.equal(r.usage.output_tokens, CHAT_USAGE.completion_tokens);

    const h = hits(mock);
    assert.equal(h.length, 1);
    assert.equal(h[0].path, '/v1/chat/completions');
    assert.equal(h[0].headers.authorization, 'Bearer oa-key');
    assert.equal(h[0].headers['x-api-key'], undefined, 'the client key must not reach the provider');
    const sent = JSON.parse(h[0].body);
    assert.equal(sent.model, 'gpt-4o');
    assert.equal(sent.max_tokens, 64);
    assert.deepEqual(sent.messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
    ]);

    // Settled usage: the gateway counted the same tokens.
    await waitFor(() => accessLines(gw).some((l) => l.group === 'oa' && l.path === '/v1/messages'), { timeout: 5000 });
    const line = accessLines(gw).find((l) => l.group === 'oa' && l.path === '/v1/messages');
    assert.equal(Number(line.prompt_tokens), CHAT_USAGE.prompt_tokens, line._line);
    assert.equal(Number(line.completion_tokens), CHAT_USAGE.completion_tokens, line._line);
  });

  test('Anthropic target: pass-through with the model spliced, answer model = group (Bearer)', T, async () => {
    mock.reset();
    const r = await sdkBearer.messages.create(
      { model: 'ant', max_tokens: 64, system: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }], messages },
      { headers: { 'anthropic-version': '2023-01-01', 'anthropic-beta': 'prompt-caching-2024-07-31' } },
    );
    assert.equal(r.model, 'ant');
    assert.deepEqual(r.content, [{ type: 'text', text: 'Hello from claude-sonnet-4!' }]);
    assert.equal(r.stop_reason, 'end_turn');
    assert.deepEqual(r.usage, { ...ANTHROPIC_USAGE });

    const h = hits(mock);
    assert.equal(h.length, 1);
    assert.equal(h[0].path, '/v1/messages');
    assert.equal(h[0].headers['x-api-key'], 'ant-key');
    assert.equal(h[0].headers.authorization, undefined, 'the client credential must not reach the provider');
    assert.equal(h[0].headers['anthropic-version'], '2023-01-01', 'the client version is forwarded');
    assert.equal(h[0].headers['anthropic-beta'], 'prompt-caching-2024-07-31');
    const versions = h[0].raw_headers.filter((_, i, raw) => i % 2 === 0 && raw[i].toLowerCase() === 'anthropic-version');
    assert.equal(versions.length, 1);
    const sent = JSON.parse(h[0].body);
    assert.equal(sent.model, 'claude-sonnet-4');
    assert.deepEqual(sent.system, [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }], 'system passes as is');

    await waitFor(() => accessLines(gw).some((l) => l.group === 'ant' && l.path === '/v1/messages'), { timeout: 5000 });
    const line = accessLines(gw).find((l) => l.group === 'ant' && l.path === '/v1/messages');
    const input = ANTHROPIC_USAGE.input_tokens + ANTHROPIC_USAGE.cache_read_input_tokens + ANTHROPIC_USAGE.cache_creation_input_tokens;
    assert.equal(Number(line.prompt_tokens), input, line._line);
    assert.equal(Number(line.completion_tokens), ANTHROPIC_USAGE.output_tokens, line._line);
  });

  test('Anthropic target: the provider\'s configured anthropic-version wins over the client\'s', T, async () => {
    mock.reset();
    await sdk.messages.create({ model: 'ant-own-version', max_tokens: 16, messages }, { headers: { 'anthropic-version': '2023-01-01' } });
    const h = hits(mock);
    assert.equal(h[0].headers['anthropic-version'], '2023-06-01');
    const versions = h[0].raw_headers.filter((_, i, raw) => i % 2 === 0 && raw[i].toLowerCase() === 'anthropic-version');
    assert.equal(versions.length, 1);
  });

  for (const [group, target] of [
    ['oa', 'gpt-4o'],
    ['ant', 'claude-sonnet-4'],
  ]) {
    test(`${group}: messages.stream, text deltas, finalMessage, usage, model = group`, T, async () => {
      mock.reset();
      const events = [];
      const stream = sdk.messages.stream({ model: group, max_tokens: 64, system: 'Be brief.', messages });
      stream.on('streamEvent', (e) => events.push(structuredClone(e))); // (the SDK mutates its snapshot)
      let text = '';
      stream.on('text', (t) => (text += t));
      const final = await stream.finalMessage();
      assert.equal(text, `Hello from ${target}!`);
      assert.equal(final.model, group);
      assert.equal(final.stop_reason, 'end_turn');
      assert.equal(final.content.length, 1);
      assert.equal(final.content[0].type, 'text');
      assert.equal(final.content[0].text, `Hello from ${target}!`);
      const types = events.map((e) => e.type);
      assert.equal(types[0], 'message_start');
      assert.equal(types.at(-1), 'message_stop');
      assert.equal(types.at(-2), 'message_delta');
      assert.equal(events[0].message.model, group, 'message_start names the group');
      const delta = events.at(-2);
      if (group === 'oa') {
        // message_start's usage is defined: zeros (an OpenAI stream reports usage at its end).
        assert.equal(events[0].message.usage.input_tokens, 0);
        assert.equal(events[0].message.usage.output_tokens, 0);
        assert.equal(delta.usage.output_tokens, CHAT_USAGE.completion_tokens);
        assert.equal(delta.usage.input_tokens, CHAT_USAGE.prompt_tokens);
        const sent = JSON.parse(hits(mock)[0].body);
        assert.equal(sent.stream, true);
        assert.deepEqual(sent.stream_options, { include_usage: true });
      } else {
        assert.equal(events[0].message.usage.input_tokens, ANTHROPIC_USAGE.input_tokens);
        assert.equal(delta.usage.output_tokens, ANTHROPIC_USAGE.output_tokens);
      }
      assert.equal(final.usage.output_tokens, delta.usage.output_tokens);

      await waitFor(() => accessLines(gw).some((l) => l.group === group && l.stream === 'true' && l.path === '/v1/messages'), {
        timeout: 5000,
      });
      const line = accessLines(gw).find((l) => l.group === group && l.stream === 'true' && l.path === '/v1/messages');
      assert.equal(Number(line.completion_tokens), group === 'oa' ? CHAT_USAGE.completion_tokens : ANTHROPIC_USAGE.output_tokens, line._line);
    });

    test(`${group}: tool use streamed, arguments whole and valid, stop_reason tool_use`, T, async () => {
      mock.reset();
      const events = [];
      const stream = sdk.messages.stream({
        model: group,
        max_tokens: 64,
        messages: [{ role: 'user', content: 'Weather in SF?' }],
        tools: [weatherTool],
        tool_choice: { type: 'any' },
      });
      stream.on('streamEvent', (e) => events.push(structuredClone(e))); // (the SDK mutates its snapshot)
      const final = await stream.finalMessage();
      assert.equal(final.stop_reason, 'tool_use');
      const uses = final.content.filter((b) => b.type === 'tool_use');
      assert.equal(uses.length, 1);
      assert.equal(uses[0].name, 'get_weather');
      assert.deepEqual(uses[0].input, toolInput(target));
      const jsonDeltas = events.filter((e) => e.type === 'content_block_delta' && e.delta.type === 'input_json_delta');
      assert.ok(jsonDeltas.length >= 20, `argument deltas: ${jsonDeltas.length}`);
      if (group === 'oa') {
        assert.equal(jsonDeltas.length, 20);
        const sent = JSON.parse(hits(mock)[0].body);
        assert.equal(sent.tool_choice, 'required');
        assert.equal(sent.tools[0].function.name, 'get_weather');
      }
    });

    test(`${group}: tool use, non-stream`, T, async () => {
      const r = await sdk.messages.create({
        model: group,
        max_tokens: 64,
        messages: [{ role: 'user', content: 'Weather in SF?' }],
        tools: [weatherTool],
        tool_choice: { type: 'tool', name: 'get_weather' },
      });
      assert.equal(r.stop_reason, 'tool_use');
      const use = r.content.find((b) => b.type === 'tool_use');
      assert.equal(use.name, 'get_weather');
      assert.deepEqual(use.input, toolInput(target));
      assert.equal(r.model, group);
    });
  }

  // Parallel tool calls without `index`, whole in one chunk, the turn ended with "stop"
  // (Gemini's OpenAI-compatible API): two tool_use blocks with their own inputs, and
  // stop_reason tool_use, which keeps the SDK's tool loop going.
  for (const streamed of [true, false]) {
    test(`parallel tool calls without index from an OpenAI-compatible provider (${streamed ? 'stream' : 'non-stream'}): two tool_use blocks, stop_reason tool_use`, T, async () => {
      const req = {
        model: 'gemini-like',
        max_tokens: 64,
        messages: [{ role: 'user', content: 'Weather and time in Paris?' }],
        tools: [weatherTool, { name: 'get_time', input_schema: { type: 'object', properties: { zone: { type: 'string' } } } }],
      };
      const final = streamed ? await sdk.messages.stream(req).finalMessage() : await sdk.messages.create(req);
      assert.equal(final.stop_reason, 'tool_use');
      const uses = final.content.filter((b) => b.type === 'tool_use');
      assert.deepEqual(uses.map((b) => ({ id: b.id, name: b.name, input: b.input })), NO_INDEX_CALLS);
      assert.equal(final.model, 'gemini-like');
    });
  }

  // Anthropic accepts a stream, sends message_start (and a ping), then overloaded_error: the
  // gateway holds message_start back until the next event, so nothing has reached the client
  // and the request goes to the group's next account; the SDK sees one whole stream.
  test('Anthropic target that reports overloaded_error right after message_start: failover to the next account', T, async () => {
    mock.reset();
    const seen = [];
    for (let i = 0; i < 2; i++) {  // round robin: one of the two starts on the overloaded account
      const stream = sdk.messages.stream({ model: 'ant-accounts', max_tokens: 64, messages });
      const events = [];
      stream.on('streamEvent', (e) => events.push(e.type));
      const final = await stream.finalMessage();
      assert.equal(final.model, 'ant-accounts');
      assert.equal(final.stop_reason, 'end_turn');
      assert.ok(final.content.some((b) => b.type === 'text' && b.text.length > 0), JSON.stringify(final));
      assert.equal(events.filter((e) => e === 'message_start').length, 1, events.join(','));
      seen.push(hits(mock).map((h) => h.path));
      mock.reset();
    }
    assert.ok(seen.some((paths) => paths.length === 2 && /overloaded-at-start/.test(paths[0])), JSON.stringify(seen));
  });

  test('count_tokens: passed through to an Anthropic target (model spliced)', T, async () => {
    mock.reset();
    const r = await sdk.messages.countTokens({ model: 'ant', messages });
    assert.deepEqual(r, { input_tokens: COUNT_TOKENS });
    const h = hits(mock);
    assert.equal(h.length, 1);
    assert.equal(h[0].path, '/v1/messages/count_tokens');
    assert.equal(JSON.parse(h[0].body).model, 'claude-sonnet-4');
  });

  test('count_tokens: estimated for an OpenAI target (body bytes / 4), nothing sent upstream', T, async () => {
    mock.reset();
    const body = JSON.stringify({ model: 'oa', messages: [{ role: 'user', content: 'Count these tokens, please.' }] });
    const res = await fetch(`${gw.url}/v1/messages/count_tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': CLIENT_TOKEN, 'anthropic-version': '2023-06-01' },
      body,
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { input_tokens: Math.ceil(Buffer.byteLength(body) / 4) });
    const viaSdk = await sdkBearer.messages.countTokens({ model: 'oa', messages });
    assert.ok(Number.isInteger(viaSdk.input_tokens) && viaSdk.input_tokens > 0, JSON.stringify(viaSdk));
    assert.equal(hits(mock).length, 0);
  });

  test('count_tokens settles no tokens: a request for rpm, nothing for tpd or the budget', T, async () => {
    mock.reset();
    const counted = new Anthropic({ baseURL: gw.url, apiKey: COUNTED_TOKEN, maxRetries: 0, timeout: 10000 });
    const key = async () => (await (await fetch(`${gw.adminUrl}/admin/v1/keys`)).json()).keys.find((k) => k.name === 'counted');
    // A long conversation: its estimate (body bytes / 4 + default_output_tokens) is well over 1,000.
    const long = [{ role: 'user', content: 'Count these tokens. '.repeat(200) }];
    // Passed through to an Anthropic target, and answered by the gateway for an OpenAI target.
    const { data: ant, response } = await counted.messages.countTokens({ model: 'ant', messages: long }).withResponse();
    assert.deepEqual(ant, { input_tokens: COUNT_TOKENS });
    let k = await key();
    assert.deepEqual([k.budget.used, k.budget.reserved], [0, 0], JSON.stringify(k.budget));
    assert.equal(response.headers.get('x-ratelimit-remaining-tokens'), '1000000');
    const oa = await counted.messages.countTokens({ model: 'oa', messages: long });
    assert.ok(oa.input_tokens > 1000, JSON.stringify(oa));
    assert.equal(hits(mock).length, 1);
    k = await key();
    assert.equal(k.usage.rpm.remaining, 98, JSON.stringify(k.usage));
    assert.equal(k.usage.tpd.remaining, 1000000, JSON.stringify(k.usage));
    assert.deepEqual([k.budget.used, k.budget.reserved], [0, 0], JSON.stringify(k.budget));
    const countLines = () => accessLines(gw).filter((l) => l.path === '/v1/messages/count_tokens' && l.client_name === 'counted');
    await waitFor(() => countLines().length === 2, { timeout: 5000 });
    assert.deepEqual(countLines().map((l) => l.status), ['200', '200']);
    // A generation of the same key is charged its usage as before.
    await counted.messages.create({ model: 'ant', max_tokens: 64, messages });
    k = await key();
    const used = ANTHROPIC_USAGE.input_tokens + ANTHROPIC_USAGE.cache_read_input_tokens + ANTHROPIC_USAGE.output_tokens;
    assert.equal(k.budget.used, used, JSON.stringify(k.budget));
    assert.equal(k.usage.rpm.remaining, 97);
  });

  test('a mixed group fails over across dialects (Anthropic 529 -> OpenAI, OpenAI 503 -> Anthropic)', T, async () => {
    // Each group's first request starts at its first target (round robin), the failing one.
    const route = () => hits(mock).map((h) => h.path.replace(/^\/mode\/[^/]*/, ''));
    mock.reset();
    const stream = sdk.messages.stream({ model: 'mixed', max_tokens: 16, messages });
    const sf = await stream.finalMessage();
    assert.equal(sf.model, 'mixed');
    assert.equal(sf.content[0].text, 'Hello from gpt-4o!');
    assert.deepEqual(route(), ['/v1/messages', '/v1/chat/completions']);
    assert.equal(hits(mock)[0].response_status, 529);

    mock.reset();
    const b = await sdk.messages.create({ model: 'mixed-back', max_tokens: 16, messages });
    assert.equal(b.model, 'mixed-back');
    assert.deepEqual(b.content, [{ type: 'text', text: 'Hello from claude-sonnet-4!' }]);
    assert.deepEqual(route(), ['/v1/chat/completions', '/v1/messages']);
    assert.equal(hits(mock)[0].response_status, 503);

    // Whichever target a request starts on, the answer is the working target's.
    for (let i = 0; i < 2; i++) {
      const a = await sdk.messages.create({ model: 'mixed', max_tokens: 16, messages });
      assert.equal(a.model, 'mixed');
      assert.deepEqual(a.content, [{ type: 'text', text: 'Hello from gpt-4o!' }]);
    }
  });

  test('Claude-Code-like request (cache_control system blocks, tools, stream, anthropic-beta, metadata.user_id) to an OpenAI target', T, async () => {
    mock.reset();
    const body = {
      model: 'oa',
      max_tokens: 32000,
      stream: true,
      temperature: 1,
      system: [
        { type: 'text', text: "You are Claude Code, Anthropic's official CLI for Claude.", cache_control: { type: 'ephemeral' } },
        { type: 'text', text: 'Answer tersely.', cache_control: { type: 'ephemeral' } },
      ],
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: '<system-reminder>context</system-reminder>' },
            { type: 'text', text: 'What is in this folder?', cache_control: { type: 'ephemeral' } },
          ],
        },
      ],
      tools: [
        {
          name: 'Bash',
          description: 'Run a shell command',
          input_schema: {
            type: 'object',
            properties: { command: { type: 'string' } },
            required: ['command'],
            additionalProperties: false,
            $schema: 'http://json-schema.org/draft-07/schema#',
          },
        },
      ],
      metadata: { user_id: 'user_abc_account_123_session_xyz' },
    };
    const res = await fetch(`${gw.url}/v1/messages?beta=true`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${CLIENT_TOKEN}`,
        'anthropic-version': '2023-06-01',
        'anthropic-beta': 'claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14',
        'x-app': 'cli',
        'user-agent': 'claude-cli/1.0.0 (external, cli)',
      },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /text\/event-stream/);
    const ev = sseEvents(await res.text());
    const types = ev.map((e) => e.event);
    assert.equal(types[0], 'message_start');
    assert.deepEqual(types.slice(-2), ['message_delta', 'message_stop']);
    for (const e of ev) assert.equal(e.data.type, e.event, 'every event names its type in its data');
    const text = ev
      .filter((e) => e.event === 'content_block_delta')
      .map((e) => e.data.delta.text)
      .join('');
    assert.equal(text, 'Hello from gpt-4o!');
    assert.equal(ev.at(-2).data.delta.stop_reason, 'end_turn');

    const h = hits(mock);
    assert.equal(h.length, 1);
    assert.equal(h[0].path, '/v1/chat/completions');
    const sent = JSON.parse(h[0].body);
    assert.equal(sent.user, 'user_abc_account_123_session_xyz');
    assert.equal(sent.messages[0].role, 'system');
    assert.equal(sent.messages[0].content, "You are Claude Code, Anthropic's official CLI for Claude.\nAnswer tersely.");
    assert.equal(sent.tools[0].function.name, 'Bash');
    assert.equal(h[0].body.includes('cache_control'), false, 'cache_control is dropped');
  });

  test('@ai-sdk/anthropic: generateText and streamText through the gateway', T, async () => {
    const provider = createAnthropic({ baseURL: `${gw.url}/v1`, apiKey: CLIENT_TOKEN });
    for (const [group, target] of [
      ['oa', 'gpt-4o'],
      ['ant', 'claude-sonnet-4'],
    ]) {
      const g = await generateText({ model: provider(group), prompt: 'Hi', maxRetries: 0 });
      assert.equal(g.text, `Hello from ${target}!`);
      assert.equal(g.finishReason, 'stop');
      assert.ok(g.usage.outputTokens > 0, JSON.stringify(g.usage));
      const s = streamText({ model: provider(group), prompt: 'Hi', maxRetries: 0 });
      let text = '';
      for await (const t of s.textStream) text += t;
      assert.equal(text, `Hello from ${target}!`);
      assert.equal(await s.finishReason, 'stop');
      const u = await s.usage;
      assert.equal(u.outputTokens, group === 'oa' ? CHAT_USAGE.completion_tokens : ANTHROPIC_USAGE.output_tokens);
    }
  });
});
