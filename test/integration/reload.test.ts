/**
 * Acceptance for config reload: a spawned `countersign serve` whose config and secrets are
 * mounted the way Kubernetes mounts a ConfigMap or Secret (dir/..2026_x/{files},
 * dir/..data -> ..2026_x, dir/name -> ..data/name), rotated by swapping `..data` under steady
 * load; SIGHUP; and a change that needs a restart.
 */
import test, { type ExecutionContext } from 'ava';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keetaSignText, KEETA_SIM_CODES, startKeetaSim, type KeetaSim } from '../../src/sim/index.js';
import { spawnCli } from '../helpers/cli.js';
import { metricValue } from '../helpers/gateway.js';
import { importPair, KEETA_APP_ID } from '../helpers/keeta-setup.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<number> {
  const started = Date.now();
  while (!(await cond())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
  return Date.now() - started;
}

/**
 * A directory written as the kubelet's atomic writer writes a ConfigMap/Secret volume: each
 * version in its own `..<timestamp>` folder, `..data` swapped to it by rename, and each
 * visible name a symlink through `..data`.
 */
class ProjectedVolume {
  #version = 0;
  #current: string | undefined;
  #names = new Set<string>();
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  publish(files: Record<string, string>): void {
    const version = `..2026_12_01_10_00_${String(++this.#version).padStart(2, '0')}.${process.pid}`;
    mkdirSync(join(this.dir, version));
    for (const [name, content] of Object.entries(files)) writeFileSync(join(this.dir, version, name), content);
    symlinkSync(version, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    for (const name of Object.keys(files)) if (!existsSync(this.path(name))) symlinkSync(join('..data', name), this.path(name));
    for (const name of this.#names) if (!Object.hasOwn(files, name)) unlinkSync(this.path(name));
    if (this.#current) rmSync(join(this.dir, this.#current), { recursive: true });
    this.#current = version;
    this.#names = new Set(Object.keys(files));
  }
}

interface Gateway {
  child: ChildProcess;
  proxy: string;
  admin: string;
  lines(): Array<Record<string, unknown> & { msg: string }>;
  output(): string;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
}

async function spawnGateway(t: ExecutionContext, configFile: string): Promise<Gateway> {
  const child = spawnCli(['serve', '--config', configFile], { LOG_LEVEL: 'info' });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  t.teardown(async () => {
    child.kill('SIGTERM');
    await exited;
  });
  const parse = () =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown> & { msg: string });
  // Generous: starting tsx takes long on a loaded machine.
  await waitFor(`the gateway to listen:\n${out}`, () => parse().some((l) => l.msg === 'countersign listening'), 90_000);
  const listening = parse().find((l) => l.msg === 'countersign listening') as unknown as { proxy: string; admin: string };
  return {
    child,
    proxy: listening.proxy,
    admin: listening.admin,
    lines: parse,
    output: () => out,
    async metric(name, labels = {}) {
      return metricValue(await (await fetch(`${listening.admin}/metrics`)).text(), name, labels);
    },
  };
}

/** Steady load from one caller: `workers` loops, each one request at a time over keep-alive. */
function steadyLoad(url: string, body: string, firstToken: string, workers = 4) {
  let token = firstToken;
  let stopped = false;
  const results = { ok: 0, failed: [] as string[] };
  const loops = Array.from({ length: workers }, async () => {
    while (!stopped) {
      const used = token;
      try {
        const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${used}`, 'content-type': 'application/json' }, body });
        const text = await res.text();
        if (res.status === 200 && (JSON.parse(text) as { code?: number }).code === 0) results.ok++;
        else results.failed.push(`${res.status} ${text.slice(0, 160)}`);
      } catch (err) {
        results.failed.push(`network: ${(err as Error).message}`);
      }
      await sleep(5);
    }
  });
  return {
    results,
    useToken(next: string) {
      token = next;
    },
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

/** Whether the simulator's request was signed with `secret`. */
function signedWith(secret: string, req: { path: string; headers: Record<string, string>; rawBody: string }): boolean {
  const sig = /"sig":"([0-9a-f]+)"/.exec(req.rawBody)?.[1];
  return sig !== undefined && keetaSignText(`http://${req.headers['host']}${req.path}`, req.rawBody, secret) === sig;
}

function keetaConfig(opts: { sim: KeetaSim; secrets: ProjectedVolume; callerFiles: string[]; extra?: string }): string {
  return `listen:
  proxy: 127.0.0.1:0
  admin: 127.0.0.1:0
store:
  type: memory
callers:
${opts.callerFiles.map((f) => `  - name: order-service\n    tokenFile: ${opts.secrets.path(f)}\n    allow: ["keeta:/order/*"]\n`).join('')}upstreams:
  keeta:
    type: keeta
    baseUrl: ${opts.sim.baseUrl}
    appId: ${KEETA_APP_ID}
    appSecretFile: ${opts.secrets.path('keeta-app-secret')}
    tokenErrorCodes: [${KEETA_SIM_CODES.ACCESS_TOKEN_INVALID}]
${opts.extra ?? ''}`;
}

test.serial('rotating a caller token and the Keeta appSecret by swapping mounted volumes under load: no failed request, new values in use within seconds, an invalid config refused', async (t) => {
  t.timeout(240_000);
  const S1 = 'keeta-app-secret-one-4c1d';
  const S2 = 'keeta-app-secret-two-8e2f';
  const OLD = 'order-token-old-7a1b2c3d4e';
  const NEW = 'order-token-new-9f8e7d6c5b';
  const sim = await startKeetaSim({ appId: KEETA_APP_ID, appSecret: S1 });
  t.teardown(() => sim.close());
  const root = mkdtempSync(join(tmpdir(), 'cs-reload-k8s-'));
  const secrets = new ProjectedVolume(join(root, 'secrets'));
  const configMap = new ProjectedVolume(join(root, 'config'));
  secrets.publish({ 'order-token-1': OLD, 'keeta-app-secret': `${S1}\n` });
  configMap.publish({ 'countersign.yaml': keetaConfig({ sim, secrets, callerFiles: ['order-token-1'] }) });

  const gw = await spawnGateway(t, configMap.path('countersign.yaml'));
  const pair = sim.control.addMerchant({ merchantId: 'brand', shopIds: ['466663'], issuedAtMs: Date.now() - 10 * 60_000 });
  await importPair(gw.admin, 'keeta', 'brand', pair, ['466663']);
  const successes = () => gw.metric('countersign_config_reloads_total', { result: 'success' });
  const load = steadyLoad(`${gw.proxy}/keeta/order/get`, '{"orderViewId":1,"shopId":466663}', OLD);
  await waitFor('some load', () => load.results.ok >= 20);

  // 1. The Secret gains the next caller token and the new appSecret (Keeta accepts both for now).
  sim.control.setAppSecrets([S1, S2]);
  const before = sim.control.counters().requests.length;
  secrets.publish({ 'order-token-1': OLD, 'order-token-2': NEW, 'keeta-app-secret': `${S2}\n` });
  const secretMs = await waitFor('the secret reload', async () => (await successes()) === 1);
  // Proof that S2 signs: the simulator's last 20 requests all verify with it, none with S1.
  await waitFor('20 requests signed with the new secret', () => {
    const recent = sim.control.counters().requests.slice(before).slice(-20);
    return recent.length === 20 && recent.every((r) => signedWith(S2, r) && !signedWith(S1, r));
  });
  sim.control.setAppSecrets([S2]); // the rotation window closes upstream: S1 no longer works
  const okAtClose = load.results.ok;
  await waitFor('load after the old secret stopped working', () => load.results.ok >= okAtClose + 20);
  t.is(sim.control.counters().tokenCalls, 0, 'the reload kept the token: no refresh');

  // 2. The ConfigMap lists both tokens for the caller: old and new accepted.
  configMap.publish({ 'countersign.yaml': keetaConfig({ sim, secrets, callerFiles: ['order-token-1', 'order-token-2'] }) });
  const overlapMs = await waitFor('the overlap config', async () => (await successes()) === 2);
  load.useToken(NEW);
  const okAtSwitch = load.results.ok;
  await waitFor('load with the new caller token', () => load.results.ok >= okAtSwitch + 20);
  const oldDuringOverlap = await fetch(`${gw.proxy}/keeta/order/get`, { method: 'POST', headers: { authorization: `Bearer ${OLD}` }, body: '{"orderViewId":1,"shopId":466663}' });
  t.is(oldDuringOverlap.status, 200, 'the old token still works during the overlap');

  // 3. The old token removed from the config, then from the Secret.
  configMap.publish({ 'countersign.yaml': keetaConfig({ sim, secrets, callerFiles: ['order-token-2'] }) });
  const removeMs = await waitFor('the config without the old token', async () => (await successes()) === 3);
  const oldAfter = await fetch(`${gw.proxy}/keeta/order/get`, { method: 'POST', headers: { authorization: `Bearer ${OLD}` }, body: '{"orderViewId":1,"shopId":466663}' });
  t.is(oldAfter.status, 401);
  secrets.publish({ 'order-token-2': NEW, 'keeta-app-secret': `${S2}\n` });
  await waitFor('the secret without the old token', async () => (await successes()) === 4);

  // 4. An invalid config: refused, counted, logged by path; the running config stays.
  configMap.publish({
    'countersign.yaml': keetaConfig({ sim, secrets, callerFiles: ['order-token-2', 'order-token-1'], extra: '    timeout: soon\n' }),
  });
  await waitFor('the refused reload', async () => (await gw.metric('countersign_config_reloads_total', { result: 'failure' })) === 1);
  t.is(await gw.metric('countersign_config_last_reload_successful'), 0);
  await waitFor('the refusal in the log', () => gw.lines().some((l) => l.msg.startsWith('config reload refused')));
  const refused = gw.lines().find((l) => l.msg.startsWith('config reload refused'));
  t.like(refused, { level: 'error', trigger: 'file' });
  const problems = (refused as unknown as { problems: string[] }).problems;
  t.true(problems.some((p) => p.startsWith('callers[1].tokenFile: cannot read')), problems.join('\n'));
  t.true(problems.includes('upstreams.keeta.timeout: "soon" is not a duration (use 250ms, 10s, 5m, 2h, 4d)'), problems.join('\n'));
  const okAtRefusal = load.results.ok;
  await waitFor('load after the refused reload', () => load.results.ok >= okAtRefusal + 20);

  await load.stop();
  t.deepEqual(load.results.failed, [], 'no request failed');
  t.true(load.results.ok > 100, `${load.results.ok} requests`);
  t.is(sim.control.counters().tokenCalls, 0);
  t.is(await successes(), 4);
  t.log(`${load.results.ok} requests, 0 failed; reload visible after ${secretMs} ms (Secret swap), ${overlapMs} ms and ${removeMs} ms (ConfigMap swaps)`);
  // A few hundred ms when the machine is quiet; the bound leaves room for a loaded one.
  for (const ms of [secretMs, overlapMs, removeMs]) t.true(ms < 20_000, `reloaded within seconds (${ms} ms)`);
  const reloaded = gw.lines().filter((l) => l.msg === 'config reloaded');
  t.deepEqual(reloaded[0]?.changed, ['upstreams.keeta.appSecret']);
  t.deepEqual(reloaded[1]?.changed, ['callers']);
  const output = gw.output();
  for (const secret of [S1, S2, OLD, NEW]) t.false(output.includes(secret), 'no secret in the log');
});

test.serial('SIGHUP reloads a change the file watch cannot see (an in-place edit behind a symlink to another folder)', async (t) => {
  t.timeout(180_000);
  const sim = await startKeetaSim({ appId: KEETA_APP_ID, appSecret: 'sighup-app-secret-1234' });
  t.teardown(() => sim.close());
  const root = mkdtempSync(join(tmpdir(), 'cs-reload-hup-'));
  mkdirSync(join(root, 'real'));
  mkdirSync(join(root, 'etc'));
  const real = join(root, 'real', 'countersign.yaml');
  const config = (token: string) =>
    `listen:\n  proxy: 127.0.0.1:0\n  admin: 127.0.0.1:0\nstore:\n  type: memory\ncallers:\n  - name: svc\n    token: ${token}\n    allow: ["keeta:*"]\nupstreams:\n  keeta:\n    type: keeta\n    baseUrl: ${sim.baseUrl}\n    appId: ${KEETA_APP_ID}\n    appSecret: sighup-app-secret-1234\n`;
  writeFileSync(real, config('caller-token-before-hup'));
  symlinkSync(real, join(root, 'etc', 'countersign.yaml'));
  const gw = await spawnGateway(t, join(root, 'etc', 'countersign.yaml'));
  const call = async (token: string) =>
    (await fetch(`${gw.proxy}/keeta/base/callback/url/set`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: '{"eventId":1001,"url":"https://x.test/h","isTest":1}' })).status;
  t.is(await call('caller-token-before-hup'), 200);

  writeFileSync(real, config('caller-token-after-hup1'));
  await sleep(1500);
  t.is(await gw.metric('countersign_config_reloads_total', { result: 'success' }), 0, 'the watch does not see this edit');
  t.is(await call('caller-token-after-hup1'), 401);

  gw.child.kill('SIGHUP');
  await waitFor('the SIGHUP reload', async () => (await gw.metric('countersign_config_reloads_total', { result: 'success' })) === 1);
  t.is(await call('caller-token-after-hup1'), 200);
  t.is(await call('caller-token-before-hup'), 401);
  await waitFor('the reload in the log', () => gw.lines().some((l) => l.msg === 'config reloaded'));
  t.like(gw.lines().find((l) => l.msg === 'config reloaded'), { trigger: 'SIGHUP', changed: ['callers'] });
});

test.serial('a change that needs a restart is logged once with its keys and not applied; the rest of the change applies', async (t) => {
  t.timeout(180_000);
  const sim = await startKeetaSim({ appId: KEETA_APP_ID, appSecret: 'restart-app-secret-1234' });
  t.teardown(() => sim.close());
  const dir = mkdtempSync(join(tmpdir(), 'cs-reload-restart-'));
  const file = join(dir, 'countersign.yaml');
  const config = (o: { proxy: string; store: string; timeout: string; refreshBefore: string; extra?: string }) =>
    `listen:\n  proxy: ${o.proxy}\n  admin: 127.0.0.1:0\nstore:\n${o.store}\nupstreams:\n  keeta:\n    type: keeta\n    baseUrl: ${sim.baseUrl}\n    appId: ${KEETA_APP_ID}\n    appSecret: restart-app-secret-1234\n    timeout: ${o.timeout}\n    refreshBefore: ${o.refreshBefore}\n${o.extra ?? ''}`;
  writeFileSync(file, config({ proxy: '127.0.0.1:0', store: '  type: memory', timeout: '10s', refreshBefore: '4d' }));
  const gw = await spawnGateway(t, file);
  const callbackSet = (base: string, upstream = 'keeta') =>
    fetch(`${base}/${upstream}/base/callback/url/set`, { method: 'POST', body: '{"eventId":1001,"url":"https://x.test/h","isTest":1}' });

  writeFileSync(
    file,
    config({
      proxy: '127.0.0.1:1',
      store: `  type: file\n  path: ${join(dir, 'tokens.json')}`,
      timeout: '7s',
      refreshBefore: '2d',
      extra: '  other:\n    type: keysecure\n    baseUrl: http://127.0.0.1:9\n    apiKey: other-api-key-1234\n',
    }),
  );
  await waitFor('the reload', async () => (await gw.metric('countersign_config_reloads_total', { result: 'success' })) === 1);
  await waitFor('the restart warning', () => gw.lines().some((l) => l.msg.startsWith('config changes that need a restart')));
  const warn = gw.lines().filter((l) => l.msg.startsWith('config changes that need a restart'));
  t.is(warn.length, 1);
  t.like(warn[0], { level: 'warn', restartOnly: ['listen.proxy', 'store', 'upstreams.keeta.refreshBefore', 'upstreams.other'] });
  t.like(gw.lines().find((l) => l.msg === 'config reloaded'), { changed: ['upstreams.keeta.timeout'] });
  // Still on the old socket and store; the new upstream does not exist until a restart.
  t.is((await callbackSet(gw.proxy)).status, 200);
  t.is((await callbackSet(gw.proxy, 'other')).status, 404);
  t.false(existsSync(join(dir, 'tokens.json')), 'no file store was opened');
  t.is(await gw.metric('countersign_config_last_reload_successful'), 1);
});
