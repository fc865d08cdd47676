/**
 * The `sig` of a Keeta push (webhook or Event 1). Keeta does not document which URL, if any,
 * goes into the pre-hash of its own pushes (docs/protocols.md 1.3), so the simulator can sign
 * with each candidate recipe:
 *
 *   url-query   receiverUrl + "?" + sorted + secret
 *   url-concat  receiverUrl + sorted + secret
 *   sorted      sorted + secret
 *   query       "?" + sorted + secret
 *
 * `sorted` = every field except `sig`, keys sorted, `key=value` joined by `&`, values rendered
 * as docs/protocols.md 4.1 says (strings raw, numbers as their lexeme). SHA-256, lower-case hex.
 */
import type { JsonObject } from './json.js';
import { keetaJoinedParams, sha256Hex } from './signature.js';

export const WEBHOOK_RECIPES = ['url-query', 'url-concat', 'sorted', 'query'] as const;
export type WebhookRecipe = (typeof WEBHOOK_RECIPES)[number];

export function checkRecipe(value: unknown): WebhookRecipe {
  if (typeof value !== 'string' || !(WEBHOOK_RECIPES as readonly string[]).includes(value)) {
    throw new TypeError(`recipe must be one of ${WEBHOOK_RECIPES.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as WebhookRecipe;
}

/** The string that is hashed, secret included. */
export function webhookPreHash(recipe: WebhookRecipe, receiverUrl: string, fields: JsonObject, secret: string): string {
  const sorted = keetaJoinedParams(fields);
  switch (recipe) {
    case 'url-query':
      return `${receiverUrl}?${sorted}${secret}`;
    case 'url-concat':
      return `${receiverUrl}${sorted}${secret}`;
    case 'sorted':
      return `${sorted}${secret}`;
    case 'query':
      return `?${sorted}${secret}`;
  }
}

export function webhookSig(recipe: WebhookRecipe, receiverUrl: string, fields: JsonObject, secret: string): string {
  return sha256Hex(webhookPreHash(recipe, receiverUrl, fields, secret));
}

/** The receiver URL as it goes into a recipe: scheme, host, port and path, no query, no fragment. */
export function receiverUrlOf(target: string): string {
  const u = new URL(target);
  return `${u.protocol}//${u.host}${u.pathname}`;
}
