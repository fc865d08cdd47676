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
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SECONDS = Number(process.env.SECONDS ?? 5);
const ROUNDS = Number(process.env.ROUNDS ?? 6);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 32);
const WARMUP = Number(process.env.WARMUP_SECONDS ?? 1);
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
  return missing;
}

interface WrkResult {
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

function wrk(url: string, script: string, seconds: number, connections: number): WrkResult {
  const r = spawnSync('taskset', ['-c', '1', 'wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', script, url], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr}`);
  return parseWrk(r.stdout);
}

/** utime+stime of a process, in seconds (to report CPU per request, which noise affects less). */
function cpuSeconds(pid: number): number {
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

async function waitFor(url: string, init?: RequestInit, ms = 20_000): Promise<void> {
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

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((r) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => r(port));
    });
  });
}

function nginxConf(dir: string, name: string, server: string, upstreamBlock = ''): string {
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
  const start = (cpu: number, cmd: string, args: string[], opts: { cwd?: string; stdout?: number } = {}) => {
    const p = spawn('taskset', ['-c', String(cpu), cmd, ...args], { cwd: opts.cwd ?? ROOT, stdio: ['ignore', opts.stdout ?? 'ignore', 'inherit'] });
    procs.push(p);
    return p;
  };
  try {
    const [upPort, nginxProxyPort, barePort] = [await freePort(), await freePort(), await freePort()];
    const upstream = `http://127.0.0.1:${upPort}`;
    const token = JSON.stringify({ code: 0, msg: 'Success', data: { access_token: 'bench-keysecure-token', expired_time: Date.now() + 30 * 86_400_000 } });
    const ok = '{"code":0,"message":"Success","data":{"orderViewId":756823555555859,"status":20,"remark":"bench"}}';
    const upConf = nginxConf(
      dir,
      'upstream',
      `    listen 127.0.0.1:${upPort};
    default_type application/json;
    location = /open-api/v1/merchant/token { return 200 '${token}'; }
    location / { return 200 '${ok}'; }`,
    );
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

    const body = JSON.stringify({ shopId: SHOP_ID, orderViewId: 756823555555859, remark: 'no onions, extra napkins', items: [{ code: 'A1', qty: 2 }, { code: 'B7', qty: 1 }], note: 'x'.repeat(60) });
    const script = (auth: boolean) => {
      const file = join(dir, auth ? 'post-auth.lua' : 'post.lua');
      writeFileSync(
        file,
        `wrk.method = "POST"\nwrk.body = ${JSON.stringify(body)}\nwrk.headers["Content-Type"] = "application/json"\n` +
          (auth ? `wrk.headers["Authorization"] = "Bearer ${CALLER_TOKEN}"\n` : ''),
      );
      return file;
    };
    const plain = script(false);
    const authed = script(true);

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
    const ratio = (label: string, to: string) => median(runs.get(label)!.map((r, i) => r.rps / runs.get(to)![i]!.rps));
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
        t.label === 'nginx upstream directly' ? `${direct1.toFixed(3)}` : `+${(single.get(t.label)! - direct1).toFixed(3)}`,
        med(t.label, 'cpuPerKReq').toFixed(3),
        t.isGateway || t.label.startsWith('bare') ? String(med(t.label, 'rss')) : '',
        String(errors),
      ];
    });
    const head = ['target (proxies on core 0)', 'req/s', 'p50 ms', 'p99 ms', 'vs nginx p/t', 'vs bare Node', '1-conn p50 ms', 'CPU s/1k req', 'RSS MiB', 'non-2xx'];
    console.log(
      `${ROUNDS} rounds x ${SECONDS}s (each after ${WARMUP}s unmeasured), ${CONNECTIONS} connections, ${body.length}-byte JSON POST, medians (ratios: median of each round's ratio); wrk and upstream on core 1`,
    );
    console.log(`| ${head.join(' | ')} |`);
    console.log(`|${head.map(() => '---').join('|')}|`);
    for (const r of rows) console.log(`| ${r.join(' | ')} |`);
  } finally {
    // SIGTERM: the gateways shut down cleanly (and write their CPU profiles when asked to).
    await Promise.all(
      procs.reverse().map((p) => (p.exitCode !== null ? undefined : new Promise((r) => (p.once('exit', r), p.kill('SIGTERM'), setTimeout(r, 10_000).unref())))),
    );
    if (!process.env.BENCH_PROFILE) rmSync(dir, { recursive: true, force: true });
  }
}

/** Start `countersign serve` from a checkout, import a Keeta merchant, wait until it is ready. */
async function startGateway(
  name: string,
  root: string,
  dir: string,
  upstream: string,
  start: (cpu: number, cmd: string, args: string[], opts?: { cwd?: string; stdout?: number }) => ChildProcess,
): Promise<{ proxyUrl: string; pid: number }> {
  const [proxyPort, adminPort] = [await freePort(), await freePort()];
  const adminToken = 'bench-admin-token-0123456789';
  const config = join(dir, `${name}.yaml`);
  writeFileSync(
    config,
    `listen: { proxy: 127.0.0.1:${proxyPort}, admin: 127.0.0.1:${adminPort} }
store: { type: memory }
admin: { token: ${adminToken} }
callers:
  - { name: bench, token: ${CALLER_TOKEN}, allow: ['keeta:/order/*', 'ks:/open-api/*'] }
upstreams:
  keeta: { type: keeta, baseUrl: ${upstream}/api/open, appId: '3340612437', appSecret: bench-app-secret-0123456789 }
  ks: { type: keysecure, baseUrl: ${upstream}, apiKey: bench-api-key-0123456789, timezone: UTC+8 }
`,
  );
  // The production build (`npm run build` → dist/), not tsx: what `npm start` runs.
  const build = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: root, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`${name}: build failed\n${build.stdout}${build.stderr}`);
  const out = openSync(process.env.BENCH_ACCESS_LOG ?? '/dev/null', 'a');
  const profile = process.env.BENCH_PROFILE ? [`--cpu-prof`, `--cpu-prof-dir=${resolve(process.env.BENCH_PROFILE)}`, `--cpu-prof-name=${name}.cpuprofile`] : [];
  const p = start(0, process.execPath, [...profile, join(root, 'dist/cli/main.js'), 'serve', '--config', config], { cwd: root, stdout: out });
  const admin = `http://127.0.0.1:${adminPort}`;
  await waitFor(`${admin}/readyz`);
  const res = await fetch(`${admin}/admin/upstreams/keeta/merchants/brand/token`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ accessToken: 'a'.repeat(32), refreshToken: 'r'.repeat(32), expiresIn: 7_776_000, issuedAtTime: Date.now(), shopIds: [SHOP_ID] }),
  });
  if (!res.ok) throw new Error(`${name}: token import failed: ${res.status} ${await res.text()}`);
  return { proxyUrl: `http://127.0.0.1:${proxyPort}`, pid: p.pid! };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
