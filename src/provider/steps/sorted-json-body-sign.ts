/**
 * Keeta request signing, exactly as docs/protocols.md 4.1 specifies:
 *
 * 1. drop the caller's `sig`; replace the caller's `appId`, `timestamp`, `accessToken` with
 *    ours (`accessToken` is omitted entirely for app-level calls);
 * 2. sort the top-level keys by UTF-16 code units (JS default string order);
 * 3. value text: string raw; number lexeme; `true`/`false`/`null`; object/array compact JSON;
 * 4. pre-hash = signUrl + '?' + join('&', key + '=' + text) + appSecret;
 * 5. sig = lowercase hex SHA-256 of the pre-hash's UTF-8 bytes (plain hash, not HMAC);
 * 6. forwarded body = compact JSON of the same entries in the same (sorted) order, built from
 *    the same value texts (strings JSON-quoted), with `"sig"` appended last.
 *
 * Each nested value's compact text is computed once and used for both the signed string and
 * the body, so they cannot diverge.
 *
 * Inputs that would make the signature ambiguous are rejected with `KeetaSignError`: a
 * top-level key or string value containing a lone UTF-16 surrogate (it is signed raw, and a
 * lone surrogate has no UTF-8 encoding) and duplicate top-level keys in a hand-built body.
 */
import { hash } from 'node:crypto';
import { hasLoneSurrogate, quoteJsonString, toCompactText, type JsonNode, type JsonObjectNode } from './json-text.js';

export interface KeetaSignInput {
  /** Upstream baseUrl + request path, no query string, e.g. 'https://open.mykeeta.com/api/open/order/get'. */
  signUrl: string;
  appSecret: string;
  /** Decimal integer lexeme from config (int64-safe), emitted as a JSON number. */
  appId: string;
  /** Integer Unix seconds, emitted as a JSON number. */
  timestampSec: number;
  /** Merchant token; omit for app-level calls (then any caller `accessToken` is dropped, not signed). */
  accessToken?: string;
  /** The caller's parsed body. Not modified. */
  body: JsonObjectNode;
}

export interface KeetaSigned {
  /** Compact JSON to forward upstream: the signed entries in sorted order, then "sig". */
  body: string;
  /** 64 lowercase hex characters. */
  sig: string;
  /** The exact pre-hash with the secret replaced by '<appSecret>'. Never contains the secret. */
  preHashRedacted: string;
}

/** A sign input that cannot be signed unambiguously (never contains the secret). */
export class KeetaSignError extends Error {
  override readonly name = 'KeetaSignError';
}

export const APP_SECRET_PLACEHOLDER = '<appSecret>';

const DECIMAL_ID = /^(?:0|[1-9][0-9]*)$/;
type Entry = readonly [string, JsonNode];

function compareKeys(a: Entry, b: Entry): number {
  const x = a[0];
  const y = b[0];
  return x < y ? -1 : x > y ? 1 : 0;
}

export function signKeetaRequest(input: KeetaSignInput): KeetaSigned {
  const { signUrl, appSecret, appId, timestampSec, accessToken, body } = input;
  if (signUrl.length === 0 || signUrl.includes('?') || signUrl.includes('#')) {
    throw new KeetaSignError('signUrl must be a non-empty URL without query string or fragment');
  }
  if (appSecret.length === 0) throw new KeetaSignError('appSecret is empty');
  if (!DECIMAL_ID.test(appId)) throw new KeetaSignError('appId must be a decimal integer lexeme');
  // Upper bound catches a millisecond timestamp passed by mistake (1e11 s is the year 5138).
  if (!Number.isSafeInteger(timestampSec) || timestampSec < 0 || timestampSec >= 1e11) {
    throw new KeetaSignError('timestampSec must be a non-negative integer number of Unix seconds');
  }
  if (accessToken !== undefined && (accessToken.length === 0 || hasLoneSurrogate(accessToken))) {
    throw new KeetaSignError('accessToken is empty or not well-formed UTF-16');
  }

  const fields: Entry[] = [];
  const callerEntries = body.entries;
  for (let i = 0; i < callerEntries.length; i++) {
    const e = callerEntries[i] as Entry;
    const k = e[0];
    if (k === 'sig' || k === 'appId' || k === 'timestamp' || k === 'accessToken') continue;
    fields.push(e);
  }
  fields.push(['appId', { kind: 'number', lexeme: appId }]);
  fields.push(['timestamp', { kind: 'number', lexeme: String(timestampSec) }]);
  if (accessToken !== undefined) fields.push(['accessToken', { kind: 'string', value: accessToken, json: undefined }]);
  fields.sort(compareKeys);

  let signed = signUrl + '?';
  let out = '{';
  let prevKey: string | undefined;
  for (let i = 0; i < fields.length; i++) {
    const [key, node] = fields[i] as Entry;
    if (key === prevKey) throw new KeetaSignError('duplicate top-level key in body');
    prevKey = key;
    if (hasLoneSurrogate(key)) throw new KeetaSignError('a top-level key is not well-formed UTF-16 (lone surrogate)');
    let signText: string;
    let bodyText: string;
    switch (node.kind) {
      case 'string':
        if (hasLoneSurrogate(node.value)) {
          throw new KeetaSignError('a top-level string value is not well-formed UTF-16 (lone surrogate)');
        }
        signText = node.value;
        bodyText = node.json ?? quoteJsonString(node.value);
        break;
      case 'number':
        signText = bodyText = node.lexeme;
        break;
      case 'boolean':
        signText = bodyText = node.value ? 'true' : 'false';
        break;
      case 'null':
        signText = bodyText = 'null';
        break;
      default: // object, array: compact text computed once (or the parser's cached slice), used for both
        signText = bodyText = toCompactText(node);
    }
    if (i > 0) {
      signed += '&';
      out += ',';
    }
    signed += key + '=' + signText;
    out += quoteJsonString(key) + ':' + bodyText;
  }

  // One-shot plain SHA-256 (node:crypto `hash`, Node >= 20.12; same digest as createHash, less
  // per-call overhead). A string argument is hashed as its UTF-8 bytes.
  const sig = hash('sha256', signed + appSecret, 'hex');
  out += ',"sig":"' + sig + '"}';
  return { body: out, sig, preHashRedacted: signed + APP_SECRET_PLACEHOLDER };
}

/**
 * App-level call (no accessToken), for the token refresher and callback registration:
 * `fields` are the business fields in any order (e.g. `[['grantType', jsonString('refresh_token')], ...]`,
 * built with `jsonString`/`jsonNumber` from json-text.ts).
 */
export function signKeetaAppCall(
  signUrl: string,
  appSecret: string,
  appId: string,
  timestampSec: number,
  fields: ReadonlyArray<readonly [string, JsonNode]>,
): KeetaSigned {
  return signKeetaRequest({ signUrl, appSecret, appId, timestampSec, body: { kind: 'object', entries: fields, json: undefined } });
}
