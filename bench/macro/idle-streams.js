#!/usr/bin/env node
// Opens N streaming chat requests through a proxy, each on its own connection, and keeps them
// open. Prints "READY opened=N first_event=K malformed=M ms=T" once every stream has delivered
// its first event (or when TIMEOUT_MS has passed), holds them HOLD_MS longer, then exits
// (closing everything).
//
//   node idle-streams.js PORT N BODY_FILE PATH MUST_CONTAIN [HOLD_MS=5000] [TIMEOUT_MS=90000]
'use strict';
const http = require('http');
const fs = require('fs');

const [port, n, bodyFile, urlPath, mustContain] = [
  Number(process.argv[2]), Number(process.argv[3]), process.argv[4], process.argv[5], process.argv[6]];
const holdMs = Number(process.argv[7] || 5000);
const timeoutMs = Number(process.argv[8] || 90000);
const body = fs.readFileSync(bodyFile);

let opened = 0, firstEvent = 0, malformed = 0, failed = 0, reported = false;
const errors = {};   // error code -> count
const started = Date.now();
const reqs = [];

function report(tag) {
  if (reported) return;
  reported = true;
  console.log(`${tag} opened=${opened} first_event=${firstEvent} malformed=${malformed} ` +
    `failed=${failed} ms=${Date.now() - started}` +
    (failed ? ` errors=${Object.entries(errors).map(([k, v]) => k + ':' + v).join(',')}` : ''));
  setTimeout(() => { for (const r of reqs) r.destroy(); process.exit(0); }, holdMs);
}

function check() { if (firstEvent + failed >= n) report('READY'); }

function open() {
  const req = http.request({
    host: '127.0.0.1', port, path: urlPath, method: 'POST', agent: false,
    headers: { 'Content-Type': 'application/json', 'Authorization': 'Bearer sk-bench',
      'Content-Length': body.length },
  }, (res) => {
    opened++;
    let seen = '';
    let done = false;
    res.on('data', (d) => {
      if (done) return;
      seen += d;
      if (!seen.includes('\n\n')) return;           // first event not complete yet
      done = true;
      if (res.statusCode !== 200 || !seen.includes(mustContain)) malformed++;
      firstEvent++;
      seen = '';
      check();
    });
    res.on('error', () => {});
  });
  req.on('error', (e) => { if (!reported) { failed++; errors[e.code] = (errors[e.code] || 0) + 1; check(); } });
  req.end(body);
  reqs.push(req);
}

// Open in batches so the listen backlog never overflows (a dropped SYN costs a 1 s retry).
let i = 0;
(function batch() {
  for (let k = 0; k < 250 && i < n; k++, i++) open();
  if (i < n) setTimeout(batch, 20);
})();
setTimeout(() => report('TIMEOUT'), timeoutMs);
