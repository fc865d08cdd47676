import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments, stringify } from 'yaml';
import { ROOT } from '../helpers/cli.js';

/**
 * Renders the chart with test/helm/render (Go text/template + Sprig + Helm's functions), the
 * stand-in for `helm template` on machines where no helm binary can be installed. The binary
 * is built once per source version (GOPATH mode against Debian's Go packages) and cached in
 * node_modules/.cache, so every test file after the first reuses it.
 */

const run = promisify(execFile);
export const CHART = join(ROOT, 'helm/countersign');
const RENDER_SRC = join(ROOT, 'test/helm/render');
const CACHE = join(ROOT, 'node_modules/.cache/countersign-helm-render');

export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
};

export type Rendered = {
  /** Every object of every emitted template, in file order. */
  objects: Array<K8sObject & { template: string }>;
  notes: string;
  /** The final values the templates saw (what Helm validates against values.schema.json). */
  values: Record<string, unknown>;
};

export class RenderError extends Error {}

export type RenderOptions = {
  chart?: string;
  /** Values files, in -f order. */
  files?: string[];
  /** Values given inline, applied after the files (as one more -f file). */
  values?: Record<string, unknown>;
  release?: string;
  namespace?: string;
  kubeVersion?: string;
  apiVersions?: string[];
  /** NAME=DIR subcharts (what `helm dependency build` would put in charts/). */
  dependencies?: Record<string, string>;
  /** Only compute the final values (Helm validates them against the schema before rendering). */
  valuesOnly?: boolean;
};

let binary: Promise<string> | undefined;

/** Build (or find) the renderer binary for the current source. */
export function rendererBinary(): Promise<string> {
  binary ??= buildRenderer();
  return binary;
}

async function buildRenderer(): Promise<string> {
  const hash = createHash('sha256');
  for (const name of readdirSync(RENDER_SRC).filter((n) => n.endsWith('.go')).sort()) {
    hash.update(name).update(readFileSync(join(RENDER_SRC, name)));
  }
  const out = join(CACHE, `render-${hash.digest('hex').slice(0, 16)}`);
  mkdirSync(CACHE, { recursive: true });
  // Test files run in parallel processes: one builds, the others wait for its binary.
  const lock = `${out}.lock`;
  for (const started = Date.now(); !existsSync(out); ) {
    if (tryLock(lock)) {
      try {
        if (!existsSync(out)) await goBuild(out);
      } finally {
        rmSync(lock, { recursive: true, force: true });
      }
      break;
    }
    if (Date.now() - started > 300_000) throw new Error(`gave up waiting for ${lock} (remove it if no test runs)`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return out;
}

function tryLock(lock: string): boolean {
  try {
    mkdirSync(lock);
    return true;
  } catch {
    // A lock left by a killed run is older than any build takes.
    try {
      if (Date.now() - statSync(lock).mtimeMs > 240_000) rmSync(lock, { recursive: true, force: true });
    } catch {
      /* removed meanwhile */
    }
    return false;
  }
}

async function goBuild(out: string): Promise<void> {
  const partial = `${out}.${process.pid}.tmp`;
  await run('go', ['build', '-o', partial, '.'], {
    cwd: RENDER_SRC,
    env: {
      ...process.env,
      GO111MODULE: 'off',
      GOPATH: '/usr/share/gocode',
      GOFLAGS: '',
      GOCACHE: join(ROOT, 'node_modules/.cache/go-build'),
    },
  });
  renameSync(partial, out); // atomic: nobody runs a half-written binary
}

/** Render a chart; throws RenderError with the renderer's message when the chart refuses. */
export async function render(opts: RenderOptions = {}): Promise<Rendered> {
  const bin = await rendererBinary();
  const args = ['--chart', opts.chart ?? CHART, '--name', opts.release ?? 'countersign', '--namespace', opts.namespace ?? 'egress'];
  if (opts.kubeVersion) args.push('--kube-version', opts.kubeVersion);
  for (const v of opts.apiVersions ?? []) args.push('--api-versions', v);
  for (const [name, dir] of Object.entries(opts.dependencies ?? {})) args.push('--dependency', `${name}=${dir}`);
  for (const f of opts.files ?? []) args.push('-f', f);
  if (opts.valuesOnly) args.push('--values-only');
  let tmp: string | undefined;
  if (opts.values) {
    tmp = mkdtempSync(join(tmpdir(), 'countersign-values-'));
    const file = join(tmp, 'values.yaml');
    writeFileSync(file, stringify(opts.values));
    args.push('-f', file);
  }
  try {
    const { stdout } = await run(bin, args, { maxBuffer: 64 * 1024 * 1024 });
    const out = JSON.parse(stdout) as { manifests: Array<{ name: string; content: string }>; notes: string; values: Record<string, unknown> };
    const objects: Rendered['objects'] = [];
    for (const m of out.manifests) {
      // YAML 1.1, as the API server reads what helm sends (0440 is octal, yes is true).
      for (const doc of parseAllDocuments(m.content, { version: '1.1' })) {
        if (doc.errors.length) throw new Error(`${m.name}: ${doc.errors[0]!.message}`);
        const obj = doc.toJS() as K8sObject | null;
        if (obj !== null) objects.push({ ...obj, template: m.name });
      }
    }
    return { objects, notes: out.notes, values: out.values };
  } catch (err) {
    const e = err as { code?: number; stderr?: string };
    if (e.code === 1 && e.stderr) throw new RenderError(e.stderr.trim());
    throw err;
  } finally {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
}

/** The one object of this kind (and name suffix, if given); throws if there is not exactly one. */
export function one<T = K8sObject>(r: Rendered, kind: string, nameSuffix = ''): T & K8sObject {
  const found = r.objects.filter((o) => o.kind === kind && o.metadata.name.endsWith(nameSuffix));
  if (found.length !== 1) throw new Error(`expected one ${kind}${nameSuffix ? ` named *${nameSuffix}` : ''}, found ${found.length}`);
  return found[0] as unknown as T & K8sObject;
}

export function kinds(r: Rendered): string[] {
  return r.objects.map((o) => o.kind).sort();
}

/** The example values files shipped with the chart. */
export function exampleFiles(): string[] {
  const dir = join(CHART, 'examples');
  return readdirSync(dir)
    .filter((n) => n.endsWith('.yaml'))
    .sort()
    .map((n) => join(dir, n));
}
