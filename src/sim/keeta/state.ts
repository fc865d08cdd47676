/** The mutable world of one Keeta simulator instance. */
import { KeetaTokenStore } from './tokens.js';
import type { WebhookRecipe } from './webhook-sig.js';

export type TokenResponseShape = 'flat' | 'wrapped';

export interface KeetaCounters {
  /** Every request to /base/oauth/token. */
  tokenCalls: number;
  /** Token requests whose body named grantType=refresh_token. */
  refreshCalls: number;
  /** Refresh requests rejected because the refresh token had already been used. */
  refreshReuse: number;
  /** Token requests whose body named grantType=authorization_code. */
  authCodeCalls: number;
  /** Refresh requests answered with anything but success. */
  rejectedRefreshes: number;
  /** Authorization codes presented again after a successful exchange. */
  authCodeReuse: number;
  /** Authorization codes exchanged successfully. */
  authCodeExchanges: number;
  /** Authorization codes issued by the authorize page or issueAuthCode. */
  authCodesIssued: number;
}

export type OauthDelivery = 'redirect' | 'event' | 'both';

export const ORDER_STATUS = { AWAITING_CONFIRMATION: 20, CONFIRMED: 30, CANCELLED: 50 } as const;

export interface SimOrder {
  orderViewId: string;
  shopId: string;
  status: number;
  /** Unix seconds. */
  createTime: number;
}

export interface KeetaSimSettings {
  appId: string;
  appSecret: string;
  timestampWindowSec: number;
  tokenResponseShape: TokenResponseShape;
  /** Registered OAuth redirect URIs; the authorize page accepts only these. */
  redirectUris: string[];
  /** How the authorize page hands out a code. */
  oauthDelivery: OauthDelivery;
  /** Recipe of pushes that do not name one. */
  webhookRecipe: WebhookRecipe;
}

export class KeetaState {
  readonly counters: KeetaCounters = {
    tokenCalls: 0,
    refreshCalls: 0,
    refreshReuse: 0,
    authCodeCalls: 0,
    rejectedRefreshes: 0,
    authCodeReuse: 0,
    authCodeExchanges: 0,
    authCodesIssued: 0,
  };
  readonly orders = new Map<string, SimOrder>();
  readonly callbackUrls = new Map<number, { url: string; isTest: number }>();

  constructor(
    readonly settings: KeetaSimSettings,
    readonly tokens: KeetaTokenStore,
  ) {}

  resetCounters(): void {
    this.counters.tokenCalls = 0;
    this.counters.refreshCalls = 0;
    this.counters.refreshReuse = 0;
    this.counters.authCodeCalls = 0;
    this.counters.rejectedRefreshes = 0;
    this.counters.authCodeReuse = 0;
    this.counters.authCodeExchanges = 0;
    this.counters.authCodesIssued = 0;
  }

  /** The simulated order with this id, created on first sight. */
  order(shopId: string, orderViewId: string, nowMs: number): SimOrder {
    const key = `${shopId}/${orderViewId}`;
    let order = this.orders.get(key);
    if (!order) {
      order = { orderViewId, shopId, status: ORDER_STATUS.AWAITING_CONFIRMATION, createTime: Math.floor(nowMs / 1000) - 60 };
      this.orders.set(key, order);
    }
    return order;
  }
}
