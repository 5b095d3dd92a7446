// A throwaway redis-server for end-to-end tests (scripts/setup --test installs it): a free port
// on 127.0.0.1, its own temp dir, no persistence; stop() ends it (SIGTERM, then SIGKILL).
// startRedis({args}) -> {port, url, dir, command(...argv), pause(), resume(), down(), up(), restart(), stop()}
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './gateway.mjs';

export function redisAvailable() {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

// One command over a fresh connection (RESP arrays out, the raw reply text back).
export function redisCommand(port, argv, { timeout = 2000 } = {}) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let out = '';
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`redis ${argv[0]} on ${port}: no answer in ${timeout} ms`));
    }, timeout);
    const enc = (a) => `*${a.length}\r\n` + a.map((x) => `$${Buffer.byteLength(String(x))}\r\n${x}\r\n`).join('');
    s.on('connect', () => s.write(enc(argv) + enc(['QUIT'])));
    s.setEncoding('utf8');
    s.on('data', (d) => (out += d));
    s.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    s.on('close', () => {
      clearTimeout(t);
      resolve(out.endsWith('+OK\r\n') ? out.slice(0, -5) : out);
    });
  });
}

export async function startRedis({ args = [] } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ob-redis-'));
  const port = await freePort();
  let proc = null;
  const launch = async () => {
    proc = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...args],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    proc.stderr.on('data', (d) => (stderr += d));
    for (let i = 0; i < 250; i++) {
      if (proc.exitCode !== null) throw new Error(`redis-server exited: ${stderr}`);
      const r = await redisCommand(port, ['PING'], { timeout: 200 }).catch(() => '');
      if (r.startsWith('+PONG') || r.startsWith('-NOAUTH')) return;
      await new Promise((res) => setTimeout(res, 20));
    }
    throw new Error(`redis-server on ${port} did not answer within 5 s`);
  };
  const stopProc = async () => {
    if (!proc || proc.exitCode !== null) return;
    const p = proc;
    const done = new Promise((res) => p.once('exit', res));
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 3000);
    await done;
    clearTimeout(t);
  };
  await launch();
  return {
    port,
    dir,
    url: `redis://127.0.0.1:${port}/0`,
    command: (...argv) => redisCommand(port, argv),
    pause: () => proc.kill('SIGSTOP'),
    resume: () => proc.kill('SIGCONT'),
    // Stopped (connections refused) until up(), same port; with persistence in `args`
    // (e.g. ['--appendonly', 'yes']) its data comes back.
    down: () => stopProc(),
    up: () => launch(),
    // Same port, empty data (a Redis that lost its state).
    async restart() {
      await stopProc();
      await launch();
    },
    async stop() {
      if (proc && proc.exitCode === null) proc.kill('SIGCONT');
      await stopProc();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
