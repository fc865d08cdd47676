import test, { type ExecutionContext } from 'ava';
import { copyFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { ManualClock, type Clock } from '../../src/core/clock.js';
import { startKeetaSim, type KeetaSim } from '../../src/sim/index.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { importPair, KEETA_APP_ID, KEETA_SECRET } from '../helpers/keeta-setup.js';
import { createTestPki, type TestPki } from '../helpers/test-certs.js';
import { servedCertificate, tlsAgent, tlsPost } from '../helpers/tls-client.js';

/**
 * TLS on the proxy listener and the three ways a caller proves who it is: a static token, a
 * client certificate (URI SAN), a projected ServiceAccount token (a JWT verified against the
 * JWKS file). The Keeta simulator serves HTTPS with the test CA, trusted through tls.caFile.
 */

const ISSUER = 'https://kubernetes.default.svc.cluster.local';
const AUDIENCE = 'countersign';
const STATIC_TOKEN = 'order-service-token-0123456789';
const BILLING_URI = 'spiffe://cluster.local/ns/billing/sa/billing';

interface SigningKey {
  kid: string;
  privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  jwk: JWK;
}

async function signingKey(kid: string): Promise<SigningKey> {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

function writeJwks(file: string, keys: SigningKey[]): void {
  writeFileSync(`${file}.tmp`, JSON.stringify({ keys: keys.map((k) => k.jwk) }));
  renameSync(`${file}.tmp`, file);
}

/** A projected ServiceAccount token as the kubelet writes it, with any claim overridden. */
async function serviceAccountToken(
  key: SigningKey,
  nowMs: number,
  over: { sub?: string; iss?: string; aud?: string; exp?: number; nbf?: number; kid?: string } = {},
): Promise<string> {
  const now = Math.floor(nowMs / 1000);
  return new SignJWT({ 'kubernetes.io': { namespace: 'menu', serviceaccount: { name: 'menu-sync' } } })
    .setProtectedHeader({ alg: 'RS256', kid: over.kid ?? key.kid })
    .setIssuer(over.iss ?? ISSUER)
    .setAudience(over.aud ?? AUDIENCE)
    .setSubject(over.sub ?? 'system:serviceaccount:menu:menu-sync')
    .setIssuedAt(now - 60)
    .setNotBefore(over.nbf ?? now - 60)
    .setExpirationTime(over.exp ?? now + 3600)
    .sign(key.privateKey);
}

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

interface Setup {
  pki: TestPki;
  sim: KeetaSim;
  gw: TestGateway;
  key: SigningKey;
  jwksFile: string;
  serverCert: string;
  serverKey: string;
}

async function setup(t: ExecutionContext, opts: { clock?: Clock; tlsReloadMs?: number } = {}): Promise<Setup> {
  const pki = createTestPki();
  const sim = await startKeetaSim({ appId: KEETA_APP_ID, appSecret: KEETA_SECRET, tls: { cert: pki.server.certPem, key: pki.server.keyPem } });
  const key = await signingKey('key-1');
  const jwksFile = join(pki.dir, 'jwks.json');
  writeJwks(jwksFile, [key]);
  // The listener's own copy of the certificate, replaced in place by the renewal test.
  const serverCert = join(pki.dir, 'listener.crt');
  const serverKey = join(pki.dir, 'listener.key');
  copyFileSync(pki.server.cert, serverCert);
  copyFileSync(pki.server.key, serverKey);
  const gw = await startGateway(
    `auth:
  kubernetes:
    issuer: ${ISSUER}
    audience: ${AUDIENCE}
    jwksFile: ${jwksFile}
callers:
  - name: order-service
    token: ${STATIC_TOKEN}
    allow: ["keeta:*"]
  - name: billing
    certificate: {uri: "${BILLING_URI}"}
    allow: ["keeta:/order/*"]
    merchants: ["brand-*"]
  - name: menu-sync
    serviceAccount: menu/menu-sync
    allow: ["keeta:/product/*"]
    merchants: ["store-42"]
upstreams:
  keeta:
    type: keeta
    baseUrl: ${sim.baseUrl}
    appId: ${KEETA_APP_ID}
    appSecret: ${KEETA_SECRET}
    tls:
      caFile: ${pki.ca.cert}
`,
    {
      listenExtra: `  tls:\n    proxy:\n      certFile: ${serverCert}\n      keyFile: ${serverKey}\n      clientCaFile: ${pki.ca.cert}\n`,
      ...(opts.clock && { clock: opts.clock }),
      ...(opts.tlsReloadMs !== undefined && { tlsReloadMs: opts.tlsReloadMs }),
    },
  );
  t.teardown(async () => {
    await gw.close();
    await sim.close();
    pki.remove();
  });
  for (const [merchant, shop] of [['brand-a', '1001'], ['store-42', '4242'], ['other-7', '7007']] as const) {
    const pair = sim.control.addMerchant({ merchantId: merchant, shopIds: [shop], issuedAtMs: Date.now() - 600_000 });
    await importPair(gw.adminUrl, 'keeta', merchant, pair, [shop]);
  }
  return { pki, sim, gw, key, jwksFile, serverCert, serverKey };
}

const ORDER = { orderViewId: 1 };
const CATEGORY = { shopCategory: { id: 1, name: 'c' } };

test('TLS proxy listener: a static token caller works over TLS as before, and the upstream CA from tls.caFile is trusted', async (t) => {
  const { gw, pki, sim } = await setup(t);
  t.regex(gw.proxyUrl, /^https:\/\//);
  const agent = tlsAgent({ ca: pki.ca.cert });
  const res = await tlsPost(agent, `${gw.proxyUrl}/keeta/order/get`, { shopId: 1001, ...ORDER }, { authorization: `Bearer ${STATIC_TOKEN}` });
  t.is(res.status, 200, res.text);
  t.is(res.json.code, 0, res.text);
  t.true(sim.control.counters().requests.at(-1)!.rawBody.includes('"sig"'), 'the signed call reached the HTTPS simulator');
  const none = await tlsPost(agent, `${gw.proxyUrl}/keeta/order/get`, { shopId: 1001, ...ORDER });
  t.is(none.status, 401);
  t.is(none.json.error.code, 'CALLER_UNAUTHENTICATED');
  await agent.close();
});

test('a caller is identified by its client certificate URI SAN and held to its allow list and merchants', async (t) => {
  const { gw, pki } = await setup(t);
  const cert = pki.issue('billing', { cn: 'billing', san: [`URI:${BILLING_URI}`], client: true });
  const agent = tlsAgent({ ca: pki.ca.cert, cert: cert.cert, key: cert.key });
  const ok = await tlsPost(agent, `${gw.proxyUrl}/keeta/order/get`, { shopId: 1001, ...ORDER });
  t.is(ok.status, 200, ok.text);
  t.true(gw.logText().includes('"caller":"billing"'), 'the access log names the certificate caller');
  const path = await tlsPost(agent, `${gw.proxyUrl}/keeta/product/shopcategory/update`, { shopId: 1001, ...CATEGORY });
  t.is(path.status, 403);
  t.is(path.json.error.code, 'CALLER_FORBIDDEN');
  // brand-* does not cover store-42, by header or by shop.
  const byHeader = await tlsPost(agent, `${gw.proxyUrl}/keeta/order/get`, ORDER, { 'x-countersign-merchant': 'store-42' });
  t.is(byHeader.status, 403);
  t.regex(byHeader.json.error.message, /may not act as merchant "store-42"/);
  const byShop = await tlsPost(agent, `${gw.proxyUrl}/keeta/order/get`, { shopId: 4242, ...ORDER });
  t.is(byShop.status, 403);
  t.is(byShop.json.error.code, 'CALLER_FORBIDDEN');
  await agent.close();
});

test('a valid certificate of no configured caller gets 401; a certificate from another CA gets no connection', async (t) => {
  const { gw, pki, sim } = await setup(t);
  const stranger = pki.issue('stranger', { cn: 'stranger', san: ['URI:spiffe://cluster.local/ns/x/sa/stranger'], client: true });
  const agent = tlsAgent({ ca: pki.ca.cert, cert: stranger.cert, key: stranger.key });
  const res = await tlsPost(agent, `${gw.proxyUrl}/keeta/order/get`, { shopId: 1001, ...ORDER });
  t.is(res.status, 401);
  t.regex(res.json.error.message, /client certificate names no configured caller/);
  await agent.close();

  const before = sim.control.counters().requests.length;
  const forged = pki.issue('forged', { cn: 'billing', san: [`URI:${BILLING_URI}`], client: true, by: 'otherCa' });
  const other = tlsAgent({ ca: pki.ca.cert, cert: forged.cert, key: forged.key });
  await t.throwsAsync(tlsPost(other, `${gw.proxyUrl}/keeta/order/get`, { shopId: 1001, ...ORDER }));
  t.is(sim.control.counters().requests.length, before, 'nothing reached the upstream');
  await other.close();
});

test('a ServiceAccount JWT is accepted for its caller and held to its allow list and merchants', async (t) => {
  const { gw, pki, key } = await setup(t);
  const agent = tlsAgent({ ca: pki.ca.cert });
  const jwt = await serviceAccountToken(key, Date.now());
  const auth = { authorization: `Bearer ${jwt}` };
  const ok = await tlsPost(agent, `${gw.proxyUrl}/keeta/product/shopcategory/update`, { shopId: 4242, ...CATEGORY }, auth);
  t.is(ok.status, 200, ok.text);
  t.true(gw.logText().includes('"caller":"menu-sync"'));
  // Again: the remembered verification, same answer.
  t.is((await tlsPost(agent, `${gw.proxyUrl}/keeta/product/shopcategory/update`, { shopId: 4242, ...CATEGORY }, auth)).status, 200);
  const path = await tlsPost(agent, `${gw.proxyUrl}/keeta/order/get`, { shopId: 4242, ...ORDER }, auth);
  t.is(path.status, 403);
  const merchant = await tlsPost(agent, `${gw.proxyUrl}/keeta/product/shopcategory/update`, { shopId: 1001, ...CATEGORY }, auth);
  t.is(merchant.status, 403);
  t.regex(merchant.json.error.message, /may not act as merchant "brand-a"/);
  t.false(gw.logText().includes(jwt), 'the JWT is never logged');
  await agent.close();
});

test('expired, not-yet-valid, wrong-audience, wrong-issuer, wrong-subject, alg none, tampered and unknown-key JWTs each get 401', async (t) => {
  const { gw, pki, key, sim } = await setup(t);
  const agent = tlsAgent({ ca: pki.ca.cert });
  const now = Date.now();
  const sec = Math.floor(now / 1000);
  const good = await serviceAccountToken(key, now);
  const [header, payload] = good.split('.');
  const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
  const stranger = await signingKey('key-unknown');
  const cases: Array<[string, string, RegExp]> = [
    ['expired', await serviceAccountToken(key, now, { exp: sec - 10 }), /has expired/],
    ['not yet valid', await serviceAccountToken(key, now, { nbf: sec + 600 }), /not valid yet/],
    ['wrong audience', await serviceAccountToken(key, now, { aud: 'vault' }), /"aud"/],
    ['wrong issuer', await serviceAccountToken(key, now, { iss: 'https://evil.example' }), /"iss"/],
    ['wrong subject', await serviceAccountToken(key, now, { sub: 'system:serviceaccount:menu:someone-else' }), /no configured caller/],
    ['not a service account', await serviceAccountToken(key, now, { sub: 'admin' }), /"sub"/],
    ['alg none', `${b64url({ alg: 'none', kid: key.kid })}.${payload}.`, /algorithm/],
    ['tampered', `${header}.${b64url({ ...claims, sub: 'system:serviceaccount:menu:menu-sync', exp: sec + 99_999 })}.${good.split('.')[2]}`, /signature/],
    ['unknown key', await serviceAccountToken(stranger, now), /no key of the cluster JWKS/],
  ];
  const before = sim.control.counters().requests.length;
  for (const [name, jwt, why] of cases) {
    const res = await tlsPost(agent, `${gw.proxyUrl}/keeta/product/shopcategory/update`, { shopId: 4242, ...CATEGORY }, { authorization: `Bearer ${jwt}` });
    t.is(res.status, 401, name);
    t.is(res.json?.error?.code, 'CALLER_UNAUTHENTICATED', name);
    t.regex(res.json?.error?.message ?? '', why, name);
  }
  t.is(sim.control.counters().requests.length, before, 'no refused token reached the upstream');
  await agent.close();
});

test('a key added to the JWKS file is accepted once the 30 s re-read interval has passed', async (t) => {
  const clock = new ManualClock(Date.now());
  const { gw, pki, key, jwksFile } = await setup(t, { clock });
  const agent = tlsAgent({ ca: pki.ca.cert });
  const url = `${gw.proxyUrl}/keeta/product/shopcategory/update`;
  const body = { shopId: 4242, ...CATEGORY };
  const added = await signingKey('key-2');
  writeJwks(jwksFile, [key, added]);
  const jwt = await serviceAccountToken(added, clock.now());
  // The file was read at start, moments ago: the unknown kid does not make it read again yet.
  t.is((await tlsPost(agent, url, body, { authorization: `Bearer ${jwt}` })).status, 401);
  clock.advance(31_000);
  const res = await tlsPost(agent, url, body, { authorization: `Bearer ${jwt}` });
  t.is(res.status, 200, res.text);
  // A JWKS that cannot be read keeps the last good one.
  writeFileSync(jwksFile, 'not json');
  clock.advance(31_000);
  const third = await signingKey('key-3');
  t.is((await tlsPost(agent, url, body, { authorization: `Bearer ${await serviceAccountToken(third, clock.now())}` })).status, 401);
  t.is((await tlsPost(agent, url, body, { authorization: `Bearer ${await serviceAccountToken(key, clock.now())}` })).status, 200, 'the first key still verifies');
  t.true(gw.logText().includes('keeping the last good one'));
  await agent.close();
});

test('a renewed server certificate is served within 15 s, without a restart and with no failed request under load', async (t) => {
  const { gw, pki, serverCert, serverKey } = await setup(t, { tlsReloadMs: 200 });
  const before = await servedCertificate(gw.proxyUrl, pki.ca.cert);
  const renewed = pki.issue('renewed', { cn: 'countersign-renewed', san: ['DNS:localhost', 'IP:127.0.0.1'] });
  let stop = false;
  let ok = 0;
  const failures: string[] = [];
  // Four keep-alive clients and one that opens a new connection for every request.
  const load = async (fresh: boolean) => {
    let agent = tlsAgent({ ca: pki.ca.cert });
    while (!stop) {
      try {
        const res = await tlsPost(agent, `${gw.proxyUrl}/keeta/order/get`, { shopId: 1001, ...ORDER }, { authorization: `Bearer ${STATIC_TOKEN}` });
        if (res.status === 200) ok++;
        else failures.push(`HTTP ${res.status} ${res.text}`);
      } catch (err) {
        failures.push((err as Error).message);
      }
      if (fresh) {
        await agent.close();
        agent = tlsAgent({ ca: pki.ca.cert });
      }
    }
    await agent.close();
  };
  const clients = [load(false), load(false), load(false), load(false), load(true)];
  await new Promise((r) => setTimeout(r, 300));
  // cert-manager writes the key and the certificate in place, one after the other.
  copyFileSync(renewed.key, serverKey);
  copyFileSync(renewed.cert, serverCert);
  const deadline = Date.now() + 15_000;
  let served = before;
  while (Date.now() < deadline) {
    served = await servedCertificate(gw.proxyUrl, pki.ca.cert);
    if (served.serialNumber !== before.serialNumber) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  // Keep the load on the renewed certificate for a while too.
  const target = ok + 20;
  const settle = Date.now() + 20_000;
  while (ok < target && failures.length === 0 && Date.now() < settle) await new Promise((r) => setTimeout(r, 50));
  stop = true;
  await Promise.all(clients);
  t.is(served.subject.CN, 'countersign-renewed', 'the renewed certificate is served to new connections');
  t.deepEqual(failures, []);
  t.true(ok >= 20, `${ok} requests succeeded`);
  t.true(gw.logText().includes('TLS certificate reloaded'));
});
