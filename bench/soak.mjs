#!/usr/bin/env node
// Soak test driver (run through bench/soak). Starts the mock provider and the gateway, drives a
// bounded mix of traffic for --duration seconds while rewriting the config every few seconds,
// samples the gateway's RSS and open descriptors, then stops it with SIGTERM and judges:
//
//   1. every request that must succeed did (see `classify`: a request to a group that has a
//      healthy target, failing before its answer started, is a gateway failure; a request whose
//      answer came from a target that breaks mid-answer, or that the client aborted, is counted
//      separately as expected);
//   2. the gateway was alive at the end and exited 0 on SIGTERM;
//   3. after the warm-up (first 20 % of the run, at least 90 s while that leaves half), the
//      least-squares slope of RSS is not significantly above --max-rss-kb-per-hour (in that
//      window and in the last half of the run: a leak grows in both), and the
//      descriptors counted at quiet points (nothing in flight) do not grow.
//
// Writes bench/results/soak-latest.json and .md. Exit 0 when every check passed, 1 otherwise.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../tests/e2e/lib/gateway.mjs';
import { parseSSE } from '../tests/e2e/lib/http.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const HELP = `usage: bench/soak [options]
  --duration S          run time in seconds (default 600)
  --concurrency N       requests in flight at most (default 32)
  --rate R              new requests per second at most (default 40)
  --reload-every S      config rewrite period in seconds (default 3)
  --sample-every S      RSS sample period in seconds (default 2)
  --quiet-every S       period of the quiet points where descriptors are counted (default 15)
  --warmup S            seconds before the slopes are fitted (default: 20 % of the run, at
                        least 90 s while that leaves half the run; RSS climbs for ~90 s while
                        per-worker buffers and the allocator reach their working size)
  --workers N           gateway workers (default 2)
  --max-rss-kb-per-hour K   RSS growth limit (default 1024, i.e. 1 MB/hour)
  --out DIR             where soak-latest.{json,md} go (default bench/results)
  env OPENBRIDGE_BIN    gateway binary (bench/soak builds build-rel/openbridge when unset)`;

function parseArgs(argv) {
  const o = { duration: 600, concurrency: 32, rate: 40, reloadEvery: 3, sampleEvery: 2, quietEvery: 15, warmup: undefined, workers: 2, maxRssKbPerHour: 1024, out: path.join(ROOT, 'bench/results') };
  const num = { '--duration': 'duration', '--concurrency': 'concurrency', '--rate': 'rate', '--reload-every': 'reloadEvery', '--sample-every': 'sampleEvery', '--quiet-every': 'quietEvery', '--warmup': 'warmup', '--workers': 'workers', '--max-rss-kb-per-hour': 'maxRssKbPerHour' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') {
      console.log(HELP);
      process.exit(0);
    } else if (num[a]) {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${a}: expected a positive number, got ${argv[i]}`);
      o[num[a]] = v;
    } else if (a === '--out') o.out = path.resolve(argv[++i]);
    else throw new Error(`unknown option ${a}\n${HELP}`);
  }
  return o;
}

const opt = parseArgs(process.argv.slice(2));
const BIN = path.resolve(process.env.OPENBRIDGE_BIN || path.join(ROOT, 'build-rel/openbridge'));
const TOKEN = 'sk-soak-client';
const ADMIN_TOKEN = 'soak-admin-token';
let adminPort = 0;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (s) => process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${s}\n`);

// ---- processes ----

const children = new Set();
process.on('exit', () => {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {}
  }
});
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => process.exit(130));

async function startMock(dir) {
  const ready = path.join(dir, 'mock.ready');
  const p = spawn(process.execPath, [path.join(ROOT, 'tools/mock-provider/server.js'), '--port', '0', '--host', '127.0.0.1', '--ready-file', ready], { stdio: ['ignore', 'ignore', 'inherit'] });
  children.add(p);
  for (let i = 0; i < 200; i++) {
    if (fs.existsSync(ready)) {
      const text = fs.readFileSync(ready, 'utf8');
      if (text.includes('port')) return { proc: p, port: JSON.parse(text).port };
    }
    await sleep(50);
  }
  throw new Error('mock provider did not start within 10 s');
}

// The gateway, its stderr drained into counters and a short ring of recent lines (a soak of
// hours must not keep every access line in memory).
async function startGateway(dir, config) {
  const configPath = path.join(dir, 'config.json');
  fs.writeFileSync(configPath, JSON.stringify(config, null, 2));
  const port = await freePort();
  const p = spawn(BIN, ['--config', configPath, '--listen', `127.0.0.1:${port}`, '--workers', String(opt.workers)], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(p);
  const gw = { proc: p, port, configPath, exit: null, lines: 0, reloaded: 0, refused: 0, outcomes: {}, recent: [], notable: [] };
  gw.exited = new Promise((resolve) => p.once('exit', (code, signal) => resolve((gw.exit = { code, signal }))));
  let buf = '';
  p.stderr.setEncoding('utf8');
  p.stderr.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      gw.lines++;
      gw.recent.push(line);
      if (gw.recent.length > 200) gw.recent.shift();
      if (/ access /.test(line)) {
        const m = / outcome=(\S+)/.exec(line);
        const k = m ? m[1] : 'unknown';
        gw.outcomes[k] = (gw.outcomes[k] || 0) + 1;
      } else if (/config reloaded/.test(line)) gw.reloaded++;
      else if (/reload refused/.test(line)) gw.refused++;
      if (!/ access /.test(line) && /(error|fatal|abort|assert|sanitizer)/i.test(line) && gw.notable.length < 50) gw.notable.push(line);
    }
  });
  for (let i = 0; i < 200 && !gw.exit; i++) {
    const ok = await new Promise((resolve) => {
      const r = http.get({ host: '127.0.0.1', port, path: '/healthz', agent: false, timeout: 500 }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      r.on('error', () => resolve(false));
      r.on('timeout', () => r.destroy());
    });
    if (ok) return gw;
    await sleep(50);
  }
  throw new Error(`gateway did not answer /healthz within 10 s; recent stderr:\n${gw.recent.join('\n')}`);
}

// ---- config ----

// Groups: a healthy target beside faulty ones. `midAnswer` faults break after the answer
// started (documented: not retried), the others fail before it (documented: failover).
const HEALTHY_MODES = 'slow-stream-15';
const GROUPS = [
  { name: 'solo', faults: [] },
  { name: 'g-drop', faults: ['drop'] },
  { name: 'g-500', faults: ['status-500'] },
  { name: 'g-429', faults: ['status-429'] },
  { name: 'g-hang', faults: ['hang'] },
  { name: 'g-mixed', faults: ['drop', 'status-500', 'status-429', 'hang'] },
  { name: 'g-midstream', faults: ['drop-mid-stream'] },
];
const MID_ANSWER_FAULTS = new Set(['drop-mid-stream']);

function targetName(group, mode) {
  return `${group}--${mode === HEALTHY_MODES ? 'healthy' : mode}`;
}

function buildConfig(mockPort, generation, rnd) {
  const providers = [];
  for (const g of GROUPS) {
    const entries = [HEALTHY_MODES, ...g.faults].map((mode) => ({
      group: g.name,
      name: targetName(g.name, mode),
      base: `http://127.0.0.1:${mockPort}/mode/${mode}`,
      key: `sk-upstream-${g.name}`,
      // Rewrites change weights (1..4) and the order; identities (base, name, key) stay.
      weight: 1 + Math.floor(rnd() * 4),
      // A hanging provider must not hold a request long: short first-byte timeouts.
      timeouts: { first_byte: mode === 'hang' ? 0.4 : 10, idle: 10 },
    }));
    for (let i = entries.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [entries[i], entries[j]] = [entries[j], entries[i]];
    }
    providers.push(...entries);
  }
  const security = [TOKEN];
  // A token the load never uses comes and goes.
  if (generation % 2 === 1) security.push(`sk-soak-unused-${generation}`);
  return {
    providers,
    security,
    timeouts: { connect: 2, first_byte: 10, idle: 10, total: 60, keepalive: 30 },
    // Failover on every retryable failure: the soak checks that a healthy target always takes
    // over, not the retry budget (which the failover tests cover).
    retry: { budget_ratio: 10, budget_min_per_second: 10000 },
    health: { consecutive_failures: 3, base_ejection: 1, max_ejection: 5 },
    // The admin listener runs as in production; /metrics is scraped during the whole run.
    admin: { listen: `127.0.0.1:${adminPort}`, token: ADMIN_TOKEN },
  };
}

function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

// ---- traffic ----

const agent = new http.Agent({ keepAlive: true, maxSockets: opt.concurrency, maxFreeSockets: opt.concurrency });
const KINDS = [
  ['chat', 28],
  ['chat_stream', 28],
  ['responses_stream', 14],
  ['embeddings', 12],
  ['large_body', 6],
  ['abort_stream', 12],
];
const KIND_TOTAL = KINDS.reduce((a, [, w]) => a + w, 0);
const LARGE = 'x'.repeat(2300 * 1024);

function pickKind(r) {
  let x = r * KIND_TOTAL;
  for (const [k, w] of KINDS) if ((x -= w) < 0) return k;
  return KINDS[0][0];
}

function requestFor(kind, group, r) {
  const messages = [{ role: 'user', content: 'Hi' }];
  switch (kind) {
    case 'chat':
      return { path: '/v1/chat/completions', body: { model: group, messages }, stream: false };
    case 'chat_stream':
    case 'abort_stream':
      return { path: '/v1/chat/completions', body: { model: group, messages, stream: true, stream_options: { include_usage: true } }, stream: true };
    case 'responses_stream':
      return { path: '/v1/responses', body: { model: group, input: 'Hi', stream: true }, stream: true, responses: true };
    case 'embeddings':
      return { path: '/v1/embeddings', body: { model: group, input: `soak ${Math.floor(r * 1e6)}` }, stream: false, embeddings: true };
    case 'large_body': {
      // Above 1 MiB: a client connection keeps a body buffer up to 1 MiB for its next request
      // (bounded by design, but it would climb slowly as connections meet large bodies and
      // blur the leak check); larger ones are released after the request.
      const size = 1200 * 1024 + Math.floor(r * 1024 * 1024);
      return { path: '/v1/chat/completions', body: { model: group, messages: [{ role: 'user', content: LARGE.slice(0, size) }] }, stream: false };
    }
  }
  throw new Error(kind);
}

// One request; resolves {status, headers, text, error, aborted}.
function send(spec, { abortAfterBytes } = {}) {
  const body = Buffer.from(JSON.stringify(spec.body));
  return new Promise((resolve) => {
    const chunks = [];
    let settled = false;
    let res;
    const done = (extra) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ status: res?.statusCode, headers: res?.headers ?? {}, text: Buffer.concat(chunks).toString('utf8'), ...extra });
    };
    const req = http.request(
      { host: '127.0.0.1', port: gwPort, method: 'POST', path: spec.path, agent, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'content-length': body.length } },
      (r) => {
        res = r;
        let got = 0;
        r.on('data', (c) => {
          chunks.push(c);
          got += c.length;
          if (abortAfterBytes !== undefined && got >= abortAfterBytes && r.statusCode === 200) {
            req.destroy();
            done({ aborted: true });
          }
        });
        r.on('end', () => done({}));
        r.on('error', (e) => done({ error: e.message }));
        r.on('close', () => {
          if (!r.complete) done({ error: 'answer closed before it was complete' });
        });
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      done({ error: 'client timeout (30 s)' });
    }, 30000);
    req.on('error', (e) => done({ error: e.message }));
    req.end(body);
  });
}

// What a correct answer looks like; returns '' when fine, else why not.
function checkAnswer(spec, group, r) {
  if (r.error) return r.error;
  if (r.status !== 200) return `status ${r.status}: ${r.text.slice(0, 200)}`;
  const real = r.headers['x-openbridge-model'];
  if (!spec.stream) {
    let j;
    try {
      j = JSON.parse(r.text);
    } catch {
      return `not JSON: ${r.text.slice(0, 120)}`;
    }
    if (spec.embeddings) return Array.isArray(j.data) && Array.isArray(j.data[0]?.embedding) ? '' : 'no embedding';
    if (j.model !== group) return `model ${j.model} != ${group}`;
    if (j.choices?.[0]?.message?.content !== `Hello from ${real}!`) return `content ${JSON.stringify(j.choices?.[0]?.message?.content)}`;
    return '';
  }
  const { events } = parseSSE(r.text);
  if (spec.responses) {
    const last = events[events.length - 1];
    if (last?.event !== 'response.completed') return `stream did not complete (last event ${last?.event})`;
    const text = events.filter((e) => e.event === 'response.output_text.delta').map((e) => JSON.parse(e.data).delta).join('');
    return text === `Hello from ${real}!` ? '' : `text ${JSON.stringify(text)}`;
  }
  if (events[events.length - 1]?.data !== '[DONE]') return `stream did not end with [DONE] (${r.text.slice(-200)})`;
  let text = '';
  for (const e of events.slice(0, -1)) {
    const j = JSON.parse(e.data);
    if (j.error) return `error event: ${e.data.slice(0, 200)}`;
    if (j.model !== group) return `chunk model ${j.model} != ${group}`;
    text += j.choices?.[0]?.delta?.content ?? '';
  }
  return text === `Hello from ${real}!` ? '' : `text ${JSON.stringify(text)}`;
}

// The verdict on one request: ok | aborted (client's choice) | expected_failure (answered by a
// target that breaks mid-answer, documented as not retried) | failure.
function classify(spec, group, r, kind) {
  if (kind === 'abort_stream' && r.aborted) return { verdict: 'aborted' };
  const why = checkAnswer(spec, group, r);
  if (!why) return { verdict: 'ok' };
  const real = String(r.headers['x-openbridge-model'] ?? '');
  const mode = real.split('--')[1];
  if (MID_ANSWER_FAULTS.has(mode)) return { verdict: 'expected_failure', why };
  return { verdict: 'failure', why };
}

const stats = { started: 0, byVerdict: { ok: 0, aborted: 0, expected_failure: 0, failure: 0 }, byKind: {}, failures: [], latencyMs: [] };
let gwPort = 0;

async function one(kind, group, r) {
  const spec = requestFor(kind, group, r);
  const t0 = performance.now();
  const res = await send(spec, kind === 'abort_stream' ? { abortAfterBytes: 200 + Math.floor(r * 400) } : {});
  const ms = performance.now() - t0;
  const { verdict, why } = classify(spec, group, res, kind);
  stats.byVerdict[verdict]++;
  const k = (stats.byKind[kind] ??= { ok: 0, aborted: 0, expected_failure: 0, failure: 0 });
  k[verdict]++;
  if (verdict === 'ok' && stats.latencyMs.length < 200000) stats.latencyMs.push(ms);
  if (verdict === 'failure' && stats.failures.length < 50) stats.failures.push({ t: new Date().toISOString(), kind, group, target: res.headers['x-openbridge-model'], why: String(why).slice(0, 300) });
}

// Descriptors move with the work in flight (client and provider connections), so they are
// counted at quiet points: every --quiet-every seconds the load pauses until nothing is in
// flight, waits 300 ms, and counts; then it resumes. Pauses are short (the longest request).
async function drive(endAt, rnd, onQuiet, stopped) {
  const inflight = new Set();
  const gap = 1000 / opt.rate;
  let next = performance.now();
  let nextQuiet = performance.now() + opt.quietEvery * 1000;
  for (let i = 0; i < 1e9 && performance.now() < endAt && !stopped(); i++) {
    if (performance.now() >= nextQuiet) {
      await Promise.all(inflight);
      await sleep(300);
      onQuiet();
      nextQuiet = performance.now() + opt.quietEvery * 1000;
      next = performance.now();
    }
    while (inflight.size >= opt.concurrency) await Promise.race(inflight);
    const wait = next - performance.now();
    if (wait > 0) await sleep(wait);
    next = Math.max(next + gap, performance.now() - 1000);
    const kind = pickKind(rnd());
    const group = GROUPS[Math.floor(rnd() * GROUPS.length)].name;
    stats.started++;
    const p = one(kind, group, rnd()).finally(() => inflight.delete(p));
    inflight.add(p);
  }
  await Promise.all(inflight);
}

// ---- sampling ----

function sampleProc(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
    const fds = fs.readdirSync(`/proc/${pid}/fd`).length;
    return { rssKb: rss, fds };
  } catch {
    return null;
  }
}

// Least-squares slope of y over x (minutes) with its standard error.
function fit(points) {
  const n = points.length;
  if (n < 3) return { slope: 0, se: Infinity, n };
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (const p of points) {
    sxx += (p.x - mx) ** 2;
    sxy += (p.x - mx) * (p.y - my);
  }
  const slope = sxy / sxx;
  let sse = 0;
  for (const p of points) sse += (p.y - (my + slope * (p.x - mx))) ** 2;
  const se = Math.sqrt(sse / (n - 2) / sxx);
  return { slope, se, n, first: points[0].y, last: points[n - 1].y, min: Math.min(...points.map((p) => p.y)), max: Math.max(...points.map((p) => p.y)) };
}

// ---- main ----

async function main() {
  if (!fs.existsSync(BIN)) throw new Error(`gateway binary not found: ${BIN}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ob-soak-'));
  const rnd = rng(Number(process.env.SOAK_SEED || Date.now()));
  const mock = await startMock(dir);
  adminPort = await freePort();
  const gw = await startGateway(dir, buildConfig(mock.port, 0, rnd));
  gwPort = gw.port;
  log(`gateway ${BIN} pid ${gw.proc.pid} on :${gw.port}, mock on :${mock.port}, ${opt.duration} s, concurrency ${opt.concurrency}, ${opt.rate} req/s`);

  // The largest bodies first, several at once: glibc raises its mmap threshold to the largest
  // block freed so far, and the heap grows in steps as new maxima come by chance; meeting the
  // maximum during the warm-up lets the RSS check see what happens afterwards.
  const biggest = 1200 * 1024 + 1024 * 1024;
  for (let round = 0; round < 2; round++)
    await Promise.all(
      Array.from({ length: Math.min(8, opt.concurrency) }, () =>
        send({ path: '/v1/chat/completions', body: { model: 'solo', messages: [{ role: 'user', content: LARGE.slice(0, biggest) }] }, stream: false }),
      ),
    );

  const t0 = performance.now();
  const endAt = t0 + opt.duration * 1000;
  const samples = [];
  let generation = 0;
  let running = true;
  const timers = [];
  const every = (ms, fn) => timers.push(setInterval(fn, ms));
  every(opt.sampleEvery * 1000, () => {
    const s = sampleProc(gw.proc.pid);
    if (s) samples.push({ tSec: (performance.now() - t0) / 1000, ...s });
  });
  every(opt.reloadEvery * 1000, () => {
    if (!running) return;
    generation++;
    const tmp = path.join(dir, `.config.${generation}.json`);
    fs.writeFileSync(tmp, JSON.stringify(buildConfig(mock.port, generation, rnd), null, 2));
    fs.renameSync(tmp, gw.configPath);
  });
  // The mock keeps a record per request: clear it so that an hours-long run stays small.
  every(10000, () => {
    const r = http.request({ host: '127.0.0.1', port: mock.port, method: 'POST', path: '/_mock/reset', agent: false }, (res) => res.resume());
    r.on('error', () => {});
    r.end();
  });
  // /metrics under load and reloads: always answers, and the request counter never goes back.
  const scrape = { ok: 0, failed: 0, counter_went_back: 0, last: 0, why: [] };
  every(5000, () => {
    const r = http.request(
      { host: '127.0.0.1', port: adminPort, path: '/metrics', headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, agent: false, timeout: 5000 },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          if (res.statusCode !== 200) {
            scrape.failed++;
            if (scrape.why.length < 5) scrape.why.push(`status ${res.statusCode}`);
            return;
          }
          let total = 0;
          for (const m of text.matchAll(/^openbridge_requests_total\{[^}]*\} (\d+)$/gm)) total += Number(m[1]);
          if (total < scrape.last) scrape.counter_went_back++;
          scrape.last = total;
          scrape.ok++;
        });
      },
    );
    r.on('timeout', () => r.destroy(new Error('timeout')));
    r.on('error', (e) => {
      if (!running) return;
      scrape.failed++;
      if (scrape.why.length < 5) scrape.why.push(e.message);
    });
    r.end();
  });
  let lastReport = t0;
  every(1000, () => {
    if (performance.now() - lastReport < 30000) return;
    lastReport = performance.now();
    const s = samples[samples.length - 1];
    log(`${Math.round((performance.now() - t0) / 1000)} s: ${stats.started} requests, ${JSON.stringify(stats.byVerdict)}, rss ${s?.rssKb} KB, fds ${s?.fds}`);
  });

  const quiet = [];
  await drive(endAt, rnd, () => {
    const s = sampleProc(gw.proc.pid);
    const clientSockets = Object.values(agent.freeSockets).reduce((a, l) => a + l.length, 0);
    if (s) quiet.push({ tSec: (performance.now() - t0) / 1000, fds: s.fds, clientSockets });
  }, () => {
    // A gateway that died ends the run at once (the verdict reports it).
    if (gw.exit) log(`the gateway exited during the run: ${JSON.stringify(gw.exit)}`);
    return gw.exit !== null;
  });
  running = false;
  for (const t of timers) clearInterval(t);
  const runSec = (performance.now() - t0) / 1000;
  agent.destroy();

  const aliveAtEnd = gw.exit === null && sampleProc(gw.proc.pid) !== null;
  const finalSample = sampleProc(gw.proc.pid);
  gw.proc.kill('SIGTERM');
  const stopped = await Promise.race([gw.exited, sleep(40000).then(() => null)]);
  if (!stopped) gw.proc.kill('SIGKILL');
  mock.proc.kill('SIGTERM');
  await sleep(200);

  // ---- verdict ----
  const warm = opt.warmup ?? Math.min(Math.max(runSec * 0.2, 90), runSec * 0.5);
  const after = samples.filter((s) => s.tSec >= warm);
  const rss = fit(after.map((s) => ({ x: s.tSec / 60, y: s.rssKb })));
  const quietAfter = quiet.filter((s) => s.tSec >= warm);
  const fds = fit(quietAfter.map((s) => ({ x: s.tSec / 60, y: s.fds })));
  const rssLimitPerMin = opt.maxRssKbPerHour / 60;
  const windowMin = quietAfter.length ? (quietAfter[quietAfter.length - 1].tSec - quietAfter[0].tSec) / 60 : 0;
  // A slope counts when it is above the limit by more than two standard errors (a short run's
  // noise is not growth); fds: any growth of at least one descriptor over the window.
  // A leak grows steadily, so it shows in any window; the allocator reaching its working size
  // shows as a few steps early on. Growth counts only when the last half of the run grows too.
  const lastHalf = samples.filter((s) => s.tSec >= runSec / 2);
  const rssLate = fit(lastHalf.map((s) => ({ x: s.tSec / 60, y: s.rssKb })));
  const rssGrowing = rss.slope - 2 * rss.se > rssLimitPerMin && rssLate.slope - 2 * rssLate.se > rssLimitPerMin;
  const fdsGrowing = fds.slope - 2 * fds.se > 0 && fds.slope * windowMin >= 1;
  const lat = stats.latencyMs.sort((a, b) => a - b);
  const pct = (q) => (lat.length ? Math.round(lat[Math.min(lat.length - 1, Math.floor(q * lat.length))]) : null);
  const checks = {
    no_failed_requests: stats.byVerdict.failure === 0,
    gateway_alive_at_end: aliveAtEnd,
    sigterm_exit_0: !!stopped && stopped.code === 0,
    rss_not_growing: !rssGrowing,
    fds_not_growing: !fdsGrowing,
    traffic_flowed: stats.byVerdict.ok > 0 && samples.length >= 3 && quietAfter.length >= 3,
    metrics_scrapes_ok: scrape.ok > 0 && scrape.failed === 0 && scrape.counter_went_back === 0,
  };
  const pass = Object.values(checks).every(Boolean);
  const result = {
    when: new Date().toISOString(),
    binary: BIN,
    commit: gitCommit(),
    host: { cpus: os.cpus().length, load: os.loadavg().map((x) => +x.toFixed(2)) },
    options: { ...opt, out: undefined },
    run_seconds: +runSec.toFixed(1),
    requests: stats.started,
    requests_per_second: +(stats.started / runSec).toFixed(1),
    verdicts: stats.byVerdict,
    by_kind: stats.byKind,
    latency_ok_ms: { p50: pct(0.5), p99: pct(0.99), max: lat.length ? Math.round(lat[lat.length - 1]) : null },
    failures: stats.failures,
    config_rewrites: generation,
    metrics_scrapes: { ok: scrape.ok, failed: scrape.failed, counter_went_back: scrape.counter_went_back, requests_counted: scrape.last, errors: scrape.why },
    gateway: { reloads_logged: gw.reloaded, reloads_refused: gw.refused, access_outcomes: gw.outcomes, exit: stopped ?? 'killed after 40 s', notable_lines: gw.notable },
    memory: {
      warmup_seconds: +warm.toFixed(1),
      samples: samples.length,
      rss_kb: { slope_per_min: +rss.slope.toFixed(2), stderr: +rss.se.toFixed(2), last_half_slope_per_min: +rssLate.slope.toFixed(2), last_half_stderr: +rssLate.se.toFixed(2), limit_per_min: +rssLimitPerMin.toFixed(2), first: rss.first, last: rss.last, min: rss.min, max: rss.max, final: finalSample?.rssKb },
      fds: { quiet_points: quietAfter.length, slope_per_min: +fds.slope.toFixed(3), stderr: +fds.se.toFixed(3), first: fds.first, last: fds.last, min: fds.min, max: fds.max, final: finalSample?.fds, busy_max: Math.max(...samples.map((s) => s.fds)) },
    },
    checks,
    pass,
    series: samples.map((s) => [+s.tSec.toFixed(1), s.rssKb, s.fds]),
    quiet_series: quiet.map((s) => [+s.tSec.toFixed(1), s.fds, s.clientSockets]),
  };
  fs.mkdirSync(opt.out, { recursive: true });
  fs.writeFileSync(path.join(opt.out, 'soak-latest.json'), JSON.stringify(result, null, 2) + '\n');
  fs.writeFileSync(path.join(opt.out, 'soak-latest.md'), markdown(result));
  console.log(summary(result));
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(pass ? 0 : 1);
}

function gitCommit() {
  const r = spawnSync('git', ['-C', ROOT, 'describe', '--always', '--dirty'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

function summary(r) {
  const v = r.verdicts;
  const m = r.memory;
  const lines = [
    `soak ${r.pass ? 'PASSED' : 'FAILED'}: ${r.run_seconds} s, ${r.requests} requests (${r.requests_per_second}/s), ${r.config_rewrites} config rewrites (${r.gateway.reloads_logged} reloads logged, ${r.gateway.reloads_refused} refused)`,
    `  ok ${v.ok}, failed ${v.failure}, client aborts ${v.aborted}, expected mid-answer failures ${v.expected_failure}; latency of ok requests p50 ${r.latency_ok_ms.p50} ms, p99 ${r.latency_ok_ms.p99} ms`,
    `  RSS after warm-up: ${m.rss_kb.first} -> ${m.rss_kb.last} KB, slope ${m.rss_kb.slope_per_min} KB/min (±${m.rss_kb.stderr}), last half ${m.rss_kb.last_half_slope_per_min} (±${m.rss_kb.last_half_stderr}); limit ${m.rss_kb.limit_per_min}`,
    `  fds at ${m.fds.quiet_points} quiet points after warm-up: ${m.fds.first} -> ${m.fds.last} (min ${m.fds.min}, max ${m.fds.max}; ${m.fds.busy_max} at most under load), slope ${m.fds.slope_per_min}/min (±${m.fds.stderr})`,
    `  gateway exit on SIGTERM: ${JSON.stringify(r.gateway.exit)}`,
    ...Object.entries(r.checks).map(([k, ok]) => `  ${ok ? 'ok  ' : 'FAIL'} ${k}`),
    ...r.failures.slice(0, 10).map((f) => `  failure: ${f.kind} ${f.group} via ${f.target}: ${f.why}`),
  ];
  return lines.join('\n');
}

function markdown(r) {
  const v = r.verdicts;
  const m = r.memory;
  const kinds = Object.entries(r.by_kind)
    .map(([k, c]) => `| ${k} | ${c.ok} | ${c.failure} | ${c.aborted} | ${c.expected_failure} |`)
    .join('\n');
  return `# Soak result (${r.when})

**${r.pass ? 'PASSED' : 'FAILED'}** — binary \`${r.binary}\`, ${r.run_seconds} s, ${r.requests} requests
(${r.requests_per_second}/s, concurrency ${r.options.concurrency}, ${r.options.workers} workers, ${r.host.cpus} CPUs),
${r.config_rewrites} config rewrites (${r.gateway.reloads_logged} reloads logged, ${r.gateway.reloads_refused} refused).

| check | result |
| --- | --- |
${Object.entries(r.checks)
  .map(([k, ok]) => `| ${k} | ${ok ? 'ok' : '**FAIL**'} |`)
  .join('\n')}

| kind | ok | failed | client aborts | expected mid-answer failures |
| --- | --- | --- | --- | --- |
${kinds}
| **all** | ${v.ok} | ${v.failure} | ${v.aborted} | ${v.expected_failure} |

Latency of successful requests: p50 ${r.latency_ok_ms.p50} ms, p99 ${r.latency_ok_ms.p99} ms, max ${r.latency_ok_ms.max} ms.

| after warm-up (${m.warmup_seconds} s, ${m.samples} samples in all) | first | last | min | max | slope per minute |
| --- | --- | --- | --- | --- | --- |
| RSS (KB) | ${m.rss_kb.first} | ${m.rss_kb.last} | ${m.rss_kb.min} | ${m.rss_kb.max} | ${m.rss_kb.slope_per_min} ± ${m.rss_kb.stderr}; last half of the run ${m.rss_kb.last_half_slope_per_min} ± ${m.rss_kb.last_half_stderr} (limit ${m.rss_kb.limit_per_min}) |
| open fds (at ${m.fds.quiet_points} quiet points; ${m.fds.busy_max} at most under load) | ${m.fds.first} | ${m.fds.last} | ${m.fds.min} | ${m.fds.max} | ${m.fds.slope_per_min} ± ${m.fds.stderr} |

Gateway exit on SIGTERM: \`${JSON.stringify(r.gateway.exit)}\`. Access outcomes: \`${JSON.stringify(r.gateway.access_outcomes)}\`.
${r.failures.length ? `\nFailures (first ${r.failures.length}):\n\n${r.failures.map((f) => `- ${f.t} ${f.kind} \`${f.group}\` via \`${f.target}\`: ${f.why}`).join('\n')}\n` : ''}`;
}

main().catch((e) => {
  console.error(`soak: ${e.stack || e}`);
  process.exit(2);
});
