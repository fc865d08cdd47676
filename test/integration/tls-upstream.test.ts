import test, { type ExecutionContext } from 'ava';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { fetch as undiciFetch, type Agent } from 'undici';
import { startKeetaSim, startKeySecureSim } from '../../src/sim/index.js';
import { startGateway } from '../helpers/gateway.js';
import { postJson } from '../helpers/http.js';
import { adminTokens, createAuthorization, keetaIngressYaml, PUBLIC_REDIRECT_URI } from '../helpers/ingress-setup.js';
import { importPair, KEETA_APP_ID, KEETA_SECRET } from '../helpers/keeta-setup.js';
import { KS_API_KEY, KS_API_SECRET } from '../helpers/keysecure-setup.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';
import { createTestPki, type TestPki } from '../helpers/test-certs.js';
import { tlsAgent } from '../helpers/tls-client.js';

/**
 * Reaching the upstream over TLS: signed Keeta calls, KeySecure renewals and the Keeta OAuth
 * code exchange against simulators serving HTTPS with a test CA (upstreams.*.tls.caFile), a
 * certificate the gateway refuses, mutual TLS, and an HTTP CONNECT egress proxy.
 */

function pki(t: ExecutionContext): TestPki {
  const p = createTestPki();
  t.teardown(() => p.remove());
  return p;
}

/** A forward proxy that only tunnels: records each CONNECT target and the first bytes through it. */
async function startConnectProxy(t: ExecutionContext): Promise<{ url: string; targets: string[]; firstBytes: string[] }> {
  const targets: string[] = [];
  const firstBytes: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((_req, res) => res.writeHead(405).end('CONNECT only'));
  server.on('connect', (req, client: Socket, head: Buffer) => {
    targets.push(req.url ?? '');
    sockets.add(client);
    const [host, port] = (req.url ?? '').split(':');
    const upstream = connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      client.once('data', (d: Buffer) => firstBytes.push(d.toString('latin1').slice(0, 80)));
      client.pipe(upstream).pipe(client);
    });
    sockets.add(upstream);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, targets, firstBytes };
}

function keysecureYaml(baseUrl: string, extra: string): string {
  return `upstreams:
  keysecure-hk:
    type: keysecure
    baseUrl: ${baseUrl}
    apiKey: ${KS_API_KEY}
    apiSecret: ${KS_API_SECRET}
    timezone: UTC+8
${extra}`;
}

const KS_PATH = '/keysecure-hk/open-api/v1/_echo';

test('KeySecure over HTTPS: the token renewal and the call reach the simulator, whose CA comes from tls.caFile', async (t) => {
  const p = pki(t);
  const sim = await startKeySecureSim({ apiKeys: [{ apiKey: KS_API_KEY, apiSecret: KS_API_SECRET }], tls: { cert: p.server.certPem, key: p.server.keyPem } });
  t.teardown(() => sim.close());
  t.regex(sim.baseUrl, /^https:\/\//);
  const gw = await startGateway(keysecureYaml(sim.baseUrl, `    tls:\n      caFile: ${p.ca.cert}\n      serverName: localhost\n`));
  t.teardown(() => gw.close());
  const res = await fetch(`${gw.proxyUrl}${KS_PATH}`);
  const body = await res.text();
  t.is(res.status, 200, body);
  const paths = sim.control.counters().requests.map((r) => r.path);
  t.true(paths.some((x) => x.startsWith('/open-api/v1/merchant/token')), 'the Access-Token was renewed over TLS');
  t.true(paths.some((x) => x.startsWith('/open-api/v1/_echo')));
});

test('a refused upstream certificate answers UPSTREAM_UNREACHABLE naming the certificate problem; nothing is sent', async (t) => {
  const p = pki(t);
  const sim = await startKeetaSim({ appId: KEETA_APP_ID, appSecret: KEETA_SECRET, tls: { cert: p.server.certPem, key: p.server.keyPem } });
  t.teardown(() => sim.close());
  const gw = await startGateway(`upstreams:\n  keeta:\n    type: keeta\n    baseUrl: ${sim.baseUrl}\n    appId: ${KEETA_APP_ID}\n    appSecret: ${KEETA_SECRET}\n`);
  t.teardown(() => gw.close());
  const pair = sim.control.addMerchant({ merchantId: 'brand-a', shopIds: ['1001'], issuedAtMs: Date.now() - 600_000 });
  await importPair(gw.adminUrl, 'keeta', 'brand-a', pair, ['1001']);
  const res = await postJson(`${gw.proxyUrl}/keeta/order/get`, { shopId: 1001, orderViewId: 1 });
  t.is(res.status, 502);
  t.is(res.json.error.code, 'UPSTREAM_UNREACHABLE');
  t.regex(res.json.error.message, /^certificate of https:\/\/127\.0\.0\.1:\d+ is not trusted: .+\([A-Z_]+\)$/);
  t.is(sim.control.counters().requests.length, 0);
});

test('mutual TLS: an upstream that wants a client certificate gets the one in tls.certFile/keyFile', async (t) => {
  const p = pki(t);
  const sim = await startKeySecureSim({ apiKeys: [{ apiKey: KS_API_KEY, apiSecret: KS_API_SECRET }], tls: { cert: p.server.certPem, key: p.server.keyPem, clientCa: p.ca.certPem } });
  t.teardown(() => sim.close());
  const client = p.issue('gateway-client', { cn: 'countersign', client: true });
  const without = await startGateway(keysecureYaml(sim.baseUrl, `    tls:\n      caFile: ${p.ca.cert}\n`));
  t.teardown(() => without.close());
  const refused = await fetch(`${without.proxyUrl}${KS_PATH}`);
  t.true(refused.status === 502 || refused.status === 503, `without a client certificate: ${refused.status}`);
  const gw = await startGateway(keysecureYaml(sim.baseUrl, `    tls:\n      caFile: ${p.ca.cert}\n      certFile: ${client.cert}\n      keyFile: ${client.key}\n`));
  t.teardown(() => gw.close());
  const res = await fetch(`${gw.proxyUrl}${KS_PATH}`);
  t.is(res.status, 200, await res.text());
});

test('egressProxy: the call and the token renewal are tunnelled with CONNECT to the upstream host and port', async (t) => {
  const p = pki(t);
  const proxy = await startConnectProxy(t);
  // Plain HTTP behind the tunnel, so the proxy can see which requests went through it.
  const plain = await startKeySecureSim({ apiKeys: [{ apiKey: KS_API_KEY, apiSecret: KS_API_SECRET }] });
  t.teardown(() => plain.close());
  const gw = await startGateway(keysecureYaml(plain.baseUrl, `    egressProxy: ${proxy.url}\n`));
  t.teardown(() => gw.close());
  const res = await fetch(`${gw.proxyUrl}${KS_PATH}`);
  t.is(res.status, 200, await res.text());
  const hostPort = new URL(plain.baseUrl).host;
  t.true(proxy.targets.length >= 1);
  t.true(proxy.targets.every((x) => x === hostPort), proxy.targets.join(', '));
  t.true(proxy.firstBytes.some((b) => b.startsWith('GET /open-api/v1/merchant/token') || b.startsWith('POST /open-api/v1/merchant/token')), `token call tunnelled: ${proxy.firstBytes.join(' | ')}`);

  // And to an HTTPS upstream: the tunnel ends at the upstream, TLS runs inside it.
  const secure = await startKeySecureSim({ apiKeys: [{ apiKey: KS_API_KEY, apiSecret: KS_API_SECRET }], tls: { cert: p.server.certPem, key: p.server.keyPem } });
  t.teardown(() => secure.close());
  const before = proxy.targets.length;
  const gw2 = await startGateway(keysecureYaml(secure.baseUrl, `    egressProxy: ${proxy.url}\n    tls:\n      caFile: ${p.ca.cert}\n`));
  t.teardown(() => gw2.close());
  const res2 = await fetch(`${gw2.proxyUrl}${KS_PATH}`);
  t.is(res2.status, 200, await res2.text());
  t.deepEqual([...new Set(proxy.targets.slice(before))], [new URL(secure.baseUrl).host]);
});

/** The merchant's browser over TLS: the simulator's authorize page, then the redirect to the gateway's TLS ingress. */
async function authorizeOverTls(agent: Agent, ingressUrl: string, link: string, merchantId: string): Promise<{ status: number; html: string }> {
  const page = await undiciFetch(link, { dispatcher: agent });
  const html = await page.text();
  const form = new URLSearchParams();
  for (const m of html.matchAll(/<input type="hidden" name="(\w+)" value="([^"]*)">/g)) form.set(m[1]!, m[2]!.replace(/&amp;/g, '&'));
  form.set('merchantId', merchantId);
  form.set('decision', 'authorize');
  const decided = await undiciFetch(new URL('/m/web/openapi/authorize', link), {
    dispatcher: agent,
    method: 'POST',
    body: form.toString(),
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  const back = new URL(decided.headers.get('location') ?? 'about:blank');
  const res = await undiciFetch(`${ingressUrl}${back.pathname}${back.search}`, { dispatcher: agent });
  return { status: res.status, html: await res.text() };
}

test('the Keeta OAuth code exchange runs over TLS, into an ingress listener served over TLS', async (t) => {
  const p = pki(t);
  const sim = await startKeetaSim({ appId: KEETA_APP_ID, appSecret: KEETA_SECRET, redirectUris: [PUBLIC_REDIRECT_URI], tls: { cert: p.server.certPem, key: p.server.keyPem } });
  const target = await startRecordingUpstream();
  t.teardown(async () => {
    await sim.close();
    await target.close();
  });
  const gw = await startGateway(keetaIngressYaml(sim.baseUrl, sim.authorizeUrl, target.url, { extraYaml: `    tls:\n      caFile: ${p.ca.cert}\n` }), {
    ingress: true,
    listenExtra: `  tls:\n    ingress:\n      certFile: ${p.server.cert}\n      keyFile: ${p.server.key}\n`,
  });
  t.teardown(() => gw.close());
  t.regex(gw.ingressUrl, /^https:\/\//);
  sim.control.addMerchantAccount({ merchantId: 'cafe', shopIds: ['4242'], brandName: 'Corner Cafe' });
  const link = await createAuthorization(gw);
  const agent = tlsAgent({ ca: p.ca.cert });
  t.teardown(() => agent.close());
  const page = await authorizeOverTls(agent, gw.ingressUrl, link.url, 'cafe');
  t.is(page.status, 200, page.html);
  t.regex(page.html, /<h1>Connected<\/h1>/);
  t.is(sim.control.counters().authCodeExchanges, 1);
  const tokens = await adminTokens(gw);
  t.is(tokens.length, 1);
  const res = await postJson(`${gw.proxyUrl}/keeta/order/get`, `{"orderViewId":1,"shopId":4242}`);
  t.is(res.json?.code, 0, res.text);
});
