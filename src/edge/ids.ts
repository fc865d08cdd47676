import { randomUUID } from 'node:crypto';

/**
 * Identifiers that come from outside and end up in logs, headers, store keys and URLs. Each is
 * checked against one rule here, so the proxy and the admin API agree on what they accept.
 */

const REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

/** The caller's `X-Request-Id` when it is a plain token, else a new one (never echo markup back). */
export function requestIdFrom(header: string | string[] | undefined): string {
  return typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
}

/**
 * A merchant id: 1-128 letters, digits, `.`, `_`, `:`, `-`, starting with a letter or digit,
 * so `.`, `..` and other path-like names can never become one.
 */
const MERCHANT_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

export const MERCHANT_ID_RULE = 'merchant ids are 1-128 letters, digits, . _ : - starting with a letter or digit';

export function isMerchantId(id: string): boolean {
  return MERCHANT_ID.test(id);
}
