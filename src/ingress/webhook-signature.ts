import { hash, timingSafeEqual } from 'node:crypto';
import type { WebhookRecipe } from '../config/ingress-schema.js';
import { toCompactText, type JsonNode, type JsonObjectNode } from '../provider/steps/json-text.js';

/**
 * Keeta webhook `sig` (docs/protocols.md 1.3): plain SHA-256, lower-case hex, over every field
 * but `sig`, keys sorted, values rendered as in a request signature (4.1: strings raw, numbers
 * as their exact lexeme, objects and arrays as compact JSON as received). Which URL, if any,
 * goes in front is not documented, so each candidate recipe builds its own pre-hash:
 *
 * | recipe     | pre-hash                          |
 * |------------|-----------------------------------|
 * | url-query  | ownUrl + "?" + sorted + secret    |
 * | url-concat | ownUrl + sorted + secret          |
 * | sorted     | sorted + secret                   |
 * | query      | "?" + sorted + secret             |
 */
export function sortedParams(body: JsonObjectNode): string {
  return body.entries
    .filter(([k]) => k !== 'sig')
    .map(([k, v]) => [k, valueText(v)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

function valueText(node: JsonNode): string {
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

export function recipePreHash(recipe: WebhookRecipe, ownUrl: string, sorted: string, secret: string): string {
  switch (recipe) {
    case 'url-query':
      return `${ownUrl}?${sorted}${secret}`;
    case 'url-concat':
      return `${ownUrl}${sorted}${secret}`;
    case 'sorted':
      return `${sorted}${secret}`;
    case 'query':
      return `?${sorted}${secret}`;
  }
}

/** The first recipe (in the configured order) whose digest equals `sig`, else undefined. */
export function matchingRecipe(recipes: readonly WebhookRecipe[], ownUrl: string, body: JsonObjectNode, sig: string, secret: string): WebhookRecipe | undefined {
  if (!/^[0-9a-fA-F]{64}$/.test(sig)) return undefined;
  const given = Buffer.from(sig.toLowerCase(), 'hex');
  const sorted = sortedParams(body);
  for (const recipe of recipes) {
    const digest = Buffer.from(hash('sha256', recipePreHash(recipe, ownUrl, sorted, secret), 'hex'), 'hex');
    if (timingSafeEqual(digest, given)) return recipe;
  }
  return undefined;
}
