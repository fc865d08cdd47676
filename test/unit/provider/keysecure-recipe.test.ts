import { Writable } from 'node:stream';
import test from 'ava';
import { parseConfig } from '../../../src/config/load.js';
import { ConfigError, GatewayError } from '../../../src/core/errors.js';
import { createLogger } from '../../../src/observability/logger.js';
import { answerJudge } from '../../../src/provider/classes.js';
import { loadPreset } from '../../../src/provider/presets.js';
import { recipePassesQuery, recipeTouchesJson } from '../../../src/provider/request-parts.js';
import { tokenRequest } from '../../../src/provider/recipe-token-source.js';
import { signRequest } from '../../../src/provider/signer.js';
import { keySecureRecipe } from '../../../src/provider/builtin/keysecure.js';
import { createFaultReporter, FAULT_LOG_EVERY_MS } from '../../../src/provider/steps/config-faults.js';
import { checkJsonBody } from '../../../src/provider/steps/json-check.js';

const KS = loadPreset('keysecure');

test('keysecure preset: header injection only, no signature, nothing in the query or body', (t) => {
  const out = signRequest(KS, { method: 'POST', baseUrl: 'https://ks.example/open-api/v1', path: '/card/list', query: [], rawBody: Buffer.from('{"a":1}'), app: { apiKey: 'ak-1' }, accessToken: 'tok-1', nowMs: 1_700_000_000_123 });
  t.deepEqual(out.headers, { 'api-key': 'ak-1', timestamp: '1700000000123', 'access-token': 'tok-1' });
  t.is(out.signature, '');
  t.is(out.stringToSign, '');
  t.is(out.masked, '');
  t.is(out.query, '');
  t.is(String(out.body), '{"a":1}');
  t.true(recipePassesQuery(KS));
  t.false(recipeTouchesJson(KS));
  t.false(recipePassesQuery(loadPreset('lazada')));
});

test('keysecure preset: the token request is a GET with Api-Key, a 13-digit timestamp and a JSON content type', (t) => {
  const run = keySecureRecipe(parseConfig('upstreams:\n  ks: {type: keysecure, baseUrl: https://ks.example, apiKey: ak-1, timezone: UTC+8}\n').upstreams.ks as never);
  t.deepEqual(run.app, { apiKey: 'ak-1', timezone: 'UTC+8' });
  const req = tokenRequest(run, undefined, 1_700_000_000_123);
  t.is(req.method, 'GET');
  t.is(req.path, '/open-api/v1/merchant/token');
  t.deepEqual(req.headers, { 'api-key': 'ak-1', timestamp: '1700000000123', 'content-type': 'application/json' });
  t.is(req.body, undefined);
});

test('keysecure preset: classes and code labels as docs/protocols.md 4.4', (t) => {
  const j = answerJudge(KS);
  const of = (code: number) => j.judge(200, Buffer.from(JSON.stringify({ code })));
  t.like(of(0), { class: 'success', codeLabel: '0' });
  t.like(of(1007), { class: 'auth_error', codeLabel: '1007', tokenRejected: true });
  t.like(of(1005), { class: 'timestamp_error', timestampRejected: true });
  t.like(of(1003), { class: 'ip_not_allowed', codeLabel: '1003' });
  t.like(of(1009), { class: 'rate_limited' });
  t.like(of(1001), { class: 'server_error' });
  t.like(of(1013), { class: 'business_error', codeLabel: '1013' });
  t.like(of(3100), { class: 'business_error', codeLabel: 'other' });
  t.like(of(5000), { class: 'unknown_error', codeLabel: 'other' });
  t.like(j.judge(502, Buffer.from('<html>')), { class: 'upstream_http_error' });
});

test('json-check: an empty body passes, anything but UTF-8 JSON is BAD_JSON', (t) => {
  t.notThrows(() => checkJsonBody(Buffer.alloc(0)));
  t.notThrows(() => checkJsonBody(Buffer.from('{"n":1234567890123456789}')));
  for (const bad of [Buffer.from('{page:0}'), Buffer.from([0x7b, 0xff, 0x7d])]) {
    const err = t.throws(() => checkJsonBody(bad), { instanceOf: GatewayError });
    t.is(err?.code, 'BAD_JSON');
  }
});

test('config-faults: each code is logged at most once a minute, with its cause; other codes never', (t) => {
  const lines: string[] = [];
  const log = createLogger({ destination: new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }) as never });
  let now = 1_000_000;
  const f = createFaultReporter('ks', { '1003': 'egress IP not whitelisted' }, log, () => now);
  t.true(f.has('1003'));
  t.false(f.has('1007'));
  t.is(f.cause('1003'), 'egress IP not whitelisted');
  f.report('1003');
  f.report('1003');
  f.report('1007');
  now += FAULT_LOG_EVERY_MS - 1;
  f.report('1003');
  t.is(lines.length, 1);
  now += 1;
  f.report('1003');
  t.is(lines.length, 2);
  t.like(JSON.parse(lines[0]!), { level: 'error', upstream: 'ks', code: 1003, likelyCause: 'egress IP not whitelisted' });
});

function problemsOf(recipe: string): string[] {
  try {
    parseConfig(`upstreams:\n  px:\n    type: signed\n    baseUrl: https://px.example\n    app: {key: k, secret: s}\n    recipe:\n${recipe.replace(/^/gm, '      ')}\n`);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

test('the language: algorithm none takes nothing else; the others need string, encoding and put; a byte-for-byte body has no fields', (t) => {
  t.deepEqual(problemsOf('sign: {algorithm: none}\nanswers: {code: code}'), []);
  const none = problemsOf('sign: {algorithm: none, encoding: hex}\nanswers: {code: code}');
  t.true(none.some((p) => p.includes('recipe.sign.encoding') && p.includes('not used with algorithm none')), none.join('\n'));
  const md5 = problemsOf('sign: {algorithm: md5}\nanswers: {code: code}');
  for (const k of ['string', 'encoding', 'put']) t.true(md5.some((p) => p.includes(`recipe.sign.${k}`) && p.includes('required')), md5.join('\n'));
  const body = problemsOf('body: {check: json}\nset: {json: {a: {text: x}}}\nsign: {algorithm: none}\nanswers: {code: code}');
  t.true(body.some((p) => p.includes('recipe.body') && p.includes('byte for byte')), body.join('\n'));
  const opt = problemsOf('optional: [zone]\ndefaults: {headers: {x-zone: {app: zone}, x-other: {app: nope}}}\nsign: {algorithm: none}\nanswers: {code: code}');
  t.is(opt.length, 1, opt.join('\n'));
  t.true(opt[0]!.includes('recipe.defaults.headers.x-other.app'));
});
