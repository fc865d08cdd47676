import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, summarizeConfig } from '../../../src/config/load.js';
import { restartUnit } from '../../../src/reload/config-diff.js';
import { ConfigError } from '../../../src/core/errors.js';

/** The trust-boundary keys: listen.tls, auth.kubernetes, caller identities, upstream tls/egressProxy/insecure. */

const dir = mkdtempSync(join(tmpdir(), 'cs-trust-'));
for (const f of ['tls.crt', 'tls.key', 'ca.crt', 'jwks.json', 'up-ca.pem', 'client.crt', 'client.key']) writeFileSync(join(dir, f), 'x');

const KEETA = (extra = '', baseUrl = 'https://open.mykeeta.com/api/open') => `upstreams:
  keeta:
    type: keeta
    baseUrl: ${baseUrl}
    appId: 1
    appSecret: keeta-secret-value
${extra}`;

function problemsOf(text: string): string[] {
  try {
    parseConfig(text, { env: {}, baseDir: dir });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

const FULL = `listen:
  proxy: 0.0.0.0:8443
  tls:
    proxy: {certFile: tls.crt, keyFile: tls.key, clientCaFile: ca.crt}
    admin: {certFile: tls.crt, keyFile: tls.key}
auth:
  kubernetes: {issuer: https://kubernetes.default.svc.cluster.local, audience: countersign, jwksFile: jwks.json}
admin:
  token: admin-token-0123456789
callers:
  - {name: order-service, token: order-token-0123456789, allow: ["keeta:*"]}
  - {name: billing, certificate: {uri: "spiffe://cluster.local/ns/billing/sa/billing"}, allow: ["keeta:/order/*"], merchants: ["brand-*", "store-42"]}
  - {name: menu-sync, serviceAccount: menu/menu-sync, allow: ["keeta:/product/*"]}
${KEETA(`    tls: {caFile: up-ca.pem, certFile: client.crt, keyFile: client.key, serverName: open.mykeeta.com}
    egressProxy: http://egress.internal:3128
`)}`;

test('every trust-boundary key parses; relative files resolve beside the config; the summary names them without a secret', (t) => {
  t.deepEqual(problemsOf(FULL), []);
  const cfg = parseConfig(FULL, { env: {}, baseDir: dir });
  t.is(cfg.listen.tls?.proxy?.certFile, join(dir, 'tls.crt'));
  t.is(cfg.auth?.kubernetes?.jwksFile, join(dir, 'jwks.json'));
  t.is(cfg.upstreams.keeta!.tls?.caFile, join(dir, 'up-ca.pem'));
  const summary = summarizeConfig(cfg);
  t.regex(summary, /tls: proxy .*tls\.crt \(client certificates from .*ca\.crt\)/);
  t.regex(summary, /auth: kubernetes issuer https:\/\/kubernetes\.default\.svc\.cluster\.local, audience countersign/);
  t.regex(summary, /billing \(certificate uri spiffe:\/\/cluster\.local\/ns\/billing\/sa\/billing\) merchants \[brand-\*, store-42\]/);
  t.regex(summary, /menu-sync \(serviceAccount menu\/menu-sync\)/);
  t.regex(summary, /transport: CA .*up-ca\.pem, client certificate .*client\.crt, serverName open\.mykeeta\.com, egressProxy http:\/\/egress\.internal:3128/);
  t.false(summary.includes('order-token-0123456789'));
});

test('a non-loopback http:// baseUrl is refused unless insecure: true; loopback stays allowed', (t) => {
  t.deepEqual(problemsOf(KEETA('', 'http://open.mykeeta.com/api/open')), ['upstreams.keeta.baseUrl: http:// to open.mykeeta.com sends credentials in the clear: use https://, or set insecure: true']);
  t.deepEqual(problemsOf(KEETA('    insecure: true\n', 'http://open.mykeeta.com/api/open')), []);
  t.deepEqual(problemsOf(KEETA('', 'http://127.0.0.1:8081/api/open')), []);
  t.deepEqual(problemsOf(KEETA('', 'http://[::1]:8081/api/open')), []);
  t.deepEqual(problemsOf(KEETA('    insecure: "yes"\n')), ['upstreams.keeta.insecure: expected true or false']);
});

test('each caller proves itself exactly one way, and what it needs is configured', (t) => {
  const callers = (list: string, head = '') => `${head}callers:\n${list}${KEETA()}`;
  t.deepEqual(problemsOf(callers('  - {name: a, allow: ["keeta:*"]}\n')), ['callers[0]: give one of token, certificate or serviceAccount']);
  t.deepEqual(problemsOf(callers('  - {name: a, token: tok-0123456789abcdef, serviceAccount: ns/a, allow: ["keeta:*"]}\n')), [
    'callers[0]: give only one of token, certificate or serviceAccount (found token and serviceAccount)',
    'callers[0].serviceAccount: needs auth.kubernetes (issuer, audience, jwksFile or jwksUrl)',
  ]);
  t.deepEqual(problemsOf(callers('  - {name: a, certificate: {cn: a}, allow: ["keeta:*"]}\n')), [
    'callers[0].certificate: needs listen.tls.proxy.clientCaFile: the proxy listener asks for client certificates only then',
  ]);
  t.deepEqual(problemsOf(callers('  - {name: a, certificate: {cn: a, dns: a.example}, allow: ["keeta:*"]}\n', 'listen:\n  tls:\n    proxy: {certFile: tls.crt, keyFile: tls.key, clientCaFile: ca.crt}\n')), [
    'callers[0].certificate: give exactly one of uri, dns or cn',
  ]);
  t.deepEqual(problemsOf(callers('  - {name: a, serviceAccount: "Not Valid", allow: ["keeta:*"]}\n', 'auth:\n  kubernetes: {issuer: i, audience: a, jwksFile: jwks.json}\n')), [
    'callers[0].serviceAccount: expected namespace/name, e.g. menu/menu-sync',
  ]);
  t.deepEqual(problemsOf(callers('  - {name: a, token: tok-0123456789abcdef, merchants: [], allow: ["keeta:*"]}\n')), ['callers[0].merchants: list at least one merchant or pattern']);
});

test('auth.kubernetes takes one JWKS source; listener and upstream files must be readable, named by key and path', (t) => {
  t.deepEqual(problemsOf(`auth:\n  kubernetes: {issuer: i, audience: a}\n${KEETA()}`), ['auth.kubernetes.jwksFile: give exactly one of jwksFile or jwksUrl']);
  t.deepEqual(problemsOf(`auth:\n  kubernetes: {issuer: i, audience: a, jwksUrl: "http://k8s/openid/v1/jwks"}\n${KEETA()}`), ['auth.kubernetes.jwksUrl: expected an https:// URL']);
  t.deepEqual(problemsOf(`auth:\n  kubernetes: {issuer: i, audience: a, jwksFile: jwks.json, caFile: ca.crt}\n${KEETA()}`), ['auth.kubernetes.caFile: only used with jwksUrl']);
  t.deepEqual(problemsOf(`listen:\n  tls:\n    proxy: {certFile: missing.crt, keyFile: tls.key}\n${KEETA()}`), [`listen.tls.proxy.certFile: cannot read ${join(dir, 'missing.crt')} (ENOENT)`]);
  t.deepEqual(problemsOf(`listen:\n  tls:\n    ingress: {certFile: tls.crt}\n${KEETA()}`), ['listen.tls.ingress.keyFile: required']);
  t.deepEqual(problemsOf(KEETA('    tls: {certFile: client.crt}\n')), ['upstreams.keeta.tls.keyFile: certFile and keyFile go together']);
  t.deepEqual(problemsOf(KEETA('    egressProxy: http://user:pw@proxy:3128\n')), ['upstreams.keeta.egressProxy: expected http://host:port (no path, no credentials)']);
});

test('a reload keeps an upstream\'s tls and egressProxy until a restart', (t) => {
  t.deepEqual(restartUnit(['upstreams', 'keeta', 'tls', 'caFile']), ['upstreams', 'keeta', 'tls']);
  t.deepEqual(restartUnit(['upstreams', 'keeta', 'egressProxy']), ['upstreams', 'keeta', 'egressProxy']);
  t.deepEqual(restartUnit(['listen', 'tls', 'proxy']), ['listen', 'tls']);
  t.is(restartUnit(['callers']), undefined);
});
