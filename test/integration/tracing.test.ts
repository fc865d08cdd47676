/**
 * OpenTelemetry traces, received over OTLP/HTTP by an in-process collector on loopback: the
 * span tree of a proxied request (server span, a client span per attempt, the token renewal
 * a retry waited for), the caller's traceparent continued, the upstream given the client
 * span's, parent-based sampling, ingress deliveries, and no secret, merchant id or body in any
 * exported byte.
 */
import test from 'ava';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KEETA_SIM_CODES } from '../../src/sim/index.js';
import { rawRequest } from '../helpers/http.js';
import { keetaIngressSetup, PUBLIC_HOOK_URL, waitFor, type KeetaIngressSetup } from '../helpers/ingress-setup.js';
import { importPair } from '../helpers/keeta-setup.js';

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: OtlpValue }[];
  events?: { name: string; attributes: { key: string; value: OtlpValue }[] }[];
  status?: { code?: number };
}

/** An OTLP/HTTP (JSON) trace receiver: every body it was sent, and the spans in them. */
async function startCollector(): Promise<{ url: string; bodies: string[]; spans: () => OtlpSpan[]; contentTypes: string[]; close: () => Promise<void> }> {
  const bodies: string[] = [];
  const contentTypes: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces') {
        bodies.push(Buffer.concat(chunks).toString('utf8'));
        contentTypes.push(req.headers['content-type'] ?? '');
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    bodies,
    contentTypes,
    spans: () =>
      bodies.flatMap((b) =>
        (JSON.parse(b) as { resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[] }).resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)),
      ),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const attr = (s: OtlpSpan, key: string) => {
  const v = s.attributes.find((a) => a.key === key)?.value;
  return v?.stringValue ?? (v?.intValue !== undefined ? Number(v.intValue) : v?.boolValue);
};

const MERCHANT = 'traced-brand-7';
const SHOP = '4242424242';

async function gatewayWithTracing(t: Parameters<typeof keetaIngressSetup>[0], collectorUrl: string, sampleRatio: number): Promise<KeetaIngressSetup> {
  const s = await keetaIngressSetup(t, {
    extraYaml: `    tokenErrorCodes: [${KEETA_SIM_CODES.ACCESS_TOKEN_INVALID}]\ntracing:\n  otlpEndpoint: ${collectorUrl}\n  sampleRatio: ${sampleRatio}\n  serviceName: countersign-test\n`,
  });
  const pair = s.sim.control.addMerchant({ merchantId: MERCHANT, shopIds: [SHOP], issuedAtMs: Date.now() - 10 * 60_000 });
  await importPair(s.gw.adminUrl, 'keeta', MERCHANT, pair, [SHOP]);
  s.gw.secrets.add(pair.accessToken).add(pair.refreshToken);
  return s;
}

/** Nothing secret in what was exported: tokens, app secret, merchant id, request bodies. */
function assertNothingSecret(t: Parameters<typeof keetaIngressSetup>[0], s: KeetaIngressSetup, exported: string, bodies: string[]): void {
  const secrets = [...s.gw.secrets].filter((x) => x.length >= 8);
  t.true(secrets.length >= 3);
  for (const secret of secrets) t.false(exported.includes(secret), 'a token or secret was exported in a span');
  for (const m of [MERCHANT, ...[s.sim.control.merchant(MERCHANT)?.accessToken ?? '']].filter(Boolean)) t.false(exported.includes(m), 'a merchant id or its token was exported');
  for (const b of bodies) t.false(exported.includes(b), 'a body was exported');
  t.false(exported.includes(SHOP), 'a body field was exported');
}

test.serial('a proxied request continues the caller\'s traceparent: server span, a client span per attempt, the renewal it waited for', async (t) => {
  const collector = await startCollector();
  t.teardown(() => collector.close());
  // Ratio 0: only the caller's sampled traceparent makes a trace (parent-based).
  const s = await gatewayWithTracing(t, collector.url, 0);
  const traceId = '4bf92f3577b34da6a3ce929d0e0736aa';
  const callerSpan = '00f067aa0ba902b7';
  const body = `{"orderViewId":1234567890123456789,"shopId":${SHOP}}`;
  // The first attempt's token is refused: the proxy renews it and sends again.
  s.sim.control.expireAccessToken(MERCHANT);
  const traced = await rawRequest(s.gw.proxyUrl, {
    path: '/keeta/order/get',
    headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${callerSpan}-01`, authorization: 'Bearer not-a-caller-token-but-secret' },
    body,
  });
  t.is(traced.json().code, 0, traced.body);
  // Not sampled by the caller, and the ratio is 0: no trace.
  const untraced = await rawRequest(s.gw.proxyUrl, { path: '/keeta/order/get', headers: { 'content-type': 'application/json', traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-00` }, body });
  t.is(untraced.json().code, 0);
  const plain = await rawRequest(s.gw.proxyUrl, { path: '/keeta/order/get', headers: { 'content-type': 'application/json' }, body });
  t.is(plain.json().code, 0);

  t.true(await waitFor(() => collector.spans().length >= 4, 10_000), `spans: ${collector.spans().length}`);
  await new Promise((r) => setTimeout(r, 1500)); // one more batch interval: nothing else may arrive
  const spans = collector.spans();
  t.true(collector.contentTypes.every((c) => c.startsWith('application/json')));
  t.deepEqual([...new Set(spans.map((x) => x.traceId))], [traceId], 'only the caller-sampled trace was exported');

  const server = spans.find((x) => x.kind === 2)!;
  t.is(server.parentSpanId, callerSpan, 'the server span continues the caller');
  t.is(server.name, 'POST /keeta/order/get');
  t.is(attr(server, 'http.request.method'), 'POST');
  t.is(attr(server, 'http.route'), '/keeta/order/get');
  t.is(attr(server, 'http.response.status_code'), 200);
  t.is(attr(server, 'countersign.upstream'), 'keeta');
  t.is(attr(server, 'countersign.class'), 'success');
  t.deepEqual(server.events?.map((e) => [e.name, attr(e as unknown as OtlpSpan, 'countersign.retry.reason')]), [['countersign.retry', 'token']]);

  const clients = spans.filter((x) => x.kind === 3);
  t.is(clients.length, 2, 'one client span per upstream attempt');
  for (const c of clients) {
    t.is(c.parentSpanId, server.spanId);
    t.is(c.name, 'POST');
    t.is(attr(c, 'countersign.upstream'), undefined);
    t.regex(String(attr(c, 'url.full')), /^http:\/\/127\.0\.0\.1:\d+\/api\/open\/order\/get$/);
    t.is(attr(c, 'server.address'), '127.0.0.1');
  }
  const [first, second] = clients.sort((a, b) => Number(attr(a, 'http.request.resend_count') ?? 0) - Number(attr(b, 'http.request.resend_count') ?? 0)) as [OtlpSpan, OtlpSpan];
  t.is(attr(first, 'http.request.resend_count'), undefined);
  t.is(attr(first, 'countersign.class'), 'signature_error', 'the refused attempt, as Keeta code 115000105 classes (docs/protocols.md 4.4)');
  t.is(first.status?.code, 2, 'an error status');
  t.is(attr(second, 'http.request.resend_count'), 1);
  t.is(attr(second, 'countersign.retry.reason'), 'token');
  t.is(attr(second, 'countersign.class'), 'success');
  const renewal = spans.find((x) => x.name === 'countersign.token.renewal');
  t.truthy(renewal, 'the renewal the request waited for');
  t.is(renewal!.parentSpanId, server.spanId);
  t.is(attr(renewal!, 'countersign.retry.reason'), 'token');

  // The upstream received each client span's traceparent, not the caller's.
  const seen = s.sim.control.counters().requests.filter((r) => r.path.startsWith('/api/open/order/get')).map((r) => r.headers.traceparent);
  t.true(seen.includes(`00-${traceId}-${first.spanId}-01`), `upstream saw ${seen.join(' ')}`);
  t.true(seen.includes(`00-${traceId}-${second.spanId}-01`));
  t.false(seen.includes(`00-${traceId}-${callerSpan}-01`));

  s.gw.secrets.add('not-a-caller-token-but-secret');
  assertNothingSecret(t, s, collector.bodies.join('\n'), [body]);
});

test.serial('ingress deliveries are traced: a server span for the push, a client span per delivery, the target gets its traceparent', async (t) => {
  const collector = await startCollector();
  t.teardown(() => collector.close());
  const s = await gatewayWithTracing(t, collector.url, 1);
  const report = await s.sim.control.pushWebhook({ url: `${s.gw.ingressUrl}/hooks/keeta`, signUrl: PUBLIC_HOOK_URL, eventId: 1001, shopId: SHOP, message: { orderViewId: 1, note: 'a-body-value-never-exported' } });
  t.is(report.answers[0]?.status, 200, report.answers[0]?.body);
  t.true(await waitFor(() => collector.spans().length >= 2, 10_000));
  const spans = collector.spans();
  const push = spans.find((x) => x.kind === 2 && x.name === 'POST /hooks/keeta')!;
  t.truthy(push);
  t.is(attr(push, 'http.response.status_code'), 200);
  t.is(attr(push, 'countersign.upstream'), 'keeta');
  const delivery = spans.find((x) => x.kind === 3 && x.parentSpanId === push.spanId)!;
  t.truthy(delivery, 'the delivery is a child of the push');
  t.is(attr(delivery, 'url.full'), `${s.target.url}/orders`);
  t.is(attr(delivery, 'http.response.status_code'), 200);
  t.is(s.target.requests.at(-1)?.headers.traceparent, `00-${push.traceId}-${delivery.spanId}-01`);
  assertNothingSecret(t, s, collector.bodies.join('\n'), ['a-body-value-never-exported']);
});

test('tracing: is checked: an endpoint that is not a URL and a ratio out of range are refused', async (t) => {
  const { parseConfig } = await import('../../src/config/load.js');
  const yaml = (tracing: string) => `upstreams:\n  k:\n    type: keeta\n    baseUrl: http://127.0.0.1:1\n    appId: "1"\n    appSecret: s3cret-value-123\ntracing:\n${tracing}`;
  t.throws(() => parseConfig(yaml('  otlpEndpoint: collector:4318\n'), { env: {} }), { message: /tracing\.otlpEndpoint/ });
  t.throws(() => parseConfig(yaml('  otlpEndpoint: http://c:4318\n  sampleRatio: 2\n'), { env: {} }), { message: /tracing\.sampleRatio/ });
  const ok = parseConfig(yaml('  otlpEndpoint: http://c:4318\n'), { env: {} });
  t.deepEqual(ok.tracing, { otlpEndpoint: 'http://c:4318', sampleRatio: 1, serviceName: 'countersign' });
  t.is(parseConfig(yaml('').replace('tracing:\n', ''), { env: {} }).tracing, undefined);
});

test.serial('without tracing: the caller\'s traceparent reaches the upstream untouched (no propagation work)', async (t) => {
  const s = await keetaIngressSetup(t);
  const pair = s.sim.control.addMerchant({ merchantId: MERCHANT, shopIds: [SHOP], issuedAtMs: Date.now() - 10 * 60_000 });
  await importPair(s.gw.adminUrl, 'keeta', MERCHANT, pair, [SHOP]);
  const parent = `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`;
  const res = await rawRequest(s.gw.proxyUrl, { path: '/keeta/order/get', headers: { 'content-type': 'application/json', traceparent: parent }, body: `{"orderViewId":1,"shopId":${SHOP}}` });
  t.is(res.json().code, 0);
  const seen = s.sim.control.counters().requests.filter((r) => r.path.startsWith('/api/open/order/get')).map((r) => r.headers.traceparent);
  t.deepEqual(seen, [parent]);
  t.is(s.gw.app.live.current.tracing, undefined);
});
