import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, parseConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/core/errors.js';
import { renderTime } from '../../../src/provider/steps.js';

function problemsOf(yaml: string): string[] {
  try {
    parseConfig(yaml);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

test('an invalid recipe gives one clear error per problem, each at its path', (t) => {
  const problems = problemsOf(`
upstreams:
  px:
    type: signed
    baseUrl: https://px.example
    app: {key: "1", secret: s, extra: x}
    recipe:
      app: [key, secret]
      set:
        query:
          ts: {time: minutes}
          both: {text: a, app: key}
      sign:
        string: [path, {params: {join: "k:v"}}, bogus]
        algorithm: sha512
        encoding: hex
        put: {query: sign, header: X-Sign}
      tokens: {model: merchant}
      answers: {code: code, classes: [{class: nice, codes: [1]}]}
`);
  const expected = [
    'upstreams.px.recipe.set.query.ts.time: expected s, ms or a format',
    'upstreams.px.recipe.set.query.both: give only one of app, text',
    'upstreams.px.recipe.sign.string[1]: expected method, url, path',
    'upstreams.px.recipe.sign.string[2]: expected method, url, path',
    'upstreams.px.recipe.sign.algorithm: expected one of sha256, sha1, md5, hmac-sha256, hmac-sha1, hmac-md5',
    'upstreams.px.recipe.sign.put: give exactly one of query, form, json, header',
    'upstreams.px.recipe.tokens.request: required with model merchant',
    'upstreams.px.recipe.tokens.answer: required with model merchant',
    'upstreams.px.recipe.answers.classes[0].class: expected one of success',
  ];
  for (const e of expected) t.is(problems.filter((p) => p.startsWith(e)).length, 1, `expected exactly one "${e}" in:\n${problems.join('\n')}`);
  t.is(problems.length, expected.length, problems.join('\n'));
});

test('cross-field problems of a recipe are named at their paths (once the shape is right)', (t) => {
  const problems = problemsOf(`
upstreams:
  px:
    type: signed
    baseUrl: https://px.example
    app: {key: "1", secret: s}
    recipe:
      set:
        query:
          who: {app: nobody}
          tok: {token: access}
      sign: {string: [secret, path], algorithm: md5, secret: pepper, encoding: hex, put: {query: sign}}
      merchant: {index: {query: shop}}
      answers: {code: code}
`);
  t.deepEqual(problems.sort(), [
    'upstreams.px.recipe.merchant: merchants are chosen only with tokens.model merchant',
    'upstreams.px.recipe.set.query.tok.token: the recipe has no tokens (tokens.model is none)',
    'upstreams.px.recipe.set.query.who.app: names app value "nobody", which is not listed in app (key, secret)',
    'upstreams.px.recipe.sign.secret: "pepper" is not listed in app',
  ]);
});

test('app values the recipe needs are required, and unknown ones named', (t) => {
  const problems = problemsOf(`
upstreams:
  px:
    type: signed
    baseUrl: https://px.example
    app: {key: "1", extra: x}
    recipe:
      sign: {string: [secret, path], algorithm: md5, encoding: hex, put: {query: sign}}
      answers: {code: code}
`);
  t.deepEqual(problems.sort(), [
    'upstreams.px.app.extra: the recipe does not use app value "extra" (it lists key, secret)',
    'upstreams.px.app.secret: required: the recipe refers to app value "secret"',
  ]);
});

test('a preset upstream needs appKey and appSecret; an unknown type lists the recipe types', (t) => {
  const problems = problemsOf(`
upstreams:
  lz: {type: lazada, baseUrl: https://api.lazada.com/rest}
  x: {type: shopee, baseUrl: https://x.example}
`);
  t.true(problems.includes('upstreams.lz.appKey: required'), problems.join('\n'));
  t.true(problems.includes('upstreams.lz.appSecret: required'), problems.join('\n'));
  t.true(problems.some((p) => p.startsWith('upstreams.x.type: type must be one of: keeta, keysecure, signed, lazada, tiktok-shop, taobao-top')), problems.join('\n'));
});

test('recipeFile is read relative to the config file, and its problems are named', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-recipe-'));
  writeFileSync(join(dir, 'px.yaml'), 'sign: {string: [secret, path], algorithm: md5, encoding: base64, put: {header: X-Sign}}\nanswers: {code: code}\n');
  writeFileSync(join(dir, 'bad.yaml'), 'sign: {string: [], algorithm: md5, encoding: hex, put: {header: X-Sign}}\nanswers: {code: code}\n');
  writeFileSync(
    join(dir, 'c.yaml'),
    `upstreams:\n  px: {type: signed, baseUrl: https://px.example, recipeFile: ./px.yaml, app: {key: k, secret: s}}\n`,
  );
  const cfg = loadConfig(join(dir, 'c.yaml'));
  const px = cfg.upstreams.px!;
  t.true(px.type === 'signed' && px.recipe.sign.encoding === 'base64');
  t.true(cfg.files.includes(join(dir, 'px.yaml')));
  writeFileSync(join(dir, 'c.yaml'), `upstreams:\n  px: {type: signed, baseUrl: https://px.example, recipeFile: ./bad.yaml, app: {key: k, secret: s}}\n  py: {type: signed, baseUrl: https://px.example, recipeFile: ./missing.yaml}\n`);
  const err = t.throws(() => loadConfig(join(dir, 'c.yaml')), { instanceOf: ConfigError });
  t.true(err.problems.includes('upstreams.px.recipe.sign.string: list at least one part'), err.problems.join('\n'));
  t.true(err.problems.some((p) => p.startsWith('upstreams.py.recipeFile: cannot read ./missing.yaml')), err.problems.join('\n'));
});

test('times render in s, ms, or a format in a zone', (t) => {
  const ms = Date.UTC(2016, 0, 1, 4, 0, 5, 7);
  t.is(renderTime(ms, 's'), '1451620805');
  t.is(renderTime(ms, 'ms'), '1451620805007');
  t.is(renderTime(ms, 'yyyy-MM-dd HH:mm:ss', '+08:00'), '2016-01-01 12:00:05');
  t.is(renderTime(ms, 'yyyyMMddHHmmssSSS', '-03:30'), '20160101003005007');
});
