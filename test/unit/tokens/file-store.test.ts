import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { FileStore } from '../../../src/tokens/file-store.js';
import { StoreError, type TokenRecord } from '../../../src/tokens/types.js';
import { BIG_SHOP, record, storeContract } from './store-contract.js';
import { MERCHANTS, sequenceRecord } from './fixtures/torn-write.js';

const here = dirname(fileURLToPath(import.meta.url));

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cs-file-store-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

storeContract('file', async (t, options = {}) => {
  const dir = await tempDir(t);
  const store = new FileStore({ path: join(dir, 'tokens.json'), ...options });
  await store.open();
  t.teardown(() => store.close());
  return store;
});

test('file: a missing file and directory make an empty store; the file is created 0600', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'a', 'b', 'tokens.json');
  const store = new FileStore({ path });
  t.is(store.kind, 'file');
  await store.open();
  t.deepEqual(await store.list(), []);
  t.deepEqual(JSON.parse(await readFile(path, 'utf8')), { version: 1, records: [] });
  await store.put(record());
  t.is((await stat(path)).mode & 0o777, 0o600);
  const doc = JSON.parse(await readFile(path, 'utf8')) as { version: number; records: TokenRecord[] };
  t.is(doc.version, 1);
  t.deepEqual(doc.records, [record()]);
  await store.close();
});

test('file: a new store on the same path sees the data (restart)', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'tokens.json');
  const first = new FileStore({ path });
  await first.open();
  await first.put(record({ merchant: 'a' }));
  await first.put(record({ merchant: 'b', issuedAt: 5 }));
  await first.put(record({ upstream: 'keysecure', merchant: '_', shopIds: [] }));
  await first.delete('keeta', 'b');
  await first.close();

  const second = new FileStore({ path });
  await second.open();
  t.deepEqual(await second.get('keeta', 'a'), record({ merchant: 'a' }));
  t.is(await second.get('keeta', 'b'), undefined);
  t.deepEqual((await second.get('keeta', 'a'))?.shopIds, [BIG_SHOP, '9007199254740993']);
  t.is((await second.list()).length, 2);
  await second.close();
});

test('file: concurrent puts are serialised and all land', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'tokens.json');
  const store = new FileStore({ path });
  await store.open();
  await Promise.all(
    Array.from({ length: 40 }, (_, i) => store.put(record({ merchant: `m${i}`, issuedAt: i }))),
  );
  await store.close();
  const reopened = new FileStore({ path });
  await reopened.open();
  t.is((await reopened.list()).length, 40);
  t.deepEqual(await readdir(dir), ['tokens.json'], 'no temp files left behind');
});

test('file: operations before open() or after close() fail with StoreError', async (t) => {
  const dir = await tempDir(t);
  const store = new FileStore({ path: join(dir, 'tokens.json') });
  await t.throwsAsync(store.get('keeta', 'm1'), { instanceOf: StoreError });
  await t.throwsAsync(store.put(record()), { instanceOf: StoreError });
  await store.open();
  await store.close();
  await t.throwsAsync(store.put(record()), { instanceOf: StoreError });
});

const corruptCases: Array<[string, string]> = [
  ['a torn (truncated) file', '{"version":1,"records":[{"upstream":"keeta","merchant":"m1","accessToken":"leaky-secret'],
  ['an empty file', ''],
  ['garbage', '\u0000\u0000\u0000leaky-secret'],
  ['a wrong version', '{"version":2,"records":[]}'],
  ['no records array', '{"version":1}'],
  [
    'an invalid record',
    JSON.stringify({ version: 1, records: [{ ...record(), accessToken: 'leaky-secret', issuedAt: 'soon' }] }),
  ],
];

for (const [name, content] of corruptCases) {
  test(`file: ${name} makes open() throw naming the path, file untouched`, async (t) => {
    const dir = await tempDir(t);
    const path = join(dir, 'tokens.json');
    await writeFile(path, content);
    const seen: boolean[] = [];
    const store = new FileStore({ path, onStatus: (up) => seen.push(up) });
    const err = await t.throwsAsync(store.open(), { instanceOf: StoreError });
    t.true(err?.message.includes(path), err?.message);
    t.regex(err?.message ?? '', /restore|repair/i);
    t.false(err?.message.includes('leaky-secret'));
    t.is(await readFile(path, 'utf8'), content, 'file untouched');
    t.deepEqual(await readdir(dir), ['tokens.json']);
    t.deepEqual(seen, [false]);
    await t.throwsAsync(store.get('keeta', 'm1'), { instanceOf: StoreError });
  });
}

test('file: a path that is a directory cannot be opened', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'tokens.json');
  await mkdir(path);
  const err = await t.throwsAsync(new FileStore({ path }).open(), { instanceOf: StoreError });
  t.true(err?.message.includes(path));
});

test('file: a failed write (directory gone) keeps the file and the in-memory state', async (t) => {
  // Runs as root, so permissions stop nothing: swap the directory for a plain file so no temp
  // file can be created in it, then swap it back.
  const base = await tempDir(t);
  const dir = join(base, 'data');
  const path = join(dir, 'tokens.json');
  const seen: boolean[] = [];
  const store = new FileStore({ path, onStatus: (up) => seen.push(up) });
  await store.open();
  const old = record({ issuedAt: 1000, accessToken: 'old-access' });
  await store.put(old);
  const before = await readFile(path);

  await rename(dir, join(base, 'data.away'));
  await writeFile(dir, 'not a directory');
  seen.length = 0;
  const err = await t.throwsAsync(store.put(record({ issuedAt: 2000, accessToken: 'new-access' })), {
    instanceOf: StoreError,
  });
  t.true(err?.message.includes(path), err?.message);
  t.false(err?.message.includes('new-access'));
  t.deepEqual(seen, [false]);
  await t.throwsAsync(store.delete('keeta', 'm1'), { instanceOf: StoreError });
  t.deepEqual(await store.get('keeta', 'm1'), old, 'in-memory state unchanged');

  await rm(dir);
  await rename(join(base, 'data.away'), dir);
  t.deepEqual(await readFile(path), before, 'file unchanged');
  const restarted = new FileStore({ path });
  await restarted.open();
  t.deepEqual(await restarted.get('keeta', 'm1'), old);
  await restarted.close();

  // The store works again once the directory is back.
  t.is(await store.put(record({ issuedAt: 2000, accessToken: 'new-access' })), 'written');
  t.is((await store.get('keeta', 'm1'))?.accessToken, 'new-access');
  t.deepEqual(seen.at(-1), true);
  await store.close();
});

test('file: a failed rename (target replaced by a directory) keeps state and leaves no temp file', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'tokens.json');
  const store = new FileStore({ path });
  await store.open();
  const old = record({ issuedAt: 1000 });
  await store.put(old);
  const before = await readFile(path);

  await rename(path, join(dir, 'saved.json'));
  await mkdir(path);
  await writeFile(join(path, 'occupant'), 'x');
  await t.throwsAsync(store.put(record({ issuedAt: 2000, accessToken: 'new-access' })), {
    instanceOf: StoreError,
  });
  t.deepEqual(await store.get('keeta', 'm1'), old);
  t.deepEqual((await readdir(dir)).sort(), ['saved.json', 'tokens.json'], 'temp file removed');

  await rm(path, { recursive: true });
  await rename(join(dir, 'saved.json'), path);
  t.deepEqual(await readFile(path), before);
  await store.close();
});

test('file: temp files left by a killed writer are removed at open', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'tokens.json');
  const first = new FileStore({ path });
  await first.open();
  await first.put(record());
  await first.close();
  await writeFile(join(dir, '.tokens.json.123.abcdef.tmp'), '{"version":1,"rec');
  await writeFile(join(dir, 'unrelated.tmp'), 'keep me');
  const second = new FileStore({ path });
  await second.open();
  t.deepEqual((await readdir(dir)).sort(), ['tokens.json', 'unrelated.tmp']);
  t.deepEqual(await second.get('keeta', 'm1'), record());
  await second.close();
});

/** Checks that `path` holds a complete snapshot of the writer's sequence; returns its length. */
async function checkSnapshot(t: ExecutionContext, path: string): Promise<number> {
  const text = await readFile(path, 'utf8');
  const doc = JSON.parse(text) as { version: number; records: TokenRecord[] };
  t.is(doc.version, 1);
  const store = new FileStore({ path });
  await store.open(); // the store itself accepts it
  const records = await store.list();
  await store.close();
  t.is(records.length, doc.records.length);
  if (records.length === 0) return 0;
  const seqs = records.map((r) => r.issuedAt).sort((a, b) => a - b);
  const last = seqs.at(-1)!;
  const expected = Math.min(MERCHANTS, last + 1);
  t.is(records.length, expected, 'holds exactly the last writes of the sequence');
  t.deepEqual(seqs, Array.from({ length: expected }, (_, i) => last - expected + 1 + i));
  for (const r of records) t.deepEqual(r, sequenceRecord(r.issuedAt));
  return last + 1;
}

test('file: SIGKILL at random moments never leaves a torn file', async (t) => {
  t.timeout(60_000);
  const dir = await tempDir(t);
  const path = join(dir, 'tokens.json');
  const writer = join(here, 'fixtures', 'file-writer.ts');
  let written = 0;
  const kills = 8;
  for (let i = 0; i < kills; i++) {
    const child = spawn(process.execPath, ['--import', 'tsx', writer, path], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) => {
      child.on('exit', (code, signal) => resolve(signal ?? code));
    });
    const ready = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const m = /ready (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      void exited.then((how) => reject(new Error(`writer exited early (${String(how)}): ${stderr}`)));
    });
    t.is(ready, written, 'the writer resumes right after the last snapshot');
    await sleep(20 + Math.random() * 200);
    child.kill('SIGKILL');
    t.is(await exited, 'SIGKILL');
    const next = await checkSnapshot(t, path);
    t.true(next >= written);
    written = next;
  }
  t.true(written > kills, `the writer made progress (${written} writes)`);
  t.log(`${written} writes across ${kills} kills`);
});
