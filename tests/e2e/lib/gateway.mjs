// Starts the real openbridge binary for a test: config file in a temp dir, free port, stderr captured.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = process.env.OPENBRIDGE_BIN ? path.resolve(process.env.OPENBRIDGE_BIN) : path.join(REPO, 'build/openbridge');

export function binExists() {
  return fs.existsSync(BIN);
}

// A TCP port that was free a moment ago (listen on 0, read it, close).
function osFreePort(host) {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// A port free now that this process has not handed out before: the kernel may give the same
// free port to two calls in a row (a test's TLS port, then its gateway's plain one), and a port
// handed out is not bound until the gateway starts.
const handedOut = new Set();
export async function freePort(host = '127.0.0.1') {
  for (let i = 0; ; i++) {
    const port = await osFreePort(host);
    if (!handedOut.has(port) || i >= 50) {
      handedOut.add(port);
      return port;
    }
  }
}

// Resolves true once host:port accepts a TCP connection.
function tryConnect(port, host) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    const t = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, 500);
    s.once('connect', () => {
      clearTimeout(t);
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      clearTimeout(t);
      resolve(false);
    });
  });
}

// Sanitizer reports (ASan, UBSan, LSan, TSan builds: scripts/test). The sanitizer options make a
// report fail the process, but an exit code can be swallowed (a test that only checks answers,
// a gateway killed at the end), so the text itself fails the run: runBin() throws, and any report
// seen in a gateway's stderr is printed at once and fails the test file at exit (throwing from
// stop() instead would skip the cleanup in the callers' after() hooks and hang the file).
const SANITIZER_REPORT = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|WARNING: ThreadSanitizer|ERROR: ThreadSanitizer/;
const sanitizerReports = [];
export function sanitizerReport(text) {
  const m = SANITIZER_REPORT.exec(text);
  if (!m) return null;
  const start = text.lastIndexOf('\n', m.index) + 1;
  return text.slice(start, start + 4000);
}

const running = new Set();
process.on('exit', () => {
  for (const p of running) {
    try {
      p.kill('SIGKILL');
    } catch {}
  }
  if (sanitizerReports.length) {
    process.stderr.write(`\n${sanitizerReports.length} sanitizer report(s) in gateway stderr:\n${sanitizerReports.join('\n----\n')}\n`);
    process.exitCode = 1;
  }
});

// Runs the binary with arguments and no server (e.g. --check-config, --version); bounded.
export function runBin(args, { env, timeout = 10000 } = {}) {
  const r = spawnSync(BIN, args, { env: { ...process.env, ...env }, timeout, encoding: 'utf8' });
  const report = sanitizerReport(r.stderr ?? '');
  if (report) {
    sanitizerReports.push(`openbridge ${args.join(' ')}\n${report}`);
    throw new Error(`sanitizer report from openbridge ${args.join(' ')}:\n${report}`);
  }
  return { code: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error };
}

function buildEnv(extra) {
  const env = { ...process.env };
  for (const [k, v] of Object.entries(extra || {})) {
    if (v === undefined || v === null) delete env[k];
    else env[k] = String(v);
  }
  return env;
}

// startGateway({config, env, workers, extraArgs, startTimeout}) -> gateway handle (see below).
// `config` is an object (serialised as JSON) or a string written as is.
// The ports come from freePort(), which closes its probe before the gateway binds: another
// process may take one meanwhile. A start that fails only for that is tried again (3 times).
export async function startGateway(opts = {}) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startGatewayOnce(opts);
    } catch (e) {
      if (attempt >= 3 || !/Address already in use|already in use/.test(String(e.message))) throw e;
    }
  }
}

async function startGatewayOnce({ config, env, workers = 2, extraArgs = [], startTimeout = 10000 } = {}) {
  if (!binExists()) throw new Error(`gateway binary not found at ${BIN} (set OPENBRIDGE_BIN)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ob-e2e-'));
  const configPath = path.join(dir, 'config.json');
  fs.writeFileSync(configPath, typeof config === 'string' ? config : JSON.stringify(config, null, 2));
  const port = await freePort();
  // The admin listener is on by default (127.0.0.1:9901): every test gateway gets a port of its
  // own so several can run at once, unless the test chose one (or turned it off).
  const adminChosen = extraArgs.includes('--admin-listen') || (typeof config === 'object' && config && 'admin' in config);
  const adminPort = adminChosen ? null : await freePort();
  const adminArgs = adminPort ? ['--admin-listen', `127.0.0.1:${adminPort}`] : [];
  const args = ['--config', configPath, '--listen', `127.0.0.1:${port}`, '--workers', String(workers), ...adminArgs, ...extraArgs];
  const proc = spawn(BIN, args, { env: buildEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  const stderrLines = [];
  const stdoutLines = [];
  let errBuf = '';
  let outBuf = '';
  proc.stderr.setEncoding('utf8');
  proc.stdout.setEncoding('utf8');
  proc.stderr.on('data', (d) => {
    errBuf += d;
    let i;
    while ((i = errBuf.indexOf('\n')) >= 0) {
      stderrLines.push(errBuf.slice(0, i));
      errBuf = errBuf.slice(i + 1);
    }
    if (process.env.E2E_VERBOSE) process.stderr.write(`[gw ${port}] ${d}`);
  });
  proc.stdout.on('data', (d) => {
    outBuf += d;
    let i;
    while ((i = outBuf.indexOf('\n')) >= 0) {
      stdoutLines.push(outBuf.slice(0, i));
      outBuf = outBuf.slice(i + 1);
    }
  });
  let exit = null;
  let gw = null;
  const exited = new Promise((resolve) =>
    proc.once('exit', (code, signal) => {
      exit = { code, signal };
      running.delete(proc);
      resolve(exit);
    }),
  );
  const closed = new Promise((resolve) =>
    proc.once('close', () => {
      const report = sanitizerReport(gw.stderr());
      if (report) {
        sanitizerReports.push(`gateway on port ${port}\n${report}`);
        process.stderr.write(`\nsanitizer report in the stderr of the gateway on port ${port}:\n${report}\n`);
        process.exitCode = 1;
      }
      resolve();
    }),
  );

  gw = {
    port,
    url: `http://127.0.0.1:${port}`,
    adminPort,
    adminUrl: adminPort ? `http://127.0.0.1:${adminPort}` : null,
    dir,
    configPath,
    proc,
    args,
    stderrLines,
    stdoutLines,
    stderr: () => stderrLines.join('\n') + (errBuf ? `\n${errBuf}` : ''),
    exited: () => exit,
    // The first sanitizer report in stderr so far, or null.
    sanitizerReport: () => sanitizerReport(gw.stderr()),
    // Rewrites the config file: mode 'inplace' (truncate + write, same inode) or 'rename'
    // (write a temp file in the same directory, rename it over the config).
    writeConfig(cfg, { mode = 'inplace' } = {}) {
      const text = typeof cfg === 'string' ? cfg : JSON.stringify(cfg, null, 2);
      if (mode === 'rename') {
        const tmp = path.join(dir, `.config.json.${process.hrtime.bigint()}`);
        fs.writeFileSync(tmp, text);
        fs.renameSync(tmp, configPath);
      } else {
        const fd = fs.openSync(configPath, 'r+');
        try {
          fs.ftruncateSync(fd, 0);
          fs.writeSync(fd, text, 0);
        } finally {
          fs.closeSync(fd);
        }
      }
    },
    sighup() {
      proc.kill('SIGHUP');
    },
    // SIGTERM, wait for the exit (bounded); returns {code, signal}. SIGKILL after `timeout`.
    // A sanitizer report in stderr fails the test file at exit (see sanitizerReports).
    stop({ timeout = 10000 } = {}) {
      return stopProcess(timeout);
    },
    cleanup() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };

  async function stopProcess(timeout) {
    const r = await signalAndWait(timeout);
    // 'close' comes after stderr is drained: a report written just before exit is read too.
    let timer;
    await Promise.race([closed, new Promise((resolve) => (timer = setTimeout(resolve, 2000)))]);
    clearTimeout(timer);
    return r;
  }

  async function signalAndWait(timeout) {
    {
      if (exit) return exit;
      proc.kill('SIGTERM');
      let timer;
      const r = await Promise.race([
        exited,
        new Promise((resolve) => {
          timer = setTimeout(() => resolve(null), timeout);
        }),
      ]);
      clearTimeout(timer);
      if (!r) {
        proc.kill('SIGKILL');
        await exited;
        return { code: null, signal: 'SIGKILL', timedOut: true };
      }
      return r;
    }
  }

  const deadline = performance.now() + startTimeout;
  for (let i = 0; i < 1000; i++) {
    if (exit) throw new Error(`gateway exited early (${JSON.stringify(exit)}); stderr:\n${gw.stderr()}`);
    // Ready once both listeners accept: the admin one may open a moment after the proxy's.
    if ((await tryConnect(port, '127.0.0.1')) && (!adminPort || (await tryConnect(adminPort, '127.0.0.1')))) return gw;
    if (performance.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill('SIGKILL');
  await exited;
  throw new Error(`gateway did not accept connections on ${port}${adminPort ? ` and ${adminPort}` : ''} within ${startTimeout} ms; stderr:\n${gw.stderr()}`);
}

// A port where nothing listens (bound then closed).
// A port where nothing listens and nothing will: below 1024, which the system never hands out for
// port 0 (freePort), so no gateway or admin listener a test starts later can take it. Checked to
// refuse connections.
let nextClosed = 1;
export async function closedPort(host = '127.0.0.1') {
  for (let i = 0; i < 1000; i++) {
    const port = 1 + ((nextClosed++ * 37) % 1023);
    if (!(await tryConnect(port, host))) return port;
  }
  throw new Error('no closed port below 1024');
}
