import { createHash } from 'node:crypto';
import { toCompactText, type JsonObjectNode } from '../keeta/json-text.js';

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
 * Digest of the signed content of `data`: the `k=v` entries V1 signs (nulls skipped, strings as
 * they are, other values as their compact JSON as received), sorted, without the timestamp.
 * Two callbacks with the same digest carry the same signed facts: KeySecure resending one
 * (a retry, stamped anew) or someone replaying it under another id or action.
 */
export function signedContentDigest(data: JsonObjectNode): string {
  const entries: string[] = [];
  for (const [key, node] of data.entries) {
    if (node.kind === 'null') continue;
    entries.push(`${key}=${node.kind === 'string' ? node.value : toCompactText(node)}`);
  }
  entries.sort();
  return createHash('sha256').update(entries.join('&'), 'utf8').digest('hex');
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
