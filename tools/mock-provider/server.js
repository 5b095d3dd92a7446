#!/usr/bin/env node
// A fake OpenAI-compatible upstream with fault modes, for OpenBridge's tests and benchmarks.
//
// CLI:  node server.js --port 0 [--host 127.0.0.1] [--tls-cert F --tls-key F] [--ready-file F]
//                      [--keep-alive-timeout MS] [--quiet]
//       prints {"port":N} on stdout once listening (and writes it to --ready-file).
// API:  import { startMock } from './server.js';
//       const m = await startMock({ tls: { cert, key }, host, port });
//       m.port, m.url, m.stats(), m.reset(), await m.close()
//
// Fault modes are chosen by a path prefix `/mode/<m1>,<m2>/` before `/v1/...` (the gateway appends
// the request path to the provider's base URL), or by an `x-mock-mode: m1,m2` request header.
// See README.md beside this file for the list.

import http from 'node:http';
import https from 'node:https';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { anthropicError, anthropicEvents, anthropicMessage, checkAnthropicRequest, toolInput, COUNT_TOKENS } from './anthropic.js';

const CREATED = 1700000000;
// What POST /v1/responses/input_tokens answers as the request's input token count.
export const INPUT_TOKENS = 17;
const MAX_KEEP = 64 * 1024 * 1024; // request bodies up to this size are parsed (for `model`)

// Wall-clock milliseconds with sub-millisecond precision (comparable across processes on one machine,
// and monotonic within this process).
export function nowMs() {
  return performance.timeOrigin + performance.now();
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function answerText(model) {
  return `Hello from ${model}!`;
}

// Deterministic split of a text into about n pieces.
export function splitText(text, n = 8) {
  const size = Math.max(1, Math.ceil(text.length / n));
  const out = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

function bigPad(n) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return alphabet.repeat(Math.ceil(n / alphabet.length)).slice(0, n);
}

// ---------------------------------------------------------------------------------------------
// Mode parsing

export function parseModes(list) {
  const m = { names: [] };
  for (const raw of list) {
    const s = String(raw).trim();
    if (!s) continue;
    m.names.push(s);
    let x;
    if (s === 'tiny') m.tiny = 1;
    else if ((x = /^tiny-(\d+)$/.exec(s))) m.tiny = Number(x[1]);
    else if ((x = /^status-(\d{3})$/.exec(s))) m.status = Number(x[1]);
    else if (s === 'hang') m.hang = true;
    else if (s === 'hang-after-head') m.hangAfterHead = true;
    else if (s === 'drop') m.drop = true;
    else if (s === 'drop-mid-stream') m.dropMidStream = true;
    else if (s === 'end-without-done') m.endWithoutDone = true;
    else if (s === 'sse-content-length') m.sseContentLength = true;
    else if ((x = /^slow-stream-(\d+)$/.exec(s))) m.slowStream = Number(x[1]);
    else if ((x = /^delay-(\d+)$/.exec(s))) m.delay = Number(x[1]);
    else if ((x = /^slow-read-(\d+)$/.exec(s))) m.slowRead = Number(x[1]);
    else if (s === 'crlf') m.crlf = true;
    else if (s === 'comments') m.comments = true;
    else if ((x = /^prefill-(\d+)(?:-(\d+))?$/.exec(s))) {
      m.prefill = Number(x[1]);
      m.prefillEvery = Math.max(1, Number(x[2] ?? 500));
    } else if ((x = /^split-first-(\d+)$/.exec(s)))
      m.splitFirst = Number(x[1]);
    else if (s === 'stream-error-event') m.streamErrorEvent = true;
    else if ((x = /^big-(\d+)$/.exec(s))) m.big = Number(x[1]);
    else if (s === 'close') m.close = true;
    else if (s === 'chunked') m.chunked = true;
    else if (s === 'error-model') m.errorModel = true;
    else if (s === 'tool') m.tool = true;
    else if (s === 'tools-no-index') m.toolsNoIndex = true;
    else if (s === 'thinking') m.thinking = true;
    else if ((x = /^reasoning-(\d+)$/.exec(s))) m.reasoning = Number(x[1]);
    else if (s === 'overloaded-mid-stream') m.overloadedMidStream = true;
    else if (s === 'overloaded-at-start') m.overloadedAtStart = true;
    else m.unknown = (m.unknown || []).concat(s);
  }
  return m;
}

// Splits "/prefix/mode/a,b/v1/chat/completions?x=1" into modes and the API route. Besides the
// OpenAI layout ("*/v1/<op>", which covers Groq's "/openai/v1/<op>" and Azure's "/openai/v1/<op>"),
// two other providers' layouts map to the same routes:
//   Azure deployments  "*/openai/deployments/<deployment>/<op>?api-version=..." -> "/v1/<op>"
//   Gemini             "*/v1beta/openai/<op>"                                   -> "/v1/<op>"
// `layout` says which one matched ("openai", "azure", "gemini"); `deployment` is Azure's.
export function parseTarget(rawUrl) {
  const q = rawUrl.indexOf('?');
  const pathname = q >= 0 ? rawUrl.slice(0, q) : rawUrl;
  const modes = [];
  const mm = /\/mode\/([^/]*)\//.exec(pathname);
  if (mm) modes.push(...decodeURIComponent(mm[1]).split(','));
  const i = pathname.indexOf('/v1/');
  let route = i >= 0 ? pathname.slice(i) : pathname;
  let layout = 'openai';
  let deployment = null;
  const az = /\/openai\/deployments\/([^/]+)(\/.*)$/.exec(pathname);
  const gm = /\/v1beta\/openai(\/.*)$/.exec(pathname);
  if (i < 0 && /\/openai\/models$/.test(pathname)) {
    route = '/v1/models'; // Azure's resource-level model list
    layout = 'azure';
  } else if (i < 0 && az) {
    route = '/v1' + az[2];
    layout = 'azure';
    deployment = decodeURIComponent(az[1]);
  } else if (i < 0 && gm) {
    route = '/v1' + gm[1];
    layout = 'gemini';
  }
  return { pathname, route, modes, layout, deployment, query: q >= 0 ? rawUrl.slice(q + 1) : '' };
}

// ---------------------------------------------------------------------------------------------
// Answers

// OpenAI's transcription usage (gpt-4o-transcribe): 38 tokens, most of them audio.
export function usageTranscription() {
  return { type: 'tokens', input_tokens: 30, input_token_details: { text_tokens: 2, audio_tokens: 28 }, output_tokens: 8, total_tokens: 38 };
}

function usageChat() {
  return { prompt_tokens: 9, completion_tokens: 12, total_tokens: 21 };
}

function errorBody(status, model, modes) {
  const table = {
    400: ['invalid_request_error', 'invalid_request'],
    401: ['invalid_request_error', 'invalid_api_key'],
    403: ['invalid_request_error', 'forbidden'],
    404: ['invalid_request_error', 'model_not_found'],
    429: ['requests', 'rate_limit_exceeded'],
  };
  const [type, code] = table[status] || (status >= 500 ? ['server_error', 'server_error'] : ['invalid_request_error', null]);
  const body = { error: { message: `mock upstream answered ${status}`, type, param: null, code } };
  if (modes.errorModel && model !== undefined) body.model = model;
  return body;
}

function chatCompletion(id, model, text) {
  return {
    id,
    object: 'chat.completion',
    created: CREATED,
    model,
    system_fingerprint: 'fp_mock',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: text, refusal: null },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: usageChat(),
  };
}

function chatChunks(id, model, text, includeUsage, reasoning = 0) {
  const base = { id, object: 'chat.completion.chunk', created: CREATED, model, system_fingerprint: 'fp_mock' };
  const u = includeUsage ? { usage: null } : {};
  const ev = [];
  ev.push({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }], ...u });
  // reasoning-<n>: a reasoning model's thinking first (DeepSeek's and OpenRouter's field).
  for (let i = 0; i < reasoning; i++) {
    ev.push({ ...base, choices: [{ index: 0, delta: { content: null, reasoning_content: `step ${i}. ` }, logprobs: null, finish_reason: null }], ...u });
  }
  for (const piece of splitText(text)) {
    ev.push({ ...base, choices: [{ index: 0, delta: { content: piece }, logprobs: null, finish_reason: null }], ...u });
  }
  ev.push({ ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }], ...u });
  if (includeUsage) ev.push({ ...base, choices: [], usage: usageChat() });
  return ev.map((o) => ({ data: JSON.stringify(o) }));
}

// Chat completions that call a tool: mode `tool`, or tools given with tool_choice `required` or
// a named function. The arguments are toolInput(model) as JSON; streamed in TOOL_ARG_PIECES deltas.
export const TOOL_ARG_PIECES = 20;

function wantsChatTool(json, modes) {
  if (modes.tool) return true;
  const tc = json && json.tool_choice;
  return !!(json && Array.isArray(json.tools) && json.tools.length && (tc === 'required' || (tc && typeof tc === 'object')));
}

function chatToolName(json) {
  const tc = json && json.tool_choice;
  if (tc && typeof tc === 'object' && tc.function && tc.function.name) return tc.function.name;
  if (json && Array.isArray(json.tools) && json.tools.length && json.tools[0].function) return json.tools[0].function.name;
  return 'get_weather';
}

function chatToolCompletion(id, model, json) {
  const c = chatCompletion(id, model, null);
  c.choices[0].message.tool_calls = [
    { id: `call_mock${id}`, type: 'function', function: { name: chatToolName(json), arguments: JSON.stringify(toolInput(model)) } },
  ];
  c.choices[0].finish_reason = 'tool_calls';
  return c;
}

function chatToolChunks(id, model, json, includeUsage) {
  const base = { id, object: 'chat.completion.chunk', created: CREATED, model, system_fingerprint: 'fp_mock' };
  const args = JSON.stringify(toolInput(model));
  const ev = [];
  const choice = (delta, finish = null) => ({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
  ev.push(choice({ role: 'assistant', content: null }));
  ev.push(choice({ tool_calls: [{ index: 0, id: `call_mock${id}`, type: 'function', function: { name: chatToolName(json), arguments: '' } }] }));
  const n = TOOL_ARG_PIECES;
  for (let i = 0; i < n; i++) {
    const piece = args.slice(Math.floor((i * args.length) / n), Math.floor(((i + 1) * args.length) / n));
    ev.push(choice({ tool_calls: [{ index: 0, function: { arguments: piece } }] }));
  }
  ev.push(choice({}, 'tool_calls'));
  if (includeUsage) ev.push({ ...base, choices: [], usage: usageChat() });
  return ev.map((o) => ({ data: JSON.stringify(o) }));
}

// Mode `tools-no-index`: two parallel tool calls as Gemini's OpenAI-compatible API sends them:
// whole, in one chunk, without `index`, and the turn ended with finish_reason "stop".
export const NO_INDEX_CALLS = [
  { id: 'call_g1', name: 'get_weather', input: { location: 'Paris' } },
  { id: 'call_g2', name: 'get_time', input: { zone: 'CET' } },
];

function noIndexToolCalls() {
  return NO_INDEX_CALLS.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: JSON.stringify(c.input) } }));
}

function noIndexToolCompletion(id, model) {
  const c = chatCompletion(id, model, null);
  c.choices[0].message.tool_calls = noIndexToolCalls();
  c.choices[0].finish_reason = 'stop';
  return c;
}

function noIndexToolChunks(id, model, includeUsage) {
  const base = { id, object: 'chat.completion.chunk', created: CREATED, model, system_fingerprint: 'fp_mock' };
  const choice = (delta, finish = null) => ({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
  const ev = [choice({ role: 'assistant', tool_calls: noIndexToolCalls() }), choice({}, 'stop')];
  if (includeUsage) ev.push({ ...base, choices: [], usage: usageChat() });
  return ev.map((o) => ({ data: JSON.stringify(o) }));
}

function textCompletion(id, model, text) {
  return {
    id,
    object: 'text_completion',
    created: CREATED,
    model,
    system_fingerprint: 'fp_mock',
    choices: [{ text, index: 0, logprobs: null, finish_reason: 'stop' }],
    usage: usageChat(),
  };
}

function completionChunks(id, model, text, includeUsage) {
  const base = { id, object: 'text_completion', created: CREATED, model, system_fingerprint: 'fp_mock' };
  const ev = [];
  for (const piece of splitText(text)) {
    ev.push({ ...base, choices: [{ text: piece, index: 0, logprobs: null, finish_reason: null }] });
  }
  ev.push({ ...base, choices: [{ text: '', index: 0, logprobs: null, finish_reason: 'stop' }] });
  if (includeUsage) ev.push({ ...base, choices: [], usage: usageChat() });
  return ev.map((o) => ({ data: JSON.stringify(o) }));
}

// Deterministic embedding of a string: `dims` floats in [-1, 1) from sha256 of the input.
export function embedVector(input, dims = 8) {
  const out = [];
  let block = 0;
  while (out.length < dims) {
    const h = crypto.createHash('sha256').update(`${block}:${input}`).digest();
    for (let i = 0; i + 2 <= h.length && out.length < dims; i += 2) {
      out.push(Math.round(((h.readUInt16BE(i) / 65536) * 2 - 1) * 1e6) / 1e6);
    }
    block++;
  }
  return out;
}

// The "audio" of /v1/audio/speech: 32 KiB of bytes derived from the model and input (every
// byte value occurs), so a test can compare what it received exactly.
// The text fields of a multipart/form-data body (file parts skipped), or null when unframed.
export function formFields(text, boundary) {
  const parts = text.split(`--${boundary}`);
  if (parts.length < 3) return null;
  const out = {};
  for (const p of parts.slice(1, -1)) {
    const sep = p.indexOf('\r\n\r\n');
    if (sep < 0) return null;
    const head = p.slice(0, sep);
    const name = /name="([^"]*)"/i.exec(head);
    if (!name || /filename=/i.test(head)) continue;
    out[name[1]] = p.slice(sep + 4, p.length - 2); // minus the CRLF before the next delimiter
  }
  return out;
}

export function speechBytes(model, input) {
  const out = Buffer.alloc(32 * 1024);
  let seed = crypto.createHash('sha256').update(`${model}\0${input}`).digest();
  for (let i = 0; i < out.length; i += seed.length) {
    seed.copy(out, i);
    seed = crypto.createHash('sha256').update(seed).digest();
  }
  return out;
}

function embeddings(model, body) {
  let inputs = body.input;
  if (!Array.isArray(inputs)) inputs = [inputs];
  // token arrays (arrays of numbers) are embedded by their JSON text
  const dims = Number.isInteger(body.dimensions) && body.dimensions > 0 && body.dimensions <= 4096 ? body.dimensions : 8;
  const data = inputs.map((inp, index) => {
    const key = typeof inp === 'string' ? inp : JSON.stringify(inp);
    const vec = embedVector(key, dims);
    let embedding = vec;
    if (body.encoding_format === 'base64') {
      const f = new Float32Array(vec);
      embedding = Buffer.from(f.buffer).toString('base64');
    }
    return { object: 'embedding', index, embedding };
  });
  const tokens = inputs.reduce((n, s) => n + (typeof s === 'string' ? Math.max(1, s.split(/\s+/).length) : 1), 0);
  return { object: 'list', data, model, usage: { prompt_tokens: tokens, total_tokens: tokens } };
}

function responseObject(id, model, status, text, msgId) {
  const done = status === 'completed';
  return {
    id,
    object: 'response',
    created_at: CREATED,
    status,
    background: false,
    error: null,
    incomplete_details: null,
    instructions: null,
    max_output_tokens: null,
    model,
    output: done
      ? [
          {
            id: msgId,
            type: 'message',
            status: 'completed',
            role: 'assistant',
            content: [{ type: 'output_text', annotations: [], logprobs: [], text }],
          },
        ]
      : [],
    parallel_tool_calls: true,
    previous_response_id: null,
    service_tier: 'default',
    store: false,
    temperature: 1,
    text: { format: { type: 'text' } },
    tool_choice: 'auto',
    tools: [],
    top_p: 1,
    truncation: 'disabled',
    usage: done
      ? {
          input_tokens: 9,
          input_tokens_details: { cached_tokens: 0 },
          output_tokens: 12,
          output_tokens_details: { reasoning_tokens: 0 },
          total_tokens: 21,
        }
      : null,
    metadata: {},
  };
}

function responseEvents(id, model, text) {
  const msgId = `msg_${id.slice(5)}`;
  const ev = [];
  let seq = 0;
  const push = (type, payload) => ev.push({ event: type, data: JSON.stringify({ type, sequence_number: seq++, ...payload }) });
  push('response.created', { response: responseObject(id, model, 'in_progress', text, msgId) });
  push('response.in_progress', { response: responseObject(id, model, 'in_progress', text, msgId) });
  push('response.output_item.added', {
    output_index: 0,
    item: { id: msgId, type: 'message', status: 'in_progress', role: 'assistant', content: [] },
  });
  push('response.content_part.added', {
    item_id: msgId,
    output_index: 0,
    content_index: 0,
    part: { type: 'output_text', annotations: [], logprobs: [], text: '' },
  });
  for (const piece of splitText(text)) {
    push('response.output_text.delta', { item_id: msgId, output_index: 0, content_index: 0, delta: piece, logprobs: [] });
  }
  push('response.output_text.done', { item_id: msgId, output_index: 0, content_index: 0, text, logprobs: [] });
  push('response.content_part.done', {
    item_id: msgId,
    output_index: 0,
    content_index: 0,
    part: { type: 'output_text', annotations: [], logprobs: [], text },
  });
  push('response.output_item.done', {
    output_index: 0,
    item: {
      id: msgId,
      type: 'message',
      status: 'completed',
      role: 'assistant',
      content: [{ type: 'output_text', annotations: [], logprobs: [], text }],
    },
  });
  push('response.completed', { response: responseObject(id, model, 'completed', text, msgId) });
  return ev;
}

// ---------------------------------------------------------------------------------------------
// The server

export async function startMock(opts = {}) {
  const host = opts.host ?? '127.0.0.1';
  const state = { connections: 0, control_connections: 0, open: 0, requests: [], seq: 0, connSeq: 0, tls_handshakes: [] };
  const sockets = new Set();

  // Writes bytes honouring `tiny` (1-3 bytes per write with a delay). Resolves false if the
  // socket went away.
  async function write(ctx, buf) {
    const { res, modes } = ctx;
    if (typeof buf === 'string') buf = Buffer.from(buf);
    if (res.destroyed || ctx.gone) return false;
    if (!modes.tiny) {
      res.write(buf);
      return true;
    }
    let i = 0;
    let k = 0;
    while (i < buf.length) {
      if (res.destroyed || ctx.gone) return false;
      const n = 1 + (k++ % 3); // 1, 2, 3, 1, 2, 3...
      res.write(buf.subarray(i, i + n));
      i += n;
      await sleep(modes.tiny);
    }
    return true;
  }

  function baseHeaders(ctx, extra = {}) {
    const h = { 'x-mock-request-id': String(ctx.rec.id), ...extra };
    if (ctx.modes.close) h.connection = 'close';
    // Node.js says "Keep-Alive: timeout=N" unless the answer has its own Connection header:
    // keepAliveHint false makes a provider that closes idle connections without saying when.
    else if (opts.keepAliveHint === false) h.connection = 'keep-alive';
    return h;
  }

  async function sendJson(ctx, status, obj, extra = {}) {
    const { res, modes } = ctx;
    const body = Buffer.from(JSON.stringify(obj));
    ctx.rec.response_status = status;
    ctx.rec.response_bytes = body.length;
    ctx.rec.response_sha256 = sha256(body);
    if (body.length <= 65536) ctx.rec.response_body = body.toString('utf8');
    const headers = baseHeaders(ctx, { 'content-type': 'application/json', ...extra });
    if (!modes.chunked) headers['content-length'] = String(body.length);
    res.writeHead(status, headers);
    if (modes.dropMidStream) {
      res.flushHeaders();
      await write(ctx, body.subarray(0, Math.floor(body.length / 2)));
      await sleep(5);
      res.socket?.destroy();
      return;
    }
    if (modes.hangAfterHead) {
      res.flushHeaders();
      return; // never finish
    }
    if (!(await write(ctx, body))) return;
    res.end();
  }

  function sseFrame(ev, crlf) {
    let s = '';
    if (ev.comment !== undefined) s = `: ${ev.comment}\n\n`;
    else {
      if (ev.event) s += `event: ${ev.event}\n`;
      s += `data: ${ev.data}\n\n`;
    }
    return crlf ? s.replace(/\n/g, '\r\n') : s;
  }

  // Binary answer (audio/speech): `speechBytes(model, input)` in 8 chunks with a pause
  // (slow-stream-<ms>, default 1 ms) between them; Content-Length unless `chunked`.
  async function sendBinary(ctx, body, contentType) {
    const { res, modes } = ctx;
    ctx.rec.response_status = 200;
    ctx.rec.response_bytes = body.length;
    ctx.rec.response_sha256 = sha256(body);
    const headers = baseHeaders(ctx, { 'content-type': contentType });
    if (!modes.chunked) headers['content-length'] = String(body.length);
    res.writeHead(200, headers);
    res.flushHeaders();
    const gap = modes.slowStream ?? 1;
    const step = Math.ceil(body.length / 8);
    for (let i = 0; i < body.length; i += step) {
      if (modes.dropMidStream && i >= body.length / 2) {
        await sleep(5);
        res.socket?.destroy();
        return;
      }
      if (!(await write(ctx, body.subarray(i, i + step)))) return;
      if (gap > 0 && i + step < body.length) await sleep(gap);
      if (res.destroyed || ctx.gone) return;
    }
    res.end();
  }

  async function sendStream(ctx, events, withDone) {
    const { res, modes } = ctx;
    let list = events.slice();
    if (modes.streamErrorEvent) {
      list.unshift({
        data: JSON.stringify({ error: { message: 'mock stream error event', type: 'server_error', param: null, code: null } }),
      });
    }
    if (withDone && !modes.endWithoutDone) list.push({ data: '[DONE]' });
    if (modes.comments) {
      const withComments = [{ comment: 'ping' }];
      for (const e of list) withComments.push(e, { comment: 'ping' });
      list = withComments;
    }
    const frames = list.map((e) => sseFrame(e, modes.crlf));
    // A long prefill (prefill-<ms>-<every>): keep-alives every `prefillEvery` ms for `prefill` ms
    // before the first event: comments (as OpenRouter sends them), or, on /v1/messages, pings
    // after the message_start, which goes first (as Anthropic sends them).
    const anthropic = ctx.route === '/v1/messages';
    const keepAlive = sseFrame(
        anthropic ? {event: 'ping', data: '{"type": "ping"}'} : {comment: 'PROCESSING'},
        modes.crlf);
    const keepAlives = modes.prefill ? Math.ceil(modes.prefill / modes.prefillEvery) : 0;
    const lead = anthropic && keepAlives > 0 && list[0]?.event === 'message_start' ? 1 : 0;
    // split-first-<ms>: the first event after the lead goes out in two writes <ms> apart, the
    // first led by a comment (a keep-alive and part of an event in one read).
    const splitLead = sseFrame({comment: 'PROCESSING'}, modes.crlf);
    const gap = modes.slowStream ?? 1;
    ctx.rec.response_status = 200;
    ctx.rec.response_events = list.length;
    const headers = baseHeaders(ctx, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
    if (modes.sseContentLength) {
      let n = Buffer.byteLength(frames.join('')) + keepAlives * Buffer.byteLength(keepAlive);
      if (modes.splitFirst !== undefined) n += Buffer.byteLength(splitLead);
      headers['content-length'] = String(n);
    }
    res.writeHead(200, headers);
    res.flushHeaders();
    if (modes.hangAfterHead) return;
    let sent = 0;
    let written = '';
    const record = (f) => {
      written += f;
      ctx.rec.response_body = written.length <= 65536 ? written : null;
    };
    for (let i = 0; i < lead; i++) {
      const f = frames.shift();
      if (!(await write(ctx, f))) return;
      record(f);
      ctx.rec.response_events_sent = ++sent;
    }
    for (let i = 0; i < keepAlives; i++) {
      if (!(await write(ctx, keepAlive))) return;
      record(keepAlive);
      await sleep(Math.min(modes.prefillEvery, modes.prefill - i * modes.prefillEvery));
      if (res.destroyed || ctx.gone) return;
    }
    if (modes.splitFirst !== undefined && frames.length > 0) {
      const f = frames.shift();
      const half = Math.floor(f.length / 2);
      if (!(await write(ctx, splitLead + f.slice(0, half)))) return;
      record(splitLead + f.slice(0, half));
      await sleep(modes.splitFirst);
      if (!(await write(ctx, f.slice(half)))) return;
      record(f.slice(half));
      ctx.rec.response_events_sent = ++sent;
      if (gap > 0) await sleep(gap);
    }
    for (const f of frames) {
      if (modes.dropMidStream && sent === 3) {
        await sleep(5);
        res.socket?.destroy();
        return;
      }
      if (!(await write(ctx, f))) return;
      sent++;
      written += f;
      ctx.rec.response_events_sent = sent;
      if (written.length <= 65536) ctx.rec.response_body = written;
      else ctx.rec.response_body = null;
      if (gap > 0) await sleep(gap);
      if (res.destroyed || ctx.gone) return;
    }
    res.end();
  }

  // POST /v1/messages (Anthropic dialect): x-api-key and anthropic-version are required.
  async function handleMessages(ctx, id) {
    const { req, modes, json } = ctx;
    if (modes.status) {
      // Anthropic's error shape ({"type":"error","error":{type,message}}); 529 = overloaded.
      const extra = modes.status === 429 ? { 'retry-after': '2' } : {};
      return sendJson(ctx, modes.status, anthropicError(modes.status), extra);
    }
    const bad = checkAnthropicRequest(req, json, opts.anthropicKey);
    if (bad) return sendJson(ctx, bad[0], bad[1]);
    let text = answerText(json.model);
    if (modes.big) text += bigPad(modes.big);
    if (json.stream === true) return sendStream(ctx, anthropicEvents(id, json.model, splitText(text), json, modes), false);
    return sendJson(ctx, 200, anthropicMessage(id, json.model, text, json, modes));
  }

  // POST /v1/messages/count_tokens: {"input_tokens": COUNT_TOKENS} (same header checks).
  async function handleCountTokens(ctx) {
    const { req, modes, json } = ctx;
    if (modes.status) return sendJson(ctx, modes.status, anthropicError(modes.status));
    const bad = checkAnthropicRequest(req, json && { max_tokens: 1, ...json }, opts.anthropicKey);
    if (bad) return sendJson(ctx, bad[0], bad[1]);
    return sendJson(ctx, 200, { input_tokens: COUNT_TOKENS });
  }

  async function handleApi(ctx) {
    const { req, res, modes, route, json } = ctx;
    const model = json && typeof json.model === 'string' ? json.model : undefined;
    const id = `${ctx.rec.id}`.padStart(6, '0');

    if (modes.delay) await sleep(modes.delay);
    if (modes.hang) return; // accept, never answer
    if (modes.drop) {
      req.socket.destroy();
      return;
    }
    if (route === '/v1/messages' && req.method === 'POST') return handleMessages(ctx, id);
    if (route === '/v1/messages/count_tokens' && req.method === 'POST') return handleCountTokens(ctx);
    if (modes.status) {
      const extra = modes.status === 429 ? { 'retry-after': '2' } : {};
      return sendJson(ctx, modes.status, errorBody(modes.status, model, modes), extra);
    }
    // Azure's API refuses a request without api-version (its v1 API aside), as Azure does.
    if (ctx.rec.layout === 'azure' && !new URLSearchParams(ctx.rec.query).get('api-version')) {
      return sendJson(ctx, 404, { error: { code: '404', message: 'Resource not found (mock: no api-version)' } });
    }

    if (req.method === 'GET' && route === '/v1/models') {
      return sendJson(ctx, 200, {
        object: 'list',
        data: [{ id: 'mock-model', object: 'model', created: CREATED, owned_by: 'mock' }],
      });
    }
    const known = ['/v1/chat/completions', '/v1/completions', '/v1/embeddings', '/v1/responses', '/v1/responses/input_tokens', '/v1/audio/speech', '/v1/audio/transcriptions', '/v1/audio/translations'];
    if (!known.includes(route)) {
      return sendJson(ctx, 404, { error: { message: `mock: unknown route ${req.method} ${route}`, type: 'invalid_request_error', param: null, code: 'unknown_url' } });
    }
    if (req.method !== 'POST') {
      return sendJson(ctx, 405, { error: { message: `mock: method ${req.method} not allowed`, type: 'invalid_request_error', param: null, code: null } });
    }
    if (!json || typeof json !== 'object') {
      return sendJson(ctx, 400, { error: { message: 'mock: body is not JSON', type: 'invalid_request_error', param: null, code: null } });
    }
    if (model === undefined) {
      return sendJson(ctx, 400, { error: { message: 'mock: model missing', type: 'invalid_request_error', param: 'model', code: null } });
    }
    let text = answerText(model);
    if (modes.big) text += bigPad(modes.big);
    const stream = json.stream === true;
    const includeUsage = !!(json.stream_options && json.stream_options.include_usage);

    switch (route) {
      case '/v1/chat/completions':
        if (modes.toolsNoIndex) {
          if (stream) return sendStream(ctx, noIndexToolChunks(`chatcmpl-mock${id}`, model, includeUsage), true);
          return sendJson(ctx, 200, noIndexToolCompletion(`chatcmpl-mock${id}`, model));
        }
        if (wantsChatTool(json, modes)) {
          if (stream) return sendStream(ctx, chatToolChunks(`chatcmpl-mock${id}`, model, json, includeUsage), true);
          return sendJson(ctx, 200, chatToolCompletion(`chatcmpl-mock${id}`, model, json));
        }
        if (stream) return sendStream(ctx, chatChunks(`chatcmpl-mock${id}`, model, text, includeUsage, modes.reasoning ?? 0), true);
        return sendJson(ctx, 200, chatCompletion(`chatcmpl-mock${id}`, model, text));
      case '/v1/completions':
        if (stream) return sendStream(ctx, completionChunks(`cmpl-mock${id}`, model, text, includeUsage), true);
        return sendJson(ctx, 200, textCompletion(`cmpl-mock${id}`, model, text));
      case '/v1/embeddings':
        return sendJson(ctx, 200, embeddings(model, json));
      case '/v1/audio/transcriptions':
        // gpt-4o transcription models report token usage, as OpenAI's do.
        if (model.startsWith('gpt-4o')) return sendJson(ctx, 200, { text, usage: usageTranscription() });
        return sendJson(ctx, 200, { text });
      case '/v1/audio/translations':
        return sendJson(ctx, 200, { text });
      case '/v1/audio/speech':
        return sendBinary(ctx, speechBytes(model, String(json.input ?? '')), 'audio/mpeg');
      case '/v1/responses/input_tokens':
        return sendJson(ctx, 200, { object: 'response.input_tokens', input_tokens: INPUT_TOKENS });
      case '/v1/responses': {
        const rid = `resp_mock${id}`;
        // The Responses API ends its stream without a [DONE] line.
        if (stream) return sendStream(ctx, responseEvents(rid, model, text), false);
        return sendJson(ctx, 200, responseObject(rid, model, 'completed', text, `msg_mock${id}`));
      }
    }
  }

  function publicStats() {
    return {
      connections: state.connections,
      control_connections: state.control_connections,
      open: state.open,
      requests: state.requests.map((r) => ({ ...r })),
      tls_handshakes: state.tls_handshakes.map((h) => ({ ...h })),
    };
  }

  function reset() {
    state.connections = 0;
    state.control_connections = 0;
    state.requests = [];
    state.tls_handshakes = [];
    // connections still open are not forgotten: they stay in `open`
  }

  async function onRequest(req, res) {
    const sock = req.socket;
    const info = sock.__mock;
    const { pathname, route, modes: pathModes, layout, deployment, query } = parseTarget(req.url);

    // control routes (not recorded)
    if (pathname === '/_mock/stats' || pathname === '/_mock/reset' || pathname === '/_mock/health') {
      if (info && info.requests === 0) {
        info.control = true;
        state.control_connections++;
      }
      if (info) info.requests++;
      req.resume();
      req.on('end', () => {
        if (pathname === '/_mock/reset') {
          if (req.method !== 'POST') return sendPlain(res, 405, { error: 'POST only' });
          reset();
          return sendPlain(res, 200, { ok: true });
        }
        if (pathname === '/_mock/health') return sendPlain(res, 200, { ok: true });
        return sendPlain(res, 200, publicStats());
      });
      return;
    }
    if (info) info.requests++;

    const headerModes = req.headers['x-mock-mode'] ? String(req.headers['x-mock-mode']).split(',') : [];
    const modes = parseModes([...pathModes, ...headerModes]);
    const rec = {
      id: ++state.seq,
      conn: info ? info.id : null,
      conn_request_index: info ? info.requests : null,
      method: req.method,
      path: req.url,
      route,
      layout,
      deployment,
      query,
      modes: modes.names,
      http_version: req.httpVersion,
      headers: { ...req.headers },
      raw_headers: req.rawHeaders.slice(),
      model: null,
      body_sha256: null,
      body_bytes: 0,
      body_received: 0,
      body: null,
      t_start: nowMs(),
      t_first_body: null,
      t_body: null,
      t_end: null,
      t_abort: null,
      aborted: false,
      completed: false,
      response_status: null,
    };
    state.requests.push(rec);
    const ctx = { req, res, modes, route, rec, json: null, gone: false };

    const markGone = () => {
      if (ctx.gone) return;
      ctx.gone = true;
      if (!rec.completed) {
        rec.aborted = true;
        rec.t_abort = nowMs();
      }
    };
    res.on('finish', () => {
      rec.completed = true;
      rec.t_end = nowMs();
      sock.off('end', markGone);
      sock.off('close', markGone);
    });
    res.on('close', markGone);
    sock.on('end', markGone);
    sock.on('close', markGone);

    const chunks = [];
    let total = 0;
    const hash = crypto.createHash('sha256');
    req.on('data', (c) => {
      hash.update(c);
      total += c.length;
      rec.body_received = total;
      if (rec.t_first_body === null) rec.t_first_body = nowMs();
      if (total <= MAX_KEEP) chunks.push(c);
      if (modes.slowRead) {
        req.pause();
        setTimeout(() => req.resume(), modes.slowRead);
      }
    });
    req.on('error', () => {});
    req.on('end', () => {
      rec.t_body = nowMs();
      rec.body_bytes = total;
      rec.body_sha256 = hash.digest('hex');
      if (total > 0 && total <= MAX_KEEP) {
        const text = Buffer.concat(chunks).toString('utf8');
        if (total <= 65536) rec.body = text;
        try {
          ctx.json = JSON.parse(text);
        } catch {
          ctx.json = null;
        }
        // multipart/form-data (audio transcriptions): the text fields as an object.
        const ct = String(req.headers['content-type'] || '');
        const b = /^multipart\/form-data;.*boundary="?([^";]+)"?/i.exec(ct);
        if (!ctx.json && b) ctx.json = formFields(text, b[1]);
      }
      chunks.length = 0;
      if (ctx.json && typeof ctx.json.model === 'string') rec.model = ctx.json.model;
      handleApi(ctx).catch((err) => {
        rec.error = String(err && err.stack ? err.stack : err);
        if (!res.headersSent) sendPlain(res, 500, { error: { message: 'mock internal error', type: 'server_error' } });
        else res.destroy();
      });
    });
  }

  function sendPlain(res, status, obj) {
    const body = JSON.stringify(obj);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  const serverOpts = { keepAliveTimeout: opts.keepAliveTimeout ?? 5000, requestTimeout: 0, headersTimeout: 60000 };
  const server = opts.tls
    ? https.createServer({ ...serverOpts, cert: opts.tls.cert, key: opts.tls.key }, onRequest)
    : http.createServer(serverOpts, onRequest);
  server.keepAliveTimeout = serverOpts.keepAliveTimeout;
  server.requestTimeout = 0;
  server.on('connection', (sock) => {
    state.connections++;
    state.open++;
    sock.__mock = { id: ++state.connSeq, requests: 0, control: false };
    sockets.add(sock);
    sock.on('close', () => {
      state.open--;
      sockets.delete(sock);
    });
  });
  // With TLS, the request handler sees the TLS socket, not the raw one: carry the info over.
  server.on('secureConnection', (tlsSock) => {
    const raw = tlsSock._parent || tlsSock._handle?._parentWrap;
    tlsSock.__mock = (raw && raw.__mock) || { id: state.connSeq, requests: 0, control: false };
    state.tls_handshakes.push({ resumed: tlsSock.isSessionReused(), protocol: tlsSock.getProtocol() });
  });
  server.on('clientError', (err, sock) => {
    if (sock.writable) sock.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else sock.destroy();
  });
  server.on('tlsClientError', () => {});

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = server.address().port;
  const scheme = opts.tls ? 'https' : 'http';
  const hostForUrl = host.includes(':') ? `[${host}]` : host;
  return {
    port,
    host,
    url: `${scheme}://${hostForUrl}:${port}`,
    server,
    stats: publicStats,
    reset,
    // Requests recorded so far (live objects; fields update as the request progresses).
    requests: () => state.requests,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
        server.closeAllConnections?.();
      }),
  };
}

function sha256(buf) {
  return crypto.createHash('sha256').update(buf).digest('hex');
}

// ---------------------------------------------------------------------------------------------
// CLI

function parseArgs(argv) {
  const a = { port: 0, host: '127.0.0.1' };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${k} needs a value`);
      return argv[++i];
    };
    if (k === '--port') a.port = Number(v());
    else if (k === '--host') a.host = v();
    else if (k === '--tls-cert') a.tlsCert = v();
    else if (k === '--tls-key') a.tlsKey = v();
    else if (k === '--ready-file') a.readyFile = v();
    else if (k === '--keep-alive-timeout') a.keepAliveTimeout = Number(v());
    else if (k === '--help' || k === '-h') a.help = true;
    else throw new Error(`unknown argument ${k}`);
  }
  return a;
}

async function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`mock-provider: ${e.message}\n`);
    process.exit(2);
  }
  if (args.help) {
    process.stdout.write(
      'usage: node server.js --port N [--host H] [--tls-cert F --tls-key F] [--ready-file F] [--keep-alive-timeout MS]\n',
    );
    return;
  }
  if (!!args.tlsCert !== !!args.tlsKey) {
    process.stderr.write('mock-provider: --tls-cert and --tls-key go together\n');
    process.exit(2);
  }
  const tls = args.tlsCert ? { cert: fs.readFileSync(args.tlsCert), key: fs.readFileSync(args.tlsKey) } : undefined;
  const m = await startMock({ port: args.port, host: args.host, tls, keepAliveTimeout: args.keepAliveTimeout });
  const line = JSON.stringify({ port: m.port });
  if (args.readyFile) {
    const tmp = `${args.readyFile}.tmp${process.pid}`;
    fs.writeFileSync(tmp, line + '\n');
    fs.renameSync(tmp, args.readyFile);
  }
  process.stdout.write(line + '\n');
  const stop = () => m.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

const isMain = process.argv[1] && pathToFileURL(path.resolve(process.argv[1])).href === import.meta.url;
if (isMain) main();

export const MOCK_DIR = path.dirname(fileURLToPath(import.meta.url));
