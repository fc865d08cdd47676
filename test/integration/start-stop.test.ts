/**
 * `countersign serve` stopped while it is still starting: SIGTERM in the first moments after
 * start (Kubernetes replacing a pod that just began) is a clean shutdown with exit 0, never a
 * death by the signal (exit 143).
 */
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnCli } from '../helpers/cli.js';

function configFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cs-start-stop-'));
  const file = join(dir, 'countersign.yaml');
  writeFileSync(
    file,
    `listen: { proxy: 127.0.0.1:0, admin: 127.0.0.1:0 }
store: { type: file, path: ${join(dir, 'tokens.json')} }
upstreams:
  keeta: { type: keeta, baseUrl: http://127.0.0.1:9/api/open, appId: 1, appSecret: start-stop-app-secret }
`,
  );
  return file;
}

for (const delayMs of [0, 150]) {
  test(`SIGTERM ${delayMs} ms into the start exits 0 after a clean shutdown`, async (t) => {
    const child = spawnCli(['serve', '--config', configFile()], { LOG_LEVEL: 'debug' });
    let stdout = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('close', (code, signal) => r({ code, signal })));
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    // The first line the process writes: its stop handling is in place from here on.
    for (let i = 0; i < 1500 && !stdout.includes('"msg":"countersign starting"'); i++) await new Promise((r) => setTimeout(r, 10));
    t.true(stdout.includes('"msg":"countersign starting"'), stdout);
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    child.kill('SIGTERM');
    const { code, signal } = await exited;
    t.is(signal, null, 'not killed by the signal');
    t.is(code, 0, stdout);
    t.true(stdout.includes('"signal":"SIGTERM"'));
    t.true(stdout.includes('"msg":"stopped"'), 'the shutdown ran to its end');
  });
}
