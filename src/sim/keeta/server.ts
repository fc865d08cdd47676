/** The Keeta Open Platform simulator: startKeetaSim() and its control object. */
import { SimCore, type FailNextOptions, type RecordedRequest } from '../control.js';
import { asRecord, commonControlRoutes, optionalNumber, optionalString, requireString, requireStringArray } from '../control-routes.js';
import { ControlError } from '../control.js';
import { startSimServer, type ControlRoute, type SimTls } from '../server-base.js';
import { accountSummary, type AccountInput, applyAuthorizationChange, type AuthorizationChangeInput, DEMO_ACCOUNTS, ShopIdGenerator, shopsFor } from './accounts.js';
import { answerAuthorize, AUTHORIZE_PATH } from './authorize-page.js';
import { answerKeeta, KEETA_BASE_PATH } from './handler.js';
import { parseJson, toPlain } from './json.js';
import { KeetaState, type KeetaCounters, type OauthDelivery, type TokenResponseShape } from './state.js';
import { KeetaTokenStore, type IssuedPair, type KeetaMerchantView } from './tokens.js';
import { checkRecipe, type WebhookRecipe } from './webhook-sig.js';
import {
  type Event1Input,
  type Event1Report,
  orderEvent,
  type OrderEventInput,
  type OrderEventKind,
  pushEvent1,
  type PushContext,
  pushWebhook,
  pushWebhookUntilAccepted,
  type RetryOptions,
  type WebhookPushInput,
  type WebhookPushReport,
} from './webhooks.js';

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
  /** Registered OAuth redirect URIs: the authorize page accepts exactly these. Default none. */
  redirectUris?: string[];
  /** How the authorize page delivers a code. Default 'redirect'. */
  oauthDelivery?: OauthDelivery;
  /** Recipe of pushes that do not name one. Default 'url-query'. */
  webhookRecipe?: WebhookRecipe;
  /** Serve HTTPS with this certificate and key (PEM); baseUrl is then https://. */
  tls?: SimTls;
}

export interface AddMerchantInput {
  merchantId: string;
  /** int64 decimal strings. */
  shopIds: string[];
  expiresInSec?: number;
  issuedAtMs?: number;
  brandName?: string;
}

export interface KeetaSimCounters extends KeetaCounters {
  requests: RecordedRequest[];
  /** Event 1 pushes made by the authorize page, oldest first. */
  event1Pushes: Event1Report[];
}

export interface AuthorizationEventInput extends Omit<WebhookPushInput, 'eventId' | 'shopId' | 'message'>, AuthorizationChangeInput {}

export interface KeetaControl {
  setClockOffset(ms: number): void;
  setLatency(ms: number): void;
  failNext(count: number, options?: FailNextOptions): void;
  /** The next business requests fail one each, in this order. */
  failSequence(faults: readonly FailNextOptions[]): void;
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
  /** A merchant that has not authorised the app yet (offered on the authorize page). */
  addMerchantAccount(input: AccountInput): KeetaMerchantView;
  /** demo-chain (450 shops, three pages of 200) and demo-store (one shop). */
  addDemoAccounts(): KeetaMerchantView[];
  setRedirectUris(uris: string[]): void;
  setOauthDelivery(mode: OauthDelivery): void;
  /** As /base/callback/url/set does (event 1 = the Event-1 URL). */
  setCallbackUrl(eventId: number, url: string): void;
  pushWebhook(input: WebhookPushInput): Promise<WebhookPushReport>;
  pushWebhookUntilAccepted(input: WebhookPushInput, options?: RetryOptions): Promise<WebhookPushReport>;
  /** eventId, shopId and message of an order event (1001 placed, 1002 accepted, 1004 cancelled). */
  orderEvent(kind: OrderEventKind, input: OrderEventInput): { eventId: number; shopId: string; message: string };
  /** Event 1 with this code (url defaults to the one registered for event 1). */
  pushEvent1(input: Event1Input): Promise<Event1Report>;
  /** Changes the merchant's authorization in the simulator, then pushes 1301/1302/1303. */
  pushAuthorizationEvent(input: AuthorizationEventInput): Promise<WebhookPushReport & { shopIds: string[] }>;
}

export interface KeetaSim {
  /** e.g. 'http://127.0.0.1:PORT/api/open' */
  baseUrl: string;
  /** The merchant authorization page, e.g. 'http://127.0.0.1:PORT/m/web/openapi/authorize' */
  authorizeUrl: string;
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

function checkDelivery(mode: unknown): OauthDelivery {
  if (mode !== 'redirect' && mode !== 'event' && mode !== 'both') throw new TypeError(`oauth delivery must be 'redirect', 'event' or 'both', got ${JSON.stringify(mode)}`);
  return mode;
}

function checkRedirectUris(uris: unknown): string[] {
  if (!Array.isArray(uris)) throw new TypeError('redirectUris must be an array of URLs');
  return uris.map((u) => {
    if (typeof u !== 'string' || !/^https?:\/\/\S+$/.test(u)) throw new TypeError(`redirect URI ${JSON.stringify(u)} is not an http(s) URL`);
    return u;
  });
}

function createControl(state: KeetaState, core: SimCore, event1Pushes: Event1Report[]): KeetaControl {
  const generator = new ShopIdGenerator(state.tokens);
  const ctx: PushContext = {
    appId: state.settings.appId,
    appSecret: state.settings.appSecret,
    get defaultRecipe() {
      return state.settings.webhookRecipe;
    },
    now: () => core.now(),
  };
  const addAccount = (input: AccountInput): KeetaMerchantView => {
    if (typeof input !== 'object' || input === null) throw new TypeError('addMerchantAccount: input object required');
    state.tokens.addAccount(input.merchantId, shopsFor(input, generator), input.brandName);
    return state.tokens.view(input.merchantId, core.now())!;
  };
  const event1Url = (url: string | undefined): string => {
    const registered = url ?? state.callbackUrls.get(1)?.url;
    if (registered === undefined) throw new TypeError('pushEvent1: no url given and none registered for event 1');
    return registered;
  };
  return {
    setClockOffset: (ms) => core.setClockOffset(ms),
    setLatency: (ms) => core.setLatency(ms),
    failNext: (count, options) => core.failNext(count, options),
    failSequence: (faults) => core.failSequence(faults),
    counters: () => ({ ...state.counters, requests: core.requests(), event1Pushes: [...event1Pushes] }),
    reset: () => {
      state.resetCounters();
      core.clearRequests();
      event1Pushes.length = 0;
    },
    clock: () => ({ offsetMs: core.clockOffsetMs, now: core.now() }),
    addMerchant: (input) => {
      if (typeof input !== 'object' || input === null) throw new TypeError('addMerchant: input object required');
      return state.tokens.addMerchant(input.merchantId, input.shopIds, core.now(), input.expiresInSec, input.issuedAtMs, input.brandName);
    },
    issueAuthCode: (merchantId) => {
      const code = state.tokens.issueAuthCode(merchantId, core.now());
      state.counters.authCodesIssued++;
      return code;
    },
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
    addMerchantAccount: addAccount,
    addDemoAccounts: () => [addAccount(DEMO_ACCOUNTS.chain), addAccount(DEMO_ACCOUNTS.store)],
    setRedirectUris: (uris) => {
      state.settings.redirectUris = checkRedirectUris(uris);
    },
    setOauthDelivery: (mode) => {
      state.settings.oauthDelivery = checkDelivery(mode);
    },
    setCallbackUrl: (eventId, url) => {
      if (!Number.isInteger(eventId) || eventId < 1) throw new TypeError('setCallbackUrl: eventId must be a positive integer');
      if (typeof url !== 'string' || !/^https?:\/\/\S+$/.test(url)) throw new TypeError('setCallbackUrl: url must be an http(s) URL');
      state.callbackUrls.set(eventId, { url, isTest: 1 });
    },
    pushWebhook: (input) => pushWebhook(ctx, input),
    pushWebhookUntilAccepted: (input, options) => pushWebhookUntilAccepted(ctx, input, options),
    orderEvent: (kind, input) => orderEvent(kind, input, core.now()),
    pushEvent1: async (input) => pushEvent1(ctx, { ...input, url: event1Url(input.url) }),
    pushAuthorizationEvent: async (input) => {
      const { merchantId, kind, shopIds, eventId, ...push } = input;
      const change = applyAuthorizationChange(
        state.tokens,
        generator,
        { merchantId, kind, ...(shopIds !== undefined ? { shopIds } : {}), ...(eventId !== undefined ? { eventId } : {}) },
        core.now(),
      );
      const report = await pushWebhook(ctx, { ...push, eventId: change.eventId, shopId: change.shopId, message: change.message });
      return { ...report, shopIds: change.shopIds };
    },
  };
}

/** Runs an operation for a control route: a TypeError (bad input) becomes a 400. */
async function asControl<T>(op: () => T | Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (err instanceof TypeError) throw new ControlError(400, err.message);
    throw err;
  }
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
        const brandName = optionalString(obj, 'brandName');
        if (brandName !== undefined) input.brandName = brandName;
        return control.addMerchant(input);
      },
    },
    {
      method: 'POST',
      pattern: /^\/accounts$/,
      handle: (_p, body) => {
        const obj = asRecord(body);
        const input: AccountInput = { merchantId: requireString(obj, 'merchantId') };
        if (obj['shopIds'] !== undefined) input.shopIds = shopIdsFrom(obj['shopIds']);
        const shopCount = optionalNumber(obj, 'shopCount');
        if (shopCount !== undefined) input.shopCount = shopCount;
        const brandName = optionalString(obj, 'brandName');
        if (brandName !== undefined) input.brandName = brandName;
        return asControl(() => accountSummary(control.addMerchantAccount(input)));
      },
    },
    { method: 'POST', pattern: /^\/accounts\/demo$/, handle: () => asControl(() => control.addDemoAccounts().map(accountSummary)) },
    {
      method: 'PUT',
      pattern: /^\/oauth\/redirect-uris$/,
      handle: (_p, body) => {
        const uris = requireStringArray(asRecord(body), 'uris');
        return asControl(() => {
          control.setRedirectUris(uris);
          return { uris };
        });
      },
    },
    {
      method: 'POST',
      pattern: /^\/oauth\/delivery$/,
      handle: (_p, body) => {
        const mode = asRecord(body)['mode'];
        return asControl(() => {
          control.setOauthDelivery(mode as OauthDelivery);
          return { mode };
        });
      },
    },
    {
      method: 'PUT',
      pattern: /^\/callback-urls\/(\d+)$/,
      handle: ([eventId = ''], body) => {
        const url = requireString(asRecord(body), 'url');
        return asControl(() => {
          control.setCallbackUrl(Number(eventId), url);
          return { eventId: Number(eventId), url };
        });
      },
    },
    {
      method: 'POST',
      pattern: /^\/webhooks$/,
      handle: (_p, body) => asControl(() => control.pushWebhook(asRecord(body) as unknown as WebhookPushInput)),
    },
    {
      method: 'POST',
      pattern: /^\/webhooks\/retry$/,
      handle: (_p, body) => {
        const { attempts, intervalMs, ...input } = asRecord(body);
        const options: RetryOptions = {};
        if (attempts !== undefined) options.attempts = attempts as number;
        if (intervalMs !== undefined) options.intervalMs = intervalMs as number;
        return asControl(() => control.pushWebhookUntilAccepted(input as unknown as WebhookPushInput, options));
      },
    },
    {
      method: 'POST',
      pattern: /^\/order-events$/,
      handle: (_p, body) => {
        const { kind, orderViewId, ...input } = asRecord(body);
        return asControl(() => {
          const event = control.orderEvent(kind as OrderEventKind, { shopId: input['shopId'] as string, orderViewId: orderViewId as string });
          return control.pushWebhook({ ...(input as unknown as WebhookPushInput), ...event });
        });
      },
    },
    {
      method: 'POST',
      pattern: /^\/event1$/,
      handle: (_p, body) => asControl(() => control.pushEvent1(asRecord(body) as unknown as Event1Input)),
    },
    {
      method: 'POST',
      pattern: /^\/authorization-events$/,
      handle: (_p, body) => asControl(() => control.pushAuthorizationEvent(asRecord(body) as unknown as AuthorizationEventInput)),
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
      redirectUris: checkRedirectUris(opts.redirectUris ?? []),
      oauthDelivery: checkDelivery(opts.oauthDelivery ?? 'redirect'),
      webhookRecipe: checkRecipe(opts.webhookRecipe ?? 'url-query'),
    },
    tokens,
  );
  const event1Pushes: Event1Report[] = [];
  const control = createControl(state, core, event1Pushes);
  const authorizeDeps = {
    state,
    now: () => core.now(),
    pushEvent1: (url: string, code: string, oauthState: string) => control.pushEvent1({ url, code, state: oauthState }),
    event1Pushes,
  };
  const host = opts.host ?? '127.0.0.1';
  const running = await startSimServer({
    host,
    port: opts.port ?? 0,
    core,
    controlRoutes: keetaControlRoutes(control),
    parseControlBody: (text) => toPlain(parseJson(text)),
    answer: (req) => (req.path === AUTHORIZE_PATH ? answerAuthorize(authorizeDeps, req) : answerKeeta(state, core, req)),
    ...(opts.tls && { tls: opts.tls }),
  });
  return {
    baseUrl: `${running.scheme}://${running.urlHost}:${running.port}${KEETA_BASE_PATH}`,
    authorizeUrl: `${running.scheme}://${running.urlHost}:${running.port}${AUTHORIZE_PATH}`,
    port: running.port,
    control,
    close: running.close,
  };
}
