import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ROOT } from '../helpers/cli.js';

/**
 * The Dockerfile's promises, read from the file itself: what the runtime stage runs and as whom,
 * where it may write, what it exposes and how it is labelled. No Docker engine runs here; the
 * install it performs is exercised by test/integration/production-layout.test.ts, and the built
 * image itself by test/image/image.test.ts (scripts/build-image.sh -- npm run test:image).
 */

interface Instruction {
  op: string;
  args: string;
}

/** Instructions of each stage (continuation lines joined, comments dropped). */
function stages(text: string): Instruction[][] {
  const joined = text.replace(/\\\n\s*/g, ' ');
  const all = joined
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [, op, args] = /^(\S+)\s+(.*)$/.exec(l)!;
      return { op: op!.toUpperCase(), args: args! };
    });
  const result: Instruction[][] = [[]];
  for (const ins of all) {
    if (ins.op === 'FROM') result.push([]);
    result.at(-1)!.push(ins);
  }
  return result;
}

const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const [globalArgs, build, runtime] = stages(dockerfile) as [Instruction[], Instruction[], Instruction[]];
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; license: string };
const one = (stage: Instruction[], op: string) => stage.filter((i) => i.op === op);

test('two stages on one pinned Node LTS slim image chosen by an ARG', (t) => {
  t.is(stages(dockerfile).length, 3);
  const arg = one(globalArgs, 'ARG').map((i) => i.args);
  t.is(arg.length, 1);
  const [, version] = /^NODE_IMAGE=node:(\d+\.\d+\.\d+)-(?:bookworm|trixie)-slim$/.exec(arg[0]!) ?? [];
  t.truthy(version, `${arg[0]} is not a full Node version on a Debian slim image`);
  // The image runs the newest Node LTS the CI suite runs on.
  const ciVersions = /^NODE_VERSIONS=\(([^)]*)\)$/m.exec(readFileSync(join(ROOT, '.ci/run'), 'utf8'))?.[1]?.split(/\s+/) ?? [];
  const newest = [...ciVersions].sort((a, b) => Number(a.split('.')[0]) - Number(b.split('.')[0])).at(-1);
  t.is(version, newest, `the image's Node ${version} is not the newest version .ci/run tests (${ciVersions.join(', ')})`);
  t.is(build[0]!.args, '${NODE_IMAGE} AS build');
  t.is(runtime[0]!.args, '${NODE_IMAGE}');
});

test('the build stage installs from the lock file and compiles; the runtime stage gets only what install-runtime.sh lays out', (t) => {
  const runs = one(build, 'RUN').map((i) => i.args);
  t.deepEqual(runs, ['npm ci --no-audit --no-fund --ignore-scripts', 'npm run build', 'sh scripts/install-runtime.sh /src /app']);
  t.deepEqual(
    one(runtime, 'COPY').map((i) => i.args),
    ['--from=build /app /app'],
  );
  t.deepEqual(one(runtime, 'RUN').length, 1, 'the runtime stage only creates its user and volume');
  t.notRegex(one(runtime, 'RUN')[0]!.args, /npm/);
});

test('runs node on the CLI directly as the fixed non-root user, serving the mounted config', (t) => {
  t.deepEqual(one(runtime, 'USER').map((i) => i.args), ['10001:10001']);
  t.deepEqual(JSON.parse(one(runtime, 'ENTRYPOINT')[0]!.args), ['node', '/app/dist/cli/main.js']);
  t.deepEqual(JSON.parse(one(runtime, 'CMD')[0]!.args), ['serve', '--config', '/etc/countersign/config.yaml']);
  t.deepEqual(one(runtime, 'ENV').map((i) => i.args), ['NODE_ENV=production']);
  t.deepEqual(one(runtime, 'WORKDIR').map((i) => i.args), ['/app']);
  const setup = one(runtime, 'RUN')[0]!.args;
  t.regex(setup, /groupadd --system --gid 10001 /);
  t.regex(setup, /useradd --system --uid 10001 --gid 10001 /);
  t.regex(setup, /chown 10001:10001 \/var\/lib\/countersign/);
});

test('the only writable place is the file store volume, which the sidecar example uses', (t) => {
  t.deepEqual(one(runtime, 'VOLUME').map((i) => JSON.parse(i.args) as string[]), [['/var/lib/countersign']]);
  const sidecar = parse(readFileSync(join(ROOT, 'examples/sidecar.yaml'), 'utf8')) as { store: { type: string; path: string } };
  t.is(sidecar.store.type, 'file');
  t.true(sidecar.store.path.startsWith('/var/lib/countersign/'));
});

test('exposes the proxy, ingress and admin ports', (t) => {
  t.deepEqual(one(runtime, 'EXPOSE').flatMap((i) => i.args.split(/\s+/)).sort(), ['8080', '8443', '9090']);
});

test('OCI labels carry the package version, the licence and the source', (t) => {
  const args = Object.fromEntries(one(runtime, 'ARG').map((i) => i.args.split('=', 2) as [string, string]));
  t.is(args.VERSION, pkg.version);
  const labels = one(runtime, 'LABEL')[0]!.args;
  t.regex(labels, /org\.opencontainers\.image\.version="\$\{VERSION\}"/);
  t.regex(labels, /org\.opencontainers\.image\.source="\$\{SOURCE_URL\}"/);
  t.true(labels.includes(`org.opencontainers.image.licenses="${pkg.license}"`));
});

test('.dockerignore lets through exactly what the build stage copies', (t) => {
  const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  t.is(ignore[0], '*', 'everything else is left out of the build context');
  const allowed = ignore.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
  const copied = one(build, 'COPY')
    .filter((i) => !i.args.startsWith('--from'))
    .flatMap((i) => i.args.split(/\s+/).slice(0, -1))
    .map((p) => p.replace(/\/$/, ''));
  t.deepEqual([...allowed].sort(), [...copied].sort());
  t.true(ignore.includes('**/node_modules'));
});
