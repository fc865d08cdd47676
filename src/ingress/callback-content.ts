import { createHash } from 'node:crypto';
import type { JsonNode, JsonObjectNode } from '../provider/steps/json-text.js';

/**
 * What a KeySecure callback's signature covers, and what it does not (docs/protocols.md 2.5):
 * V1 signs `appId`, `timestamp` and the top-level fields of `data`, all in one map. The push
 * `id` and the `action` are not signed. So:
 *
 * - a `data` field named like a signed envelope field would replace the envelope's value in
 *   that map (a re-dated callback would still verify): such a callback is refused;
 * - the dedupe key is the signed content of `data` (not the unsigned `id`): a signed payload is
 *   delivered once, whatever id or action it arrives with;
 * - the unsigned `action` is believed only when `data` has the shape of that action.
 */
export const SIGNED_ENVELOPE_FIELDS = ['appId', 'timestamp'] as const;

/** The first `data` field that collides with a signed envelope field, else undefined. */
export function envelopeCollision(data: JsonObjectNode): string | undefined {
  for (const [key] of data.entries) if ((SIGNED_ENVELOPE_FIELDS as readonly string[]).includes(key)) return key;
  return undefined;
}

/**
 * Digest of the signed content of `data`, without the timestamp: its top-level fields (nulls
 * skipped, as V1 skips them), sorted, each value in a canonical form (object keys sorted,
 * numbers as their decimal value: `12.50` and `12.5` are one amount). Two callbacks with the
 * same digest carry the same signed facts: KeySecure resending one (stamped, and perhaps
 * serialised, anew) or someone replaying it under another id or action. Different pushes
 * differ in their facts (a consume_no, a status, a time in ms).
 */
export function signedContentDigest(data: JsonObjectNode): string {
  const entries: string[] = [];
  for (const [key, node] of data.entries) {
    if (node.kind === 'null') continue;
    entries.push(`${JSON.stringify(key)}:${canonical(node)}`);
  }
  entries.sort();
  return createHash('sha256').update(entries.join(','), 'utf8').digest('hex');
}

function canonical(node: JsonNode): string {
  switch (node.kind) {
    case 'string':
      return JSON.stringify(node.value);
    case 'number':
      return canonicalNumber(node.lexeme);
    case 'boolean':
      return node.value ? 'true' : 'false';
    case 'null':
      return 'null';
    case 'array':
      return `[${node.items.map(canonical).join(',')}]`;
    case 'object':
      return `{${node.entries
        .map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`)
        .sort()
        .join(',')}}`;
  }
}

/** A JSON number lexeme as its decimal value, exactly (no float rounding: int64 ids stay distinct). */
export function canonicalNumber(lexeme: string): string {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(lexeme);
  if (!m) return lexeme;
  const [, sign, int = '', frac = '', exp] = m;
  let digits = int + frac;
  let point = int.length + (exp === undefined ? 0 : Number(exp));
  // Leading zeros move the point; trailing zeros after it say nothing.
  const lead = /^0*/.exec(digits)![0].length;
  digits = digits.slice(lead);
  point -= lead;
  digits = digits.replace(/0+$/, '');
  if (digits === '') return '0';
  if (!Number.isSafeInteger(point) || Math.abs(point) > 400) return `${sign}0.${digits}e${point}`;
  const text = point <= 0 ? `0.${'0'.repeat(-point)}${digits}` : point >= digits.length ? digits + '0'.repeat(point - digits.length) : `${digits.slice(0, point)}.${digits.slice(point)}`;
  return `${sign}${text}`;
}

/**
 * Fields that tell the documented actions apart (docs/protocols.md 2.5):
 * - Auth: `consume_no, card_no, cardholder_no, type, amount, local_amount, local_currency,
 *   merchant_info, status ("Pending"), time`;
 * - Consumption: Auth's fields plus `consume_relate_no, fee, remark, detail, fee_detail`,
 *   status Pending, Success or Fail;
 * - Card_update: `card_no, before_status, after_status, reason, time`.
 * Fields the docs do not list are tolerated (KeySecure may add some); fields that belong to
 * another action only, or a missing identifying field, are not.
 */
const CONSUMPTION_ONLY = ['consume_relate_no', 'fee', 'remark', 'detail', 'fee_detail'];
const CARD_UPDATE_ONLY = ['before_status', 'after_status', 'reason'];
const TRANSACTION_FIELDS = ['consume_no', 'cardholder_no', 'amount', 'local_amount', 'local_currency', 'merchant_info', 'type', ...CONSUMPTION_ONLY];

/** Why `data` is not the data of `action`, or undefined when it is (or the action is not a documented one). */
export function actionMismatch(action: string, data: JsonObjectNode): string | undefined {
  const has = (k: string) => data.entries.some(([key, node]) => key === k && node.kind !== 'null');
  const present = (list: string[]) => list.filter(has);
  const status = data.entries.find(([k]) => k === 'status')?.[1];
  switch (action) {
    case 'Auth': {
      if (!has('consume_no') || !has('card_no')) return 'Auth data must carry consume_no and card_no';
      const foreign = present([...CONSUMPTION_ONLY, ...CARD_UPDATE_ONLY]);
      if (foreign.length > 0) return `Auth data does not carry ${foreign.join(', ')}`;
      if (status !== undefined && !(status.kind === 'string' && status.value === 'Pending')) return 'Auth data has status Pending';
      return undefined;
    }
    case 'Consumption': {
      if (!has('consume_no') || !has('card_no')) return 'Consumption data must carry consume_no and card_no';
      const foreign = present(CARD_UPDATE_ONLY);
      return foreign.length > 0 ? `Consumption data does not carry ${foreign.join(', ')}` : undefined;
    }
    case 'Card_update': {
      if (!has('card_no') || !has('after_status')) return 'Card_update data must carry card_no and after_status';
      const foreign = present(TRANSACTION_FIELDS);
      return foreign.length > 0 ? `Card_update data does not carry ${foreign.join(', ')}` : undefined;
    }
    default:
      return undefined;
  }
}
