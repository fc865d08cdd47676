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
