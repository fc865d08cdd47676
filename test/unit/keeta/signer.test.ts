import test from 'ava';
import { createHash } from 'node:crypto';
import { JsonSyntaxError, jsonNumber, jsonString, parseJsonText, type JsonNode, type JsonObjectNode } from '../../../src/provider/steps/json-text.js';
import { KeetaSignError, signKeetaAppCall, signKeetaRequest, type KeetaSignInput } from '../../../src/provider/steps/sorted-json-body-sign.js';

const BASE = 'https://open.mykeeta.com/api/open';
const TS = 1700000000;

function obj(text: string): JsonObjectNode {
  const node = parseJsonText(text);
  if (node.kind !== 'object') throw new Error('test body must be an object');
  return node;
}

function sha256Hex(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

// ---- published and derived vectors (docs/protocols.md 1.2) ----

interface Vector {
  name: string;
  input: KeetaSignInput;
  preHash: string; // full pre-hash including the secret
  sig: string;
  body: string; // full forwarded body
}

const vectors: Vector[] = [
  {
    name: 'official Authorization Guide example',
    input: {
      signUrl: `${BASE}/product/shopcategory/update`,
      appSecret: 'abc',
      appId: '123',
      timestampSec: 1682566749,
      accessToken: 'abc',
      body: obj('{"shopId":123,"shopCategory":{"id":123,"name":"test","type":0,"description":null}}'),
    },
    preHash:
      'https://open.mykeeta.com/api/open/product/shopcategory/update?accessToken=abc&appId=123&shopCategory={"id":123,"name":"test","type":0,"description":null}&shopId=123&timestamp=1682566749abc',
    sig: '48eb6d562bb0673e3db753831f032be237fc19d1e5c33fcb5386d89c0eebca86',
    body: '{"accessToken":"abc","appId":123,"shopCategory":{"id":123,"name":"test","type":0,"description":null},"shopId":123,"timestamp":1682566749,"sig":"48eb6d562bb0673e3db753831f032be237fc19d1e5c33fcb5386d89c0eebca86"}',
  },
  {
    name: 'official example, pretty-printed body carrying caller copies of the common fields',
    input: {
      signUrl: `${BASE}/product/shopcategory/update`,
      appSecret: 'abc',
      appId: '123',
      timestampSec: 1682566749,
      accessToken: 'abc',
      body: obj(`{
        "appId": 999,
        "accessToken": "someone-elses-token",
        "timestamp": "1682566749",
        "sig": "0000000000000000000000000000000000000000000000000000000000000000",
        "shopId": 123,
        "shopCategory": { "id": 123, "name": "test", "type": 0, "description": null }
      }`),
    },
    preHash:
      'https://open.mykeeta.com/api/open/product/shopcategory/update?accessToken=abc&appId=123&shopCategory={"id":123,"name":"test","type":0,"description":null}&shopId=123&timestamp=1682566749abc',
    sig: '48eb6d562bb0673e3db753831f032be237fc19d1e5c33fcb5386d89c0eebca86',
    body: '{"accessToken":"abc","appId":123,"shopCategory":{"id":123,"name":"test","type":0,"description":null},"shopId":123,"timestamp":1682566749,"sig":"48eb6d562bb0673e3db753831f032be237fc19d1e5c33fcb5386d89c0eebca86"}',
  },
  {
    name: 'derived: order/confirm with a long orderViewId',
    input: {
      signUrl: `${BASE}/order/confirm`,
      appSecret: 'abc',
      appId: '123',
      timestampSec: TS,
      accessToken: 'abc',
      body: obj('{"orderViewId":756823555555859,"shopId":466663}'),
    },
    preHash: 'https://open.mykeeta.com/api/open/order/confirm?accessToken=abc&appId=123&orderViewId=756823555555859&shopId=466663&timestamp=1700000000abc',
    sig: 'c04e7cf34652ca369b051fcdb960ac4b480e6b29ddefcbad11789c0aeb481d8d',
    body: '{"accessToken":"abc","appId":123,"orderViewId":756823555555859,"shopId":466663,"timestamp":1700000000,"sig":"c04e7cf34652ca369b051fcdb960ac4b480e6b29ddefcbad11789c0aeb481d8d"}',
  },
  {
    name: 'derived: empty remark and raw CJK name',
    input: {
      signUrl: `${BASE}/product/shopcategory/update`,
      appSecret: 'abc',
      appId: '123',
      timestampSec: TS,
      accessToken: 'abc',
      body: obj('{"shopId":1,"remark":"","shopCategory":{"id":1,"name":"開心樂園餐","type":0,"description":null}}'),
    },
    preHash:
      'https://open.mykeeta.com/api/open/product/shopcategory/update?accessToken=abc&appId=123&remark=&shopCategory={"id":1,"name":"開心樂園餐","type":0,"description":null}&shopId=1&timestamp=1700000000abc',
    sig: '134fa5325c96d90d5a3a0b70feaf9eade319f7e22cd08e5dcdeadbf7d3b6e753',
    body: '{"accessToken":"abc","appId":123,"remark":"","shopCategory":{"id":1,"name":"開心樂園餐","type":0,"description":null},"shopId":1,"timestamp":1700000000,"sig":"134fa5325c96d90d5a3a0b70feaf9eade319f7e22cd08e5dcdeadbf7d3b6e753"}',
  },
  {
    name: 'derived: same, CJK name \\u-escaped on input',
    input: {
      signUrl: `${BASE}/product/shopcategory/update`,
      appSecret: 'abc',
      appId: '123',
      timestampSec: TS,
      accessToken: 'abc',
      body: obj('{"shopId":1,"remark":"","shopCategory":{"id":1,"name":"\\u958b\\u5fc3\\u6a02\\u5712\\u9910","type":0,"description":null}}'),
    },
    preHash:
      'https://open.mykeeta.com/api/open/product/shopcategory/update?accessToken=abc&appId=123&remark=&shopCategory={"id":1,"name":"開心樂園餐","type":0,"description":null}&shopId=1&timestamp=1700000000abc',
    sig: '134fa5325c96d90d5a3a0b70feaf9eade319f7e22cd08e5dcdeadbf7d3b6e753',
    body: '{"accessToken":"abc","appId":123,"remark":"","shopCategory":{"id":1,"name":"開心樂園餐","type":0,"description":null},"shopId":1,"timestamp":1700000000,"sig":"134fa5325c96d90d5a3a0b70feaf9eade319f7e22cd08e5dcdeadbf7d3b6e753"}',
  },
];

for (const v of vectors) {
  test(`vector: ${v.name}`, (t) => {
    t.is(sha256Hex(v.preHash), v.sig, 'the expected pre-hash really hashes to the expected sig');
    const r = signKeetaRequest(v.input);
    t.is(r.sig, v.sig);
    t.is(r.preHashRedacted, v.preHash.slice(0, -v.input.appSecret.length) + '<appSecret>');
    t.is(r.body, v.body);
  });
}

// ---- rule cases: exact pre-hash (without secret) and body (without sig) ----

interface Case {
  name: string;
  body: string;
  accessToken?: string; // default 'tok'; null = app-level call
  appLevel?: boolean;
  preHash: string; // the part after signUrl + '?' and before the secret
  bodyPrefix: string; // forwarded body up to (not including) ',"sig":...}'
  /** For values within safe range: what JSON.parse(result.body) must equal (minus sig). */
  parsed?: Record<string, unknown>;
}

const SECRET = 'S3cr3t-ab';
const URL = `${BASE}/order/get`;

const cases: Case[] = [
  {
    name: 'int64 and long numbers kept exactly',
    body: '{"orderViewId":1234567890123456789,"big":123456789012345678901234567890,"shopId":756823555555859}',
    preHash: 'accessToken=tok&appId=123&big=123456789012345678901234567890&orderViewId=1234567890123456789&shopId=756823555555859&timestamp=1700000000',
    bodyPrefix:
      '{"accessToken":"tok","appId":123,"big":123456789012345678901234567890,"orderViewId":1234567890123456789,"shopId":756823555555859,"timestamp":1700000000',
  },
  {
    name: 'decimal and exponent lexemes kept at top level and nested',
    body: '{"price":12.50,"e1":1e5,"e2":1E+5,"e3":-2.5e-3,"z":-0,"nested":{"p":12.50,"q":[1e5,1E+5,-2.5e-3,1234567890123456789]}}',
    preHash:
      'accessToken=tok&appId=123&e1=1e5&e2=1E+5&e3=-2.5e-3&nested={"p":12.50,"q":[1e5,1E+5,-2.5e-3,1234567890123456789]}&price=12.50&timestamp=1700000000&z=-0',
    bodyPrefix:
      '{"accessToken":"tok","appId":123,"e1":1e5,"e2":1E+5,"e3":-2.5e-3,"nested":{"p":12.50,"q":[1e5,1E+5,-2.5e-3,1234567890123456789]},"price":12.50,"timestamp":1700000000,"z":-0',
  },
  {
    name: 'nested key order kept, including integer-like keys',
    body: '{"item":{"b":1,"2":2,"a":3,"1":4},"list":[{"z":1,"10":2,"9":3}]}',
    preHash: 'accessToken=tok&appId=123&item={"b":1,"2":2,"a":3,"1":4}&list=[{"z":1,"10":2,"9":3}]&timestamp=1700000000',
    bodyPrefix: '{"accessToken":"tok","appId":123,"item":{"b":1,"2":2,"a":3,"1":4},"list":[{"z":1,"10":2,"9":3}],"timestamp":1700000000',
  },
  {
    name: 'top-level keys sorted by UTF-16 code units',
    body: '{"b":1,"2":2,"a":3,"1":4,"Zeta":5,"_x":6,"alpha":7,"ｚ":8,"😀":9,"é":10}',
    // '1' < '2' < 'Z' < '_' < 'a' < 'accessToken' < 'alpha' < 'appId' < 'b' < 'timestamp' < 'é' (E9) < '😀' (D83D) < 'ｚ' (FF5A)
    preHash: '1=4&2=2&Zeta=5&_x=6&a=3&accessToken=tok&alpha=7&appId=123&b=1&timestamp=1700000000&é=10&😀=9&ｚ=8',
    bodyPrefix: '{"1":4,"2":2,"Zeta":5,"_x":6,"a":3,"accessToken":"tok","alpha":7,"appId":123,"b":1,"timestamp":1700000000,"é":10,"😀":9,"ｚ":8',
    parsed: { '1': 4, '2': 2, Zeta: 5, _x: 6, a: 3, accessToken: 'tok', alpha: 7, appId: 123, b: 1, timestamp: TS, 'é': 10, '😀': 9, 'ｚ': 8 },
  },
  {
    name: 'unicode raw and \\u-escaped: raw in pre-hash and body',
    body: '{"name":"\\u958b\\u5fc3","raw":"開心","nested":{"n":"\\u958b\\u5fc3 \\ud83d\\ude00","m":"開心"}}',
    preHash: 'accessToken=tok&appId=123&name=開心&nested={"n":"開心 😀","m":"開心"}&raw=開心&timestamp=1700000000',
    bodyPrefix: '{"accessToken":"tok","appId":123,"name":"開心","nested":{"n":"開心 😀","m":"開心"},"raw":"開心","timestamp":1700000000',
    parsed: { accessToken: 'tok', appId: 123, name: '開心', nested: { n: '開心 😀', m: '開心' }, raw: '開心', timestamp: TS },
  },
  {
    name: 'quotes, backslashes, newlines, solidus, controls: raw at top level, escaped when nested',
    body: String.raw`{"note":"a\"b\\c\nd\/e\u0001\tf","obj":{"s":"a\"b\\c\nd\/e\u0001\tf"},"arr":["x\ry"]}`,
    preHash:
      'accessToken=tok&appId=123&arr=["x\\ry"]&note=a"b\\c\nd/e\u0001\tf&obj={"s":"a\\"b\\\\c\\nd/e\\u0001\\tf"}&timestamp=1700000000',
    bodyPrefix: String.raw`{"accessToken":"tok","appId":123,"arr":["x\ry"],"note":"a\"b\\c\nd/e\u0001\tf","obj":{"s":"a\"b\\c\nd/e\u0001\tf"},"timestamp":1700000000`,
    parsed: {
      accessToken: 'tok',
      appId: 123,
      arr: ['x\ry'],
      note: 'a"b\\c\nd/e\u0001\tf',
      obj: { s: 'a"b\\c\nd/e\u0001\tf' },
      timestamp: TS,
    },
  },
  {
    name: 'arrays of objects, empty containers',
    body: '{"cipherInfos":[{"cipherText":"ENC_1"},{"cipherText":"ENC_2","n":null}],"ids":[1,2,3],"empty":[],"eo":{}}',
    preHash:
      'accessToken=tok&appId=123&cipherInfos=[{"cipherText":"ENC_1"},{"cipherText":"ENC_2","n":null}]&empty=[]&eo={}&ids=[1,2,3]&timestamp=1700000000',
    bodyPrefix:
      '{"accessToken":"tok","appId":123,"cipherInfos":[{"cipherText":"ENC_1"},{"cipherText":"ENC_2","n":null}],"empty":[],"eo":{},"ids":[1,2,3],"timestamp":1700000000',
    parsed: {
      accessToken: 'tok',
      appId: 123,
      cipherInfos: [{ cipherText: 'ENC_1' }, { cipherText: 'ENC_2', n: null }],
      empty: [],
      eo: {},
      ids: [1, 2, 3],
      timestamp: TS,
    },
  },
  {
    name: 'empty string, null, booleans at top level and nested',
    body: '{"remark":"","a":null,"t":true,"f":false,"n":{"x":null,"y":[null,true,false,""]}}',
    preHash: 'a=null&accessToken=tok&appId=123&f=false&n={"x":null,"y":[null,true,false,""]}&remark=&t=true&timestamp=1700000000',
    bodyPrefix: '{"a":null,"accessToken":"tok","appId":123,"f":false,"n":{"x":null,"y":[null,true,false,""]},"remark":"","t":true,"timestamp":1700000000',
    parsed: { a: null, accessToken: 'tok', appId: 123, f: false, n: { x: null, y: [null, true, false, ''] }, remark: '', t: true, timestamp: TS },
  },
  {
    name: 'caller appId/timestamp/accessToken/sig replaced or dropped',
    body: '{"sig":"deadbeef","appId":999,"timestamp":"1","accessToken":"evil","shopId":1}',
    preHash: 'accessToken=tok&appId=123&shopId=1&timestamp=1700000000',
    bodyPrefix: '{"accessToken":"tok","appId":123,"shopId":1,"timestamp":1700000000',
    parsed: { accessToken: 'tok', appId: 123, shopId: 1, timestamp: TS },
  },
  {
    name: 'app-level call drops the caller accessToken',
    appLevel: true,
    body: '{"accessToken":"evil","sig":"x","appId":1,"timestamp":2,"grantType":"refresh_token","refreshToken":"r1"}',
    preHash: 'appId=123&grantType=refresh_token&refreshToken=r1&timestamp=1700000000',
    bodyPrefix: '{"appId":123,"grantType":"refresh_token","refreshToken":"r1","timestamp":1700000000',
    parsed: { appId: 123, grantType: 'refresh_token', refreshToken: 'r1', timestamp: TS },
  },
  {
    name: 'empty body gets only the common fields',
    body: '{}',
    preHash: 'accessToken=tok&appId=123&timestamp=1700000000',
    bodyPrefix: '{"accessToken":"tok","appId":123,"timestamp":1700000000',
    parsed: { accessToken: 'tok', appId: 123, timestamp: TS },
  },
  {
    name: 'lone surrogate nested is signed in its escaped form',
    body: '{"o":{"s":"\\uD800"}}',
    preHash: 'accessToken=tok&appId=123&o={"s":"\\ud800"}&timestamp=1700000000',
    bodyPrefix: '{"accessToken":"tok","appId":123,"o":{"s":"\\ud800"},"timestamp":1700000000',
  },
];

for (const c of cases) {
  test(`case: ${c.name}`, (t) => {
    const input: KeetaSignInput = { signUrl: URL, appSecret: SECRET, appId: '123', timestampSec: TS, body: obj(c.body) };
    if (!c.appLevel) input.accessToken = c.accessToken ?? 'tok';
    const r = signKeetaRequest(input);
    const expectedPreHash = `${URL}?${c.preHash}`;
    const expectedSig = sha256Hex(expectedPreHash + SECRET);
    t.is(r.preHashRedacted, expectedPreHash + '<appSecret>');
    t.is(r.sig, expectedSig);
    t.regex(r.sig, /^[0-9a-f]{64}$/);
    t.is(r.body, `${c.bodyPrefix},"sig":"${expectedSig}"}`);
    t.false(r.preHashRedacted.includes(SECRET));
    // the forwarded body is valid JSON that our strict parser accepts and reproduces exactly
    const reparsed = JSON.parse(r.body) as Record<string, unknown>;
    t.is(reparsed['sig'], expectedSig);
    if (c.parsed) t.deepEqual(reparsed, { ...c.parsed, sig: expectedSig });
  });
}

test('pretty-printed input gives the same body and sig as compact input', (t) => {
  const compact = '{"shopId":756823555555859,"items":[{"id":1234567890123456789,"name":"開心","price":12.50,"tags":["a","b"]}],"remark":"","meta":{"b":1,"2":2}}';
  const pretty = `{
  "shopId" : 756823555555859,
  "items" : [
    {
      "id" : 1234567890123456789,
      "name" : "\\u958b\\u5fc3",
      "price" : 12.50,
      "tags" : [ "a" , "b" ]
    }
  ],
  "remark" : "",
  "meta" : { "b" : 1, "2" : 2 }
}
`;
  const base = { signUrl: URL, appSecret: SECRET, appId: '123', timestampSec: TS, accessToken: 'tok' };
  const a = signKeetaRequest({ ...base, body: obj(compact) });
  const b = signKeetaRequest({ ...base, body: obj(pretty) });
  t.is(b.body, a.body);
  t.is(b.sig, a.sig);
  t.is(b.preHashRedacted, a.preHashRedacted);
  t.false(a.body.includes(' ') || a.body.includes('\n'));
});

test('signing does not modify the caller body, and depends on every input', (t) => {
  const text = '{"sig":"x","shopId":1,"appId":5}';
  const body = obj(text);
  const snapshot = JSON.stringify(body);
  const base: KeetaSignInput = { signUrl: URL, appSecret: SECRET, appId: '123', timestampSec: TS, accessToken: 'tok', body };
  const r = signKeetaRequest(base);
  t.is(JSON.stringify(body), snapshot);
  const variants: KeetaSignInput[] = [
    { ...base, signUrl: `${BASE}/order/confirm` },
    { ...base, appSecret: SECRET + 'x' },
    { ...base, appId: '124' },
    { ...base, timestampSec: TS + 1 },
    { ...base, accessToken: 'tok2' },
    { ...base, body: obj('{"shopId":2}') },
  ];
  const sigs = new Set([r.sig, ...variants.map((v) => signKeetaRequest(v).sig)]);
  t.is(sigs.size, variants.length + 1);
});

test('int64 appId from config stays exact', (t) => {
  const r = signKeetaRequest({ signUrl: URL, appSecret: SECRET, appId: '9223372036854775807', timestampSec: TS, body: obj('{}') });
  t.is(r.preHashRedacted, `${URL}?appId=9223372036854775807&timestamp=1700000000<appSecret>`);
  t.true(r.body.startsWith('{"appId":9223372036854775807,"timestamp":1700000000,"sig":"'));
});

test('signKeetaAppCall is an app-level signKeetaRequest', (t) => {
  const url = `${BASE}/base/oauth/token`;
  const fields: Array<[string, JsonNode]> = [
    ['refreshToken', jsonString('r1')],
    ['grantType', jsonString('refresh_token')],
    ['n', jsonNumber('1234567890123456789')],
  ];
  const r = signKeetaAppCall(url, SECRET, '123', TS, fields);
  const pre = `${url}?appId=123&grantType=refresh_token&n=1234567890123456789&refreshToken=r1&timestamp=1700000000`;
  t.is(r.preHashRedacted, pre + '<appSecret>');
  t.is(r.sig, sha256Hex(pre + SECRET));
  t.is(r.body, `{"appId":123,"grantType":"refresh_token","n":1234567890123456789,"refreshToken":"r1","timestamp":1700000000,"sig":"${r.sig}"}`);
  t.is(fields.length, 3, 'fields array not modified');
  t.is(fields[0]?.[0], 'refreshToken');
});

test('duplicate keys: rejected by the parser, and in hand-built bodies', (t) => {
  t.throws(() => parseJsonText('{"shopId":1,"shopId":2}'), { instanceOf: JsonSyntaxError });
  const built: JsonObjectNode = { kind: 'object', entries: [['shopId', jsonNumber('1')], ['shopId', jsonNumber('2')]] };
  t.throws(() => signKeetaRequest({ signUrl: URL, appSecret: SECRET, appId: '123', timestampSec: TS, body: built }), {
    instanceOf: KeetaSignError,
  });
  // duplicates of injected keys are simply dropped
  const injectedDup: JsonObjectNode = { kind: 'object', entries: [['appId', jsonNumber('1')], ['appId', jsonNumber('2')]] };
  t.is(
    signKeetaRequest({ signUrl: URL, appSecret: SECRET, appId: '123', timestampSec: TS, body: injectedDup }).preHashRedacted,
    `${URL}?appId=123&timestamp=1700000000<appSecret>`,
  );
});

test('malformed JSON bodies are rejected before signing', (t) => {
  for (const bad of ['{"a":1,}', '{"a":01}', '{"a":-}', '{"a":"x', '{"a":"\\x"}', '{"a":1} x', '['.repeat(10_000)]) {
    t.throws(() => parseJsonText(bad), { instanceOf: JsonSyntaxError }, bad.slice(0, 20));
  }
});

test('inputs that would make the signature ambiguous are rejected', (t) => {
  const base: KeetaSignInput = { signUrl: URL, appSecret: SECRET, appId: '123', timestampSec: TS, accessToken: 'tok', body: obj('{}') };
  const bad: Array<[string, Partial<KeetaSignInput>]> = [
    ['lone surrogate in top-level string', { body: obj('{"a":"x\\ud800"}') }],
    ['lone low surrogate in top-level string', { body: obj('{"a":"\\udc00x"}') }],
    ['lone surrogate in top-level key', { body: obj('{"\\ud800":1}') }],
    ['lone surrogate in accessToken', { accessToken: 'a\ud800' }],
    ['empty accessToken', { accessToken: '' }],
    ['signUrl with query', { signUrl: `${URL}?x=1` }],
    ['signUrl with fragment', { signUrl: `${URL}#x` }],
    ['empty signUrl', { signUrl: '' }],
    ['empty secret', { appSecret: '' }],
    ['appId with leading zero', { appId: '0123' }],
    ['appId not decimal', { appId: '12a' }],
    ['appId negative', { appId: '-1' }],
    ['appId empty', { appId: '' }],
    ['fractional timestamp', { timestampSec: 1.5 }],
    ['negative timestamp', { timestampSec: -1 }],
    ['NaN timestamp', { timestampSec: Number.NaN }],
    ['unsafe-integer timestamp', { timestampSec: 2 ** 53 }],
    ['millisecond timestamp', { timestampSec: 1700000000000 }],
  ];
  for (const [name, patch] of bad) {
    const err = t.throws(() => signKeetaRequest({ ...base, ...patch }), { instanceOf: KeetaSignError }, name);
    t.false(err?.message.includes(SECRET) ?? true, name);
  }
  // A well-formed surrogate pair at top level is fine.
  const ok = signKeetaRequest({ ...base, body: obj('{"a":"\\ud83d\\ude00"}') });
  t.is(ok.preHashRedacted, `${URL}?a=😀&accessToken=tok&appId=123&timestamp=1700000000<appSecret>`);
});
