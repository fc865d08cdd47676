import test from 'ava';
import {
  DEFAULT_MAX_DEPTH,
  JsonSyntaxError,
  getField,
  hasLoneSurrogate,
  isJsonNumberLexeme,
  jsonNumber,
  jsonObject,
  jsonString,
  parseJsonText,
  quoteJsonString,
  toCompactText,
  type JsonNode,
} from '../../../src/provider/steps/json-text.js';

function compact(text: string): string {
  return toCompactText(parseJsonText(text));
}

/** A copy of the tree with every parser cache removed, to serialise the slow way. */
function stripCaches(n: JsonNode): JsonNode {
  switch (n.kind) {
    case 'string':
      return jsonString(n.value);
    case 'array':
      return { kind: 'array', items: n.items.map(stripCaches) };
    case 'object':
      return jsonObject(n.entries.map(([k, v]) => [k, stripCaches(v)] as const));
    default:
      return n;
  }
}

// ---- valid input: exact compact output ----

const roundTrips: Array<[name: string, input: string, expected: string]> = [
  ['integer-like keys keep caller order', '{"b":1,"2":2,"a":3,"1":4}', '{"b":1,"2":2,"a":3,"1":4}'],
  ['int64 / long lexemes', '[756823555555859,1234567890123456789,123456789012345678901234567890]', '[756823555555859,1234567890123456789,123456789012345678901234567890]'],
  ['decimal and exponent lexemes', '[12.50,1e5,1E+5,-2.5e-3,-0,0,0.0,1E-0,-0.000]', '[12.50,1e5,1E+5,-2.5e-3,-0,0,0.0,1E-0,-0.000]'],
  ['pretty-printed input becomes compact', ' {\n\t"a" : [ 1 , 2 ] ,\r\n  "b" : { "c" : null } , "d":"x y" }\n ', '{"a":[1,2],"b":{"c":null},"d":"x y"}'],
  ['\\u escapes decode, non-ASCII stays raw', '"\\u958b\\u5fc3"', '"開心"'],
  ['raw non-ASCII', '"開心樂園餐"', '"開心樂園餐"'],
  ['surrogate pair escape joins', '"\\ud83d\\ude00 \\uD83D\\uDE00"', '"😀 😀"'],
  ['lone surrogate escape stays escaped lowercase', '["\\uD800","\\udc00x"]', '["\\ud800","\\udc00x"]'],
  ['solidus escape is dropped', '"a\\/b/c"', '"a/b/c"'],
  ['quote and backslash', '"q\\"b\\\\"', '"q\\"b\\\\"'],
  ['short escapes', '"\\b\\f\\n\\r\\t"', '"\\b\\f\\n\\r\\t"'],
  ['other control characters become \\u00xx lowercase', '"\\u0001\\u001F\\u0000"', '"\\u0001\\u001f\\u0000"'],
  ['DEL, U+2028, U+2029 raw (as JSON.stringify)', '"\\u007f\\u2028\\u2029"', '"\u007f\u2028\u2029"'],
  ['latin-1 escape decoded', '"caf\\u00e9"', '"café"'],
  ['literals', '[true,false,null]', '[true,false,null]'],
  ['empty containers', '{"a":{},"b":[],"c":[{}],"d":""}', '{"a":{},"b":[],"c":[{}],"d":""}'],
  ['empty containers with whitespace', '{ "a" : { } , "b" : [ ] }', '{"a":{},"b":[]}'],
  ['scalar top level', '  -12.5e+3 ', '-12.5e+3'],
  ['key with escapes', '{"k\\"\\n":1}', '{"k\\"\\n":1}'],
  ['__proto__ is an ordinary key', '{"__proto__":1,"constructor":2}', '{"__proto__":1,"constructor":2}'],
];

for (const [name, input, expected] of roundTrips) {
  test(`compact: ${name}`, (t) => {
    const node = parseJsonText(input);
    t.is(toCompactText(node), expected);
    t.is(toCompactText(stripCaches(node)), expected, 'same without parser caches');
    // Our output is valid JSON: a second pass is a fixed point.
    t.is(compact(expected), expected);
  });
}

test('object entries keep order and decoded values', (t) => {
  const node = parseJsonText('{"b":"x","2":2,"a":"\\u958b\\u5fc3","1":1234567890123456789}');
  t.deepEqual(node, {
    kind: 'object',
    entries: [
      ['b', { kind: 'string', value: 'x', json: '"x"' }],
      ['2', { kind: 'number', lexeme: '2' }],
      ['a', { kind: 'string', value: '開心', json: undefined }], // escaped in the source: no cache
      ['1', { kind: 'number', lexeme: '1234567890123456789' }],
    ],
    json: undefined, // contains an escape: rebuilt on serialisation
  });
});

test('parser caches: canonical spans are cached as source slices, others are not', (t) => {
  const node = parseJsonText('{"a":{"b":[1,"x"]}, "c":"\\n","d":["\\ud83d\\ude00"],"e":"😀","f":{}}');
  if (node.kind !== 'object') return t.fail();
  t.is(node.json, undefined, 'whitespace inside the top object');
  const cached = (k: string): string | undefined => {
    const v = getField(node, k);
    return v !== undefined && (v.kind === 'string' || v.kind === 'array' || v.kind === 'object') ? v.json : 'n/a';
  };
  t.is(cached('a'), '{"b":[1,"x"]}');
  t.is(cached('c'), undefined, 'escaped string');
  t.is(cached('d'), undefined, 'escaped surrogate pair');
  t.is(cached('e'), '"😀"', 'raw surrogate pair is canonical');
  t.is(cached('f'), '{}');
  const spaced = parseJsonText('{ }');
  t.is(spaced.kind === 'object' ? spaced.json : 'n/a', undefined);
  // A raw lone surrogate in the source text (possible in a JS string) must not be cached raw.
  const lone = parseJsonText('["a\ud800b",{"k\udc00":1},"\udc00\ud800"]');
  t.is(lone.kind === 'array' ? lone.json : 'n/a', undefined);
  t.is(toCompactText(lone), '["a\\ud800b",{"k\\udc00":1},"\\udc00\\ud800"]');
  t.is(toCompactText(lone), JSON.stringify(['a\ud800b', { 'k\udc00': 1 }, '\udc00\ud800']));
});

test('compact text agrees with JSON.parse/JSON.stringify for safe values', (t) => {
  const docs = [
    '{"a":[1,2,{"b":null,"c":"d\\u0001\\"\\\\/"}],"e":true,"f":-1.5,"g":"開心\\ud83d\\ude00"}',
    '[[[[]]],{},"",0,-0.5,1e3]',
    '{"cipherInfos":[{"cipherText":"ENC_1"},{"cipherText":"ENC_2"}]}',
  ];
  for (const d of docs) {
    t.deepEqual(JSON.parse(compact(d)), JSON.parse(d));
  }
});

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}
const ALPHABET = ['a', 'Z', '0', ' ', '"', '\\', '/', '\n', '\t', '\u0000', '\u001f', '\u007f', 'é', '開', '心', '\u2028', '😀', '\ud800', '\udc00', '{', '}', '[', ':', ','];
function randomString(r: () => number): string {
  let s = '';
  const n = Math.floor(r() * 8);
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(r() * ALPHABET.length)];
  return s;
}
function randomValue(r: () => number, depth: number): unknown {
  switch (Math.floor(r() * (depth > 4 ? 5 : 7))) {
    case 0:
      return randomString(r);
    case 1:
      return Math.floor((r() - 0.5) * 2 ** 40) / (r() < 0.3 ? 8 : 1);
    case 2:
      return r() < 0.5;
    case 3:
      return null;
    case 4:
      return r() < 0.5 ? '' : Number.MAX_SAFE_INTEGER;
    case 5:
      return Array.from({ length: Math.floor(r() * 5) }, () => randomValue(r, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      const n = Math.floor(r() * 6);
      for (let i = 0; i < n; i++) o[r() < 0.2 ? String(Math.floor(r() * 20)) : randomString(r)] = randomValue(r, depth + 1);
      return o;
    }
  }
}

test('fuzz: compact text equals JSON.stringify for compact, pretty and \\u-escaped inputs, with or without caches', (t) => {
  const r = rng(20240501);
  let checked = 0;
  for (let i = 0; i < 3000; i++) {
    const v = randomValue(r, 0);
    const expected = JSON.stringify(v);
    const inputs = [
      expected,
      JSON.stringify(v, null, 2),
      JSON.stringify(v, null, '\t').replace(/\n/g, '\r\n'),
      // every non-ASCII code unit written as a \u escape (alternately lower- and uppercase hex)
      expected.replace(/[\u0080-\uffff]/g, (c) => {
        const hex = c.charCodeAt(0).toString(16).padStart(4, '0');
        return '\\u' + (i % 2 ? hex.toUpperCase() : hex);
      }),
    ];
    for (const input of inputs) {
      const node = parseJsonText(input);
      if (toCompactText(node) !== expected || toCompactText(stripCaches(node)) !== expected) {
        t.fail(`mismatch for input ${JSON.stringify(input)}`);
        return;
      }
      checked++;
    }
  }
  t.is(checked, 12000);
});

test('quoteJsonString equals JSON.stringify for every UTF-16 code unit', (t) => {
  let mismatches = 0;
  for (let c = 0; c <= 0xffff; c++) {
    const s = 'a' + String.fromCharCode(c) + 'b';
    if (quoteJsonString(s) !== JSON.stringify(s)) mismatches++;
    // and it parses back to the same value, cached text included
    const back = parseJsonText(quoteJsonString(s));
    if (back.kind !== 'string' || back.value !== s || toCompactText(back) !== JSON.stringify(s)) mismatches++;
  }
  for (const s of ['', '😀', '\ud83d\ude00\ud800', '\udc00\ud83d', 'plain ascii', '/<script>']) {
    if (quoteJsonString(s) !== JSON.stringify(s)) mismatches++;
  }
  t.is(mismatches, 0);
});

test('hasLoneSurrogate', (t) => {
  for (const ok of ['', 'abc', '開心', '😀', 'a😀b😀']) t.false(hasLoneSurrogate(ok), JSON.stringify(ok));
  for (const bad of ['\ud800', '\udc00', 'a\ud83d', '\ude00a', '😀\ud83d', '\ud83d\ud83d\ude00', '\udc00\ud800']) {
    t.true(hasLoneSurrogate(bad), JSON.stringify(bad));
  }
});

test('nesting up to the maximum depth is accepted', (t) => {
  const deep = '['.repeat(DEFAULT_MAX_DEPTH) + ']'.repeat(DEFAULT_MAX_DEPTH);
  t.is(compact(deep), deep);
  const deepObj = '{"a":'.repeat(DEFAULT_MAX_DEPTH - 1) + '{}' + '}'.repeat(DEFAULT_MAX_DEPTH - 1);
  t.is(compact(deepObj), deepObj);
});

test('maxDepth option', (t) => {
  t.is(toCompactText(parseJsonText('[[1]]', { maxDepth: 2 })), '[[1]]');
  const err = t.throws(() => parseJsonText('[[[1]]]', { maxDepth: 2 }), { instanceOf: JsonSyntaxError });
  t.is(err?.position, 2);
});

// ---- invalid input: JsonSyntaxError at an exact position ----

const rejects: Array<[name: string, input: string, position: number]> = [
  ['empty input', '', 0],
  ['whitespace only', ' \n ', 3],
  ['trailing comma in object', '{"a":1,}', 7],
  ['trailing comma in array', '[1,2,]', 5],
  ['leading zero', '{"a":01}', 5],
  ['negative leading zero', '-012', 0],
  ['lone minus', '-', 1],
  ['minus then letter', '[-a]', 2],
  ['plus sign', '+1', 0],
  ['leading decimal point', '.5', 0],
  ['trailing decimal point', '1.', 2],
  ['decimal point then exponent', '1.e5', 2],
  ['empty exponent', '1e', 2],
  ['exponent sign only', '1e+', 3],
  ['hex number', '0x10', 1],
  ['NaN', 'NaN', 0],
  ['Infinity', '-Infinity', 1],
  ['unterminated string', '{"a":"abc', 5],
  ['unterminated string after escape', '"abc\\', 0],
  ['unterminated key', '{"abc', 1],
  ['bad escape', '"a\\x"', 2],
  ['single-quote escape', '"a\\\'"', 2],
  ['short \\u escape', '"\\u12"', 1],
  ['non-hex \\u escape', '"\\u12G4"', 1],
  ['raw newline in string', '"a\nb"', 2],
  ['raw NUL in string', '"a\u0000"', 2],
  ['raw tab in string after escape', '"\\n\t"', 3],
  ['trailing garbage', '{"a":1} x', 8],
  ['two documents', '{}{}', 2],
  ['trailing comma after document', '[1],', 3],
  ['line comment', '{"a":1 // c\n}', 7],
  ['block comment', '/* c */{}', 0],
  ['single quotes', "{'a':1}", 1],
  ['unquoted key', '{a:1}', 1],
  ['missing colon', '{"a" 1}', 5],
  ['missing comma', '[1 2]', 3],
  ['missing value', '{"a":}', 5],
  ['leading comma', '[,1]', 1],
  ['truncated true', 'tru', 0],
  ['capitalised literal', 'True', 0],
  ['nul', '[nul]', 1],
  ['BOM', '\ufeff{}', 0],
  ['NBSP is not whitespace', '{\u00a0}', 1],
  ['form feed is not whitespace', '\f{}', 0],
  ['unclosed array', '[1,2', 4],
  ['unclosed object', '{"a":1', 6],
  ['duplicate key', '{"a":1,"a":2}', 7],
  ['duplicate key after escapes decode', '{"a":1,"\\u0061":2}', 7],
  ['duplicate key in nested object', '{"x":[{"b":1,"c":2,"b":3}]}', 19],
  ['depth bomb (arrays)', '['.repeat(100_000), DEFAULT_MAX_DEPTH],
  ['depth bomb (objects)', '{"a":'.repeat(201) + '1' + '}'.repeat(201), 5 * 200],
];

for (const [name, input, position] of rejects) {
  test(`rejects: ${name}`, (t) => {
    const err = t.throws(() => parseJsonText(input), { instanceOf: JsonSyntaxError });
    t.is(err?.position, position, err?.message);
    t.true(err!.message.includes(`at position ${position}`));
    // Cross-check the table against V8: everything but duplicates and depth is invalid JSON.
    if (!/duplicate|depth/.test(name)) t.throws(() => JSON.parse(input), { instanceOf: SyntaxError });
  });
}

test('duplicate keys in a large object are found (Set path)', (t) => {
  const keys = Array.from({ length: 40 }, (_, i) => `"k${i}":${i}`);
  t.is(compact(`{${keys.join(',')}}`), `{${keys.join(',')}}`);
  const withDup = `{${keys.join(',')},"k3":0}`;
  const err = t.throws(() => parseJsonText(withDup), { instanceOf: JsonSyntaxError });
  t.is(err?.position, withDup.lastIndexOf('"k3"'));
  const dupLate = `{${keys.join(',')},"z":1,"z":2}`;
  t.throws(() => parseJsonText(dupLate), { instanceOf: JsonSyntaxError, message: /duplicate/ });
});

test('error messages never echo more than one input character', (t) => {
  const secretish = 'SUPERSECRETVALUE1234567890';
  for (const input of [`{"a":1} ${secretish}`, `{"a":${secretish}}`, `{${secretish}}`, `"${secretish}`, `"${secretish}\\q"`]) {
    const err = t.throws(() => parseJsonText(input), { instanceOf: JsonSyntaxError });
    t.false(err!.message.includes('SUPER'), err!.message);
    t.true(err!.message.length < 120);
    t.is(err!.name, 'JsonSyntaxError');
  }
  const ctl = t.throws(() => parseJsonText('[\u0001]'), { instanceOf: JsonSyntaxError });
  t.regex(ctl!.message, /U\+0001/);
});

test('getField', (t) => {
  const node = parseJsonText('{"shopId":756823555555859,"x":{"y":1}}');
  if (node.kind !== 'object') return t.fail();
  t.deepEqual(getField(node, 'shopId'), { kind: 'number', lexeme: '756823555555859' });
  t.deepEqual(getField(node, 'x'), { kind: 'object', entries: [['y', { kind: 'number', lexeme: '1' }]], json: '{"y":1}' });
  t.is(getField(node, 'y'), undefined);
  t.is(getField(node, 'toString'), undefined);
});

test('node constructors', (t) => {
  t.deepEqual(jsonNumber('1234567890123456789'), { kind: 'number', lexeme: '1234567890123456789' });
  t.deepEqual(jsonNumber(42), { kind: 'number', lexeme: '42' });
  t.throws(() => jsonNumber(2 ** 53), { instanceOf: RangeError });
  t.throws(() => jsonNumber(1.5), { instanceOf: RangeError });
  t.throws(() => jsonNumber('01'), { instanceOf: RangeError });
  t.throws(() => jsonNumber('1.'), { instanceOf: RangeError });
  t.throws(() => jsonNumber(' 1'), { instanceOf: RangeError });
  for (const ok of ['0', '-0', '12.50', '1e5', '1E+5', '-2.5e-3']) t.true(isJsonNumberLexeme(ok), ok);
  for (const bad of ['', '-', '+1', '.5', '1.', '1e', 'NaN', '0x1', '1\n']) t.false(isJsonNumberLexeme(bad), bad);
  const obj: JsonNode = jsonObject([['s', jsonString('a"b')], ['n', jsonNumber('12.50')]]);
  t.is(toCompactText(obj), '{"s":"a\\"b","n":12.50}');
});
