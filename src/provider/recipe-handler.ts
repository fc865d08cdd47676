import type { Clock } from '../core/clock.js';
import type { RecipeUpstream } from '../config/signed-schema.js';
import type { Logger } from '../observability/logger.js';
import { forwardableRequestHeaders } from '../edge/headers.js';
import { isMerchantId, MERCHANT_ID_RULE } from '../edge/ids.js';
import { GatewayError } from '../core/errors.js';
import { reachesEndpoint } from '../edge/endpoint-match.js';
import { getField } from './steps/json-text.js';
import type { UpstreamClock } from './steps/upstream-clock.js';
import type { UpstreamRequest } from '../proxy/forwarder.js';
import { headerValue, splitBaseUrl, type Exchange, type UpstreamHandler } from '../proxy/upstream.js';
import type { TokenCache } from '../tokens/token-cache.js';
import type { TokenService } from '../tokens/token-service.js';
import { KEYSECURE_MERCHANT, type TokenRecord } from '../tokens/types.js';
import type { AnswerJudge } from './classes.js';
import { signRule } from './recipe-schema.js';
import { recipePassesQuery, recipeTouchesJson, splitRequest, type RequestParts } from './request-parts.js';
import { RecipeSignError, signRequest, sourceValue } from './signer.js';
import { checkJsonBody } from './steps/json-check.js';
import { createFaultReporter } from './steps/config-faults.js';

/** What the engine needs of an upstream: its recipe, app values and addresses (a built-in's config gives the same). */
export type RecipeRun = Pick<RecipeUpstream, 'baseUrl' | 'tokenBaseUrl' | 'timeout' | 'recipe' | 'app'> & {
  type: string;
  /** The token request's own timeout; given, it also goes on its own connections (the token lane). */
  tokenTimeout?: number | undefined;
};

/** A merchant id looked up in the index: what a shop or seller id may look like. */
const INDEX_VALUE = /^[A-Za-z0-9._:@=+\/-]{1,128}$/;

/** The merchant a recipe call is made for: `_` for an app token, undefined for none. */
export function chooseMerchant(cfg: RecipeRun, name: string, path: string, headers: Record<string, string | string[] | undefined>, parts: RequestParts, cache: TokenCache): string | undefined {
  const { tokens, merchant } = cfg.recipe;
  if (tokens.model === 'none') return undefined;
  if (tokens.model === 'app') return KEYSECURE_MERCHANT;
  if (merchant.appLevelPaths.includes(path)) return undefined;
  const named = headerValue(headers, 'x-countersign-merchant');
  if (named !== undefined) {
    if (!isMerchantId(named)) throw new GatewayError('UNKNOWN_MERCHANT', `X-Countersign-Merchant: ${MERCHANT_ID_RULE}`);
    return named;
  }
  const index = merchant.index;
  let value: string | undefined;
  let field = '';
  if (index?.query !== undefined) {
    field = index.query;
    value = parts.query.find(([k]) => k === field)?.[1];
  } else if (index?.form !== undefined) {
    field = index.form;
    value = parts.form?.find(([k]) => k === field)?.[1];
  } else if (index?.json !== undefined) {
    field = index.json;
    const node = parts.json && getField(parts.json, field);
    value = node?.kind === 'number' ? node.lexeme : node?.kind === 'string' ? node.value : undefined;
  }
  if (value === undefined) {
    throw new GatewayError('UNKNOWN_MERCHANT', `${path} needs a merchant: send X-Countersign-Merchant${index ? ` or ${field}` : ''}`);
  }
  if (!INDEX_VALUE.test(value)) throw new GatewayError('UNKNOWN_MERCHANT', `${field} ${JSON.stringify(value).slice(0, 40)} is not an id this upstream indexes`);
  const found = cache.merchantForShop(name, value);
  if (!found) throw new GatewayError('UNKNOWN_MERCHANT', `no merchant of ${name} is known for ${field} ${value}`);
  return found;
}

/**
 * The proxy's handler for any recipe upstream: the caller's request is split once (query, form
 * or a lexeme-preserving JSON tree), the merchant chosen, and each attempt signs afresh with the
 * token in use and a timestamp on the upstream's clock.
 */
export function createRecipeHandler(deps: {
  name: string;
  cfg: RecipeRun;
  tokens: TokenService | undefined;
  cache: TokenCache;
  clock: Clock;
  upstreamClock: UpstreamClock;
  judge: AnswerJudge;
  /** Where configuration faults (answers.faults) are reported. */
  log?: Logger | undefined;
}): UpstreamHandler {
  const { name, cfg, tokens, cache, upstreamClock, judge } = deps;
  const recipe = cfg.recipe;
  const { origin, basePath } = splitBaseUrl(cfg.baseUrl);
  const touchesJson = recipeTouchesJson(recipe);
  const passesQuery = recipePassesQuery(recipe);
  const checksJson = recipe.body?.check === 'json';
  const appModel = recipe.tokens.model === 'app';
  const tokenPath = recipe.tokens.request?.path.toLowerCase();
  // Headers the gateway sets, and the body's type when it rewrites the body: callers' copies are dropped.
  const owned = new Set(Object.keys(recipe.set.headers ?? {}).map((h) => h.toLowerCase()));
  const putHeader = recipe.sign.put?.header;
  if (putHeader) owned.add(putHeader.toLowerCase());
  const ownedWithBody = new Set([...owned, 'content-type', 'content-encoding']);
  // Defaults whose value is fixed by the config (app values, text) are worked out once here.
  const defaults = Object.entries(recipe.defaults.headers).map(([k, v]) => [k.toLowerCase(), v] as const);
  const fixedDefaults = defaults.every(([, v]) => v.app !== undefined || v.text !== undefined);
  const defaultValues = (nowMs: number) => {
    const out: Array<readonly [string, string]> = [];
    for (const [k, v] of defaults) {
      const val = sourceValue(v, { app: cfg.app, nowMs });
      if (val !== undefined) out.push([k, val]);
    }
    return out;
  };
  const precomputedDefaults = fixedDefaults ? defaultValues(0) : undefined;
  const faults = createFaultReporter(name, recipe.answers.faults, deps.log);
  // A recipe that signs nothing and sets only headers (KeySecure) needs no signer run per attempt:
  // each attempt writes its header values straight into the forwarded headers.
  const headerOnly = signRule(recipe) === undefined && !recipe.set.query && !recipe.set.form && !recipe.set.json && passesQuery && !touchesJson;
  const headerSources = Object.entries(recipe.set.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v] as const);

  return {
    name,
    type: cfg.type,
    origin,
    begin(req): Exchange {
      if (tokenPath !== undefined && reachesEndpoint(req.path, tokenPath)) {
        throw new GatewayError('FORBIDDEN_PATH', `${recipe.tokens.request!.path} is the proxy's own: tokens are renewed by the proxy`);
      }
      let parts: RequestParts;
      if (checksJson) {
        checkJsonBody(req.body);
        parts = { query: [], rawBody: req.body.length > 0 ? req.body : undefined, multipart: false };
      } else {
        parts = splitRequest(touchesJson, passesQuery ? '' : req.query, req.headers, req.body);
      }
      const merchant = chooseMerchant(cfg, name, req.path, req.headers, parts, cache);
      const rewritesBody = parts.json !== undefined || parts.form !== undefined;
      const headers = forwardableRequestHeaders(req.headers, rewritesBody ? ownedWithBody : owned);
      if (defaults.length > 0) {
        for (const [k, v] of precomputedDefaults ?? defaultValues(upstreamClock.nowMs())) if (headers[k] === undefined) headers[k] = v;
      }
      let usedToken: string | undefined;

      const signed = (rec: TokenRecord | undefined): UpstreamRequest => {
        usedToken = rec?.accessToken;
        if (headerOnly) {
          const nowMs = upstreamClock.nowMs();
          for (const [k, v] of headerSources) {
            const val = sourceValue(v, { app: cfg.app, accessToken: usedToken, nowMs });
            if (val !== undefined) headers[k] = val;
            else delete headers[k];
          }
          return { method: req.method, path: basePath + req.path + req.query, headers, ...(parts.rawBody !== undefined && { body: parts.rawBody }), timeoutMs: cfg.timeout };
        }
        let out;
        try {
          out = signRequest(recipe, {
            method: req.method,
            baseUrl: cfg.baseUrl,
            path: req.path,
            query: passesQuery ? [] : parts.query,
            form: parts.form,
            json: parts.json,
            rawBody: parts.rawBody,
            multipart: parts.multipart,
            app: cfg.app,
            accessToken: usedToken,
            nowMs: upstreamClock.nowMs(),
          });
        } catch (err) {
          if (err instanceof RecipeSignError) throw new GatewayError('BAD_REQUEST', `the request cannot be signed: ${err.message}`);
          throw err;
        }
        const h = { ...headers, ...out.headers };
        if (out.contentType) h['content-type'] = out.contentType;
        return { method: req.method, path: basePath + req.path + (passesQuery ? req.query : out.query), headers: h, ...(out.body !== undefined && { body: out.body }), timeoutMs: cfg.timeout };
      };

      return {
        prepare() {
          if (merchant === undefined || !tokens) return signed(undefined);
          const rec = tokens.fresh(merchant);
          if (rec) return signed(rec);
          return tokens.current(merchant).then((r) => {
            if (!r && appModel) throw new GatewayError('TOKEN_UNAVAILABLE', `no access token can be had for ${name} now`, { headers: { 'Retry-After': '5' } });
            if (!r) throw new GatewayError('UNKNOWN_MERCHANT', `no token is known for merchant "${merchant}" of ${name}`);
            return signed(r);
          });
        },
        judge(res) {
          const v = judge.judge(res.status, res.body);
          if (v.code !== undefined && faults.has(v.code)) faults.report(v.code);
          const retry = v.tokenRejected && usedToken !== undefined ? ('token' as const) : v.timestampRejected ? ('clock_skew' as const) : undefined;
          return { class: v.class, ...(v.codeLabel !== undefined && { codeLabel: v.codeLabel }), ...(retry && { retry }) };
        },
        async recover(reason, res) {
          if (reason === 'clock_skew') return upstreamClock.learn(headerValue(res.headers, 'date'));
          if (merchant === undefined || usedToken === undefined || !tokens) return false;
          try {
            const rec = await tokens.refresh(merchant, 'rejected', usedToken);
            return rec.accessToken !== usedToken;
          } catch {
            return false;
          }
        },
      };
    },
  };
}
