import { Registry } from 'prom-client';
import { buildApp, type App } from '../../src/app/app.js';
import type { Clock } from '../../src/core/clock.js';
import { parseConfig, type Config } from '../../src/config/load.js';
import type { IngressStore } from '../../src/ingress/state-store.js';
import { listenApp } from '../../src/app/server.js';
import { MemoryStore } from '../../src/tokens/memory-store.js';
import type { TokenStore } from '../../src/tokens/types.js';
import { captureLogs } from './log-capture.js';

export interface TestGateway {
  app: App;
  proxyUrl: string;
  adminUrl: string;
  /** Set when started with `ingress: true`. */
  ingressUrl: string;
  logs: string[];
  /**
   * Values that must never appear in a log line: the config's secrets and every token the
   * gateway held are known already; tests add what else they handle (codes, states).
   */
  secrets: Set<string>;
  /** The secrets that appear in a log line now (close() fails the test when any does). */
  leakedSecrets(): string[];
  logText(): string;
  /** Fetch a metric's value from the admin listener's /metrics (text format). */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}

/**
 * Build and start a gateway from YAML config text on ephemeral loopback ports, with its own
 * registry, captured logs and (unless given) a memory store. Always `close()` it.
 */
export async function startGateway(
  yaml: string,
  /** store: a store instance, 'config' to let the app build the one the YAML names, default memory. */
  opts: {
    env?: Record<string, string>;
    store?: TokenStore | 'config';
    clock?: Clock;
    schedulerIntervalMs?: number;
    /** Bind the ingress listener on an ephemeral loopback port. */
    ingress?: boolean;
    ingressStore?: IngressStore;
    /** YAML lines added under `listen:` (e.g. `  tls:\n    proxy: ...`). */
    listenExtra?: string;
    /** Passed to listenApp: how often TLS certificate files are looked at. */
    tlsReloadMs?: number;
    jwksMinRereadMs?: number;
  } = {},
): Promise<TestGateway> {
  const listen = `listen:\n  proxy: 127.0.0.1:0\n  admin: 127.0.0.1:0\n${opts.ingress ? '  ingress: 127.0.0.1:0\n' : ''}${opts.listenExtra ?? ''}`;
  const config = parseConfig(`${listen}${yaml}`, { env: opts.env ?? {} });
  const { log, lines, text } = captureLogs();
  const app = buildApp({
    config,
    ...(opts.store !== 'config' && { store: opts.store ?? new MemoryStore() }),
    registry: new Registry(),
    logger: log,
    schedulerIntervalMs: opts.schedulerIntervalMs ?? 0,
    ...(opts.clock && { clock: opts.clock }),
    ...(opts.ingressStore && { ingressStore: opts.ingressStore }),
    ...(opts.jwksMinRereadMs !== undefined && { jwksMinRereadMs: opts.jwksMinRereadMs }),
  });
  const secrets = configSecrets(config);
  // Every token the gateway ever holds, including pairs replaced by later refreshes.
  const cacheSet = app.cache.set.bind(app.cache);
  app.cache.set = (record) => {
    secrets.add(record.accessToken);
    if (record.refreshToken) secrets.add(record.refreshToken);
    return cacheSet(record);
  };
  await app.start();
  const listening = await listenApp(app, config.listen, { ...(opts.tlsReloadMs !== undefined && { tlsReloadMs: opts.tlsReloadMs }) });
  const leakedSecrets = () => {
    const all = text();
    return [...secrets].filter((s) => s.length >= 8 && all.includes(s));
  };
  return {
    app,
    proxyUrl: listening.proxyUrl,
    adminUrl: listening.adminUrl,
    ingressUrl: listening.ingressUrl ?? '',
    logs: lines,
    logText: text,
    secrets,
    leakedSecrets,
    async metric(name, labels = {}) {
      return metricValue(await app.registry.metrics(), name, labels);
    },
    async close() {
      await listening.shutdown(2000);
      const leaked = leakedSecrets();
      // Never print the secret itself: its length and where it was seen are enough to find it.
      if (leaked.length > 0) {
        const where = lines.filter((l) => leaked.some((s) => l.includes(s))).map((l) => JSON.parse(l).msg as string);
        throw new Error(`${leaked.length} secret(s) appeared in the gateway's log, in lines: ${where.join(' | ')}`);
      }
    },
  };
}

/** The secrets a config holds: app secrets, API keys and secrets, caller and admin tokens, callback app ids. */
export function configSecrets(config: Config): Set<string> {
  const out = new Set<string>();
  if (config.admin.token) out.add(config.admin.token);
  for (const c of config.callers ?? []) if (c.token) out.add(c.token);
  for (const u of Object.values(config.upstreams)) {
    if (u.type === 'keeta') out.add(u.appSecret);
    else if (u.type !== 'keysecure') {
      for (const k of u.recipe.secrets) if (u.app[k]) out.add(u.app[k]);
    } else {
      out.add(u.apiKey);
      if (u.apiSecret) out.add(u.apiSecret);
      if (u.callbacks?.secret) out.add(u.callbacks.secret);
      if (u.callbacks?.appId) out.add(u.callbacks.appId);
    }
  }
  return out;
}

/** The value of one series in Prometheus text format (0 when absent). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const open = line.indexOf('{');
    const close = line.lastIndexOf('}');
    const labelText = open === -1 || open > name.length ? '' : line.slice(open + 1, close);
    const have = new Map<string, string>();
    for (const m of labelText.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) have.set(m[1]!, m[2]!);
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) {
      return Number(line.slice((close === -1 ? name.length : close + 1)).trim());
    }
  }
  return 0;
}
