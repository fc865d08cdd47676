/**
 * Merchant accounts for the authorize page, generated shop ids, and store-authorization
 * changes (events 1301 added / 1302 cancelled / 1303 brand revoked) applied to the simulator
 * before they are pushed.
 */
import type { KeetaMerchantView, KeetaTokenStore } from './tokens.js';
import { AUTHORIZATION_EVENTS, type AuthorizationEventKind } from './webhooks.js';

/** First generated shop id: above 2^53, so a receiver that rounds ids is caught. */
const FIRST_GENERATED_SHOP = 9007199254741001n;

export interface AccountInput {
  merchantId: string;
  /** Explicit int64 shop ids (decimal strings). */
  shopIds?: string[];
  /** Or: this many generated shop ids. */
  shopCount?: number;
  brandName?: string;
}

export const DEMO_ACCOUNTS = {
  chain: { merchantId: 'demo-chain', brandName: 'Sim Chain Burgers', shopCount: 450 },
  store: { merchantId: 'demo-store', brandName: 'Sim Corner Cafe', shopCount: 1 },
} as const;

export class ShopIdGenerator {
  #next = FIRST_GENERATED_SHOP;
  constructor(private readonly tokens: KeetaTokenStore) {}

  take(count: number): string[] {
    if (!Number.isInteger(count) || count < 1 || count > 100_000) throw new TypeError('shopCount must be an integer 1..100000');
    const out: string[] = [];
    while (out.length < count) {
      const id = (this.#next++).toString();
      if (this.tokens.ownerOf(id) === undefined) out.push(id);
    }
    return out;
  }
}

export function shopsFor(input: AccountInput, generator: ShopIdGenerator): string[] {
  if (input.shopIds !== undefined && input.shopCount !== undefined) throw new TypeError('give shopIds or shopCount, not both');
  if (input.shopIds !== undefined) return input.shopIds;
  return generator.take(input.shopCount ?? 1);
}

export interface AuthorizationChange {
  /** The event id to push (1301/1302/1303 unless overridden). */
  eventId: number;
  /** The shop the push names. */
  shopId: string;
  /** The message JSON text. */
  message: string;
  /** Shops added or removed (all the merchant's shops for a revocation). */
  shopIds: string[];
}

export interface AuthorizationChangeInput {
  merchantId: string;
  kind: AuthorizationEventKind;
  /** added: the new shops (default: one generated); cancelled: the removed ones (default: the last shop). */
  shopIds?: string[];
  eventId?: number;
}

/** Applies a store-authorization change to the simulator and describes the event to push. */
export function applyAuthorizationChange(
  tokens: KeetaTokenStore,
  generator: ShopIdGenerator,
  input: AuthorizationChangeInput,
  nowMs: number,
): AuthorizationChange {
  const view = tokens.view(input.merchantId, nowMs);
  if (!view) throw new TypeError(`unknown merchant ${JSON.stringify(input.merchantId)}`);
  const defaultId = AUTHORIZATION_EVENTS[input.kind];
  if (defaultId === undefined) throw new TypeError(`kind must be one of ${Object.keys(AUTHORIZATION_EVENTS).join(', ')}`);
  const eventId = input.eventId ?? defaultId;
  if (!Number.isInteger(eventId) || eventId < 1) throw new TypeError('eventId must be a positive integer');
  let shopIds: string[];
  let opType: number;
  if (input.kind === 'added') {
    shopIds = tokens.addShops(input.merchantId, input.shopIds ?? generator.take(1));
    opType = 1;
  } else if (input.kind === 'cancelled') {
    const last = view.shopIds[view.shopIds.length - 1];
    shopIds = tokens.removeShops(input.merchantId, input.shopIds ?? (last === undefined ? [] : [last]));
    opType = 2;
  } else {
    shopIds = [...view.shopIds];
    tokens.revokeAuthorization(input.merchantId);
    opType = 3;
  }
  const shopId = shopIds[0] ?? view.shopIds[0];
  if (shopId === undefined) throw new TypeError('the change affects no shop: nothing to name in shopId');
  const message = `{"brandId":${view.brandId},"brandName":${JSON.stringify(view.brandName)},"shopIds":[${shopIds.join(',')}],"opType":${opType},"opTime":${nowMs}}`;
  return { eventId, shopId, message, shopIds };
}

/** A short description of an account for control answers. */
export function accountSummary(view: KeetaMerchantView): Record<string, unknown> {
  return {
    merchantId: view.merchantId,
    brandId: view.brandId,
    brandName: view.brandName,
    shopCount: view.shopIds.length,
    firstShopId: view.shopIds[0] ?? null,
    lastShopId: view.shopIds[view.shopIds.length - 1] ?? null,
    authorized: view.authorized,
  };
}
