// End-to-end: named client keys with limits and budgets (in memory, one instance): exact rpm,
// tpm settled with stream usage, budgets, expired/disabled keys, groups, reload, provider limits,
// concurrency, the old `security` tokens, and tokens never shown anywhere.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { toFile } from 'openai';
import { startMock, INPUT_TOKENS } from '../../tools/mock-provider/server.js';
import { startGateway } from './lib/gateway.mjs';
import { request, waitFor } from './lib/http.mjs';
import { accessLines, assertError, chatBody, gwPost, gwGet, sleep } from './lib/common.mjs';
import { backToBack, startHoldingUpstream } from './lib/settle.mjs';

const T = { timeout: 30000 };
const LEGACY = 'sk-legacy-unlimited-1';
const TOK = {
  rpm: 'sk-key-rpm-5-secret',
  tpm: 'sk-key-tpm-secret',
  budget: 'sk-key-budget-secret',
  usd: 'sk-key-usd-secret',
  expired: 'sk-key-expired-secret',
  disabled: 'sk-key-disabled-secret',
  groups: 'sk-key-groups-secret',
  conc: 'sk-key-conc-secret',
  reload: 'sk-key-reload-secret',
  plain: 'sk-key-plain-secret',
  models: 'sk-key-models-secret',
  formRpm: 'sk-key-form-rpm-secret',
  formConc: 'sk-key-form-conc-secret',
  formTpm: 'sk-key-form-tpm-secret',
  formBudget: 'sk-key-form-budget-secret',
  count: 'sk-key-count-secret',
};

const sdk = (gw, token) =>
  new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: token, maxRetries: 0, timeout: 10000 });
const post = (gw, token, model = 'g', extra = {}) =>
  gwPost(gw, '/v1/chat/completions', chatBody(model, extra), { token });
// A transcription through the openai SDK (multipart/form-data: the `model` field and a
// 32 KiB file, whose bytes would be ~8200 tokens if they were counted).
const transcribe = async (gw, token, model = 'stt', extra = {}) =>
  sdk(gw, token)
    .audio.transcriptions.create({ model, file: await toFile(Buffer.alloc(32 * 1024, 7), 'a.wav'), ...extra })
    .withResponse();
const refusal = (p) => p.then(() => assert.fail('expected a refusal'), (e) => e);

describe('keys and limits', { timeout: 120000 }, () => {
  let mock, gw, cfg;
  const keys = (over = {}) => [
    { name: 'rpm-five', token: TOK.rpm, limits: { rpm: 5 }, labels: { team: 'search' } },
    { name: 'tpm-key', token: '${TPM_TOKEN}', limits: { tpm: 100 } },
    { name: 'budget-key', token: TOK.budget, budget: { tokens: 30, period: 'day' } },
    { name: 'usd-key', token: TOK.usd, groups: ['priced'], budget: { usd: 3, period: 'day' } },
    { name: 'expired-key', token: TOK.expired, expires: '2020-01-01T00:00:00Z' },
    { name: 'disabled-key', token: TOK.disabled, disabled: true },
    { name: 'groups-key', token: TOK.groups, groups: ['g'] },
    { name: 'conc-key', token: TOK.conc, limits: { concurrency: 2 } },
    { name: 'reload-key', token: TOK.reload, limits: { rpm: over.reloadRpm ?? 2 } },
    { name: 'plain-key', token: TOK.plain },
    { name: 'models-key', token: TOK.models, groups: ['priced', 'g'] },
    { name: 'form-rpm', token: TOK.formRpm, limits: { rpm: 2 } },
    { name: 'form-conc', token: TOK.formConc, limits: { concurrency: 1 } },
    { name: 'form-tpm', token: TOK.formTpm, limits: { tpm: 1000, default_output_tokens: 100 } },
    { name: 'form-budget', token: TOK.formBudget, budget: { tokens: 50, period: 'day' } },
    // tpd refills slowly (1,000 tokens take ~90 s): any token charged stays visible.
    { name: 'count-key', token: TOK.count, limits: { rpm: 100, tpd: 1000000 }, budget: { tokens: 1000000, period: 'day' } },
  ];
  const makeConfig = (over) => ({
    providers: [
      { group: 'g', name: 'm', base: mock.url, key: 'sk-up' },
      { group: 'other', name: 'o', base: mock.url, key: 'sk-up' },
      { group: 'slow', name: 's', base: `${mock.url}/mode/delay-1500`, key: 'sk-up' },
      // 0.1 USD a token: an answer of 21 tokens costs 2.1 USD.
      { group: 'priced', name: 'p', base: mock.url, key: 'sk-up', price: { input: 100000, output: 100000 } },
      // Its transcriptions carry OpenAI's token usage: 30 input + 8 output.
      { group: 'stt', name: 'gpt-4o-transcribe', base: mock.url, key: 'sk-up' },
    ],
    security: [LEGACY],
    keys: keys(over),
  });

  before(async () => {
    mock = await startMock();
    cfg = makeConfig({});
    gw = await startGateway({ config: cfg, workers: 2, env: { TPM_TOKEN: TOK.tpm } });
  });
  after(async () => {
    await gw?.stop();
    await mock?.close();
  });

  test('rpm 5: five pass with x-ratelimit headers, the sixth is 429 with Retry-After', T, async () => {
    const client = sdk(gw, TOK.rpm);
    for (let i = 0; i < 5; i++) {
      const { data, response } = await client.chat.completions
        .create({ model: 'g', messages: [{ role: 'user', content: 'hi' }] })
        .withResponse();
      assert.equal(data.object, 'chat.completion');
      const h = response.headers;
      assert.equal(h.get('x-ratelimit-limit-requests'), '5', `request ${i + 1}`);
      assert.equal(h.get('x-ratelimit-remaining-requests'), String(4 - i), `request ${i + 1}`);
      assert.match(h.get('x-ratelimit-reset-requests'), /^\d+(\.\d+)?(ms|s)$|m/);
      assert.equal(h.get('x-ratelimit-limit-tokens'), null, 'no token limit, no token headers');
    }
    let err;
    try {
      await client.chat.completions.create({ model: 'g', messages: [{ role: 'user', content: 'hi' }] });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof OpenAI.RateLimitError, `6th: ${err}`);
    assert.equal(err.status, 429);
    assert.equal(err.code, 'rate_limit_exceeded');
    assert.equal(err.type, 'requests');
    assert.match(err.message, /requests per minute \(rpm\) of key 'rpm-five': limit 5/);
    assert.equal(err.headers.get('retry-after'), '12');
    assert.equal(err.headers.get('x-ratelimit-limit-requests'), '5');
    assert.equal(err.headers.get('x-ratelimit-remaining-requests'), '0');
  });

  test('tpm: stream usage settles the reservation, then the bucket refuses', T, async () => {
    const client = sdk(gw, TOK.tpm);
    // ~100 body bytes (~25 tokens) + max_tokens 40: about 65 reserved; the stream uses 21.
    const ask = () =>
      client.chat.completions.create({
        model: 'g',
        messages: [{ role: 'user', content: 'hello there' }],
        max_tokens: 40,
        stream: true,
      });
    for (let i = 0; i < 2; i++) {
      // Without settlement the second one would be refused (100 - 65 < 65).
      const stream = await ask();
      let text = '';
      for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
      assert.equal(text, 'Hello from m!', `stream ${i + 1}`);
    }
    // 100 - 21 - 21 = 58 (plus under 2 tokens of refill) < 65.
    let err;
    try {
      await ask();
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof OpenAI.RateLimitError, `3rd: ${err}`);
    assert.equal(err.type, 'tokens');
    assert.equal(err.code, 'rate_limit_exceeded');
    assert.equal(err.headers.get('x-ratelimit-limit-tokens'), '100');
    const left = Number(err.headers.get('x-ratelimit-remaining-tokens'));
    assert.ok(left >= 58 && left <= 60, `remaining tokens ${left}`);
    assert.ok(Number(err.headers.get('retry-after')) >= 1);
  });

  test('budget: used up, then 429 insufficient_quota until the next UTC day', T, async () => {
    // 30 tokens a day; each answer uses 21: two pass (something was left), the third not.
    assert.equal((await post(gw, TOK.budget)).status, 200);
    assert.equal((await post(gw, TOK.budget)).status, 200);
    const r = await post(gw, TOK.budget);
    assertError(r, 429, { code: 'insufficient_quota', type: 'insufficient_quota' });
    const now = Date.now();
    const midnight = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), new Date(now).getUTCDate() + 1);
    const wait = Number(r.headers['retry-after']);
    assert.ok(Math.abs(wait - (midnight - now) / 1000) < 5, `Retry-After ${wait}`);
    assert.match(r.json().error.message, /budget-key/);
  });

  test('a USD budget is charged what the answers cost at the serving provider\'s price', T, async () => {
    // 3 USD a day; each answer costs 2.1 USD: two pass (something was left), the third not.
    assert.equal((await post(gw, TOK.usd, 'priced')).status, 200);
    assert.equal((await post(gw, TOK.usd, 'priced')).status, 200);
    const r = await post(gw, TOK.usd, 'priced');
    assertError(r, 429, { code: 'insufficient_quota', type: 'insufficient_quota' });
    assert.match(r.json().error.message, /usd-key/);
    const keys = await (await fetch(`${gw.adminUrl}/admin/v1/keys`)).json();
    const b = keys.keys.find((k) => k.name === 'usd-key').budget;
    assert.equal(b.unit, 'usd');
    assert.ok(Math.abs(b.used - 4.2) < 1e-6, `used ${b.used}`);
  });

  test('expired and disabled keys: 401 invalid_api_key', T, async () => {
    assertError(await post(gw, TOK.expired), 401, { code: 'invalid_api_key' });
    assert.match((await post(gw, TOK.expired)).json().error.message, /expired/);
    assertError(await post(gw, TOK.disabled), 401, { code: 'invalid_api_key' });
    assert.match((await post(gw, TOK.disabled)).json().error.message, /disabled/);
    assertError(await gwGet(gw, '/v1/models', { token: TOK.disabled }), 401, { code: 'invalid_api_key' });
  });

  test('groups: another group is 403 model_not_allowed naming group and key', T, async () => {
    assert.equal((await post(gw, TOK.groups, 'g')).status, 200);
    const r = await post(gw, TOK.groups, 'other');
    const j = assertError(r, 403, { code: 'model_not_allowed', type: 'invalid_request_error' });
    assert.match(j.error.message, /groups-key/);
    assert.match(j.error.message, /'other'/);
  });

  test('GET /v1/models: a key with groups lists those only (config order); others list every group', T, async () => {
    const ids = async (token) => (await sdk(gw, token).models.list()).data.map((m) => m.id);
    assert.deepEqual(await ids(TOK.models), ['g', 'priced']);
    assert.deepEqual(await ids(TOK.groups), ['g']);
    assert.deepEqual(await ids(TOK.plain), ['g', 'other', 'slow', 'priced', 'stt']);
    assert.deepEqual(await ids(LEGACY), ['g', 'other', 'slow', 'priced', 'stt']);
  });

  test('GET /v1/models/<name>: a group the key may not use is 404 model_not_found', T, async () => {
    const hidden = await gwGet(gw, '/v1/models/other', { token: TOK.groups });
    const j = assertError(hidden, 404, { code: 'model_not_found', type: 'invalid_request_error' });
    assert.equal(j.error.message, "The model 'other' does not exist.");
    // The same shape as a name that does not exist at all.
    const unknown = assertError(await gwGet(gw, '/v1/models/nope', { token: TOK.groups }), 404);
    assert.deepEqual({ ...j.error, message: '' }, { ...unknown.error, message: '' });
    const own = await gwGet(gw, '/v1/models/g', { token: TOK.groups });
    assert.equal(own.status, 200, own.text);
    assert.equal(own.json().id, 'g');
    for (const token of [TOK.plain, LEGACY]) {
      const r = await gwGet(gw, '/v1/models/other', { token });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json().id, 'other');
    }
    const m = await sdk(gw, TOK.models).models.retrieve('priced');
    assert.equal(m.id, 'priced');
    const err = await refusal(sdk(gw, TOK.models).models.retrieve('other'));
    assert.ok(err instanceof OpenAI.NotFoundError, `${err}`);
    assert.equal(err.code, 'model_not_found');
  });

  test('multipart rpm 2: two transcriptions with x-ratelimit headers, the third is 429 with Retry-After', T, async () => {
    for (let i = 0; i < 2; i++) {
      const { data, response } = await transcribe(gw, TOK.formRpm);
      assert.equal(data.text, 'Hello from gpt-4o-transcribe!');
      assert.equal(response.headers.get('x-ratelimit-limit-requests'), '2', `request ${i + 1}`);
      assert.equal(response.headers.get('x-ratelimit-remaining-requests'), String(1 - i), `request ${i + 1}`);
    }
    const err = await refusal(transcribe(gw, TOK.formRpm));
    assert.ok(err instanceof OpenAI.RateLimitError, `3rd: ${err}`);
    assert.equal(err.status, 429);
    assert.equal(err.code, 'rate_limit_exceeded');
    assert.equal(err.type, 'requests');
    assert.match(err.message, /requests per minute \(rpm\) of key 'form-rpm': limit 2/);
    assert.equal(err.headers.get('retry-after'), '30');
    assert.equal(err.headers.get('x-ratelimit-remaining-requests'), '0');
    // A JSON request of the same key shares the count.
    assertError(await post(gw, TOK.formRpm), 429, { code: 'rate_limit_exceeded' });
  });

  test('multipart concurrency 1: a second transcription while one is in flight is 429', T, async () => {
    mock.reset();
    const first = transcribe(gw, TOK.formConc, 'slow');
    // The first one is with the (slow) provider: it holds the key's one slot.
    await waitFor(() => mock.stats().requests.some((r) => r.route === '/v1/audio/transcriptions'), { what: 'first transcription upstream' });
    const err = await refusal(transcribe(gw, TOK.formConc, 'slow'));
    assert.ok(err instanceof OpenAI.RateLimitError, `2nd: ${err}`);
    assert.equal(err.code, 'rate_limit_exceeded');
    assert.match(err.message, /concurrent requests \(concurrency\) of key 'form-conc': limit 1/);
    assert.ok(Number(err.headers.get('retry-after')) >= 1);
    const { data } = await first;
    assert.equal(data.text, 'Hello from s!');
    // Given back at the end: the next one passes.
    assert.equal((await transcribe(gw, TOK.formConc, 'slow')).data.text, 'Hello from s!');
  });

  test('multipart tpm: text fields and default_output_tokens are reserved (not the file), settled with the usage', T, async () => {
    // prompt 400 bytes + model 3 bytes: ceil(403 / 4) = 101 tokens, plus default_output_tokens 100.
    const prompt = 'p'.repeat(400);
    const a = await transcribe(gw, TOK.formTpm, 'stt', { prompt });
    assert.equal(a.response.headers.get('x-ratelimit-limit-tokens'), '1000');
    assert.equal(a.response.headers.get('x-ratelimit-remaining-tokens'), String(1000 - 201));
    // The answer used 38: 1000 - 38 (plus under 2 tokens of refill) - 201.
    const b = await transcribe(gw, TOK.formTpm, 'stt', { prompt });
    const left = Number(b.response.headers.get('x-ratelimit-remaining-tokens'));
    assert.ok(left >= 1000 - 38 - 201 && left <= 1000 - 38 - 201 + 2, `remaining tokens ${left}`);
  });

  test('multipart budget: charged the usage the transcription answer reports', T, async () => {
    // 50 tokens a day; each answer uses 38: two pass (something was left), the third not.
    await transcribe(gw, TOK.formBudget);
    const keyOf = async () =>
      (await (await fetch(`${gw.adminUrl}/admin/v1/keys`)).json()).keys.find((k) => k.name === 'form-budget');
    const k = await keyOf();
    assert.equal(k.budget.used, 38);
    assert.equal(k.budget.reserved, 0);
    await transcribe(gw, TOK.formBudget);
    const err = await refusal(transcribe(gw, TOK.formBudget));
    assert.ok(err instanceof OpenAI.RateLimitError, `3rd: ${err}`);
    assert.equal(err.code, 'insufficient_quota');
    assert.match(err.message, /form-budget/);
    assert.equal((await keyOf()).budget.used, 76);
  });

  test('a token count (/v1/responses/input_tokens) is a request for rpm and charges no tokens', T, async () => {
    const keyOf = async () =>
      (await (await fetch(`${gw.adminUrl}/admin/v1/keys`)).json()).keys.find((k) => k.name === 'count-key');
    // Its estimate as a generation would be ceil(bytes / 4) + default_output_tokens: over 1,000.
    const body = JSON.stringify({ model: 'g', input: 'Count these tokens. '.repeat(200) });
    const r = await gwPost(gw, '/v1/responses/input_tokens', body, { token: TOK.count });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json(), { object: 'response.input_tokens', input_tokens: INPUT_TOKENS });
    const k = await keyOf();
    assert.deepEqual([k.budget.used, k.budget.reserved], [0, 0], JSON.stringify(k.budget));
    assert.equal(k.usage.rpm.remaining, 99, JSON.stringify(k.usage));
    assert.equal(k.usage.tpd.remaining, 1000000, JSON.stringify(k.usage));
    assert.equal(r.headers['x-ratelimit-remaining-requests'], '99');
    assert.equal(r.headers['x-ratelimit-remaining-tokens'], '1000000');
  });

  test('concurrency 2 with slow answers: the third at once is 429, later ones pass', T, async () => {
    const all = await Promise.all([0, 1, 2].map((i) => sleep(i * 100).then(() => post(gw, TOK.conc, 'slow'))));
    const statuses = all.map((r) => r.status).sort();
    assert.deepEqual(statuses, [200, 200, 429]);
    const refused = all.find((r) => r.status === 429);
    const j = assertError(refused, 429, { code: 'rate_limit_exceeded', type: 'requests' });
    assert.match(j.error.message, /concurren/);
    // Released at the end of each exchange.
    const again = await Promise.all([post(gw, TOK.conc, 'slow'), post(gw, TOK.conc, 'slow')]);
    assert.deepEqual(again.map((r) => r.status), [200, 200]);
  });

  test('a client that leaves mid-request gives its concurrency back', T, async () => {
    const ac = new AbortController();
    const gone = gwPost(gw, '/v1/chat/completions', chatBody('slow'), { token: TOK.conc, signal: ac.signal }).catch(() => null);
    await sleep(200);
    ac.abort();
    await gone;
    await sleep(300);
    const again = await Promise.all([post(gw, TOK.conc, 'slow'), post(gw, TOK.conc, 'slow')]);
    assert.deepEqual(again.map((r) => r.status), [200, 200]);
  });

  test('old security tokens and keys without limits: unlimited, no x-ratelimit headers', T, async () => {
    for (const token of [LEGACY, TOK.plain]) {
      const all = await Promise.all(Array.from({ length: 20 }, () => post(gw, token)));
      assert.deepEqual([...new Set(all.map((r) => r.status))], [200]);
      assert.equal(all[0].headers['x-ratelimit-limit-requests'], undefined);
    }
  });

  test('access line names the key', T, async () => {
    await post(gw, TOK.plain);
    await post(gw, LEGACY);
    await sleep(100);
    const text = gw.stderr();
    assert.match(text, /plain-key/);
    assert.match(text, /key-[0-9a-f]{8}/);
  });

  test('a reload that changes limits applies to the next request', T, async () => {
    assert.equal((await post(gw, TOK.reload)).status, 200);
    assert.equal((await post(gw, TOK.reload)).status, 200);
    assertError(await post(gw, TOK.reload), 429, { code: 'rate_limit_exceeded' });
    gw.writeConfig(makeConfig({ reloadRpm: 100 }));
    const rl = await request({ url: `${gw.adminUrl}/admin/v1/reload`, method: 'POST' });
    assert.equal(rl.status, 200, rl.text);
    const r = await post(gw, TOK.reload);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-ratelimit-limit-requests'], '100');
    // The two requests already counted stay counted: 100 - 2 - 1 left.
    assert.equal(r.headers['x-ratelimit-remaining-requests'], '97');
  });

  test('metrics: refusals by client and limit, budget remaining', T, async () => {
    const m = await request({ url: `${gw.adminUrl}/metrics` });
    assert.equal(m.status, 200);
    assert.match(m.text, /^openbridge_ratelimited_total\{client="rpm-five",limit="rpm"\} 1$/m);
    assert.match(m.text, /^openbridge_ratelimited_total\{client="tpm-key",limit="tpm"\} 1$/m);
    assert.match(m.text, /^openbridge_ratelimited_total\{client="budget-key",limit="budget"\} 1$/m);
    assert.match(m.text, /^openbridge_ratelimited_total\{client="conc-key",limit="concurrency"\} 1$/m);
    assert.match(m.text, /^openbridge_budget_remaining\{client="budget-key",unit="tokens"\} 0$/m);
    // No Redis: this process holds the budgets; there is no shared read to report on.
    assert.doesNotMatch(m.text, /openbridge_state_read_ok/);
  });

  test('GET /admin/v1/keys: limits, usage per window, budget, expiry', T, async () => {
    const r = await request({ url: `${gw.adminUrl}/admin/v1/keys` });
    assert.equal(r.status, 200, r.text);
    const byName = Object.fromEntries(r.json().keys.map((k) => [k.name, k]));
    assert.equal(r.json().source, 'memory', 'no Redis: this process holds the exact counters');
    const rpm = byName['rpm-five'];
    assert.deepEqual(rpm.labels, { team: 'search' });
    assert.equal(rpm.limits.rpm, 5);
    assert.equal(rpm.usage.rpm.limit, 5);
    assert.equal(rpm.usage.rpm.remaining, 0);
    const b = byName['budget-key'].budget;
    assert.equal(b.unit, 'tokens');
    assert.equal(b.period, 'day');
    assert.equal(b.amount, 30);
    assert.equal(b.used, 42);
    assert.equal(b.reserved, 0);
    assert.equal(b.remaining, 0);
    assert.equal(byName['expired-key'].expired, true);
    assert.equal(byName['disabled-key'].disabled, true);
    assert.deepEqual(byName['groups-key'].groups, ['g']);
    assert.equal(byName['conc-key'].usage.concurrency.in_flight, 0);
    assert.ok(r.json().keys.some((k) => k.legacy && /^key-[0-9a-f]{8}$/.test(k.name)));
  });

  test('tokens never appear in admin config, admin keys or the logs', T, async () => {
    const conf = await request({ url: `${gw.adminUrl}/admin/v1/config` });
    assert.equal(conf.status, 200);
    const keysAnswer = await request({ url: `${gw.adminUrl}/admin/v1/keys` });
    const out = conf.text + keysAnswer.text + gw.stderr();
    for (const t of [...Object.values(TOK), LEGACY])
      assert.ok(!out.includes(t), `token ${t} shown`);
    assert.ok(!/[0-9a-f]{64}/.test(conf.text + keysAnswer.text), 'no digest shown');
    const names = conf.json().keys.map((k) => k.name);
    assert.ok(names.includes('rpm-five'));
  });
});

describe('settlement before the answer ends', { timeout: 120000 }, () => {
  // A key's reservation (here its only concurrency slot) is settled before the answer's last
  // write: a client holding the whole answer (a JSON body, a stream's [DONE]) that asks again
  // at once, on a new connection that another worker may take, never meets it.
  const TOKEN = 'sk-key-settle-secret';
  let up, gw;
  before(async () => {
    up = await startHoldingUpstream({ hold: 300 });
    gw = await startGateway({
      workers: 2,
      config: {
        providers: [{ group: 'g', name: 'm', base: up.url, key: 'sk-up' }],
        keys: [{ name: 'one-at-a-time', token: TOKEN, limits: { concurrency: 1 } }],
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
  });

  for (const stream of [false, true])
    test(`concurrency 1, 2 workers: 50 ${stream ? 'streams' : 'JSON answers'} back to back on new connections, none refused`, T, async () => {
      const all = await backToBack(gw.url, TOKEN, 50, { stream });
      const refused = all.flatMap((r, i) => (r.status === 200 ? [] : [`#${i}: ${r.status} ${r.text}`]));
      assert.deepEqual(refused, []);
    });
});

describe('provider limits', { timeout: 60000 }, () => {
  let mock, gw;
  before(async () => {
    mock = await startMock();
    gw = await startGateway({
      config: {
        providers: [
          { group: 'p', name: 'small', base: mock.url, key: 'sk-up', limits: { rpm: 1 } },
          { group: 'p', name: 'big', base: mock.url, key: 'sk-up', limits: { rpm: 3 } },
          { group: 'q', name: 'tokens', base: mock.url, key: 'sk-up', limits: { tpm: 100 } },
        ],
        security: ['sk-client'],
        groups: { p: { policy: 'round_robin' } },
      },
      workers: 1,
    });
  });
  after(async () => {
    await gw?.stop();
    await mock?.close();
  });

  test('a target at its limit is skipped; all full -> 429', T, async () => {
    const served = [];
    for (let i = 0; i < 4; i++) {
      const r = await post(gw, 'sk-client', 'p');
      assert.equal(r.status, 200, `request ${i + 1}: ${r.text}`);
      served.push(r.headers['x-openbridge-model']);
    }
    served.sort();
    assert.deepEqual(served, ['big', 'big', 'big', 'small']);
    const r = await post(gw, 'sk-client', 'p');
    const j = assertError(r, 429, { code: 'rate_limit_exceeded' });
    assert.match(j.error.message, /'p'/);
    assert.ok(Number(r.headers['retry-after']) >= 1);
    assert.equal(mock.stats().requests.length, 4, 'the refused request never reached a provider');
  });

  test('provider tpm counts the estimate of a key without limits, settled with usage', T, async () => {
    // The first reserves the whole bucket (28 + 1024 clamped to 100) and uses 21: 79 left, less
    // than the next estimate (100).
    assert.equal((await post(gw, 'sk-client', 'q')).status, 200);
    const r = await post(gw, 'sk-client', 'q');
    assertError(r, 429, { code: 'rate_limit_exceeded' });
  });
});

describe('limits.max_wait', { timeout: 60000 }, () => {
  let mock, gw;
  before(async () => {
    mock = await startMock();
    gw = await startGateway({
      config: {
        providers: [{ group: 'g', name: 'm', base: mock.url, key: 'sk-up' }],
        limits: { max_wait: 3, max_waiting: 3 },
        keys: [
          // one request a second, none saved up
          { name: 'waits', token: 'sk-wait-a', limits: { rpm: 60, burst: 1 } },
          { name: 'waits-too', token: 'sk-wait-b', limits: { rpm: 60, burst: 1 } },
          { name: 'short-wait', token: 'sk-wait-c', limits: { rpm: 60, burst: 1, max_wait: 0.3 } },
          { name: 'no-wait', token: 'sk-wait-d', limits: { rpm: 60, burst: 1, max_wait: 0 } },
          // one request every 2 s
          { name: 'leaves', token: 'sk-wait-e', limits: { rpm: 30, burst: 1, max_wait: 6 } },
        ],
      },
      workers: 2,
    });
  });
  after(async () => {
    await gw?.stop();
    await mock?.close();
  });

  const timed = async (token, delay = 0) => {
    await sleep(delay);
    const t0 = performance.now();
    const r = await post(gw, token);
    return { status: r.status, start: t0, end: performance.now(), r };
  };

  test('over the rate limit, requests wait their turn (first come, first served)', T, async () => {
    const all = await Promise.all([0, 1, 2].map((i) => timed('sk-wait-a', i * 100)));
    assert.deepEqual(all.map((x) => x.status), [200, 200, 200]);
    const t0 = all[0].start;
    const ends = all.map((x) => x.end - t0);
    assert.ok(ends[0] < 500, `first at once: ${ends[0]}`);
    assert.ok(ends[1] >= 900 && ends[1] < 1900, `second after ~1 s: ${ends[1]}`);
    assert.ok(ends[2] >= 1900 && ends[2] < 2900, `third after ~2 s: ${ends[2]}`);
  });

  test('a wait longer than max_wait fails at once; max_wait 0 never waits', T, async () => {
    assert.equal((await timed('sk-wait-c')).status, 200);
    const c = await timed('sk-wait-c');
    assertError(c.r, 429, { code: 'rate_limit_exceeded' });
    assert.ok(c.end - c.start < 250, `refused at once: ${c.end - c.start}`);
    assert.equal((await timed('sk-wait-d')).status, 200);
    const d = await timed('sk-wait-d');
    assertError(d.r, 429, { code: 'rate_limit_exceeded' });
    assert.ok(d.end - d.start < 250, `refused at once: ${d.end - d.start}`);
  });

  test('keys wait side by side; past max_waiting a request is refused at once', T, async () => {
    await sleep(1100); // both keys have room for one again
    const all = await Promise.all([
      timed('sk-wait-a'), timed('sk-wait-b'), // pass at once
      timed('sk-wait-a', 50), timed('sk-wait-b', 50), timed('sk-wait-a', 100), // 3 waiting
      timed('sk-wait-b', 200), // 4th waiter: over max_waiting
    ]);
    assert.deepEqual(all.map((x) => x.status), [200, 200, 200, 200, 200, 429]);
    const over = all[5];
    assert.ok(over.end - over.start < 250, `over the bound: refused at once (${over.end - over.start} ms)`);
    // b's waiter is not held up behind a's two: both keys' second requests end after ~1 s.
    const t0 = all[0].start;
    assert.ok(all[3].end - t0 < 1900, `b second: ${all[3].end - t0}`);
    assert.ok(all[2].end - t0 < 1900, `a second: ${all[2].end - t0}`);
    assert.ok(all[4].end - t0 >= 1900, `a third after a second: ${all[4].end - t0}`);
  });

  test('a waiting request whose client leaves gives up its turn, unsent and uncharged', T, async () => {
    const send = (content, signal) =>
      gwPost(gw, '/v1/chat/completions', chatBody('g', { messages: [{ role: 'user', content }] }), {
        token: 'sk-wait-e',
        signal,
      });
    const upstream = () =>
      mock
        .stats()
        .requests.map((q) => (q.body ? JSON.parse(q.body).messages[0].content : '(no body)'))
        .filter((c) => c.startsWith('leaves-'));
    const t0 = performance.now();
    assert.equal((await send('leaves-0')).status, 200); // the key's next room: in 2 s
    const gone = new AbortController();
    const waiting = send('leaves-1', gone.signal).then(
      (r) => assert.fail(`the waiting request was answered: ${r.status}`),
      (e) => e,
    );
    await sleep(300);
    gone.abort(); // waits for the slot at ~2 s; its client leaves long before
    await waiting;
    await sleep(200);
    const next = await send('leaves-2');
    const took = performance.now() - t0;
    assert.equal(next.status, 200, next.text);
    // Served when the key has room again (~2 s), not after the request that left (~4 s).
    assert.ok(took < 3200, `the next client got the first free slot: ${Math.round(took)} ms`);
    await sleep(300);
    assert.deepEqual(upstream(), ['leaves-0', 'leaves-2'], 'the provider never saw the request that left');
    const line = await waitFor(
      () => accessLines(gw).find((l) => l.client_name === 'leaves' && l.outcome !== 'ok'),
      { timeout: 3000, what: 'the access line of the request that left' },
    );
    assert.equal(line.outcome, 'client_cancelled', line._line);
    assert.equal(line.status, '499', line._line);
  });
});
