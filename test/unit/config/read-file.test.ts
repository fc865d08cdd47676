import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, loadConfigAsync } from '../../../src/config/load.js';
import { readRegularFile, readRegularFileSync } from '../../../src/config/read-file.js';

function dirWithFifo(t: { teardown(fn: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'cs-fifo-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fifo = join(dir, 'secret.fifo');
  execFileSync('mkfifo', [fifo]);
  return { dir, fifo };
}

test('a FIFO is refused at once, synchronously and asynchronously, instead of blocking', async (t) => {
  const { dir, fifo } = dirWithFifo(t);
  const t0 = Date.now();
  t.throws(() => readRegularFileSync(fifo), { message: /not a regular file \(it is a FIFO\)/ });
  await t.throwsAsync(readRegularFile(fifo, 1000), { message: /not a regular file \(it is a FIFO\)/ });
  t.throws(() => readRegularFileSync(dir), { message: /not a regular file \(it is a directory\)/ });
  t.true(Date.now() - t0 < 500);
  const file = join(dir, 'ok');
  writeFileSync(file, 'text\n');
  t.is(readRegularFileSync(file), 'text\n');
  t.is(await readRegularFile(file, 1000), 'text\n');
});

test('a secret file that is a FIFO is a config problem naming its path, at start and on reload', async (t) => {
  const { dir, fifo } = dirWithFifo(t);
  const cfg = join(dir, 'c.yaml');
  writeFileSync(
    cfg,
    `store: {type: memory}\nupstreams:\n  keeta:\n    type: keeta\n    baseUrl: http://127.0.0.1:1\n    appId: 1\n    appSecretFile: ${fifo}\n`,
  );
  const sync = t.throws(() => loadConfig(cfg, {})) as unknown as { problems: string[] };
  t.true(sync.problems.some((p) => p.startsWith(`upstreams.keeta.appSecretFile: cannot read ${fifo} (not a regular file: it is a FIFO`)), sync.problems.join('\n'));
  const async = (await t.throwsAsync(loadConfigAsync(cfg, {}))) as unknown as { problems: string[] };
  t.true(async.problems.some((p) => p.startsWith(`upstreams.keeta.appSecretFile: cannot read ${fifo} (not a regular file`)), async.problems.join('\n'));
  writeFileSync(join(dir, 'secret'), 's3cret-value\n');
  writeFileSync(cfg, `store: {type: memory}\nupstreams:\n  keeta:\n    type: keeta\n    baseUrl: http://127.0.0.1:1\n    appId: 1\n    appSecretFile: secret\n`);
  const ok = await loadConfigAsync(cfg, {});
  t.is((ok.upstreams['keeta'] as { appSecret: string }).appSecret, 's3cret-value');
  t.deepEqual(ok.files, [join(dir, 'secret')]);
});
