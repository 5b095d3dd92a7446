// Hostile input against keys and limits: odd output caps, tokens that look like keys but are
// not, refusals that must not charge anything. Each case has a key of its own.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startMock } from '../../tools/mock-provider/server.js';
import { startGateway } from './lib/gateway.mjs';
import { assertError, gwPost } from './lib/common.mjs';

const T = { timeout: 30000 };
const sha = (s) => crypto.createHash('sha256').update(s).digest('hex');
const chat = (extra = {}, model = 'g') => JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], ...extra });
// A transcription form naming `model` (multipart/form-data: routed by its `model` field).
const BOUNDARY = 'hostile-keys-boundary';
const form = (model, file = 'RIFF') =>
  `--${BOUNDARY}\r\nContent-Disposition: form-data; name="model"\r\n\r\n${model}\r\n` +
  `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n${file}\r\n` +
  `--${BOUNDARY}--\r\n`;

// {name, key (limits etc. of the case's own key), steps: [{token?, body | form (a model name:
// a transcription form instead of a chat body; `file`: its file part's bytes), status, code?}]}
const CASES = [
  { name: 'negative max_tokens is ignored (default estimate, within tpm)', key: { limits: { tpm: 2000 } },
    steps: [{ body: chat({ max_tokens: -5 }), status: 200 }] },
  { name: 'string max_tokens is ignored', key: { limits: { tpm: 2000 } },
    steps: [{ body: chat({ max_tokens: '100000' }), status: 200 }] },
  { name: 'fractional max_tokens is ignored', key: { limits: { tpm: 2000 } },
    steps: [{ body: chat({ max_tokens: 1.5 }), status: 200 }] },
  { name: 'an enormous max_tokens is clamped to the bucket: passes once, then refused', key: { limits: { tpm: 500 } },
    steps: [{ body: chat({ max_tokens: 1e300 }), status: 200 }, { body: chat({ max_tokens: 1e18 }), status: 429, code: 'rate_limit_exceeded' }] },
  // ~38 reserved, 21 used: the second fits in 79. Had max_tokens counted, the first would take
  // the whole bucket (100) and leave 79 < 100 for the second.
  { name: 'max_completion_tokens wins over max_tokens', key: { limits: { tpm: 100 } },
    steps: [{ body: chat({ max_completion_tokens: 10, max_tokens: 100000 }), status: 200 },
      { body: chat({ max_completion_tokens: 10, max_tokens: 100000 }), status: 200 }] },
  { name: 'invalid JSON from a limited key is 400 and costs no request', key: { limits: { rpm: 1 } },
    steps: [{ body: '{"model":', status: 400 }, { body: chat(), status: 200 }, { body: chat(), status: 429, code: 'rate_limit_exceeded' }] },
  { name: 'unknown model from a limited key is 404 and costs no request', key: { limits: { rpm: 1 } },
    steps: [{ body: chat({}, 'nope'), status: 404 }, { body: chat(), status: 200 }] },
  { name: 'a group the key may not use is 403 before limits are charged', key: { groups: ['g'], limits: { rpm: 1 } },
    steps: [{ body: chat({}, 'h'), status: 403, code: 'model_not_allowed' }, { body: chat(), status: 200 }] },
  { name: 'a multipart form naming a group the key may not use is 403 too', key: { groups: ['g'] },
    steps: [{ form: 'h', status: 403, code: 'model_not_allowed' }, { form: 'g', status: 200 }] },
  { name: 'multipart forms count against rpm, shared with JSON bodies', key: { limits: { rpm: 2 } },
    steps: [{ form: 'g', status: 200 }, { body: chat(), status: 200 }, { form: 'g', status: 429, code: 'rate_limit_exceeded' }] },
  { name: 'a multipart form naming an unknown model costs no request', key: { limits: { rpm: 1 } },
    steps: [{ form: 'nope', status: 404 }, { form: 'g', status: 200 }, { form: 'g', status: 429, code: 'rate_limit_exceeded' }] },
  // 64 KiB of file would be 16384 tokens: had it counted, the second form would not fit.
  { name: 'a form\'s file bytes are not counted as tokens', key: { limits: { tpm: 2000, default_output_tokens: 10 } },
    steps: [0, 1, 2].map(() => ({ form: 'g', file: 'A'.repeat(64 * 1024), status: 200 })) },
  { name: 'a form whose answer has no usage keeps its reservation as the budget charge', key: { budget: { tokens: 1 } },
    steps: [{ form: 'g', status: 200 }, { form: 'g', status: 429, code: 'insufficient_quota' }] },
  { name: 'the token digest is not a token', key: {},
    steps: [{ token: (t) => sha(t), body: chat(), status: 401, code: 'invalid_api_key' }] },
  { name: 'the token in another case is not the token', key: {},
    steps: [{ token: (t) => t.toUpperCase(), body: chat(), status: 401, code: 'invalid_api_key' }] },
  { name: 'the key name is not a token', key: {},
    steps: [{ token: (t, name) => name, body: chat(), status: 401, code: 'invalid_api_key' }] },
  { name: 'a disabled key with padding around its token is still disabled', key: { disabled: true },
    steps: [{ token: (t) => `  ${t}  `, body: chat(), status: 401, code: 'invalid_api_key' }] },
  { name: 'a key expiring in the far future works', key: { expires: '2999-12-31T23:59:59Z' },
    steps: [{ body: chat(), status: 200 }] },
  { name: 'a budget of 1 token: one request passes (something was left), the next not', key: { budget: { tokens: 1 } },
    steps: [{ body: chat(), status: 200 }, { body: chat(), status: 429, code: 'insufficient_quota' }] },
];

describe('hostile input: keys and limits', { timeout: 120000 }, () => {
  let mock, gw;
  const token = (i) => `sk-hostile-case-${i}-${'x'.repeat(i)}`;
  before(async () => {
    mock = await startMock();
    gw = await startGateway({
      config: {
        providers: [
          { group: 'g', name: 'm', base: mock.url, key: 'sk-up' },
          { group: 'h', name: 'm2', base: mock.url, key: 'sk-up' },
        ],
        keys: CASES.map((c, i) => ({ name: `case-${i}`, token: token(i), ...c.key })),
      },
      workers: 1,
    });
  });
  after(async () => {
    await gw?.stop();
    await mock?.close();
  });

  CASES.forEach((c, i) => {
    test(c.name, T, async () => {
      for (const [n, s] of c.steps.entries()) {
        const t = s.token ? s.token(token(i), `case-${i}`) : token(i);
        const r = s.form
          ? await gwPost(gw, '/v1/audio/transcriptions', form(s.form, s.file), {
              token: t,
              headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` },
            })
          : await gwPost(gw, '/v1/chat/completions', s.body, { token: t });
        if (s.status >= 400) assertError(r, s.status, s.code ? { code: s.code } : {}, `step ${n + 1}`);
        else assert.equal(r.status, s.status, `step ${n + 1}: ${r.text.slice(0, 300)}`);
      }
    });
  });

  test('no token of any case appears in the log', T, async () => {
    const text = gw.stderr();
    CASES.forEach((_, i) => assert.ok(!text.includes(token(i)), `case ${i} token logged`));
  });
});
