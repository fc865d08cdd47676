/**
 * Throughput of the proxy's hot path on this machine: small JSON POSTs, N concurrent
 * keep-alive connections, for a few seconds each, against a trivial upstream running in its
 * own process. Compares the upstream reached directly with the same upstream through
 * Countersign as KeySecure (header injection) and as Keeta (parse + sign + re-serialise).
 *
 * Run: npx tsx bench/proxy.ts   (SECONDS=5 CONNECTIONS=64)
 */
import { fork, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { Pool } from 'undici';
import { buildApp } from '../src/app.js';
import { parseConfig } from '../src/config/load.js';
import { createLogger } from '../src/logger.js';
import { listenApp } from '../src/server.js';
import { MemoryStore } from '../src/tokens/memory-store.js';

const SECONDS = Number(process.env.SECONDS ?? 5);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 64);

if (process.argv[2] === 'upstream') {
  // The trivial upstream: answers every path with a small envelope; a token for the token path.
  const { createServer } = await import('node:http');
  const token = JSON.stringify({ code: 0, msg: 'Success', data: { access_token: 'bench-token', expired_time: Date.now() + 86_400_000 } });
  const ok = '{"code":0,"message":"Success","data":{"orderViewId":756823555555859,"status":20}}';
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(req.url?.endsWith('/merchant/token') ? token : ok);
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.send!((server.address() as { port: number }).port));
} else {
  await main();
}

async function load(origin: string, path: string, body: string): Promise<{ rps: number; p50: number; p99: number; errors: number }> {
  const pool = new Pool(origin, { connections: CONNECTIONS, pipelining: 1 });
  const latencies: number[] = [];
  let errors = 0;
  const end = performance.now() + SECONDS * 1000;
  const worker = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        const res = await pool.request({ method: 'POST', path, headers: { 'content-type': 'application/json' }, body });
        await res.body.text();
        if (res.statusCode !== 200) errors++;
      } catch {
        errors++;
      }
      latencies.push(performance.now() - t0);
    }
  };
  // Warm-up, then measure.
  await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
    for (let i = 0; i < 20; i++) await (await pool.request({ method: 'POST', path, headers: { 'content-type': 'application/json' }, body })).body.text();
  }));
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  const elapsed = (performance.now() - t0) / 1000;
  await pool.close();
  latencies.sort((a, b) => a - b);
  const q = (p: number) => +latencies[Math.floor(latencies.length * p)]!.toFixed(2);
  return { rps: Math.round(latencies.length / elapsed), p50: q(0.5), p99: q(0.99), errors };
}

async function main() {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['upstream'], { execArgv: ['--import', 'tsx'] });
  const port = await new Promise<number>((r) => child.once('message', (p) => r(p as number)));
  const upstream = `http://127.0.0.1:${port}`;
  const config = parseConfig(`
listen: { proxy: 127.0.0.1:0, admin: 127.0.0.1:0 }
store: { type: memory }
upstreams:
  keeta: { type: keeta, baseUrl: ${upstream}/api/open, appId: 3340612437, appSecret: bench-secret }
  ks: { type: keysecure, baseUrl: ${upstream}, apiKey: bench-key, timezone: UTC+8 }
`);
  const app = buildApp({ config, store: new MemoryStore(), registry: new Registry(), logger: createLogger({ level: process.env.BENCH_LOG_LEVEL ?? 'warn' }), schedulerIntervalMs: 0 });
  await app.start();
  const l = await listenApp(app, config.listen);
  await fetch(`${l.adminUrl}/admin/upstreams/keeta/merchants/brand/token`, {
    method: 'PUT',
    body: JSON.stringify({ accessToken: 'a'.repeat(32), refreshToken: 'r'.repeat(32), expiresIn: 7_776_000, issuedAtTime: Date.now(), shopIds: [466663] }),
  });
  const body = JSON.stringify({ orderViewId: 756823555555859, shopId: 466663, remark: 'no onions', items: [{ code: 'A1', qty: 2 }] });
  const results = {
    direct: await load(upstream, '/api/open/order/get', body),
    keysecure: await load(l.proxyUrl, '/ks/open-api/v1/card/list', body),
    keeta: await load(l.proxyUrl, '/keeta/order/get', body),
  };
  console.log(JSON.stringify({ bench: 'proxy-throughput', seconds: SECONDS, connections: CONNECTIONS, bodyBytes: body.length, results }, null, 2));
  await l.shutdown(1000);
  child.kill();
}
