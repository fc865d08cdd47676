/**
 * The file and Redis stores with a keyring and a ledger (as the app builds them): the store
 * contract holds sealed, nothing at rest shows a token, and one unusable record is one refused
 * merchant. Redis tests run against the real Redis (127.0.0.1:6379) and fail without it.
 */
import { createSecretKey, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { Redis } from 'ioredis';
import { FileStore } from '../../../src/tokens/file-store.js';
import { Keyring } from '../../../src/tokens/keyring.js';
import { RecordLedger } from '../../../src/tokens/record-ledger.js';
import { RedisStore, redisKeys } from '../../../src/tokens/redis-store.js';
import { UnusableRecordError, type TokenStore } from '../../../src/tokens/types.js';
import { tokenForms } from '../../helpers/store-keys.js';
import { record, storeContract } from './store-contract.js';

const REDIS_URL = process.env['COUNTERSIGN_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const admin = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
test.before(async () => {
  await admin.connect();
});
test.after.always(() => admin.disconnect());

const newKey = (id: string) => ({ id, keyFile: `/k/${id}`, key: createSecretKey(randomBytes(32)) });
const ringOf = (...keys: ReturnType<typeof newKey>[]) => new Keyring({ keys, plaintext: 'migrate' });

async function tempFile(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cs-sealed-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return join(dir, 'tokens.json');
}

function prefixFor(t: ExecutionContext): string {
  const prefix = `cs-test:sealed:${randomUUID()}:`;
  t.teardown(async () => {
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length) await admin.del(...keys);
  });
  return prefix;
}

async function dumpRedis(prefix: string): Promise<string> {
  const out: string[] = [];
  for (const k of await admin.keys(`${prefix}*`)) {
    const type = await admin.type(k);
    out.push(k, type === 'string' ? ((await admin.get(k)) ?? '') : type === 'set' ? (await admin.smembers(k)).join(',') : '');
  }
  return out.join('\n');
}

async function openFile(t: ExecutionContext, path: string, keyring: Keyring, ledger = new RecordLedger()): Promise<FileStore> {
  const s = new FileStore({ path, keyring, ledger });
  await s.open();
  t.teardown(() => s.close());
  return s;
}

async function openRedisStore(t: ExecutionContext, keyPrefix: string, keyring: Keyring, ledger = new RecordLedger()): Promise<RedisStore> {
  const s = new RedisStore({ url: REDIS_URL, keyPrefix, keyring, ledger });
  t.teardown(() => s.close());
  await s.open();
  return s;
}

storeContract('file sealed', async (t, options = {}) => {
  const s = new FileStore({ path: await tempFile(t), keyring: ringOf(newKey('k')), ledger: new RecordLedger(), ...options });
  await s.open();
  t.teardown(() => s.close());
  return s;
});
storeContract('redis sealed', async (t, options = {}) => {
  const s = new RedisStore({ url: REDIS_URL, keyPrefix: prefixFor(t), keyring: ringOf(newKey('k')), ledger: new RecordLedger(), ...options });
  t.teardown(() => s.close());
  await s.open();
  return s;
});

const secretRecords = [
  record({ merchant: 'm1', accessToken: 'AT-one-3f9a2c', refreshToken: 'RT-one-77b1e0' }),
  record({ merchant: 'm2', accessToken: 'AT-two-c0ffee', refreshToken: 'RT-two-deadbe' }),
];

test('file: the file holds no token raw, base64 or hex; a new store with the key reads it back', async (t) => {
  const path = await tempFile(t);
  const ring = ringOf(newKey('k1'));
  const s = await openFile(t, path, ring);
  for (const r of secretRecords) await s.put(r);
  const text = await readFile(path, 'utf8');
  for (const form of tokenForms(secretRecords)) t.false(text.includes(form), form);
  t.regex(text, /"key": "k1"/);
  await s.close();
  const again = await openFile(t, path, ring);
  t.is((await again.get('keeta', 'm2'))?.refreshToken, 'RT-two-deadbe');
});

test('redis: no key or value holds a token raw, base64 or hex; another instance with the key reads it', async (t) => {
  const prefix = prefixFor(t);
  const ring = ringOf(newKey('k1'));
  const s = await openRedisStore(t, prefix, ring);
  for (const r of secretRecords) await s.put(r);
  const dump = await dumpRedis(prefix);
  for (const form of tokenForms(secretRecords)) t.false(dump.includes(form), form);
  const other = await openRedisStore(t, prefix, ring);
  t.is((await other.get('keeta', 'm1'))?.accessToken, 'AT-one-3f9a2c');
});

async function quarantineCase(t: ExecutionContext, s: TokenStore, ledger: RecordLedger, breakM2: () => Promise<void>, reopen: () => Promise<TokenStore>) {
  await s.put(record({ merchant: 'm1' }));
  await s.put(record({ merchant: 'm2', accessToken: 'AT-m2' }));
  await breakM2();
  const store = await reopen();
  const listed = await store.list();
  t.deepEqual(listed.map((r) => r.merchant), ['m1'], 'the other merchants are listed');
  const err = await t.throwsAsync(store.get('keeta', 'm2'), { instanceOf: UnusableRecordError });
  t.regex(err!.message, /merchant "m2" cannot be used/);
  t.true(ledger.isUnusable('keeta', 'm2'));
  t.is(ledger.label('keeta', 'm2'), 'undecryptable');
  await t.throwsAsync(store.put(record({ merchant: 'm2', issuedAt: record().issuedAt + 1 })), { instanceOf: UnusableRecordError }, 'never overwritten by a renewal');
  t.is(await store.put(record({ merchant: 'm2', accessToken: 'AT-imported', issuedAt: 1 }), { overUnusable: 'replace' }), 'written', 'an import replaces it');
  t.is((await store.get('keeta', 'm2'))?.accessToken, 'AT-imported');
  t.false(ledger.isUnusable('keeta', 'm2'));
}

test('file: a record sealed for another merchant, copied over, is quarantined; others served; an import replaces it', async (t) => {
  const path = await tempFile(t);
  const ring = ringOf(newKey('k1'));
  const ledger = new RecordLedger();
  const s = await openFile(t, path, ring);
  await quarantineCase(
    t,
    s,
    ledger,
    async () => {
      await s.close();
      const doc = JSON.parse(await readFile(path, 'utf8'));
      const m1 = doc.records.find((r: { merchant: string }) => r.merchant === 'm1');
      doc.records = doc.records.map((r: { merchant: string }) => (r.merchant === 'm2' ? { ...m1, merchant: 'm2' } : r));
      await writeFile(path, JSON.stringify(doc));
    },
    () => openFile(t, path, ring, ledger),
  );
});

test('redis: a record copied under another merchant\'s key is quarantined; others served; an import replaces it', async (t) => {
  const prefix = prefixFor(t);
  const ring = ringOf(newKey('k1'));
  const ledger = new RecordLedger();
  const s = await openRedisStore(t, prefix, ring);
  const keys = redisKeys(prefix);
  await quarantineCase(
    t,
    s,
    ledger,
    async () => void (await admin.set(keys.record('keeta', 'm2'), (await admin.get(keys.record('keeta', 'm1')))!)),
    () => openRedisStore(t, prefix, ring, ledger),
  );
});

test('redis: malformed JSON and a record naming another merchant are quarantined alike', async (t) => {
  const prefix = prefixFor(t);
  const ledger = new RecordLedger();
  const s = await openRedisStore(t, prefix, new Keyring(), ledger);
  const keys = redisKeys(prefix);
  for (const m of ['m1', 'm2', 'm3']) await s.put(record({ merchant: m }));
  await admin.set(keys.record('keeta', 'm2'), '{"accessToken":"leaky",');
  await admin.set(keys.record('keeta', 'm3'), JSON.stringify(record({ merchant: 'm1' })));
  t.deepEqual((await s.list()).map((r) => r.merchant), ['m1']);
  t.deepEqual(ledger.unusableRecords().map((u) => [u.merchant, u.reason]), [
    ['m2', 'malformed: not valid JSON'],
    ['m3', 'it names another upstream or merchant'],
  ]);
});

test('migrate: plaintext records are sealed when a key is configured (file at open, redis on read)', async (t) => {
  const path = await tempFile(t);
  const plain = await openFile(t, path, new Keyring());
  for (const r of secretRecords) await plain.put(r);
  await plain.close();
  t.true((await readFile(path, 'utf8')).includes('AT-one-3f9a2c'), 'written in plaintext before');
  const ring = ringOf(newKey('k1'));
  const ledger = new RecordLedger();
  const sealed = await openFile(t, path, ring, ledger);
  const text = await readFile(path, 'utf8');
  for (const form of tokenForms(secretRecords)) t.false(text.includes(form), form);
  t.is((await sealed.get('keeta', 'm1'))?.accessToken, 'AT-one-3f9a2c');
  t.deepEqual([...ledger.counts()], [['k1', 2]]);

  const prefix = prefixFor(t);
  const plainRedis = await openRedisStore(t, prefix, new Keyring());
  for (const r of secretRecords) await plainRedis.put(r);
  const redisLedger = new RecordLedger();
  const sealedRedis = await openRedisStore(t, prefix, ring, redisLedger);
  t.is((await sealedRedis.list()).length, 2);
  t.deepEqual([...redisLedger.counts()], [['plaintext', 2]]);
  for (let i = 0; i < 100 && (redisLedger.counts().get('k1') ?? 0) < 2; i++) await new Promise((r) => setTimeout(r, 20));
  t.deepEqual([...redisLedger.counts()], [['k1', 2]], 'rewritten sealed in the background');
  const dump = await dumpRedis(prefix);
  for (const form of tokenForms(secretRecords)) t.false(dump.includes(form), form);
});

test('refuse: a plaintext record is unusable when plaintext: refuse', async (t) => {
  const prefix = prefixFor(t);
  const plainRedis = await openRedisStore(t, prefix, new Keyring());
  await plainRedis.put(record());
  const ledger = new RecordLedger();
  const k = newKey('k1');
  const s = await openRedisStore(t, prefix, new Keyring({ keys: [k], plaintext: 'refuse' }), ledger);
  await t.throwsAsync(s.get('keeta', 'm1'), { instanceOf: UnusableRecordError, message: /in plaintext \(store\.encryption\.plaintext: refuse\)/ });
  t.deepEqual([...ledger.counts()], [['undecryptable', 1]]);
});

test('file: only an unknown key: records are held untouched; with the right key added (reload) they are intact and resealed', async (t) => {
  const path = await tempFile(t);
  const right = newKey('k1');
  const first = await openFile(t, path, ringOf(right));
  for (const r of secretRecords) await first.put(r);
  await first.close();
  const before = await readFile(path, 'utf8');
  const ring = ringOf(newKey('wrong'));
  const ledger = new RecordLedger();
  const s = await openFile(t, path, ring, ledger);
  t.deepEqual(await s.list(), []);
  await t.throwsAsync(s.get('keeta', 'm1'), { instanceOf: UnusableRecordError });
  t.deepEqual([...ledger.counts()], [['undecryptable', 2]]);
  await t.throwsAsync(s.put(record({ merchant: 'm1', issuedAt: Date.now() })), { instanceOf: UnusableRecordError });
  await s.put(record({ merchant: 'm3' }));
  const after = JSON.parse(await readFile(path, 'utf8')).records;
  const beforeRecords = JSON.parse(before).records;
  t.deepEqual(after.filter((r: { merchant: string }) => r.merchant !== 'm3'), beforeRecords, 'held records are written back untouched');

  ring.update({ keys: [newKey('wrong'), right].map((k, i) => (i === 0 ? { ...k, id: 'k2' } : k)), plaintext: 'migrate' });
  for (let i = 0; i < 100 && ledger.isUnusable('keeta', 'm1'); i++) await new Promise((r) => setTimeout(r, 20));
  t.is((await s.get('keeta', 'm1'))?.refreshToken, 'RT-one-3f9a2c'.replace('one-3f9a2c', 'one-77b1e0'));
  for (let i = 0; i < 100 && ledger.counts().get('k2') !== 3; i++) await new Promise((r) => setTimeout(r, 20));
  t.deepEqual([...ledger.counts()], [['k2', 3]], 'every record resealed with the new first key');
  const resealed = JSON.parse(await readFile(path, 'utf8')).records as Array<{ key: string }>;
  t.deepEqual(resealed.map((r) => r.key), ['k2', 'k2', 'k2']);
});
