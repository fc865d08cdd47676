import test from 'ava';
import { Registry } from 'prom-client';
import { CLASSES, CLASSES_BY_TYPE, createMetrics } from '../../src/observability/metrics.js';

async function classSeries(upstream: string, registry: Registry): Promise<string[]> {
  const text = await registry.metrics();
  const re = new RegExp(`^countersign_requests_total\\{upstream="${upstream}",class="([a-z_]+)"\\}`, 'gm');
  return [...text.matchAll(re)].map((m) => m[1]!).sort();
}

test('class series are created only for the classes an upstream of that type can produce', async (t) => {
  const registry = new Registry();
  createMetrics({ registry, collectDefaults: false, upstreams: [{ name: 'keeta', type: 'keeta' }, { name: 'ks', type: 'keysecure' }] });
  const keeta = await classSeries('keeta', registry);
  const ks = await classSeries('ks', registry);
  t.deepEqual(keeta, [...CLASSES_BY_TYPE.keeta].sort());
  t.deepEqual(ks, [...CLASSES_BY_TYPE.keysecure].sort());
  for (const impossible of ['signature_error', 'partial_failure']) t.false(ks.includes(impossible), impossible);
  for (const impossible of ['auth_error', 'timestamp_error', 'ip_not_allowed', 'rate_limited']) t.false(keeta.includes(impossible), impossible);
});

test('the classes of the two types together are exactly the documented classes', (t) => {
  t.deepEqual([...new Set([...CLASSES_BY_TYPE.keeta, ...CLASSES_BY_TYPE.keysecure])].sort(), [...CLASSES].sort());
});
