import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../helpers/cli.js';

const run = promisify(execFile);

test('npm run demo prints curl commands that each answer "code":0 as printed; Ctrl-C stops everything', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/demo.ts'], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', ADMIN_PORT: '0', COUNTERSIGN_DEMO_DIR: mkdtempSync(join(tmpdir(), 'cs-demo-')), NODE_OPTIONS: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.teardown(() => void child.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`demo did not start:\n${out}`)), 20_000);
    child.stdout.on('data', () => {
      if (out.includes('Ctrl-C stops everything')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  const curls = out.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('curl'));
  t.true(curls.length >= 4, out);
  for (const cmd of curls) {
    const { stdout } = await run('bash', ['-c', cmd]);
    t.regex(stdout, /^\{"code":0,/, `${cmd}\n→ ${stdout}`);
  }
  const views = [...out.matchAll(/^\s+(http:\/\/\S+)\s{2,}/gm)].map((m) => m[1]!);
  t.is(views.length, 3, out);
  for (const url of views) t.is((await fetch(url)).status, 200, url);
  child.kill('SIGINT');
  t.is(await exited, 0);
});
