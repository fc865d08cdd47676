import type { RequestClass } from '../observability/metrics.js';

/**
 * Error-code classes (docs/protocols.md 4.4) and the code label of
 * countersign_upstream_codes_total. Pure functions over the upstream's envelope.
 */

/** What the proxy reads from an upstream answer: the envelope code, when there is one. */
export interface Envelope {
  code: number;
  /** Keeta batch endpoints: items that failed although code is 0. */
  errorListLength: number;
}

/** Parse `{code, ...}` from a JSON body; undefined when the body is not such an envelope. */
export function readEnvelope(body: Buffer): Envelope | undefined {
  if (body.length === 0 || body.length > 4 * 1024 * 1024) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  const { code, errorList } = parsed as { code?: unknown; errorList?: unknown };
  if (typeof code !== 'number' || !Number.isInteger(code)) return undefined;
  return { code, errorListLength: Array.isArray(errorList) ? errorList.length : 0 };
}

const inRange = (n: number, lo: number, hi: number) => n >= lo && n <= hi;

/** An answer without a `{code}` envelope: an HTTP error when not 2xx, else something unknown. */
function noEnvelope(status: number): RequestClass {
  return status >= 200 && status <= 299 ? 'unknown_error' : 'upstream_http_error';
}

export function classifyKeeta(status: number, env: Envelope | undefined): RequestClass {
  if (!env) return noEnvelope(status);
  const { code } = env;
  // docs/protocols.md 4.4 classifies by the envelope whenever there is one, whatever the HTTP status.
  if (code === 0) return env.errorListLength > 0 ? 'partial_failure' : 'success';
  if (inRange(code, 115000100, 115000199)) return 'signature_error';
  if (inRange(code, 115000200, 115000399)) return 'business_error';
  if (inRange(code, 315000100, 315000199)) return 'server_error';
  return 'unknown_error';
}

const KEYSECURE_AUTH = new Set([1002, 1006, 1007, 1008, 1010, 1011, 1012]);

export function classifyKeySecure(status: number, env: Envelope | undefined): RequestClass {
  if (!env) return noEnvelope(status);
  const { code } = env;
  if (code === 0) return 'success';
  if (KEYSECURE_AUTH.has(code)) return 'auth_error';
  if (code === 1005) return 'timestamp_error';
  if (code === 1003) return 'ip_not_allowed';
  if (code === 1009) return 'rate_limited';
  if (code === 1001) return 'server_error';
  if (code === 1004 || code === 1013 || inRange(code, 2000, 4999)) return 'business_error';
  return 'unknown_error';
}

/**
 * The `code` label: the code itself when it is documented (bounded sets), else `other`.
 * Keeta documents only bands, so codes inside its three bands are kept (at most 400 values),
 * plus the operator's tokenErrorCodes. KeySecure: 0 and 1001–1013.
 */
export function keetaCodeLabel(code: number, tokenErrorCodes: readonly number[]): string {
  if (code === 0 || inRange(code, 115000100, 115000399) || inRange(code, 315000100, 315000199) || tokenErrorCodes.includes(code)) {
    return String(code);
  }
  return 'other';
}

export function keySecureCodeLabel(code: number): string {
  return code === 0 || inRange(code, 1001, 1013) ? String(code) : 'other';
}
