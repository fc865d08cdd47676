/**
 * The operators' console (GET /console on the admin listener) in a real browser: Chromium from
 * Debian driven by playwright-core. The gateway has an admin token; its store holds a valid, a
 * refresh_failed and a revoked merchant. A merchant is connected through the Keeta simulator's
 * authorize page, whose redirect reaches the ingress through a TLS load balancer for
 * hooks.example.com (as in oauth-browser.test.ts).
 */
import test, { type ExecutionContext } from 'ava';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startKeetaSim, type KeetaSim } from '../../src/sim/index.js';
import { MemoryStore } from '../../src/tokens/memory-store.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { keetaIngressYaml, PUBLIC_REDIRECT_URI } from '../helpers/ingress-setup.js';
import { KEETA_APP_ID, KEETA_SECRET } from '../helpers/keeta-setup.js';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream.js';

const PUBLIC_ORIGIN = 'https://hooks.example.com';
const ADMIN_TOKEN = 'console-admin-token-3c9d1e';
const DAY = 86_400_000;

let browser: Browser;
let balancer: Server;
let ingressUrl = '';

/** hooks.example.com: a self-signed TLS load balancer in front of the ingress listener (fixture certificate of oauth-browser.test.ts). */
async function startBalancer(): Promise<Server> {
  const fixture = (name: string) => readFileSync(fileURLToPath(new URL(`fixtures/${name}`, import.meta.url)));
  const server = createServer({ key: fixture('hooks.example.com.key'), cert: fixture('hooks.example.com.crt') }, (req, res) => {
    void (async () => {
      const answer = await fetch(`${ingressUrl}${req.url ?? '/'}`, { headers: { 'x-forwarded-for': req.socket.remoteAddress ?? '' } });
      res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'text/plain' });
      res.end(await answer.text());
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
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', `--host-resolver-rules=MAP hooks.example.com:443 127.0.0.1:${port}`] });
});
test.after.always(async () => {
  await browser?.close();
  balancer?.closeAllConnections();
  balancer?.close();
});

interface Setup {
  sim: KeetaSim;
  gw: TestGateway;
  target: RecordingUpstream;
}

/** A gateway whose store already holds valid-brand (a pair the simulator knows), failing-brand (one it does not) and gone-brand (revoked). */
async function setup(t: ExecutionContext): Promise<Setup> {
  const sim = await startKeetaSim({ appId: KEETA_APP_ID, appSecret: KEETA_SECRET, redirectUris: [PUBLIC_REDIRECT_URI] });
  const target = await startRecordingUpstream();
  const store = new MemoryStore();
  const now = Date.now();
  const pair = sim.control.addMerchant({ merchantId: 'valid-brand', shopIds: ['101', '102'], issuedAtMs: now - 10 * 60_000 });
  const record = (merchant: string, accessToken: string, refreshToken: string, shopIds: string[], extra: { revokedAt?: number } = {}) => ({
    upstream: 'keeta',
    merchant,
    accessToken,
    refreshToken,
    issuedAt: now - 10 * 60_000,
    refreshedAt: now - 10 * 60_000,
    expiresAt: now + 20 * DAY,
    shopIds,
    ...extra,
  });
  await store.open();
  await store.put(record('valid-brand', pair.accessToken, pair.refreshToken, ['101', '102']));
  await store.put(record('failing-brand', 'at-not-known-to-the-sim-0001', 'rt-not-known-to-the-sim-0001', ['201']));
  await store.put(record('gone-brand', 'at-of-a-revoked-merchant-0002', 'rt-of-a-revoked-merchant-0002', ['301', '302', '303'], { revokedAt: now - DAY }));
  const gw = await startGateway(keetaIngressYaml(sim.baseUrl, sim.authorizeUrl, target.url, { extraYaml: `admin:\n  token: ${ADMIN_TOKEN}\n` }), { ingress: true, store });
  for (const s of [pair.accessToken, pair.refreshToken, 'at-not-known-to-the-sim-0001', 'rt-not-known-to-the-sim-0001', 'at-of-a-revoked-merchant-0002', 'rt-of-a-revoked-merchant-0002']) gw.secrets.add(s);
  ingressUrl = gw.ingressUrl;
  t.teardown(async () => {
    await gw.close();
    await sim.close();
    await target.close();
  });
  // A renewal the simulator refuses: failing-brand becomes refresh_failed.
  const failed = await fetch(`${gw.adminUrl}/admin/upstreams/keeta/merchants/failing-brand/refresh`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  t.true(failed.status >= 400, 'the renewal of failing-brand fails');
  return { sim, gw, target };
}

/** Script errors (uncaught exceptions, console errors such as CSP violations); an answered 401 is not one. */
function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/^Failed to load resource: the server responded with a status of 401/.test(msg.text())) errors.push(`console: ${msg.text()}`);
  });
  return errors;
}

const row = (page: Page, merchant: string) => page.locator(`tr[data-merchant="${merchant}"]`);
const stateOf = (page: Page, merchant: string) => row(page, merchant).locator('[data-field="state"]').textContent();

test.serial('log in, see each state, refresh, connect through the authorize page, forget after confirming; nothing without the token', async (t) => {
  const s = await setup(t);
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  t.teardown(() => context.close());
  const page = await context.newPage();
  const errors = watchErrors(page);

  // Without the token: the login form, no merchant, and the API refuses the page's own call.
  const served = await page.goto(`${s.gw.adminUrl}/console`);
  t.is(served?.status(), 200);
  await page.locator('#login').waitFor({ state: 'visible' });
  t.is(await page.locator('tr[data-merchant]').count(), 0);
  t.false((await page.content()).includes('valid-brand'));
  t.is(await page.evaluate(async () => (await fetch('/admin/tokens')).status), 401);

  // A wrong token is refused and not kept.
  await page.fill('#token', 'not-the-admin-token-000000');
  await page.click('#login-form button[type="submit"]');
  await page.locator('#login-error').filter({ hasText: 'refused' }).waitFor();
  t.is(await page.evaluate('sessionStorage.length'), 0);

  // Log in.
  await page.fill('#token', ADMIN_TOKEN);
  await page.click('#login-form button[type="submit"]');
  await row(page, 'valid-brand').waitFor();
  t.is(await stateOf(page, 'valid-brand'), 'valid');
  t.is(await stateOf(page, 'failing-brand'), 'refresh_failed');
  t.is(await stateOf(page, 'gone-brand'), 'revoked');
  t.is(await row(page, 'gone-brand').locator('[data-field="shops"]').textContent(), '3');
  t.regex((await row(page, 'failing-brand').textContent()) ?? '', /failed 1×/);
  t.is(await page.textContent('#attention-count'), '2');
  t.regex((await page.textContent('#attention-list')) ?? '', /refresh_failed keeta \/ failing-brand[\s\S]*revoked keeta \/ gone-brand/);
  t.regex((await page.textContent('#soonest')) ?? '', /\(keeta\) in 19 d/);
  // Logged in once: a reload keeps the session without asking again.
  await page.reload();
  await row(page, 'valid-brand').waitFor();

  // Refresh now: the expiry moves.
  const before = await row(page, 'valid-brand').locator('[data-field="expires"]').getAttribute('data-value');
  await row(page, 'valid-brand').locator('[data-action="refresh"]').click();
  await page.locator('#notice').filter({ hasText: 'Renewed keeta / valid-brand' }).waitFor();
  const after = await row(page, 'valid-brand').locator('[data-field="expires"]').getAttribute('data-value');
  t.true(Date.parse(after!) > Date.parse(before!), `expiry ${before} → ${after}`);

  // Connect a merchant: the link, the simulator's authorize page in a new tab, then the merchant appears.
  s.sim.control.addMerchantAccount({ merchantId: 'new-brand', shopCount: 4, brandName: 'New Brand' });
  await page.locator('section[data-upstream="keeta"] [data-action="connect"]').click();
  const linkEl = page.locator('[data-role="authorization-link"]');
  await linkEl.waitFor();
  const link = (await linkEl.getAttribute('href'))!;
  t.true(link.startsWith(s.sim.authorizeUrl));
  const [tab] = await Promise.all([context.waitForEvent('page'), linkEl.click()]);
  await tab!.waitForLoadState();
  await tab!.check('input[name="merchantId"][value="new-brand"]');
  await Promise.all([tab!.waitForURL(`${PUBLIC_ORIGIN}/**`), tab!.click('button[value="authorize"]')]);
  t.is(await tab!.textContent('h1'), 'Connected');
  await tab!.close();
  // The gateway names a connected merchant after its brand id (brand-…).
  await page.locator('#notice').filter({ hasText: 'Connected: keeta / ' }).waitFor({ timeout: 15_000 });
  const connected = /Connected: keeta \/ (\S+)\./.exec((await page.textContent('#notice')) ?? '')?.[1];
  t.regex(connected ?? '', /^brand-\d+$/);
  t.is(await stateOf(page, connected!), 'valid');
  t.is(await row(page, connected!).locator('[data-field="shops"]').textContent(), '4');

  // Replace shops.
  await row(page, connected!).locator('[data-action="shops"]').click();
  await page.fill('#shops-input', '901, 902 9007199254740993');
  await page.click('#shops-ok');
  await page.locator('#notice').filter({ hasText: `Replaced the shops of keeta / ${connected}: 3 shop(s)` }).waitFor();
  t.is(await row(page, connected!).locator('[data-field="shops"]').textContent(), '3');

  // Refusals by class: callers name a shop no merchant serves, and one of the revoked merchant.
  for (const shopId of ['999', '301']) {
    const res = await fetch(`${s.gw.proxyUrl}/keeta/order/get`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"orderViewId":1,"shopId":${shopId}}` });
    t.true(res.status >= 400, `shop ${shopId} is refused`);
  }
  await page.reload();
  await page.locator('#activity tr[data-class="rejected"]').waitFor();
  t.is(await page.locator('#activity tr[data-class="rejected"] td').nth(2).textContent(), '2');
  if (process.env.COUNTERSIGN_CONSOLE_SCREENSHOT) {
    await page.setViewportSize({ width: 1360, height: 900 });
    await page.screenshot({ path: process.env.COUNTERSIGN_CONSOLE_SCREENSHOT, fullPage: true });
  }

  // Forget: nothing happens on Cancel; the merchant goes after confirming.
  await row(page, 'gone-brand').locator('[data-action="forget"]').click();
  t.true(await page.locator('#confirm').isVisible());
  t.regex((await page.textContent('#confirm-text')) ?? '', /Forget gone-brand of keeta\?/);
  await page.click('#confirm [data-answer="cancel"]');
  t.false(await page.locator('#confirm').isVisible());
  t.is(await row(page, 'gone-brand').count(), 1);
  await row(page, 'gone-brand').locator('[data-action="forget"]').click();
  await page.click('#confirm-ok');
  await page.locator('#notice').filter({ hasText: 'Forgot keeta / gone-brand' }).waitFor();
  t.is(await row(page, 'gone-brand').count(), 0);
  t.is((await s.gw.app.store.get('keeta', 'gone-brand')), undefined);

  // No token or secret anywhere on the page.
  const html = await page.content();
  for (const secret of [ADMIN_TOKEN, ...[...s.gw.secrets].filter((x) => x.length >= 8)]) t.false(html.includes(secret), 'a token or secret is on the page');

  // Log out: the merchants are gone and the token with them.
  await page.click('#logout');
  await page.locator('#login').waitFor({ state: 'visible' });
  t.is(await page.locator('tr[data-merchant]').count(), 0);
  t.is(await page.evaluate('sessionStorage.length'), 0);
  t.deepEqual(errors, []);
});

test.serial('a cross-site form POST to the admin API is refused; the page is served with its security headers', async (t) => {
  const s = await setup(t);
  const context = await browser.newContext();
  t.teardown(() => context.close());
  const page = await context.newPage();
  // Another site (localhost is not 127.0.0.1's site) posts a form at the admin listener.
  await page.goto(`${s.sim.baseUrl.replace('127.0.0.1', 'localhost')}/`);
  const refreshesBefore = s.sim.control.counters().refreshCalls;
  const action = `${s.gw.adminUrl}/admin/upstreams/keeta/merchants/valid-brand/refresh`;
  const [answer] = await Promise.all([
    page.waitForResponse((r) => r.url() === action),
    // A plain form, as a hostile page would build it (evaluated in the browser).
    page.evaluate(`(() => { const f = document.createElement('form'); f.method = 'POST'; f.action = ${JSON.stringify(action)}; document.body.append(f); f.submit(); })()`),
  ]);
  t.is(answer.status(), 403);
  t.regex(await answer.text(), /cross-site admin request refused/);
  t.is(s.sim.control.counters().refreshCalls, refreshesBefore, 'nothing was renewed');

  const res = await fetch(`${s.gw.adminUrl}/console`);
  t.is(res.status, 200);
  const csp = res.headers.get('content-security-policy') ?? '';
  t.regex(csp, /script-src 'self'/);
  t.notRegex(csp, /unsafe-inline/);
  t.regex(csp, /frame-ancestors 'none'/);
  t.is(res.headers.get('x-content-type-options'), 'nosniff');
  t.is(res.headers.get('x-frame-options'), 'DENY');
  const html = await res.text();
  t.notRegex(html, /<script>|<script [^>]*>[^<]+<\/script>|\son[a-z]+=/i, 'no inline script or handler');
  t.false(html.includes(ADMIN_TOKEN));
  const js = await fetch(`${s.gw.adminUrl}/console/console.js`);
  t.regex(js.headers.get('content-type') ?? '', /^text\/javascript/);
  t.is(js.headers.get('x-content-type-options'), 'nosniff');
});
