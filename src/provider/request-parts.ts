import type { IncomingHttpHeaders } from 'node:http';
import { GatewayError } from '../core/errors.js';
import { JsonSyntaxError, parseJsonText, type JsonObjectNode } from './steps/json-text.js';
import { decodeUtf8, headerValue } from '../proxy/upstream.js';
import { signRule, type Recipe } from './recipe-schema.js';
import { decodePairs } from './steps.js';

/** A caller's request split into what a recipe signs: query pairs, and a form, a JSON object or raw bytes. */
export interface RequestParts {
  query: Array<readonly [string, string]>;
  form?: Array<readonly [string, string]> | undefined;
  json?: JsonObjectNode | undefined;
  rawBody?: Buffer | undefined;
  multipart: boolean;
}

/** Whether the recipe reads or writes the JSON body's fields (then the body is parsed once, lexemes kept). */
export function recipeTouchesJson(recipe: Recipe): boolean {
  return (
    recipe.set.json !== undefined ||
    signRule(recipe)?.put.json !== undefined ||
    recipe.merchant.index?.json !== undefined ||
    recipe.remove.json.length > 0 ||
    signRule(recipe)?.string.some((p) => typeof p === 'object' && 'params' in p && p.params.from.includes('json')) === true
  );
}

/**
 * Whether the caller's query string goes upstream exactly as sent: the recipe sets, removes,
 * signs and indexes nothing in it (then it is not even decoded).
 */
export function recipePassesQuery(recipe: Recipe): boolean {
  return (
    recipe.set.query === undefined &&
    recipe.remove.query.length === 0 &&
    signRule(recipe)?.put.query === undefined &&
    recipe.merchant.index?.query === undefined &&
    signRule(recipe)?.string.some((p) => typeof p === 'object' && 'params' in p && p.params.from.includes('query')) !== true
  );
}

/** Parse once: throws GatewayError for input that cannot be signed unambiguously. */
export function splitRequest(touchesJson: boolean, queryText: string, headers: IncomingHttpHeaders, body: Buffer): RequestParts {
  const query = decodePairs(queryText.startsWith('?') ? queryText.slice(1) : queryText);
  if (!query) throw new GatewayError('BAD_PATH', 'the query string has a malformed percent-escape');
  const type = (headerValue(headers, 'content-type') ?? '').toLowerCase();
  if (type.startsWith('multipart/')) return { query, rawBody: body, multipart: true };
  if (type.startsWith('application/x-www-form-urlencoded')) {
    const text = decodeUtf8(body);
    const form = text === undefined ? undefined : decodePairs(text);
    if (!form) throw new GatewayError('BAD_REQUEST', 'the form body is not valid UTF-8 form encoding');
    return { query, form, multipart: false };
  }
  if (touchesJson) {
    const text = decodeUtf8(body);
    if (text === undefined) throw new GatewayError('BAD_JSON', 'the body is not valid UTF-8');
    if (text.trim() === '') return { query, json: { kind: 'object', entries: [], json: undefined }, multipart: false };
    let node;
    try {
      node = parseJsonText(text);
    } catch (err) {
      if (err instanceof JsonSyntaxError) throw new GatewayError('BAD_JSON', `the body is not valid JSON: ${err.message}`);
      throw err;
    }
    if (node.kind !== 'object') throw new GatewayError('BAD_JSON', `this upstream needs a JSON object body, not a JSON ${node.kind}`);
    return { query, json: node, multipart: false };
  }
  return { query, rawBody: body.length > 0 ? body : undefined, multipart: false };
}
