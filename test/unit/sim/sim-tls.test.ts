import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import test from 'ava';
import { Agent, request } from 'undici';
import { runSimCli, SimUsageError } from '../../../src/sim/index.js';
import { createTestPki } from '../../helpers/test-certs.js';

/** `countersign sim keeta|keysecure --tls-cert F --tls-key F`: HTTPS with a test CA's certificate. */

const ROOT = new URL('../../../', import.meta.url);
const SCRIPT = `import { runSimCli } from './src/sim/index.ts'; await runSimCli(process.argv.slice(1));`;

test('sim keysecure --tls-cert/--tls-key serves HTTPS that a client trusting the test CA reaches', async (t) => {
  const pki = createTestPki();
  t.teardown(() => pki.remove());
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', SCRIPT, 'keysecure', '--json', '--tls-cert', pki.server.cert, '--tls-key', pki.server.key], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  const [first] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
  const info = JSON.parse(first) as { baseUrl: string };
  t.regex(info.baseUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
  const agent = new Agent({ connect: { ca: pki.ca.certPem } });
  t.teardown(() => agent.close());
  const res = await request(`${info.baseUrl}/_sim/counters`, { dispatcher: agent });
  t.is(res.statusCode, 200);
  await res.body.text();
  // Without the test CA the certificate is refused.
  await t.throwsAsync(request(`${info.baseUrl}/_sim/counters`, { dispatcher: new Agent() }), { message: /certificate|self.signed|verify/i });
});

test('--tls-cert without --tls-key, or an unreadable file, is a usage error', async (t) => {
  await t.throwsAsync(runSimCli(['keeta', '--tls-cert', 'x.crt']), { instanceOf: SimUsageError, message: /--tls-cert and --tls-key go together/ });
  await t.throwsAsync(runSimCli(['keeta', '--tls-cert', '/nonexistent.crt', '--tls-key', '/nonexistent.key']), { instanceOf: SimUsageError, message: /--tls-cert: cannot read \/nonexistent\.crt \(ENOENT\)/ });
});
