import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { Ajv } from 'ajv';
import { runCli } from '../helpers/cli.js';
import { CONFIG_PATH, FULL_CENTRAL, refusal, secretData } from './chart-values.js';
import { k8sProblems } from './k8s-schema.js';
import { configAt, gatewayContainer, materialize, mountedFiles, podSpec } from './pod-config.js';
import { CHART, one, render } from './renderer.js';

/** The chart wires store key Secrets into the config and the pod (README "Store keys"). */

const KEYS = {
  ...FULL_CENTRAL,
  config: {
    ...(FULL_CENTRAL as { config: Record<string, unknown> }).config,
    store: {
      type: 'redis',
      keyPrefix: 'countersign:',
      encryption: {
        keys: [
          { id: 'k2026-12', secretName: 'store-keys', secretKey: 'k2026-12' },
          { id: 'k2026-06', secretName: 'old-store-keys', secretKey: 'key' },
        ],
        plaintext: 'refuse',
      },
    },
  },
};

test('store keys: each key Secret is mounted at store-keys/<id>, the config names them in order, and check-config accepts it', async (t) => {
  const r = await render({ values: KEYS });
  t.deepEqual(r.objects.flatMap(k8sProblems), []);
  const pod = podSpec(one(r, 'Deployment'));
  const c = gatewayContainer(pod);
  const files = mountedFiles(pod, c);
  t.deepEqual(files.get('/etc/countersign/store-keys/k2026-12'), { kind: 'secret', name: 'store-keys', key: 'k2026-12' });
  t.deepEqual(files.get('/etc/countersign/store-keys/k2026-06'), { kind: 'secret', name: 'old-store-keys', key: 'key' });
  const config = configAt(r, pod, c, CONFIG_PATH);
  t.deepEqual((config.store as Record<string, unknown>).encryption, {
    keys: [
      { id: 'k2026-12', keyFile: '/etc/countersign/store-keys/k2026-12' },
      { id: 'k2026-06', keyFile: '/etc/countersign/store-keys/k2026-06' },
    ],
    plaintext: 'refuse',
  });
  const data = secretData(r);
  const keyValue = randomBytes(32).toString('base64');
  const file = materialize(config, pod, c, (key) => data[key] ?? keyValue);
  const { code, stdout, stderr } = await runCli(['check-config', '--config', file]);
  t.is(code, 0, stderr);
  t.regex(stdout, /encryption keys \[k2026-12, k2026-06\] \(plaintext: refuse\)/);
  t.false(stderr.includes('plaintext in the redis store'), 'no plaintext warning with keys');
  t.false(JSON.stringify(r.objects).includes(keyValue));
});

test('store keys: values.schema.json refuses an entry without its Secret, and a memory store with keys is refused', async (t) => {
  const noSecret = { ...KEYS, config: { ...KEYS.config, store: { type: 'redis', encryption: { keys: [{ id: 'k1' }] } } } };
  // values.schema.json, applied by Helm to the final values.
  const validate = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true }).compile(JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')));
  const finalValues = async (values: Record<string, unknown>) => (await render({ values, valuesOnly: true })).values;
  t.true(validate(await finalValues(KEYS)), JSON.stringify(validate.errors));
  t.false(validate(await finalValues(noSecret)));
  t.true(validate.errors!.some((e) => /secretName|secretKey/.test(JSON.stringify(e.params))), JSON.stringify(validate.errors));
  const memory = { ...KEYS, config: { ...KEYS.config, store: { type: 'memory', encryption: { keys: [{ id: 'k1', secretName: 's', secretKey: 'k' }] } } } };
  t.regex(await refusal({ values: memory }), /config\.store\.encryption\.keys: a memory store holds nothing at rest/);
});
