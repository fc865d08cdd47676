import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import test from 'ava';
import { runSimCli, SimUsageError } from '../../../src/sim/index.js';
import { keetaCall } from './keeta-client.js';

const ROOT = new URL('../../../', import.meta.url);
const SCRIPT = `import { runSimCli } from './src/sim/index.ts'; await runSimCli(process.argv.slice(1));`;

/** Runs `countersign sim ...` in a child process; resolves with its first stdout line. */
async function runSim(args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', SCRIPT, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const lines = createInterface({ input: child.stdout });
  const [first] = (await Promise.race([
    once(lines, 'line'),
    once(child, 'exit').then(() => {
      throw new Error(`simulator exited early: ${stderr}`);
    }),
  ])) as [string];
  return { child, info: JSON.parse(first) as Record<string, any>, stderr: () => stderr };
}

test('sim keeta: prints base URL and seeded credentials, serves, stops on SIGTERM', async (t) => {
  const { child, info } = await runSim(['keeta', '--port', '0', '--json', '--app-secret', 'cli-secret']);
  t.teardown(() => child.kill('SIGKILL'));
  t.is(info['simulator'], 'keeta');
  t.regex(info['baseUrl'], /^http:\/\/127\.0\.0\.1:\d+\/api\/open$/);
  t.is(info['appId'], '3340612437');
  t.is(info['appSecret'], 'cli-secret');
  t.deepEqual(info['merchant']['shopIds'], ['466663', '9007199254740993']);
  const res = await keetaCall(info['baseUrl'], '/order/get', {
    body: '{"orderViewId":1,"shopId":9007199254740993}',
    accessToken: info['merchant']['accessToken'],
    secret: 'cli-secret',
  });
  t.is(res.json['code'], 0, res.text);
  child.kill('SIGTERM');
  const [code] = await once(child, 'exit');
  t.is(code, 0);
});

test('sim keysecure: prints base URL and Api-Key, token endpoint works, stops on SIGINT', async (t) => {
  const { child, info } = await runSim(['sim', 'keysecure', '--json', '--api-key', 'cli-key']);
  t.teardown(() => child.kill('SIGKILL'));
  t.is(info['simulator'], 'keysecure');
  t.regex(info['baseUrl'], /^http:\/\/127\.0\.0\.1:\d+$/);
  t.is(info['apiKey'], 'cli-key');
  const res = await fetch(`${info['baseUrl']}/open-api/v1/merchant/token`, { headers: { 'Api-Key': 'cli-key', Timestamp: String(Date.now() - 500) } });
  t.like(await res.json(), { code: 0, msg: 'Success' });
  child.kill('SIGINT');
  const [code] = await once(child, 'exit');
  t.is(code, 0);
});

test('bad usage throws SimUsageError with the usage text', async (t) => {
  await t.throwsAsync(runSimCli(['nope']), { instanceOf: SimUsageError, message: /usage:/ });
  await t.throwsAsync(runSimCli(['keeta', '--port', 'abc']), { instanceOf: SimUsageError });
  await t.throwsAsync(runSimCli(['keeta', '--bogus']), { instanceOf: SimUsageError });
  await t.throwsAsync(runSimCli([]), { instanceOf: SimUsageError });
});

test('bad seeded shops close the simulator again and throw SimUsageError', async (t) => {
  await t.throwsAsync(runSimCli(['keeta', '--shops', 'abc']), { instanceOf: SimUsageError, message: /--shops/ });
});

test('sim keeta: --redirect-uri, --demo-accounts, --oauth-delivery and --event1-url configure the authorize page', async (t) => {
  const { child, info } = await runSim(['keeta', '--json', '--redirect-uri', 'http://127.0.0.1:9/cb', '--redirect-uri', 'http://127.0.0.1:9/cb2', '--demo-accounts', '--oauth-delivery', 'both', '--event1-url', 'http://127.0.0.1:9/e1']);
  t.teardown(() => child.kill('SIGKILL'));
  t.regex(info['authorizeUrl'], /^http:\/\/127\.0\.0\.1:\d+\/m\/web\/openapi\/authorize$/);
  t.deepEqual(info['accounts'], [
    { merchantId: 'demo-chain', brandName: 'Sim Chain Burgers', shopCount: 450 },
    { merchantId: 'demo-store', brandName: 'Sim Corner Cafe', shopCount: 1 },
  ]);
  for (const uri of ['http://127.0.0.1:9/cb', 'http://127.0.0.1:9/cb2']) {
    const page = await fetch(`${info['authorizeUrl']}?responseType=authorization_code&appId=3340612437&redirectUri=${encodeURIComponent(uri)}&state=s&scope=all`);
    t.is(page.status, 200);
    t.regex(await page.text(), /Sim Chain Burgers/);
  }
  const root = info['baseUrl'].slice(0, -'/api/open'.length);
  const counters = await fetch(`${root}/_sim/counters`);
  t.is(counters.status, 200);
  // 'both' with the Event-1 URL set: authorizing pushes Event 1 (to a closed port here) before redirecting.
  const res = await fetch(info['authorizeUrl'], {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'responseType=authorization_code&appId=3340612437&redirectUri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&state=s&scope=all&merchantId=demo-store&decision=authorize',
  });
  t.is(res.status, 302);
  const pushes = ((await (await fetch(`${root}/_sim/counters`)).json()) as { event1Pushes: Array<{ url: string; answers: Array<{ status: number }> }> }).event1Pushes;
  t.is(pushes.length, 1);
  t.true(pushes[0]!.url.startsWith('http://127.0.0.1:9/e1?appId=3340612437&code='));
  t.is(pushes[0]!.answers[0]!.status, 0);
  child.kill('SIGTERM');
  await once(child, 'exit');
});

test('sim keysecure: --callback-app-id is printed; bad keeta options are usage errors', async (t) => {
  const { child, info } = await runSim(['keysecure', '--json', '--callback-app-id', 'cb-app', '--callback-secret', 'cb-s']);
  t.teardown(() => child.kill('SIGKILL'));
  t.is(info['callbackAppId'], 'cb-app');
  child.kill('SIGTERM');
  await once(child, 'exit');
  await t.throwsAsync(runSimCli(['keeta', '--oauth-delivery', 'fax']), { instanceOf: SimUsageError, message: /oauth delivery/ });
  await t.throwsAsync(runSimCli(['keeta', '--webhook-recipe', 'md5']), { instanceOf: SimUsageError, message: /recipe/ });
  await t.throwsAsync(runSimCli(['keeta', '--redirect-uri', 'nope']), { instanceOf: SimUsageError });
  await t.throwsAsync(runSimCli(['keeta', '--event1-url', 'nope']), { instanceOf: SimUsageError, message: /--event1-url/ });
});
