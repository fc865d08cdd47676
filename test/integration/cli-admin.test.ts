import test from 'ava';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, runCli } from '../helpers/cli.js';
import { keetaIngressSetup } from '../helpers/ingress-setup.js';
import { freePort } from '../helpers/redis-topology.js';

const ADMIN_TOKEN = 'admin-token-for-cli-test-7f3a';

test('--version prints the package version; -h and --help print the general usage', async (t) => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const v = await runCli(['--version']);
  t.is(v.code, 0);
  t.is(v.stdout, `countersign ${pkg.version}\n`);
  for (const flag of ['-h', '--help']) {
    const h = await runCli([flag]);
    t.is(h.code, 0, flag);
    for (const c of ['serve', 'check-config', 'sign', 'admin', 'sim']) t.regex(h.stdout, new RegExp(`^  ${c} `, 'm'));
  }
});

test('every command explains its own options on --help and -h', async (t) => {
  const sign = await runCli(['sign', '--help']);
  t.is(sign.code, 0);
  t.regex(sign.stdout, /^usage: countersign sign /);
  t.regex(sign.stdout, /--merchant ID\s+read that merchant's access token from the configured token store/);
  t.regex(sign.stdout, /KeySecure upstreams have no request\s+signature/);
  const sim = await runCli(['sim', '--help']);
  t.is(sim.code, 0);
  t.is(sim.stderr, '');
  for (const o of ['--host ADDR', '--json', '--app-id ID', '--port N']) t.true(sim.stdout.includes(`  ${o}`), o);
  t.is((await runCli(['sim', 'keeta', '-h'])).stdout, sim.stdout);
  const admin = await runCli(['admin', 'tokens', '-h']);
  t.is(admin.code, 0);
  for (const o of ['--admin URL', '--token-file FILE', 'COUNTERSIGN_ADMIN_TOKEN', 'import UPSTREAM MERCHANT --file PAIR.json']) t.true(admin.stdout.includes(o), o);
  const check = await runCli(['check-config', '-h']);
  t.regex(check.stdout, /^usage: countersign check-config --config FILE/);
  t.regex((await runCli(['help', 'sign'])).stdout, /^usage: countersign sign /);
});

test('admin import, tokens, refresh, connect and forget against a running gateway; clear errors', async (t) => {
  const { sim, gw } = await keetaIngressSetup(t, { extraYaml: `admin:\n  token: ${ADMIN_TOKEN}\n` });
  const dir = mkdtempSync(join(tmpdir(), 'countersign-cli-admin-'));
  const tokenFile = join(dir, 'admin-token');
  writeFileSync(tokenFile, `${ADMIN_TOKEN}\n`);
  const pair = sim.control.addMerchant({ merchantId: 'brand-a', shopIds: ['101', '102'], issuedAtMs: Date.now() - 10 * 60_000 });
  gw.secrets.add(pair.accessToken).add(pair.refreshToken);
  const pairFile = join(dir, 'pair.json');
  writeFileSync(pairFile, JSON.stringify({ ...pair, shopIds: [101, 102] }));
  const admin = (args: string[], env: Record<string, string> = {}) => runCli(['admin', ...args], env);
  const outputs: string[] = [];
  const ok = async (args: string[], env: Record<string, string> = {}) => {
    const r = await admin(args, env);
    outputs.push(r.stdout, r.stderr);
    t.is(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  t.regex(await ok(['import', 'keeta', 'brand-a', '--file', pairFile, '--admin', gw.adminUrl, '--token-file', tokenFile]), /imported the pair of keeta\/brand-a/);

  // The token from the environment; the admin URL from the config's listen.admin.
  const configFile = join(dir, 'countersign.yaml');
  writeFileSync(configFile, `listen:\n  admin: ${new URL(gw.adminUrl).host}\nupstreams: {}\n`);
  const table = await ok(['tokens', '--config', configFile], { COUNTERSIGN_ADMIN_TOKEN: ADMIN_TOKEN });
  t.regex(table, /^UPSTREAM\s+TYPE\s+MERCHANT\s+STATE\s+EXPIRES/);
  t.regex(table, /^keeta\s+keeta\s+brand-a\s+valid\s+\d{4}-\d\d-\d\dT\S+\s+\S+\s+2\b/m);
  const before = JSON.parse(await ok(['tokens', '--json'], { COUNTERSIGN_CONFIG: configFile, COUNTERSIGN_ADMIN_TOKEN: ADMIN_TOKEN })) as {
    upstreams: { name: string; merchants: { merchant: string; expiresAt: string }[] }[];
  };
  const expiresBefore = before.upstreams[0]!.merchants[0]!.expiresAt;

  await new Promise((r) => setTimeout(r, 1100));
  const refreshed = await ok(['refresh', 'keeta', 'brand-a', '--admin', gw.adminUrl, '--token-file', tokenFile]);
  const [, expiresAfter] = /the new token expires at (\S+)/.exec(refreshed) ?? [];
  t.truthy(expiresAfter);
  t.true(Date.parse(expiresAfter!) > Date.parse(expiresBefore), 'the refresh moved the expiry');

  const link = await ok(['connect', 'keeta', '--admin', gw.adminUrl, '--token-file', tokenFile]);
  const url = /^(http\S+)$/m.exec(link)?.[1];
  t.truthy(url);
  t.true(url!.startsWith(sim.authorizeUrl), 'the link leads to the authorize page');
  const state = new URL(url!).searchParams.get('state');
  t.truthy(state);

  t.regex(await ok(['forget', 'keeta', 'brand-a', '--admin', gw.adminUrl, '--token-file', tokenFile]), /forgot keeta\/brand-a/);
  const empty = await ok(['tokens', '--admin', gw.adminUrl, '--json', '--token-file', tokenFile]);
  t.deepEqual((JSON.parse(empty) as typeof before).upstreams[0]!.merchants, []);

  // Unknown merchant: the API's message, exit 1.
  const unknown = await admin(['refresh', 'keeta', 'nobody', '--admin', gw.adminUrl, '--token-file', tokenFile]);
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /^error: no merchant "nobody" of keeta \(NOT_FOUND\)/);
  // A refused token, and none at all.
  const refused = await admin(['tokens', '--admin', gw.adminUrl], { COUNTERSIGN_ADMIN_TOKEN: 'not-the-admin-token-000' });
  t.is(refused.code, 1);
  t.regex(refused.stderr, /refused the admin token \(401\); check --token-file or COUNTERSIGN_ADMIN_TOKEN/);
  const none = await admin(['tokens', '--admin', gw.adminUrl], { COUNTERSIGN_ADMIN_TOKEN: '' });
  t.regex(none.stderr, /requires the admin token \(401\)/);
  // Unreachable: nothing listens on a free port.
  const port = await freePort();
  const down = await admin(['tokens', '--admin', `http://127.0.0.1:${port}`]);
  t.is(down.code, 1);
  t.regex(down.stderr, new RegExp(`cannot reach the gateway's admin listener at http://127.0.0.1:${port} \\(connection refused\\)`));
  // Bad usage: exit 2.
  const usage = await admin(['forget', 'keeta']);
  t.is(usage.code, 2);
  t.regex(usage.stderr, /usage: countersign admin forget UPSTREAM MERCHANT/);

  const printed = outputs.join('\n');
  for (const s of [pair.accessToken, pair.refreshToken, ADMIN_TOKEN, ...[...gw.secrets].filter((x) => x.length >= 8)]) t.false(printed.includes(s), 'a secret was printed');
  // The link's state is the one thing connect prints that is not the API's own secret to keep: it is the link.
  t.true(printed.includes(state!));
});
