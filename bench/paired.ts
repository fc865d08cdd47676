/**
 * Paired A/B: two gateways (or a gateway and the bare pass-through) running at once, both pinned
 * to core 0, wrk (and the nginx upstream, on core 1) alternating between them, PAIRS pairs of
 * SECONDS each after WARMUP_SECONDS unmeasured, A first in odd pairs and B first in even ones.
 * Each measure is the median of the per-pair ratios B/A: the two runs of a pair saw the same
 * machine, which on a shared machine is the only comparison that holds. Run it in both orders
 * (A B, then B A) and take √(r_AB / r_BA): on a crowded machine the second side came out about
 * 15 % cheaper whichever build it was, and only the two orders together cancel that.
 *
 *   npx tsx bench/paired.ts <A> <B> [keeta|keysecure]
 *
 * A and B are checkout directories (built into their dist/ first) or `bare` for bench/bare-proxy.ts.
 * Env: PAIRS (10), SECONDS (4), WARMUP_SECONDS (1), CONNECTIONS (32), NODE_ARGS_A / NODE_ARGS_B
 * (extra node options for that side, e.g. `--max-semi-space-size=32`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuSeconds, freePort, startGateway, upstreamConf, waitFor, wrk, wrkScript, type StartOptions, type WrkResult } from './compare.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '../..');
const PAIRS = Number(process.env.PAIRS ?? 10);
const SECONDS = Number(process.env.SECONDS ?? 4);
const WARMUP = Number(process.env.WARMUP_SECONDS ?? 1);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 32);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const [a, b, which = 'keeta'] = process.argv.slice(2);
  if (!a || !b) throw new Error('usage: npx tsx bench/paired.ts <A dir|bare> <B dir|bare> [keeta|keysecure]');
  const dir = mkdtempSync(join(tmpdir(), 'countersign-paired-'));
  const procs: ChildProcess[] = [];
  const start = (cpu: number, cmd: string, args: string[], opts: StartOptions = {}) => {
    const p = spawn('taskset', ['-c', String(cpu), cmd, ...args], { cwd: opts.cwd ?? ROOT, stdio: ['ignore', opts.stdout ?? 'ignore', 'inherit'], env: { ...process.env, ...opts.env } });
    procs.push(p);
    return p;
  };
  try {
    const upPort = await freePort();
    const upstream = `http://127.0.0.1:${upPort}`;
    start(1, 'nginx', ['-c', upstreamConf(dir, upPort), '-p', dir, '-g', 'daemon off;']);
    await waitFor(`${upstream}/health`);
    const side = async (label: string, what: string, nodeArgs: string[]) => {
      if (what === 'bare') {
        const port = await freePort();
        const p = start(0, process.execPath, [...nodeArgs, '--import', 'tsx', join(ROOT, 'bench/bare-proxy.ts'), String(port), upstream]);
        await waitFor(`http://127.0.0.1:${port}/health`, { method: 'POST', body: '{}' });
        return { label, url: `http://127.0.0.1:${port}/api/open/order/get`, script: wrkScript(dir, false), pid: p.pid! };
      }
      const gw = await startGateway(label, resolve(what), dir, upstream, start, { args: nodeArgs });
      const path = which === 'keysecure' ? '/ks/open-api/v1/card/list' : '/keeta/order/get';
      return { label, url: `${gw.proxyUrl}${path}`, script: wrkScript(dir, true), pid: gw.pid };
    };
    const args = (v: string | undefined) => (v ?? '').split(' ').filter(Boolean);
    const sides = [await side('A', a, args(process.env.NODE_ARGS_A)), await side('B', b, args(process.env.NODE_ARGS_B))];
    for (const s of sides) wrk(s.url, s.script, 3, CONNECTIONS);
    const pairs: Array<Record<'A' | 'B', WrkResult & { cpu: number }>> = [];
    for (let i = 0; i < PAIRS; i++) {
      const pair = {} as Record<'A' | 'B', WrkResult & { cpu: number }>;
      for (const s of i % 2 === 0 ? sides : [...sides].reverse()) {
        if (WARMUP > 0) wrk(s.url, s.script, WARMUP, CONNECTIONS);
        const c0 = cpuSeconds(s.pid);
        const r = wrk(s.url, s.script, SECONDS, CONNECTIONS);
        pair[s.label as 'A' | 'B'] = { ...r, cpu: ((cpuSeconds(s.pid) - c0) * 1e6) / (r.rps * SECONDS) };
      }
      pairs.push(pair);
      process.stderr.write(
        `  pair ${i + 1}: A ${Math.round(pair.A.rps)} req/s p99 ${pair.A.p99.toFixed(2)} ms ${pair.A.cpu.toFixed(1)} µs/req; B ${Math.round(pair.B.rps)} req/s p99 ${pair.B.p99.toFixed(2)} ms ${pair.B.cpu.toFixed(1)} µs/req\n`,
      );
    }
    const ratio = (k: 'rps' | 'p50' | 'p99' | 'cpu') => median(pairs.map((p) => p.B[k] / p.A[k]));
    const med = (s: 'A' | 'B', k: 'rps' | 'p50' | 'p99' | 'cpu') => median(pairs.map((p) => p[s][k]));
    const errors = pairs.reduce((n, p) => n + p.A.errors + p.B.errors, 0);
    console.log(`${PAIRS} pairs x ${SECONDS}s, ${CONNECTIONS} connections, ${which}; A = ${a}${process.env.NODE_ARGS_A ? ` ${process.env.NODE_ARGS_A}` : ''}, B = ${b}${process.env.NODE_ARGS_B ? ` ${process.env.NODE_ARGS_B}` : ''}`);
    console.log('| | req/s | p50 ms | p99 ms | CPU µs/req |');
    console.log('|---|---|---|---|---|');
    for (const s of ['A', 'B'] as const) console.log(`| ${s} (median) | ${Math.round(med(s, 'rps'))} | ${med(s, 'p50').toFixed(2)} | ${med(s, 'p99').toFixed(2)} | ${med(s, 'cpu').toFixed(1)} |`);
    console.log(`| B/A (median of per-pair ratios) | x${ratio('rps').toFixed(3)} | x${ratio('p50').toFixed(3)} | x${ratio('p99').toFixed(3)} | x${ratio('cpu').toFixed(3)} |`);
    console.log(`non-2xx or socket errors: ${errors}`);
  } finally {
    await Promise.all(procs.reverse().map((p) => (p.exitCode !== null ? undefined : new Promise((r) => (p.once('exit', r), p.kill('SIGTERM'), setTimeout(r, 10_000).unref())))));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
