import test from 'ava';
import { Histogram, Registry } from 'prom-client';
import { HotHistogram } from '../../src/observability/metrics-histogram.js';
import { createMetrics } from '../../src/observability/metrics.js';

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const cfg = (registry: Registry) => ({ name: 'h_seconds', help: 'help with "quotes" and \\ backslash', labelNames: ['upstream', 'class'] as const, buckets: BUCKETS, registers: [registry] });

/** The same observations into prom-client's Histogram and into HotHistogram. */
function pair() {
  const stock = new Registry();
  const hot = new Registry();
  return { stock, hot, a: new Histogram(cfg(stock)), b: new HotHistogram(cfg(hot)) };
}

const OBSERVATIONS: Array<[{ upstream: string; class: string }, number]> = [
  [{ upstream: 'keeta', class: 'success' }, 0.0031],
  [{ upstream: 'keeta', class: 'success' }, 0.005], // on a bound: counts in that bucket
  [{ upstream: 'keeta', class: 'success' }, 0.27],
  [{ upstream: 'keeta', class: 'timeout' }, 31], // above the last bound: only +Inf
  [{ upstream: 'ks-hk', class: 'success' }, 0],
  [{ upstream: 'ks-hk', class: 'business_error' }, 2.5],
  [{ upstream: 'we"ird\\name', class: 'success' }, 0.1 + 0.2],
];

test('HotHistogram exports exactly what prom-client Histogram exports, as text and as JSON', async (t) => {
  const { stock, hot, a, b } = pair();
  a.zero({ upstream: 'idle', class: 'success' });
  b.zero({ upstream: 'idle', class: 'success' });
  const handles = new Map<string, ReturnType<HotHistogram<'upstream' | 'class'>['labels']>>();
  for (const [labels, v] of OBSERVATIONS) {
    a.observe(labels, v);
    // Through a handle made once per series, as the proxy does, and through observe().
    const key = JSON.stringify(labels);
    if (!handles.has(key)) handles.set(key, b.labels(labels));
    handles.get(key)!.observe(v);
    b.observe(labels, v / 2);
    a.observe(labels, v / 2);
  }
  t.is(await hot.metrics(), await stock.metrics());
  t.deepEqual(await hot.getMetricsAsJSON(), await stock.getMetricsAsJSON());
  t.regex(await hot.metrics(), /h_seconds_bucket\{le="0.005",upstream="keeta",class="success"\} 4\n/);
});

test('HotHistogram refuses missing or unknown labels, non-finite values, and the le label', (t) => {
  const { b } = pair();
  t.throws(() => b.observe({ upstream: 'keeta' } as never, 1), { message: /label "class" is missing/ });
  t.throws(() => b.observe({ upstream: 'keeta', class: 'success', extra: 'x' } as never, 1), { message: /unknown label/ });
  t.throws(() => b.observe({ upstream: 'keeta', class: 'success' }, Number.NaN), { instanceOf: TypeError });
  t.throws(() => new HotHistogram({ ...cfg(new Registry()), labelNames: ['le'] }), { message: /reserved/ });
});

test('a registry reset zeroes every series; handles made before it keep counting', async (t) => {
  const { hot, b } = pair();
  const h = b.labels({ upstream: 'keeta', class: 'success' });
  h.observe(0.2);
  hot.resetMetrics();
  t.regex(await hot.metrics(), /h_seconds_count\{upstream="keeta",class="success"\} 0\n/);
  h.observe(0.2);
  t.regex(await hot.metrics(), /h_seconds_count\{upstream="keeta",class="success"\} 1\n/);
});

test('per-request counts kept in plain numbers reach /metrics at scrape time, inflight included', async (t) => {
  const m = createMetrics({ upstreams: [{ name: 'keeta', type: 'keeta' }], collectDefaults: false });
  const r = m.forUpstream('keeta');
  r.begin();
  r.begin();
  r.attempt(0.02);
  r.code('0');
  r.code('115000101');
  r.code('0');
  r.retry('token');
  r.finish('success', 0.03);
  r.end();
  const text = await m.registry.metrics();
  t.regex(text, /^countersign_inflight_requests\{upstream="keeta"\} 1$/m);
  t.regex(text, /^countersign_requests_total\{upstream="keeta",class="success"\} 1$/m);
  t.regex(text, /^countersign_upstream_codes_total\{upstream="keeta",code="0"\} 2$/m);
  t.regex(text, /^countersign_upstream_codes_total\{upstream="keeta",code="115000101"\} 1$/m);
  t.regex(text, /^countersign_retries_total\{upstream="keeta",reason="token"\} 1$/m);
  t.regex(text, /^countersign_upstream_duration_seconds_bucket\{le="0.025",upstream="keeta"\} 1$/m);
  t.regex(text, /^countersign_request_duration_seconds_count\{upstream="keeta",class="success"\} 1$/m);
  // Counted once: a second scrape with nothing new shows the same totals.
  r.finish('success', 0.03);
  const again = await m.registry.metrics();
  t.regex(again, /^countersign_requests_total\{upstream="keeta",class="success"\} 2$/m);
  t.regex(again, /^countersign_upstream_codes_total\{upstream="keeta",code="0"\} 2$/m);
  t.regex(await m.registry.metrics(), /^countersign_requests_total\{upstream="keeta",class="success"\} 2$/m);
});

test('label values containing separators never share a series', async (t) => {
  const { hot, b } = pair();
  b.observe({ upstream: 'a,class:b', class: 'c' }, 1);
  b.observe({ upstream: 'a', class: 'b,class:c' }, 1);
  const text = await hot.metrics();
  t.regex(text, /h_seconds_count\{upstream="a,class:b",class="c"\} 1\n/);
  t.regex(text, /h_seconds_count\{upstream="a",class="b,class:c"\} 1\n/);
});

test('a request refused before any upstream attempt creates no upstream-duration series', async (t) => {
  const m = createMetrics({ upstreams: [{ name: 'keeta', type: 'keeta' }], collectDefaults: false });
  m.forUpstream('keeta').finish('rejected', 0.001);
  const text = await m.registry.metrics();
  t.notRegex(text, /countersign_upstream_duration_seconds_count\{upstream="keeta"\}/);
  t.regex(text, /^countersign_requests_total\{upstream="keeta",class="rejected"\} 1$/m);
});
