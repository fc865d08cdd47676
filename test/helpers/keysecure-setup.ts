import type { ExecutionContext } from 'ava';
import { startKeySecureSim, type KeySecureSim, type KeySecureSimOptions } from '../../src/sim/index.js';
import type { TokenStore } from '../../src/tokens/types.js';
import { startGateway, type TestGateway } from './gateway.js';

export const KS_API_KEY = 'ks-test-api-key-0c7d';
export const KS_API_SECRET = 'ks-test-api-secret-91ab';

export async function keySecureSetup(
  t: ExecutionContext,
  opts: { sim?: Partial<KeySecureSimOptions>; upstreamExtra?: string; store?: TokenStore } = {},
): Promise<{ sim: KeySecureSim; gw: TestGateway }> {
  const sim = await startKeySecureSim({ apiKeys: [{ apiKey: KS_API_KEY, apiSecret: KS_API_SECRET }], ...opts.sim });
  const gw = await startGateway(
    `upstreams:
  keysecure-hk:
    type: keysecure
    baseUrl: ${sim.baseUrl}
    apiKey: ${KS_API_KEY}
    apiSecret: ${KS_API_SECRET}
    timezone: UTC+8
    language: en_US
${opts.upstreamExtra ?? ''}`,
    { ...(opts.store && { store: opts.store }) },
  );
  t.teardown(async () => {
    await gw.close();
    await sim.close();
  });
  return { sim, gw };
}

/** Answer codes the simulator gave, in order, leaving out the token endpoint. */
export function businessCodes(sim: KeySecureSim): Array<number | string> {
  return sim.control
    .counters()
    .requests.filter((r) => !r.path.startsWith('/open-api/v1/merchant/token'))
    .map((r) => r.code);
}
