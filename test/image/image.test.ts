import test from 'ava';
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { startKeetaSim, startKeySecureSim } from '../../src/sim/index.js';
import { ROOT } from '../helpers/cli.js';
import { importPair, KEETA_APP_ID, KEETA_SECRET } from '../helpers/keeta-setup.js';
import { KS_API_KEY, KS_API_SECRET } from '../helpers/keysecure-setup.js';

/**
 * The built container image, run by a real Docker engine the way the chart runs it: read-only
 * root filesystem, every capability dropped, no new privileges, the image's own non-root user,
 * the config directory (config.yaml and secrets/) mounted read-only and a volume for the file
 * store. The simulators run in this process on the host; the container shares the host network.
 *
 * Run by scripts/build-image.sh (which builds the image and exports COUNTERSIGN_IMAGE and
 * COUNTERSIGN_BASE_IMAGE): `scripts/build-image.sh -- npm run test:image`. Not part of `npm test`.
 * Without a Docker engine or the image, every test here fails; none is skipped.
 */

const exec = promisify(execFile);
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; license: string; bin: { countersign: string }; devDependencies: Record<string, string> };
const IMAGE = process.env.COUNTERSIGN_IMAGE ?? `countersign:${pkg.version}`;
const DEFAULT_BASE = /^ARG NODE_IMAGE=(\S+)$/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))![1]!;
const BASE = process.env.COUNTERSIGN_BASE_IMAGE ?? DEFAULT_BASE;
/** What the image may add to its base. */
const SIZE_BUDGET = 120 * 1000 * 1000;

/** How the chart runs the container (helm/countersign/values.yaml). */
const values = parse(readFileSync(join(ROOT, 'helm/countersign/values.yaml'), 'utf8')) as {
  securityContext: { runAsUser: number; runAsGroup: number; readOnlyRootFilesystem: boolean; allowPrivilegeEscalation: boolean; capabilities: { drop: string[] } };
  terminationGracePeriodSeconds: number;
};
const sc = values.securityContext;
const CHART_RUN_FLAGS = [
  ...(sc.readOnlyRootFilesystem ? ['--read-only'] : []),
  ...sc.capabilities.drop.flatMap((c) => ['--cap-drop', c]),
  ...(sc.allowPrivilegeEscalation ? [] : ['--security-opt', 'no-new-privileges']),
  '--network',
  'host',
];

async function docker(...args: string[]): Promise<string> {
  try {
    const { stdout } = await exec('docker', args, { maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const e = error as { code?: unknown; stderr?: string; message: string };
    if (e.code === 'ENOENT') throw new Error('docker is not installed: the image test needs a Docker engine (scripts/build-image.sh starts one)');
    throw new Error(`docker ${args.slice(0, 2).join(' ')} failed: ${(e.stderr ?? e.message).trim()}`);
  }
}

interface ImageInfo {
  Size: number;
  RootFS: { Layers: string[] };
  Config: { User: string; Entrypoint: string[]; Cmd: string[]; WorkingDir: string; Env: string[]; Volumes: Record<string, object>; Labels: Record<string, string> };
}

async function inspectImage(name: string): Promise<ImageInfo> {
  return (JSON.parse(await docker('image', 'inspect', name)) as ImageInfo[])[0]!;
}

/** Fails (never skips) with one line when there is no engine or no image. */
const ready = (async () => {
  await docker('version', '--format', '{{.Server.Version}}').catch((error: Error) => {
    throw new Error(`no Docker engine answers (${error.message}); run the image test through scripts/build-image.sh -- npm run test:image`);
  });
  return inspectImage(IMAGE).catch(() => {
    throw new Error(`image ${IMAGE} is missing; build it with scripts/build-image.sh`);
  });
})();
ready.catch(() => {});

test('the image runs node on the CLI as its own non-root user, serving the mounted config, with its OCI labels', async (t) => {
  const { Config: c } = await ready;
  t.is(c.User, `${sc.runAsUser}:${sc.runAsGroup}`, 'the image user is the one the chart runs as');
  // node runs the package's own CLI (package.json bin) from /app, as PID 1.
  t.deepEqual(c.Entrypoint, ['node', `/app/${pkg.bin.countersign}`]);
  t.deepEqual(c.Cmd, ['serve', '--config', '/etc/countersign/config.yaml']);
  t.is(c.WorkingDir, '/app');
  t.true(c.Env.includes('NODE_ENV=production'));
  t.deepEqual(Object.keys(c.Volumes), ['/var/lib/countersign']);
  t.like(c.Labels, {
    'org.opencontainers.image.title': 'countersign',
    'org.opencontainers.image.version': pkg.version,
    'org.opencontainers.image.licenses': pkg.license,
  });
  t.regex(c.Labels['org.opencontainers.image.description'] ?? '', /signing gateway/);
  // The chart's default tag is its appVersion: the version this image carries.
  const chart = parse(readFileSync(join(ROOT, 'helm/countersign/Chart.yaml'), 'utf8')) as { appVersion: string };
  t.is(chart.appVersion, c.Labels['org.opencontainers.image.version'] ?? '');
  if (process.env.COUNTERSIGN_IMAGE_SOURCE !== undefined) t.is(c.Labels['org.opencontainers.image.source'], process.env.COUNTERSIGN_IMAGE_SOURCE);
  else t.true('org.opencontainers.image.source' in c.Labels);
});

test('the image holds the production dependencies only and adds at most 120 MB to its base', async (t) => {
  const image = await ready;
  const base = await inspectImage(BASE);
  t.deepEqual(image.RootFS.Layers.slice(0, base.RootFS.Layers.length), base.RootFS.Layers, `${IMAGE} is not built on ${BASE}`);
  const added = image.Size - base.Size;
  t.log(`${IMAGE}: ${(image.Size / 1e6).toFixed(1)} MB, ${(added / 1e6).toFixed(1)} MB over ${BASE}`);
  t.true(added > 0 && added <= SIZE_BUDGET, `the image adds ${(added / 1e6).toFixed(1)} MB to its base`);

  // What /app holds, read inside the image by its own node.
  const listing = JSON.parse(
    await docker(
      'run', '--rm', ...CHART_RUN_FLAGS, '--entrypoint', 'node', IMAGE, '-e',
      `const fs = require('node:fs');
       const lock = JSON.parse(fs.readFileSync('/app/node_modules/.package-lock.json', 'utf8'));
       let ts = 'not found'; try { require.resolve('typescript', { paths: ['/app'] }); ts = 'resolved'; } catch {}
       const onDisk = [];
       const walk = (dir, rel) => {
         for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
           if (!e.isDirectory() || e.name === '.bin') continue;
           const names = e.name.startsWith('@') ? fs.readdirSync(dir + '/' + e.name).map((n) => e.name + '/' + n) : [e.name];
           for (const n of names) {
             onDisk.push(rel + n);
             if (fs.existsSync(dir + '/' + n + '/node_modules')) walk(dir + '/' + n + '/node_modules', rel + n + '/node_modules/');
           }
         }
       };
       walk('/app/node_modules', 'node_modules/');
       console.log(JSON.stringify({ app: fs.readdirSync('/app').sort(), packages: lock.packages, onDisk, ts }));`,
    ),
  ) as { app: string[]; packages: Record<string, { version?: string; dev?: boolean }>; onDisk: string[]; ts: string };
  t.deepEqual(listing.app, ['dist', 'grafana', 'node_modules', 'package-lock.json', 'package.json']);
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; version?: string }> };
  const production = Object.entries(lock.packages).filter(([path, p]) => path !== '' && !p.dev);
  t.deepEqual(Object.keys(listing.packages).sort(), production.map(([path]) => path).sort(), 'node_modules is exactly the lock file’s production tree');
  t.deepEqual(listing.onDisk.sort(), production.map(([path]) => path).sort(), 'the package folders on disk are exactly the lock file’s production tree');
  for (const [path, p] of production) t.is(listing.packages[path]!.version, p.version, path);
  for (const dev of Object.keys(pkg.devDependencies)) t.false(`node_modules/${dev}` in listing.packages, `dev dependency ${dev} is in the image`);
  t.is(listing.ts, 'not found');
});

/** A config directory as the chart mounts it: config.yaml and secrets/, readable by the image's group only. */
function configDir(t: { teardown(fn: () => void): void }, config: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'cs-image-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'secrets'), { mode: 0o755 });
  const files: Record<string, string> = { 'config.yaml': config, 'secrets/keeta-app-secret': `${KEETA_SECRET}\n`, 'secrets/keysecure-api-key': `${KS_API_KEY}\n` };
  const asRoot = process.getuid?.() === 0;
  for (const [name, text] of Object.entries(files)) {
    writeFileSync(join(dir, name), text);
    // The chart's projected volume: mode 0440 with fsGroup 10001. Without root, world-readable.
    if (asRoot) {
      chownSync(join(dir, name), 0, sc.runAsGroup);
      chmodSync(join(dir, name), 0o440);
    } else chmodSync(join(dir, name), 0o444);
  }
  return dir;
}

test.serial('check-config runs in the image, read-only and without capabilities, and prints no secret', async (t) => {
  await ready;
  const etc = configDir(
    t,
    `upstreams:
  keeta:
    type: keeta
    baseUrl: http://127.0.0.1:9
    appId: ${KEETA_APP_ID}
    appSecretFile: secrets/keeta-app-secret
  keysecure-hk:
    type: keysecure
    baseUrl: http://127.0.0.1:9
    apiKeyFile: secrets/keysecure-api-key
`,
  );
  const out = await docker('run', '--rm', ...CHART_RUN_FLAGS, '-v', `${etc}:/etc/countersign:ro`, IMAGE, 'check-config', '--config', '/etc/countersign/config.yaml');
  t.regex(out, /config OK/);
  t.false(out.includes(KEETA_SECRET) || out.includes(KS_API_KEY), 'a secret was printed');
});

test.serial('run as the chart runs it, the image turns ready, serves a signed Keeta call and a KeySecure call, keeps its tokens on the volume and exits 0 on docker stop', async (t) => {
  t.timeout(240_000);
  await ready;
  const keeta = await startKeetaSim({ appId: KEETA_APP_ID, appSecret: KEETA_SECRET });
  const keysecure = await startKeySecureSim({ apiKeys: [{ apiKey: KS_API_KEY, apiSecret: KS_API_SECRET }] });
  t.teardown(async () => {
    await keeta.close();
    await keysecure.close();
  });
  const etc = configDir(
    t,
    `listen:
  proxy: 127.0.0.1:0
  admin: 127.0.0.1:0
store:
  type: file
  path: /var/lib/countersign/tokens.json
upstreams:
  keeta:
    type: keeta
    baseUrl: ${keeta.baseUrl}
    appId: ${KEETA_APP_ID}
    appSecretFile: secrets/keeta-app-secret
  keysecure-hk:
    type: keysecure
    baseUrl: ${keysecure.baseUrl}
    apiKeyFile: secrets/keysecure-api-key
`,
  );
  const suffix = `${process.pid}-${Date.now()}`;
  const volume = `countersign-image-test-${suffix}`;
  const name = `countersign-image-test-${suffix}`;
  await docker('volume', 'create', volume);
  t.teardown(async () => {
    await docker('rm', '--force', name).catch(() => {});
    await docker('volume', 'rm', '--force', volume).catch(() => {});
  });
  // No --user: the image's own. LOG_LEVEL=info for the "listening" line.
  await docker('run', '--detach', '--name', name, ...CHART_RUN_FLAGS, '-e', 'LOG_LEVEL=info', '-v', `${etc}:/etc/countersign:ro`, '-v', `${volume}:/var/lib/countersign`, IMAGE);

  const logs = async () => {
    const { stdout, stderr } = await exec('docker', ['logs', name], { maxBuffer: 16 * 1024 * 1024 });
    return stdout + stderr;
  };
  let listening: { proxy: string; admin: string } | undefined;
  for (let i = 0; i < 300 && !listening; i++) {
    const line = (await logs()).split('\n').find((l) => l.includes('countersign listening'));
    if (line) listening = JSON.parse(line) as { proxy: string; admin: string };
    else if ((await docker('inspect', '-f', '{{.State.Running}}', name)).trim() !== 'true') break;
    else await new Promise((r) => setTimeout(r, 100));
  }
  if (!listening) return t.fail(`the container did not start listening:\n${await logs()}`);

  // The process itself: the image's user, no capabilities, no new privileges, a read-only root.
  const status = await docker('exec', name, 'cat', '/proc/1/status');
  t.regex(status, new RegExp(`^Uid:\\s+${sc.runAsUser}\\s+${sc.runAsUser}\\s+${sc.runAsUser}\\s+${sc.runAsUser}$`, 'm'));
  t.regex(status, new RegExp(`^Gid:\\s+${sc.runAsGroup}\\s`, 'm'));
  t.regex(status, /^CapEff:\s+0+$/m);
  t.regex(status, /^CapPrm:\s+0+$/m);
  t.regex(status, /^NoNewPrivs:\s+1$/m);
  const mounts = await docker('exec', name, 'cat', '/proc/1/mounts');
  t.regex(mounts, /^\S+ \/ \S+ ro[,\s]/m, 'the root filesystem is read-only');
  t.regex(mounts, /^\S+ \/etc\/countersign \S+ ro[,\s]/m, 'the config is mounted read-only');

  let readyz = 0;
  for (let i = 0; i < 100 && readyz !== 200; i++) {
    readyz = (await fetch(`${listening.admin}/readyz`)).status;
    if (readyz !== 200) await new Promise((r) => setTimeout(r, 100));
  }
  t.is(readyz, 200, 'the gateway turned ready');

  // A signed Keeta call: the simulator verifies the signature with its own code and answers 0.
  const pair = keeta.control.addMerchant({ merchantId: 'brand-1', shopIds: ['466663'], issuedAtMs: Date.now() - 600_000 });
  await importPair(listening.admin, 'keeta', 'brand-1', pair, ['466663']);
  const order = await fetch(`${listening.proxy}/keeta/order/get`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"orderViewId": 756823555555859, "shopId": 466663}',
  });
  t.is(order.status, 200);
  t.like(await order.json(), { code: 0 });
  t.like(keeta.control.counters().requests.at(-1), { path: '/api/open/order/get', code: 0 });

  // A KeySecure call: the gateway fetches a token, then sends the headers the simulator checks.
  const cards = await fetch(`${listening.proxy}/keysecure-hk/open-api/v1/card/list`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"page":0,"size":10}',
  });
  t.is(cards.status, 200);
  t.like(await cards.json(), { code: 0 });
  t.is(keysecure.control.counters().tokenCalls, 1);

  // docker stop: SIGTERM to node (PID 1), then SIGKILL after the chart's grace period.
  const grace = values.terminationGracePeriodSeconds;
  const stopping = Date.now();
  await docker('stop', '--time', String(grace), name);
  const stopSeconds = (Date.now() - stopping) / 1000;
  t.log(`docker stop took ${stopSeconds.toFixed(1)} s (grace ${grace} s)`);
  t.true(stopSeconds < grace, `docker stop took ${stopSeconds} s`);
  const state = JSON.parse(await docker('inspect', '-f', '{{json .State}}', name)) as { ExitCode: number; OOMKilled: boolean };
  t.is(state.ExitCode, 0, await logs());
  t.false(state.OOMKilled);
  const out = await logs();
  t.regex(out, /"msg":"stopped"/);
  for (const secret of [KEETA_SECRET, KS_API_KEY, pair.accessToken, pair.refreshToken]) t.false(out.includes(secret), 'a secret was logged');

  // The token file is on the volume, written by the image's user (read back in a fresh container).
  const stored = JSON.parse(
    await docker(
      'run', '--rm', ...CHART_RUN_FLAGS, '-v', `${volume}:/var/lib/countersign:ro`, '--entrypoint', 'node', IMAGE, '-e',
      `const fs = require('node:fs'); const p = '/var/lib/countersign/tokens.json'; const s = fs.statSync(p);
       console.log(JSON.stringify({ uid: s.uid, gid: s.gid, text: fs.readFileSync(p, 'utf8') }));`,
    ),
  ) as { uid: number; gid: number; text: string };
  t.is(stored.uid, sc.runAsUser);
  t.is(stored.gid, sc.runAsGroup);
  t.true(stored.text.includes('brand-1'), 'the Keeta pair is in the token file');
});
