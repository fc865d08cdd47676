/**
 * The Keeta endpoints the simulator implements (docs/protocols.md 1.11). Each returns the whole
 * top-level response value; exact int64 ids go out as `rawNumber` so they are never rounded.
 */
import { rawNumber } from '../json-text.js';
import { KEETA_SIM_CODES, KEETA_SIM_MESSAGES, KeetaSimError } from './codes.js';
import type { JsonObject } from './json.js';
import {
  optionalInt,
  optionalInt64,
  optionalString,
  requireArray,
  requireInt,
  requireInt64,
  requireObject,
  requireString,
} from './params.js';
import { ORDER_STATUS, type KeetaState, type SimOrder } from './state.js';
import type { IssuedPair } from './tokens.js';

export const TOKEN_PATH = '/base/oauth/token';

export interface KeetaEndpointContext {
  state: KeetaState;
  body: JsonObject;
  /** Simulated time, Unix ms. */
  now: number;
  /** The token's merchant on merchant-level paths; undefined on app-level paths. */
  merchantId: string | undefined;
}

export interface KeetaEndpoint {
  /** 'app': signed without accessToken. 'merchant': accessToken required. */
  level: 'app' | 'merchant';
  handle(ctx: KeetaEndpointContext): unknown;
}

export function success(data: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { code: KEETA_SIM_CODES.OK, message: KEETA_SIM_MESSAGES.OK, data, ...extra };
}

/** The merchant of a merchant-level call (always set there). */
function merchantOf(ctx: KeetaEndpointContext): string {
  if (ctx.merchantId === undefined) throw new Error('merchant endpoint reached without a merchant');
  return ctx.merchantId;
}

/** The body's `shopId`, which must be one of the token's merchant's shops. */
function authorisedShop(ctx: KeetaEndpointContext, shopId: string): string {
  const shops = ctx.state.tokens.merchantShops(merchantOf(ctx));
  if (!shops.includes(shopId)) throw new KeetaSimError('SHOP_NOT_AUTHORISED', `shopId ${shopId}`);
  return shopId;
}

function requireShop(ctx: KeetaEndpointContext): string {
  return authorisedShop(ctx, requireInt64(ctx.body, 'shopId'));
}

function tokenResponse(ctx: KeetaEndpointContext, pair: IssuedPair): unknown {
  const fields = {
    accessToken: pair.accessToken,
    tokenType: 'bearer',
    expiresIn: pair.expiresIn,
    refreshToken: pair.refreshToken,
    scope: 'all',
    issuedAtTime: pair.issuedAtTime,
  };
  return ctx.state.settings.tokenResponseShape === 'wrapped' ? success(fields) : fields;
}

function orderData(order: SimOrder): Record<string, unknown> {
  return {
    orderViewId: rawNumber(order.orderViewId),
    shopId: rawNumber(order.shopId),
    status: order.status,
    createTime: order.createTime,
    currency: 'HKD',
    totalPrice: 9600,
    products: [
      { name: 'Sim Burger', count: 2, price: 4000 },
      { name: 'Sim Cola', count: 1, price: 1600 },
    ],
    remark: '',
  };
}

function changeOrder(ctx: KeetaEndpointContext, to: number, allowedFrom: readonly number[]): unknown {
  const orderViewId = requireInt64(ctx.body, 'orderViewId');
  const shopId = requireShop(ctx);
  const order = ctx.state.order(shopId, orderViewId, ctx.now);
  if (!allowedFrom.includes(order.status)) {
    throw new KeetaSimError('ORDER_STATUS_CONFLICT', `order ${orderViewId} has status ${order.status}`);
  }
  order.status = to;
  return success(null);
}

export const KEETA_ENDPOINTS: Readonly<Record<string, KeetaEndpoint>> = {
  [TOKEN_PATH]: {
    level: 'app',
    handle(ctx) {
      const grantType = requireString(ctx.body, 'grantType');
      if (grantType === 'authorization_code') {
        return tokenResponse(ctx, ctx.state.tokens.exchangeCode(requireString(ctx.body, 'code'), ctx.now, ctx.state.counters));
      }
      if (grantType === 'refresh_token') {
        const pair = ctx.state.tokens.refresh(requireString(ctx.body, 'refreshToken'), ctx.now, ctx.state.counters);
        return tokenResponse(ctx, pair);
      }
      throw new KeetaSimError('PARAM_INVALID', `grantType ${JSON.stringify(grantType)} is not supported`);
    },
  },

  '/base/callback/url/set': {
    level: 'app',
    handle(ctx) {
      const eventId = requireInt(ctx.body, 'eventId', 1, 99999);
      const url = requireString(ctx.body, 'url');
      if (!/^https?:\/\/\S+$/.test(url)) throw new KeetaSimError('PARAM_INVALID', 'url must be an http(s) URL');
      const isTest = optionalInt(ctx.body, 'isTest', 0, 1) ?? 1;
      ctx.state.callbackUrls.set(eventId, { url, isTest });
      return success(null);
    },
  },

  '/base/authorized/resource/get': {
    level: 'merchant',
    handle(ctx) {
      const pageNum = requireInt(ctx.body, 'pageNum', 1, 100000);
      const pageSize = requireInt(ctx.body, 'pageSize', 1, 200);
      const merchantId = merchantOf(ctx);
      const shops = ctx.state.tokens.merchantShops(merchantId);
      const page = shops.slice((pageNum - 1) * pageSize, pageNum * pageSize);
      return success({
        userId: `sim-user-${merchantId}`,
        brandId: ctx.state.tokens.merchantBrandId(merchantId),
        brandName: ctx.state.tokens.merchantBrandName(merchantId),
        authorizedShops: page.map((id) => ({
          id: rawNumber(id),
          name: `Sim Shop ${id}`,
          address: '1 Simulator Road, Hong Kong',
          longitute: 114.1694,
          latitude: 22.3193,
        })),
        page: { pageNum, pageSize, totalPage: Math.ceil(shops.length / pageSize), total: shops.length },
      });
    },
  },

  '/order/get': {
    level: 'merchant',
    handle(ctx) {
      const orderViewId = requireInt64(ctx.body, 'orderViewId');
      const shopId = requireShop(ctx);
      return success(orderData(ctx.state.order(shopId, orderViewId, ctx.now)));
    },
  },

  '/order/confirm': {
    level: 'merchant',
    handle: (ctx) => changeOrder(ctx, ORDER_STATUS.CONFIRMED, [ORDER_STATUS.AWAITING_CONFIRMATION]),
  },

  '/order/cancel': {
    level: 'merchant',
    handle(ctx) {
      optionalString(ctx.body, 'reason');
      return changeOrder(ctx, ORDER_STATUS.CANCELLED, [ORDER_STATUS.AWAITING_CONFIRMATION, ORDER_STATUS.CONFIRMED]);
    },
  },

  '/product/shopcategory/update': {
    level: 'merchant',
    handle(ctx) {
      const category = requireObject(ctx.body, 'shopCategory');
      requireString(category, 'name');
      requireShop(ctx);
      return success(null);
    },
  },

  '/product/spustatus/batchupdatebycode': {
    level: 'merchant',
    handle(ctx) {
      const items = requireArray(ctx.body, 'spuCodes', 1, 200);
      const codes = items.map((item, i) => {
        if (item.type !== 'string' || item.value === '') {
          throw new KeetaSimError('PARAM_INVALID', `spuCodes[${i}] must be a non-empty string`);
        }
        return item.value;
      });
      requireInt(ctx.body, 'sellStatus', 0, 1);
      requireShop(ctx);
      const failed = codes.filter((c) => c.startsWith('FAIL'));
      return success(codes.length - failed.length, {
        errorList: failed.map((spuCode) => ({
          spuCode,
          code: KEETA_SIM_CODES.BATCH_ITEM_FAILED,
          message: `${KEETA_SIM_MESSAGES.BATCH_ITEM_FAILED}: spu ${spuCode} not found`,
        })),
      });
    },
  },

  '/base/batchDecrypt': {
    level: 'merchant',
    handle(ctx) {
      const items = requireArray(ctx.body, 'cipherInfos', 1, 50);
      const shopId = optionalInt64(ctx.body, 'shopId');
      if (shopId !== undefined) authorisedShop(ctx, shopId);
      return success(
        items.map((item, i) => {
          if (item.type !== 'object') throw new KeetaSimError('PARAM_INVALID', `cipherInfos[${i}] must be an object`);
          const cipherText = requireString(item, 'cipherText');
          return { cipherText, plainText: `plain:${cipherText}` };
        }),
      );
    },
  },
};
