/**
 * The KeySecure endpoints the simulator implements (docs/protocols.md 2.3, 2.6), plus the
 * simulator-only echo route. Handlers return `data` (or `undefined` for an answer without
 * `data`); amounts go out as exact decimal JSON numbers.
 */
import { rawNumber } from '../json-text.js';
import type { Body } from './params.js';
import { invalid, optionalInt, optionalString, requireObject, requireOneOf, requireString } from './params.js';
import type { Card, KeySecureState } from './state.js';

export const TOKEN_PATH = '/open-api/v1/merchant/token';

export interface KeySecureContext {
  state: KeySecureState;
  apiKey: string;
  now: number;
  method: string;
  path: string;
  query: string;
  headers: Record<string, string>;
  rawBody: string;
  /** Parsed JSON body on POST, {} on GET. */
  body: Body;
  params: string[];
}

export interface KeySecureRoute {
  methods: readonly string[];
  pattern: RegExp;
  /** POST routes need a JSON object body. */
  handle(ctx: KeySecureContext): unknown;
}

const CARD_TYPES = ['Virtual', 'Physical'] as const;
const SETTABLE_STATUSES = ['Activated', 'Frozen', 'Delete'] as const;
const ADDRESS_FIELDS = ['first_name', 'last_name', 'phone_code', 'phone', 'postal_code', 'country', 'state', 'city', 'address_line1'] as const;

function cardView(card: Card): Record<string, unknown> {
  return {
    card_no: card.card_no,
    card_unique_no: card.card_unique_no,
    cardholder_no: card.cardholder_no,
    card_type: card.card_type,
    card_bin_no: card.card_bin_no,
    package_no: card.package_no,
    card_last4: card.card_no.slice(-4),
    status: card.status,
    currency: card.currency,
    balance: rawNumber('100.00'),
    create_time: card.create_time,
  };
}

function findCard(ctx: KeySecureContext, cardNo: string): Card {
  const card = ctx.state.account(ctx.apiKey).cards.get(cardNo);
  if (!card) invalid('card_no', `card ${cardNo} does not exist`);
  return card;
}

export const KEYSECURE_ROUTES: readonly KeySecureRoute[] = [
  {
    methods: ['GET'],
    pattern: /^\/open-api\/v1\/merchant\/token$/,
    handle: (ctx) => ctx.state.issueToken(ctx.apiKey, ctx.now),
  },
  {
    methods: ['POST'],
    pattern: /^\/open-api\/v1\/cardholder\/apply$/,
    handle(ctx) {
      const uniqueNo = requireString(ctx.body, 'cardholder_unique_no', 64);
      requireString(ctx.body, 'sumsub_share_token', 2048);
      const requestedNo = optionalString(ctx.body, 'cardholder_no', 64);
      const holders = ctx.state.account(ctx.apiKey).cardholders;
      const existing = [...holders.values()].find((h) => h.cardholder_unique_no === uniqueNo);
      const holder = existing ?? {
        cardholder_no: requestedNo ?? ctx.state.nextNumber(ctx.apiKey, 'CH', ctx.now),
        cardholder_unique_no: uniqueNo,
        status: 'Pending',
        create_time: ctx.now,
      };
      holders.set(holder.cardholder_no, holder);
      return { cardholder_no: holder.cardholder_no, cardholder_unique_no: holder.cardholder_unique_no };
    },
  },
  {
    methods: ['POST'],
    pattern: /^\/open-api\/v1\/card\/apply$/,
    handle(ctx) {
      const binNo = optionalString(ctx.body, 'card_bin_no', 64);
      const packageNo = optionalString(ctx.body, 'package_no', 64);
      if (binNo === undefined && packageNo === undefined) invalid('card_bin_no', 'card_bin_no or package_no is required');
      const cardholderNo = requireString(ctx.body, 'cardholder_no', 64);
      const uniqueNo = requireString(ctx.body, 'card_unique_no', 64);
      const cardType = requireOneOf(ctx.body, 'card_type', CARD_TYPES);
      if (cardType === 'Physical') {
        const address = requireObject(ctx.body, 'address_info');
        for (const f of ADDRESS_FIELDS) requireString(address, f);
      } else if (ctx.body['address_info'] !== undefined && ctx.body['address_info'] !== null) {
        requireObject(ctx.body, 'address_info');
      }
      const account = ctx.state.account(ctx.apiKey);
      if (!account.cardholders.has(cardholderNo)) invalid('cardholder_no', `cardholder ${cardholderNo} does not exist`);
      const existing = [...account.cards.values()].find((c) => c.card_unique_no === uniqueNo);
      const card: Card = existing ?? {
        card_no: ctx.state.nextNumber(ctx.apiKey, 'C', ctx.now),
        card_unique_no: uniqueNo,
        cardholder_no: cardholderNo,
        card_type: cardType,
        card_bin_no: binNo ?? null,
        package_no: packageNo ?? null,
        status: cardType === 'Virtual' ? 'Activated' : 'ToActivate',
        currency: 'USD',
        create_time: ctx.now,
      };
      account.cards.set(card.card_no, card);
      return { card_no: card.card_no, card_unique_no: card.card_unique_no };
    },
  },
  {
    methods: ['GET'],
    pattern: /^\/open-api\/v1\/card\/([^/]+)\/detail$/,
    handle: (ctx) => cardView(findCard(ctx, ctx.params[0] ?? '')),
  },
  {
    methods: ['POST'],
    pattern: /^\/open-api\/v1\/card\/list$/,
    handle(ctx) {
      const page = optionalInt(ctx.body, 'page', 0, 1_000_000, 0);
      const size = optionalInt(ctx.body, 'size', 1, 100, 10);
      const holder = optionalString(ctx.body, 'cardholder_no', 64);
      const status = optionalString(ctx.body, 'card_status', 32);
      const all = [...ctx.state.account(ctx.apiKey).cards.values()].filter(
        (c) => (holder === undefined || c.cardholder_no === holder) && (status === undefined || c.status === status),
      );
      return { list: all.slice(page * size, (page + 1) * size).map(cardView), total: all.length, page, size };
    },
  },
  {
    methods: ['POST'],
    pattern: /^\/open-api\/v1\/card\/status\/update$/,
    handle(ctx) {
      const cardNo = requireString(ctx.body, 'card_no', 64);
      const status = requireOneOf(ctx.body, 'status', SETTABLE_STATUSES);
      const card = findCard(ctx, cardNo);
      if (card.status === 'Delete') invalid('card_no', `card ${cardNo} is deleted`);
      card.status = status;
      return undefined;
    },
  },
  {
    methods: ['GET'],
    pattern: /^\/open-api\/v1\/card\/consume\/([^/]+)\/info$/,
    handle(ctx) {
      const consumeNo = ctx.params[0] ?? '';
      const card = [...ctx.state.account(ctx.apiKey).cards.values()][0];
      return {
        consume_no: consumeNo,
        consume_relate_no: '',
        card_no: card?.card_no ?? 'C20260101000001',
        cardholder_no: card?.cardholder_no ?? 'CH20260101000001',
        type: 'Consumption',
        amount: rawNumber('12.50'),
        local_amount: rawNumber('97.50'),
        local_currency: 'HKD',
        fee: rawNumber('0.00'),
        remark: '',
        detail: 'SIM COFFEE SHOP',
        fee_detail: [],
        merchant_info: { merchant_name: 'SIM COFFEE SHOP', merchant_mcc: '5814', city: 'Hong Kong', country: 'HK' },
        status: 'Success',
        time: ctx.now - 3_600_000,
      };
    },
  },
  {
    // Simulator-only: shows exactly what arrived.
    methods: ['GET', 'POST'],
    pattern: /^\/open-api\/v1\/_echo$/,
    handle: (ctx) => ({ method: ctx.method, path: ctx.path, query: ctx.query, headers: ctx.headers, rawBody: ctx.rawBody }),
  },
];
