// Writes the seed corpora of the Anthropic codec fuzz targets (tests/fuzz/corpus/anthropic_*):
// the mock provider's Anthropic answers and streams (tools/mock-provider/anthropic.js), OpenAI
// chat requests/answers/streams, and Messages requests. Run from the repo:
//   node tests/fuzz/make_anthropic_corpus.mjs
import fs from 'node:fs';
import path from 'node:path';
import { anthropicEvents, anthropicMessage, anthropicError, toolInput } from '../../tools/mock-provider/anthropic.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), 'corpus');
const put = (target, name, data) => {
  fs.mkdirSync(path.join(root, target), { recursive: true });
  fs.writeFileSync(path.join(root, target, name), data);
};
// split targets: a trailing byte chooses the cuts (tests/fuzz/split.hpp); 0 = one read, 17 = byte by byte
const split = (target, name, text) => {
  const b = Buffer.from(text);
  put(target, `${name}-whole`, Buffer.concat([b, Buffer.from([0])]));
  const cut = (f) => { const v = Math.floor(b.length * f); return Buffer.from([v & 0xff, v >> 8]); };
  put(target, `${name}-cuts`, Buffer.concat([b, cut(0.75), cut(0.5), cut(0.25), Buffer.from([3])]));
};
const frame = (evs) => evs.map((e) => `${e.event ? `event: ${e.event}\n` : ''}data: ${e.data}\n\n`).join('');
const tools = [{ name: 'get_weather', input_schema: { type: 'object', properties: { location: { type: 'string' } } } }];

for (const [name, modes, json] of [
  ['text', {}, {}],
  ['tool_thinking', { tool: true, thinking: true }, { tools }],
  ['overloaded', { overloadedMidStream: true }, {}],
]) {
  split('anthropic_stream', `anthropic_${name}`, frame(anthropicEvents('1', 'claude', ['Hel', 'lo ', '"wo\\rld"'], json, modes)));
  put('anthropic_answer', `anthropic_${name}`, JSON.stringify(anthropicMessage('1', 'claude', 'Hello', json, modes)));
}
put('anthropic_answer', 'anthropic_529', JSON.stringify(anthropicError(529)));
const chunk = (delta, finish = null) => ({ data: JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', choices: [{ index: 0, delta, finish_reason: finish }] }) });
const args = JSON.stringify(toolInput('gpt'));
split('anthropic_stream', 'openai_tools', frame([
  chunk({ role: 'assistant', content: '' }), chunk({ content: 'Hi' }),
  chunk({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'f', arguments: '' } }] }),
  ...[0, 5, 10, 15].map((i) => chunk({ tool_calls: [{ index: 0, function: { arguments: args.slice(i, i + 5) } }] })),
  chunk({ tool_calls: [{ index: 1, id: 'call_2', type: 'function', function: { name: 'g', arguments: '{}' } }] }),
  chunk({}, 'tool_calls'),
  { data: JSON.stringify({ id: 'chatcmpl-1', choices: [], usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 } }) },
  { data: '[DONE]' },
]));
split('anthropic_stream', 'openai_error', frame([chunk({ content: 'a' }), { data: '{"error":{"message":"x","type":"server_error"}}' }]));
put('anthropic_answer', 'openai_tool_calls', JSON.stringify({ id: 'c', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: args } }] }, finish_reason: 'tool_calls' }], usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7, prompt_tokens_details: { cached_tokens: 1 } } }));
put('anthropic_answer', 'openai_error', '{"error":{"message":"bad","type":"invalid_request_error","param":"x","code":null}}');

put('anthropic_request', 'openai_full', JSON.stringify({
  model: 'fast', max_completion_tokens: 50, temperature: 0.5, top_p: 0.9, stop: ['x'], stream: true, stream_options: { include_usage: true }, user: 'u',
  messages: [
    { role: 'system', content: 'S' }, { role: 'developer', content: [{ type: 'text', text: 'D' }] },
    { role: 'user', content: [{ type: 'text', text: 'look' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }, { type: 'image_url', image_url: { url: 'https://e/x.png' } }] },
    { role: 'assistant', content: 'ok', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }] },
    { role: 'tool', tool_call_id: 'c1', content: 'r' },
  ],
  tools: [{ type: 'function', function: { name: 'f', description: 'd', parameters: { type: 'object' } } }],
  tool_choice: { type: 'function', function: { name: 'f' } }, parallel_tool_calls: false,
}));
put('anthropic_request', 'anthropic_full', JSON.stringify({
  model: 'claude', max_tokens: 100, system: [{ type: 'text', text: 'S', cache_control: { type: 'ephemeral' } }], stream: true,
  stop_sequences: ['END'], metadata: { user_id: 'u' }, tool_choice: { type: 'tool', name: 'f', disable_parallel_tool_use: true },
  tools: [{ name: 'f', description: 'd', input_schema: { type: 'object' } }],
  messages: [
    { role: 'user', content: [{ type: 'text', text: 'hi' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } }] },
    { role: 'assistant', content: [{ type: 'thinking', thinking: 't', signature: 's' }, { type: 'tool_use', id: 't1', name: 'f', input: { a: 1 } }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: 'r' }] },
  ],
}));
put('anthropic_request', 'refused', '{"messages":[],"n":2,"temperature":1.5}');
console.log(`anthropic corpus written under ${root}`);
