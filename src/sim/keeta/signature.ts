/**
 * Keeta request signature, rebuilt by the simulator from the raw body it received
 * (docs/protocols.md 1.2 and 4.1). Deliberately independent of the proxy's signer.
 *
 *   pre-hash = URL + "?" + join("&", key + "=" + text(value)) + appSecret
 *   sig      = lowercase hex SHA-256(UTF-8 bytes of pre-hash)      (plain SHA-256, not HMAC)
 *
 * Keys: every top-level key except `sig`, sorted by UTF-16 code units.
 * text(value): strings raw (no quotes, no escaping); numbers as their lexeme; true/false/null
 * as words; objects and arrays as compact JSON in their original member order.
 */
import { createHash } from 'node:crypto';
import { type JsonObject, type JsonValue, parseJson, toCompactJson } from './json.js';

/** The text a single top-level value contributes to the string to sign. */
export function keetaValueText(value: JsonValue): string {
  switch (value.type) {
    case 'string':
      return value.value;
    case 'number':
      return value.lexeme;
    case 'boolean':
      return value.value ? 'true' : 'false';
    case 'null':
      return 'null';
    case 'object':
    case 'array':
      return toCompactJson(value);
  }
}

/** `key1=v1&key2=v2...` over every top-level member except `sig`, keys sorted. */
export function keetaJoinedParams(body: JsonObject): string {
  const entries = body.entries.filter(([key]) => key !== 'sig');
  // Default sort compares UTF-16 code unit sequences (same as Java's String.compareTo).
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return entries.map(([key, value]) => `${key}=${keetaValueText(value)}`).join('&');
}

/** The full pre-hash string, secret included. */
export function keetaPreHash(url: string, body: JsonObject, appSecret: string): string {
  return `${url}?${keetaJoinedParams(body)}${appSecret}`;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** The `sig` a correct client sends for `body` at `url`. */
export function keetaSign(url: string, body: JsonObject, appSecret: string): string {
  return sha256Hex(keetaPreHash(url, body, appSecret));
}

/** Convenience: sign a raw JSON body text (must be an object). */
export function keetaSignText(url: string, bodyText: string, appSecret: string): string {
  const body = parseJson(bodyText);
  if (body.type !== 'object') throw new Error('keetaSignText: body is not a JSON object');
  return keetaSign(url, body, appSecret);
}

/** The URL that goes into the pre-hash for a request reached at `host` + `path`. */
export function keetaSignUrl(hostHeader: string, pathWithoutQuery: string, scheme: 'http' | 'https' = 'http'): string {
  return `${scheme}://${hostHeader}${pathWithoutQuery}`;
}
