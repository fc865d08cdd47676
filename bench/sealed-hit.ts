/**
 * The cache-hit path with records sealed at rest: a request whose token is cached does no
 * store I/O and no decryption, so sealing must cost it nothing. Runs the same proxied Keeta
 * call against a file store in plaintext and a sealed one (one key), in one process, against
 * the Keeta simulator, and prints requests per second and the time of `TokenService.fresh`.
 *
 *   npx tsx bench/sealed-hit.ts [requests]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { pino } from 'pino';
import { buildApp } from '../src/app/app.js';
import { parseConfig } from '../src/config/load.js';
import { listenApp } from '../src/app/server.js';
import { startKeetaSim } from '../src/sim/index.js';

const REQUESTS = Number(process.argv[2] ?? 20_000);
const CONCURRENCY = 16;
const APP_ID = '3340612437';
const SECRET = 'bench-keeta-app-secret';

async function run(mode: 'plaintext' | 'sealed'): Promise<{ rps: number; freshNs: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'cs-bench-sealed-'));
  const sim = await startKeetaSim({ appId: APP_ID, appSecret: SECRET });
  try {
    const keyFile = join(dir, 'key');
    writeFileSync(keyFile, randomBytes(32).toString('base64'));
    const enc = mode === 'sealed' ? `  encryption:\n    keys:\n      - id: k1\n        keyFile: ${keyFile}\n` : '';
    const config = parseConfig(
      `listen:\n  proxy: 127.0.0.1:0\n  admin: 127.0.0.1:0\nstore:\n  type: file\n  path: ${join(dir, 'tokens.json')}\n${enc}upstreams:\n  keeta:\n    type: keeta\n    baseUrl: ${sim.baseUrl}\n    appId: ${APP_ID}\n    appSecret: ${SECRET}\n`,
    );
    const app = buildApp({ config, registry: new Registry(), logger: pino({ level: 'silent' }), schedulerIntervalMs: 0 });
    await app.start();
    const listening = await listenApp(app, config.listen);
    try {
      const pair = sim.control.addMerchant({ merchantId: 'brand-1', shopIds: ['466663'], issuedAtMs: Date.now() - 60_000 });
      const imported = await fetch(`${listening.adminUrl}/admin/upstreams/keeta/merchants/brand-1/token`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ accessToken: pair.accessToken, refreshToken: pair.refreshToken, expiresIn: pair.expiresIn, issuedAtTime: pair.issuedAtTime, shopIds: [466663] }),
      });
      if (imported.status !== 204) throw new Error(`import: ${imported.status}`);
      const body = JSON.stringify({ shopId: 466663, orderViewId: 1 });
      const url = `${listening.proxyUrl}/keeta/order/get`;
      const one = async () => {
        const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`status ${res.status}`);
      };
      const batch = async (n: number) => {
        let next = 0;
        await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
          while (next++ < n) await one();
        }));
      };
      await batch(2000); // warm-up
      const start = process.hrtime.bigint();
      await batch(REQUESTS);
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const tokens = app.upstreams.get('keeta')!.tokens;
      const loops = 2_000_000;
      let hits = 0;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < loops; i++) if (tokens.fresh('brand-1')) hits++;
      const freshNs = Number(process.hrtime.bigint() - t0) / loops;
      if (hits !== loops) throw new Error('the cached token was not fresh');
      return { rps: REQUESTS / seconds, freshNs };
    } finally {
      await listening.shutdown(1000);
    }
  } finally {
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const mode of ['plaintext', 'sealed', 'plaintext', 'sealed'] as const) {
  const r = await run(mode);
  process.stdout.write(`${mode.padEnd(9)}  ${r.rps.toFixed(0).padStart(6)} req/s (${CONCURRENCY} concurrent, ${REQUESTS} requests)   fresh(): ${r.freshNs.toFixed(1)} ns\n`);
}
