import { createHash, createHmac, randomBytes } from 'node:crypto';
import { quoteJsonString, toCompactText, type JsonNode } from './steps/json-text.js';
import type { ALGORITHMS, ENCODINGS } from './recipe-schema.js';

/**
 * The named steps a recipe refers to. Each is one small pure function: the recipe says which,
 * the engine (signer.ts) strings them together. No platform lives here, only the steps.
 */

export type Algorithm = (typeof ALGORITHMS)[number];
export type Encoding = (typeof ENCODINGS)[number];

/** `algorithm` over the UTF-8 bytes of `text`, keyed by `secret` for the HMACs, in `encoding`. */
export function digest(algorithm: Algorithm, encoding: Encoding, text: string | Buffer, secret: string): string {
  const h = algorithm.startsWith('hmac-') ? createHmac(algorithm.slice(5), secret) : createHash(algorithm);
  h.update(text);
  if (encoding === 'base64') return h.digest('base64');
  const hex = h.digest('hex');
  return encoding === 'hex-upper' ? hex.toUpperCase() : hex;
}

/** The body's own hash, for the `bodyHash` part. */
export function bodyHash(kind: 'sha256-hex' | 'md5-hex' | 'sha256-base64' | 'md5-base64', body: string | Buffer): string {
  const [alg, enc] = kind.split('-') as ['sha256' | 'md5', 'hex' | 'base64'];
  return createHash(alg).update(body).digest(enc);
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** Minutes east of UTC of a zone written `UTC` or `+08:00`. */
export function zoneOffsetMinutes(zone: string | undefined): number {
  if (zone === undefined || zone === 'UTC') return 0;
  const sign = zone.startsWith('-') ? -1 : 1;
  return sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
}

/**
 * A time as the recipe wants it: `s` (Unix seconds), `ms` (Unix milliseconds) or a format of
 * yyyy MM dd HH mm ss SSS (anything else literal) in the given zone.
 */
export function renderTime(ms: number, unit: string, zone?: string): string {
  if (unit === 's') return String(Math.floor(ms / 1000));
  if (unit === 'ms') return String(Math.floor(ms));
  const d = new Date(Math.floor(ms) + zoneOffsetMinutes(zone) * 60_000);
  return unit.replace(/yyyy|MM|dd|HH|mm|ss|SSS/g, (t) => {
    switch (t) {
      case 'yyyy':
        return pad(d.getUTCFullYear(), 4);
      case 'MM':
        return pad(d.getUTCMonth() + 1);
      case 'dd':
        return pad(d.getUTCDate());
      case 'HH':
        return pad(d.getUTCHours());
      case 'mm':
        return pad(d.getUTCMinutes());
      case 'ss':
        return pad(d.getUTCSeconds());
      default:
        return pad(d.getUTCMilliseconds(), 3);
    }
  });
}

/** `n` random hex characters. */
export function nonce(n: number): string {
  return randomBytes(Math.ceil(n / 2)).toString('hex').slice(0, n);
}

/**
 * Named step `json-value-text` (the rule Keeta signs its body with, docs/protocols.md 4.1): a
 * JSON field's value as signed text. Strings raw, numbers by their exact lexeme (an int64 keeps
 * every digit), true/false/null, objects and arrays as compact JSON.
 */
export function jsonValueText(node: JsonNode): string {
  switch (node.kind) {
    case 'string':
      return node.value;
    case 'number':
      return node.lexeme;
    case 'boolean':
      return node.value ? 'true' : 'false';
    case 'null':
      return 'null';
    default:
      return toCompactText(node);
  }
}

/** Compact JSON of top-level entries, each value by its exact text (named step `compact-json`). */
export function compactJson(entries: ReadonlyArray<readonly [string, JsonNode]>): string {
  let s = '{';
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    if (i > 0) s += ',';
    s += quoteJsonString(e[0]) + ':' + toCompactText(e[1]);
  }
  return s + '}';
}

/** application/x-www-form-urlencoded and query-string encoding: every byte outside A-Z a-z 0-9 - _ . ~ percent-encoded. */
export function encodeComponent(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

export function encodePairs(pairs: ReadonlyArray<readonly [string, string]>): string {
  let s = '';
  for (let i = 0; i < pairs.length; i++) {
    const [k, v] = pairs[i]!;
    if (i > 0) s += '&';
    s += encodeComponent(k) + '=' + encodeComponent(v);
  }
  return s;
}

/** A query string or form body into decoded pairs, in order (`+` is a space). Undefined when an escape is malformed. */
export function decodePairs(text: string): Array<[string, string]> | undefined {
  const out: Array<[string, string]> = [];
  if (text === '') return out;
  for (const piece of text.split('&')) {
    if (piece === '') continue;
    const eq = piece.indexOf('=');
    const k = eq < 0 ? piece : piece.slice(0, eq);
    const v = eq < 0 ? '' : piece.slice(eq + 1);
    try {
      out.push([decodeURIComponent(k.replace(/\+/g, ' ')), decodeURIComponent(v.replace(/\+/g, ' '))]);
    } catch {
      return undefined;
    }
  }
  return out;
}

/** Sort pairs by key in UTF-16 code-unit order (stable), as every documented platform sorts. */
export function sortPairs(pairs: Array<readonly [string, string]>): Array<readonly [string, string]> {
  return pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/** Join sorted pairs `kv` (key value key value…) or `k=v&` (key=value&key=value). */
export function joinPairs(pairs: ReadonlyArray<readonly [string, string]>, join: 'kv' | 'k=v&'): string {
  let s = '';
  for (let i = 0; i < pairs.length; i++) {
    const [k, v] = pairs[i]!;
    if (join === 'kv') s += k + v;
    else s += (i > 0 ? '&' : '') + k + '=' + v;
  }
  return s;
}

/** A value at a dotted path of a parsed JSON answer. */
export function pick(obj: unknown, path: string): unknown {
  let cur = obj;
  for (const key of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}
