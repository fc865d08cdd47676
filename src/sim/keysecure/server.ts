/** The KeySecure merchant open-platform simulator: startKeySecureSim() and its control object. */
import { ControlError, SimCore, type FailNextOptions, type RecordedRequest } from '../control.js';
import { asRecord, commonControlRoutes, requireString, requireStringArray } from '../control-routes.js';
import { startSimServer, type ControlRoute, type SimTls } from '../server-base.js';
import { type CallbackPushInput, type CallbackPushReport, pushCallback } from './callbacks.js';
import { answerKeySecure } from './handler.js';
import { KeySecureState } from './state.js';

export interface KeySecureSimOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (ephemeral). */
  port?: number;
  /** whitelist default: loopback ['127.0.0.1', '::1', '::ffff:127.0.0.1']. */
  apiKeys: Array<{ apiKey: string; apiSecret?: string; whitelist?: string[] }>;
  /** Lifetime of issued access tokens. Default 24 h. */
  tokenLifetimeMs?: number;
  /** Oldest accepted Timestamp, in ms behind the simulated clock. Default 60 000. */
  timestampWindowMs?: number;
  /** The `appId` in callback signatures. Default 'sim-callback-app'. */
  callbackAppId?: string;
  /** The callback signing secret. Default: the apiSecret of the key a push names (else the first key). */
  callbackSecret?: string;
  /** Serve HTTPS with this certificate and key (PEM); baseUrl is then https://. */
  tls?: SimTls;
}

export const DEFAULT_CALLBACK_APP_ID = 'sim-callback-app';

export interface KeySecureSimCounters {
  /** Every request to GET /open-api/v1/merchant/token (any outcome). */
  tokenCalls: number;
  requests: RecordedRequest[];
}

export interface KeySecureControl {
  setClockOffset(ms: number): void;
  setLatency(ms: number): void;
  failNext(count: number, options?: FailNextOptions): void;
  /** The next business requests fail one each, in this order. */
  failSequence(faults: readonly FailNextOptions[]): void;
  counters(): KeySecureSimCounters;
  reset(): void;
  clock(): { offsetMs: number; now: number };
  /** Every token of that Api-Key (all keys when omitted) answers 1007 from now on. */
  revokeTokens(apiKey?: string): void;
  /** Every token of that Api-Key (all keys when omitted) is expired from now on. */
  expireTokens(apiKey?: string): void;
  setWhitelist(apiKey: string, ips: string[]): void;
  /** POSTs a signed callback (Auth, Consumption, Card_update) and reports every answer and its time. */
  pushCallback(input: CallbackPushInput): Promise<CallbackPushReport>;
}

export interface KeySecureSim {
  /** 'http://127.0.0.1:PORT' (paths start with /open-api) */
  baseUrl: string;
  port: number;
  control: KeySecureControl;
  close(): Promise<void>;
}

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new TypeError(`${name} must be a number >= 0`);
  return value;
}

function optionalApiKey(body: unknown): string | undefined {
  const obj = asRecord(body);
  return obj['apiKey'] === undefined ? undefined : requireString(obj, 'apiKey');
}

function keySecureControlRoutes(control: KeySecureControl): ControlRoute[] {
  return [
    ...commonControlRoutes(control),
    {
      method: 'POST',
      pattern: /^\/tokens\/revoke$/,
      handle: (_p, body) => {
        control.revokeTokens(optionalApiKey(body));
        return { ok: true };
      },
    },
    {
      method: 'POST',
      pattern: /^\/tokens\/expire$/,
      handle: (_p, body) => {
        control.expireTokens(optionalApiKey(body));
        return { ok: true };
      },
    },
    {
      method: 'POST',
      pattern: /^\/callbacks$/,
      handle: async (_p, body) => {
        try {
          return await control.pushCallback(asRecord(body) as unknown as CallbackPushInput);
        } catch (err) {
          if (err instanceof TypeError) throw new ControlError(400, err.message);
          throw err;
        }
      },
    },
    {
      method: 'PUT',
      pattern: /^\/keys\/([^/]+)\/whitelist$/,
      handle: ([apiKey = ''], body) => {
        const ips = requireStringArray(asRecord(body), 'ips');
        control.setWhitelist(apiKey, ips);
        return { apiKey, ips };
      },
    },
  ];
}

export async function startKeySecureSim(opts: KeySecureSimOptions): Promise<KeySecureSim> {
  if (!Array.isArray(opts.apiKeys) || opts.apiKeys.length === 0) throw new TypeError('startKeySecureSim: apiKeys must list at least one key');
  const core = new SimCore();
  const state = new KeySecureState(
    nonNegative('tokenLifetimeMs', opts.tokenLifetimeMs, 24 * 60 * 60 * 1000),
    nonNegative('timestampWindowMs', opts.timestampWindowMs, 60_000),
  );
  for (const k of opts.apiKeys) state.addKey(k.apiKey, k.apiSecret, k.whitelist);
  const callbackAppId = opts.callbackAppId ?? DEFAULT_CALLBACK_APP_ID;
  if (typeof callbackAppId !== 'string' || callbackAppId === '') throw new TypeError('startKeySecureSim: callbackAppId must be a non-empty string');
  const secretFor = (apiKey: string | undefined): string => {
    if (opts.callbackSecret !== undefined) return opts.callbackSecret;
    const key = apiKey === undefined ? [...state.keys.values()][0]! : state.keys.get(apiKey);
    if (!key) throw new TypeError(`pushCallback: unknown apiKey ${JSON.stringify(apiKey)}`);
    if (key.apiSecret === undefined) throw new TypeError(`pushCallback: apiKey ${key.apiKey} has no apiSecret; give secret or callbackSecret`);
    return key.apiSecret;
  };
  const callbackContext = { appId: callbackAppId, secretFor, now: () => core.now() };

  const control: KeySecureControl = {
    setClockOffset: (ms) => core.setClockOffset(ms),
    setLatency: (ms) => core.setLatency(ms),
    failNext: (count, options) => core.failNext(count, options),
    failSequence: (faults) => core.failSequence(faults),
    counters: () => ({ tokenCalls: state.tokenCalls, requests: core.requests() }),
    reset: () => {
      state.tokenCalls = 0;
      core.clearRequests();
    },
    clock: () => ({ offsetMs: core.clockOffsetMs, now: core.now() }),
    revokeTokens: (apiKey) => state.revokeTokens(apiKey),
    expireTokens: (apiKey) => state.expireTokens(apiKey, core.now()),
    setWhitelist: (apiKey, ips) => {
      if (!state.keys.has(apiKey)) throw new ControlError(404, `unknown apiKey ${JSON.stringify(apiKey)}`);
      state.setWhitelist(apiKey, ips);
    },
    pushCallback: (input) => pushCallback(callbackContext, input),
  };

  const host = opts.host ?? '127.0.0.1';
  const running = await startSimServer({
    host,
    port: opts.port ?? 0,
    core,
    controlRoutes: keySecureControlRoutes(control),
    parseControlBody: (text) => JSON.parse(text) as unknown,
    answer: (req) => answerKeySecure(state, core, req),
    ...(opts.tls && { tls: opts.tls }),
  });
  return { baseUrl: `${running.scheme}://${running.urlHost}:${running.port}`, port: running.port, control, close: running.close };
}
