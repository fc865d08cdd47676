import { createHmac } from 'node:crypto';
import test from 'ava';
import { loadPreset, PRESETS } from '../../../src/provider/presets.js';
import { signRequest } from '../../../src/provider/signer.js';

test('every shipped preset validates', (t) => {
  for (const name of PRESETS) t.truthy(loadPreset(name).sign.algorithm, name);
});

test('lazada reproduces the vendor example (GET /order/get, secret helloworld)', (t) => {
  const out = signRequest(loadPreset('lazada'), {
    method: 'GET',
    baseUrl: 'https://api.lazada.com/rest',
    path: '/order/get',
    query: [['order_id', '1234']],
    app: { key: '123456', secret: 'helloworld' },
    accessToken: 'test',
    nowMs: 1517820392000,
  });
  t.is(out.stringToSign, '/order/getaccess_tokentestapp_key123456order_id1234sign_methodsha256timestamp1517820392000');
  t.is(out.signature, '4190D32361CFB9581350222F345CB77F3B19F0E31D162316848A2C1FFD5FAB4A');
  t.true(out.query.endsWith('&sign=4190D32361CFB9581350222F345CB77F3B19F0E31D162316848A2C1FFD5FAB4A'));
  t.false(out.masked.includes('helloworld'));
});

test('tiktok-shop reproduces the vendor example (/authorization/202309/shops)', (t) => {
  const out = signRequest(loadPreset('tiktok-shop'), {
    method: 'GET',
    baseUrl: 'https://open-api.tiktokglobalshop.com',
    path: '/authorization/202309/shops',
    query: [],
    app: { key: '29a39d', secret: 'e59af819cc' },
    accessToken: 'TTP_token',
    nowMs: 1623812664_000,
  });
  t.is(out.signature, 'b596b73e0cc6de07ac26f036364178ab16b0a907af13d43f0a0cd2345f582dc8');
  // The token travels in its header and is not signed.
  t.is(out.headers['x-tts-access-token'], 'TTP_token');
  t.false(out.stringToSign.includes('TTP_token'));
  t.is(out.masked, '<app.secret>/authorization/202309/shopsapp_key29a39dtimestamp1623812664<app.secret>');
});

test('taobao-top (md5) reproduces the vendor example (taobao.item.seller.get)', (t) => {
  const out = signRequest(loadPreset('taobao-top'), {
    method: 'GET',
    baseUrl: 'https://gw.api.taobao.com/router/rest',
    path: '',
    query: [
      ['method', 'taobao.item.seller.get'],
      ['fields', 'num_iid,title,nick,price,num'],
      ['num_iid', '11223344'],
    ],
    app: { key: '12345678', secret: 'helloworld' },
    accessToken: 'test',
    // 2016-01-01 12:00:00 in UTC+8
    nowMs: Date.UTC(2016, 0, 1, 4, 0, 0),
  });
  t.is(out.signature, '66987CB115214E59E6EC978214934FB8');
  t.true(out.query.includes('timestamp=2016-01-01%2012%3A00%3A00'));
});

test('taobao-top hmac signs HMAC-MD5 of the sorted parameters, without the secret around them', (t) => {
  const recipe = loadPreset('taobao-top-hmac');
  const out = signRequest(recipe, {
    method: 'GET',
    baseUrl: 'https://gw.api.taobao.com/router/rest',
    path: '',
    query: [['method', 'taobao.item.seller.get'], ['empty', '']],
    app: { key: '12345678', secret: 'helloworld' },
    accessToken: 'test',
    nowMs: Date.UTC(2016, 0, 1, 4, 0, 0),
  });
  t.is(out.stringToSign, 'app_key12345678formatjsonmethodtaobao.item.seller.getsessiontestsign_methodhmactimestamp2016-01-01 12:00:00v2.0');
  t.true(out.query.includes('sign_method=hmac'));
  t.is(out.signature, createHmac('md5', 'helloworld').update(out.stringToSign).digest('hex').toUpperCase());
});
