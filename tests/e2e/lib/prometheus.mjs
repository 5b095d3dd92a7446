// A real Prometheus server (Debian's `prometheus`) for end-to-end tests: started on a free port
// with its own temp dir and a scrape config, queried through its HTTP API, stopped after.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './gateway.mjs';

export function prometheusAvailable() {
  return spawnSync('prometheus', ['--version'], { stdio: 'ignore' }).status === 0;
}

// `promtool check metrics` on an exposition text: {ok, output}.
export function promtoolCheck(text) {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 20000 });
  return { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim(), status: r.status };
}

// startPrometheus({target: '127.0.0.1:9901', bearer, interval: '1s'}) -> {url, query(q), waitScrapes(n), stop()}
export async function startPrometheus({ target, bearer, interval = '1s', metricsPath = '/metrics' }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ob-prom-'));
  const port = await freePort();
  let cfg = `global:\n  scrape_interval: ${interval}\n  scrape_timeout: ${interval}\nscrape_configs:\n  - job_name: openbridge\n    metrics_path: ${metricsPath}\n    static_configs:\n      - targets: ['${target}']\n`;
  if (bearer) {
    fs.writeFileSync(path.join(dir, 'token'), bearer);
    cfg += `    authorization:\n      type: Bearer\n      credentials_file: ${path.join(dir, 'token')}\n`;
  }
  fs.writeFileSync(path.join(dir, 'prometheus.yml'), cfg);
  const proc = spawn(
    'prometheus',
    [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  proc.stderr.on('data', (d) => (stderr += d));
  let exited = false;
  proc.once('exit', () => (exited = true));
  const url = `http://127.0.0.1:${port}`;
  const deadline = performance.now() + 30000;
  for (let i = 0; i < 600; i++) {
    if (exited) throw new Error(`prometheus exited: ${stderr}`);
    try {
      const r = await fetch(`${url}/-/ready`);
      if (r.ok) break;
    } catch {}
    if (performance.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`prometheus not ready in 30 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const api = async (p) => {
    const r = await fetch(`${url}${p}`);
    const j = await r.json();
    if (j.status !== 'success') throw new Error(`prometheus ${p}: ${JSON.stringify(j)}`);
    return j.data;
  };
  return {
    url,
    stderr: () => stderr,
    // Instant query -> [{metric, value: Number}]
    async query(q) {
      const d = await api(`/api/v1/query?query=${encodeURIComponent(q)}`);
      return d.result.map((x) => ({ metric: x.metric, value: Number(x.value[1]) }));
    },
    async targets() {
      return (await api('/api/v1/targets')).activeTargets;
    },
    async stop() {
      if (!exited) {
        proc.kill('SIGTERM');
        await new Promise((r) => {
          const t = setTimeout(() => {
            proc.kill('SIGKILL');
            r();
          }, 10000);
          proc.once('exit', () => {
            clearTimeout(t);
            r();
          });
        });
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
