import test from 'ava';
import { createSourceCheck, KEETA_DOCUMENTED_SOURCE_IPS, normalizeIp } from '../../../src/ingress/source-ips.js';

test('documented: only the addresses of docs/protocols.md 1.9', (t) => {
  const check = createSourceCheck('documented', []);
  t.is(KEETA_DOCUMENTED_SOURCE_IPS.length, 22);
  t.true(check.allowed('43.135.86.188'));
  t.true(check.allowed('49.51.172.32'));
  t.false(check.allowed('127.0.0.1'));
  t.false(check.allowed('43.135.86.189'));
  t.false(check.allowed('not-an-ip'));
});

test('an operator list takes addresses and CIDRs, IPv4 and IPv6; any allows everything', (t) => {
  const check = createSourceCheck(['10.0.0.0/8', '192.0.2.7', '2001:db8::/32'], []);
  t.true(check.allowed('10.200.3.4'));
  t.true(check.allowed('192.0.2.7'));
  t.false(check.allowed('192.0.2.8'));
  t.true(check.allowed('2001:db8::1'));
  t.false(check.allowed('2001:db9::1'));
  t.true(createSourceCheck('any', []).allowed('198.51.100.1'));
});

test('X-Forwarded-For is believed only from trusted proxies, rightmost untrusted hop first', (t) => {
  const check = createSourceCheck('documented', ['10.0.0.0/8']);
  // Untrusted peer: its header is ignored.
  t.is(check.clientIp('198.51.100.9', '43.135.86.188'), '198.51.100.9');
  // Trusted peer: the nearest hop that is not a trusted proxy.
  t.is(check.clientIp('10.1.1.1', '43.135.86.188'), '43.135.86.188');
  t.is(check.clientIp('10.1.1.1', '43.135.86.188, 10.2.2.2'), '43.135.86.188');
  // A spoofed leftmost entry does not win over the hop the proxy saw.
  t.is(check.clientIp('10.1.1.1', '43.135.86.188, 198.51.100.9'), '198.51.100.9');
  t.is(check.clientIp('::ffff:10.1.1.1', 'garbage'), 'garbage');
  t.false(check.allowed(check.clientIp('::ffff:10.1.1.1', 'garbage')));
  t.is(normalizeIp('::ffff:127.0.0.1'), '127.0.0.1');
  t.is(normalizeIp('[2001:db8::1]'), '2001:db8::1');
});
