import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { batchedDestination, writeAll } from '../../../src/observability/log-destination.js';
import { createLogger } from '../../../src/observability/logger.js';
import { ROOT } from '../../helpers/cli.js';

const tempFile = () => join(mkdtempSync(join(tmpdir(), 'cs-log-')), 'out.log');

test('lines are written together shortly after, in order; flush() writes what is pending at once', async (t) => {
  const file = tempFile();
  const fd = openSync(file, 'w');
  t.teardown(() => closeSync(fd));
  const dest = batchedDestination(fd);
  dest.write('one\n');
  dest.write('two\n');
  t.is(readFileSync(file, 'utf8'), '', 'nothing is written synchronously by write()');
  for (let i = 0; i < 100 && readFileSync(file, 'utf8') !== 'one\ntwo\n'; i++) await new Promise((r) => setTimeout(r, 10));
  t.is(readFileSync(file, 'utf8'), 'one\ntwo\n');
  dest.write('three\n');
  dest.flush();
  t.is(readFileSync(file, 'utf8'), 'one\ntwo\nthree\n', 'flush() writes synchronously');
});

test('writeAll writes every byte of text with multi-byte characters, more than one pipe buffer of it', (t) => {
  const file = tempFile();
  const fd = openSync(file, 'w');
  t.teardown(() => closeSync(fd));
  const text = '{"msg":"größe — 東京 🚀"}\n'.repeat(8000);
  writeAll(fd, text);
  t.is(readFileSync(file, 'utf8'), text);
});

test('a process that exits right after logging loses no line', (t) => {
  const file = tempFile();
  const script = `
    import { openSync } from 'node:fs';
    import { createLogger } from './src/observability/logger.ts';
    const fd = openSync(${JSON.stringify(file)}, 'w');
    const { batchedDestination } = await import('./src/observability/log-destination.ts');
    const log = createLogger({ level: 'info', destination: batchedDestination(fd) });
    for (let i = 0; i < 2000; i++) log.info({ i }, 'line');
    process.exit(0);
  `;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  t.is(r.status, 0, r.stderr);
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  t.is(lines.length, 2000);
  t.is(JSON.parse(lines[1999]!).i, 1999);
});

test('createLogger writes the ISO time, level label and service, and redacts secrets in general log lines', (t) => {
  const lines: string[] = [];
  const log = createLogger({ level: 'info', destination: { write: (s: string) => void lines.push(s) } });
  log.info({ apiKey: 'k-123', nested: { token: 't-456' } }, 'hello');
  const line = JSON.parse(lines[0]!);
  t.like(line, { level: 'info', service: 'countersign', msg: 'hello', apiKey: '[redacted]', nested: { token: '[redacted]' } });
  t.regex(line.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  t.true(Math.abs(Date.parse(line.time) - Date.now()) < 60_000);
});

/** Run a script that logs through createLogger's default destination (stdout), with stdout a pipe. */
function spawnLogging(body: string) {
  const script = `import { createLogger } from './src/observability/logger.ts';\nconst log = createLogger({ level: 'info' });\n${body}`;
  return spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
}

test('a reader that stops reading loses no line and breaks none, even when the process exits at once', async (t) => {
  const child = spawnLogging(`
    for (let i = 0; i < 20000; i++) log.info({ i, pad: 'x'.repeat(60) }, 'line');
    setTimeout(() => { log.info({ i: 20000 }, 'last'); process.exit(0); }, 50);
  `);
  child.stdout.pause(); // the pipe fills up: the child's writes must wait, not drop or split lines
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  const code = new Promise<number | null>((r) => child.on('close', r));
  await new Promise((r) => setTimeout(r, 1000));
  child.stdout.resume();
  t.is(await code, 0);
  const lines = out.trim().split('\n');
  t.is(lines.length, 20001);
  t.is(JSON.parse(lines.at(-1)!).msg, 'last');
  t.true(lines.every((l) => l.startsWith('{"level":"info"') && JSON.parse(l)), 'every line whole');
});

test('a log reader that goes away (broken pipe) stops the logging, not the process', async (t) => {
  const child = spawnLogging(`
    let i = 0;
    const timer = setInterval(() => { for (let k = 0; k < 50; k++) log.info({ i: i++ }, 'line'); }, 10);
    setTimeout(() => { clearInterval(timer); process.stderr.write('alive after ' + i + ' lines'); process.exit(0); }, 1000);
  `);
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  child.stdout.once('data', () => child.stdout.destroy());
  const code = await new Promise<number | null>((r) => child.on('close', r));
  t.is(code, 0, err);
  t.regex(err, /alive after \d+ lines/);
});
