import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/cli.js';
import { one, render, RenderError } from './renderer.js';

/**
 * The renderer is a stand-in for `helm template`; these tests hold it to Helm's behaviour on a
 * fixture chart (test/helm/fixtures/semantics), so that the chart tests mean what they say.
 */

const CHART = join(ROOT, 'test/helm/fixtures/semantics');

async function out(opts: Parameters<typeof render>[0] = {}) {
  const r = await render({ chart: CHART, release: 'rel', namespace: 'ns', ...opts });
  return { r, data: one<{ data: Record<string, string> }>(r, 'ConfigMap', 'out').data, sub: one<{ data: Record<string, string> }>(r, 'ConfigMap', 'sub').data };
}

function valuesFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'countersign-values-')), 'v.yaml');
  writeFileSync(file, text);
  return file;
}

test('values: -f files coalesce over values.yaml key by key, later files win, null deletes a default, numbers are float64', async (t) => {
  const first = valuesFile('nested:\n  replace: first\n  added: first\nlist: [z]\n');
  const second = valuesFile('nested:\n  replace: second\n  drop: null\n');
  const { data } = await out({ files: [first, second] });
  t.deepEqual(JSON.parse(data.nested!), { keep: 'default-keep', replace: 'second', added: 'first' });
  t.deepEqual(JSON.parse(data.list!), ['z']); // lists are replaced, not merged
  t.is(data.numberKind, 'float64');
});

test('functions: toYaml trims the final newline; fromYaml/fromYamlArray/fromJson; include pipes; tpl renders with the context', async (t) => {
  const { data } = await out();
  t.is(data.toYaml, 'drop: default-drop\nkeep: default-keep\nreplace: default-replace');
  t.deepEqual(JSON.parse(data.fromYaml!), { a: 1, b: { c: 'two' } });
  t.is(data.fromYamlError, 'true');
  t.deepEqual(JSON.parse(data.fromYamlArray!), ['x', 'w', true]); // YAML 1.1, as Helm reads it: yes is true
  t.deepEqual(JSON.parse(data.fromJson!), [1, 2]);
  t.is(data.include, 'THE SEMANTICS CHART');
  t.is(data.tpl, 'hello rel from the semantics chart');
  t.is(data.required, 'present');
  t.is(data.lookup, '0'); // no cluster: an empty map, as in helm template
  t.is(data.missing, '[]'); // missingkey=zero and "<no value>" removed
});

test('functions: required and fail stop rendering with Helm\'s message shape; env is not available', async (t) => {
  const required = await t.throwsAsync(out({ values: { need: { me: '' } } }), { instanceOf: RenderError });
  t.regex(required!.message, /^Error: execution error at \(semantics\/templates\/out\.yaml:\d+:\d+\): need\.me is required$/);
  const failed = await t.throwsAsync(out({ values: { failWith: 'refused on purpose' } }), { instanceOf: RenderError });
  t.regex(failed!.message, /^Error: execution error at \(semantics\/templates\/out\.yaml:1:\d+\): refused on purpose$/);
  const env = await t.throwsAsync(out({ values: { greeting: '{{ env "HOME" }}' } }), { instanceOf: RenderError });
  t.regex(env!.message, /function "env" not defined/);
});

test('.Files: chart files less templates, Chart.yaml and .helmignore\'d ones; Get, Glob, AsConfig, Lines', async (t) => {
  const { data } = await out();
  t.is(data.filesGet, 'alpha\n');
  t.deepEqual(JSON.parse(data.filesGlob!), ['files/a.txt', 'files/b.txt']); // files/old.bak is ignored
  t.is(data.filesAsConfig, 'a.txt: |\n  alpha\nb.txt: |\n  beta\n  second line');
  t.deepEqual(JSON.parse(data.filesLines!), ['beta', 'second line']);
  t.is(data.filesChartYaml, '');
  t.is(data.filesIgnored, '|');
});

test('.Capabilities, .Chart, .Release, .Template', async (t) => {
  const { data } = await out();
  t.is(data.hasApps, 'true');
  t.is(data.hasMonitoring, 'false'); // CRD APIs only with --api-versions, as with helm template
  t.is(data.kube, 'v1.31.0 1.31');
  t.is(data.chart, 'semantics 1.2.3 9.8.7');
  t.is(data.release, 'rel ns true Helm');
  t.is(data.template, 'semantics/templates/out.yaml');
  const { data: withApi } = await out({ apiVersions: ['monitoring.coreos.com/v1'], kubeVersion: 'v1.29.4' });
  t.is(withApi.hasMonitoring, 'true');
  t.is(withApi.kube, 'v1.29.4 1.29');
});

test('templates: partials are not emitted, NOTES.txt is rendered apart (the subchart\'s dropped), subcharts get their scope and globals', async (t) => {
  const { r, sub } = await out({ values: { global: { region: 'eu' } } });
  t.deepEqual(r.objects.map((o) => o.template).sort(), ['semantics/charts/sub/templates/sub.yaml', 'semantics/templates/out.yaml']);
  t.is(r.notes, 'Notes for rel.\n');
  t.deepEqual(JSON.parse(sub.values!), { fromParent: 'parent-value', own: 'sub-own', global: { region: 'eu' } });
  t.is(sub.chart, 'sub');
  t.is(sub.who, 'the sub chart'); // a parent's named template, run with the subchart's .Chart
});
