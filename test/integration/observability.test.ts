/**
 * Observability assets (grafana/): the alert rules load in promtool and behave as intended,
 * the dashboard only queries metrics a running target exports, and a real Prometheus scraping
 * that target evaluates every rule and runs every dashboard query.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { CLASSES, METRIC_NAMES, createMetrics } from '../../src/observability/metrics.js';
import type { RequestClass } from '../../src/observability/metrics.js';
import { assertBinary, startPrometheus } from '../helpers/prometheus.js';
import { KEETA_SIM_CODES, startKeetaSim, startKeySecureSim } from '../../src/sim/index.js';
import { startGateway } from '../helpers/gateway.js';
import { postJson } from '../helpers/http.js';
import { KEETA_APP_ID, KEETA_SECRET, importPair } from '../helpers/keeta-setup.js';
import { KS_API_KEY } from '../helpers/keysecure-setup.js';
import type { PromAlert, RunningPrometheus } from '../helpers/prometheus.js';

const DASHBOARD = resolve('grafana/countersign-dashboard.json');
const ALERTS = resolve('grafana/alerts.yaml');

// ---------------------------------------------------------------------------------------------
// Two scrape targets. The real gateway (admin listener) in front of both simulators, with real
// traffic: the names the dashboard and the rules use must be what it exports. And a synthetic
// target built from the same src/observability/metrics.ts, whose recorded state (expired tokens, 3 s
// latencies, failing refreshes) makes the alerts fire within seconds.
// ---------------------------------------------------------------------------------------------

/** A running gateway with traffic through both simulators; upstream names gw-keeta and gw-ks. */
export async function startGatewayTarget(): Promise<{ address: string; stop(): Promise<void> }> {
  const keeta = await startKeetaSim({ appId: KEETA_APP_ID, appSecret: KEETA_SECRET });
  const ks = await startKeySecureSim({ apiKeys: [{ apiKey: KS_API_KEY }] });
  const gw = await startGateway(`upstreams:
  gw-keeta:
    type: keeta
    baseUrl: ${keeta.baseUrl}
    appId: ${KEETA_APP_ID}
    appSecret: ${KEETA_SECRET}
  gw-ks:
    type: keysecure
    baseUrl: ${ks.baseUrl}
    apiKey: ${KS_API_KEY}
`);
  const pair = keeta.control.addMerchant({ merchantId: 'm', shopIds: ['42'], issuedAtMs: Date.now() - 600_000 });
  await importPair(gw.adminUrl, 'gw-keeta', 'm', pair, ['42']);
  await postJson(`${gw.proxyUrl}/gw-keeta/order/get`, { orderViewId: 1, shopId: 42 });
  keeta.control.failNext(1, { code: KEETA_SIM_CODES.SIG_INVALID });
  await postJson(`${gw.proxyUrl}/gw-keeta/order/get`, { orderViewId: 1, shopId: 42 });
  await postJson(`${gw.proxyUrl}/gw-ks/open-api/v1/card/list`, {});
  ks.control.failNext(2, { code: 1005 });
  await postJson(`${gw.proxyUrl}/gw-ks/open-api/v1/card/list`, {});
  return {
    address: new URL(gw.adminUrl).host,
    async stop() {
      await gw.close();
      await keeta.close();
      await ks.close();
    },
  };
}

export interface MetricsTarget {
  /** host:port serving /metrics */
  address: string;
  /** Alerts the target's state must make pending or firing (alertname + upstream). */
  expectedAlerts: Array<{ alertname: string; upstream: string }>;
  stop(): Promise<void>;
}

/**
 * Serves `/metrics` of `createMetrics({ upstreams: ['keeta', 'keysecure-hk'] })` with
 * every series the dashboard reads populated, and keeps recording a little traffic so that
 * rate() has something to work on.
 */
export async function startMetricsTarget(): Promise<MetricsTarget> {
  const now = Date.now();
  const DAY = 86_400_000;
  const metrics = createMetrics({
    upstreams: ['keeta', 'keysecure-hk'],
    ingressUpstreams: ['keeta', 'keysecure-hk'],
    webhookUpstreams: ['keeta'],
    authorizationUpstreams: ['keeta'],
    collectDefaults: true,
    tokenSnapshots: () => [
      { upstream: 'keeta', state: 'valid', expiresAt: now + 60 * DAY },
      { upstream: 'keeta', state: 'expiring', expiresAt: now + 3.5 * DAY },
      { upstream: 'keysecure-hk', state: 'expired', expiresAt: now - 60_000 },
      { upstream: 'keysecure-hk', state: 'refresh_failed', expiresAt: now + 600_000 },
      { upstream: 'keeta', state: 'refresh_unknown', expiresAt: now + 50 * DAY },
    ],
  });

  const request = (upstream: string, cls: RequestClass, seconds: number, code?: string) => {
    metrics.requests.inc({ upstream, class: cls });
    metrics.requestDuration.observe({ upstream, class: cls }, seconds);
    if (cls !== 'rejected') metrics.upstreamDuration.observe({ upstream }, seconds * 0.9);
    if (code !== undefined) metrics.upstreamCodes.inc({ upstream, code });
  };

  // Every class once on both upstreams, so every error-class series exists.
  for (const upstream of ['keeta', 'keysecure-hk']) {
    for (const cls of CLASSES) request(upstream, cls, 0.05, cls === 'success' ? '0' : 'other');
  }
  metrics.upstreamCodes.inc({ upstream: 'keeta', code: '115000101' }, 3);
  metrics.upstreamCodes.inc({ upstream: 'keysecure-hk', code: '1003' }, 2);
  metrics.retries.inc({ upstream: 'keysecure-hk', reason: 'clock_skew' });
  metrics.retries.inc({ upstream: 'keysecure-hk', reason: 'token' });
  metrics.tokenRefreshes.inc({ upstream: 'keeta', trigger: 'proactive', result: 'success' });
  metrics.tokenRefreshUnknown.inc({ upstream: 'keeta' });
  metrics.connectionWaits.inc({ upstream: 'keeta', result: 'timed_out' }, 3);
  metrics.tokenRefreshes.inc({ upstream: 'keysecure-hk', trigger: 'proactive', result: 'failure' }, 2);
  metrics.clockOffset.set({ upstream: 'keysecure-hk' }, 12);
  metrics.inflight.set({ upstream: 'keeta' }, 2);
  metrics.storeUp.set({ store: 'file' }, 1);
  // Ingress: pushes of every result, recipes, authorizations; a failing delivery on keeta.
  for (const result of ['delivered', 'duplicate', 'bad_signature', 'unverified', 'forbidden_source', 'stale', 'bad_request', 'delivery_failed'] as const) {
    metrics.inbound.inc({ upstream: 'keeta', event: '1001', result });
  }
  metrics.recipeMatches.inc({ upstream: 'keeta', recipe: 'url-query' }, 3);
  metrics.authorizations.inc({ upstream: 'keeta', via: 'redirect', result: 'connected' });
  metrics.authorizations.inc({ upstream: 'keeta', via: 'event', result: 'already_connected' });
  metrics.registerRateLimitRules('keeta', ['choicegroup-list'], true);
  metrics.registerRateLimitRules('keysecure-hk', ['cooldown'], true);
  metrics.rateLimitCooldowns.inc({ upstream: 'keysecure-hk' });

  // Ongoing traffic: keeta loses 25% to network errors, keysecure-hk is slow (3 s).
  const tick = setInterval(() => {
    request('keeta', 'success', 0.12, '0');
    request('keeta', 'success', 0.2, '0');
    request('keeta', 'business_error', 0.1, '115000201');
    request('keeta', 'network_error', 0.02);
    request('keysecure-hk', 'success', 3, '0');
    metrics.tokenRefreshes.inc({ upstream: 'keysecure-hk', trigger: 'on_demand', result: 'failure' });
    metrics.inbound.inc({ upstream: 'keeta', event: '1002', result: 'delivered' });
    metrics.inboundDelivery.observe({ upstream: 'keeta', event: '1002' }, 0.03);
    metrics.inbound.inc({ upstream: 'keeta', event: '1002', result: 'delivery_failed' });
    metrics.inbound.inc({ upstream: 'keysecure-hk', event: 'Auth', result: 'delivered' });
    metrics.inboundDelivery.observe({ upstream: 'keysecure-hk', event: 'Auth' }, 0.75);
    // keeta's menu list is over its budget: some requests wait, some are refused; one replica
    // decides keysecure-hk's limits alone (Redis unreachable).
    metrics.rateLimitWaits.inc({ upstream: 'keeta', rule: 'choicegroup-list' });
    metrics.rateLimitWaitSeconds.observe({ upstream: 'keeta', rule: 'choicegroup-list' }, 0.4);
    metrics.rateLimited.inc({ upstream: 'keeta', rule: 'choicegroup-list' });
    metrics.rateLimitLocalDecisions.inc({ upstream: 'keysecure-hk' });
  }, 250);
  tick.unref();

  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    metrics.registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;

  return {
    address: `127.0.0.1:${port}`,
    expectedAlerts: [
      { alertname: 'CountersignSignatureErrors', upstream: 'keeta' },
      { alertname: 'CountersignEgressIpNotAllowed', upstream: 'keysecure-hk' },
      { alertname: 'CountersignTimestampErrors', upstream: 'keysecure-hk' },
      { alertname: 'CountersignClockOffsetLarge', upstream: 'keysecure-hk' },
      { alertname: 'CountersignTokenExpired', upstream: 'keysecure-hk' },
      { alertname: 'CountersignTokenRefreshFailedState', upstream: 'keysecure-hk' },
      { alertname: 'CountersignTokenRefreshFailing', upstream: 'keysecure-hk' },
      { alertname: 'CountersignTokenRefreshOutcomeUnknown', upstream: 'keeta' },
      { alertname: 'CountersignErrorRatioHigh', upstream: 'keeta' },
      { alertname: 'CountersignLatencyHigh', upstream: 'keysecure-hk' },
      { alertname: 'CountersignInboundDeliveryFailing', upstream: 'keeta' },
      { alertname: 'CountersignInboundBadSignatures', upstream: 'keeta' },
      { alertname: 'CountersignInboundForbiddenSource', upstream: 'keeta' },
      { alertname: 'CountersignAuthAnswersOverBudget', upstream: 'keysecure-hk' },
      { alertname: 'CountersignRateLimitRefusals', upstream: 'keeta' },
      { alertname: 'CountersignRateLimitsNotShared', upstream: 'keysecure-hk' },
    ],
    stop: async () => {
      clearInterval(tick);
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// PromQL and dashboard helpers
// ---------------------------------------------------------------------------------------------

const PROMQL_KEYWORDS = new Set([
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset',
  'and', 'or', 'unless', 'atan2', 'inf', 'nan',
]);

/**
 * Metric names used in a PromQL expression: identifiers that are not functions or aggregators
 * (followed by "("), keywords, label names (inside {...} or a by/on/... list), strings,
 * numbers or durations.
 */
export function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  const token = /(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?[a-zA-Z]*|\.\d+)|([a-zA-Z_:][a-zA-Z0-9_:]*)/g;
  for (const m of stripped.matchAll(token)) {
    const ident = m[2];
    if (ident === undefined) continue;
    const rest = stripped.slice((m.index ?? 0) + ident.length);
    if (/^\s*\(/.test(rest)) continue; // function or aggregator
    if (PROMQL_KEYWORDS.has(ident.toLowerCase())) continue;
    names.add(ident);
  }
  return [...names];
}

/** Replaces Grafana's variables the way Grafana would for "All upstreams". */
export function substituteGrafanaVariables(expr: string, upstream = '.*'): string {
  const vars: Record<string, string> = {
    upstream,
    __rate_interval: '1m',
    __interval: '1m',
    __interval_ms: '60000',
    __range: '1h',
    __range_s: '3600',
    __range_ms: '3600000',
  };
  const out = expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, (whole, a: string | undefined, b: string | undefined) => {
    const name = a ?? b ?? '';
    return vars[name] ?? whole;
  });
  if (/\$\w|\$\{/.test(out)) throw new Error(`unknown Grafana variable in: ${expr}`);
  return out;
}

interface Panel {
  id?: number;
  type: string;
  title?: string;
  description?: string;
  datasource?: { type?: string; uid?: string };
  gridPos?: { x: number; y: number; w: number; h: number };
  targets?: Array<{ expr?: string; refId?: string; range?: boolean; instant?: boolean }>;
  panels?: Panel[];
}
interface Dashboard {
  __inputs?: Array<{ name: string; type: string; pluginId: string }>;
  schemaVersion: number;
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query: unknown; multi?: boolean; includeAll?: boolean; current?: { value?: unknown } }> };
}

async function loadDashboard(): Promise<Dashboard> {
  return JSON.parse(await readFile(DASHBOARD, 'utf8')) as Dashboard;
}

function allPanels(d: Dashboard): Panel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

interface DashboardQuery {
  where: string;
  expr: string;
  range: boolean;
}

function dashboardQueries(d: Dashboard): DashboardQuery[] {
  const out: DashboardQuery[] = [];
  for (const p of allPanels(d)) {
    for (const t of p.targets ?? []) {
      if (t.expr) out.push({ where: `panel "${p.title ?? p.id}" ${t.refId ?? ''}`, expr: t.expr, range: t.range !== false });
    }
  }
  return out;
}

/** PromQL selectors inside the templating queries (label_values(<selector>, label), query_result(...)). */
function variableSelectors(d: Dashboard): DashboardQuery[] {
  const out: DashboardQuery[] = [];
  for (const v of d.templating.list) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : (v.query as { query?: string } | null)?.query ?? '';
    const lv = /^label_values\((?:(.+),)?\s*\w+\s*\)$/.exec(q.trim());
    const qr = /^query_result\((.+)\)$/.exec(q.trim());
    const sel = lv?.[1] ?? qr?.[1];
    if (sel) out.push({ where: `variable "${v.name}"`, expr: sel.trim(), range: false });
  }
  return out;
}

/** Family name -> type, from the target's Prometheus text exposition. */
async function exportedFamilies(address: string): Promise<Map<string, string>> {
  const text = await (await fetch(`http://${address}/metrics`)).text();
  const families = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) families.set(m[1] ?? '', m[2] ?? '');
  return families;
}

/** The family a sample name belongs to: x_bucket/x_sum/x_count of a histogram or summary is x. */
function familyOf(name: string, families: Map<string, string>): string {
  const m = /^(.+)_(bucket|sum|count)$/.exec(name);
  if (m?.[1] !== undefined) {
    const type = families.get(m[1]);
    if (type === 'histogram' || (type === 'summary' && m[2] !== 'bucket')) return m[1];
  }
  return name;
}

interface RuleFile {
  groups: Array<{ name: string; rules: Array<{ alert?: string; record?: string; expr: string; labels?: Record<string, string>; annotations?: Record<string, string> }> }>;
}

async function loadRules(): Promise<RuleFile> {
  return parseYaml(await readFile(ALERTS, 'utf8')) as RuleFile;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Shared fixture: one target, one Prometheus for the whole file. Teardown always stops both.
// ---------------------------------------------------------------------------------------------

let target: MetricsTarget | undefined;
let gateway: { address: string; stop(): Promise<void> } | undefined;
let prom: RunningPrometheus | undefined;

test.before(async () => {
  gateway = await startGatewayTarget();
  target = await startMetricsTarget();
  prom = await startPrometheus({ scrapeTargets: [gateway.address, target.address], ruleFiles: [ALERTS], scrapeIntervalSec: 1 });
  await prom.waitForScrape();
});

test.after.always(async () => {
  await prom?.stop();
  await target?.stop();
  await gateway?.stop();
});

function running(): { target: MetricsTarget; gateway: { address: string }; prom: RunningPrometheus } {
  if (!target || !prom || !gateway) throw new Error('fixture not started');
  return { target, gateway, prom };
}

// ---------------------------------------------------------------------------------------------
// Static checks
// ---------------------------------------------------------------------------------------------

test('promtool accepts the alert rules file', (t) => {
  assertBinary('promtool', 'promtool');
  const r = spawnSync('promtool', ['check', 'rules', ALERTS], { encoding: 'utf8' });
  t.is(r.status, 0, `${r.stdout}\n${r.stderr}`);
});

test('every alert has a severity, a summary and a description', async (t) => {
  const rules = await loadRules();
  const alerts = rules.groups.flatMap((g) => g.rules).filter((r) => r.alert);
  t.true(alerts.length >= 10);
  for (const a of alerts) {
    t.regex(a.labels?.severity ?? '', /^(critical|warning|info)$/, `${a.alert} severity`);
    t.truthy(a.annotations?.summary, `${a.alert} summary`);
    t.true((a.annotations?.description ?? '').length > 60, `${a.alert} description`);
  }
});

test('the alert rules fire on the right series in promtool unit tests', async (t) => {
  assertBinary('promtool', 'promtool');
  const dir = await mkdtemp(join(tmpdir(), 'countersign-promtool-'));
  try {
    // Annotations are templates checked by `promtool check rules` and rendered live below;
    // promtool test compares them verbatim, so the unit tests run on a copy without them.
    const rules = await loadRules();
    for (const g of rules.groups) for (const r of g.rules) delete r.annotations;
    const rulesFile = join(dir, 'alerts-no-annotations.yaml');
    await writeFile(rulesFile, JSON.stringify(rules));

    const inst = 'instance="a:1",job="countersign"';
    const alert = (labels: Record<string, string>) => ({ exp_labels: labels });
    const unitTests = {
      rule_files: [rulesFile],
      evaluation_interval: '1m',
      tests: [
        {
          name: 'a Keeta token stuck under 3 days alerts; a KeySecure 1-day token does not',
          interval: '4m',
          input_series: [
            // 4 days left, falling in real time: crosses 3 days after 24 h.
            { series: `countersign_token_seconds_to_expiry{upstream="keeta",${inst}}`, values: '345600-240x420' },
            { series: `countersign_token_seconds_to_expiry{upstream="keysecure-hk",${inst}}`, values: '86400-100x420' },
          ],
          alert_rule_test: [
            { eval_time: '20h', alertname: 'CountersignTokenExpiringSoon', exp_alerts: [] },
            { eval_time: '26h', alertname: 'CountersignTokenExpiringSoon', exp_alerts: [alert({ severity: 'warning', upstream: 'keeta' })] },
          ],
        },
        {
          name: 'the first signature error after a restart alerts, and the alert clears after 10 minutes',
          interval: '1m',
          input_series: [
            { series: `countersign_requests_total{upstream="keeta",class="signature_error",${inst}}`, values: '_x10 1x40' },
            { series: `countersign_requests_total{upstream="keysecure-hk",class="ip_not_allowed",${inst}}`, values: '0x10 1x40' },
          ],
          alert_rule_test: [
            { eval_time: '5m', alertname: 'CountersignSignatureErrors', exp_alerts: [] },
            { eval_time: '12m', alertname: 'CountersignSignatureErrors', exp_alerts: [alert({ severity: 'critical', upstream: 'keeta' })] },
            { eval_time: '40m', alertname: 'CountersignSignatureErrors', exp_alerts: [] },
            { eval_time: '12m', alertname: 'CountersignEgressIpNotAllowed', exp_alerts: [alert({ severity: 'critical', upstream: 'keysecure-hk' })] },
            { eval_time: '40m', alertname: 'CountersignEgressIpNotAllowed', exp_alerts: [] },
          ],
        },
        {
          name: 'failing refreshes alert only while no refresh of that upstream succeeds',
          interval: '1m',
          input_series: [
            { series: `countersign_token_refreshes_total{upstream="keysecure-hk",trigger="proactive",result="failure",${inst}}`, values: '_x5 1+1x60' },
            { series: `countersign_token_refreshes_total{upstream="keeta",trigger="proactive",result="failure",${inst}}`, values: '0+1x60' },
            { series: `countersign_token_refreshes_total{upstream="keeta",trigger="proactive",result="success",${inst}}`, values: '0+1x60' },
          ],
          alert_rule_test: [
            { eval_time: '20m', alertname: 'CountersignTokenRefreshFailing', exp_alerts: [alert({ severity: 'warning', upstream: 'keysecure-hk' })] },
          ],
        },
        {
          name: 'the error-ratio alert is per class and ignores business errors',
          interval: '1m',
          input_series: [
            { series: `countersign_requests_total{upstream="keeta",class="success",${inst}}`, values: '0+10x40' },
            { series: `countersign_requests_total{upstream="keeta",class="business_error",${inst}}`, values: '0+10x40' },
            { series: `countersign_requests_total{upstream="keeta",class="timeout",${inst}}`, values: '0+2x40' },
            { series: `countersign_requests_total{upstream="keysecure-hk",class="success",${inst}}`, values: '0+100x40' },
            { series: `countersign_requests_total{upstream="keysecure-hk",class="timeout",${inst}}`, values: '0+1x40' },
          ],
          alert_rule_test: [
            { eval_time: '30m', alertname: 'CountersignErrorRatioHigh', exp_alerts: [alert({ severity: 'critical', upstream: 'keeta', class: 'timeout' })] },
            { eval_time: '38m', alertname: 'CountersignBusinessErrorRatioHigh', exp_alerts: [alert({ severity: 'info', upstream: 'keeta' })] },
          ],
        },
        {
          name: 'slow requests, a store outage, a large clock offset and an expired token alert',
          interval: '1m',
          input_series: [
            { series: `countersign_request_duration_seconds_bucket{upstream="keeta",class="success",le="1",${inst}}`, values: '0x30' },
            { series: `countersign_request_duration_seconds_bucket{upstream="keeta",class="success",le="2.5",${inst}}`, values: '0+10x30' },
            { series: `countersign_request_duration_seconds_bucket{upstream="keeta",class="success",le="+Inf",${inst}}`, values: '0+10x30' },
            { series: `countersign_store_up{store="redis",${inst}}`, values: '1x5 0x25' },
            { series: `countersign_clock_offset_seconds{upstream="keysecure-hk",${inst}}`, values: '0x5 -8x25' },
            { series: `countersign_tokens{upstream="keysecure-hk",state="expired",${inst}}`, values: '0x5 1x25' },
          ],
          alert_rule_test: [
            { eval_time: '20m', alertname: 'CountersignLatencyHigh', exp_alerts: [alert({ severity: 'warning', upstream: 'keeta' })] },
            { eval_time: '7m', alertname: 'CountersignStoreDown', exp_alerts: [] },
            { eval_time: '9m', alertname: 'CountersignStoreDown', exp_alerts: [alert({ severity: 'critical', store: 'redis', instance: 'a:1', job: 'countersign' })] },
            { eval_time: '20m', alertname: 'CountersignClockOffsetLarge', exp_alerts: [alert({ severity: 'warning', upstream: 'keysecure-hk', instance: 'a:1', job: 'countersign' })] },
            { eval_time: '9m', alertname: 'CountersignTokenExpired', exp_alerts: [alert({ severity: 'critical', upstream: 'keysecure-hk' })] },
          ],
        },
        {
          name: 'ingress: the first bad signature, forbidden source and failed delivery alert; slow Auth answers alert',
          interval: '1m',
          input_series: [
            { series: `countersign_inbound_total{upstream="keeta",event="1001",result="bad_signature",${inst}}`, values: '_x10 1x40' },
            { series: `countersign_inbound_total{upstream="keeta",event="other",result="forbidden_source",${inst}}`, values: '0x10 2x40' },
            { series: `countersign_inbound_total{upstream="keeta",event="1001",result="delivery_failed",${inst}}`, values: '0x10 1x40' },
            { series: `countersign_inbound_total{upstream="keeta",event="1001",result="delivered",${inst}}`, values: '0+5x50' },
            { series: `countersign_inbound_delivery_seconds_count{upstream="keysecure-hk",event="Auth",${inst}}`, values: '0+10x10 100+12x40' },
            { series: `countersign_inbound_delivery_seconds_bucket{upstream="keysecure-hk",event="Auth",le="0.7",${inst}}`, values: '0+10x10 100+10x40' },
            { series: `countersign_inbound_delivery_seconds_count{upstream="keysecure-hk",event="Consumption",${inst}}`, values: '0+10x50' },
            { series: `countersign_inbound_delivery_seconds_bucket{upstream="keysecure-hk",event="Consumption",le="0.7",${inst}}`, values: '0+5x50' },
          ],
          alert_rule_test: [
            { eval_time: '5m', alertname: 'CountersignInboundBadSignatures', exp_alerts: [] },
            { eval_time: '12m', alertname: 'CountersignInboundBadSignatures', exp_alerts: [alert({ severity: 'warning', upstream: 'keeta' })] },
            { eval_time: '40m', alertname: 'CountersignInboundBadSignatures', exp_alerts: [] },
            { eval_time: '12m', alertname: 'CountersignInboundForbiddenSource', exp_alerts: [alert({ severity: 'warning', upstream: 'keeta' })] },
            { eval_time: '5m', alertname: 'CountersignInboundDeliveryFailing', exp_alerts: [] },
            { eval_time: '12m', alertname: 'CountersignInboundDeliveryFailing', exp_alerts: [alert({ severity: 'critical', upstream: 'keeta' })] },
            { eval_time: '5m', alertname: 'CountersignAuthAnswersOverBudget', exp_alerts: [] },
            { eval_time: '20m', alertname: 'CountersignAuthAnswersOverBudget', exp_alerts: [alert({ severity: 'critical', upstream: 'keysecure-hk' })] },
          ],
        },
        {
          name: 'steady rate-limit refusals alert per rule; a few do not; per-replica limiting alerts',
          interval: '1m',
          input_series: [
            // 5 refusals a minute under one rule, 1 every 5 minutes under another.
            { series: `countersign_rate_limited_total{upstream="keeta",rule="choicegroup-list",${inst}}`, values: '0+5x40' },
            { series: `countersign_rate_limited_total{upstream="keeta",rule="spustatus-batchupdate",${inst}}`, values: '0+0.2x40' },
            { series: `countersign_rate_limit_local_decisions_total{upstream="keysecure-hk",${inst}}`, values: '0x10 0+30x30' },
            { series: `countersign_rate_limit_local_decisions_total{upstream="keeta",${inst}}`, values: '0x40' },
          ],
          alert_rule_test: [
            { eval_time: '8m', alertname: 'CountersignRateLimitRefusals', exp_alerts: [] },
            { eval_time: '20m', alertname: 'CountersignRateLimitRefusals', exp_alerts: [alert({ severity: 'warning', upstream: 'keeta', rule: 'choicegroup-list' })] },
            { eval_time: '12m', alertname: 'CountersignRateLimitsNotShared', exp_alerts: [] },
            { eval_time: '20m', alertname: 'CountersignRateLimitsNotShared', exp_alerts: [alert({ severity: 'warning', upstream: 'keysecure-hk' })] },
          ],
        },
        {
          name: 'a vanished replica and vanished metrics alert',
          interval: '1m',
          input_series: [
            { series: `up{${inst}}`, values: '1x10 0x20' },
            { series: 'up{instance="b:1",job="node"}', values: '0x30' },
            { series: `countersign_inflight_requests{upstream="keeta",${inst}}`, values: '0x10' },
          ],
          alert_rule_test: [
            { eval_time: '15m', alertname: 'CountersignReplicaDown', exp_alerts: [alert({ severity: 'warning', instance: 'a:1', job: 'countersign' })] },
            { eval_time: '15m', alertname: 'CountersignMetricsAbsent', exp_alerts: [alert({ severity: 'warning' })] },
          ],
        },
      ],
    };
    const testFile = join(dir, 'alerts.test.yaml');
    await writeFile(testFile, JSON.stringify(unitTests, null, 2));
    const r = spawnSync('promtool', ['test', 'rules', testFile], { encoding: 'utf8' });
    t.is(r.status, 0, `${r.stdout}\n${r.stderr}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the dashboard is import-ready with datasource and upstream variables', async (t) => {
  const d = await loadDashboard();
  t.true(d.schemaVersion >= 36);
  t.truthy(d.uid);
  t.deepEqual(d.__inputs?.map((i) => [i.name, i.type, i.pluginId]), [['DS_PROMETHEUS', 'datasource', 'prometheus']]);
  const ds = d.templating.list.find((v) => v.name === 'datasource');
  t.is(ds?.type, 'datasource');
  t.is(ds?.query, 'prometheus');
  t.is(ds?.current?.value, '${DS_PROMETHEUS}');
  const up = d.templating.list.find((v) => v.name === 'upstream');
  t.is(up?.type, 'query');
  t.true(up?.multi);
  t.true(up?.includeAll);
  t.deepEqual(variableSelectors(d).map((q) => q.expr), ['countersign_requests_total']);

  const ids = new Set<number>();
  for (const p of allPanels(d)) {
    t.truthy(p.id, `panel "${p.title}" has an id`);
    t.false(ids.has(p.id ?? -1), `panel id ${p.id} is unique`);
    ids.add(p.id ?? -1);
    if (p.type === 'row') continue;
    t.true((p.description ?? '').length > 40, `panel "${p.title}" tells the operator what it means`);
    t.is(p.datasource?.uid, '${datasource}', `panel "${p.title}" uses the datasource variable`);
    t.true((p.targets ?? []).length > 0, `panel "${p.title}" has queries`);
    for (const q of p.targets ?? []) t.regex(q.expr ?? '', /upstream=~"\$upstream"|process_|nodejs_|countersign_store_up|countersign_config_/, `panel "${p.title}" honours $upstream`);
  }
  const rows = d.panels.filter((p) => p.type === 'row').map((p) => p.title);
  t.deepEqual(rows, ['Traffic', 'Error classes', 'Latency', 'Retries and clock', 'Token health', 'Store & process', 'Ingress', 'Rate limits', 'Saturation']);
});

test('metric names are extracted from PromQL without functions, keywords or labels', (t) => {
  t.deepEqual(
    metricNamesIn('histogram_quantile(0.99, sum by (upstream, le) (rate(countersign_request_duration_seconds_bucket{upstream=~"$upstream",class!="x"}[5m])))'),
    ['countersign_request_duration_seconds_bucket'],
  );
  t.deepEqual(
    metricNamesIn('60 * sum without (instance) (a_total offset 5m) / on (upstream) group_left (class) b and bool c{d="e"} unless topk(3, f)'),
    ['a_total', 'b', 'c', 'f'],
  );
});

// ---------------------------------------------------------------------------------------------
// Against the running target and a real Prometheus
// ---------------------------------------------------------------------------------------------

test('every metric the dashboard and the alerts query is exported by a running gateway', async (t) => {
  const { gateway } = running();
  const families = await exportedFamilies(gateway.address);
  const d = await loadDashboard();
  const rules = await loadRules();
  const queries = [
    ...dashboardQueries(d),
    ...variableSelectors(d),
    ...rules.groups.flatMap((g) => g.rules.map((r) => ({ where: `rule ${r.alert ?? r.record}`, expr: r.expr, range: false }))),
  ];
  t.true(queries.length > 30);
  for (const q of queries) {
    const names = metricNamesIn(substituteGrafanaVariables(q.expr));
    t.true(names.length > 0, `${q.where} names a metric`);
    for (const name of names) {
      if (name === 'up' && q.where.startsWith('rule')) continue; // written by Prometheus itself
      t.true(families.has(familyOf(name, families)), `${q.where}: ${name} is exported by the gateway`);
    }
  }
});

test('every Countersign metric family appears on the dashboard', async (t) => {
  const { gateway } = running();
  const families = await exportedFamilies(gateway.address);
  const used = new Set(
    dashboardQueries(await loadDashboard()).flatMap((q) =>
      metricNamesIn(substituteGrafanaVariables(q.expr)).map((n) => familyOf(n, families)),
    ),
  );
  for (const name of METRIC_NAMES) t.true(used.has(name), `${name} is on the dashboard`);
});

test('Prometheus scrapes the gateway and the synthetic target and evaluates every alert group without error', async (t) => {
  const { prom } = running();
  const up = await prom.query('up');
  t.is(up.status, 'success');
  await prom.waitForRuleEvaluation();
  const groups = await prom.rules();
  const names = (await loadRules()).groups.map((g) => g.name);
  t.deepEqual(groups.map((g) => g.name).sort(), [...names].sort());
  for (const g of groups) {
    for (const r of g.rules) {
      t.is(r.health, 'ok', `${g.name}/${r.name}: ${r.lastError ?? ''}`);
      t.falsy(r.lastError, `${g.name}/${r.name}`);
    }
  }
});

test('every dashboard query runs successfully in Prometheus', async (t) => {
  const { prom } = running();
  const d = await loadDashboard();
  const queries = [...dashboardQueries(d), ...variableSelectors(d)];
  const end = new Date();
  const start = new Date(end.getTime() - 10 * 60_000);
  for (const upstream of ['.*', 'keeta', 'keeta|keysecure-hk']) {
    for (const q of queries) {
      const expr = substituteGrafanaVariables(q.expr, upstream);
      const instant = await prom.query(expr);
      t.is(instant.status, 'success', `${q.where} (upstream=${upstream}): ${instant.error ?? ''}\n${expr}`);
      if (q.range) {
        const ranged = await prom.queryRange(expr, start, end, 15);
        t.is(ranged.status, 'success', `${q.where} range (upstream=${upstream}): ${ranged.error ?? ''}\n${expr}`);
      }
    }
  }
});

test('every dashboard query returns data once the target has been scraped a few times', async (t) => {
  const { prom } = running();
  const queries = dashboardQueries(await loadDashboard());
  let empty: string[] = [];
  const deadline = Date.now() + 20_000;
  do {
    empty = [];
    for (const q of queries) {
      const r = await prom.query(substituteGrafanaVariables(q.expr));
      const n = r.status === 'success' && r.data && r.data.resultType === 'vector' ? r.data.result.length : 0;
      if (n === 0) empty.push(`${q.where}: ${q.expr}`);
    }
    if (empty.length === 0) break;
    await sleep(500);
  } while (Date.now() < deadline);
  t.deepEqual(empty, []);
});

test('the failures the target reports make the matching alerts pending or firing, with rendered annotations', async (t) => {
  const { prom, target } = running();
  const key = (a: { alertname?: string; upstream?: string }) => `${a.alertname ?? ''}/${a.upstream ?? ''}`;
  const wanted = target.expectedAlerts.map(key).sort();
  let active: PromAlert[] = [];
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    active = await prom.alerts();
    const got = new Set(active.map((a) => key(a.labels)));
    if (wanted.every((w) => got.has(w))) break;
    await sleep(500);
  }
  const got = new Set(active.map((a) => key(a.labels)));
  t.deepEqual(wanted.filter((w) => !got.has(w)), [], `active: ${[...got].join(', ')}`);
  for (const a of active) {
    t.truthy(a.labels.severity, key(a.labels));
    for (const field of ['summary', 'description'] as const) {
      const text = a.annotations[field] ?? '';
      t.truthy(text, `${key(a.labels)} ${field}`);
      t.notRegex(text, /<error|\{\{|no value/i, `${key(a.labels)} ${field} renders`);
    }
  }
});
