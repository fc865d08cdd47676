import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { startKeetaSim, startKeySecureSim } from '../../src/sim/index.js';
import { ROOT } from '../helpers/cli.js';
import { prepareExample } from '../helpers/examples.js';
import { importPair, KEETA_APP_ID, KEETA_SECRET } from '../helpers/keeta-setup.js';
import { KS_API_KEY, KS_API_SECRET } from '../helpers/keysecure-setup.js';

/**
 * The container image's runtime layout, without Docker: the build output is compiled afresh,
 * scripts/install-runtime.sh (the very script the Dockerfile RUNs) lays out /app with the
 * production dependencies only, and the gateway is started from there with NODE_ENV=production,
 * as the image's non-root user when this test runs as root, with the files it may not write
 * owned by root. It proxies a signed Keeta call and a KeySecure call to the simulators and
 * stops on SIGTERM with exit 0.
 */

const run = promisify(execFile);
const DEV_DEPENDENCIES = ['typescript', 'tsx', 'ava', 'playwright-core', 'kubernetes-models', 'ajv', '@types/node', '@types/koa', 'esbuild'];
/** The image's user (Dockerfile: USER 10001:10001). */
const IMAGE_UID = 10001;
const IMAGE_GID = 10001;
const asRoot = process.getuid?.() === 0;

/** The environment without npm's own script variables (npm_config_local_prefix would point npm at this checkout). */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'NODE_OPTIONS') env[k] = v;
  return { ...env, ...extra };
}

/** The image's environment: NODE_ENV=production and nothing inherited but PATH. */
function imageEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { NODE_ENV: 'production', PATH: process.env.PATH ?? '/usr/bin:/bin', ...extra };
}

/** Run a command to completion as the image's user (when this test is root), in the image's environment. */
function runAs(cmd: string, args: string[], cwd: string, env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawn(cmd, args, { cwd, env: imageEnv(env), stdio: ['ignore', 'pipe', 'pipe'], ...(asRoot && { uid: IMAGE_UID, gid: IMAGE_GID }) });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, output })));
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => `${relative(dir, join(e.parentPath, e.name))} ${statSync(join(e.parentPath, e.name)).mtimeMs}`)
    .sort();
}

test('the runtime layout installs no dev dependency, serves both upstreams as a non-root user and stops on SIGTERM with exit 0', async (t) => {
  // Compiling and installing take minutes on a loaded machine; each assertion restarts this timer.
  t.timeout(600_000);
  const base = mkdtempSync(join(tmpdir(), 'cs-image-'));
  chmodSync(base, 0o755);
  t.teardown(() => rmSync(base, { recursive: true, force: true }));

  // Build stage: a fresh `npm run build` (its tsc command, writing into a staging copy) beside the files the Dockerfile copies.
  const staging = join(base, 'src');
  mkdirSync(staging);
  for (const f of ['package.json', 'package-lock.json']) cpSync(join(ROOT, f), join(staging, f));
  cpSync(join(ROOT, 'grafana'), join(staging, 'grafana'), { recursive: true });
  const build = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { build: string } }).scripts.build.split(/\s+/);
  t.is(build[0], 'tsc', 'the build script is one tsc run');
  await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), ...build.slice(1), '--outDir', join(staging, 'dist')], { cwd: ROOT });
  t.true(existsSync(join(staging, 'dist/cli/main.js')), 'the build wrote dist/cli/main.js');
  // npm runs postbuild after build: it copies the console's page, script and styles into dist/.
  const postbuild = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { postbuild: string } }).scripts.postbuild;
  t.true(postbuild.includes("fs.cpSync('src/admin/console', 'dist/admin/console', { recursive: true })"), postbuild);
  cpSync(join(ROOT, 'src/admin/console'), join(staging, 'dist/admin/console'), { recursive: true });

  // Runtime stage: exactly the Dockerfile's RUN line.
  const app = join(base, 'app');
  await run('sh', [join(ROOT, 'scripts/install-runtime.sh'), staging, app], {
    env: cleanEnv({ npm_config_prefer_offline: 'true' }),
    maxBuffer: 16 * 1024 * 1024,
  });

  // Only production dependencies, exactly the lock file's.
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; version?: string; hasInstallScript?: boolean }> };
  for (const dep of DEV_DEPENDENCIES) t.false(existsSync(join(app, 'node_modules', dep)), `dev dependency ${dep} is installed`);
  const installed = JSON.parse(readFileSync(join(app, 'node_modules/.package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; version?: string }> };
  const expected = Object.entries(lock.packages).filter(([path, p]) => path !== '' && !p.dev);
  t.deepEqual(Object.keys(installed.packages).sort(), expected.map(([path]) => path).sort());
  for (const [path, p] of expected) t.is(installed.packages[path]!.version, p.version, path);
  for (const dep of Object.keys((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies)) {
    t.true(existsSync(join(app, 'node_modules', dep, 'package.json')), `dependency ${dep} is missing`);
  }
  // --ignore-scripts is safe: no production package needs an install script.
  t.deepEqual(expected.filter(([, p]) => p.hasInstallScript).map(([path]) => path), []);
  t.deepEqual(readdirSync(app).sort(), ['dist', 'grafana', 'node_modules', 'package-lock.json', 'package.json']);
  t.true(existsSync(join(app, 'grafana/countersign-dashboard.json')));
  const resolveTs = await run(process.execPath, ['--input-type=module', '-e', "await import('typescript')"], { cwd: app }).then(
    () => 'resolved',
    () => 'not found',
  );
  t.is(resolveTs, 'not found');

  // The compiled CLI accepts the shipped examples (the image's `check-config`), printing no secret.
  for (const name of ['config.yaml', 'sidecar.yaml']) {
    const example = prepareExample(name);
    const checked = await runAs(process.execPath, [join(app, 'dist/cli/main.js'), 'check-config', '--config', example.config], app, example.env);
    t.is(checked.code, 0, `${name}: ${checked.output}`);
    t.regex(checked.output, /config OK/);
    for (const secret of example.secrets) t.false(checked.output.includes(secret), `${name}: a secret was printed`);
  }

  // The image's writable volume and its mounted config and secrets.
  const volume = join(base, 'var-lib-countersign');
  const etc = join(base, 'etc-countersign');
  mkdirSync(volume);
  mkdirSync(join(etc, 'secrets'), { recursive: true });
  if (asRoot) chownSync(volume, IMAGE_UID, IMAGE_GID);
  writeFileSync(join(etc, 'secrets/keeta-app-secret'), `${KEETA_SECRET}\n`);
  writeFileSync(join(etc, 'secrets/keysecure-api-key'), `${KS_API_KEY}\n`);

  const keeta = await startKeetaSim({ appId: KEETA_APP_ID, appSecret: KEETA_SECRET });
  const keysecure = await startKeySecureSim({ apiKeys: [{ apiKey: KS_API_KEY, apiSecret: KS_API_SECRET }] });
  t.teardown(async () => {
    await keeta.close();
    await keysecure.close();
  });
  writeFileSync(
    join(etc, 'config.yaml'),
    `listen:
  proxy: 127.0.0.1:0
  admin: 127.0.0.1:0
store:
  type: file
  path: ${join(volume, 'tokens.json')}
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
  const appBefore = listFiles(app);

  // ENTRYPOINT ["node", "/app/dist/cli/main.js"], CMD ["serve", "--config", …], WORKDIR /app, ENV NODE_ENV=production.
  const child = spawn(process.execPath, [join(app, 'dist/cli/main.js'), 'serve', '--config', join(etc, 'config.yaml')], {
    cwd: app,
    env: imageEnv({ LOG_LEVEL: 'info' }),
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(asRoot && { uid: IMAGE_UID, gid: IMAGE_GID }),
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const listening = await new Promise<{ proxy: string; admin: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the gateway did not start:\n${out}`)), 30_000);
    const look = () => {
      const line = out.split('\n').find((l) => l.includes('countersign listening'));
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as { proxy: string; admin: string });
      }
    };
    child.stdout.on('data', look);
    void exited.then((code) => reject(new Error(`the gateway exited with ${code}:\n${out}`)));
  });
  for (let i = 0; i < 100 && (await fetch(`${listening.admin}/readyz`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 100));
  t.is((await fetch(`${listening.admin}/readyz`)).status, 200);

  // The console's files ship in the image's dist/ (the build copies them).
  for (const [path, type] of [['/console', /^text\/html/], ['/console/console.js', /^text\/javascript/], ['/console/console.css', /^text\/css/]] as const) {
    const res = await fetch(`${listening.admin}${path}`);
    t.is(res.status, 200, path);
    t.regex(res.headers.get('content-type') ?? '', type, path);
  }

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

  // A KeySecure call: the proxy fetches a token, then sends the headers the simulator checks.
  const cards = await fetch(`${listening.proxy}/keysecure-hk/open-api/v1/card/list`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"page":0,"size":10}',
  });
  t.is(cards.status, 200);
  t.like(await cards.json(), { code: 0 });
  t.is(keysecure.control.counters().tokenCalls, 1);

  child.kill('SIGTERM');
  t.is(await exited, 0, out);

  // It wrote only into its volume, as its own user; /app is untouched.
  const stored = statSync(join(volume, 'tokens.json'));
  if (asRoot) t.is(stored.uid, IMAGE_UID);
  t.true(readFileSync(join(volume, 'tokens.json'), 'utf8').includes('brand-1'));
  t.deepEqual(listFiles(app), appBefore);
  t.regex(out, /"msg":"stopped"/);
  for (const secret of [KEETA_SECRET, KS_API_KEY, pair.accessToken, pair.refreshToken]) t.false(out.includes(secret), 'a secret was logged');
});
