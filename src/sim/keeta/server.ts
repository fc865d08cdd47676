/** The Keeta Open Platform simulator: startKeetaSim() and its control object. */
import { SimCore, type FailNextOptions, type RecordedRequest } from '../control.js';
import { asRecord, commonControlRoutes, optionalNumber, requireString, requireStringArray } from '../control-routes.js';
import { ControlError } from '../control.js';
import { startSimServer, type ControlRoute } from '../server-base.js';
import { answerKeeta, KEETA_BASE_PATH } from './handler.js';
import { parseJson, toPlain } from './json.js';
import { KeetaState, type KeetaCounters, type TokenResponseShape } from './state.js';
import { KeetaTokenStore, type IssuedPair, type KeetaMerchantView } from './tokens.js';

export interface KeetaSimOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (ephemeral). */
  port?: number;
  /** Decimal digits, e.g. '3340612437'. */
  appId: string;
  appSecret: string;
  /** |now - timestamp| must be <= this many seconds. Default 300. */
  timestampWindowSec?: number;
  /** Shape of the /base/oauth/token answer. Default 'flat'. */
  tokenResponseShape?: TokenResponseShape;
  /** Minimum time between two refreshes of one merchant. Default 60 000. */
  refreshSpacingMs?: number;
  /** How long the previous access token stays valid after a refresh. Default 60 min. */
  oldTokenGraceMs?: number;
  /** expiresIn of issued tokens. Default 7 776 000 (90 days). */
  tokenLifetimeSec?: number;
}

export interface AddMerchantInput {
  merchantId: string;
  /** int64 decimal strings. */
  shopIds: string[];
  expiresInSec?: number;
  issuedAtMs?: number;
}

export interface KeetaSimCounters extends KeetaCounters {
  requests: RecordedRequest[];
}

export interface KeetaControl {
  setClockOffset(ms: number): void;
  setLatency(ms: number): void;
  failNext(count: number, options?: FailNextOptions): void;
  counters(): KeetaSimCounters;
  reset(): void;
  /** Simulated clock: current offset and time. */
  clock(): { offsetMs: number; now: number };
  addMerchant(input: AddMerchantInput): IssuedPair;
  issueAuthCode(merchantId: string): string;
  expireAccessToken(merchantId: string): void;
  revokeTokens(merchantId: string): void;
  setTokenResponseShape(shape: TokenResponseShape): void;
  /** Accept signatures made with any of these secrets (an app-secret rotation window); [new] ends it. */
  setAppSecrets(secrets: string[]): void;
  merchant(merchantId: string): KeetaMerchantView | undefined;
}

export interface KeetaSim {
  /** e.g. 'http://127.0.0.1:PORT/api/open' */
  baseUrl: string;
  port: number;
  control: KeetaControl;
  close(): Promise<void>;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new TypeError(`${name} must be a number >= 0`);
  return value;
}

function checkShape(shape: unknown): TokenResponseShape {
  if (shape !== 'flat' && shape !== 'wrapped') throw new TypeError(`token response shape must be 'flat' or 'wrapped', got ${JSON.stringify(shape)}`);
  return shape;
}

function createControl(state: KeetaState, core: SimCore): KeetaControl {
  return {
    setClockOffset: (ms) => core.setClockOffset(ms),
    setLatency: (ms) => core.setLatency(ms),
    failNext: (count, options) => core.failNext(count, options),
    counters: () => ({ ...state.counters, requests: core.requests() }),
    reset: () => {
      state.resetCounters();
      core.clearRequests();
    },
    clock: () => ({ offsetMs: core.clockOffsetMs, now: core.now() }),
    addMerchant: (input) => {
      if (typeof input !== 'object' || input === null) throw new TypeError('addMerchant: input object required');
      return state.tokens.addMerchant(input.merchantId, input.shopIds, core.now(), input.expiresInSec, input.issuedAtMs);
    },
    issueAuthCode: (merchantId) => state.tokens.issueAuthCode(merchantId, core.now()),
    expireAccessToken: (merchantId) => state.tokens.expireAccessToken(merchantId, core.now()),
    revokeTokens: (merchantId) => state.tokens.revokeTokens(merchantId),
    setTokenResponseShape: (shape) => {
      state.settings.tokenResponseShape = checkShape(shape);
    },
    setAppSecrets: (secrets) => {
      if (!Array.isArray(secrets) || secrets.length === 0 || !secrets.every((s) => typeof s === 'string' && s !== '')) {
        throw new TypeError('setAppSecrets: a non-empty array of non-empty strings is required');
      }
      state.settings.appSecrets = [...secrets];
    },
    merchant: (merchantId) => state.tokens.view(merchantId, core.now()),
  };
}

function shopIdsFrom(value: unknown): string[] {
  if (!Array.isArray(value)) throw new ControlError(400, 'shopIds: an array is required');
  return value.map((v) => {
    if (typeof v === 'string') return v;
    if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
    throw new ControlError(400, `shopIds: ${JSON.stringify(v)} is not an int64 id`);
  });
}

function keetaControlRoutes(control: KeetaControl): ControlRoute[] {
  const existing = (id: string): KeetaMerchantView => {
    const view = control.merchant(id);
    if (!view) throw new ControlError(404, `unknown merchant ${JSON.stringify(id)}`);
    return view;
  };
  return [
    ...commonControlRoutes(control),
    {
      method: 'POST',
      pattern: /^\/merchants$/,
      handle: (_p, body) => {
        const obj = asRecord(body);
        const input: AddMerchantInput = { merchantId: requireString(obj, 'merchantId'), shopIds: shopIdsFrom(obj['shopIds']) };
        const expiresInSec = optionalNumber(obj, 'expiresInSec');
        if (expiresInSec !== undefined) input.expiresInSec = expiresInSec;
        const issuedAtMs = optionalNumber(obj, 'issuedAtMs');
        if (issuedAtMs !== undefined) input.issuedAtMs = issuedAtMs;
        return control.addMerchant(input);
      },
    },
    { method: 'GET', pattern: /^\/merchants\/([^/]+)$/, handle: ([id = '']) => existing(id) },
    {
      method: 'POST',
      pattern: /^\/merchants\/([^/]+)\/auth-code$/,
      handle: ([id = '']) => ({ code: control.issueAuthCode(id) }),
    },
    {
      method: 'POST',
      pattern: /^\/merchants\/([^/]+)\/expire-access-token$/,
      handle: ([id = '']) => {
        control.expireAccessToken(id);
        return { ok: true };
      },
    },
    {
      method: 'POST',
      pattern: /^\/merchants\/([^/]+)\/revoke$/,
      handle: ([id = '']) => {
        control.revokeTokens(id);
        return { ok: true };
      },
    },
    {
      method: 'POST',
      pattern: /^\/app-secrets$/,
      handle: (_p, body) => {
        const secrets = requireStringArray(asRecord(body), 'secrets');
        try {
          control.setAppSecrets(secrets);
        } catch (err) {
          throw new ControlError(400, (err as Error).message);
        }
        return { count: secrets.length };
      },
    },
    {
      method: 'POST',
      pattern: /^\/token-response-shape$/,
      handle: (_p, body) => {
        const shape = asRecord(body)['shape'];
        try {
          control.setTokenResponseShape(checkShape(shape));
        } catch (err) {
          throw new ControlError(400, (err as Error).message);
        }
        return { shape };
      },
    },
  ];
}

export async function startKeetaSim(opts: KeetaSimOptions): Promise<KeetaSim> {
  if (typeof opts.appId !== 'string' || !/^\d+$/.test(opts.appId)) throw new TypeError('startKeetaSim: appId must be a string of decimal digits');
  if (typeof opts.appSecret !== 'string' || opts.appSecret === '') throw new TypeError('startKeetaSim: appSecret is required');
  const core = new SimCore();
  const tokens = new KeetaTokenStore({
    tokenLifetimeSec: positive('tokenLifetimeSec', opts.tokenLifetimeSec, 7_776_000),
    refreshSpacingMs: positive('refreshSpacingMs', opts.refreshSpacingMs, 60_000),
    oldTokenGraceMs: positive('oldTokenGraceMs', opts.oldTokenGraceMs, 60 * 60 * 1000),
  });
  const state = new KeetaState(
    {
      appId: opts.appId,
      appSecret: opts.appSecret,
      appSecrets: [opts.appSecret],
      timestampWindowSec: positive('timestampWindowSec', opts.timestampWindowSec, 300),
      tokenResponseShape: checkShape(opts.tokenResponseShape ?? 'flat'),
    },
    tokens,
  );
  const control = createControl(state, core);
  const host = opts.host ?? '127.0.0.1';
  const running = await startSimServer({
    host,
    port: opts.port ?? 0,
    core,
    controlRoutes: keetaControlRoutes(control),
    parseControlBody: (text) => toPlain(parseJson(text)),
    answer: (req) => answerKeeta(state, core, req),
  });
  return {
    baseUrl: `http://${running.urlHost}:${running.port}${KEETA_BASE_PATH}`,
    port: running.port,
    control,
    close: running.close,
  };
}
