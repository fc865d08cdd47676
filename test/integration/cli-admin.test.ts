import test from 'ava';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdminCliError, AdminUsageError, runAdminCli } from '../../src/cli/admin.js';
import { helpFor, USAGE } from '../../src/cli/help.js';
import { ROOT, runCli } from '../helpers/cli.js';
import { keetaIngressSetup } from '../helpers/ingress-setup.js';
import { freePort } from '../helpers/redis-topology.js';

const ADMIN_TOKEN = 'admin-token-for-cli-test-7f3a';

test('--version prints the package version; -h and --help print the general usage', async (t) => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const v = await runCli(['--version']);
  t.is(v.code, 0);
  t.is(v.stdout, `countersign ${pkg.version}\n`);
  const h = await runCli(['-h']);
  t.is(h.code, 0);
  t.is(h.stdout, `${USAGE}\n`);
  for (const c of ['serve', 'check-config', 'sign', 'admin', 'sim']) t.regex(USAGE, new RegExp(`^  ${c} `, 'm'));
  t.regex(USAGE, /^  -h, --help /m);
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
  t.is(sim.stdout, `${helpFor('sim')}\n`);
  for (const o of ['--host ADDR', '--json', '--app-id ID', '--port N']) t.true(sim.stdout.includes(`  ${o}`), o);
  const admin = helpFor('admin');
  for (const o of ['--admin URL', '--token-file FILE', 'COUNTERSIGN_ADMIN_TOKEN', 'import UPSTREAM MERCHANT --file PAIR.json']) t.true(admin.includes(o), o);
  t.regex(helpFor('check-config'), /^usage: countersign check-config --config FILE/);
  t.regex(helpFor('serve'), /^usage: countersign \[serve\] --config FILE/);
  t.is(helpFor('no-such-command'), USAGE);
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
  const outputs: string[] = [];
  /** The admin command in this process (the spawned CLI is checked below for its exit codes). */
  const ok = async (args: string[], env: Record<string, string> = {}) => {
    let out = '';
    await runAdminCli(args, { env, out: (text) => (out += text) });
    outputs.push(out);
    return out;
  };
  const fails = async (args: string[], env: Record<string, string>, type: typeof AdminCliError | typeof AdminUsageError, message: RegExp) => {
    const err = await t.throwsAsync(runAdminCli(args, { env, out: (text) => outputs.push(text) }), { instanceOf: type, message });
    outputs.push(err?.message ?? '');
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

  t.regex(await ok(['forget', 'keeta', 'brand-a', '--admin', gw.adminUrl, '--token-file', tokenFile]), /forgot keeta\/brand-a/);
  const empty = await ok(['tokens', '--admin', gw.adminUrl, '--json', '--token-file', tokenFile]);
  t.deepEqual((JSON.parse(empty) as typeof before).upstreams[0]!.merchants, []);

  await fails(['refresh', 'keeta', 'nobody', '--admin', gw.adminUrl, '--token-file', tokenFile], {}, AdminCliError, /^no merchant "nobody" of keeta \(NOT_FOUND\)/);
  await fails(['tokens', '--admin', gw.adminUrl], {}, AdminCliError, /requires the admin token \(401\)/);
  await fails(['forget', 'keeta'], {}, AdminUsageError, /usage: countersign admin forget UPSTREAM MERCHANT/);
  const port = await freePort();
  await fails(['tokens', '--admin', `http://127.0.0.1:${port}`], {}, AdminCliError, new RegExp(`cannot reach the gateway's admin listener at http://127.0.0.1:${port} \\(connection refused\\)`));

  // The command itself: a refused token is one line and exit 1, bad usage exit 2.
  const refused = await runCli(['admin', 'tokens', '--admin', gw.adminUrl], { COUNTERSIGN_ADMIN_TOKEN: 'not-the-admin-token-000' });
  t.is(refused.code, 1);
  t.is(refused.stderr, `error: the gateway at ${gw.adminUrl} refused the admin token (401); check --token-file or COUNTERSIGN_ADMIN_TOKEN\n`);
  const usage = await runCli(['admin', 'tokens', 'extra']);
  t.is(usage.code, 2);
  t.regex(usage.stderr, /usage: countersign admin tokens \[--json\]/);
  outputs.push(refused.stdout, refused.stderr, usage.stdout, usage.stderr);

  const printed = outputs.join('\n');
  for (const s of [pair.accessToken, pair.refreshToken, ADMIN_TOKEN, ...[...gw.secrets].filter((x) => x.length >= 8)]) t.false(printed.includes(s), 'a secret was printed');
});
