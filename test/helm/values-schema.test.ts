import test from 'ava';
import { Ajv, type ErrorObject } from 'ajv';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parse } from 'yaml';
import { CHART, exampleFiles, render } from './renderer.js';

/**
 * values.schema.json, applied as Helm applies it: to the final values (values.yaml with the -f
 * files coalesced over it), with JSON Schema draft 7 semantics (the schema's $schema).
 * A subchart's schema applies to its parent's values under the subchart's name.
 */

const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')) as Record<string, unknown>;
const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
const validate = ajv.compile(schema);

async function finalValues(values: Record<string, unknown>): Promise<Record<string, unknown>> {
  return (await render({ values, valuesOnly: true })).values;
}

function errors(values: unknown): ErrorObject[] {
  return validate(values) ? [] : validate.errors!;
}

const describe = (errs: ErrorObject[]) => errs.map((e) => `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`);

test('the schema is draft 7 and refuses unknown keys in every object of the chart\'s own', (t) => {
  t.is(schema.$schema, 'http://json-schema.org/draft-07/schema#');
  // Walk the schema: every object with declared properties is closed.
  const open: string[] = [];
  const walk = (node: unknown, at: string) => {
    if (!node || typeof node !== 'object') return;
    const n = node as Record<string, unknown>;
    if (n.properties && n.additionalProperties !== false) open.push(at);
    for (const [k, v] of Object.entries(n)) walk(v, `${at}/${k}`);
  };
  walk(schema, '#');
  t.deepEqual(open, []);
});

test('values.yaml and the final values of every example file are valid', async (t) => {
  t.deepEqual(describe(errors(parse(readFileSync(join(CHART, 'values.yaml'), 'utf8')))), []);
  for (const file of exampleFiles()) {
    const { values } = await render({ files: [file], valuesOnly: true });
    t.deepEqual(describe(errors(values)), [], basename(file));
  }
  // As a subchart: its values under "countersign", with the "global" Helm adds.
  const app = await render({ chart: join(CHART, 'examples/my-service'), dependencies: { countersign: CHART }, valuesOnly: true });
  const sub = app.values.countersign as Record<string, unknown>;
  t.deepEqual(sub.global, {});
  t.deepEqual(describe(errors(sub)), []);
});

const wrongTypes: Array<[string, Record<string, unknown>, string]> = [
  ['replicaCount as text', { replicaCount: 'three' }, '/replicaCount'],
  ['a boolean as text', { ingress: { enabled: 'only-on-weekdays' } }, '/ingress/enabled'],
  ['a port out of range', { listen: { proxyPort: 70000 } }, '/listen/proxyPort'],
  ['a size as text', { config: { limits: { maxBodyBytes: '1MB' } } }, '/config/limits/maxBodyBytes'],
  ['a duration without unit', { config: { upstreams: { keeta: { type: 'keeta', baseUrl: 'https://k.example', appId: 1, timeout: 10 } } } }, '/config/upstreams/keeta'],
  ['an unknown mode', { mode: 'daemonset' }, '/mode'],
  ['an unknown store type', { config: { store: { type: 'postgres' } } }, '/config/store/type'],
  ['a list where a map goes', { podLabels: ['a'] }, '/podLabels'],
];

for (const [name, values, at] of wrongTypes) {
  test(`a wrong type is rejected: ${name}`, async (t) => {
    const errs = errors(await finalValues(values));
    t.true(errs.length > 0, 'accepted');
    t.true(errs.some((e) => e.instancePath.startsWith(at)), describe(errs).join('\n'));
  });
}

const unknownKeys: Array<[string, Record<string, unknown>, string, string]> = [
  ['at the top', { replicas: 3 }, '', 'replicas'],
  ['nested', { service: { portt: 80 } }, '/service', 'portt'],
  ['a secret inside config (secrets belong in `secrets`)', { config: { upstreams: { keeta: { type: 'keeta', baseUrl: 'https://k.example', appId: 1, appSecret: 'plain' } } } }, '/config/upstreams/keeta', 'appSecret'],
  ['a caller token inside config', { config: { callers: [{ name: 'a', allow: ['keeta:*'], token: 'plain-token' }] } }, '/config/callers/0', 'token'],
  ['listen owned by the chart', { config: { listen: { proxy: '0.0.0.0:1' } } }, '/config', 'listen'],
  ['a probe setting', { probes: { liveness: { path: '/x' } } }, '/probes/liveness', 'path'],
];

for (const [name, values, at, key] of unknownKeys) {
  test(`an unknown key is rejected: ${name}`, async (t) => {
    const errs = errors(await finalValues(values));
    t.true(
      errs.some((e) => e.instancePath === at && e.keyword === 'additionalProperties' && (e.params as { additionalProperty: string }).additionalProperty === key),
      describe(errs).join('\n'),
    );
  });
}

test('names the gateway would refuse are rejected: an upstream name, a secret key', async (t) => {
  const upstream = errors(await finalValues({ config: { upstreams: { Keeta: { type: 'keeta', baseUrl: 'https://k.example', appId: 1 } } } }));
  t.true(upstream.some((e) => e.keyword === 'propertyNames' && e.instancePath === '/config/upstreams'), describe(upstream).join('\n'));
  const key = errors(await finalValues({ secrets: { values: { 'upstreams.keeta.password': 'x' } } }));
  t.true(key.some((e) => e.keyword === 'propertyNames' && e.instancePath === '/secrets/values'), describe(key).join('\n'));
});
