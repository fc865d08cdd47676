import { createHash, createHmac } from 'node:crypto';
import test from 'ava';
import { DuplicateKeyError, JsonSyntaxError, parseJson, toCompactJson } from '../../../src/sim/keeta/json.js';
import { keetaJoinedParams, keetaPreHash, keetaSignText, keetaSign } from '../../../src/sim/keeta/signature.js';

const OFFICIAL_URL = 'https://open.mykeeta.com/api/open/product/shopcategory/update';
const OFFICIAL_BODY =
  '{"appId":123,"shopId":123,"accessToken":"abc","shopCategory":{"id":123,"name":"test","type":0,"description":null},"timestamp":1682566749}';

function obj(text: string) {
  const v = parseJson(text);
  if (v.type !== 'object') throw new Error('not an object');
  return v;
}

test('official vector (docs/protocols.md 1.2): pre-hash and sig', (t) => {
  t.is(
    keetaPreHash(OFFICIAL_URL, obj(OFFICIAL_BODY), 'abc'),
    'https://open.mykeeta.com/api/open/product/shopcategory/update?accessToken=abc&appId=123&shopCategory={"id":123,"name":"test","type":0,"description":null}&shopId=123&timestamp=1682566749abc',
  );
  t.is(keetaSignText(OFFICIAL_URL, OFFICIAL_BODY, 'abc'), '48eb6d562bb0673e3db753831f032be237fc19d1e5c33fcb5386d89c0eebca86');
});

test('official vector: sig in the body is ignored, pretty-printing and \\u escapes do not change it, timestamp as string is the same', (t) => {
  const pretty = `{
    "sig": "whatever",
    "appId": 123, "shopId": 123, "accessToken": "abc",
    "shopCategory": { "id": 123, "name": "t\\u0065st", "type": 0, "description": null },
    "timestamp": "1682566749"
  }`;
  t.is(keetaSignText(OFFICIAL_URL, pretty, 'abc'), '48eb6d562bb0673e3db753831f032be237fc19d1e5c33fcb5386d89c0eebca86');
});

test('derived vector 1: order/confirm', (t) => {
  const url = 'https://open.mykeeta.com/api/open/order/confirm';
  const body = '{"orderViewId":756823555555859,"shopId":466663,"appId":123,"timestamp":1700000000,"accessToken":"abc"}';
  t.is(keetaPreHash(url, obj(body), 'abc'), `${url}?accessToken=abc&appId=123&orderViewId=756823555555859&shopId=466663&timestamp=1700000000abc`);
  t.is(keetaSignText(url, body, 'abc'), 'c04e7cf34652ca369b051fcdb960ac4b480e6b29ddefcbad11789c0aeb481d8d');
});

test('derived vector 2: empty value and non-ASCII nested JSON (UTF-8 bytes hashed)', (t) => {
  const url = 'https://open.mykeeta.com/api/open/product/shopcategory/update';
  const body = '{"shopId":1,"remark":"","shopCategory":{"id":1,"name":"開心樂園餐","type":0,"description":null},"appId":123,"timestamp":1700000000,"accessToken":"abc"}';
  t.is(
    keetaPreHash(url, obj(body), 'abc'),
    `${url}?accessToken=abc&appId=123&remark=&shopCategory={"id":1,"name":"開心樂園餐","type":0,"description":null}&shopId=1&timestamp=1700000000abc`,
  );
  t.is(keetaSignText(url, body, 'abc'), '134fa5325c96d90d5a3a0b70feaf9eade319f7e22cd08e5dcdeadbf7d3b6e753');
  // The same name sent as \u escapes signs identically (values are decoded, then re-rendered raw).
  const escaped = body.replace('開心樂園餐', '\\u958b\\u5fc3\\u6a02\\u5712\\u9910');
  t.is(keetaSignText(url, escaped, 'abc'), '134fa5325c96d90d5a3a0b70feaf9eade319f7e22cd08e5dcdeadbf7d3b6e753');
});

test('value rendering: strings raw, numbers as lexemes, words, arrays compact with original key order', (t) => {
  const body = obj('{"b":"x\\"y&z","a":12.50,"big":1234567890123456789,"t":true,"f":false,"n":null,"arr":[{"z":1,"a":"é\\n"},2E3],"e":""}');
  t.is(keetaJoinedParams(body), 'a=12.50&arr=[{"z":1,"a":"é\\n"},2E3]&b=x"y&z&big=1234567890123456789&e=&f=false&n=null&t=true');
});

test('keys are sorted by UTF-16 code units (uppercase before lowercase, astral after BMP)', (t) => {
  const body = obj('{"b":1,"B":2,"a":3,"\uD83D\uDE00":4,"\uFF5E":5,"_":6}');
  t.is(keetaJoinedParams(body), 'B=2&_=6&a=3&b=1&\uD83D\uDE00=4&\uFF5E=5');
});

test('signature is plain SHA-256 over URL?params+secret, not HMAC and not without "?"', (t) => {
  const body = obj(OFFICIAL_BODY);
  const sig = keetaSign(OFFICIAL_URL, body, 'abc');
  const joined = keetaJoinedParams(body);
  // The two wrong recipes docs/protocols.md 1.2 rules out, reproduced so the distinction is pinned.
  const withoutQuestionMark = createHash('sha256').update(`${OFFICIAL_URL}${joined}abc`, 'utf8').digest('hex');
  const hmac = createHmac('sha256', 'abc').update(`${OFFICIAL_URL}?${joined}`, 'utf8').digest('hex');
  t.true(withoutQuestionMark.startsWith('95e4f7b5') && withoutQuestionMark.endsWith('21d1'));
  t.true(hmac.startsWith('18efa561') && hmac.endsWith('b303'));
  t.not(sig, withoutQuestionMark);
  t.not(sig, hmac);
});

test('parser keeps number lexemes and key order, rejects duplicates and invalid JSON', (t) => {
  t.is(toCompactJson(parseJson(' {"z" : [1.0, -0, 1e+2, 9007199254740993], "a": {"y":null,"x":"\\/"}} ')), '{"z":[1.0,-0,1e+2,9007199254740993],"a":{"y":null,"x":"/"}}');
  t.throws(() => parseJson('{"a":1,"a":2}'), { instanceOf: DuplicateKeyError });
  t.throws(() => parseJson('{"o":{"k":1,"k":1}}'), { instanceOf: DuplicateKeyError });
  for (const bad of ['{"a":01}', '{"a":1,}', '[1,]', "{'a':1}", '{"a":1} x', '{"a":"\u0001"}', '{"a":1.}', '{"a":.5}', '{"a":tru}', '', '{"a":"\\x"}', '{"a":+1}']) {
    t.throws(() => parseJson(bad), { instanceOf: JsonSyntaxError }, bad);
  }
});
