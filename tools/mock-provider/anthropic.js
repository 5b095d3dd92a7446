// Anthropic Messages API answers for the mock provider (POST /v1/messages): the JSON message and
// the real stream event sequence (https://docs.anthropic.com/en/docs/build-with-claude/streaming):
// message_start (usage), [thinking block], text block with a ping, [tool_use block whose input
// arrives in many small input_json_delta fragments], message_delta (stop_reason, usage),
// message_stop. Pure functions; server.js sends them.

export const ANTHROPIC_USAGE = { input_tokens: 9, output_tokens: 12, cache_creation_input_tokens: 0, cache_read_input_tokens: 3 };
export const COUNT_TOKENS = 42; // what POST /v1/messages/count_tokens answers
export const THINKING_TEXT = 'The user greets me; answer briefly.';
const SIGNATURE = 'EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds';

// The tool_use input the mock sends: the first request tool's name, a fixed input.
export function toolInput(model) {
  return { location: 'San Francisco, CA', unit: 'celsius', note: `asked via ${model} "quoted" \\ é` };
}

// Whether the answer calls a tool: mode `tool`, or tool_choice any/tool with tools given.
export function wantsTool(json, modes) {
  if (modes.tool) return true;
  const tc = json && json.tool_choice;
  return !!(json && Array.isArray(json.tools) && json.tools.length && tc && (tc.type === 'any' || tc.type === 'tool'));
}

function toolName(json) {
  if (json && json.tool_choice && json.tool_choice.type === 'tool') return json.tool_choice.name;
  if (json && Array.isArray(json.tools) && json.tools.length && json.tools[0].name) return json.tools[0].name;
  return 'get_weather';
}

export function anthropicError(status) {
  const type =
    {
      400: 'invalid_request_error',
      401: 'authentication_error',
      403: 'permission_error',
      404: 'not_found_error',
      413: 'request_too_large',
      429: 'rate_limit_error',
      500: 'api_error',
      529: 'overloaded_error',
    }[status] || (status >= 500 ? 'api_error' : 'invalid_request_error');
  const message = status === 529 ? 'Overloaded' : `mock upstream answered ${status}`;
  return { type: 'error', error: { type, message } };
}

// Checks the request the way the Messages API does (headers, required fields). Returns
// [status, errorBody] or null when acceptable.
export function checkAnthropicRequest(req, json, expectedKey) {
  const key = req.headers['x-api-key'];
  if (!key || (expectedKey && key !== expectedKey)) {
    return [401, { type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } }];
  }
  if (!req.headers['anthropic-version']) {
    return [400, { type: 'error', error: { type: 'invalid_request_error', message: 'anthropic-version: header is required' } }];
  }
  if (!json || typeof json !== 'object') {
    return [400, { type: 'error', error: { type: 'invalid_request_error', message: 'body: not valid JSON' } }];
  }
  for (const [field, ok] of [
    ['model', typeof json.model === 'string'],
    ['max_tokens', Number.isInteger(json.max_tokens) && json.max_tokens >= 1],
    ['messages', Array.isArray(json.messages)],
  ]) {
    if (!ok) return [400, { type: 'error', error: { type: 'invalid_request_error', message: `${field}: Field required` } }];
  }
  if (json.temperature !== undefined && !(json.temperature >= 0 && json.temperature <= 1)) {
    return [400, { type: 'error', error: { type: 'invalid_request_error', message: 'temperature: must be between 0 and 1' } }];
  }
  return null;
}

export function anthropicMessage(id, model, text, json, modes) {
  const content = [];
  if (modes.thinking) content.push({ type: 'thinking', thinking: THINKING_TEXT, signature: SIGNATURE });
  content.push({ type: 'text', text });
  const tool = wantsTool(json, modes);
  if (tool) content.push({ type: 'tool_use', id: `toolu_mock${id}`, name: toolName(json), input: toolInput(model) });
  return {
    id: `msg_mock${id}`,
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: tool ? 'tool_use' : 'end_turn',
    stop_sequence: null,
    usage: { ...ANTHROPIC_USAGE },
  };
}

// Splits s into pieces of n characters (the real API sends small, uneven fragments).
function pieces(s, n) {
  const out = [];
  for (let i = 0; i < s.length; i += n) out.push(s.slice(i, i + n));
  return out;
}

// [{event, data}] of one streamed message. Mode `overloaded-mid-stream`: an `error` event
// (overloaded_error) after the first text delta, and nothing after it (as the API does).
export function anthropicEvents(id, model, textPieces, json, modes) {
  const ev = (type, obj) => ({ event: type, data: JSON.stringify({ type, ...obj }) });
  const list = [];
  list.push(
    ev('message_start', {
      message: {
        id: `msg_mock${id}`,
        type: 'message',
        role: 'assistant',
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: ANTHROPIC_USAGE.input_tokens, cache_creation_input_tokens: 0, cache_read_input_tokens: ANTHROPIC_USAGE.cache_read_input_tokens, output_tokens: 1 },
      },
    }),
  );
  if (modes.overloadedAtStart) {
    // What Anthropic sends when it is overloaded after accepting the stream: message_start,
    // a ping, then the error.
    list.push(ev('ping', {}));
    list.push(ev('error', { error: { type: 'overloaded_error', message: 'Overloaded' } }));
    return list;
  }
  let index = 0;
  if (modes.thinking) {
    list.push(ev('content_block_start', { index, content_block: { type: 'thinking', thinking: '' } }));
    for (const p of pieces(THINKING_TEXT, 12)) list.push(ev('content_block_delta', { index, delta: { type: 'thinking_delta', thinking: p } }));
    list.push(ev('content_block_delta', { index, delta: { type: 'signature_delta', signature: SIGNATURE } }));
    list.push(ev('content_block_stop', { index }));
    index++;
  }
  list.push(ev('content_block_start', { index, content_block: { type: 'text', text: '' } }));
  list.push(ev('ping', {}));
  textPieces.forEach((p, i) => {
    list.push(ev('content_block_delta', { index, delta: { type: 'text_delta', text: p } }));
    if (i === 0 && modes.overloadedMidStream) list.push(ev('error', { error: { type: 'overloaded_error', message: 'Overloaded' } }));
  });
  if (modes.overloadedMidStream) return list.slice(0, list.findIndex((e) => e.event === 'error') + 1);
  list.push(ev('content_block_stop', { index }));
  index++;
  const tool = wantsTool(json, modes);
  if (tool) {
    list.push(ev('content_block_start', { index, content_block: { type: 'tool_use', id: `toolu_mock${id}`, name: toolName(json), input: {} } }));
    list.push(ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: '' } }));
    for (const p of pieces(JSON.stringify(toolInput(model)), 3)) {
      list.push(ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: p } }));
    }
    list.push(ev('content_block_stop', { index }));
  }
  list.push(ev('message_delta', { delta: { stop_reason: tool ? 'tool_use' : 'end_turn', stop_sequence: null }, usage: { output_tokens: ANTHROPIC_USAGE.output_tokens } }));
  list.push(ev('message_stop', {}));
  return list;
}
