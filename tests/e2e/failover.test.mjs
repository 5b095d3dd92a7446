// End-to-end: failover across a group's targets and passive health, against the real binary.
//
// The contract under test:
//   - a target that fails before any byte of its answer reached the client (refused, TLS,
//     reset, no head within timeouts.first_byte, 408/409/429/5xx, a stream whose first event is
//     an error) is replaced by the next target of the group: the request is replayed byte for
//     byte, each target at most once, within the group's attempts and the retry budget;
//   - 400/401/403/404/413/422 are passed through, never retried;
//   - after a stream started nothing is retried: an upstream_error event, no [DONE];
//   - all attempts failed: the last upstream answer, or a 502 (504 for timeouts) JSON error;
//   - passive health: 5 failures in a row or an error ratio > 0.5 over >= 20 requests eject a
//     target; Retry-After ejects for exactly that long; after the cooldown one probe; success
//     restores; health survives a reload that keeps the target (base + model + key);
//   - x-openbridge-model / -provider / -attempts on every answer; attempts= and tried= in the
//     access log; weighted balancing by weight; round robin moves once per request, so the
//     targets that answer share a failing target's requests evenly.
//
// Each test starts its own gateway, so health state and retry budgets never leak between tests.
// Every request, loop and wait is bounded.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { startMock, answerText } from '../../tools/mock-provider/server.js';
import { startGateway, freePort, closedPort, runBin } from './lib/gateway.mjs';
import { request, sha256, parseSSE, waitFor } from './lib/http.mjs';
import { CLIENT_TOKEN, chatBody, gwPost, assertError, accessLines, sleep } from './lib/common.mjs';

const T = { timeout: 90000 };
const now = () => performance.timeOrigin + performance.now(); // same clock as the mock's t_* fields

// ---------------------------------------------------------------------------------------------
// Helpers

// A tiny provider whose behaviour the test changes at run time. `mode` is an object
// {status, retryAfter, delay} or a function (n) -> such an object (n = 1-based request number).
async function startFlip() {
  const s = {
    mode: { status: 200 },
    hits: [],
    url: '',
    server: null,
    hitsAfter(t) {
      return this.hits.filter((h) => h.t_start >= t);
    },
    async close() {
      this.server.closeAllConnections?.();
      await new Promise((r) => this.server.close(() => r()));
    },
  };
  s.server = http.createServer((req, res) => {
    const hit = { t_start: now(), t_end: null, status: null, model: null, body: '' };
    s.hits.push(hit);
    const n = s.hits.length;
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      hit.body = Buffer.concat(chunks).toString('utf8');
      try {
        hit.model = JSON.parse(hit.body).model;
      } catch {}
      const m = typeof s.mode === 'function' ? s.mode(n) : s.mode;
      if (m.delay) await sleep(m.delay);
      const status = m.status ?? 200;
      let body;
      const headers = { 'content-type': 'application/json' };
      if (status === 200) {
        body = JSON.stringify({
          id: `chatcmpl-flip-${n}`,
          object: 'chat.completion',
          created: 1700000000,
          model: hit.model,
          choices: [{ index: 0, message: { role: 'assistant', content: answerText(hit.model) }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
        });
      } else {
        body = JSON.stringify({ error: { message: `flip answered ${status}`, type: 'server_error', param: null, code: null } });
        if (m.retryAfter !== undefined) headers['retry-after'] = String(m.retryAfter);
      }
      headers['content-length'] = String(Buffer.byteLength(body));
      hit.status = status;
      res.writeHead(status, headers);
      res.end(body, () => {
        hit.t_end = now();
      });
    });
  });
  await new Promise((r) => s.server.listen(0, '127.0.0.1', r));
  s.url = `http://127.0.0.1:${s.server.address().port}`;
  return s;
}

// True when `--check-config` accepts the given extension keys without an "unknown key" warning.
// Asserts that --check-config accepts `extra` (documented keys, docs/CONFIGURATION.md): a parser
// regression that rejects them must fail the tests that use them, not skip them.
function assertKeysAccepted(extra, what) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ob-fo-keys-'));
  const file = path.join(dir, 'config.json');
  try {
    const cfg = {
      providers: [
        { group: 'g', name: 'm1', base: 'http://127.0.0.1:9', key: 'k1' },
        { group: 'g', name: 'm2', base: 'http://127.0.0.1:9', key: 'k2' },
      ],
      security: [CLIENT_TOKEN],
      ...extra,
    };
    fs.writeFileSync(file, JSON.stringify(cfg));
    const r = runBin(['--check-config', file]);
    assert.ok(r.code === 0 && !/unknown key/i.test(r.stderr + r.stdout),
      `--check-config must accept ${what} ${JSON.stringify(extra)}: exit ${r.code}\n${r.stderr}${r.stdout}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const P = (group, name, base, extra = {}) => ({ group, name, base, key: `sk-${name}`, ...extra });

// The access lines of one group, once there are at least `n` (the log is buffered per worker,
// so lines of different workers are not in request order: match by group, not by position).
async function groupLines(gw, group, n) {
  const get = () => accessLines(gw).filter((l) => l.group === group);
  await waitFor(() => get().length >= n, { timeout: 5000, what: `${n} access lines of group ${group}` });
  return get();
}

const tally = (xs) => JSON.stringify(xs.map(String).sort());

// Runs `count` async jobs with at most `conc` at a time; returns their results in order.
async function pool(count, conc, job) {
  const out = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      out[i] = await job(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(conc, count) }, worker));
  return out;
}

function errorEventOf(events) {
  for (const e of events) {
    if (!e.data || e.data === '[DONE]') continue;
    try {
      const j = JSON.parse(e.data);
      if (j && j.error) return j.error;
    } catch {}
  }
  return null;
}

// ---------------------------------------------------------------------------------------------

describe('failover and health (real binary)', { timeout: 900000 }, () => {
  let M; // the mock provider: targets differ by /mode/ path and by model name
  const gws = [];
  const flips = [];

  const byModel = (name) => M.stats().requests.filter((r) => r.model === name);
  const countModel = (name) => byModel(name).length;

  async function gateway(config) {
    const gw = await startGateway({
      config: {
        security: [CLIENT_TOKEN],
        ...config,
        timeouts: { connect: 2, first_byte: 5, idle: 5, total: 30, shutdown_grace: 2, ...(config.timeouts || {}) },
      },
    });
    gws.push(gw);
    return gw;
  }
  async function flip() {
    const f = await startFlip();
    flips.push(f);
    return f;
  }
  const sdk = (gw) => new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: CLIENT_TOKEN, maxRetries: 0, timeout: 20000 });

  before(async () => {
    M = await startMock();
  });

  after(async () => {
    for (const gw of gws) {
      if (!gw.exited()) await gw.stop();
      if (process.env.E2E_KEEP_LOGS) fs.writeFileSync(path.join(gw.dir, 'stderr.log'), gw.stderr());
      else gw.cleanup();
    }
    for (const f of flips) await f.close();
    await M?.close();
  });

  // -------------------------------------------------------------------------------------------
  test('1. mixed group (refused, 500, 429, hang, healthy): 100 SDK requests all served by the healthy target; bad ones ejected; hang cut by first_byte', T, async (t) => {
    M.reset();
    const closed = await closedPort();
    const FIRST_BYTE_MS = 1000;
    const gw = await gateway({
      providers: [
        P('mixed', 'mx-refused', `http://127.0.0.1:${closed}`),
        P('mixed', 'mx-500', `${M.url}/mode/status-500`),
        P('mixed', 'mx-429', `${M.url}/mode/status-429`),
        P('mixed', 'mx-hang', `${M.url}/mode/hang`),
        P('mixed', 'mx-good', M.url),
      ],
      timeouts: { first_byte: FIRST_BYTE_MS / 1000 },
    });
    const client = sdk(gw);
    const N = 100;
    const t0 = now();
    const results = await pool(N, 4, async (i) => {
      const s = now();
      try {
        const { data, response } = await client.chat.completions
          .create({ model: 'mixed', messages: [{ role: 'user', content: `request ${i}` }] })
          .withResponse();
        return { i, ms: now() - s, data, headers: response.headers };
      } catch (e) {
        return { i, ms: now() - s, error: e };
      }
    });
    const durationS = (now() - t0) / 1000;
    const failed = results.filter((r) => r.error);
    assert.equal(
      failed.length, 0,
      `requests failed: ${failed.slice(0, 5).map((r) => `#${r.i}: ${r.error?.status} ${r.error?.message}`).join('; ')}\n` +
        `access lines:\n${accessLines(gw).filter((l) => l.status !== '200').slice(0, 5).map((l) => l._line).join('\n')}`,
    );
    for (const r of results) {
      assert.equal(r.data.model, 'mixed', `#${r.i} model`);
      assert.equal(r.data.choices[0].message.content, answerText('mx-good'), `#${r.i} text`);
      assert.equal(r.headers.get('x-openbridge-model'), 'mx-good', `#${r.i} x-openbridge-model`);
    }
    const slowest = Math.max(...results.map((r) => r.ms));
    assert.ok(slowest < FIRST_BYTE_MS + 1500, `slowest request took ${slowest.toFixed(0)} ms (first_byte ${FIRST_BYTE_MS} ms + slack)`);

    await waitFor(() => accessLines(gw).length >= N, { timeout: 5000, what: 'all access lines' });
    const lines = accessLines(gw);
    const triedCount = (name) => lines.reduce((n, l) => n + (l.tried || '').split(',').filter((x) => x.startsWith(`${name}:`)).length, 0);
    const counts = {
      refused: triedCount('mx-refused'),
      e500: countModel('mx-500'),
      e429: countModel('mx-429'),
      hang: countModel('mx-hang'),
      good: countModel('mx-good'),
    };
    const info = `counts ${JSON.stringify(counts)} over ${durationS.toFixed(1)} s, slowest ${slowest.toFixed(0)} ms`;
    t.diagnostic(info);
    assert.equal(counts.good, N, `the healthy target serves each request exactly once: ${info}`);
    assert.ok(counts.refused >= 1 && counts.e500 >= 1 && counts.e429 >= 1 && counts.hang >= 1, `every bad target was tried at least once: ${info}`);
    // Ejected after 5 failures in a row (4 more may be in flight), then one probe per cooldown
    // (5 s, doubling).
    const probes = Math.ceil(durationS / 5);
    assert.ok(counts.refused <= 10 + probes, `refused target tried too often: ${info}`);
    assert.ok(counts.e500 <= 10 + probes, `500 target got too much traffic: ${info}`);
    assert.ok(counts.hang <= 10 + probes, `hanging target got too much traffic: ${info}`);
    // Retry-After: 2 -> ejected for 2 s each time.
    assert.ok(counts.e429 <= 5 + Math.ceil(durationS / 2), `429 target got too much traffic: ${info}`);
    // The causes in the access log.
    const causes = new Set(lines.flatMap((l) => (l.tried || '').split(',').filter(Boolean)));
    for (const c of ['mx-refused:connect', 'mx-500:500', 'mx-429:429', 'mx-hang:timeout'])
      assert.ok(causes.has(c), `tried= never shows ${c}: ${[...causes].join(' ')}`);
    // After the first second, the bad targets are (almost) left alone.
    const late = t0 + 1000 * Math.max(2, durationS / 2);
    const lateBad = M.stats().requests.filter((r) => r.t_start >= late && r.model !== 'mx-good').length;
    assert.ok(lateBad <= 2 + probes * 3, `bad targets got ${lateBad} requests in the second half: ${info}`);
  });

  // -------------------------------------------------------------------------------------------
  test('2. stream fails over invisibly when the first target answers 500 or opens with an error event', T, async () => {
    M.reset();
    const gw = await gateway({
      providers: [
        P('s500', 'st-500', `${M.url}/mode/status-500`),
        P('s500', 'st-good-a', M.url),
        P('sevt', 'st-evt', `${M.url}/mode/stream-error-event`),
        P('sevt', 'st-good-b', M.url),
      ],
    });
    const client = sdk(gw);
    for (const [group, bad, good] of [['s500', 'st-500', 'st-good-a'], ['sevt', 'st-evt', 'st-good-b']]) {
      let failedOver = 0;
      for (let i = 0; i < 4; i++) {
        const { data: stream, response } = await client.chat.completions
          .create({ model: group, messages: [{ role: 'user', content: `stream ${i}` }], stream: true })
          .withResponse();
        let text = '';
        let n = 0;
        for await (const ch of stream) {
          n++;
          assert.equal(ch.model, group, `${group} #${i}: every chunk's model is the group name`);
          text += ch.choices[0]?.delta?.content ?? '';
        }
        assert.ok(n >= 5, `${group} #${i}: ${n} chunks`);
        assert.equal(text, answerText(good), `${group} #${i}: the healthy target's text`);
        assert.equal(response.headers.get('x-openbridge-model'), good, `${group} #${i}: x-openbridge-model`);
        const attempts = response.headers.get('x-openbridge-attempts');
        assert.ok(attempts === '1' || attempts === '2', `${group} #${i}: x-openbridge-attempts ${attempts}`);
        if (attempts === '2') failedOver++;
      }
      const badRecs = byModel(bad);
      const goodRecs = byModel(good);
      assert.ok(badRecs.length >= 1, `${group}: the failing target was tried`);
      assert.equal(failedOver, badRecs.length, `${group}: one failover per failed attempt`);
      assert.equal(goodRecs.length, 4, `${group}: the healthy target served each stream once`);
      // Replayed byte for byte: only the model value differs.
      const goodShas = new Set(goodRecs.map((r) => r.body_sha256));
      for (const r of badRecs) {
        const replay = r.body.replace(`"model":"${bad}"`, `"model":"${good}"`);
        assert.notEqual(replay, r.body, 'the model value is in the body');
        assert.ok(goodShas.has(sha256(replay)), `${group}: the retry's body is the first attempt's with only the model changed:\n${r.body}`);
      }
      if (group === 'sevt') {
        // the failed attempt really got the error event first
        assert.ok(badRecs.every((r) => /mock stream error event/.test(r.response_body || '')), 'mock sent the error event');
      }
    }
    await waitFor(() => accessLines(gw).length >= 8, { timeout: 5000, what: '8 access lines' });
    const tried = accessLines(gw).map((l) => l.tried).filter(Boolean);
    assert.ok(tried.includes('st-500:500'), `tried= for the 500 stream: ${tried.join(' ')}`);
    assert.ok(tried.includes('st-evt:error_event'), `tried= for the error-event stream: ${tried.join(' ')}`);
  });

  // -------------------------------------------------------------------------------------------
  test('3. drop-mid-stream: the client sees an upstream_error event without [DONE]; nothing is retried', T, async () => {
    M.reset();
    const gw = await gateway({
      providers: [
        P('dm1', 'dm-only', `${M.url}/mode/drop-mid-stream`),
        P('dm2', 'dm-first', `${M.url}/mode/drop-mid-stream`),
        P('dm2', 'dm-good', M.url),
      ],
    });
    // Raw SSE, single target.
    const r = await gwPost(gw, '/v1/chat/completions', chatBody('dm1', { stream: true }), { allowError: true });
    assert.equal(r.status, 200, r.text);
    const { events } = parseSSE(r.text);
    const err = errorEventOf(events);
    assert.ok(err, `an error event is sent: ${r.text}`);
    assert.equal(err.type, 'upstream_error', `error event type: ${JSON.stringify(err)}`);
    assert.ok(!events.some((e) => e.data === '[DONE]'), `no [DONE] after a broken stream: ${r.text}`);
    assert.ok(events.filter((e) => e.data && !JSON.parse(e.data).error).length >= 1, 'the events before the break were delivered');
    await sleep(300);
    assert.equal(countModel('dm-only'), 1, 'the provider saw exactly one request (no retry)');

    // The openai SDK throws.
    const client = sdk(gw);
    await assert.rejects(async () => {
      const s = await client.chat.completions.create({ model: 'dm1', messages: [{ role: 'user', content: 'x' }], stream: true });
      for await (const _ of s);
    }, 'the SDK stream must fail');
    await sleep(300);
    assert.equal(countModel('dm-only'), 2, 'one upstream request per client request');

    // First target of two: still no failover once events went out.
    let hitFirst = 0;
    let servedByGood = 0;
    for (let i = 0; i < 4 && hitFirst < 2; i++) {
      const x = await gwPost(gw, '/v1/chat/completions', chatBody('dm2', { stream: true }), { allowError: true });
      assert.equal(x.status, 200, x.text);
      const who = x.headers['x-openbridge-model'];
      const evs = parseSSE(x.text).events;
      if (who === 'dm-first') {
        hitFirst++;
        assert.equal(errorEventOf(evs)?.type, 'upstream_error', `dm2 via dm-first: ${x.text}`);
        assert.ok(!evs.some((e) => e.data === '[DONE]'), 'no [DONE]');
        assert.equal(x.headers['x-openbridge-attempts'], '1');
      } else {
        assert.equal(who, 'dm-good');
        servedByGood++;
        assert.equal(evs.at(-1).data, '[DONE]');
      }
    }
    assert.ok(hitFirst >= 1, 'the dropping target was picked at least once');
    await sleep(300);
    assert.equal(countModel('dm-first'), hitFirst, 'dm-first: one request per answer it started');
    assert.equal(countModel('dm-good'), servedByGood, 'dm-good got no retries of broken streams');
    await groupLines(gw, 'dm1', 2);
    const lines = [...accessLines(gw).filter((l) => l.group === 'dm1'), ...(await groupLines(gw, 'dm2', hitFirst + servedByGood))];
    assert.ok(lines.some((l) => l.target === 'dm-first'), 'the broken dm2 stream is logged');
    for (const l of lines) if (l.target === 'dm-first' || l.target === 'dm-only') assert.equal(l.attempts, '1', l._line);
  });

  // -------------------------------------------------------------------------------------------
  test('3b. a JSON answer cut before its end fails over: nothing of it had reached the client', T, async () => {
    M.reset();
    const gw = await gateway({
      providers: [P('jc', 'jc-cut', `${M.url}/mode/drop-mid-stream`), P('jc', 'jc-good', M.url)],
    });
    let viaCut = 0;
    for (let i = 0; i < 4; i++) {
      const r = await gwPost(gw, '/v1/chat/completions', chatBody('jc'));
      assert.equal(r.status, 200, `request ${i}: ${r.text}`);
      assert.equal(r.headers['x-openbridge-model'], 'jc-good');
      assert.equal(r.json().choices[0].message.content, answerText('jc-good'));
      if (r.headers['x-openbridge-attempts'] === '2') viaCut++;
      else assert.equal(r.headers['x-openbridge-attempts'], '1');
    }
    assert.ok(viaCut >= 1, 'the cutting target was tried first at least once');
    await sleep(300);
    assert.equal(countModel('jc-cut'), viaCut, 'one request to the cutting target per failover');
    assert.equal(countModel('jc-good'), 4);
    const lines = await groupLines(gw, 'jc', 4);
    const failedOver = lines.filter((l) => l.attempts === '2');
    assert.equal(failedOver.length, viaCut);
    for (const l of failedOver) assert.equal(l.tried, 'jc-cut:reset', l._line);
  });

  // -------------------------------------------------------------------------------------------
  test('4. 400/401/403/404/413/422 from a provider are passed through and never retried', T, async () => {
    M.reset();
    const codes = [400, 401, 403, 404, 413, 422];
    const gw = await gateway({
      providers: codes.flatMap((c) => [P(`e${c}`, `nr-${c}`, `${M.url}/mode/status-${c}`), P(`e${c}`, `nr-good-${c}`, M.url)]),
    });
    for (const c of codes) {
      let passed = 0;
      let ok = 0;
      for (let i = 0; i < 6 && passed < 2; i++) {
        const r = await gwPost(gw, '/v1/chat/completions', chatBody(`e${c}`));
        if (r.status === 200) {
          ok++;
          assert.equal(r.headers['x-openbridge-model'], `nr-good-${c}`);
          continue;
        }
        assert.equal(r.status, c, `e${c}: ${r.status} ${r.text}`);
        passed++;
        assert.equal(r.headers['x-openbridge-attempts'], '1', `e${c}: attempts`);
        assert.equal(r.headers['x-openbridge-model'], `nr-${c}`, `e${c}: x-openbridge-model`);
        const rec = byModel(`nr-${c}`).at(-1);
        assert.equal(r.text, rec.response_body, `e${c}: the provider's body is passed through unchanged`);
      }
      assert.ok(passed >= 1, `e${c}: the ${c} target was picked`);
      assert.equal(countModel(`nr-${c}`), passed, `e${c}: one upstream request per ${c} answer`);
      assert.equal(countModel(`nr-good-${c}`), ok, `e${c}: no failover after a ${c}`);
    }
    for (const c of codes) {
      const lines = await groupLines(gw, `e${c}`, countModel(`nr-${c}`) + countModel(`nr-good-${c}`));
      for (const l of lines) {
        assert.equal(l.attempts, '1', l._line);
        assert.equal(l.tried, undefined, `nothing was retried: ${l._line}`);
      }
    }
  });

  // -------------------------------------------------------------------------------------------
  test('5. every target down: 502 fast for refused connections, 504 for timeouts, the last upstream answer for HTTP errors', T, async () => {
    M.reset();
    const c1 = await closedPort();
    const c2 = await closedPort();
    const gw = await gateway({
      providers: [
        P('down', 'dn-1', `http://127.0.0.1:${c1}`),
        P('down', 'dn-2', `http://127.0.0.1:${c2}`),
        P('allhang', 'ah-1', `${M.url}/mode/hang`),
        P('allhang', 'ah-2', `${M.url}/mode/hang`),
        P('allbad', 'ab-500', `${M.url}/mode/status-500`),
        P('allbad', 'ab-502', `${M.url}/mode/status-502`),
      ],
      timeouts: { first_byte: 1 },
    });
    for (let i = 0; i < 3; i++) {
      const s = now();
      const r = await gwPost(gw, '/v1/chat/completions', chatBody('down'));
      const ms = now() - s;
      assertError(r, 502, {}, `down #${i}`);
      assert.ok(ms < 2000, `down #${i}: 502 after ${ms.toFixed(0)} ms`);
    }
    {
      const s = now();
      const r = await gwPost(gw, '/v1/chat/completions', chatBody('allhang'));
      const ms = now() - s;
      assertError(r, 504, {}, 'allhang');
      assert.ok(ms < 2 * 1000 + 1500, `allhang: 504 after ${ms.toFixed(0)} ms (2 targets x first_byte 1 s)`);
      await sleep(200);
      assert.equal(countModel('ah-1') + countModel('ah-2'), 2, 'each hanging target tried once');
    }
    // Both answer 5xx: the client gets the last attempt's status and body. Repeated past the
    // ejection threshold: when every target is ejected they are still tried.
    const N = 8;
    for (let i = 0; i < N; i++) {
      const before = M.stats().requests.length;
      const r = await gwPost(gw, '/v1/chat/completions', chatBody('allbad'));
      await waitFor(() => M.stats().requests.slice(before).filter((x) => x.completed).length >= 2, { timeout: 3000, what: 'both attempts recorded' }).catch(() => {});
      const recs = M.stats().requests.slice(before).filter((x) => x.model === 'ab-500' || x.model === 'ab-502');
      assert.equal(recs.length, 2, `allbad #${i}: each target tried once (got ${recs.map((x) => x.model).join(',')})`);
      const last = recs.sort((a, b) => a.t_start - b.t_start).at(-1);
      assert.equal(r.status, last.response_status, `allbad #${i}: status of the last attempt (${last.model})`);
      assert.equal(r.text, last.response_body, `allbad #${i}: body of the last attempt`);
      assert.equal(r.headers['x-openbridge-attempts'], '2', `allbad #${i}: attempts header`);
      assert.equal(r.headers['x-openbridge-model'], last.model, `allbad #${i}: x-openbridge-model`);
    }
  });

  // -------------------------------------------------------------------------------------------
  test('5b. all ejected: the target whose cooldown ends first is still tried', T, async () => {
    const A = await flip();
    const B = await flip();
    A.mode = { status: 429, retryAfter: 30 };
    B.mode = { status: 429, retryAfter: 10 };
    const gw = await gateway({ providers: [P('bothej', 'ej-a', A.url), P('bothej', 'ej-b', B.url)] });
    const r1 = await gwPost(gw, '/v1/chat/completions', chatBody('bothej'));
    assert.equal(r1.status, 429, `both rate limited: the last 429 passes through: ${r1.text}`);
    assert.equal(A.hits.length, 1);
    assert.equal(B.hits.length, 1);
    A.mode = { status: 200 };
    B.mode = { status: 200 };
    const t = now();
    for (let i = 0; i < 3; i++) {
      const r = await gwPost(gw, '/v1/chat/completions', chatBody('bothej'));
      assert.equal(r.status, 200, `#${i}: ${r.status} ${r.text}`);
      assert.equal(r.headers['x-openbridge-model'], 'ej-b', `#${i}: B's ejection (10 s) ends before A's (30 s)`);
    }
    assert.equal(A.hitsAfter(t).length, 0, 'A (ejected longest) was left alone');
  });

  // -------------------------------------------------------------------------------------------
  test('5c. every attempt failed, one of them with an HTTP answer: the client gets that answer, not a gateway 502/504', T, async () => {
    M.reset();
    const closed = await closedPort();
    const gw = await gateway({
      providers: [
        P('mixdown', 'md-500', `${M.url}/mode/status-500`),
        P('mixdown', 'md-refused', `http://127.0.0.1:${closed}`),
        P('mixhang', 'mh-500', `${M.url}/mode/status-500`),
        P('mixhang', 'mh-hang', `${M.url}/mode/hang`),
      ],
      timeouts: { first_byte: 1 },
    });
    const problems = [];
    for (const [group, answering, n] of [['mixdown', 'md-500', 4], ['mixhang', 'mh-500', 2]]) {
      for (let i = 0; i < n; i++) {
        const before = byModel(answering).length;
        const r = await gwPost(gw, '/v1/chat/completions', chatBody(group));
        const rec = byModel(answering).at(-1);
        assert.equal(byModel(answering).length, before + 1, `${group} #${i}: ${answering} answered once`);
        const lines = await groupLines(gw, group, i + 1);
        const ctx = `${group} #${i}: got ${r.status} ${r.text.slice(0, 140)}`;
        if (r.status !== 500 || r.text !== rec.response_body || r.headers['x-openbridge-attempts'] !== '2')
          problems.push(`${ctx}\n    access: ${lines.map((l) => `tried=${l.tried} status=${l.status}`).join(' | ')}`);
      }
    }
    assert.equal(problems.length, 0, `expected the upstream 500 answer (status and body, attempts 2):\n  ${problems.join('\n  ')}`);
  });

  // -------------------------------------------------------------------------------------------
  test('5d. a provider\'s own first_byte timeout cuts its hang and fails over', T, async (t) => {
    const probe = { providers: [{ group: 'g', name: 'm', base: 'http://127.0.0.1:9', key: 'k', timeouts: { first_byte: 0.5 } }] };
    assertKeysAccepted(probe, 'provider "timeouts"');
    M.reset();
    const gw = await gateway({
      providers: [P('pt', 'pt-hang', `${M.url}/mode/hang`, { timeouts: { first_byte: 0.5 } }), P('pt', 'pt-good', M.url)],
      timeouts: { first_byte: 20 },
    });
    let failedOver = 0;
    for (let i = 0; i < 4; i++) {
      const s0 = now();
      const r = await gwPost(gw, '/v1/chat/completions', chatBody('pt'));
      const ms = now() - s0;
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers['x-openbridge-model'], 'pt-good');
      if (r.headers['x-openbridge-attempts'] === '2') {
        failedOver++;
        assert.ok(ms >= 400 && ms < 2000, `#${i}: the hang was cut after ${ms.toFixed(0)} ms (provider first_byte 0.5 s, global 20 s)`);
      }
    }
    assert.ok(failedOver >= 1, 'the hanging target was tried');
  });

  // -------------------------------------------------------------------------------------------
  test('6. recovery: an ejected target gets one probe after its cooldown and traffic again after it succeeds; a failed probe doubles the cooldown', T, async (t) => {
    assertKeysAccepted({ health: { consecutive_failures: 2, base_ejection: 1 } }, '"health" keys');
    const K = 2;
    const BASE_MS = 1000;
    const PROBE_DELAY = 400;
    for (const variant of ['failures', 'retry-after', 'retry-after-503', 'failed-probe']) {
      M.reset();
      const F = await flip();
      const cfg = { providers: [P('rec', 'rec-flip', F.url), P('rec', 'rec-good', M.url)] };
      cfg.health = { consecutive_failures: K, base_ejection: BASE_MS / 1000 };
      const gw = await gateway(cfg);
      const statuses = [];
      // Requests every 40 ms (not waiting for each other) until done() or the deadline.
      const fireUntil = async (done, deadline) => {
        const pending = [];
        while (now() < deadline && !done()) {
          pending.push(gwPost(gw, '/v1/chat/completions', chatBody('rec')).then((r) => statuses.push(r.status)));
          await sleep(40);
        }
        await Promise.all(pending);
      };
      const told = variant.startsWith('retry-after');
      let cooldown = told ? 2000 : BASE_MS;
      F.mode = variant === 'retry-after' ? { status: 429, retryAfter: 2 } : variant === 'retry-after-503' ? { status: 503, retryAfter: 2 } : { status: 500 };
      const need = told ? 1 : K;
      for (let i = 0; i < 6 * need && F.hits.length < need; i++) {
        const r = await gwPost(gw, '/v1/chat/completions', chatBody('rec'));
        assert.equal(r.status, 200, `${variant}: failover hides the failure: ${r.status} ${r.text}`);
        assert.equal(r.headers['x-openbridge-model'], 'rec-good');
      }
      assert.equal(F.hits.length, need, `${variant}: the flip target failed ${need} times`);
      await waitFor(() => F.hits.at(-1).t_end, { timeout: 2000, what: 'last failure written' });
      let tEject = F.hits.at(-1).t_end;

      if (variant === 'failed-probe') {
        // The first probe fails (still 500): ejected again for twice the base.
        await fireUntil(() => F.hitsAfter(tEject).some((h) => h.t_end), tEject + cooldown + 5000);
        const [p1, ...rest] = F.hitsAfter(tEject);
        const info = `failed-probe: first probe at +${p1 ? (p1.t_start - tEject).toFixed(0) : '-'} ms (cooldown ${cooldown} ms), others ${rest.length}`;
        t.diagnostic(info);
        assert.ok(p1 && p1.t_end, `no first probe; ${info}`);
        assert.ok(p1.t_start - tEject >= cooldown - 300 && p1.t_start - tEject <= cooldown + 2000, info);
        assert.equal(p1.status, 500);
        tEject = p1.t_end;
        cooldown *= 2;
      }
      F.mode = { status: 200, delay: PROBE_DELAY };
      await fireUntil(() => {
        const a = F.hitsAfter(tEject);
        return a.length >= 3 && a[0].t_end;
      }, tEject + cooldown + 5000);
      assert.ok(statuses.every((x) => x === 200), `${variant}: every request succeeded: ${statuses.filter((x) => x !== 200).join(',')}`);
      const after = F.hitsAfter(tEject);
      const info = `${variant}: hits after the ejection at +${after.map((h) => (h.t_start - tEject).toFixed(0)).join(', +')} ms (cooldown ${cooldown} ms)`;
      t.diagnostic(info);
      assert.ok(after.length >= 1, `${variant}: no probe within cooldown + 5 s; ${info}`);
      const probe = after[0];
      assert.ok(probe.t_start - tEject >= cooldown - 300, `${variant}: traffic during the cooldown; ${info}`);
      assert.ok(probe.t_start - tEject <= cooldown + 2000, `${variant}: the probe came late; ${info}`);
      assert.ok(probe.t_end, 'the probe was answered');
      const during = after.filter((h) => h !== probe && h.t_start < probe.t_end - 5);
      assert.equal(during.length, 0, `${variant}: only one request while the probe was out; ${info}`);
      assert.ok(after.length >= 2, `${variant}: the restored target gets traffic again; ${info}`);
      await gw.stop();
    }
  });

  // -------------------------------------------------------------------------------------------
  test('6b. error ratio: a target failing 2 of 3 requests is ejected once 20 requests were seen', T, async (t) => {
    M.reset();
    const F = await flip();
    F.mode = (n) => (n % 3 === 0 ? { status: 200 } : { status: 500 });
    const gw = await gateway({ providers: [P('ratio', 'ratio-flip', F.url), P('ratio', 'ratio-good', M.url)] });
    const t0 = now();
    for (let i = 0; i < 70; i++) {
      const r = await gwPost(gw, '/v1/chat/completions', chatBody('ratio'));
      assert.equal(r.status, 200, `#${i}: ${r.status} ${r.text}`);
    }
    const ms = now() - t0;
    const n = F.hits.length;
    t.diagnostic(`${n} requests reached the 2-of-3 failing target in ${ms.toFixed(0)} ms`);
    // Never 5 failures in a row; 14 of 20 failed (> 0.5) -> ejected at the 20th (window 30 s,
    // cooldown 5 s: the run is far shorter than both).
    assert.ok(ms < 4500, `the run took ${ms.toFixed(0)} ms, too long to tell (cooldown 5 s)`);
    assert.ok(n >= 20 && n <= 21, `the 2-of-3 failing target got ${n} requests of 70 (expected ejection at 20)`);
  });

  // -------------------------------------------------------------------------------------------
  test('7. a reload that keeps the target keeps its health (shared by every group naming it); a changed key is a new target', T, async () => {
    M.reset();
    const F = await flip();
    F.mode = { status: 429, retryAfter: 30 };
    // keep2 names the same target (base + name + key) as keep.
    const providers = [P('keep', 'keep-flip', F.url), P('keep', 'keep-good', M.url), P('keep2', 'keep-flip', F.url), P('keep2', 'keep2-good', M.url)];
    const gw = await gateway({ providers });
    const send = async (group, n, what) => {
      for (let i = 0; i < n; i++) {
        const r = await gwPost(gw, '/v1/chat/completions', chatBody(group));
        assert.equal(r.status, 200, `${what}: ${r.text}`);
        assert.notEqual(r.headers['x-openbridge-model'], 'keep-flip', `${what} #${i}: the ejected target got traffic`);
      }
    };
    for (let i = 0; i < 4 && F.hits.length < 1; i++) {
      const r = await gwPost(gw, '/v1/chat/completions', chatBody('keep'));
      assert.equal(r.status, 200, r.text);
    }
    assert.equal(F.hits.length, 1, 'the flip target answered 429 once (ejected for 30 s)');
    F.mode = { status: 200 };
    await send('keep', 6, 'keep, ejected');
    await send('keep2', 6, 'keep2, same target');
    assert.equal(F.hits.length, 1);
    const reloads = () => gw.stderrLines.filter((l) => /config reloaded/.test(l)).length;
    const timeouts = { connect: 2, first_byte: 5, idle: 5, total: 30, shutdown_grace: 2 };

    // Reload with an unrelated group added first and the targets reordered: identity, not
    // position, counts.
    const r0 = reloads();
    const tWrite = now();
    gw.writeConfig({
      security: [CLIENT_TOKEN],
      providers: [P('unrelated', 'other-model', M.url), providers[3], providers[1], providers[2], providers[0]],
      timeouts,
    }, { mode: 'rename' });
    await waitFor(async () => (await gwPost(gw, '/v1/chat/completions', chatBody('unrelated'))).status === 200, {
      timeout: 8000, every: 100, what: 'the new group to be served (reload)',
    });
    assert.ok(reloads() > r0, 'the gateway logged the reload');
    const left = 2500 - (now() - tWrite);
    if (left > 0) await sleep(left);
    await send('keep', 20, 'keep after the reload');
    await send('keep2', 6, 'keep2 after the reload');
    assert.equal(F.hits.length, 1, 'no traffic reached the ejected target after the reload');

    // Control: the same target with another key is another identity with fresh health.
    const r1 = reloads();
    gw.writeConfig({
      security: [CLIENT_TOKEN],
      providers: [{ ...providers[0], key: 'sk-keep-flip-rotated' }, providers[1], providers[2], providers[3], P('unrelated', 'other-model', M.url)],
      timeouts,
    }, { mode: 'rename' });
    await waitFor(() => reloads() > r1, { timeout: 8000, every: 50, what: 'second reload' });
    const tRotated = now();
    for (let i = 0; i < 6 && F.hits.length < 2; i++) {
      const r = await gwPost(gw, '/v1/chat/completions', chatBody('keep'));
      assert.equal(r.status, 200, r.text);
    }
    assert.ok(F.hits.length >= 2, 'a new key is a new target: it takes traffic at once');
    const n = F.hits.length;
    await send('keep2', 6, 'keep2 still names the old, ejected identity');
    assert.equal(F.hits.length, n, 'the old identity is still ejected');
    assert.ok(F.hitsAfter(tRotated).every((h) => h.t_start >= tRotated));
  });

  // -------------------------------------------------------------------------------------------
  test('8. x-openbridge-* headers, attempts= and tried= with each cause; the replay is byte for byte', T, async () => {
    M.reset();
    const closed = await closedPort();
    const bases = {
      'h-500': `${M.url}/mode/status-500`,
      'h-good': `${M.url}/prefix`,
      'c-refused': `http://127.0.0.1:${closed}`,
      'c-hang': `${M.url}/mode/hang`,
      'c-drop': `${M.url}/mode/drop`,
      'c-429': `${M.url}/mode/status-429`,
      'c-503': `${M.url}/mode/status-503`,
      'c-408': `${M.url}/mode/status-408`,
      'c-evt': `${M.url}/mode/stream-error-event`,
      'c-409': `${M.url}/mode/status-409`,
      'c-tls': `https://127.0.0.1:${M.port}`, // TLS to a plain HTTP port: the handshake fails
    };
    const groups = {
      hdr: ['h-500', 'h-good'],
      cconnect: ['c-refused', 'h-good'],
      ctimeout: ['c-hang', 'h-good'],
      creset: ['c-drop', 'h-good'],
      c429: ['c-429', 'h-good'],
      c503: ['c-503', 'h-good'],
      c408: ['c-408', 'h-good'],
      cevt: ['c-evt', 'h-good'],
      c409: ['c-409', 'h-good'],
      ctls: ['c-tls', 'h-good'],
    };
    const providers = Object.entries(groups).flatMap(([g, names]) => names.map((n) => P(g, n, bases[n])));
    const gw = await gateway({ providers, timeouts: { first_byte: 1 } });

    // Odd formatting: only the model value may change in the replay.
    const body =
      '{ "messages" : [ {"role":"user","content":"é \\"model\\": \\"hdr\\" 😀"} ],\n  "metadata": {"model": "hdr"},' +
      '  "model" :   "hdr" , "temperature": 0.50 }';
    const seen = [];
    for (let i = 0; i < 6 && !(seen.includes('1') && seen.includes('2')); i++) {
      const before = M.stats().requests.length;
      const r = await gwPost(gw, '/v1/chat/completions', body);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json().model, 'hdr');
      assert.equal(r.headers['x-openbridge-model'], 'h-good');
      assert.equal(r.headers['x-openbridge-provider'], new URL(bases['h-good']).host, 'the provider host only');
      const attempts = r.headers['x-openbridge-attempts'];
      seen.push(attempts);
      await sleep(50);
      const recs = M.stats().requests.slice(before);
      if (attempts === '2') {
        assert.deepEqual(recs.map((x) => x.model), ['h-500', 'h-good'], 'the failing target, then the healthy one');
        for (const x of recs) {
          const want = body.replace('"model" :   "hdr"', `"model" :   "${x.model}"`);
          assert.equal(x.body_sha256, sha256(want), `${x.model}: replayed byte for byte:\n got: ${x.body}\nwant: ${want}`);
        }
        assert.equal(recs[1].path, '/prefix/v1/chat/completions');
      } else {
        assert.equal(attempts, '1', 'x-openbridge-attempts');
        assert.deepEqual(recs.map((x) => x.model), ['h-good']);
      }
    }
    assert.ok(seen.includes('1') && seen.includes('2'), `saw 1-attempt and 2-attempt answers: ${seen}`);
    const hdrLines = await groupLines(gw, 'hdr', seen.length);
    assert.equal(tally(hdrLines.map((l) => l.attempts)), tally(seen), 'attempts= in the log match the headers');
    for (const l of hdrLines) {
      assert.equal(l.status, '200', l._line);
      assert.equal(l.target, 'h-good', l._line);
      if (l.attempts === '2') assert.equal(l.tried, 'h-500:500', l._line);
      else assert.equal(l.tried, undefined, `no tried= on a first-attempt success: ${l._line}`);
    }

    // One cause per group.
    const want = {
      cconnect: 'c-refused:connect',
      ctimeout: 'c-hang:timeout',
      creset: 'c-drop:reset',
      c429: 'c-429:429',
      c503: 'c-503:503',
      c408: 'c-408:408',
      cevt: 'c-evt:error_event',
      c409: 'c-409:409',
      ctls: 'c-tls:tls',
    };
    for (const [g, tried] of Object.entries(want)) {
      const got = [];
      for (let i = 0; i < 4 && !got.includes('2'); i++) {
        const stream = g === 'cevt';
        const r = await gwPost(gw, '/v1/chat/completions', chatBody(g, stream ? { stream: true } : {}));
        assert.equal(r.status, 200, `${g}: ${r.text}`);
        assert.equal(r.headers['x-openbridge-model'], 'h-good', g);
        assert.equal(r.headers['x-openbridge-provider'], new URL(bases['h-good']).host, g);
        got.push(r.headers['x-openbridge-attempts']);
      }
      assert.ok(got.includes('2'), `${g}: a request failed over within 4 tries: attempts ${got}`);
      const lines = await groupLines(gw, g, got.length);
      assert.equal(tally(lines.map((l) => l.attempts)), tally(got), `${g}: attempts= in the log match the headers`);
      for (const l of lines) {
        if (l.attempts === '2') assert.equal(l.tried, tried, `${g}: ${l._line}`);
        else assert.equal(l.tried, undefined, `${g}: ${l._line}`);
      }
    }
  });

  // -------------------------------------------------------------------------------------------
  test('8b. a gateway 502 after failed attempts carries x-openbridge-attempts and the last target tried', T, async () => {
    const c1 = await closedPort();
    const c2 = await closedPort();
    const gw = await gateway({ providers: [P('gone', 'gone-1', `http://127.0.0.1:${c1}`), P('gone', 'gone-2', `http://127.0.0.1:${c2}`)] });
    const r = await gwPost(gw, '/v1/chat/completions', chatBody('gone'));
    assertError(r, 502, {}, 'gone');
    const [line] = await groupLines(gw, 'gone', 1);
    assert.equal(line.attempts, '2', line._line);
    assert.match(line.tried || '', /^gone-[12]:connect,gone-[12]:connect$/, line._line);
    assert.equal(r.headers['x-openbridge-attempts'], '2', `headers of the 502: ${JSON.stringify(r.headers)}`);
    // The last target tried, as in the access line.
    assert.equal(r.headers['x-openbridge-model'], line.target, `x-openbridge-model of the 502: ${JSON.stringify(r.headers)}; ${line._line}`);
    assert.equal(r.headers['x-openbridge-provider'], new URL(line.provider).host, `x-openbridge-provider of the 502 (host only); ${line._line}`);
    assert.equal(line.tried.split(',').at(-1), `${line.target}:connect`, line._line);
  });

  // -------------------------------------------------------------------------------------------
  test('8c. a target that resets the connection is sent the request once per client request', T, async (t) => {
    M.reset();
    const gw = await gateway({ providers: [P('rst', 'rst-drop', `${M.url}/mode/drop`), P('rst', 'rst-good', M.url)] });
    // Several requests, so that pooled (kept-alive) connections to the mock are in use.
    const per = [];
    for (let i = 0; i < 8; i++) {
      const before = countModel('rst-drop');
      const r = await gwPost(gw, '/v1/chat/completions', chatBody('rst'));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers['x-openbridge-model'], 'rst-good');
      await sleep(20);
      per.push(countModel('rst-drop') - before);
    }
    t.diagnostic(`requests reaching the resetting target per client request: ${per}`);
    assert.ok(per.some((n) => n > 0), 'the resetting target was tried');
    assert.ok(per.every((n) => n <= 1), `each target at most once per request; the resetting target got ${per} (the mock read the whole request each time before dropping it)`);
  });

  // -------------------------------------------------------------------------------------------
  test('9. retry budget: with every target failing, upstream requests stay near requests + 20% + floor', T, async (t) => {
    M.reset();
    const gw = await gateway({
      providers: [
        P('budget', 'bg-1', `${M.url}/mode/status-500`),
        P('budget', 'bg-2', `${M.url}/mode/status-500`),
        P('budget', 'bg-3', `${M.url}/mode/status-500`),
      ],
    });
    const N = 200;
    const t0 = now();
    const rs = await pool(N, 6, () => gwPost(gw, '/v1/chat/completions', chatBody('budget')));
    const durS = (now() - t0) / 1000;
    for (const r of rs) assert.equal(r.status, 500, `every request gets the last upstream 500: ${r.status} ${r.text}`);
    await sleep(300);
    const U = countModel('bg-1') + countModel('bg-2') + countModel('bg-3');
    // retries in any 10 s window < 0.2 * requests + 3/s * 10 s
    const windows = Math.ceil(durS / 10);
    const allowed = N + 0.2 * N + 30 * windows + 3;
    const info = `${U} upstream requests for ${N} client requests in ${durS.toFixed(1)} s (no budget would be ${3 * N})`;
    t.diagnostic(info);
    assert.ok(U >= N + 30, `the floor allows ~30 retries: ${info}`);
    assert.ok(U <= allowed, `budget exceeded (allowed ~${allowed}): ${info}`);
    const attempts = rs.map((r) => Number(r.headers['x-openbridge-attempts']));
    assert.ok(attempts.every((a) => a >= 1 && a <= 3), `attempts headers: ${[...new Set(attempts)]}`);
    assert.equal(attempts.reduce((a, b) => a + b, 0), U, 'x-openbridge-attempts adds up to the upstream requests');
  });

  // -------------------------------------------------------------------------------------------
  test('9b. retry settings: budget 0 turns failover off; budget_min_per_second alone caps retries', T, async (t) => {
    assertKeysAccepted({ retry: { budget_ratio: 0, budget_min_per_second: 1 } }, '"retry" keys');
    M.reset();
    const gwOff = await gateway({
      providers: [P('nof', 'nof-500', `${M.url}/mode/status-500`), P('nof', 'nof-good', M.url)],
      retry: { budget_ratio: 0, budget_min_per_second: 0 },
    });
    const st = [];
    for (let i = 0; i < 4; i++) st.push((await gwPost(gwOff, '/v1/chat/completions', chatBody('nof'))).status);
    assert.ok(st.includes(500), `no budget: the 500 reaches the client: ${st}`);
    assert.equal(countModel('nof-good'), st.filter((x) => x === 200).length, 'no failover to the healthy target');

    const gw = await gateway({
      providers: [
        P('fl', 'fl-1', `${M.url}/mode/status-500`),
        P('fl', 'fl-2', `${M.url}/mode/status-500`),
        P('fl', 'fl-3', `${M.url}/mode/status-500`),
      ],
      retry: { budget_ratio: 0, budget_min_per_second: 1 },
    });
    const N = 50;
    const t0 = now();
    const rs = await pool(N, 4, () => gwPost(gw, '/v1/chat/completions', chatBody('fl')));
    const durS = (now() - t0) / 1000;
    for (const r of rs) assert.equal(r.status, 500);
    await sleep(200);
    const U = countModel('fl-1') + countModel('fl-2') + countModel('fl-3');
    t.diagnostic(`${U} upstream requests for ${N} in ${durS.toFixed(1)} s`);
    assert.ok(durS < 9, 'the run fits in one budget window');
    assert.equal(U, N + 10, `ratio 0 + 1/s: exactly 10 retries per 10 s window (${U - N} retries)`);
  });

  // -------------------------------------------------------------------------------------------
  test('10. weights 3:1 -> 30/10 of 40 requests (weighted picked automatically)', T, async () => {
    M.reset();
    const gw = await gateway({ providers: [P('w', 'w-3', M.url, { weight: 3 }), P('w', 'w-1', M.url, { weight: 1 })] });
    const rs = await pool(40, 4, () => gwPost(gw, '/v1/chat/completions', chatBody('w')));
    for (const r of rs) assert.equal(r.status, 200, r.text);
    assert.equal(countModel('w-3'), 30, 'weight 3');
    assert.equal(countModel('w-1'), 10, 'weight 1');
  });

  // -------------------------------------------------------------------------------------------
  test('11. groups.<g>.attempts and groups.<g>.policy', T, async (t) => {
    assertKeysAccepted({ groups: { g: { policy: 'round_robin', attempts: 1 } } }, '"groups" keys');
    M.reset();
    const gw = await gateway({
      providers: [
        P('att', 'at-1', `${M.url}/mode/status-500`),
        P('att', 'at-2', `${M.url}/mode/status-500`),
        P('att', 'at-3', `${M.url}/mode/status-500`),
        P('rr', 'rr-3', M.url, { weight: 3 }),
        P('rr', 'rr-1', M.url, { weight: 1 }),
      ],
      groups: { att: { attempts: 2 }, rr: { policy: 'round_robin' } },
    });
    for (let i = 0; i < 5; i++) {
      const before = M.stats().requests.length;
      const r = await gwPost(gw, '/v1/chat/completions', chatBody('att'));
      assert.equal(r.status, 500, r.text);
      assert.equal(r.headers['x-openbridge-attempts'], '2', `att #${i}: attempts capped at 2`);
      await sleep(50);
      assert.equal(M.stats().requests.length - before, 2, `att #${i}: 2 upstream requests`);
    }
    for (let i = 0; i < 40; i++) assert.equal((await gwPost(gw, '/v1/chat/completions', chatBody('rr'))).status, 200);
    assert.equal(countModel('rr-3'), 20, 'round_robin ignores weights');
    assert.equal(countModel('rr-1'), 20, 'round_robin ignores weights');
  });

  test('11b. attempts 1 turns failover off; latency and least_inflight prefer the fast target', T, async (t) => {
    assertKeysAccepted({ groups: { g: { policy: 'round_robin', attempts: 1 } } }, '"groups" keys');
    M.reset();
    const gw = await gateway({
      providers: [
        P('off', 'off-500', `${M.url}/mode/status-500`),
        P('off', 'off-good', M.url),
        P('lat', 'lat-slow', `${M.url}/mode/delay-300`),
        P('lat', 'lat-fast', M.url),
        P('lif', 'lif-slow', `${M.url}/mode/delay-500`),
        P('lif', 'lif-fast', M.url),
      ],
      groups: { off: { attempts: 1 }, lat: { policy: 'latency' }, lif: { policy: 'least_inflight' } },
    });
    const st = [];
    for (let i = 0; i < 4; i++) {
      const r = await gwPost(gw, '/v1/chat/completions', chatBody('off'));
      st.push(r.status);
      assert.equal(r.headers['x-openbridge-attempts'], '1', `off #${i}: one attempt only`);
      if (r.status === 500) assert.equal(r.headers['x-openbridge-model'], 'off-500');
      else assert.equal(r.status, 200, r.text);
    }
    assert.ok(st.includes(500), `attempts 1: the 500 reaches the client: ${st}`);
    assert.equal(countModel('off-500'), st.filter((x) => x === 500).length, 'off-500: one request per 500 answer');
    assert.equal(countModel('off-good'), st.filter((x) => x === 200).length, 'off-good: no failover');

    for (let i = 0; i < 20; i++) assert.equal((await gwPost(gw, '/v1/chat/completions', chatBody('lat'))).status, 200);
    const lat = { slow: countModel('lat-slow'), fast: countModel('lat-fast') };
    t.diagnostic(`latency: ${JSON.stringify(lat)}`);
    assert.ok(lat.slow <= 3, `latency: the 300 ms target got ${lat.slow} of 20 sequential requests`);

    const rs = await pool(40, 8, () => gwPost(gw, '/v1/chat/completions', chatBody('lif')));
    for (const r of rs) assert.equal(r.status, 200, r.text);
    const lif = { slow: countModel('lif-slow'), fast: countModel('lif-fast') };
    t.diagnostic(`least_inflight: ${JSON.stringify(lif)}`);
    assert.ok(lif.slow <= 12, `least_inflight: the 500 ms target got ${lif.slow} of 40 (round robin would give 20)`);
  });

  test('12. round robin with a failing target kept in rotation: the healthy ones split its requests evenly, the cursor moves once per request', T, async (t) => {
    M.reset();
    const gw = await gateway({
      providers: [P('even', 'ev-1', M.url), P('even', 'ev-500', `${M.url}/mode/status-500`), P('even', 'ev-3', M.url)],
      groups: { even: { policy: 'round_robin' } },
      // Never ejected (no 1000 failures in a row; a share of failures can't exceed 1): every
      // request's first pick is the group's turn, so the counts below are exact.
      health: { consecutive_failures: 1000, error_ratio: 1 },
      retry: { budget_ratio: 1 },
    });
    // Each request takes one turn of the cursor (60 consecutive values c): its first target is
    // c % 3, so ev-500 comes first for 20 requests, which fail over to the two others in turn
    // ((c / 3) % 2 over the two left): 10 each, 20 + 10 = 30 each in all. One request at a
    // time, then four at once: the turns are the same whatever the interleaving.
    const models = ['ev-1', 'ev-500', 'ev-3'];
    for (const conc of [1, 4]) {
      const before = models.map(countModel);
      const rs = await pool(60, conc, () => gwPost(gw, '/v1/chat/completions', chatBody('even')));
      for (const r of rs) assert.equal(r.status, 200, r.text);
      const counts = Object.fromEntries(models.map((m, i) => [m, countModel(m) - before[i]]));
      t.diagnostic(`${conc} at a time, upstream requests: ${JSON.stringify(counts)}`);
      assert.deepEqual(counts, { 'ev-1': 30, 'ev-500': 20, 'ev-3': 30 }, `${conc} at a time: the healthy targets share the failing one's requests evenly`);
      const attempts = rs.map((r) => r.headers['x-openbridge-attempts']);
      assert.equal(attempts.filter((a) => a === '2').length, 20, `${conc} at a time, attempts: ${tally(attempts)}`);
      const served = rs.map((r) => r.headers['x-openbridge-model']);
      assert.equal(served.filter((m) => m === 'ev-1').length, 30, `${conc} at a time, served by: ${tally(served)}`);
      assert.equal(served.filter((m) => m === 'ev-3').length, 30, `${conc} at a time, served by: ${tally(served)}`);
    }
  });
});
