// End-to-end: the command line (--check-config, --version, --help) and startup/shutdown.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runBin, startGateway } from './lib/gateway.mjs';
import { CLIENT_TOKEN, gwGet } from './lib/common.mjs';
import { request, waitFor } from './lib/http.mjs';

const T = { timeout: 20000 };

describe('command line', { timeout: 120000 }, () => {
  let dir;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ob-cli-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const write = (name, content) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
    return p;
  };
  const seed = {
    providers: [{ group: 'fast', name: 'gpt-4o-mini', base: 'https://api.openai.com', key: 'sk-abcdefghijklmnopqrstuvwxyz' }],
    security: ['sk-abcdefghijklmnopqrstuvwxyz'],
  };

  test('--version and --help exit 0 and print something', T, () => {
    for (const a of ['--version', '--help']) {
      const r = runBin([a]);
      assert.equal(r.code, 0, `${a}: exit ${r.code} ${r.stderr}`);
      assert.ok((r.stdout + r.stderr).trim().length > 0, `${a} printed nothing`);
    }
    assert.match(runBin(['--version']).stdout, /\d+\.\d+/);
    assert.match(runBin(['--help']).stdout, /--config/);
  });

  test('--check-config: the old gateway\'s README config is valid', T, () => {
    const r = runBin(['--check-config', write('seed.json', seed)]);
    assert.equal(r.code, 0, `exit ${r.code}; stderr: ${r.stderr}`);
  });

  test('--check-config: a config with every extension key is valid', T, () => {
    const cfg = {
      ...seed,
      listen: '127.0.0.1:9999',
      workers: 2,
      limits: { max_body_bytes: 1000000 },
      timeouts: { connect: 1, first_byte: 2, idle: 3, total: 4 },
    };
    const r = runBin(['--check-config', write('full.json', cfg)]);
    assert.equal(r.code, 0, `exit ${r.code}; stderr: ${r.stderr}`);
  });

  test('--check-config: ${ENV} keys resolve from the environment', T, () => {
    const cfg = { ...seed, providers: [{ ...seed.providers[0], key: '${OB_E2E_CHECK_KEY}' }] };
    const p = write('env.json', cfg);
    const r = runBin(['--check-config', p], { env: { OB_E2E_CHECK_KEY: 'sk-x' } });
    assert.equal(r.code, 0, `exit ${r.code}; stderr: ${r.stderr}`);
  });

  test('--check-config: invalid base -> exit 1 with a providers[0].base message', T, () => {
    for (const base of ['ftp://example.com', 'not a url', '', 'http://']) {
      const cfg = { ...seed, providers: [{ ...seed.providers[0], base }] };
      const r = runBin(['--check-config', write('badbase.json', cfg)]);
      assert.equal(r.code, 1, `base ${JSON.stringify(base)}: exit ${r.code}`);
      assert.match(r.stderr, /providers\[0\]\.base/, `base ${JSON.stringify(base)}: stderr ${r.stderr}`);
    }
  });

  test('--check-config: other invalid files -> exit 1 naming the problem', T, () => {
    const cases = [
      ['not json', '{"providers": [', /./],
      ['no providers', { security: ['x'] }, /providers/],
      ['providers not a list', { providers: {}, security: ['x'] }, /providers/],
      ['missing group', { ...seed, providers: [{ name: 'n', base: 'http://127.0.0.1:1', key: 'k' }] }, /providers\[0\]\.group/],
      ['missing name', { ...seed, providers: [{ group: 'g', base: 'http://127.0.0.1:1', key: 'k' }] }, /providers\[0\]\.name/],
      ['second provider bad', { ...seed, providers: [seed.providers[0], { group: 'g', name: 'n', base: 'gopher://x', key: 'k' }] }, /providers\[1\]\.base/],
      ['security not a list', { ...seed, security: 'sk' }, /security/],
    ];
    for (const [what, cfg, re] of cases) {
      const r = runBin(['--check-config', write('bad.json', cfg)]);
      assert.equal(r.code, 1, `${what}: exit ${r.code}; stderr: ${r.stderr}`);
      assert.match(r.stderr, re, `${what}: stderr ${r.stderr}`);
    }
    const missing = runBin(['--check-config', path.join(dir, 'does-not-exist.json')]);
    assert.equal(missing.code, 1, `missing file: exit ${missing.code}`);
    assert.ok(missing.stderr.length > 0);
  });

  test('a server with an invalid config does not start (non-zero exit, reason on stderr)', T, async () => {
    const p = write('bad-start.json', { ...seed, providers: [{ ...seed.providers[0], base: 'ftp://x' }] });
    const r = runBin(['--config', p, '--listen', '127.0.0.1:0', '--workers', '1'], { timeout: 5000 });
    assert.notEqual(r.code, 0, 'must not serve an invalid config');
    assert.equal(r.signal, null, 'exited by itself');
    assert.match(r.stderr, /providers\[0\]\.base/);
  });

  test('the old gateway\'s config (no extension keys) serves; SIGTERM exits 0', T, async () => {
    const gw = await startGateway({ config: seed, workers: 1 });
    try {
      const h = await gwGet(gw, '/healthz', { token: null });
      assert.equal(h.status, 200);
      const m = await gwGet(gw, '/v1/models', { token: seed.security[0] });
      assert.equal(m.status, 200, m.text);
      assert.deepEqual(m.json().data.map((x) => x.id), ['fast']);
      assert.equal((await gwGet(gw, '/v1/models', { token: CLIENT_TOKEN })).status, 401);
    } finally {
      const r = await gw.stop();
      gw.cleanup();
      assert.deepEqual(r, { code: 0, signal: null });
    }
  });

  // Scripts and service managers read the start-up lines to learn where to connect.
  test('--admin-listen 127.0.0.1:0: the start-up line names the port the system chose', T, async () => {
    const gw = await startGateway({ config: seed, workers: 1, extraArgs: ['--admin-listen', '127.0.0.1:0'] });
    try {
      const line = await waitFor(() => gw.stderrLines.find((l) => l.includes('admin listening on')), { what: 'the admin start-up line' });
      const m = /admin listening on 127\.0\.0\.1:(\d+) /.exec(line);
      assert.ok(m, line);
      const port = Number(m[1]);
      assert.notEqual(port, 0, line);
      const h = await request({ url: `http://127.0.0.1:${port}/healthz`, method: 'GET' });
      assert.equal(h.status, 200, h.text);
    } finally {
      gw.cleanup();
      assert.deepEqual(await gw.stop(), { code: 0, signal: null });
    }
  });
});
