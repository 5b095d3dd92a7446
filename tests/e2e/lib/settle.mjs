// Settlement before an answer's end (docs/SCALING.md): a provider whose streams end late, and a
// client that fires its next request on a new connection the moment an answer is complete.
import http from 'node:http';

const USAGE = { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 };
const chunk = (model, extra) =>
  `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 0, model, ...extra })}\n\n`;

// startHoldingUpstream({hold}) -> {url, close()}: OpenAI-shaped chat answers. JSON at once; a
// stream sends its content, usage and `data: [DONE]` in one write, then ends its chunked body
// `hold` ms later (a provider slow to close its stream).
export async function startHoldingUpstream({ hold = 300 } = {}) {
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      let j = {};
      try {
        j = JSON.parse(body);
      } catch {}
      if (j.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(
          chunk(j.model, { choices: [{ index: 0, delta: { role: 'assistant', content: 'hi' }, finish_reason: null }] }) +
            chunk(j.model, { choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }) +
            chunk(j.model, { choices: [], usage: USAGE }) +
            'data: [DONE]\n\n',
        );
        const t = setTimeout(() => res.end(), hold);
        res.on('close', () => clearTimeout(t));
        return;
      }
      const out = JSON.stringify({
        id: 'c',
        object: 'chat.completion',
        created: 0,
        model: j.model,
        choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
        usage: USAGE,
      });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
      res.end(out);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections?.();
        server.close(() => r());
      }),
  };
}

// One chat request on a new connection. Resolves once the answer is complete for a client: a
// JSON body whole, a stream as soon as its `data: [DONE]` arrived (the rest of the stream is
// left to end by itself: `ended`). -> {status, text, ended: Promise}
// `path` /v1/messages/count_tokens: an Anthropic count the gateway answers itself (OpenAI target).
export function askOnce(url, token, { model = 'g', stream = false, timeout = 10000, path = '/v1/chat/completions' } = {}) {
  const body = JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 10, stream });
  return new Promise((resolve, reject) => {
    let ended;
    const endedP = new Promise((r) => (ended = r));
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no complete answer within ${timeout} ms`));
    }, timeout);
    const req = http.request(
      {
        method: 'POST',
        host: '127.0.0.1',
        port: new URL(url).port,
        path,
        agent: false,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = '';
        let done = false;
        const finish = () => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          resolve({ status: res.statusCode, text, ended: endedP });
        };
        res.setEncoding('utf8');
        res.on('data', (d) => {
          text += d;
          if (stream && res.statusCode === 200 && text.includes('data: [DONE]')) finish();
        });
        res.on('end', () => {
          finish();
          ended();
        });
        res.on('error', () => ended());
      },
    );
    req.on('error', (e) => {
      clearTimeout(timer);
      ended();
      reject(e);
    });
    req.end(body);
  });
}

// `n` requests back to back, each on a new connection fired the moment the previous answer is
// complete: every status, in order (the streams' ends are awaited before returning).
export async function backToBack(url, token, n, opts = {}) {
  const out = [];
  const ends = [];
  for (let i = 0; i < n; i++) {
    const r = await askOnce(url, token, opts);
    out.push({ status: r.status, text: r.text });
    ends.push(r.ended);
  }
  await Promise.all(ends);
  return out;
}
