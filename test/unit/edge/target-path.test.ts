import test from 'ava';
import { parseTargetPath } from '../../../src/edge/target-path.js';

test('a request target splits into upstream, path below it and query', (t) => {
  t.deepEqual(parseTargetPath('/keeta/order/get'), { upstream: 'keeta', path: '/order/get', query: '' });
  t.deepEqual(parseTargetPath('/ks/open-api/v1/card/list?page=2&x=%41'), { upstream: 'ks', path: '/open-api/v1/card/list', query: '?page=2&x=%41' });
  t.deepEqual(parseTargetPath('/keeta'), { upstream: 'keeta', path: '/', query: '' });
  t.deepEqual(parseTargetPath('/keeta/'), { upstream: 'keeta', path: '/', query: '' });
  t.deepEqual(parseTargetPath('/k/a/'), { upstream: 'k', path: '/a/', query: '' }, 'a trailing slash is kept (the handler judges it)');
  t.deepEqual(parseTargetPath('/k/.../..a/a.'), { upstream: 'k', path: '/.../..a/a.', query: '' }, 'dots inside names are not dot segments');
  t.deepEqual(parseTargetPath('http://other-host:8080/keeta/order/get'), { upstream: 'keeta', path: '/order/get', query: '' }, 'absolute form: only its path counts');
  t.deepEqual(parseTargetPath('/'), { upstream: '', path: '/', query: '' });
});

test('anything that could leave the base path is refused, the first fault named', (t) => {
  const refused: Array<[string, RegExp]> = [
    ['/k/../a', /"\." or "\.\." segment/],
    ['/k/.', /"\." or "\.\." segment/],
    ['/../k', /"\." or "\.\." segment/],
    ['/k//a', /empty segment/],
    ['//k', /empty segment/],
    ['/k/a;b', /";"/],
    ['/k/%2e%2E/a', /encoded/],
    ['/k/a%2fb', /encoded/],
    ['/k/a%5Cb', /encoded/],
    ['/k/a%3bb', /encoded/],
    ['/k/a%00', /encoded/],
    ['/k/a\\b', /backslash or a control/],
    ['/k/a\u0001', /backslash or a control/],
    ['/k/a\u007f', /backslash or a control/],
    ['/k/a?x#y', /fragment/],
    ['k/a', /must start with \//],
    // Several faults: control, encoded, `;`, then the first dot or empty segment along the path.
    ['/k/../a;b//c', /";"/],
    ['/k/..//%2e\\', /backslash or a control/],
    ['/k//..', /empty segment/],
    ['/a//./b', /empty segment/],
    ['/a/.//b', /"\." or "\.\." segment/],
  ];
  for (const [target, message] of refused) {
    const err = t.throws(() => parseTargetPath(target), undefined, target);
    t.regex(err?.message ?? '', message, target);
    t.is((err as { code?: string } | undefined)?.code, 'BAD_PATH', target);
  }
});

test('escapes of unreserved characters are decoded and the others upper-cased before anything matches (RFC 3986 6.2.2)', (t) => {
  t.is(parseTargetPath('/ks/open-api/v1/merchant/t%6fken').path, '/open-api/v1/merchant/token');
  t.is(parseTargetPath('/ks/card/%61pply').path, '/card/apply');
  t.is(parseTargetPath('/ks/%41%5a%30%39%2d%5f%7e').path, '/AZ09-_~');
  t.is(parseTargetPath('/ks/a%20b%c3%a9').path, '/a%20b%C3%A9', 'reserved and non-ASCII escapes stay encoded, hex upper-cased');
  t.is(parseTargetPath('/k%65eta/x').upstream, 'keeta', 'the upstream segment too');
  t.is(parseTargetPath('/ks/a?q=%61').query, '?q=%61', 'the query is passed as sent');
  t.is(parseTargetPath('/ks/plain').path, '/plain');
});

test('double encoding, a stray "%" and escapes that are not UTF-8 (overlong forms included) are BAD_PATH', (t) => {
  const refused: Array<[string, RegExp]> = [
    ['/ks/t%256fken', /double-encoded/],
    ['/ks/%2561pply', /double-encoded/],
    ['/ks/%25%36%31pply', /double-encoded/],
    ['/ks/a%zz', /"%" that is not followed/],
    ['/ks/a%4', /"%" that is not followed/],
    ['/ks/%c0%ae%c0%ae/x', /not UTF-8/],
    ['/ks/%c0%af', /not UTF-8/],
    ['/ks/%e0%80%ae', /not UTF-8/],
    ['/ks/%ed%a0%80', /not UTF-8/],
    ['/ks/%ff', /not UTF-8/],
  ];
  for (const [url, message] of refused) {
    const err = t.throws(() => parseTargetPath(url), undefined, url) as { code?: string; message: string };
    t.is(err.code, 'BAD_PATH', url);
    t.regex(err.message, message, url);
  }
});
