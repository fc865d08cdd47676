import { hasLoneSurrogate, type JsonNode, type JsonObjectNode } from './steps/json-text.js';
import { signRule, type Part, type Recipe, type SignRule, type ValueSource } from './recipe-schema.js';
import { bodyHash, compactJson, digest, encodePairs, joinPairs, jsonValueText, nonce, renderTime, sortPairs } from './steps.js';

/**
 * The recipe engine's signing: a caller's request (already split into its parameters) and the
 * recipe give the request that goes upstream. Pure apart from the nonce; no I/O.
 *
 * In order: the caller's copies of everything the gateway sets (and of the signature, and of
 * the recipe's `remove` list) are dropped; the gateway's values are added; the string to sign
 * is built part by part; it is digested and encoded; the signature is put in its place.
 */

type Pairs = Array<readonly [string, string]>;

export interface SignInput {
  method: string;
  /** The upstream's baseUrl (for the `url` part). */
  baseUrl: string;
  /** Path below baseUrl, no query. */
  path: string;
  query: Pairs;
  /** Form body fields, when the body is a form. */
  form?: Pairs | undefined;
  /** The parsed JSON body, when the recipe reads or writes its fields. */
  json?: JsonObjectNode | undefined;
  /** Any other body, forwarded and signed byte for byte. */
  rawBody?: Buffer | undefined;
  /** Multipart bodies are never part of the string to sign. */
  multipart?: boolean;
  app: Readonly<Record<string, string>>;
  /** The access token; without it, values from `token: access` are left out. */
  accessToken?: string | undefined;
  /** A token request's refresh token. */
  refreshToken?: string | undefined;
  nowMs: number;
  /** Values set instead of the recipe's `set` (a token request's parameters). */
  set?: Recipe['set'];
  /** Whether to sign at all (a token request may be unsigned). */
  signed?: boolean;
}

export interface SignedRequest {
  /** `?…` or ''. */
  query: string;
  body?: string | Buffer | undefined;
  /** Headers the gateway sets (lower-case names). */
  headers: Record<string, string>;
  contentType?: string | undefined;
  /** The string digested, and the same with every secret and token replaced by a placeholder. */
  stringToSign: string;
  masked: string;
  signature: string;
}

export class RecipeSignError extends Error {
  override readonly name = 'RecipeSignError';
}

/** The value a source gives now; undefined for a token that is not there. */
export function sourceValue(v: ValueSource, input: Pick<SignInput, 'app' | 'accessToken' | 'refreshToken' | 'nowMs'>): string | undefined {
  if (v.app !== undefined) return input.app[v.app];
  if (v.text !== undefined) return v.text;
  if (v.time !== undefined) return renderTime(input.nowMs, v.time, v.zone);
  if (v.token !== undefined) return v.token === 'access' ? input.accessToken : input.refreshToken;
  return nonce(v.nonce!);
}

export function signRequest(recipe: Recipe, input: SignInput): SignedRequest {
  const set = input.set ?? recipe.set;
  const rule = signRule(recipe);
  const put: SignRule['put'] = rule?.put ?? {};
  const value = (v: ValueSource) => sourceValue(v, input);

  // A name the gateway sets (or signs with) in any parameter place is its own in every place:
  // a caller's copy in the query, the form or the JSON body is dropped, never signed.
  const gatewayNames = [...Object.keys(set.query ?? {}), ...Object.keys(set.form ?? {}), ...Object.keys(set.json ?? {})];
  for (const k of [put.query, put.form, put.json]) if (k !== undefined) gatewayNames.push(k);
  const owned = (_place: 'query' | 'form' | 'json', extra: readonly string[]) => new Set([...gatewayNames, ...extra]);

  // Query: the caller's (less what the gateway owns), then the gateway's.
  const queryOwned = owned('query', recipe.remove.query);
  const query: Pairs = input.query.filter(([k]) => !queryOwned.has(k));
  for (const [k, v] of Object.entries(set.query ?? {})) {
    const val = value(v);
    if (val !== undefined) query.push([k, val]);
  }

  let form: Pairs | undefined;
  if (input.form || set.form || put.form) {
    const formOwned = owned('form', recipe.remove.form);
    form = (input.form ?? []).filter(([k]) => !formOwned.has(k));
    for (const [k, v] of Object.entries(set.form ?? {})) {
      const val = value(v);
      if (val !== undefined) form.push([k, val]);
    }
  }

  let json: Array<readonly [string, JsonNode]> | undefined;
  if (input.json || set.json || put.json) {
    const jsonOwned = owned('json', recipe.remove.json);
    json = (input.json?.entries ?? []).filter(([k]) => !jsonOwned.has(k));
    for (const [k, v] of Object.entries(set.json ?? {})) {
      const val = value(v);
      if (val === undefined) continue;
      // Times in s/ms are numbers in a JSON body; everything else a string.
      json.push([k, v.time === 's' || v.time === 'ms' ? { kind: 'number', lexeme: val } : { kind: 'string', value: val, json: undefined }]);
    }
  }

  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(set.headers ?? {})) {
    const val = value(v);
    if (val !== undefined) headers[k.toLowerCase()] = val;
  }

  // The body as forwarded, before the signature (a signature in the body is never part of its own string).
  const bodyBefore = json ? compactJson(json) : form ? encodePairs(form) : input.rawBody;
  const signed = (input.signed ?? true) && rule !== undefined;
  let stringToSign = '';
  let signature = '';
  if (signed) {
    const secret = input.app[rule.secret] ?? '';
    for (const p of rule.string) stringToSign += partText(p, rule, input, { query, form, json, body: bodyBefore, secret });
    if (hasLoneSurrogate(stringToSign)) throw new RecipeSignError('a parameter is not well-formed UTF-16 (lone surrogate) and cannot be signed');
    signature = digest(rule.algorithm, rule.encoding, stringToSign, secret);
    if (put.query) query.push([put.query, signature]);
    if (put.form) form!.push([put.form, signature]);
    if (put.json) json!.push([put.json, { kind: 'string', value: signature, json: undefined }]);
    if (put.header) headers[put.header.toLowerCase()] = signature;
  }

  const body = json ? compactJson(json) : form ? encodePairs(form) : input.rawBody;
  return {
    query: query.length > 0 ? '?' + encodePairs(query) : '',
    body,
    headers,
    contentType: json ? 'application/json; charset=utf-8' : form ? 'application/x-www-form-urlencoded; charset=utf-8' : undefined,
    stringToSign,
    masked: signed ? mask(stringToSign, recipe, input) : '',
    signature,
  };
}

function partText(
  p: Part,
  rule: SignRule,
  input: SignInput,
  ctx: { query: Pairs; form: Pairs | undefined; json: Array<readonly [string, JsonNode]> | undefined; body: string | Buffer | undefined; secret: string },
): string {
  if (typeof p === 'string') {
    switch (p) {
      case 'method':
        return input.method.toUpperCase();
      case 'url':
        return input.baseUrl + input.path;
      case 'path':
        return input.path;
      case 'secret':
        return ctx.secret;
      case 'body':
        return input.multipart || ctx.body === undefined ? '' : typeof ctx.body === 'string' ? ctx.body : ctx.body.toString('utf8');
    }
  }
  if ('text' in p) return p.text;
  if ('app' in p) return input.app[p.app] ?? '';
  if ('bodyHash' in p) return bodyHash(p.bodyHash, input.multipart || ctx.body === undefined ? '' : ctx.body);
  const params = p.params;
  const except = new Set(params.except);
  const sig = rule.put;
  for (const k of [sig.query, sig.form, sig.json]) if (k !== undefined) except.add(k);
  const pairs: Pairs = [];
  const take = (k: string, v: string) => {
    if (except.has(k) || (params.empty === 'drop' && v === '')) return;
    pairs.push([k, v]);
  };
  for (const from of params.from) {
    if (from === 'query') for (const [k, v] of ctx.query) take(k, v);
    else if (from === 'form') for (const [k, v] of ctx.form ?? []) take(k, v);
    else for (const [k, node] of ctx.json ?? []) take(k, jsonValueText(node));
  }
  return joinPairs(sortPairs(pairs), params.join);
}

/** The string to sign with each secret app value and each token replaced by `<app.NAME>` / `<access_token>`. */
export function mask(text: string, recipe: Recipe, input: Pick<SignInput, 'app' | 'accessToken' | 'refreshToken'>): string {
  let out = text;
  const swaps: Array<[string, string]> = [];
  for (const s of recipe.secrets) {
    const v = input.app[s];
    if (v) swaps.push([v, `<app.${s}>`]);
  }
  if (input.accessToken) swaps.push([input.accessToken, '<access_token>']);
  if (input.refreshToken) swaps.push([input.refreshToken, '<refresh_token>']);
  // Longest first, so a secret containing another is masked whole.
  swaps.sort((a, b) => b[0].length - a[0].length);
  for (const [from, to] of swaps) out = out.split(from).join(to);
  return out;
}
