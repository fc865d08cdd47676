import { Registry } from 'prom-client';
import { buildApp, type App } from '../../src/app.js';
import type { Clock } from '../../src/clock.js';
import { parseConfig } from '../../src/config/load.js';
import { listenApp } from '../../src/server.js';
import { MemoryStore } from '../../src/tokens/memory-store.js';
import type { TokenStore } from '../../src/tokens/types.js';
import { captureLogs } from './log-capture.js';

export interface TestGateway {
  app: App;
  proxyUrl: string;
  adminUrl: string;
  logs: string[];
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
  opts: { env?: Record<string, string>; store?: TokenStore | 'config'; clock?: Clock; schedulerIntervalMs?: number } = {},
): Promise<TestGateway> {
  const config = parseConfig(`listen:\n  proxy: 127.0.0.1:0\n  admin: 127.0.0.1:0\n${yaml}`, { env: opts.env ?? {} });
  const { log, lines, text } = captureLogs();
  const app = buildApp({
    config,
    ...(opts.store !== 'config' && { store: opts.store ?? new MemoryStore() }),
    registry: new Registry(),
    logger: log,
    schedulerIntervalMs: opts.schedulerIntervalMs ?? 0,
    ...(opts.clock && { clock: opts.clock }),
  });
  await app.start();
  const listening = await listenApp(app, config.listen);
  return {
    app,
    proxyUrl: listening.proxyUrl,
    adminUrl: listening.adminUrl,
    logs: lines,
    logText: text,
    async metric(name, labels = {}) {
      return metricValue(await app.registry.metrics(), name, labels);
    },
    close: () => listening.shutdown(2000),
  };
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
