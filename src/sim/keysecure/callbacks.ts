/**
 * KeySecure → merchant callbacks (docs/protocols.md 2.5): POST `{id, action, data}` with the
 * headers Timestamp (ms), Signature (V1), Sign-Version V1 and Timezone UTC+8, and the faults a
 * receiver must handle: a bad signature, a field changed after signing, a stale timestamp,
 * concurrent duplicates. Every answer is reported with the time the receiver took (an Auth
 * callback must be answered within 800 ms).
 */
import { randomBytes } from 'node:crypto';
import { type JsonObject, type JsonValue, parseJson, toCompactJson } from '../keeta/json.js';
import { checkTargetUrl, checkTransportOptions, type PushAnswer, type PushTransportOptions, sendCopies, withExtraHeaders } from '../push.js';
import { v1Signature } from './callback-sig.js';

export const CALLBACK_ACTIONS = ['Auth', 'Consumption', 'Card_update'] as const;
export type CallbackAction = (typeof CALLBACK_ACTIONS)[number];

/** The Auth answer budget KeySecure documents. */
export const AUTH_BUDGET_MS = 800;

export interface CallbackPushInput extends PushTransportOptions {
  url: string;
  action: CallbackAction;
  /** The data object, or its JSON text (sent and signed exactly as written). Default: a sample for the action. */
  data?: unknown;
  /** Push id. Default: random. */
  id?: string;
  /** Whose secret signs (default: the first key). */
  apiKey?: string;
  /** Default: the simulator's callbackAppId. */
  appId?: string;
  /** Default: callbackSecret, else the key's apiSecret. */
  secret?: string;
  /** Unix ms. Default: now. */
  timestamp?: number;
  /** Send a Signature that does not match. */
  badSignature?: boolean;
  /** Sign, then set this top-level data field to `value` (the signature no longer matches). */
  tamper?: { field: string; value: unknown };
  /** Stamp this many ms in the past. */
  staleByMs?: number;
}

export interface CallbackPushReport {
  id: string;
  action: CallbackAction;
  /** The exact body sent. */
  body: string;
  signature: string;
  /** The Timestamp header sent. */
  timestamp: string;
  answers: PushAnswer[];
  /** True when the last answer was HTTP 200 with code 0. */
  accepted: boolean;
  /** Auth only: every answer arrived within AUTH_BUDGET_MS (800 ms). */
  withinBudget?: boolean;
}

export interface CallbackContext {
  appId: string;
  /** The signing secret for a push naming `apiKey` (or none). */
  secretFor(apiKey: string | undefined): string;
  now(): number;
}

/** A realistic `data` for each action; amounts are BigDecimal-style exact decimals. */
export function sampleCallbackData(action: CallbackAction, nowMs: number): string {
  const merchant = '{"merchant_name":"SIM COFFEE <HK>","merchant_mcc":"5814","city":"Hong Kong","country":"HK"}';
  switch (action) {
    case 'Auth':
      return `{"consume_no":"CS${nowMs}","card_no":"C202605220001","cardholder_no":"CH202605220001","type":"Consumption","amount":12.50,"local_amount":97.80,"local_currency":"HKD","merchant_info":${merchant},"status":"Pending","time":${nowMs}}`;
    case 'Consumption':
      return `{"consume_no":"CS${nowMs}","consume_relate_no":null,"card_no":"C202605220001","cardholder_no":"CH202605220001","type":"Consumption","amount":12.50,"local_amount":97.80,"local_currency":"HKD","fee":0.10,"remark":"","detail":"coffee","fee_detail":[{"fee_type":"Fx_fee","amount":0.10}],"merchant_info":${merchant},"status":"Success","time":${nowMs}}`;
    case 'Card_update':
      return `{"card_no":"C202605220001","before_status":"Activated","after_status":"Frozen","reason":"merchant request","time":${nowMs}}`;
  }
}

function checkAction(action: unknown): CallbackAction {
  if (typeof action !== 'string' || !(CALLBACK_ACTIONS as readonly string[]).includes(action)) {
    throw new TypeError(`action must be one of ${CALLBACK_ACTIONS.join(', ')}, got ${JSON.stringify(action)}`);
  }
  return action as CallbackAction;
}

function dataObject(data: unknown): JsonObject {
  const text = typeof data === 'string' ? data : JSON.stringify(data);
  let value: JsonValue;
  try {
    value = parseJson(text);
  } catch (err) {
    throw new TypeError(`data is not JSON: ${(err as Error).message}`);
  }
  if (value.type !== 'object') throw new TypeError('data must be a JSON object');
  return value;
}

function jsonValueOf(value: unknown): JsonValue {
  return parseJson(JSON.stringify(value ?? null));
}

function isAccepted(answer: PushAnswer | undefined): boolean {
  const json = answer?.json as { code?: unknown } | undefined;
  return answer?.status === 200 && typeof json === 'object' && json !== null && json.code === 0;
}

/** The exact body and headers of one callback. */
export function buildCallback(ctx: CallbackContext, input: CallbackPushInput): { id: string; action: CallbackAction; body: string; signature: string; timestamp: string; headers: Record<string, string> } {
  checkTargetUrl('pushCallback', input.url);
  const action = checkAction(input.action);
  const id = input.id ?? randomBytes(12).toString('hex');
  if (typeof id !== 'string' || id === '') throw new TypeError('id must be a non-empty string');
  const stale = input.staleByMs ?? 0;
  if (!Number.isInteger(stale) || stale < 0) throw new TypeError('staleByMs must be an integer >= 0');
  const base = input.timestamp ?? ctx.now();
  if (!Number.isInteger(base) || base < 0) throw new TypeError('timestamp must be Unix ms');
  const timestamp = String(base - stale);
  for (const key of ['appId', 'secret', 'apiKey'] as const) {
    const v = input[key];
    if (v !== undefined && (typeof v !== 'string' || v === '')) throw new TypeError(`${key} must be a non-empty string`);
  }
  const appId = input.appId ?? ctx.appId;
  const secret = input.secret ?? ctx.secretFor(input.apiKey);
  let data = dataObject(input.data ?? sampleCallbackData(action, base));
  const good = v1Signature(appId, timestamp, data, secret);
  const signature = input.badSignature ? v1Signature(appId, timestamp, data, `${secret}-wrong`) : good;
  if (input.tamper !== undefined) {
    const { field, value } = input.tamper;
    if (typeof field !== 'string' || field === '') throw new TypeError('tamper.field must be a non-empty string');
    const replacement = jsonValueOf(value);
    const exists = data.entries.some(([k]) => k === field);
    data = {
      type: 'object',
      entries: exists ? data.entries.map(([k, v]) => [k, k === field ? replacement : v] as const) : [...data.entries, [field, replacement] as const],
    };
  }
  const body = `{"id":${JSON.stringify(id)},"action":${JSON.stringify(action)},"data":${toCompactJson(data)}}`;
  const headers = withExtraHeaders(
    {
      'Content-Type': 'application/json',
      Timestamp: timestamp,
      Signature: signature,
      'Sign-Version': 'V1',
      Timezone: 'UTC+8',
    },
    input.headers,
  );
  return { id, action, body, signature, timestamp, headers };
}

export async function pushCallback(ctx: CallbackContext, input: CallbackPushInput): Promise<CallbackPushReport> {
  const copies = checkTransportOptions('pushCallback', input);
  const built = buildCallback(ctx, input);
  const answers = await sendCopies(
    {
      url: input.url,
      method: 'POST',
      headers: built.headers,
      body: built.body,
      ...(input.sourceAddress !== undefined ? { sourceAddress: input.sourceAddress } : {}),
      ...(input.timeoutMs !== undefined ? { timeoutMs: input.timeoutMs } : {}),
    },
    copies,
  );
  const { headers: _headers, ...rest } = built;
  return {
    ...rest,
    answers,
    accepted: isAccepted(answers[answers.length - 1]),
    ...(built.action === 'Auth' ? { withinBudget: answers.every((a) => a.status !== 0 && a.ms <= AUTH_BUDGET_MS) } : {}),
  };
}
