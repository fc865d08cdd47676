import type { RecipeUpstreamConfig } from '../config/schema.js';
import { isGatewayError } from '../core/errors.js';
import { recipeTouchesJson, splitRequest } from '../provider/request-parts.js';
import { signRequest } from '../provider/signer.js';

export interface RecipeSignArgs {
  name: string;
  path: string;
  method?: string | undefined;
  body?: string | undefined;
  /** Unix seconds; the recipe renders them in its own unit or format. */
  timestampSec: number;
  accessToken?: string | undefined;
}

/**
 * `countersign sign` for a recipe upstream: the string the recipe digests, with every secret
 * app value and the token masked, the signature, and the request as it would go upstream
 * (query string encoded as on the wire; secrets and token masked there too).
 */
export function signRecipeCommand(cfg: RecipeUpstreamConfig, args: RecipeSignArgs): string {
  const recipe = cfg.recipe;
  const q = args.path.indexOf('?');
  const path = q < 0 ? args.path : args.path.slice(0, q);
  const query = q < 0 ? '' : args.path.slice(q);
  const body = Buffer.from(args.body ?? '', 'utf8');
  const touchesJson = recipeTouchesJson(recipe);
  let parts;
  try {
    parts = splitRequest(touchesJson, query, touchesJson || body.length === 0 ? {} : { 'content-type': 'application/octet-stream' }, body);
  } catch (err) {
    throw new Error(isGatewayError(err) ? err.message : String(err));
  }
  const method = (args.method ?? (body.length > 0 ? 'POST' : 'GET')).toUpperCase();
  const merchantCall = recipe.tokens.model !== 'none' && !recipe.merchant.appLevelPaths.includes(path);
  const accessToken = merchantCall ? (args.accessToken ?? '<access_token>') : undefined;
  const out = signRequest(recipe, {
    method,
    baseUrl: cfg.baseUrl,
    path,
    query: parts.query,
    form: parts.form,
    json: parts.json,
    rawBody: parts.rawBody,
    app: cfg.app,
    accessToken,
    nowMs: args.timestampSec * 1000,
  });
  const maskAll = (s: string) => {
    let t = s;
    for (const k of recipe.secrets) if (cfg.app[k]) t = t.split(cfg.app[k]!).join(`<app.${k}>`);
    if (args.accessToken) t = t.split(args.accessToken).join('<access_token>');
    return t;
  };
  const notes: string[] = [];
  if (merchantCall && args.accessToken === undefined) notes.push('note: signed with the literal placeholder <access_token>; pass --access-token TOKEN (or --merchant ID) to sign with a real one');
  const headers = Object.entries(out.headers).map(([k, v]) => `  ${k}: ${k === recipe.sign.put?.header?.toLowerCase() ? v : maskAll(v)}`);
  return [
    `string to sign (${recipe.sign.algorithm}${recipe.sign.algorithm.startsWith('hmac-') ? ` keyed by <app.${recipe.sign.secret}>` : ''}, ${recipe.sign.encoding}; secrets shown as <app.NAME>):`,
    out.masked,
    '',
    `sign: ${out.signature}`,
    `timestamp: ${args.timestampSec}`,
    `request: ${method} ${cfg.baseUrl}${path}${maskAll(out.query)}`,
    ...(headers.length ? ['headers:', ...headers] : []),
    ...(out.body !== undefined && out.body.length > 0 ? [`body: ${maskAll(out.body.toString())}`] : []),
    ...notes,
    '',
  ].join('\n');
}
