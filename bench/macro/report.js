#!/usr/bin/env node
// Turns the benchmark's records (one JSON object a line) into ONE markdown table.
//
//   node report.js RESULTS.jsonl
//
// Throughput rows: the mean over the interleaved rounds (req/s also shows min–max), worst
// peak RSS; "core busy" is the share of one core the proxy used (near 100%: the proxy was the
// bottleneck; lower: the load generator's core was). Ratios are ours/nginx on the gateway's row: req/s ratio > 1 is better,
// p99 and CPU ratios < 1 are better. Memory rows: RSS with N open streams and per stream.
// With a `lean` proxy (bench/run --proxies ours,lean,nginx: the same gateway with observability
// off) its row carries lean/nginx ratios, and two more columns on the `ours` row give ours/lean
// for req/s and CPU per request: what observability costs.
// Records carry "workers" (bench/run --workers N): with N > 1 the proxy column says "×N" and a
// note under the table says that nginx's CPU and RSS are summed over its N worker processes.
'use strict';
const fs = require('fs');

const recs = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean).map(JSON.parse);
const order = [];
const groups = new Map();
for (const r of recs) {
  const sc = `${r.scenario}: ${r.label}`;
  const key = `${sc}\u0000${r.proxy}`;
  if (!groups.has(key)) { groups.set(key, []); if (!order.includes(sc)) order.push(sc); }
  groups.get(key).push(r);
}

const mean = (a) => a.reduce((s, x) => s + x, 0) / a.length;
const ms = (us) => (us / 1000).toFixed(us < 10000 ? 2 : 1);
const mb = (kb) => (kb / 1024).toFixed(1);
const int = (x) => Math.round(x).toLocaleString('en-US');
const ratio = (a, b) => (a != null && b != null && b > 0 ? (a / b).toFixed(2) + '×' : '—');
const workersOf = (list) => list[0].workers || 1;
const proxyName = (name, list) => (workersOf(list) > 1 ? `${name} ×${workersOf(list)}` : name);

function summarize(list) {
  if (list[0].kind === 'mem') {
    const r = list[list.length - 1];
    return { mem: true, r };
  }
  const rps = list.map((r) => r.rps);
  return {
    label: list[0].label,
    rps: mean(rps), rpsMin: Math.min(...rps), rpsMax: Math.max(...rps),
    p50: mean(list.map((r) => r.p50_us)), p99: mean(list.map((r) => r.p99_us)),
    cpu: mean(list.map((r) => r.cpu_us_per_req)),
    core: mean(list.map((r) => r.core_pct || 0)),
    hwm: Math.max(...list.map((r) => r.hwm_kb || 0)),
    errors: list.reduce((s, r) => s + r.errors, 0),
    malformed: list.reduce((s, r) => s + r.malformed, 0),
    checked: list.reduce((s, r) => s + r.checked, 0),
    runs: list.length,
  };
}

const head = ['scenario', 'proxy', 'req/s (min–max)', 'p50 ms', 'p99 ms', 'CPU µs/req (core busy)',
  'peak RSS MB', 'errors / malformed', 'req/s ratio', 'p99 ratio', 'CPU ratio'];
const hasLean = recs.some((r) => r.proxy === 'lean');
if (hasLean) head.push('req/s ours/lean', 'CPU ours/lean');
const rows = [head, head.map(() => '---')];

for (const sc of order) {
  const ours = groups.get(`${sc}\u0000ours`);
  const lean = groups.get(`${sc}\u0000lean`);
  const ngx = groups.get(`${sc}\u0000nginx`);
  const so = ours && summarize(ours);
  const sl = lean && summarize(lean);
  const sn = ngx && summarize(ngx);
  for (const [name, s, list] of [['ours', so, ours], ['lean', sl, lean], ['nginx', sn, ngx]]) {
    if (!s) continue;
    // ours/lean columns: on the ours row only, and only when lean ran in this report.
    const vsLean = (a, b) => (hasLean ? [name === 'ours' && sl ? ratio(a, b) : '—'] : []);
    if (s.mem) {
      const r = s.r;
      const other = name !== 'nginx' ? sn && sn.r : null;
      rows.push([sc, proxyName(name, list),
        '—', '—', '—', '—',
        `${mb(r.rss_n_kb)} (idle ${mb(r.rss_idle_kb)})`,
        `${r.first_event}/${r.n} got 1st event, ${r.failed} failed / ${r.malformed}`,
        `${(r.per_stream_bytes / 1024).toFixed(1)} KB/stream`,
        '—',
        other ? `mem ${ratio(r.per_stream_bytes, other.per_stream_bytes)}` : '—',
        // memory per stream in the CPU column, as the CPU ratio column does for nginx
        ...(hasLean ? ['—'] : []),
        ...vsLean(r.per_stream_bytes, sl && sl.r && sl.r.per_stream_bytes).map((x) => (x === '—' ? x : `mem ${x}`))]);
      continue;
    }
    const isOurs = name !== 'nginx';   // ours and lean rows: ratios to nginx
    rows.push([sc, proxyName(name, list),
      `${int(s.rps)} (${int(s.rpsMin)}–${int(s.rpsMax)})`,
      ms(s.p50), ms(s.p99), `${s.cpu.toFixed(1)} (${s.core.toFixed(0)}%)`, mb(s.hwm),
      `${s.errors} / ${s.malformed} of ${int(s.checked)}`,
      isOurs && sn ? ratio(s.rps, sn.rps) : '—',
      isOurs && sn ? ratio(s.p99, sn.p99) : '—',
      isOurs && sn ? ratio(s.cpu, sn.cpu) : '—',
      ...vsLean(s.rps, sl && sl.rps), ...vsLean(s.cpu, sl && sl.cpu)]);
  }
}

console.log(rows.map((r) => '| ' + r.join(' | ') + ' |').join('\n'));
const workers = [...new Set(recs.map((r) => r.workers || 1))];
if (workers.length) {
  const w = workers.join(', ');
  console.log(`\nworkers: ${w} per proxy (gateway \`--workers ${w}\`: threads of one process; nginx ` +
    `\`worker_processes ${w}\`${workers.some((n) => n > 1) ? ': its CPU time, peak RSS and RSS are summed over the workers' : ''}).`);
}
const busy = recs.filter((r) => r.kind === 'wrk' && (r.bg_busy_pct >= 10 || r.foreign_pct >= 10));
if (busy.length) {
  console.log('\nRuns disturbed by other work on the machine (% of one core used by processes other ' +
    'than the proxy, mock and wrk, before → during the run): ' +
    busy.map((r) => `${r.scenario}/${r.proxy}/run ${r.run}: ${r.bg_busy_pct}% → ${r.foreign_pct ?? '?'}%`).join(', ') + '.');
}
