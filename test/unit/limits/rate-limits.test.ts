import test from 'ava';
import { Registry } from 'prom-client';
import { ManualClock } from '../../../src/core/clock.js';
import { parseConfig, summarizeConfig } from '../../../src/config/load.js';
import { isGatewayError, type GatewayError } from '../../../src/core/errors.js';
import { LocalLimiter } from '../../../src/limits/local-limiter.js';
import { buildRateLimits, createRateLimitState, type RateLimitState } from '../../../src/limits/rate-limits.js';
import { createMetrics } from '../../../src/observability/metrics.js';
import { metricValue } from '../../helpers/gateway.js';
import { captureLogs } from '../../helpers/log-capture.js';

const ENV = { S: 'keeta-app-secret-value', K: 'ks-api-key-value' };

function setup(upstreamsYaml: string, opts: { state?: RateLimitState; clock?: ManualClock } = {}) {
  const config = parseConfig(`upstreams:\n${upstreamsYaml}`, { env: ENV });
  const clock = opts.clock ?? new ManualClock(1_000_000);
  const metrics = createMetrics({ registry: new Registry(), upstreams: Object.keys(config.upstreams), collectDefaults: false });
  const state = opts.state ?? createRateLimitState(new LocalLimiter(clock));
  const slept: number[] = [];
  const { log, lines } = captureLogs();
  const limits = buildRateLimits(config.upstreams, {
    state,
    metrics,
    clock,
    log,
    sleep: async (ms) => {
      slept.push(Math.round(ms));
    },
  });
  const metric = async (name: string, labels: Record<string, string>) => metricValue(await metrics.registry.metrics(), name, labels);
  return { limits, clock, state, slept, metric, lines };
}

const KEETA = `  keeta:
    type: keeta
    baseUrl: https://open.mykeeta.com/api/open
    appId: 1
    appSecret: \${S}
`;
const KEYSECURE = `  ks:
    type: keysecure
    baseUrl: https://openplatform.keysecure.io
    apiKey: \${K}
`;

async function refusal(p: Promise<void> | undefined): Promise<GatewayError> {
  try {
    await p;
  } catch (err) {
    if (isGatewayError(err)) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

test('Keeta defaults: the documented menu endpoints are limited, everything else is not', async (t) => {
  const { limits, slept, metric } = setup(KEETA);
  const keeta = limits.get('keeta')!;
  t.truthy(keeta);
  t.is(keeta.admit('/order/get'), undefined, 'no rule, no cooldown: nothing to wait for');
  t.is(keeta.admit('/product/choicegroup/listx'), undefined);
  for (const path of ['/product/spustatus/batchupdate', '/product/choicegroup/batchdel', '/product/spupicture/batchbind', '/product/choicegroup/create', '/product/choicegroup/update']) {
    for (let i = 0; i < 11; i++) await keeta.admit(path);
    const err = await refusal(keeta.admit(path));
    t.is(err.code, 'RATE_LIMITED', path);
  }
  // 50/s: 51 admitted within 1 s of waiting (slots 0..1000 ms), the 52nd refused.
  for (let i = 0; i < 51; i++) await keeta.admit('/product/choicegroup/list');
  t.is((await refusal(keeta.admit('/product/choicegroup/list'))).code, 'RATE_LIMITED');
  t.is(slept.at(-1), 1000);
  t.is(await metric('countersign_rate_limited_total', { upstream: 'keeta', rule: 'choicegroup-list' }), 1);
  t.is(await metric('countersign_rate_limit_waits_total', { upstream: 'keeta', rule: 'choicegroup-list' }), 50);
  t.is(await metric('countersign_rate_limit_wait_seconds_count', { upstream: 'keeta', rule: 'choicegroup-list' }), 51);
  t.is(await metric('countersign_rate_limited_total', { upstream: 'keeta', rule: 'spustatus-batchupdate' }), 1);
});

test('an explicit empty list turns the defaults off: no entry for that upstream', (t) => {
  const { limits } = setup(`${KEETA}    rateLimits: []\n`);
  t.false(limits.has('keeta'));
});

test('RATE_LIMITED names the upstream, rule and rate and carries Retry-After', async (t) => {
  const { limits, clock } = setup(`${KEETA}    rateLimits:
      - name: orders
        paths: ["/order/*"]
        perSecond: 2
        maxWait: 500ms
`);
  const keeta = limits.get('keeta')!;
  await keeta.admit('/order/get'); // slot 0
  await keeta.admit('/order/confirm'); // slot 500 ms: one budget for the whole rule
  const err = await refusal(keeta.admit('/order/cancel')); // would wait 1000 ms > 500 ms
  t.is(err.status, 429);
  t.is(err.headers['Retry-After'], '1');
  t.regex(err.message, /keeta allows 2\/s under rule "orders"/);
  clock.advance(1000);
  t.is(await keeta.admit('/order/get'), undefined, 'the budget refills with time');
  t.is(keeta.admit('/base/callback/url/set'), undefined);
});

test('a path under two rules waits for the slower and at most the smaller maxWait', async (t) => {
  const { limits, slept, metric } = setup(`${KEETA}    rateLimits:
      - name: all-product
        paths: ["/product/*"]
        perSecond: 100
        maxWait: 5s
      - name: list
        paths: ["/product/choicegroup/list"]
        perSecond: 4
        maxWait: 600ms
`);
  const keeta = limits.get('keeta')!;
  for (let i = 0; i < 3; i++) await keeta.admit('/product/choicegroup/list');
  t.deepEqual(slept, [250, 500]);
  const err = await refusal(keeta.admit('/product/choicegroup/list'));
  t.regex(err.message, /rule "list"/);
  t.is(await metric('countersign_rate_limit_waits_total', { upstream: 'keeta', rule: 'list' }), 2);
  t.is(await metric('countersign_rate_limited_total', { upstream: 'keeta', rule: 'list' }), 1);
  // The other paths under the glob rule saw the three requests above too, but 100/s is ample.
  t.is(await keeta.admit('/product/menu/sync'), undefined);
});

test('a rule with a burst lets that many through at once', async (t) => {
  const { limits, slept } = setup(`${KEYSECURE}    rateLimits:
      - paths: ["/open-api/v1/card/apply"]
        perSecond: 10
        burst: 3
        maxWait: 0ms
`);
  const ks = limits.get('ks')!;
  for (let i = 0; i < 3; i++) await ks.admit('/open-api/v1/card/apply');
  t.deepEqual(slept, []);
  const err = await refusal(ks.admit('/open-api/v1/card/apply'));
  t.regex(err.message, /rule "\/open-api\/v1\/card\/apply"/, 'a rule without a name is named after its paths');
});

test('after a 1009 the upstream is paced at the cooldown rate on every path, then released', async (t) => {
  const { limits, clock, slept, metric, lines } = setup(`${KEYSECURE}    onRateLimited:
      cooldown: 5s
      perSecond: 2
      maxWait: 1s
`);
  const ks = limits.get('ks')!;
  t.is(ks.admit('/open-api/v1/card/list'), undefined, 'no pacing before any 1009');
  ks.slowDown();
  await ks.admit('/open-api/v1/card/list');
  await ks.admit('/open-api/v1/card/detail');
  await ks.admit('/open-api/v1/card/list');
  t.deepEqual(slept, [500, 1000]);
  const err = await refusal(ks.admit('/open-api/v1/card/list'));
  t.regex(err.message, /paced at 2\/s after it answered "too frequent"/);
  t.is(await metric('countersign_rate_limited_total', { upstream: 'ks', rule: 'cooldown' }), 1);
  t.is(await metric('countersign_rate_limit_cooldowns_total', { upstream: 'ks' }), 1);
  clock.advance(4000);
  ks.slowDown(); // another 1009 extends the cooldown
  clock.advance(4000);
  t.not(ks.admit('/open-api/v1/card/list'), undefined, 'still cooling 8 s after the first 1009');
  clock.advance(1001);
  t.is(ks.admit('/open-api/v1/card/list'), undefined, 'released once the cooldown ends');
  t.is(lines.filter((l) => l.includes('too frequent')).length, 1, 'logged once per cooldown, not per 1009');
});

test('cooldown 0s turns the pacing off; a KeySecure upstream without rules then has no entry', (t) => {
  const { limits } = setup(`${KEYSECURE}    onRateLimited:\n      cooldown: 0s\n`);
  t.false(limits.has('ks'));
});

test('rebuilding from a new config keeps the budgets and the cooldown of the same state', async (t) => {
  const clock = new ManualClock(0);
  const rules = (perSecond: number) => `${KEYSECURE}    rateLimits:
      - name: cards
        paths: ["/open-api/v1/card/list"]
        perSecond: ${perSecond}
        maxWait: 0ms
`;
  const first = setup(rules(1), { clock });
  await first.limits.get('ks')!.admit('/open-api/v1/card/list');
  first.limits.get('ks')!.slowDown();
  const second = setup(rules(1), { clock, state: first.state });
  const err = await refusal(second.limits.get('ks')!.admit('/open-api/v1/card/list'));
  t.is(err.code, 'RATE_LIMITED', 'the new rules see the slot reserved under the old ones');
  clock.advance(1000);
  t.not(second.limits.get('ks')!.admit('/open-api/v1/other'), undefined, 'the cooldown carries over too');
});

test('config errors: bad rules are reported with their paths', (t) => {
  const bad = `${KEETA}    rateLimits:
      - paths: []
        perSecond: 0
      - name: cooldown
        paths: ["order/get"]
        perSecond: 1
        burst: 0
        maxWait: soon
        extra: 1
      - name: x
        paths: ["/a"]
        perSecond: 1
      - name: x
        paths: ["/b"]
        perSecond: 1
`;
  let problems: string[] = [];
  try {
    parseConfig(`upstreams:\n${bad}`, { env: ENV });
  } catch (err) {
    problems = (err as { problems: string[] }).problems;
  }
  const text = problems.join('\n');
  t.regex(text, /upstreams\.keeta\.rateLimits\[0\]\.paths: list at least one path/);
  t.regex(text, /upstreams\.keeta\.rateLimits\[0\]\.perSecond: must be more than 0/);
  t.regex(text, /upstreams\.keeta\.rateLimits\[1\]\.paths\[0\]: expected a path starting with \//);
  t.regex(text, /upstreams\.keeta\.rateLimits\[1\]\.burst: must be at least 1/);
  t.regex(text, /upstreams\.keeta\.rateLimits\[1\]\.maxWait: "soon" is not a duration/);
  t.regex(text, /upstreams\.keeta\.rateLimits\[1\]\.extra: unknown key/);
});

test('config errors: a rule named cooldown and duplicate names', (t) => {
  let problems: string[] = [];
  try {
    parseConfig(
      `upstreams:\n${KEETA}    rateLimits:\n      - {name: cooldown, paths: ["/a"], perSecond: 1}\n      - {name: x, paths: ["/b"], perSecond: 1}\n      - {name: x, paths: ["/c"], perSecond: 1}\n`,
      { env: ENV },
    );
  } catch (err) {
    problems = (err as { problems: string[] }).problems;
  }
  t.true(problems.some((p) => /^upstreams\.keeta\.rateLimits\[0\]\.name: "cooldown" is the name of the pacing/.test(p)), problems.join('\n'));
  t.true(problems.some((p) => /^upstreams\.keeta\.rateLimits\[2\]\.name: duplicate rule name "x"/.test(p)), problems.join('\n'));
});

test('check-config prints each upstream\'s rate limits, the Keeta defaults and the cooldown included', (t) => {
  const summary = summarizeConfig(parseConfig(`upstreams:\n${KEETA}${KEYSECURE}  off:\n    type: keeta\n    baseUrl: https://x.example\n    appId: 2\n    appSecret: s\n    rateLimits: []\n`, { env: ENV }));
  t.regex(summary, /rate limits: spustatus-batchupdate 10\/s burst 1 maxWait 1s; .*choicegroup-list 50\/s burst 1 maxWait 1s/);
  t.regex(summary, /rate limits: after 1009: 5\/s for 10s/);
  t.regex(summary, /  off: keeta .*\n    rate limits: none/);
});
