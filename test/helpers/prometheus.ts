/**
 * Runs a real, throwaway Prometheus for integration tests: the `prometheus` binary (never the
 * system service), its own temp config and TSDB directory, its own free loopback port, a short
 * scrape/evaluation interval. Throws (never skips) when the binary is missing.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export interface PrometheusOptions {
  /** host:port of each target; scraped at /metrics under job "countersign". */
  scrapeTargets: string[];
  /** Rule files to load (paths are resolved against the current directory). */
  ruleFiles: string[];
  /** Scrape and rule-evaluation interval, seconds. Default 1. */
  scrapeIntervalSec?: number;
  /** Binary to run. Default `prometheus` from PATH. */
  binary?: string;
  /** How long to wait for /-/ready, ms. Default 20000. */
  readyTimeoutMs?: number;
}

/** The JSON envelope of the Prometheus HTTP API. */
export interface PromResponse<T> {
  status: 'success' | 'error';
  data?: T;
  errorType?: string;
  error?: string;
  warnings?: string[];
}

export type PromSample = [number, string];
export interface PromSeries {
  metric: Record<string, string>;
  value?: PromSample;
  values?: PromSample[];
}
export type PromQueryData =
  | { resultType: 'vector' | 'matrix'; result: PromSeries[] }
  | { resultType: 'scalar' | 'string'; result: PromSample };

export interface PromRule {
  type: 'alerting' | 'recording';
  name: string;
  query: string;
  health: 'ok' | 'err' | 'unknown';
  lastError?: string;
  lastEvaluation: string;
  state?: 'inactive' | 'pending' | 'firing';
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  alerts?: PromAlert[];
}
export interface PromRuleGroup {
  name: string;
  file: string;
  rules: PromRule[];
  interval: number;
  lastEvaluation: string;
}
export interface PromAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing' | 'inactive';
  activeAt?: string;
  value: string;
}

export interface RunningPrometheus {
  /** Base URL, e.g. http://127.0.0.1:41234 */
  url: string;
  /** Instant query (POST /api/v1/query). Resolves the API's envelope even when status is "error". */
  query(expr: string, time?: Date): Promise<PromResponse<PromQueryData>>;
  /** Range query (POST /api/v1/query_range); step in seconds. */
  queryRange(expr: string, start: Date, end: Date, stepSec: number): Promise<PromResponse<PromQueryData>>;
  /** GET /api/v1/rules: the loaded rule groups with health and lastError. */
  rules(): Promise<PromRuleGroup[]>;
  /** GET /api/v1/alerts: pending and firing alerts. */
  alerts(): Promise<PromAlert[]>;
  /** Resolves once every scrape target has been scraped successfully (`up == 1`). */
  waitForScrape(timeoutMs?: number): Promise<void>;
  /** Resolves once every rule group has been evaluated at least once. */
  waitForRuleEvaluation(timeoutMs?: number): Promise<void>;
  /** The last lines Prometheus wrote to stderr (its log), for failure messages. */
  logs(): string;
  /** Kills Prometheus and removes its temp directory. Idempotent. */
  stop(): Promise<void>;
}

const NEVER_EVALUATED = '0001-01-01T00:00:00Z';

/** Throws a clear error when `binary` cannot be run. */
export function assertBinary(binary: string, what: string): void {
  const probe = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    const reason = probe.error ? probe.error.message : `exit ${String(probe.status)}: ${probe.stderr}`;
    throw new Error(
      `${what} binary "${binary}" cannot be run (${reason}). Install it (Debian: apt-get install prometheus) ` +
        'and make sure it is on PATH; observability tests need the real binary and do not skip.',
    );
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('no port'));
        return;
      }
      srv.close(() => resolvePort(addr.port));
    });
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>, detail: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err;
    }
    await sleep(200);
  }
  const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}\n${detail()}`);
}

export async function startPrometheus(options: PrometheusOptions): Promise<RunningPrometheus> {
  const binary = options.binary ?? 'prometheus';
  assertBinary(binary, 'Prometheus');
  const interval = options.scrapeIntervalSec ?? 1;
  const readyTimeoutMs = options.readyTimeoutMs ?? 20_000;

  const dir = await mkdtemp(join(tmpdir(), 'countersign-prom-'));
  const configFile = join(dir, 'prometheus.yml');
  // JSON is valid YAML.
  const config = {
    global: { scrape_interval: `${interval}s`, scrape_timeout: `${interval}s`, evaluation_interval: `${interval}s` },
    rule_files: options.ruleFiles.map((f) => resolve(f)),
    scrape_configs: [
      { job_name: 'countersign', metrics_path: '/metrics', static_configs: [{ targets: options.scrapeTargets }] },
    ],
  };
  await writeFile(configFile, JSON.stringify(config, null, 2));

  let child: ChildProcess | undefined;
  let log: string[] = [];
  let stopped = false;
  const killOnExit = () => child?.kill('SIGKILL');
  process.once('exit', killOnExit);

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', killOnExit);
    const c = child;
    if (c && c.exitCode === null && c.signalCode === null) {
      const exited = new Promise<void>((r) => c.once('exit', () => r()));
      c.kill('SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  // A port found free can be taken before Prometheus binds it: retry with a new one.
  let url = '';
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    log = [];
    const c = spawn(
      binary,
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--storage.tsdb.retention.time=1d',
        '--log.level=info',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child = c;
    c.stderr?.setEncoding('utf8');
    c.stderr?.on('data', (chunk: string) => {
      log.push(...chunk.split('\n').filter(Boolean));
      if (log.length > 200) log = log.slice(-200);
    });
    let exited = false;
    c.once('exit', () => (exited = true));
    try {
      await waitUntil(
        `Prometheus ${url}/-/ready`,
        readyTimeoutMs,
        async () => {
          if (exited) throw new Error(`prometheus exited with ${String(c.exitCode ?? c.signalCode)}`);
          const res = await fetch(`${url}/-/ready`);
          await res.arrayBuffer();
          return res.ok;
        },
        () => log.slice(-30).join('\n'),
      );
      break;
    } catch (err) {
      const bindFailure = exited && log.some((l) => /address already in use/i.test(l));
      if (!bindFailure || attempt >= 3) {
        await stop();
        throw err;
      }
    }
  }

  const api = async <T>(path: string, form?: Record<string, string>): Promise<PromResponse<T>> => {
    const res = await fetch(`${url}${path}`, form ? { method: 'POST', body: new URLSearchParams(form) } : {});
    const text = await res.text();
    try {
      return JSON.parse(text) as PromResponse<T>;
    } catch {
      throw new Error(`${path}: HTTP ${res.status}, not JSON: ${text.slice(0, 300)}`);
    }
  };
  const ok = <T>(path: string, r: PromResponse<T>): T => {
    if (r.status !== 'success' || r.data === undefined) throw new Error(`${path}: ${r.errorType ?? ''} ${r.error ?? ''}`);
    return r.data;
  };

  const running: RunningPrometheus = {
    url,
    query: (expr, time) =>
      api<PromQueryData>('/api/v1/query', { query: expr, ...(time ? { time: String(time.getTime() / 1000) } : {}) }),
    queryRange: (expr, start, end, stepSec) =>
      api<PromQueryData>('/api/v1/query_range', {
        query: expr,
        start: String(start.getTime() / 1000),
        end: String(end.getTime() / 1000),
        step: String(stepSec),
      }),
    rules: async () => ok('/api/v1/rules', await api<{ groups: PromRuleGroup[] }>('/api/v1/rules')).groups,
    alerts: async () => ok('/api/v1/alerts', await api<{ alerts: PromAlert[] }>('/api/v1/alerts')).alerts,
    waitForScrape: (timeoutMs = 20_000) =>
      waitUntil(
        `a successful scrape of ${options.scrapeTargets.join(', ')}`,
        timeoutMs,
        async () => {
          const data = ok('/api/v1/query', await running.query('up{job="countersign"} == 1'));
          if (data.resultType !== 'vector') return false;
          const up = new Set(data.result.map((s) => s.metric.instance));
          return options.scrapeTargets.every((t) => up.has(t));
        },
        () => log.slice(-30).join('\n'),
      ),
    waitForRuleEvaluation: (timeoutMs = 20_000) =>
      waitUntil(
        'every rule group to be evaluated once',
        timeoutMs,
        async () => {
          const groups = await running.rules();
          return groups.length > 0 && groups.every((g) => g.lastEvaluation !== NEVER_EVALUATED && g.rules.every((r) => r.lastEvaluation !== NEVER_EVALUATED));
        },
        () => log.slice(-30).join('\n'),
      ),
    logs: () => log.join('\n'),
    stop,
  };
  return running;
}
