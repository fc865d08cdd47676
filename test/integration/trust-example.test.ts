import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { prepareExample } from '../helpers/examples.js';

/** examples/trust-boundary.yaml uses every trust-boundary key and passes check-config; plain HTTP to a remote host does not. */

test('examples/trust-boundary.yaml passes check-config, naming its TLS, issuer and transports without a secret', async (t) => {
  const example = prepareExample('trust-boundary.yaml');
  const { code, stdout, stderr } = await runCli(['check-config', '--config', example.config], example.env);
  t.is(code, 0, stderr);
  t.regex(stdout, /config OK/);
  t.regex(stdout, /tls: proxy .*tls\/tls\.crt \(client certificates from .*tls\/ca\.crt\)/);
  t.regex(stdout, /tls: admin /);
  t.regex(stdout, /tls: ingress /);
  t.regex(stdout, /store: redis .*, encryption keys \[k2026-12, k2026-06\] \(plaintext: migrate\)/);
  t.regex(stdout, /auth: kubernetes issuer https:\/\/kubernetes\.default\.svc\.cluster\.local, audience countersign, JWKS https:\/\/kubernetes\.default\.svc\/openid\/v1\/jwks/);
  t.regex(stdout, /order-service merchants \[brand-\*, store-42\]/);
  t.regex(stdout, /billing \(certificate uri spiffe:/);
  t.regex(stdout, /reports \(certificate dns /);
  t.regex(stdout, /legacy-batch \(certificate cn legacy-batch\)/);
  t.regex(stdout, /menu-sync \(serviceAccount menu\/menu-sync\) merchants \[brand-\*\]/);
  t.regex(stdout, /transport: egressProxy http:\/\/egress\.corp\.internal:3128/);
  t.regex(stdout, /transport: CA .*upstream\/ca\.pem, client certificate .*upstream\/client\.crt, serverName openplatform\.keysecure\.io/);
  t.regex(stdout, /transport: insecure: plain HTTP allowed/);
  for (const s of example.secrets) t.false(`${stdout}${stderr}`.includes(s), 'a secret was printed');
});

test('check-config refuses http://open.mykeeta.com/... and accepts it with insecure: true', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-insecure-'));
  const yaml = (extra: string) => `upstreams:\n  keeta:\n    type: keeta\n    baseUrl: http://open.mykeeta.com/api/open\n    appId: 3340612437\n    appSecret: keeta-secret-value-123\n${extra}`;
  writeFileSync(join(dir, 'plain.yaml'), yaml(''));
  writeFileSync(join(dir, 'insecure.yaml'), yaml('    insecure: true\n'));
  const refused = await runCli(['check-config', '--config', join(dir, 'plain.yaml')]);
  t.is(refused.code, 2);
  t.regex(refused.stderr, /upstreams\.keeta\.baseUrl: http:\/\/ to open\.mykeeta\.com sends credentials in the clear: use https:\/\/, or set insecure: true/);
  const accepted = await runCli(['check-config', '--config', join(dir, 'insecure.yaml')]);
  t.is(accepted.code, 0, accepted.stderr);
  t.regex(accepted.stdout, /config OK/);
});
