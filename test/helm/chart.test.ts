import test from 'ava';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { ROOT, runCli } from '../helpers/cli.js';
import { CONFIG_PATH, example, existingSecretValue, FULL_CENTRAL, refusal, secretData } from './chart-values.js';
import { k8sProblems } from './k8s-schema.js';
import { configAt, gatewayContainer, materialize, podSpec } from './pod-config.js';
import { CHART, exampleFiles, kinds, one, render, type K8sObject } from './renderer.js';

/**
 * The chart, rendered for its default values and every example values file, checked against
 * the Kubernetes API schemas, run through the gateway's own config check, and held to the
 * files it must agree with (package.json, grafana/, its README). Rendering uses
 * test/helm/render, the stand-in for `helm template` (see helm/countersign/README.md).
 * central.test.ts checks the central mode's objects, sidecar.test.ts the sidecar.
 */

const renders: Array<[string, Parameters<typeof render>[0]]> = [
  ...exampleFiles().map((f): [string, Parameters<typeof render>[0]] => [`examples/${basename(f)}`, { files: [f] }]),
  ['values with fake secrets of every kind', { values: FULL_CENTRAL }],
];

for (const [name, opts] of renders) {
  test(`${name}: renders, and every object validates against the Kubernetes schemas`, async (t) => {
    const r = await render(opts);
    t.true(r.objects.length >= 3);
    const problems = r.objects.flatMap(k8sProblems);
    t.deepEqual(problems, []);
    for (const obj of r.objects) {
      t.is(obj.metadata.labels?.['app.kubernetes.io/name'], 'countersign', `${obj.kind} ${obj.metadata.name}`);
      t.is(obj.metadata.labels?.['app.kubernetes.io/instance'], 'countersign');
      t.is(obj.metadata.labels?.['app.kubernetes.io/managed-by'], 'Helm');
      t.is(obj.metadata.labels?.['helm.sh/chart'], 'countersign-0.1.0');
    }
  });
}

test('default values: the chart refuses to render until the required inputs are given, and names every one', async (t) => {
  const message = await refusal({});
  t.regex(message, /^Error: execution error at \(countersign\/templates\/_config\.tpl:\d+:\d+\):/);
  t.true(message.includes('secrets.values."admin.token" is required'));
  t.true(message.includes('secrets.values."store.url" is required'));
  t.true(message.includes('config.upstreams: configure at least one upstream'));
  // examples/minimal.yaml gives exactly those and renders the central defaults.
  const r = await render({ files: [example('minimal.yaml')] });
  t.deepEqual(kinds(r), ['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Secret', 'Service', 'Service', 'ServiceAccount']);
});

test('Chart.yaml: apiVersion v2, and appVersion is the package version', (t) => {
  const chart = parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as { apiVersion: string; appVersion: string; name: string };
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  t.is(chart.apiVersion, 'v2');
  t.is(chart.name, 'countersign');
  t.is(chart.appVersion, pkg.version);
});

// One test per render, so that they run side by side and each reports on its own.
const checkConfigCases: Array<[string, Parameters<typeof render>[0]]> = [
  ...exampleFiles()
    // The sidecar's pod is checked in sidecar.test.ts.
    .filter((f) => !f.endsWith('sidecar.yaml'))
    .map((f): [string, Parameters<typeof render>[0]] => [`examples/${basename(f)}`, { files: [f] }]),
  ['values with fake secrets of every kind', { values: FULL_CENTRAL }],
];

for (const [name, opts] of checkConfigCases) {
  test(`${name}: the config the pod reads passes the real \`countersign check-config\``, async (t) => {
    const r = await render(opts);
    const pod = podSpec(one(r, 'Deployment'));
    const c = gatewayContainer(pod);
    const config = configAt(r, pod, c, CONFIG_PATH);
    const data = r.objects.some((o) => o.kind === 'Secret') ? secretData(r) : {};
    const file = materialize(config, pod, c, (key) => data[key] ?? existingSecretValue(key));
    const { code, stdout, stderr } = await runCli(['check-config', '--config', file]);
    t.is(code, 0, stderr);
    t.regex(stdout, /config OK/);
    for (const value of Object.values(data)) t.false(stdout.includes(value), 'check-config printed a secret');
  });
}

test('grafana: the chart\'s copies equal grafana/ (run `npm run chart:sync` after changing grafana/)', (t) => {
  for (const name of ['alerts.yaml', 'countersign-dashboard.json']) {
    const source = readFileSync(join(ROOT, 'grafana', name));
    const copy = readFileSync(join(CHART, 'files', name));
    t.true(source.equals(copy), `helm/countersign/files/${name} differs from grafana/${name}: run npm run chart:sync`);
  }
});

test('`npm run chart:sync` copies grafana/ into the chart', async (t) => {
  // In a scratch tree shaped like the repository, with grafana/ files the chart does not have yet.
  const dir = mkdtempSync(join(tmpdir(), 'countersign-sync-'));
  mkdirSync(join(dir, 'helm/countersign/files'), { recursive: true });
  mkdirSync(join(dir, 'grafana'));
  copyFileSync(join(ROOT, 'helm/sync-grafana.mjs'), join(dir, 'helm/sync-grafana.mjs'));
  writeFileSync(join(dir, 'grafana/alerts.yaml'), 'groups: []\n');
  writeFileSync(join(dir, 'grafana/countersign-dashboard.json'), '{"title": "changed"}\n');
  await promisify(execFile)(process.execPath, [join(dir, 'helm/sync-grafana.mjs')]);
  t.is(readFileSync(join(dir, 'helm/countersign/files/alerts.yaml'), 'utf8'), 'groups: []\n');
  t.is(readFileSync(join(dir, 'helm/countersign/files/countersign-dashboard.json'), 'utf8'), '{"title": "changed"}\n');
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  t.is(pkg.scripts['chart:sync'], 'node helm/sync-grafana.mjs');
});

test('PrometheusRule carries exactly the rule groups of grafana/alerts.yaml; the dashboard ConfigMap holds grafana\'s JSON for the Grafana sidecar', async (t) => {
  const r = await render({ files: [example('central-redis.yaml')] });
  const rule = one<{ spec: { groups: unknown } }>(r, 'PrometheusRule');
  const alerts = parse(readFileSync(join(ROOT, 'grafana/alerts.yaml'), 'utf8')) as { groups: unknown };
  t.deepEqual(rule.spec.groups, alerts.groups);
  t.is(rule.metadata.labels?.release, 'kube-prometheus-stack');
  const dashboard = one<{ data: Record<string, string> }>(r, 'ConfigMap', '-dashboard');
  t.is(dashboard.metadata.labels?.grafana_dashboard, '1');
  t.is(dashboard.metadata.annotations?.grafana_folder, 'Countersign');
  t.is(dashboard.data['countersign-dashboard.json'], readFileSync(join(ROOT, 'grafana/countersign-dashboard.json'), 'utf8'));
});

test('NOTES.txt tells callers where the proxy is and how to reach the admin listener', async (t) => {
  const r = await render({ values: FULL_CENTRAL });
  t.true(r.notes.includes('http://countersign.egress.svc:8080/<upstream>/<path>'));
  t.true(r.notes.includes('kubectl -n egress port-forward svc/countersign-admin 9090'));
  t.true(r.notes.includes('Upstreams: keeta, keysecure-hk; store: redis.'));
  t.false(r.objects.some((o: K8sObject & { template: string }) => o.template.endsWith('NOTES.txt')));
});

test('the chart README documents every top-level key of values.yaml in its values table', (t) => {
  const values = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as Record<string, unknown>;
  const readme = readFileSync(join(CHART, 'README.md'), 'utf8');
  const table = readme.slice(readme.indexOf('## Values'));
  for (const key of Object.keys(values)) t.regex(table, new RegExp(`^\\| \`${key}[.\`]`, 'm'), `README values table lacks ${key}`);
});
