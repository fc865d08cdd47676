import test, { type ExecutionContext } from 'ava';
import { KEETA_SIM_CODES, startKeetaSim, type KeetaSim, type KeetaSimOptions } from '../../../src/sim/index.js';
import { APP_ID, APP_SECRET, control, keetaCall } from './keeta-client.js';
import { startReceiver } from './receiver.js';

const REDIRECT = 'http://127.0.0.1:8443/oauth/keeta/callback';
const C = KEETA_SIM_CODES;

async function startSim(t: ExecutionContext, extra: Partial<KeetaSimOptions> = {}): Promise<KeetaSim> {
  const sim = await startKeetaSim({ appId: APP_ID, appSecret: APP_SECRET, redirectUris: [REDIRECT], ...extra });
  t.teardown(() => sim.close());
  return sim;
}

function rootOf(sim: KeetaSim): string {
  return sim.baseUrl.slice(0, -'/api/open'.length);
}

function link(sim: KeetaSim, over: Record<string, string | null> = {}): string {
  const params: Record<string, string | null> = { responseType: 'authorization_code', appId: APP_ID, redirectUri: REDIRECT, state: 'st-123', scope: 'all', ...over };
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null) q.set(k, v);
  return `${sim.authorizeUrl}?${q}`;
}

function form(over: Record<string, string>): string {
  return new URLSearchParams({ responseType: 'authorization_code', appId: APP_ID, redirectUri: REDIRECT, state: 'st-123', scope: 'all', decision: 'authorize', ...over }).toString();
}

async function submit(sim: KeetaSim, fields: Record<string, string>, contentType = 'application/x-www-form-urlencoded') {
  return fetch(sim.authorizeUrl, { method: 'POST', redirect: 'manual', headers: { 'content-type': contentType }, body: form(fields) });
}

const nowSec = (sim: KeetaSim) => Math.floor(sim.control.clock().now / 1000);
const exchange = (sim: KeetaSim, code: string) =>
  keetaCall(sim.baseUrl, '/base/oauth/token', { timestamp: nowSec(sim), body: JSON.stringify({ grantType: 'authorization_code', code }) });

test('authorize page lists every account (chain brand, independent store) with escaped names, Authorize and Deny', async (t) => {
  const sim = await startSim(t);
  sim.control.addDemoAccounts();
  sim.control.addMerchantAccount({ merchantId: 'evil', brandName: '<script>alert(1)</script> & "Co"', shopIds: ['42'] });
  const res = await fetch(link(sim));
  t.is(res.status, 200);
  t.regex(res.headers.get('content-type') ?? '', /^text\/html/);
  const html = await res.text();
  t.regex(html, /Sim Chain Burgers<\/span> — 450 shops \(chain brand\)/);
  t.regex(html, /Sim Corner Cafe<\/span> — 1 shop \(independent store\)/);
  t.false(html.includes('<script>alert(1)'));
  t.true(html.includes('&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Co&quot;'));
  t.regex(html, /name="merchantId" value="demo-chain"/);
  t.regex(html, /<button type="submit" name="decision" value="authorize">Authorize<\/button>/);
  t.regex(html, /<button type="submit" name="decision" value="deny">Deny<\/button>/);
  t.regex(html, /<input type="hidden" name="redirectUri" value="http:\/\/127\.0\.0\.1:8443\/oauth\/keeta\/callback">/);
  t.regex(html, /<input type="hidden" name="state" value="st-123">/);
});

test('bad authorize links get an HTML error page, never a redirect', async (t) => {
  const sim = await startSim(t);
  sim.control.addDemoAccounts();
  const cases: Array<[Record<string, string | null>, RegExp]> = [
    [{ appId: '999' }, /unknown appId 999/],
    [{ appId: null }, /appId is required/],
    [{ redirectUri: 'http://evil.example/cb' }, /redirectUri is not the one registered/],
    [{ redirectUri: `${REDIRECT}/` }, /redirectUri is not the one registered/],
    [{ redirectUri: null }, /redirectUri is required/],
    [{ responseType: 'token' }, /responseType must be authorization_code/],
    [{ scope: 'read' }, /scope must be all/],
  ];
  for (const [over, reason] of cases) {
    const res = await fetch(link(sim, over), { redirect: 'manual' });
    t.is(res.status, 400, JSON.stringify(over));
    t.is(res.headers.get('location'), null);
    const html = await res.text();
    t.regex(html, /<h1>Authorization error<\/h1>/);
    t.regex(html, reason, JSON.stringify(over));
  }
  // A repeated parameter is ambiguous: refused.
  const twice = await fetch(`${link(sim)}&state=other`);
  t.is(twice.status, 400);
  t.regex(await twice.text(), /parameter state is repeated/);
  // The form post is checked the same way, and must be a form.
  t.is((await submit(sim, { merchantId: 'demo-chain', redirectUri: 'http://evil.example/cb' })).status, 400);
  t.is((await submit(sim, { merchantId: 'demo-chain' }, 'application/json')).status, 400);
  t.is((await submit(sim, { merchantId: '' })).status, 400);
  t.is((await submit(sim, { merchantId: 'nobody' })).status, 400);
  t.is((await submit(sim, { merchantId: 'demo-chain', decision: 'maybe' })).status, 400);
  t.is((await fetch(sim.authorizeUrl, { method: 'PUT' })).status, 405);
  t.is(sim.control.counters().authCodesIssued, 0);
});

test('Authorize redirects with a fresh code and the state; the code works once and is counted when reused', async (t) => {
  const sim = await startSim(t);
  sim.control.addDemoAccounts();
  t.false(sim.control.merchant('demo-chain')!.authorized);
  const res = await submit(sim, { merchantId: 'demo-chain', state: 'a b&c=d' });
  t.is(res.status, 302);
  const location = new URL(res.headers.get('location')!);
  t.is(`${location.origin}${location.pathname}`, REDIRECT);
  t.is(location.searchParams.get('state'), 'a b&c=d');
  const code = location.searchParams.get('code')!;
  t.regex(code, /^[0-9a-f]{32}$/);
  t.like(sim.control.counters(), { authCodesIssued: 1 });

  const ok = await exchange(sim, code);
  t.like(ok.json, { tokenType: 'bearer', scope: 'all', expiresIn: 7_776_000 });
  t.true(sim.control.merchant('demo-chain')!.authorized);
  t.is<unknown, unknown>(sim.control.merchant('demo-chain')!.accessToken, ok.json['accessToken']);
  const again = await exchange(sim, code);
  t.is(again.json['code'], C.AUTH_CODE_INVALID);
  t.regex(String(again.json['message']), /already used/);
  t.like(sim.control.counters(), { authCodeCalls: 2, authCodeExchanges: 1, authCodeReuse: 1 });
});

test('a redirectUri with its own query gets code and state appended with &', async (t) => {
  const withQuery = `${REDIRECT}?tenant=x`;
  const sim = await startSim(t, { redirectUris: [withQuery] });
  sim.control.addDemoAccounts();
  const res = await submit(sim, { merchantId: 'demo-store', redirectUri: withQuery });
  const location = res.headers.get('location')!;
  t.true(location.startsWith(`${withQuery}&code=`), location);
  t.regex(location, /&state=st-123$/);
});

test('a code from the page expires after 10 minutes of simulated time', async (t) => {
  const sim = await startSim(t);
  sim.control.addDemoAccounts();
  const code = new URL((await submit(sim, { merchantId: 'demo-store' })).headers.get('location')!).searchParams.get('code')!;
  sim.control.setClockOffset(10 * 60_000 + 1000);
  const late = await exchange(sim, code);
  t.is(late.json['code'], C.AUTH_CODE_INVALID);
  t.regex(String(late.json['message']), /expired/);
  t.like(sim.control.counters(), { authCodeExchanges: 0, authCodeReuse: 0 });
});

test('Deny redirects with error=access_denied and the state, and issues no code', async (t) => {
  const sim = await startSim(t);
  sim.control.addDemoAccounts();
  const res = await submit(sim, { merchantId: 'demo-chain', decision: 'deny' });
  t.is(res.status, 302);
  t.is(res.headers.get('location'), `${REDIRECT}?error=access_denied&state=st-123`);
  t.is(sim.control.counters().authCodesIssued, 0);
});

test('resource/get pages through all 450 shops of the chain (200 + 200 + 50, exact int64 ids)', async (t) => {
  const sim = await startSim(t);
  sim.control.addDemoAccounts();
  const code = new URL((await submit(sim, { merchantId: 'demo-chain' })).headers.get('location')!).searchParams.get('code')!;
  const token = (await exchange(sim, code)).json['accessToken'] as string;
  const page = (pageNum: number, pageSize = 200) =>
    keetaCall(sim.baseUrl, '/base/authorized/resource/get', { timestamp: nowSec(sim), accessToken: token, body: JSON.stringify({ pageNum, pageSize }) });
  const ids: string[] = [];
  for (const n of [1, 2, 3]) {
    const r = await page(n);
    t.is(r.json['code'], 0);
    const data = r.json['data'] as Record<string, any>;
    t.like(data, { brandName: 'Sim Chain Burgers', userId: 'sim-user-demo-chain', page: { pageNum: n, pageSize: 200, totalPage: 3, total: 450 } });
    t.is(typeof data['brandId'], 'number');
    t.is(data['authorizedShops'].length, n < 3 ? 200 : 50);
    ids.push(...[...r.text.matchAll(/"id":(\d+)/g)].map((m) => m[1]!));
  }
  t.is(ids.length, 450);
  t.is(new Set(ids).size, 450);
  t.is(ids[0], '9007199254741001');
  t.is(ids[449], '9007199254741450');
  t.deepEqual(ids, [...sim.control.merchant('demo-chain')!.shopIds]);
  // Past the end: an empty page, same totals.
  const past = await page(4);
  t.like(past.json, { code: 0, data: { authorizedShops: [], page: { pageNum: 4, totalPage: 3 } } });
  // pageNum and pageSize are required and bounded.
  for (const body of ['{"pageSize":200}', '{"pageNum":1}', '{"pageNum":0,"pageSize":10}', '{"pageNum":1,"pageSize":201}', '{"pageNum":1,"pageSize":0}']) {
    const r = await keetaCall(sim.baseUrl, '/base/authorized/resource/get', { timestamp: nowSec(sim), accessToken: token, body });
    t.is(r.json['code'], C.PARAM_INVALID, body);
  }
  // The independent store: one shop, one page.
  const storeCode = new URL((await submit(sim, { merchantId: 'demo-store' })).headers.get('location')!).searchParams.get('code')!;
  const storeToken = (await exchange(sim, storeCode)).json['accessToken'] as string;
  const store = await keetaCall(sim.baseUrl, '/base/authorized/resource/get', { timestamp: nowSec(sim), accessToken: storeToken, body: '{"pageNum":1,"pageSize":200}' });
  t.like(store.json, { data: { brandName: 'Sim Corner Cafe', page: { totalPage: 1, total: 1 } } });
  t.regex(store.text, /"authorizedShops":\[\{"id":9007199254741451,/);
});

test('server callback mode "both": Event 1 (GET, code and state) is pushed and answered before the browser is redirected with the same code', async (t) => {
  const receiver = await startReceiver(t);
  const sim = await startSim(t, { oauthDelivery: 'both' });
  sim.control.addDemoAccounts();
  // Registered as Keeta's own API does it.
  const set = await keetaCall(sim.baseUrl, '/base/callback/url/set', { timestamp: nowSec(sim), body: JSON.stringify({ eventId: 1, url: `${receiver.url}/hooks/keeta`, isTest: 1 }) });
  t.is(set.json['code'], 0);
  const res = await submit(sim, { merchantId: 'demo-chain' });
  t.is(res.status, 302);
  const code = new URL(res.headers.get('location')!).searchParams.get('code');
  t.is(receiver.received.length, 1, 'Event 1 arrived before the redirect was answered');
  const got = receiver.received[0]!;
  t.is(got.method, 'GET');
  const q = new URL(got.url, 'http://x').searchParams;
  t.is(q.get('code'), code);
  t.is(q.get('state'), 'st-123');
  t.is(q.get('appId'), APP_ID);
  const pushes = sim.control.counters().event1Pushes;
  t.is(pushes.length, 1);
  t.like(pushes[0]!.answers[0], { status: 200 });
  t.true(pushes[0]!.accepted);
});

test('server callback mode "event": no redirect, a completion page; without a registered Event-1 URL it is an error page', async (t) => {
  const receiver = await startReceiver(t);
  const sim = await startSim(t, { oauthDelivery: 'event' });
  sim.control.addDemoAccounts();
  const missing = await submit(sim, { merchantId: 'demo-store' });
  t.is(missing.status, 400);
  t.regex(await missing.text(), /needs a URL registered for event 1/);
  t.is(sim.control.counters().authCodesIssued, 0);

  sim.control.setCallbackUrl(1, `${receiver.url}/hooks/keeta`);
  const res = await submit(sim, { merchantId: 'demo-store' });
  t.is(res.status, 200);
  t.is(res.headers.get('location'), null);
  t.regex(await res.text(), /Authorization complete/);
  t.is(receiver.received.length, 1);
  const code = new URL(receiver.received[0]!.url, 'http://x').searchParams.get('code')!;
  t.like((await exchange(sim, code)).json, { tokenType: 'bearer' });
});

test('control over HTTP: accounts, demo accounts, redirect URIs, delivery mode, callback URLs', async (t) => {
  const sim = await startKeetaSim({ appId: APP_ID, appSecret: APP_SECRET });
  t.teardown(() => sim.close());
  const root = rootOf(sim);
  const demo = await control(root, 'POST', '/accounts/demo');
  t.is(demo.status, 200);
  t.like(demo.json[0], { merchantId: 'demo-chain', brandName: 'Sim Chain Burgers', shopCount: 450, firstShopId: '9007199254741001', lastShopId: '9007199254741450', authorized: false });
  t.like(demo.json[1], { merchantId: 'demo-store', shopCount: 1 });
  const acc = await control(root, 'POST', '/accounts', '{"merchantId":"m1","brandName":"B1","shopIds":[9007199254740993, "5"]}');
  t.like(acc.json, { merchantId: 'm1', brandName: 'B1', shopCount: 2, firstShopId: '9007199254740993' });
  t.is((await control(root, 'POST', '/accounts', { merchantId: 'm2', shopIds: ['5'] })).status, 400, 'shop owned by another merchant');
  t.is((await control(root, 'POST', '/accounts', { merchantId: 'm2', shopIds: ['6'], shopCount: 2 })).status, 400);
  t.like((await control(root, 'POST', '/accounts', { merchantId: 'm3', shopCount: 3 })).json, { shopCount: 3, firstShopId: '9007199254741452' });

  // No redirect URI registered yet: the page refuses.
  t.is((await fetch(link(sim))).status, 400);
  t.is((await control(root, 'PUT', '/oauth/redirect-uris', { uris: ['not a url'] })).status, 400);
  t.deepEqual((await control(root, 'PUT', '/oauth/redirect-uris', { uris: [REDIRECT] })).json, { uris: [REDIRECT] });
  t.is((await fetch(link(sim))).status, 200);

  t.is((await control(root, 'POST', '/oauth/delivery', { mode: 'carrier-pigeon' })).status, 400);
  t.deepEqual((await control(root, 'POST', '/oauth/delivery', { mode: 'event' })).json, { mode: 'event' });
  t.regex(await (await submit(sim, { merchantId: 'm1' })).text(), /needs a URL registered for event 1/);
  const receiver = await startReceiver(t);
  t.is((await control(root, 'PUT', '/callback-urls/1', { url: 'ftp://x' })).status, 400);
  t.is((await control(root, 'PUT', '/callback-urls/1', { url: `${receiver.url}/e1` })).status, 200);
  t.is((await submit(sim, { merchantId: 'm1' })).status, 200);
  t.is(receiver.received.length, 1);
  t.true(receiver.received[0]!.url.startsWith('/e1?'));
});

test('options are validated', async (t) => {
  await t.throwsAsync(startKeetaSim({ appId: APP_ID, appSecret: APP_SECRET, redirectUris: ['nope'] }), { instanceOf: TypeError });
  await t.throwsAsync(startKeetaSim({ appId: APP_ID, appSecret: APP_SECRET, oauthDelivery: 'x' as never }), { instanceOf: TypeError });
  await t.throwsAsync(startKeetaSim({ appId: APP_ID, appSecret: APP_SECRET, webhookRecipe: 'md5' as never }), { instanceOf: TypeError });
});

test('authorization_code exchange is strict: code required and a string; unknown codes refused; app-level (no accessToken); counted', async (t) => {
  const sim = await startSim(t);
  sim.control.addDemoAccounts();
  const token = (body: string) => keetaCall(sim.baseUrl, '/base/oauth/token', { timestamp: nowSec(sim), body });
  t.is((await token('{"grantType":"authorization_code"}')).json['code'], C.PARAM_INVALID);
  t.is((await token('{"grantType":"authorization_code","code":""}')).json['code'], C.PARAM_INVALID);
  t.is((await token('{"grantType":"authorization_code","code":12345}')).json['code'], C.PARAM_INVALID);
  const unknown = await token('{"grantType":"authorization_code","code":"0123456789abcdef0123456789abcdef"}');
  t.is(unknown.json['code'], C.AUTH_CODE_INVALID);
  t.regex(String(unknown.json['message']), /unknown code/);
  // Signed without the right secret: refused before the code is looked at (and not spent).
  const code = sim.control.issueAuthCode('demo-store');
  const forged = await keetaCall(sim.baseUrl, '/base/oauth/token', { timestamp: nowSec(sim), secret: 'wrong', body: JSON.stringify({ grantType: 'authorization_code', code }) });
  t.is(forged.json['code'], C.SIG_INVALID);
  t.like((await exchange(sim, code)).json, { tokenType: 'bearer', refreshToken: sim.control.merchant('demo-store')!.refreshToken });
  t.like(sim.control.counters(), { authCodesIssued: 1, authCodeCalls: 6, authCodeExchanges: 1, authCodeReuse: 0, refreshCalls: 0 });
});
