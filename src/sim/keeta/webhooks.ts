/**
 * Keeta → developer pushes (docs/protocols.md 1.6, 1.9): webhooks (POST JSON) and Event 1 in
 * server callback mode (GET with the authorization code), each signed with a selectable
 * recipe (webhook-sig.ts), with the faults a receiver must survive: a bad signature, a stale
 * timestamp, concurrent duplicates, extra headers (X-Forwarded-For), another source address.
 */
import { randomInt } from 'node:crypto';
import { checkTargetUrl, checkTransportOptions, type PushAnswer, type PushTransportOptions, sendCopies, sendPush, withExtraHeaders } from '../push.js';
import { type JsonObject, type JsonValue, parseJson, toCompactJson } from './json.js';
import { canonicalInt64 } from './tokens.js';
import { checkRecipe, receiverUrlOf, type WebhookRecipe, webhookSig } from './webhook-sig.js';

/** Documented order event ids (docs/protocols.md 1.9). */
export const ORDER_EVENTS = { placed: 1001, accepted: 1002, cancelled: 1004 } as const;
export type OrderEventKind = keyof typeof ORDER_EVENTS;

/** Store-authorization event ids ([3P] in docs/protocols.md 1.9; overridable per push). */
export const AUTHORIZATION_EVENTS = { added: 1301, cancelled: 1302, revoked: 1303 } as const;
export type AuthorizationEventKind = keyof typeof AUTHORIZATION_EVENTS;

export interface WebhookPushInput extends PushTransportOptions {
  /** Where to POST. */
  url: string;
  eventId: number;
  /** int64 Keeta store id: digit string (exact) or a safe integer. */
  shopId: string | number;
  /** The event's message: an object (serialised compactly) or JSON text sent as is inside the string. */
  message: unknown;
  /** Default: a random 19-digit id. */
  messageId?: string;
  /** Unix seconds. Default: the simulated now. */
  timestamp?: number;
  /** Default: the simulator's `webhookRecipe`. */
  recipe?: WebhookRecipe;
  /** URL that goes into the url-* recipes. Default: `url` without query. */
  signUrl?: string;
  /** Default: the app secret. */
  secret?: string;
  /** Send a sig that matches no recipe (the right one with its last hex digit changed). */
  badSignature?: boolean;
  /** Stamp the push this many seconds in the past. */
  staleBySec?: number;
}

export interface WebhookPushReport {
  messageId: string;
  /** The exact body sent. */
  body: string;
  sig: string;
  recipe: WebhookRecipe;
  /** One per copy sent (or per attempt for the retry helper), in order. */
  answers: PushAnswer[];
  /** True when the last answer was HTTP 200 with `code: 0`. */
  accepted: boolean;
}

export interface PushContext {
  appId: string;
  appSecret: string;
  defaultRecipe: WebhookRecipe;
  /** Simulated now, Unix ms. */
  now(): number;
}

const num = (lexeme: string): JsonValue => ({ type: 'number', lexeme });
const str = (value: string): JsonValue => ({ type: 'string', value });

function int64Text(what: string, value: unknown): string {
  const text = typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value;
  const id = typeof text === 'string' ? canonicalInt64(text) : undefined;
  if (id === undefined) throw new TypeError(`${what} must be a positive int64 (digit string or safe integer), got ${JSON.stringify(value)}`);
  return id;
}

/** The message as the JSON text that goes into the `message` string. */
function messageText(message: unknown): string {
  if (typeof message === 'string') {
    parseJson(message); // must be JSON text
    return message;
  }
  if (typeof message !== 'object' || message === null) throw new TypeError('message must be an object or JSON text');
  return JSON.stringify(message);
}

export function randomMessageId(): string {
  // 19 digits, above 2^53 like Keeta's ids.
  return `${randomInt(1, 10)}${Array.from({ length: 18 }, () => randomInt(0, 10)).join('')}`;
}

/** A valid-looking sig that no recipe produces. */
function spoil(sig: string): string {
  return `${sig.slice(0, -1)}${sig.endsWith('0') ? '1' : '0'}`;
}

function optionalText(what: string, value: unknown): string | undefined {
  if (value !== undefined && (typeof value !== 'string' || value === '')) throw new TypeError(`${what} must be a non-empty string`);
  return value as string | undefined;
}

function checkWhole(what: string, value: unknown, min = 0): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) throw new TypeError(`${what} must be an integer >= ${min}`);
  return value;
}

/** The exact webhook body and its sig. */
export function buildWebhook(ctx: PushContext, input: WebhookPushInput): { body: string; sig: string; messageId: string; recipe: WebhookRecipe } {
  const target = checkTargetUrl('pushWebhook', input.url);
  const eventId = checkWhole('eventId', input.eventId, 1);
  const shopId = int64Text('shopId', input.shopId);
  const messageId = input.messageId === undefined ? randomMessageId() : input.messageId;
  if (typeof messageId !== 'string' || messageId === '') throw new TypeError('messageId must be a non-empty string');
  const stale = input.staleBySec === undefined ? 0 : checkWhole('staleBySec', input.staleBySec);
  const timestamp = input.timestamp === undefined ? Math.floor(ctx.now() / 1000) - stale : checkWhole('timestamp', input.timestamp) - stale;
  const recipe = input.recipe === undefined ? ctx.defaultRecipe : checkRecipe(input.recipe);
  const fields: JsonObject = {
    type: 'object',
    entries: [
      ['eventId', num(String(eventId))],
      ['appId', num(ctx.appId)],
      ['messageId', str(messageId)],
      ['shopId', num(shopId)],
      ['message', str(messageText(input.message))],
      ['timestamp', num(String(timestamp))],
    ],
  };
  const signUrl = optionalText('signUrl', input.signUrl) ?? receiverUrlOf(target.href);
  const good = webhookSig(recipe, signUrl, fields, optionalText('secret', input.secret) ?? ctx.appSecret);
  const sig = input.badSignature ? spoil(good) : good;
  const body = toCompactJson({ type: 'object', entries: [['sig', str(sig)], ...fields.entries] });
  return { body, sig, messageId, recipe };
}

function isAccepted(answer: PushAnswer | undefined): boolean {
  const json = answer?.json as { code?: unknown } | undefined;
  return answer?.status === 200 && typeof json === 'object' && json !== null && json.code === 0;
}

export async function pushWebhook(ctx: PushContext, input: WebhookPushInput): Promise<WebhookPushReport> {
  const copies = checkTransportOptions('pushWebhook', input);
  const built = buildWebhook(ctx, input);
  const answers = await sendCopies(
    {
      url: input.url,
      method: 'POST',
      headers: withExtraHeaders({ 'content-type': 'application/json; charset=utf-8' }, input.headers),
      body: built.body,
      ...(input.sourceAddress !== undefined ? { sourceAddress: input.sourceAddress } : {}),
      ...(input.timeoutMs !== undefined ? { timeoutMs: input.timeoutMs } : {}),
    },
    copies,
  );
  return { ...built, answers, accepted: isAccepted(answers[answers.length - 1]) };
}

export interface RetryOptions {
  /** Give up after this many attempts. Default 4 (the first send and Keeta's "3 more times"). */
  attempts?: number;
  /** Wait between attempts. Default 0. */
  intervalMs?: number;
}

/** Sends the same bytes again until the receiver accepts (HTTP 200, code 0) or `attempts` are used. */
export async function pushWebhookUntilAccepted(ctx: PushContext, input: WebhookPushInput, opts: RetryOptions = {}): Promise<WebhookPushReport> {
  const attempts = opts.attempts === undefined ? 4 : checkWhole('attempts', opts.attempts, 1);
  const intervalMs = opts.intervalMs === undefined ? 0 : checkWhole('intervalMs', opts.intervalMs);
  checkTransportOptions('pushWebhookUntilAccepted', input);
  const built = buildWebhook(ctx, input);
  const answers: PushAnswer[] = [];
  for (let i = 0; i < attempts; i++) {
    if (i > 0 && intervalMs > 0) await new Promise((r) => setTimeout(r, intervalMs));
    const answer = await sendPush({
      url: input.url,
      method: 'POST',
      headers: withExtraHeaders({ 'content-type': 'application/json; charset=utf-8' }, input.headers),
      body: built.body,
      ...(input.sourceAddress !== undefined ? { sourceAddress: input.sourceAddress } : {}),
      ...(input.timeoutMs !== undefined ? { timeoutMs: input.timeoutMs } : {}),
    });
    answers.push(answer);
    if (isAccepted(answer)) break;
  }
  return { ...built, answers, accepted: isAccepted(answers[answers.length - 1]) };
}

export interface OrderEventInput {
  shopId: string | number;
  orderViewId: string | number;
  /** Unix ms of the change. Default: now. */
  opTime?: number;
}

/**
 * An order event as Keeta sends it: 1001 placed (status 20), 1002 accepted (status 30),
 * 1004 cancelled (status 50, cancelReason, opType). The message keeps int64 ids exact.
 */
export function orderEvent(kind: OrderEventKind, input: OrderEventInput, nowMs: number): { eventId: number; shopId: string; message: string } {
  const eventId = ORDER_EVENTS[kind];
  if (eventId === undefined) throw new TypeError(`order event kind must be one of ${Object.keys(ORDER_EVENTS).join(', ')}`);
  const shopId = int64Text('shopId', input.shopId);
  const orderViewId = int64Text('orderViewId', input.orderViewId);
  const opTime = input.opTime ?? nowMs;
  const status = kind === 'placed' ? 20 : kind === 'accepted' ? 30 : 50;
  const extra = kind === 'cancelled' ? ',"cancelReason":"customer cancelled","opType":10' : '';
  const message = `{"opTime":${opTime},"orderViewId":${orderViewId},"shopId":${shopId},"status":${status}${extra}}`;
  return { eventId, shopId, message };
}

export interface Event1Input extends PushTransportOptions {
  /** The Event-1 URL. Default: the URL registered for event 1. */
  url?: string;
  code: string;
  /** Echoed unchanged. Default ''. */
  state?: string;
  recipe?: WebhookRecipe;
  signUrl?: string;
  secret?: string;
  badSignature?: boolean;
  /** Unix ms. Default: now. */
  timestamp?: number;
}

export interface Event1Report {
  /** The full URL requested, query included. */
  url: string;
  answers: PushAnswer[];
  accepted: boolean;
}

/**
 * Event 1 in server callback mode: `GET url?appId=..&code=..&state=..&timestamp=<ms>&sig=..`,
 * sig by the recipe over the other parameters (receiver URL = `url` without query).
 */
export async function pushEvent1(ctx: PushContext, input: Event1Input & { url: string }): Promise<Event1Report> {
  const copies = checkTransportOptions('pushEvent1', input);
  const target = checkTargetUrl('pushEvent1', input.url);
  if (typeof input.code !== 'string' || input.code === '') throw new TypeError('pushEvent1: code is required');
  const state = input.state ?? '';
  if (typeof state !== 'string') throw new TypeError('pushEvent1: state must be a string');
  const timestamp = input.timestamp === undefined ? ctx.now() : checkWhole('timestamp', input.timestamp);
  const recipe = input.recipe === undefined ? ctx.defaultRecipe : checkRecipe(input.recipe);
  const fields: JsonObject = {
    type: 'object',
    entries: [
      ['appId', num(ctx.appId)],
      ['code', str(input.code)],
      ['state', str(state)],
      ['timestamp', num(String(timestamp))],
    ],
  };
  const signUrl = optionalText('signUrl', input.signUrl) ?? receiverUrlOf(target.href);
  const good = webhookSig(recipe, signUrl, fields, optionalText('secret', input.secret) ?? ctx.appSecret);
  const sig = input.badSignature ? spoil(good) : good;
  const query = new URLSearchParams({ appId: ctx.appId, code: input.code, state, timestamp: String(timestamp), sig });
  const url = new URL(target.href);
  for (const [k, v] of query) url.searchParams.append(k, v);
  const answers = await sendCopies(
    {
      url: url.href,
      method: 'GET',
      headers: withExtraHeaders({}, input.headers),
      ...(input.sourceAddress !== undefined ? { sourceAddress: input.sourceAddress } : {}),
      ...(input.timeoutMs !== undefined ? { timeoutMs: input.timeoutMs } : {}),
    },
    copies,
  );
  return { url: url.href, answers, accepted: isAccepted(answers[answers.length - 1]) };
}
