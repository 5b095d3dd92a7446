// End-to-end: the "state" config (usage ledger in SQLite, Redis URL checks), the
// /admin/v1/usage route on the admin listener, and the redis-server helper later tests use.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runBin, startGateway } from './lib/gateway.mjs';
import { request, waitFor } from './lib/http.mjs';
import { chatBody, gwPost } from './lib/common.mjs';
import { startMock } from '../../tools/mock-provider/server.js';
import { redisAvailable, startRedis } from './lib/redis.mjs';

const T = { timeout: 30000 };
const sqliteCli = spawnSync('sqlite3', ['-version'], { stdio: 'ignore' }).status === 0;
// The gateway may hold the ledger's write lock for a moment (start-up, the flush every second):
// the CLI waits for it instead of failing with "database is locked".
const sql = (db, text) => spawnSync('sqlite3', ['-cmd', '.timeout 5000', db, text], { encoding: 'utf8' });

describe('shared state', { timeout: 120000 }, () => {
  let dir;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ob-state-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const config = (extra = {}) => ({
    providers: [{ group: 'fast', name: 'm', base: 'http://127.0.0.1:9', key: 'sk-p' }],
    security: ['sk-c'],
    ...extra,
  });

  test('the ledger file is created in WAL mode and /admin/v1/usage answers from it', T, async (t) => {
    const db = path.join(dir, 'state.db');
    const today = new Date().toISOString().slice(0, 10);
    if (sqliteCli) {
      // Usage of an earlier run (today, and a day in 2020 that no period of today includes).
      sql(
        db,
        'CREATE TABLE usage (day TEXT NOT NULL, key TEXT NOT NULL, grp TEXT NOT NULL, target TEXT NOT NULL,' +
          ' requests INTEGER NOT NULL DEFAULT 0, input_tokens INTEGER NOT NULL DEFAULT 0,' +
          ' output_tokens INTEGER NOT NULL DEFAULT 0, usd_micros INTEGER NOT NULL DEFAULT 0,' +
          ' PRIMARY KEY (day, key, grp, target)) WITHOUT ROWID;' +
          `INSERT INTO usage VALUES ('${today}', 'alice', 'fast', 'fast/m@h', 3, 30, 60, 90);` +
          `INSERT INTO usage VALUES ('${today}', 'bob', 'fast', 'fast/m@h', 1, 1, 1, 1);` +
          "INSERT INTO usage VALUES ('2020-01-01', 'alice', 'fast', 'fast/m@h', 100, 0, 0, 0);",
      );
    }
    const gw = await startGateway({ config: config({ state: { path: db } }) });
    try {
      assert.ok(fs.existsSync(db), 'the ledger file exists');
      if (sqliteCli) {
        assert.equal(sql(db, 'PRAGMA journal_mode;').stdout.trim(), 'wal');
        assert.match(sql(db, '.tables').stdout, /budget/);
      }
      const r = await request({ url: `${gw.adminUrl}/admin/v1/usage` });
      assert.equal(r.status, 200, r.text);
      const body = JSON.parse(r.text);
      assert.equal(body.period, 'day');
      assert.equal(body.start, today);
      assert.deepEqual(body.by, ['key']);
      if (sqliteCli) {
        assert.deepEqual(body.rows, [
          { key: 'alice', requests: 3, input_tokens: 30, output_tokens: 60, usd_micros: 90 },
          { key: 'bob', requests: 1, input_tokens: 1, output_tokens: 1, usd_micros: 1 },
        ]);
        const g = JSON.parse((await request({ url: `${gw.adminUrl}/admin/v1/usage?by=group,target&period=month` })).text);
        assert.deepEqual(g.rows, [{ group: 'fast', target: 'fast/m@h', requests: 4, input_tokens: 31, output_tokens: 61, usd_micros: 91 }]);
      } else {
        t.diagnostic('sqlite3 CLI not installed: rows not pre-filled');
      }
      const bad = await request({ url: `${gw.adminUrl}/admin/v1/usage?period=year` });
      assert.equal(bad.status, 400);
      assert.equal(JSON.parse(bad.text).error.param, 'period');
    } finally {
      await gw.stop();
    }
  });

  test('a key added by a reload is seeded from the ledger: its usage this period counts', T, async () => {
    const mock = await startMock();
    const db = path.join(dir, 'seed.db');
    const later = { name: 'later-key', token: 'sk-state-later-secret', budget: { tokens: 50, period: 'day' } };
    const base = {
      providers: [{ group: 'g', name: 'm', base: mock.url, key: 'sk-up' }],
      keys: [{ name: 'plain-key', token: 'sk-state-plain-secret' }],
      state: { path: db },
    };
    const withLater = { ...base, keys: [...base.keys, later] };
    const ask = (gw) => gwPost(gw, '/v1/chat/completions', chatBody('g'), { token: later.token });
    try {
      // 21 tokens an answer: three pass (42 < 50 was left before the third), using 63.
      let gw = await startGateway({ config: withLater });
      try {
        for (let i = 0; i < 3; i++) assert.equal((await ask(gw)).status, 200, `request ${i + 1}`);
      } finally {
        await gw.stop(); // the ledger is written at shutdown
      }
      for (const how of ['added by a reload', 'removed, then added back']) {
        gw = await startGateway({ config: how === 'added by a reload' ? base : withLater });
        try {
          if (how !== 'added by a reload') {
            gw.writeConfig(base);
            const rm = await request({ url: `${gw.adminUrl}/admin/v1/reload`, method: 'POST' });
            assert.equal(rm.status, 200, rm.text);
          }
          assert.equal((await ask(gw)).status, 401, 'not configured');
          gw.writeConfig(withLater);
          const rl = await request({ url: `${gw.adminUrl}/admin/v1/reload`, method: 'POST' });
          assert.equal(rl.status, 200, rl.text);
          const r = await ask(gw);
          assert.equal(r.status, 429, `${how}: the first request after the reload: ${r.text}`);
          assert.equal(r.json().error.code, 'insufficient_quota');
        } finally {
          await gw.stop();
        }
      }
    } finally {
      await mock.close();
    }
  });

  test('a multipart transcription writes its key\'s ledger row with the answer\'s usage', T, async () => {
    const mock = await startMock();
    const db = path.join(dir, 'form.db');
    const BOUNDARY = 'state-form-boundary';
    const form =
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="model"\r\n\r\nstt\r\n` +
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\nRIFF\r\n` +
      `--${BOUNDARY}--\r\n`;
    const cfg = {
      // gpt-4o transcriptions answer with usage: 30 input + 8 output tokens.
      providers: [{ group: 'stt', name: 'gpt-4o-transcribe', base: mock.url, key: 'sk-up' }],
      keys: [{ name: 'form-key', token: 'sk-state-form-secret', budget: { tokens: 50, period: 'day' } }],
      state: { path: db },
    };
    const ask = (gw) =>
      gwPost(gw, '/v1/audio/transcriptions', form, {
        token: 'sk-state-form-secret',
        headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` },
      });
    try {
      let gw = await startGateway({ config: cfg });
      try {
        for (let i = 0; i < 2; i++) assert.equal((await ask(gw)).status, 200, `request ${i + 1}`);
      } finally {
        await gw.stop(); // the ledger is written at shutdown
      }
      gw = await startGateway({ config: cfg });
      try {
        // startGateway waits for the client listener only: the admin one may still be opening.
        const first = await waitFor(() => request({ url: `${gw.adminUrl}/admin/v1/usage` }).catch(() => null), { what: 'the admin listener' });
        const u = JSON.parse(first.text);
        assert.deepEqual(u.rows, [{ key: 'form-key', requests: 2, input_tokens: 60, output_tokens: 16, usd_micros: 0 }]);
        // The budget is seeded from the ledger: 76 of 50 used.
        const r = await ask(gw);
        assert.equal(r.status, 429, r.text);
        assert.equal(r.json().error.code, 'insufficient_quota');
      } finally {
        await gw.stop();
      }
    } finally {
      await mock.close();
    }
  });

  test('without "state" there is no ledger and /admin/v1/usage is 404', T, async () => {
    const gw = await startGateway({ config: config() });
    try {
      const r = await request({ url: `${gw.adminUrl}/admin/v1/usage` });
      assert.equal(r.status, 404);
      assert.equal(JSON.parse(r.text).error.code, 'not_found');
    } finally {
      await gw.stop();
    }
  });

  test('bad "state" values are refused with their path', T, () => {
    const rows = [
      { state: { redis: 'http://127.0.0.1:6379' }, path: 'state.redis' },
      { state: { timeout: '50' }, path: 'state.timeout' },
      { state: { on_failure: 'open' }, path: 'state.on_failure' },
      { state: { instances: 0 }, path: 'state.instances' },
      { state: { prefix: 'a{b}' }, path: 'state.prefix' },
    ];
    for (const row of rows) {
      const p = path.join(dir, 'bad.json');
      fs.writeFileSync(p, JSON.stringify(config({ state: row.state })));
      const r = runBin(['--check-config', p]);
      assert.notEqual(r.code, 0, JSON.stringify(row.state));
      assert.ok((r.stdout + r.stderr).includes(row.path), `${row.path}: ${r.stdout}${r.stderr}`);
    }
    const ok = path.join(dir, 'ok.json');
    fs.writeFileSync(ok, JSON.stringify(config({ state: { path: '', redis: 'redis://:pw@127.0.0.1:6379/1', timeout: '20ms', on_failure: 'deny', instances: 2, prefix: 'gw:' } })));
    const r = runBin(['--check-config', ok]);
    assert.equal(r.code, 0, r.stderr);
  });

  test('an unwritable ledger path stops the start with a clear error', T, () => {
    const p = path.join(dir, 'unwritable.json');
    fs.writeFileSync(p, JSON.stringify(config({ state: { path: '/proc/no/such/dir/state.db' } })));
    const r = runBin(['--config', p, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'], { timeout: 10000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /state\.path/);
  });

  test('the redis-server helper starts, answers, restarts empty and stops', { ...T, skip: !redisAvailable() && 'redis-server not installed' }, async () => {
    const redis = await startRedis();
    try {
      assert.equal(await redis.command('SET', 'k', 'v'), '+OK\r\n');
      assert.equal(await redis.command('GET', 'k'), '$1\r\nv\r\n');
      await redis.restart();
      assert.equal(await redis.command('GET', 'k'), '$-1\r\n');
    } finally {
      await redis.stop();
    }
  });
});
