#!/usr/bin/env node
// Upstream for the idle-streams scenario: answers every POST with an SSE stream that stays
// open, one chat.completion.chunk event at once and then one every INTERVAL_MS, until the
// client goes away or MAX_MS has passed ([DONE] then).
//
//   node hold-upstream.js PORT [INTERVAL_MS=3000] [MAX_MS=180000]
'use strict';
const http = require('http');

const port = Number(process.argv[2]);
const intervalMs = Number(process.argv[3] || 3000);
const maxMs = Number(process.argv[4] || 180000);

const event = 'data: ' + JSON.stringify({
  id: 'chatcmpl-idle', object: 'chat.completion.chunk', created: 1700000000, model: 'real-model',
  choices: [{ index: 0, delta: { content: 'tick' }, finish_reason: null }],
}) + '\n\n';

const open = new Set();   // responses still streaming

const server = http.createServer((req, res) => {
  req.resume();           // discard the request body
  req.on('end', () => {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache',
      'X-Accel-Buffering': 'no',   // tells nginx not to buffer this answer (SSE)
    });
    res.write(event);
    res.startedAt = Date.now();
    open.add(res);
    res.on('close', () => open.delete(res));
  });
});
server.keepAliveTimeout = 300000;
server.headersTimeout = 60000;
server.requestTimeout = 0;
server.maxConnections = 60000;

// One timer for all streams.
setInterval(() => {
  const now = Date.now();
  for (const res of open) {
    if (now - res.startedAt > maxMs) { res.end('data: [DONE]\n\n'); open.delete(res); }
    else res.write(event);
  }
}, intervalMs).unref();

server.listen(port, '127.0.0.1', 4096, () => console.log(`hold-upstream listening on ${port}`));
process.on('SIGTERM', () => process.exit(0));
