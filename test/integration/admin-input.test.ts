import test from 'ava';
import { rawRequest } from '../helpers/http.js';
import { KEETA_SIM_CODES } from '../../src/sim/index.js';
import { keetaSetup } from '../helpers/keeta-setup.js';

const json = { 'content-type': 'application/json' };

function pairBody(o: { expiresIn: number | string; issuedAtTime: number | string }): string {
  return `{"accessToken":"imp-access-1","refreshToken":"imp-refresh-1","expiresIn":${o.expiresIn},"issuedAtTime":${o.issuedAtTime}}`;
}

test('token import refuses times out of any sane range, and the listing keeps working', async (t) => {
  const { gw } = await keetaSetup(t);
  const now = Date.now();
  const bad = [
    { expiresIn: 9007199254740991, issuedAtTime: now },
    { expiresIn: 7776000, issuedAtTime: 8640000000000001 },
    { expiresIn: 7776000, issuedAtTime: now + 7 * 86_400_000 },
    { expiresIn: 7776000, issuedAtTime: 1000 },
    { expiresIn: 0, issuedAtTime: now },
    { expiresIn: '1e9', issuedAtTime: now },
  ];
  for (const b of bad) {
    const res = await rawRequest(gw.adminUrl, { method: 'PUT', path: '/admin/upstreams/keeta/merchants/brand-x/token', headers: json, body: pairBody(b) });
    t.is(res.status, 400, JSON.stringify(b));
    t.is(res.json().error.code, 'BAD_REQUEST');
    t.false(res.body.includes('imp-access-1'));
  }
  const ok = await rawRequest(gw.adminUrl, { method: 'PUT', path: '/admin/upstreams/keeta/merchants/brand-x/token', headers: json, body: pairBody({ expiresIn: 7776000, issuedAtTime: now - 60_000 }) });
  t.is(ok.status, 204);
  const list = await rawRequest(gw.adminUrl, { method: 'GET', path: '/admin/tokens' });
  t.is(list.status, 200);
  t.is(list.json().upstreams[0].merchants[0].state, 'valid');
});

test('one unreadable record never breaks /admin/tokens for the others', async (t) => {
  const { gw, addMerchant } = await keetaSetup(t);
  await addMerchant('brand-good', ['101']);
  // As if another writer had stored a record with impossible times.
  const good = gw.app.cache.get('keeta', 'brand-good')!;
  gw.app.cache.set({ ...good, merchant: 'brand-broken', shopIds: ['202'], expiresAt: 8.64e15 + 1, issuedAt: 8.64e15 + 1 });
  const list = await rawRequest(gw.adminUrl, { method: 'GET', path: '/admin/tokens' });
  t.is(list.status, 200);
  const merchants = list.json().upstreams[0].merchants as Array<{ merchant: string; state: string }>;
  t.is(merchants.find((m) => m.merchant === 'brand-good')?.state, 'valid');
  t.is(merchants.find((m) => m.merchant === 'brand-broken')?.state, 'invalid');
  t.false(list.body.includes(good.accessToken));
});

test('merchant ids must be plain ids: ".", "..", and other path-like names are refused on every admin route', async (t) => {
  const { gw, addMerchant } = await keetaSetup(t);
  await addMerchant('brand-1', ['301']);
  const ids = ['.', '..', '%2e%2e', '%2E', '.hidden', '-dash', '_', 'a%2fb', 'x'.repeat(129)];
  for (const id of ids) {
    const routes: Array<[string, string, string | undefined]> = [
      ['PUT', `/admin/upstreams/keeta/merchants/${id}/token`, pairBody({ expiresIn: 7776000, issuedAtTime: Date.now() - 60_000 })],
      ['PUT', `/admin/upstreams/keeta/merchants/${id}/shops`, '{"shopIds":[1]}'],
      ['POST', `/admin/upstreams/keeta/merchants/${id}/refresh`, undefined],
      ['DELETE', `/admin/upstreams/keeta/merchants/${id}`, undefined],
    ];
    for (const [method, path, body] of routes) {
      const res = await rawRequest(gw.adminUrl, { method, path, headers: json, ...(body !== undefined && { body }) });
      t.true(res.status === 400 || res.status === 404, `${method} ${path}: ${res.status}`);
      if (res.status === 400) t.regex(res.json().error.message, /merchant ids are/, `${method} ${path}`);
    }
  }
  // "." and ".." reach the router as parameters and are refused by the id rule itself.
  const dot = await rawRequest(gw.adminUrl, { method: 'PUT', path: '/admin/upstreams/keeta/merchants/../shops', headers: json, body: '{"shopIds":[1]}' });
  t.is(dot.status, 400);
  t.is(gw.app.cache.records('keeta').next().value?.merchant, 'brand-1');
  t.is([...gw.app.cache.records('keeta')].length, 1, 'nothing was stored under a path-like id');
});

test('the admin listener echoes a plain X-Request-Id and replaces anything else', async (t) => {
  const { gw } = await keetaSetup(t);
  const plain = await rawRequest(gw.adminUrl, { method: 'GET', path: '/admin/tokens', headers: { 'x-request-id': 'req-123_abc' } });
  t.is(plain.headers['x-request-id'], 'req-123_abc');
  for (const hostile of ['<script>alert(1)</script>', 'a b', 'x'.repeat(200), '"quoted"']) {
    const res = await rawRequest(gw.adminUrl, { method: 'GET', path: '/admin/nowhere', headers: { 'x-request-id': hostile } });
    t.not(res.headers['x-request-id'], hostile);
    t.regex(String(res.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    t.false(res.body.includes(hostile));
    t.is(res.json().error.requestId, res.headers['x-request-id']);
  }
});

test('token renewal log lines name the merchant, and only for Keeta', async (t) => {
  const { sim, gw, addMerchant } = await keetaSetup(t);
  await addMerchant('brand-logs-1', ['401'], { expiresInSec: 3 * 86_400 });
  await addMerchant('brand-logs-2', ['402'], { expiresInSec: 3 * 86_400 });
  sim.control.failNext(1, { code: KEETA_SIM_CODES.SERVER_ERROR, includeTokenEndpoint: true });
  t.is((await rawRequest(gw.adminUrl, { method: 'POST', path: '/admin/upstreams/keeta/merchants/brand-logs-2/refresh' })).status, 503);
  t.is((await rawRequest(gw.adminUrl, { method: 'POST', path: '/admin/upstreams/keeta/merchants/brand-logs-1/refresh' })).status, 200);
  const lines = gw.logs.map((l) => JSON.parse(l) as { msg: string; merchant?: string; upstream?: string });
  const failed = lines.filter((l) => l.msg.startsWith('token renewal failed'));
  const renewed = lines.filter((l) => l.msg === 'token renewed');
  t.deepEqual(failed.map((l) => l.merchant), ['brand-logs-2']);
  t.deepEqual(renewed.map((l) => l.merchant), ['brand-logs-1']);
  t.true([...failed, ...renewed].every((l) => l.upstream === 'keeta'));
});

test('importing a pair that has already expired is stored, but answered with a Warning and logged: its refresh token expired with it', async (t) => {
  const { gw } = await keetaSetup(t);
  const issued = Date.now() - 91 * 86_400_000;
  const res = await rawRequest(gw.adminUrl, { method: 'PUT', path: '/admin/upstreams/keeta/merchants/brand-old/token', headers: json, body: pairBody({ expiresIn: 7776000, issuedAtTime: issued }) });
  t.is(res.status, 204);
  const expiredAt = new Date(issued + 7776000 * 1000).toISOString();
  t.is(res.headers['warning'], `299 countersign "the imported pair expired at ${expiredAt}, and its refresh token with it: the merchant must authorize again"`);
  const line = gw.logs.map((l) => JSON.parse(l) as { msg: string; merchant?: string; level: string }).find((l) => l.msg.startsWith('the imported pair expired'));
  t.like(line, { merchant: 'brand-old', level: 'warn' });
  t.false(gw.logText().includes('imp-access-1') || gw.logText().includes('imp-refresh-1'));
  // A fresh pair gets no warning.
  const fresh = await rawRequest(gw.adminUrl, { method: 'PUT', path: '/admin/upstreams/keeta/merchants/brand-new/token', headers: json, body: pairBody({ expiresIn: 7776000, issuedAtTime: Date.now() - 60_000 }) });
  t.is(fresh.status, 204);
  t.is(fresh.headers['warning'], undefined);
});

test('a failed renewal says what it leaves the merchant with: the current token until its expiry, or refusals once it has expired', async (t) => {
  const { sim, gw, addMerchant } = await keetaSetup(t);
  await addMerchant('brand-valid', ['501'], { expiresInSec: 3 * 86_400 });
  await addMerchant('brand-expired', ['502'], { expiresInSec: 60, issuedAgoMs: 120_000 });
  sim.control.failNext(2, { code: KEETA_SIM_CODES.SERVER_ERROR, includeTokenEndpoint: true });
  t.is((await rawRequest(gw.adminUrl, { method: 'POST', path: '/admin/upstreams/keeta/merchants/brand-valid/refresh' })).status, 503);
  t.is((await rawRequest(gw.adminUrl, { method: 'POST', path: '/admin/upstreams/keeta/merchants/brand-expired/refresh' })).status, 503);
  const failed = gw.logs.map((l) => JSON.parse(l) as { msg: string; merchant?: string }).filter((l) => l.msg.startsWith('token renewal failed'));
  const msg = (m: string) => failed.find((l) => l.merchant === m)?.msg ?? '';
  t.regex(msg('brand-valid'), /^token renewal failed; the current token stays in use until it expires at \d{4}-\d\d-\d\dT/);
  t.regex(msg('brand-expired'), /^token renewal failed and the current token expired at \S+; requests for this merchant are refused with TOKEN_UNAVAILABLE until a renewal succeeds$/);
});
