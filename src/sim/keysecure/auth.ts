/**
 * KeySecure header authentication (docs/protocols.md 2.2), checked in this order; the first
 * failure answers:
 *
 *  1. `Api-Key` missing or empty                                  → 1002
 *  2. `Api-Key` unknown                                           → 1008
 *  3. socket remote address not on that key's whitelist           → 1003
 *  4. `Timestamp` missing, not exactly 13 digits, more than the
 *     window (60 s) older than the simulated clock, or ANY amount
 *     ahead of it                                                 → 1005
 *  5. `Access-Token` missing (every path but the token endpoint)  → 1006
 *  6. `Access-Token` unknown, revoked, expired, or issued to
 *     another Api-Key                                             → 1007
 */
import { KEYSECURE_CODES, KeySecureSimError } from './codes.js';
import type { KeySecureState } from './state.js';

export interface AuthInput {
  headers: Record<string, string>;
  remoteAddress: string;
  isTokenEndpoint: boolean;
  now: number;
}

/** Returns the authenticated Api-Key. */
export function authenticate(state: KeySecureState, input: AuthInput): string {
  const apiKey = input.headers['api-key']?.trim();
  if (!apiKey) throw new KeySecureSimError(KEYSECURE_CODES.API_KEY_REQUIRED);
  const key = state.keys.get(apiKey);
  if (!key) throw new KeySecureSimError(KEYSECURE_CODES.API_KEY_UNKNOWN);
  if (!key.whitelist.includes(input.remoteAddress)) {
    throw new KeySecureSimError(KEYSECURE_CODES.IP_NOT_ALLOWED, undefined, `source ${input.remoteAddress}`);
  }

  const ts = input.headers['timestamp'];
  if (ts === undefined || !/^\d{13}$/.test(ts)) {
    throw new KeySecureSimError(KEYSECURE_CODES.TIMESTAMP_INVALID, undefined, 'Timestamp must be 13 digits (Unix ms)');
  }
  const age = input.now - Number(ts);
  if (age < 0) throw new KeySecureSimError(KEYSECURE_CODES.TIMESTAMP_INVALID, undefined, `Timestamp is ${-age} ms in the future`);
  if (age > state.timestampWindowMs) throw new KeySecureSimError(KEYSECURE_CODES.TIMESTAMP_INVALID, undefined, `Timestamp is ${age} ms old`);

  if (input.isTokenEndpoint) return apiKey;
  const token = input.headers['access-token']?.trim();
  if (!token) throw new KeySecureSimError(KEYSECURE_CODES.ACCESS_TOKEN_REQUIRED);
  const rec = state.tokens.get(token);
  if (!rec || rec.revoked || rec.apiKey !== apiKey || input.now >= rec.expiresAtMs) {
    throw new KeySecureSimError(KEYSECURE_CODES.ACCESS_TOKEN_INVALID);
  }
  return apiKey;
}
