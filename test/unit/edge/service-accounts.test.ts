import test from 'ava';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { ManualClock } from '../../../src/core/clock.js';
import { createJwksSource, urlJwksReader } from '../../../src/edge/jwks.js';
import { createServiceAccountVerifier, looksLikeJwt } from '../../../src/edge/service-accounts.js';
import { captureLogs } from '../../helpers/log-capture.js';
import { createTestPki } from '../../helpers/test-certs.js';

const ISSUER = 'https://kubernetes.default.svc.cluster.local';

async function key(kid: string) {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256' } };
}

const token = (k: Awaited<ReturnType<typeof key>>, nowMs: number, sub = 'system:serviceaccount:menu:menu-sync') =>
  new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: k.kid })
    .setIssuer(ISSUER)
    .setAudience('countersign')
    .setSubject(sub)
    .setNotBefore(Math.floor(nowMs / 1000) - 5)
    .setExpirationTime(Math.floor(nowMs / 1000) + 600)
    .sign(k.privateKey);

test('a verified token is remembered until its exp: the next verify answers at once, without a key lookup', async (t) => {
  const clock = new ManualClock(Date.now());
  const k = await key('k1');
  const local = createLocalJWKSet({ keys: [k.jwk] });
  let lookups = 0;
  const verifier = createServiceAccountVerifier({ issuer: ISSUER, audience: 'countersign', clock, getKey: (h, tok) => (lookups++, local(h, tok)) });
  const jwt = await token(k, clock.now());
  t.true(looksLikeJwt(jwt));
  t.false(looksLikeJwt('order-service-token-0123456789'));
  t.is(await verifier.verify(jwt), 'menu/menu-sync');
  t.is(verifier.verify(jwt), 'menu/menu-sync', 'synchronous on the second call');
  t.is(lookups, 1);
  clock.advance(601_000);
  const late = verifier.verify(jwt);
  t.true(late instanceof Promise, 'an expired token is verified again, and refused');
  const err = await t.throwsAsync(Promise.resolve(late));
  t.regex(err!.message, /has expired/);
});

test('jwksUrl: read over https with the CA from caFile and the bearer token from tokenPath; an unknown kid re-reads at most once per 30 s', async (t) => {
  const pki = createTestPki();
  t.teardown(() => pki.remove());
  const clock = new ManualClock(Date.now());
  const k1 = await key('k1');
  const k2 = await key('k2');
  let keys = [k1.jwk];
  const auth: string[] = [];
  const server = createServer({ cert: pki.server.certPem, key: pki.server.keyPem }, (req, res) => {
    auth.push(req.headers.authorization ?? '');
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const tokenPath = join(pki.dir, 'sa-token');
  writeFileSync(tokenPath, 'gateway-sa-token\n');
  const url = urlJwksReader(`https://127.0.0.1:${(server.address() as AddressInfo).port}/openid/v1/jwks`, { ca: Buffer.from(pki.ca.certPem), tokenPath });
  const { log } = captureLogs();
  const jwks = createJwksSource({ read: url.read, describe: 'test', clock, log, close: url.close });
  t.teardown(() => jwks.close());
  const verifier = createServiceAccountVerifier({ issuer: ISSUER, audience: 'countersign', clock, getKey: jwks.getKey });
  t.is(await verifier.verify(await token(k1, clock.now())), 'menu/menu-sync');
  t.deepEqual(auth, ['Bearer gateway-sa-token']);
  keys = [k1.jwk, k2.jwk];
  // Unknown kid within 30 s of the last read: refused, and the set is not fetched again.
  await t.throwsAsync(Promise.resolve(verifier.verify(await token(k2, clock.now()))), { message: /no key of the cluster JWKS/ });
  await t.throwsAsync(Promise.resolve(verifier.verify(await token(k2, clock.now(), 'system:serviceaccount:a:b'))));
  t.is(auth.length, 1);
  clock.advance(30_000);
  t.is(await verifier.verify(await token(k2, clock.now())), 'menu/menu-sync');
  t.is(auth.length, 2);
});

test('refusals say what is wrong: a missing exp or sub is "has no … claim", a crit header is an unsupported feature, not an algorithm', async (t) => {
  const clock = new ManualClock(Date.now());
  const k = await key('k1');
  const verifier = createServiceAccountVerifier({ issuer: ISSUER, audience: 'countersign', clock, getKey: createLocalJWKSet({ keys: [k.jwk] }) });
  const now = Math.floor(clock.now() / 1000);
  const base = () => new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer(ISSUER).setAudience('countersign');
  const refused = async (jwt: string) => (await t.throwsAsync(Promise.resolve(verifier.verify(jwt))))!.message;

  t.is(await refused(await base().setSubject('system:serviceaccount:menu:menu-sync').sign(k.privateKey)), 'the service-account token has no "exp" claim');
  t.is(await refused(await base().setExpirationTime(now + 600).sign(k.privateKey)), 'the service-account token has no "sub" claim');
  t.is(await refused(await base().setSubject('menu/menu-sync').setExpirationTime(now + 600).sign(k.privateKey)), 'the service-account token has the wrong "sub" claim');
  const crit = await new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: 'k1', crit: ['x-ext'], 'x-ext': 1 })
    .setIssuer(ISSUER)
    .setAudience('countersign')
    .setSubject('system:serviceaccount:menu:menu-sync')
    .setExpirationTime(now + 600)
    .sign(k.privateKey, { crit: { 'x-ext': true } });
  t.regex(await refused(crit), /uses a JOSE feature that is not supported/);
});
