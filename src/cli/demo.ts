/**
 * `npm run demo`: both simulators on loopback, the gateway in front of them with a file store
 * under ./.demo, a Keeta merchant seeded through the admin API, and curl commands that work as
 * printed. The ingress listener is on too: at startup a merchant is connected through the
 * simulator's authorize page, the simulators push an order webhook and a KeySecure Auth
 * callback, and a small in-process target prints what the gateway delivered. Ctrl-C stops
 * everything.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { buildApp } from '../app/app.js';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../observability/logger.js';
import { listenApp } from '../app/server.js';
import { DEFAULT_CALLBACK_APP_ID, DEMO_ACCOUNTS, SIM_DEFAULTS, startKeetaSim, startKeySecureSim } from '../sim/index.js';

let DIR = resolve(process.env.COUNTERSIGN_DEMO_DIR ?? '.demo');
/** Set when the directory is this run's own (another demo holds the usual one): removed at exit. */
let ownDir = false;
const PORT = process.env.PORT ?? '8080';
const ADMIN_PORT = process.env.ADMIN_PORT ?? '9090';
const INGRESS_PORT = process.env.INGRESS_PORT ?? '8443';
const MERCHANT = SIM_DEFAULTS.keeta.merchant;
const SHOPS = [...SIM_DEFAULTS.keeta.shops];

/** A port that is free right now (the ingress URL must be known before the config is written). */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((r) => probe.close(() => r()));
  return port;
}

/** The internal service the gateway delivers pushes to: prints each one and accepts it. */
async function startDeliveryTarget(): Promise<{ url: string; server: Server; received: string[] }> {
  const received: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const h = (name: string) => String(req.headers[name] ?? '-');
      const line = `[demo target] ${req.method} ${req.url}  upstream=${h('x-countersign-upstream')} event=${h('x-countersign-event')} message=${h('x-countersign-message-id')} merchant=${h('x-countersign-merchant')} verified=${h('x-countersign-verified')}\n               body: ${Buffer.concat(chunks).toString('utf8')}`;
      received.push(line);
      if (received.length > 2) process.stdout.write(`${line}\n`);
      res.setHeader('content-type', 'application/json');
      // A KeySecure Auth is decided by this answer: the demo approves every authorization.
      res.end(req.url === '/keysecure/auth' ? '{"code":0,"message":""}' : '{"ok":true}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, received };
}

/** Whether 127.0.0.1:`port` can be bound right now (port 0 always can). */
async function portIsFree(port: number): Promise<boolean> {
  if (port === 0) return true;
  const probe = createServer();
  return new Promise<boolean>((resolveFree) => {
    probe.once('error', () => resolveFree(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolveFree(true)));
  });
}

/**
 * Fails before anything under the demo directory is touched when a port is taken: a second
 * `npm run demo` must not empty the running demo's token file or rewrite its config.
 */
async function checkPorts(): Promise<void> {
  const wanted: Array<[string, string]> = [['PORT', PORT], ['ADMIN_PORT', ADMIN_PORT], ['INGRESS_PORT', INGRESS_PORT]];
  const taken: string[] = [];
  for (const [name, value] of wanted) {
    const port = Number(value);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${name}=${value} is not a port number`);
    if (!(await portIsFree(port))) taken.push(`127.0.0.1:${port} (${name})`);
  }
  if (taken.length) {
    throw new Error(
      `${taken.join(', ')} already in use, perhaps by another demo; nothing was changed under ${DIR}.\n` +
        `  Stop the other process, or run this one on free ports: PORT=0 ADMIN_PORT=0 INGRESS_PORT=0 npm run demo`,
    );
  }
}

/** Whether a process with this pid is alive (signal 0 checks without sending anything). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Claims the demo directory for this process. When a demo that is still running holds it, this
 * one gets a directory of its own beside it, so the first demo's config and tokens stay as they are.
 */
function claimDir(): void {
  const pidFile = () => join(DIR, 'demo.pid');
  let holder = NaN;
  try {
    holder = Number(readFileSync(pidFile(), 'utf8').trim());
  } catch {
    // No pid file: nobody holds the directory.
  }
  if (Number.isInteger(holder) && holder !== process.pid && alive(holder)) {
    const own = `${DIR}-${process.pid}`;
    process.stdout.write(`${DIR} belongs to the demo running as pid ${holder}; this demo uses ${own}\n`);
    DIR = own;
    ownDir = true;
  }
  mkdirSync(DIR, { recursive: true });
  writeFileSync(pidFile(), `${process.pid}\n`);
}

async function main(): Promise<void> {
  await checkPorts();
  claimDir();
  const ingressPort = INGRESS_PORT === '0' ? await freePort() : Number(INGRESS_PORT);
  const ingress = `http://127.0.0.1:${ingressPort}`;
  const redirectUri = `${ingress}/oauth/keeta/callback`;
  const keeta = await startKeetaSim({ appId: SIM_DEFAULTS.keeta.appId, appSecret: SIM_DEFAULTS.keeta.appSecret, redirectUris: [redirectUri] });
  const keysecure = await startKeySecureSim({ apiKeys: [{ apiKey: SIM_DEFAULTS.keysecure.apiKey, apiSecret: SIM_DEFAULTS.keysecure.apiSecret }] });
  const target = await startDeliveryTarget();
  keeta.control.addDemoAccounts();
  keeta.control.setCallbackUrl(1, `${ingress}/hooks/keeta`);

  // A fresh store each run: the simulators start empty, so old tokens would mean nothing to them.
  rmSync(join(DIR, 'tokens.json'), { force: true });
  const configFile = join(DIR, 'countersign.yaml');
  // Secrets as mounted files (the Kubernetes form), so `countersign sign --config` and
  // `check-config` work on this config as they are, with no environment to set.
  mkdirSync(join(DIR, 'secrets'), { recursive: true });
  writeFileSync(join(DIR, 'secrets', 'keeta-app-secret'), `${SIM_DEFAULTS.keeta.appSecret}\n`);
  writeFileSync(join(DIR, 'secrets', 'keysecure-api-key'), `${SIM_DEFAULTS.keysecure.apiKey}\n`);
  writeFileSync(join(DIR, 'secrets', 'keysecure-api-secret'), `${SIM_DEFAULTS.keysecure.apiSecret}\n`);
  writeFileSync(
    configFile,
    `# Written by npm run demo: the gateway in front of the local simulators.
listen:
  proxy: 127.0.0.1:${PORT}
  admin: 127.0.0.1:${ADMIN_PORT}
  ingress: 127.0.0.1:${ingressPort}
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
    oauth:
      authorizeUrl: ${keeta.authorizeUrl}
      redirectUri: ${redirectUri}
    webhooks:
      url: ${ingress}/hooks/keeta
      verify: enforce
      sourceIps: [127.0.0.1]      # the simulator pushes from loopback; production keeps "documented"
      deliver:
        - events: [1001, 1002, 1004]
          url: ${target.url}/keeta/orders
        - events: ["*"]
          url: ${target.url}/keeta/other
  keysecure-hk:
    type: keysecure
    baseUrl: ${keysecure.baseUrl}
    apiKeyFile: ./secrets/keysecure-api-key
    apiSecretFile: ./secrets/keysecure-api-secret
    timezone: UTC+8
    language: en_US
    callbacks:
      verify: enforce
      appId: ${DEFAULT_CALLBACK_APP_ID}
      deliver:
        - actions: [Auth]
          url: ${target.url}/keysecure/auth
          timeout: 700ms
        - actions: ["*"]
          url: ${target.url}/keysecure/events
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
  const simRoot = keeta.baseUrl.replace(/\/api\/open$/, '');
  const cardNo = await seedCard(p);
  const connected = await connectChain(a);
  const chain = keeta.control.merchant(DEMO_ACCOUNTS.chain.merchantId)!;
  const lastShop = chain.shopIds[chain.shopIds.length - 1]!;
  const order = keeta.control.orderEvent('placed', { shopId: lastShop, orderViewId: '1234567890123456789' });
  const pushed = await keeta.control.pushWebhook({ url: `${ingress}/hooks/keeta`, ...order });
  const auth = await keysecure.control.pushCallback({ url: `${ingress}/hooks/keysecure-hk`, action: 'Auth' });
  const store = keeta.control.merchant(DEMO_ACCOUNTS.store.merchantId)!;

  process.stdout.write(`
Countersign demo is running.
  proxy    ${p}      (config: ${configFile}, tokens: ${join(DIR, 'tokens.json')})
  admin    ${a}
  ingress  ${listening.ingressUrl}   (OAuth callback, Keeta webhooks, KeySecure callbacks)
  Keeta simulator      ${keeta.baseUrl}   (merchant "${MERCHANT}", shops ${SHOPS.join(', ')})
  KeySecure simulator  ${keysecure.baseUrl}

Done at startup through the ingress:
  connected ${connected}
  Keeta order webhook 1001 (shop ${lastShop}) answered ${pushed.answers[0]?.body} and was delivered:
${target.received[0] ?? '  (nothing delivered)'}
  KeySecure Auth callback answered ${auth.answers[0]?.body} in ${auth.answers[0]?.ms} ms (budget 800 ms), delivered:
${target.received[1] ?? '  (nothing delivered)'}

Try these (each answers "code":0):

  # Keeta: the proxy finds the merchant by shopId, adds appId, timestamp, accessToken and sig
  curl -s -X POST ${p}/keeta/order/get -H 'content-type: application/json' -d '{"orderViewId": 756823555555859, "shopId": ${SHOPS[0]}}'

  # Keeta: an int64 shopId above 2^53 is kept exactly
  curl -s -X POST ${p}/keeta/order/confirm -H 'content-type: application/json' -d '{"orderViewId": 1234567890123456789, "shopId": ${SHOPS[1]}}'

  # Keeta: the merchant connected at startup, by a shop from its last page of shops (no import)
  curl -s -X POST ${p}/keeta/order/get -H 'content-type: application/json' -d '{"orderViewId": 1234567890123456789, "shopId": ${lastShop}}'

  # KeySecure: the proxy fetches an Access-Token and adds Api-Key, Timestamp, Access-Token
  curl -s -X POST ${p}/keysecure-hk/open-api/v1/card/list -H 'content-type: application/json' -d '{"page": 0, "size": 10}'

  # KeySecure: GET with path and query passed through
  curl -s '${p}/keysecure-hk/open-api/v1/card/${cardNo}/detail'

  # Debug a Keeta signature: the exact string hashed (secret shown as <appSecret>) and the sig
  npx countersign sign --config ${configFile} --upstream keeta --path /order/get --merchant ${MERCHANT} --body '{"orderViewId": 1, "shopId": ${SHOPS[0]}}'

Connect a merchant yourself (the answer's "url" is Keeta's authorize page; open it in a browser,
pick "${store.brandName}" and press Authorize: the browser lands on the gateway's "Connected" page):

  curl -s -X POST ${a}/admin/upstreams/keeta/authorizations

Push as the upstreams do (the simulators sign; each answers "accepted":true, and the demo target
prints the delivery below):

  curl -s -X POST ${simRoot}/_sim/order-events -H 'content-type: application/json' -d '{"url": "${ingress}/hooks/keeta", "kind": "accepted", "shopId": "${lastShop}", "orderViewId": "1234567890123456789"}'
  curl -s -X POST ${keysecure.baseUrl}/_sim/callbacks -H 'content-type: application/json' -d '{"url": "${ingress}/hooks/keysecure-hk", "action": "Card_update"}'

Operator views (open them, or fetch them with curl -s):
  ${a}/console             the operators' console: merchants, states, connect, refresh, forget
  ${a}/admin/tokens        token states, expiry, shop counts (never a token)
  ${a}/metrics             Prometheus metrics, e.g. countersign_requests_total, countersign_inbound_total
  ${simRoot}/_sim/counters   what the Keeta simulator received

Ctrl-C stops everything.
`);

  const stop = async () => {
    process.stdout.write('\nstopping…\n');
    await listening.shutdown(3000);
    target.server.closeAllConnections();
    await Promise.all([keeta.close(), keysecure.close(), new Promise((r) => target.server.close(r))]);
    rmSync(ownDir ? DIR : join(DIR, 'demo.pid'), { force: true, recursive: ownDir });
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

/**
 * Connects the demo chain as a merchant's browser would: the link from the admin API, the
 * authorize page, Authorize, and the redirect to the gateway's callback. Returns what the
 * gateway's page says.
 */
async function connectChain(adminUrl: string): Promise<string> {
  const created = await fetch(`${adminUrl}/admin/upstreams/keeta/authorizations`, { method: 'POST' });
  if (created.status !== 200) throw new Error(`authorization link failed: HTTP ${created.status} ${await created.text()}`);
  const { url } = (await created.json()) as { url: string };
  const link = new URL(url);
  const form = new URLSearchParams(link.search);
  form.set('merchantId', DEMO_ACCOUNTS.chain.merchantId);
  form.set('decision', 'authorize');
  const decided = await fetch(`${link.origin}${link.pathname}`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
  const back = decided.headers.get('location');
  if (decided.status !== 302 || !back) throw new Error(`the authorize page did not redirect: HTTP ${decided.status}`);
  const page = await (await fetch(back)).text();
  const text = (id: string) => new RegExp(`id="${id}">([^<]*)<`).exec(page)?.[1] ?? '?';
  if (!/<h1>Connected<\/h1>/.test(page)) throw new Error('connecting the demo chain failed');
  return `"${text('brand')}" with ${text('shops')} (authorize page → ${new URL(back).origin}${new URL(back).pathname})`;
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
