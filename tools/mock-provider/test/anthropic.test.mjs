// Tests of the mock provider's Anthropic dialect (POST /v1/messages), no gateway involved.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, answerText } from '../server.js';
import { toolInput, THINKING_TEXT } from '../anthropic.js';
import { request, parseSSE } from '../../../tests/e2e/lib/http.mjs';

const T = { timeout: 20000 };
let mock;
before(async () => {
  mock = await startMock();
});
after(async () => {
  await mock.close();
});
beforeEach(() => mock.reset());

const HEADERS = { 'content-type': 'application/json', 'x-api-key': 'sk-ant-test', 'anthropic-version': '2023-06-01' };
const post = (body, headers = HEADERS, p = '/v1/messages') =>
  request({ url: mock.url + p, method: 'POST', headers, body: JSON.stringify(body) });
const msg = (extra = {}) => ({ model: 'claude-x', max_tokens: 100, messages: [{ role: 'user', content: 'Hi' }], ...extra });
const TOOLS = [{ name: 'get_weather', description: 'w', input_schema: { type: 'object', properties: {} } }];

// Reads a Messages stream like a strict client: order of events, block indexes, JSON deltas.
function readStream(text) {
  const { events, trailing } = parseSSE(text);
  assert.equal(trailing, null);
  const out = { types: [], text: '', thinking: '', tools: [], pings: 0, stop: null, usage: {}, error: null, deltas: 0 };
  let open = null;
  for (const e of events) {
    const d = JSON.parse(e.data);
    assert.equal(e.event, d.type, 'event name equals data.type');
    out.types.push(d.type);
    switch (d.type) {
      case 'message_start':
        assert.equal(out.types.length, 1);
        out.usage = { ...d.message.usage };
        out.id = d.message.id;
        break;
      case 'ping':
        out.pings++;
        break;
      case 'content_block_start':
        assert.equal(open, null);
        open = d.index;
        if (d.content_block.type === 'tool_use') out.tools.push({ id: d.content_block.id, name: d.content_block.name, json: '' });
        break;
      case 'content_block_delta':
        assert.equal(d.index, open);
        if (d.delta.type === 'text_delta') out.text += d.delta.text;
        if (d.delta.type === 'thinking_delta') out.thinking += d.delta.thinking;
        if (d.delta.type === 'input_json_delta') {
          out.tools.at(-1).json += d.delta.partial_json;
          out.deltas++;
        }
        break;
      case 'content_block_stop':
        assert.equal(d.index, open);
        open = null;
        break;
      case 'message_delta':
        out.stop = d.delta.stop_reason;
        Object.assign(out.usage, d.usage);
        break;
      case 'error':
        out.error = d.error;
        break;
    }
  }
  return out;
}

test('messages: JSON answer with Anthropic shape and usage', T, async () => {
  const r = await post(msg());
  assert.equal(r.status, 200);
  const j = r.json();
  assert.equal(j.type, 'message');
  assert.equal(j.model, 'claude-x');
  assert.deepEqual(j.content, [{ type: 'text', text: answerText('claude-x') }]);
  assert.equal(j.stop_reason, 'end_turn');
  assert.equal(j.usage.input_tokens, 9);
  assert.equal(j.usage.output_tokens, 12);
  assert.equal(mock.stats().requests[0].headers['anthropic-version'], '2023-06-01');
});

test('messages: tool_use and thinking in a JSON answer', T, async () => {
  const r = await post(msg({ tools: TOOLS, tool_choice: { type: 'any' } }), { ...HEADERS, 'x-mock-mode': 'thinking' });
  const j = r.json();
  assert.deepEqual(j.content.map((b) => b.type), ['thinking', 'text', 'tool_use']);
  assert.equal(j.content[2].name, 'get_weather');
  assert.deepEqual(j.content[2].input, toolInput('claude-x'));
  assert.equal(j.stop_reason, 'tool_use');
});

test('messages: stream reproduces the real event sequence', T, async () => {
  const r = await post(msg({ stream: true }));
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /text\/event-stream/);
  const s = readStream(r.text);
  assert.equal(s.types[0], 'message_start');
  assert.equal(s.types.at(-1), 'message_stop');
  assert.equal(s.types.at(-2), 'message_delta');
  assert.equal(s.pings, 1);
  assert.equal(s.text, answerText('claude-x'));
  assert.equal(s.usage.input_tokens, 9);
  assert.equal(s.usage.output_tokens, 12);
  assert.equal(s.stop, 'end_turn');
  assert.ok(!r.text.includes('[DONE]'));
});

test('messages: streamed tool input arrives in 20+ small input_json_delta fragments', T, async () => {
  const r = await post(msg({ stream: true, tools: TOOLS }), { ...HEADERS, 'x-mock-mode': 'tool,thinking' });
  const s = readStream(r.text);
  assert.equal(s.thinking, THINKING_TEXT);
  assert.equal(s.tools.length, 1);
  assert.ok(s.deltas >= 20, `${s.deltas} deltas`);
  assert.deepEqual(JSON.parse(s.tools[0].json), toolInput('claude-x'));
  assert.equal(s.stop, 'tool_use');
});

test('messages: overloaded_error in the middle of the stream', T, async () => {
  const r = await post(msg({ stream: true }), { ...HEADERS, 'x-mock-mode': 'overloaded-mid-stream' });
  const s = readStream(r.text);
  assert.equal(s.types.at(-1), 'error');
  assert.deepEqual(s.error, { type: 'overloaded_error', message: 'Overloaded' });
  assert.ok(!s.types.includes('message_stop'));
});

test('messages: 529 overloaded before the stream, in Anthropic error shape', T, async () => {
  const r = await post(msg({ stream: true }), { ...HEADERS, 'x-mock-mode': 'status-529' });
  assert.equal(r.status, 529);
  assert.deepEqual(r.json(), { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
});

test('messages: x-api-key and anthropic-version are required', T, async () => {
  const noKey = { ...HEADERS };
  delete noKey['x-api-key'];
  let r = await post(msg(), noKey);
  assert.equal(r.status, 401);
  assert.equal(r.json().error.type, 'authentication_error');
  const noVersion = { ...HEADERS };
  delete noVersion['anthropic-version'];
  r = await post(msg(), noVersion);
  assert.equal(r.status, 400);
  assert.match(r.json().error.message, /anthropic-version/);
  r = await post({ model: 'c', messages: [] });
  assert.equal(r.status, 400);
  assert.match(r.json().error.message, /max_tokens/);
  r = await post(msg({ temperature: 1.5 }));
  assert.equal(r.status, 400);
});

test('messages: an expected key is enforced when configured', T, async () => {
  const m = await startMock({ anthropicKey: 'sk-ant-right' });
  try {
    let r = await request({ url: m.url + '/v1/messages', method: 'POST', headers: HEADERS, body: JSON.stringify(msg()) });
    assert.equal(r.status, 401);
    r = await request({ url: m.url + '/v1/messages', method: 'POST', headers: { ...HEADERS, 'x-api-key': 'sk-ant-right' }, body: JSON.stringify(msg()) });
    assert.equal(r.status, 200);
  } finally {
    await m.close();
  }
});
