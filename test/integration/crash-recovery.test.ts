import test from 'ava';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKeetaSim, type KeetaSim } from '../../src/sim/index.js';
import { spawnCli } from '../helpers/cli.js';
import { postJson } from '../helpers/http.js';
import { KEETA_APP_ID, KEETA_SECRET, importPair } from '../helpers/keeta-setup.js';
import { SHARED_REDIS_URL, cleanPrefix, uniquePrefix } from '../helpers/redis-server.js';

const SHOP = '466663';

/** `countersign serve` in its own process; resolves with its listener URLs. */
async function serve(configFile: string): Promise<{ child: ChildProcess; proxy: string; admin: string }> {
  const child = spawnCli(['serve', '--config', configFile], { LOG_LEVEL: 'info' });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const urls = await new Promise<{ proxy: string; admin: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${out}`)), 20_000);
    const check = () => {
      const line = out.split('\n').find((l) => l.includes('countersign listening'));
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line));
      }
    };
    child.stdout!.on('data', check);
    child.on('exit', () => reject(new Error(`serve exited:\n${out}`)));
  });
  return { child, ...urls };
}

function kill9(child: ChildProcess): Promise<void> {
  return new Promise((r) => {
    child.once('exit', () => r());
    child.kill('SIGKILL');
  });
}

function configFor(sim: KeetaSim, store: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'cs-crash-'));
  const file = join(dir, 'countersign.yaml');
  writeFileSync(
    file,
    `listen:
  proxy: 127.0.0.1:0
  admin: 127.0.0.1:0
${store.replaceAll('$DIR', dir)}
upstreams:
  keeta:
    type: keeta
    baseUrl: ${sim.baseUrl}
    appId: ${KEETA_APP_ID}
    appSecret: ${KEETA_SECRET}
    refreshSpacing: 0s
`,
  );
  return file;
}

for (const [kind, store] of [
  ['file', 'store:\n  type: file\n  path: $DIR/tokens.json'],
  ['redis', `store:\n  type: redis\n  url: ${SHARED_REDIS_URL}\n  keyPrefix: "PREFIX"`],
] as const) {
  test(`SIGKILL right after a refresh: the ${kind} store brings back the rotated pair`, async (t) => {
    const prefix = uniquePrefix('crash');
    t.teardown(() => cleanPrefix(prefix));
    const sim = await startKeetaSim({ appId: KEETA_APP_ID, appSecret: KEETA_SECRET, refreshSpacingMs: 0 });
    t.teardown(() => sim.close());
    const config = configFor(sim, store.replace('PREFIX', prefix));

    const first = await serve(config);
    t.teardown(() => void first.child.kill('SIGKILL'));
    const pair = sim.control.addMerchant({ merchantId: 'brand-1', shopIds: [SHOP], issuedAtMs: Date.now() - 600_000 });
    await importPair(first.admin, 'keeta', 'brand-1', pair, [SHOP]);
    const refreshed = await fetch(`${first.admin}/admin/upstreams/keeta/merchants/brand-1/refresh`, { method: 'POST' });
    t.is(refreshed.status, 200);
    await kill9(first.child); // no graceful anything
    const rotated = sim.control.merchant('brand-1')!;
    t.not(rotated.refreshToken, pair.refreshToken);

    const second = await serve(config);
    t.teardown(() => void second.child.kill('SIGKILL'));
    sim.control.reset();
    const res = await postJson(`${second.proxy}/keeta/order/get`, { orderViewId: 9, shopId: Number(SHOP) });
    t.is(res.json.code, 0, res.text);
    t.true(sim.control.counters().requests.at(-1)!.rawBody.includes(`"accessToken":"${rotated.accessToken}"`), 'the rotated access token is used');
    // And the rotated refresh token is the one the new process holds: it refreshes without reuse.
    const again = await fetch(`${second.admin}/admin/upstreams/keeta/merchants/brand-1/refresh`, { method: 'POST' });
    t.is(again.status, 200, await again.clone().text());
    t.is(sim.control.counters().refreshReuse, 0);
    t.is(sim.control.counters().refreshCalls, 1);
    await kill9(second.child);
  });
}
