#!/usr/bin/env node
// What idle keep-alive TLS connections cost a proxy in memory: measures the proxy's RSS, opens
// N TLS connections that each make one keep-alive request (GET PATH) and then stay idle, and
// measures the RSS again. Prints one line:
//   RESULT n=N ok=K rss_before_kb=A rss_idle_kb=B per_conn_bytes=C
//
//   node idle-tls.js PID PORT N [PATH=/healthz] [SETTLE_MS=1000]
// (the proxy's keep-alive timeout must be longer than the run: ~N/200 s plus SETTLE_MS)
'use strict';
const fs = require('fs');
const tls = require('tls');

const [pid, port, n] = [Number(process.argv[2]), Number(process.argv[3]), Number(process.argv[4])];
const path = process.argv[5] || '/healthz';
const settleMs = Number(process.argv[6] || 1000);
const rssKb = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

function open() {
  return new Promise((resolve) => {
    const s = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () =>
      s.write(`GET ${path} HTTP/1.1\r\nHost: bench\r\n\r\n`));
    let got = '';
    const timer = setTimeout(() => resolve({ s, ok: false }), 10000);
    s.setEncoding('latin1');
    s.on('data', (d) => {
      got += d;
      if (/^HTTP\/1\.1 200 [^]*\r\n\r\n/.test(got)) {
        clearTimeout(timer);
        resolve({ s, ok: true });
      }
    });
    s.on('error', () => {
      clearTimeout(timer);
      resolve({ s, ok: false });
    });
  });
}

(async () => {
  const before = rssKb();
  const conns = [];
  for (let i = 0; i < n; i += 50) {  // 50 handshakes at a time
    const batch = [];
    for (let j = i; j < Math.min(n, i + 50); j++) batch.push(open());
    conns.push(...(await Promise.all(batch)));
  }
  await new Promise((r) => setTimeout(r, settleMs));
  const idle = rssKb();
  const ok = conns.filter((c) => c.ok).length;
  console.log(`RESULT n=${n} ok=${ok} rss_before_kb=${before} rss_idle_kb=${idle} ` +
    `per_conn_bytes=${Math.round(((idle - before) * 1024) / Math.max(ok, 1))}`);
  for (const c of conns) c.s.destroy();
  process.exit(0);
})();
