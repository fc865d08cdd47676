/**
 * `countersign sim keeta|keysecure --port N [--host 127.0.0.1] [--tls-cert F --tls-key F] [--json] [...]`
 *
 * Starts one simulator, prints its base URL and the seeded credentials, and runs until
 * SIGINT or SIGTERM. Bad usage throws a `SimUsageError` (message includes the usage text).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { SimTls } from './server-base.js';
import { startKeetaSim } from './keeta/server.js';
import type { OauthDelivery } from './keeta/state.js';
import type { WebhookRecipe } from './keeta/webhook-sig.js';
import { DEFAULT_CALLBACK_APP_ID, startKeySecureSim } from './keysecure/server.js';

export const SIM_USAGE = `usage:
  countersign sim keeta [--port N] [--host 127.0.0.1] [--app-id 3340612437] [--app-secret S]
                        [--merchant demo-brand] [--shops 466663,9007199254740993]
                        [--redirect-uri URL]... [--demo-accounts] [--oauth-delivery redirect|event|both]
                        [--event1-url URL] [--webhook-recipe url-query|url-concat|sorted|query]
                        [--tls-cert FILE --tls-key FILE] [--json]
  countersign sim keysecure [--port N] [--host 127.0.0.1] [--api-key K] [--api-secret S]
                        [--whitelist ip,ip] [--callback-app-id ID] [--callback-secret S]
                        [--tls-cert FILE --tls-key FILE] [--json]
  --tls-cert/--tls-key: serve HTTPS with this PEM certificate and key (a test CA's)`;

export class SimUsageError extends Error {
  constructor(problem: string) {
    super(`${problem}\n${SIM_USAGE}`);
    this.name = 'SimUsageError';
  }
}

export const SIM_DEFAULTS = {
  keeta: { appId: '3340612437', appSecret: 'sim-keeta-app-secret', merchant: 'demo-brand', shops: ['466663', '9007199254740993'] },
  keysecure: { apiKey: 'sim-api-key', apiSecret: 'sim-api-secret' },
} as const;

function parsePort(text: string | undefined): number {
  if (text === undefined) return 0;
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) throw new SimUsageError(`--port: not a port number: ${text}`);
  return Number(text);
}

function list(text: string | undefined): string[] | undefined {
  return text === undefined ? undefined : text.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

function waitForSignal(): Promise<string> {
  return new Promise((resolve) => {
    const onSignal = (signal: string): void => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

function print(json: boolean, info: Record<string, unknown>, lines: string[]): void {
  process.stdout.write(json ? `${JSON.stringify(info)}\n` : `${lines.join('\n')}\n`);
}

/** --tls-cert and --tls-key, both or neither, read as PEM. */
function readTls(certFile: string | undefined, keyFile: string | undefined): SimTls | undefined {
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined || keyFile === undefined) throw new SimUsageError('--tls-cert and --tls-key go together');
  const read = (flag: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new SimUsageError(`${flag}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  };
  return { cert: read('--tls-cert', certFile), key: read('--tls-key', keyFile) };
}

export async function runSimCli(argv: string[]): Promise<void> {
  const args = argv[0] === 'sim' ? argv.slice(1) : argv;
  const kind = args[0];
  if (kind !== 'keeta' && kind !== 'keysecure') throw new SimUsageError(`unknown simulator ${JSON.stringify(kind ?? '')}`);
  let values;
  try {
    values = parseArgs({
      args: args.slice(1),
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        json: { type: 'boolean' },
        'app-id': { type: 'string' },
        'app-secret': { type: 'string' },
        merchant: { type: 'string' },
        shops: { type: 'string' },
        'api-key': { type: 'string' },
        'api-secret': { type: 'string' },
        whitelist: { type: 'string' },
        'redirect-uri': { type: 'string', multiple: true },
        'demo-accounts': { type: 'boolean' },
        'oauth-delivery': { type: 'string' },
        'event1-url': { type: 'string' },
        'webhook-recipe': { type: 'string' },
        'callback-app-id': { type: 'string' },
        'callback-secret': { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    throw new SimUsageError((err as Error).message);
  }
  const host = values.host ?? '127.0.0.1';
  const port = parsePort(values.port);
  const json = values.json ?? false;
  const tls = readTls(values['tls-cert'], values['tls-key']);

  if (kind === 'keeta') {
    const appId = values['app-id'] ?? SIM_DEFAULTS.keeta.appId;
    const appSecret = values['app-secret'] ?? SIM_DEFAULTS.keeta.appSecret;
    const merchantId = values.merchant ?? SIM_DEFAULTS.keeta.merchant;
    const shopIds = list(values.shops) ?? [...SIM_DEFAULTS.keeta.shops];
    let sim;
    try {
      sim = await startKeetaSim({
        host,
        port,
        appId,
        appSecret,
        redirectUris: values['redirect-uri'] ?? [],
        ...(tls && { tls }),
        ...(values['oauth-delivery'] !== undefined ? { oauthDelivery: values['oauth-delivery'] as OauthDelivery } : {}),
        ...(values['webhook-recipe'] !== undefined ? { webhookRecipe: values['webhook-recipe'] as WebhookRecipe } : {}),
      });
    } catch (err) {
      if (err instanceof TypeError) throw new SimUsageError(err.message);
      throw err;
    }
    let pair;
    try {
      pair = sim.control.addMerchant({ merchantId, shopIds });
    } catch (err) {
      await sim.close();
      throw new SimUsageError(`--merchant/--shops: ${(err as Error).message}`);
    }
    try {
      if (values['event1-url'] !== undefined) sim.control.setCallbackUrl(1, values['event1-url']);
    } catch (err) {
      await sim.close();
      throw new SimUsageError(`--event1-url: ${(err as Error).message}`);
    }
    const accounts = values['demo-accounts'] ? sim.control.addDemoAccounts().map((a) => ({ merchantId: a.merchantId, brandName: a.brandName, shopCount: a.shopIds.length })) : [];
    const signal = waitForSignal();
    const controlUrl = `${sim.baseUrl.slice(0, -'/api/open'.length)}/_sim`;
    print(json, { simulator: 'keeta', baseUrl: sim.baseUrl, authorizeUrl: sim.authorizeUrl, controlUrl, appId, appSecret, merchant: { merchantId, shopIds, ...pair }, accounts }, [
      `Keeta simulator listening: ${sim.baseUrl}`,
      `authorize:    ${sim.authorizeUrl}`,
      `control:      ${controlUrl}`,
      `appId:        ${appId}`,
      `appSecret:    ${appSecret}`,
      `merchant:     ${merchantId} (shops ${shopIds.join(', ')})`,
      `accessToken:  ${pair.accessToken}`,
      `refreshToken: ${pair.refreshToken}`,
      `expiresIn:    ${pair.expiresIn}   issuedAtTime: ${pair.issuedAtTime}`,
      ...accounts.map((a) => `account:      ${a.merchantId} "${a.brandName}" (${a.shopCount} shops, not yet authorised)`),
      'Ctrl-C to stop.',
    ]);
    await signal;
    await sim.close();
    return;
  }

  const apiKey = values['api-key'] ?? SIM_DEFAULTS.keysecure.apiKey;
  const apiSecret = values['api-secret'] ?? SIM_DEFAULTS.keysecure.apiSecret;
  const whitelist = list(values.whitelist);
  const callbackAppId = values['callback-app-id'] ?? DEFAULT_CALLBACK_APP_ID;
  const sim = await startKeySecureSim({
    host,
    port,
    apiKeys: [{ apiKey, apiSecret, ...(whitelist ? { whitelist } : {}) }],
    callbackAppId,
    ...(tls && { tls }),
    ...(values['callback-secret'] !== undefined ? { callbackSecret: values['callback-secret'] } : {}),
  });
  const signal = waitForSignal();
  const controlUrl = `${sim.baseUrl}/_sim`;
  print(json, { simulator: 'keysecure', baseUrl: sim.baseUrl, controlUrl, apiKey, apiSecret, whitelist: whitelist ?? null, callbackAppId }, [
    `KeySecure simulator listening: ${sim.baseUrl}`,
    `control:    ${controlUrl}`,
    `Api-Key:    ${apiKey}`,
    `apiSecret:  ${apiSecret}`,
    `whitelist:  ${whitelist ? whitelist.join(', ') : 'loopback (127.0.0.1, ::1, ::ffff:127.0.0.1)'}`,
    `callbacks:  appId ${callbackAppId}, POST ${controlUrl}/callbacks to push one`,
    'Ctrl-C to stop.',
  ]);
  await signal;
  await sim.close();
}
