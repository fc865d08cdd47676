/**
 * Merchant authorization in a real browser: Chromium from Debian driven by playwright-core
 * opens the link from the admin API, goes through the Keeta simulator's authorize page and
 * lands on the gateway's own page. The gateway is published as https://hooks.example.com
 * (PUBLIC_REDIRECT_URI): as in production, a TLS load balancer for that name (here a
 * self-signed one on loopback, which the browser resolves through --host-resolver-rules)
 * passes the browser's requests to the real ingress listener.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { Clock } from '../../src/core/clock.js';
import { KEETA_SIM_CODES } from '../../src/sim/index.js';
import { postJson } from '../helpers/http.js';
import { adminTokens, createAuthorization, keetaIngressSetup, type KeetaIngressOptions, type KeetaIngressSetup } from '../helpers/ingress-setup.js';

const PUBLIC_ORIGIN = 'https://hooks.example.com';
let browser: Browser;
let balancer: Server;
/** Where the load balancer sends the current test's requests, and what it served. */
const backend: { ingressUrl: string; pages: string[]; onRequest: (url: URL) => void } = { ingressUrl: '', pages: [], onRequest: () => {} };

/**
 * A TLS load balancer for hooks.example.com in front of the current test's ingress listener.
 * Its certificate is a self-signed test fixture (CN and SAN hooks.example.com, valid 100
 * years; made with `openssl req -x509 -newkey rsa:2048 -nodes -days 36500 ...`).
 */
async function startBalancer(): Promise<Server> {
  const fixture = (name: string) => readFileSync(fileURLToPath(new URL(`fixtures/${name}`, import.meta.url)));
  const server = createServer({ key: fixture('hooks.example.com.key'), cert: fixture('hooks.example.com.crt') }, (req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', PUBLIC_ORIGIN);
      backend.onRequest(url);
      const answer = await fetch(`${backend.ingressUrl}${url.pathname}${url.search}`, { headers: { 'x-forwarded-for': req.socket.remoteAddress ?? '' } });
      const body = await answer.text();
      backend.pages.push(body);
      res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'text/plain' });
      res.end(body);
    })().catch((err: unknown) => {
      res.writeHead(502);
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

test.before(async () => {
  balancer = await startBalancer();
  const port = (balancer.address() as AddressInfo).port;
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', `--host-resolver-rules=MAP hooks.example.com:443 127.0.0.1:${port}`],
  });
});
test.after.always(async () => {
  await browser?.close();
  balancer?.closeAllConnections();
  balancer?.close();
});

interface Flow extends KeetaIngressSetup {
  context: BrowserContext;
  page: Page;
  /** Every gateway page the browser received (HTML as served). */
  gatewayPages: string[];
  /** Authorization codes that came through the balancer. */
  codes: string[];
}

async function flow(t: Parameters<typeof keetaIngressSetup>[0], o: KeetaIngressOptions = {}): Promise<Flow> {
  const setup = await keetaIngressSetup(t, o);
  // The balancer's certificate is self-signed: this browser context trusts it.
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  t.teardown(() => context.close());
  const gatewayPages: string[] = [];
  const codes: string[] = [];
  backend.ingressUrl = setup.gw.ingressUrl;
  backend.pages = gatewayPages;
  backend.onRequest = (url) => {
    const code = url.searchParams.get('code');
    if (code) {
      codes.push(code);
      setup.gw.secrets.add(code);
    }
  };
  const page = await context.newPage();
  return { ...setup, context, page, gatewayPages, codes };
}

/** Opens the link, picks the account and presses the button; resolves on the gateway's page. */
async function authorizeInBrowser(f: Flow, link: string, merchantId: string, button: 'authorize' | 'deny' = 'authorize'): Promise<void> {
  await f.page.goto(link);
  await f.page.check(`input[name="merchantId"][value="${merchantId}"]`);
  await Promise.all([f.page.waitForURL(`${PUBLIC_ORIGIN}/**`), f.page.click(`button[value="${button}"]`)]);
}

/** Nothing secret in what the browser shows or was served. */
function assertNoSecretOnPages(t: Parameters<typeof keetaIngressSetup>[0], f: Flow, shown: string): void {
  const secrets = [...f.gw.secrets].filter((s) => s.length >= 8);
  t.true(secrets.length >= 2 + new Set(f.codes).size, 'the app secret, the state and every code are checked at least');
  for (const html of [...f.gatewayPages, shown]) {
    for (const s of secrets) t.false(html.includes(s), 'a secret, token, code or state appears on a page');
    for (const m of ['chain', 'store']) {
      const view = f.sim.control.merchant(m);
      if (view?.accessToken) t.false(html.includes(view.accessToken));
      if (view?.refreshToken) t.false(html.includes(view.refreshToken));
    }
  }
}

test.serial('a chain brand connects through the authorize page; every page of shops is indexed; the code cannot be used again', async (t) => {
  const f = await flow(t);
  const brand = `Tom & Jerry's <b>Diner</b>`;
  const account = f.sim.control.addMerchantAccount({ merchantId: 'chain', shopCount: 450, brandName: brand });
  f.sim.control.addMerchantAccount({ merchantId: 'store', shopCount: 1, brandName: 'Corner Cafe' });
  const link = await createAuthorization(f.gw);

  await authorizeInBrowser(f, link.url, 'chain');
  t.is(await f.page.title(), 'Countersign: connected');
  t.is(await f.page.textContent('h1'), 'Connected');
  t.is(await f.page.textContent('#brand'), brand, 'the brand name is shown as text, not markup');
  t.is(await f.page.locator('#brand b').count(), 0);
  t.is(await f.page.textContent('#shops'), '450 shops');
  assertNoSecretOnPages(t, f, await f.page.content());
  t.like(f.sim.control.counters(), { authCodeCalls: 1, authCodeExchanges: 1 });
  t.is(f.codes.length, 1);

  // Callable through the proxy by a shop from the last page (shops 401..450), no import.
  const lastShop = account.shopIds[449]!;
  const res = await postJson(`${f.gw.proxyUrl}/keeta/order/get`, `{"orderViewId":1234567890123456789,"shopId":${lastShop}}`);
  t.is(res.json?.code, 0, res.text);
  t.true(res.text.includes(`"shopId":${lastShop}`));
  t.deepEqual((await adminTokens(f.gw)).map((m) => [m.state, m.shopCount]), [['valid', 450]]);

  // The same callback again (reload): the code is not exchanged twice.
  await f.page.reload();
  t.is(await f.page.textContent('h1'), 'Already connected');
  t.is(await f.page.textContent('#shops'), '450 shops');
  t.like(f.sim.control.counters(), { authCodeCalls: 1, authCodeReuse: 0 });
  t.deepEqual(f.codes, [f.codes[0], f.codes[0]], 'the same code arrived twice');
  assertNoSecretOnPages(t, f, await f.page.content());
});

test.serial('an independent store by Event 1 and redirect at once: one exchange, the browser sees "Already connected"', async (t) => {
  const f = await flow(t, { sim: { oauthDelivery: 'both' } });
  const account = f.sim.control.addMerchantAccount({ merchantId: 'store', shopCount: 1, brandName: 'Corner Cafe' });
  const link = await createAuthorization(f.gw);
  await authorizeInBrowser(f, link.url, 'store');
  t.is(await f.page.textContent('h1'), 'Already connected');
  t.is(await f.page.textContent('#brand'), 'Corner Cafe');
  t.is(await f.page.textContent('#shops'), '1 shop');
  const pushes = f.sim.control.counters().event1Pushes;
  t.is(pushes.length, 1);
  t.like(pushes[0]!.answers[0]!.json, { code: 0 });
  for (const s of [...f.gw.secrets].filter((x) => x.length >= 8)) t.false(JSON.stringify(pushes[0]!.answers).includes(s), 'no secret in the answer to Keeta');
  t.like(f.sim.control.counters(), { authCodeCalls: 1, authCodeExchanges: 1, authCodeReuse: 0 });
  const res = await postJson(`${f.gw.proxyUrl}/keeta/order/get`, `{"orderViewId":1,"shopId":${account.shopIds[0]}}`);
  t.is(res.json?.code, 0, res.text);
  assertNoSecretOnPages(t, f, await f.page.content());
});

test.serial('a forged state is refused without an exchange', async (t) => {
  const f = await flow(t);
  f.sim.control.addMerchantAccount({ merchantId: 'store', shopCount: 1 });
  const link = await createAuthorization(f.gw);
  const forged = new URL(link.url);
  forged.searchParams.set('state', 'Zm9yZ2VkLXN0YXRlLXRoYXQtdGhlLWdhdGV3YXktbmV2ZXItaXNzdWVk');
  f.gw.secrets.add(forged.searchParams.get('state')!);
  await authorizeInBrowser(f, forged.href, 'store');
  t.is(await f.page.title(), 'Countersign: not connected');
  t.is(await f.page.textContent('h1'), 'Not connected');
  t.regex((await f.page.textContent('#reason')) ?? '', /unknown or has expired/);
  t.like(f.sim.control.counters(), { authCodesIssued: 1, authCodeCalls: 0 });
  t.deepEqual(await adminTokens(f.gw), []);
  assertNoSecretOnPages(t, f, await f.page.content());
});

test.serial('an expired state (link older than 10 minutes) is refused without an exchange', async (t) => {
  let offsetMs = 0;
  const clock: Clock = { now: () => Date.now() + offsetMs };
  const f = await flow(t, { clock });
  f.sim.control.addMerchantAccount({ merchantId: 'store', shopCount: 1 });
  const link = await createAuthorization(f.gw);
  offsetMs = 10 * 60_000 + 1000;
  f.sim.control.setClockOffset(offsetMs);
  await authorizeInBrowser(f, link.url, 'store');
  t.is(await f.page.textContent('h1'), 'Not connected');
  t.regex((await f.page.textContent('#reason')) ?? '', /expired/);
  t.like(f.sim.control.counters(), { authCodesIssued: 1, authCodeCalls: 0 });
  assertNoSecretOnPages(t, f, await f.page.content());
});

test.serial('Keeta refusing the code gives a clear page; the link cannot be replayed', async (t) => {
  const f = await flow(t);
  f.sim.control.addMerchantAccount({ merchantId: 'store', shopCount: 1 });
  const link = await createAuthorization(f.gw);
  f.sim.control.failNext(1, { includeTokenEndpoint: true, code: KEETA_SIM_CODES.AUTH_CODE_INVALID, message: 'authorization code invalid, used or expired' });
  await authorizeInBrowser(f, link.url, 'store');
  t.is(await f.page.textContent('h1'), 'Not connected');
  t.regex((await f.page.textContent('#reason')) ?? '', /Keeta did not accept the authorization code/);
  t.like(f.sim.control.counters(), { authCodeCalls: 1, authCodeExchanges: 0 });
  // Back to the authorize page with the same link: the state was spent, a new code is not exchanged.
  await authorizeInBrowser(f, link.url, 'store');
  t.is(await f.page.textContent('h1'), 'Not connected');
  t.like(f.sim.control.counters(), { authCodesIssued: 2, authCodeCalls: 1 });
  t.deepEqual(await adminTokens(f.gw), []);
  assertNoSecretOnPages(t, f, await f.page.content());
});

test.serial('Deny on the authorize page ends on a "Not connected" page', async (t) => {
  const f = await flow(t);
  f.sim.control.addMerchantAccount({ merchantId: 'store', shopCount: 1 });
  const link = await createAuthorization(f.gw);
  await authorizeInBrowser(f, link.url, 'store', 'deny');
  t.is(await f.page.textContent('h1'), 'Not connected');
  t.regex((await f.page.textContent('#reason')) ?? '', /declined/);
  t.like(f.sim.control.counters(), { authCodesIssued: 0, authCodeCalls: 0 });
  assertNoSecretOnPages(t, f, await f.page.content());
});
