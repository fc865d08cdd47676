import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { Registry } from 'prom-client';
import { Pool } from 'undici';
import { parseConfig, type Config } from '../config/load.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { MemoryStore } from '../tokens/memory-store.js';
import type { TokenRecord } from '../tokens/types.js';

/**
 * JIT warm-up. A freshly started Node process runs the proxy's hot path several times slower
 * for its first seconds, until V8 has optimised it. Before the real app opens (and so before
 * /readyz turns 200), signed Keeta and KeySecure requests go through the real pipeline — HTTP
 * parsing, caller check, body read, signing, forwarding, classification, metrics and the
 * access log — of a throwaway app whose upstreams are a loopback stub in this process. That app
 * has its own registry, memory store and a logger writing nowhere, so warm-up traffic never
 * reaches a real upstream, the real metrics, the real store or the real log.
 */
export interface WarmUpResult {
  /** Requests sent (fewer than asked when the time ran out). */
  requests: number;
  ok: number;
  ms: number;
}

const SHOP_ID = '466663';

/**
 * What the warm-up needs of an app and gives it: buildApp fits (this module does not import
 * app.ts, which imports it).
 */
export interface WarmUpDeps {
  config: Config;
  store: MemoryStore;
  registry: Registry;
  logger: Logger;
  schedulerIntervalMs: number;
}
export interface WarmUpApp {
  start(): Promise<unknown>;
  close(): Promise<unknown>;
  readonly cache: { set(rec: TokenRecord): unknown };
  readonly proxy: { callback(): (req: IncomingMessage, res: ServerResponse) => void };
}

/** Sends `requests` requests, or fewer when `maxMs` runs out first (a loaded machine must still start promptly). */
export async function warmUpHotPath(build: (deps: WarmUpDeps) => WarmUpApp, requests: number, maxMs = 500): Promise<WarmUpResult> {
  const started = performance.now();
  const stub = await listen(
    createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const body = req.url?.endsWith('/merchant/token')
          ? `{"code":0,"msg":"Success","data":{"access_token":"warm-up","expired_time":${Date.now() + 86_400_000}}}`
          : '{"code":0,"message":"Success","data":{"orderViewId":756823555555859,"status":20}}';
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
    }),
  );
  const stubUrl = `http://127.0.0.1:${(stub.address() as AddressInfo).port}`;
  const callerToken = randomBytes(16).toString('hex');
  const config = parseConfig(
    `listen: { proxy: 127.0.0.1:0, admin: 127.0.0.1:0 }
store: { type: memory }
callers:
  - { name: warm-up, token: ${callerToken}, allow: ['*:*'] }
upstreams:
  keeta: { type: keeta, baseUrl: ${stubUrl}/api/open, appId: '1', appSecret: ${randomBytes(16).toString('hex')} }
  keysecure: { type: keysecure, baseUrl: ${stubUrl}, apiKey: ${randomBytes(16).toString('hex')}, timezone: UTC+8 }
`,
    { env: {} },
  );
  const nowhere = new Writable({ write: (_chunk, _enc, cb) => cb() });
  const app = build({ config, store: new MemoryStore(), registry: new Registry(), logger: createLogger({ level: 'info', destination: nowhere }), schedulerIntervalMs: 0 });
  let proxy: Server | undefined;
  let pool: Pool | undefined;
  let ok = 0;
  let sent = 0;
  try {
    await app.start();
    const now = Date.now();
    app.cache.set({
      upstream: 'keeta',
      merchant: 'warm-up',
      accessToken: randomBytes(16).toString('hex'),
      refreshToken: randomBytes(16).toString('hex'),
      issuedAt: now,
      expiresAt: now + 86_400_000,
      refreshedAt: now,
      shopIds: [SHOP_ID],
    });
    proxy = await listen(createServer(app.proxy.callback()));
    pool = new Pool(`http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, { connections: 8 });
    const headers = { authorization: `Bearer ${callerToken}`, 'content-type': 'application/json' };
    const body = `{"shopId":${SHOP_ID},"orderViewId":756823555555859,"remark":"warm-up","items":[{"code":"A1","qty":2}]}`;
    const stopAt = started + maxMs;
    const worker = async () => {
      while (sent < requests && performance.now() < stopAt) {
        const path = sent++ % 2 === 0 ? '/keeta/order/get' : '/keysecure/open-api/v1/card/list';
        const res = await pool!.request({ method: 'POST', path, headers, body });
        await res.body.dump();
        if (res.statusCode === 200) ok++;
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
  } finally {
    await pool?.close();
    await new Promise<void>((r) => (proxy ? (proxy.closeAllConnections(), proxy.close(() => r())) : r()));
    await app.close();
    stub.closeAllConnections();
    await new Promise<void>((r) => stub.close(() => r()));
  }
  return { requests: sent, ok, ms: Math.round(performance.now() - started) };
}

function listen(server: Server): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}
