import type { ExecutionContext } from 'ava';
import type { Clock } from '../../src/core/clock.js';
import { KEETA_SIM_CODES, startKeetaSim, type KeetaSim, type KeetaSimOptions } from '../../src/sim/index.js';
import type { TokenStore } from '../../src/tokens/types.js';
import { startGateway, type TestGateway } from './gateway.js';

export const KEETA_APP_ID = '3340612437';
export const KEETA_SECRET = 'keeta-test-app-secret-5e1f';
export const DAY = 86_400_000;

export interface KeetaSetup {
  sim: KeetaSim;
  gw: TestGateway;
  /** Seed a merchant in the simulator and import its pair through the admin API. */
  addMerchant(merchant: string, shopIds: string[], opts?: { expiresInSec?: number; issuedAgoMs?: number }): Promise<{ accessToken: string; refreshToken: string; expiresIn: number; issuedAtTime: number }>;
}

export async function keetaSetup(
  t: ExecutionContext,
  opts: { store?: TokenStore; clock?: Clock; sim?: Partial<KeetaSimOptions>; upstreamExtra?: string; refreshBefore?: string } = {},
): Promise<KeetaSetup> {
  const sim = await startKeetaSim({ appId: KEETA_APP_ID, appSecret: KEETA_SECRET, ...opts.sim });
  const gw = await startGateway(
    `upstreams:
  keeta:
    type: keeta
    baseUrl: ${sim.baseUrl}
    appId: ${KEETA_APP_ID}
    appSecret: ${KEETA_SECRET}
    refreshBefore: ${opts.refreshBefore ?? '4d'}
    tokenErrorCodes: [${KEETA_SIM_CODES.ACCESS_TOKEN_INVALID}]
${opts.upstreamExtra ?? ''}`,
    { ...(opts.store && { store: opts.store }), ...(opts.clock && { clock: opts.clock }) },
  );
  t.teardown(async () => {
    await gw.close();
    await sim.close();
  });
  return {
    sim,
    gw,
    async addMerchant(merchant, shopIds, o = {}) {
      const pair = sim.control.addMerchant({
        merchantId: merchant,
        shopIds,
        ...(o.expiresInSec !== undefined && { expiresInSec: o.expiresInSec }),
        // Issued a while ago, so the 60 s spacing between renewals does not hold back the first one.
        issuedAtMs: Date.now() - (o.issuedAgoMs ?? 10 * 60_000),
      });
      await importPair(gw.adminUrl, 'keeta', merchant, pair, shopIds);
      return pair;
    },
  };
}

export async function importPair(
  adminUrl: string,
  upstream: string,
  merchant: string,
  pair: { accessToken: string; refreshToken: string; expiresIn: number; issuedAtTime: number },
  shopIds: string[],
): Promise<void> {
  const res = await fetch(`${adminUrl}/admin/upstreams/${upstream}/merchants/${merchant}/token`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: `{"accessToken":"${pair.accessToken}","refreshToken":"${pair.refreshToken}","expiresIn":${pair.expiresIn},"issuedAtTime":${pair.issuedAtTime},"shopIds":[${shopIds.join(',')}]}`,
  });
  if (res.status !== 204) throw new Error(`import failed: ${res.status} ${await res.text()}`);
}

/** The suite-wide promise: no refresh token is ever sent twice. */
export function assertNoRefreshReuse(t: ExecutionContext, sim: KeetaSim): void {
  t.is(sim.control.counters().refreshReuse, 0, 'a refresh token was sent twice');
}
