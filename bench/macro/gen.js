#!/usr/bin/env node
// Generates the fixed payloads of the macro benchmark and renders config templates.
//
//   node gen.js bodies DIR              -> DIR/body-1k.json, body-100k.json, body-5m.json,
//                                          body-1k-stream.json, body-1k-astream.json,
//                                          body-idle.json, mock-json.txt, mock-sse.txt,
//                                          mock-anthropic-sse.txt (what the mock answers)
//   node gen.js render TEMPLATE OUT K=V ...
//                                       -> OUT = TEMPLATE with every @K@ replaced by V;
//                                          V may be "@return:PATH": nginx directives that
//                                          answer 200 with PATH's content (pieces in `set`
//                                          variables: one config token holds at most 4 KB).
'use strict';
const fs = require('fs');
const path = require('path');

// A chat request of about `size` bytes: a system prompt and a user message padded with prose.
function chatRequest(model, size, stream) {
  const base = {
    model,
    messages: [
      { role: 'system', content: 'You are a concise assistant. Answer in one short paragraph.' },
      { role: 'user', content: '' },
    ],
    temperature: 0.2,
    max_tokens: 256,
  };
  if (stream) base.stream = true;
  const empty = JSON.stringify(base).length;
  const filler = 'The quick brown fox jumps over the lazy dog while the gateway relays bytes. ';
  const need = Math.max(0, size - empty);
  base.messages[1].content = filler.repeat(Math.ceil(need / filler.length)).slice(0, need);
  return JSON.stringify(base);
}

// ~600-byte non-streaming chat completion, model "real-model".
function mockJson() {
  return JSON.stringify({
    id: 'chatcmpl-bench0000000000000000000000',
    object: 'chat.completion',
    created: 1700000000,
    model: 'real-model',
    system_fingerprint: 'fp_bench',
    choices: [{
      index: 0,
      message: {
        role: 'assistant',
        content: 'Benchmarks compare two proxies on the same upstream, interleaved, with the same ' +
          'connection count and duration, so that drift on a noisy machine hits both alike. ' +
          'This answer is static and about six hundred bytes long in total.',
      },
      logprobs: null,
      finish_reason: 'stop',
    }],
    usage: { prompt_tokens: 250, completion_tokens: 48, total_tokens: 298 },
  });
}

// ~7 KB SSE answer: 20 content chunks, a final chunk with finish_reason, then [DONE].
function mockSse() {
  const words = ['Streaming', ' answers', ' arrive', ' as', ' server', '-sent', ' events', ',',
    ' one', ' chunk', ' per', ' token', ' group', ',', ' each', ' carrying', ' the', ' model', ' name', '.'];
  let out = '';
  const chunk = (delta, finish) => 'data: ' + JSON.stringify({
    id: 'chatcmpl-bench0000000000000000000000',
    object: 'chat.completion.chunk',
    created: 1700000000,
    model: 'real-model',
    system_fingerprint: 'fp_bench',
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    usage: null,
  }) + '\n\n';
  out += chunk({ role: 'assistant', content: '' }, null);
  for (const w of words) out += chunk({ content: w + ' '.repeat(85) }, null); // pad to ~7 KB
  out += chunk({}, 'stop');
  out += 'data: [DONE]\n\n';
  return out;
}

// Scenario s: the same 20 words as mockSse() (same padding) as Anthropic's Messages stream:
// message_start, content_block_start, 20 text deltas, content_block_stop, message_delta,
// message_stop (25 events). The gateway translates it into what mockSse() is: a role chunk,
// 20 content chunks, a finish chunk and [DONE].
function mockAnthropicSse() {
  const words = ['Streaming', ' answers', ' arrive', ' as', ' server', '-sent', ' events', ',',
    ' one', ' chunk', ' per', ' token', ' group', ',', ' each', ' carrying', ' the', ' model', ' name', '.'];
  const ev = (type, data) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  let out = ev('message_start', {
    message: { id: 'msg_bench00000000000000000000', type: 'message', role: 'assistant', model: 'real-model',
      content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 250, output_tokens: 1 } },
  });
  out += ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
  for (const w of words) out += ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: w + ' '.repeat(85) } });
  out += ev('content_block_stop', { index: 0 });
  out += ev('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 48 } });
  out += ev('message_stop', {});
  return out;
}

// Escapes text for the inside of an nginx single-quoted string.
function nginxQuoted(s) {
  if (s.includes('$')) throw new Error('nginx would expand $ in a return body');
  return s.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n').replace(/\r/g, '\\r');
}

// `set $k_1 '...'; set $k_2 '...'; return 200 '$k_1$k_2';` — the body in pieces below 4 KB.
function nginxReturn(name, text) {
  const lines = [];
  const vars = [];
  for (let i = 0; i < text.length; i += 2000) {
    const v = `$${name}_${vars.length + 1}`;
    vars.push(v);
    lines.push(`set ${v} '${nginxQuoted(text.slice(i, i + 2000))}';`);
  }
  lines.push(`return 200 '${vars.join('')}';`);
  return lines.join('\n            ');
}

// A streamed answer as providers send it: chunked, one chunk per SSE event (`echo -n` per event,
// from nginx's echo module; each echo is one output call, which nginx's chunked filter frames as
// one chunk; nginx still gathers small chunks into fewer writes, as a provider's server does
// when events come faster than the network drains them).
function nginxChunked(text) {
  const events = text.split(/(?<=\n\n)/);
  if (events.join('') !== text) throw new Error('stream does not split into events');
  return events.map((e) => {
    if (e.length > 3000) throw new Error('an event too long for one nginx config token');
    return `echo -n '${nginxQuoted(e)}';`;
  }).join('\n            ');
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'bodies') {
  const dir = args[0];
  fs.mkdirSync(dir, { recursive: true });
  const w = (name, text) => fs.writeFileSync(path.join(dir, name), text);
  w('body-1k.json', chatRequest('fast', 1024, false));
  w('body-1k-stream.json', chatRequest('stream', 1024, true));
  w('body-100k.json', chatRequest('fast', 100 * 1024, false));
  w('body-5m.json', chatRequest('fast', 5 * 1024 * 1024, false));
  w('body-idle.json', chatRequest('idle', 512, true));
  w('body-1k-astream.json', chatRequest('astream', 1024, true));
  w('mock-json.txt', mockJson());
  w('mock-sse.txt', mockSse());
  w('mock-anthropic-sse.txt', mockAnthropicSse());
} else if (cmd === 'render') {
  const [tpl, out, ...kv] = args;
  let text = fs.readFileSync(tpl, 'utf8');
  for (const pair of kv) {
    const i = pair.indexOf('=');
    const key = pair.slice(0, i);
    let val = pair.slice(i + 1);
    if (val.startsWith('@return:')) val = nginxReturn(key.toLowerCase(), fs.readFileSync(val.slice(8), 'utf8'));
    else if (val.startsWith('@chunked:')) val = nginxChunked(fs.readFileSync(val.slice(9), 'utf8'));
    text = text.split('@' + key + '@').join(val);
  }
  const left = text.match(/@[A-Z_]+@/);
  if (left) throw new Error(`${tpl}: unreplaced ${left[0]}`);
  fs.writeFileSync(out, text);
} else {
  console.error('usage: gen.js bodies DIR | render TEMPLATE OUT K=V...');
  process.exit(2);
}
