/**
 * KeySecure callback signature V1 (docs/protocols.md 2.5), the simulator's own implementation
 * of the documented Java `SignUtils`:
 *
 *   map = TreeMap{ appId, timestamp, every top-level field of data }   (data fields added last)
 *   skip null values; strings as is; every other value as its compact JSON text
 *   Signature = lowercase hex HMAC-SHA256(key = secret, msg = join("&", k + "=" + v))
 *
 * Non-string values are written as the compact JSON text they were sent as (numbers keep
 * their lexeme, `12.50` stays `12.50`; nested members keep their order), which is what a
 * fastjson BigDecimal / ordered object gives.
 */
import { createHmac } from 'node:crypto';
import { type JsonObject, type JsonValue, toCompactJson } from '../keeta/json.js';

function valueText(value: JsonValue): string | undefined {
  if (value.type === 'null') return undefined;
  if (value.type === 'string') return value.value;
  return toCompactJson(value);
}

/** The joined `k=v&…` string that is signed. */
export function v1SignedString(appId: string, timestamp: string, data: JsonObject): string {
  const map = new Map<string, string>([
    ['appId', appId],
    ['timestamp', timestamp],
  ]);
  for (const [key, value] of data.entries) {
    const text = valueText(value);
    if (text !== undefined) map.set(key, text);
  }
  // Java TreeMap<String, …>: natural String order = UTF-16 code units, as JS default sort.
  const keys = [...map.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return keys.map((k) => `${k}=${map.get(k)!}`).join('&');
}

export function v1Signature(appId: string, timestamp: string, data: JsonObject, secret: string): string {
  return createHmac('sha256', Buffer.from(secret, 'utf8')).update(v1SignedString(appId, timestamp, data), 'utf8').digest('hex');
}
