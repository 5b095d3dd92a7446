// End-to-end, threaded: the gateway with 4 workers under concurrent load (streams and JSON, on
// keep-alive and fresh connections) while its config is rewritten every 200 ms and SIGHUP'd.
// Every request goes to a group that has a healthy target in every version of the config, so
// every one must succeed. scripts/test runs this under ThreadSanitizer (build-tsan/): a data race
// or a lock-order problem in workers, reload, pools or health state is a report in the
// gateway's stderr, which fails the test (lib/gateway.mjs). Bounded: REQUESTS requests or
// LOAD_MS of load, whichever comes first (E2E_SLOW stretches the time bound for sanitizer builds).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startMock } from '../../tools/mock-provider/server.js';
import { startGateway } from './lib/gateway.mjs';
import { parseSSE } from './lib/http.mjs';
import { CLIENT_TOKEN, chatBody, gwPost } from './lib/common.mjs';

const SLOW = Number(process.env.E2E_SLOW || 1);
const REQUESTS = Number(process.env.E2E_THREADS_REQUESTS || 3000);
const LOAD_MS = 60000 * SLOW;
const CONCURRENCY = 16;
const RELOAD_EVERY_MS = 200;
const MIN_DONE = 300; // even the slowest sanitizer build gets this far within LOAD_MS

describe('threads: 4 workers, concurrent load, config rewritten and SIGHUP every 200 ms', { timeout: LOAD_MS + 120000 }, () => {
  let A, gw;
  const prov = (group, name, extra = {}) => ({ group, name, base: A.url, key: `sk-${name}`, ...extra });
  // Versions of the config: targets of `chat` and `resp` come and go, weights change, a group
  // that no request uses appears and disappears, health and retry settings change.
  const versions = () => [
    { providers: [prov('chat', 'c1'), prov('chat', 'c2'), prov('resp', 'r1')] },
    { providers: [prov('chat', 'c1', { weight: 3 }), prov('chat', 'c3'), prov('resp', 'r1'), prov('resp', 'r2'), prov('spare', 's1')],
      groups: { chat: { policy: 'least_inflight', attempts: 2 } } },
    { providers: [prov('chat', 'c2'), prov('resp', 'r2')], groups: { chat: { policy: 'round_robin' } },
      health: { consecutive_failures: 3, base_ejection: 1 } },
    { providers: [prov('resp', 'r1'), prov('chat', 'c1'), prov('chat', 'c2'), prov('chat', 'c3')],
      retry: { budget_ratio: 0.5, budget_min_per_second: 5 } },
  ];
  const withAuth = (c) => ({ ...c, security: [CLIENT_TOKEN] });

  before(async () => {
    A = await startMock();
    gw = await startGateway({ config: withAuth(versions()[0]), workers: 4 });
  });
  after(async () => {
    try {
      if (gw && !gw.exited()) await gw.stop();
    } finally {
      gw?.cleanup();
      await A?.close();
    }
  });

  // One request of kind k; resolves to null when it succeeded, else a description.
  async function one(k, agent) {
    const opts = { agent, timeout: 30000 * SLOW };
    if (k === 0) {
      const r = await gwPost(gw, '/v1/chat/completions', chatBody('chat'), opts);
      if (r.status !== 200) return `chat json ${r.status} ${r.text.slice(0, 200)}`;
      const j = r.json();
      if (j.model !== 'chat' || j.object !== 'chat.completion') return `chat json body ${r.text.slice(0, 200)}`;
      return null;
    }
    if (k === 1) {
      const body = chatBody('chat', { stream: true, stream_options: { include_usage: true } });
      const r = await gwPost(gw, '/v1/chat/completions', body, opts);
      if (r.status !== 200) return `chat stream ${r.status} ${r.text.slice(0, 200)}`;
      const { events, trailing } = parseSSE(r.text);
      if (trailing || events.at(-1)?.data !== '[DONE]') return `chat stream not ended by [DONE]: ${r.text.slice(-200)}`;
      for (const e of events.slice(0, -1)) {
        const d = JSON.parse(e.data);
        if (d.model !== 'chat') return `chat stream event model ${d.model}`;
      }
      if (!events.some((e) => e.data.includes('"usage":{'))) return 'chat stream without usage chunk';
      return null;
    }
    const body = JSON.stringify({ model: 'resp', input: 'Hi', stream: k === 3 });
    const r = await gwPost(gw, '/v1/responses', body, opts);
    if (r.status !== 200) return `responses ${r.status} ${r.text.slice(0, 200)}`;
    if (k === 3) {
      const { events } = parseSSE(r.text);
      const last = events.at(-1);
      if (last?.event !== 'response.completed') return `responses stream ended by ${last?.event}`;
      if (JSON.parse(last.data).response.model !== 'resp') return 'responses stream model not rewritten';
    } else if (r.json().model !== 'resp') return `responses json model ${r.json().model}`;
    return null;
  }

  test('every request to a group with a healthy target succeeds while the config keeps changing', async (t) => {
    const vs = versions();
    let reloads = 0;
    let stopReload = false;
    const reloader = (async () => {
      for (let i = 1; !stopReload && i < 100000; i++) {
        await new Promise((r) => setTimeout(r, RELOAD_EVERY_MS));
        if (stopReload) break;
        gw.writeConfig(withAuth(vs[i % vs.length]), { mode: i % 2 ? 'rename' : 'inplace' });
        gw.sighup();
        reloads++;
      }
    })();

    const keepAlive = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY / 2 });
    const failures = [];
    let started = 0;
    let done = 0;
    const deadline = performance.now() + LOAD_MS;
    const t0 = performance.now();
    async function client(c) {
      while (started < REQUESTS && performance.now() < deadline) {
        const k = started++ % 4;
        let problem;
        try {
          problem = await one(k, c % 2 ? keepAlive : false);
        } catch (e) {
          problem = `kind ${k}: ${e.message}`;
        }
        done++;
        if (problem) failures.push(problem);
        if (gw.exited()) {
          failures.push(`gateway exited: ${JSON.stringify(gw.exited())}`);
          return;
        }
      }
    }
    try {
      await Promise.all(Array.from({ length: CONCURRENCY }, (_, c) => client(c)));
    } finally {
      stopReload = true;
      await reloader;
      keepAlive.destroy();
    }
    const secs = (performance.now() - t0) / 1000;
    t.diagnostic(`${done} requests in ${secs.toFixed(1)} s, ${reloads} config rewrites + SIGHUP`);
    assert.equal(failures.length, 0, `${failures.length} of ${done} requests failed:\n  ${[...new Set(failures)].slice(0, 10).join('\n  ')}`);
    assert.ok(done >= Math.min(REQUESTS, MIN_DONE), `only ${done} requests done in ${LOAD_MS} ms`);
    assert.ok(reloads >= 5, `config rewritten ${reloads} times`);
    assert.equal(gw.sanitizerReport(), null);
  });
});
