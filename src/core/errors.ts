/**
 * Refusals by the proxy itself (README "Errors"). Each carries a stable `code`, the HTTP
 * `status`, and optional response headers; the error middleware turns it into
 * `{"error": {"code", "message", "requestId"}}`. Messages are shown to callers: they name what
 * is wrong and never contain a secret.
 */
export const ERROR_STATUS = {
  BAD_JSON: 400,
  BAD_PATH: 400,
  UNKNOWN_MERCHANT: 400,
  BAD_REQUEST: 400,
  BODY_TOO_LARGE: 413,
  CALLER_UNAUTHENTICATED: 401,
  ADMIN_UNAUTHENTICATED: 401,
  CALLER_FORBIDDEN: 403,
  FORBIDDEN_PATH: 403,
  UNKNOWN_UPSTREAM: 404,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  /** The caller closed the connection before its request was read (nginx's 499). */
  CLIENT_CLOSED: 499,
  CONFLICT: 409,
  /** The upstream's configured rate is used up and the wait bound passed. */
  RATE_LIMITED: 429,
  TOKEN_UNAVAILABLE: 503,
  STORE_UNAVAILABLE: 503,
  /** The gateway has not finished starting (the token store is not open yet). */
  STARTING: 503,
  UPSTREAM_UNREACHABLE: 502,
  /** The upstream's answer is over limits.maxResponseBytes. */
  UPSTREAM_RESPONSE_TOO_LARGE: 502,
  UPSTREAM_TIMEOUT: 504,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class GatewayError extends Error {
  override readonly name = 'GatewayError';
  readonly status: number;
  readonly expose = true;
  readonly headers: Record<string, string>;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: { headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.status = ERROR_STATUS[code];
    this.headers = options.headers ?? {};
  }

  toJSON(requestId: string) {
    return { error: { code: this.code, message: this.message, requestId } };
  }
}

/** Before the token store is open: not an outage, a start still under way (README "Errors"). */
export function startingError(): GatewayError {
  return new GatewayError('STARTING', 'the gateway is starting: the token store is not open yet; retry shortly', { headers: { 'Retry-After': '2' } });
}

export function isGatewayError(err: unknown): err is GatewayError {
  return err instanceof GatewayError;
}

/** A config file with problems: every problem, each prefixed with its path. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`invalid config:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
}
