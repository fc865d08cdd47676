import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { parseConfig, summarizeConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/core/errors.js';
import { createRedisClient, describeRedisTarget, parseHostPorts, tlsOptions } from '../../../src/tokens/redis-connection.js';

const UPSTREAMS = `
upstreams:
  ks:
    type: keysecure
    baseUrl: https://openplatform.keysecure.io
    apiKey: ks-api-key-value
`;

function parse(store: string, opts: { baseDir?: string; env?: Record<string, string> } = {}) {
  return parseConfig(`store:\n${store}${UPSTREAMS}`, { env: opts.env ?? {}, ...(opts.baseDir && { baseDir: opts.baseDir }) });
}

function problemsOf(store: string, env: Record<string, string> = {}): string[] {
  try {
    parse(store, { env });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

function redisOf(cfg: ReturnType<typeof parse>) {
  if (cfg.store.type !== 'redis') throw new Error('not a redis store');
  return cfg.store;
}

test('store.redis: a url, with its defaults', (t) => {
  const s = redisOf(parse('  type: redis\n  url: redis://10.0.0.5:6380/2\n'));
  t.is(s.url, 'redis://10.0.0.5:6380/2');
  t.is(s.keyPrefix, 'countersign:');
  t.is(describeRedisTarget(s), 'redis://10.0.0.5:6380/2');
});

test('store.redis: Sentinel with a master name, passwords from files, db', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-redis-cfg-'));
  writeFileSync(join(dir, 'redis-password'), 'data-node-password\n');
  writeFileSync(join(dir, 'sentinel-password'), 'sentinel-pw\n');
  const cfg = parse(
    `  type: redis
  sentinels: ["10.0.0.1:26379", "10.0.0.2:26379", "[fd00::3]:26379"]
  name: mymaster
  db: 3
  passwordFile: redis-password
  sentinelPasswordFile: ${join(dir, 'sentinel-password')}
  keyPrefix: "cs-eu:"
`,
    { baseDir: dir },
  );
  const s = redisOf(cfg);
  t.deepEqual(s.sentinels, ['10.0.0.1:26379', '10.0.0.2:26379', '[fd00::3]:26379']);
  t.is(s.name, 'mymaster');
  t.is(s.password, 'data-node-password', 'passwordFile read, relative to the config file, newline dropped');
  t.is(s.sentinelPassword, 'sentinel-pw');
  t.is(s.keyPrefix, 'cs-eu:');
  t.deepEqual(parseHostPorts(s.sentinels!), [
    { host: '10.0.0.1', port: 26379 },
    { host: '10.0.0.2', port: 26379 },
    { host: 'fd00::3', port: 26379 },
  ]);
  const summary = summarizeConfig(cfg);
  t.regex(summary, /sentinel master "mymaster" via 10\.0\.0\.1:26379/);
  t.false(summary.includes('data-node-password') || summary.includes('sentinel-pw'), 'no password in the summary');
});

test('store.redis: Cluster nodes', (t) => {
  const s = redisOf(parse('  type: redis\n  nodes: ["10.0.0.1:6379", "10.0.0.2:6379"]\n  password: pw\n'));
  t.deepEqual(s.nodes, ['10.0.0.1:6379', '10.0.0.2:6379']);
  t.is(describeRedisTarget(s), 'cluster 10.0.0.1:6379,10.0.0.2:6379');
});

test('store.redis: rediss:// turns TLS on; tls.caFile is read relative to the config file', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-redis-cfg-'));
  writeFileSync(join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\nnot-really\n-----END CERTIFICATE-----\n');
  const plain = redisOf(parse('  type: redis\n  url: redis://127.0.0.1:6379\n'));
  t.is(tlsOptions(plain), undefined);
  const system = redisOf(parse('  type: redis\n  url: rediss://redis.example:6380/0\n'));
  t.deepEqual(tlsOptions(system), {}, 'system CAs');
  const own = redisOf(parse('  type: redis\n  url: rediss://redis.example:6380/0\n  tls:\n    caFile: ca.pem\n    serverName: redis.internal\n', { baseDir: dir }));
  t.is(own.tls?.caFile, join(dir, 'ca.pem'));
  const tls = tlsOptions(own);
  t.true(Buffer.isBuffer(tls?.ca) && tls.ca.toString().includes('not-really'));
  t.is(tls?.servername, 'redis.internal');
});

test('store.redis: every mistake has its path and says what to do', (t) => {
  const cases: Array<[string, string]> = [
    ['  type: redis\n', 'store.url: required: give url, sentinels (with name) or nodes'],
    ['  type: redis\n  url: http://x:6379\n', 'store.url: expected redis://host:port/db or rediss://host:port/db'],
    ['  type: redis\n  url: redis://x:6379\n  nodes: ["a:1"]\n', 'store.nodes: give only one of url, sentinels or nodes (found url and nodes)'],
    ['  type: redis\n  sentinels: ["a:26379"]\n', 'store.name: required with sentinels'],
    ['  type: redis\n  url: redis://x:6379\n  name: mymaster\n', 'store.name: only used with sentinels'],
    ['  type: redis\n  sentinels: ["not a host"]\n  name: m\n', 'store.sentinels[0]: expected host:port'],
    ['  type: redis\n  nodes: []\n', 'store.nodes: list at least one node'],
    ['  type: redis\n  url: redis://x:6379\n  db: 2\n', 'store.db: put the database in the url'],
    ['  type: redis\n  nodes: ["a:1"]\n  db: 2\n', 'store.db: Redis Cluster has only database 0'],
    ['  type: redis\n  url: redis://:pw@x:6379\n  password: other\n', 'store.password: the url already carries a password'],
    ['  type: redis\n  url: redis://x:6379\n  tls: {}\n', 'store.tls: use a rediss:// url for TLS'],
    ['  type: redis\n  url: redis://x:6379\n  keyPrefix: "{cs}:"\n', 'store.keyPrefix: must not contain { or }'],
    ['  type: redis\n  url: redis://x:6379\n  tls:\n    cafile: x\n', 'store.tls.cafile: unknown key'],
    ['  type: redis\n  url: redis://x:6379\n  passwordFile: /nonexistent/redis-pw\n', 'store.passwordFile: cannot read /nonexistent/redis-pw'],
    ['  type: redis\n  url: redis://x:6379\n  password: ""\n', 'store.password: must not be empty'],
  ];
  for (const [store, expected] of cases) {
    const problems = problemsOf(store);
    t.true(problems.some((p) => p.startsWith(expected)), `expected "${expected}" in:\n${problems.join('\n')}`);
  }
});

test('store.redis: a password never appears in a problem or the summary', (t) => {
  const problems = problemsOf('  type: redis\n  url: redis://:hunter2-secret@x:6379\n  password: other-secret\n');
  t.false(problems.join('\n').includes('hunter2-secret') || problems.join('\n').includes('other-secret'));
  const s = redisOf(parse('  type: redis\n  url: redis://:hunter2-secret@x:6379/1\n'));
  t.is(describeRedisTarget(s), 'redis://x:6379/1');
});

test('createRedisClient: the kind of client each form of config asks for, named by role, fail-fast', (t) => {
  const plain = createRedisClient({ url: 'redis://127.0.0.1:1/0', password: 'pw' }, 'store') as Redis;
  t.true(plain instanceof Redis);
  t.is(plain.options.connectionName, 'countersign:store');
  t.is(plain.options.enableOfflineQueue, false);
  t.is(plain.options.maxRetriesPerRequest, 0);
  t.is(plain.options.db, 0);
  t.is(plain.options.password, 'pw');
  t.is(plain.status, 'wait', 'not connected until asked');
  plain.disconnect();

  const sentinel = createRedisClient({ sentinels: ['127.0.0.1:1', '127.0.0.1:2'], name: 'mymaster', db: 2, sentinelPassword: 's' }, 'events') as Redis;
  t.true(sentinel instanceof Redis);
  t.deepEqual(sentinel.options.sentinels, [
    { host: '127.0.0.1', port: 1 },
    { host: '127.0.0.1', port: 2 },
  ]);
  t.is(sentinel.options.name, 'mymaster');
  t.is(sentinel.options.role, 'master');
  t.is(sentinel.options.db, 2);
  t.is(sentinel.options.sentinelPassword, 's');
  t.is(sentinel.options.connectionName, 'countersign:events');
  sentinel.disconnect();

  const cluster = createRedisClient({ nodes: ['127.0.0.1:1'], password: 'pw' }, 'ratelimit');
  t.true(cluster instanceof Cluster);
  t.is((cluster as Cluster).options.redisOptions?.password, 'pw');
  t.is((cluster as Cluster).options.enableOfflineQueue, false);
  cluster.disconnect();
});
