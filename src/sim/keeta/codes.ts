/**
 * Response codes of the Keeta simulator. Keeta's own table is not public (docs/protocols.md 1.8):
 * these are the simulator's choices inside the documented bands
 *   115000100–115000199 signature / token / authorisation failures
 *   115000200–115000399 business-parameter errors
 *   315000100–315000199 server errors
 * The table is repeated in src/sim/README.md.
 */
export const KEETA_SIM_CODES = {
  OK: 0,
  /** `sig` missing, not a string, or not the SHA-256 the simulator rebuilt (also: no Host header). */
  SIG_INVALID: 115000101,
  /** `appId` missing or not this app's id. */
  APP_ID_INVALID: 115000102,
  /** `timestamp` missing, not whole Unix seconds, or outside the window (past or future). */
  TIMESTAMP_INVALID: 115000103,
  /** Merchant path called without `accessToken`. */
  ACCESS_TOKEN_MISSING: 115000104,
  /** `accessToken` unknown, revoked, expired, or superseded by a refresh and past its grace. */
  ACCESS_TOKEN_INVALID: 115000105,
  /** `refreshToken` unknown, revoked or expired. */
  REFRESH_TOKEN_INVALID: 115000106,
  /** `refreshToken` already used once (counted in `refreshReuse`). */
  REFRESH_TOKEN_REUSED: 115000107,
  /** A refresh of this merchant less than `refreshSpacingMs` after its previous refresh. */
  REFRESH_TOO_SOON: 115000108,
  /** Authorization `code` unknown, already used, or older than 10 minutes. */
  AUTH_CODE_INVALID: 115000109,
  /** The body's `shopId` is not one of the token's merchant's shops. */
  SHOP_NOT_AUTHORISED: 115000110,
  /** Not POST, Content-Type not application/json (UTF-8), body not valid JSON / not an object, body too large. */
  REQUEST_MALFORMED: 115000201,
  /** A business parameter is missing or invalid, unknown grantType, or a duplicate key in any object. */
  PARAM_INVALID: 115000202,
  /** No such endpoint under /api/open. */
  PATH_NOT_FOUND: 115000203,
  /** Order operation not allowed in the order's current status (e.g. confirming a cancelled order). */
  ORDER_STATUS_CONFLICT: 115000204,
  /** Per-item code inside `errorList` of a batch answer (the batch itself answers 0). */
  BATCH_ITEM_FAILED: 115000301,
  /** Simulated server exception (default code for failNext). */
  SERVER_ERROR: 315000101,
} as const;

export type KeetaSimCodeName = keyof typeof KEETA_SIM_CODES;

/** Default `message` of each code. */
export const KEETA_SIM_MESSAGES: Readonly<Record<KeetaSimCodeName, string>> = {
  OK: 'Success',
  SIG_INVALID: 'sig invalid',
  APP_ID_INVALID: 'appId invalid',
  TIMESTAMP_INVALID: 'timestamp invalid or expired',
  ACCESS_TOKEN_MISSING: 'accessToken is required',
  ACCESS_TOKEN_INVALID: 'accessToken invalid or expired',
  REFRESH_TOKEN_INVALID: 'refreshToken invalid or expired',
  REFRESH_TOKEN_REUSED: 'refreshToken already used',
  REFRESH_TOO_SOON: 'refresh too frequent, at most one refresh per minute',
  AUTH_CODE_INVALID: 'authorization code invalid, used or expired',
  SHOP_NOT_AUTHORISED: 'shop not authorised for this accessToken',
  REQUEST_MALFORMED: 'request malformed',
  PARAM_INVALID: 'parameter invalid',
  PATH_NOT_FOUND: 'api not found',
  ORDER_STATUS_CONFLICT: 'order status does not allow this operation',
  BATCH_ITEM_FAILED: 'item update failed',
  SERVER_ERROR: 'server exception, please retry',
};

/** Thrown inside request handling; becomes `{code, message, data:null}`. */
export class KeetaSimError extends Error {
  readonly code: number;
  constructor(
    readonly codeName: KeetaSimCodeName,
    detail?: string,
  ) {
    super(detail ? `${KEETA_SIM_MESSAGES[codeName]}: ${detail}` : KEETA_SIM_MESSAGES[codeName]);
    this.name = 'KeetaSimError';
    this.code = KEETA_SIM_CODES[codeName];
  }
}
