/**
 * `npm run demo`: both simulators on loopback, the gateway in front of them with a file store
 * under ./.demo, a Keeta merchant seeded through the admin API, and curl commands that work as
 * printed. Ctrl-C stops everything.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildApp } from './app.js';
import { loadConfig } from './config/load.js';
import { createLogger } from './logger.js';
import { listenApp } from './server.js';
import { SIM_DEFAULTS, startKeetaSim, startKeySecureSim } from './sim/index.js';

const DIR = resolve(process.env.COUNTERSIGN_DEMO_DIR ?? '.demo');
const PORT = process.env.PORT ?? '8080';
const ADMIN_PORT = process.env.ADMIN_PORT ?? '9090';
const MERCHANT = SIM_DEFAULTS.keeta.merchant;
const SHOPS = [...SIM_DEFAULTS.keeta.shops];

async function main(): Promise<void> {
  const keeta = await startKeetaSim({ appId: SIM_DEFAULTS.keeta.appId, appSecret: SIM_DEFAULTS.keeta.appSecret });
  const keysecure = await startKeySecureSim({ apiKeys: [{ apiKey: SIM_DEFAULTS.keysecure.apiKey, apiSecret: SIM_DEFAULTS.keysecure.apiSecret }] });

  // A fresh store each run: the simulators start empty, so old tokens would mean nothing to them.
  mkdirSync(DIR, { recursive: true });
  rmSync(join(DIR, 'tokens.json'), { force: true });
  const configFile = join(DIR, 'countersign.yaml');
  // Secrets as mounted files (the Kubernetes form), so `countersign sign --config` and
  // `check-config` work on this config as they are, with no environment to set.
  mkdirSync(join(DIR, 'secrets'), { recursive: true });
  writeFileSync(join(DIR, 'secrets', 'keeta-app-secret'), `${SIM_DEFAULTS.keeta.appSecret}\n`);
  writeFileSync(join(DIR, 'secrets', 'keysecure-api-key'), `${SIM_DEFAULTS.keysecure.apiKey}\n`);
  writeFileSync(
    configFile,
    `# Written by npm run demo: the gateway in front of the local simulators.
listen:
  proxy: 127.0.0.1:${PORT}
  admin: 127.0.0.1:${ADMIN_PORT}
store:
  type: file
  path: ./tokens.json
upstreams:
  keeta:
    type: keeta
    baseUrl: ${keeta.baseUrl}
    appId: ${SIM_DEFAULTS.keeta.appId}
    appSecretFile: ./secrets/keeta-app-secret
    tokenErrorCodes: [115000105]
  keysecure-hk:
    type: keysecure
    baseUrl: ${keysecure.baseUrl}
    apiKeyFile: ./secrets/keysecure-api-key
    timezone: UTC+8
    language: en_US
`,
  );
  const config = loadConfig(configFile, process.env);
  // One access-log line per request, as in production (LOG_LEVEL=warn quietens it).
  const log = createLogger({ level: process.env.LOG_LEVEL || 'info' });
  const app = buildApp({ config, logger: log });
  await app.start();
  const listening = await listenApp(app, config.listen);

  // Seed the Keeta merchant exactly as an operator would: through the admin API.
  const pair = keeta.control.addMerchant({ merchantId: MERCHANT, shopIds: SHOPS });
  const seeded = await fetch(`${listening.adminUrl}/admin/upstreams/keeta/merchants/${MERCHANT}/token`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: `{"accessToken":${JSON.stringify(pair.accessToken)},"refreshToken":${JSON.stringify(pair.refreshToken)},"expiresIn":${pair.expiresIn},"issuedAtTime":${pair.issuedAtTime},"shopIds":[${SHOPS.join(',')}]}`,
  });
  if (seeded.status !== 204) throw new Error(`seeding the demo merchant failed: HTTP ${seeded.status} ${await seeded.text()}`);

  const p = listening.proxyUrl;
  const a = listening.adminUrl;
  const cardNo = await seedCard(p);
  process.stdout.write(`
Countersign demo is running.
  proxy  ${p}      (config: ${configFile}, tokens: ${join(DIR, 'tokens.json')})
  admin  ${a}
  Keeta simulator      ${keeta.baseUrl}   (merchant "${MERCHANT}", shops ${SHOPS.join(', ')})
  KeySecure simulator  ${keysecure.baseUrl}

Try these (each answers "code":0):

  # Keeta: the proxy finds the merchant by shopId, adds appId, timestamp, accessToken and sig
  curl -s -X POST ${p}/keeta/order/get -H 'content-type: application/json' -d '{"orderViewId": 756823555555859, "shopId": ${SHOPS[0]}}'

  # Keeta: an int64 shopId above 2^53 is kept exactly
  curl -s -X POST ${p}/keeta/order/confirm -H 'content-type: application/json' -d '{"orderViewId": 1234567890123456789, "shopId": ${SHOPS[1]}}'

  # KeySecure: the proxy fetches an Access-Token and adds Api-Key, Timestamp, Access-Token
  curl -s -X POST ${p}/keysecure-hk/open-api/v1/card/list -H 'content-type: application/json' -d '{"page": 0, "size": 10}'

  # KeySecure: GET with path and query passed through
  curl -s '${p}/keysecure-hk/open-api/v1/card/${cardNo}/detail'

  # Debug a Keeta signature: the exact string hashed (secret shown as <appSecret>) and the sig
  npx countersign sign --config ${configFile} --upstream keeta --path /order/get --merchant ${MERCHANT} --body '{"orderViewId": 1, "shopId": ${SHOPS[0]}}'

Operator views (open them, or fetch them with curl -s):
  ${a}/admin/tokens        token states, expiry, shop counts (never a token)
  ${a}/metrics             Prometheus metrics, e.g. countersign_requests_total
  ${keeta.baseUrl.replace(/\/api\/open$/, '')}/_sim/counters   what the Keeta simulator received

Ctrl-C stops everything.
`);

  const stop = async () => {
    process.stdout.write('\nstopping…\n');
    await listening.shutdown(3000);
    await Promise.all([keeta.close(), keysecure.close()]);
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

/** A cardholder and a virtual card in the KeySecure simulator, made through the proxy itself. */
async function seedCard(proxyUrl: string): Promise<string> {
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${proxyUrl}/keysecure-hk/open-api/v1${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const json = (await res.json()) as { code: number; data?: Record<string, string> };
    if (json.code !== 0 || !json.data) throw new Error(`seeding the demo card failed at ${path}: ${JSON.stringify(json)}`);
    return json.data;
  };
  const holder = await post('/cardholder/apply', { cardholder_unique_no: 'demo-holder-1', sumsub_share_token: 'demo' });
  const card = await post('/card/apply', { card_bin_no: 'DEMOBIN', cardholder_no: holder.cardholder_no, card_unique_no: 'demo-card-1', card_type: 'Virtual' });
  return card.card_no!;
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
