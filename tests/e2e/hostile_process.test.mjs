// The process under hostile conditions: signals during start-up, a second gateway on a port
// that is already served, running out of file descriptors, a listen port of 0.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startMock } from '../../tools/mock-provider/server.js';
import { startGateway, freePort, BIN } from './lib/gateway.mjs';
import { CLIENT_TOKEN, chatBody, gwPost, sleep } from './lib/common.mjs';

const T = { timeout: 30000 };

function configFile(config) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ob-e2e-proc-'));
  const p = path.join(dir, 'config.json');
  // No admin listener unless asked: these processes run beside others (its default port is fixed).
  fs.writeFileSync(p, JSON.stringify({ admin: false, ...config }));
  return p;
}

// Spawns the binary; resolves {code, signal, stderr} when it exits (SIGKILL after `timeout`).
function spawnGateway(args, { prefix = [], onSpawn, timeout = 10000 } = {}) {
  const cmd = prefix.length ? prefix[0] : BIN;
  const argv = prefix.length ? [...prefix.slice(1), BIN, ...args] : args;
  const proc = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => (stderr += d));
  const done = new Promise((resolve) => {
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeout);
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr: () => stderr });
    });
  });
  onSpawn?.(proc);
  return { proc, done, stderr: () => stderr };
}

// Under a sanitizer (E2E_SLOW > 1) its runtime starts before any code of ours and takes 20-30 ms
// on this machine: the delays move past it, and stay well before the server is listening.
// Resolves once the process blocks or catches `sigs` (its constructor blocks them before any other
// code of ours; the server catches them once its handlers are in place): a signal sent before then
// meets the dynamic loader, whose default action nothing in the binary can change, and on a loaded
// machine the loader alone can outlast a 10 ms delay.
async function signalsBlocked(pid, sigs) {
  const want = sigs.reduce((m, s) => m | (1n << BigInt(os.constants.signals[s] - 1)), 0n);
  for (let i = 0; i < 2000; i++) {
    let mask = 0n;
    try {
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      for (const field of ['SigBlk', 'SigCgt']) {
        const m = new RegExp(`^${field}:\\s*([0-9a-f]+)$`, 'm').exec(status);
        if (m) mask |= BigInt('0x' + m[1]);
      }
    } catch {
      return; // gone: the caller's assertions say why
    }
    if ((mask & want) === want) return;
    await sleep(1);
  }
  throw new Error(`process ${pid} never blocked nor caught ${sigs.join(', ')}`);
}

function slowStart(ms) {
  const slow = Number(process.env.E2E_SLOW || 1);
  return slow > 1 ? 40 + ms * slow : ms;
}

describe('signals right after start', () => {
  let mock;
  after(async () => mock?.close());

  // A signal at `delay` ms after spawn; SIGTERM must drain and exit 0 however early it comes;
  // an early SIGHUP must not kill the process (it reloads once the server runs). Not 0 or 5 ms:
  // a signal that lands while the dynamic loader still runs (~4 ms here, before any code of
  // ours) keeps its default action, and nothing inside the binary can change that.
  const cases = [];
  for (const signal of ['SIGTERM', 'SIGHUP'])
    for (const delay of [10, 20, 50].map(slowStart)) for (let run = 0; run < 3; run++) cases.push({ name: `${signal} at ${delay} ms (run ${run + 1})`, signal, delay });

  for (const c of cases) {
    test(c.name, T, async () => {
      mock ??= await startMock();
      const port = await freePort();
      const config = configFile({ providers: [{ group: 'g', name: 'm', base: mock.url, key: 'k' }], security: [CLIENT_TOKEN] });
      const gw = spawnGateway(['--config', config, '--listen', `127.0.0.1:${port}`, '--workers', '2']);
      await sleep(c.delay);
      await signalsBlocked(gw.proc.pid, ['SIGTERM', 'SIGHUP']);
      gw.proc.kill(c.signal);
      if (c.signal === 'SIGTERM') {
        const r = await gw.done;
        assert.deepEqual({ code: r.code, signal: r.signal }, { code: 0, signal: null }, r.stderr());
        return;
      }
      // SIGHUP: still alive and serving afterwards; then a clean stop.
      let served = false;
      for (let i = 0; i < 100 && !served; i++) {
        const r = await gwPost({ url: `http://127.0.0.1:${port}` }, '/v1/chat/completions', chatBody('g')).catch(() => null);
        if (r) {
          assert.equal(r.status, 200, r.text);
          served = true;
        } else await sleep(50);
      }
      assert.ok(served, `never served after an early SIGHUP: ${gw.stderr()}`);
      gw.proc.kill('SIGTERM');
      const r = await gw.done;
      assert.deepEqual({ code: r.code, signal: r.signal }, { code: 0, signal: null }, r.stderr());
    });
  }
});

describe('a second gateway on a port already served', () => {
  let mock, first;
  after(async () => {
    await first?.stop();
    await mock?.close();
  });

  test('refuses to start, names the address and --listen; the first keeps every request', T, async () => {
    mock = await startMock();
    first = await startGateway({ config: { providers: [{ group: 'g', name: 'first', base: mock.url, key: 'k' }], security: [CLIENT_TOKEN] } });
    const config = configFile({ providers: [{ group: 'g', name: 'second', base: mock.url, key: 'k' }], security: [CLIENT_TOKEN] });
    const second = spawnGateway(['--config', config, '--listen', `127.0.0.1:${first.port}`, '--workers', '2']);
    // While it runs (if it does), requests go to the shared port.
    const models = [];
    for (let i = 0; i < 20; i++) {
      const r = await gwPost(first, '/v1/chat/completions', chatBody('g'));
      assert.equal(r.status, 200, r.text);
      models.push(r.headers['x-openbridge-model']);
    }
    const timer = setTimeout(() => second.proc.kill('SIGTERM'), 2000);
    const r = await second.done;
    clearTimeout(timer);
    assert.notEqual(r.code, 0, `second gateway exited ${r.code}/${r.signal}: ${r.stderr()}`);
    assert.equal(r.signal, null);
    assert.match(r.stderr(), new RegExp(`127\\.0\\.0\\.1:${first.port}.*already in use.*--listen`));
    assert.doesNotMatch(r.stderr(), /listening on/);
    assert.deepEqual([...new Set(models)], ['first']);
  });
});

describe('out of file descriptors', () => {
  let mock;
  after(async () => mock?.close());

  test('the worker keeps accepting once descriptors are free again', T, async () => {
    mock = await startMock();
    const port = await freePort();
    const config = configFile({ providers: [{ group: 'g', name: 'm', base: mock.url, key: 'k' }], security: [CLIENT_TOKEN] });
    const gw = spawnGateway(['--config', config, '--listen', `127.0.0.1:${port}`, '--workers', '1'], { prefix: ['prlimit', '--nofile=48:48'] });
    const target = { url: `http://127.0.0.1:${port}` };
    let up = false;
    for (let i = 0; i < 100 && !up; i++) {
      const r = await gwPost(target, '/v1/chat/completions', chatBody('g')).catch(() => null);
      if (r) up = r.status === 200;
      else await sleep(50);
    }
    assert.ok(up, gw.stderr());
    // Hold many idle connections: the gateway runs out of descriptors.
    const net = await import('node:net');
    const socks = [];
    for (let i = 0; i < 80; i++) {
      const s = net.connect({ port, host: '127.0.0.1' });
      s.on('error', () => {});
      socks.push(s);
    }
    for (let i = 0; i < 100 && !/accept failed/.test(gw.stderr()); i++) await sleep(50);
    assert.match(gw.stderr(), /accept failed/);
    for (const s of socks) s.destroy();
    await sleep(100);
    const r = await gwPost(target, '/v1/chat/completions', chatBody('g'), { timeout: 5000 });
    assert.equal(r.status, 200, r.text);
    gw.proc.kill('SIGTERM');
    const end = await gw.done;
    assert.equal(end.code, 0, end.stderr());
  });
});

// The listening sockets of process `pid` (from /proc), as local ports.
function listeningPorts(pid) {
  const inodes = new Set();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {}
  }
  const ports = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of fs.readFileSync(file, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[3] === '0A' && inodes.has(f[9])) ports.push(parseInt(f[1].split(':').at(-1), 16));
    }
  }
  return ports;
}

describe('listening on port 0', () => {
  let mock;
  after(async () => mock?.close());

  // Every worker must listen on the one port the system picked for the first, and the log must
  // name that port: a client can only ever learn the address from the log.
  test('all workers share the port the log names; every connection to it is served', T, async () => {
    mock = await startMock();
    const config = configFile({ providers: [{ group: 'g', name: 'm', base: mock.url, key: 'k' }], security: [CLIENT_TOKEN] });
    const gw = spawnGateway(['--config', config, '--listen', '127.0.0.1:0', '--workers', '2']);
    try {
      let line;
      for (let i = 0; i < 100 && !line; i++) {
        line = gw.stderr().split('\n').find((l) => /listening on/.test(l));
        if (!line) await sleep(50);
      }
      assert.ok(line, `no "listening on" line: ${gw.stderr()}`);
      const m = /listening on 127\.0\.0\.1:(\d+) /.exec(line);
      assert.ok(m, `the log line names no address: ${line}`);
      const port = Number(m[1]);
      assert.notEqual(port, 0, `the log line names port 0: ${line}`);
      assert.deepEqual(listeningPorts(gw.proc.pid), [port, port], 'one listener per worker, all on the logged port');
      const target = { url: `http://127.0.0.1:${port}` };
      for (let i = 0; i < 20; i++) {
        const r = await gwPost(target, '/v1/chat/completions', chatBody('g'), { timeout: 5000 });
        assert.equal(r.status, 200, `connection ${i}: ${r.text}`);
      }
    } finally {
      gw.proc.kill('SIGTERM');
      const end = await gw.done;
      assert.equal(end.code, 0, end.stderr());
    }
  });
});
