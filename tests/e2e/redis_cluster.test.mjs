// End-to-end: the Redis state backend against a Redis Cluster (state.cluster, docs/SCALING.md
// "Redis Cluster"): three nodes, the gateway pointed at one that does not own the slot of its
// keys' hash tag. Every admission, the key's and the provider's limits together, is one script
// on the owner (followed there after a MOVED reply), and limits are exact.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startMock } from '../../tools/mock-provider/server.js';
import { startGateway } from './lib/gateway.mjs';
import { redisAvailable, startRedis } from './lib/redis.mjs';
import { chatBody, gwPost, sleep } from './lib/common.mjs';
import { request } from './lib/http.mjs';

const T = { timeout: 60000 };
const cliAvailable = spawnSync('redis-cli', ['--version'], { stdio: 'ignore' }).status === 0;
const TOKEN = 'sk-cluster-rpm-secret';

describe('Redis Cluster', { timeout: 180000, skip: !(redisAvailable() && cliAvailable) && 'no redis-server/redis-cli' }, () => {
  let mock;
  const nodes = [];
  before(async () => {
    mock = await startMock();
    for (let i = 0; i < 3; i++)
      nodes.push(
        await startRedis({
          args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '5000'],
        }),
      );
    const made = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'],
      { encoding: 'utf8', timeout: 30000 },
    );
    assert.equal(made.status, 0, `redis-cli --cluster create: ${made.stdout}\n${made.stderr}`);
    // Every node sees the whole cluster (bounded: 15 s).
    for (let i = 0; ; i++) {
      const infos = await Promise.all(nodes.map((n) => n.command('CLUSTER', 'INFO')));
      if (infos.every((s) => s.includes('cluster_state:ok'))) break;
      assert.ok(i < 300, `cluster_state not ok after 15 s: ${infos.join('\n')}`);
      await sleep(50);
    }
  });
  after(async () => {
    for (const n of nodes) await n.stop();
    await mock?.close?.();
  });

  // The node that owns `key`'s slot answers a GET of it; the others answer MOVED.
  async function owner(key) {
    const answers = await Promise.all(nodes.map((n) => n.command('GET', key)));
    const i = answers.findIndex((a) => !a.startsWith('-MOVED'));
    assert.ok(i >= 0, `no node owns ${key}: ${answers.join(' | ')}`);
    return { node: nodes[i], other: nodes[(i + 1) % nodes.length], answers };
  }

  const config = (node, extra = {}) => ({
    providers: [{ group: 'g', name: 'm', base: mock.url, key: 'sk-up', limits: { rpm: 1000, tpm: 1000000, concurrency: 50 } }],
    keys: [{ name: 'ck', token: TOKEN, limits: { rpm: 5, tpm: 100000, concurrency: 10 }, budget: { tokens: 1000000, period: 'day' } }],
    // deny: an admission Redis could not decide is a 503, never a local decision.
    state: { path: '', redis: `redis://127.0.0.1:${node.port}/0`, cluster: true, prefix: 'cl:', on_failure: 'deny', timeout: '500ms' },
    ...extra,
  });

  test('rpm 5 with key and provider limits, gateway on a node that does not own the slot: 5 admitted, 6th 429', T, async () => {
    const slot = Number((await nodes[0].command('CLUSTER', 'KEYSLOT', 'cl:{cl}:k:ck:rpm')).match(/:(\d+)/)[1]);
    const { node, other } = await owner('cl:{cl}:k:ck:rpm');
    // The key's and the target's keys share the slot: one script can touch both.
    const tslot = Number((await nodes[0].command('CLUSTER', 'KEYSLOT', 'cl:{cl}:t:g/m@host:rpm')).match(/:(\d+)/)[1]);
    assert.equal(tslot, slot);
    assert.match(await other.command('GET', 'cl:{cl}:k:ck:rpm'), /^-MOVED \d+ 127\.0\.0\.1:\d+/, 'the gateway node is not the owner');
    const gw = await startGateway({ config: config(other) });
    try {
      const statuses = [];
      for (let i = 0; i < 6; i++) {
        const r = await gwPost(gw, '/v1/chat/completions', chatBody('g'), { token: TOKEN });
        statuses.push(`${r.status}${r.status === 200 ? '' : ' ' + r.text}`);
      }
      assert.deepEqual(
        statuses.map((s) => s.slice(0, 3)),
        ['200', '200', '200', '200', '200', '429'],
        statuses.join('\n'),
      );
      assert.match(statuses[5], /rate_limit_exceeded/);
      // The admin API reads the same counters: through this non-owner node, under the one tag.
      const adm = await request({ url: `${gw.adminUrl}/admin/v1/keys` });
      assert.equal(adm.status, 200, adm.text);
      assert.equal(adm.json().source, 'redis', adm.text);
      const ck = adm.json().keys.find((k) => k.name === 'ck');
      assert.deepEqual(ck.usage.rpm, { limit: 5, remaining: 0 }, adm.text);
      assert.ok(ck.budget.used > 0, adm.text);
      // Counted on the owner, under the one hash tag.
      assert.match(await node.command('GET', 'cl:{cl}:k:ck:rpm'), /^\$\d+\r\n\d+:\d+/);
      const tkeys = await node.command('KEYS', 'cl:{cl}:t:*');
      const trpm = tkeys.match(/cl:\{cl\}:t:g\/m@\S+:rpm/);
      assert.ok(trpm, `the provider's rpm counted on the owner: ${tkeys}`);
      const tconc = trpm[0].replace(/:rpm$/, ':conc');
      // Every lease was given back (settlements applied on the owner too).
      const leases = async () => [await node.command('ZCARD', 'cl:{cl}:k:ck:conc'), await node.command('ZCARD', tconc)];
      let l;
      for (let i = 0; i < 100; i++) {
        l = await leases();
        if (l.every((x) => x.startsWith(':0'))) break;
        await sleep(20);
      }
      assert.deepEqual(l, [':0\r\n', ':0\r\n'], 'leases released');
      // The budget's period hash (named inside the script) is in the same slot, settled.
      const bkeys = await node.command('KEYS', 'cl:{cl}:k:ck:budget:*');
      const bname = bkeys.match(/cl:\{cl\}:k:ck:budget:\d+/);
      assert.ok(bname, `budget hash on the owner: ${bkeys}`);
      assert.match(await node.command('HGET', bname[0], 'reserved'), /^\$1\r\n0\r\n/);
      assert.match(await node.command('HGET', bname[0], 'used'), /^\$\d+\r\n[1-9]\d*\r\n/);
    } finally {
      await gw.stop();
    }
  });

  test('the slot moves to another node while the gateway runs: MOVED followed, counts kept, limits exact', T, async () => {
    const { node: source, other: target } = await owner('cm:{cm}:k:ck:rpm');
    const slot = String((await source.command('CLUSTER', 'KEYSLOT', 'cm:{cm}:k:ck:rpm')).match(/:(\d+)/)[1]);
    const id = async (n) => (await n.command('CLUSTER', 'MYID')).split('\r\n')[1];
    const cfg = config(source);
    cfg.state.prefix = 'cm:';
    const gw = await startGateway({ config: cfg, workers: 1 });
    const ask = async () => (await gwPost(gw, '/v1/chat/completions', chatBody('g'), { token: TOKEN })).status;
    try {
      assert.deepEqual([await ask(), await ask()], [200, 200], 'on the owner the gateway was pointed at');
      // Reshard the slot to `target` (what redis-cli --cluster reshard does): IMPORTING /
      // MIGRATING, MIGRATE its keys, then the slot is the target's on every node.
      const [sid, tid] = [await id(source), await id(target)];
      assert.match(await target.command('CLUSTER', 'SETSLOT', slot, 'IMPORTING', sid), /^\+OK/);
      assert.match(await source.command('CLUSTER', 'SETSLOT', slot, 'MIGRATING', tid), /^\+OK/);
      const keys = (await source.command('CLUSTER', 'GETKEYSINSLOT', slot, '100')).split('\r\n').filter((l) => l.startsWith('cm:'));
      assert.ok(keys.length >= 2, keys.join(' '));
      assert.match(await source.command('MIGRATE', '127.0.0.1', String(target.port), '', '0', '5000', 'KEYS', ...keys), /^\+OK/);
      for (const n of [target, source, ...nodes.filter((x) => x !== source && x !== target)])
        assert.match(await n.command('CLUSTER', 'SETSLOT', slot, 'NODE', tid), /^\+OK/);
      // The gateway's connection is still to the old owner: its next admission is answered
      // MOVED, re-sent to the new owner, where the two earlier requests are counted.
      assert.deepEqual([await ask(), await ask(), await ask(), await ask()], [200, 200, 200, 429]);
      assert.equal(await source.command('CLUSTER', 'COUNTKEYSINSLOT', slot), ':0\r\n');
      assert.match(await target.command('GET', 'cm:{cm}:k:ck:rpm'), /^\$\d+\r\n\d+:\d+/);
    } finally {
      await gw.stop();
    }
  });

  test('an admission while its slot is split by a migration (TRYAGAIN) is retried and admitted once the migration ends', T, async () => {
    const { node: source, other: target } = await owner('ct:{ct}:k:ck:rpm');
    const slot = String((await source.command('CLUSTER', 'KEYSLOT', 'ct:{ct}:k:ck:rpm')).match(/:(\d+)/)[1]);
    const id = async (n) => (await n.command('CLUSTER', 'MYID')).split('\r\n')[1];
    const cfg = config(source);
    cfg.state.prefix = 'ct:';
    cfg.state.timeout = '2s';
    const gw = await startGateway({ config: cfg, workers: 1 });
    const ask = () => gwPost(gw, '/v1/chat/completions', chatBody('g'), { token: TOKEN });
    const tryagains = async () => Number((await source.command('INFO', 'errorstats')).match(/errorstat_TRYAGAIN:count=(\d+)/)?.[1] ?? 0);
    try {
      assert.deepEqual([(await ask()).status, (await ask()).status], [200, 200]);
      // The migration begins: one of the slot's keys moves, the others stay: the slot's keys are
      // split between the two nodes, and the source answers a script on them TRYAGAIN.
      const [sid, tid] = [await id(source), await id(target)];
      assert.match(await target.command('CLUSTER', 'SETSLOT', slot, 'IMPORTING', sid), /^\+OK/);
      assert.match(await source.command('CLUSTER', 'SETSLOT', slot, 'MIGRATING', tid), /^\+OK/);
      assert.match(await source.command('MIGRATE', '127.0.0.1', String(target.port), 'ct:{ct}:k:ck:rpm', '0', '5000'), /^\+OK/);
      const before = await tryagains();
      const pending = ask();
      // The admission met the split (bounded: 1 s), then the migration ends.
      for (let i = 0; (await tryagains()) === before; i++) {
        assert.ok(i < 100, 'no TRYAGAIN answered');
        await sleep(5);
      }
      const keys = (await source.command('CLUSTER', 'GETKEYSINSLOT', slot, '100')).split('\r\n').filter((l) => l.startsWith('ct:'));
      if (keys.length) assert.match(await source.command('MIGRATE', '127.0.0.1', String(target.port), '', '0', '5000', 'KEYS', ...keys), /^\+OK/);
      for (const n of [target, source, ...nodes.filter((x) => x !== source && x !== target)])
        assert.match(await n.command('CLUSTER', 'SETSLOT', slot, 'NODE', tid), /^\+OK/);
      // Retried after the TRYAGAIN (before: 503 state_unavailable at once, on_failure deny),
      // followed to the new owner, counted there with the two before it.
      const r = await pending;
      assert.equal(r.status, 200, r.text);
      assert.deepEqual([(await ask()).status, (await ask()).status, (await ask()).status], [200, 200, 429]);
    } finally {
      await gw.stop();
    }
  });

  test('a burst of concurrent requests through a non-owner node: exactly the limit admitted, none 503', T, async () => {
    const { other } = await owner('cb:{cb}:k:ck:rpm');
    const cfg = config(other);
    cfg.state.prefix = 'cb:';
    const gw = await startGateway({ config: cfg, workers: 2 });
    try {
      const all = await Promise.all(
        Array.from({ length: 20 }, () => gwPost(gw, '/v1/chat/completions', chatBody('g'), { token: TOKEN })),
      );
      const count = (s) => all.filter((r) => r.status === s).length;
      assert.equal(count(503), 0, all.map((r) => r.text).join('\n'));
      assert.equal(count(200), 5);
      assert.equal(count(429), 15);
    } finally {
      await gw.stop();
    }
  });
});
