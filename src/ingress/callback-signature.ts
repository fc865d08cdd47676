import { createHmac, timingSafeEqual } from 'node:crypto';
import { toCompactText, type JsonObjectNode } from '../provider/steps/json-text.js';

/**
 * KeySecure callback `Signature`, `Sign-Version: V1` (docs/protocols.md 2.5): a key-sorted map
 * (Java TreeMap: UTF-16 order, as JavaScript sorts) of `appId`, `timestamp` (the Timestamp
 * header) and every top-level field of `data`; null values skipped; strings as they are; any
 * other value as its compact JSON text exactly as received (numbers keep their lexeme, so
 * `12.50` stays `12.50`); joined `k=v` with `&`; HMAC-SHA256 with the secret, lower-case hex.
 */
export function callbackSignText(appId: string, timestamp: string, data: JsonObjectNode): string {
  const map = new Map<string, string>([
    ['appId', appId],
    ['timestamp', timestamp],
  ]);
  for (const [key, node] of data.entries) {
    if (node.kind === 'null') continue;
    map.set(key, node.kind === 'string' ? node.value : toCompactText(node));
  }
  return [...map.keys()]
    .sort()
    .map((k) => `${k}=${map.get(k)}`)
    .join('&');
}

export function callbackSignature(secret: string, text: string): string {
  return createHmac('sha256', Buffer.from(secret, 'utf8')).update(text, 'utf8').digest('hex');
}

export function callbackSignatureMatches(secret: string, text: string, given: string): boolean {
  if (!/^[0-9a-fA-F]{64}$/.test(given)) return false;
  return timingSafeEqual(Buffer.from(callbackSignature(secret, text), 'hex'), Buffer.from(given.toLowerCase(), 'hex'));
}
