/**
 * Merchant connection through the ingress listener, against the Keeta simulator over real
 * sockets: the authorize link, the OAuth redirect, Event 1, both at once, and every way it
 * must fail without exchanging the code.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { ManualClock } from '../../src/core/clock.js';
import { failingStore } from '../helpers/counting-store.js';
import { postJson } from '../helpers/http.js';
import { adminTokens, authorizeAs, createAuthorization, keetaIngressSetup, PUBLIC_REDIRECT_URI } from '../helpers/ingress-setup.js';
import { KEETA_APP_ID } from '../helpers/keeta-setup.js';

test('a merchant connected through the authorize link is callable by every shopId, with no import', async (t) => {
  const { sim, gw } = await keetaIngressSetup(t);
  const account = sim.control.addMerchantAccount({ merchantId: 'chain', shopCount: 450, brandName: 'Burgers <b>&</b> "Co"' });
  const link = await createAuthorization(gw);
  const url = new URL(link.url);
  t.is(`${url.origin}${url.pathname}`, sim.authorizeUrl);
  t.is(url.searchParams.get('responseType'), 'authorization_code');
  t.is(url.searchParams.get('appId'), KEETA_APP_ID);
  t.is(url.searchParams.get('redirectUri'), PUBLIC_REDIRECT_URI);
  t.is(url.searchParams.get('state'), link.state);
  t.is(url.searchParams.get('scope'), 'all');
  const lifeMs = Date.parse(link.expiresAt) - Date.now();
  t.true(lifeMs > 9 * 60_000 && lifeMs <= 10 * 60_000, 'the link works for 10 minutes');

  const page = await authorizeAs(gw, link.url, 'chain');
  t.is(page.status, 200);
  t.regex(page.html, /<h1>Connected<\/h1>/);
  t.true(page.html.includes('Burgers &lt;b&gt;&amp;&lt;/b&gt; &quot;Co&quot;'), 'the brand name is HTML-escaped');
  t.false(page.html.includes('<b>&</b>'));
  t.regex(page.html, /<span id="shops">450 shops<\/span>/);
  for (const secret of gw.secrets) t.false(page.html.includes(secret), 'no code, state or secret on the page');
  const view = sim.control.merchant('chain')!;
  t.false(page.html.includes(view.accessToken));
  t.false(page.html.includes(view.refreshToken));
  t.is(sim.control.counters().authCodeExchanges, 1);

  // Every page of shops (3 at 200 a page) is indexed: the last shop routes through the proxy.
  const merchant = `brand-${account.brandId}`;
  const tokens = await adminTokens(gw);
  t.deepEqual(tokens.map((m) => [m.merchant, m.state, m.shopCount]), [[merchant, 'valid', 450]]);
  const lastShop = account.shopIds[449]!;
  t.true(BigInt(lastShop) > 2n ** 53n, 'shop ids above 2^53 stay exact');
  const res = await postJson(`${gw.proxyUrl}/keeta/order/get`, `{"orderViewId":1,"shopId":${lastShop}}`);
  t.is(res.json?.code, 0, res.text);
  t.true(res.text.includes(`"shopId":${lastShop}`));
  t.is(await gw.metric('countersign_authorizations_total', { upstream: 'keeta', via: 'redirect', result: 'connected' }), 1);
});

test('Event 1 connects first; the redirect with the same code then says already connected, and the code is exchanged once', async (t) => {
  const { sim, gw } = await keetaIngressSetup(t, { sim: { oauthDelivery: 'both' } });
  const account = sim.control.addMerchantAccount({ merchantId: 'cafe', shopIds: ['9007199254740993'], brandName: 'Corner Cafe' });
  const link = await createAuthorization(gw);
  const page = await authorizeAs(gw, link.url, 'cafe');
  t.is(page.status, 200);
  t.regex(page.html, /<h1>Already connected<\/h1>/);
  t.regex(page.html, /Corner Cafe/);
  t.regex(page.html, /1 shop</);
  const counters = sim.control.counters();
  t.is(counters.authCodeCalls, 1, 'one exchange for a code that arrived twice');
  t.is(counters.authCodeReuse, 0);
  t.is(await gw.metric('countersign_authorizations_total', { upstream: 'keeta', via: 'event', result: 'connected' }), 1);
  t.is(await gw.metric('countersign_authorizations_total', { upstream: 'keeta', via: 'redirect', result: 'already_connected' }), 1);
  t.deepEqual((await adminTokens(gw)).map((m) => [m.merchant, m.shopCount]), [[`shop-${account.shopIds[0]}`, 1]]);
  const res = await postJson(`${gw.proxyUrl}/keeta/order/get`, '{"orderViewId":7,"shopId":9007199254740993}');
  t.is(res.json?.code, 0, res.text);
});

test('Event 1 alone (server callback mode) connects and answers Keeta in its format', async (t) => {
  const { sim, gw } = await keetaIngressSetup(t, { sim: { oauthDelivery: 'event' } });
  sim.control.addMerchantAccount({ merchantId: 'chain', shopCount: 3, brandName: 'Three Shops' });
  const link = await createAuthorization(gw);
  const page = await authorizeAs(gw, link.url, 'chain');
  t.regex(page.html, /Authorization complete/, "Keeta's own page: no redirect in this mode");
  const pushes = sim.control.counters();
  t.is(pushes.authCodeExchanges, 1);
  t.is(await gw.metric('countersign_authorizations_total', { upstream: 'keeta', via: 'event', result: 'connected' }), 1);
  t.is((await adminTokens(gw))[0]?.shopCount, 3);
});

test('one code arriving on both paths at the same moment is exchanged once', async (t) => {
  const { sim, gw } = await keetaIngressSetup(t);
  sim.control.addMerchantAccount({ merchantId: 'chain', shopCount: 5 });
  const link = await createAuthorization(gw);
  const code = sim.control.issueAuthCode('chain');
  gw.secrets.add(code);
  const q = `code=${code}&state=${encodeURIComponent(link.state)}`;
  const [page, event] = await Promise.all([
    fetch(`${gw.ingressUrl}/oauth/keeta/callback?${q}`).then(async (r) => ({ status: r.status, text: await r.text() })),
    sim.control.pushEvent1({ code, state: link.state }),
  ]);
  t.is(page.status, 200, page.text);
  t.regex(page.text, /Connected|Already connected/);
  t.deepEqual(event.answers.map((a) => a.json), [{ code: 0, message: 'Success' }]);
  t.is(sim.control.counters().authCodeCalls, 1);
  t.is((await adminTokens(gw)).length, 1);
});

test('a forged, reused or expired state is refused without an exchange', async (t) => {
  const clock = new ManualClock(Date.now());
  const { sim, gw } = await keetaIngressSetup(t, { clock });
  sim.control.addMerchantAccount({ merchantId: 'chain', shopCount: 2 });

  const forged = randomBytes(32).toString('base64url');
  gw.secrets.add(forged);
  const code1 = sim.control.issueAuthCode('chain');
  gw.secrets.add(code1);
  const r1 = await fetch(`${gw.ingressUrl}/oauth/keeta/callback?code=${code1}&state=${forged}`);
  t.is(r1.status, 400);
  const html1 = await r1.text();
  t.regex(html1, /<h1>Not connected<\/h1>/);
  t.regex(html1, /unknown or has expired/);
  t.false(html1.includes(code1) || html1.includes(forged));
  const r1b = await fetch(`${gw.ingressUrl}/oauth/keeta/callback?code=${code1}`);
  t.is(r1b.status, 400, 'no state at all');

  // Expired: 10 minutes and a second later (both clocks move together).
  const old = await createAuthorization(gw);
  clock.advance(10 * 60_000 + 1000);
  sim.control.setClockOffset(10 * 60_000 + 1000);
  const code2 = sim.control.issueAuthCode('chain');
  gw.secrets.add(code2);
  const r2 = await fetch(`${gw.ingressUrl}/oauth/keeta/callback?code=${code2}&state=${encodeURIComponent(old.state)}`);
  t.is(r2.status, 400);
  t.regex(await r2.text(), /unknown or has expired/);
  t.is(sim.control.counters().authCodeCalls, 0, 'no exchange for a bad state');

  // Reused: a second code with a state already used.
  const link = await createAuthorization(gw);
  const fresh = sim.control.issueAuthCode('chain');
  gw.secrets.add(fresh);
  const ok = await fetch(`${gw.ingressUrl}/oauth/keeta/callback?code=${fresh}&state=${encodeURIComponent(link.state)}`);
  t.is(ok.status, 200, await ok.text());
  const r3 = await fetch(`${gw.ingressUrl}/oauth/keeta/callback?code=${code2}&state=${encodeURIComponent(link.state)}`);
  t.is(r3.status, 400);
  t.is(sim.control.counters().authCodeCalls, 1, 'only the first, valid pair of code and state was exchanged');
  t.is(await gw.metric('countersign_authorizations_total', { upstream: 'keeta', via: 'redirect', result: 'bad_state' }), 4);

  // Event 1 with a forged state: refused in Keeta's format.
  const code3 = sim.control.issueAuthCode('chain');
  gw.secrets.add(code3);
  const ev = await sim.control.pushEvent1({ code: code3, state: forged });
  t.is(ev.answers[0]?.status, 400);
  t.is((ev.answers[0]?.json as { code: number }).code, 400);
  t.is(sim.control.counters().authCodeCalls, 1);
});

test('a code Keeta refuses, a declined authorization and an unreachable Keeta each get a clear page', async (t) => {
  const { sim, gw } = await keetaIngressSetup(t);
  sim.control.addMerchantAccount({ merchantId: 'chain', shopCount: 2 });
  const unknownCode = randomBytes(16).toString('hex');
  gw.secrets.add(unknownCode);
  const link = await createAuthorization(gw);
  const refused = await fetch(`${gw.ingressUrl}/oauth/keeta/callback?code=${unknownCode}&state=${encodeURIComponent(link.state)}`);
  t.is(refused.status, 400);
  t.regex(await refused.text(), /Keeta did not accept the authorization code/);
  t.is(await gw.metric('countersign_authorizations_total', { upstream: 'keeta', via: 'redirect', result: 'refused' }), 1);
  // The same code again: never sent to Keeta a second time.
  const link2 = await createAuthorization(gw);
  const again = await fetch(`${gw.ingressUrl}/oauth/keeta/callback?code=${unknownCode}&state=${encodeURIComponent(link2.state)}`);
  t.regex(await again.text(), /already used/);
  t.is(sim.control.counters().authCodeCalls, 1);

  const declined = await authorizeAs(gw, (await createAuthorization(gw)).url, 'chain', 'deny');
  t.is(declined.status, 400);
  t.regex(declined.html, /declined/);

  sim.control.failNext(1, { httpStatus: 503, includeTokenEndpoint: true });
  const failed = await authorizeAs(gw, (await createAuthorization(gw)).url, 'chain');
  t.is(failed.status, 502);
  t.regex(failed.html, /could not be reached|could not be completed/);
  t.is(await gw.metric('countersign_authorizations_total', { upstream: 'keeta', via: 'redirect', result: 'failed' }), 1);
});

test('the admin route answers links for Keeta upstreams with oauth only', async (t) => {
  const { gw } = await keetaIngressSetup(t, {
    extraYaml: `  plain:
    type: keeta
    baseUrl: http://127.0.0.1:9/api/open
    appId: 1
    appSecret: plain-app-secret-value
`,
  });
  const a = await fetch(`${gw.adminUrl}/admin/upstreams/plain/authorizations`, { method: 'POST' });
  t.is(a.status, 400);
  t.regex(((await a.json()) as { error: { message: string } }).error.message, /no oauth config/);
  const b = await fetch(`${gw.adminUrl}/admin/upstreams/nope/authorizations`, { method: 'POST' });
  t.is(b.status, 404);
  const c = await fetch(`${gw.ingressUrl}/oauth/plain/callback?code=x&state=y`);
  t.is(c.status, 404);
});

test('a pair that cannot be written says so on the page and in the log, and the code is not exchanged again', async (t) => {
  const failing = failingStore('put');
  const { sim, gw } = await keetaIngressSetup(t, { store: failing.store });
  sim.control.addMerchantAccount({ merchantId: 'chain', shopCount: 2 });
  failing.failNext(100);
  const link = await createAuthorization(gw);
  const code = sim.control.issueAuthCode('chain');
  gw.secrets.add(code);
  const res = await fetch(`${gw.ingressUrl}/oauth/keeta/callback?code=${code}&state=${encodeURIComponent(link.state)}`);
  t.is(res.status, 502);
  t.regex(await res.text(), /could not be saved/);
  t.true(gw.logs.some((l) => l.includes('the merchant must authorize again')));
  failing.failNext(0);
  const link2 = await createAuthorization(gw);
  const again = await fetch(`${gw.ingressUrl}/oauth/keeta/callback?code=${code}&state=${encodeURIComponent(link2.state)}`);
  t.regex(await again.text(), /already used/);
  t.is(sim.control.counters().authCodeCalls, 1);
  // Both arrivals failed: the first to save, the second because its code was spent.
  t.is(await gw.metric('countersign_authorizations_total', { upstream: 'keeta', via: 'redirect', result: 'failed' }), 2);
});
