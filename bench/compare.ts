/**
 * The side-by-side proxy benchmark. Every proxy runs pinned to core 0 (`taskset -c 0`); wrk and
 * the nginx upstream share core 1. Each target gets the same 200-byte JSON POST from wrk
 * (32 connections), in alternating order over several rounds; the table shows medians.
 *
 *   nginx upstream directly       what the load generator and upstream can do
 *   nginx pass-through            nginx as a reverse proxy with a keep-alive upstream (the ratio's 1.0)
 *   bare Node pass-through        node:http + undici doing no work (the Node ceiling)
 *   Countersign Keeta             parse, shop → merchant, token, sign, re-serialise, classify
 *   Countersign KeySecure         header injection, JSON check, classify
 *   Countersign Keeta over TLS    the signed Keeta row with the proxy listener served over TLS
 *                                 (listen.tls.proxy, an ECDSA P-256 test certificate; wrk keeps
 *                                 its connections, so this is the per-request cost of TLS)
 *   Countersign Keeta, traced     the Keeta row with `tracing:` at sampleRatio 1: every request a
 *                                 server and a client span, exported over OTLP/HTTP (to the
 *                                 nginx upstream, which answers 200); BENCH_TRACING=0 leaves it out
 *
 * Countersign runs as `npm start` would (built first into dist/): one caller token checked, metrics on, the
 * access log at info written to its real destination (stdout, sent to BENCH_ACCESS_LOG or
 * /dev/null). BENCH_BASELINE=<dir> (or label=dir,label=dir) adds other checkouts' rows for A/B runs.
 *
 * Env: SECONDS (per run, 5), ROUNDS (6), CONNECTIONS (32), WARMUP_SECONDS (unmeasured load before
 * each run, 1), BENCH_PROFILE=<dir> (--cpu-prof).
 * Ratios are the median over rounds of each round's own ratio (the machine's speed can drift).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SECONDS = Number(process.env.SECONDS ?? 5);
const ROUNDS = Number(process.env.ROUNDS ?? 6);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 32);
const WARMUP = Number(process.env.WARMUP_SECONDS ?? 1);
const TAIL = process.env.TAIL !== '0';
const TAIL_WORST = Number(process.env.TAIL_WORST ?? 5);
const ROOT = resolve(fileURLToPath(import.meta.url), '../..');
const CALLER_TOKEN = 'bench-caller-token-0123456789';
const SHOP_ID = 466663;

/** Which programs are missing (nginx, wrk, taskset), with what to install. */
export function missingTools(): string[] {
  const has = (cmd: string, arg: string) => spawnSync(cmd, [arg], { stdio: 'ignore' }).error === undefined;
  const missing: string[] = [];
  if (!has('nginx', '-v')) missing.push('nginx (apt-get install nginx-light)');
  if (!has('wrk', '--version')) missing.push('wrk (apt-get install wrk)');
  if (!has('taskset', '--version')) missing.push('taskset (apt-get install util-linux)');
  if (!has('openssl', 'version')) missing.push('openssl (apt-get install openssl)');
  return missing;
}

export interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

function toMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 'ms' ? v : m[2] === 's' ? v * 1000 : v * 60_000;
}

/** wrk's --latency output → req/s, p50, p99 (ms) and every non-2xx answer or socket error. */
export function parseWrk(out: string): WrkResult {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const p50 = toMs(/^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? '');
  const p99 = toMs(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? '');
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  return { rps, p50, p99, errors: non2xx + socketErrors };
}

export function wrk(url: string, script: string, seconds: number, connections: number): WrkResult {
  const r = spawnSync('taskset', ['-c', '1', 'wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', script, url], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr}`);
  return parseWrk(r.stdout);
}

/** utime+stime of a process, in seconds (to report CPU per request, which noise affects less). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(url: string, init?: RequestInit, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const res = await fetch(url, init);
      if (res.ok) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > end) throw new Error(`${url} did not come up`);
    await sleep(100);
  }
}

export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((r) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => r(port));
    });
  });
}

export function nginxConf(dir: string, name: string, server: string, upstreamBlock = ''): string {
  const file = join(dir, `${name}.conf`);
  writeFileSync(
    file,
    `worker_processes 1;
pid ${dir}/${name}.pid;
error_log ${dir}/${name}-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/${name}-body; proxy_temp_path ${dir}/${name}-proxy;
  fastcgi_temp_path ${dir}/${name}-fcgi; uwsgi_temp_path ${dir}/${name}-uwsgi; scgi_temp_path ${dir}/${name}-scgi;
  keepalive_requests 10000000;
  ${upstreamBlock}
  server {
${server}
  }
}
`,
  );
  return file;
}

/** The request every target gets: a 207-byte JSON POST. */
export const BODY = JSON.stringify({ shopId: SHOP_ID, orderViewId: 756823555555859, remark: 'no onions, extra napkins', items: [{ code: 'A1', qty: 2 }, { code: 'B7', qty: 1 }], note: 'x'.repeat(60) });

/** wrk's script for that POST, with the bench caller's token (`auth`) or without. */
export function wrkScript(dir: string, auth: boolean): string {
  const file = join(dir, auth ? 'post-auth.lua' : 'post.lua');
  writeFileSync(
    file,
    `wrk.method = "POST"\nwrk.body = ${JSON.stringify(BODY)}\nwrk.headers["Content-Type"] = "application/json"\n` +
      (auth ? `wrk.headers["Authorization"] = "Bearer ${CALLER_TOKEN}"\n` : ''),
  );
  return file;
}

/** The nginx upstream (core 1): a token endpoint for KeySecure and one small JSON answer for everything else. */
export function upstreamConf(dir: string, port: number): string {
  const token = JSON.stringify({ code: 0, msg: 'Success', data: { access_token: 'bench-keysecure-token', expired_time: Date.now() + 30 * 86_400_000 } });
  const ok = '{"code":0,"message":"Success","data":{"orderViewId":756823555555859,"status":20,"remark":"bench"}}';
  return nginxConf(
    dir,
    'upstream',
    `    listen 127.0.0.1:${port};
    default_type application/json;
    location = /open-api/v1/merchant/token { return 200 '${token}'; }
    location / { return 200 '${ok}'; }`,
  );
}

export interface StartOptions {
  cwd?: string;
  stdout?: number;
  env?: Record<string, string>;
}

export type Start = (cpu: number, cmd: string, args: string[], opts?: StartOptions) => ChildProcess;

interface Target {
  label: string;
  url: string;
  /** Proxy process whose CPU and memory are read (nginx: its worker). */
  pid: () => number;
  isGateway?: boolean;
}

export async function main(): Promise<void> {
  const missing = missingTools();
  if (missing.length > 0) {
    console.log(`the side-by-side benchmark needs ${missing.join(', ')}; install and run again`);
    process.exitCode = 1;
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'countersign-bench-'));
  const procs: ChildProcess[] = [];
  const start = (cpu: number, cmd: string, args: string[], opts: StartOptions = {}) => {
    const p = spawn('taskset', ['-c', String(cpu), cmd, ...args], {
      cwd: opts.cwd ?? ROOT,
      stdio: ['ignore', opts.stdout ?? 'ignore', 'inherit'],
      env: opts.env ? { ...process.env, ...opts.env } : process.env,
    });
    procs.push(p);
    return p;
  };
  try {
    const [upPort, nginxProxyPort, barePort] = [await freePort(), await freePort(), await freePort()];
    const upstream = `http://127.0.0.1:${upPort}`;
    const upConf = upstreamConf(dir, upPort);
    const proxyConf = nginxConf(
      dir,
      'proxy',
      `    listen 127.0.0.1:${nginxProxyPort};
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }`,
      `upstream up { server 127.0.0.1:${upPort}; keepalive 128; }`,
    );
    const nginxUp = start(1, 'nginx', ['-c', upConf, '-p', dir, '-g', 'daemon off;']);
    const nginxProxy = start(0, 'nginx', ['-c', proxyConf, '-p', dir, '-g', 'daemon off;']);
    const bare = start(0, process.execPath, ['--import', 'tsx', join(ROOT, 'bench/bare-proxy.ts'), String(barePort), upstream]);
    await waitFor(`${upstream}/health`);
    await waitFor(`http://127.0.0.1:${nginxProxyPort}/health`);
    await waitFor(`http://127.0.0.1:${barePort}/health`, { method: 'POST', body: '{}' });
    void nginxUp;

    const plain = wrkScript(dir, false);
    const authed = wrkScript(dir, true);

    const targets: Array<Target & { script: string }> = [
      { label: 'nginx upstream directly', url: `${upstream}/api/open/order/get`, pid: () => childrenOf(nginxUp.pid!)[0] ?? nginxUp.pid!, script: plain },
      { label: 'nginx pass-through', url: `http://127.0.0.1:${nginxProxyPort}/api/open/order/get`, pid: () => childrenOf(nginxProxy.pid!)[0] ?? nginxProxy.pid!, script: plain },
      { label: 'bare Node pass-through', url: `http://127.0.0.1:${barePort}/api/open/order/get`, pid: () => bare.pid!, script: plain },
    ];
    const builds: Array<[string, string]> = [['Countersign', ROOT]];
    // BENCH_BASELINE=dir or label=dir[,label=dir…]: other checkouts measured in the same run.
    for (const entry of (process.env.BENCH_BASELINE ?? '').split(',').filter(Boolean).reverse()) {
      const [label, dir] = entry.includes('=') ? entry.split('=') : ['baseline', entry];
      builds.unshift([label!, resolve(dir!)]);
    }
    for (const [name, root] of builds) {
      const gw = await startGateway(name, root, dir, upstream, start);
      targets.push({ label: `${name} Keeta (signed)`, url: `${gw.proxyUrl}/keeta/order/get`, pid: () => gw.pid, isGateway: true, script: authed });
      targets.push({ label: `${name} KeySecure`, url: `${gw.proxyUrl}/ks/open-api/v1/card/list`, pid: () => gw.pid, isGateway: true, script: authed });
    }
    // The same build with its proxy listener over TLS, beside the plain row.
    const tlsGw = await startGateway('Countersign-tls', ROOT, dir, upstream, start, { tls: selfSignedCertificate(dir) });
    targets.push({ label: 'Countersign Keeta (signed) over TLS', url: `${tlsGw.proxyUrl}/keeta/order/get`, pid: () => tlsGw.pid, isGateway: true, script: authed });
    if (process.env.BENCH_TRACING !== '0') {
      // The same build with tracing on at ratio 1; spans go to the nginx upstream (core 1), which answers 200.
      const gw = await startGateway('Countersign-traced', ROOT, dir, upstream, start, { build: false, extraYaml: `tracing: { otlpEndpoint: '${upstream}', sampleRatio: 1 }\n` });
      targets.push({ label: 'Countersign Keeta (signed, traced at ratio 1)', url: `${gw.proxyUrl}/keeta/order/get`, pid: () => gw.pid, isGateway: true, script: authed });
    }

    // ROUNDS=0: only the tail report.
    if (ROUNDS > 0) {
      // JIT and connection warm-up for everyone, then the measured rounds in alternating order.
      for (const t of targets) wrk(t.url, t.script, 3, CONNECTIONS);
      const runs = new Map<string, Array<WrkResult & { cpuPerKReq: number; rss: number }>>();
      for (let round = 0; round < ROUNDS; round++) {
        const order = round % 2 === 0 ? targets : [...targets].reverse();
        for (const t of order) {
          // One unmeasured second first: a process idle for half a minute (while the others ran)
          // has shrunk its young generation and needs a moment to reach steady state again.
          if (WARMUP > 0) wrk(t.url, t.script, WARMUP, CONNECTIONS);
          const pid = t.pid();
          const cpu0 = cpuSeconds(pid);
          const r = wrk(t.url, t.script, SECONDS, CONNECTIONS);
          const cpu = cpuSeconds(pid) - cpu0;
          const rss = rssMiB(pid);
          (runs.get(t.label) ?? runs.set(t.label, []).get(t.label)!).push({ ...r, cpuPerKReq: (cpu * 1000) / (r.rps * SECONDS), rss });
          process.stderr.write(`  round ${round + 1} ${t.label}: ${Math.round(r.rps)} req/s\n`);
        }
      }
      // Added latency: one connection, p50, against the upstream reached directly.
      const single = new Map<string, number>();
      for (const t of targets) single.set(t.label, wrk(t.url, t.script, 3, 1).p50);

      const median = (xs: number[]) => {
        const s = [...xs].sort((a, b) => a - b);
        return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
      };
      const med = (label: string, k: 'rps' | 'p50' | 'p99' | 'cpuPerKReq' | 'rss') => median(runs.get(label)!.map((r) => r[k]));
      // Ratios are taken within each round (the targets of one round ran back to back, so they
      // saw the same machine), then the median over rounds: steadier than a ratio of medians when
      // the machine's speed drifts between rounds.
      const ratio = (label: string, to: string, k: 'rps' | 'p99' = 'rps') => median(runs.get(label)!.map((r, i) => r[k] / runs.get(to)![i]![k]));
      const direct1 = single.get('nginx upstream directly')!;
      const rows = targets.map((t) => {
        const rps = med(t.label, 'rps');
        const errors = runs.get(t.label)!.reduce((a, r) => a + r.errors, 0);
        return [
          t.label,
          String(Math.round(rps)),
          med(t.label, 'p50').toFixed(2),
          med(t.label, 'p99').toFixed(2),
          t.label === 'nginx upstream directly' ? '' : `${ratio(t.label, 'nginx pass-through').toFixed(2)}x`,
          t.label.startsWith('nginx') ? '' : `${ratio(t.label, 'bare Node pass-through').toFixed(2)}x`,
          t.label.startsWith('nginx') ? '' : `${ratio(t.label, 'bare Node pass-through', 'p99').toFixed(2)}x`,
          t.label === 'nginx upstream directly' ? `${direct1.toFixed(3)}` : `+${(single.get(t.label)! - direct1).toFixed(3)}`,
          med(t.label, 'cpuPerKReq').toFixed(3),
          t.isGateway || t.label.startsWith('bare') ? String(med(t.label, 'rss')) : '',
          String(errors),
        ];
      });
      const head = ['target (proxies on core 0)', 'req/s', 'p50 ms', 'p99 ms', 'vs nginx p/t', 'vs bare Node', 'p99 vs bare', '1-conn p50 ms', 'CPU s/1k req', 'RSS MiB', 'non-2xx'];
      console.log(
        `${ROUNDS} rounds x ${SECONDS}s (each after ${WARMUP}s unmeasured), ${CONNECTIONS} connections, ${BODY.length}-byte JSON POST, medians (ratios: median of each round's ratio); wrk and upstream on core 1`,
      );
      console.log(`| ${head.join(' | ')} |`);
      console.log(`|${head.map(() => '---').join('|')}|`);
      for (const r of rows) console.log(`| ${r.join(' | ')} |`);

    }
    if (TAIL) await tailReport({ dir, upstream, builds, barePort: await freePort(), start, body: { plain, authed } });
  } finally {
    // SIGTERM: the gateways shut down cleanly (and write their CPU profiles when asked to).
    await Promise.all(
      procs.reverse().map((p) => (p.exitCode !== null ? undefined : new Promise((r) => (p.once('exit', r), p.kill('SIGTERM'), setTimeout(r, 10_000).unref())))),
    );
    if (!process.env.BENCH_PROFILE) rmSync(dir, { recursive: true, force: true });
  }
}

interface Window {
  t: number;
  n: number;
  p50: number;
  p99: number;
  max: number;
  lagMs: number;
  cpuMs: number;
  gc: Array<[string, number]>;
  logWrites: number;
  logBytes: number;
  logMs: number;
  sweeps: number;
  sweepMs: number;
  fired: number;
}

/**
 * The "tail" report: the bare pass-through and each build's gateway started again with
 * bench/tail-probe.mjs preloaded, one run each at CONNECTIONS connections, and for each the
 * worst 100 ms windows (by the p99 of the requests answered in them) with what ran in them: GC
 * pauses, the event loop's worst delay, log batch writes and deadline sweeps. The probe's own
 * cost (two diagnostics-channel messages per request) makes these runs a little slower than the
 * table's; they are for seeing what the slow windows have in common.
 */
async function tailReport(ctx: {
  dir: string;
  upstream: string;
  builds: Array<[string, string]>;
  barePort: number;
  start: Start;
  body: { plain: string; authed: string };
}): Promise<void> {
  const probe = join(ROOT, 'bench/tail-probe.mjs');
  // TAIL_NODE_ARGS: extra node options for the gateways of the tail pass (e.g. --trace-gc).
  const nodeArgs = (process.env.TAIL_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const procs: ChildProcess[] = [];
  const runs: Array<{ label: string; file: string; from: number; to: number; wrk: WrkResult }> = [];
  const measure = (label: string, file: string, url: string, script: string) => {
    wrk(url, script, 2, CONNECTIONS);
    const from = Date.now();
    const r = wrk(url, script, SECONDS, CONNECTIONS);
    runs.push({ label, file, from, to: Date.now(), wrk: r });
  };
  try {
    const bareFile = join(ctx.dir, 'tail-bare.jsonl');
    const bare = ctx.start(0, process.execPath, ['--import', probe, ...nodeArgs, '--import', 'tsx', join(ROOT, 'bench/bare-proxy.ts'), String(ctx.barePort), ctx.upstream], {
      env: { TAIL_PROBE_OUT: bareFile },
      // With BENCH_ACCESS_LOG, its stdout (e.g. --trace-gc's) goes beside the gateways' there.
      ...(process.env.BENCH_ACCESS_LOG && { stdout: openSync(`${process.env.BENCH_ACCESS_LOG}.bare`, 'a') }),
    });
    procs.push(bare);
    await waitFor(`http://127.0.0.1:${ctx.barePort}/health`, { method: 'POST', body: '{}' });
    measure('bare Node pass-through', bareFile, `http://127.0.0.1:${ctx.barePort}/api/open/order/get`, ctx.body.plain);
    for (const [name, root] of ctx.builds) {
      const file = join(ctx.dir, `tail-${name}.jsonl`);
      const gw = await startGateway(`${name}-tail`, root, ctx.dir, ctx.upstream, ctx.start, { build: false, args: ['--import', probe, ...nodeArgs], env: { TAIL_PROBE_OUT: file } });
      procs.push(gw.proc);
      measure(`${name} Keeta (signed)`, file, `${gw.proxyUrl}/keeta/order/get`, ctx.body.authed);
      measure(`${name} KeySecure`, file, `${gw.proxyUrl}/ks/open-api/v1/card/list`, ctx.body.authed);
    }
  } finally {
    await Promise.all(procs.map((p) => (p.exitCode !== null ? undefined : new Promise((r) => (p.once('exit', r), p.kill('SIGTERM'), setTimeout(r, 10_000).unref())))));
  }
  const origin = (file: string) => Number(readFileSync(`${file}.origin`, 'utf8'));
  console.log(
    `\ntail: each proxy again with bench/tail-probe.mjs, ${SECONDS}s at ${CONNECTIONS} connections; 100 ms windows, latency measured inside the proxy (request head parsed → answer written); the ${TAIL_WORST} worst windows by p99, and what ran in them`,
  );
  const gcText = (gc: Array<[string, number]>) => {
    if (gc.length === 0) return '—';
    const by = new Map<string, [number, number]>();
    for (const [k, ms] of gc) {
      const e = by.get(k) ?? [0, 0];
      by.set(k, [e[0] + 1, e[1] + ms]);
    }
    return [...by].map(([k, [n, ms]]) => `${n} ${k} ${ms.toFixed(1)} ms`).join(', ');
  };
  for (const run of runs) {
    let windows: Window[];
    try {
      const t0 = origin(run.file);
      windows = readFileSync(run.file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Window)
        .filter((w) => t0 + w.t >= run.from + 100 && t0 + w.t + 100 <= run.to);
    } catch (err) {
      console.log(`\n${run.label}: no probe output (${(err as Error).message})`);
      continue;
    }
    const sum = (f: (w: Window) => number, ws = windows) => ws.reduce((a, w) => a + f(w), 0);
    const gcMs = (w: Window) => w.gc.reduce((a, g) => a + g[1], 0);
    const worst = [...windows].sort((a, b) => b.p99 - a.p99).slice(0, TAIL_WORST);
    const all = windows.length;
    const p99s = windows.map((w) => w.p99).sort((a, b) => a - b);
    console.log(
      `\n**${run.label}** (wrk p99 ${run.wrk.p99.toFixed(2)} ms, ${Math.round(run.wrk.rps)} req/s; ${all} windows, per-window p99: median ${(p99s[Math.floor(all / 2)] ?? 0).toFixed(2)} ms, worst ${(p99s[all - 1] ?? 0).toFixed(2)} ms)`,
    );
    const n = sum((w) => w.n);
    console.log(
      `all windows: ${n} requests; GC ${((sum(gcMs) * 1000) / n).toFixed(1)} ms per 1k requests, ${sum(gcMs).toFixed(1)} ms in ${sum((w) => w.gc.length)} pauses (${gcText(windows.flatMap((w) => w.gc))}); ${
        // A build from before the diagnostics channels publishes neither (its gateway logs every request).
        run.label.startsWith('bare') || sum((w) => w.logWrites + w.sweeps) > 0
          ? `log writes ${sum((w) => w.logWrites)} (${sum((w) => w.logMs).toFixed(1)} ms); sweeps ${sum((w) => w.sweeps)} (${sum((w) => w.sweepMs).toFixed(1)} ms)`
          : 'log writes and sweeps: not published by this build'
      }`,
    );
    console.log('| window (s) | requests | p50 ms | p99 ms | max ms | loop delay max ms | CPU ms | GC | log writes (ms) | sweeps (ms) |');
    console.log('|---|---|---|---|---|---|---|---|---|---|');
    const t0 = origin(run.file);
    for (const w of worst) {
      console.log(
        `| ${((t0 + w.t - run.from) / 1000).toFixed(1)} | ${w.n} | ${w.p50.toFixed(2)} | ${w.p99.toFixed(2)} | ${w.max.toFixed(2)} | ${w.lagMs.toFixed(1)} | ${w.cpuMs < 0 ? '' : w.cpuMs.toFixed(0)} | ${gcText(w.gc)} | ${w.logWrites} (${w.logMs.toFixed(2)}) | ${w.sweeps} (${w.sweepMs.toFixed(2)}) |`,
      );
    }
  }
}

/** Start `countersign serve` from a checkout, import a Keeta merchant, wait until it is ready. */
export async function startGateway(
  name: string,
  root: string,
  dir: string,
  upstream: string,
  start: Start,
  opts: { build?: boolean; args?: string[]; env?: Record<string, string>; tls?: { cert: string; key: string }; extraYaml?: string } = {},
): Promise<{ proxyUrl: string; pid: number; proc: ChildProcess }> {
  const [proxyPort, adminPort] = [await freePort(), await freePort()];
  const adminToken = 'bench-admin-token-0123456789';
  const config = join(dir, `${name}.yaml`);
  writeFileSync(
    config,
    `listen: { proxy: 127.0.0.1:${proxyPort}, admin: 127.0.0.1:${adminPort}${opts.tls ? `, tls: { proxy: { certFile: ${opts.tls.cert}, keyFile: ${opts.tls.key} } }` : ''} }
store: { type: memory }
admin: { token: ${adminToken} }
callers:
  - { name: bench, token: ${CALLER_TOKEN}, allow: ['keeta:/order/*', 'ks:/open-api/*'] }
upstreams:
  keeta: { type: keeta, baseUrl: ${upstream}/api/open, appId: '3340612437', appSecret: bench-app-secret-0123456789 }
  ks: { type: keysecure, baseUrl: ${upstream}, apiKey: bench-api-key-0123456789, timezone: UTC+8 }
${opts.extraYaml ?? ''}`,
  );
  // The production build (`npm run build` → dist/), not tsx: what `npm start` runs.
  if (opts.build !== false) {
    // `npm run build` of that checkout: its compile and its postbuild step (the console's files).
    const build = spawnSync('npm', ['run', 'build'], { cwd: root, encoding: 'utf8' });
    if (build.status !== 0) throw new Error(`${name}: build failed\n${build.stdout}${build.stderr}`);
  }
  const out = openSync(process.env.BENCH_ACCESS_LOG ?? '/dev/null', 'a');
  const profile = process.env.BENCH_PROFILE && !opts.args ? [`--cpu-prof`, `--cpu-prof-dir=${resolve(process.env.BENCH_PROFILE)}`, `--cpu-prof-name=${name}.cpuprofile`] : [];
  // dist/cli/main.js since the layout move; a baseline checkout from before it has dist/cli.js.
  const cli = existsSync(join(root, 'dist/cli/main.js')) ? join(root, 'dist/cli/main.js') : join(root, 'dist/cli.js');
  const p = start(0, process.execPath, [...profile, ...(opts.args ?? []), cli, 'serve', '--config', config], {
    cwd: root,
    stdout: out,
    ...(opts.env && { env: opts.env }),
  });
  const admin = `http://127.0.0.1:${adminPort}`;
  await waitFor(`${admin}/readyz`);
  const res = await fetch(`${admin}/admin/upstreams/keeta/merchants/brand/token`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ accessToken: 'a'.repeat(32), refreshToken: 'r'.repeat(32), expiresIn: 7_776_000, issuedAtTime: Date.now(), shopIds: [SHOP_ID] }),
  });
  if (!res.ok) throw new Error(`${name}: token import failed: ${res.status} ${await res.text()}`);
  return { proxyUrl: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${proxyPort}`, pid: p.pid!, proc: p };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();

/** A throwaway ECDSA P-256 certificate for 127.0.0.1 (wrk does not verify it). */
function selfSignedCertificate(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'bench-tls.crt');
  const key = join(dir, 'bench-tls.key');
  const r = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
  return { cert, key };
}
